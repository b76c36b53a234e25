#include "db.h"

#include <assert.h>
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "metrics.h"
#include "timefmt.h"

static const char *db_conninfo;
static const char *db_app_name = "meeting-rooms";
static char db_options[256] = "";

/* Dates and times the server writes as text read the same whatever the server's, the
 * database's or the environment's DateStyle (PGDATESTYLE): ISO output, year-month-day input.
 * The SQL of the services formats what it hands over with to_char as well; this is the net
 * below it, set like client_encoding on every connection. */
#define DB_DATESTYLE "-c datestyle=ISO,YMD"

/* The explicit transaction open on this thread's connection (db_begin, or db_write's own):
 * its id (xid8) and when it began by the server's clock (epoch seconds), both as text, kept to
 * ask about its outcome when COMMIT's answer is lost.  xid[0] == '\0': none is open. */
struct db_tx {
	char xid[24];
	char began[40];
};
static _Thread_local struct db_tx db_tl_tx;

void db_configure(const char *conninfo, const char *app_name, int statement_timeout_ms)
{
	db_conninfo = conninfo;
	db_app_name = app_name;
	snprintf(db_options, sizeof db_options, "-c statement_timeout=%d " DB_DATESTYLE,
	         statement_timeout_ms);
}

void db_configure_setting(const char *name, const char *value)
{
	size_t len = strlen(db_options);
	int n = snprintf(db_options + len, sizeof db_options - len, " -c %s=%s", name, value);
	assert(n > 0 && (size_t)n < sizeof db_options - len); /* the settings are constants */
	(void)n;
}

/* Server notices (e.g. "already exists, skipping") go to the debug log, not raw stderr. */
static void db_notice(void *arg, const char *message)
{
	(void)arg;
	log_debug("database notice: %s", message);
}

/* A new connection with the suite's settings; options is libpq's "options" (server settings,
 * "-c name=value …"). */
static PGconn *db_connect(const char *options)
{
	/* The URL is expanded first; the keywords after it set what every connection needs. */
	/* client_encoding: the services read and write UTF-8 only (jsonx_text copies text as it
	 * comes), whatever the server's or the environment's default. */
	const char *const keys[] = {"dbname",
	                            "connect_timeout",
	                            "application_name",
	                            "options",
	                            "keepalives",
	                            "keepalives_idle",
	                            "keepalives_interval",
	                            "keepalives_count",
	                            "client_encoding",
	                            NULL};
	const char *const vals[] = {db_conninfo, "3",  db_app_name, options, "1",
	                            "30",        "10", "3",         "UTF8",  NULL};
	PGconn *c = PQconnectdbParams(keys, vals, 1);
	if (!c)
		return NULL;
	if (PQstatus(c) != CONNECTION_OK) {
		log_warn("database connection failed: %s", PQerrorMessage(c));
		PQfinish(c);
		return NULL;
	}
	PQsetNoticeProcessor(c, db_notice, NULL);
	return c;
}

PGconn *db_open(void)
{
	return db_connect(db_options);
}

/* ---- the pool ----
 *
 * A slot is a place for one connection.  A thread holds at most one slot (db_tl_slot), from its
 * first statement until its work is done (the statement, or the transaction); the slots nobody
 * holds are on a stack, the last one given back on top, so that a light load keeps reusing a
 * few warm connections and the rest are never opened.  A held slot belongs to its thread alone:
 * its connection is opened, replaced and closed outside the lock, and with it goes the set of
 * statements prepared on it. */

/* A statement prepared on a connection: the hash its name is made of, and its text. */
struct db_stmt {
	uint64_t hash;
	char *sql; /* owned */
};

struct db_slot {
	PGconn *conn;          /* NULL: not open (not yet, or no longer) */
	struct db_stmt *stmts; /* prepared on conn: nstmts of DB_STMT_MAX; owned */
	size_t nstmts;
};

/* A thread waiting for a slot, on its own stack, in a queue oldest first.  A slot given back
 * goes to the free stack, where the running thread that asks first takes it (the woken waiter
 * or a newcomer: the connection does not sit idle while a woken thread waits for a CPU), unless
 * the oldest waiter has waited DB_POOL_HANDOFF_US: then only it may take a free slot, a slot
 * given back while none is free goes straight to it (slot set, its cond signalled), and
 * newcomers queue behind it, so that nobody loses the slot to
 * newcomers again and again (the latency tail).  Handing every slot over cost ~10 % of the
 * reads' throughput (a convoy: the slot idle until the woken waiter ran); never handing it over
 * doubled their p99. */
struct db_waiter {
	pthread_cond_t cond; /* monotonic clock */
	struct db_slot *slot;
	struct db_waiter *next;
	long long since_us; /* queued at (timefmt_mono_us) */
	bool woken;         /* signalled to look at the free stack */
};

#define DB_POOL_HANDOFF_US 15000

static struct {
	pthread_mutex_t lock;
	bool ready; /* free[] filled */
	int size, wait_ms;
	int free[DB_POOL_MAX]; /* indices of the slots nobody holds: a stack */
	int nfree;
	int waiters;
	struct db_waiter *first, *last; /* the queue of waiters, oldest first */
	struct db_slot slots[DB_POOL_MAX];
} db_pool = {.lock = PTHREAD_MUTEX_INITIALIZER, .wait_ms = DB_POOL_DEFAULT_WAIT_MS};

static _Thread_local struct db_slot *db_tl_slot;

/* When the database last answered a statement on a pooled connection (timefmt_mono_ms), with a
 * result or an SQL error alike: it shows that the connections work, which db_ping needs when it
 * finds every one of them busy.  0: never. */
static _Atomic long long db_pool_answered_ms;

static void db_pool_answered(void)
{
	db_pool_answered_ms = timefmt_mono_ms();
}

#define DB_POOL_WAIT_METRIC "db_pool_wait_seconds"
#define DB_POOL_WAIT_HELP "Time a thread waited for a pooled database connection."
#define DB_POOL_TIMEOUTS_METRIC "db_pool_timeouts_total"
#define DB_POOL_TIMEOUTS_HELP \
	"Database work refused (503) because no pooled connection was free within DB_POOL_WAIT_MS."

/* 2 × the online processors + 1 (the classic start for a pool in front of PostgreSQL). */
static int db_pool_default_size(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);
	if (n < 1)
		n = 1;
	if (n > (DB_POOL_MAX - 1) / 2)
		n = (DB_POOL_MAX - 1) / 2;
	return (int)(2 * n + 1);
}

/* Under the lock: fills the stack of free slots on first use. */
static void db_pool_ready_locked(void)
{
	if (db_pool.ready)
		return;
	if (db_pool.size <= 0 || db_pool.size > DB_POOL_MAX)
		db_pool.size = db_pool_default_size();
	/* Slot 0 on top: the first borrower opens it, the others are opened only under load. */
	db_pool.nfree = db_pool.size;
	for (int i = 0; i < db_pool.size; i++)
		db_pool.free[i] = db_pool.size - 1 - i;
	db_pool.ready = true;
}

/* Closes a slot's connection and forgets what was prepared on it. */
static void db_slot_drop(struct db_slot *s)
{
	if (s->conn)
		PQfinish(s->conn);
	s->conn = NULL;
	for (size_t i = 0; i < s->nstmts; i++)
		free(s->stmts[i].sql);
	s->nstmts = 0;
}

static double db_pool_gauge_size(void)
{
	return db_pool_size();
}

static double db_pool_gauge_in_use(void)
{
	pthread_mutex_lock(&db_pool.lock);
	db_pool_ready_locked();
	int n = db_pool.size - db_pool.nfree;
	pthread_mutex_unlock(&db_pool.lock);
	return n;
}

static double db_pool_gauge_waiters(void)
{
	pthread_mutex_lock(&db_pool.lock);
	int n = db_pool.waiters;
	pthread_mutex_unlock(&db_pool.lock);
	return n;
}

void db_pool_configure(int size, int wait_ms)
{
	static bool registered;
	db_pool_close();
	pthread_mutex_lock(&db_pool.lock);
	/* Before threads start nobody holds a slot, so the pool can be laid out afresh. */
	assert(!db_pool.ready || db_pool.nfree == db_pool.size);
	db_pool.ready = false;
	db_pool.size = size;
	db_pool.wait_ms = wait_ms;
	db_pool_ready_locked();
	pthread_mutex_unlock(&db_pool.lock);
	if (registered)
		return;
	registered = true;
	metrics_register_gauge("db_pool_size",
	                       "Database connections the pool may open (DB_POOL_SIZE).",
	                       db_pool_gauge_size);
	metrics_register_gauge("db_pool_in_use", "Pooled database connections lent to a thread.",
	                       db_pool_gauge_in_use);
	metrics_register_gauge("db_pool_waiters",
	                       "Threads waiting for a pooled database connection.",
	                       db_pool_gauge_waiters);
	metrics_counter_add(DB_POOL_TIMEOUTS_METRIC, DB_POOL_TIMEOUTS_HELP, 0);
}

int db_pool_size(void)
{
	pthread_mutex_lock(&db_pool.lock);
	db_pool_ready_locked();
	int n = db_pool.size;
	pthread_mutex_unlock(&db_pool.lock);
	return n;
}

void db_pool_close(void)
{
	pthread_mutex_lock(&db_pool.lock);
	for (int i = 0; i < db_pool.nfree; i++) {
		struct db_slot *s = &db_pool.slots[db_pool.free[i]];
		db_slot_drop(s);
		free(s->stmts);
		s->stmts = NULL;
	}
	pthread_mutex_unlock(&db_pool.lock);
}

/* True when the oldest waiter has waited DB_POOL_HANDOFF_US at now_us: slots given back are
 * then handed to it, not left to whoever asks first.  Under db_pool.lock. */
static bool db_pool_starving(long long now_us)
{
	return db_pool.first && now_us - db_pool.first->since_us >= DB_POOL_HANDOFF_US;
}

/* Takes w out of the queue.  Under db_pool.lock. */
static void db_pool_dequeue(struct db_waiter *w)
{
	struct db_waiter **p = &db_pool.first, *prev = NULL;
	while (*p != w) {
		prev = *p;
		p = &(*p)->next;
	}
	*p = w->next;
	if (db_pool.last == w)
		db_pool.last = prev;
	db_pool.waiters--;
}

/* While a slot is free, the oldest waiter not woken yet is told to look (one wake per free slot,
 * so that no free slot waits for a newcomer while someone sleeps).  A waiter that leaves the
 * queue, whichever way, calls this: the wake it used may have been meant for another slot.
 * Under db_pool.lock. */
static void db_pool_wake_locked(void)
{
	if (db_pool.nfree <= 0)
		return;
	struct db_waiter *w = db_pool.first;
	while (w && w->woken)
		w = w->next;
	if (w) {
		w->woken = true;
		pthread_cond_signal(&w->cond);
	}
}

/* Lends this thread a slot unless it holds one: waits up to DB_POOL_WAIT_MS for one to be given
 * back, then answers DB_BUSY (counted).  The wait, however short, goes into the histogram. */
static enum db_status db_pool_borrow(void)
{
	if (db_tl_slot)
		return DB_OK;
	long long t0 = timefmt_mono_us();
	pthread_mutex_lock(&db_pool.lock);
	db_pool_ready_locked();
	if (db_pool.nfree > 0 && !db_pool_starving(t0)) {
		db_tl_slot = &db_pool.slots[db_pool.free[--db_pool.nfree]];
	} else {
		struct timespec until;
		clock_gettime(CLOCK_MONOTONIC, &until);
		until.tv_sec += db_pool.wait_ms / 1000;
		until.tv_nsec += (long)(db_pool.wait_ms % 1000) * 1000000L;
		if (until.tv_nsec >= 1000000000L) {
			until.tv_sec++;
			until.tv_nsec -= 1000000000L;
		}
		struct db_waiter w = {.slot = NULL, .next = NULL, .since_us = t0, .woken = false};
		pthread_condattr_t attr;
		pthread_condattr_init(&attr);
		pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
		pthread_cond_init(&w.cond, &attr);
		pthread_condattr_destroy(&attr);
		if (db_pool.last)
			db_pool.last->next = &w;
		else
			db_pool.first = &w;
		db_pool.last = &w;
		db_pool.waiters++;
		int rc = 0;
		for (;;) {
			if (w.slot)
				break; /* handed over: dequeued by the giver */
			if (db_pool.nfree > 0 &&
			    (db_pool.first == &w || !db_pool_starving(timefmt_mono_us()))) {
				w.slot = &db_pool.slots[db_pool.free[--db_pool.nfree]];
				db_pool_dequeue(&w);
				break;
			}
			if (rc == ETIMEDOUT) {
				db_pool_dequeue(&w);
				break;
			}
			/* A free slot that only the oldest waiter may take now: it must look. */
			if (db_pool.nfree > 0 && !db_pool.first->woken) {
				db_pool.first->woken = true;
				pthread_cond_signal(&db_pool.first->cond);
			}
			w.woken = false;
			rc = pthread_cond_timedwait(&w.cond, &db_pool.lock, &until);
		}
		db_pool_wake_locked();
		db_tl_slot = w.slot;
		pthread_cond_destroy(&w.cond);
	}
	pthread_mutex_unlock(&db_pool.lock);
	metrics_histogram_observe(DB_POOL_WAIT_METRIC, DB_POOL_WAIT_HELP,
	                          (double)(timefmt_mono_us() - t0) / 1e6);
	if (db_tl_slot)
		return DB_OK;
	metrics_counter_add(DB_POOL_TIMEOUTS_METRIC, DB_POOL_TIMEOUTS_HELP, 1);
	/* Under overload every refused request would log; one line a second says the same
	 * (db_pool_timeouts_total counts them all). */
	static _Atomic long long db_pool_warned_s;
	long long now_s = timefmt_mono_ms() / 1000, last = db_pool_warned_s;
	if (now_s != last && atomic_compare_exchange_strong(&db_pool_warned_s, &last, now_s))
		log_warn("no database connection free within DB_POOL_WAIT_MS (%d ms): answering "
		         "busy (db_pool_timeouts_total counts each)",
		         db_pool.wait_ms);
	return DB_BUSY;
}

/* Gives the slot this thread holds back to the pool once no transaction is open on it.  Its
 * connection goes back idle: a transaction left open is rolled back, and a connection that is
 * broken or in the middle of a command is closed (the next borrower opens a new one). */
static void db_pool_release(void)
{
	struct db_slot *s = db_tl_slot;
	if (!s || db_tl_tx.xid[0])
		return;
	if (s->conn) {
		PGTransactionStatusType ts = PQtransactionStatus(s->conn);
		if (ts == PQTRANS_INTRANS || ts == PQTRANS_INERROR) {
			PGresult *r = PQexec(s->conn, "ROLLBACK");
			if (PQresultStatus(r) != PGRES_COMMAND_OK)
				db_slot_drop(s);
			PQclear(r);
		} else if (ts != PQTRANS_IDLE || PQstatus(s->conn) != CONNECTION_OK) {
			db_slot_drop(s);
		}
	}
	db_tl_slot = NULL;
	pthread_mutex_lock(&db_pool.lock);
	struct db_waiter *w = db_pool.first;
	/* Handed over only when nothing else is free: with a free slot the oldest waiter, woken
	 * for it, takes that one. */
	if (w && db_pool.nfree == 0 && db_pool_starving(timefmt_mono_us())) {
		db_pool_dequeue(w);
		w->slot = s;
		pthread_cond_signal(&w->cond);
	} else {
		assert(db_pool.nfree < db_pool.size);
		db_pool.free[db_pool.nfree++] = (int)(s - db_pool.slots);
		db_pool_wake_locked();
	}
	pthread_mutex_unlock(&db_pool.lock);
}

/* The connection of the slot this thread holds, NULL when it holds none or it is not open. */
static PGconn *db_held_conn(void)
{
	return db_tl_slot ? db_tl_slot->conn : NULL;
}

/* Borrows a slot (unless this thread holds one) and makes sure its connection is open,
 * replacing a broken one; *c receives it.  The slot stays held whatever the result. */
static enum db_status db_slot_conn(PGconn **c)
{
	*c = NULL;
	enum db_status st = db_pool_borrow();
	if (st != DB_OK)
		return st;
	struct db_slot *s = db_tl_slot;
	if (s->conn && PQstatus(s->conn) != CONNECTION_OK)
		db_slot_drop(s);
	if (!s->conn)
		s->conn = db_connect(db_options);
	*c = s->conn;
	return *c ? DB_OK : DB_UNAVAILABLE;
}

PGconn *db_conn(void)
{
	PGconn *c = NULL;
	if (db_slot_conn(&c) != DB_OK)
		db_pool_release();
	return c;
}

void db_thread_close(void)
{
	memset(&db_tl_tx, 0, sizeof db_tl_tx);
	db_pool_release();
}

/* ---- prepared statements ---- */

/* FNV-1a, 64 bits, of sql's text. */
static uint64_t db_stmt_hash(const char *sql)
{
	uint64_t h = 14695981039346656037ULL;
	for (const unsigned char *p = (const unsigned char *)sql; *p; p++) {
		h ^= *p;
		h *= 1099511628211ULL;
	}
	return h;
}

static void db_stmt_format(uint64_t hash, char name[DB_STMT_NAME_LEN])
{
	snprintf(name, DB_STMT_NAME_LEN, "s%016llx", (unsigned long long)hash);
}

void db_stmt_name(const char *sql, char name[DB_STMT_NAME_LEN])
{
	db_stmt_format(db_stmt_hash(sql), name);
}

/* Makes sure sql is prepared on slot s's connection c (s NULL: a dedicated session, nothing is
 * prepared).  name receives the name to run it by, or "" to run it unnamed: the slot holds
 * DB_STMT_MAX statements, another text has the same name, or memory ran out.  *reused tells
 * that it was prepared before (its plan may be stale after a schema change).  False when
 * preparing failed; *fail then receives the failed result (the caller clears it; NULL when
 * libpq had none). */
static bool db_prepare(struct db_slot *s, PGconn *c, const char *sql, int nparams,
                       char name[DB_STMT_NAME_LEN], bool *reused, PGresult **fail)
{
	*reused = false;
	*fail = NULL;
	name[0] = '\0';
	if (!s)
		return true;
	char candidate[DB_STMT_NAME_LEN];
	uint64_t hash = db_stmt_hash(sql);
	db_stmt_format(hash, candidate);
	for (size_t i = 0; i < s->nstmts; i++) {
		if (s->stmts[i].hash != hash)
			continue;
		if (strcmp(s->stmts[i].sql, sql) == 0) {
			memcpy(name, candidate, DB_STMT_NAME_LEN);
			*reused = true;
		}
		return true; /* the name is taken by another text: run this one unnamed */
	}
	if (s->nstmts >= DB_STMT_MAX)
		return true;
	if (!s->stmts && !(s->stmts = calloc(DB_STMT_MAX, sizeof *s->stmts)))
		return true;
	/* Copied before the server knows the name: a name it knows but the slot forgot would make
	 * the next Parse fail (42P05). */
	char *copy = strdup(sql);
	if (!copy)
		return true;
	/* No parameter types: the server infers them exactly as for PQexecParams. */
	PGresult *r = PQprepare(c, candidate, sql, nparams, NULL);
	if (PQresultStatus(r) != PGRES_COMMAND_OK) {
		free(copy);
		*fail = r;
		return false;
	}
	PQclear(r);
	s->stmts[s->nstmts++] = (struct db_stmt){hash, copy};
	memcpy(name, candidate, DB_STMT_NAME_LEN);
	return true;
}

/* Sends sql to run by name (prepared) or, name "", unnamed; pipeline mode.  1 when sent. */
static int db_send(PGconn *c, const char *name, const char *sql, int nparams,
                   const char *const *params)
{
	if (name[0])
		return PQsendQueryPrepared(c, name, nparams, params, NULL, NULL, 0);
	return PQsendQueryParams(c, sql, nparams, NULL, params, NULL, NULL, 0);
}

enum db_status db_classify(const char *s)
{
	if (!s || strlen(s) != 5)
		return DB_UNAVAILABLE;
	if (strcmp(s, "23505") == 0)
		return DB_UNIQUE_VIOLATION;
	if (strcmp(s, "23P01") == 0)
		return DB_EXCLUSION_VIOLATION;
	if (strcmp(s, "23503") == 0)
		return DB_FK_VIOLATION;
	if (strcmp(s, "23514") == 0 || strcmp(s, "23502") == 0 || strncmp(s, "22", 2) == 0)
		return DB_CHECK_VIOLATION;
	if (strcmp(s, "40001") == 0 || strcmp(s, "40P01") == 0)
		return DB_RETRY;
	if (strncmp(s, "08", 2) == 0 || strncmp(s, "57P0", 4) == 0 || strcmp(s, "57014") == 0 ||
	    strncmp(s, "53", 2) == 0)
		return DB_UNAVAILABLE;
	if (strcmp(s, "RS429") == 0)
		return DB_QUOTA_EXCEEDED;
	return DB_ERROR;
}

struct db_status_entry {
	enum err_kind kind;
	const char *text, *reply;
};

static const struct db_status_entry db_status_table[DB_STATUS_COUNT] = {
#define DB_ROW_(status, kind, text, reply) [status] = {kind, text, reply},
	DB_STATUSES(DB_ROW_)
#undef DB_ROW_
};

/* A value outside the table (a programming error) reads as DB_ERROR. */
static const struct db_status_entry *db_status_lookup(enum db_status st)
{
	if ((int)st < 0 || st >= DB_STATUS_COUNT)
		return &db_status_table[DB_ERROR];
	return &db_status_table[st];
}

enum err_kind db_err_kind(enum db_status st)
{
	return db_status_lookup(st)->kind;
}

const char *db_status_str(enum db_status st)
{
	return db_status_lookup(st)->text;
}

const char *db_status_reply(enum db_status st)
{
	return db_status_lookup(st)->reply;
}

/* Whether the session of a failed command is gone: no SQLSTATE (the server never answered), a
 * broken connection, or the server ending it (class 08; 57P01-57P03 shutdown, recovery). */
static bool db_session_lost(PGconn *c, const char *state)
{
	return PQstatus(c) == CONNECTION_BAD || !state || strncmp(state, "08", 2) == 0 ||
	       strncmp(state, "57P0", 4) == 0;
}

/* Closes c: this thread's pooled connection (its slot stays held, to be reconnected) or a
 * dedicated session. */
static void db_drop_session(PGconn *c)
{
	if (c && c == db_held_conn())
		db_slot_drop(db_tl_slot);
	else
		PQfinish(c);
}

/* Classifies and logs the failed result r (NULL: libpq had none) of a command on c; *lost
 * tells that c's session is gone (the caller closes it).  A statement prepared earlier that
 * fails with 0A000 has a plan made stale by a schema change ("cached plan must not change
 * result type"): that counts as a lost session, so that a new one prepares it afresh and the
 * retries that follow a broken session apply. */
static enum db_status db_failed(PGconn *c, const PGresult *r, bool reused, bool *lost)
{
	const char *state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
	const char *msg = r ? PQresultErrorMessage(r) : PQerrorMessage(c);
	enum db_status st = db_classify(state);
	*lost = db_session_lost(c, state);
	if (reused && state && strcmp(state, "0A000") == 0) {
		log_info("prepared statement out of date (%s): %s; reconnecting", state, msg);
		*lost = true;
	}
	if (*lost)
		st = DB_UNAVAILABLE;
	if (st == DB_ERROR)
		log_error("sql failed (%s): %s", state ? state : "-", msg);
	else
		log_debug("sql refused (%s): %s", state ? state : "-", msg);
	return st;
}

/* Runs one statement on c, prepared when c is slot s's and prepare is true (else unnamed).  A
 * broken session of the slot is closed here. */
static enum db_status db_exec_once(struct db_slot *s, bool prepare, PGconn *c, PGresult **out,
                                   const char *sql, int nparams, const char *const *params)
{
	char name[DB_STMT_NAME_LEN] = "";
	bool reused = false, lost = false;
	PGresult *res = NULL;
	if (!prepare || db_prepare(s, c, sql, nparams, name, &reused, &res))
		res = name[0] ? PQexecPrepared(c, name, nparams, params, NULL, NULL, 0)
		              : PQexecParams(c, sql, nparams, NULL, params, NULL, NULL, 0);
	ExecStatusType est = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;
	if (est == PGRES_COMMAND_OK || est == PGRES_TUPLES_OK) {
		if (s)
			db_pool_answered();
		if (out)
			*out = res;
		else
			PQclear(res);
		return DB_OK;
	}
	enum db_status st = db_failed(c, res, reused, &lost);
	if (s && !lost)
		db_pool_answered();
	PQclear(res);
	/* libpq may still call a connection OK that the server has ended: drop it ourselves. */
	if (lost && s)
		db_slot_drop(s);
	return st;
}

static enum db_status db_exec_in(bool prepare, PGresult **res, const char *sql, int nparams,
                                 const char *const *params)
{
	PGconn *c = NULL;
	if (res)
		*res = NULL;
	/* A new session would run the statement on its own, outside the transaction it belongs
	 * to (whose work the server has rolled back with the old session). */
	if (db_tl_tx.xid[0] && (!db_held_conn() || PQstatus(db_held_conn()) != CONNECTION_OK))
		return DB_UNAVAILABLE;
	enum db_status st = db_slot_conn(&c);
	if (st == DB_OK) {
		bool in_tx = PQtransactionStatus(c) != PQTRANS_IDLE;
		st = db_exec_once(db_tl_slot, prepare, c, res, sql, nparams, params);
		/* After a database restart the first statement on an old connection fails; outside
		 * a transaction nothing was lost, so reconnect and try once more. */
		if (st == DB_UNAVAILABLE && !in_tx && !db_held_conn() && db_slot_conn(&c) == DB_OK)
			st = db_exec_once(db_tl_slot, prepare, c, res, sql, nparams, params);
	}
	db_pool_release(); /* unless a transaction is open */
	return st;
}

enum db_status db_exec(PGresult **res, const char *sql, int nparams, const char *const *params)
{
	return db_exec_in(true, res, sql, nparams, params);
}

double db_exec_number(const char *sql, int nparams, const char *const *params, double fallback)
{
	PGresult *res = NULL;
	double v = fallback;
	if (db_exec(&res, sql, nparams, params) == DB_OK && PQntuples(res) > 0 &&
	    db_value(res, 0, 0))
		v = strtod(PQgetvalue(res, 0, 0), NULL);
	PQclear(res);
	return v;
}

enum db_status db_exec_planned(PGresult **res, const char *sql, int nparams,
                               const char *const *params)
{
	return db_exec_in(false, res, sql, nparams, params);
}

enum db_status db_exec_on(PGconn *c, PGresult **res, const char *sql, int nparams,
                          const char *const *params)
{
	if (res)
		*res = NULL;
	return db_exec_once(NULL, false, c, res, sql, nparams, params);
}

/* ---- transactions and writes ----
 *
 * An autocommit statement whose answer is lost cannot be told apart from one that never ran:
 * retried, a create that committed answers 409, a conditional update 412.  So every write runs
 * in an explicit transaction whose id is read before COMMIT is sent.  Lost before COMMIT: the
 * server rolls the transaction back with the session, nothing committed, and the write may run
 * again.  COMMIT sent and its answer lost: a new session asks pg_xact_status(id). */

/* What a new session can say about a transaction whose COMMIT answer was lost. */
enum db_outcome {
	DB_COMMITTED,
	DB_ABORTED,
	DB_PENDING,   /* still in progress on its old backend */
	DB_NO_ANSWER, /* no session or no answer now: ask again */
	DB_IN_DOUBT,  /* the database cannot tell */
};

#define DB_RESOLVE_POLL_MS 50
/* The pause between attempts once the database has been unreachable for DB_RESOLVE_MS. */
#define DB_RESOLVE_POLL_SLOW_MS 250

/* Reads the answers to a pipeline of n queries and its Sync, and leaves pipeline mode: got[i]
 * receives query i's first result (the caller clears them all).  False when the session broke
 * before the whole answer arrived. */
static bool db_pipeline_read(PGconn *c, PGresult **got, int n)
{
	for (int i = 0; i < n; i++) {
		PGresult *r;
		while ((r = PQgetResult(c)) != NULL) {
			if (!got[i])
				got[i] = r;
			else
				PQclear(r);
			if (PQstatus(c) == CONNECTION_BAD)
				return false;
		}
		if (!got[i])
			return false;
	}
	PGresult *sync = PQgetResult(c);
	bool synced = PQresultStatus(sync) == PGRES_PIPELINE_SYNC;
	PQclear(sync);
	return synced && PQexitPipelineMode(c) == 1;
}

/* The id of the transaction and its start by the server's clock, as db_tl_tx keeps them. */
#define DB_TX_ID_SQL "SELECT pg_current_xact_id()::text, extract(epoch FROM now())::text"

/* Opens a transaction on c, reads its id and, when sql is non-NULL, runs sql in it: one round
 * trip (pipeline mode, blocking: the server's answers to BEGIN and the id are far too small to
 * fill a socket buffer while the statement is being sent).  On DB_OK the transaction is open,
 * db_tl_tx names it and *res (if non-NULL) holds sql's result.  On failure no transaction is
 * open, and *lost tells that the session broke (it is closed here), so nothing committed. */
static enum db_status db_tx_open(struct db_slot *s, PGconn *c, PGresult **res, const char *sql,
                                 int nparams, const char *const *params, bool *lost)
{
	PGresult *got[3] = {NULL, NULL, NULL};
	const int n = sql ? 3 : 2;
	enum db_status st = DB_OK;
	/* The statements are prepared first: on a connection that knows them already (nearly
	 * always) that costs nothing, on a new one a round trip each, once. */
	char id_name[DB_STMT_NAME_LEN], name[DB_STMT_NAME_LEN] = "";
	bool reused[3] = {false, false, false};
	PGresult *fail = NULL;
	if (!db_prepare(s, c, DB_TX_ID_SQL, 0, id_name, &reused[1], &fail) ||
	    (sql && !db_prepare(s, c, sql, nparams, name, &reused[2], &fail))) {
		st = db_failed(c, fail, false, lost);
		PQclear(fail);
		goto out;
	}
	*lost = false;
	bool sent = PQenterPipelineMode(c) == 1 &&
	            PQsendQueryParams(c, "BEGIN", 0, NULL, NULL, NULL, NULL, 0) == 1 &&
	            db_send(c, id_name, DB_TX_ID_SQL, 0, NULL) == 1;
	if (sent && sql)
		sent = db_send(c, name, sql, nparams, params) == 1;
	sent = sent && PQpipelineSync(c) == 1;
	if (!sent || !db_pipeline_read(c, got, n)) {
		log_debug("sql refused (-): %s", PQerrorMessage(c));
		*lost = true;
		st = DB_UNAVAILABLE;
		goto out;
	}
	for (int i = 0; i < n; i++) {
		ExecStatusType est = PQresultStatus(got[i]);
		if (est == PGRES_COMMAND_OK || est == PGRES_TUPLES_OK)
			continue;
		/* The first failure; the queries after it answer PGRES_PIPELINE_ABORTED. */
		st = db_failed(c, got[i], reused[i], lost);
		break;
	}
	if (st != DB_OK)
		goto out;
	snprintf(db_tl_tx.xid, sizeof db_tl_tx.xid, "%s", PQgetvalue(got[1], 0, 0));
	snprintf(db_tl_tx.began, sizeof db_tl_tx.began, "%s", PQgetvalue(got[1], 0, 1));
	if (sql && res) {
		*res = got[2];
		got[2] = NULL;
	}
out:
	for (int i = 0; i < n; i++)
		PQclear(got[i]);
	if (!*lost)
		db_pool_answered();
	if (*lost)
		db_drop_session(c);
	else if (st != DB_OK && PQtransactionStatus(c) != PQTRANS_IDLE)
		PQclear(PQexec(c, "ROLLBACK"));
	return st;
}

/* One question on session c about transaction tx.  'committed' is believed unless the server
 * went through crash recovery since tx began (recovery resets the cumulative statistics, so
 * pg_stat_bgwriter.stats_reset moves): after a crash, ids whose transactions never reached the
 * disk may be handed out again, and 'committed' could describe another transaction.  An id
 * "in the future" (22023) is one such: the server never learnt of it, so it did not commit. */
static enum db_outcome db_tx_ask(PGconn *c, const struct db_tx *tx)
{
	const char *params[] = {tx->xid, tx->began};
	enum db_outcome o = DB_IN_DOUBT;
	PGresult *r = PQexecParams(c,
	                           "SELECT pg_xact_status($1::xid8), COALESCE((SELECT stats_reset "
	                           "  FROM pg_stat_bgwriter) >= to_timestamp($2::float8), false)",
	                           2, NULL, params, NULL, NULL, 0);
	const char *state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
	if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1) {
		const char *status = db_value(r, 0, 0);
		bool recovered = db_bool(r, 0, 1);
		if (!status)
			log_error("transaction %s: too old to ask about", tx->xid);
		else if (strcmp(status, "aborted") == 0)
			o = DB_ABORTED;
		else if (strcmp(status, "in progress") == 0)
			o = DB_PENDING;
		else if (strcmp(status, "committed") == 0 && !recovered)
			o = DB_COMMITTED;
		else
			log_error("transaction %s: reads as %s, but the database went through "
			          "crash recovery since it began: the outcome cannot be told",
			          tx->xid, status);
	} else if (state && strcmp(state, "22023") == 0) {
		o = DB_ABORTED;
	} else if (db_session_lost(c, state)) {
		o = DB_NO_ANSWER;
		db_drop_session(c);
	} else {
		log_error("transaction %s: cannot ask about it (%s): %s", tx->xid, state,
		          PQresultErrorMessage(r));
	}
	PQclear(r);
	return o;
}

/* Ends the backend that still runs transaction tx (process id pid, checked together with the
 * transaction's id: the process id may belong to another session by now) and waits up to a
 * second for it to exit.  Such a backend has not yet noticed that its client is gone (a
 * half-open TCP connection) and holds the transaction's locks until it does. */
static void db_tx_terminate(PGconn *c, const struct db_tx *tx, int pid)
{
	char pids[16];
	snprintf(pids, sizeof pids, "%d", pid);
	const char *params[] = {pids, tx->xid};
	PGresult *r = PQexecParams(c,
	                           "SELECT pg_terminate_backend(pid, 1000) FROM pg_stat_activity "
	                           "WHERE pid = $1::int "
	                           "AND backend_xid::text = ($2::bigint % 4294967296)::text",
	                           2, NULL, params, NULL, NULL, 0);
	const char *done = PQntuples(r) > 0 ? "terminated it" : "that backend is gone";
	log_warn("transaction %s still in progress on backend %d after %d ms: %s", tx->xid, pid,
	         DB_RESOLVE_MS,
	         PQresultStatus(r) == PGRES_TUPLES_OK ? done : PQresultErrorMessage(r));
	PQclear(r);
}

/* What became of transaction tx, begun on backend pid, whose COMMIT answer was lost: asked on
 * this thread's (new) session until it is known.  While the database cannot be reached at all
 * (a restart or failover after the shutdown that cut the session) it is asked for up to
 * DB_RESOLVE_UNREACHABLE_MS, every DB_RESOLVE_POLL_MS at first and then less often.  A
 * transaction still in progress after DB_RESOLVE_MS (its old backend behind a half-open
 * connection) has that backend ended and is asked about once more. */
static enum db_outcome db_tx_outcome(const struct db_tx *tx, int pid)
{
	long long start = timefmt_mono_ms();
	bool terminated = false;
	int pause_ms = DB_RESOLVE_POLL_MS;
	for (;;) {
		PGconn *c = NULL;
		enum db_outcome o = db_slot_conn(&c) == DB_OK ? db_tx_ask(c, tx) : DB_NO_ANSWER;
		long long waited = timefmt_mono_ms() - start;
		if (o == DB_COMMITTED || o == DB_ABORTED || o == DB_IN_DOUBT)
			return o;
		if (o == DB_PENDING) {
			pause_ms = DB_RESOLVE_POLL_MS;
			if (waited >= DB_RESOLVE_MS) {
				if (terminated)
					return DB_IN_DOUBT;
				db_tx_terminate(c, tx, pid);
				terminated = true;
				continue;
			}
		} else {
			if (waited >= DB_RESOLVE_UNREACHABLE_MS)
				return DB_IN_DOUBT;
			if (waited >= DB_RESOLVE_MS)
				pause_ms = DB_RESOLVE_POLL_SLOW_MS;
		}
		timefmt_sleep_ms(pause_ms);
	}
}

/* Commits this thread's open transaction and makes sure of the outcome (see db_commit).
 * *again tells that it certainly did not commit because its session broke, so running the
 * whole transaction once more is safe. */
static enum db_status db_tx_commit(bool *again)
{
	struct db_tx tx = db_tl_tx;
	PGconn *c = db_held_conn();
	enum db_status st = DB_OK;
	*again = false;
	memset(&db_tl_tx, 0, sizeof db_tl_tx);
	if (!tx.xid[0]) {
		log_error("commit without an open transaction");
		return DB_ERROR;
	}
	if (!c || PQstatus(c) != CONNECTION_OK) {
		/* The session ended before COMMIT: the server rolled the transaction back. */
		*again = true;
		return DB_UNAVAILABLE;
	}
	if (PQtransactionStatus(c) != PQTRANS_INTRANS) {
		/* COMMIT would answer ROLLBACK: a statement failed and the caller went on. */
		log_error("transaction %s: commit after a failed statement", tx.xid);
		db_rollback();
		return DB_ERROR;
	}
	int pid = PQbackendPID(c);
	PGresult *r = PQexec(c, "COMMIT");
	const char *state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
	if (PQresultStatus(r) == PGRES_COMMAND_OK) {
		db_pool_answered();
		PQclear(r);
		return DB_OK;
	}
	if (!db_session_lost(c, state)) {
		db_pool_answered();
		/* The server answered: COMMIT failed and the transaction is rolled back (a deferred
		 * constraint, a serialization failure). */
		st = db_classify(state);
		log_debug("commit refused (%s): %s", state, PQresultErrorMessage(r));
		PQclear(r);
		db_rollback();
		return st;
	}
	log_warn("transaction %s: the answer to COMMIT was lost (%s); asking the database", tx.xid,
	         state ? state : "no answer");
	PQclear(r);
	db_drop_session(c);
	switch (db_tx_outcome(&tx, pid)) {
	case DB_COMMITTED:
		log_info("transaction %s: committed", tx.xid);
		return DB_OK;
	case DB_ABORTED:
		log_info("transaction %s: did not commit", tx.xid);
		*again = true;
		return DB_UNAVAILABLE;
	default:
		log_error("transaction %s: outcome unknown, answering unavailable (it may have "
		          "committed)",
		          tx.xid);
		return DB_UNAVAILABLE;
	}
}

enum db_status db_begin(void)
{
	enum db_status st = DB_UNAVAILABLE;
	bool lost = true;
	if (db_tl_tx.xid[0]) {
		log_error("transaction %s is still open: no nested transactions", db_tl_tx.xid);
		return DB_ERROR;
	}
	/* After a database restart the first command on an old connection fails; a BEGIN that
	 * failed so can run again on a new one. */
	for (int attempt = 0; attempt < 2 && lost; attempt++) {
		PGconn *c = NULL;
		if ((st = db_slot_conn(&c)) != DB_OK)
			break;
		st = db_tx_open(db_tl_slot, c, NULL, NULL, 0, NULL, &lost);
	}
	db_pool_release(); /* unless the transaction is open */
	return st;
}

enum db_status db_commit(void)
{
	bool again = false;
	enum db_status st = db_tx_commit(&again);
	db_pool_release();
	return st;
}

enum db_status db_write(PGresult **res, const char *sql, int nparams, const char *const *params)
{
	enum db_status st = DB_UNAVAILABLE;
	bool again = true;
	if (res)
		*res = NULL;
	if (db_tl_tx.xid[0])
		return db_exec(res, sql, nparams, params);
	/* Once more when the first attempt certainly did not commit because its session broke
	 * (typically an old connection after a database restart). */
	for (int attempt = 0; attempt < 2 && again; attempt++) {
		PGresult *out = NULL;
		PGconn *c = NULL;
		if ((st = db_slot_conn(&c)) != DB_OK)
			break;
		st = db_tx_open(db_tl_slot, c, &out, sql, nparams, params, &again);
		if (st == DB_OK)
			st = db_tx_commit(&again);
		if (st == DB_OK && res)
			*res = out;
		else
			PQclear(out);
	}
	db_pool_release();
	return st;
}

void db_rollback(void)
{
	memset(&db_tl_tx, 0, sizeof db_tl_tx);
	db_pool_release(); /* rolls back */
}

void db_idle(void)
{
	memset(&db_tl_tx, 0, sizeof db_tl_tx);
	PGconn *c = db_held_conn();
	PGTransactionStatusType ts = c ? PQtransactionStatus(c) : PQTRANS_IDLE;
	if (ts == PQTRANS_INTRANS || ts == PQTRANS_INERROR)
		log_warn("transaction left open by a handler; rolled back");
	db_pool_release();
}

bool db_ping(double *ms)
{
	long long t0 = timefmt_mono_us();
	enum db_status st = db_exec(NULL, "SELECT 1", 0, NULL);
	*ms = (double)(timefmt_mono_us() - t0) / 1000.0;
	if (st == DB_BUSY) {
		long long answered = db_pool_answered_ms;
		return answered > 0 && timefmt_mono_ms() - answered <= DB_PING_BUSY_FRESH_MS;
	}
	return st == DB_OK;
}

void db_json_page(const PGresult *res, long long limit, json_t **list, json_t **next)
{
	int n = PQntuples(res);
	*list = json_array();
	*next = NULL;
	for (int i = 0; i < n && i < limit; i++) {
		json_t *v = json_loads(PQgetvalue(res, i, 0), 0, NULL);
		if (v)
			json_array_append_new(*list, v);
	}
	if (limit > 0 && n > limit)
		*next = json_pack("[s, I]", PQgetvalue(res, (int)limit - 1, 1),
		                  (json_int_t)db_int(res, (int)limit - 1, 2));
}

const char *db_value(const PGresult *res, int row, int col)
{
	return PQgetisnull(res, row, col) ? NULL : PQgetvalue(res, row, col);
}

long long db_int(const PGresult *res, int row, int col)
{
	return PQgetisnull(res, row, col) ? 0 : strtoll(PQgetvalue(res, row, col), NULL, 10);
}

bool db_bool(const PGresult *res, int row, int col)
{
	return !PQgetisnull(res, row, col) && PQgetvalue(res, row, col)[0] == 't';
}

/* Any fixed number shared by the replicas of one service works; each service has its own
 * database, so the services cannot collide. */
#define DB_MIGRATION_LOCK "7263540"

/* A ledger name is spliced into SQL: only a constant lower-case identifier may be one. */
static bool db_ledger_ok(const char *ledger)
{
	if (!ledger || !*ledger || strlen(ledger) > 63)
		return false;
	for (const char *p = ledger; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || *p == '_'))
			return false;
	return true;
}

/* Runs one statement of the migration runner and expects status want; *out (if non-NULL)
 * receives the result on success. */
static bool db_runner_exec(PGconn *c, const char *sql, int nparams, const char *const *params,
                           ExecStatusType want, PGresult **out)
{
	PGresult *r = PQexecParams(c, sql, nparams, NULL, params, NULL, NULL, 0);
	bool ok = PQresultStatus(r) == want;
	if (ok && out)
		*out = r;
	else
		PQclear(r);
	return ok;
}

static bool db_migrate_one(PGconn *c, const char *ledger, const struct db_migration *m, char *err,
                           size_t errlen)
{
	char version[16];
	const char *params[2] = {version, m->name};
	snprintf(version, sizeof version, "%d", m->version);

	PGresult *r = PQexec(c, "BEGIN");
	PQclear(r);
	r = PQexec(c, m->sql); /* a migration file may hold several statements */
	bool ok = PQresultStatus(r) == PGRES_COMMAND_OK || PQresultStatus(r) == PGRES_TUPLES_OK;
	if (!ok)
		snprintf(err, errlen, "migration %s failed: %s", m->name, PQerrorMessage(c));
	PQclear(r);
	if (ok) {
		char sql[160];
		snprintf(sql, sizeof sql, "INSERT INTO %s (version, name) VALUES ($1::int, $2)",
		         ledger);
		ok = db_runner_exec(c, sql, 2, params, PGRES_COMMAND_OK, NULL);
		if (!ok)
			snprintf(err, errlen, "recording migration %s failed: %s", m->name,
			         PQerrorMessage(c));
	}
	r = PQexec(c, ok ? "COMMIT" : "ROLLBACK");
	if (ok && PQresultStatus(r) != PGRES_COMMAND_OK) {
		snprintf(err, errlen, "committing migration %s failed: %s", m->name,
		         PQerrorMessage(c));
		ok = false;
	}
	PQclear(r);
	if (ok)
		log_info("applied migration %s (recorded in %s)", m->name, ledger);
	return ok;
}

/* Applies the migrations of one set that its ledger does not list yet, in order. */
static bool db_migrate_set(PGconn *c, const struct db_migration_set *set, char *err, size_t errlen)
{
	char create[200], select[120];
	if (!db_ledger_ok(set->ledger)) { /* a programming error: the name is spliced into SQL */
		snprintf(err, errlen, "migration ledger name not allowed");
		return false;
	}
	snprintf(create, sizeof create,
	         "CREATE TABLE IF NOT EXISTS %s (version integer PRIMARY KEY, name text NOT NULL, "
	         "applied_at timestamptz NOT NULL DEFAULT now())",
	         set->ledger);
	snprintf(select, sizeof select, "SELECT 1 FROM %s WHERE version = $1::int", set->ledger);
	if (!db_runner_exec(c, create, 0, NULL, PGRES_COMMAND_OK, NULL)) {
		snprintf(err, errlen, "creating %s failed: %s", set->ledger, PQerrorMessage(c));
		return false;
	}
	for (size_t i = 0; i < set->n; i++) {
		char version[16];
		const char *params[1] = {version};
		PGresult *r = NULL;
		snprintf(version, sizeof version, "%d", set->migrations[i].version);
		if (!db_runner_exec(c, select, 1, params, PGRES_TUPLES_OK, &r)) {
			snprintf(err, errlen, "reading %s failed: %s", set->ledger,
			         PQerrorMessage(c));
			return false;
		}
		bool applied = PQntuples(r) > 0;
		PQclear(r);
		if (!applied && !db_migrate_one(c, set->ledger, &set->migrations[i], err, errlen))
			return false;
	}
	return true;
}

bool db_migrate(const struct db_migration_set *sets, size_t nsets, int timeout_ms,
                bool (*wait)(long ms), char *err, size_t errlen)
{
	char options[64];
	PGresult *r = NULL;
	bool ok = false, locked = false;
	/* A connection of its own: a long migration may not run under the requests'
	 * statement_timeout, and the session lock must not outlive the migration on a connection
	 * that a thread keeps using. */
	snprintf(options, sizeof options, "-c statement_timeout=%d " DB_DATESTYLE, timeout_ms);
	PGconn *c = db_connect(options);
	if (!c) {
		snprintf(err, errlen, "database unreachable");
		return false;
	}
	/* Another replica may be migrating: its lock is asked for again every second rather than
	 * waited for in one statement, so that a stop signal is seen meanwhile (the main thread
	 * migrates, and it is the one that waits for signals). */
	long long start = timefmt_mono_ms(), next_note = start + 60000;
	for (int tries = 0;; tries++) {
		r = PQexec(c, "SELECT pg_try_advisory_lock(" DB_MIGRATION_LOCK ")");
		if (PQresultStatus(r) != PGRES_TUPLES_OK) {
			snprintf(err, errlen, "migration lock failed: %s", PQerrorMessage(c));
			PQclear(r);
			goto out;
		}
		locked = db_bool(r, 0, 0);
		PQclear(r);
		if (locked)
			break;
		long long now = timefmt_mono_ms();
		if (tries == 0) {
			log_info(
				"waiting for the migration lock (another instance migrates; up to %d "
				"ms)",
				timeout_ms);
		} else if (now >= next_note) {
			log_info("still waiting for the migration lock (%lld s)",
			         (now - start) / 1000);
			next_note = now + 60000;
		}
		if (now - start >= timeout_ms) {
			snprintf(err, errlen,
			         "migration lock failed: another instance held it for more than "
			         "MIGRATION_TIMEOUT_MS (%d ms)",
			         timeout_ms);
			goto out;
		}
		bool stop = false;
		if (wait)
			stop = wait(DB_MIGRATION_LOCK_POLL_MS);
		else
			timefmt_sleep_ms(DB_MIGRATION_LOCK_POLL_MS);
		if (stop) {
			snprintf(err, errlen, "stopped while waiting for the migration lock");
			goto out;
		}
	}
	for (size_t i = 0; i < nsets; i++)
		if (!db_migrate_set(c, &sets[i], err, errlen))
			goto out;
	ok = true;
out:
	if (locked)
		PQclear(PQexec(c, "SELECT pg_advisory_unlock(" DB_MIGRATION_LOCK ")"));
	PQfinish(c);
	return ok;
}
