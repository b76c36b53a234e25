/* Applies room and user events to the local copy of rooms and to reservations.  Every change is
 * idempotent (versions for rooms; "cancel future confirmed" for deletions), so a re-delivered
 * event changes nothing.  A message that cannot be understood goes to the DLQ; a database that
 * is away makes the consumer retry the same message.
 *
 * events_decode() turns a message into a struct events_event without touching the database;
 * events_handle() applies it. */
#include "events.h"

#include <stdio.h>
#include <string.h>

#include "jsonx.h"
#include "log.h"
#include "repo.h"
#include "timefmt.h"
#include "tz.h"

/* Fills the fields of a room event (type is one of the three room_* types). */
static bool decode_room(const json_t *doc, const char *type, struct events_event *ev, char *why,
                        size_t whylen)
{
	json_t *version = json_object_get(doc, "version");
	if (!json_is_integer(version) || json_integer_value(version) < 1) {
		snprintf(why, whylen, "version missing");
		return false;
	}
	ev->version = (long long)json_integer_value(version);
	if (strcmp(type, "room_deleted") == 0) {
		json_t *id = json_object_get(doc, "room_id");
		if (!json_is_integer(id) || json_integer_value(id) < 1) {
			snprintf(why, whylen, "room_id missing");
			return false;
		}
		ev->kind = EVENTS_ROOM_DELETE;
		ev->id = (long long)json_integer_value(id);
		return true;
	}
	json_t *room = json_object_get(doc, "room");
	json_t *id = json_object_get(room, "id");
	const char *name = json_string_value(json_object_get(room, "name"));
	const char *tz = json_string_value(json_object_get(room, "time_zone"));
	json_t *capacity = json_object_get(room, "capacity");
	json_t *active = json_object_get(room, "active");
	if (!json_is_integer(id) || json_integer_value(id) < 1 || !name || !json_is_integer(capacity) ||
	    !json_is_boolean(active)) {
		snprintf(why, whylen, "room fields missing");
		return false;
	}
	if (!tz)
		tz = "UTC";
	if (!tz_valid(tz)) {
		snprintf(why, whylen, "unknown time zone");
		return false;
	}
	ev->kind = EVENTS_ROOM_UPSERT;
	ev->id = (long long)json_integer_value(id);
	ev->name = name;
	ev->capacity = (long long)json_integer_value(capacity);
	ev->time_zone = tz;
	ev->active = json_is_true(active);
	return true;
}

/* Fills the fields of a user event; only user_deleted concerns reservations. */
static bool decode_user(const json_t *doc, const char *type, struct events_event *ev, char *why,
                        size_t whylen)
{
	if (strcmp(type, "user_deleted") != 0)
		return true; /* EVENTS_IGNORE */
	json_t *id = json_object_get(doc, "user_id");
	if (!json_is_integer(id) || json_integer_value(id) < 1) {
		snprintf(why, whylen, "user_id missing");
		return false;
	}
	/* Only bookings made before the deletion: the event may come again much later. */
	const char *occurred = json_string_value(json_object_get(doc, "occurred_at"));
	struct timefmt_time t;
	if (occurred && (!timefmt_parse_rfc3339(occurred, &t) || !t.has_offset)) {
		snprintf(why, whylen, "occurred_at is not an RFC 3339 time");
		return false;
	}
	ev->kind = EVENTS_USER_DELETE;
	ev->id = (long long)json_integer_value(id);
	ev->occurred_at = occurred;
	return true;
}

bool events_decode(enum events_source source, const char *value, size_t len,
                   struct events_event *ev, char *why, size_t whylen)
{
	memset(ev, 0, sizeof *ev);
	ev->kind = EVENTS_IGNORE;
	ev->doc = value ? jsonx_loadb(value, len, JSON_REJECT_DUPLICATES, NULL) : NULL;
	const char *type = json_string_value(json_object_get(ev->doc, "event_type"));
	bool ok;
	if (!json_is_object(ev->doc) || !type) {
		snprintf(why, whylen, "not a JSON event");
		ok = false;
	} else if (source == EVENTS_FROM_ROOMS) {
		if (strcmp(type, "room_created") == 0 || strcmp(type, "room_updated") == 0 ||
		    strcmp(type, "room_deleted") == 0)
			ok = decode_room(ev->doc, type, ev, why, whylen);
		else
			ok = true; /* a newer producer's event type: not ours to judge */
	} else if (source == EVENTS_FROM_USERS) {
		ok = decode_user(ev->doc, type, ev, why, whylen);
	} else {
		ok = true;
	}
	if (!ok)
		events_event_clear(ev);
	return ok;
}

void events_event_clear(struct events_event *ev)
{
	json_decref(ev->doc);
	memset(ev, 0, sizeof *ev);
	ev->kind = EVENTS_IGNORE;
}

static enum kafka_handled events_status(enum db_status st, char *why, size_t whylen)
{
	if (st == DB_OK)
		return KAFKA_APPLIED;
	snprintf(why, whylen, "%s", db_status_str(st));
	/* Data the schema refuses will never apply; everything else may once the database is back. */
	return st == DB_CHECK_VIOLATION ? KAFKA_POISON : KAFKA_RETRY;
}

/* Applies a decoded event; topic is where the changes' own events go. */
static enum kafka_handled events_apply(const struct events_event *ev, const char *topic,
                                       char *why, size_t whylen)
{
	long cancelled = 0;
	enum db_status st = DB_OK;
	switch (ev->kind) {
	case EVENTS_IGNORE:
		return KAFKA_APPLIED;
	case EVENTS_ROOM_UPSERT:
		st = repo_room_upsert(ev->id, ev->name, ev->capacity, ev->time_zone, ev->active,
		                      ev->version);
		break;
	case EVENTS_ROOM_DELETE:
		st = repo_room_delete(ev->id, ev->version, topic, &cancelled);
		if (st == DB_OK)
			log_info("room %lld deleted: %ld future reservation(s) cancelled", ev->id,
			         cancelled);
		break;
	case EVENTS_USER_DELETE:
		st = repo_user_deleted(ev->id, ev->occurred_at, topic, &cancelled);
		if (st == DB_OK)
			log_info("user %lld deleted: %ld future reservation(s) cancelled", ev->id,
			         cancelled);
		break;
	}
	return events_status(st, why, whylen);
}

enum kafka_handled events_handle(const char *topic, const char *key, size_t keylen,
                                 const char *value, size_t len, void *arg, char *why,
                                 size_t whylen)
{
	const struct events_topics *t = arg;
	struct events_event ev;
	(void)key;
	(void)keylen;
	enum events_source source = strcmp(topic, t->rooms) == 0   ? EVENTS_FROM_ROOMS
	                            : strcmp(topic, t->users) == 0 ? EVENTS_FROM_USERS
	                                                           : EVENTS_FROM_OTHER;
	enum kafka_handled h = events_decode(source, value, len, &ev, why, whylen)
	                           ? events_apply(&ev, t->reservations, why, whylen)
	                           : KAFKA_POISON;
	events_event_clear(&ev);
	return h;
}
