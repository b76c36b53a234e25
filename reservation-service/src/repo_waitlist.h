/* repo_waitlist: the SQL of the waitlist (docs/api.md#waitlist, migrations/020_waitlist.sql).
 * An entry travels as the JSON object res_waitlist_json builds, with a waiting entry whose start
 * has come at the service's clock shown as expired.  Each function runs on the calling thread's
 * connection and leaves it idle.  The promotion itself has no C side: it runs in the database,
 * in the transaction of every write that frees time. */
#ifndef RES_REPO_WAITLIST_H
#define RES_REPO_WAITLIST_H

#include <stdbool.h>

#include <jansson.h>

#include "db.h"

struct res_request;
struct res_change;

enum res_waitlist_outcome {
	RES_WAITLIST_DONE,
	RES_WAITLIST_ROOM_UNKNOWN,  /* no such room, or deleted: a validation error of room_id */
	RES_WAITLIST_ROOM_INACTIVE, /* the room is inactive */
	RES_WAITLIST_RULES,         /* the span breaks a booking rule: c->start, c->end hold it */
	RES_WAITLIST_REVOKED,       /* the caller's token was revoked */
	RES_WAITLIST_POLICY,        /* a rule of the room refuses it whatever is booked: *body is
	                               {policy, field, message} */
	RES_WAITLIST_DUPLICATE,     /* the caller waits for these times of the room already */
	RES_WAITLIST_TOO_MANY,      /* the caller has the most waiting entries: *body is that most
	                               (res_waitlist_max(), the one place it is defined) */
	RES_WAITLIST_OWN,  /* the caller's own reservation (*body: its id) holds the slot */
	RES_WAITLIST_FREE, /* the slot is free now: book it */
	RES_WAITLIST_NOT_FOUND,
	RES_WAITLIST_FORBIDDEN,   /* someone else's entry, the caller no admin */
	RES_WAITLIST_NOT_WAITING, /* cancel: booked or expired already (*body: the entry) */
};

/* Makes an entry for c->user_id (token issued at c->token_issued_ms) in room c->room_id for q's
 * times (resolved in the room's zone), with c->purpose and the organizer (c->organizer_*, for
 * the booking's mail), checked in the order of enum res_waitlist_outcome (q->rules, q->now,
 * q->role; one statement).  *body: new reference to the entry (DONE), the problem (POLICY),
 * the most entries (TOO_MANY) or the caller's reservation id (OWN); RULES sets c->start and
 * c->end. */
enum db_status res_repo_waitlist_join(struct res_change *c, const struct res_request *q,
                                      json_t **body, enum res_waitlist_outcome *outcome);
/* *entry: entry id at now_s (new reference), or NULL when there is none. */
enum db_status res_repo_waitlist_get(long long id, long long now_s, json_t **entry);
/* Cancels entry id for caller (admin: anyone's): DONE (also when cancelled already),
 * NOT_FOUND, FORBIDDEN or NOT_WAITING (booked, or expired at now_s; *entry is then the entry,
 * a new reference). */
enum db_status res_repo_waitlist_cancel(long long id, long long caller, bool admin, long long now_s,
                                        json_t **entry, enum res_waitlist_outcome *outcome);
/* One page of user_id's entries at now_s (status: NULL for all, or one status as the API
 * shows it), newest first, after entry after_id (0: from the newest): *list and *next as
 * db_json_page. */
enum db_status res_repo_waitlist_list(long long user_id, const char *status, long long now_s,
                                      long long limit, long long after_id, json_t **list,
                                      json_t **next);

/* The sweeper's statement for the waitlist (struct sweep_table in sweep.h): deletes at most $2
 * finished entries (booked, expired, cancelled) last changed more than $1 seconds ago; waiting
 * ones never.  A booked entry's reservation keeps no reference to it. */
extern const char res_repo_sweep_waitlist_sql[];

#endif
