/* Unit tests of common/src/ical.c (content lines, TEXT escaping, VTIMEZONE from the TZif footer)
 * and of reservation-service/src/series_ics.c (a series as one VCALENDAR).  The round trip
 * through a real iCalendar parser is tests/offline/test_ical_roundtrip.py. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../reservation-service/src/series_ics.h"
#include "countof.h"
#include "ical.h"
#include "rrule.h"

/* The zoneinfo directory the tests use (TZDIR): copies of a few real zones and made-up TZif
 * files for what tzdata does not have. */
static char zonedir[64];

/* Checks the physical lines of text: CRLF-terminated, at most 75 octets, continuation lines
 * start with one space and never with a UTF-8 continuation byte.  Returns the unfolded text
 * (caller frees), lines separated by "\n". */
static char *unfold_checked(const char *text)
{
	size_t len = strlen(text);
	char *out = malloc(len + 1);
	assert_non_null(out);
	size_t o = 0;
	const char *p = text;
	bool first = true;
	while (*p) {
		const char *eol = strstr(p, "\r\n");
		assert_non_null(eol);
		size_t n = (size_t)(eol - p);
		assert_true(n <= ICAL_LINE_MAX);
		assert_null(memchr(p, '\n', n));
		assert_null(memchr(p, '\r', n));
		if (*p == ' ') {
			assert_false(first);
			assert_true(n >= 2);
			assert_int_not_equal((unsigned char)p[1] & 0xC0, 0x80);
			memcpy(out + o, p + 1, n - 1);
			o += n - 1;
		} else {
			if (!first)
				out[o++] = '\n';
			memcpy(out + o, p, n);
			o += n;
		}
		first = false;
		p = eol + 2;
	}
	out[o] = '\0';
	return out;
}

static void test_fold_ascii(void **state)
{
	(void)state;
	struct ical_text t = {0};
	char value[101];
	memset(value, 'a', 100);
	value[100] = '\0';
	ical_prop(&t, "SUMMARY", value);
	assert_false(t.text.failed);
	/* 8 + 67 octets, then a space and the 33 left. */
	char want[200];
	snprintf(want, sizeof want, "SUMMARY:%.67s\r\n %.33s\r\n", value, value);
	assert_string_equal(t.text.data, want);
	ical_text_free(&t);
}

/* A 300-octet purpose of 2-, 3- and 4-octet characters: no line over 75 octets, no character
 * split, and unfolding gives it back. */
static void test_fold_utf8(void **state)
{
	(void)state;
	char purpose[301] = "";
	static const char *const pieces[] = {"\xc3\xa4", "\xe2\x82\xac", "\xf0\x9f\x98\x80", "x"};
	size_t n = 0;
	for (size_t i = 0; n < 300; i++) {
		const char *pc = pieces[i % countof(pieces)];
		size_t pl = strlen(pc);
		if (n + pl > 300)
			pc = "x", pl = 1;
		memcpy(purpose + n, pc, pl);
		n += pl;
	}
	purpose[n] = '\0';
	assert_int_equal(strlen(purpose), 300);
	struct ical_text t = {0};
	ical_prop_text(&t, "SUMMARY", purpose);
	assert_false(t.text.failed);
	char *unfolded = unfold_checked(t.text.data);
	char want[320];
	snprintf(want, sizeof want, "SUMMARY:%s", purpose);
	assert_string_equal(unfolded, want);
	/* Folded more than 3 times: 308 octets need 5 physical lines. */
	size_t lines = 0;
	for (const char *p = t.text.data; (p = strstr(p, "\r\n")) != NULL; p += 2)
		lines++;
	assert_int_equal(lines, 5);
	free(unfolded);
	ical_text_free(&t);
}

static void test_escape(void **state)
{
	(void)state;
	struct ical_text t = {0};
	ical_prop_text(&t, "DESCRIPTION", "a,b;c\\d\ne\r\nf\rg\x01h\ti\x7fj\xc3\xa4");
	assert_false(t.text.failed);
	assert_string_equal(t.text.data, "DESCRIPTION:a\\,b\\;c\\\\d\\ne\\nf\\ngh\tij\xc3\xa4\r\n");
	ical_text_free(&t);

	/* Not UTF-8: failed, as jsonx_text_str. */
	static const char *const bad[] = {"a\xff", "\xc3", "\xc0\xaf", "\xed\xa0\x80"};
	for (size_t i = 0; i < countof(bad); i++) {
		struct ical_text b = {0};
		ical_prop_text(&b, "SUMMARY", bad[i]);
		assert_true(b.text.failed);
		ical_text_free(&b);
	}
}

/* An escape ("\n", "\,") is never split by a fold. */
static void test_escape_not_split(void **state)
{
	(void)state;
	for (size_t pad = 60; pad < 80; pad++) {
		char value[128];
		memset(value, 'x', pad);
		strcpy(value + pad, ",\n,");
		struct ical_text t = {0};
		ical_prop_text(&t, "X", value);
		assert_false(t.text.failed);
		for (const char *p = t.text.data; (p = strstr(p, "\r\n ")) != NULL; p += 3)
			assert_int_not_equal(p[-1], '\\');
		char *unfolded = unfold_checked(t.text.data);
		char want[160];
		snprintf(want, sizeof want, "X:%.*s\\,\\n\\,", (int)pad, value);
		assert_string_equal(unfolded, want);
		free(unfolded);
		ical_text_free(&t);
	}
}

/* Review 14c L9: a CN keeps the name as written, in RFC 6868's encoding (^' ^n ^^), and no
 * value can end the parameter or the line. */
static void test_cal_address_cn(void **state)
{
	(void)state;
	struct {
		const char *cn, *want;
	} cases[] = {
		{"Ann \"The Boss\" Smith",
	         "ATTENDEE;RSVP=TRUE;CN=\"Ann ^'The Boss^' Smith\":mailto:a@example.com"},
		{"a^b^^", "ATTENDEE;RSVP=TRUE;CN=\"a^^b^^^^\":mailto:a@example.com"},
		{"two\r\nlines\nand\rmore",
	         "ATTENDEE;RSVP=TRUE;CN=\"two^nlines^nand^nmore\":mailto:a@example.com"},
		{"tab\there\x7f", "ATTENDEE;RSVP=TRUE;CN=\"tab here \":mailto:a@example.com"},
		{"A\"B:C;D,E\r\nATTENDEE:mailto:x@evil.com",
	         "ATTENDEE;RSVP=TRUE;CN=\"A^'B:C;D,E^nATTENDEE:mailto:x@evil.com\":mailto:a@example.com"},
		{"Jürgen", "ATTENDEE;RSVP=TRUE;CN=\"Jürgen\":mailto:a@example.com"},
		{"", "ATTENDEE;RSVP=TRUE:mailto:a@example.com"},
	};
	for (size_t i = 0; i < countof(cases); i++) {
		struct ical_text t = {0};
		ical_prop_cal_address(&t, "ATTENDEE", ";RSVP=TRUE", cases[i].cn, "a@example.com");
		assert_false(t.text.failed);
		char *line = unfold_checked(t.text.data);
		assert_string_equal(line, cases[i].want);
		free(line);
		ical_text_free(&t);
	}
}

static void test_datetimes(void **state)
{
	(void)state;
	char out[ICAL_DATETIME_LEN];
	ical_utc(1773738000, out);
	assert_string_equal(out, "20260317T090000Z");
	ical_utc(0, out);
	assert_string_equal(out, "19700101T000000Z");
	assert_true(ical_local("2026-03-17T10:00:00", out));
	assert_string_equal(out, "20260317T100000");
	static const char *const bad[] = {"2026-03-17 10:00:00", "2026-03-17T10:00", "",
	                                  "2026-03-17T10:00:00Z", "2026-3-17T10:00:00"};
	for (size_t i = 0; i < countof(bad); i++)
		assert_false(ical_local(bad[i], out));

	struct ical_text t = {0};
	ical_prop_utc(&t, "DTSTAMP", 1773738000);
	assert_true(ical_prop_local(&t, "DTSTART", "Europe/Berlin", "2026-03-17T10:00:00"));
	assert_false(ical_prop_local(&t, "DTEND", "Europe/Berlin", "2026-03-17 11:00:00"));
	assert_false(t.text.failed);
	assert_string_equal(t.text.data, "DTSTAMP:20260317T090000Z\r\n"
	                                 "DTSTART;TZID=Europe/Berlin:20260317T100000\r\n");
	ical_text_free(&t);
}

struct zone_case {
	const char *zone, *want;
};

static void test_vtimezone(void **state)
{
	(void)state;
	static const struct zone_case cases[] = {
		{"Europe/Berlin", "BEGIN:VTIMEZONE\r\nTZID:Europe/Berlin\r\n"
	                          "BEGIN:STANDARD\r\nTZOFFSETFROM:+0200\r\nTZOFFSETTO:+0100\r\n"
	                          "TZNAME:CET\r\nDTSTART:19701025T030000\r\n"
	                          "RRULE:FREQ=YEARLY;BYMONTH=10;BYDAY=-1SU\r\nEND:STANDARD\r\n"
	                          "BEGIN:DAYLIGHT\r\nTZOFFSETFROM:+0100\r\nTZOFFSETTO:+0200\r\n"
	                          "TZNAME:CEST\r\nDTSTART:19700329T020000\r\n"
	                          "RRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=-1SU\r\nEND:DAYLIGHT\r\n"
	                          "END:VTIMEZONE\r\n"},
		{"America/New_York", "BEGIN:VTIMEZONE\r\nTZID:America/New_York\r\n"
	                             "BEGIN:STANDARD\r\nTZOFFSETFROM:-0400\r\nTZOFFSETTO:-0500\r\n"
	                             "TZNAME:EST\r\nDTSTART:19701101T020000\r\n"
	                             "RRULE:FREQ=YEARLY;BYMONTH=11;BYDAY=1SU\r\nEND:STANDARD\r\n"
	                             "BEGIN:DAYLIGHT\r\nTZOFFSETFROM:-0500\r\nTZOFFSETTO:-0400\r\n"
	                             "TZNAME:EDT\r\nDTSTART:19700308T020000\r\n"
	                             "RRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=2SU\r\nEND:DAYLIGHT\r\n"
	                             "END:VTIMEZONE\r\n"},
		{"Asia/Kolkata", "BEGIN:VTIMEZONE\r\nTZID:Asia/Kolkata\r\n"
	                         "BEGIN:STANDARD\r\nTZOFFSETFROM:+0530\r\nTZOFFSETTO:+0530\r\n"
	                         "TZNAME:IST\r\nDTSTART:19700101T000000\r\nEND:STANDARD\r\n"
	                         "END:VTIMEZONE\r\n"},
		{"UTC", "BEGIN:VTIMEZONE\r\nTZID:UTC\r\n"
	                "BEGIN:STANDARD\r\nTZOFFSETFROM:+0000\r\nTZOFFSETTO:+0000\r\n"
	                "TZNAME:UTC\r\nDTSTART:19700101T000000\r\nEND:STANDARD\r\n"
	                "END:VTIMEZONE\r\n"},
		/* Made-up zones with the odd forms tzdata has: a time of 24 h and more or below 0
	     * moves the day (America/Santiago, Asia/Jerusalem, America/Nuuk), across a month's
	     * end as days of the year (Africa/Cairo), a "standard" time above the daylight
	     * one (Europe/Dublin). */
		{"Test/Shift",
	         "BEGIN:VTIMEZONE\r\nTZID:Test/Shift\r\n"
	         "BEGIN:STANDARD\r\nTZOFFSETFROM:-0300\r\nTZOFFSETTO:-0400\r\n"
	         "TZNAME:-04\r\nDTSTART:19700405T000000\r\n"
	         "RRULE:FREQ=YEARLY;BYMONTH=4;BYDAY=SU;BYMONTHDAY=2,3,4,5,6,7,8\r\n"
	         "END:STANDARD\r\n"
	         "BEGIN:DAYLIGHT\r\nTZOFFSETFROM:-0400\r\nTZOFFSETTO:-0300\r\n"
	         "TZNAME:-03\r\nDTSTART:19700328T230000\r\n"
	         "RRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=SA;BYMONTHDAY=-8,-7,-6,-5,-4,-3,-2"
	         "\r\nEND:DAYLIGHT\r\n"
	         "END:VTIMEZONE\r\n"},
		{"Test/Cairo",
	         "BEGIN:VTIMEZONE\r\nTZID:Test/Cairo\r\n"
	         "BEGIN:STANDARD\r\nTZOFFSETFROM:+0300\r\nTZOFFSETTO:+0200\r\n"
	         "TZNAME:EET\r\nDTSTART:19701030T000000\r\n"
	         "RRULE:FREQ=YEARLY;BYDAY=FR;BYYEARDAY=-67,-66,-65,-64,-63,-62,-61\r\n"
	         "END:STANDARD\r\n"
	         "BEGIN:DAYLIGHT\r\nTZOFFSETFROM:+0200\r\nTZOFFSETTO:+0300\r\n"
	         "TZNAME:EEST\r\nDTSTART:19700424T000000\r\n"
	         "RRULE:FREQ=YEARLY;BYMONTH=4;BYDAY=-1FR\r\nEND:DAYLIGHT\r\n"
	         "END:VTIMEZONE\r\n"},
		{"Test/Dublin", "BEGIN:VTIMEZONE\r\nTZID:Test/Dublin\r\n"
	                        "BEGIN:DAYLIGHT\r\nTZOFFSETFROM:+0000\r\nTZOFFSETTO:+0100\r\n"
	                        "TZNAME:IST\r\nDTSTART:19700329T010000\r\n"
	                        "RRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=-1SU\r\nEND:DAYLIGHT\r\n"
	                        "BEGIN:STANDARD\r\nTZOFFSETFROM:+0100\r\nTZOFFSETTO:+0000\r\n"
	                        "TZNAME:GMT\r\nDTSTART:19701025T020000\r\n"
	                        "RRULE:FREQ=YEARLY;BYMONTH=10;BYDAY=-1SU\r\nEND:STANDARD\r\n"
	                        "END:VTIMEZONE\r\n"},
		{"Test/Seconds", "BEGIN:VTIMEZONE\r\nTZID:Test/Seconds\r\n"
	                         "BEGIN:STANDARD\r\nTZOFFSETFROM:+001730\r\nTZOFFSETTO:+001730\r\n"
	                         "TZNAME:LMT\r\nDTSTART:19700101T000000\r\nEND:STANDARD\r\n"
	                         "END:VTIMEZONE\r\n"},
	};
	for (size_t i = 0; i < countof(cases); i++) {
		struct ical_text t = {0};
		ical_lit(&t, "X:"); /* a line in progress is not disturbed */
		ical_end_line(&t);
		assert_true(ical_vtimezone(&t, cases[i].zone));
		assert_false(t.text.failed);
		assert_string_equal(t.text.data + 4, cases[i].want);
		ical_text_free(&t);
	}
}

/* Refused, writing nothing: names tz_valid refuses (never a path), files that are not TZif
 * version 2+, and TZ strings with the Jn or n forms or otherwise malformed. */
static void test_vtimezone_refused(void **state)
{
	(void)state;
	static const char *const zones[] = {
		"../etc/passwd", "/etc/passwd", "posixrules", "Nowhere/Zone", "",
		"Test/Julian",   "Test/Zero",   "Test/V1",    "Test/Short",   "Test/NoRule",
		"Test/Huge",     "Test/BadName"};
	for (size_t i = 0; i < countof(zones); i++) {
		struct ical_text t = {0};
		assert_false(ical_vtimezone(&t, zones[i]));
		assert_int_equal(t.text.len, 0);
		ical_text_free(&t);
	}
}

/* ---- series_ics ---- */

/* Weekly on Tuesdays 10:00 Berlin, 5 times from 2026-03-17 (the DST change is on 03-29): the
 * second cancelled, the third moved to 11:00, the fifth with a purpose of its own. */
static const struct series_ics_occurrence berlin_occ[] = {
	{"2026-03-17T10:00:00", "2026-03-17T10:00:00", 1773738000, 1773741600, true, false, NULL,
         NULL, 0, NULL, 0, false},
	{"2026-03-24T10:00:00", "2026-03-24T10:00:00", 1774342800, 1774346400, false, false, NULL,
         NULL, 0, NULL, 0, false},
	{"2026-03-31T10:00:00", "2026-03-31T11:00:00", 1774947600, 1774951200, true, true, NULL,
         NULL, 0, NULL, 0, false},
	{"2026-04-07T10:00:00", "2026-04-07T10:00:00", 1775548800, 1775552400, true, false, NULL,
         NULL, 0, NULL, 0, false},
	{"2026-04-14T10:00:00", "2026-04-14T10:00:00", 1776153600, 1776157200, true, true,
         "Team, extra", NULL, 0, NULL, 0, false},
};

static struct series_ics berlin_series(struct rrule *rule, const char *text)
{
	struct rrule_error err;
	assert_true(rrule_parse_text(text, rule, &err));
	return (struct series_ics){
		.id = 7,
		.zone = "Europe/Berlin",
		.first_start = "2026-03-17T10:00:00",
		.duration_s = 3600,
		.rule = rule,
		.purpose = "Team",
		.room_name = "Room 1",
		.created_utc = 1773000000,
		.updated_utc = 1773100000,
		.stamp_utc = 1773200000,
		.version = 3,
		.occurrences = berlin_occ,
		.noccurrences = countof(berlin_occ),
	};
}

/* The text after the VTIMEZONE. */
static const char *after_vtimezone(const char *text)
{
	const char *p = strstr(text, "END:VTIMEZONE\r\n");
	assert_non_null(p);
	return p + strlen("END:VTIMEZONE\r\n");
}

static void test_series_berlin(void **state)
{
	(void)state;
	struct rrule rule;
	struct series_ics s = berlin_series(&rule, "FREQ=WEEKLY;BYDAY=TU;COUNT=5");
	struct ical_text t = {0};
	const char *why = "unset";
	assert_true(series_ics_build(&s, &t, &why));
	assert_null(why);
	free(unfold_checked(t.text.data));
	assert_true(strncmp(t.text.data,
	                    "BEGIN:VCALENDAR\r\nVERSION:2.0\r\n"
	                    "PRODID:-//meeting-rooms//reservation-service//EN\r\n"
	                    "CALSCALE:GREGORIAN\r\nMETHOD:PUBLISH\r\n"
	                    "BEGIN:VTIMEZONE\r\nTZID:Europe/Berlin\r\n",
	                    strlen("BEGIN:VCALENDAR\r\n")) == 0);
	assert_string_equal(after_vtimezone(t.text.data),
	                    "BEGIN:VEVENT\r\n"
	                    "UID:series-7@meeting-rooms\r\n"
	                    "DTSTAMP:20260311T033320Z\r\n"
	                    "CREATED:20260308T200000Z\r\n"
	                    "LAST-MODIFIED:20260309T234640Z\r\n"
	                    "SEQUENCE:2\r\n"
	                    "DTSTART;TZID=Europe/Berlin:20260317T100000\r\n"
	                    "DURATION:PT1H\r\n"
	                    "RRULE:FREQ=WEEKLY;BYDAY=TU;COUNT=5\r\n"
	                    "EXDATE;TZID=Europe/Berlin:20260324T100000\r\n"
	                    "SUMMARY:Team\r\n"
	                    "LOCATION:Room 1\r\n"
	                    "STATUS:CONFIRMED\r\n"
	                    "END:VEVENT\r\n"
	                    "BEGIN:VEVENT\r\n"
	                    "UID:series-7@meeting-rooms\r\n"
	                    "DTSTAMP:20260311T033320Z\r\n"
	                    "SEQUENCE:2\r\n"
	                    "RECURRENCE-ID;TZID=Europe/Berlin:20260331T100000\r\n"
	                    "DTSTART:20260331T090000Z\r\n"
	                    "DTEND:20260331T100000Z\r\n"
	                    "SUMMARY:Team\r\n"
	                    "LOCATION:Room 1\r\n"
	                    "STATUS:CONFIRMED\r\n"
	                    "END:VEVENT\r\n"
	                    "BEGIN:VEVENT\r\n"
	                    "UID:series-7@meeting-rooms\r\n"
	                    "DTSTAMP:20260311T033320Z\r\n"
	                    "SEQUENCE:2\r\n"
	                    "RECURRENCE-ID;TZID=Europe/Berlin:20260414T100000\r\n"
	                    "DTSTART:20260414T080000Z\r\n"
	                    "DTEND:20260414T090000Z\r\n"
	                    "SUMMARY:Team\\, extra\r\n"
	                    "LOCATION:Room 1\r\n"
	                    "STATUS:CONFIRMED\r\n"
	                    "END:VEVENT\r\n"
	                    "END:VCALENDAR\r\n");
	ical_text_free(&t);
}

/* The text of the master's line starting with prefix (through its CRLF), or NULL. */
static char *line_of(const char *text, const char *prefix)
{
	const char *p = strstr(text, prefix);
	if (!p)
		return NULL;
	const char *e = strstr(p, "\r\n");
	return strndup(p, (size_t)(e - p));
}

/* The rule's EXDATEs are EXDATE properties; a local UNTIL becomes a COUNT; a cut series ends
 * with UNTIL in UTC one second before the cut; a cancelled series says so. */
static void test_series_rule_forms(void **state)
{
	(void)state;
	/* The occurrences without the one on 04-07 (the rule's EXDATE), and up to 03-31 (a
	 * series cut on 04-07: the later ones cancelled or taken by the new series). */
	static const struct series_ics_occurrence no0407[] = {berlin_occ[0], berlin_occ[1],
	                                                      berlin_occ[2], berlin_occ[4]};
	struct rule_case {
		const char *rule;
		bool has_until;
		long long until_utc;
		const struct series_ics_occurrence *occ;
		size_t nocc;
		const char *want_rrule;
		size_t want_exdates;
	} cases[] = {
		{"FREQ=WEEKLY;BYDAY=TU;COUNT=5;EXDATE=20260407", false, 0, no0407, countof(no0407),
	         "RRULE:FREQ=WEEKLY;BYDAY=TU;COUNT=5", 2},
		{"FREQ=WEEKLY;BYDAY=TU;UNTIL=20260414", false, 0, berlin_occ, countof(berlin_occ),
	         "RRULE:FREQ=WEEKLY;BYDAY=TU;COUNT=5", 1},
		{"FREQ=WEEKLY;BYDAY=TU;UNTIL=20260414T095959", false, 0, berlin_occ, 4,
	         "RRULE:FREQ=WEEKLY;BYDAY=TU;COUNT=4", 1},
		{"FREQ=WEEKLY;BYDAY=TU;UNTIL=20260414T080000Z", false, 0, berlin_occ,
	         countof(berlin_occ), "RRULE:FREQ=WEEKLY;BYDAY=TU;UNTIL=20260414T080000Z", 1},
		/* Cut at the fourth (07 April 10:00 Berlin = 08:00Z): its date is left to the
	     * EXDATEs as well (the expansion cannot tell which side of the cut it falls). */
		{"FREQ=WEEKLY;BYDAY=TU;COUNT=20", true, 1775548800, berlin_occ, 3,
	         "RRULE:FREQ=WEEKLY;BYDAY=TU;UNTIL=20260407T075959Z", 2},
		/* A cut after the rule's own end keeps the rule. */
		{"FREQ=WEEKLY;BYDAY=TU;COUNT=5", true, 1790000000, berlin_occ, countof(berlin_occ),
	         "RRULE:FREQ=WEEKLY;BYDAY=TU;COUNT=5", 1},
	};
	for (size_t i = 0; i < countof(cases); i++) {
		struct rrule rule;
		struct series_ics s = berlin_series(&rule, cases[i].rule);
		s.has_until = cases[i].has_until;
		s.until_utc = cases[i].until_utc;
		s.occurrences = cases[i].occ;
		s.noccurrences = cases[i].nocc;
		s.cancelled = i == 0;
		struct ical_text t = {0};
		const char *why;
		assert_true(series_ics_build(&s, &t, &why));
		char *line = line_of(t.text.data, "RRULE:FREQ=WEEKLY");
		assert_non_null(line);
		assert_string_equal(line, cases[i].want_rrule);
		free(line);
		size_t exdates = 0;
		for (const char *p = t.text.data; (p = strstr(p, "\r\nEXDATE;")) != NULL; p++)
			exdates++;
		assert_int_equal(exdates, cases[i].want_exdates);
		assert_non_null(strstr(t.text.data, i == 0 ? "\r\nSTATUS:CANCELLED\r\nEND:VEVENT"
		                                           : "\r\nSTATUS:CONFIRMED\r\nEND:VEVENT"));
		ical_text_free(&t);
	}
}

/* An occurrence kept from before an edit moved the series' start (10:00 → 11:00 from 04-07):
 * an RDATE of its own. */
static void test_series_rdate(void **state)
{
	(void)state;
	static const struct series_ics_occurrence occ[] = {
		{"2026-03-31T10:00:00", "2026-03-31T10:00:00", 1774944000, 1774947600, true, false,
	         NULL, NULL, 0, NULL, 0, false},
		{"2026-04-07T11:00:00", "2026-04-07T11:00:00", 1775552400, 1775556000, true, false,
	         NULL, NULL, 0, NULL, 0, false},
	};
	struct rrule rule;
	struct series_ics s = berlin_series(&rule, "FREQ=WEEKLY;BYDAY=TU;COUNT=1");
	s.first_start = "2026-04-07T11:00:00";
	s.occurrences = occ;
	s.noccurrences = countof(occ);
	struct ical_text t = {0};
	const char *why;
	assert_true(series_ics_build(&s, &t, &why));
	assert_non_null(strstr(t.text.data, "\r\nRDATE;TZID=Europe/Berlin:20260331T100000\r\n"));
	assert_null(strstr(t.text.data, "EXDATE"));
	assert_null(strstr(t.text.data, "RECURRENCE-ID"));
	ical_text_free(&t);
}

/* An iTIP series (review 14c M1, M2, L2, M6): an override's SEQUENCE is never below its
 * occurrence's own, it carries ORGANIZER and ATTENDEE, a CANCEL writes the master alone with the
 * highest SEQUENCE, and the RECURRENCE-ID of one occurrence is the one its override has. */
/* berlin_series with occurrences occ, as an invitation from alice to people[0..n). */
static struct series_ics itip_series(struct rrule *rule, const struct series_ics_occurrence *occ,
                                     const char *const *people, size_t n)
{
	struct series_ics s = berlin_series(rule, "FREQ=WEEKLY;BYDAY=TU;COUNT=5");
	s.occurrences = occ;
	s.method = "REQUEST";
	s.organizer_email = "alice@example.com";
	s.attendees = people;
	s.nattendees = n;
	return s;
}

static void test_series_itip(void **state)
{
	(void)state;
	static const char *const people[] = {"bob@example.org"};
	struct series_ics_occurrence occ[countof(berlin_occ)];
	memcpy(occ, berlin_occ, sizeof occ);
	occ[2].version = 6; /* changed on its own five times: its mails said SEQUENCE 5 */
	struct rrule rule;
	struct series_ics s = itip_series(&rule, occ, people, 1);
	struct ical_text t = {0};
	const char *why;
	assert_true(series_ics_build(&s, &t, &why));
	const char *o = strstr(t.text.data, "RECURRENCE-ID;TZID=Europe/Berlin:20260331T100000");
	assert_non_null(o);
	const char *begin = o;
	while (strncmp(begin, "BEGIN:VEVENT", 12) != 0)
		begin--;
	assert_non_null(strstr(begin, "SEQUENCE:5\r\n"));
	const char *end = strstr(o, "END:VEVENT");
	const char *org = strstr(o, "ORGANIZER:mailto:alice@example.com");
	const char *att = strstr(o, "\r\nATTENDEE;ROLE=REQ-PARTICIPANT");
	assert_true(org && org < end && att && att < end);
	ical_text_free(&t);

	/* The mail about that occurrence alone names the same instance, also after the series
	 * moved to 11:00 (the occurrence kept its 10:00 original start). */
	char recur[TIMEFMT_RFC3339_LEN];
	assert_true(series_ics_recurrence_id(&s, "2026-03-31T10:00:00", recur, &why));
	assert_string_equal(recur, "2026-03-31T10:00:00");
	s.first_start = "2026-03-17T11:00:00";
	assert_true(series_ics_recurrence_id(&s, "2026-03-31T10:00:00", recur, &why));
	assert_string_equal(recur, "2026-03-31T11:00:00");
	assert_true(series_ics_build(&s, &t, &why));
	assert_non_null(strstr(t.text.data, "RECURRENCE-ID;TZID=Europe/Berlin:20260331T110000"));
	ical_text_free(&t);
	/* A date the rule does not yield keeps its own start (an RDATE of the master). */
	assert_true(series_ics_recurrence_id(&s, "2026-03-18T09:00:00", recur, &why));
	assert_string_equal(recur, "2026-03-18T09:00:00");

	s.method = "CANCEL";
	assert_true(series_ics_build(&s, &t, &why));
	assert_null(strstr(t.text.data, "RECURRENCE-ID"));
	assert_null(strstr(t.text.data, "STATUS:CONFIRMED"));
	assert_non_null(strstr(t.text.data, "\r\nSEQUENCE:5\r\n"));
	ical_text_free(&t);
}

/* How many times needle occurs in text. */
static int count_of(const char *text, const char *needle)
{
	int n = 0;
	for (const char *p = strstr(text, needle); p; p = strstr(p + 1, needle))
		n++;
	return n;
}

/* Written for one recipient (review 14d-A M1, H1): an occurrence whose own attendees leave
 * them out is an EXDATE of their master and has no override (its instance is not given back);
 * the organizer still sees it; a recipient of some occurrences only gets those instances
 * alone, without a master. */
static void test_series_for_recipient(void **state)
{
	(void)state;
	static const char *const people[] = {"bob@example.org", "carol@example.net"};
	static const char *const only_carol[] = {"Carol@Example.net"};
	static const char *const with_dave[] = {"bob@example.org", "carol@example.net",
	                                        "dave@example.org"};
	struct series_ics_occurrence occ[countof(berlin_occ)];
	memcpy(occ, berlin_occ, sizeof occ);
	occ[3].attendees = only_carol; /* 04-07: bob removed from it */
	occ[3].nattendees = 1;
	occ[3].own_attendees = true;
	occ[4].attendees = with_dave; /* 04-14: dave invited to it alone */
	occ[4].nattendees = 3;
	occ[4].own_attendees = true;
	struct rrule rule;
	struct series_ics s = itip_series(&rule, occ, people, 2);
	struct ical_text t = {0};
	const char *why;

	s.recipient = "Bob@example.org";
	assert_true(series_ics_build(&s, &t, &why));
	assert_non_null(strstr(t.text.data, "EXDATE;TZID=Europe/Berlin:20260407T100000\r\n"));
	assert_null(strstr(t.text.data, "RECURRENCE-ID;TZID=Europe/Berlin:20260407T100000"));
	assert_non_null(strstr(t.text.data, "RECURRENCE-ID;TZID=Europe/Berlin:20260414T100000"));
	ical_text_free(&t);

	const char *all[] = {"alice@example.com", "carol@example.net", NULL};
	for (size_t i = 0; i < countof(all); i++) {
		s.recipient = all[i];
		assert_true(series_ics_build(&s, &t, &why));
		assert_null(strstr(t.text.data, "EXDATE;TZID=Europe/Berlin:20260407T100000"));
		assert_non_null(
			strstr(t.text.data, "RECURRENCE-ID;TZID=Europe/Berlin:20260407T100000"));
		ical_text_free(&t);
	}

	/* dave: the 04-14 instance alone, then its cancel. */
	s.recipient = "dave@example.org";
	s.instances_only = true;
	s.occurrences = &occ[4];
	s.noccurrences = 1;
	assert_true(series_ics_build(&s, &t, &why));
	const char *body = after_vtimezone(t.text.data);
	assert_null(strstr(body, "RRULE"));
	assert_int_equal(count_of(body, "BEGIN:VEVENT"), 1);
	assert_non_null(strstr(body, "RECURRENCE-ID;TZID=Europe/Berlin:20260414T100000\r\n"));
	assert_non_null(strstr(body, "STATUS:CONFIRMED"));
	char *unfolded = unfold_checked(t.text.data);
	assert_non_null(strstr(unfolded, "\nATTENDEE;ROLE=REQ-PARTICIPANT;PARTSTAT=NEEDS-ACTION;"
	                                 "RSVP=TRUE:mailto:dave@example.org\n"));
	free(unfolded);
	ical_text_free(&t);
	s.method = "CANCEL";
	occ[4].confirmed = false;
	assert_true(series_ics_build(&s, &t, &why));
	assert_non_null(strstr(t.text.data, "METHOD:CANCEL\r\n"));
	assert_non_null(
		strstr(t.text.data, "RECURRENCE-ID;TZID=Europe/Berlin:20260414T100000\r\n"));
	assert_non_null(strstr(t.text.data, "STATUS:CANCELLED"));
	assert_null(strstr(t.text.data, "STATUS:CONFIRMED"));
	ical_text_free(&t);
}

/* Refused with a reason: an unknown zone, a malformed local time. */
static void test_series_refused(void **state)
{
	(void)state;
	struct rrule rule;
	struct series_ics s = berlin_series(&rule, "FREQ=WEEKLY;BYDAY=TU;COUNT=5");
	struct ical_text t = {0};
	const char *why = NULL;
	s.zone = "Nowhere/Zone";
	assert_false(series_ics_build(&s, &t, &why));
	assert_string_equal(why, "no VTIMEZONE for the zone");
	ical_text_free(&t);
	s = berlin_series(&rule, "FREQ=WEEKLY;BYDAY=TU;COUNT=5");
	s.first_start = "2026-03-17 10:00";
	assert_false(series_ics_build(&s, &t, &why));
	assert_non_null(why);
	ical_text_free(&t);
}

/* ---- the test zoneinfo directory ---- */

static void put_be32(unsigned char *p, uint32_t v)
{
	p[0] = (unsigned char)(v >> 24);
	p[1] = (unsigned char)(v >> 16);
	p[2] = (unsigned char)(v >> 8);
	p[3] = (unsigned char)v;
}

/* A TZif file of the given version with one local time type and no transitions, ending with
 * footer (NULL: none). */
static void write_tzif(const char *name, char version, const char *footer)
{
	unsigned char buf[256];
	size_t n = 0;
	for (int block = 0; block < (version == '1' ? 1 : 2); block++) {
		memset(buf + n, 0, 44);
		memcpy(buf + n, "TZif", 4);
		buf[n + 4] = (unsigned char)(version == '1' ? 0 : version);
		put_be32(buf + n + 36, 1); /* typecnt */
		put_be32(buf + n + 40, 4); /* charcnt */
		n += 44;
		memcpy(buf + n, "\0\0\0\0\0\0LMT", 10); /* utoff 0, isdst 0, idx 0; "LMT\0" */
		n += 10;
	}
	if (footer)
		n += (size_t)snprintf((char *)buf + n, sizeof buf - n, "\n%s\n", footer);
	char path[160];
	snprintf(path, sizeof path, "%s/%s", zonedir, name);
	FILE *f = fopen(path, "wb");
	assert_non_null(f);
	assert_int_equal(fwrite(buf, 1, n, f), n);
	fclose(f);
}

static void copy_zone(const char *name)
{
	char from[160], to[160], buf[8192];
	snprintf(from, sizeof from, "/usr/share/zoneinfo/%s", name);
	snprintf(to, sizeof to, "%s/%s", zonedir, name);
	FILE *in = fopen(from, "rb"), *out = fopen(to, "wb");
	assert_non_null(in);
	assert_non_null(out);
	size_t n = fread(buf, 1, sizeof buf, in);
	assert_int_equal(fwrite(buf, 1, n, out), n);
	fclose(in);
	fclose(out);
}

static int zonedir_setup(void **state)
{
	(void)state;
	snprintf(zonedir, sizeof zonedir, "/tmp/test_ical.XXXXXX");
	if (!mkdtemp(zonedir))
		return -1;
	char path[160];
	static const char *const dirs[] = {"Europe", "America", "Asia", "Test"};
	for (size_t i = 0; i < countof(dirs); i++) {
		snprintf(path, sizeof path, "%s/%s", zonedir, dirs[i]);
		mkdir(path, 0700);
	}
	copy_zone("Europe/Berlin");
	copy_zone("America/New_York");
	copy_zone("Asia/Kolkata");
	copy_zone("UTC");
	write_tzif("Test/Shift", '3', "<-04>4<-03>,M3.5.0/-1,M4.1.6/24");
	write_tzif("Test/Cairo", '2', "EET-2EEST,M4.5.5/0,M10.5.4/24");
	write_tzif("Test/Dublin", '2', "IST-1GMT0,M10.5.0,M3.5.0/1");
	write_tzif("Test/Seconds", '2', "LMT-0:17:30");
	write_tzif("Test/Julian", '2', "EST5EDT,J60,J300");
	write_tzif("Test/Zero", '2', "EST5EDT,60,300");
	write_tzif("Test/V1", '1', NULL);
	write_tzif("Test/Short", '2', NULL);
	write_tzif("Test/NoRule", '2', "EST5EDT");
	write_tzif("Test/BadName", '2', "E5");
	/* Larger than any TZif file. */
	snprintf(path, sizeof path, "%s/Test/Huge", zonedir);
	FILE *f = fopen(path, "wb");
	if (!f)
		return -1;
	for (int i = 0; i < 70000; i++)
		fputc(i < 4 ? "TZif"[i] : 0, f);
	fclose(f);
	snprintf(path, sizeof path, "%s/tzdata.zi", zonedir);
	f = fopen(path, "w");
	if (!f)
		return -1;
	fputs("Z Europe/Berlin 0 - LMT\nZ America/New_York 0 - LMT\nZ Asia/Kolkata 0 - LMT\n"
	      "Z Etc/UTC 0 - UTC\nL Etc/UTC UTC\nZ Test/Shift 0 - LMT\nZ Test/Cairo 0 - LMT\n"
	      "Z Test/Dublin 0 - LMT\nZ Test/Seconds 0 - LMT\nZ Test/Julian 0 - LMT\n"
	      "Z Test/Zero 0 - LMT\nZ Test/V1 0 - LMT\nZ Test/Short 0 - LMT\n"
	      "Z Test/NoRule 0 - LMT\nZ Test/Huge 0 - LMT\nZ Test/BadName 0 - LMT\n",
	      f);
	fclose(f);
	/* Before the first tz_valid: it reads the list of names once. */
	return setenv("TZDIR", zonedir, 1);
}

static int zonedir_teardown(void **state)
{
	(void)state;
	char cmd[128];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", zonedir);
	return system(cmd) == 0 ? 0 : -1;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fold_ascii),     cmocka_unit_test(test_fold_utf8),
		cmocka_unit_test(test_escape),         cmocka_unit_test(test_escape_not_split),
		cmocka_unit_test(test_cal_address_cn), cmocka_unit_test(test_datetimes),
		cmocka_unit_test(test_vtimezone),      cmocka_unit_test(test_vtimezone_refused),
		cmocka_unit_test(test_series_berlin),  cmocka_unit_test(test_series_rule_forms),
		cmocka_unit_test(test_series_rdate),   cmocka_unit_test(test_series_itip),
		cmocka_unit_test(test_series_refused), cmocka_unit_test(test_series_for_recipient),
	};
	return cmocka_run_group_tests(tests, zonedir_setup, zonedir_teardown);
}
