/* Checks shared by the fuzz targets (see fuzz.h). */
#include "../fuzz.h"

#include <ctype.h>
#include <strings.h>

#include "../../room-service/src/validate.h"
#include "equipment.h"
#include "jsonx.h"

char *fuzz_cstr(const uint8_t *data, size_t size)
{
	char *s = malloc(size + 1);
	FUZZ_CHECK(s != NULL);
	if (size)
		memcpy(s, data, size);
	s[size] = '\0';
	return s;
}

void fuzz_check_string(const json_t *body, const char *key, const char *s, size_t min, size_t max)
{
	if (!s)
		return;
	const json_t *v = json_object_get(body, key);
	FUZZ_CHECK(json_string_value(v) == s);
	FUZZ_CHECK(strlen(s) == json_string_length(v));
	size_t n = jsonx_utf8_len(s);
	FUZZ_CHECK(n >= min && n <= max);
}

void fuzz_check_details(const json_t *details)
{
	const char *key;
	json_t *v;
	FUZZ_CHECK(json_is_object(details));
	json_object_foreach((json_t *)details, key, v) {
		FUZZ_CHECK(json_is_string(v) && json_string_length(v) > 0);
	}
}

void fuzz_check_equipment(const json_t *eq)
{
	FUZZ_CHECK(json_is_array(eq) && json_array_size(eq) <= 50);
	for (size_t i = 0; i < json_array_size(eq); i++) {
		const char *s = json_string_value(json_array_get(eq, i));
		FUZZ_CHECK(s != NULL);
		size_t n = jsonx_utf8_len(s);
		FUZZ_CHECK(n >= 1 && n <= 50);
		FUZZ_CHECK(!isspace((unsigned char)s[0]) &&
		           !isspace((unsigned char)s[strlen(s) - 1]));
		for (size_t j = 0; j < i; j++)
			FUZZ_CHECK(strcasecmp(s, json_string_value(json_array_get(eq, j))) != 0);
	}
}

void fuzz_room_equipment(const json_t *value, json_t *details)
{
	const char *why = NULL;
	json_t *eq = equipment_normalise(value, &why);
	if (eq) {
		FUZZ_CHECK(why == NULL);
		fuzz_check_equipment(eq);
	} else {
		FUZZ_CHECK(why != NULL && *why);
		json_object_set_new(details, "equipment", json_string(why));
	}
	json_decref(eq);
}
