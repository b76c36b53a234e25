/* The endpoints of the waitlist (waitlist.h). */
#include "waitlist.h"

#include <stdio.h>
#include <string.h>

#include "clock.h"
#include "countof.h"
#include "handlers.h"
#include "log.h"
#include "repo.h"
#include "repo_waitlist.h"
#include "validate.h"

static const struct res_rules *rules;

void res_waitlist_init(const struct res_rules *r)
{
	rules = r;
}

static void reply_entry(struct req *r, int status, json_t *entry)
{
	char location[64];
	if (status == 201) {
		snprintf(location, sizeof location, "/waitlist/%lld",
		         (long long)json_integer_value(json_object_get(entry, "id")));
		req_add_header(r, "Location", location);
	}
	req_reply_json(r, status, entry);
}

/* Replies for a join refused with outcome (c: the resolved times for RULES; answer borrowed:
 * the rule for POLICY, the most entries for TOO_MANY, the caller's reservation for OWN). */
static void reply_join_refused(struct req *r, enum res_waitlist_outcome outcome,
                               const struct res_change *c, long long now, const json_t *answer)
{
	json_t *details = NULL;
	switch (outcome) {
	case RES_WAITLIST_ROOM_UNKNOWN:
	case RES_WAITLIST_ROOM_INACTIVE:
		res_reply_room_problem(r, outcome == RES_WAITLIST_ROOM_INACTIVE);
		break;
	case RES_WAITLIST_RULES:
		details = json_object();
		res_validate_span(&rules->span, now, c->start, c->end, details);
		if (json_object_size(details) == 0)
			json_object_set_new(details, "start_time",
			                    json_string("breaks the booking rules"));
		req_invalid(r, details);
		break;
	case RES_WAITLIST_REVOKED:
		res_reply_token_revoked(r);
		break;
	case RES_WAITLIST_POLICY:
		res_reply_policy(r, answer);
		break;
	case RES_WAITLIST_DUPLICATE:
		req_error(r, ERR_CONFLICT, NULL,
		          "you are already waiting for this room at these times");
		break;
	case RES_WAITLIST_TOO_MANY:
		req_error(r, ERR_CONFLICT,
		          json_pack("{s:I}", "max_waiting_entries", json_integer_value(answer)),
		          "you are waiting for %lld slots already, the most allowed",
		          (long long)json_integer_value(answer));
		break;
	case RES_WAITLIST_OWN:
		req_error(r, ERR_VALIDATION_FAILED,
		          json_pack("{s:s}", "start_time", "your own reservation holds this slot"),
		          "your own reservation %lld holds this slot: change it instead of waiting",
		          (long long)json_integer_value(answer));
		break;
	case RES_WAITLIST_FREE:
		req_error(r, ERR_VALIDATION_FAILED,
		          json_pack("{s:s}", "start_time", "the slot is free: book it"),
		          "the slot is free: book it with POST /reservations");
		break;
	default:
		req_error(r, ERR_INTERNAL, NULL, NULL);
		break;
	}
}

void res_handle_waitlist_create(struct req *r)
{
	json_t *body = NULL, *details = json_object(), *entry = NULL;
	struct res_change c = {0};
	struct res_time given[2];
	struct res_request q = {.rules = &rules->span, .topic = rules->topic};
	enum res_waitlist_outcome outcome;
	const struct auth_user *u = req_user(r);

	if (!(body = req_body_object(r)))
		goto out;
	res_validate_waitlist(body, &c, details);
	if (json_object_size(details) == 0)
		res_read_times(body, given, &q.start, &q.end, details);
	if (json_object_size(details)) {
		req_invalid(r, details);
		details = NULL;
		goto out;
	}
	c.user_id = u->id;
	c.token_issued_ms = u->issued_ms;
	res_set_organizer(r, &c);
	q.role = u->admin ? "admin" : "employee";
	q.now = clock_now_s();
	enum db_status st = res_repo_waitlist_join(&c, &q, &entry, &outcome);
	if (st != DB_OK) {
		req_db_error(r, st);
		goto out;
	}
	if (outcome != RES_WAITLIST_DONE) {
		reply_join_refused(r, outcome, &c, q.now, entry);
		goto out;
	}
	log_info("waitlist entry %lld made by user %lld",
	         (long long)json_integer_value(json_object_get(entry, "id")), u->id);
	reply_entry(r, 201, entry);
	entry = NULL;
out:
	json_decref(entry);
	json_decref(details);
	json_decref(body);
}

void res_handle_waitlist_list(struct req *r)
{
	static const char *const states[] = {"waiting", "booked", "expired", "cancelled"};
	const struct auth_user *u = req_user(r);
	long long user_id = u->id, limit, after = 0;
	bool present = false;
	char status[16];
	json_t *list = NULL, *next = NULL;
	if (!req_query_int(r, "user_id", 1, RES_ID_MAX, &user_id, &present) ||
	    !req_page_after_id(r, &limit, &after))
		goto out;
	if (present && user_id != u->id && !u->admin) {
		req_error(r, ERR_FORBIDDEN, NULL, "only admins may list another user's entries");
		goto out;
	}
	int q = req_query(r, "status", status, sizeof status);
	if (q < 0)
		goto out;
	bool known = false;
	for (size_t i = 0; q == 1 && i < countof(states); i++)
		known = known || strcmp(states[i], status) == 0;
	if (q == 1 && !known) {
		req_bad_query(r, "status", "must be waiting, booked, expired or cancelled");
		goto out;
	}
	enum db_status st = res_repo_waitlist_list(user_id, q == 1 ? status : NULL, clock_now_s(),
	                                           limit, after, &list, &next);
	if (req_page_read(r, st, next)) {
		req_reply_json(r, 200, list);
		list = NULL;
	}
out:
	json_decref(list);
	json_decref(next);
}

/* Owner or admin; else 403 (as a reservation). */
static bool may_access(struct req *r, const json_t *entry)
{
	const struct auth_user *u = req_user(r);
	if (u->admin || json_integer_value(json_object_get(entry, "user_id")) == u->id)
		return true;
	req_error(r, ERR_FORBIDDEN, NULL, "this waitlist entry belongs to someone else");
	return false;
}

void res_handle_waitlist_get(struct req *r)
{
	long long id;
	json_t *entry = NULL;
	if (!req_param_id(r, "id", &id))
		return;
	enum db_status st = res_repo_waitlist_get(id, clock_now_s(), &entry);
	if (st != DB_OK)
		req_db_error(r, st);
	else if (!entry)
		req_error(r, ERR_NOT_FOUND, NULL, "no waitlist entry with id %lld", id);
	else if (may_access(r, entry)) {
		reply_entry(r, 200, entry);
		entry = NULL;
	}
	json_decref(entry);
}

void res_handle_waitlist_cancel(struct req *r)
{
	long long id;
	const struct auth_user *u = req_user(r);
	json_t *entry = NULL;
	enum res_waitlist_outcome outcome;
	if (!req_param_id(r, "id", &id))
		return;
	enum db_status st = res_repo_waitlist_cancel(id, u->id, u->admin, clock_now_s(), &entry,
	                                             &outcome);
	if (st != DB_OK)
		req_db_error(r, st);
	else if (outcome == RES_WAITLIST_NOT_FOUND)
		req_error(r, ERR_NOT_FOUND, NULL, "no waitlist entry with id %lld", id);
	else if (outcome == RES_WAITLIST_FORBIDDEN)
		req_error(r, ERR_FORBIDDEN, NULL, "this waitlist entry belongs to someone else");
	else if (outcome == RES_WAITLIST_NOT_WAITING) {
		const char *status = json_string_value(json_object_get(entry, "status"));
		req_error(r, ERR_CONFLICT, json_pack("{s:s}", "status", status ? status : ""),
		          "waitlist entry %lld is %s, no longer waiting", id, status ? status : "");
	} else {
		log_info("waitlist entry %lld cancelled by user %lld", id, u->id);
		req_reply_empty(r, 204);
	}
	json_decref(entry);
}
