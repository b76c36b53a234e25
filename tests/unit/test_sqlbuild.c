/* Unit tests of common/src/sqlbuild.c: pieces numbered by the parameters they add. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "sqlbuild.h"

static void test_numbers_each_piece_by_its_parameter(void **state)
{
	(void)state;
	struct sqlbuild s = {.len = 0};
	sqlbuild_add(&s, "SELECT 1 FROM t WHERE true", NULL);
	sqlbuild_add(&s, " AND a = ?::int", "7");
	sqlbuild_add(&s, " AND (b LIKE ? OR c LIKE ?)", "%x%");
	sqlbuild_add(&s, " LIMIT ?::bigint", "21");
	assert_string_equal(s.text, "SELECT 1 FROM t WHERE true AND a = $1::int "
	                            "AND (b LIKE $2 OR c LIKE $2) LIMIT $3::bigint");
	assert_int_equal(s.len, strlen(s.text));
	assert_int_equal(s.n, 3);
	assert_string_equal(s.params[0], "7");
	assert_string_equal(s.params[1], "%x%");
	assert_string_equal(s.params[2], "21");
}

static void test_skipped_filter_changes_the_numbers(void **state)
{
	(void)state;
	struct sqlbuild s = {.len = 0};
	sqlbuild_add(&s, "SELECT 1 WHERE true", NULL);
	sqlbuild_add(&s, " AND b = ?", "x");
	assert_string_equal(s.text, "SELECT 1 WHERE true AND b = $1");
	assert_int_equal(s.n, 1);
}

static void test_many_parameters_two_digits(void **state)
{
	(void)state;
	struct sqlbuild s = {.len = 0};
	for (int i = 0; i < SQLBUILD_PARAMS_MAX; i++)
		sqlbuild_add(&s, "?,", "v");
	assert_int_equal(s.n, SQLBUILD_PARAMS_MAX);
	assert_non_null(strstr(s.text, "$9,$10,$11,"));
}

/* Each item quoted, '"' and '\' escaped: what PostgreSQL's array input reads back as the items
 * (array_in: a backslash takes the next character as it is inside quotes). */
static void test_text_array_quotes_and_escapes(void **state)
{
	(void)state;
	static const struct {
		const char *items[4];
		size_t n;
		const char *literal;
	} cases[] = {
		{{NULL}, 0, "{}"},
		{{""}, 1, "{\"\"}"},
		{{"a@example.com", "b"}, 2, "{\"a@example.com\",\"b\"}"},
		{{"a\"b", "c\\d"}, 2, "{\"a\\\"b\",\"c\\\\d\"}"},
		{{"x,y", "{z}", " sp ace ", "NULL"}, 4, "{\"x,y\",\"{z}\",\" sp ace \",\"NULL\"}"},
		{{"\\\"", NULL, "}{\\,"}, 3, "{\"\\\\\\\"\",NULL,\"}{\\\\,\"}"},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		char *got = sqlbuild_text_array(cases[i].items, cases[i].n);
		assert_non_null(got);
		assert_string_equal(got, cases[i].literal);
		free(got);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_numbers_each_piece_by_its_parameter),
		cmocka_unit_test(test_skipped_filter_changes_the_numbers),
		cmocka_unit_test(test_many_parameters_two_digits),
		cmocka_unit_test(test_text_array_quotes_and_escapes),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
