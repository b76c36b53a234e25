/* Unit tests of common/src/jsonx.c: strict request-body parsing and field checks. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "countof.h"
#include "jsonx.h"

static json_t *parse(const char *s, char *err, size_t errlen)
{
	err[0] = '\0';
	return jsonx_parse_object(s, strlen(s), err, errlen);
}

/* Parses a known-good object for the field tests. */
static json_t *obj(const char *s)
{
	char err[256];
	json_t *o = parse(s, err, sizeof err);
	if (!o)
		fail_msg("test fixture does not parse: %s: %s", s, err);
	return o;
}

static const char *reason(const json_t *details, const char *field)
{
	return json_string_value(json_object_get(details, field));
}

static void test_parse_ok(void **state)
{
	(void)state;
	char err[256];
	json_t *o = parse("{\"name\":\"Aurora\",\"capacity\":12,\"tags\":[\"tv\"]}", err,
	                  sizeof err);
	assert_non_null(o);
	assert_string_equal(json_string_value(json_object_get(o, "name")), "Aurora");
	assert_int_equal(json_integer_value(json_object_get(o, "capacity")), 12);
	json_decref(o);

	/* The buffer need not be NUL-terminated: only len bytes are read. */
	const char buf[] = "{\"a\":1}trailing garbage";
	o = jsonx_parse_object(buf, 7, err, sizeof err);
	assert_non_null(o);
	assert_int_equal(json_integer_value(json_object_get(o, "a")), 1);
	json_decref(o);

	o = parse("  {}  ", err, sizeof err);
	assert_non_null(o);
	assert_int_equal(json_object_size(o), 0);
	json_decref(o);
}

static void test_parse_rejects_duplicates(void **state)
{
	(void)state;
	char err[256];
	assert_null(
		parse("{\"room_name\":\"a\",\"capacity\":1,\"room_name\":\"b\"}", err, sizeof err));
	assert_non_null(strstr(err, "duplicate"));
	assert_non_null(strstr(err, "room_name"));
	/* Duplicates in nested objects count as well. */
	assert_null(parse("{\"a\":{\"x\":1,\"x\":1}}", err, sizeof err));
	assert_non_null(strstr(err, "duplicate"));
}

static void test_parse_rejects_non_objects(void **state)
{
	(void)state;
	const char *cases[] = {"[]", "[{\"a\":1}]", "1", "\"text\"", "null", "true", "1.5"};
	for (size_t i = 0; i < countof(cases); i++) {
		char err[256];
		json_t *o = parse(cases[i], err, sizeof err);
		if (o)
			fail_msg("accepted non-object %s", cases[i]);
		assert_true(strlen(err) > 0);
		/* jansson itself refuses scalars at the top level ("'[' or '{' expected"). */
		if (cases[i][0] == '[')
			assert_non_null(strstr(err, "object"));
	}
}

static void test_parse_rejects_malformed(void **state)
{
	(void)state;
	const char *cases[] = {"",
	                       "{",
	                       "{\"a\":}",
	                       "{\"a\":1,}",
	                       "{'a':1}",
	                       "{a:1}",
	                       "{\"a\":1}x",
	                       "{\"a\":1}{}",
	                       "{\"a\":01}",
	                       "{\"a\":NaN}",
	                       "{\"a\":\"\x01\"}",
	                       "\xff{}",
	                       "{\"a\":\"\xc3\"}"};
	for (size_t i = 0; i < countof(cases); i++) {
		char err[256];
		json_t *o = parse(cases[i], err, sizeof err);
		if (o)
			fail_msg("accepted malformed JSON case %zu", i);
		assert_true(strlen(err) > 0);
	}
	/* The message tells where. */
	char err[256];
	assert_null(parse("{\n\"a\": }", err, sizeof err));
	assert_non_null(strstr(err, "line 2"));
}

static void test_parse_rejects_huge_numbers(void **state)
{
	(void)state;
	char err[256];
	/* jansson refuses integers beyond int64 at parse time. */
	assert_null(parse("{\"capacity\":9223372036854775808}", err, sizeof err));
	assert_null(parse("{\"capacity\":99999999999999999999999999}", err, sizeof err));
	assert_null(parse("{\"capacity\":-9223372036854775809}", err, sizeof err));
	json_t *o = parse("{\"capacity\":9223372036854775807}", err, sizeof err);
	assert_non_null(o);
	json_decref(o);
}

/* A NUL inside a string value parses, so that jsonx_check can name the field; a NUL inside a
 * key cannot be represented and fails the parse. */
static void test_parse_rejects_nul_in_string(void **state)
{
	(void)state;
	char err[256];
	static const struct jsonx_field fields[] = {{"name", JSONX_STRING, true}};
	json_t *o = parse("{\"name\":\"a\\u0000b\"}", err, sizeof err);
	assert_non_null(o);
	json_t *details = json_object();
	assert_false(jsonx_check(o, fields, 1, details));
	assert_string_equal(reason(details, "name"), "must not contain NUL characters");
	json_decref(details);
	json_decref(o);
	assert_null(parse("{\"a\\u0000b\":1}", err, sizeof err));
}

static void test_parse_error_fits_buffer(void **state)
{
	(void)state;
	char err[10];
	memset(err, 'x', sizeof err);
	assert_null(jsonx_parse_object("{", 1, err, sizeof err));
	assert_true(strlen(err) < sizeof err);
}

static const struct jsonx_field room_fields[] = {
	{"name", JSONX_STRING, true},
	{"capacity", JSONX_INT, true},
	{"floor", JSONX_INT | JSONX_NULL, false},
	{"active", JSONX_BOOL, false},
	{"tags", JSONX_STRING | JSONX_ARRAY, false},
	{"meta", JSONX_OBJECT, false},
	{"price", JSONX_NUMBER, false},
	{"list", JSONX_ARRAY, false},
};
#define NROOM_FIELDS countof(room_fields)

static void test_check_valid(void **state)
{
	(void)state;
	json_t *o = obj("{\"name\":\"A\",\"capacity\":3,\"floor\":null,\"active\":false,"
	                "\"tags\":\"tv,wifi\",\"meta\":{},\"price\":1.5,\"list\":[]}");
	json_t *details = json_object();
	assert_true(jsonx_check(o, room_fields, NROOM_FIELDS, details));
	assert_int_equal(json_object_size(details), 0);
	json_decref(o);

	/* An integer is a number too; tags may be an array. */
	o = obj("{\"name\":\"A\",\"capacity\":3,\"price\":2,\"tags\":[\"tv\"],\"floor\":4}");
	assert_true(jsonx_check(o, room_fields, NROOM_FIELDS, details));
	assert_int_equal(json_object_size(details), 0);
	json_decref(o);
	json_decref(details);
}

static void test_check_reports_each_problem(void **state)
{
	(void)state;
	json_t *o = obj("{\"capacity\":\"ten\",\"colour\":\"red\",\"active\":1,\"floor\":1.5,"
	                "\"meta\":[],\"price\":\"1\",\"list\":{},\"tags\":5}");
	json_t *details = json_object();
	assert_false(jsonx_check(o, room_fields, NROOM_FIELDS, details));
	assert_string_equal(reason(details, "colour"), "is not a known field");
	assert_string_equal(reason(details, "name"), "is required");
	assert_string_equal(reason(details, "capacity"), "must be an integer");
	assert_string_equal(reason(details, "active"), "must be a boolean");
	assert_string_equal(reason(details, "floor"), "must be an integer");
	assert_string_equal(reason(details, "meta"), "must be an object");
	assert_string_equal(reason(details, "price"), "must be a number");
	assert_string_equal(reason(details, "list"), "must be an array");
	assert_non_null(reason(details, "tags"));
	assert_int_equal(json_object_size(details), 9);
	json_decref(o);
	json_decref(details);
}

static void test_check_null_for_required(void **state)
{
	(void)state;
	/* null where null is not declared is a wrong type, even for a required field. */
	json_t *o = obj("{\"name\":null,\"capacity\":2}");
	json_t *details = json_object();
	assert_false(jsonx_check(o, room_fields, NROOM_FIELDS, details));
	assert_string_equal(reason(details, "name"), "must be a string");
	assert_int_equal(json_object_size(details), 1);
	json_decref(o);
	json_decref(details);
}

static void test_check_empty_declaration(void **state)
{
	(void)state;
	json_t *details = json_object();
	json_t *o = obj("{}");
	assert_true(jsonx_check(o, NULL, 0, details));
	json_decref(o);
	o = obj("{\"x\":1}");
	assert_false(jsonx_check(o, NULL, 0, details));
	assert_string_equal(reason(details, "x"), "is not a known field");
	json_decref(o);
	json_decref(details);
}

static void test_int_range(void **state)
{
	(void)state;
	json_t *o = obj("{\"n\":5,\"zero\":0,\"big\":9223372036854775807,"
	                "\"small\":-9223372036854775808,\"s\":\"5\",\"r\":5.0,\"nul\":null,"
	                "\"b\":true}");
	json_t *details = json_object();
	long long v = -42;
	bool present = false;

	assert_true(jsonx_int_range(o, "n", 1, 10, &v, &present, details));
	assert_true(present);
	assert_int_equal(v, 5);
	assert_true(jsonx_int_range(o, "n", 5, 5, &v, &present, details));

	v = -42;
	assert_true(jsonx_int_range(o, "absent", 1, 10, &v, &present, details));
	assert_false(present);
	assert_true(v == -42);
	assert_true(jsonx_int_range(o, "nul", 1, 10, &v, &present, details));
	assert_false(present);
	assert_int_equal(json_object_size(details), 0);

	assert_false(jsonx_int_range(o, "zero", 1, 10, &v, &present, details));
	assert_true(present);
	assert_true(v == -42);
	assert_non_null(strstr(reason(details, "zero"), "1"));
	assert_non_null(strstr(reason(details, "zero"), "10"));
	assert_false(jsonx_int_range(o, "n", 6, 10, &v, &present, details));
	assert_false(jsonx_int_range(o, "n", 1, 4, &v, &present, details));

	/* Large values are compared before narrowing, never truncated into range. */
	assert_false(jsonx_int_range(o, "big", 1, 1000, &v, &present, details));
	assert_non_null(reason(details, "big"));
	assert_false(jsonx_int_range(o, "big", 0, INT_MAX, &v, &present, details));
	assert_false(jsonx_int_range(o, "small", -1000, 1000, &v, &present, details));
	assert_true(jsonx_int_range(o, "big", 0, LLONG_MAX, &v, &present, details));
	assert_true(v == LLONG_MAX);
	assert_true(jsonx_int_range(o, "small", LLONG_MIN, 0, &v, &present, details));
	assert_true(v == LLONG_MIN);

	assert_false(jsonx_int_range(o, "s", 1, 10, &v, &present, details));
	assert_string_equal(reason(details, "s"), "must be an integer");
	assert_false(jsonx_int_range(o, "r", 1, 10, &v, &present, details));
	assert_string_equal(reason(details, "r"), "must be an integer");
	assert_false(jsonx_int_range(o, "b", 0, 1, &v, &present, details));
	json_decref(o);
	json_decref(details);
}

static void test_string_len(void **state)
{
	(void)state;
	/* "héllo" is 6 bytes but 5 characters; the emoji is 4 bytes, 1 character. */
	json_t *o = obj("{\"name\":\"h\\u00e9llo\",\"emoji\":\"\\ud83d\\ude00\",\"empty\":\"\","
	                "\"num\":5,\"nul\":null,\"jp\":\"\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e\"}");
	json_t *details = json_object();
	const char *out = NULL;

	assert_true(jsonx_string_len(o, "name", 5, 5, &out, details));
	assert_string_equal(out, "h\xc3\xa9llo");
	assert_false(jsonx_string_len(o, "name", 1, 4, &out, details));
	assert_non_null(reason(details, "name"));
	assert_false(jsonx_string_len(o, "name", 6, 100, &out, details));

	assert_true(jsonx_string_len(o, "emoji", 1, 1, &out, details));
	assert_int_equal(strlen(out), 4);
	assert_true(jsonx_string_len(o, "jp", 3, 3, &out, details));
	assert_false(jsonx_string_len(o, "jp", 1, 2, &out, details));

	assert_false(jsonx_string_len(o, "empty", 1, 10, &out, details));
	assert_true(jsonx_string_len(o, "empty", 0, 10, &out, details));
	assert_string_equal(out, "");

	out = "sentinel";
	assert_true(jsonx_string_len(o, "absent", 1, 10, &out, details));
	assert_null(out);
	out = "sentinel";
	assert_true(jsonx_string_len(o, "nul", 1, 10, &out, details));
	assert_null(out);

	assert_false(jsonx_string_len(o, "num", 0, 10, &out, details));
	assert_string_equal(reason(details, "num"), "must be a string");
	json_decref(o);
	json_decref(details);
}

static void test_string_len_rejects_nul(void **state)
{
	(void)state;
	/* jansson keeps "a\u0000b" only when built by hand (the parser refuses it above). */
	json_t *o = json_object();
	json_object_set_new(o, "name", json_stringn("a\0b", 3));
	json_t *details = json_object();
	const char *out = NULL;
	assert_false(jsonx_string_len(o, "name", 0, 100, &out, details));
	assert_non_null(reason(details, "name"));
	assert_non_null(strstr(reason(details, "name"), "NUL"));
	json_decref(o);
	json_decref(details);
}

static void test_utf8_len(void **state)
{
	(void)state;
	assert_int_equal(jsonx_utf8_len(""), 0);
	assert_int_equal(jsonx_utf8_len("abc"), 3);
	assert_int_equal(jsonx_utf8_len("\xc3\xa9"), 1);
	assert_int_equal(jsonx_utf8_len("\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e"), 3);
	assert_int_equal(jsonx_utf8_len("\xf0\x9f\x98\x80!"), 2);
}

/* s written by jsonx_text_str as jansson dumps it (refused by both when not UTF-8). */
static void assert_str_like_jansson(const char *s)
{
	struct jsonx_text t = {0};
	json_t *v = json_string(s);
	char *want = v ? json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT) : NULL;
	jsonx_text_str(&t, s);
	if (want)
		assert_string_equal(t.data, want);
	else
		assert_true(t.failed);
	free(want);
	json_decref(v);
	jsonx_text_free(&t);
}

static void test_text_str_like_jansson(void **state)
{
	(void)state;
	static const char *const cases[] = {
		"",
		"plain",
		"quote \" back \\ slash / tab \t nl \n cr \r bs \b ff \f del \x7f",
		"\x01\x1f\x1b",
		"Zürich – 東京 🙂",
		"\xc3",
		"\xc3(",
		"\xc0\xaf",
		"\xe0\x80\xaf",
		"\xed\xa0\x80",
		"\xf4\x90\x80\x80",
		"\xf5\x80\x80\x80",
		"\xf0\x9f\x99",
		"ok\xffok",
	};
	for (size_t i = 0; i < countof(cases); i++)
		assert_str_like_jansson(cases[i]);
	/* Every byte alone, then every byte after and before a two-byte character. */
	for (int c = 1; c < 256; c++) {
		char one[2] = {(char)c, 0}, three[4] = {(char)0xc3, (char)0xa9, (char)c, 0},
		     lead[4] = {(char)c, (char)0xa9, 'x', 0};
		assert_str_like_jansson(one);
		assert_str_like_jansson(three);
		assert_str_like_jansson(lead);
	}
}

static void test_text_pieces(void **state)
{
	(void)state;
	struct jsonx_text t = {0};
	jsonx_text_lit(&t, "[");
	const long long ints[] = {0, 7, -7, 9007199254740991LL, LLONG_MAX, LLONG_MIN};
	for (size_t i = 0; i < countof(ints); i++) {
		jsonx_text_int(&t, ints[i]);
		jsonx_text_lit(&t, ",");
	}
	jsonx_text_str(&t, NULL);
	/* Past the first allocation. */
	for (int i = 0; i < 300; i++)
		jsonx_text_lit(&t, ",\"0123456789\"");
	jsonx_text_lit(&t, "]");
	assert_false(t.failed);
	assert_int_equal(t.len, strlen(t.data));
	json_error_t err;
	json_t *v = json_loads(t.data, 0, &err);
	assert_non_null(v);
	assert_int_equal(json_array_size(v), countof(ints) + 1 + 300);
	assert_int_equal(json_integer_value(json_array_get(v, 4)), LLONG_MAX);
	assert_int_equal(json_integer_value(json_array_get(v, 5)), LLONG_MIN);
	assert_true(json_is_null(json_array_get(v, 6)));
	json_decref(v);
	jsonx_text_free(&t);
	assert_null(t.data);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_ok),
		cmocka_unit_test(test_text_str_like_jansson),
		cmocka_unit_test(test_text_pieces),
		cmocka_unit_test(test_parse_rejects_duplicates),
		cmocka_unit_test(test_parse_rejects_non_objects),
		cmocka_unit_test(test_parse_rejects_malformed),
		cmocka_unit_test(test_parse_rejects_huge_numbers),
		cmocka_unit_test(test_parse_rejects_nul_in_string),
		cmocka_unit_test(test_parse_error_fits_buffer),
		cmocka_unit_test(test_check_valid),
		cmocka_unit_test(test_check_reports_each_problem),
		cmocka_unit_test(test_check_null_for_required),
		cmocka_unit_test(test_check_empty_declaration),
		cmocka_unit_test(test_int_range),
		cmocka_unit_test(test_string_len),
		cmocka_unit_test(test_string_len_rejects_nul),
		cmocka_unit_test(test_utf8_len),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
