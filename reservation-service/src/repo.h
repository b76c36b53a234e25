/* repo: every SQL statement of reservation-service.  Each function runs on the calling thread's
 * connection and leaves it idle.  Reservations travel as JSON objects in the shape of
 * docs/api.md#reservation-service: a write's answer is built by PostgreSQL in the statement that
 * writes its event (the SQL function res_json of migrations/002_booking_functions.sql), so the
 * answer and the event agree; reads build the same object in C from plain columns.  Time-zone arithmetic (wall-clock times, calendar days, DST) is PostgreSQL's
 * too. */
#ifndef RES_REPO_H
#define RES_REPO_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "db.h"
#include "validate.h"

struct auth_user;
struct jsonx_text;

struct res_room {
	bool found; /* known from room_events and not deleted */
	bool active;
	char time_zone[80];
};

enum db_status res_repo_room_info(long long room_id, struct res_room *room);
enum res_outcome {
	RES_DONE,
	RES_NOT_FOUND,
	RES_FORBIDDEN,        /* the reservation is someone else's and the caller no admin */
	RES_ROOM_UNKNOWN,     /* no such room, or deleted: a validation error of room_id */
	RES_ROOM_INACTIVE,    /* the room is inactive: a validation error of room_id */
	RES_RULES,            /* the span breaks a booking rule: c->start, c->end hold it in UTC */
	RES_STALE,            /* the version changed */
	RES_CONFLICT,         /* overlaps a confirmed reservation: *conflicts is set */
	RES_ROOM_UNAVAILABLE, /* the room could not take bookings once locked */
	RES_CANCELLED,        /* the reservation is cancelled and cannot change */
	RES_REPLAY,        /* idempotency key seen with the same body: *res is the first response */
	RES_KEY_MISMATCH,  /* idempotency key seen with another body */
	RES_TOKEN_REVOKED, /* the caller's token was revoked (revoke_guard) */
	RES_CAPACITY,      /* the attendees and the organizer exceed the room's capacity:
	                      *conflicts is [people, capacity] */
	RES_POLICY,        /* breaks a rule of the room (docs/api.md#room-policies): *conflicts is
	                      {policy, field, message} */
	RES_NOT_PENDING,   /* approve/reject: the reservation is not pending */
	RES_STARTED,       /* approve: the pending reservation's start has passed */
};

/* What a create or an update asks for beyond struct res_change, and what it is checked against.
 * Everything is borrowed. */
struct res_request {
	const struct res_time *start, *end; /* as the client wrote them; NULL: not given (update) */
	const struct res_span_rules *rules;
	long long now;     /* the service's clock for the rules, UTC seconds */
	bool admin;        /* update: the caller (c->user_id) may change anyone's reservation */
	const char *role;  /* the caller's role ("admin", "employee"): the room's allowed_roles */
	bool override;     /* an admin's ?override=true: the room's rules are skipped */
	const char *topic; /* of the reservation events */
	char skipped[256]; /* out, RES_DONE with override: the rules skipped ("{a,b}"), or "" */
};

/* Creates a reservation for c->user_id (token issued at c->token_issued_ms) in room c->room_id,
 * from q's times resolved in the room's zone, after the checks of validation (the room, the
 * rules), revocation (RES_TOKEN_REVOKED), the idempotency key (idem_key/idem_hash may be NULL)
 * and conflicts, in that order: one statement, one transaction.  *res: new reference to the
 * reservation (RES_DONE, RES_REPLAY); *conflicts: new object {conflicts: [{start_time,
 * end_time}], alternatives: {times, rooms}} (RES_CONFLICT; the alternatives computed in the same
 * statement, repo_search.h), or [people, capacity] (RES_CAPACITY); RES_RULES sets c->start and
 * c->end.  c->attendees, c->organizer_* and c->meeting_url (stored when c->online_meeting is
 * RES_ONLINE_ON) go with the booking. */
enum db_status res_repo_create(struct res_change *c, struct res_request *q, const char *idem_key,
                               const char *idem_hash, json_t **res, json_t **conflicts,
                               enum res_outcome *outcome);
/* *res: the reservation (new reference; its meeting link unsigned: res_meeting_sign), or NULL
 * when there is none. */
enum db_status res_repo_get(long long id, json_t **res);
/* Changes reservation id for caller c->user_id (q->admin: anyone's): c->room_id (0: keeps it),
 * c->purpose (NULL: keeps it), q's times (NULL: keep them), c->expected_version (If-Match; 0:
 * the version read first must still be current).  The checks run in the order access
 * (RES_NOT_FOUND, RES_FORBIDDEN), room and rules (when a room or time is given), state
 * (RES_CANCELLED, RES_STALE, RES_ROOM_UNAVAILABLE), conflicts; one statement, one transaction.
 * Results as res_repo_create. */
enum db_status res_repo_update(long long id, struct res_change *c, struct res_request *q,
                               json_t **res, json_t **conflicts, enum res_outcome *outcome);
/* Approves (approve) or rejects a pending reservation (POST /reservations/{id}/approve,
 * /reject by an admin; note: the rejection's reason for the event, or NULL) at now_s (the
 * service's clock): RES_DONE with *res (new reference), RES_NOT_FOUND, RES_NOT_PENDING with
 * *status its state ("confirmed", "cancelled"), or RES_STARTED (an approval once the start has
 * passed).  One statement (res_decide, migrations/018_policies.sql). */
enum db_status res_repo_decide(long long id, bool approve, const char *note, const char *topic,
                               long long now_s, json_t **res, char status[16],
                               enum res_outcome *outcome);
/* Cancels a confirmed or pending reservation of caller (admin: anyone's) with the reason
 * cancelled_by_user (the caller's own) or cancelled_by_admin; already cancelled → RES_DONE;
 * else RES_NOT_FOUND, RES_FORBIDDEN or RES_STALE (expected_version, 0 = any, differs).  One
 * statement. */
enum db_status res_repo_cancel(long long id, long long caller, bool admin,
                               long long expected_version, const char *topic,
                               enum res_outcome *outcome);
/* Checks reservation id in at now_s (Unix seconds, the service's clock): when it is confirmed,
 * not checked in and now_s is inside [check_in_from, release_at), sets checked_in_at and writes
 * reservation_checked_in to the outbox; *res is then the reservation (new reference), else NULL
 * (nothing changed: the caller re-reads it to say why).  One statement. */
enum db_status res_repo_check_in(long long id, long long now_s, const char *topic, json_t **res);

/* The releaser's statements (releaser.h): $1 = now (Unix seconds), $2 = the batch, $3 = the
 * topic.  res_repo_release_sql cancels due reservations as no-shows (their time promoted to the
 * rooms' waitlists); res_repo_unapproved_sql cancels the pending reservations that reached their
 * start (not_approved; their time promoted too); res_repo_waitlist_expire_sql ($1, $2) expires
 * the waiting entries whose start has come.  Each returns its count. */
extern const char res_repo_release_sql[];
extern const char res_repo_unapproved_sql[];
extern const char res_repo_waitlist_expire_sql[];

struct res_filter {
	long long user_id;    /* 0 = everyone (admins) */
	long long room_id;    /* 0 = any */
	long long series_id;  /* 0 = any */
	const char *attendee; /* the reservations inviting this address (any case), or NULL */
	const char *date;     /* "YYYY-MM-DD" in each room's zone, or NULL */
	bool has_from, has_to;
	long long from, to;      /* overlap with [from, to) */
	const char *status;      /* "confirmed", "pending", "cancelled", "active" (confirmed or
	                            pending) or NULL for all */
	const char *after_start; /* cursor: start_time text and id of the last row */
	long long after_id;
	long long limit;
	const struct auth_user
		*reader; /* the caller: meeting links are signed for it (meeting.h) */
};

/* *page: the page's JSON array as text (owned: jsonx_text_free; zeroed on failure); *next: the
 * next page's cursor key (new reference) or NULL. */
enum db_status res_repo_list(const struct res_filter *f, struct jsonx_text *page, json_t **next);

/* The calendar days first..last ("YYYY-MM-DD") of a room in its own zone. */
struct res_day_span {
	bool found; /* the room is known and not deleted */
	char time_zone[80];
	long long start, end; /* UTC seconds of [first 00:00, the day after last 00:00) */
};

/* In one statement: the room's zone and the days' bounds in it (*span; span->found false for an
 * unknown or deleted room), and the confirmed reservations of the room overlapping them, clipped
 * to them, ordered by start (*busy: new array of [start, end] pairs in UTC seconds). */
enum db_status res_repo_busy(long long room_id, const char *first, const char *last,
                             struct res_day_span *span, json_t **busy);

/* The attendees as an SQL text[] literal: heap (caller frees), or NULL when out of memory. */
char *res_attendees_param(const struct res_attendees *a);

/* A time as an SQL parameter, as the client wrote it: Unix seconds into abs and *abs_out, or the
 * wall-clock text in *local_out (the other NULL; both NULL when t is NULL). */
void res_time_param(const struct res_time *t, char abs[24], const char **abs_out,
                    const char **local_out);

/* Consumer side.  Each is idempotent: an event at or below the stored version changes nothing,
 * except that an event at the stored version fills in the details of a copy that lacks them
 * (room-service's re-publication, migration 003). */
struct res_event;
enum db_status res_repo_room_upsert(const struct res_event *ev);
/* How many rooms of the copy (not deleted) lack the details a search needs (*count). */
enum db_status res_repo_rooms_without_details(long long *count);
/* How many rooms of the copy (not deleted) have rules not known (policies_known false: last
 * changed by an older room-service, or copied before migration 018), *count. */
enum db_status res_repo_rooms_without_policies(long long *count);
/* Marks the room deleted (tombstone) and cancels its future confirmed reservations (*cancelled:
 * how many; -1 when the room was already deleted at that version: nothing changed). */
enum db_status res_repo_room_delete(long long id, long long version, const char *topic,
                                    long *cancelled);
/* In one transaction: voids the user's tokens issued before occurred_at (the deletion's time,
 * RFC 3339; NULL = now; revoke_apply), cancels all the user's future confirmed reservations,
 * also those made after the deletion (with a token not yet known to be void), and removes the
 * user's calendar feed token.  A booking racing
 * with it waits in revoke_guard() and is refused or cancelled. */
enum db_status res_repo_user_deleted(long long user_id, const char *occurred_at, const char *topic,
                                     long *cancelled);
/* Voids the user's tokens issued before occurred_at (RFC 3339; NULL = now); reason is the event
 * type ("user_disabled" also removes the user's calendar feed token, in the same transaction). */
enum db_status res_repo_user_revoked(long long user_id, const char *occurred_at,
                                     const char *reason);

/* The sweeper's statement for idempotency_keys (struct sweep_table in sweep.h): deletes at most
 * $2 keys stored more than $1 seconds ago.  A retry with such a key is then a new request. */
extern const char res_repo_sweep_idempotency_keys_sql[];

/* The mail quota's rolling window (migrations/017_attendee_window_mail_quota.sql: the
 * invitations an organizer's changes queued within it count), and the sweeper's statement for
 * its counts: deletes at most $2 minutes counted more than $1 seconds ago. */
#define RES_MAIL_QUOTA_WINDOW_S 3600
extern const char res_repo_sweep_mail_quota_sql[];

#endif
