/* room-service endpoints: rooms with capacity, equipment and a time zone; reads for every
 * signed-in user, writes for admins.  Every change also publishes an event (repo.c writes it to
 * the outbox in the same statement). */
#include "handlers.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "countof.h"
#include "httpparse.h"
#include "jsonx.h"
#include "log.h"
#include "repo.h"
#include "tz.h"

#define EQUIPMENT_MAX_ITEMS 50
#define EQUIPMENT_MAX_LEN 50

static const char *topic;

void handlers_init(const char *room_events_topic)
{
	topic = room_events_topic;
}

/* Appends piece[0..len) trimmed to out unless empty or already there (case-insensitive). */
static const char *equipment_add(json_t *out, const char *piece, size_t len, bool from_array)
{
	while (len && isspace((unsigned char)*piece)) {
		piece++;
		len--;
	}
	while (len && isspace((unsigned char)piece[len - 1]))
		len--;
	if (len == 0)
		return from_array ? "items must not be empty" : NULL;
	char item[EQUIPMENT_MAX_LEN * 4 + 1];
	if (len > sizeof item - 1)
		return "items must be 1 to 50 characters long";
	memcpy(item, piece, len);
	item[len] = '\0';
	if (jsonx_utf8_len(item) > EQUIPMENT_MAX_LEN)
		return "items must be 1 to 50 characters long";
	size_t i;
	json_t *v;
	json_array_foreach(out, i, v) {
		if (strcasecmp(json_string_value(v), item) == 0)
			return NULL;
	}
	if (json_array_size(out) == EQUIPMENT_MAX_ITEMS)
		return "at most 50 items";
	json_array_append_new(out, json_string(item));
	return NULL;
}

json_t *room_equipment_normalise(const json_t *value, const char **why)
{
	json_t *out = json_array();
	*why = NULL;
	if (json_is_string(value)) {
		const char *s = json_string_value(value);
		if (strlen(s) != json_string_length(value))
			*why = "must not contain NUL characters";
		const char *item;
		size_t len;
		while (!*why && httpparse_list_next(&s, &item, &len))
			*why = equipment_add(out, item, len, false);
	} else if (json_is_array(value)) {
		size_t i;
		json_t *v;
		json_array_foreach(value, i, v) {
			if (!json_is_string(v) || strlen(json_string_value(v)) != json_string_length(v)) {
				*why = "items must be strings";
				break;
			}
			const char *s = json_string_value(v);
			if ((*why = equipment_add(out, s, strlen(s), true)) != NULL)
				break;
		}
	} else {
		*why = "must be an array of strings or a comma-separated string";
	}
	if (*why) {
		json_decref(out);
		return NULL;
	}
	return out;
}

void room_validate(const json_t *body, bool create, struct room_input *in, json_t *details)
{
	static const struct jsonx_field fields[] = {
		{"name", JSONX_STRING, false},
		{"capacity", JSONX_INT, false},
		{"equipment", JSONX_STRING | JSONX_ARRAY | JSONX_NULL, false},
		{"building", JSONX_STRING | JSONX_NULL, false},
		{"floor", JSONX_INT | JSONX_NULL, false},
		{"description", JSONX_STRING | JSONX_NULL, false},
		{"time_zone", JSONX_STRING, false},
		{"active", JSONX_BOOL, false},
	};
	bool present = false;
	jsonx_check(body, fields, countof(fields), details);
	if (json_object_get(details, "name") == NULL &&
	    jsonx_string_len(body, "name", 1, 100, &in->name, details) && in->name) {
		/* Surrounding blanks would make "A" and "A " two rooms. */
		if (isspace((unsigned char)in->name[0]) ||
		    isspace((unsigned char)in->name[strlen(in->name) - 1]))
			json_object_set_new(details, "name",
			                    json_string("must not start or end with white space"));
	}
	if (create && !json_object_get(body, "name") && !json_object_get(details, "name"))
		json_object_set_new(details, "name", json_string("is required"));
	if (!json_object_get(details, "capacity") &&
	    jsonx_int_range(body, "capacity", 1, 10000, &in->capacity, &present, details))
		in->has_capacity = present;
	if (create && !json_object_get(body, "capacity") && !json_object_get(details, "capacity"))
		json_object_set_new(details, "capacity", json_string("is required"));

	json_t *eq = json_object_get(body, "equipment");
	if (eq && !json_object_get(details, "equipment")) {
		const char *why = NULL;
		in->equipment = json_is_null(eq) ? json_array() : room_equipment_normalise(eq, &why);
		if (!in->equipment)
			json_object_set_new(details, "equipment", json_string(why));
	}
	if (json_object_get(body, "building") && !json_object_get(details, "building")) {
		in->has_building = true;
		jsonx_string_len(body, "building", 0, 100, &in->building, details);
	}
	json_t *floor = json_object_get(body, "floor");
	if (floor && !json_object_get(details, "floor")) {
		in->has_floor = true;
		in->floor_null = json_is_null(floor);
		if (!in->floor_null)
			jsonx_int_range(body, "floor", -100, 500, &in->floor, &present, details);
	}
	if (json_object_get(body, "description") && !json_object_get(details, "description")) {
		in->has_description = true;
		jsonx_string_len(body, "description", 0, 1000, &in->description, details);
	}
	if (!json_object_get(details, "time_zone") &&
	    jsonx_string_len(body, "time_zone", 1, TZ_NAME_MAX, &in->time_zone, details) &&
	    in->time_zone && !tz_valid(in->time_zone))
		json_object_set_new(details, "time_zone",
		                    json_string("must be an IANA time zone such as Europe/Berlin"));
	json_t *active = json_object_get(body, "active");
	if (json_is_boolean(active)) {
		in->has_active = true;
		in->active = json_is_true(active);
	}
}

static void reply_room(struct req *r, int status, json_t *room)
{
	char etag[32];
	snprintf(etag, sizeof etag, "\"%lld\"",
	         (long long)json_integer_value(json_object_get(room, "version")));
	req_add_header(r, "ETag", etag);
	if (status == 201) {
		char location[48];
		snprintf(location, sizeof location, "/rooms/%lld",
		         (long long)json_integer_value(json_object_get(room, "id")));
		req_add_header(r, "Location", location);
	}
	req_reply_json(r, status, room);
}

static void reply_outcome(struct req *r, enum room_outcome outcome, long long id,
                          const char *name)
{
	switch (outcome) {
	case ROOM_NOT_FOUND:
		req_error(r, ERR_NOT_FOUND, NULL, "no room with id %lld", id);
		break;
	case ROOM_STALE:
		req_error(r, ERR_PRECONDITION_FAILED, NULL, "room %lld has changed since you read it",
		          id);
		break;
	case ROOM_DUPLICATE:
		req_error(r, ERR_CONFLICT, json_pack("{s:s}", "name", "is already used by another room"),
		          "a room named \"%s\" already exists", name ? name : "");
		break;
	default:
		req_error(r, ERR_INTERNAL, NULL, NULL);
		break;
	}
}

void h_room_create(struct req *r)
{
	struct room_input in = {0};
	json_t *body = req_body_object(r), *details = json_object(), *room = NULL;
	enum room_outcome outcome;

	if (!body)
		goto out;
	room_validate(body, true, &in, details);
	if (json_object_size(details)) {
		req_invalid(r, details);
		details = NULL;
		goto out;
	}
	enum db_status st = repo_room_create(&in, topic, &room, &outcome);
	if (st != DB_OK)
		req_db_error(r, st);
	else if (outcome != ROOM_DONE)
		reply_outcome(r, outcome, 0, in.name);
	else {
		log_info("room %lld created by user %lld",
		         (long long)json_integer_value(json_object_get(room, "id")), req_user(r)->id);
		reply_room(r, 201, room);
		room = NULL;
	}
out:
	json_decref(room);
	json_decref(in.equipment);
	json_decref(details);
	json_decref(body);
}

void h_room_update(struct req *r)
{
	struct room_input in = {0};
	json_t *body = NULL, *details = json_object(), *room = NULL;
	enum room_outcome outcome;
	long long id;

	if (!req_param_id(r, "id", &id) || !req_if_match(r, &in.if_version) ||
	    !(body = req_body_object(r)))
		goto out;
	room_validate(body, false, &in, details);
	if (json_object_size(details)) {
		req_invalid(r, details);
		details = NULL;
		goto out;
	}
	enum db_status st = repo_room_update(id, &in, topic, &room, &outcome);
	if (st != DB_OK)
		req_db_error(r, st);
	else if (outcome != ROOM_DONE)
		reply_outcome(r, outcome, id, in.name);
	else {
		log_info("room %lld updated by user %lld", id, req_user(r)->id);
		reply_room(r, 200, room);
		room = NULL;
	}
out:
	json_decref(room);
	json_decref(in.equipment);
	json_decref(details);
	json_decref(body);
}

void h_room_delete(struct req *r)
{
	long long id, if_version = 0;
	enum room_outcome outcome;
	if (!req_param_id(r, "id", &id) || !req_if_match(r, &if_version))
		return;
	enum db_status st = repo_room_delete(id, if_version, topic, &outcome);
	if (st != DB_OK)
		req_db_error(r, st);
	else if (outcome != ROOM_DONE)
		reply_outcome(r, outcome, id, NULL);
	else {
		log_info("room %lld deleted by user %lld", id, req_user(r)->id);
		req_reply_empty(r, 204);
	}
}

void h_room_get(struct req *r)
{
	long long id;
	json_t *room = NULL;
	if (!req_param_id(r, "id", &id))
		return;
	enum db_status st = repo_room_get(id, &room);
	if (st != DB_OK)
		req_db_error(r, st);
	else if (!room)
		req_error(r, ERR_NOT_FOUND, NULL, "no room with id %lld", id);
	else
		reply_room(r, 200, room);
}

void h_room_list(struct req *r)
{
	struct room_filter f = {0};
	json_t *cursor = NULL, *rooms = NULL, *equipment = NULL, *next = NULL;
	char q[201], eq[2048];
	int hq, he;

	if (!req_page(r, &f.limit, &cursor) ||
	    !req_query_int(r, "min_capacity", 1, 10000, &f.min_capacity, &f.has_min_capacity) ||
	    !req_query_bool(r, "active", &f.active, &f.has_active) ||
	    (hq = req_query(r, "q", q, sizeof q)) < 0 ||
	    (he = req_query(r, "equipment", eq, sizeof eq)) < 0)
		goto out;
	if (hq == 1 && q[0])
		f.q = q;
	if (he == 1 && eq[0]) {
		const char *why = NULL;
		json_t *s = json_string(eq);
		equipment = s ? room_equipment_normalise(s, &why) : NULL;
		json_decref(s);
		if (!equipment) {
			req_error(r, ERR_BAD_REQUEST, json_pack("{s:s}", "equipment", why ? why : "invalid"),
			          "query parameter equipment %s", why ? why : "is invalid");
			goto out;
		}
		/* Matching is case-insensitive (PostgreSQL lower() on both sides, repo.c). */
		f.equipment = equipment;
	}
	if (cursor) {
		json_t *n = json_array_get(cursor, 0), *id = json_array_get(cursor, 1);
		if (json_array_size(cursor) != 2 || !json_is_string(n) || !json_is_integer(id)) {
			req_error(r, ERR_BAD_REQUEST, json_pack("{s:s}", "cursor", "is invalid"),
			          "query parameter cursor is invalid");
			goto out;
		}
		f.after_name = json_string_value(n);
		f.after_id = (long long)json_integer_value(id);
	}
	enum db_status st = repo_room_list(&f, &rooms, &next);
	if (st != DB_OK) {
		req_db_error(r, st);
		goto out;
	}
	if (next)
		req_next_page(r, next);
	req_reply_json(r, 200, rooms);
	rooms = NULL;
out:
	json_decref(next);
	json_decref(rooms);
	json_decref(equipment);
	json_decref(cursor);
}
