/* repo_feeds: the SQL of the calendar feeds (docs/api.md#calendar-feeds): the reservations a feed
 * shows and the feed tokens.  Like repo.c each function runs on the calling thread's connection
 * and leaves it idle (except res_repo_feed_token_revoke, which runs inside the caller's
 * transaction).  A feed's window is the database's now() - 30 days to now() + 365 days: a
 * reservation is in it when it overlaps that span. */
#ifndef RES_REPO_FEEDS_H
#define RES_REPO_FEEDS_H

#include <stdbool.h>
#include <stddef.h>

#include "db.h"
#include "rnd.h"

/* No reservation lasts longer than this many hours: MAX_DURATION_MINUTES is at most 44640 (31
 * days).  A read of the reservations overlapping a span looks for their starts from the span's
 * start less this. */
#define RES_LONGEST_HOURS "744"

/* The most events a feed holds: the first ones of the window in start order (a calendar client
 * polls a feed every few minutes; an address invited to thousands of meetings a year must not
 * make each poll unbounded). */
#define RES_FEED_MAX_EVENTS 5000

/* One reservation of a feed.  Strings are borrowed from the struct res_feed that holds it. */
struct res_feed_event {
	long long id;
	long long start_utc, end_utc;       /* seconds since the epoch */
	long long created_utc, updated_utc; /* whole seconds */
	long long version;
	bool cancelled;
	const char *purpose;     /* NULL in a room's feed (busy times only) */
	const char *meeting_url; /* the online meeting's link (no token); NULL: none, or a room's
	                            feed */
	const char *room_name;   /* never NULL */
	const char *zone;        /* the room's IANA zone */
	/* The local start and end "YYYY-MM-DDTHH:MM:SS" in zone, or NULL when the zone's UTC offset
	 * changes within 24 hours of the instant (the feed then writes it in UTC). */
	const char *local_start, *local_end;
};

/* A feed's rows (res_feed_free releases them). */
struct res_feed {
	bool found;            /* the room (not deleted) or the token exists */
	long long user_id;     /* a token's owner */
	const char *room_name; /* a room's feed: its name and zone */
	const char *zone;
	char token_hash[RND_TOKEN_HASH_LEN]; /* a token's hash as stored */
	struct res_feed_event *events;       /* ordered by start, then id */
	size_t nevents;
	void *rows; /* owned: what the strings point into */
};

void res_feed_free(struct res_feed *f);

/* The confirmed reservations of room room_id in the window (at most RES_FEED_MAX_EVENTS), without
 * purpose or holder, with the room's name and zone, in one statement; out->found false for an unknown or deleted room. */
enum db_status res_repo_feed_room(long long room_id, struct res_feed *out);

/* The feed of the token whose SHA-256 is hash: its owner's reservations and the ones inviting
 * the token's address in the window (at most RES_FEED_MAX_EVENTS), cancelled ones included, with purpose and room, in one statement; out->found false when no
 * token has that hash. */
enum db_status res_repo_feed_me(const char *hash, struct res_feed *out);

/* Whether a feed token with this hash exists (*known); its stored hash into stored. */
enum db_status res_repo_feed_token_known(const char *hash, bool *known,
                                         char stored[RND_TOKEN_HASH_LEN]);

/* Stores hash (SHA-256 hex of a new token) as user_id's only feed token, with the owner's
 * e-mail, replacing an older one, unless the caller's access token (issued at issued_ms) was
 * revoked meanwhile (revoke_guard: a token cannot outlive a user_deleted or user_disabled
 * racing with it): then *revoked is true and nothing changes. */
enum db_status res_repo_feed_token_set(long long user_id, const char *email, const char *hash,
                                       long long issued_ms, bool *revoked);

/* Removes user_id's feed token; *removed tells whether there was one. */
enum db_status res_repo_feed_token_delete(long long user_id, bool *removed);

/* user_email_changed (occurred_at: RFC 3339, NULL = now): records email as user_id's address
 * unless a later change is recorded, and gives it to the user's feed token, whose invitations
 * then follow it.  One statement. */
enum db_status res_repo_feed_user_email(long long user_id, const char *email,
                                        const char *occurred_at);

/* Removes user_id's feed token inside the caller's open transaction (the user_events consumer:
 * user_deleted, user_disabled). */
enum db_status res_repo_feed_token_revoke(long long user_id);

#endif
