#include "outbox.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "db.h"
#include "kafka.h"
#include "log.h"
#include "metrics.h"
#include "timefmt.h"

#define OUTBOX_BATCH 200            /* rows read and produced together */
#define OUTBOX_IDLE_MS 100          /* pause when nothing is unsent */
#define OUTBOX_FOLLOW_MS 1000       /* pause between two tries for the lock */
#define OUTBOX_BACKOFF_FIRST_MS 250 /* first pause after a failed batch */
#define OUTBOX_MAX_BACKOFF_MS 5000  /* the pause doubles up to this */

/* Byte for byte the table that the services' first migrations created before this module owned
 * it, so that fresh and upgraded databases end up with the same schema. */
const char outbox_schema_sql[] =
	"CREATE TABLE IF NOT EXISTS outbox (\n"
	"    id          bigserial PRIMARY KEY,\n"
	"    topic       text NOT NULL,\n"
	"    key         text NOT NULL,\n"
	"    payload     json NOT NULL,   -- json, not jsonb: sent byte for byte as written\n"
	"    created_at  timestamptz NOT NULL DEFAULT now(),\n"
	"    sent_at     timestamptz\n"
	");\n"
	"CREATE INDEX IF NOT EXISTS outbox_unsent ON outbox (id) WHERE sent_at IS NULL;\n";

/* By ctid, so that each batch is a TID scan of rows just found, with its locks held briefly. */
const char outbox_sweep_sql[] =
	"DELETE FROM outbox WHERE ctid = ANY (ARRAY("
	"SELECT ctid FROM outbox WHERE sent_at < now() - make_interval(secs => $1::bigint) "
	"LIMIT $2::int))";

struct outbox {
	struct kafka_producer *producer; /* borrowed */
	long long lock_key;
	pthread_t thread;
	_Atomic bool stop;
	_Atomic bool leading; /* session holds the lock; written by the thread only */
	/* The publisher's own session (db_open), used by its thread only; NULL = none.  Never the
	 * thread's db_conn(), which db_exec() may close and replace behind a caller's back. */
	PGconn *session;
};

/* Logs a change of leadership with fields a log reader (and the tests) can match on. */
static void outbox_log_leadership(const struct outbox *o, enum log_level level, int backend_pid,
                                  const char *why)
{
	if (!log_enabled(level))
		return;
	json_t *fields = json_pack("{s:b, s:I, s:i}", "outbox_leader", o->leading, "lock_key",
	                           (json_int_t)o->lock_key, "backend_pid", backend_pid);
	if (o->leading)
		log_write(level, fields,
		          "outbox publisher: leading (advisory lock %lld, database session %d)",
		          o->lock_key, backend_pid);
	else
		log_write(level, fields, "outbox publisher: not leading any more (%s)", why);
}

/* Ends the session: closing it releases the lock on the server if it still held it (and if
 * the server already ended it, there is nothing left to release).  Any failure on the session
 * comes here, so that the lock is always taken again, on a new session, before publishing. */
static void outbox_end_session(struct outbox *o, const char *why)
{
	int pid = o->session ? PQbackendPID(o->session) : 0;
	PQfinish(o->session);
	o->session = NULL;
	if (o->leading) {
		o->leading = false;
		outbox_log_leadership(o, o->stop ? LOG_LEVEL_INFO : LOG_LEVEL_WARN, pid, why);
	}
}

/* The publisher's session asks the server to probe it often.  A replica that dies on a living
 * host closes its socket, and the server ends the session (releasing the lock) at once; but when
 * the replica's host dies or is cut off, no FIN ever comes, and the server would notice only
 * after the system's keepalive time (two hours by default).  Probed after 1 s of silence, every
 * second, given up after 2 unanswered (tcp_user_timeout: 3 s for data the server sends), the
 * session ends within about 3 s and a follower takes the lock at its next try (OUTBOX_FOLLOW_MS):
 * the takeover bound of docs/operations.md#scale-out.  A live but busy publisher (a batch
 * waiting for the broker) still answers the probes from its kernel. */
static const char outbox_session_sql[] = "SELECT set_config('tcp_keepalives_idle', '1', false), "
					 "set_config('tcp_keepalives_interval', '1', false), "
					 "set_config('tcp_keepalives_count', '2', false), "
					 "set_config('tcp_user_timeout', '3000', false)";

/* True when this publisher's session holds the lock, opening a session and trying for the
 * lock when it does not. */
static bool outbox_lead(struct outbox *o)
{
	if (o->leading)
		return true;
	if (!o->session) {
		if (!(o->session = db_open()))
			return false;
		enum db_status st = db_exec_on(o->session, NULL, outbox_session_sql, 0, NULL);
		if (st != DB_OK) {
			outbox_end_session(o, db_status_str(st));
			return false;
		}
	}
	char key[24];
	snprintf(key, sizeof key, "%lld", o->lock_key);
	const char *params[] = {key};
	PGresult *res = NULL;
	enum db_status st = db_exec_on(o->session, &res, "SELECT pg_try_advisory_lock($1::bigint)",
	                               1, params);
	if (st != DB_OK) {
		outbox_end_session(o, db_status_str(st));
		return false;
	}
	bool got = db_bool(res, 0, 0);
	PQclear(res);
	if (got) {
		o->leading = true;
		outbox_log_leadership(o, LOG_LEVEL_INFO, PQbackendPID(o->session), NULL);
	}
	return got;
}

/* Marks the delivered rows of a batch sent, as one array parameter (the rows' ids are column 0
 * of res).  Returns how many were marked; *undelivered receives how many the broker did not
 * take.  A failed update ends the session and marks none. */
static int outbox_mark_sent(struct outbox *o, const PGresult *res, const struct kafka_message *msgs,
                            size_t produced, size_t *undelivered)
{
	size_t cap = produced * 21 + 3, len = 0;
	int ok = 0;
	char *ids = malloc(cap);
	*undelivered = 0;
	if (!ids)
		return 0;
	ids[len++] = '{';
	for (size_t i = 0; i < produced; i++) {
		const char *id = PQgetvalue(res, (int)i, 0);
		if (!msgs[i].delivered) {
			if ((*undelivered)++ == 0)
				log_warn("outbox: row %s not delivered: %s", id,
				         msgs[i].error ? msgs[i].error : "unknown");
			continue;
		}
		len += (size_t)snprintf(ids + len, cap - len, "%s%s", ok ? "," : "", id);
		ok++;
	}
	ids[len++] = '}';
	ids[len] = '\0';
	if (ok > 0) {
		const char *params[] = {ids};
		enum db_status st = db_exec_on(o->session, NULL,
		                               "UPDATE outbox SET sent_at = now() "
		                               "WHERE id = ANY($1::bigint[])",
		                               1, params);
		if (st != DB_OK) {
			log_warn(
				"outbox: marking %d row(s) sent failed (%s); they will be sent again",
				ok, db_status_str(st));
			outbox_end_session(o, "marking rows sent failed");
			ok = 0;
		}
	}
	free(ids);
	return ok;
}

/* Publishes one batch on the leader's session.  Returns rows published, 0 when there was
 * nothing, -1 on failure (a failed statement also ends the session). */
static int outbox_publish_batch(struct outbox *o)
{
	PGresult *res = NULL;
	struct kafka_message *msgs = NULL;
	int rc = -1;
	char limit[16];
	snprintf(limit, sizeof limit, "%d", OUTBOX_BATCH);
	const char *params[] = {limit};
	enum db_status st = db_exec_on(o->session, &res,
	                               "SELECT id, topic, key, payload::text FROM outbox "
	                               "WHERE sent_at IS NULL ORDER BY id LIMIT $1::int",
	                               1, params);
	if (st != DB_OK) {
		outbox_end_session(o, db_status_str(st));
		goto out;
	}
	size_t n = (size_t)PQntuples(res);
	if (n == 0) {
		rc = 0;
		goto out;
	}
	msgs = calloc(n, sizeof *msgs);
	if (!msgs)
		goto out;
	for (size_t i = 0; i < n; i++) {
		const char *key = PQgetvalue(res, (int)i, 2), *value = PQgetvalue(res, (int)i, 3);
		msgs[i] = (struct kafka_message){PQgetvalue(res, (int)i, 1),
		                                 key,
		                                 strlen(key),
		                                 value,
		                                 strlen(value),
		                                 false,
		                                 NULL};
	}
	size_t produced = kafka_produce_batch(o->producer, msgs, n, &o->stop), undelivered;
	int published = outbox_mark_sent(o, res, msgs, produced, &undelivered);
	if (published > 0)
		metrics_counter_add("kafka_events_published_total", "Outbox rows published.",
		                    (double)published);
	rc = undelivered || produced < n || !o->session ? -1 : published;
out:
	free(msgs);
	PQclear(res);
	return rc;
}

static void *outbox_main(void *arg)
{
	struct outbox *o = arg;
	long backoff = 0;
	while (!o->stop) {
		long wait;
		if (!outbox_lead(o)) {
			wait = OUTBOX_FOLLOW_MS; /* another replica publishes, or no database */
		} else {
			int n = outbox_publish_batch(o);
			if (n > 0) {
				backoff = 0;
				continue;
			}
			if (n == 0) {
				wait = OUTBOX_IDLE_MS;
			} else {
				backoff = backoff ? backoff * 2 : OUTBOX_BACKOFF_FIRST_MS;
				if (backoff > OUTBOX_MAX_BACKOFF_MS)
					backoff = OUTBOX_MAX_BACKOFF_MS;
				wait = backoff;
			}
		}
		timefmt_sleep_unless(wait, &o->stop);
	}
	outbox_end_session(o, "stopping");
	return NULL;
}

struct outbox *outbox_start(struct kafka_producer *p, long long lock_key)
{
	struct outbox *o = calloc(1, sizeof *o);
	if (!o)
		return NULL;
	o->producer = p;
	o->lock_key = lock_key;
	if (pthread_create(&o->thread, NULL, outbox_main, o) != 0) {
		free(o);
		return NULL;
	}
	return o;
}

void outbox_stop(struct outbox *o)
{
	if (!o)
		return;
	o->stop = true;
	pthread_join(o->thread, NULL);
	free(o);
}

bool outbox_leading(const struct outbox *o)
{
	return o && o->leading;
}

double outbox_oldest_age(void)
{
	return db_exec_number("SELECT coalesce((SELECT extract(epoch FROM now() - created_at) "
	                      "FROM outbox WHERE sent_at IS NULL ORDER BY id LIMIT 1), 0)::float8",
	                      0, NULL, -1);
}

double outbox_backlog(void)
{
	PGresult *res = NULL;
	double n = -1;
	if (db_exec(&res, "SELECT count(*) FROM outbox WHERE sent_at IS NULL", 0, NULL) == DB_OK)
		n = (double)db_int(res, 0, 0);
	PQclear(res);
	return n;
}
