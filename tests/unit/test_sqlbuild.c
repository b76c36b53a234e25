/* Unit tests of common/src/sqlbuild.c: pieces numbered by the parameters they add. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

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

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_numbers_each_piece_by_its_parameter),
		cmocka_unit_test(test_skipped_filter_changes_the_numbers),
		cmocka_unit_test(test_many_parameters_two_digits),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
