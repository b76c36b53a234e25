/* room-service validation for the fuzz targets (see fuzz.h). */
#include "../fuzz.h"

#include <ctype.h>
#include <strings.h>

#include "../../room-service/src/handlers.h"
#include "../../room-service/src/repo.h"
#include "jsonx.h"
#include "tz.h"

/* An accepted equipment list: at most 50 trimmed strings of 1–50 characters, distinct
 * case-insensitively. */
static void check_equipment(const json_t *eq)
{
	FUZZ_CHECK(json_is_array(eq) && json_array_size(eq) <= 50);
	for (size_t i = 0; i < json_array_size(eq); i++) {
		const char *s = json_string_value(json_array_get(eq, i));
		FUZZ_CHECK(s != NULL);
		size_t n = jsonx_utf8_len(s);
		FUZZ_CHECK(n >= 1 && n <= 50);
		FUZZ_CHECK(!isspace((unsigned char)s[0]) && !isspace((unsigned char)s[strlen(s) - 1]));
		for (size_t j = 0; j < i; j++)
			FUZZ_CHECK(strcasecmp(s, json_string_value(json_array_get(eq, j))) != 0);
	}
}

void fuzz_room_body(const json_t *body, bool create, json_t *details)
{
	struct room_input in = {0};
	room_validate(body, create, &in, details);
	if (json_object_size(details) == 0) {
		if (create)
			FUZZ_CHECK(in.name && in.has_capacity);
		fuzz_check_string(body, "name", in.name, 1, 100);
		if (in.name)
			FUZZ_CHECK(!isspace((unsigned char)in.name[0]) &&
			           !isspace((unsigned char)in.name[strlen(in.name) - 1]));
		if (in.has_capacity)
			FUZZ_CHECK(in.capacity >= 1 && in.capacity <= 10000);
		if (in.has_floor && !in.floor_null)
			FUZZ_CHECK(in.floor >= -100 && in.floor <= 500);
		fuzz_check_string(body, "building", in.building, 0, 100);
		fuzz_check_string(body, "description", in.description, 0, 1000);
		if (in.time_zone)
			FUZZ_CHECK(tz_valid(in.time_zone));
		if (in.equipment)
			check_equipment(in.equipment);
	}
	json_decref(in.equipment);
}

void fuzz_room_equipment(const json_t *value, json_t *details)
{
	const char *why = NULL;
	json_t *eq = room_equipment_normalise(value, &why);
	if (eq) {
		FUZZ_CHECK(why == NULL);
		check_equipment(eq);
	} else {
		FUZZ_CHECK(why != NULL && *why);
		json_object_set_new(details, "equipment", json_string(why));
	}
	json_decref(eq);
}
