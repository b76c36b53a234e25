#include "revoke.h"

#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "countof.h"
#include "jsonx.h"
#include "log.h"
#include "timefmt.h"

/* Rows older than REVOKE_RETENTION_S cannot void a token that has not expired yet, so the cache
 * leaves them out (and the sweeper deletes them). */
#define REVOKE_STR_(x) #x
#define REVOKE_STR(x) REVOKE_STR_(x)
#define REVOKE_HORIZON_S REVOKE_STR(REVOKE_RETENTION_S)
#define REVOKE_NOTES_MAX 256

/* The age test twice: a revocation renewed by revoke_apply() while the DELETE waits for its row
 * is re-checked against the outer condition and stays. */
const char revoke_sweep_sql[] =
	"DELETE FROM token_revocations WHERE user_id = ANY (ARRAY("
	"SELECT user_id FROM token_revocations "
	"WHERE not_before < now() - make_interval(secs => $1::bigint) LIMIT $2::int)) "
	"AND not_before < now() - make_interval(secs => $1::bigint)";

/* How far ahead of the database's clock a revocation's time may lie (SQL interval). */
#define REVOKE_FUTURE_MARGIN "interval '1 minute'"
/* The not_before of a row in Unix milliseconds (not_before is truncated to milliseconds). */
#define REVOKE_NOT_BEFORE_MS "(extract(epoch FROM not_before) * 1000)::bigint"

const char revoke_schema_sql[] =
	"CREATE TABLE token_revocations (\n"
	"    user_id     bigint PRIMARY KEY,\n"
	"    not_before  timestamptz NOT NULL,  -- the user's tokens issued before this are void\n"
	"    reason      text NOT NULL,         -- the event that set not_before\n"
	"    updated_at  timestamptz NOT NULL DEFAULT now()\n"
	");\n"
	"CREATE INDEX token_revocations_not_before ON token_revocations (not_before);\n";

/* Two statements in a function that is not STABLE: each takes a new snapshot, so the check sees
 * the revocation whose transaction the lock waited for (in one statement the snapshot would be
 * taken before the wait).  $1 is the user, $2 the token's issue time.  A released migration
 * (common 003): the lock key is spelled out, not REVOKE_LOCK_KEY, because databases keep the
 * function as first created whatever the macro says later; test_revoke checks that the two
 * agree. */
const char revoke_guard_schema_sql[] =
	"CREATE OR REPLACE FUNCTION revoke_guard(bigint, bigint)\n"
	"RETURNS boolean LANGUAGE plpgsql VOLATILE AS $fn$\n"
	"DECLARE revoked boolean;\n"
	"BEGIN\n"
	"    PERFORM pg_advisory_xact_lock_shared(7101, ($1::bigint % 2147483647)::int);\n"
	"    SELECT EXISTS (SELECT 1 FROM token_revocations WHERE user_id = $1\n"
	"        AND (extract(epoch FROM not_before) * 1000)::bigint > $2) INTO revoked;\n"
	"    RETURN revoked;\n"
	"END\n"
	"$fn$;\n";

/* ---- user_events ---- */

static const struct {
	const char *type;
	enum revoke_event_kind kind;
} revoke_event_types[] = {
	{"user_deleted", REVOKE_EVENT_DELETED},
	{"user_disabled", REVOKE_EVENT_DISABLED},
	{"user_enabled", REVOKE_EVENT_ENABLED},
	{"user_role_changed", REVOKE_EVENT_ROLE_CHANGED},
};

bool revoke_event_decode(const json_t *doc, struct revoke_event *ev, char *why, size_t whylen)
{
	const char *type = json_string_value(json_object_get(doc, "event_type"));
	memset(ev, 0, sizeof *ev);
	ev->kind = REVOKE_EVENT_NONE;
	for (size_t i = 0; type && i < countof(revoke_event_types); i++)
		if (strcmp(type, revoke_event_types[i].type) == 0)
			ev->kind = revoke_event_types[i].kind;
	if (ev->kind == REVOKE_EVENT_NONE)
		return true;
	json_t *id = json_object_get(doc, "user_id");
	const char *occurred = json_string_value(json_object_get(doc, "occurred_at"));
	const char *role = json_string_value(json_object_get(doc, "role"));
	struct timefmt_time t;
	if (!json_is_integer(id) || json_integer_value(id) < 1) {
		snprintf(why, whylen, "user_id missing");
		goto refuse;
	}
	if (occurred && (!timefmt_parse_rfc3339(occurred, &t) || !t.has_offset)) {
		snprintf(why, whylen, "occurred_at is not an RFC 3339 time");
		goto refuse;
	}
	if (ev->kind == REVOKE_EVENT_ROLE_CHANGED &&
	    (!role || (strcmp(role, "admin") != 0 && strcmp(role, "employee") != 0))) {
		snprintf(why, whylen, "role must be admin or employee");
		goto refuse;
	}
	ev->user_id = (long long)json_integer_value(id);
	ev->occurred_at = occurred;
	ev->role = ev->kind == REVOKE_EVENT_ROLE_CHANGED ? role : NULL;
	return true;
refuse:
	memset(ev, 0, sizeof *ev);
	ev->kind = REVOKE_EVENT_NONE;
	return false;
}

bool revoke_event_voids(enum revoke_event_kind kind)
{
	return kind == REVOKE_EVENT_DELETED || kind == REVOKE_EVENT_DISABLED ||
	       kind == REVOKE_EVENT_ROLE_CHANGED;
}

static const char *revoke_event_type(enum revoke_event_kind kind)
{
	for (size_t i = 0; i < countof(revoke_event_types); i++)
		if (revoke_event_types[i].kind == kind)
			return revoke_event_types[i].type;
	return "unknown";
}

/* ---- the table ---- */

enum db_status revoke_apply(long long user_id, const char *at, const char *reason,
                            long long *not_before_ms)
{
	char uid[24];
	PGresult *res = NULL;
	snprintf(uid, sizeof uid, "%lld", user_id);
	const char *by_user[] = {uid};
	const char *params[] = {uid, at, reason};
	enum db_status st = db_exec(NULL, "SELECT pg_advisory_xact_lock(" REVOKE_LOCK_KEY ")", 1,
	                            by_user);
	if (st != DB_OK)
		return st;
	/* A time more than REVOKE_FUTURE_MARGIN ahead of the database's clock (a malformed or
	 * forged event) is cut to that: taken as is, it would void every token the user ever gets,
	 * since not_before never moves back. */
	st = db_exec(&res,
	             "WITH v AS (SELECT date_trunc('milliseconds', "
	             "  COALESCE($2::timestamptz, clock_timestamp())) AS at, "
	             "  date_trunc('milliseconds', clock_timestamp() + " REVOKE_FUTURE_MARGIN
	             ") AS cap) "
	             "INSERT INTO token_revocations (user_id, not_before, reason) "
	             "SELECT $1::bigint, least(v.at, v.cap), $3::text FROM v "
	             "ON CONFLICT (user_id) DO UPDATE SET "
	             "  not_before = greatest(token_revocations.not_before, EXCLUDED.not_before), "
	             "  reason = CASE WHEN EXCLUDED.not_before > token_revocations.not_before "
	             "    THEN EXCLUDED.reason ELSE token_revocations.reason END, "
	             "  updated_at = now() "
	             "RETURNING " REVOKE_NOT_BEFORE_MS ", (SELECT v.at > v.cap FROM v)",
	             3, params);
	if (st == DB_OK && db_bool(res, 0, 1))
		log_warn(
			"revocation of user %lld (%s): time %s is in the future; not_before set to "
			"the database's time + " REVOKE_FUTURE_MARGIN,
			user_id, reason, at ? at : "now");
	if (st == DB_OK && not_before_ms)
		*not_before_ms = db_int(res, 0, 0);
	PQclear(res);
	return st;
}

/* Asks the table whether a token of user_id issued at issued_ms is void. */
static enum db_status revoke_lookup(long long user_id, long long issued_ms, bool *revoked)
{
	char uid[24], issued[24];
	PGresult *res = NULL;
	snprintf(uid, sizeof uid, "%lld", user_id);
	snprintf(issued, sizeof issued, "%lld", issued_ms);
	const char *params[] = {uid, issued};
	*revoked = false;
	enum db_status st = db_exec(
		&res,
		"SELECT EXISTS (SELECT 1 FROM token_revocations WHERE user_id = $1::bigint "
		"AND " REVOKE_NOT_BEFORE_MS " > $2::bigint)",
		2, params);
	if (st == DB_OK)
		*revoked = db_bool(res, 0, 0);
	PQclear(res);
	return st;
}

enum kafka_handled revoke_consume(const char *topic, const char *key, size_t keylen,
                                  const char *value, size_t len, void *arg, char *why,
                                  size_t whylen)
{
	struct revoke_event ev;
	enum kafka_handled h = KAFKA_POISON;
	json_t *doc = value ? jsonx_loadb(value, len, JSON_REJECT_DUPLICATES, NULL) : NULL;
	(void)topic;
	(void)key;
	(void)keylen;
	(void)arg;
	if (!json_is_object(doc) || !json_is_string(json_object_get(doc, "event_type"))) {
		snprintf(why, whylen, "not a JSON event");
		goto out;
	}
	if (!revoke_event_decode(doc, &ev, why, whylen))
		goto out;
	h = KAFKA_APPLIED;
	if (!revoke_event_voids(ev.kind))
		goto out;
	enum db_status st = db_begin();
	if (st == DB_OK)
		st = revoke_apply(ev.user_id, ev.occurred_at, revoke_event_type(ev.kind), NULL);
	if (st == DB_OK)
		st = db_commit();
	else
		db_rollback();
	if (st != DB_OK) {
		snprintf(why, whylen, "%s", db_status_str(st));
		/* Data the schema refuses will never apply; anything else may once the database is
		 * back. */
		h = st == DB_CHECK_VIOLATION ? KAFKA_POISON : KAFKA_RETRY;
		goto out;
	}
	log_info("user %lld: %s, tokens issued before %s are void", ev.user_id,
	         revoke_event_type(ev.kind), ev.occurred_at ? ev.occurred_at : "now");
out:
	json_decref(doc);
	return h;
}

/* ---- the cache ---- */

/* What the cache knows.  entries: sorted by user_id, one per user, replaced as a whole by
 * revoke_load(); notes: a ring of what this process committed since, each dropped after
 * REVOKE_NOTE_TTL_MS (by then a re-read has it from the table). */
static pthread_rwlock_t revoke_lock = PTHREAD_RWLOCK_INITIALIZER;
static struct revoke_entry *revoke_entries;
static size_t revoke_n;
static bool revoke_loaded;
static long long revoke_loaded_ms; /* monotonic start of the query that loaded entries */
static struct {
	long long user_id, not_before_ms, noted_ms;
} revoke_notes[REVOKE_NOTES_MAX];
static size_t revoke_nnotes, revoke_next_note;

static pthread_mutex_t revoke_thread_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_t revoke_thread;
static bool revoke_running;
static _Atomic bool revoke_stopping;

static int revoke_entry_cmp(const void *a, const void *b)
{
	const struct revoke_entry *x = a, *y = b;
	if (x->user_id != y->user_id)
		return x->user_id < y->user_id ? -1 : 1;
	return (x->not_before_ms > y->not_before_ms) - (x->not_before_ms < y->not_before_ms);
}

bool revoke_load(const struct revoke_entry *entries, size_t n, long long now_mono_ms)
{
	struct revoke_entry *copy = NULL;
	size_t kept = 0;
	if (n > 0) {
		copy = malloc(n * sizeof *copy);
		if (!copy)
			return false;
		memcpy(copy, entries, n * sizeof *copy);
		qsort(copy, n, sizeof *copy, revoke_entry_cmp);
		/* Sorted by user, then not_before: the last of each user's run is the latest. */
		for (size_t i = 0; i < n; i++) {
			if (kept > 0 && copy[kept - 1].user_id == copy[i].user_id)
				kept--;
			copy[kept++] = copy[i];
		}
	}
	pthread_rwlock_wrlock(&revoke_lock);
	struct revoke_entry *old = revoke_entries;
	revoke_entries = copy;
	revoke_n = kept;
	revoke_loaded = true;
	revoke_loaded_ms = now_mono_ms;
	pthread_rwlock_unlock(&revoke_lock);
	free(old);
	return true;
}

void revoke_note_at(long long user_id, long long not_before_ms, long long now_mono_ms)
{
	pthread_rwlock_wrlock(&revoke_lock);
	revoke_notes[revoke_next_note].user_id = user_id;
	revoke_notes[revoke_next_note].not_before_ms = not_before_ms;
	revoke_notes[revoke_next_note].noted_ms = now_mono_ms;
	revoke_next_note = (revoke_next_note + 1) % REVOKE_NOTES_MAX;
	if (revoke_nnotes < REVOKE_NOTES_MAX)
		revoke_nnotes++;
	pthread_rwlock_unlock(&revoke_lock);
}

void revoke_note(long long user_id, long long not_before_ms)
{
	revoke_note_at(user_id, not_before_ms, timefmt_mono_ms());
}

/* The user's latest not_before in what the cache holds (LLONG_MIN: none).  Under revoke_lock. */
static long long revoke_not_before(long long user_id, long long now_mono_ms)
{
	long long nb = LLONG_MIN;
	size_t lo = 0, hi = revoke_n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (revoke_entries[mid].user_id < user_id)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo < revoke_n && revoke_entries[lo].user_id == user_id)
		nb = revoke_entries[lo].not_before_ms;
	for (size_t i = 0; i < revoke_nnotes; i++)
		if (revoke_notes[i].user_id == user_id &&
		    now_mono_ms - revoke_notes[i].noted_ms <= REVOKE_NOTE_TTL_MS &&
		    revoke_notes[i].not_before_ms > nb)
			nb = revoke_notes[i].not_before_ms;
	return nb;
}

static bool revoke_fresh_locked(long long now_mono_ms)
{
	return revoke_loaded && now_mono_ms - revoke_loaded_ms <= REVOKE_MAX_AGE_MS;
}

enum revoke_verdict revoke_check_at(long long user_id, long long issued_ms, long long now_mono_ms)
{
	pthread_rwlock_rdlock(&revoke_lock);
	/* What is known to be revoked is refused even from a stale cache. */
	enum revoke_verdict v = issued_ms < revoke_not_before(user_id, now_mono_ms) ? REVOKE_REVOKED
	                        : revoke_fresh_locked(now_mono_ms)                  ? REVOKE_VALID
	                                                           : REVOKE_UNKNOWN;
	pthread_rwlock_unlock(&revoke_lock);
	return v;
}

enum revoke_verdict revoke_check(long long user_id, long long issued_ms)
{
	bool revoked = false;
	enum revoke_verdict v = revoke_check_at(user_id, issued_ms, timefmt_mono_ms());
	/* A cache that is not current (not loaded yet, or its thread cannot read the table) is
	 * no answer: the table is, as long as the database answers this thread. */
	if (v == REVOKE_UNKNOWN && revoke_lookup(user_id, issued_ms, &revoked) == DB_OK)
		v = revoked ? REVOKE_REVOKED : REVOKE_VALID;
	return v;
}

double revoke_age_seconds(void)
{
	pthread_rwlock_rdlock(&revoke_lock);
	double age = revoke_loaded ? (double)(timefmt_mono_ms() - revoke_loaded_ms) / 1000.0 : -1;
	pthread_rwlock_unlock(&revoke_lock);
	return age;
}

void revoke_clear(void)
{
	pthread_rwlock_wrlock(&revoke_lock);
	free(revoke_entries);
	revoke_entries = NULL;
	revoke_n = 0;
	revoke_loaded = false;
	revoke_loaded_ms = 0;
	revoke_nnotes = revoke_next_note = 0;
	pthread_rwlock_unlock(&revoke_lock);
}

/* Reads the table into the cache (on this thread's connection).  false when the database did
 * not answer or memory ran out. */
static bool revoke_refresh(void)
{
	PGresult *res = NULL;
	struct revoke_entry *entries = NULL;
	long long started = timefmt_mono_ms();
	bool ok = false;
	enum db_status st = db_exec(
		&res,
		"SELECT user_id, " REVOKE_NOT_BEFORE_MS " FROM token_revocations "
		"WHERE not_before > now() - make_interval(secs => " REVOKE_HORIZON_S ")",
		0, NULL);
	if (st != DB_OK)
		goto out;
	size_t n = (size_t)PQntuples(res);
	if (n > 0 && !(entries = malloc(n * sizeof *entries)))
		goto out;
	for (size_t i = 0; i < n; i++) {
		entries[i].user_id = db_int(res, (int)i, 0);
		entries[i].not_before_ms = db_int(res, (int)i, 1);
	}
	ok = revoke_load(entries, n, started);
out:
	free(entries);
	PQclear(res);
	return ok;
}

static void *revoke_main(void *arg)
{
	bool failing = false;
	(void)arg;
	while (!revoke_stopping) {
		timefmt_sleep_unless(REVOKE_REFRESH_MS, &revoke_stopping);
		if (revoke_stopping)
			break;
		bool ok = revoke_refresh();
		if (!ok && !failing)
			log_warn(
				"token revocations: cannot re-read the table; authenticated requests "
				"answer 503 once the cache is %d ms old",
				REVOKE_MAX_AGE_MS);
		else if (ok && failing)
			log_info("token revocations: the table is read again");
		failing = !ok;
	}
	db_thread_close();
	return NULL;
}

bool revoke_start(void)
{
	bool ok = true;
	pthread_mutex_lock(&revoke_thread_lock);
	if (!revoke_running) {
		if (!revoke_refresh())
			log_warn("token revocations: the first read of the table failed; retrying");
		revoke_stopping = false;
		revoke_running = pthread_create(&revoke_thread, NULL, revoke_main, NULL) == 0;
		ok = revoke_running;
	}
	pthread_mutex_unlock(&revoke_thread_lock);
	return ok;
}

void revoke_stop(void)
{
	pthread_mutex_lock(&revoke_thread_lock);
	if (revoke_running) {
		revoke_stopping = true;
		pthread_join(revoke_thread, NULL);
		revoke_running = false;
	}
	pthread_mutex_unlock(&revoke_thread_lock);
	revoke_clear();
}
