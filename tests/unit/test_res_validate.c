/* Unit tests of reservation-service/src/validate.c: the POST and PUT /reservations bodies, the
 * notation of times and the rules on a time span, as tests/integration/test_res_api_create.py
 * and test_res_api_change.py see them through HTTP (each problem named by its field). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../reservation-service/src/validate.h"
#include "body_check.h"
#include "countof.h"
#include "rrule.h"

#define HOUR 3600LL
#define DAY 86400LL
/* 2027-01-15T10:00:00Z: a fixed "now" for the span rules (1800000000 is 08:00Z that day). */
#define NOW 1800007200LL

static const struct res_span_rules rules = {.min_minutes = 5,
                                            .max_minutes = 1440,
                                            .horizon_days = 365};

/* One validation: the body (owned; accepted strings point into it), the problems found (owned)
 * and the values. */
struct run {
	json_t *body, *details;
	struct res_change c;
};

static void parse(struct run *o, const char *text)
{
	memset(o, 0, sizeof *o);
	o->body = body_parse(text);
	o->details = json_object();
}

static void run_free(struct run *o)
{
	json_decref(o->details);
	json_decref(o->body);
}

static const char *reason(const json_t *details, const char *field)
{
	return json_string_value(json_object_get(details, field));
}

static void create_refused(const char *text, const char *field)
{
	struct run o;
	parse(&o, text);
	res_validate_create(o.body, &o.c, o.details);
	body_assert_only(o.details, field, text);
	run_free(&o);
}

#define TIMES "\"start_time\":\"2027-01-15T10:00:00Z\",\"end_time\":\"2027-01-15T11:00:00Z\""

static void test_create_names_each_bad_field(void **state)
{
	(void)state;
	static const struct {
		const char *body, *field;
	} cases[] = {
		{"{" TIMES "}", "room_id"},
		{"{\"room_id\":1,\"end_time\":\"2027-01-15T11:00:00Z\"}", "start_time"},
		{"{\"room_id\":1,\"start_time\":\"2027-01-15T10:00:00Z\"}", "end_time"},
		{"{\"room_id\":\"1\"," TIMES "}", "room_id"},
		{"{\"room_id\":0," TIMES "}", "room_id"},
		{"{\"room_id\":-1," TIMES "}", "room_id"},
		{"{\"room_id\":1.5," TIMES "}", "room_id"},
		{"{\"room_id\":null," TIMES "}", "room_id"},
		{"{\"room_id\":true," TIMES "}", "room_id"},
		{"{\"room_id\":[1]," TIMES "}", "room_id"},
		{"{\"room_id\":9007199254740992," TIMES "}", "room_id"},
		{"{\"room_id\":1," TIMES ",\"purpose\":5}", "purpose"},
		{"{\"room_id\":1," TIMES ",\"purpose\":[\"a\"]}", "purpose"},
		{"{\"room_id\":1," TIMES ",\"purpose\":{\"a\":1}}", "purpose"},
		{"{\"room_id\":1," TIMES ",\"purpose\":true}", "purpose"},
		{"{\"room_id\":1," TIMES ",\"user_id\":1}", "user_id"},
		{"{\"room_id\":1," TIMES ",\"status\":\"confirmed\"}", "status"},
		{"{\"room_id\":1," TIMES ",\"id\":1}", "id"},
		{"{\"room_id\":1," TIMES ",\"title\":\"x\"}", "title"},
		{"{\"room_id\":1," TIMES ",\"Room_id\":1}", "Room_id"},
		{"{\"room_id\":1,\"start_time\":1700000000,\"end_time\":\"2027-01-15T11:00:00Z\"}",
	         "start_time"},
		{"{\"room_id\":1,\"start_time\":null,\"end_time\":\"2027-01-15T11:00:00Z\"}",
	         "start_time"},
		{"{\"room_id\":1,\"start_time\":[\"2027-01-15T10:00:00Z\"],"
	         "\"end_time\":\"2027-01-15T11:00:00Z\"}",
	         "start_time"},
		{"{\"room_id\":1,\"start_time\":true,\"end_time\":\"2027-01-15T11:00:00Z\"}",
	         "start_time"},
		{"{\"room_id\":1," TIMES ",\"recurrence\":5}", "recurrence"},
		{"{\"room_id\":1," TIMES ",\"recurrence\":[\"FREQ=DAILY\"]}", "recurrence"},
		{"{\"room_id\":1," TIMES ",\"on_conflict\":\"skip\"}", "on_conflict"},
		{"{\"room_id\":1," TIMES ",\"on_conflict\":1,\"recurrence\":\"x\"}", "on_conflict"},
	};
	for (size_t i = 0; i < countof(cases); i++)
		create_refused(cases[i].body, cases[i].field);

	struct run o;
	parse(&o, "{}");
	res_validate_create(o.body, &o.c, o.details);
	assert_string_equal(reason(o.details, "room_id"), "is required");
	assert_string_equal(reason(o.details, "start_time"), "is required");
	assert_string_equal(reason(o.details, "end_time"), "is required");
	assert_int_equal(json_object_size(o.details), 3);
	run_free(&o);
}

static void test_create_accepted_values(void **state)
{
	(void)state;
	struct run o;
	parse(&o, "{\"room_id\":9007199254740991," TIMES ",\"purpose\":null}");
	res_validate_create(o.body, &o.c, o.details);
	assert_int_equal(json_object_size(o.details), 0);
	assert_true(o.c.room_id == 9007199254740991LL);
	assert_null(o.c.purpose);
	run_free(&o);

	/* purpose: up to 200 characters, however many bytes each takes. */
	static const char *const chars[] = {"x", "\xc3\xa9", "\xf0\x9f\x98\x80"};
	char text[1024];
	for (size_t i = 0; i < countof(chars); i++) {
		char *ok = body_repeat(chars[i], 200), *over = body_repeat(chars[i], 201);
		snprintf(text, sizeof text, "{\"room_id\":7," TIMES ",\"purpose\":\"%s\"}", ok);
		parse(&o, text);
		res_validate_create(o.body, &o.c, o.details);
		assert_int_equal(json_object_size(o.details), 0);
		assert_int_equal(o.c.room_id, 7);
		assert_string_equal(o.c.purpose, ok);
		run_free(&o);
		snprintf(text, sizeof text, "{\"room_id\":7," TIMES ",\"purpose\":\"%s\"}", over);
		create_refused(text, "purpose");
		free(ok);
		free(over);
	}
	parse(&o, "{\"room_id\":7," TIMES ",\"purpose\":\"\"}");
	res_validate_create(o.body, &o.c, o.details);
	assert_int_equal(json_object_size(o.details), 0);
	assert_string_equal(o.c.purpose, "");
	run_free(&o);
}

/* attendees: the first bad item named (from 1), at most RES_ATTENDEES_MAX, duplicates (any
 * case) dropped keeping the first spelling and the order; online_meeting a boolean. */
static void test_attendees(void **state)
{
	(void)state;
	static const struct {
		const char *list, *why;
	} bad[] = {
		{"[\"a@example.com\",\"nope\"]", "item 2 is not an e-mail address"},
		{"[\"a@example.com\\r\\nBcc: b@example.com\"]", "item 1 is not an e-mail address"},
		{"[\"a\\u0000@example.com\"]", "item 1 is not an e-mail address"},
		{"[\"a@example.com\\u0000\"]", "item 1 is not an e-mail address"},
		{"[\"<a@example.com>\"]", "item 1 is not an e-mail address"},
		{"[1]", "item 1 is not an e-mail address"},
		{"[null]", "item 1 is not an e-mail address"},
		{"\"a@example.com\"", NULL},
	};
	struct run o;
	char text[4096];
	for (size_t i = 0; i < countof(bad); i++) {
		snprintf(text, sizeof text, "{\"room_id\":1," TIMES ",\"attendees\":%s}",
		         bad[i].list);
		parse(&o, text);
		res_validate_create(o.body, &o.c, o.details);
		body_assert_only(o.details, "attendees", text);
		if (bad[i].why)
			assert_string_equal(reason(o.details, "attendees"), bad[i].why);
		run_free(&o);
	}
	/* The limit counts distinct addresses without the organizer's: 100 pass; 101 pass the
	 * body's checks and then only with the organizer among them (res_attendees_fit); 102 are
	 * refused by the body's checks.  Up to 1000 items (duplicates) are read; 1001 are not. */
	static const struct {
		int distinct, items;
		bool valid, fit_without, fit_with_organizer;
	} counts[] = {
		{100, 100, true, true, true},    {101, 101, true, false, true},
		{102, 102, false, false, false}, {100, 1000, true, true, true},
		{101, 1000, true, false, true},  {1, 1001, false, false, false},
	};
	static char big[64 * 1024];
	for (size_t i = 0; i < countof(counts); i++) {
		char *p = big + sprintf(big, "{\"room_id\":1," TIMES ",\"attendees\":[");
		for (int k = 0; k < counts[i].items; k++)
			p += sprintf(p, "%s\"%c%d@x.example\"", k ? "," : "", k % 2 ? 'U' : 'u',
			             k % counts[i].distinct);
		strcpy(p, "]}");
		parse(&o, big);
		res_validate_create(o.body, &o.c, o.details);
		if (!counts[i].valid) {
			body_assert_only(o.details, "attendees", "counts");
			assert_int_equal(o.c.attendees.n, 0);
		} else {
			json_t *d = json_object();
			assert_int_equal(json_object_size(o.details), 0);
			assert_int_equal(o.c.attendees.n, (size_t)counts[i].distinct);
			assert_string_equal(o.c.attendees.list[1], "U1@x.example");
			assert_int_equal(res_attendees_fit(&o.c.attendees, "nobody@x.example", d),
			                 counts[i].fit_without);
			assert_int_equal(res_attendees_fit(&o.c.attendees, NULL, d),
			                 counts[i].fit_without);
			assert_int_equal(json_object_size(d), counts[i].fit_without ? 0 : 1);
			assert_true(res_attendees_fit(&o.c.attendees, "U7@X.EXAMPLE", d));
			json_decref(d);
		}
		run_free(&o);
	}
	parse(&o, "{\"room_id\":1," TIMES ",\"online_meeting\":true,\"attendees\":"
	          "[\"B@x.example\",\"a@x.example\",\"b@X.EXAMPLE\",\"A@x.example\"]}");
	res_validate_create(o.body, &o.c, o.details);
	assert_int_equal(json_object_size(o.details), 0);
	assert_true(o.c.attendees.given);
	assert_int_equal(o.c.attendees.n, 2);
	assert_string_equal(o.c.attendees.list[0], "B@x.example");
	assert_string_equal(o.c.attendees.list[1], "a@x.example");
	assert_int_equal(o.c.online_meeting, RES_ONLINE_ON);
	run_free(&o);
	parse(&o, "{\"attendees\":null,\"online_meeting\":false}");
	res_validate_update(o.body, &o.c, o.details);
	assert_int_equal(json_object_size(o.details), 0);
	assert_true(o.c.attendees.given);
	assert_int_equal(o.c.attendees.n, 0);
	assert_int_equal(o.c.online_meeting, RES_ONLINE_OFF);
	run_free(&o);
	create_refused("{\"room_id\":1," TIMES ",\"online_meeting\":\"yes\"}", "online_meeting");
}

/* ATTENDEE_DOMAINS: the list's syntax, and attendees outside it refused naming the first one's
 * item and domain (any case matches); an empty list allows any domain again. */
static void test_attendee_domains(void **state)
{
	(void)state;
	char why[160];
	static const char *const good[] = {"", "example.com", "a.example, B.example ,c-d.example"};
	static const char *const bad[] = {
		",",           "example.com,", "exa mple.com", ".example.com", "example.com.",
		"ex@mple.com", "x,,y"};
	for (size_t i = 0; i < countof(good); i++)
		assert_true(res_validate_attendee_domains_valid(good[i], why, sizeof why));
	for (size_t i = 0; i < countof(bad); i++) {
		why[0] = '\0';
		assert_false(res_validate_attendee_domains_valid(bad[i], why, sizeof why));
		assert_non_null(strstr(why, "domain names"));
	}
	assert_true(res_validate_set_attendee_domains("a.example, B.example"));
	struct run o;
	parse(&o, "{\"room_id\":1," TIMES ",\"attendees\":[\"x@A.EXAMPLE\",\"y@b.example\"]}");
	res_validate_create(o.body, &o.c, o.details);
	assert_int_equal(json_object_size(o.details), 0);
	assert_int_equal(o.c.attendees.n, 2);
	run_free(&o);
	parse(&o, "{\"room_id\":1," TIMES
	          ",\"attendees\":[\"x@a.example\",\"y@sub.a.example\",\"z@c.example\"]}");
	res_validate_create(o.body, &o.c, o.details);
	assert_string_equal(reason(o.details, "attendees"),
	                    "item 2: the domain sub.a.example is not one attendees may be invited "
	                    "from");
	assert_int_equal(o.c.attendees.n, 0);
	run_free(&o);
	assert_true(res_validate_set_attendee_domains(""));
	parse(&o, "{\"room_id\":1," TIMES ",\"attendees\":[\"z@c.example\"]}");
	res_validate_create(o.body, &o.c, o.details);
	assert_int_equal(json_object_size(o.details), 0);
	run_free(&o);
}

static void test_update(void **state)
{
	(void)state;
	static const struct {
		const char *body, *field;
	} cases[] = {
		{"{}", "body"},
		{"{\"purpose\":7}", "purpose"},
		{"{\"room_id\":\"1\"}", "room_id"},
		{"{\"room_id\":null}", "room_id"},
		{"{\"room_id\":0}", "room_id"},
		{"{\"start_time\":5}", "start_time"},
		{"{\"user_id\":1}", "user_id"},
		{"{\"status\":\"cancelled\"}", "status"},
	};
	const struct res_change current = {.room_id = 3,
	                                   .user_id = 9,
	                                   .start = NOW,
	                                   .end = NOW + HOUR,
	                                   .purpose = "old",
	                                   .expected_version = 2};
	struct run o;
	for (size_t i = 0; i < countof(cases); i++) {
		parse(&o, cases[i].body);
		o.c = current;
		res_validate_update(o.body, &o.c, o.details);
		body_assert_only(o.details, cases[i].field, cases[i].body);
		run_free(&o);
	}
	char *p201 = body_repeat("p", 201), text[512];
	snprintf(text, sizeof text, "{\"purpose\":\"%s\"}", p201);
	parse(&o, text);
	o.c = current;
	res_validate_update(o.body, &o.c, o.details);
	body_assert_only(o.details, "purpose", "purpose of 201 characters");
	run_free(&o);
	free(p201);

	/* What the body names replaces the current value; the rest stays. */
	parse(&o, "{\"room_id\":4,\"end_time\":\"2027-01-15T12:00:00Z\"}");
	o.c = current;
	res_validate_update(o.body, &o.c, o.details);
	assert_int_equal(json_object_size(o.details), 0);
	assert_int_equal(o.c.room_id, 4);
	assert_string_equal(o.c.purpose, "old");
	assert_int_equal(o.c.user_id, 9);
	assert_true(o.c.start == NOW && o.c.end == NOW + HOUR);
	assert_int_equal(o.c.expected_version, 2);
	run_free(&o);

	/* null clears the purpose. */
	parse(&o, "{\"purpose\":null}");
	o.c = current;
	res_validate_update(o.body, &o.c, o.details);
	assert_int_equal(json_object_size(o.details), 0);
	assert_string_equal(o.c.purpose, "");
	assert_int_equal(o.c.room_id, 3);
	run_free(&o);
}

static void test_time_notations(void **state)
{
	(void)state;
	static const struct {
		const char *text;
		long long utc; /* 0 = local */
		const char *local;
	} good[] = {
		{"2027-01-15T10:00:00+02:00", 1800000000LL, NULL},
		{"2027-01-15T10:00:00-05:30", 1800000000LL + 7 * HOUR + 30 * 60, NULL},
		{"2027-01-15t08:00:00z", 1800000000LL, NULL},
		{"2027-01-15T08:00:00.000Z", 1800000000LL, NULL},
		{"2027-01-15T08:00:00+00:00", 1800000000LL, NULL},
		{"2027-01-15T08:00:00-00:00", 1800000000LL, NULL},
		{"2027-01-15T10:00:00", 0, "2027-01-15T10:00:00"},
		{"2027-01-15t10:00:00", 0, "2027-01-15T10:00:00"},
	};
	static const char *const bad[] = {
		"tomorrow",
		"",
		"2027-01-15",
		"2027-01-15 10:00:00Z",
		"2027-01-15T10:00Z",
		"2027-13-01T10:00:00Z",
		"2027-02-29T10:00:00Z",
		"2027-01-15T24:00:00Z",
		"2027-01-15T10:00:00+2:00",
		"2027-01-15T10:00:00+25:00",
		"2027-01-15T10:00:00ZZ",
		"2027-1-15T10:00:00Z",
		"2027-01-15T10:00:00.Z",
		"2027-01-15T10:00:00.5Z",
		"2027-01-15T10:00:00.25",
	};
	for (size_t i = 0; i < countof(good); i++) {
		struct res_time t;
		json_t *details = json_object();
		if (!res_validate_time("start_time", good[i].text, &t, details))
			fail_msg("%s refused", good[i].text);
		assert_int_equal(json_object_size(details), 0);
		assert_int_equal(t.local, good[i].local != NULL);
		if (good[i].local)
			assert_string_equal(t.text, good[i].local);
		else if (t.utc != good[i].utc)
			fail_msg("%s: %lld, want %lld", good[i].text, t.utc, good[i].utc);
		json_decref(details);
	}
	for (size_t i = 0; i < countof(bad); i++) {
		struct res_time t;
		json_t *details = json_object();
		if (res_validate_time("end_time", bad[i], &t, details))
			fail_msg("%s accepted", bad[i]);
		body_assert_only(details, "end_time", bad[i]);
		json_decref(details);
	}
	json_t *details = json_object();
	struct res_time t;
	assert_false(res_validate_time("start_time", "2027-01-15T10:00:00.5Z", &t, details));
	assert_string_equal(reason(details, "start_time"), "must be in whole seconds");
	json_decref(details);
}

/* The problems of the span [start, end) at NOW: the fields named, "" for none. */
static void span(long long start, long long end, const char *want_start, const char *want_end)
{
	json_t *details = json_object();
	res_validate_span(&rules, NOW, start, end, details);
	const char *s = reason(details, "start_time"), *e = reason(details, "end_time");
	if ((want_start != NULL) != (s != NULL) || (want_end != NULL) != (e != NULL) ||
	    (s && !strstr(s, want_start)) || (e && !strstr(e, want_end)) ||
	    json_object_size(details) != (size_t)(s != NULL) + (size_t)(e != NULL))
		fail_msg("span %+lld..%+lld s from now: start_time %s, end_time %s", start - NOW,
		         end - NOW, s ? s : "-", e ? e : "-");
	json_decref(details);
}

static void test_span_rules(void **state)
{
	(void)state;
	long long t = NOW + DAY;
	span(t, t + HOUR, NULL, NULL);
	/* The end must come after the start; nothing else is judged then. */
	span(t, t, NULL, "after start_time");
	span(t, t - HOUR, NULL, "after start_time");
	span(NOW - HOUR, NOW - 2 * HOUR, NULL, "after start_time");
	/* The start lies in the future, within the horizon. */
	span(NOW - HOUR, NOW + HOUR, "future", NULL);
	span(NOW - 5, NOW + HOUR, "future", NULL);
	span(NOW, NOW + HOUR, "future", NULL);
	span(NOW + 120, NOW + 720, NULL, NULL);
	span(NOW + 365 * DAY, NOW + 365 * DAY + HOUR, NULL, NULL);
	span(NOW + 365 * DAY + 1, NOW + 365 * DAY + HOUR, "365 days", NULL);
	/* Duration between 5 and 1440 minutes. */
	span(t, t + 5 * 60, NULL, NULL);
	span(t, t + 4 * 60 + 59, NULL, "between 5 and 1440 minutes");
	span(t, t + 1, NULL, "between 5 and 1440 minutes");
	span(t, t + 1440 * 60, NULL, NULL);
	span(t, t + 1440 * 60 + 30, NULL, "between 5 and 1440 minutes");
	span(t, t + 2 * DAY, NULL, "between 5 and 1440 minutes");
	/* Both at once. */
	span(NOW - HOUR, NOW + 2 * DAY, "future", "minutes");
}

static void test_idempotency_key(void **state)
{
	(void)state;
	char *k255 = body_repeat("~", 255), *k256 = body_repeat("a", 256);
	assert_true(res_validate_idempotency_key("0b9b3d5e-6f1c-4a57-9b0e-3f1c2a7d9e10"));
	assert_true(res_validate_idempotency_key("!"));
	assert_true(res_validate_idempotency_key(k255));
	assert_false(res_validate_idempotency_key(k256));
	assert_false(res_validate_idempotency_key(""));
	assert_false(res_validate_idempotency_key("with space"));
	assert_false(res_validate_idempotency_key("tab\there"));
	assert_false(res_validate_idempotency_key("caf\xc3\xa9"));
	assert_false(res_validate_idempotency_key("del\x7f"));
	free(k255);
	free(k256);
}

/* The recurrence of a series body: the rule parsed (its own tests are test_rrule.c), a refused
 * one named, on_conflict fail (the default) or skip. */
static void test_recurrence(void **state)
{
	(void)state;
	static const struct {
		const char *body, *field;
		bool skip;
	} cases[] = {
		{"{\"recurrence\":\"FREQ=DAILY;COUNT=3\"}", NULL, false},
		{"{\"recurrence\":{\"freq\":\"WEEKLY\",\"count\":2},\"on_conflict\":\"skip\"}",
	         NULL, true},
		{"{\"recurrence\":\"FREQ=DAILY;COUNT=3\",\"on_conflict\":\"fail\"}", NULL, false},
		{"{\"recurrence\":\"FREQ=DAILY;COUNT=3\",\"on_conflict\":\"Skip\"}", "on_conflict",
	         false},
		{"{\"recurrence\":\"FREQ=DAILY;BYSETPOS=1;COUNT=3\"}", "recurrence", false},
		{"{\"recurrence\":{\"freq\":\"DAILY\"}}", "recurrence", false},
	};
	for (size_t i = 0; i < countof(cases); i++) {
		struct run o;
		struct rrule rule;
		bool skip = !cases[i].skip;
		parse(&o, cases[i].body);
		res_validate_recurrence(o.body, &rule, &skip, o.details);
		if (cases[i].field) {
			body_assert_only(o.details, cases[i].field, cases[i].body);
		} else {
			assert_int_equal(json_object_size(o.details), 0);
			assert_int_equal(skip, cases[i].skip);
		}
		run_free(&o);
	}
	struct run o;
	struct rrule rule;
	bool skip;
	parse(&o, "{\"recurrence\":\"FREQ=DAILY;BYSETPOS=1;COUNT=3\"}");
	res_validate_recurrence(o.body, &rule, &skip, o.details);
	assert_non_null(strstr(reason(o.details, "recurrence"), "BYSETPOS"));
	run_free(&o);
}

/* The body of a series change (PUT /reservations/series/{id}, scope=this_and_following): at
 * least one change, both times or neither, the rule parsed, purpose null cleared, on_conflict. */
static void test_series_change(void **state)
{
	(void)state;
	static const struct {
		const char *body, *field; /* field: the one problem, NULL: accepted */
	} cases[] = {
		{"{\"purpose\":\"x\"}", NULL},
		{"{\"purpose\":null,\"on_conflict\":\"skip\"}", NULL},
		{"{\"room_id\":3}", NULL},
		{"{\"start_time\":\"2027-01-05T10:00:00\",\"end_time\":\"2027-01-05T11:00:00\"}",
	         NULL},
		{"{\"recurrence\":{\"freq\":\"DAILY\",\"count\":2}}", NULL},
		{"{}", "body"},
		{"{\"on_conflict\":\"skip\"}", "body"},
		{"{\"start_time\":\"2027-01-05T10:00:00\"}", "end_time"},
		{"{\"end_time\":\"2027-01-05T10:00:00\"}", "start_time"},
		{"{\"purpose\":\"x\",\"colour\":\"red\"}", "colour"},
		{"{\"room_id\":0}", "room_id"},
		{"{\"recurrence\":\"FREQ=YEARLY;COUNT=2\"}", "recurrence"},
		{"{\"recurrence\":7}", "recurrence"},
		{"{\"purpose\":\"x\",\"on_conflict\":\"maybe\"}", "on_conflict"},
		{"{\"attendees\":[\"a@x.example\"]}", NULL},
		{"{\"attendees\":null}", NULL},
		{"{\"online_meeting\":false}", NULL},
		{"{\"attendees\":[\"nope\"]}", "attendees"},
		{"{\"attendees\":\"a@x.example\"}", "attendees"},
		{"{\"online_meeting\":\"yes\"}", "online_meeting"},
	};
	for (size_t i = 0; i < countof(cases); i++) {
		struct run o;
		struct rrule rule;
		struct res_series_change c;
		parse(&o, cases[i].body);
		res_validate_series_change(o.body, &c, &rule, o.details);
		if (cases[i].field)
			body_assert_only(o.details, cases[i].field, cases[i].body);
		else
			assert_int_equal(json_object_size(o.details), 0);
		run_free(&o);
	}
	struct run o;
	struct rrule rule;
	struct res_series_change c;
	parse(&o, "{\"purpose\":null,\"room_id\":4,\"recurrence\":\"FREQ=WEEKLY;COUNT=3\","
	          "\"on_conflict\":\"skip\"}");
	res_validate_series_change(o.body, &c, &rule, o.details);
	assert_int_equal(json_object_size(o.details), 0);
	assert_string_equal(c.purpose, "");
	assert_int_equal(c.room_id, 4);
	assert_true(c.has_rule && c.skip);
	assert_int_equal(rule.freq, RRULE_WEEKLY);
	assert_int_equal(rule.count, 3);
	run_free(&o);
	parse(&o, "{\"room_id\":4}");
	res_validate_series_change(o.body, &c, &rule, o.details);
	assert_true(!c.has_rule && !c.skip && c.purpose == NULL);
	run_free(&o);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_create_names_each_bad_field),
		cmocka_unit_test(test_create_accepted_values),
		cmocka_unit_test(test_update),
		cmocka_unit_test(test_attendees),
		cmocka_unit_test(test_time_notations),
		cmocka_unit_test(test_span_rules),
		cmocka_unit_test(test_idempotency_key),
		cmocka_unit_test(test_attendee_domains),
		cmocka_unit_test(test_recurrence),
		cmocka_unit_test(test_series_change),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
