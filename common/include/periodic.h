/* periodic: a background thread with a database session of its own that runs a job at once and
 * then every interval until it is stopped (the sweeper, reservation-service's no-show releaser),
 * and the loop of batch statements such jobs share: a statement run again and again while it
 * comes back with a full batch, so that none holds its locks for long.
 *
 * All functions are thread-safe unless noted. */
#ifndef PERIODIC_H
#define PERIODIC_H

#include <stdbool.h>

#include <libpq-fe.h>

struct periodic;

/* A job: runs on the thread with *session open.  A job that ends the session (a statement
 * failed) sets *session to NULL: the next run opens another.  stop is set once the thread is
 * asked to stop: a job with more to do looks at it between statements. */
typedef void (*periodic_job)(PGconn **session, void *arg, const _Atomic bool *stop);

/* Starts the thread: runs job(arg) at once, then every interval_ms (a run is skipped while the
 * database cannot be reached: db_open logs it).  arg is borrowed until periodic_stop().  NULL
 * when interval_ms is not positive or the thread cannot start. */
struct periodic *periodic_start(long long interval_ms, periodic_job job, void *arg);
/* Stops the thread (a statement in progress finishes, bounded by the statement timeout), ends
 * its session and frees p; NULL is a no-op. */
void periodic_stop(struct periodic *p);

/* Runs sql with params on *session again and again while a run counts batch rows or more (a
 * full batch: more may be left), until one counts fewer or stop is set.  A run's count is its
 * value when the statement returns one row of one column (SELECT count(*) FROM ...), else its
 * command's (DELETE, UPDATE).  Returns the total.  On a failure: logs "<what> failed (<why>);
 * tried again next time" (at most once a minute per thread, the failures left out counted in
 * the next line), ends the session (*session = NULL) unless the failure was a deadlock or a
 * serialization failure (DB_RETRY: the session stays usable), and sets *failed (else false). */
long long periodic_batches(PGconn **session, const char *sql, int nparams,
                           const char *const *params, long long batch, const _Atomic bool *stop,
                           const char *what, bool *failed);

#endif
