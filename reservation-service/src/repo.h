/* repo: every SQL statement of reservation-service.  Each function runs on the calling thread's
 * connection and leaves it idle.  Reservations travel as JSON objects in the shape of
 * docs/api.md#reservation-service, built by PostgreSQL (json_build_object) so that the API and
 * the events agree.  Time-zone arithmetic (wall-clock times, calendar days, DST) is PostgreSQL's
 * too. */
#ifndef RES_REPO_H
#define RES_REPO_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "db.h"
#include "validate.h"

struct res_room {
	bool found; /* known from room_events and not deleted */
	bool active;
	char time_zone[80];
};

enum db_status res_repo_room_info(long long room_id, struct res_room *room);
/* Seconds since the epoch of a wall-clock "YYYY-MM-DDTHH:MM:SS" in zone tz. */
enum db_status res_repo_local_to_utc(const char *local, const char *tz, long long *utc);
/* The UTC bounds [start, end) of the calendar days first..last ("YYYY-MM-DD") in zone tz. */
enum db_status res_repo_day_bounds(const char *first, const char *last, const char *tz,
                                   long long *start, long long *end);

enum res_outcome {
	RES_DONE,
	RES_NOT_FOUND,
	RES_STALE,            /* the version changed */
	RES_CONFLICT,         /* overlaps a confirmed reservation: *conflicts is set */
	RES_ROOM_UNAVAILABLE, /* unknown, deleted or inactive room */
	RES_CANCELLED,        /* the reservation is cancelled and cannot change */
	RES_REPLAY,        /* idempotency key seen with the same body: *res is the first response */
	RES_KEY_MISMATCH,  /* idempotency key seen with another body */
	RES_TOKEN_REVOKED, /* the caller's token was revoked (revoke_guard) */
};

/* Creates a reservation; idem_key/idem_hash may be NULL.  *res: new reference to the
 * reservation (RES_DONE, RES_REPLAY); *conflicts: new array of {start_time, end_time}. */
enum db_status res_repo_create(const struct res_change *c, const char *topic, const char *idem_key,
                               const char *idem_hash, json_t **res, json_t **conflicts,
                               enum res_outcome *outcome);
enum db_status res_repo_get(long long id, json_t **res);
enum db_status res_repo_update(long long id, const struct res_change *c, const char *topic,
                               json_t **res, json_t **conflicts, enum res_outcome *outcome);
/* Cancels (status cancelled, reason) a confirmed reservation; already cancelled → RES_DONE. */
enum db_status res_repo_cancel(long long id, long long expected_version, const char *reason,
                               const char *topic, enum res_outcome *outcome);

struct res_filter {
	long long user_id; /* 0 = everyone (admins) */
	long long room_id; /* 0 = any */
	const char *date;  /* "YYYY-MM-DD" in each room's zone, or NULL */
	bool has_from, has_to;
	long long from, to;      /* overlap with [from, to) */
	const char *status;      /* "confirmed", "cancelled" or NULL for both */
	const char *after_start; /* cursor: start_time text and id of the last row */
	long long after_id;
	long long limit;
};

/* *list: new array; *next: the next page's cursor key or NULL. */
enum db_status res_repo_list(const struct res_filter *f, json_t **list, json_t **next);

/* Confirmed reservations of room overlapping [from, to), clipped to it, ordered by start:
 * new array of [start, end] pairs in UTC seconds. */
enum db_status res_repo_busy(long long room_id, long long from, long long to, json_t **busy);

/* Consumer side.  Each is idempotent: an event at or below the stored version changes nothing. */
enum db_status res_repo_room_upsert(long long id, const char *name, long long capacity,
                                    const char *time_zone, bool active, long long version);
/* Marks the room deleted (tombstone) and cancels its future confirmed reservations. */
enum db_status res_repo_room_delete(long long id, long long version, const char *topic,
                                    long *cancelled);
/* In one transaction: voids the user's tokens issued before occurred_at (the deletion's time,
 * RFC 3339; NULL = now; revoke_apply) and cancels all the user's future confirmed reservations,
 * also those made after the deletion (with a token not yet known to be void).  A booking racing
 * with it waits in revoke_guard() and is refused or cancelled. */
enum db_status res_repo_user_deleted(long long user_id, const char *occurred_at, const char *topic,
                                     long *cancelled);
/* Voids the user's tokens issued before occurred_at (RFC 3339; NULL = now); reason is the event
 * type. */
enum db_status res_repo_user_revoked(long long user_id, const char *occurred_at,
                                     const char *reason);

/* The sweeper's statement for idempotency_keys (struct sweep_table in sweep.h): deletes at most
 * $2 keys stored more than $1 seconds ago.  A retry with such a key is then a new request. */
extern const char res_repo_sweep_idempotency_keys_sql[];

#endif
