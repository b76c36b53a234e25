/* Unit tests of common/src/clock.c: the business clock is the real one until a test deployment
 * (TEST_CLOCK) moves it, the offset is refused otherwise and beyond its bounds, the switch
 * warns when on, and readers on other threads never see a torn or mixed value. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "clock.h"
#include "config.h"
#include "countof.h"
#include "log.h"
#include "timefmt.h"

/* |clock - (real + offset)| in ms must stay below this (two readings of the real clock). */
#define SLACK_MS 1000

static void assert_offset_applied(long long offset_s)
{
	long long before = timefmt_now_ms();
	long long ms = clock_now_ms(), s = clock_now_s();
	long long after = timefmt_now_ms();
	assert_true(ms >= before + offset_s * 1000 && ms <= after + offset_s * 1000);
	assert_true(s * 1000 >= before + offset_s * 1000 - SLACK_MS &&
	            s * 1000 <= after + offset_s * 1000);
	assert_int_equal(clock_offset_s(), offset_s);
}

static void test_off_by_default(void **state)
{
	(void)state;
	assert_false(clock_test_enabled());
	assert_false(clock_set_offset_s(3600));
	assert_offset_applied(0);
}

/* The lines written on stderr while fn runs, as one text. */
static char *stderr_of(void (*fn)(void))
{
	static char text[8192];
	fflush(stderr);
	FILE *f = tmpfile();
	assert_non_null(f);
	int saved = dup(STDERR_FILENO);
	assert_true(saved >= 0 && dup2(fileno(f), STDERR_FILENO) >= 0);
	fn();
	fflush(stderr);
	assert_true(dup2(saved, STDERR_FILENO) >= 0);
	close(saved);
	rewind(f);
	size_t n = fread(text, 1, sizeof text - 1, f);
	text[n] = '\0';
	fclose(f);
	return text;
}

static void turn_on(void)
{
	clock_configure(true);
}

static void turn_off(void)
{
	clock_configure(false);
}

static void test_switch_warns_and_resets(void **state)
{
	(void)state;
	log_init("test", LOG_LEVEL_INFO);
	const char *out = stderr_of(turn_on);
	assert_non_null(strstr(out, "\"level\":\"warn\""));
	assert_non_null(strstr(out, "TEST_CLOCK"));
	assert_true(clock_test_enabled());
	assert_true(clock_set_offset_s(-90));
	assert_offset_applied(-90);
	/* Off again: nothing logged, the offset is gone and cannot be set. */
	assert_string_equal(stderr_of(turn_off), "");
	assert_false(clock_test_enabled());
	assert_offset_applied(0);
	assert_false(clock_set_offset_s(60));
	assert_offset_applied(0);
}

static void test_offsets_and_bounds(void **state)
{
	(void)state;
	clock_configure(true);
	static const long long good[] = {
		0, 1, -1, 86400 * 7, CLOCK_MAX_OFFSET_S, -CLOCK_MAX_OFFSET_S};
	for (size_t i = 0; i < countof(good); i++) {
		assert_true(clock_set_offset_s(good[i]));
		assert_offset_applied(good[i]);
	}
	assert_true(clock_set_offset_s(3600));
	assert_false(clock_set_offset_s(CLOCK_MAX_OFFSET_S + 1));
	assert_false(clock_set_offset_s(-CLOCK_MAX_OFFSET_S - 1));
	assert_false(clock_set_offset_s(INT64_MAX));
	assert_offset_applied(3600);
	clock_configure(false);
}

/* Writers flip the offset between two values while readers check that every reading is the
 * real clock plus one of them. */
#define FLIP_A 0LL
#define FLIP_B 100000000LL
static _Atomic bool flipping;

static void *flip(void *arg)
{
	(void)arg;
	for (int i = 0; atomic_load(&flipping); i++)
		clock_set_offset_s(i % 2 ? FLIP_B : FLIP_A);
	return NULL;
}

static void *read_many(void *arg)
{
	long bad = 0;
	for (int i = 0; i < 200000; i++) {
		long long real = timefmt_now_ms(), got = clock_now_ms() - real;
		bool a = got >= FLIP_A * 1000 - SLACK_MS && got <= FLIP_A * 1000 + SLACK_MS;
		bool b = got >= FLIP_B * 1000 - SLACK_MS && got <= FLIP_B * 1000 + SLACK_MS;
		bad += !(a || b);
	}
	*(long *)arg = bad;
	return NULL;
}

static void test_threads_see_whole_values(void **state)
{
	(void)state;
	pthread_t writers[2], readers[2];
	long bad[2] = {-1, -1};
	clock_configure(true);
	atomic_store(&flipping, true);
	for (int i = 0; i < 2; i++)
		assert_int_equal(pthread_create(&writers[i], NULL, flip, NULL), 0);
	for (int i = 0; i < 2; i++)
		assert_int_equal(pthread_create(&readers[i], NULL, read_many, &bad[i]), 0);
	for (int i = 0; i < 2; i++)
		pthread_join(readers[i], NULL);
	atomic_store(&flipping, false);
	for (int i = 0; i < 2; i++)
		pthread_join(writers[i], NULL);
	assert_int_equal(bad[0], 0);
	assert_int_equal(bad[1], 0);
	clock_configure(false);
}

/* The configuration row: TEST_CLOCK, false unless set, refused when not a boolean. */
struct clock_test_cfg {
	bool test_clock;
};

static void test_config_row(void **state)
{
	(void)state;
	static const struct cfg_param params[] = {
		CLOCK_CFG_PARAM(struct clock_test_cfg, test_clock),
	};
	static const struct cfg_table table = {.params = params, .nparams = countof(params)};
	struct clock_test_cfg cfg = {.test_clock = true};
	char err[256];
	unsetenv("TEST_CLOCK");
	assert_true(cfg_load(&table, &cfg, err, sizeof err));
	assert_false(cfg.test_clock);
	setenv("TEST_CLOCK", "true", 1);
	assert_true(cfg_load(&table, &cfg, err, sizeof err));
	assert_true(cfg.test_clock);
	setenv("TEST_CLOCK", "sometimes", 1);
	assert_false(cfg_load(&table, &cfg, err, sizeof err));
	assert_non_null(strstr(err, "TEST_CLOCK"));
	unsetenv("TEST_CLOCK");
	cfg_free(&table, &cfg);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_off_by_default),
		cmocka_unit_test(test_switch_warns_and_resets),
		cmocka_unit_test(test_offsets_and_bounds),
		cmocka_unit_test(test_threads_see_whole_values),
		cmocka_unit_test(test_config_row),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
