/* deliver: the delivery queue, the one owner of the `deliveries` table and of the workers that
 * send its rows (docs/architecture.md#the-delivery-queue).  Outbound messages that are not Kafka
 * events (webhook POSTs, e-mail invitations) are decided in the transaction of the change that
 * causes them, as rows of `deliveries` (kind, target, key, payload), and sent later by a worker
 * of their kind:
 * - the table's schema, applied by the shared start-up (svc.c) like the outbox's;
 * - the workers: threads with database sessions of their own.  A worker claims one due row of
 *   its kind in a short transaction (FOR UPDATE SKIP LOCKED, so replicas and threads share the
 *   work) and leases it: the attempt is counted and the row is not due again before the lease
 *   ends (the send's timeout + 60 s).  It commits, sends the row through a callback outside any
 *   transaction (so no transaction stays open during a send, and a server's
 *   idle_in_transaction_session_timeout does not apply), and records the outcome: sent,
 *   retried with exponential backoff (base × 2^(attempts-1), capped, ±20 % jitter) until the
 *   retry window since the row was queued has passed, or failed.  A worker that dies mid-send
 *   leaves the lease to run out: the row is then sent again (at least once), its attempt
 *   counted; a row already tried whose window has passed is failed at the claim.
 *   Order: rows are sent in order per (kind, target, key): a row is due only when no older row
 *   with the same three is still pending, retries included (a row queued behind pending rows
 *   of its key, and the later rows of a retried one, are not due before them: so the claim
 *   never reads rows that cannot go); once a row is sent or failed, the rows queued behind it
 *   are due at once (not at the end of its lease).
 *   Fairness: one send at a time per target (a target with a lease not yet ended is passed
 *   over), and among the targets due first the one attempted least recently goes first.
 *   So a dead or slow receiver holds at most one worker, and while workers are free, the other
 *   targets' rows go out at once; a target's own backlog waits for it alone.
 *   Cost: a claim reads the targets that are due (delivery_targets, kept by the senders: a
 *   new row tells its target through delivery_wakes), so it costs the same whatever the number
 *   of targets in backoff (docs/architecture.md#the-delivery-queue has the figures); an idle
 *   worker's pause grows from poll_ms to 4 × poll_ms, and is shorter when a retry is due sooner;
 * - the figures for /metrics, per kind: delivery_pending, delivery_oldest_pending_age_seconds
 *   (gauges), delivery_sent_total, delivery_failed_total, delivery_retries_total (counters);
 * - the sweeper's statement for rows finished long ago (deliver_sweep_sql).
 *
 * All functions are thread-safe unless noted. */
#ifndef DELIVER_H
#define DELIVER_H

#include <stdbool.h>
#include <stddef.h>

#include <libpq-fe.h>

/* The DDL of the deliveries table and its indexes, idempotent.  A static string, for the
 * shared migrations of svc.c.  Rows are inserted by the services' own SQL (a trigger, a repo
 * statement): INSERT INTO deliveries (kind, target, key, payload) VALUES (…), the rest
 * defaulted (pending, due now). */
extern const char deliver_schema_sql[];
/* The shared migrations after it: 005 the leases (for the databases of 004's first version,
 * which had none); the claim by target: 006 delivery_targets and delivery_wakes, 007 and 008
 * the functions deliveries_claim and deliveries_record that the workers call. */
extern const char deliver_leases_schema_sql[];
extern const char deliver_targets_schema_sql[];
extern const char deliver_claim_schema_sql[];
extern const char deliver_record_schema_sql[];

/* The sweeper's statement (struct sweep_table): deletes at most $2 rows sent or failed more
 * than $1 seconds ago.  Pending rows are never deleted. */
extern const char deliver_sweep_sql[];
/* The same for delivery_targets: deletes at most $2 targets with nothing pending and no attempt
 * for $1 seconds. */
extern const char deliver_targets_sweep_sql[];

enum deliver_outcome {
	DELIVER_SENT,      /* delivered: the row is done */
	DELIVER_TEMPORARY, /* try again later (backoff), until the retry window has passed */
	DELIVER_PERMANENT, /* will never work: the row fails now */
};

/* One claimed row, handed to the send callback.  Everything is borrowed for the call. */
struct deliver_item {
	long long id;
	const char *kind, *target, *key;
	const char *payload; /* the JSON text as stored */
	int attempts;        /* attempts before this one */
	/* The worker's session (no transaction open: the row is leased): for reads the send
	 * needs (e.g. the webhook's URL).  Never keep it. */
	PGconn *session;
	/* Becomes true when the worker is told to stop: a long send should give up (an outcome
	 * other than sent is then not recorded: the row is due again at once, this attempt not
	 * counted). */
	const _Atomic bool *stop;
};

#define DELIVER_ERROR_LEN 256

/* What the callback reports. */
struct deliver_result {
	enum deliver_outcome outcome;
	int status;                    /* the protocol's status (HTTP, SMTP), 0 = none */
	char error[DELIVER_ERROR_LEN]; /* why it failed, for operators ("" when sent) */
};

/* Sends item; arg is deliver_config.arg.  Runs on a worker thread (one call at a time per
 * thread, several threads may call it at once); must return within its own timeout. */
typedef void (*deliver_send_fn)(const struct deliver_item *item, void *arg,
                                struct deliver_result *out);

struct deliver_config {
	const char *kind; /* the rows this worker sends (a static string: the metrics keep it) */
	deliver_send_fn send;
	void *arg;               /* borrowed, must outlive deliver_stop() */
	int threads;             /* senders (each with its own database session); 0 = 1 */
	long long retry_base_ms; /* the pause after the first failure */
	long long retry_max_ms;  /* the longest pause */
	/* Retries: none is started later than this after queuing (the first attempt is always
	 * made, however late: a row may wait behind its key or a backlog). */
	long long retry_window_ms;
	long long send_timeout_ms; /* the longest send (the callback's own timeout) */
	long long poll_ms;         /* the pause when nothing is due; 0 = DELIVER_POLL_MS */
	void (*thread_exit)(void); /* called on each sender thread as it ends; may be NULL */
	/* Liveness (may be NULL): every heartbeat_ms, whichever sender is between two sends first
	 * calls heartbeat(session, heartbeat_arg) on its own session (no transaction open), so
	 * that a record of "these senders run" stays fresh while any of them can take work; the
	 * first call comes as the senders start.  session is NULL when the sender could not open
	 * one (the callback may write elsewhere, e.g. through the pool).  Returns false when
	 * nothing was recorded (the session is then ended, and the beat is due again at the
	 * sender's next turn). */
	bool (*heartbeat)(PGconn *session, void *heartbeat_arg);
	void *heartbeat_arg;
	long long heartbeat_ms;
};

#define DELIVER_POLL_MS 250
#define DELIVER_MAX_THREADS 32

struct deliver;

/* Registers the kind's metrics (they exist at 0 from now on) and starts the senders.  c is
 * copied (its pointers borrowed).  NULL when a thread cannot be started.  Needs the schema
 * (deliver_schema_sql). */
struct deliver *deliver_start(const struct deliver_config *c);
/* Tells the senders to stop (a send in progress sees item->stop) without waiting: at the stop
 * signal, so that they wind down during the drain.  NULL is a no-op. */
void deliver_signal(struct deliver *d);
/* Stops the senders (deliver_signal, then joins them: a send in progress ends within its own
 * timeout and is recorded when it delivered, released otherwise), ends their sessions and frees
 * d; NULL is a no-op. */
void deliver_stop(struct deliver *d);

/* The pause before attempt number attempts + 1 after attempts failed ones (attempts >= 1):
 * base × 2^(attempts-1) capped at max, then scaled by 0.8 + 0.4 × u (u in [0, 1): the jitter).
 * Pure. */
long long deliver_backoff_ms(int attempts, long long base_ms, long long max_ms, double u);

/* After a temporary failure (the attempts-th, counted): the pause before the next attempt, or -1
 * to give up.  elapsed_ms is the time since the row was queued.  The next attempt is never
 * later than the retry window's end: a pause that would cross it is cut to reach the end
 * exactly, and once the window has passed the row gives up.  Pure. */
long long deliver_retry_after_ms(int attempts, long long elapsed_ms, long long base_ms,
                                 long long max_ms, long long window_ms, double u);

/* A duration in hours as configured ("24", "0.5", "0.001"): true and *ms when it is a decimal
 * number > 0 and <= 8760 hours; else false and why (words after the variable's name, for
 * config.h's checks).  For MAIL_RETRY_HOURS, WEBHOOK_RETRY_HOURS. */
bool deliver_hours_ms(const char *text, long long *ms, char *why, size_t whylen);
/* The same as a config.h check (CFG_STR_CHECKED). */
bool deliver_hours_valid(const char *text, char *why, size_t whylen);

#endif
