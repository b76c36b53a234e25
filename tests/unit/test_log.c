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

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_long_message_cut_on_character, teardown),
		cmocka_unit_test_teardown(test_ill_formed_message_replaced, teardown),
		cmocka_unit_test_teardown(test_short_message_unchanged, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
