/* Unit tests of reservation-service/src/event_decode.c: what a room_events or user_events
 * message asks of reservation-service, and which messages can never be applied (DLQ). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "../../reservation-service/src/event_decode.h"
#include "countof.h"

static bool decode(enum res_event_source source, const char *value, struct res_event *ev, char *why,
                   size_t whylen)
{
	why[0] = '\0';
	return res_event_decode(source, value, value ? strlen(value) : 0, ev, why, whylen);
}

static void test_room_upsert(void **state)
{
	(void)state;
	struct res_event ev;
	char why[128];
	assert_true(decode(RES_EVENT_FROM_ROOMS,
	                   "{\"event_type\":\"room_updated\",\"event_id\":\"e\",\"version\":3,"
	                   "\"room\":{\"id\":7,\"name\":\"Aurora\",\"capacity\":12,"
	                   "\"time_zone\":\"Europe/Berlin\",\"active\":false}}",
	                   &ev, why, sizeof why));
	assert_int_equal(ev.kind, RES_EVENT_ROOM_UPSERT);
	assert_int_equal(ev.id, 7);
	assert_int_equal(ev.version, 3);
	assert_string_equal(ev.name, "Aurora");
	assert_int_equal(ev.capacity, 12);
	assert_string_equal(ev.time_zone, "Europe/Berlin");
	assert_false(ev.active);
	res_event_clear(&ev);
	assert_null(ev.doc);

	/* A room without a zone is in UTC. */
	assert_true(decode(RES_EVENT_FROM_ROOMS,
	                   "{\"event_type\":\"room_created\",\"version\":1,\"room\":{\"id\":8,"
	                   "\"name\":\"B\",\"capacity\":1,\"active\":true}}",
	                   &ev, why, sizeof why));
	assert_string_equal(ev.time_zone, "UTC");
	assert_true(ev.active);
	res_event_clear(&ev);
}

/* What a room search needs: all three details, none (an older producer: unknown), or refused. */
static void test_room_details(void **state)
{
	(void)state;
	struct res_event ev;
	char why[128];
	assert_true(
		decode(RES_EVENT_FROM_ROOMS,
	               "{\"event_type\":\"room_updated\",\"version\":2,\"room\":{\"id\":7,"
	               "\"name\":\"A\",\"capacity\":6,\"active\":true,"
	               "\"equipment\":[\"Projector\",\"TV\"],\"building\":\"HQ\",\"floor\":-2}}",
	               &ev, why, sizeof why));
	assert_true(ev.details_known);
	assert_int_equal(json_array_size(ev.equipment), 2);
	assert_string_equal(json_string_value(json_array_get(ev.equipment, 1)), "TV");
	assert_string_equal(ev.building, "HQ");
	assert_true(ev.has_floor);
	assert_int_equal(ev.floor, -2);
	res_event_clear(&ev);

	/* Nulls are known values: no building, no floor. */
	assert_true(decode(RES_EVENT_FROM_ROOMS,
	                   "{\"event_type\":\"room_created\",\"version\":1,\"room\":{\"id\":8,"
	                   "\"name\":\"B\",\"capacity\":1,\"active\":true,\"equipment\":[],"
	                   "\"building\":null,\"floor\":null}}",
	                   &ev, why, sizeof why));
	assert_true(ev.details_known);
	assert_null(ev.building);
	assert_false(ev.has_floor);
	res_event_clear(&ev);

	/* None of them: unknown, not empty. */
	assert_true(decode(RES_EVENT_FROM_ROOMS,
	                   "{\"event_type\":\"room_created\",\"version\":1,\"room\":{\"id\":9,"
	                   "\"name\":\"C\",\"capacity\":1,\"active\":true}}",
	                   &ev, why, sizeof why));
	assert_false(ev.details_known);
	assert_null(ev.equipment);
	res_event_clear(&ev);

	/* Partial or mistyped details can never be applied. */
	static const char *const refused[] = {
		"\"equipment\":[\"A\"]",
		"\"equipment\":[1],\"building\":null,\"floor\":null",
		"\"equipment\":\"A\",\"building\":null,\"floor\":null",
		"\"equipment\":[],\"building\":3,\"floor\":null",
		"\"equipment\":[],\"building\":null,\"floor\":\"3\"",
		"\"equipment\":[],\"building\":null,\"floor\":1.5",
	};
	for (size_t i = 0; i < countof(refused); i++) {
		char msg[512];
		snprintf(msg, sizeof msg,
		         "{\"event_type\":\"room_updated\",\"version\":1,\"room\":{\"id\":9,"
		         "\"name\":\"C\",\"capacity\":1,\"active\":true,%s}}",
		         refused[i]);
		assert_false(decode(RES_EVENT_FROM_ROOMS, msg, &ev, why, sizeof why));
		assert_string_equal(why, "room equipment, building or floor invalid");
		assert_null(ev.doc);
	}
}

static void test_room_delete_and_user_delete(void **state)
{
	(void)state;
	struct res_event ev;
	char why[128];
	assert_true(decode(RES_EVENT_FROM_ROOMS,
	                   "{\"event_type\":\"room_deleted\",\"version\":4,\"room_id\":7}", &ev,
	                   why, sizeof why));
	assert_int_equal(ev.kind, RES_EVENT_ROOM_DELETE);
	assert_int_equal(ev.id, 7);
	assert_int_equal(ev.version, 4);
	res_event_clear(&ev);

	/* user_deleted as user-service writes it (json_build_object's spacing). */
	assert_true(decode(RES_EVENT_FROM_USERS,
	                   "{\"event_type\" : \"user_deleted\", \"event_id\" : "
	                   "\"0b9b3d5e-6f1c-4a57-9b0e-3f1c2a7d9e10\", \"occurred_at\" : "
	                   "\"2027-01-15T10:00:00.123Z\", \"user_id\" : 42}",
	                   &ev, why, sizeof why));
	assert_int_equal(ev.kind, RES_EVENT_USER_DELETE);
	assert_int_equal(ev.id, 42);
	assert_string_equal(ev.occurred_at, "2027-01-15T10:00:00.123Z");
	res_event_clear(&ev);

	/* Without occurred_at every future booking of the user goes. */
	assert_true(decode(RES_EVENT_FROM_USERS, "{\"event_type\":\"user_deleted\",\"user_id\":42}",
	                   &ev, why, sizeof why));
	assert_null(ev.occurred_at);
	res_event_clear(&ev);

	/* user_disabled and user_role_changed void the user's tokens; user_enabled asks nothing. */
	assert_true(decode(RES_EVENT_FROM_USERS,
	                   "{\"event_type\" : \"user_role_changed\", \"event_id\" : \"e\", "
	                   "\"occurred_at\" : \"2027-01-15T10:00:00.456Z\", \"user_id\" : 43, "
	                   "\"role\" : \"employee\"}",
	                   &ev, why, sizeof why));
	assert_int_equal(ev.kind, RES_EVENT_USER_REVOKE);
	assert_int_equal(ev.id, 43);
	assert_string_equal(ev.occurred_at, "2027-01-15T10:00:00.456Z");
	assert_string_equal(ev.type, "user_role_changed");
	res_event_clear(&ev);
	assert_true(decode(RES_EVENT_FROM_USERS,
	                   "{\"event_type\":\"user_disabled\",\"user_id\":44,"
	                   "\"occurred_at\":\"2027-01-15T10:00:00.000Z\"}",
	                   &ev, why, sizeof why));
	assert_int_equal(ev.kind, RES_EVENT_USER_REVOKE);
	assert_string_equal(ev.type, "user_disabled");
	res_event_clear(&ev);
	assert_true(decode(RES_EVENT_FROM_USERS,
	                   "{\"event_type\":\"user_enabled\",\"user_id\":44,"
	                   "\"occurred_at\":\"2027-01-15T10:00:01.000Z\"}",
	                   &ev, why, sizeof why));
	assert_int_equal(ev.kind, RES_EVENT_IGNORE);
	res_event_clear(&ev);
	/* user_email_changed gives the calendar feed the new address. */
	assert_true(
		decode(RES_EVENT_FROM_USERS,
	               "{\"event_type\":\"user_email_changed\",\"user_id\":45,"
	               "\"occurred_at\":\"2027-01-15T10:00:02.000Z\",\"email\":\"n@example.com\"}",
	               &ev, why, sizeof why));
	assert_int_equal(ev.kind, RES_EVENT_USER_EMAIL);
	assert_int_equal(ev.id, 45);
	assert_string_equal(ev.email, "n@example.com");
	assert_string_equal(ev.occurred_at, "2027-01-15T10:00:02.000Z");
	res_event_clear(&ev);
}

#define ROOMS RES_EVENT_FROM_ROOMS
#define USERS RES_EVENT_FROM_USERS
#define OTHER RES_EVENT_FROM_OTHER

/* Messages that ask nothing (ignored: another producer's event type, another topic) and
 * messages that can never be applied (refused with a reason, owning nothing). */
static void test_ignored_and_refused(void **state)
{
	(void)state;
	static const struct {
		enum res_event_source source;
		bool ignored;
		const char *value;
	} cases[] = {
		{ROOMS, true, "{\"event_type\":\"room_renovated\",\"room_id\":1}"},
		{USERS, true, "{\"event_type\":\"user_updated\",\"user_id\":1}"},
		{OTHER, true, "{\"event_type\":\"room_deleted\"}"},
		{ROOMS, false, NULL},
		{ROOMS, false, "not json"},
		{ROOMS, false, "[1]"},
		{OTHER, false, "{\"no_type\":1}"},
		{ROOMS, false, "{\"event_type\":\"room_deleted\",\"room_id\":7}"},
		{ROOMS, false, "{\"event_type\":\"room_deleted\",\"version\":1,\"room_id\":0}"},
		{ROOMS, false,
	         "{\"event_type\":\"room_created\",\"version\":1,\"room\":{\"id\":1,\"capacity\":1,"
	         "\"active\":true}}"},
		{ROOMS, false,
	         "{\"event_type\":\"room_created\",\"version\":1,\"room\":{\"id\":1,\"name\":\"A\","
	         "\"capacity\":1,\"active\":true,\"time_zone\":\"Mars/Base\"}}"},
		{ROOMS, false,
	         "{\"event_type\":\"room_created\",\"version\":0,\"room\":{\"id\":1,\"name\":\"A\","
	         "\"capacity\":1,\"active\":true}}"},
		{USERS, false, "{\"event_type\":\"user_deleted\",\"user_id\":\"42\"}"},
		{USERS, false,
	         "{\"event_type\":\"user_deleted\",\"user_id\":42,"
	         "\"occurred_at\":\"2027-01-15T10:00:00\"}"},
		{USERS, false,
	         "{\"event_type\":\"user_deleted\",\"user_id\":42,\"occurred_at\":\"yesterday\"}"},
		{USERS, false, "{\"event_type\":\"user_deleted\",\"user_id\":1,\"user_id\":2}"},
		{USERS, false, "{\"event_type\":\"user_disabled\",\"user_id\":0}"},
		{USERS, false, "{\"event_type\":\"user_enabled\"}"},
		{USERS, false, "{\"event_type\":\"user_role_changed\",\"user_id\":4}"},
		{USERS, false,
	         "{\"event_type\":\"user_role_changed\",\"user_id\":4,\"role\":\"root\"}"},
		{USERS, false, "{\"event_type\":\"user_email_changed\",\"user_id\":4}"},
		{USERS, false,
	         "{\"event_type\":\"user_email_changed\",\"user_id\":4,\"email\":\"\"}"},
		{USERS, false,
	         "{\"event_type\":\"user_email_changed\",\"user_id\":0,\"email\":\"a@b.c\"}"},
		{USERS, false,
	         "{\"event_type\":\"user_email_changed\",\"user_id\":4,\"email\":\"a@b.c\","
	         "\"occurred_at\":\"soon\"}"},
	};
	for (size_t i = 0; i < countof(cases); i++) {
		struct res_event ev;
		char why[128];
		const char *v = cases[i].value ? cases[i].value : "(no value)";
		bool ok = decode(cases[i].source, cases[i].value, &ev, why, sizeof why);
		if (ok != cases[i].ignored)
			fail_msg("%s %s", v, ok ? "accepted" : why);
		if (!ok && !why[0])
			fail_msg("%s refused without a reason", v);
		assert_true(ok || ev.doc == NULL);
		assert_int_equal(ev.kind, RES_EVENT_IGNORE);
		res_event_clear(&ev);
	}
}

/* The room's policies: an object (kept, borrowed), null (none), absent (an older producer: none,
 * not known), or refused when a member has a type the SQL could not read. */
static void test_room_policies(void **state)
{
	(void)state;
	struct res_event ev;
	char why[128];
	static const char head[] =
		"{\"event_type\":\"room_updated\",\"version\":2,\"room\":{\"id\":7,"
		"\"name\":\"A\",\"capacity\":4,\"active\":true";
	char doc[512];
	snprintf(doc, sizeof doc,
	         "%s,\"policies\":{\"buffer_minutes\":10,\"opening_hours\":{\"mon\":[[\"08:00\","
	         "\"24:00\"]],\"sat\":[],\"sun\":null},\"allowed_roles\":[\"admin\"]}}}",
	         head);
	assert_true(decode(RES_EVENT_FROM_ROOMS, doc, &ev, why, sizeof why));
	assert_true(ev.policies_known);
	assert_non_null(ev.policies);
	assert_int_equal(json_integer_value(json_object_get(ev.policies, "buffer_minutes")), 10);
	res_event_clear(&ev);

	snprintf(doc, sizeof doc, "%s,\"policies\":null}}", head);
	assert_true(decode(RES_EVENT_FROM_ROOMS, doc, &ev, why, sizeof why));
	assert_true(ev.policies_known);
	assert_null(ev.policies);
	res_event_clear(&ev);

	snprintf(doc, sizeof doc, "%s}}", head);
	assert_true(decode(RES_EVENT_FROM_ROOMS, doc, &ev, why, sizeof why));
	assert_false(ev.policies_known);
	assert_null(ev.policies);
	res_event_clear(&ev);

	static const char *const bad[] = {
		"\"policies\":[]",
		"\"policies\":{\"buffer_minutes\":\"10\"}",
		"\"policies\":{\"max_advance_days\":-1}",
		"\"policies\":{\"opening_hours\":{\"mon\":[[\"8:00\",\"18:00\"]]}}",
		"\"policies\":{\"opening_hours\":{\"mon\":[[\"08:00\"]]}}",
		"\"policies\":{\"opening_hours\":[]}",
		"\"policies\":{\"allowed_roles\":\"admin\"}",
		"\"policies\":{\"requires_approval\":1}",
		/* Review 15a L6: the types and bounds of room-service's own check. */
		"\"policies\":{\"check_in_required\":\"yes\",\"release_after_minutes\":5,"
		"\"check_in_window_minutes\":5}",
		"\"policies\":{\"allowed_roles\":[1]}",
		"\"policies\":{\"allowed_users\":[\"7\"]}",
		"\"policies\":{\"buffer_minutes\":2000}",
		"\"policies\":{\"max_duration_minutes\":1441}",
		"\"policies\":{\"opening_hours\":{\"mon\":[[\"08:00\",\"29:59\"]]}}",
		"\"policies\":{\"opening_hours\":{\"mon\":[[\"18:00\",\"08:00\"]]}}",
	};
	for (size_t i = 0; i < countof(bad); i++) {
		snprintf(doc, sizeof doc, "%s,%s}}", head, bad[i]);
		assert_false(decode(RES_EVENT_FROM_ROOMS, doc, &ev, why, sizeof why));
		assert_memory_equal(why, "room policies invalid", strlen("room policies invalid"));
		assert_null(ev.doc);
	}
	snprintf(doc, sizeof doc, "%s,%s}}", head, "\"policies\":{\"buffer_minutes\":2000}");
	assert_false(decode(RES_EVENT_FROM_ROOMS, doc, &ev, why, sizeof why));
	assert_string_equal(why, "room policies invalid: policies.buffer_minutes must be between 0 "
	                         "and 240");

	/* A member of a newer room-service is ignored (not checked, not applied by the SQL). */
	snprintf(doc, sizeof doc, "%s,\"policies\":{\"buffer_minutes\":5,\"colour\":\"red\"}}}",
	         head);
	assert_true(decode(RES_EVENT_FROM_ROOMS, doc, &ev, why, sizeof why));
	assert_non_null(ev.policies);
	res_event_clear(&ev);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_room_upsert),
		cmocka_unit_test(test_room_details),
		cmocka_unit_test(test_room_policies),
		cmocka_unit_test(test_room_delete_and_user_delete),
		cmocka_unit_test(test_ignored_and_refused),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
