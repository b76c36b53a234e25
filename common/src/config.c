#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static bool cfg_parse_bool(const char *s, bool *out)
{
	static const char *const yes[] = {"1", "true", "yes", "on"};
	static const char *const no[] = {"0", "false", "no", "off"};
	for (size_t i = 0; i < 4; i++) {
		if (strcasecmp(s, yes[i]) == 0) {
			*out = true;
			return true;
		}
		if (strcasecmp(s, no[i]) == 0) {
			*out = false;
			return true;
		}
	}
	return false;
}

static bool cfg_load_one(const struct cfg_param *p, char *base, char *err, size_t errlen)
{
	const char *raw = getenv(p->name);
	if (!raw || !*raw)
		raw = p->def;
	if (!raw || (!*raw && p->required)) {
		if (p->required) {
			snprintf(err, errlen, "%s is required but not set", p->name);
			return false;
		}
		/* Optional and unset: strings become "", numbers 0, booleans false. */
		if (p->type == CFG_STRING) {
			char *empty = strdup("");
			memcpy(base + p->offset, &empty, sizeof empty);
			return empty != NULL;
		}
		return true;
	}

	switch (p->type) {
	case CFG_STRING: {
		size_t len = strlen(raw);
		if (len < (size_t)p->min || (p->max > 0 && len > (size_t)p->max)) {
			if (p->max > 0)
				snprintf(err, errlen, "%s must be %lld to %lld bytes long", p->name,
				         p->min, p->max);
			else
				snprintf(err, errlen, "%s must be at least %lld bytes long", p->name,
				         p->min);
			return false;
		}
		char *copy = strdup(raw);
		if (!copy) {
			snprintf(err, errlen, "%s: out of memory", p->name);
			return false;
		}
		memcpy(base + p->offset, &copy, sizeof copy);
		return true;
	}
	case CFG_INT: {
		char *end = NULL;
		errno = 0;
		long long v = strtoll(raw, &end, 10);
		if (errno || end == raw || *end || v < p->min || v > p->max) {
			snprintf(err, errlen, "%s must be an integer from %lld to %lld", p->name, p->min,
			         p->max);
			return false;
		}
		memcpy(base + p->offset, &v, sizeof v);
		return true;
	}
	case CFG_BOOL: {
		bool v = false;
		if (*raw && !cfg_parse_bool(raw, &v)) {
			snprintf(err, errlen, "%s must be true or false", p->name);
			return false;
		}
		memcpy(base + p->offset, &v, sizeof v);
		return true;
	}
	}
	snprintf(err, errlen, "%s: unknown parameter type", p->name);
	return false;
}

bool cfg_load(const struct cfg_param *params, size_t n, void *out, char *err, size_t errlen)
{
	for (size_t i = 0; i < n; i++) {
		if (!cfg_load_one(&params[i], out, err, errlen)) {
			cfg_free(params, i, out);
			return false;
		}
	}
	return true;
}

void cfg_free(const struct cfg_param *params, size_t n, void *out)
{
	for (size_t i = 0; i < n; i++) {
		if (params[i].type != CFG_STRING)
			continue;
		char *s = NULL;
		memcpy(&s, (char *)out + params[i].offset, sizeof s);
		free(s);
		s = NULL;
		memcpy((char *)out + params[i].offset, &s, sizeof s);
	}
}
