/* Unit tests of common/src/timefmt.c: RFC 3339 formatting in UTC and the clocks. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "countof.h"
#include "timefmt.h"
#include "tz.h"

struct ms_case {
	long long ms;
	const char *want;
};

static void test_rfc3339_ms(void **state)
{
	(void)state;
	static const struct ms_case cases[] = {
		{0, "1970-01-01T00:00:00.000Z"},
		{1, "1970-01-01T00:00:00.001Z"},
		{999, "1970-01-01T00:00:00.999Z"},
		{1000, "1970-01-01T00:00:01.000Z"},
		{1795255200123LL, "2026-11-21T10:00:00.123Z"},
		{1795255200000LL, "2026-11-21T10:00:00.000Z"},
		{951782400000LL, "2000-02-29T00:00:00.000Z"},
		{253402300799999LL, "9999-12-31T23:59:59.999Z"},
		/* Before the epoch the milliseconds stay positive and the second goes back. */
		{-1, "1969-12-31T23:59:59.999Z"},
		{-999, "1969-12-31T23:59:59.001Z"},
		{-1000, "1969-12-31T23:59:59.000Z"},
		{-1001, "1969-12-31T23:59:58.999Z"},
		{-86400000LL, "1969-12-31T00:00:00.000Z"},
	};
	for (size_t i = 0; i < countof(cases); i++) {
		char out[TIMEFMT_RFC3339_LEN];
		memset(out, 'x', sizeof out);
		timefmt_rfc3339_ms(cases[i].ms, out);
		assert_string_equal(out, cases[i].want);
	}
}

static void test_rfc3339_s(void **state)
{
	(void)state;
	static const struct ms_case cases[] = {
		{0, "1970-01-01T00:00:00Z"},
		{1795255200LL, "2026-11-21T10:00:00Z"},
		{1795255259LL, "2026-11-21T10:00:59Z"},
		{951782400LL, "2000-02-29T00:00:00Z"},
		{-1, "1969-12-31T23:59:59Z"},
		{253402300799LL, "9999-12-31T23:59:59Z"},
	};
	for (size_t i = 0; i < countof(cases); i++) {
		char out[TIMEFMT_RFC3339_LEN];
		memset(out, 'x', sizeof out);
		timefmt_rfc3339_s(cases[i].ms, out);
		assert_string_equal(out, cases[i].want);
	}
}

/* secs formatted by timefmt_rfc3339_s and _ms (with milliseconds ms) as gmtime_r and snprintf
 * format it (what they did before). */
static void assert_like_gmtime(long long secs, int ms)
{
	struct tm tm;
	time_t t = (time_t)secs;
	assert_non_null(gmtime_r(&t, &tm));
	char want[TIMEFMT_RFC3339_LEN], out[TIMEFMT_RFC3339_LEN];
	snprintf(want, sizeof want, "%04d-%02d-%02dT%02d:%02d:%02dZ", tm.tm_year + 1900,
	         tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
	timefmt_rfc3339_s(secs, out);
	assert_string_equal(out, want);
	snprintf(want, sizeof want, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
	         tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ms);
	timefmt_rfc3339_ms(secs * 1000 + ms, out);
	assert_string_equal(out, want);
}

/* The arithmetic formatting agrees with gmtime_r on every day from year 0 to 9999 (at a varying
 * time of day) and beyond that range, where it hands over to gmtime_r. */
static void test_rfc3339_like_gmtime(void **state)
{
	(void)state;
	const long long first = -62167219200LL, last = 253402300799LL; /* 0000-01-01, 9999-12-31 */
	int i = 0;
	for (long long day = first; day <= last; day += 86400, i++)
		assert_like_gmtime(day + (i * 7919LL) % 86400, i % 1000);
	const long long edges[] = {first,    first - 1,       last,
	                           last + 1, -100000000000LL, 400000000000LL};
	for (size_t k = 0; k < countof(edges); k++)
		assert_like_gmtime(edges[k], 999);
}

static void test_now_ms(void **state)
{
	(void)state;
	/* Not time(): glibc reads a coarse clock for it that can lag CLOCK_REALTIME by a tick. */
	struct timespec a, b;
	clock_gettime(CLOCK_REALTIME, &a);
	long long now = timefmt_now_ms();
	clock_gettime(CLOCK_REALTIME, &b);
	long long before = (long long)a.tv_sec * 1000 + a.tv_nsec / 1000000;
	long long after = (long long)b.tv_sec * 1000 + b.tv_nsec / 1000000 + 1;
	assert_true(now >= before);
	assert_true(now <= after);
}

static void test_mono_us(void **state)
{
	(void)state;
	long long a = timefmt_mono_us();
	struct timespec ts = {0, 2 * 1000 * 1000};
	nanosleep(&ts, NULL);
	long long b = timefmt_mono_us();
	assert_true(b - a >= 2000);
	assert_true(b - a < 10 * 1000 * 1000);
}

static void test_mono_ms_and_sleep(void **state)
{
	(void)state;
	long long a = timefmt_mono_ms(), us = timefmt_mono_us();
	assert_true(a <= us / 1000 && us / 1000 - a <= 1);
	timefmt_sleep_ms(20);
	long long b = timefmt_mono_ms();
	assert_true(b - a >= 20);
	assert_true(b - a < 10 * 1000);
}

static void test_parse_rfc3339(void **state)
{
	(void)state;
	struct timefmt_time t;
	assert_true(timefmt_parse_rfc3339("2026-11-21T10:00:00Z", &t));
	assert_true(t.has_offset);
	assert_int_equal(t.utc, 1795255200LL);
	assert_true(timefmt_parse_rfc3339("2026-11-21T12:00:00+02:00", &t));
	assert_int_equal(t.utc, 1795255200LL);
	assert_true(timefmt_parse_rfc3339("2026-11-21T05:30:00-04:30", &t));
	assert_int_equal(t.utc, 1795255200LL);
	assert_true(timefmt_parse_rfc3339("2026-11-21T10:00:00.000z", &t));
	assert_false(t.has_fraction);
	assert_true(timefmt_parse_rfc3339("2026-11-21T10:00:00.5Z", &t));
	assert_true(t.has_fraction);
	/* No offset: a wall-clock time, kept as given. */
	assert_true(timefmt_parse_rfc3339("2024-02-29T23:59:59", &t));
	assert_false(t.has_offset);
	char local[TIMEFMT_RFC3339_LEN];
	timefmt_local_text(&t, local);
	assert_string_equal(local, "2024-02-29T23:59:59");
	static const char *const bad[] = {
		"",
		"2026-11-21",
		"2026-11-21 10:00:00Z",
		"2026-02-29T10:00:00Z",
		"2026-13-01T00:00:00Z",
		"2026-11-21T24:00:00Z",
		"2026-11-21T10:60:00Z",
		"2026-11-21T10:00:60Z",
		"2026-11-21T10:00:00+2:00",
		"2026-11-21T10:00:00+02",
		"2026-11-21T10:00:00.Z",
		"2026-11-21T10:00:00Zjunk",
		"2026-11-21T10:00:00.1234567890Z",
		"26-11-21T10:00:00Z",
	};
	for (size_t i = 0; i < countof(bad); i++)
		if (timefmt_parse_rfc3339(bad[i], &t))
			fail_msg("accepted \"%s\"", bad[i]);
}

static void test_parse_date(void **state)
{
	(void)state;
	int y, m, d;
	assert_true(timefmt_parse_date("2027-03-28", &y, &m, &d));
	assert_int_equal(y * 10000 + m * 100 + d, 20270328);
	assert_true(timefmt_parse_date("2000-02-29", &y, &m, &d));
	assert_false(timefmt_parse_date("1900-02-29", &y, &m, &d));
	assert_false(timefmt_parse_date("2027-3-28", &y, &m, &d));
	assert_false(timefmt_parse_date("2027-03-28T", &y, &m, &d));
}

static void test_tz_valid(void **state)
{
	(void)state;
	assert_true(tz_valid("UTC"));
	assert_true(tz_valid("Europe/Berlin"));
	assert_true(tz_valid("America/Argentina/Buenos_Aires"));
	assert_true(tz_valid("US/Eastern"));
	static const char *const bad[] = {
		"",          "Mars/Base",  "../etc/passwd",   "/etc/passwd",
		"localtime", "posixrules", "posix/UTC",       "Europe//Berlin",
		"Europe/",   "Europe",     "Europe/Berlin\n", "Europe/Berlin "};
	for (size_t i = 0; i < countof(bad); i++)
		if (tz_valid(bad[i]))
			fail_msg("accepted \"%s\"", bad[i]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rfc3339_ms),
		cmocka_unit_test(test_rfc3339_s),
		cmocka_unit_test(test_rfc3339_like_gmtime),
		cmocka_unit_test(test_parse_rfc3339),
		cmocka_unit_test(test_parse_date),
		cmocka_unit_test(test_tz_valid),
		cmocka_unit_test(test_now_ms),
		cmocka_unit_test(test_mono_us),
		cmocka_unit_test(test_mono_ms_and_sleep),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
