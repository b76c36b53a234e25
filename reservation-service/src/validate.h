/* validate: the checks of reservation-service requests that need no database, as pure functions
 * (no civetweb, no SQL): body fields, the notation of times and the booking rules on a time
 * span (docs/api.md#booking-rules).  What needs the database (the room, wall-clock times in its
 * zone) the handlers ask the repo afterwards.  Thread-safe once ATTENDEE_DOMAINS is set
 * (res_validate_set_attendee_domains, at start). */
#ifndef RES_VALIDATE_H
#define RES_VALIDATE_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "timefmt.h"

struct rrule;

/* The largest id a request may name: JavaScript's largest safe integer (ids beyond it would not
 * survive a JSON client). */
#define RES_ID_MAX 9007199254740991LL

/* The most attendees a reservation or a series has, counted after de-duplication and without the
 * organizer's own address (docs/api.md#attendees-and-online-meetings), and the most items the
 * array of a body may hold before that (a hard cap on what a request makes the service read). */
#define RES_ATTENDEES_MAX 100
#define RES_ATTENDEES_ITEMS_MAX 1000

/* The attendees a body gives: valid mailboxes (mail_address_valid), de-duplicated ignoring
 * ASCII case (the first spelling kept, in order).  n is at most RES_ATTENDEES_MAX + 1: one more
 * than the limit is valid only when one of them is the organizer's address, which only the
 * handler knows (res_attendees_fit).  The strings are borrowed from the body. */
struct res_attendees {
	bool given; /* the body has the field (null or [] give none) */
	size_t n;
	const char *list[RES_ATTENDEES_MAX + 1];
};

/* online_meeting as a body gives it. */
enum res_online { RES_ONLINE_KEEP, RES_ONLINE_ON, RES_ONLINE_OFF };

/* A validated reservation change.  Times are UTC seconds since the epoch. */
struct res_change {
	long long room_id;
	long long user_id;
	long long start, end;
	const char *purpose;
	long long expected_version; /* update/cancel: the version the change applies to */
	long long token_issued_ms;  /* create: when the caller's token was issued (revoke_guard) */
	struct res_attendees attendees;
	enum res_online online_meeting; /* KEEP when not given (a create: none) */
	/* Set by the handler, not from the body: the organizer (create: the token's e-mail and
	 * name) and a fresh meeting link to store if the booking gets one (NULL: none); borrowed. */
	const char *organizer_email, *organizer_name, *meeting_url;
};

/* The booking rules on a time span (configuration). */
struct res_span_rules {
	long long min_minutes, max_minutes, horizon_days;
};

/* A start_time or end_time as the client wrote it: an instant (local false, utc set), or a
 * wall-clock time in the room's zone (local true, text "YYYY-MM-DDTHH:MM:SS") that only the
 * database can turn into an instant. */
struct res_time {
	bool local;
	long long utc;
	char text[TIMEFMT_RFC3339_LEN];
};

/* ATTENDEE_DOMAINS: at most this many domains, in a list of at most this many characters. */
#define RES_ATTENDEE_DOMAINS_MAX 64
#define RES_ATTENDEE_DOMAINS_MAX_LEN 4096

/* Whether list is a valid ATTENDEE_DOMAINS (config.h's string check): empty, or domain names
 * separated by commas; else false with the reason in why. */
bool res_validate_attendee_domains_valid(const char *list, char *why, size_t whylen);
/* Sets the domains attendees may be at (list as above, copied; empty: any domain), for
 * res_validate_attendees.  Call once before threads start; false for an invalid list (then
 * any domain). */
bool res_validate_set_attendee_domains(const char *list);

/* The attendees and online_meeting of a body (borrowed; jsonx_check checked their types) into
 * *a and *online: a problem goes to details["attendees"] naming the array's size (more than
 * RES_ATTENDEES_ITEMS_MAX items), the first bad item ("item 3 is not an e-mail address",
 * counted from 1), the first whose domain is not allowed ("item 3: the domain example.net is not
 * one attendees may be invited from", res_validate_set_attendee_domains) or the count of
 * distinct addresses (more than RES_ATTENDEES_MAX + 1). */
void res_validate_attendees(const json_t *body, struct res_attendees *a, enum res_online *online,
                            json_t *details);

/* True when a (validated) holds at most RES_ATTENDEES_MAX addresses besides organizer's (the
 * address the booking drops from its attendees; NULL: none known); else false with the problem
 * in details["attendees"]. */
bool res_attendees_fit(const struct res_attendees *a, const char *organizer, json_t *details);

/* The checks of a POST /reservations body (borrowed): known fields and their types, room_id in
 * range, purpose length, attendees and online_meeting (res_validate_attendees).  Problems go to details (borrowed) as field -> reason; c->room_id and
 * c->purpose (borrowed from body) are set when valid.  The times are read with
 * res_validate_time, then resolved in the room's zone. */
void res_validate_create(const json_t *body, struct res_change *c, json_t *details);

/* The checks of a POST /waitlist body (borrowed, docs/api.md#waitlist): known fields (room_id,
 * start_time, end_time, purpose) and their types, room_id in range, purpose length; c->room_id
 * and c->purpose (borrowed) set when valid.  The times are left to res_validate_time. */
void res_validate_waitlist(const json_t *body, struct res_change *c, json_t *details);

/* The recurrence of a POST /reservations body that has one (res_validate_create checked the
 * types): the rule parsed into *rule (a refused one: details["recurrence"] names the part,
 * docs/api.md#recurring-reservations), on_conflict "fail" (default) or "skip" (*skip). */
void res_validate_recurrence(const json_t *body, struct rrule *rule, bool *skip, json_t *details);

/* A validated change of a series: PUT /reservations/series/{id}, or PUT /reservations/{id}?scope=
 * this_and_following on an occurrence (docs/api.md#changing-a-series). */
struct res_series_change {
	long long room_id;              /* 0: keeps it */
	const char *purpose;            /* NULL: keeps it; "" for null; borrowed from the body */
	struct res_attendees attendees; /* given false: kept */
	enum res_online online_meeting;
	bool has_rule; /* a new recurrence, parsed into the caller's rule */
	bool skip;     /* on_conflict "skip" (default "fail") */
};

/* The checks of a series change's body (borrowed): known fields and their types, at least one
 * change (start_time and end_time, recurrence, room_id, purpose, attendees, online_meeting; else
 * a problem of "body"), attendees and online_meeting as res_validate_attendees,
 * start_time and end_time both or neither, the recurrence parsed into *rule, on_conflict.
 * Problems go to details; the times are left to res_validate_time. */
void res_validate_series_change(const json_t *body, struct res_series_change *c, struct rrule *rule,
                                json_t *details);

/* The checks of a PUT /reservations/{id} body (borrowed): c holds the reservation as it is;
 * room_id and purpose given in the body replace it (purpose null clears it to "").  An empty
 * body is a problem of "body".  start_time and end_time are left to res_validate_time. */
void res_validate_update(const json_t *body, struct res_change *c, json_t *details);

/* Reads text, the value of field: an RFC 3339 date-time in whole seconds, with or without an
 * offset.  Returns false with the reason in details[field]. */
bool res_validate_time(const char *field, const char *text, struct res_time *t, json_t *details);

/* The rules on a new span [start, end) at time now (all UTC seconds): end after start, start in
 * the future and within the horizon, duration within bounds.  Problems go to details under
 * start_time / end_time. */
void res_validate_span(const struct res_span_rules *rules, long long now, long long start,
                       long long end, json_t *details);

/* An Idempotency-Key header: 1-255 visible ASCII characters. */
bool res_validate_idempotency_key(const char *key);

#endif
