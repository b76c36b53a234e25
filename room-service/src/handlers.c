/* room-service endpoints: rooms with capacity, equipment and a time zone; reads for every
 * signed-in user, writes for admins.  Every change also publishes an event (repo.c writes it to
 * the outbox in the same statement). */
#include "handlers.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cache.h"
#include "equipment.h"
#include "log.h"
#include "repo.h"
#include "validate.h"

/* A list's cache key: the parameters (q ≤ 200 bytes, equipment ≤ 50 × 50 characters, the
 * cursor's name ≤ 100 characters) and their lengths. */
#define ROOM_LIST_KEY_MAX 8192

static const char *topic;

void room_handlers_init(const char *room_events_topic)
{
	topic = room_events_topic;
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

static void reply_outcome(struct req *r, enum room_outcome outcome, long long id, const char *name)
{
	switch (outcome) {
	case ROOM_NOT_FOUND:
		req_error(r, ERR_NOT_FOUND, NULL, "no room with id %lld", id);
		break;
	case ROOM_STALE:
		req_error(r, ERR_PRECONDITION_FAILED, NULL,
		          "room %lld has changed since you read it", id);
		break;
	case ROOM_DUPLICATE:
		req_error(r, ERR_CONFLICT,
		          json_pack("{s:s}", "name", "is already used by another room"),
		          "a room named \"%s\" already exists", name ? name : "");
		break;
	default:
		req_error(r, ERR_INTERNAL, NULL, NULL);
		break;
	}
}

void room_handle_create(struct req *r)
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
	enum db_status st = room_repo_create(&in, topic, &room, &outcome);
	room_cache_invalidate();
	if (st != DB_OK)
		req_db_error(r, st);
	else if (outcome != ROOM_DONE)
		reply_outcome(r, outcome, 0, in.name);
	else {
		log_info("room %lld created by user %lld",
		         (long long)json_integer_value(json_object_get(room, "id")),
		         req_user(r)->id);
		reply_room(r, 201, room);
		room = NULL;
	}
out:
	json_decref(room);
	json_decref(in.equipment);
	json_decref(in.policies);
	json_decref(details);
	json_decref(body);
}

void room_handle_update(struct req *r)
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
	enum db_status st = room_repo_update(id, &in, topic, &room, &outcome);
	room_cache_invalidate();
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
	json_decref(in.policies);
	json_decref(details);
	json_decref(body);
}

void room_handle_delete(struct req *r)
{
	long long id, if_version = 0;
	enum room_outcome outcome;
	if (!req_param_id(r, "id", &id) || !req_if_match(r, &if_version))
		return;
	enum db_status st = room_repo_delete(id, if_version, topic, &outcome);
	room_cache_invalidate();
	if (st != DB_OK)
		req_db_error(r, st);
	else if (outcome != ROOM_DONE)
		reply_outcome(r, outcome, id, NULL);
	else {
		log_info("room %lld deleted by user %lld", id, req_user(r)->id);
		req_reply_empty(r, 204);
	}
}

/* Answers a read from a cache entry (borrowed): 304 when the client's If-None-Match names its
 * ETag, else 200 with the body, ETag and, for a list with more pages, Link.  The client may
 * keep the answer but must ask again before using it (If-None-Match makes that cheap). */
static void reply_entry(struct req *r, const struct room_cache_entry *e)
{
	req_add_header(r, "Cache-Control", "private, no-cache");
	if (req_not_modified(r, e->etag))
		return;
	req_add_header(r, "ETag", e->etag);
	if (e->next)
		req_next_page(r, e->next);
	req_reply_json_text(r, 200, e->body, e->len);
}

/* Replies with an answer just read under stamp (room or list stolen; next stolen, may be NULL),
 * offering it to the cache under key.  etag NULL: a strong hash of the body and next. */
static void reply_read(struct req *r, const char *key, uint64_t stamp, json_t *answer,
                       const char *etag, json_t *next)
{
	char hashed[ROOM_CACHE_ETAG_MAX];
	char *text = req_json_text(answer);
	json_decref(answer);
	if (!text) {
		json_decref(next);
		req_error(r, ERR_INTERNAL, NULL, NULL);
		return;
	}
	size_t len = strlen(text);
	if (!etag) {
		if (!room_cache_etag(text, len, next, hashed)) {
			free(text);
			json_decref(next);
			req_error(r, ERR_INTERNAL, NULL, NULL);
			return;
		}
		etag = hashed;
	}
	const struct room_cache_entry *e = room_cache_put(key, stamp, text, len, etag, next);
	if (!e) {
		req_error(r, ERR_INTERNAL, NULL, NULL);
		return;
	}
	reply_entry(r, e);
	room_cache_release(e);
}

void room_handle_get(struct req *r)
{
	long long id;
	json_t *room = NULL;
	char key[32], etag[32];
	if (!req_param_id(r, "id", &id))
		return;
	snprintf(key, sizeof key, "room %lld", id);
	const struct room_cache_entry *hit = room_cache_get(key);
	if (hit) {
		reply_entry(r, hit);
		room_cache_release(hit);
		return;
	}
	uint64_t stamp = room_cache_stamp();
	enum db_status st = room_repo_get(id, &room);
	if (st != DB_OK) {
		req_db_error(r, st);
	} else if (!room) {
		req_error(r, ERR_NOT_FOUND, NULL, "no room with id %lld", id);
	} else {
		snprintf(etag, sizeof etag, "\"%lld\"",
		         (long long)json_integer_value(json_object_get(room, "version")));
		reply_read(r, key, stamp, room, etag, NULL);
	}
}

/* The cache key of a list request: every parameter that shapes the answer, normalised, each
 * string with its length so no two requests share a key.  false when it does not fit. */
static bool list_key(const struct room_filter *f, char *out, size_t size)
{
	char *eq = f->equipment ? json_dumps(f->equipment, JSON_COMPACT) : NULL;
	int n = snprintf(out, size, "rooms l%lld c%lld a%d q%zu:%s e%zu:%s k%zu:%s,%lld", f->limit,
	                 f->has_min_capacity ? f->min_capacity : 0,
	                 f->has_active ? (int)f->active : -1, f->q ? strlen(f->q) : 0,
	                 f->q ? f->q : "", eq ? strlen(eq) : 0, eq ? eq : "",
	                 f->after_name ? strlen(f->after_name) : 0,
	                 f->after_name ? f->after_name : "", f->after_id);
	bool ok = (!f->equipment || eq) && n > 0 && (size_t)n < size;
	free(eq);
	return ok;
}

void room_handle_list(struct req *r)
{
	struct room_filter f = {0};
	json_t *cursor = NULL, *rooms = NULL, *equipment = NULL, *next = NULL;
	char q[ROOM_Q_MAX + 1];
	int hq;

	if (!req_page(r, &f.limit, &cursor) ||
	    !req_query_int(r, "min_capacity", 1, 10000, &f.min_capacity, &f.has_min_capacity) ||
	    !req_query_bool(r, "active", &f.active, &f.has_active) ||
	    (hq = req_query(r, "q", q, sizeof q)) < 0 ||
	    /* Matching is case-insensitive (PostgreSQL lower() on both sides, repo.c). */
	    !req_query_equipment(r, "equipment", &equipment))
		goto out;
	if (hq == 1 && q[0])
		f.q = q;
	f.equipment = equipment;
	if (cursor) {
		json_t *n = json_array_get(cursor, 0), *id = json_array_get(cursor, 1);
		if (json_array_size(cursor) != 2 || !json_is_string(n) || !json_is_integer(id)) {
			req_bad_query(r, "cursor", "is invalid");
			goto out;
		}
		f.after_name = json_string_value(n);
		f.after_id = (long long)json_integer_value(id);
	}
	char key[ROOM_LIST_KEY_MAX];
	bool keyed = list_key(&f, key, sizeof key);
	const struct room_cache_entry *hit = keyed ? room_cache_get(key) : NULL;
	if (hit) {
		reply_entry(r, hit);
		room_cache_release(hit);
		goto out;
	}
	uint64_t stamp = keyed ? room_cache_stamp() : 1; /* odd: not kept */
	enum db_status st = room_repo_list(&f, &rooms, &next);
	if (st != DB_OK) {
		req_db_error(r, st);
		goto out;
	}
	reply_read(r, keyed ? key : "", stamp, rooms, NULL, next);
	rooms = NULL;
	next = NULL;
out:
	json_decref(next);
	json_decref(rooms);
	json_decref(equipment);
	json_decref(cursor);
}
