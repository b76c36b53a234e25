/* Checks shared by the fuzz targets (see fuzz.h). */
#include "../fuzz.h"

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

void fuzz_check_string(const json_t *body, const char *key, const char *s, size_t min,
                       size_t max)
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
