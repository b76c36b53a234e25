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
	const char *const keys[] = {"dbname", "connect_timeout", "application_name", "options",
	                            "keepalives", "keepalives_idle", "keepalives_interval",
	                            "keepalives_count", NULL};
	const char *const vals[] = {db_conninfo, "3", db_app_name, options, "1", "30", "10",
	                            "3", NULL};
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

enum db_status db_begin(void)
{
	return db_exec(NULL, "BEGIN", 0, NULL);
}

enum db_status db_commit(void)
{
	enum db_status st = db_exec(NULL, "COMMIT", 0, NULL);
	if (st != DB_OK)
		db_rollback();
	return st;
}

void db_rollback(void)
{
	if (db_tl_conn && PQstatus(db_tl_conn) == CONNECTION_OK &&
	    PQtransactionStatus(db_tl_conn) != PQTRANS_IDLE)
		PQclear(PQexec(db_tl_conn, "ROLLBACK"));
}

void db_idle(void)
{
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

bool db_migrate(const struct db_migration_set *sets, size_t nsets, int timeout_ms, char *err,
                size_t errlen)
{
	char options[64];
	PGresult *r = NULL;
	bool ok = false, locked = false;
	/* A connection of its own: neither the lock wait nor a long migration may run under the
	 * requests' statement_timeout, and the session lock must not outlive the migration on a
	 * connection that a thread keeps using. */
	snprintf(options, sizeof options, "-c statement_timeout=%d", timeout_ms);
	PGconn *c = db_connect(options);
	if (!c) {
		snprintf(err, errlen, "database unreachable");
		return false;
	}
	/* Another replica may be migrating: say so before waiting for it (bounded by timeout_ms). */
	r = PQexec(c, "SELECT pg_try_advisory_lock(" DB_MIGRATION_LOCK ")");
	locked = PQresultStatus(r) == PGRES_TUPLES_OK && db_bool(r, 0, 0);
	PQclear(r);
	if (!locked) {
		log_info("waiting for the migration lock (another instance migrates; up to %d ms)",
		         timeout_ms);
		r = PQexec(c, "SELECT pg_advisory_lock(" DB_MIGRATION_LOCK ")");
		locked = PQresultStatus(r) == PGRES_TUPLES_OK;
		PQclear(r);
	}
	if (!locked) {
		snprintf(err, errlen, "migration lock failed: %s", PQerrorMessage(c));
		goto out;
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
