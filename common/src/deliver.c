#include "deliver.h"

#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
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
/* A lease lasts the send's own timeout and this much more: reading the target, recording. */
#define DELIVER_LEASE_MARGIN_MS 60000

/* payload is json, not jsonb, like the outbox's: a webhook body is the event byte for byte as
 * Kafka carries it.  finished_at (sent or failed) is what the sweeper goes by.  leased_until:
 * set when a sender claims the row (the end of its lease), set to the moment of the outcome
 * when it is recorded; the latest one of a target says whether a send to it is in flight and
 * when it was last attempted (deliver.h, "fairness"). */
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
	"    leased_until    timestamptz,\n"
	"    last_attempt_at timestamptz,\n"
	"    last_status     integer,\n"
	"    last_error      text,\n"
	"    created_at      timestamptz NOT NULL DEFAULT now(),\n"
	"    sent_at         timestamptz,\n"
	"    finished_at     timestamptz\n"
	");\n"
	"CREATE INDEX IF NOT EXISTS deliveries_due_by_target\n"
	"    ON deliveries (kind, target, next_attempt_at, id) WHERE status = 'pending';\n"
	"CREATE INDEX IF NOT EXISTS deliveries_order ON deliveries (kind, target, key, id)\n"
	"    WHERE status = 'pending';\n"
	"CREATE INDEX IF NOT EXISTS deliveries_pending ON deliveries (kind, id)\n"
	"    WHERE status = 'pending';\n"
	"CREATE INDEX IF NOT EXISTS deliveries_leases ON deliveries (kind, target, leased_until)\n"
	"    WHERE leased_until IS NOT NULL;\n"
	"CREATE INDEX IF NOT EXISTS deliveries_by_target ON deliveries (kind, target, id);\n"
	"CREATE INDEX IF NOT EXISTS deliveries_finished ON deliveries (finished_at)\n"
	"    WHERE status <> 'pending';\n"
	"-- A row queued behind pending rows of its key is not due before them (a retry pushes the\n"
	"-- rows behind it likewise): rows that cannot go yet are never due, so no claim reads them.\n"
	"CREATE OR REPLACE FUNCTION deliveries_queue_behind() RETURNS trigger LANGUAGE plpgsql AS $$\n"
	"DECLARE ahead timestamptz;\n"
	"BEGIN\n"
	"    SELECT max(next_attempt_at) INTO ahead FROM deliveries\n"
	"    WHERE kind = NEW.kind AND target = NEW.target AND key = NEW.key AND status = 'pending';\n"
	"    IF ahead > NEW.next_attempt_at THEN\n"
	"        NEW.next_attempt_at := ahead;\n"
	"    END IF;\n"
	"    RETURN NEW;\n"
	"END\n"
	"$$;\n"
	"CREATE OR REPLACE TRIGGER deliveries_queue_behind BEFORE INSERT ON deliveries\n"
	"    FOR EACH ROW EXECUTE FUNCTION deliveries_queue_behind();\n";

const char deliver_sweep_sql[] =
	"DELETE FROM deliveries WHERE ctid = ANY (ARRAY("
	"SELECT ctid FROM deliveries WHERE status <> 'pending' "
	"AND finished_at < now() - make_interval(secs => $1::bigint) LIMIT $2::int))";

/* The claim ($1 kind), in three steps that each cost an index probe per target, never a walk
 * over the backlog:
 * - targets: the distinct targets with pending rows (a skip scan of deliveries_due_by_target);
 * - per target, its latest lease (deliveries_leases): a target whose lease has not ended has a
 *   send in flight and is passed over; the others are taken least recently attempted first;
 * - per target, its oldest due row that no older pending row of the same key precedes.
 * The row is then locked (SKIP LOCKED: another sender has it) with an advisory lock on the
 * target (another sender is claiming for it right now), rechecked in deliver_claim.
 * Column 5: milliseconds since it was queued; 6: how long the last lease was held (a whole
 * lease: the outcome was never recorded). */
/* clang-format off */
static const char deliver_claim_sql[] =
	"WITH RECURSIVE targets (target) AS ("
	" (SELECT target FROM deliveries WHERE kind = $1 AND status = 'pending'"
	"  ORDER BY target LIMIT 1)"
	" UNION ALL"
	" SELECT (SELECT d.target FROM deliveries d WHERE d.kind = $1 AND d.status = 'pending'"
	"  AND d.target > t.target ORDER BY d.target LIMIT 1)"
	" FROM targets t WHERE t.target IS NOT NULL"
	"), free AS ("
	" SELECT t.target, l.last FROM targets t"
	" CROSS JOIN LATERAL (SELECT max(b.leased_until) AS last FROM deliveries b"
	"  WHERE b.kind = $1 AND b.target = t.target AND b.leased_until IS NOT NULL) l"
	" WHERE t.target IS NOT NULL AND (l.last IS NULL OR l.last <= now())"
	"), heads AS ("
	" SELECT h.id, f.last, h.next_attempt_at FROM free f"
	" CROSS JOIN LATERAL (SELECT d.id, d.next_attempt_at FROM deliveries d"
	"  WHERE d.kind = $1 AND d.target = f.target AND d.status = 'pending'"
	"  AND d.next_attempt_at <= now()"
	"  AND NOT EXISTS (SELECT 1 FROM deliveries o WHERE o.kind = d.kind"
	"   AND o.target = d.target AND o.key = d.key AND o.status = 'pending' AND o.id < d.id)"
	"  ORDER BY d.next_attempt_at, d.id LIMIT 1) h"
	" ORDER BY f.last NULLS FIRST, h.next_attempt_at, h.id LIMIT 4"
	")"
	" SELECT d.id, d.target, d.key, d.payload::text, d.attempts,"
	" (extract(epoch FROM now() - d.created_at) * 1000)::bigint,"
	" coalesce(extract(epoch FROM d.leased_until - d.last_attempt_at) * 1000, 0)::bigint"
	" FROM heads h JOIN deliveries d ON d.id = h.id"
	" WHERE d.status = 'pending' AND d.next_attempt_at <= now()"
	" AND pg_try_advisory_xact_lock(hashtextextended(d.kind || '/' || d.target, 0))"
	" ORDER BY h.last NULLS FIRST, h.next_attempt_at, h.id LIMIT 1"
	" FOR UPDATE OF d SKIP LOCKED";
/* clang-format on */

/* After the advisory lock, in a snapshot that sees every lease committed before it: another
 * sender's send to the target ($1 kind, $2 target) still in flight ($3 the row claimed). */
static const char deliver_busy_sql[] =
	"SELECT 1 FROM deliveries WHERE kind = $1 AND target = $2 AND leased_until > now() "
	"AND id <> $3::bigint LIMIT 1";

/* The lease: the attempt is counted now (a send whose outcome is never recorded still counts),
 * and the row is not due again before $2 ms, when a sender that died mid-send has certainly
 * stopped.  $1 id. */
static const char deliver_lease_sql[] =
	"UPDATE deliveries SET attempts = attempts + 1, last_attempt_at = now(), "
	"leased_until = now() + make_interval(secs => $2::bigint / 1000.0), "
	"next_attempt_at = now() + make_interval(secs => $2::bigint / 1000.0) "
	"WHERE id = $1::bigint";

/* The outcomes, recorded outside any transaction after the send, only while the lease is the
 * sender's own ($1 id, $2 the attempts it counted): a lease that ran out and was taken again
 * by another sender is that one's to record.  $3 last_status (NULL = none), $4 last_error
 * (NULL when sent), $5 the pause before the next attempt in ms (retry only). */
#define DELIVER_MINE "WHERE id = $1::bigint AND attempts = $2::int AND status = 'pending'"
static const char deliver_sent_sql[] =
	"UPDATE deliveries SET status = 'sent', leased_until = now(), sent_at = now(), "
	"finished_at = now(), last_status = $3::int, last_error = $4 " DELIVER_MINE;
static const char deliver_failed_sql[] =
	"UPDATE deliveries SET status = 'failed', leased_until = now(), finished_at = now(), "
	"last_status = $3::int, last_error = $4 " DELIVER_MINE;
/* A retry also pushes the later pending rows of the same key to its own next attempt: they
 * cannot go before it, and rows left due behind it would be read by every claim. */
static const char deliver_retry_sql[] =
	"WITH r AS (UPDATE deliveries SET leased_until = now(), last_status = $3::int, "
	"last_error = $4, next_attempt_at = now() + make_interval(secs => $5::bigint / 1000.0) " DELIVER_MINE
	" RETURNING kind, target, key, id, next_attempt_at) "
	"UPDATE deliveries s SET next_attempt_at = r.next_attempt_at FROM r "
	"WHERE s.kind = r.kind AND s.target = r.target AND s.key = r.key AND s.status = 'pending' "
	"AND s.id > r.id AND s.next_attempt_at < r.next_attempt_at";
/* A send abandoned at the stop: not counted, due again at once (after the restart). */
static const char deliver_release_sql[] =
	"UPDATE deliveries SET attempts = attempts - 1, leased_until = now(), "
	"next_attempt_at = now() " DELIVER_MINE;
#undef DELIVER_MINE

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
	long long lease_ms; /* send_timeout_ms + DELIVER_LEASE_MARGIN_MS */
	_Atomic bool stop;
	_Atomic long long next_beat_ms; /* monotonic: when the next heartbeat is due */
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
	            "SELECT coalesce((SELECT extract(epoch FROM now() - created_at) FROM deliveries "
	            "WHERE kind = $1 AND status = 'pending' ORDER BY id LIMIT 1), 0)::float8",
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

/* Bytes a database text column and a log line take whatever the sender wrote: control
 * characters and bytes above 0x7f (a cut UTF-8 sequence would fail the UPDATE) become '?'. */
static void deliver_ascii(char *text)
{
	for (unsigned char *p = (unsigned char *)text; *p; p++)
		if (*p < 0x20 || *p > 0x7e)
			*p = '?';
}

/* Records r for the leased row it (autocommit).  stopping: the worker is stopping, and an
 * attempt that did not deliver is released instead (it was most likely cut short).  Returns
 * false when the session failed (it is then ended; the lease runs out and the row is sent
 * again, its attempt counted). */
static bool deliver_record(struct deliver_sender *s, const struct deliver_item *it,
                           struct deliver_result *r, long long elapsed_ms, bool stopping)
{
	struct deliver *d = s->d;
	char id[24], counted[16], status[16], pause[24];
	const char *sql;
	long long retry_ms = -1;
	snprintf(id, sizeof id, "%lld", it->id);
	snprintf(counted, sizeof counted, "%d", it->attempts + 1);
	snprintf(status, sizeof status, "%d", r->status);
	int nparams = 4;
	if (r->outcome == DELIVER_SENT) {
		sql = deliver_sent_sql;
	} else if (stopping) {
		sql = deliver_release_sql;
		nparams = 2;
	} else {
		if (!r->error[0])
			snprintf(r->error, sizeof r->error, "failed");
		deliver_ascii(r->error);
		if (r->outcome == DELIVER_TEMPORARY)
			retry_ms = deliver_retry_after_ms(it->attempts + 1, elapsed_ms,
			                                  d->c.retry_base_ms, d->c.retry_max_ms,
			                                  d->c.retry_window_ms, deliver_jitter());
		sql = retry_ms >= 0 ? deliver_retry_sql : deliver_failed_sql;
		nparams = retry_ms >= 0 ? 5 : 4;
	}
	snprintf(pause, sizeof pause, "%lld", retry_ms);
	const char *params[] = {id, counted, r->status ? status : NULL,
	                        r->outcome == DELIVER_SENT ? NULL : r->error, pause};
	enum db_status st = db_exec_on(s->session, NULL, sql, nparams, params);
	if (st != DB_OK) {
		log_warn("%s delivery %lld: recording the outcome failed (%s); it will be sent "
		         "again when its lease ends",
		         d->c.kind, it->id, db_status_str(st));
		deliver_end_session(s);
		return false;
	}
	if (r->outcome == DELIVER_SENT) {
		metrics_counter_add_labeled("delivery_sent_total", deliver_sent_help, "kind",
		                            d->c.kind, 1);
		return true;
	}
	if (stopping)
		return true;
	deliver_log(d, it, r, retry_ms);
	if (retry_ms >= 0)
		metrics_counter_add_labeled("delivery_retries_total", deliver_retries_help, "kind",
		                            d->c.kind, 1);
	else
		metrics_counter_add_labeled("delivery_failed_total", deliver_failed_help, "kind",
		                            d->c.kind, 1);
	return true;
}

/* Ends the claim's transaction: COMMIT (commit true) or ROLLBACK.  false when that failed (the
 * session is then ended). */
static bool deliver_end_claim(struct deliver_sender *s, bool commit)
{
	if (db_exec_on(s->session, NULL, commit ? "COMMIT" : "ROLLBACK", 0, NULL) == DB_OK)
		return true;
	deliver_end_session(s);
	return false;
}

/* Claims one due row and leases it (a short transaction of its own).  Returns 1 with the row in
 * *res, 0 when none was due (or its target turned out busy), -1 when the session failed. */
static int deliver_claim(struct deliver_sender *s, PGresult **res)
{
	struct deliver *d = s->d;
	const char *params[] = {d->c.kind, NULL, NULL};
	char lease[24];
	PGresult *busy = NULL;
	enum db_status st = db_exec_on(s->session, NULL, "BEGIN", 0, NULL);
	if (st == DB_OK)
		st = db_exec_on(s->session, res, deliver_claim_sql, 1, params);
	if (st == DB_OK && PQntuples(*res) == 1) {
		params[1] = PQgetvalue(*res, 0, 1);
		params[2] = PQgetvalue(*res, 0, 0);
		st = db_exec_on(s->session, &busy, deliver_busy_sql, 3, params);
	}
	if (st != DB_OK) {
		log_warn("%s deliveries: claiming failed (%s)", d->c.kind, db_status_str(st));
		deliver_end_session(s);
		PQclear(busy);
		return -1;
	}
	bool claimed = PQntuples(*res) == 1 && PQntuples(busy) == 0;
	PQclear(busy);
	if (!claimed)
		return deliver_end_claim(s, false) ? 0 : -1;
	snprintf(lease, sizeof lease, "%lld", d->lease_ms);
	const char *lp[] = {PQgetvalue(*res, 0, 0), lease};
	st = db_exec_on(s->session, NULL, deliver_lease_sql, 2, lp);
	if (st != DB_OK) {
		log_warn("%s deliveries: leasing failed (%s)", d->c.kind, db_status_str(st));
		deliver_end_session(s);
		return -1;
	}
	return deliver_end_claim(s, true) ? 1 : -1;
}

/* Claims, sends and records one row.  Returns 1 when a row was handled, 0 when none was due, -1
 * when the session failed. */
static int deliver_one(struct deliver_sender *s)
{
	struct deliver *d = s->d;
	PGresult *res = NULL;
	if (!s->session && !(s->session = db_open()))
		return -1;
	int rc = deliver_claim(s, &res);
	if (rc <= 0)
		goto out;
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
	long long queued_ms = db_int(res, 0, 5);
	if (it.attempts > 0 && db_int(res, 0, 6) >= d->lease_ms &&
	    queued_ms >= d->c.retry_window_ms) {
		/* An earlier attempt's outcome was never recorded (the sender died or lost its
		 * session), and the window has passed since: given up without another send. */
		r.outcome = DELIVER_PERMANENT;
		snprintf(r.error, sizeof r.error,
		         "the retry window passed (the last attempt's outcome was not recorded)");
		rc = deliver_record(s, &it, &r, queued_ms, false) ? 1 : -1;
		goto out;
	}
	long long t0 = timefmt_mono_ms();
	d->c.send(&it, d->c.arg, &r);
	long long elapsed = queued_ms + (timefmt_mono_ms() - t0);
	/* At the stop, a send that delivered is still recorded (a short UPDATE, so a rolling
	 * restart does not send it twice); one cut short is released, not counted. */
	rc = deliver_record(s, &it, &r, elapsed, d->stop) ? 1 : -1;
out:
	PQclear(res);
	return rc;
}

/* The heartbeat (deliver_config.heartbeat), when due: taken by one sender (the others see the
 * next due time moved on). */
static void deliver_beat(struct deliver_sender *s)
{
	struct deliver *d = s->d;
	long long now = timefmt_mono_ms(), due = d->next_beat_ms;
	if (!d->c.heartbeat || now < due ||
	    !atomic_compare_exchange_strong(&d->next_beat_ms, &due, now + d->c.heartbeat_ms))
		return;
	if ((s->session || (s->session = db_open())) &&
	    !d->c.heartbeat(s->session, d->c.heartbeat_arg)) {
		log_warn("%s deliveries: the heartbeat failed", d->c.kind);
		deliver_end_session(s);
		d->next_beat_ms = now; /* due again at the next turn */
	}
}

static void *deliver_main(void *arg)
{
	struct deliver_sender *s = arg;
	struct deliver *d = s->d;
	while (!d->stop) {
		deliver_beat(s);
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
	d->lease_ms = (c->send_timeout_ms > 0 ? c->send_timeout_ms : 0) + DELIVER_LEASE_MARGIN_MS;
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
