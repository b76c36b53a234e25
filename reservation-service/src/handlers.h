/* handlers: every reservation-service endpoint (docs/api.md#reservation-service).  No SQL here. */
#ifndef RES_HANDLERS_H
#define RES_HANDLERS_H

#include "http.h"
#include "repo.h"
#include "validate.h"

struct res_rules {
	struct res_span_rules span;
	const char *topic;         /* reservation_events */
	long long max_occurrences; /* of a series (MAX_OCCURRENCES) */
};

/* rules is borrowed for the life of the server. */
void res_handlers_init(const struct res_rules *rules);

void res_handle_create(struct req *r);
void res_handle_list(struct req *r);
void res_handle_get(struct req *r);
void res_handle_update(struct req *r);
void res_handle_cancel(struct req *r);
void res_handle_availability(struct req *r);
void res_handle_availability_room(struct req *r);
/* POST /reservations/{id}/approve and /reject (admins; docs/api.md#approval). */
void res_handle_approve(struct req *r);
void res_handle_reject(struct req *r);
/* POST /reservations/{id}/check-in (the owner, an attendee or an admin; docs/api.md#check-in). */
void res_handle_check_in(struct req *r);
/* PUT /internal/test-clock {"offset_s": N} (admins): moves the business clock (clock.h) when
 * the service runs with TEST_CLOCK=true; otherwise the route is not registered (404 to anyone,
 * routes.c) and this answers 404 too (docs/operations.md#test-clock). */
void res_handle_test_clock(struct req *r);

/* Replies shared by the reservation and the series endpoints: 422 naming room_id (an unknown
 * room when found is false, else an inactive one), 422 for a room that could not take bookings
 * once locked, 422 for an Idempotency-Key used with another body, 401 token_revoked. */
void res_reply_room_problem(struct req *r, bool found);
void res_reply_room_unavailable(struct req *r);
void res_reply_key_mismatch(struct req *r);
void res_reply_token_revoked(struct req *r);
/* 422 naming attendees for a booking whose attendees and organizer exceed the room's capacity;
 * problem (borrowed) is the booking function's [people, capacity]. */
void res_reply_capacity(struct req *r, const json_t *problem);
/* The answer to a failed write of a booking (create or change, single or series): 429 naming
 * attendees with Retry-After when the organizer's changes queued more invitations within an
 * hour than MAIL_MAX_RECIPIENTS_PER_HOUR allows (db_status DB_QUOTA_EXCEEDED,
 * counted in mail_quota_refusals_total), else req_db_error's. */
void res_reply_write_error(struct req *r, int db_status);
/* 422 for a booking that breaks a rule of its room; problem (borrowed) is the booking
 * function's {policy, field, message} (a series': with occurrence_start).  details: {field:
 * message, policy: rule} (docs/api.md#room-policies). */
void res_reply_policy(struct req *r, const json_t *problem);
/* ?override=true|false of a write into q->override, and the caller's role into q->role:
 * replies 400 for another value and 403 for an override by someone who is no admin. */
bool res_read_override(struct req *r, struct res_request *q);
/* Logs an admin's override (info: who, what, the rules it skipped) when q->skipped names any. */
void res_log_override(struct req *r, const struct res_request *q, const char *what, long long id);
/* The organizer of a booking by the caller: c->organizer_email and _name borrow the token's. */
void res_set_organizer(struct req *r, struct res_change *c);

/* Replies status with object (a reservation or a series; stolen) and its ETag (its version);
 * a 201 also names it in Location: location_prefix followed by its id ("/reservations/"). */
void res_reply_versioned(struct req *r, int status, json_t *object, const char *location_prefix);

/* Reads the start_time and end_time that body (borrowed) gives as the client wrote them, into
 * buf; *start / *end point into it, or are NULL for a time not given.  The first problem of
 * notation goes to details, and false is returned (end_time is not read after a problem with
 * start_time: the checks run one after the other). */
bool res_read_times(const json_t *body, struct res_time buf[2], const struct res_time **start,
                    const struct res_time **end, json_t *details);

/* A required query parameter name as a calendar date YYYY-MM-DD, copied into buf (size bytes).
 * Replies 400 naming it when absent or malformed. */
bool res_query_date(struct req *r, const char *name, char *buf, size_t size);
/* ?equipment= (req_query_equipment) as the JSON text of the normalised list, for an SQL $n::json
 * parameter: *text is new (caller frees), NULL when absent or empty.  Replies on failure. */
bool res_query_equipment(struct req *r, char **text);

#endif
