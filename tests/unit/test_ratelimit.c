#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>

#include "ratelimit.h"

static void test_bucket_refills(void **state)
{
	(void)state;
	struct ratelimit *rl = ratelimit_new(60); /* one token per second */
	int after = 0;
	for (int i = 0; i < 60; i++)
		assert_true(ratelimit_take(rl, "10.0.0.1", 1000, &after));
	assert_false(ratelimit_take(rl, "10.0.0.1", 1000, &after));
	assert_int_equal(after, 1);
	/* Another client has its own bucket. */
	assert_true(ratelimit_take(rl, "10.0.0.2", 1000, &after));
	/* Half a second later still empty, a second later one token. */
	assert_false(ratelimit_take(rl, "10.0.0.1", 1500, &after));
	assert_true(ratelimit_take(rl, "10.0.0.1", 2100, &after));
	assert_false(ratelimit_take(rl, "10.0.0.1", 2100, &after));
	/* Never more than the capacity, however long the pause. */
	for (int i = 0; i < 60; i++)
		assert_true(ratelimit_take(rl, "10.0.0.1", 10000000, &after));
	assert_false(ratelimit_take(rl, "10.0.0.1", 10000000, &after));
	ratelimit_free(rl);
}

static void test_disabled_and_slow_rates(void **state)
{
	(void)state;
	int after = 0;
	struct ratelimit *off = ratelimit_new(0);
	for (int i = 0; i < 1000; i++)
		assert_true(ratelimit_take(off, "x", 0, &after));
	ratelimit_free(off);
	assert_true(ratelimit_take(NULL, "x", 0, &after));
	struct ratelimit *slow = ratelimit_new(2); /* a token every 30 s */
	assert_true(ratelimit_take(slow, "x", 0, &after));
	assert_true(ratelimit_take(slow, "x", 0, &after));
	assert_false(ratelimit_take(slow, "x", 0, &after));
	assert_int_equal(after, 30);
	ratelimit_free(slow);
}

static void test_table_stays_bounded(void **state)
{
	(void)state;
	struct ratelimit *rl = ratelimit_new(1);
	char key[32];
	int after = 0;
	/* Far more clients than slots: no crash, and a fresh client always gets its first token. */
	for (int i = 0; i < 5 * RATELIMIT_SLOTS; i++) {
		snprintf(key, sizeof key, "192.0.%d.%d", i / 256, i % 256);
		assert_true(ratelimit_take(rl, key, i, &after));
	}
	/* A very long key is truncated, not overflowed. */
	char longkey[200];
	for (size_t i = 0; i < sizeof longkey - 1; i++)
		longkey[i] = 'a';
	longkey[sizeof longkey - 1] = '\0';
	assert_true(ratelimit_take(rl, longkey, 0, &after));
	assert_false(ratelimit_take(rl, longkey, 0, &after));
	ratelimit_free(rl);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bucket_refills),
		cmocka_unit_test(test_disabled_and_slow_rates),
		cmocka_unit_test(test_table_stays_bounded),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
