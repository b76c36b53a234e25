/* outbox: the transactional outbox, the one owner of the `outbox` table and its publisher.
 *
 * A service stores each event in its database's `outbox` table in the same transaction as the
 * change that causes it (the service's repo), so an event can be delayed but never lost.  This
 * module owns the rest (docs/architecture.md, "The outbox"):
 * - the table's schema, applied by the shared start-up (svc.c) before the service's own
 *   migrations and recorded in common_schema_migrations;
 * - the publisher: a thread with a database session of its own that holds a PostgreSQL advisory
 *   lock (so one replica publishes, which keeps the order), reads unsent rows in id order,
 *   produces them with key = the row's key and marks them sent once the broker acknowledged
 *   them.  Any failure of that session ends the leadership; the lock is taken again on a new
 *   session before anything else is published.  Rows acknowledged but not yet marked when a
 *   publisher or its database session dies are sent again: at least once, never lost;
 * - the figures for /metrics (backlog, leadership);
 * - the sweeper's statement for rows sent long ago (outbox_sweep_sql, run by sweep.c).
 *
 * All functions are thread-safe unless noted. */
#ifndef OUTBOX_H
#define OUTBOX_H

#include <stdbool.h>

#include "db.h" /* DB_TS_MS */

/* SQL text for the services' repos, so the table's columns and the event envelope
 * (docs/events.md#envelope) are spelled once.  OUTBOX_INSERT starts the INSERT … SELECT that
 * stores one event per row (topic, key, payload follow as SQL expressions).  OUTBOX_EVENT(type,
 * at, fields) is the payload: event_type (an SQL expression), a fresh event_id, occurred_at (the
 * timestamptz expression at, in the services' RFC 3339 form), then the event's own fields ("'name',
 * expr, …"). */
#define OUTBOX_INSERT "INSERT INTO outbox (topic, key, payload) SELECT "
/* clang-format off */
#define OUTBOX_EVENT(type, at, fields)                                                       \
	"json_build_object('event_type', " type ", 'event_id', gen_random_uuid(), 'occurred_at', " \
	DB_TS_MS(at) ", " fields ")"
/* clang-format on */

struct kafka_producer;
struct outbox;

/* The DDL of the outbox table and its index, idempotent (databases created before the outbox
 * had an owner already hold the same table from their service's first migration).  A static
 * string, for the shared migrations of svc.c. */
extern const char outbox_schema_sql[];

/* The sweeper's statement for the outbox (struct sweep_table): deletes at most $2 rows sent more
 * than $1 seconds ago.  Unsent rows are never deleted. */
extern const char outbox_sweep_sql[];

/* Starts the publisher on its own thread.  p is borrowed and must outlive outbox_stop();
 * lock_key tells this service's replicas apart from other services' (any constant).  NULL when
 * the thread cannot be started.  Needs the schema (outbox_schema_sql) applied. */
struct outbox *outbox_start(struct kafka_producer *p, long long lock_key);
/* Stops the publisher, ends its session (releasing the lock) and frees o; NULL is a no-op.
 * Waits for a batch in flight (bounded: kafka_produce_batch() purges one second after stop). */
void outbox_stop(struct outbox *o);
/* Whether o's session holds the publisher lock right now (false for NULL). */
bool outbox_leading(const struct outbox *o);

/* Unsent outbox rows, counted on the calling thread's database connection (db_exec); -1 on
 * error.  As a double for metrics_register_gauge(). */
double outbox_backlog(void);
/* For the outbox_oldest_pending_age_seconds gauge: seconds since the oldest unpublished row was
 * written (the outbox_unsent index, in id order), 0 when none, -1 when the query fails.
 * Thread-safe (pool). */
double outbox_oldest_age(void);

#endif
