/* db: PostgreSQL access.  A bounded pool per process (db_pool_configure: DB_POOL_SIZE connections,
 * opened on first need, replaced after a failure) lends a thread a connection for its database
 * work: one statement, or one whole transaction, never more; a thread without work in progress
 * holds none, so the database sees at most DB_POOL_SIZE request backends however many threads
 * serve HTTP.  A thread that finds no connection free within DB_POOL_WAIT_MS gets DB_BUSY.
 * Statements are parameterised ($n), prepared once per connection under a name derived from
 * their text (db_stmt_name), and errors are classified by SQLSTATE.
 * Reads go through db_exec(), writes through db_write() or a transaction: db_begin() and then
 * db_commit()/db_rollback(); the request layer calls db_idle() after every request so an open
 * transaction can never leak into the next one, and the connection goes back to the pool.  A write is never reported failed when it
 * committed, nor done when it did not: every write runs in an explicit transaction whose id is
 * read before COMMIT, and when COMMIT's answer is lost a fresh session asks what became of it
 * (docs/architecture.md#guarantees).  Also: the migration runner. */
#ifndef DB_H
#define DB_H

#include <stdbool.h>
#include <stddef.h>

#include <libpq-fe.h>

#include "errors.h"

/* The one table of database outcomes: the status, the error kind a handler answers with, the
 * text for logs (db_status_str) and the message the client is shown ("" = the kind's default, so
 * nothing about the database leaks from an internal error).  db_classify() maps SQLSTATEs. */
#define DB_STATUSES(X)                                                                           \
	X(DB_OK, ERR_NONE, "ok", "")                                                             \
	/* 23505 */                                                                              \
	X(DB_UNIQUE_VIOLATION, ERR_CONFLICT, "unique violation", "unique violation")             \
	/* 23P01 */                                                                              \
	X(DB_EXCLUSION_VIOLATION, ERR_CONFLICT, "exclusion violation", "exclusion violation")    \
	/* 23503 */                                                                              \
	X(DB_FK_VIOLATION, ERR_VALIDATION_FAILED, "foreign key violation",                       \
	  "foreign key violation")                                                               \
	/* 23514, 23502, 22xxx data exceptions */                                                \
	X(DB_CHECK_VIOLATION, ERR_VALIDATION_FAILED, "check violation", "check violation")       \
	/* 40001 serialization failure, 40P01 deadlock */                                        \
	X(DB_RETRY, ERR_UNAVAILABLE, "serialization failure", "database unavailable, try again") \
	/* connection failure, class 08, 57P0x, 57014 timeout, class 53 */                       \
	X(DB_UNAVAILABLE, ERR_UNAVAILABLE, "database unavailable",                               \
	  "database unavailable, try again")                                                     \
	/* no pooled connection free within DB_POOL_WAIT_MS */                                   \
	X(DB_BUSY, ERR_UNAVAILABLE, "connection pool busy", "server busy, try again")            \
	/* RS429: a quota a trigger enforces (reservation-service's mail recipients per hour) */ \
	X(DB_QUOTA_EXCEEDED, ERR_RATE_LIMITED, "quota exceeded",                                 \
	  "quota exceeded, try again later")                                                     \
	/* anything else: a bug */                                                               \
	X(DB_ERROR, ERR_INTERNAL, "database error", "")

enum db_status {
/* clang-format off */
#define DB_ENUM_(status, kind, text, reply) status,
	DB_STATUSES(DB_ENUM_)
#undef DB_ENUM_
	DB_STATUS_COUNT
	/* clang-format on */
};

/* A numbered schema change, embedded in the binary by tools/embed-migrations.sh. */
struct db_migration {
	int version;
	const char *name;
	const char *sql;
};

/* The migrations of one owner (a service, or the shared library), recorded in a ledger table of
 * their own so that each owner numbers its versions independently.  Everything is borrowed. */
struct db_migration_set {
	const char *ledger; /* the ledger table: a constant lower-case identifier */
	const struct db_migration *migrations;
	size_t n;
};

/* Sets the connection string (a libpq URL or key=value string, borrowed, must outlive all
 * threads), the application_name and the server-side statement timeout.  Call once before
 * threads start. */
void db_configure(const char *conninfo, const char *app_name, int statement_timeout_ms);
/* Adds a server setting (name=value, constants without spaces or backslashes) to every session
 * this process opens, after db_configure() and before threads start. */
void db_configure_setting(const char *name, const char *value);

/* Sizes the pool: at most size connections (0 = 2 × online processors + 1), and a thread waits
 * at most wait_ms for one to be free.  Registers the pool's gauges in metrics (db_pool_size,
 * db_pool_in_use, db_pool_waiters; db_pool_timeouts_total and the db_pool_wait_seconds histogram
 * are recorded as they happen).  Call once before threads start; without it the pool has the
 * default size and waits DB_POOL_DEFAULT_WAIT_MS. */
void db_pool_configure(int size, int wait_ms);
#define DB_POOL_MAX 1024
#define DB_POOL_DEFAULT_WAIT_MS 1000
/* The pool's size once configured (the default computed when it was 0). Thread-safe. */
int db_pool_size(void);
/* Closes the connections of the pool that no thread holds (process exit). */
void db_pool_close(void);

/* The connection this thread holds, borrowing one from the pool (and connecting or reconnecting
 * it) as needed; NULL when none is free in time or the database is unreachable.  The thread
 * keeps it until db_idle(), db_rollback(), db_commit() or db_thread_close(), or until a db_*
 * call that finds no transaction open ends its work.  Borrowed: the next db_* call on this
 * thread may close and replace it, so never keep it across one, and never share it with
 * another thread. */
PGconn *db_conn(void);
/* A new connection with the same settings, owned by the caller (PQfinish() it); NULL when the
 * database is unreachable.  For work that must stay on one session, such as holding a session
 * advisory lock: nothing in this module closes or replaces it.  Thread-safe. */
PGconn *db_open(void);
/* Gives back the connection this thread holds, if any (rolling back what it left open); thread
 * exit. */
void db_thread_close(void);

/* Runs one parameterised statement on this thread's connection (borrowed for the statement when
 * no transaction is open; DB_BUSY when none is free in time).  params are text values (NULL
 * = SQL NULL).  On DB_OK *res (if res is non-NULL) receives the result, which the caller
 * PQclear()s; on failure it is NULL.  Outside a transaction a broken connection is re-opened
 * and the statement run once more, so it may run twice: use it there only for reads (and
 * statements whose repetition changes nothing); a write goes through db_write().  Inside a
 * transaction it never retries, and when the transaction's connection is gone it answers
 * DB_UNAVAILABLE rather than run the statement on a new session outside the transaction. */
enum db_status db_exec(PGresult **res, const char *sql, int nparams, const char *const *params);
/* The same, but never prepared: planned for its parameters at every run.  For a read whose best
 * plan depends on the values, where a prepared statement's generic plan (which PostgreSQL may
 * settle on after five runs) would be far worse for some of them (e.g. a rare value of a GIN
 * condition next to an ORDER BY that an index returns in order). */
/* Runs a read whose answer is one number (the first column of the first row, e.g. a gauge's
 * value): that number, or fallback when the statement fails or answers no row. */
double db_exec_number(const char *sql, int nparams, const char *const *params, double fallback);

enum db_status db_exec_planned(PGresult **res, const char *sql, int nparams,
                               const char *const *params);
/* The same on a connection from db_open() (borrowed; one thread at a time), unprepared
 * (PQexecParams), and it never closes, replaces or retries it: after a failure the caller decides what the session is still worth
 * (libpq may keep calling a connection OK that the server has already ended). */
enum db_status db_exec_on(PGconn *c, PGresult **res, const char *sql, int nparams,
                          const char *const *params);

/* Runs one statement that changes data; same arguments and result as db_exec().  Inside a
 * transaction (db_begin) it is one statement of that transaction.  Outside one it is its own
 * transaction: BEGIN, the transaction id and the statement in one round trip (pipeline), then
 * COMMIT in a second.  When the connection breaks before COMMIT was sent nothing committed and
 * the whole write is run once more on a new connection; when COMMIT's answer is lost the
 * outcome is asked for on a new connection (see db_commit) and DB_OK means it committed, with
 * the statement's result.  DB_UNAVAILABLE means it did not commit, or (rarely, logged as an
 * error) that the database cannot tell. */
enum db_status db_write(PGresult **res, const char *sql, int nparams, const char *const *params);

/* Opens a transaction on a connection borrowed for it (held until db_commit or db_rollback)
 * and reads its id (one round trip; re-tried once on a new connection when the old one turns
 * out broken).  DB_ERROR when one is open, DB_BUSY when no connection is free in time. */
enum db_status db_begin(void);
/* Commits the transaction.  DB_OK only when it committed.  When COMMIT's answer is lost, new
 * sessions ask pg_xact_status(): 'committed' is DB_OK, 'aborted' DB_UNAVAILABLE.  While no
 * session can be opened they keep trying for up to DB_RESOLVE_UNREACHABLE_MS; a transaction
 * still 'in progress' after DB_RESOLVE_MS (its old session not yet ended by the server) has its
 * backend terminated and is asked about once more.  When the outcome stays unknown the result
 * is DB_UNAVAILABLE although the transaction may have committed (logged as an error).
 * Afterwards no transaction is open, whatever the result. */
enum db_status db_commit(void);
void db_rollback(void);
/* Leaves the connection idle (rolls back a transaction that was left open) and gives it back to
 * the pool.  The request layer calls it after every request. */
void db_idle(void);

/* The name under which sql is prepared: "s" and the 16 hex digits of the 64-bit FNV-1a hash of
 * its text (two texts with the same hash: the second runs unprepared).  name receives
 * DB_STMT_NAME_LEN bytes.  Thread-safe. */
#define DB_STMT_NAME_LEN 18
void db_stmt_name(const char *sql, char name[DB_STMT_NAME_LEN]);
/* The most statements prepared on one connection; further ones run unprepared. */
#define DB_STMT_MAX 256

/* How long db_commit()/db_write() keep asking about a transaction whose COMMIT answer was lost
 * and that is still in progress before they end its session (milliseconds). */
#define DB_RESOLVE_MS 2000
/* How long they keep trying while no session can be opened or none answers (a restart or
 * failover of PostgreSQL): past it the outcome is unknown and the write answers 503. */
#define DB_RESOLVE_UNREACHABLE_MS 10000

/* Classifies a SQLSTATE (five characters, may be NULL). */
enum db_status db_classify(const char *sqlstate);
/* The error kind a handler should answer with for a failed status (ERR_NONE for DB_OK,
 * ERR_INTERNAL for a value outside the table). */
enum err_kind db_err_kind(enum db_status st);
/* The status in words, for logs.  Static string. */
const char *db_status_str(enum db_status st);
/* The message a client is shown for a failed status; "" = the error kind's default message.
 * Static string. */
const char *db_status_reply(enum db_status st);

/* How recently the database must have answered a pooled statement for a busy pool to read as
 * up (db_ping). */
#define DB_PING_BUSY_FRESH_MS 10000

/* SELECT 1 through the pool (db_exec); *ms receives the time it took, the wait for a
 * connection included.  True when the database answered; when every pooled connection is busy
 * (DB_BUSY), true only if the database answered a statement on a pooled connection (a result
 * or an SQL error) within DB_PING_BUSY_FRESH_MS: a saturated pool must not read as a database
 * that is down (readiness would take every replica out under load), but slots all stuck on a
 * database that stopped answering (blackholed, paused) must.  Thread-safe. */
bool db_ping(double *ms);

/* Applies, set after set, the migrations that each set's ledger does not list yet, each in its
 * own transaction, under a session advisory lock so that concurrent replicas migrate once.
 * Runs on a connection of its own whose statement_timeout is timeout_ms, which bounds each
 * statement of a migration (the requests' shorter timeout does not apply).  While another
 * instance holds the lock it asks again every DB_MIGRATION_LOCK_POLL_MS for up to timeout_ms,
 * calling wait(DB_MIGRATION_LOCK_POLL_MS) in between (NULL: it sleeps): a wait that returns
 * true (a stop signal arrived) ends the attempt.  On failure writes a one-line reason into err
 * ("database unreachable" when no connection could be made).  Thread-safe. */
bool db_migrate(const struct db_migration_set *sets, size_t nsets, int timeout_ms,
                bool (*wait)(long ms), char *err, size_t errlen);
#define DB_MIGRATION_LOCK_POLL_MS 1000

/* SQL text: the timestamptz expression col as the services write every time they return or
 * publish, RFC 3339 in UTC with milliseconds ("2026-11-23T10:00:00.000Z"). */
#define DB_TS_MS(col) "to_char(" col " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')"

/* One page of a keyset-paginated list: the JSON documents in column 0 of the first `limit` rows
 * of res (rows whose text is not JSON are skipped) become a new array in *list (owned by the
 * caller); when res holds more than `limit` rows (the query asked for limit + 1), *next receives
 * the cursor of the last row of the page, the array [column 1 as text, column 2 as integer],
 * owned by the caller, else NULL.  res is borrowed.  Thread-safe. */
void db_json_page(const PGresult *res, long long limit, json_t **list, json_t **next);

/* Helpers for reading results: the value or NULL for SQL NULL (borrowed from res). */
const char *db_value(const PGresult *res, int row, int col);
long long db_int(const PGresult *res, int row, int col);
bool db_bool(const PGresult *res, int row, int col);

#endif
