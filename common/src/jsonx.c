#include "jsonx.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

bool jsonx_depth_ok(const char *buf, size_t len, int max_depth)
{
	int depth = 0;
	bool in_string = false;
	for (size_t i = 0; i < len; i++) {
		char c = buf[i];
		if (in_string) {
			if (c == '\\')
				i++;
			else if (c == '"')
				in_string = false;
		} else if (c == '"') {
			in_string = true;
		} else if (c == '[' || c == '{') {
			if (++depth > max_depth)
				return false;
		} else if (c == ']' || c == '}') {
			depth--;
		}
	}
	return true;
}

json_t *jsonx_loadb(const char *buf, size_t len, size_t flags, json_error_t *error)
{
	if (!jsonx_depth_ok(buf, len, JSONX_MAX_DEPTH)) {
		if (error)
			snprintf(error->text, sizeof error->text, "nested more than %d levels deep",
			         JSONX_MAX_DEPTH);
		return NULL;
	}
	return json_loadb(buf, len, flags, error);
}

json_t *jsonx_parse_object(const char *buf, size_t len, char *err, size_t errlen)
{
	json_error_t jerr;
	if (!jsonx_depth_ok(buf, len, JSONX_MAX_DEPTH)) {
		snprintf(err, errlen, "malformed JSON: nested more than %d levels deep",
		         JSONX_MAX_DEPTH);
		return NULL;
	}
	json_t *root = json_loadb(buf, len,
	                          JSON_REJECT_DUPLICATES | JSON_DECODE_ANY | JSON_ALLOW_NUL, &jerr);
	if (!root) {
		snprintf(err, errlen, "malformed JSON: %s (at line %d, column %d)", jerr.text,
		         jerr.line, jerr.column);
		return NULL;
	}
	if (!json_is_object(root)) {
		snprintf(err, errlen, "request body must be a JSON object");
		json_decref(root);
		return NULL;
	}
	return root;
}

static bool jsonx_type_ok(const json_t *v, unsigned types)
{
	switch (json_typeof(v)) {
	case JSON_STRING:
		return types & JSONX_STRING;
	case JSON_INTEGER:
		return types & (JSONX_INT | JSONX_NUMBER);
	case JSON_REAL:
		return types & JSONX_NUMBER;
	case JSON_TRUE:
	case JSON_FALSE:
		return types & JSONX_BOOL;
	case JSON_ARRAY:
		return types & JSONX_ARRAY;
	case JSON_OBJECT:
		return types & JSONX_OBJECT;
	case JSON_NULL:
		return types & JSONX_NULL;
	}
	return false;
}

static const char *jsonx_type_reason(unsigned types)
{
	unsigned t = types & ~(unsigned)JSONX_NULL;
	if (t == JSONX_STRING)
		return "must be a string";
	if (t == JSONX_INT)
		return "must be an integer";
	if (t == JSONX_BOOL)
		return "must be a boolean";
	if (t == JSONX_ARRAY)
		return "must be an array";
	if (t == JSONX_OBJECT)
		return "must be an object";
	if (t == (JSONX_STRING | JSONX_ARRAY))
		return "must be an array of strings or a comma-separated string";
	if (t & JSONX_NUMBER)
		return "must be a number";
	return "has the wrong type";
}

bool jsonx_check(const json_t *obj, const struct jsonx_field *fields, size_t n, json_t *details)
{
	bool ok = true;
	const char *key;
	json_t *value;

	json_object_foreach((json_t *)obj, key, value) {
		const struct jsonx_field *f = NULL;
		for (size_t i = 0; i < n; i++) {
			if (strcmp(fields[i].name, key) == 0) {
				f = &fields[i];
				break;
			}
		}
		if (!f) {
			json_object_set_new(details, key, json_string("is not a known field"));
			ok = false;
		} else if (!jsonx_type_ok(value, f->types)) {
			json_object_set_new(details, key, json_string(jsonx_type_reason(f->types)));
			ok = false;
		} else if (json_is_string(value) &&
		           strlen(json_string_value(value)) != json_string_length(value)) {
			json_object_set_new(details, key,
			                    json_string("must not contain NUL characters"));
			ok = false;
		}
	}
	for (size_t i = 0; i < n; i++) {
		if (fields[i].required && !json_object_get(obj, fields[i].name)) {
			json_object_set_new(details, fields[i].name, json_string("is required"));
			ok = false;
		}
	}
	return ok;
}

bool jsonx_int_range(const json_t *obj, const char *key, long long min, long long max,
                     long long *out, bool *present, json_t *details)
{
	json_t *v = json_object_get(obj, key);
	*present = v != NULL && !json_is_null(v);
	if (!*present)
		return true;
	if (!json_is_integer(v)) {
		json_object_set_new(details, key, json_string("must be an integer"));
		return false;
	}
	json_int_t n = json_integer_value(v);
	if (n < min || n > max) {
		json_object_set_new(details, key,
		                    json_sprintf("must be between %lld and %lld", min, max));
		return false;
	}
	*out = (long long)n;
	return true;
}

size_t jsonx_utf8_len(const char *s)
{
	size_t n = 0;
	for (; *s; s++)
		if (((unsigned char)*s & 0xc0) != 0x80)
			n++;
	return n;
}

bool jsonx_string_len(const json_t *obj, const char *key, size_t min, size_t max, const char **out,
                      json_t *details)
{
	json_t *v = json_object_get(obj, key);
	*out = NULL;
	if (!v || json_is_null(v))
		return true;
	if (!json_is_string(v)) {
		json_object_set_new(details, key, json_string("must be a string"));
		return false;
	}
	const char *s = json_string_value(v);
	size_t n = jsonx_utf8_len(s);
	if (strlen(s) != json_string_length(v)) {
		json_object_set_new(details, key, json_string("must not contain NUL characters"));
		return false;
	}
	if (n < min || n > max) {
		json_object_set_new(details, key,
		                    json_sprintf("must be %zu to %zu characters long", min, max));
		return false;
	}
	*out = s;
	return true;
}

/* ---- jsonx_text ---- */

/* Room for n more bytes and the NUL; false (and failed) when memory is short. */
static bool jsonx_text_room(struct jsonx_text *t, size_t n)
{
	if (t->failed)
		return false;
	if (t->cap - t->len > n)
		return true;
	size_t cap = t->cap ? t->cap : 1024;
	while (cap - t->len <= n)
		cap *= 2;
	char *p = realloc(t->data, cap);
	if (!p) {
		t->failed = true;
		return false;
	}
	t->data = p;
	t->cap = cap;
	return true;
}

void jsonx_text_raw(struct jsonx_text *t, const char *s, size_t n)
{
	if (!jsonx_text_room(t, n))
		return;
	memcpy(t->data + t->len, s, n);
	t->len += n;
	t->data[t->len] = '\0';
}

size_t jsonx_utf8_seq(const unsigned char *s)
{
	unsigned char c = s[0];
	size_t n = c < 0x80                 ? 1
	           : c >= 0xC2 && c <= 0xDF ? 2
	           : c >= 0xE0 && c <= 0xEF ? 3
	           : c >= 0xF0 && c <= 0xF4 ? 4
	                                    : 0;
	unsigned cp = n == 2 ? c & 0x1Fu : n == 3 ? c & 0x0Fu : c & 0x07u;
	for (size_t i = 1; i < n; i++) {
		if ((s[i] & 0xC0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3Fu);
	}
	if ((n == 3 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))) ||
	    (n == 4 && (cp < 0x10000 || cp > 0x10FFFF)))
		return 0;
	return n;
}

void jsonx_text_str(struct jsonx_text *t, const char *s)
{
	if (!s) {
		jsonx_text_lit(t, "null");
		return;
	}
	const unsigned char *p = (const unsigned char *)s;
	jsonx_text_lit(t, "\"");
	while (*p && !t->failed) {
		/* The run that needs no escape is copied at once. */
		const unsigned char *run = p;
		size_t n;
		while (*p >= 0x20 && *p != '"' && *p != '\\' && (n = jsonx_utf8_seq(p)) > 0)
			p += n;
		jsonx_text_raw(t, (const char *)run, (size_t)(p - run));
		if (!*p)
			break;
		char esc[8];
		switch (*p) {
		case '"':
			jsonx_text_lit(t, "\\\"");
			break;
		case '\\':
			jsonx_text_lit(t, "\\\\");
			break;
		case '\b':
			jsonx_text_lit(t, "\\b");
			break;
		case '\f':
			jsonx_text_lit(t, "\\f");
			break;
		case '\n':
			jsonx_text_lit(t, "\\n");
			break;
		case '\r':
			jsonx_text_lit(t, "\\r");
			break;
		case '\t':
			jsonx_text_lit(t, "\\t");
			break;
		default:
			if (*p >= 0x20) { /* not UTF-8 */
				t->failed = true;
				return;
			}
			snprintf(esc, sizeof esc, "\\u%04X", *p);
			jsonx_text_raw(t, esc, 6);
		}
		p++;
	}
	jsonx_text_lit(t, "\"");
}

void jsonx_text_int(struct jsonx_text *t, long long v)
{
	char buf[24], *p = buf + sizeof buf;
	/* In unsigned arithmetic, so that LLONG_MIN has its digits too. */
	unsigned long long u = v < 0 ? 0ULL - (unsigned long long)v : (unsigned long long)v;
	do {
		*--p = (char)('0' + u % 10);
		u /= 10;
	} while (u);
	if (v < 0)
		*--p = '-';
	jsonx_text_raw(t, p, (size_t)(buf + sizeof buf - p));
}

void jsonx_text_free(struct jsonx_text *t)
{
	free(t->data);
	*t = (struct jsonx_text){0};
}
