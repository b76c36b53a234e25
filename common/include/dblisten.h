/* dblisten: a PostgreSQL LISTEN session on a thread of its own, telling its owner when
 * notifications arrive and whether it can be sure it would have heard of every one.
 *
 * The session comes from db_open() (not a request connection) and is kept up: when it breaks it
 * is opened again (pauses of 250 ms doubling to 5 s).  While it is idle it sends a probe
 * (SELECT 1) every DB_LISTEN_PROBE_MS; the answer to a probe proves that every notification of
 * a transaction committed before the probe was sent has arrived.  So the owner hears:
 * - DB_LISTEN_UP once the session LISTENs (and again after each DB_LISTEN_DOWN, once a probe
 *   answered in time);
 * - DB_LISTEN_NOTIFIED for one or more notifications (only between UP and DOWN);
 * - DB_LISTEN_DOWN when the session broke, or when no probe has been answered for
 *   DB_LISTEN_FRESH_MS (a session the server ended or a network that dropped it may look alive
 *   for a while): from then on a notification may have been missed.
 * UP and DOWN alternate, starting with UP; a listener that stops while up ends with DOWN.  The
 * callback runs on the listener's thread and must be quick.  A session that gives no answer for
 * DB_LISTEN_DEAD_MS is closed and opened again. */
#ifndef DBLISTEN_H
#define DBLISTEN_H

#include <stdbool.h>

#define DB_LISTEN_PROBE_MS 250
#define DB_LISTEN_FRESH_MS 750
#define DB_LISTEN_DEAD_MS 10000

enum db_listen_event { DB_LISTEN_UP, DB_LISTEN_NOTIFIED, DB_LISTEN_DOWN };

typedef void (*db_listen_fn)(void *arg, enum db_listen_event event);

struct db_listener;

/* Starts listening on channel (a constant lower-case SQL identifier) with application_name
 * app_name (so that an operator can tell the session apart in pg_stat_activity), calling
 * fn(arg, …).  channel and app_name are borrowed and must outlive the listener.  Call after
 * db_configure().  NULL when the thread cannot be started.  Thread-safe. */
struct db_listener *db_listen_start(const char *channel, const char *app_name, db_listen_fn fn,
                                    void *arg);
/* The moment (timefmt_mono_ms()) before which every committed notification is known to have
 * reached the owner: when the last answered probe (or LISTEN) was sent; 0 while the owner has
 * not been told UP.  An owner that must not trust a listener whose thread has not run for a
 * while (a loaded machine) compares it with the clock itself.  Thread-safe. */
long long db_listen_confirmed_ms(const struct db_listener *l);
/* Stops the thread (within about DB_LISTEN_POLL_MS), closes the session and frees l (NULL is
 * fine). */
void db_listen_stop(struct db_listener *l);

#endif
