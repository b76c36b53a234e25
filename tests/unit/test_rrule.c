/* Unit tests of common/src/rrule.c: the recurrence rules of recurring reservations — parsing
 * (text and JSON forms), every refusal with its part, the canonical text, the expansion of each
 * form, and python-dateutil's expansion of random rules (rrule_vectors.inc, written by
 * rrule_vectors.py; RRULE_VECTORS=file runs the same check over a file of plain lines). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "countof.h"
#include "rrule.h"

static struct rrule_date date_of(const char *ymd)
{
	struct rrule_date d;
	if (sscanf(ymd, "%d-%2d-%2d", &d.year, &d.month, &d.day) != 3)
		fail_msg("bad date %s in the test", ymd);
	return d;
}

static const char *stop_name(enum rrule_stop stop)
{
	return stop == RRULE_STOP_END ? "END" : stop == RRULE_STOP_MAX ? "MAX" : "LIMIT";
}

/* rule expanded from dtstart (at start_seconds) with limit and max, as "YYYY-MM-DD …" dates
 * separated by spaces, then " /STOP". */
static char *expand(const struct rrule *rule, const char *dtstart, int start_seconds,
                    const char *limit, size_t max)
{
	static char text[16384];
	static struct rrule_date out[2000];
	enum rrule_stop stop = (enum rrule_stop) - 1;
	assert_true(max <= countof(out));
	size_t n = rrule_expand(rule, date_of(dtstart), start_seconds, date_of(limit), out, max,
	                        &stop);
	assert_true(n <= max);
	size_t len = 0;
	text[0] = '\0';
	for (size_t i = 0; i < n; i++)
		len += (size_t)snprintf(text + len, sizeof text - len, "%04d-%02d-%02d ",
		                        out[i].year, out[i].month, out[i].day);
	snprintf(text + len, sizeof text - len, "/%s", stop_name(stop));
	return text;
}

static struct rrule parsed(const char *text)
{
	struct rrule rule;
	struct rrule_error err;
	if (!rrule_parse_text(text, &rule, &err))
		fail_msg("\"%s\" refused: %s: %s", text, err.part, err.reason);
	return rule;
}

/* The text rule from dtstart 10:00, limit 2199-12-31, at most 100 dates. */
static char *dates(const char *text, const char *dtstart)
{
	struct rrule rule = parsed(text);
	return expand(&rule, dtstart, 36000, "2199-12-31", 100);
}

struct expand_case {
	const char *rule, *dtstart, *want;
};

static void check_cases(const struct expand_case *cases, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		const char *got = dates(cases[i].rule, cases[i].dtstart);
		if (strcmp(got, cases[i].want) != 0)
			fail_msg("%s from %s:\n got  %s\n want %s", cases[i].rule, cases[i].dtstart,
			         got, cases[i].want);
	}
}

static void test_daily_and_weekly(void **state)
{
	(void)state;
	static const struct expand_case cases[] = {
		{"FREQ=DAILY;COUNT=3", "2026-12-30", "2026-12-30 2026-12-31 2027-01-01 /END"},
		{"FREQ=DAILY;INTERVAL=3;COUNT=3", "2027-02-26",
	         "2027-02-26 2027-03-01 2027-03-04 /END"},
		/* BYDAY filters the days of DAILY (2026-12-02 is a Wednesday). */
		{"FREQ=DAILY;BYDAY=MO,FR;COUNT=4", "2026-12-02",
	         "2026-12-04 2026-12-07 2026-12-11 2026-12-14 /END"},
		{"FREQ=DAILY;INTERVAL=2;BYDAY=MO;COUNT=3", "2026-11-30",
	         "2026-11-30 2026-12-14 2026-12-28 /END"},
		/* 2026-12-01 is a Tuesday. */
		{"FREQ=WEEKLY;BYDAY=TU;COUNT=3", "2026-12-01",
	         "2026-12-01 2026-12-08 2026-12-15 /END"},
		/* From a Wednesday the first Tuesday is the next week's. */
		{"FREQ=WEEKLY;BYDAY=TU;COUNT=2", "2026-12-02", "2026-12-08 2026-12-15 /END"},
		/* Without BYDAY: dtstart's weekday. */
		{"FREQ=WEEKLY;COUNT=3", "2026-12-03", "2026-12-03 2026-12-10 2026-12-17 /END"},
		{"FREQ=WEEKLY;BYDAY=FR,MO;COUNT=4", "2026-12-01",
	         "2026-12-04 2026-12-07 2026-12-11 2026-12-14 /END"},
		/* INTERVAL counts weeks from dtstart's (Monday first), across a year's end: the
		 * week of Thursday 2026-12-24 has its Friday only, then every other week. */
		{"FREQ=WEEKLY;INTERVAL=2;BYDAY=MO,FR;COUNT=5", "2026-12-24",
	         "2026-12-25 2027-01-04 2027-01-08 2027-01-18 2027-01-22 /END"},
		/* A Sunday dtstart is the end of its week: MO of that week is before it. */
		{"FREQ=WEEKLY;INTERVAL=2;BYDAY=MO,SU;COUNT=3", "2026-12-06",
	         "2026-12-06 2026-12-14 2026-12-20 /END"},
		{"FREQ=WEEKLY;INTERVAL=52;COUNT=3", "2026-12-31",
	         "2026-12-31 2027-12-30 2028-12-28 /END"},
	};
	check_cases(cases, countof(cases));
}

static void test_monthly(void **state)
{
	(void)state;
	static const struct expand_case cases[] = {
		/* dtstart's day; months without a 31st are skipped (RFC 5545). */
		{"FREQ=MONTHLY;COUNT=4", "2027-01-31",
	         "2027-01-31 2027-03-31 2027-05-31 2027-07-31 /END"},
		{"FREQ=MONTHLY;BYMONTHDAY=31;COUNT=3", "2027-01-01",
	         "2027-01-31 2027-03-31 2027-05-31 /END"},
		{"FREQ=MONTHLY;BYMONTHDAY=-1;COUNT=3", "2027-01-15",
	         "2027-01-31 2027-02-28 2027-03-31 /END"},
		{"FREQ=MONTHLY;BYMONTHDAY=1,-1;COUNT=4", "2027-01-15",
	         "2027-01-31 2027-02-01 2027-02-28 2027-03-01 /END"},
		{"FREQ=MONTHLY;BYMONTHDAY=-31;COUNT=2", "2027-01-15", "2027-03-01 2027-05-01 /END"},
		{"FREQ=MONTHLY;BYDAY=2TU;COUNT=3", "2026-12-01",
	         "2026-12-08 2027-01-12 2027-02-09 /END"},
		{"FREQ=MONTHLY;BYDAY=-1FR;COUNT=3", "2026-12-01",
	         "2026-12-25 2027-01-29 2027-02-26 /END"},
		/* The 5th Monday: only months that have one. */
		{"FREQ=MONTHLY;BYDAY=5MO;COUNT=3", "2026-11-01",
	         "2026-11-30 2027-03-29 2027-05-31 /END"},
		{"FREQ=MONTHLY;BYDAY=-5SU;COUNT=2", "2027-01-01", "2027-01-03 2027-05-02 /END"},
		{"FREQ=MONTHLY;BYDAY=1MO,-1MO;COUNT=4", "2027-02-01",
	         "2027-02-01 2027-02-22 2027-03-01 2027-03-29 /END"},
		/* A plain weekday: every one of the month. */
		{"FREQ=MONTHLY;BYDAY=TU;COUNT=6", "2027-02-20",
	         "2027-02-23 2027-03-02 2027-03-09 2027-03-16 2027-03-23 2027-03-30 /END"},
		/* BYDAY and BYMONTHDAY: the dates that match both (Friday the 13th). */
		{"FREQ=MONTHLY;BYDAY=FR;BYMONTHDAY=13;COUNT=3", "2026-01-01",
	         "2026-02-13 2026-03-13 2026-11-13 /END"},
		{"FREQ=MONTHLY;BYDAY=-1FR;BYMONTHDAY=-1,-2,-3;COUNT=2", "2027-01-01",
	         "2027-01-29 2027-02-26 /END"},
		{"FREQ=MONTHLY;INTERVAL=3;BYDAY=2WE;COUNT=3", "2026-12-20",
	         "2027-03-10 2027-06-09 2027-09-08 /END"},
		/* Leap years: the 29th of February every 12 months only in leap years, and
		 * monthly on the 29th skips February 2027 but not 2028. */
		{"FREQ=MONTHLY;INTERVAL=12;COUNT=3", "2024-02-29",
	         "2024-02-29 2028-02-29 2032-02-29 /END"},
		{"FREQ=MONTHLY;BYMONTHDAY=29;COUNT=4", "2027-01-29",
	         "2027-01-29 2027-03-29 2027-04-29 2027-05-29 /END"},
		{"FREQ=MONTHLY;BYMONTHDAY=29;COUNT=3", "2028-01-30",
	         "2028-02-29 2028-03-29 2028-04-29 /END"},
		{"FREQ=MONTHLY;INTERVAL=12;BYMONTHDAY=-1;COUNT=3", "2099-02-01",
	         "2099-02-28 2100-02-28 2101-02-28 /END"},
	};
	check_cases(cases, countof(cases));
}

static void test_until(void **state)
{
	(void)state;
	struct rrule rule = parsed("FREQ=WEEKLY;BYDAY=TU;UNTIL=20261215");
	/* A date keeps its day whatever the time. */
	assert_string_equal(expand(&rule, "2026-12-01", 86399, "2100-01-01", 10),
	                    "2026-12-01 2026-12-08 2026-12-15 /END");
	assert_string_equal(expand(&rule, "2026-12-16", 0, "2100-01-01", 10), "/END");
	/* A local date-time keeps the dates whose start is at or before it. */
	rule = parsed("FREQ=WEEKLY;BYDAY=TU;UNTIL=20261215T100000");
	assert_string_equal(expand(&rule, "2026-12-01", 36000, "2100-01-01", 10),
	                    "2026-12-01 2026-12-08 2026-12-15 /END");
	assert_string_equal(expand(&rule, "2026-12-01", 36001, "2100-01-01", 10),
	                    "2026-12-01 2026-12-08 /END");
	/* UTC: every date up to the day after (the caller drops what is after the instant). */
	rule = parsed("FREQ=DAILY;UNTIL=20261215T000000Z");
	assert_string_equal(expand(&rule, "2026-12-13", 86399, "2100-01-01", 10),
	                    "2026-12-13 2026-12-14 2026-12-15 2026-12-16 /END");
	/* UNTIL before dtstart: nothing. */
	rule = parsed("FREQ=DAILY;UNTIL=20261201");
	assert_string_equal(expand(&rule, "2026-12-02", 0, "2100-01-01", 10), "/END");
	/* UNTIL decides before limit: a rule that ends stops with END, one that goes on
	 * past limit with LIMIT. */
	rule = parsed("FREQ=MONTHLY;BYMONTHDAY=31;UNTIL=20270501");
	assert_string_equal(expand(&rule, "2027-01-01", 0, "2027-04-30", 10),
	                    "2027-01-31 2027-03-31 /END");
	assert_string_equal(expand(&rule, "2027-01-01", 0, "2027-03-30", 10), "2027-01-31 /LIMIT");
}

static void test_exdate_count_limit_max(void **state)
{
	(void)state;
	/* COUNT counts the rule's dates before EXDATE removes any. */
	struct rrule rule = parsed("FREQ=WEEKLY;BYDAY=TU;COUNT=4;EXDATE=20261208,2026-12-22");
	assert_string_equal(expand(&rule, "2026-12-01", 0, "2100-01-01", 10),
	                    "2026-12-01 2026-12-15 /END");
	/* An EXDATE the rule does not yield changes nothing. */
	rule = parsed("FREQ=WEEKLY;BYDAY=TU;COUNT=2;EXDATE=20261209");
	assert_string_equal(expand(&rule, "2026-12-01", 0, "2100-01-01", 10),
	                    "2026-12-01 2026-12-08 /END");

	rule = parsed("FREQ=DAILY;COUNT=5");
	assert_string_equal(expand(&rule, "2026-12-01", 0, "2100-01-01", 5),
	                    "2026-12-01 2026-12-02 2026-12-03 2026-12-04 2026-12-05 /END");
	assert_string_equal(expand(&rule, "2026-12-01", 0, "2100-01-01", 4),
	                    "2026-12-01 2026-12-02 2026-12-03 2026-12-04 /MAX");
	assert_string_equal(expand(&rule, "2026-12-01", 0, "2100-01-01", 0), "/MAX");
	/* limit is inclusive. */
	assert_string_equal(expand(&rule, "2026-12-01", 0, "2026-12-05", 10),
	                    "2026-12-01 2026-12-02 2026-12-03 2026-12-04 2026-12-05 /END");
	assert_string_equal(expand(&rule, "2026-12-01", 0, "2026-12-04", 10),
	                    "2026-12-01 2026-12-02 2026-12-03 2026-12-04 /LIMIT");
	assert_string_equal(expand(&rule, "2026-12-01", 0, "2026-11-30", 10), "/LIMIT");
	/* max reached and the next date excluded: MAX only when a written date would follow. */
	rule = parsed("FREQ=DAILY;COUNT=3;EXDATE=20261203");
	assert_string_equal(expand(&rule, "2026-12-01", 0, "2100-01-01", 2),
	                    "2026-12-01 2026-12-02 /END");
	rule = parsed("FREQ=DAILY;COUNT=4;EXDATE=20261203");
	assert_string_equal(expand(&rule, "2026-12-01", 0, "2100-01-01", 2),
	                    "2026-12-01 2026-12-02 /MAX");
	assert_string_equal(expand(&rule, "2026-12-01", 0, "2026-12-03", 2),
	                    "2026-12-01 2026-12-02 /LIMIT");
	/* Every date excluded. */
	rule = parsed("FREQ=DAILY;COUNT=2;EXDATE=20261201,20261202");
	assert_string_equal(expand(&rule, "2026-12-01", 0, "2100-01-01", 2), "/END");
}

static void test_rule_that_never_matches_ends(void **state)
{
	(void)state;
	/* Only Aprils, which have no 31st; a Tuesday every 7th day from a Monday: no date, END
	 * (as python-dateutil, which searches up to year 9999), whatever limit is. */
	struct rrule rule = parsed("FREQ=MONTHLY;INTERVAL=12;BYMONTHDAY=31;COUNT=3");
	assert_string_equal(expand(&rule, "2026-04-01", 0, "9999-12-31", 10), "/END");
	assert_string_equal(expand(&rule, "2026-04-01", 0, "2026-04-01", 10), "/END");
	rule = parsed("FREQ=MONTHLY;INTERVAL=7;BYDAY=5FR;BYMONTHDAY=1,2,3,4,5,6,7,8;COUNT=3");
	assert_string_equal(expand(&rule, "2026-04-01", 0, "9999-12-31", 10), "/END");
	rule = parsed("FREQ=DAILY;INTERVAL=7;BYDAY=TU;COUNT=3");
	assert_string_equal(expand(&rule, "2026-11-30", 0, "2026-11-30", 10), "/END");
	rule = parsed("FREQ=DAILY;INTERVAL=7;BYDAY=TU;UNTIL=20300101");
	assert_string_equal(expand(&rule, "2026-11-30", 0, "9999-12-31", 10), "/END");
	/* A rare date is found however far it is: the 29th of February from a February 29th,
	 * every 300 months (25 years: only every 4th of those years is a leap year). */
	rule = parsed("FREQ=MONTHLY;INTERVAL=300;COUNT=3");
	assert_string_equal(expand(&rule, "2024-02-29", 0, "9999-12-31", 10),
	                    "2024-02-29 2124-02-29 2224-02-29 /END");
	assert_string_equal(expand(&rule, "2024-02-29", 0, "2200-01-01", 10),
	                    "2024-02-29 2124-02-29 /LIMIT");
	/* Every 50 years the 29th of February only every 400: seven empty periods between, and
	 * the calendar's cycle is 8 such periods. */
	rule = parsed("FREQ=MONTHLY;INTERVAL=600;COUNT=3");
	assert_string_equal(expand(&rule, "2000-02-29", 0, "9999-12-31", 10),
	                    "2000-02-29 2400-02-29 2800-02-29 /END");
	/* No date after year 9999, whatever limit says. */
	rule = parsed("FREQ=MONTHLY;INTERVAL=1000;COUNT=100000");
	assert_string_equal(expand(&rule, "9000-01-15", 0, "99999-12-31", 10),
	                    "9000-01-15 9083-05-15 9166-09-15 9250-01-15 9333-05-15 9416-09-15 "
	                    "9500-01-15 9583-05-15 9666-09-15 9750-01-15 /MAX");
	assert_string_equal(expand(&rule, "9900-01-15", 0, "99999-12-31", 10),
	                    "9900-01-15 9983-05-15 /END");
	rule = parsed("FREQ=DAILY;COUNT=5");
	assert_string_equal(expand(&rule, "9999-12-30", 0, "9999-12-31", 10),
	                    "9999-12-30 9999-12-31 /END");
	/* Dates past limit that EXDATE removes are no next occurrence. */
	rule = parsed("FREQ=WEEKLY;COUNT=3;EXDATE=20261208,20261215");
	assert_string_equal(expand(&rule, "2026-12-01", 0, "2026-12-07", 10), "2026-12-01 /END");
	rule = parsed("FREQ=WEEKLY;COUNT=4;EXDATE=20261208,20261215");
	assert_string_equal(expand(&rule, "2026-12-01", 0, "2026-12-07", 10), "2026-12-01 /LIMIT");
}

struct refusal {
	const char *text, *part, *reason; /* reason: a piece of the reason */
};

static void check_refusals(const struct refusal *cases, size_t n, bool json)
{
	for (size_t i = 0; i < n; i++) {
		struct rrule rule;
		struct rrule_error err;
		bool ok;
		if (json) {
			json_error_t jerr;
			json_t *value = json_loads(cases[i].text, JSON_DECODE_ANY | JSON_ALLOW_NUL,
			                           &jerr);
			if (!value)
				fail_msg("bad JSON in the test: %s", cases[i].text);
			ok = rrule_parse(value, &rule, &err);
			json_decref(value);
		} else {
			ok = rrule_parse_text(cases[i].text, &rule, &err);
		}
		if (ok)
			fail_msg("accepted %s", cases[i].text);
		if (strcmp(err.part, cases[i].part) != 0 || !strstr(err.reason, cases[i].reason))
			fail_msg("%s: got %s: %s; want %s: …%s…", cases[i].text, err.part,
			         err.reason, cases[i].part, cases[i].reason);
		/* The reason is a sentence that names the part. */
		if (strcmp(err.part, "recurrence") != 0 && strcmp(err.part, "COUNT/UNTIL") != 0 &&
		    !strstr(err.reason, err.part))
			fail_msg("%s: the reason \"%s\" does not name %s", cases[i].text,
			         err.reason, err.part);
	}
}

static void test_text_refusals(void **state)
{
	(void)state;
	static const struct refusal cases[] = {
		{"", "recurrence", "empty"},
		{"RRULE:", "recurrence", "empty"},
		{";FREQ=DAILY;COUNT=1", "recurrence", "empty part"},
		{"FREQ=DAILY;;COUNT=1", "recurrence", "empty part"},
		{"FREQ=DAILY;COUNT=1;;", "recurrence", "empty part"},
		{"COUNT=1", "FREQ", "FREQ is required"},
		{"FREQ=YEARLY;COUNT=1", "FREQ", "FREQ=YEARLY is not supported"},
		{"FREQ=HOURLY;COUNT=1", "FREQ", "FREQ=HOURLY is not supported"},
		{"FREQ=MINUTELY;COUNT=1", "FREQ", "DAILY, WEEKLY or MONTHLY"},
		{"FREQ=SECONDLY;COUNT=1", "FREQ", "DAILY, WEEKLY or MONTHLY"},
		{"FREQ=FORTNIGHTLY;COUNT=1", "FREQ", "\"FORTNIGHTLY\" must be DAILY"},
		{"FREQ=;COUNT=1", "FREQ", "FREQ needs a value"},
		{"FREQ;COUNT=1", "FREQ", "FREQ needs a value"},
		{"FREQ=DAILY;FREQ=DAILY;COUNT=1", "FREQ", "given twice"},
		{"FREQ=DAILY;COUNT=1;COUNT=2", "COUNT", "given twice"},
		{"FREQ=DAILY;BYSETPOS=1;COUNT=1", "BYSETPOS",
	         "BYSETPOS is not supported; supported"},
		{"FREQ=DAILY;BYHOUR=9;COUNT=1", "BYHOUR", "not supported"},
		{"FREQ=DAILY;BYMINUTE=0;COUNT=1", "BYMINUTE", "not supported"},
		{"FREQ=DAILY;BYSECOND=0;COUNT=1", "BYSECOND", "not supported"},
		{"FREQ=DAILY;BYWEEKNO=1;COUNT=1", "BYWEEKNO", "not supported"},
		{"FREQ=DAILY;byyearday=1;COUNT=1", "BYYEARDAY", "not supported"},
		{"FREQ=MONTHLY;BYMONTH=1;COUNT=1", "BYMONTH", "not supported"},
		{"FREQ=DAILY;X-NAME=1;COUNT=1", "X-NAME", "\"X-NAME\" is not an RRULE part"},
		{"FREQ=DAILY; COUNT=1", "recurrence", "unknown part"},
		{"FREQ=DAILY;COUNT=1;DTSTART=20260101", "DTSTART", "not an RRULE part"},
		{"FREQ=DAILY", "COUNT/UNTIL", "COUNT or UNTIL is required"},
		{"FREQ=DAILY;COUNT=1;UNTIL=20270101", "COUNT/UNTIL", "cannot both"},
		{"FREQ=DAILY;COUNT=0", "COUNT", "from 1 to 100000"},
		{"FREQ=DAILY;COUNT=100001", "COUNT", "from 1 to 100000"},
		{"FREQ=DAILY;COUNT=+5", "COUNT", "whole number"},
		{"FREQ=DAILY;COUNT=-5", "COUNT", "whole number"},
		{"FREQ=DAILY;COUNT=5 ", "COUNT", "whole number"},
		{"FREQ=DAILY;COUNT=99999999999999999999999", "COUNT", "whole number"},
		{"FREQ=DAILY;COUNT=1x", "COUNT", "whole number"},
		{"FREQ=DAILY;INTERVAL=0;COUNT=1", "INTERVAL", "from 1 to 1000"},
		{"FREQ=DAILY;INTERVAL=1001;COUNT=1", "INTERVAL", "from 1 to 1000"},
		{"FREQ=DAILY;INTERVAL=+2;COUNT=1", "INTERVAL", "whole number"},
		{"FREQ=DAILY;INTERVAL=;COUNT=1", "INTERVAL", "needs a value"},
		{"FREQ=WEEKLY;BYDAY=XX;COUNT=1", "BYDAY", "\"XX\" is not a weekday"},
		{"FREQ=WEEKLY;BYDAY=MO,,TU;COUNT=1", "BYDAY", "empty item"},
		{"FREQ=WEEKLY;BYDAY=MO,;COUNT=1", "BYDAY", "empty item"},
		{"FREQ=WEEKLY;BYDAY=MO,TU,MO;COUNT=1", "BYDAY", "lists \"MO\" twice"},
		{"FREQ=WEEKLY;BYDAY=MON;COUNT=1", "BYDAY", "not a weekday"},
		{"FREQ=WEEKLY;BYDAY=1MO;COUNT=1", "BYDAY", "only with FREQ=MONTHLY"},
		{"FREQ=DAILY;BYDAY=-1FR;COUNT=1", "BYDAY", "only with FREQ=MONTHLY"},
		{"FREQ=MONTHLY;BYDAY=0MO;COUNT=1", "BYDAY", "outside 1 to 5"},
		{"FREQ=MONTHLY;BYDAY=6MO;COUNT=1", "BYDAY", "outside 1 to 5"},
		{"FREQ=MONTHLY;BYDAY=-6MO;COUNT=1", "BYDAY", "outside 1 to 5"},
		{"FREQ=MONTHLY;BYDAY=-MO;COUNT=1", "BYDAY", "not a weekday"},
		{"FREQ=MONTHLY;BYDAY=+-1MO;COUNT=1", "BYDAY", "not a weekday"},
		{"FREQ=MONTHLY;BYDAY=TU,2TU;COUNT=1", "BYDAY", "cannot mix"},
		{"FREQ=WEEKLY;BYMONTHDAY=1;COUNT=1", "BYMONTHDAY", "only with FREQ=MONTHLY"},
		{"FREQ=DAILY;BYMONTHDAY=1;COUNT=1", "BYMONTHDAY", "only with FREQ=MONTHLY"},
		{"FREQ=MONTHLY;BYMONTHDAY=0;COUNT=1", "BYMONTHDAY", "item 0 is not a day"},
		{"FREQ=MONTHLY;BYMONTHDAY=32;COUNT=1", "BYMONTHDAY", "item 32 is not a day"},
		{"FREQ=MONTHLY;BYMONTHDAY=-32;COUNT=1", "BYMONTHDAY", "item -32 is not a day"},
		{"FREQ=MONTHLY;BYMONTHDAY=1x;COUNT=1", "BYMONTHDAY", "\"1x\" is not a day"},
		{"FREQ=MONTHLY;BYMONTHDAY=1,1;COUNT=1", "BYMONTHDAY", "lists 1 twice"},
		{"FREQ=MONTHLY;BYMONTHDAY=1,,2;COUNT=1", "BYMONTHDAY", "empty item"},
		{"FREQ=DAILY;UNTIL=20270230", "UNTIL", "\"20270230\" must be a date that exists"},
		{"FREQ=DAILY;UNTIL=20270229", "UNTIL", "exists"},
		{"FREQ=DAILY;UNTIL=21000229", "UNTIL", "exists"},
		{"FREQ=DAILY;UNTIL=00000101", "UNTIL", "exists"},
		{"FREQ=DAILY;UNTIL=20271301", "UNTIL", "exists"},
		{"FREQ=DAILY;UNTIL=2027010", "UNTIL", "exists"},
		{"FREQ=DAILY;UNTIL=20270101T", "UNTIL", "exists"},
		{"FREQ=DAILY;UNTIL=20270101T240000", "UNTIL", "exists"},
		{"FREQ=DAILY;UNTIL=20270101T235960", "UNTIL", "exists"},
		{"FREQ=DAILY;UNTIL=20270101T1000", "UNTIL", "exists"},
		{"FREQ=DAILY;UNTIL=20270101T100000+01", "UNTIL", "exists"},
		{"FREQ=DAILY;UNTIL=2027-01-01T100000", "UNTIL", "exists"},
		{"FREQ=DAILY;UNTIL=20270101T10:00:00", "UNTIL", "exists"},
		{"FREQ=DAILY;COUNT=1;EXDATE=20270230", "EXDATE",
	         "\"20270230\" is not a local date"},
		{"FREQ=DAILY;COUNT=1;EXDATE=20270101T100000", "EXDATE", "is not a local date"},
		{"FREQ=DAILY;COUNT=1;EXDATE=20270101,,20270102", "EXDATE", "empty item"},
		{"FREQ=DAILY;COUNT=1;EXDATE=20270101,2027-01-01", "EXDATE", "twice"},
		{"FREQ=WEEKLY;WKST=SU;COUNT=1", "WKST", "only WKST=MO"},
		{"FREQ=WEEKLY;WKST=MO;WKST=MO;COUNT=1", "WKST", "given twice"},
	};
	check_refusals(cases, countof(cases), false);

	/* More items than the arrays hold. */
	char text[RRULE_TEXT_MAX * 2];
	size_t len = (size_t)snprintf(text, sizeof text, "FREQ=DAILY;COUNT=1;EXDATE=");
	struct rrule_date d = {2027, 1, 1};
	long days = rrule_days_from_date(d);
	for (int i = 0; i <= RRULE_MAX_EXDATES; i++) {
		d = rrule_date_from_days(days + i);
		len += (size_t)snprintf(text + len, sizeof text - len, "%s%04d%02d%02d",
		                        i ? "," : "", d.year, d.month, d.day);
	}
	const struct refusal many[] = {{text, "EXDATE", "more than 400 dates"}};
	check_refusals(many, 1, false);
	len = (size_t)snprintf(text, sizeof text, "FREQ=MONTHLY;COUNT=1;BYDAY=");
	for (int i = 0; i <= RRULE_MAX_BYDAY; i++)
		len += (size_t)snprintf(
			text + len, sizeof text - len, "%s%d%s", i ? "," : "",
			(const int[]){1, 2, 3, 4, 5, -1}[i / 7],
			(const char *[]){"MO", "TU", "WE", "TH", "FR", "SA", "SU"}[i % 7]);
	const struct refusal many_days[] = {{text, "BYDAY", "more than 35 items"}};
	check_refusals(many_days, 1, false);
}

static void test_json_refusals(void **state)
{
	(void)state;
	static const struct refusal cases[] = {
		{"42", "recurrence", "an RRULE string"},
		{"null", "recurrence", "an RRULE string"},
		{"[\"FREQ=DAILY;COUNT=1\"]", "recurrence", "an RRULE string"},
		{"\"FREQ=DAILY;COUNT=1\\u0000;COUNT=2\"", "recurrence", "an RRULE string"},
		{"\"FREQ=YEARLY;COUNT=1\"", "FREQ", "not supported"},
		{"{}", "FREQ", "FREQ is required"},
		{"{\"count\": 1}", "FREQ", "FREQ is required"},
		{"{\"freq\": \"YEARLY\", \"count\": 1}", "FREQ", "FREQ=YEARLY is not supported"},
		{"{\"freq\": 1, \"count\": 1}", "FREQ", "FREQ must be a string"},
		{"{\"freq\": \"DAILY\"}", "COUNT/UNTIL", "COUNT or UNTIL is required"},
		{"{\"freq\": \"DAILY\", \"count\": null}", "COUNT/UNTIL", "required"},
		{"{\"freq\": \"DAILY\", \"count\": 1, \"until\": \"2027-01-01\"}", "COUNT/UNTIL",
	         "cannot both"},
		{"{\"freq\": \"DAILY\", \"count\": \"1\"}", "COUNT", "integer from 1 to 100000"},
		{"{\"freq\": \"DAILY\", \"count\": 0}", "COUNT", "integer from 1 to 100000"},
		{"{\"freq\": \"DAILY\", \"count\": 1.0}", "COUNT", "integer"},
		{"{\"freq\": \"DAILY\", \"count\": 100001}", "COUNT", "integer"},
		{"{\"freq\": \"DAILY\", \"count\": 1, \"interval\": 0}", "INTERVAL",
	         "from 1 to 1000"},
		{"{\"freq\": \"DAILY\", \"count\": 1, \"interval\": 9223372036854775807}",
	         "INTERVAL", "from 1 to 1000"},
		{"{\"freq\": \"DAILY\", \"count\": 1, \"bysetpos\": [1]}", "BYSETPOS",
	         "BYSETPOS is not supported"},
		{"{\"freq\": \"DAILY\", \"count\": 1, \"color\": \"red\"}", "color",
	         "\"color\" is not an RRULE part"},
		{"{\"freq\": \"DAILY\", \"count\": 1, \"FREQ\": \"DAILY\"}", "FREQ", "given twice"},
		{"{\"freq\": \"WEEKLY\", \"count\": 1, \"byday\": []}", "BYDAY", "non-empty array"},
		{"{\"freq\": \"WEEKLY\", \"count\": 1, \"byday\": [1]}", "BYDAY",
	         "must be strings"},
		{"{\"freq\": \"WEEKLY\", \"count\": 1, \"byday\": [\"MO,TU\"]}", "BYDAY",
	         "not a weekday"},
		{"{\"freq\": \"WEEKLY\", \"count\": 1, \"byday\": [\"2MO\"]}", "BYDAY",
	         "only with FREQ=MONTHLY"},
		{"{\"freq\": \"WEEKLY\", \"count\": 1, \"byday\": {\"MO\": 1}}", "BYDAY", "array"},
		{"{\"freq\": \"MONTHLY\", \"count\": 1, \"bymonthday\": [\"1\"]}", "BYMONTHDAY",
	         "must be integers"},
		{"{\"freq\": \"MONTHLY\", \"count\": 1, \"bymonthday\": [0]}", "BYMONTHDAY",
	         "item 0 is not"},
		{"{\"freq\": \"MONTHLY\", \"count\": 1, \"bymonthday\": [-9223372036854775807]}",
	         "BYMONTHDAY", "item -9223372036854775807 is not"},
		{"{\"freq\": \"DAILY\", \"count\": 1, \"bymonthday\": 1}", "BYMONTHDAY",
	         "only with FREQ=MONTHLY"},
		{"{\"freq\": \"DAILY\", \"until\": \"2027-02-30\"}", "UNTIL", "exists"},
		{"{\"freq\": \"DAILY\", \"until\": 20270101}", "UNTIL", "must be a string"},
		{"{\"freq\": \"DAILY\", \"count\": 1, \"exdate\": [\"2027-01-01\", 1]}", "EXDATE",
	         "must be strings"},
		{"{\"freq\": \"DAILY\", \"count\": 1, \"exdate\": [\"2027-01-01T10:00:00\"]}",
	         "EXDATE", "not a local date"},
		{"{\"freq\": \"DAILY\", \"count\": 1, \"wkst\": \"SU\"}", "WKST", "only WKST=MO"},
		{"{\"freq\": \"DAILY\\u0000\", \"count\": 1}", "FREQ", "must be a string"},
	};
	check_refusals(cases, countof(cases), true);
}

/* Two rules equal field by field (rrule_parse_* zero the whole struct first). */
static void assert_rules_equal(const struct rrule *a, const struct rrule *b, const char *what)
{
	if (memcmp(a, b, sizeof *a) != 0)
		fail_msg("the rules of %s differ", what);
}

static void test_format_is_canonical_and_parses_back(void **state)
{
	(void)state;
	static const char *const cases[][2] = {
		{"FREQ=WEEKLY;BYDAY=TU;COUNT=10", "FREQ=WEEKLY;BYDAY=TU;COUNT=10"},
		{"RRULE:count=10;byday=tu,th;freq=weekly;interval=2;wkst=mo",
	         "FREQ=WEEKLY;INTERVAL=2;BYDAY=TU,TH;COUNT=10"},
		{"FREQ=DAILY;INTERVAL=1;COUNT=3;", "FREQ=DAILY;COUNT=3"},
		{"FREQ=MONTHLY;BYDAY=+2TU,-1FR,05MO;UNTIL=20270331",
	         "FREQ=MONTHLY;BYDAY=2TU,-1FR,5MO;UNTIL=20270331"},
		{"FREQ=MONTHLY;BYMONTHDAY=+1,-1,031;UNTIL=2027-03-31T10:00:00",
	         "FREQ=MONTHLY;BYMONTHDAY=1,-1,31;UNTIL=20270331T100000"},
		{"UNTIL=20270331t090000z;FREQ=DAILY;BYDAY=SU",
	         "FREQ=DAILY;BYDAY=SU;UNTIL=20270331T090000Z"},
		{"FREQ=DAILY;COUNT=0100000;INTERVAL=1000", "FREQ=DAILY;INTERVAL=1000;COUNT=100000"},
		{"FREQ=DAILY;COUNT=2;EXDATE=20270101,2027-01-02", "FREQ=DAILY;COUNT=2"},
	};
	for (size_t i = 0; i < countof(cases); i++) {
		struct rrule rule = parsed(cases[i][0]), again;
		char text[RRULE_TEXT_MAX];
		int len = rrule_format(&rule, text, sizeof text);
		assert_int_equal(len, strlen(cases[i][1]));
		assert_string_equal(text, cases[i][1]);
		again = parsed(text);
		rule.nexdates = 0;
		memset(rule.exdates, 0, sizeof rule.exdates);
		assert_rules_equal(&rule, &again, cases[i][0]);
		/* Too small a buffer: -1 and an empty string. */
		assert_int_equal(rrule_format(&rule, text, (size_t)len), -1);
		assert_string_equal(text, "");
		assert_int_equal(rrule_format(&rule, text, (size_t)len + 1), len);
		assert_int_equal(rrule_format(&rule, text, 0), -1);
	}
	/* The longest rule fits RRULE_TEXT_MAX with room to spare. */
	char text[RRULE_TEXT_MAX];
	struct rrule rule = parsed(
		"FREQ=MONTHLY;BYDAY=-1MO,-1TU,-1WE,-1TH,-1FR,-1SA,-1SU,-2MO,-2TU,"
		"-2WE,-2TH,-2FR,-2SA,-2SU,-3MO,-3TU,-3WE,-3TH,-3FR,-3SA,-3SU,"
		"-4MO,-4TU,-4WE,-4TH,-4FR,-4SA,-4SU,-5MO,-5TU,-5WE,-5TH,-5FR,"
		"-5SA,-5SU;UNTIL=20270101T000000Z");
	for (int d = 1; d <= 31; d++) {
		rule.bymonthday[rule.nbymonthday++] = -d;
		rule.bymonthday[rule.nbymonthday++] = d;
	}
	assert_in_range(rrule_format(&rule, text, sizeof text), 300, 600);
}

static void test_json_form_equals_text_form(void **state)
{
	(void)state;
	static const char *const cases[][2] = {
		{"{\"freq\": \"WEEKLY\", \"interval\": 2, \"byday\": [\"TU\", \"TH\"], \"count\": 10}",
	         "FREQ=WEEKLY;INTERVAL=2;BYDAY=TU,TH;COUNT=10"},
		{"{\"freq\": \"weekly\", \"byday\": \"TU,TH\", \"count\": 10, \"wkst\": \"MO\"}",
	         "FREQ=WEEKLY;BYDAY=TU,TH;COUNT=10"},
		{"{\"FREQ\": \"MONTHLY\", \"bymonthday\": [1, -1], \"until\": \"2027-03-31\"}",
	         "FREQ=MONTHLY;BYMONTHDAY=1,-1;UNTIL=20270331"},
		{"{\"freq\": \"MONTHLY\", \"bymonthday\": 15, \"until\": \"2027-03-31T10:00:00\"}",
	         "FREQ=MONTHLY;BYMONTHDAY=15;UNTIL=20270331T100000"},
		{"{\"freq\": \"MONTHLY\", \"byday\": [\"2TU\", \"-1FR\"], \"until\": "
	         "\"2027-03-31T09:00:00Z\", \"exdate\": [\"2026-12-22\", \"20270105\"], \"interval\": "
	         "null}",
	         "FREQ=MONTHLY;BYDAY=2TU,-1FR;UNTIL=20270331T090000Z;EXDATE=20261222,20270105"},
		{"{\"freq\": \"DAILY\", \"count\": 3, \"exdate\": \"2026-12-22,2026-12-23\"}",
	         "FREQ=DAILY;COUNT=3;EXDATE=20261222,20261223"},
	};
	for (size_t i = 0; i < countof(cases); i++) {
		json_error_t jerr;
		json_t *obj = json_loads(cases[i][0], 0, &jerr);
		json_t *str = json_string(cases[i][1]);
		struct rrule from_json, from_text, from_string;
		struct rrule_error err;
		assert_non_null(obj);
		if (!rrule_parse(obj, &from_json, &err))
			fail_msg("%s refused: %s: %s", cases[i][0], err.part, err.reason);
		assert_true(rrule_parse(str, &from_string, &err));
		from_text = parsed(cases[i][1]);
		assert_rules_equal(&from_json, &from_text, cases[i][0]);
		assert_rules_equal(&from_string, &from_text, cases[i][1]);
		json_decref(obj);
		json_decref(str);
	}
}

static void test_days(void **state)
{
	(void)state;
	assert_int_equal(rrule_days_from_date((struct rrule_date){1970, 1, 1}), 0);
	assert_int_equal(rrule_days_from_date((struct rrule_date){1969, 12, 31}), -1);
	assert_int_equal(rrule_days_from_date((struct rrule_date){2000, 3, 1}), 11017);
	assert_int_equal(rrule_days_from_date((struct rrule_date){2026, 12, 1}), 20788);
	assert_int_equal(rrule_weekday((struct rrule_date){1970, 1, 1}), 3);  /* Thursday */
	assert_int_equal(rrule_weekday((struct rrule_date){2026, 12, 1}), 1); /* Tuesday */
	assert_int_equal(rrule_weekday((struct rrule_date){1969, 12, 29}), 0);
	assert_int_equal(rrule_weekday((struct rrule_date){1, 1, 1}), 0);
	assert_int_equal(rrule_weekday((struct rrule_date){9999, 12, 31}), 4);
	/* The inverse, and one day after the other, from year 1 to 9999. */
	long first = rrule_days_from_date((struct rrule_date){1, 1, 1});
	long last = rrule_days_from_date((struct rrule_date){9999, 12, 31});
	struct rrule_date prev = {0, 12, 31};
	for (long days = first; days <= last; days++) {
		struct rrule_date d = rrule_date_from_days(days);
		bool next_day = d.year == prev.year && d.month == prev.month &&
		                d.day == prev.day + 1;
		bool next_month = d.year == prev.year && d.month == prev.month + 1 && d.day == 1;
		bool next_year = d.year == prev.year + 1 && d.month == 1 && d.day == 1;
		if (!(next_day || next_month || next_year) || rrule_days_from_date(d) != days)
			fail_msg("day %ld: %d-%d-%d after %d-%d-%d", days, d.year, d.month, d.day,
			         prev.year, prev.month, prev.day);
		prev = d;
	}
}

/* ---- the oracle's vectors ---- */

static const char *const vectors[] = {
#include "rrule_vectors.inc"
};

/* One vector line (rrule_vectors.py): expands its rule from both forms and compares. */
static void check_vector(const char *line, size_t lineno)
{
	char text[8192], json_text[8192], start[16], limit[16], stop_text[8];
	static char offsets[65536];
	int secs;
	size_t max;
	if (sscanf(line, "%8191[^\t]\t%8191[^\t]\t%15[^\t]\t%d\t%15[^\t]\t%zu\t%7[^\t]\t%65535s",
	           text, json_text, start, &secs, limit, &max, stop_text, offsets) != 8)
		fail_msg("vector %zu: cannot read \"%s\"", lineno, line);
	struct rrule rule = parsed(text), from_json;
	struct rrule_error err;
	json_error_t jerr;
	json_t *obj = json_loads(json_text, 0, &jerr);
	assert_non_null(obj);
	if (!rrule_parse(obj, &from_json, &err))
		fail_msg("vector %zu: %s refused: %s", lineno, json_text, err.reason);
	json_decref(obj);
	assert_rules_equal(&rule, &from_json, text);

	struct rrule_date dtstart, last, out[100];
	assert_int_equal(sscanf(start, "%4d%2d%2d", &dtstart.year, &dtstart.month, &dtstart.day),
	                 3);
	assert_int_equal(sscanf(limit, "%4d%2d%2d", &last.year, &last.month, &last.day), 3);
	assert_true(max <= countof(out));
	enum rrule_stop stop;
	size_t n = rrule_expand(&rule, dtstart, secs, last, out, max, &stop);
	char got[65536];
	size_t len = 0;
	long prev = rrule_days_from_date(dtstart);
	for (size_t i = 0; i < n; i++) {
		long days = rrule_days_from_date(out[i]);
		len += (size_t)snprintf(got + len, sizeof got - len, "%s%ld", i ? "," : "",
		                        days - prev);
		prev = days;
	}
	if (n == 0)
		snprintf(got, sizeof got, "-");
	if (strcmp(got, offsets) != 0 || strcmp(stop_name(stop), stop_text) != 0)
		fail_msg("vector %zu: %s from %s (%d s), limit %s, max %zu:\n got  %s %s\n want "
		         "%s %s (python-dateutil)",
		         lineno, text, start, secs, limit, max, got, stop_name(stop), offsets,
		         stop_text);
}

static void test_dateutil_vectors(void **state)
{
	(void)state;
	const char *path = getenv("RRULE_VECTORS");
	if (!path) {
		for (size_t i = 0; i < countof(vectors); i++)
			check_vector(vectors[i], i + 1);
		print_message("%zu rules as python-dateutil expands them\n", countof(vectors));
		return;
	}
	FILE *f = fopen(path, "r");
	static char line[1 << 17];
	size_t n = 0;
	if (!f)
		fail_msg("cannot open RRULE_VECTORS=%s", path);
	while (fgets(line, sizeof line, f)) {
		line[strcspn(line, "\n")] = '\0';
		check_vector(line, ++n);
	}
	fclose(f);
	print_message("%zu rules from %s as python-dateutil expands them\n", n, path);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_daily_and_weekly),
		cmocka_unit_test(test_monthly),
		cmocka_unit_test(test_until),
		cmocka_unit_test(test_exdate_count_limit_max),
		cmocka_unit_test(test_rule_that_never_matches_ends),
		cmocka_unit_test(test_text_refusals),
		cmocka_unit_test(test_json_refusals),
		cmocka_unit_test(test_format_is_canonical_and_parses_back),
		cmocka_unit_test(test_json_form_equals_text_form),
		cmocka_unit_test(test_days),
		cmocka_unit_test(test_dateutil_vectors),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
