/* Helpers of the validator unit tests (see body_check.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "body_check.h"
#include "jsonx.h"

json_t *body_parse(const char *text)
{
	char err[256];
	json_t *body = jsonx_parse_object(text, strlen(text), err, sizeof err);
	if (!body)
		fail_msg("test body does not parse: %s: %s", text, err);
	return body;
}

char *body_repeat(const char *c, size_t n)
{
	size_t len = strlen(c);
	char *s = malloc(n * len + 1);
	assert_non_null(s);
	for (size_t i = 0; i < n; i++)
		memcpy(s + i * len, c, len);
	s[n * len] = '\0';
	return s;
}

void body_assert_only(const json_t *details, const char *field, const char *what)
{
	const char *why = json_string_value(json_object_get(details, field));
	if (!why || !*why || json_object_size(details) != 1) {
		char *dump = json_dumps(details, JSON_COMPACT);
		fail_msg("%s: want one problem with %s, got %s", what, field, dump);
	}
}
