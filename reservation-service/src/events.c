/* Applies room and user events to the local copy of rooms and to reservations.  Every change is
 * idempotent (versions for rooms; "cancel future confirmed" for deletions), so a re-delivered
 * event changes nothing.  A message that cannot be understood goes to the DLQ; a database that
 * is away makes the consumer retry the same message. */
#include "events.h"

#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "log.h"
#include "repo.h"
#include "timefmt.h"
#include "tz.h"

static enum kafka_handled events_status(enum db_status st, char *why, size_t whylen)
{
	if (st == DB_OK)
		return KAFKA_APPLIED;
	snprintf(why, whylen, "%s", db_status_str(st));
	/* Data the schema refuses will never apply; everything else may once the database is back. */
	return st == DB_CHECK_VIOLATION ? KAFKA_POISON : KAFKA_RETRY;
}

static enum kafka_handled room_event(const json_t *ev, const char *type, const char *topic,
                                     char *why, size_t whylen)
{
	json_t *version = json_object_get(ev, "version");
	if (!json_is_integer(version) || json_integer_value(version) < 1) {
		snprintf(why, whylen, "version missing");
		return KAFKA_POISON;
	}
	long long v = (long long)json_integer_value(version);
	if (strcmp(type, "room_deleted") == 0) {
		json_t *id = json_object_get(ev, "room_id");
		if (!json_is_integer(id) || json_integer_value(id) < 1) {
			snprintf(why, whylen, "room_id missing");
			return KAFKA_POISON;
		}
		long cancelled = 0;
		enum db_status st = repo_room_delete((long long)json_integer_value(id), v, topic,
		                                     &cancelled);
		if (st == DB_OK)
			log_info("room %lld deleted: %ld future reservation(s) cancelled",
			         (long long)json_integer_value(id), cancelled);
		return events_status(st, why, whylen);
	}
	json_t *room = json_object_get(ev, "room");
	json_t *id = json_object_get(room, "id");
	const char *name = json_string_value(json_object_get(room, "name"));
	const char *tz = json_string_value(json_object_get(room, "time_zone"));
	json_t *capacity = json_object_get(room, "capacity");
	json_t *active = json_object_get(room, "active");
	if (!json_is_integer(id) || json_integer_value(id) < 1 || !name || !json_is_integer(capacity) ||
	    !json_is_boolean(active)) {
		snprintf(why, whylen, "room fields missing");
		return KAFKA_POISON;
	}
	if (!tz)
		tz = "UTC";
	if (!tz_valid(tz)) {
		snprintf(why, whylen, "unknown time zone");
		return KAFKA_POISON;
	}
	return events_status(repo_room_upsert((long long)json_integer_value(id), name,
	                                      (long long)json_integer_value(capacity), tz,
	                                      json_is_true(active), v),
	                     why, whylen);
}

static enum kafka_handled user_event(const json_t *ev, const char *type, const char *topic,
                                     char *why, size_t whylen)
{
	if (strcmp(type, "user_deleted") != 0)
		return KAFKA_APPLIED; /* nothing to do with other user events */
	json_t *id = json_object_get(ev, "user_id");
	if (!json_is_integer(id) || json_integer_value(id) < 1) {
		snprintf(why, whylen, "user_id missing");
		return KAFKA_POISON;
	}
	/* Only bookings made before the deletion: the event may come again much later. */
	const char *occurred = json_string_value(json_object_get(ev, "occurred_at"));
	struct timefmt_time t;
	if (occurred && (!timefmt_parse_rfc3339(occurred, &t) || !t.has_offset)) {
		snprintf(why, whylen, "occurred_at is not an RFC 3339 time");
		return KAFKA_POISON;
	}
	long cancelled = 0;
	enum db_status st = repo_user_deleted((long long)json_integer_value(id), occurred, topic,
	                                      &cancelled);
	if (st == DB_OK)
		log_info("user %lld deleted: %ld future reservation(s) cancelled",
		         (long long)json_integer_value(id), cancelled);
	return events_status(st, why, whylen);
}

enum kafka_handled events_handle(const char *topic, const char *key, size_t keylen,
                                 const char *value, size_t len, void *arg, char *why,
                                 size_t whylen)
{
	const struct events_topics *t = arg;
	(void)key;
	(void)keylen;
	json_t *ev = value ? json_loadb(value, len, JSON_REJECT_DUPLICATES, NULL) : NULL;
	const char *type = json_string_value(json_object_get(ev, "event_type"));
	enum kafka_handled h;
	if (!json_is_object(ev) || !type) {
		snprintf(why, whylen, "not a JSON event");
		h = KAFKA_POISON;
	} else if (strcmp(topic, t->rooms) == 0) {
		if (strcmp(type, "room_created") == 0 || strcmp(type, "room_updated") == 0 ||
		    strcmp(type, "room_deleted") == 0)
			h = room_event(ev, type, t->reservations, why, whylen);
		else
			h = KAFKA_APPLIED; /* a newer producer's event type: not ours to judge */
	} else if (strcmp(topic, t->users) == 0) {
		h = user_event(ev, type, t->reservations, why, whylen);
	} else {
		h = KAFKA_APPLIED;
	}
	json_decref(ev);
	return h;
}
