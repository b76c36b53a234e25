/* sweep: deletes rows that are no longer needed from tables that would otherwise only grow (sent
 * outbox rows, idempotency keys, expired refresh tokens and sign-in states).
 *
 * Each table's owner gives the statement that deletes a batch of its old rows (outbox.c for the
 * outbox, a service's repo.c for its tables); this module runs them: one thread with a database
 * session of its own, every interval, each statement again and again while it deletes a full
 * batch, so that no statement holds its locks for long.  Replicas may sweep at the same time: a
 * row deleted twice is deleted once.  Each table that lost rows gets one log line and its count in
 * the counter sweep_rows_deleted_total{table="<name>"}.
 *
 * All functions are thread-safe unless noted. */
#ifndef SWEEP_H
#define SWEEP_H

#include <stddef.h>

struct sweep;

/* One table to sweep.  Everything is borrowed and must outlive sweep_stop(). */
struct sweep_table {
	const char *name; /* the table, for logs and the metric's label (a static string) */
	/* One DELETE statement: $1 = retention_s (bigint), $2 = the most rows it may delete (int);
	 * it deletes rows older than the retention, at most $2 of them. */
	const char *sql;
	long long retention_s;
};

/* Starts the sweeper thread: sweeps at once, then every interval_s seconds, batch rows per
 * statement.  tables[0..n) is copied (the strings are borrowed).  NULL when n is 0, interval_s
 * is 0 (sweeping off) or the thread cannot start. */
struct sweep *sweep_start(const struct sweep_table *tables, size_t n, long long interval_s,
                          long long batch);
/* Stops the thread (a statement in progress finishes, bounded by the statement timeout), ends
 * its session and frees s; NULL is a no-op. */
void sweep_stop(struct sweep *s);

#endif
