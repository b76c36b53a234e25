/* Unit tests of the pure parts of common/src/deliver.c: the backoff with its jitter, the retry
 * window, and hours as configured.  (Claiming, order per key and the outcomes are SQL: see
 * tests/integration/test_webhooks.py.) */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>

#include "deliver.h"

#define BASE 30000LL
#define CAP 3600000LL

static void backoff_doubles_from_the_base(void **state)
{
	(void)state;
	/* u = 0.5: no jitter. */
	assert_int_equal(deliver_backoff_ms(1, BASE, CAP, 0.5), 30000);
	assert_int_equal(deliver_backoff_ms(2, BASE, CAP, 0.5), 60000);
	assert_int_equal(deliver_backoff_ms(3, BASE, CAP, 0.5), 120000);
	assert_int_equal(deliver_backoff_ms(7, BASE, CAP, 0.5), 1920000);
}

static void backoff_is_capped(void **state)
{
	(void)state;
	assert_int_equal(deliver_backoff_ms(8, BASE, CAP, 0.5), CAP);
	assert_int_equal(deliver_backoff_ms(1000, BASE, CAP, 0.5), CAP);
	assert_int_equal(deliver_backoff_ms(2147483647, BASE, CAP, 0.5), CAP);
}

static void jitter_is_twenty_percent_either_way(void **state)
{
	(void)state;
	assert_int_equal(deliver_backoff_ms(1, BASE, CAP, 0), 24000);
	assert_int_equal(deliver_backoff_ms(1, BASE, CAP, 0.999999), 36000);
	assert_int_equal(deliver_backoff_ms(8, BASE, CAP, 0), CAP * 8 / 10);
	/* Out-of-range jitter is clamped, never a negative or huge pause. */
	assert_int_equal(deliver_backoff_ms(1, BASE, CAP, -3), 24000);
	assert_int_equal(deliver_backoff_ms(1, BASE, CAP, 7), 36000);
	for (int i = 0; i <= 100; i++) {
		long long p = deliver_backoff_ms(3, BASE, CAP, i / 101.0);
		assert_true(p >= 96000 && p <= 144000);
	}
}

static void retries_stay_inside_the_window(void **state)
{
	(void)state;
	const long long day = 24LL * 3600000;
	/* Well inside: the backoff. */
	assert_int_equal(deliver_retry_after_ms(1, 1000, BASE, CAP, day, 0.5), 30000);
	/* A pause that would cross the end is cut to reach it exactly. */
	assert_int_equal(deliver_retry_after_ms(20, day - 1000, BASE, CAP, day, 0.5), 1000);
	assert_int_equal(deliver_retry_after_ms(1, 3500, 200, CAP, 3600, 0.5), 100);
	/* At or past the end: given up. */
	assert_int_equal(deliver_retry_after_ms(20, day, BASE, CAP, day, 0.5), -1);
	assert_int_equal(deliver_retry_after_ms(1, day + 1, BASE, CAP, day, 0.5), -1);
}

/* The attempts a row that always fails gets in a 3.6 s window with a 200 ms base: they end at
 * the window's end. */
static void a_failing_row_ends_at_the_window(void **state)
{
	(void)state;
	long long at = 0, window = 3600;
	int attempts = 0;
	for (;;) {
		attempts++;
		long long pause = deliver_retry_after_ms(attempts, at, 200, CAP, window, 0.5);
		if (pause < 0)
			break;
		at += pause;
	}
	assert_int_equal(at, window);
	/* 0, 0.2, 0.6, 1.4, 3.0, 3.6 */
	assert_int_equal(attempts, 6);
}

static void hours_as_configured(void **state)
{
	(void)state;
	char why[128];
	long long ms = 0;
	assert_true(deliver_hours_ms("24", &ms, why, sizeof why));
	assert_int_equal(ms, 86400000);
	assert_true(deliver_hours_ms("0.5", &ms, why, sizeof why));
	assert_int_equal(ms, 1800000);
	assert_true(deliver_hours_ms("0.001", &ms, why, sizeof why));
	assert_int_equal(ms, 3600);
	assert_true(deliver_hours_ms("8760", &ms, why, sizeof why));
	const char *bad[] = {"",    "0",  "-1",  "abc",  "24h",   "8761", "nan",
	                     "inf", " 1", "1e9", "0x10", "1.2.3", ".",    "+1"};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		why[0] = '\0';
		assert_false(deliver_hours_ms(bad[i], &ms, why, sizeof why));
		assert_true(why[0] != '\0');
		assert_false(deliver_hours_valid(bad[i], why, sizeof why));
	}
	assert_false(deliver_hours_ms(NULL, &ms, why, sizeof why));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(backoff_doubles_from_the_base),
		cmocka_unit_test(backoff_is_capped),
		cmocka_unit_test(jitter_is_twenty_percent_either_way),
		cmocka_unit_test(retries_stay_inside_the_window),
		cmocka_unit_test(a_failing_row_ends_at_the_window),
		cmocka_unit_test(hours_as_configured),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
