/* releaser: releases the no-shows (docs/api.md#check-in).  One thread with a database session
 * of its own runs res_repo_release_sql every interval at the service's clock (clock.h: a test
 * moves it), batch after batch while a batch comes back full.  The statement cancels due,
 * confirmed reservations not checked in (cancel_reason no_show) and writes reservation_released
 * to the outbox with them; it locks its rows FOR UPDATE SKIP LOCKED, so replicas releasing at
 * the same time each release other rows, and its state is only in the rows (a restart loses or
 * repeats nothing).  Counted in reservations_released_total.  The freed time goes to the rooms'
 * waitlists in the same transaction (migrations/020_waitlist.sql), and each tick also expires
 * the waiting entries whose start has come (res_repo_waitlist_expire_sql). */
#ifndef RELEASER_H
#define RELEASER_H

struct res_releaser;

/* Starts the thread (topic borrowed, must outlive res_releaser_stop): releases at once, then
 * every interval_ms.  NULL when interval_ms is 0 (releasing off) or the thread cannot start. */
struct res_releaser *res_releaser_start(long long interval_ms, const char *topic);
/* Stops the thread (a statement in progress finishes), ends its session and frees it; NULL is
 * a no-op. */
void res_releaser_stop(struct res_releaser *rl);

#endif
