/* Unit tests of common/src/log.c: one JSON object per line, whatever bytes the message quotes
 * (issue 11 item 13: a message cut inside a character, or quoting ill-formed UTF-8, made jansson
 * refuse the line and it was never written). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "encoding.h"
#include "log.h"

#define ELLIPSIS "\xe2\x80\xa6"

/* The lines written while stderr went to a temporary file, as one array of parsed objects:
 * a line that is not well-formed UTF-8 JSON fails the test. */
static json_t *captured;
static FILE *capture_file;
static int saved_stderr = -1;

static void capture_start(void)
{
	fflush(stderr);
	capture_file = tmpfile();
	assert_non_null(capture_file);
	saved_stderr = dup(STDERR_FILENO);
	assert_true(saved_stderr >= 0);
	assert_true(dup2(fileno(capture_file), STDERR_FILENO) >= 0);
}

static void capture_stop(void)
{
	char line[8192];
	fflush(stderr);
	assert_true(dup2(saved_stderr, STDERR_FILENO) >= 0);
	close(saved_stderr);
	json_decref(captured);
	captured = json_array();
	rewind(capture_file);
	while (fgets(line, sizeof line, capture_file)) {
		size_t n = strlen(line);
		assert_true(n > 0 && line[n - 1] == '\n');
		if (!enc_utf8_valid(line, n))
			fail_msg("log line is not UTF-8: %s", line);
		json_error_t err;
		json_t *v = json_loadb(line, n, 0, &err);
		if (!json_is_object(v))
			fail_msg("log line is not a JSON object (%s): %s", err.text, line);
		json_array_append_new(captured, v);
	}
	fclose(capture_file);
	capture_file = NULL;
}

static const char *line_msg(size_t i)
{
	return json_string_value(json_object_get(json_array_get(captured, i), "msg"));
}

static int teardown(void **state)
{
	(void)state;
	json_decref(captured);
	captured = NULL;
	return 0;
}

/* A message longer than LOG_MSG_MAX is cut after a whole character, never inside one, for
 * characters of every width and cuts at every offset. */
static void test_long_message_cut_on_character(void **state)
{
	(void)state;
	static const char *const chars[] = {"\xc3\xa9", "\xe2\x82\xac", "\xf0\x9f\x98\x80"};
	char text[LOG_MSG_MAX * 2 + 8];
	log_init("test", LOG_LEVEL_DEBUG);
	capture_start();
	for (size_t c = 0; c < 3; c++) {
		size_t w = strlen(chars[c]);
		for (size_t shift = 0; shift < w; shift++) {
			memset(text, 'x', shift);
			size_t len = shift;
			while (len + w < sizeof text) {
				memcpy(text + len, chars[c], w);
				len += w;
			}
			text[len] = '\0';
			log_write(LOG_LEVEL_INFO, NULL, "%s", text);
		}
	}
	capture_stop();
	assert_int_equal(json_array_size(captured), 2 + 3 + 4); /* one line per shift */
	for (size_t i = 0; i < json_array_size(captured); i++) {
		const char *msg = line_msg(i);
		assert_non_null(msg);
		size_t n = strlen(msg);
		assert_true(n < LOG_MSG_MAX);
		assert_true(n > LOG_MSG_MAX - 8);
		assert_string_equal(msg + n - 3, ELLIPSIS);
	}
}

/* Ill-formed bytes in the message (a decoded "%FF" path, a server's error text) are replaced,
 * and the line keeps its other members. */
static void test_ill_formed_message_replaced(void **state)
{
	(void)state;
	log_init("test", LOG_LEVEL_DEBUG);
	log_set_request_id("rid-utf8");
	capture_start();
	log_write(LOG_LEVEL_WARN, json_pack("{s:i}", "status", 404), "no such path /rooms/%s",
	          "\xff\xc3(");
	log_warn("cut: %s", "\xe2\x82");
	capture_stop();
	log_set_request_id(NULL);
	assert_int_equal(json_array_size(captured), 2);
	json_t *line = json_array_get(captured, 0);
	assert_string_equal(line_msg(0), "no such path /rooms/\xef\xbf\xbd\xef\xbf\xbd(");
	assert_string_equal(json_string_value(json_object_get(line, "request_id")), "rid-utf8");
	assert_string_equal(json_string_value(json_object_get(line, "level")), "warn");
	assert_int_equal(json_integer_value(json_object_get(line, "status")), 404);
	assert_string_equal(line_msg(1), "cut: \xef\xbf\xbd");
}

/* A message that fits is written as it is. */
static void test_short_message_unchanged(void **state)
{
	(void)state;
	log_init("test", LOG_LEVEL_DEBUG);
	capture_start();
	log_info("caf\xc3\xa9 %d \xf0\x9f\x98\x80", 42);
	capture_stop();
	assert_int_equal(json_array_size(captured), 1);
	assert_string_equal(line_msg(0), "caf\xc3\xa9 42 \xf0\x9f\x98\x80");
}

/* The raw text of the lines written by fn(arg) with stderr redirected, each from its "level"
 * key on (the timestamps before it differ between two calls). */
static char *raw_lines(void (*fn)(const void *), const void *arg)
{
	char line[65536];
	static char out[1 << 18];
	size_t used = 0;
	fflush(stderr);
	FILE *f = tmpfile();
	assert_non_null(f);
	int saved = dup(STDERR_FILENO);
	assert_true(saved >= 0 && dup2(fileno(f), STDERR_FILENO) >= 0);
	fn(arg);
	fflush(stderr);
	assert_true(dup2(saved, STDERR_FILENO) >= 0);
	close(saved);
	rewind(f);
	while (fgets(line, sizeof line, f)) {
		const char *from = strstr(line, "\"level\"");
		assert_non_null(from);
		size_t n = strlen(from);
		assert_true(used + n < sizeof out);
		memcpy(out + used, from, n);
		used += n;
	}
	out[used] = '\0';
	fclose(f);
	return strdup(out);
}

struct fields_case {
	const char *str;
	long long num;
	double real;
};

static void write_with_jansson(const void *arg)
{
	const struct fields_case *c = arg;
	log_write(LOG_LEVEL_INFO,
	          json_pack("{s:s, s:I, s:f}", "text", c->str, "n", (json_int_t)c->num, "ms",
	                    c->real),
	          "%s", "request");
}

static void write_without_heap(const void *arg)
{
	const struct fields_case *c = arg;
	const struct log_field f[] = {
		{.key = "text", .type = LOG_FIELD_STR, .str = c->str},
		{.key = "n", .type = LOG_FIELD_INT, .num = c->num},
		{.key = "ms", .type = LOG_FIELD_REAL, .real = c->real},
	};
	log_write_fields(LOG_LEVEL_INFO, "request", f, 3);
}

/* log_write_fields writes what log_write with a jansson object writes, byte for byte: strings
 * with every control character, quotes, backslashes and UTF-8; integers; reals of every shape
 * (%.6g, ".0", exponents); a line too long for its buffer (the jansson fallback); with and
 * without a request id. */
static void test_fields_line_equals_jansson_line(void **state)
{
	(void)state;
	static char controls[40], long_text[20000];
	for (int i = 1; i < 32; i++)
		controls[i - 1] = (char)i;
	memcpy(controls + 31, "\"\\/\x7f", 4);
	memset(long_text, '\n', sizeof long_text - 1);
	const struct fields_case cases[] = {
		{"/rooms/42", 200, 0.123},
		{controls, -9223372036854775807LL - 1, 0.0},
		{"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80 \xef\xbf\xbd", 9223372036854775807LL,
	         1.0},
		{"", 0, 0.001},
		{"x", 1, 0.00001234},
		{"x", 1, 1234567.0},
		{"x", 1, 12345.678901},
		{"x", 1, 1e21},
		{"x", 1, 1.5e-300},
		{long_text, 404, 3.25},
	};
	log_init("test", LOG_LEVEL_DEBUG);
	for (int with_id = 0; with_id < 2; with_id++) {
		log_set_request_id(with_id ? "req-\"1\"" : NULL);
		for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
			char *want = raw_lines(write_with_jansson, &cases[i]);
			char *got = raw_lines(write_without_heap, &cases[i]);
			assert_true(strlen(want) > 10);
			assert_string_equal(got, want);
			free(want);
			free(got);
		}
	}
	log_set_request_id(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_long_message_cut_on_character, teardown),
		cmocka_unit_test_teardown(test_ill_formed_message_replaced, teardown),
		cmocka_unit_test_teardown(test_short_message_unchanged, teardown),
		cmocka_unit_test_teardown(test_fields_line_equals_jansson_line, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
