#include "sqlbuild.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void sqlbuild_add(struct sqlbuild *s, const char *piece, const char *value)
{
	int number = 0;
	if (value) {
		assert(s->n < SQLBUILD_PARAMS_MAX);
		s->params[s->n++] = value;
		number = s->n;
	}
	for (const char *p = piece; *p; p++) {
		char num[16];
		const char *out = p;
		size_t len = 1;
		if (*p == '?') {
			assert(number > 0);
			len = (size_t)snprintf(num, sizeof num, "$%d", number);
			out = num;
		}
		assert(s->len + len < sizeof s->text);
		memcpy(s->text + s->len, out, len);
		s->len += len;
	}
	s->text[s->len] = '\0';
}

char *sqlbuild_text_array(const char *const *items, size_t n)
{
	size_t size = 3; /* "{", "}" and the NUL */
	for (size_t i = 0; i < n; i++) {
		size += items[i] ? 3u : 5u; /* the comma, and the quotes or NULL */
		for (const char *p = items[i]; p && *p; p++)
			size += *p == '"' || *p == '\\' ? 2u : 1u;
	}
	char *out = malloc(size), *o = out;
	if (!out)
		return NULL;
	*o++ = '{';
	for (size_t i = 0; i < n; i++) {
		if (i > 0)
			*o++ = ',';
		if (!items[i]) {
			memcpy(o, "NULL", 4);
			o += 4;
			continue;
		}
		*o++ = '"';
		for (const char *p = items[i]; *p; p++) {
			if (*p == '"' || *p == '\\')
				*o++ = '\\';
			*o++ = *p;
		}
		*o++ = '"';
	}
	*o++ = '}';
	*o = '\0';
	assert((size_t)(o - out) < size);
	return out;
}
