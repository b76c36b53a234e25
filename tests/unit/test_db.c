/* Unit tests of common/src/db.c that need no database: SQLSTATE classification, the error kind
 * a handler answers with, the result helpers (on a result built in memory), and what reads,
 * writes and transactions answer when the database cannot be reached.  The behaviour against a
 * real server whose answers get lost is tested in tests/integration/test_db_lost_reply.py. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "countof.h"
#include "db.h"
#include "errors.h"
#include "log.h"
#include "metrics.h"

struct sqlstate_case {
	const char *state;
	enum db_status st;
	int http;
};

static const struct sqlstate_case cases[] = {
	{"23505", DB_UNIQUE_VIOLATION, 409},    /* unique_violation: duplicate name/e-mail */
	{"23P01", DB_EXCLUSION_VIOLATION, 409}, /* exclusion_violation: overlapping booking */
	{"23503", DB_FK_VIOLATION, 422},        /* foreign_key_violation */
	{"23514", DB_CHECK_VIOLATION, 422},     /* check_violation */
	{"23502", DB_CHECK_VIOLATION, 422},     /* not_null_violation */
	{"22001", DB_CHECK_VIOLATION, 422},     /* string_data_right_truncation */
	{"22P02", DB_CHECK_VIOLATION, 422},     /* invalid_text_representation */
	{"22008", DB_CHECK_VIOLATION, 422},     /* datetime_field_overflow */
	{"40001", DB_RETRY, 503},               /* serialization_failure */
	{"40P01", DB_RETRY, 503},               /* deadlock_detected */
	{"08006", DB_UNAVAILABLE, 503},         /* connection_failure */
	{"08001", DB_UNAVAILABLE, 503},
	{"08003", DB_UNAVAILABLE, 503},
	{"57P01", DB_UNAVAILABLE, 503}, /* admin_shutdown */
	{"57P02", DB_UNAVAILABLE, 503}, /* crash_shutdown */
	{"57P03", DB_UNAVAILABLE, 503}, /* cannot_connect_now */
	{"57014", DB_UNAVAILABLE, 503}, /* query_canceled (statement_timeout) */
	{"53300", DB_UNAVAILABLE, 503}, /* too_many_connections */
	{"42601", DB_ERROR, 500},       /* syntax_error: a bug */
	{"42P01", DB_ERROR, 500},       /* undefined_table */
	{"42703", DB_ERROR, 500},       /* undefined_column */
	{"XX000", DB_ERROR, 500},       /* internal_error */
	{"25P02", DB_ERROR, 500},       /* in_failed_sql_transaction */
	{"23000", DB_ERROR, 500},       /* bare integrity class: not one we expect */
	{"40002", DB_ERROR, 500},
	{"RS429", DB_QUOTA_EXCEEDED, 429}, /* reservation-service's mail quota (migration 017) */
	{"RS409", DB_ERROR, 500},          /* caught inside its functions: never reaches C */
};

static void test_classify(void **state)
{
	(void)state;
	for (size_t i = 0; i < countof(cases); i++) {
		enum db_status st = db_classify(cases[i].state);
		if (st != cases[i].st)
			fail_msg("%s: got %s, want %s", cases[i].state, db_status_str(st),
			         db_status_str(cases[i].st));
	}
}

static void test_classify_to_http(void **state)
{
	(void)state;
	for (size_t i = 0; i < countof(cases); i++) {
		int http = err_status(db_err_kind(db_classify(cases[i].state)));
		if (http != cases[i].http)
			fail_msg("%s: HTTP %d, want %d", cases[i].state, http, cases[i].http);
	}
}

static void test_classify_odd_input(void **state)
{
	(void)state;
	/* No SQLSTATE at all means no answer from the server. */
	assert_int_equal(db_classify(NULL), DB_UNAVAILABLE);
	assert_int_equal(db_classify(""), DB_UNAVAILABLE);
	/* Wrong lengths are never mistaken for a known code. */
	assert_int_not_equal(db_classify("2350"), DB_UNIQUE_VIOLATION);
	assert_int_not_equal(db_classify("235050"), DB_UNIQUE_VIOLATION);
	assert_int_not_equal(db_classify("23p01"), DB_EXCLUSION_VIOLATION);
}

static void test_err_kind(void **state)
{
	(void)state;
	assert_int_equal(db_err_kind(DB_OK), ERR_NONE);
	assert_int_equal(db_err_kind(DB_UNIQUE_VIOLATION), ERR_CONFLICT);
	assert_int_equal(db_err_kind(DB_EXCLUSION_VIOLATION), ERR_CONFLICT);
	assert_int_equal(db_err_kind(DB_FK_VIOLATION), ERR_VALIDATION_FAILED);
	assert_int_equal(db_err_kind(DB_CHECK_VIOLATION), ERR_VALIDATION_FAILED);
	assert_int_equal(db_err_kind(DB_RETRY), ERR_UNAVAILABLE);
	assert_int_equal(db_err_kind(DB_UNAVAILABLE), ERR_UNAVAILABLE);
	assert_int_equal(db_err_kind(DB_ERROR), ERR_INTERNAL);
	assert_int_equal(err_status(db_err_kind(DB_ERROR)), 500);
	assert_int_equal(err_status(db_err_kind((enum db_status)99)), 500);
}

static void test_status_str(void **state)
{
	(void)state;
	for (int a = DB_OK; a <= DB_ERROR; a++) {
		const char *s = db_status_str((enum db_status)a);
		assert_non_null(s);
		assert_true(strlen(s) > 0);
		for (int b = a + 1; b <= DB_ERROR; b++)
			assert_string_not_equal(s, db_status_str((enum db_status)b));
	}
}

/* What req_db_error shows the client: the violations by name, "try again" when the database is
 * away, nothing about the database for an internal error ("" = the kind's default message). */
static void test_status_reply(void **state)
{
	(void)state;
	assert_string_equal(db_status_reply(DB_UNIQUE_VIOLATION), "unique violation");
	assert_string_equal(db_status_reply(DB_EXCLUSION_VIOLATION), "exclusion violation");
	assert_string_equal(db_status_reply(DB_FK_VIOLATION), "foreign key violation");
	assert_string_equal(db_status_reply(DB_CHECK_VIOLATION), "check violation");
	assert_string_equal(db_status_reply(DB_RETRY), "database unavailable, try again");
	assert_string_equal(db_status_reply(DB_UNAVAILABLE), "database unavailable, try again");
	assert_string_equal(db_status_reply(DB_BUSY), "server busy, try again");
	assert_int_equal(err_status(db_err_kind(DB_BUSY)), 503);
	assert_string_equal(db_status_reply(DB_ERROR), "");
	assert_string_equal(db_status_reply(DB_OK), "");
	assert_string_equal(db_status_reply((enum db_status)99), "");
	assert_string_equal(db_status_str((enum db_status)99), "database error");
	assert_string_equal(db_status_str((enum db_status) - 1), "database error");
}

/* One row (id, name, active, note): ("42", NULL, "t", "-7"); second row ("x", "", "f", NULL). */
static PGresult *make_result(void)
{
	PGresult *r = PQmakeEmptyPGresult(NULL, PGRES_TUPLES_OK);
	assert_non_null(r);
	PGresAttDesc attrs[4];
	memset(attrs, 0, sizeof attrs);
	const char *names[4] = {"id", "name", "active", "n"};
	for (int i = 0; i < 4; i++) {
		attrs[i].name = (char *)names[i];
		attrs[i].typlen = -1;
		attrs[i].atttypmod = -1;
	}
	assert_int_equal(PQsetResultAttrs(r, 4, attrs), 1);
	assert_int_equal(PQsetvalue(r, 0, 0, (char *)"42", 2), 1);
	assert_int_equal(PQsetvalue(r, 0, 1, NULL, -1), 1);
	assert_int_equal(PQsetvalue(r, 0, 2, (char *)"t", 1), 1);
	assert_int_equal(PQsetvalue(r, 0, 3, (char *)"-7", 2), 1);
	assert_int_equal(PQsetvalue(r, 1, 0, (char *)"x", 1), 1);
	assert_int_equal(PQsetvalue(r, 1, 1, (char *)"", 0), 1);
	assert_int_equal(PQsetvalue(r, 1, 2, (char *)"f", 1), 1);
	assert_int_equal(PQsetvalue(r, 1, 3, NULL, -1), 1);
	return r;
}

static void test_result_helpers(void **state)
{
	(void)state;
	PGresult *r = make_result();
	assert_string_equal(db_value(r, 0, 0), "42");
	/* SQL NULL is NULL, not the "" PQgetvalue returns; an empty string stays "". */
	assert_null(db_value(r, 0, 1));
	assert_non_null(db_value(r, 1, 1));
	assert_string_equal(db_value(r, 1, 1), "");

	assert_int_equal(db_int(r, 0, 0), 42);
	assert_true(db_int(r, 0, 3) == -7);
	assert_int_equal(db_int(r, 1, 3), 0);

	assert_true(db_bool(r, 0, 2));
	assert_false(db_bool(r, 1, 2));
	assert_false(db_bool(r, 0, 1));
	PQclear(r);
}

/* Port 1 on the loopback refuses at once: every call fails without a session, says so with
 * DB_UNAVAILABLE and leaves *res NULL; COMMIT without a transaction is a caller's error, and
 * a failed BEGIN leaves none open. */
static void test_unreachable_database(void **state)
{
	(void)state;
	PGresult *garbage = PQmakeEmptyPGresult(NULL, PGRES_COMMAND_OK);
	PGresult *res = garbage;
	log_init("test_db", LOG_LEVEL_ERROR);
	db_configure("postgresql://nobody@127.0.0.1:1/none", "test_db", 1000);

	assert_int_equal(db_exec(&res, "SELECT 1", 0, NULL), DB_UNAVAILABLE);
	assert_null(res);
	res = garbage;
	assert_int_equal(db_write(&res, "DELETE FROM t", 0, NULL), DB_UNAVAILABLE);
	assert_null(res);
	assert_int_equal(db_write(NULL, "DELETE FROM t", 0, NULL), DB_UNAVAILABLE);

	assert_int_equal(db_commit(), DB_ERROR);
	assert_int_equal(db_begin(), DB_UNAVAILABLE);
	assert_int_equal(db_commit(), DB_ERROR);
	db_rollback();
	db_idle();
	assert_int_equal(db_begin(), DB_UNAVAILABLE);
	db_thread_close();
	PQclear(garbage);
}

/* Statement names: "s" + the 64-bit FNV-1a hash of the text in hex (published test vectors of
 * FNV-1a), so the same text has the same name in every process and on every connection. */
static void test_stmt_name(void **state)
{
	(void)state;
	char name[DB_STMT_NAME_LEN];
	db_stmt_name("", name);
	assert_string_equal(name, "scbf29ce484222325");
	db_stmt_name("a", name);
	assert_string_equal(name, "saf63dc4c8601ec8c");
	db_stmt_name("foobar", name);
	assert_string_equal(name, "s85944171f73967e8");
	db_stmt_name("SELECT 1", name);
	assert_int_equal(strlen(name), DB_STMT_NAME_LEN - 1);
	char other[DB_STMT_NAME_LEN];
	db_stmt_name("SELECT 2", other);
	assert_string_not_equal(name, other);
}

/* The pool's bookkeeping when every connection attempt fails: many threads, one slot, every
 * call answers DB_UNAVAILABLE (none waits out DB_POOL_WAIT_MS: a failed attempt gives its slot
 * back at once), and afterwards no slot is left lent (the db_pool_in_use gauge reads 0). */
#define POOL_THREADS 8
#define POOL_CALLS 25

/* What one worker saw, for the main thread to check (cmocka's asserts belong to the thread
 * that runs the test). */
struct pool_seen {
	int unavailable; /* calls answered DB_UNAVAILABLE */
	int other;       /* calls answered anything else */
	enum db_status first_other;
};

static void *pool_worker(void *arg)
{
	struct pool_seen *seen = arg;
	for (int i = 0; i < POOL_CALLS; i++) {
		enum db_status st = i % 3 == 0   ? db_exec(NULL, "SELECT 1", 0, NULL)
		                    : i % 3 == 1 ? db_write(NULL, "DELETE FROM t", 0, NULL)
		                                 : db_begin();
		if (st == DB_UNAVAILABLE)
			seen->unavailable++;
		else if (seen->other++ == 0)
			seen->first_other = st;
		db_idle();
	}
	db_thread_close();
	return NULL;
}

static void test_pool_gives_back_every_slot(void **state)
{
	(void)state;
	log_init("test_db", LOG_LEVEL_ERROR);
	db_configure("postgresql://nobody@127.0.0.1:1/none", "test_db", 1000);
	db_pool_configure(1, 5000);
	assert_int_equal(db_pool_size(), 1);
	pthread_t t[POOL_THREADS];
	struct pool_seen seen[POOL_THREADS] = {{0}};
	for (int i = 0; i < POOL_THREADS; i++)
		assert_int_equal(pthread_create(&t[i], NULL, pool_worker, &seen[i]), 0);
	for (int i = 0; i < POOL_THREADS; i++)
		assert_int_equal(pthread_join(t[i], NULL), 0);
	for (int i = 0; i < POOL_THREADS; i++) {
		if (seen[i].other)
			fail_msg("thread %d: %d call(s) not DB_UNAVAILABLE, the first %s", i,
			         seen[i].other, db_status_str(seen[i].first_other));
		assert_int_equal(seen[i].unavailable, POOL_CALLS);
	}
	char *text = metrics_render("");
	assert_non_null(text);
	assert_non_null(strstr(text, "\ndb_pool_size 1\n"));
	assert_non_null(strstr(text, "\ndb_pool_in_use 0\n"));
	assert_non_null(strstr(text, "\ndb_pool_waiters 0\n"));
	assert_non_null(strstr(text, "\ndb_pool_timeouts_total 0\n"));
	assert_non_null(strstr(text, "db_pool_wait_seconds_count "));
	free(text);

	/* 0 = the default size, 2 x online processors + 1. */
	db_pool_configure(0, 1000);
	assert_int_equal(db_pool_size(), 2 * (int)sysconf(_SC_NPROCESSORS_ONLN) + 1);
	db_pool_close();
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_classify),
		cmocka_unit_test(test_classify_to_http),
		cmocka_unit_test(test_classify_odd_input),
		cmocka_unit_test(test_err_kind),
		cmocka_unit_test(test_status_str),
		cmocka_unit_test(test_status_reply),
		cmocka_unit_test(test_result_helpers),
		cmocka_unit_test(test_unreachable_database),
		cmocka_unit_test(test_stmt_name),
		cmocka_unit_test(test_pool_gives_back_every_slot),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
