#include "sqlbuild.h"

#include <assert.h>
#include <stdio.h>
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
