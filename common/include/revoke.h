/* revoke: access-token revocation, "tokens of user U issued before T are void"
 * (docs/architecture.md, "Revocation").
 *
 * Each service that checks tokens keeps the table token_revocations (user_id, not_before) in its
 * own database: user-service writes it in the transaction of the change (a user disabled, deleted
 * or given another role), room- and reservation-service from the user_events that say so.  This
 * module is its one owner:
 * - the table's schema (applied by svc.c with the shared library's migrations);
 * - the decoding of those user_events and the SQL that applies them (monotonic: a late or
 *   repeated event never moves not_before back);
 * - a cache of the table in memory, re-read by a background thread every REVOKE_REFRESH_MS, so
 *   that every replica sharing a database refuses a revoked token within about a second;
 *   revoke_check() is what the request layer asks for each verified token (a cache that is not
 *   current is not trusted: the table is asked instead, and without it the answer is unknown);
 * - the SQL function revoke_guard(user_id, issued_ms), the check that a writer runs inside its
 *   own transaction (reservation-service's booking function calls it), so a write racing with a
 *   revocation either commits before it (and the revoker's transaction sees the row) or is
 *   refused.
 *
 * The rule: a token is void when it was issued (auth_user.issued_ms, millisecond precision)
 * strictly before the user's not_before.  not_before is the change's time as the database
 * clock gave it, truncated to milliseconds; the events carry it as occurred_at.
 *
 * All functions are thread-safe. */
#ifndef REVOKE_H
#define REVOKE_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "db.h"
#include "kafka.h"

#define REVOKE_REFRESH_MS 500    /* the cache re-reads the table this often */
#define REVOKE_MAX_AGE_MS 5000   /* older than this, the cache is not current */
#define REVOKE_NOTE_TTL_MS 10000 /* how long revoke_note() entries outlive their table row read */

/* The sweeper's statement (sweep.h) for token_revocations: rows whose not_before is older than
 * REVOKE_RETENTION_S can void no token that has not expired (JWT_ACCESS_TTL_SECONDS is at most
 * 86400; the margin covers the verification leeway and clock skew); the cache and
 * revoke_guard() would find nothing in them. */
#define REVOKE_RETENTION_S 87000
extern const char revoke_sweep_sql[];

/* The DDL of token_revocations: a static string for the shared migrations of svc.c. */
extern const char revoke_schema_sql[];
/* The DDL of the SQL function revoke_guard(user_id bigint, issued_ms bigint) RETURNS boolean,
 * for the shared migrations of svc.c.  Inside the caller's transaction it waits for a revocation
 * of user_id being applied by another transaction to end (a shared lock on what revoke_apply
 * locks, held until the caller's transaction ends), then tells whether a token issued at
 * issued_ms (Unix milliseconds) is void.  Call it before the transaction's first row lock (so
 * no lock cycle can form with a revoker waiting for rows). */
extern const char revoke_guard_schema_sql[];

/* The advisory lock of one user's revocations (SQL arguments of pg_advisory_xact_lock, the user
 * id being $1), which revoke_apply takes and revoke_guard shares: PostgreSQL's two-key space
 * (which never meets the one-key locks of the outbox publisher and the migrations), class 7101,
 * the user id folded into the second key.  Two users sharing a key only wait for each other.
 * revoke_guard_schema_sql spells it out (a released migration): changing it here takes a new
 * migration that replaces revoke_guard, or the two lock different keys (test_revoke). */
#define REVOKE_LOCK_KEY "7101, ($1::bigint % 2147483647)::int"

/* ---- user_events ---- */

enum revoke_event_kind {
	REVOKE_EVENT_NONE,         /* another event type: nothing to do */
	REVOKE_EVENT_DELETED,      /* user_deleted: void */
	REVOKE_EVENT_DISABLED,     /* user_disabled: void */
	REVOKE_EVENT_ENABLED,      /* user_enabled: nothing to void (signing in again works) */
	REVOKE_EVENT_ROLE_CHANGED, /* user_role_changed: void (the tokens carry the old role) */
};

/* A decoded user event; the strings are borrowed from the document it was decoded from. */
struct revoke_event {
	enum revoke_event_kind kind;
	long long user_id;       /* ≥ 1 unless kind is REVOKE_EVENT_NONE */
	const char *occurred_at; /* RFC 3339 with an offset, or NULL when absent */
	const char *role;        /* ROLE_CHANGED: "admin" or "employee" */
};

/* Reads a user_events document (borrowed; the event borrows from it).  Returns false with the
 * reason in why for a user event that can never be applied (bad user_id, occurred_at or role):
 * the consumer sends it to the DLQ.  A document of another event type is REVOKE_EVENT_NONE.  Pure;
 * the document must be an object with a string event_type. */
bool revoke_event_decode(const json_t *doc, struct revoke_event *ev, char *why, size_t whylen);

/* Whether an event of this kind voids the user's earlier tokens. */
bool revoke_event_voids(enum revoke_event_kind kind);

/* ---- the table (SQL, on the calling thread's connection) ---- */

/* Records that the tokens of user_id issued before at (RFC 3339; NULL = the database's clock
 * now) are void, reason being the event type.  Run it inside the transaction of what the
 * revocation goes with: it takes the user's revocation lock (see revoke_guard_schema_sql) until that
 * transaction ends.  not_before never moves back, and never lies more than a minute ahead of
 * the database's clock (a later time is cut to that, and logged).  *not_before_ms (may be NULL) receives the
 * user's not_before after the change, in Unix milliseconds. */
enum db_status revoke_apply(long long user_id, const char *at, const char *reason,
                            long long *not_before_ms);

/* A consumer handler (kafka_handler_fn) for a service whose only business with user_events is
 * this table (room-service): applies what voids tokens, ignores the rest, KAFKA_POISON for what
 * can never be applied, KAFKA_RETRY while the database is away.  arg is unused. */
enum kafka_handled revoke_consume(const char *topic, const char *key, size_t keylen,
                                  const char *value, size_t len, void *arg, char *why,
                                  size_t whylen);

/* ---- the cache ---- */

enum revoke_verdict {
	REVOKE_VALID,   /* not revoked */
	REVOKE_REVOKED, /* issued before the user's not_before */
	REVOKE_UNKNOWN, /* not known: the cache is not current (revoke_check: nor the database) */
};

/* Reads the table once (a failure is logged: the thread tries again) and starts the thread that
 * re-reads it every REVOKE_REFRESH_MS on a connection of its own.  false when the thread cannot
 * be started.  Call after the migrations; once per process. */
bool revoke_start(void);
/* Stops the thread and forgets the cache (a no-op when not started). */
void revoke_stop(void);
/* Seconds since the cache was last read from the table (-1 when never), for /metrics. */
double revoke_age_seconds(void);
/* The verdict on a token of user_id issued at issued_ms (Unix milliseconds), from the cache.
 * When the cache is not current, asks the table on the calling thread's database connection
 * instead (db_exec); REVOKE_UNKNOWN when the database does not answer either. */
enum revoke_verdict revoke_check(long long user_id, long long issued_ms);
/* Tells the cache at once what this process has just committed to the table (not_before in
 * Unix milliseconds), instead of waiting for the next re-read; kept for REVOKE_NOTE_TTL_MS. */
void revoke_note(long long user_id, long long not_before_ms);

/* ---- the cache's logic with an explicit clock (unit tests; the functions above use these) ---- */

struct revoke_entry {
	long long user_id;
	long long not_before_ms;
};

/* Replaces the cache with entries[0..n) (copied; any order; a user may repeat, the latest
 * not_before counts), read by a query that started at now_mono_ms (monotonic milliseconds).
 * false when out of memory (the cache is left as it was). */
bool revoke_load(const struct revoke_entry *entries, size_t n, long long now_mono_ms);
/* revoke_note() at monotonic time now_mono_ms. */
void revoke_note_at(long long user_id, long long not_before_ms, long long now_mono_ms);
/* The cache's own verdict at monotonic time now_mono_ms, without the database: REVOKE_UNKNOWN
 * when the cache is not current (never loaded, or loaded more than REVOKE_MAX_AGE_MS ago) and
 * does not know the token to be void. */
enum revoke_verdict revoke_check_at(long long user_id, long long issued_ms, long long now_mono_ms);
/* Forgets everything (never loaded again until revoke_load). */
void revoke_clear(void);

#endif
