/* releaser: releases the no-shows (docs/api.md#check-in).  One thread with a database session
 * of its own (common/periodic) runs, every interval at the service's clock (clock.h: a test
 * moves it), each statement batch after batch while a batch comes back full:
 * res_repo_release_sql cancels due, confirmed reservations not checked in (cancel_reason
 * no_show, reservation_released), res_repo_unapproved_sql the pending reservations that reached
 * their start without an approval (not_approved, reservation_cancelled), and
 * res_repo_waitlist_expire_sql expires the waiting entries whose start has come.  Rows and rooms
 * are taken FOR UPDATE SKIP LOCKED, so replicas releasing at the same time each release other
 * rows and never wait, and the state is only in the rows (a restart loses or repeats nothing).
 * Counted in reservations_released_total.  The freed time goes to the rooms' waitlists in the
 * same transaction (migrations/020_waitlist.sql). */
#ifndef RELEASER_H
#define RELEASER_H

struct res_releaser;

/* Starts the thread (topic borrowed, must outlive res_releaser_stop): releases at once, then
 * every interval_ms (RELEASE_INTERVAL_MS, 100-3600000: releasing is never off, every replica
 * takes part; SKIP LOCKED shares the rows).  NULL when the thread cannot start (main.c then
 * reports /health down) or interval_ms is not positive (a programming error). */
struct res_releaser *res_releaser_start(long long interval_ms, const char *topic);
/* Stops the thread (a statement in progress finishes), ends its session and frees it; NULL is
 * a no-op. */
void res_releaser_stop(struct res_releaser *rl);

#endif
