#include "db.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "timefmt.h"

static const char *db_conninfo;
static const char *db_app_name = "meeting-rooms";
static char db_options[64] = "";
static _Thread_local PGconn *db_tl_conn;

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
	snprintf(db_options, sizeof db_options, "-c statement_timeout=%d", statement_timeout_ms);
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
	const char *const keys[] = {
		"dbname",     "connect_timeout", "application_name",    "options",
		"keepalives", "keepalives_idle", "keepalives_interval", "keepalives_count",
		NULL};
	const char *const vals[] = {db_conninfo, "3",  db_app_name, options, "1",
	                            "30",        "10", "3",         NULL};
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

PGconn *db_conn(void)
{
	if (db_tl_conn && PQstatus(db_tl_conn) == CONNECTION_OK)
		return db_tl_conn;
	if (db_tl_conn) {
		PQfinish(db_tl_conn);
		db_tl_conn = NULL;
	}
	db_tl_conn = db_connect(db_options);
	return db_tl_conn;
}

void db_thread_close(void)
{
	if (db_tl_conn)
		PQfinish(db_tl_conn);
	db_tl_conn = NULL;
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

static enum db_status db_exec_once(PGconn *c, PGresult **out, const char *sql, int nparams,
                                   const char *const *params)
{
	PGresult *res = PQexecParams(c, sql, nparams, NULL, params, NULL, NULL, 0);
	ExecStatusType est = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;
	if (est == PGRES_COMMAND_OK || est == PGRES_TUPLES_OK) {
		if (out)
			*out = res;
		else
			PQclear(res);
		return DB_OK;
	}
	const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
	enum db_status st = PQstatus(c) == CONNECTION_BAD ? DB_UNAVAILABLE : db_classify(state);
	/* No SQLSTATE means the server never answered ("server closed the connection
	 * unexpectedly"); libpq may still call the connection OK, so drop it ourselves. */
	bool lost = PQstatus(c) == CONNECTION_BAD || !state;
	if (st == DB_ERROR)
		log_error("sql failed (%s): %s", state ? state : "-", PQerrorMessage(c));
	else
		log_debug("sql refused (%s): %s", state ? state : "-", PQerrorMessage(c));
	PQclear(res);
	if (lost && c == db_tl_conn)
		db_thread_close();
	return st;
}

enum db_status db_exec(PGresult **res, const char *sql, int nparams, const char *const *params)
{
	if (res)
		*res = NULL;
	/* A new session would run the statement on its own, outside the transaction it belongs
	 * to (whose work the server has rolled back with the old session). */
	if (db_tl_tx.xid[0] && (!db_tl_conn || PQstatus(db_tl_conn) != CONNECTION_OK))
		return DB_UNAVAILABLE;
	PGconn *c = db_conn();
	if (!c)
		return DB_UNAVAILABLE;
	bool in_tx = PQtransactionStatus(c) != PQTRANS_IDLE;
	enum db_status st = db_exec_once(c, res, sql, nparams, params);
	/* After a database restart the first statement on an old connection fails; outside a
	 * transaction nothing was lost, so reconnect and try once more. */
	if (st == DB_UNAVAILABLE && !in_tx && db_tl_conn == NULL) {
		c = db_conn();
		if (c)
			st = db_exec_once(c, res, sql, nparams, params);
	}
	return st;
}

enum db_status db_exec_on(PGconn *c, PGresult **res, const char *sql, int nparams,
                          const char *const *params)
{
	if (res)
		*res = NULL;
	return db_exec_once(c, res, sql, nparams, params);
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

/* Whether the session of a failed command is gone: no SQLSTATE (the server never answered), a
 * broken connection, or the server ending it (class 08; 57P01-57P03 shutdown, recovery). */
static bool db_session_lost(PGconn *c, const char *state)
{
	return PQstatus(c) == CONNECTION_BAD || !state || strncmp(state, "08", 2) == 0 ||
	       strncmp(state, "57P0", 4) == 0;
}

static void db_drop_session(PGconn *c)
{
	if (c == db_tl_conn)
		db_thread_close();
	else
		PQfinish(c);
}

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
static enum db_status db_tx_open(PGconn *c, PGresult **res, const char *sql, int nparams,
                                 const char *const *params, bool *lost)
{
	PGresult *got[3] = {NULL, NULL, NULL};
	const int n = sql ? 3 : 2;
	enum db_status st = DB_OK;
	*lost = false;
	bool sent = PQenterPipelineMode(c) == 1 &&
	            PQsendQueryParams(c, "BEGIN", 0, NULL, NULL, NULL, NULL, 0) == 1 &&
	            PQsendQueryParams(c, DB_TX_ID_SQL, 0, NULL, NULL, NULL, NULL, 0) == 1;
	if (sent && sql)
		sent = PQsendQueryParams(c, sql, nparams, NULL, params, NULL, NULL, 0) == 1;
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
		const char *state = PQresultErrorField(got[i], PG_DIAG_SQLSTATE);
		st = db_classify(state);
		if (st == DB_ERROR)
			log_error("sql failed (%s): %s", state ? state : "-",
			          PQresultErrorMessage(got[i]));
		else
			log_debug("sql refused (%s): %s", state ? state : "-",
			          PQresultErrorMessage(got[i]));
		*lost = db_session_lost(c, state);
		if (*lost)
			st = DB_UNAVAILABLE;
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
		PGconn *c = db_conn();
		enum db_outcome o = c ? db_tx_ask(c, tx) : DB_NO_ANSWER;
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
	PGconn *c = db_tl_conn;
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
		PQclear(r);
		return DB_OK;
	}
	if (!db_session_lost(c, state)) {
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
		PGconn *c = db_conn();
		if (!c)
			return DB_UNAVAILABLE;
		st = db_tx_open(c, NULL, NULL, 0, NULL, &lost);
	}
	return st;
}

enum db_status db_commit(void)
{
	bool again = false;
	return db_tx_commit(&again);
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
		PGconn *c = db_conn();
		if (!c)
			return DB_UNAVAILABLE;
		st = db_tx_open(c, &out, sql, nparams, params, &again);
		if (st == DB_OK)
			st = db_tx_commit(&again);
		if (st == DB_OK && res)
			*res = out;
		else
			PQclear(out);
	}
	return st;
}

void db_rollback(void)
{
	memset(&db_tl_tx, 0, sizeof db_tl_tx);
	if (db_tl_conn && PQstatus(db_tl_conn) == CONNECTION_OK &&
	    PQtransactionStatus(db_tl_conn) != PQTRANS_IDLE)
		PQclear(PQexec(db_tl_conn, "ROLLBACK"));
}

void db_idle(void)
{
	memset(&db_tl_tx, 0, sizeof db_tl_tx);
	if (!db_tl_conn)
		return;
	PGTransactionStatusType ts = PQtransactionStatus(db_tl_conn);
	if (ts == PQTRANS_INTRANS || ts == PQTRANS_INERROR) {
		log_warn("transaction left open by a handler; rolled back");
		db_rollback();
	} else if (ts == PQTRANS_ACTIVE || ts == PQTRANS_UNKNOWN) {
		db_thread_close();
	}
}

bool db_ping(double *ms)
{
	long long t0 = timefmt_mono_us();
	enum db_status st = db_exec(NULL, "SELECT 1", 0, NULL);
	*ms = (double)(timefmt_mono_us() - t0) / 1000.0;
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
	snprintf(options, sizeof options, "-c statement_timeout=%d", timeout_ms);
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
