/* feeds: the calendar feeds (docs/api.md#calendar-feeds), read-only iCalendar (RFC 5545) for
 * calendar subscriptions: a room's busy times for anyone signed in, and a user's own reservations
 * behind a per-user feed token that the URL carries (calendar clients cannot send a bearer
 * token).  No SQL here (repo_feeds.h). */
#ifndef RES_FEEDS_H
#define RES_FEEDS_H

#include "http.h"

/* GET /calendars/rooms/{id}.ics */
void res_handle_feed_room(struct req *r);
/* GET /calendars/me.ics?token=… (a public route: the token authenticates) */
void res_handle_feed_me(struct req *r);
/* POST /calendars/me/token: a new token, replacing the caller's old one. */
void res_handle_feed_token_create(struct req *r);
/* DELETE /calendars/me/token */
void res_handle_feed_token_delete(struct req *r);

#endif
