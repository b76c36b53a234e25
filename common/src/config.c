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

/* Reads row p's variable (or its default) into its field, within the row's type and bounds. */
static bool cfg_load_value(const struct cfg_param *p, char *base, char *err, size_t errlen)
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
		if (p->type == CFG_TYPE_STRING) {
			char *empty = strdup("");
			memcpy(base + p->offset, &empty, sizeof empty);
			return empty != NULL;
		}
		return true;
	}

	switch (p->type) {
	case CFG_TYPE_STRING: {
		size_t len = strlen(raw);
		if (len < (size_t)p->min || (p->max > 0 && len > (size_t)p->max)) {
			if (p->max > 0)
				snprintf(err, errlen, "%s must be %lld to %lld bytes long", p->name,
				         p->min, p->max);
			else
				snprintf(err, errlen, "%s must be at least %lld bytes long",
				         p->name, p->min);
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
	case CFG_TYPE_INT: {
		char *end = NULL;
		errno = 0;
		long long v = strtoll(raw, &end, 10);
		if (errno || end == raw || *end || v < p->min || v > p->max) {
			snprintf(err, errlen, "%s must be an integer from %lld to %lld", p->name,
			         p->min, p->max);
			return false;
		}
		memcpy(base + p->offset, &v, sizeof v);
		return true;
	}
	case CFG_TYPE_BOOL: {
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

/* Runs row p's own check (union cfg_value_check) on the value loaded at base; when it refuses,
 * a string's copy is freed again, so that a failed row leaves nothing behind. */
static bool cfg_check_value(const struct cfg_param *p, char *base, char *err, size_t errlen)
{
	char why[256] = "";
	bool ok = true;
	switch (p->type) {
	case CFG_TYPE_STRING: {
		char *v = NULL;
		memcpy(&v, base + p->offset, sizeof v);
		if (p->check.str && !p->check.str(v, why, sizeof why)) {
			ok = false;
			free(v);
			v = NULL;
			memcpy(base + p->offset, &v, sizeof v);
		}
		break;
	}
	case CFG_TYPE_INT: {
		long long v = 0;
		memcpy(&v, base + p->offset, sizeof v);
		ok = !p->check.num || p->check.num(v, why, sizeof why);
		break;
	}
	case CFG_TYPE_BOOL: {
		bool v = false;
		memcpy(&v, base + p->offset, sizeof v);
		ok = !p->check.flag || p->check.flag(v, why, sizeof why);
		break;
	}
	}
	if (!ok)
		snprintf(err, errlen, "%s %s", p->name, why[0] ? why : "is not valid");
	return ok;
}

static bool cfg_load_one(const struct cfg_param *p, char *base, char *err, size_t errlen)
{
	return cfg_load_value(p, base, err, errlen) && cfg_check_value(p, base, err, errlen);
}

/* The row that loads the field at `offset`, or NULL. */
static const struct cfg_param *cfg_row(const struct cfg_table *t, size_t offset)
{
	for (size_t i = 0; i < t->nparams; i++)
		if (t->params[i].offset == offset)
			return &t->params[i];
	return NULL;
}

/* Applies rule i of the table to the loaded struct at base. */
static bool cfg_check_one(const struct cfg_table *t, size_t i, const char *base, char *err,
                          size_t errlen)
{
	const struct cfg_check *c = &t->checks[i];
	const struct cfg_param *lhs = cfg_row(t, c->lhs), *rhs = cfg_row(t, c->rhs);
	enum cfg_type want = c->kind == CFG_CHECK_KIND_LE ? CFG_TYPE_INT : CFG_TYPE_STRING;
	if (!lhs || !rhs || lhs->type != want || rhs->type != want) {
		snprintf(err, errlen,
		         "configuration table: check %zu names a field that no row of "
		         "its type loads",
		         i);
		return false;
	}
	switch (c->kind) {
	case CFG_CHECK_KIND_LE: {
		long long x, y;
		memcpy(&x, base + c->lhs, sizeof x);
		memcpy(&y, base + c->rhs, sizeof y);
		if (x <= y)
			return true;
		snprintf(err, errlen, "%s must not exceed %s", lhs->name, rhs->name);
		return false;
	}
	case CFG_CHECK_KIND_REQUIRES: {
		const char *x, *y;
		memcpy(&x, base + c->lhs, sizeof x);
		memcpy(&y, base + c->rhs, sizeof y);
		if (!x[0] || y[0])
			return true;
		snprintf(err, errlen, "%s is required when %s is set", rhs->name, lhs->name);
		return false;
	}
	}
	snprintf(err, errlen, "configuration table: check %zu is of an unknown kind", i);
	return false;
}

static void cfg_free_rows(const struct cfg_param *params, size_t n, void *out)
{
	for (size_t i = 0; i < n; i++) {
		if (params[i].type != CFG_TYPE_STRING)
			continue;
		char *s = NULL;
		memcpy(&s, (char *)out + params[i].offset, sizeof s);
		free(s);
		s = NULL;
		memcpy((char *)out + params[i].offset, &s, sizeof s);
	}
}

bool cfg_load(const struct cfg_table *t, void *out, char *err, size_t errlen)
{
	for (size_t i = 0; i < t->nparams; i++) {
		if (!cfg_load_one(&t->params[i], out, err, errlen)) {
			cfg_free_rows(t->params, i, out);
			return false;
		}
	}
	for (size_t i = 0; i < t->nchecks; i++) {
		if (!cfg_check_one(t, i, out, err, errlen)) {
			cfg_free(t, out);
			return false;
		}
	}
	return true;
}

void cfg_free(const struct cfg_table *t, void *out)
{
	cfg_free_rows(t->params, t->nparams, out);
}
