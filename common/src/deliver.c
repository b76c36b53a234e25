#include "deliver.h"

#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "db.h"
#include "log.h"
#include "metrics.h"
#include "rnd.h"
#include "timefmt.h"

#define DELIVER_SESSION_RETRY_MS 1000 /* pause after the session failed */

/* payload is json, not jsonb, like the outbox's: a webhook body is the event byte for byte as
 * Kafka carries it.  finished_at (sent or failed) is what the sweeper goes by. */
const char deliver_schema_sql[] =
	"CREATE TABLE IF NOT EXISTS deliveries (\n"
	"    id              bigserial PRIMARY KEY,\n"
	"    kind            text NOT NULL CHECK (kind ~ '^[a-z_]{1,32}$'),\n"
	"    target          text NOT NULL,   -- webhook id, recipient address, ...\n"
	"    key             text NOT NULL,   -- in order per (kind, target, key)\n"
	"    payload         json NOT NULL,\n"
	"    status          text NOT NULL DEFAULT 'pending'\n"
	"                    CHECK (status IN ('pending', 'sent', 'failed')),\n"
	"    attempts        integer NOT NULL DEFAULT 0,\n"
	"    next_attempt_at timestamptz NOT NULL DEFAULT now(),\n"
	"    last_attempt_at timestamptz,\n"
	"    last_status     integer,\n"
	"    last_error      text,\n"
	"    created_at      timestamptz NOT NULL DEFAULT now(),\n"
	"    sent_at         timestamptz,\n"
	"    finished_at     timestamptz\n"
	");\n"
	"CREATE INDEX IF NOT EXISTS deliveries_due ON deliveries (kind, next_attempt_at)\n"
	"    WHERE status = 'pending';\n"
	"CREATE INDEX IF NOT EXISTS deliveries_order ON deliveries (kind, target, key, id)\n"
	"    WHERE status = 'pending';\n"
	"CREATE INDEX IF NOT EXISTS deliveries_by_target ON deliveries (kind, target, id);\n"
	"CREATE INDEX IF NOT EXISTS deliveries_finished ON deliveries (finished_at)\n"
	"    WHERE status <> 'pending';\n";

const char deliver_sweep_sql[] =
	"DELETE FROM deliveries WHERE ctid = ANY (ARRAY("
	"SELECT ctid FROM deliveries WHERE status <> 'pending' "
	"AND finished_at < now() - make_interval(secs => $1::bigint) LIMIT $2::int))";

/* The oldest due row of the kind that no older pending row of the same target and key
 * precedes, locked; rows other senders hold are skipped (and so are their successors, which
 * still see them pending).  $1 kind.  Column 5: milliseconds since it was queued. */
static const char deliver_claim_sql[] =
	"SELECT d.id, d.target, d.key, d.payload::text, d.attempts, "
	"(extract(epoch FROM now() - d.created_at) * 1000)::bigint "
	"FROM deliveries d "
	"WHERE d.kind = $1 AND d.status = 'pending' AND d.next_attempt_at <= now() "
	"AND NOT EXISTS (SELECT 1 FROM deliveries o WHERE o.kind = d.kind AND o.target = d.target "
	"AND o.key = d.key AND o.status = 'pending' AND o.id < d.id) "
	"ORDER BY d.next_attempt_at, d.id LIMIT 1 FOR UPDATE OF d SKIP LOCKED";

/* $1 id, $2 last_status (NULL = none), $3 last_error (NULL when sent), $4 the pause before the
 * next attempt in ms (retry only). */
static const char deliver_sent_sql[] =
	"UPDATE deliveries SET status = 'sent', attempts = attempts + 1, last_attempt_at = now(), "
	"sent_at = now(), finished_at = now(), last_status = $2::int, last_error = $3 "
	"WHERE id = $1::bigint";
static const char deliver_failed_sql[] =
	"UPDATE deliveries SET status = 'failed', attempts = attempts + 1, last_attempt_at = now(), "
	"finished_at = now(), last_status = $2::int, last_error = $3 WHERE id = $1::bigint";
static const char deliver_retry_sql[] =
	"UPDATE deliveries SET attempts = attempts + 1, last_attempt_at = now(), "
	"last_status = $2::int, last_error = $3, "
	"next_attempt_at = now() + make_interval(secs => $4::bigint / 1000.0) "
	"WHERE id = $1::bigint";

static const char deliver_pending_help[] = "Deliveries waiting to be sent (retries included).";
static const char deliver_age_help[] =
	"Seconds since the oldest delivery still waiting was queued (0: none).";
static const char deliver_sent_help[] = "Deliveries sent.";
static const char deliver_failed_help[] =
	"Deliveries given up: a permanent failure, or the retry window passed.";
static const char deliver_retries_help[] = "Failed attempts that will be tried again.";

struct deliver;

struct deliver_sender {
	struct deliver *d;
	pthread_t thread;
	bool started;
	PGconn *session; /* its own (db_open), used by its thread only; NULL = none */
};

struct deliver {
	struct deliver_config c;
	_Atomic bool stop;
	int nthreads;
	struct deliver_sender senders[DELIVER_MAX_THREADS];
};

long long deliver_backoff_ms(int attempts, long long base_ms, long long max_ms, double u)
{
	long long pause = base_ms > 0 ? base_ms : 1;
	for (int i = 1; i < attempts && pause < max_ms; i++)
		pause = pause > INT64_MAX / 2 ? INT64_MAX : pause * 2;
	if (pause > max_ms)
		pause = max_ms;
	if (u < 0)
		u = 0;
	if (u >= 1)
		u = 0.999999;
	return (long long)llround((double)pause * (0.8 + 0.4 * u));
}

long long deliver_retry_after_ms(int attempts, long long elapsed_ms, long long base_ms,
                                 long long max_ms, long long window_ms, double u)
{
	if (elapsed_ms >= window_ms)
		return -1;
	long long pause = deliver_backoff_ms(attempts, base_ms, max_ms, u);
	if (pause > window_ms - elapsed_ms)
		pause = window_ms - elapsed_ms;
	return pause;
}

bool deliver_hours_ms(const char *text, long long *ms, char *why, size_t whylen)
{
	char *end = NULL;
	/* Digits with at most one point: strtod alone would take blanks, signs, hex and "inf". */
	size_t digits = text ? strspn(text, "0123456789.") : 0;
	double h = digits && !text[digits] && strchr(text, '.') == strrchr(text, '.')
	                   ? strtod(text, &end)
	                   : -1;
	if (!end || *end || !(h > 0) || h > 8760) {
		snprintf(why, whylen,
		         "must be a number of hours above 0, at most 8760 (e.g. 24 or 0.5)");
		return false;
	}
	*ms = (long long)llround(h * 3600000.0);
	if (*ms < 1)
		*ms = 1;
	return true;
}

bool deliver_hours_valid(const char *text, char *why, size_t whylen)
{
	long long ms;
	return deliver_hours_ms(text, &ms, why, whylen);
}

/* A uniform number in [0, 1) for the jitter (not a secret: rnd.h's bytes are just handy). */
static double deliver_jitter(void)
{
	uint32_t x = 0;
	if (!rnd_bytes(&x, sizeof x))
		return 0.5;
	return (double)x / 4294967296.0;
}

/* ---- metrics ---- */

static double deliver_pending(const char *kind)
{
	PGresult *res = NULL;
	const char *params[] = {kind};
	double n = -1;
	if (db_exec(&res, "SELECT count(*) FROM deliveries WHERE kind = $1 AND status = 'pending'",
	            1, params) == DB_OK)
		n = (double)db_int(res, 0, 0);
	PQclear(res);
	return n;
}

static double deliver_oldest_age(const char *kind)
{
	PGresult *res = NULL;
	const char *params[] = {kind};
	double age = -1;
	if (db_exec(&res,
	            "SELECT coalesce(extract(epoch FROM now() - min(created_at)), 0)::float8 "
	            "FROM deliveries WHERE kind = $1 AND status = 'pending'",
	            1, params) == DB_OK)
		age = strtod(PQgetvalue(res, 0, 0), NULL);
	PQclear(res);
	return age;
}

static void deliver_register_metrics(const char *kind)
{
	metrics_register_gauge_labeled("delivery_pending", deliver_pending_help, "kind", kind,
	                               deliver_pending);
	metrics_register_gauge_labeled("delivery_oldest_pending_age_seconds", deliver_age_help,
	                               "kind", kind, deliver_oldest_age);
	metrics_counter_add_labeled("delivery_sent_total", deliver_sent_help, "kind", kind, 0);
	metrics_counter_add_labeled("delivery_failed_total", deliver_failed_help, "kind", kind, 0);
	metrics_counter_add_labeled("delivery_retries_total", deliver_retries_help, "kind", kind,
	                            0);
}

/* ---- the senders ---- */

static void deliver_end_session(struct deliver_sender *s)
{
	PQfinish(s->session);
	s->session = NULL;
}

/* One line per attempt that did not deliver, with fields a log reader can match on (never the
 * payload, which may carry personal data). */
static void deliver_log(const struct deliver *d, const struct deliver_item *it,
                        const struct deliver_result *r, long long retry_ms)
{
	enum log_level level = retry_ms >= 0 ? LOG_LEVEL_INFO : LOG_LEVEL_WARN;
	if (!log_enabled(level))
		return;
	json_t *fields = json_pack("{s:s, s:I, s:s, s:s, s:i, s:i, s:s}", "delivery_kind",
	                           d->c.kind, "delivery_id", (json_int_t)it->id, "target",
	                           it->target, "key", it->key, "attempt", it->attempts + 1,
	                           "status", r->status, "error", r->error);
	if (retry_ms >= 0)
		log_write(level, fields,
		          "%s delivery %lld to %s: attempt %d failed (%s); next in %lld ms",
		          d->c.kind, it->id, it->target, it->attempts + 1, r->error, retry_ms);
	else
		log_write(level, fields, "%s delivery %lld to %s: gave up after %d attempt(s) (%s)",
		          d->c.kind, it->id, it->target, it->attempts + 1, r->error);
}

/* Records r for the claimed row it inside the open transaction and commits.  Returns false when
 * the session failed (it is then ended). */
static bool deliver_record(struct deliver_sender *s, const struct deliver_item *it,
                           struct deliver_result *r, long long elapsed_ms)
{
	struct deliver *d = s->d;
	char id[24], status[16], pause[24];
	const char *sql;
	long long retry_ms = -1;
	snprintf(id, sizeof id, "%lld", it->id);
	snprintf(status, sizeof status, "%d", r->status);
	if (r->outcome == DELIVER_SENT) {
		sql = deliver_sent_sql;
	} else {
		if (!r->error[0])
			snprintf(r->error, sizeof r->error, "failed");
		if (r->outcome == DELIVER_TEMPORARY)
			retry_ms = deliver_retry_after_ms(it->attempts + 1, elapsed_ms,
			                                  d->c.retry_base_ms, d->c.retry_max_ms,
			                                  d->c.retry_window_ms, deliver_jitter());
		sql = retry_ms >= 0 ? deliver_retry_sql : deliver_failed_sql;
	}
	snprintf(pause, sizeof pause, "%lld", retry_ms);
	const char *params[] = {id, r->status ? status : NULL,
	                        r->outcome == DELIVER_SENT ? NULL : r->error, pause};
	enum db_status st = db_exec_on(s->session, NULL, sql, retry_ms >= 0 ? 4 : 3, params);
	if (st == DB_OK)
		st = db_exec_on(s->session, NULL, "COMMIT", 0, NULL);
	if (st != DB_OK) {
		log_warn(
			"%s delivery %lld: recording the outcome failed (%s); it will be sent again",
			d->c.kind, it->id, db_status_str(st));
		deliver_end_session(s);
		return false;
	}
	if (r->outcome == DELIVER_SENT) {
		metrics_counter_add_labeled("delivery_sent_total", deliver_sent_help, "kind",
		                            d->c.kind, 1);
		return true;
	}
	deliver_log(d, it, r, retry_ms);
	if (retry_ms >= 0)
		metrics_counter_add_labeled("delivery_retries_total", deliver_retries_help, "kind",
		                            d->c.kind, 1);
	else
		metrics_counter_add_labeled("delivery_failed_total", deliver_failed_help, "kind",
		                            d->c.kind, 1);
	return true;
}

/* Claims, sends and records one row.  Returns 1 when a row was handled, 0 when none was due, -1
 * when the session failed (or the worker stopped mid-send: the row is left as it was). */
static int deliver_one(struct deliver_sender *s)
{
	struct deliver *d = s->d;
	PGresult *res = NULL;
	int rc = -1;
	if (!s->session && !(s->session = db_open()))
		return -1;
	enum db_status st = db_exec_on(s->session, NULL, "BEGIN", 0, NULL);
	const char *params[] = {d->c.kind};
	if (st == DB_OK)
		st = db_exec_on(s->session, &res, deliver_claim_sql, 1, params);
	if (st != DB_OK) {
		log_warn("%s deliveries: claiming failed (%s)", d->c.kind, db_status_str(st));
		deliver_end_session(s);
		goto out;
	}
	if (PQntuples(res) == 0) {
		rc = db_exec_on(s->session, NULL, "ROLLBACK", 0, NULL) == DB_OK ? 0 : -1;
		if (rc < 0)
			deliver_end_session(s);
		goto out;
	}
	struct deliver_item it = {
		.id = db_int(res, 0, 0),
		.kind = d->c.kind,
		.target = PQgetvalue(res, 0, 1),
		.key = PQgetvalue(res, 0, 2),
		.payload = PQgetvalue(res, 0, 3),
		.attempts = (int)db_int(res, 0, 4),
		.session = s->session,
		.stop = &d->stop,
	};
	struct deliver_result r = {DELIVER_TEMPORARY, 0, ""};
	long long t0 = timefmt_mono_ms();
	d->c.send(&it, d->c.arg, &r);
	long long elapsed = db_int(res, 0, 5) + (timefmt_mono_ms() - t0);
	if (d->stop) {
		/* Not recorded: the row is pending as before, and sent again after the restart. */
		deliver_end_session(s);
		goto out;
	}
	rc = deliver_record(s, &it, &r, elapsed) ? 1 : -1;
out:
	PQclear(res);
	return rc;
}

static void *deliver_main(void *arg)
{
	struct deliver_sender *s = arg;
	struct deliver *d = s->d;
	while (!d->stop) {
		int n = deliver_one(s);
		if (n > 0)
			continue;
		timefmt_sleep_unless(n == 0 ? (long)d->c.poll_ms : DELIVER_SESSION_RETRY_MS,
		                     &d->stop);
	}
	deliver_end_session(s);
	if (d->c.thread_exit)
		d->c.thread_exit();
	return NULL;
}

struct deliver *deliver_start(const struct deliver_config *c)
{
	struct deliver *d = calloc(1, sizeof *d);
	if (!d)
		return NULL;
	d->c = *c;
	if (d->c.poll_ms <= 0)
		d->c.poll_ms = DELIVER_POLL_MS;
	if (d->c.retry_max_ms < d->c.retry_base_ms)
		d->c.retry_max_ms = d->c.retry_base_ms;
	d->nthreads = c->threads <= 0 ? 1 : c->threads;
	if (d->nthreads > DELIVER_MAX_THREADS)
		d->nthreads = DELIVER_MAX_THREADS;
	deliver_register_metrics(c->kind);
	for (int i = 0; i < d->nthreads; i++) {
		struct deliver_sender *s = &d->senders[i];
		s->d = d;
		if (pthread_create(&s->thread, NULL, deliver_main, s) != 0) {
			deliver_stop(d);
			return NULL;
		}
		s->started = true;
	}
	log_info("%s deliveries: %d sender(s), retries for up to %lld s", c->kind, d->nthreads,
	         d->c.retry_window_ms / 1000);
	return d;
}

void deliver_signal(struct deliver *d)
{
	if (d)
		d->stop = true;
}

void deliver_stop(struct deliver *d)
{
	if (!d)
		return;
	d->stop = true;
	for (int i = 0; i < d->nthreads; i++)
		if (d->senders[i].started)
			pthread_join(d->senders[i].thread, NULL);
	free(d);
}
