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
/* An idle sender's pause grows from poll_ms to this many times it (deliver_idle_pause). */
#define DELIVER_IDLE_MAX_POLLS 4

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

/* A target with nothing pending and no attempt for $1 s: its row goes (a new row for it makes
 * it again).  The rows are locked as they are picked, skipping the ones a claim or a record
 * holds: the sweep never waits, so it cannot deadlock with a claim locking targets in its own
 * order (review 14e L2); FOR UPDATE rechecks due_at on the latest version, so a row a claim
 * made due meanwhile stays. */
const char deliver_targets_sweep_sql[] =
	"DELETE FROM delivery_targets WHERE ctid = ANY (ARRAY("
	"SELECT ctid FROM delivery_targets WHERE due_at IS NULL "
	"AND coalesce(last_attempt_at, '-infinity') < now() - make_interval(secs => $1::bigint) "
	"LIMIT $2::int FOR UPDATE SKIP LOCKED))";

/* The shared migrations 005 and 006 (svc.c): the leases for the databases of 004's first
 * version, and the claim by target (delivery_targets, deliveries_claim, deliveries_record). */
/* clang-format off */
const char deliver_leases_schema_sql[] =
	"-- 004 as it first landed (8515559) had no leases: its databases get them here (review 14d-A\n"
	"-- L2).  Idempotent: where 004 already made them, nothing changes.  deliveries_due was that\n"
	"-- version's index for the claim, which reads deliveries_due_by_target now.\n"
	"ALTER TABLE deliveries ADD COLUMN IF NOT EXISTS leased_until timestamptz;\n"
	"DROP INDEX IF EXISTS deliveries_due;\n"
	"CREATE INDEX IF NOT EXISTS deliveries_due_by_target\n"
	"    ON deliveries (kind, target, next_attempt_at, id) WHERE status = 'pending';\n"
	"CREATE INDEX IF NOT EXISTS deliveries_pending ON deliveries (kind, id)\n"
	"    WHERE status = 'pending';\n"
	"CREATE INDEX IF NOT EXISTS deliveries_leases ON deliveries (kind, target, leased_until)\n"
	"    WHERE leased_until IS NOT NULL;\n"
	"-- A row queued behind rows in backoff is not due before them.  A lease end is not copied\n"
	"-- (review 14e L1): the row stays behind its head by the claim's NOT EXISTS, and its target\n"
	"-- is not due during the lease anyway, so the row is due the moment the head is recorded,\n"
	"-- even when that happens before this row's transaction commits.\n"
	"CREATE OR REPLACE FUNCTION deliveries_queue_behind() RETURNS trigger LANGUAGE plpgsql AS $$\n"
	"DECLARE ahead timestamptz;\n"
	"BEGIN\n"
	"    SELECT max(next_attempt_at) INTO ahead FROM deliveries\n"
	"    WHERE kind = NEW.kind AND target = NEW.target AND key = NEW.key AND status = 'pending'\n"
	"      AND (leased_until IS NULL OR leased_until <= now());\n"
	"    IF ahead > NEW.next_attempt_at THEN\n"
	"        NEW.next_attempt_at := ahead;\n"
	"    END IF;\n"
	"    RETURN NEW;\n"
	"END\n"
	"$$;\n"
	"CREATE OR REPLACE TRIGGER deliveries_queue_behind BEFORE INSERT ON deliveries\n"
	"    FOR EACH ROW EXECUTE FUNCTION deliveries_queue_behind();\n";

const char deliver_targets_schema_sql[] =
	"-- The claim by target (review 14d-A M2): one row per (kind, target) with rows pending, kept by\n"
	"-- the senders, so that a claim reads the targets that are due (an index range), never the\n"
	"-- targets in backoff.  due_at: no row of the target can go before it (a lower bound: a claim\n"
	"-- that finds nothing due corrects it); NULL: nothing pending.  leased_until: a send to it is\n"
	"-- in flight until then.  last_attempt_at: the least recently attempted goes first.\n"
	"CREATE TABLE IF NOT EXISTS delivery_targets (\n"
	"    kind            text NOT NULL,\n"
	"    target          text NOT NULL,\n"
	"    due_at          timestamptz,\n"
	"    leased_until    timestamptz,\n"
	"    last_attempt_at timestamptz,\n"
	"    PRIMARY KEY (kind, target)\n"
	");\n"
	"CREATE INDEX IF NOT EXISTS delivery_targets_due ON delivery_targets (kind, due_at)\n"
	"    WHERE due_at IS NOT NULL;\n"
	"CREATE INDEX IF NOT EXISTS delivery_targets_idle ON delivery_targets (last_attempt_at)\n"
	"    WHERE due_at IS NULL;\n"
	"-- New rows tell their targets through this inbox (a plain INSERT in the change's transaction:\n"
	"-- no lock on a target row, so two changes queueing for one recipient never wait on each other);\n"
	"-- the senders move it into delivery_targets as they claim.\n"
	"CREATE TABLE IF NOT EXISTS delivery_wakes (\n"
	"    id     bigserial PRIMARY KEY,\n"
	"    kind   text NOT NULL,\n"
	"    target text NOT NULL,\n"
	"    due_at timestamptz NOT NULL\n"
	");\n"
	"CREATE INDEX IF NOT EXISTS delivery_wakes_kind ON delivery_wakes (kind, id);\n"
	"CREATE OR REPLACE FUNCTION deliveries_wake() RETURNS trigger LANGUAGE plpgsql AS $$\n"
	"BEGIN\n"
	"    INSERT INTO delivery_wakes (kind, target, due_at)\n"
	"    SELECT q.kind, q.target, min(q.next_attempt_at) FROM queued q GROUP BY q.kind, q.target;\n"
	"    RETURN NULL;\n"
	"END\n"
	"$$;\n"
	"CREATE OR REPLACE TRIGGER deliveries_wake AFTER INSERT ON deliveries\n"
	"    REFERENCING NEW TABLE AS queued FOR EACH STATEMENT EXECUTE FUNCTION deliveries_wake();\n"
	"-- The rows pending when this runs.\n"
	"INSERT INTO delivery_targets (kind, target, due_at, leased_until, last_attempt_at)\n"
	"SELECT kind, target, greatest(min(next_attempt_at), max(leased_until)), max(leased_until),\n"
	"       max(last_attempt_at)\n"
	"FROM deliveries WHERE status = 'pending' GROUP BY kind, target\n"
	"ON CONFLICT DO NOTHING;\n";


/* The claim (007): deliveries_claim(kind, lease_ms) claims one due row of kind and leases it.
 * It returns one row, with d_id NULL when none was due (idle_ms: until the earliest target is
 * due; NULL: none known; 0: some due target was being claimed by another sender right now).
 *  1. the wakes of new rows (at most 500) lower their targets' due_at, never below a lease;
 *  2. among the 16 targets due first, the least recently attempted that no other sender is
 *     claiming (SKIP LOCKED) and that has no send in flight;
 *  3. its oldest due row that no older pending row of its key precedes (SKIP LOCKED); none:
 *     the target's due_at was early, and is corrected (a head held by another transaction:
 *     looked at again in a second);
 *  4. the row and the target are leased: the attempt counted, neither due before the lease
 *     ends.
 * Each statement of a volatile function sees what committed before it began, and a target's
 * due_at is only recomputed while its row is locked: a wake moved in meanwhile is never
 * overwritten by a stale minimum. */
const char deliver_claim_schema_sql[] =
	"-- The claim (deliver.c, \"the claim\"): each statement sees what committed before it began.\n"
	"CREATE OR REPLACE FUNCTION deliveries_claim(p_kind text, p_lease_ms bigint)\n"
	"RETURNS TABLE (d_id bigint, d_target text, d_key text, d_payload text, d_attempts integer,\n"
	"               queued_ms bigint, held_ms bigint, idle_ms bigint)\n"
	"LANGUAGE plpgsql AS $$\n"
	"DECLARE\n"
	"    lease constant interval := make_interval(secs => p_lease_ms / 1000.0);\n"
	"    c record;\n"
	"    r record;\n"
	"    next_due timestamptz;\n"
	"    contended boolean := false;\n"
	"BEGIN\n"
	"    WITH w AS (\n"
	"        DELETE FROM delivery_wakes WHERE id IN (\n"
	"            SELECT x.id FROM delivery_wakes x WHERE x.kind = p_kind ORDER BY x.id LIMIT 500\n"
	"            FOR UPDATE SKIP LOCKED)\n"
	"        RETURNING target, due_at\n"
	"    ), g AS (SELECT w.target, min(w.due_at) AS due FROM w GROUP BY w.target)\n"
	"    INSERT INTO delivery_targets AS t (kind, target, due_at)\n"
	"    SELECT p_kind, g.target, g.due FROM g ORDER BY g.target\n"
	"    ON CONFLICT (kind, target) DO UPDATE\n"
	"        SET due_at = greatest(excluded.due_at, t.leased_until)\n"
	"        WHERE t.due_at IS NULL OR t.due_at > greatest(excluded.due_at, t.leased_until);\n"
	"\n"
	"    FOR c IN\n"
	"        SELECT s.target FROM (\n"
	"            SELECT t.target, t.due_at, t.last_attempt_at FROM delivery_targets t\n"
	"            WHERE t.kind = p_kind AND t.due_at <= now() ORDER BY t.due_at LIMIT 16) s\n"
	"        ORDER BY s.last_attempt_at NULLS FIRST, s.due_at\n"
	"    LOOP\n"
	"        PERFORM 1 FROM delivery_targets t WHERE t.kind = p_kind AND t.target = c.target\n"
	"            AND t.due_at <= now() AND (t.leased_until IS NULL OR t.leased_until <= now())\n"
	"            FOR UPDATE SKIP LOCKED;\n"
	"        IF NOT FOUND THEN\n"
	"            contended := true;\n"
	"            CONTINUE;\n"
	"        END IF;\n"
	"        SELECT d.id, d.target, d.key, d.payload::text AS payload, d.attempts, d.created_at,\n"
	"               d.leased_until, d.last_attempt_at\n"
	"        INTO r FROM deliveries d\n"
	"        WHERE d.kind = p_kind AND d.target = c.target AND d.status = 'pending'\n"
	"          AND d.next_attempt_at <= now()\n"
	"          AND NOT EXISTS (SELECT 1 FROM deliveries o WHERE o.kind = d.kind\n"
	"              AND o.target = d.target AND o.key = d.key AND o.status = 'pending'\n"
	"              AND o.id < d.id)\n"
	"        ORDER BY d.next_attempt_at, d.id LIMIT 1\n"
	"        FOR UPDATE OF d SKIP LOCKED;\n"
	"        IF NOT FOUND THEN\n"
	"            SELECT min(d.next_attempt_at) INTO next_due FROM deliveries d\n"
	"            WHERE d.kind = p_kind AND d.target = c.target AND d.status = 'pending'\n"
	"              AND NOT EXISTS (SELECT 1 FROM deliveries o WHERE o.kind = d.kind\n"
	"                  AND o.target = d.target AND o.key = d.key AND o.status = 'pending'\n"
	"                  AND o.id < d.id);\n"
	"            IF next_due <= now() THEN\n"
	"                next_due := now() + interval '1 second';\n"
	"            END IF;\n"
	"            UPDATE delivery_targets t SET due_at = next_due\n"
	"            WHERE t.kind = p_kind AND t.target = c.target;\n"
	"            CONTINUE;\n"
	"        END IF;\n"
	"        UPDATE deliveries d SET attempts = d.attempts + 1, last_attempt_at = now(),\n"
	"            leased_until = now() + lease, next_attempt_at = now() + lease\n"
	"        WHERE d.id = r.id;\n"
	"        UPDATE delivery_targets t SET leased_until = now() + lease, due_at = now() + lease,\n"
	"            last_attempt_at = now()\n"
	"        WHERE t.kind = p_kind AND t.target = c.target;\n"
	"        RETURN QUERY SELECT r.id, r.target, r.key, r.payload, r.attempts,\n"
	"            (extract(epoch FROM now() - r.created_at) * 1000)::bigint,\n"
	"            coalesce(extract(epoch FROM r.leased_until - r.last_attempt_at) * 1000, 0)::bigint,\n"
	"            NULL::bigint;\n"
	"        RETURN;\n"
	"    END LOOP;\n"
	"    RETURN QUERY SELECT NULL::bigint, NULL::text, NULL::text, NULL::text, NULL::integer,\n"
	"        NULL::bigint, NULL::bigint,\n"
	"        CASE WHEN contended THEN 0::bigint\n"
	"        ELSE (SELECT greatest(0, ceil(extract(epoch FROM min(t.due_at) - now()) * 1000))::bigint\n"
	"              FROM delivery_targets t WHERE t.kind = p_kind AND t.due_at IS NOT NULL) END;\n"
	"END\n"
	"$$;\n";


/* The outcome (008): deliveries_record(id, attempts, outcome, status, error, pause_ms) records
 * it only while the lease is the caller's (attempts: the ones it counted); false when the lease
 * is not the caller's any more.  outcome 'sent', 'failed', 'retry' (due again in pause_ms, the
 * rows behind it on its key pushed as far) or 'release' (not counted, due at once).  Sent or
 * failed: the rows queued behind it on its key, which waited for its lease, are due at once
 * (review 14d-A M4).  Then the target: free (when the lease on it is this one), due at its
 * earliest pending row. */
const char deliver_record_schema_sql[] =
	"-- The outcome of a leased row (deliver.c, \"the outcome\").\n"
	"CREATE OR REPLACE FUNCTION deliveries_record(p_id bigint, p_attempts integer, p_outcome text,\n"
	"                                             p_status integer, p_error text, p_pause_ms bigint)\n"
	"RETURNS boolean LANGUAGE plpgsql AS $$\n"
	"DECLARE\n"
	"    r record;\n"
	"    next_at timestamptz;\n"
	"BEGIN\n"
	"    SELECT d.kind, d.target, d.key, d.leased_until INTO r FROM deliveries d\n"
	"    WHERE d.id = p_id AND d.attempts = p_attempts AND d.status = 'pending' FOR UPDATE;\n"
	"    IF NOT FOUND THEN\n"
	"        RETURN false;\n"
	"    END IF;\n"
	"    IF p_outcome = 'sent' THEN\n"
	"        UPDATE deliveries SET status = 'sent', leased_until = now(), sent_at = now(),\n"
	"            finished_at = now(), last_status = p_status, last_error = NULL\n"
	"        WHERE id = p_id;\n"
	"    ELSIF p_outcome = 'failed' THEN\n"
	"        UPDATE deliveries SET status = 'failed', leased_until = now(), finished_at = now(),\n"
	"            last_status = p_status, last_error = p_error\n"
	"        WHERE id = p_id;\n"
	"    ELSIF p_outcome = 'retry' THEN\n"
	"        next_at := now() + make_interval(secs => p_pause_ms / 1000.0);\n"
	"        UPDATE deliveries SET leased_until = now(), last_status = p_status,\n"
	"            last_error = p_error, next_attempt_at = next_at\n"
	"        WHERE id = p_id;\n"
	"        UPDATE deliveries s SET next_attempt_at = next_at\n"
	"        WHERE s.kind = r.kind AND s.target = r.target AND s.key = r.key\n"
	"          AND s.status = 'pending' AND s.id > p_id AND s.next_attempt_at < next_at;\n"
	"    ELSE\n"
	"        UPDATE deliveries SET attempts = attempts - 1, leased_until = now(),\n"
	"            next_attempt_at = now()\n"
	"        WHERE id = p_id;\n"
	"    END IF;\n"
	"    IF p_outcome IN ('sent', 'failed') THEN\n"
	"        UPDATE deliveries s SET next_attempt_at = now()\n"
	"        WHERE s.kind = r.kind AND s.target = r.target AND s.key = r.key\n"
	"          AND s.status = 'pending' AND s.id > p_id AND s.next_attempt_at > now();\n"
	"    END IF;\n"
	"    -- Made or locked in one statement: a sweep cannot delete it in between (review 14e L5).\n"
	"    INSERT INTO delivery_targets AS t (kind, target) VALUES (r.kind, r.target)\n"
	"    ON CONFLICT (kind, target) DO UPDATE SET kind = t.kind;\n"
	"    UPDATE delivery_targets t\n"
	"    SET leased_until = CASE WHEN t.leased_until = r.leased_until THEN now()\n"
	"                            ELSE t.leased_until END,\n"
	"        due_at = greatest((SELECT min(d.next_attempt_at) FROM deliveries d\n"
	"                           WHERE d.kind = r.kind AND d.target = r.target\n"
	"                             AND d.status = 'pending'),\n"
	"                          CASE WHEN t.leased_until = r.leased_until THEN NULL\n"
	"                               ELSE t.leased_until END)\n"
	"    WHERE t.kind = r.kind AND t.target = r.target;\n"
	"    RETURN true;\n"
	"END\n"
	"$$;\n";
/* clang-format on */

/* The claim: one due row of kind $1, leased for $2 ms (deliveries_claim in 006), one row always:
 * 0 id (NULL: none due), 1 target, 2 key, 3 payload, 4 attempts before this one, 5 ms since it
 * was queued, 6 how long its last lease was held (a whole lease: the outcome was never
 * recorded), 7 when none: ms until the earliest target is due (NULL: nothing pending, 0: a due
 * target was being claimed by another sender). */
static const char deliver_claim_sql[] = "SELECT * FROM deliveries_claim($1, $2::bigint)";

/* The outcome, recorded outside any transaction after the send, only while the lease is the
 * sender's own ($1 id, $2 the attempts it counted): a lease that ran out and was taken again by
 * another sender is that one's to record.  $3 'sent', 'failed', 'retry' or 'release' (a send
 * abandoned at the stop: not counted, due again at once), $4 last_status (NULL = none), $5
 * last_error (NULL when sent), $6 the pause before the next attempt in ms (retry only). */
static const char deliver_record_sql[] =
	"SELECT deliveries_record($1::bigint, $2::int, $3, $4::int, $5, $6::bigint)";

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
	const char *params[] = {kind};
	return db_exec_number("SELECT coalesce((SELECT extract(epoch FROM now() - created_at) "
	                      "FROM deliveries WHERE kind = $1 AND status = 'pending' "
	                      "ORDER BY id LIMIT 1), 0)::float8",
	                      1, params, -1);
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
	const char *outcome;
	long long retry_ms = -1;
	snprintf(id, sizeof id, "%lld", it->id);
	snprintf(counted, sizeof counted, "%d", it->attempts + 1);
	snprintf(status, sizeof status, "%d", r->status);
	if (r->outcome == DELIVER_SENT) {
		outcome = "sent";
	} else if (stopping) {
		outcome = "release";
	} else {
		if (!r->error[0])
			snprintf(r->error, sizeof r->error, "failed");
		deliver_ascii(r->error);
		if (r->outcome == DELIVER_TEMPORARY)
			retry_ms = deliver_retry_after_ms(it->attempts + 1, elapsed_ms,
			                                  d->c.retry_base_ms, d->c.retry_max_ms,
			                                  d->c.retry_window_ms, deliver_jitter());
		outcome = retry_ms >= 0 ? "retry" : "failed";
	}
	snprintf(pause, sizeof pause, "%lld", retry_ms);
	const char *params[] = {id,
	                        counted,
	                        outcome,
	                        r->status ? status : NULL,
	                        r->outcome == DELIVER_SENT ? NULL : r->error,
	                        pause};
	enum db_status st = db_exec_on(s->session, NULL, deliver_record_sql, 6, params);
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

/* Claims one due row and leases it (one statement, its own transaction).  Returns 1 with the
 * row in *res, 0 when none was due (*idle_ms: the pause the claim suggests, -1 = none known),
 * -1 when the session failed. */
static int deliver_claim(struct deliver_sender *s, PGresult **res, long long *idle_ms)
{
	struct deliver *d = s->d;
	char lease[24];
	snprintf(lease, sizeof lease, "%lld", d->lease_ms);
	const char *params[] = {d->c.kind, lease};
	enum db_status st = db_exec_on(s->session, res, deliver_claim_sql, 2, params);
	if (st != DB_OK || PQntuples(*res) != 1) {
		log_warn("%s deliveries: claiming failed (%s)", d->c.kind, db_status_str(st));
		deliver_end_session(s);
		return -1;
	}
	if (!PQgetisnull(*res, 0, 0))
		return 1;
	*idle_ms = PQgetisnull(*res, 0, 7) ? -1 : db_int(*res, 0, 7);
	return 0;
}

/* Claims, sends and records one row.  Returns 1 when a row was handled, 0 when none was due
 * (*idle_ms as deliver_claim's), -1 when the session failed. */
static int deliver_one(struct deliver_sender *s, long long *idle_ms)
{
	struct deliver *d = s->d;
	PGresult *res = NULL;
	if (!s->session && !(s->session = db_open()))
		return -1;
	int rc = deliver_claim(s, &res, idle_ms);
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
 * next due time moved on).  A sender that cannot open its session calls it with NULL. */
static void deliver_beat(struct deliver_sender *s)
{
	struct deliver *d = s->d;
	long long now = timefmt_mono_ms(), due = d->next_beat_ms;
	if (!d->c.heartbeat || now < due ||
	    !atomic_compare_exchange_strong(&d->next_beat_ms, &due, now + d->c.heartbeat_ms))
		return;
	if (!s->session)
		s->session = db_open();
	if (!d->c.heartbeat(s->session, d->c.heartbeat_arg)) {
		log_warn("%s deliveries: the heartbeat failed", d->c.kind);
		deliver_end_session(s);
		d->next_beat_ms = now; /* due again at the next turn */
	}
}

/* The pause after a claim that found nothing: what the claim suggests (the earliest target's
 * due time; a short one when a due target was busy being claimed), never below poll_ms, and
 * at most *idle_ms, which doubles with each empty claim up to DELIVER_IDLE_MAX_POLLS × poll_ms
 * (deliver_main resets it after a row). */
static long long deliver_idle_pause(const struct deliver *d, long long hint_ms, long long *idle_ms)
{
	long long cap = *idle_ms;
	if (*idle_ms < d->c.poll_ms * DELIVER_IDLE_MAX_POLLS)
		*idle_ms *= 2;
	if (hint_ms == 0)
		return d->c.poll_ms / 10 > 0 ? d->c.poll_ms / 10 : 1;
	if (hint_ms > 0 && hint_ms < cap)
		return hint_ms > d->c.poll_ms ? hint_ms : d->c.poll_ms;
	return cap;
}

static void *deliver_main(void *arg)
{
	struct deliver_sender *s = arg;
	struct deliver *d = s->d;
	long long idle_ms = d->c.poll_ms;
	while (!d->stop) {
		deliver_beat(s);
		long long hint_ms = -1;
		int n = deliver_one(s, &hint_ms);
		if (n > 0) {
			idle_ms = d->c.poll_ms;
			continue;
		}
		long long pause = n == 0 ? deliver_idle_pause(d, hint_ms, &idle_ms)
		                         : DELIVER_SESSION_RETRY_MS;
		timefmt_sleep_unless((long)pause, &d->stop);
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
