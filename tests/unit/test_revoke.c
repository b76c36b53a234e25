/* Unit tests of common/src/revoke.c without a database: the cache's verdicts (the rule "issued
 * before not_before is void", staleness, notes, reloads) and the decoding of user_events. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "countof.h"
#include "revoke.h"

#define T0 1000000LL       /* a monotonic time, ms */
#define NB 1764496800123LL /* a user's not_before, Unix ms */

static int fresh_cache(void **state)
{
	(void)state;
	revoke_clear();
	return 0;
}

/* Never loaded: nothing is known, so nothing is let through. */
static void test_unknown_until_loaded(void **state)
{
	(void)state;
	assert_int_equal(revoke_check_at(7, NB, T0), REVOKE_UNKNOWN);
	assert_true(revoke_load(NULL, 0, T0));
	assert_int_equal(revoke_check_at(7, NB, T0), REVOKE_VALID);
}

/* Void exactly when issued strictly before not_before, to the millisecond; other users are
 * not concerned. */
static void test_issued_before_not_before_is_void(void **state)
{
	(void)state;
	const struct revoke_entry e[] = {{7, NB}, {3, NB - 5000}};
	assert_true(revoke_load(e, countof(e), T0));
	assert_int_equal(revoke_check_at(7, NB - 1, T0), REVOKE_REVOKED);
	assert_int_equal(revoke_check_at(7, NB - 86400000LL, T0), REVOKE_REVOKED);
	assert_int_equal(revoke_check_at(7, 0, T0), REVOKE_REVOKED);
	assert_int_equal(revoke_check_at(7, NB, T0), REVOKE_VALID);
	assert_int_equal(revoke_check_at(7, NB + 1, T0), REVOKE_VALID);
	/* A token issued in the same second as the change but after it stays valid. */
	assert_int_equal(revoke_check_at(7, NB + 500, T0), REVOKE_VALID);
	assert_int_equal(revoke_check_at(3, NB - 5001, T0), REVOKE_REVOKED);
	assert_int_equal(revoke_check_at(3, NB - 5000, T0), REVOKE_VALID);
	assert_int_equal(revoke_check_at(8, 0, T0), REVOKE_VALID);
	assert_int_equal(revoke_check_at(6, 0, T0), REVOKE_VALID);
}

/* Entries in any order; a user listed twice counts with the later not_before. */
static void test_load_sorts_and_keeps_the_latest(void **state)
{
	(void)state;
	struct revoke_entry e[200];
	for (size_t i = 0; i < countof(e); i++)
		e[i] = (struct revoke_entry){(long long)((i * 7919) % 100) + 1, NB + (long long)i};
	assert_true(revoke_load(e, countof(e), T0));
	for (long long user = 1; user <= 100; user++) {
		long long latest = 0;
		for (size_t i = 0; i < countof(e); i++)
			if (e[i].user_id == user && e[i].not_before_ms > latest)
				latest = e[i].not_before_ms;
		assert_int_equal(revoke_check_at(user, latest - 1, T0), REVOKE_REVOKED);
		assert_int_equal(revoke_check_at(user, latest, T0), REVOKE_VALID);
	}
	assert_int_equal(revoke_check_at(101, 0, T0), REVOKE_VALID);
	assert_int_equal(revoke_check_at(0, 0, T0), REVOKE_VALID);
}

/* A cache not re-read for REVOKE_MAX_AGE_MS answers UNKNOWN, except for what it knows to be
 * void; a new load makes it current again and replaces what it held. */
static void test_staleness(void **state)
{
	(void)state;
	const struct revoke_entry e[] = {{7, NB}};
	assert_true(revoke_load(e, countof(e), T0));
	assert_int_equal(revoke_check_at(9, 0, T0 + REVOKE_MAX_AGE_MS), REVOKE_VALID);
	assert_int_equal(revoke_check_at(9, 0, T0 + REVOKE_MAX_AGE_MS + 1), REVOKE_UNKNOWN);
	assert_int_equal(revoke_check_at(7, NB - 1, T0 + REVOKE_MAX_AGE_MS + 1), REVOKE_REVOKED);
	assert_int_equal(revoke_check_at(7, NB, T0 + REVOKE_MAX_AGE_MS + 1), REVOKE_UNKNOWN);

	const long long t1 = T0 + 2 * REVOKE_MAX_AGE_MS;
	const struct revoke_entry later[] = {{9, NB}};
	assert_true(revoke_load(later, countof(later), t1));
	assert_int_equal(revoke_check_at(9, NB - 1, t1), REVOKE_REVOKED);
	assert_int_equal(revoke_check_at(7, NB - 1, t1),
	                 REVOKE_VALID); /* row gone from the table */
}

/* What this process committed counts at once, until a re-read has had time to bring it. */
static void test_notes(void **state)
{
	(void)state;
	assert_true(revoke_load(NULL, 0, T0));
	revoke_note_at(5, NB, T0 + 10);
	assert_int_equal(revoke_check_at(5, NB - 1, T0 + 10), REVOKE_REVOKED);
	assert_int_equal(revoke_check_at(5, NB, T0 + 10), REVOKE_VALID);
	/* A re-read that started before the commit does not forget it. */
	assert_true(revoke_load(NULL, 0, T0 + 20));
	assert_int_equal(revoke_check_at(5, NB - 1, T0 + 20), REVOKE_REVOKED);
	/* The later of the table's and the note's not_before counts. */
	const struct revoke_entry e[] = {{5, NB + 100}};
	assert_true(revoke_load(e, countof(e), T0 + 30));
	assert_int_equal(revoke_check_at(5, NB + 99, T0 + 30), REVOKE_REVOKED);
	revoke_note_at(5, NB + 200, T0 + 40);
	assert_int_equal(revoke_check_at(5, NB + 199, T0 + 40), REVOKE_REVOKED);
	/* After REVOKE_NOTE_TTL_MS only the table counts (which has the row by then). */
	const long long later = T0 + 40 + REVOKE_NOTE_TTL_MS + 1;
	assert_true(revoke_load(e, countof(e), later));
	assert_int_equal(revoke_check_at(5, NB + 199, later), REVOKE_VALID);
	assert_int_equal(revoke_check_at(5, NB + 99, later), REVOKE_REVOKED);

	/* The notes are a bounded ring: many of them keep the latest. */
	for (long long u = 1000; u < 1000 + 3 * 256; u++)
		revoke_note_at(u, NB, later);
	assert_int_equal(revoke_check_at(1000 + 3 * 256 - 1, NB - 1, later), REVOKE_REVOKED);
	assert_int_equal(revoke_check_at(1000, NB - 1, later), REVOKE_VALID);
}

/* Decodes text; *doc (the caller's to release) owns what ev borrows. */
static bool decode(const char *text, json_t **doc, struct revoke_event *ev, char *why,
                   size_t whylen)
{
	*doc = json_loads(text, 0, NULL);
	assert_non_null(*doc);
	why[0] = '\0';
	return revoke_event_decode(*doc, ev, why, whylen);
}

/* The events of docs/events.md, as user-service writes them. */
static void test_decode_user_events(void **state)
{
	(void)state;
	static const struct {
		const char *text;
		enum revoke_event_kind kind;
		bool voids;
	} ok[] = {
		{"{\"event_type\":\"user_deleted\",\"user_id\":7,\"occurred_at\":\"2026-11-30T10:00:00.123Z\"}",
	         REVOKE_EVENT_DELETED, true},
		{"{\"event_type\":\"user_disabled\",\"user_id\":7,\"occurred_at\":\"2026-11-30T10:00:00.123Z\"}",
	         REVOKE_EVENT_DISABLED, true},
		{"{\"event_type\":\"user_enabled\",\"user_id\":7,\"occurred_at\":\"2026-11-30T10:00:00.123Z\"}",
	         REVOKE_EVENT_ENABLED, false},
		{"{\"event_type\":\"user_role_changed\",\"user_id\":7,\"occurred_at\":"
	         "\"2026-11-30T10:00:00.123Z\",\"role\":\"employee\"}",
	         REVOKE_EVENT_ROLE_CHANGED, true},
		{"{\"event_type\":\"user_renamed\",\"user_id\":\"anything\"}", REVOKE_EVENT_NONE,
	         false},
	};
	for (size_t i = 0; i < countof(ok); i++) {
		struct revoke_event ev;
		char why[128];
		json_t *doc = NULL;
		if (!decode(ok[i].text, &doc, &ev, why, sizeof why))
			fail_msg("%s refused: %s", ok[i].text, why);
		assert_int_equal(ev.kind, ok[i].kind);
		assert_int_equal(revoke_event_voids(ev.kind), ok[i].voids);
		if (ev.kind != REVOKE_EVENT_NONE) {
			assert_true(ev.user_id == 7);
			assert_string_equal(ev.occurred_at, "2026-11-30T10:00:00.123Z");
		}
		if (ev.kind == REVOKE_EVENT_ROLE_CHANGED)
			assert_string_equal(ev.role, "employee");
		else
			assert_null(ev.role);
		json_decref(doc);
	}
	/* occurred_at may be absent (now counts then). */
	struct revoke_event ev;
	char why[128];
	json_t *doc = NULL;
	assert_true(decode("{\"event_type\":\"user_disabled\",\"user_id\":8}", &doc, &ev, why,
	                   sizeof why));
	assert_null(ev.occurred_at);
	json_decref(doc);

	static const char *const bad[] = {
		"{\"event_type\":\"user_disabled\"}",
		"{\"event_type\":\"user_disabled\",\"user_id\":0}",
		"{\"event_type\":\"user_disabled\",\"user_id\":-3}",
		"{\"event_type\":\"user_disabled\",\"user_id\":\"7\"}",
		"{\"event_type\":\"user_disabled\",\"user_id\":7.5}",
		"{\"event_type\":\"user_deleted\",\"user_id\":7,\"occurred_at\":\"2026-11-30T10:00:00\"}",
		"{\"event_type\":\"user_deleted\",\"user_id\":7,\"occurred_at\":\"yesterday\"}",
		"{\"event_type\":\"user_role_changed\",\"user_id\":7}",
		"{\"event_type\":\"user_role_changed\",\"user_id\":7,\"role\":\"root\"}",
		"{\"event_type\":\"user_role_changed\",\"user_id\":7,\"role\":1}",
	};
	for (size_t i = 0; i < countof(bad); i++) {
		memset(&ev, 0x5a, sizeof ev);
		bool accepted = decode(bad[i], &doc, &ev, why, sizeof why);
		json_decref(doc);
		if (accepted)
			fail_msg("%s accepted", bad[i]);
		if (!why[0])
			fail_msg("%s refused without a reason", bad[i]);
		assert_int_equal(ev.kind, REVOKE_EVENT_NONE);
		assert_null(ev.occurred_at);
	}
}

/* revoke_guard (common migration 003, spelled out because it is released) shares the very lock
 * revoke_apply takes (REVOKE_LOCK_KEY): were they to differ, a booking would not wait for a
 * revocation in flight.  Changing the key takes a new migration replacing revoke_guard. */
static void test_guard_locks_what_apply_locks(void **state)
{
	(void)state;
	const char *lock = strstr(revoke_guard_schema_sql, "pg_advisory_xact_lock_shared(");
	assert_non_null(lock);
	assert_non_null(strstr(revoke_guard_schema_sql,
	                       "pg_advisory_xact_lock_shared(" REVOKE_LOCK_KEY ");\n"));
	assert_null(strstr(lock + 1, "pg_advisory")); /* and no other lock */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_unknown_until_loaded, fresh_cache),
		cmocka_unit_test_setup(test_issued_before_not_before_is_void, fresh_cache),
		cmocka_unit_test_setup(test_load_sorts_and_keeps_the_latest, fresh_cache),
		cmocka_unit_test_setup(test_staleness, fresh_cache),
		cmocka_unit_test_setup(test_notes, fresh_cache),
		cmocka_unit_test(test_decode_user_events),
		cmocka_unit_test(test_guard_locks_what_apply_locks),
	};
	int failed = cmocka_run_group_tests(tests, NULL, NULL);
	revoke_clear();
	return failed;
}
