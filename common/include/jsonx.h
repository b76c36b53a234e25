/* jsonx: strict JSON request parsing on top of jansson.  Bodies are parsed with duplicate keys
 * rejected; fields are checked against a declared list (unknown fields and wrong types are
 * reported per field); integers are range-checked before narrowing.  Thread-safe. */
#ifndef JSONX_H
#define JSONX_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

/* Accepted JSON types of a field, as a bit mask. */
enum {
	JSONX_STRING = 1 << 0,
	JSONX_INT = 1 << 1,
	JSONX_BOOL = 1 << 2,
	JSONX_ARRAY = 1 << 3,
	JSONX_OBJECT = 1 << 4,
	JSONX_NULL = 1 << 5,
	JSONX_NUMBER = 1 << 6, /* integer or real */
};

struct jsonx_field {
	const char *name;
	unsigned types; /* JSONX_* mask */
	bool required;
};

/* Deepest nesting of arrays/objects accepted anywhere JSON comes from outside.  jansson parses
 * recursively; thousands of levels would exhaust a worker thread's stack. */
#define JSONX_MAX_DEPTH 64

/* True when buf[0..len) nests arrays/objects at most max_depth deep (strings are skipped, so
 * brackets inside them do not count).  Does not otherwise validate. */
bool jsonx_depth_ok(const char *buf, size_t len, int max_depth);

/* json_loadb() behind jsonx_depth_ok(…, JSONX_MAX_DEPTH): NULL when too deep or invalid.  Use it
 * for every JSON that arrives from outside (bodies, tokens, cursors, events, provider answers). */
json_t *jsonx_loadb(const char *buf, size_t len, size_t flags, json_error_t *error);

/* Parses buf[0..len) as one JSON object (no NUL needed).  Returns a new reference, or NULL with
 * a message naming the position or the duplicated key in err. */
json_t *jsonx_parse_object(const char *buf, size_t len, char *err, size_t errlen);

/* Checks obj against the declared fields: every key must be declared, have one of the declared
 * types (strings without NUL characters: bodies are parsed with JSON_ALLOW_NUL so that a \u0000
 * is reported against its field), and required keys must be present.  Problems are added to details (borrowed object)
 * as field -> reason.  Returns true when nothing was added. */
bool jsonx_check(const json_t *obj, const struct jsonx_field *fields, size_t n, json_t *details);

/* Reads an optional integer member within [min, max].  Returns false (and adds a reason to
 * details) when present but out of range or not an integer; *present tells if it was there. */
bool jsonx_int_range(const json_t *obj, const char *key, long long min, long long max,
                     long long *out, bool *present, json_t *details);

/* Reads an optional string member whose length in characters (UTF-8 code points) lies in
 * [min, max].  *out is borrowed from obj (NULL when absent or JSON null). */
bool jsonx_string_len(const json_t *obj, const char *key, size_t min, size_t max, const char **out,
                      json_t *details);

/* Number of UTF-8 code points in a valid UTF-8 string. */
size_t jsonx_utf8_len(const char *s);
/* The length of the well-formed UTF-8 sequence at s (1-4 bytes, as jansson's utf8_check_full:
 * no overlong forms, no surrogates, nothing above U+10FFFF), or 0 (s[0] NUL counts as a
 * sequence of 1).  Reads no further than a NUL. */
size_t jsonx_utf8_seq(const unsigned char *s);

/* A JSON text written piece by piece, for answers built from database rows without jansson's
 * objects (a page of 20 reservations as json_t cost ~500 allocations and a dump).  Starts
 * zeroed; data (owned, NUL-terminated once anything was written) grows as needed.  failed is
 * set when memory ran out or a string was not UTF-8, and stays set; the text is then not to be
 * used.  jsonx_text_free() releases data.  Not shared between threads. */
struct jsonx_text {
	char *data;
	size_t len, cap;
	bool failed;
};

/* Appends s[0..n) as it is (JSON punctuation, keys written as literals). */
void jsonx_text_raw(struct jsonx_text *t, const char *s, size_t n);
/* Appends a literal: jsonx_text_lit(t, "{\"id\":"). */
#define jsonx_text_lit(t, s) jsonx_text_raw((t), (s), sizeof(s) - 1)
/* Appends s as a JSON string, escaped byte for byte as jansson dumps it (JSON_COMPACT, no
 * JSON_ENSURE_ASCII or JSON_ESCAPE_SLASH), or null when s is NULL.  s not valid UTF-8 sets
 * failed (jansson refuses such a string too). */
void jsonx_text_str(struct jsonx_text *t, const char *s);
/* Appends v in decimal. */
void jsonx_text_int(struct jsonx_text *t, long long v);
void jsonx_text_free(struct jsonx_text *t);

#endif
