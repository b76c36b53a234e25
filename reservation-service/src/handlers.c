/* reservation-service endpoints: bookings that never overlap (the database guarantees it, see
 * repo.c and the exclusion constraint), their rules, and availability per calendar day in the
 * room's own time zone. */
#include "handlers.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <openssl/sha.h>

#include "clock.h"
#include "countof.h"
#include "encoding.h"
#include "jsonx.h"
#include "log.h"
#include "metrics.h"
#include "meeting.h"
#include "repo.h"
#include "rrule.h"
#include "search.h"
#include "series.h"
#include "timefmt.h"
#include "validate.h"
#include "waitlist.h"

#define MAX_RANGE_DAYS 366

static const struct res_rules *rules;

void res_handlers_init(const struct res_rules *r)
{
	rules = r;
	res_search_init(&r->span);
	res_series_init(r);
	res_waitlist_init(r);
}

/* ---- helpers ---- */

static json_t *span_json(long long start, long long end)
{
	char s[TIMEFMT_RFC3339_LEN], e[TIMEFMT_RFC3339_LEN];
	timefmt_rfc3339_s(start, s);
	timefmt_rfc3339_s(end, e);
	return json_pack("{s:s, s:s}", "start_time", s, "end_time", e);
}

bool res_read_times(const json_t *body, struct res_time buf[2], const struct res_time **start,
                    const struct res_time **end, json_t *details)
{
	static const char *const fields[] = {"start_time", "end_time"};
	const struct res_time **out[] = {start, end};
	for (int i = 0; i < 2; i++) {
		const json_t *text = json_object_get(body, fields[i]);
		*out[i] = NULL;
		if (!text)
			continue;
		if (!res_validate_time(fields[i], json_string_value(text), &buf[i], details))
			return false;
		*out[i] = &buf[i];
	}
	return true;
}

static void reply_forbidden(struct req *r)
{
	req_error(r, ERR_FORBIDDEN, NULL, "this reservation belongs to someone else");
}

/* Owner or admin may see and change a reservation (res borrowed). */
static bool may_access(struct req *r, const json_t *res)
{
	const struct auth_user *u = req_user(r);
	if (u->admin || json_integer_value(json_object_get(res, "user_id")) == u->id)
		return true;
	reply_forbidden(r);
	return false;
}

/* May access it, or is one of its attendees (the caller's token e-mail, ignoring case, as
 * ?role=attendee lists them): an invitee may read what the list shows, never change it. */
static bool may_read(struct req *r, const json_t *res)
{
	const struct auth_user *u = req_user(r);
	size_t i;
	const json_t *a;
	if (u->email[0])
		json_array_foreach(json_object_get(res, "attendees"), i, a) {
			const char *addr = json_string_value(a);
			if (addr && strcasecmp(addr, u->email) == 0)
				return true;
		}
	return may_access(r, res);
}

void res_reply_versioned(struct req *r, int status, json_t *object, const char *location_prefix)
{
	char etag[32], location[64];
	long long id = (long long)json_integer_value(json_object_get(object, "id"));
	snprintf(etag, sizeof etag, "\"%lld\"",
	         (long long)json_integer_value(json_object_get(object, "version")));
	req_add_header(r, "ETag", etag);
	if (status == 201) {
		snprintf(location, sizeof location, "%s%lld", location_prefix, id);
		req_add_header(r, "Location", location);
	}
	req_reply_json(r, status, object);
}

static void reply_reservation(struct req *r, int status, json_t *res)
{
	res_reply_versioned(r, status, res, "/reservations/");
}

/* details: {conflicts, alternatives} (stolen), or NULL when the overlapping spans are not known
 * (docs/api.md#booking-rules). */
static void reply_conflict(struct req *r, json_t *details)
{
	req_error(r, ERR_CONFLICT, details ? details : json_pack("{s:[]}", "conflicts"),
	          "the room is already booked at that time");
}

/* The problem of a room that cannot be booked, for details["room_id"]. */
static const char *room_problem(bool found)
{
	return found ? "names an inactive room" : "names no known room";
}

void res_reply_room_problem(struct req *r, bool found)
{
	req_invalid(r, json_pack("{s:s}", "room_id", room_problem(found)));
}

void res_reply_room_unavailable(struct req *r)
{
	req_error(r, ERR_VALIDATION_FAILED, json_pack("{s:s}", "room_id", "names an inactive room"),
	          "room_id names a room that cannot be booked");
}

void res_reply_key_mismatch(struct req *r)
{
	req_error(r, ERR_VALIDATION_FAILED,
	          json_pack("{s:s}", "Idempotency-Key", "was already used with another body"),
	          "Idempotency-Key was already used with another request body");
}

void res_reply_token_revoked(struct req *r)
{
	req_error(r, ERR_TOKEN_REVOKED, NULL,
	          "this access token was revoked (its account was disabled, deleted or given "
	          "another role): refresh it or sign in again");
}

/* Replies 422 for a span that breaks the rules (c's times at now). */
static void reply_rules(struct req *r, const struct res_change *c, long long now)
{
	json_t *details = json_object();
	res_validate_span(&rules->span, now, c->start, c->end, details);
	if (json_object_size(details) == 0) {
		/* The database's predicate (res_span_breaks_rules) and res_validate_span disagree. */
		log_error("span %lld..%lld breaks no rule here but did in the database", c->start,
		          c->end);
		json_decref(details);
		req_db_error(r, DB_ERROR);
		return;
	}
	req_invalid(r, details);
}

void res_reply_write_error(struct req *r, int db_status)
{
	if (db_status != DB_QUOTA_EXCEEDED) {
		req_db_error(r, db_status);
		return;
	}
	/* The window is a rolling hour counted per minute: a minute later its oldest minute has
	 * left it. */
	metrics_counter_add("mail_quota_refusals_total",
	                    "Booking changes refused because their organizer's invitations "
	                    "exceeded MAIL_MAX_RECIPIENTS_PER_HOUR.",
	                    1);
	req_add_header(r, "Retry-After", "60");
	req_error(r, ERR_RATE_LIMITED,
	          json_pack("{s:s}", "attendees",
	                    "the organizer's changes invited too many people within the last hour"),
	          "too many invitations within an hour (MAIL_MAX_RECIPIENTS_PER_HOUR); nothing was "
	          "changed");
}

void res_reply_capacity(struct req *r, const json_t *problem)
{
	long long people = (long long)json_integer_value(json_array_get(problem, 0));
	long long capacity = (long long)json_integer_value(json_array_get(problem, 1));
	req_error(r, ERR_VALIDATION_FAILED,
	          json_pack("{s:o}", "attendees",
	                    json_sprintf("%lld people (%lld attendees and the organizer) exceed "
	                                 "the room's capacity of %lld",
	                                 people, people - 1, capacity)),
	          "the attendees and the organizer exceed the room's capacity");
}

void res_reply_policy(struct req *r, const json_t *problem)
{
	const char *policy = json_string_value(json_object_get(problem, "policy"));
	const char *field = json_string_value(json_object_get(problem, "field"));
	const char *message = json_string_value(json_object_get(problem, "message"));
	const char *occurrence = json_string_value(json_object_get(problem, "occurrence_start"));
	if (!policy || !field || !message) {
		log_error("booking function answered a policy problem without its rule");
		req_error(r, ERR_INTERNAL, NULL, NULL);
		return;
	}
	json_t *details = json_pack("{s:s}", "policy", policy);
	if (occurrence)
		json_object_set_new(details, field,
		                    json_sprintf("the occurrence of %s: %s", occurrence, message));
	else
		json_object_set_new(details, field, json_string(message));
	if (occurrence)
		json_object_set_new(details, "occurrence_start", json_string(occurrence));
	req_error(r, ERR_VALIDATION_FAILED, details, "%s %s (room policy %s)", field,
	          json_string_value(json_object_get(details, field)), policy);
}

bool res_read_override(struct req *r, struct res_request *q)
{
	const struct auth_user *u = req_user(r);
	bool present = false;
	q->role = u->admin ? "admin" : "employee";
	q->override = false;
	if (!req_query_bool(r, "override", &q->override, &present))
		return false;
	if (q->override && !u->admin) {
		req_error(r, ERR_FORBIDDEN, NULL, "only admins may override a room's policies");
		return false;
	}
	return true;
}

void res_log_override(struct req *r, const struct res_request *q, const char *what, long long id)
{
	if (q->override && q->skipped[0] && strcmp(q->skipped, "{}") != 0)
		log_info("%s %lld: admin %lld overrode the room's policies %s", what, id,
		         req_user(r)->id, q->skipped);
}

void res_set_organizer(struct req *r, struct res_change *c)
{
	const struct auth_user *u = req_user(r);
	c->organizer_email = u->email[0] ? u->email : NULL;
	c->organizer_name = u->name[0] ? u->name : NULL;
}

/* Replies for the outcome of a create (ok_status 201) or an update (200) of reservation id,
 * checked at now (c: its resolved times for RES_RULES); res and conflicts are stolen. */
static void reply_change(struct req *r, enum res_outcome outcome, long long id, bool if_match,
                         int ok_status, const struct res_change *c, long long now, json_t *res,
                         json_t *conflicts)
{
	switch (outcome) {
	case RES_REPLAY:
		req_add_header(r, "Idempotent-Replayed", "true");
		/* fall through */
	case RES_DONE:
		res_meeting_sign(res, req_user(r));
		reply_reservation(r, ok_status, res);
		res = NULL;
		break;
	case RES_CAPACITY:
		res_reply_capacity(r, conflicts);
		break;
	case RES_POLICY:
		res_reply_policy(r, conflicts);
		break;
	case RES_NOT_PENDING:
	case RES_STARTED:
		req_error(r, ERR_CONFLICT, NULL, "reservation %lld is not pending", id);
		break;
	case RES_KEY_MISMATCH:
		res_reply_key_mismatch(r);
		break;
	case RES_NOT_FOUND:
		req_error(r, ERR_NOT_FOUND, NULL, "no reservation with id %lld", id);
		break;
	case RES_FORBIDDEN:
		reply_forbidden(r);
		break;
	case RES_ROOM_UNKNOWN:
	case RES_ROOM_INACTIVE:
		res_reply_room_problem(r, outcome == RES_ROOM_INACTIVE);
		break;
	case RES_RULES:
		reply_rules(r, c, now);
		break;
	case RES_STALE:
		if (if_match)
			req_error(r, ERR_PRECONDITION_FAILED, NULL, "reservation %lld has changed",
			          id);
		else
			req_error(r, ERR_CONFLICT, NULL,
			          "reservation %lld changed while it was being updated; try again",
			          id);
		break;
	case RES_CANCELLED:
		req_error(r, ERR_CONFLICT, NULL, "reservation %lld is cancelled and cannot change",
		          id);
		break;
	case RES_CONFLICT:
		reply_conflict(r, conflicts);
		conflicts = NULL;
		break;
	case RES_ROOM_UNAVAILABLE:
		res_reply_room_unavailable(r);
		break;
	case RES_TOKEN_REVOKED:
		res_reply_token_revoked(r);
		break;
	}
	json_decref(res);
	json_decref(conflicts);
}

/* Checks the room of a change that is refused for its times, as a valid one would check it
 * first: unknown, deleted or inactive rooms are a validation error (details). */
static enum db_status room_for(long long room_id, json_t *details)
{
	struct res_room room;
	enum db_status st = res_repo_room_info(room_id, &room);
	if (st == DB_OK && (!room.found || !room.active))
		json_object_set_new(details, "room_id", json_string(room_problem(room.found)));
	return st;
}

/* ---- create ---- */

/* SHA-256 of the body in canonical form (sorted keys), for Idempotency-Key. */
static void body_hash(const json_t *body, char out[2 * SHA256_DIGEST_LENGTH + 1])
{
	unsigned char d[SHA256_DIGEST_LENGTH];
	char *text = json_dumps(body, JSON_COMPACT | JSON_SORT_KEYS);
	SHA256((const unsigned char *)(text ? text : ""), text ? strlen(text) : 0, d);
	free(text);
	enc_hex(d, sizeof d, out);
}

void res_handle_create(struct req *r)
{
	json_t *body = NULL, *details = json_object(), *times = json_object(), *res = NULL,
	       *conflicts = NULL;
	struct res_change c = {0};
	struct res_time given[2];
	struct res_request q = {.rules = &rules->span, .topic = rules->topic};
	char hash[2 * SHA256_DIGEST_LENGTH + 1];
	enum db_status st = DB_OK;
	const char *key = req_header(r, "Idempotency-Key");
	/* A series (docs/api.md#recurring-reservations): the rule, parsed with the other fields
	 * so that every problem of the body is reported together. */
	struct rrule rule;
	bool series = false, skip = false;
	char *meeting_url = NULL; /* owned */

	if (key && !res_validate_idempotency_key(key)) {
		req_error(r, ERR_BAD_REQUEST,
		          json_pack("{s:s}", "Idempotency-Key",
		                    "must be 1-255 visible ASCII characters"),
		          "Idempotency-Key must be 1-255 visible ASCII characters");
		goto out;
	}
	if (!res_read_override(r, &q) || !(body = req_body_object(r)))
		goto out;
	res_validate_create(body, &c, details);
	if (json_object_get(body, "recurrence") && !json_object_get(details, "recurrence")) {
		series = true;
		res_validate_recurrence(body, &rule, &skip, details);
	}
	if (json_object_size(details) == 0 &&
	    !res_read_times(body, given, &q.start, &q.end, times)) {
		/* The room is checked before the times. */
		if ((st = room_for(c.room_id, details)) != DB_OK) {
			req_db_error(r, st);
			goto out;
		}
		if (json_object_size(details) == 0)
			json_object_update(details, times);
	}
	if (json_object_size(details)) {
		req_invalid(r, details);
		details = NULL;
		goto out;
	}
	c.user_id = req_user(r)->id;
	c.token_issued_ms = req_user(r)->issued_ms;
	res_set_organizer(r, &c);
	/* One more than the limit passes only with the organizer's own address in it. */
	if (!res_attendees_fit(&c.attendees, c.organizer_email, details)) {
		req_invalid(r, details);
		details = NULL;
		goto out;
	}
	q.now = clock_now_s();
	if (key)
		body_hash(body, hash);
	if (series) {
		res_series_create(r, body, &rule, skip, &c, &q, key, key ? hash : NULL);
		goto out;
	}
	enum res_outcome outcome;
	if (c.online_meeting == RES_ONLINE_ON &&
	    !(c.meeting_url = meeting_url = res_meeting_new_url())) {
		req_error(r, ERR_INTERNAL, NULL, NULL);
		goto out;
	}
	st = res_repo_create(&c, &q, key, key ? hash : NULL, &res, &conflicts, &outcome);
	if (st != DB_OK) {
		res_reply_write_error(r, st);
		goto out;
	}
	if (outcome == RES_DONE) {
		long long id = (long long)json_integer_value(json_object_get(res, "id"));
		log_info("reservation %lld created (%s)", id,
		         json_string_value(json_object_get(res, "status")));
		res_log_override(r, &q, "reservation", id);
	}
	reply_change(r, outcome, 0, false, 201, &c, q.now, res, conflicts);
	res = conflicts = NULL;
out:
	free(meeting_url);
	json_decref(conflicts);
	json_decref(res);
	json_decref(times);
	json_decref(details);
	json_decref(body);
}

/* ---- read ---- */

void res_handle_get(struct req *r)
{
	long long id;
	json_t *res = NULL;
	if (!req_param_id(r, "id", &id))
		return;
	enum db_status st = res_repo_get(id, &res);
	if (st != DB_OK)
		req_db_error(r, st);
	else if (!res)
		req_error(r, ERR_NOT_FOUND, NULL, "no reservation with id %lld", id);
	else if (may_read(r, res)) {
		res_meeting_sign(res, req_user(r));
		reply_reservation(r, 200, res);
		res = NULL;
	}
	json_decref(res);
}

/* An RFC 3339 query parameter (UTC when it has no offset); replies 400 on failure. */
static bool query_time(struct req *r, const char *name, long long *out, bool *present)
{
	char buf[64];
	struct timefmt_time t;
	int q = req_query(r, name, buf, sizeof buf);
	*present = q == 1;
	if (q <= 0)
		return q == 0;
	if (!timefmt_parse_rfc3339(buf, &t)) {
		req_error(r, ERR_BAD_REQUEST,
		          json_pack("{s:s}", name, "must be an RFC 3339 date-time"),
		          "query parameter %s must be an RFC 3339 date-time", name);
		return false;
	}
	if (!t.has_offset)
		t.utc = timefmt_wall_as_utc(&t);
	*out = t.utc;
	return true;
}

void res_handle_list(struct req *r)
{
	struct res_filter f = {0};
	json_t *cursor = NULL, *next = NULL;
	struct jsonx_text page = {0};
	char date[16], status[16], role[16];
	bool present = false, attendee = false;
	int hd, hs, hr;
	const struct auth_user *u = req_user(r);

	if (!req_page(r, &f.limit, &cursor) ||
	    !req_query_int(r, "user_id", 1, 9007199254740991LL, &f.user_id, &present) ||
	    !req_query_int(r, "room_id", 1, 9007199254740991LL, &f.room_id, &present) ||
	    !req_query_int(r, "series_id", 1, 9007199254740991LL, &f.series_id, &present) ||
	    (hd = req_query(r, "date", date, sizeof date)) < 0 ||
	    (hs = req_query(r, "status", status, sizeof status)) < 0 ||
	    (hr = req_query(r, "role", role, sizeof role)) < 0 ||
	    !query_time(r, "from", &f.from, &f.has_from) || !query_time(r, "to", &f.to, &f.has_to))
		goto out;
	/* role=attendee: the reservations that invite the caller's e-mail address (anyone's);
	 * organizer (the default): the caller's own, as before. */
	if (hr == 1) {
		attendee = strcmp(role, "attendee") == 0;
		if (!attendee && strcmp(role, "organizer") != 0) {
			req_bad_query(r, "role", "must be organizer or attendee");
			goto out;
		}
	}
	if (!u->admin) {
		/* An employee's invitations are organised by others (their own address is never
		 * among a booking's attendees): user_id with them would only ever list nothing. */
		if (attendee && f.user_id) {
			req_bad_query(r, "user_id", "cannot be combined with role=attendee");
			goto out;
		}
		/* Employees see their own reservations; naming someone else is refused. */
		if (f.user_id && f.user_id != u->id) {
			req_error(r, ERR_FORBIDDEN, NULL,
			          "only admins may list other users' reservations");
			goto out;
		}
		if (!attendee)
			f.user_id = u->id;
	}
	if (attendee)
		f.attendee = u->email;
	f.reader = u;
	int y, m, d;
	if (hd == 1) {
		if (!timefmt_parse_date(date, &y, &m, &d)) {
			req_error(r, ERR_BAD_REQUEST,
			          json_pack("{s:s}", "date", "must be YYYY-MM-DD"),
			          "query parameter date must be YYYY-MM-DD");
			goto out;
		}
		f.date = date;
	}
	/* Active (confirmed or pending: both hold their slot) unless asked otherwise. */
	f.status = "active";
	if (hs == 1) {
		if (strcmp(status, "all") == 0)
			f.status = NULL;
		else if (strcmp(status, "confirmed") == 0 || strcmp(status, "cancelled") == 0 ||
		         strcmp(status, "pending") == 0 || strcmp(status, "active") == 0)
			f.status = status;
		else {
			req_error(r, ERR_BAD_REQUEST,
			          json_pack("{s:s}", "status",
			                    "must be confirmed, pending, active, cancelled or all"),
			          "query parameter status must be confirmed, pending, active, "
			          "cancelled or all");
			goto out;
		}
	}
	if (f.has_from && f.has_to && f.to <= f.from) {
		req_error(r, ERR_BAD_REQUEST, json_pack("{s:s}", "to", "must be after from"),
		          "query parameter to must be after from");
		goto out;
	}
	if (cursor) {
		json_t *s = json_array_get(cursor, 0), *id = json_array_get(cursor, 1);
		struct timefmt_time t;
		if (json_array_size(cursor) != 2 || !json_is_string(s) || !json_is_integer(id) ||
		    !timefmt_parse_rfc3339(json_string_value(s), &t) || !t.has_offset) {
			req_error(r, ERR_BAD_REQUEST, json_pack("{s:s}", "cursor", "is invalid"),
			          "query parameter cursor is invalid");
			goto out;
		}
		f.after_start = json_string_value(s);
		f.after_id = (long long)json_integer_value(id);
	}
	enum db_status st = res_repo_list(&f, &page, &next);
	if (req_page_read(r, st, next))
		req_reply_json_text(r, 200, page.data, page.len);
out:
	jsonx_text_free(&page);
	json_decref(next);
	json_decref(cursor);
}

/* ---- change ---- */

/* Replies to an update whose body (details) or times (times) are wrong, checking first what a
 * valid one checks before them: the reservation (404, 403), then, when the times are wrong, its
 * room (room_id, 0: the reservation's). */
static void reply_update_invalid(struct req *r, long long id, long long room_id, json_t *details,
                                 json_t *times)
{
	json_t *cur = NULL;
	enum db_status st = res_repo_get(id, &cur);
	if (st != DB_OK) {
		req_db_error(r, st);
		goto out;
	}
	if (!cur) {
		req_error(r, ERR_NOT_FOUND, NULL, "no reservation with id %lld", id);
		goto out;
	}
	if (!may_access(r, cur))
		goto out;
	if (json_object_size(details) == 0) {
		if (!room_id)
			room_id = (long long)json_integer_value(json_object_get(cur, "room_id"));
		if ((st = room_for(room_id, details)) != DB_OK) {
			req_db_error(r, st);
			goto out;
		}
		if (json_object_size(details) == 0)
			json_object_update(details, times);
	}
	req_invalid(r, details);
	details = NULL;
out:
	json_decref(details);
	json_decref(cur);
}

/* ?scope= of PUT and DELETE /reservations/{id}: "this" (the default: the reservation alone) or
 * "this_and_following" (*following: an occurrence and the later ones of its series,
 * docs/api.md#changing-a-series).  Replies 400 naming scope for another value. */
static bool read_scope(struct req *r, bool *following)
{
	char scope[32];
	int q = req_query(r, "scope", scope, sizeof scope);
	*following = q == 1 && strcmp(scope, "this_and_following") == 0;
	if (q < 0)
		return false;
	if (q == 1 && !*following && strcmp(scope, "this") != 0) {
		req_bad_query(r, "scope", "must be this or this_and_following");
		return false;
	}
	return true;
}

/* res_attendees_fit for an update's attendees (c) against reservation id's stored organizer,
 * read only for a list one longer than the limit (the organizer never changes).  An unknown
 * reservation passes: the update answers 404. */
static enum db_status attendees_fit_stored(long long id, const struct res_change *c,
                                           json_t *details)
{
	json_t *cur = NULL;
	if (c->attendees.n <= RES_ATTENDEES_MAX)
		return DB_OK;
	enum db_status st = res_repo_get(id, &cur);
	if (st == DB_OK && cur)
		res_attendees_fit(&c->attendees,
		                  json_string_value(json_object_get(cur, "organizer_email")),
		                  details);
	json_decref(cur);
	return st;
}

void res_handle_update(struct req *r)
{
	json_t *body = NULL, *details = json_object(), *times = json_object(), *res = NULL,
	       *conflicts = NULL;
	struct res_change c = {0};
	struct res_time given[2];
	struct res_request q = {.rules = &rules->span, .topic = rules->topic};
	long long id, if_match = 0;
	bool following;
	char *meeting_url = NULL; /* owned */
	enum db_status st;

	if (!req_param_id(r, "id", &id) || !read_scope(r, &following))
		goto out;
	if (following) {
		res_series_update_following(r, id);
		goto out;
	}
	if (!req_if_match(r, &if_match) || !res_read_override(r, &q) ||
	    !(body = req_body_object(r)))
		goto out;
	res_validate_update(body, &c, details);
	if (json_object_size(details) == 0 &&
	    (st = attendees_fit_stored(id, &c, details)) != DB_OK) {
		req_db_error(r, st);
		goto out;
	}
	if (json_object_size(details) || !res_read_times(body, given, &q.start, &q.end, times)) {
		reply_update_invalid(r, id, c.room_id, details, times);
		details = NULL;
		goto out;
	}
	c.user_id = req_user(r)->id;
	c.expected_version = if_match;
	q.admin = req_user(r)->admin;
	q.now = clock_now_s();
	/* A link made in case the reservation has none yet: it keeps the one it has. */
	if (c.online_meeting == RES_ONLINE_ON &&
	    !(c.meeting_url = meeting_url = res_meeting_new_url())) {
		req_error(r, ERR_INTERNAL, NULL, NULL);
		goto out;
	}
	enum res_outcome outcome;
	st = res_repo_update(id, &c, &q, &res, &conflicts, &outcome);
	if (st != DB_OK) {
		res_reply_write_error(r, st);
		goto out;
	}
	if (outcome == RES_DONE)
		res_log_override(r, &q, "reservation", id);
	reply_change(r, outcome, id, if_match != 0, 200, &c, q.now, res, conflicts);
	res = conflicts = NULL;
out:
	free(meeting_url);
	json_decref(conflicts);
	json_decref(res);
	json_decref(times);
	json_decref(details);
	json_decref(body);
}

void res_handle_cancel(struct req *r)
{
	long long id, if_match = 0;
	const struct auth_user *u = req_user(r);
	enum res_outcome outcome;
	bool following;
	if (!req_param_id(r, "id", &id) || !read_scope(r, &following) ||
	    !req_if_match(r, &if_match))
		return;
	if (following) {
		res_series_cancel_following(r, id, if_match);
		return;
	}
	enum db_status st = res_repo_cancel(id, u->id, u->admin, if_match, rules->topic, &outcome);
	if (st != DB_OK)
		req_db_error(r, st);
	else if (outcome == RES_NOT_FOUND)
		req_error(r, ERR_NOT_FOUND, NULL, "no reservation with id %lld", id);
	else if (outcome == RES_FORBIDDEN)
		reply_forbidden(r);
	else if (outcome == RES_STALE)
		req_error(r, ERR_PRECONDITION_FAILED, NULL, "reservation %lld has changed", id);
	else
		req_reply_empty(r, 204);
}

/* ---- approval ---- */

/* Approves or rejects reservation {id} (the route admits admins only) at the service's clock.
 * A rejection may give {"reason": "..."} (at most 200 characters, no other member), carried by
 * its event; a request without a body (no Content-Length above 0, no chunk of data) gives none
 * (review 15c L6).  An approval once the start has passed is refused (409, details.start_time):
 * the meeting was not held for it, and the releaser cancels it as not_approved. */
static void decide(struct req *r, bool approve)
{
	static const struct jsonx_field fields[] = {
		{"reason", JSONX_STRING | JSONX_NULL, false},
	};
	long long id;
	json_t *body = NULL, *res = NULL;
	const char *note = NULL;
	char status[16];
	enum res_outcome outcome;
	if (!req_param_id(r, "id", &id))
		return;
	if (!approve && !req_body_object_opt(r, &body))
		return;
	if (body) {
		json_t *details = json_object();
		if (!jsonx_check(body, fields, countof(fields), details) ||
		    !jsonx_string_len(body, "reason", 0, 200, &note, details)) {
			req_invalid(r, details);
			goto out;
		}
		json_decref(details);
	}
	enum db_status st = res_repo_decide(id, approve, note, rules->topic, clock_now_s(), &res,
	                                    status, &outcome);
	if (st != DB_OK)
		res_reply_write_error(r, st); /* an approval's invitations count for the quota */
	else if (outcome == RES_NOT_FOUND)
		req_error(r, ERR_NOT_FOUND, NULL, "no reservation with id %lld", id);
	else if (outcome == RES_NOT_PENDING)
		req_error(r, ERR_CONFLICT, json_pack("{s:s}", "status", status),
		          "reservation %lld is %s, not pending", id, status);
	else if (outcome == RES_STARTED)
		req_error(r, ERR_CONFLICT,
		          json_pack("{s:s, s:s}", "status", "pending", "start_time",
		                    "has passed: a pending reservation can only be approved before "
		                    "its start"),
		          "reservation %lld has begun and can no longer be approved", id);
	else {
		log_info("reservation %lld %s by admin %lld", id, approve ? "approved" : "rejected",
		         req_user(r)->id);
		res_meeting_sign(res, req_user(r));
		reply_reservation(r, 200, res);
		res = NULL;
	}
out:
	json_decref(res);
	json_decref(body);
}

void res_handle_approve(struct req *r)
{
	decide(r, true);
}

void res_handle_reject(struct req *r)
{
	decide(r, false);
}

/* ---- check-in ---- */

/* Why reservation res (borrowed, as read after the check-in changed nothing) cannot be checked
 * in at now_s: 422 when its room did not require check-in when it was booked, 409 when it is
 * not confirmed or now_s is outside its window (details: the window). */
static void reply_check_in_refused(struct req *r, const json_t *res, long long now_s)
{
	const char *status = json_string_value(json_object_get(res, "status"));
	const json_t *from = json_object_get(res, "check_in_from"),
		     *until = json_object_get(res, "release_at");
	char now[TIMEFMT_RFC3339_LEN];
	timefmt_rfc3339_s(now_s, now);
	if (!json_is_string(from)) {
		req_error(r, ERR_VALIDATION_FAILED,
		          json_pack("{s:s}", "check_in",
		                    "the room did not require check-in when this was booked"),
		          "reservation %lld needs no check-in",
		          (long long)json_integer_value(json_object_get(res, "id")));
	} else if (!status || strcmp(status, "confirmed") != 0) {
		req_error(r, ERR_CONFLICT,
		          json_pack("{s:s, s:s}", "check_in", "only a confirmed reservation",
		                    "status", status ? status : ""),
		          "a %s reservation cannot be checked in", status ? status : "");
	} else {
		req_error(r, ERR_CONFLICT,
		          json_pack("{s:s, s:O, s:O, s:s}", "check_in",
		                    "outside the check-in window", "check_in_from", from,
		                    "release_at", until, "now", now),
		          "check-in is open from %s until %s", json_string_value(from),
		          json_string_value(until));
	}
}

void res_handle_check_in(struct req *r)
{
	long long id, now_s = clock_now_s();
	json_t *res = NULL, *done = NULL;
	if (!req_param_id(r, "id", &id))
		return;
	enum db_status st = res_repo_get(id, &res);
	if (st != DB_OK) {
		req_db_error(r, st);
		goto out;
	}
	if (!res) {
		req_error(r, ERR_NOT_FOUND, NULL, "no reservation with id %lld", id);
		goto out;
	}
	if (!may_read(r, res))
		goto out;
	/* Checked in already: the same answer again (idempotent), whatever the time. */
	if (json_is_null(json_object_get(res, "checked_in_at")) &&
	    !json_is_null(json_object_get(res, "check_in_from"))) {
		if ((st = res_repo_check_in(id, now_s, rules->topic, &done)) != DB_OK) {
			req_db_error(r, st);
			goto out;
		}
		if (done) {
			log_info("reservation %lld checked in by user %lld", id, req_user(r)->id);
			json_decref(res);
			res = done;
		} else {
			/* Changed meanwhile (checked in, cancelled, moved): read it again. */
			json_decref(res);
			res = NULL;
			if ((st = res_repo_get(id, &res)) != DB_OK || !res) {
				if (st != DB_OK)
					req_db_error(r, st);
				else
					req_error(r, ERR_NOT_FOUND, NULL,
					          "no reservation with id %lld", id);
				goto out;
			}
		}
	}
	if (json_is_null(json_object_get(res, "checked_in_at"))) {
		reply_check_in_refused(r, res, now_s);
		goto out;
	}
	res_meeting_sign(res, req_user(r));
	reply_reservation(r, 200, res);
	res = NULL;
out:
	json_decref(res);
}

/* ---- test clock ---- */

void res_handle_test_clock(struct req *r)
{
	static const struct jsonx_field fields[] = {
		{"offset_s", JSONX_INT, true},
	};
	json_t *body = NULL;
	/* Not routed at all while it is off (main.c): this is a second guard. */
	if (!clock_test_enabled()) {
		req_error(r, ERR_NOT_FOUND, NULL, "no such path");
		return;
	}
	if (!(body = req_body_object(r)))
		return;
	/* {"offset_s": n} and nothing else (unknown members: 422, as every body here). */
	json_t *details = json_object();
	if (jsonx_check(body, fields, countof(fields), details) &&
	    !clock_set_offset_s((long long)json_integer_value(json_object_get(body, "offset_s"))))
		json_object_set_new(
			details, "offset_s",
			json_string("must be an integer of at most 315360000 either way"));
	if (json_object_size(details) > 0) {
		req_invalid(r, details);
	} else {
		json_decref(details);
		char now[TIMEFMT_RFC3339_LEN];
		timefmt_rfc3339_s(clock_now_s(), now);
		log_warn("test clock moved: offset %lld s, now %s", clock_offset_s(), now);
		req_reply_json(r, 200,
		               json_pack("{s:I, s:s}", "offset_s", (json_int_t)clock_offset_s(),
		                         "now", now));
	}
	json_decref(body);
}

/* ---- availability ---- */

/* The room's days first..last and its busy spans in them: 404 when the room is unknown
 * (deleted rooms included). */
static bool availability_busy(struct req *r, long long room_id, const char *first, const char *last,
                              struct res_day_span *span, json_t **busy)
{
	enum db_status st = res_repo_busy(room_id, first, last, span, busy);
	if (st != DB_OK) {
		req_db_error(r, st);
		return false;
	}
	if (!span->found) {
		json_decref(*busy);
		*busy = NULL;
		req_error(r, ERR_NOT_FOUND, NULL, "no room with id %lld", room_id);
		return false;
	}
	return true;
}

bool res_query_equipment(struct req *r, char **text)
{
	json_t *list = NULL;
	*text = NULL;
	if (!req_query_equipment(r, "equipment", &list))
		return false;
	if (list && !(*text = json_dumps(list, JSON_COMPACT))) {
		json_decref(list);
		req_error(r, ERR_INTERNAL, NULL, NULL);
		return false;
	}
	json_decref(list);
	return true;
}

bool res_query_date(struct req *r, const char *name, char *buf, size_t size)
{
	int y, m, d;
	int q = req_query(r, name, buf, size);
	if (q < 0)
		return false;
	if (q == 0 || !timefmt_parse_date(buf, &y, &m, &d)) {
		req_error(r, ERR_BAD_REQUEST, json_pack("{s:s}", name, "is required as YYYY-MM-DD"),
		          "query parameter %s is required as YYYY-MM-DD", name);
		return false;
	}
	return true;
}

void res_handle_availability(struct req *r)
{
	long long room_id = 0;
	bool present = false;
	char date[16];
	struct res_day_span day;
	json_t *busy = NULL;

	if (!req_query_int(r, "room_id", 1, 9007199254740991LL, &room_id, &present))
		return;
	if (!present) {
		req_error(r, ERR_BAD_REQUEST, json_pack("{s:s}", "room_id", "is required"),
		          "query parameter room_id is required");
		return;
	}
	if (!res_query_date(r, "date", date, sizeof date) ||
	    !availability_busy(r, room_id, date, date, &day, &busy))
		return;
	long long start = day.start, end = day.end;
	/* Busy spans merged where they touch; free spans are the gaps of the day. */
	json_t *busy_out = json_array(), *free_out = json_array();
	long long cursor = start, run_start = -1, run_end = -1;
	size_t i;
	json_t *b;
	for (i = 0; i <= json_array_size(busy); i++) {
		b = json_array_get(busy, i);
		long long s = b ? (long long)json_integer_value(json_array_get(b, 0)) : end + 1;
		long long e = b ? (long long)json_integer_value(json_array_get(b, 1)) : end + 1;
		if (run_start >= 0 && s <= run_end) {
			if (e > run_end)
				run_end = e;
			continue;
		}
		if (run_start >= 0) {
			json_array_append_new(busy_out, span_json(run_start, run_end));
			if (run_start > cursor)
				json_array_append_new(free_out, span_json(cursor, run_start));
			cursor = run_end;
		}
		run_start = s;
		run_end = e;
	}
	if (cursor < end)
		json_array_append_new(free_out, span_json(cursor, end));
	json_decref(busy);
	req_reply_json(r, 200,
	               json_pack("{s:I, s:s, s:s, s:o, s:o}", "room_id", (json_int_t)room_id,
	                         "date", date, "time_zone", day.time_zone, "busy", busy_out, "free",
	                         free_out));
}

void res_handle_availability_room(struct req *r)
{
	long long room_id;
	char first[16], last[16];
	struct res_day_span day;
	json_t *busy = NULL;
	int y1, m1, d1, y2, m2, d2;

	if (!req_param_id(r, "id", &room_id) ||
	    !res_query_date(r, "start_date", first, sizeof first) ||
	    !res_query_date(r, "end_date", last, sizeof last))
		return;
	timefmt_parse_date(first, &y1, &m1, &d1);
	timefmt_parse_date(last, &y2, &m2, &d2);
	struct tm a = {.tm_year = y1 - 1900, .tm_mon = m1 - 1, .tm_mday = d1};
	struct tm z = {.tm_year = y2 - 1900, .tm_mon = m2 - 1, .tm_mday = d2};
	long long days = ((long long)timegm(&z) - (long long)timegm(&a)) / 86400;
	if (days < 0) {
		req_error(r, ERR_BAD_REQUEST,
		          json_pack("{s:s}", "end_date", "must not be before start_date"),
		          "end_date must not be before start_date");
		return;
	}
	if (days >= MAX_RANGE_DAYS) {
		req_error(r, ERR_BAD_REQUEST,
		          json_pack("{s:s}", "end_date", "range is limited to 366 days"),
		          "the date range is limited to 366 days");
		return;
	}
	if (!availability_busy(r, room_id, first, last, &day, &busy))
		return;
	json_t *slots = json_array();
	size_t i;
	json_t *b;
	json_array_foreach(busy, i, b) {
		json_array_append_new(
			slots, span_json((long long)json_integer_value(json_array_get(b, 0)),
		                         (long long)json_integer_value(json_array_get(b, 1))));
	}
	json_decref(busy);
	req_reply_json(r, 200,
	               json_pack("{s:I, s:s, s:s, s:o}", "room_id", (json_int_t)room_id,
	                         "start_date", first, "end_date", last, "booked_slots", slots));
}
