/* Decoding of the events reservation-service consumes (see event_decode.h).  A message that
 * cannot be understood is refused with a reason (the consumer sends it to the DLQ); an event
 * type this service does not know is RES_EVENT_IGNORE, as a newer producer may send one. */
#include "event_decode.h"

#include <stdio.h>
#include <string.h>

#include "countof.h"
#include "jsonx.h"
#include "revoke.h"
#include "roompolicy.h"
#include "timefmt.h"
#include "tz.h"

/* The room's details a search needs: equipment (an array of strings), building (a string or
 * null) and floor (an integer or null).  All three present: details_known; none of them: an
 * older producer's event, details unknown; anything else is refused. */
static bool decode_room_details(const json_t *room, struct res_event *ev, char *why, size_t whylen)
{
	json_t *equipment = json_object_get(room, "equipment");
	json_t *building = json_object_get(room, "building");
	json_t *floor = json_object_get(room, "floor");
	if (!equipment && !building && !floor)
		return true;
	bool ok = json_is_array(equipment) &&
	          (json_is_string(building) || json_is_null(building)) &&
	          (json_is_integer(floor) || json_is_null(floor));
	size_t i;
	json_t *item;
	json_array_foreach(equipment, i, item)
		ok = ok && json_is_string(item);
	if (!ok) {
		snprintf(why, whylen, "room equipment, building or floor invalid");
		return false;
	}
	ev->details_known = true;
	ev->equipment = equipment;
	ev->building = json_string_value(building);
	ev->has_floor = json_is_integer(floor);
	ev->floor = ev->has_floor ? (long long)json_integer_value(floor) : 0;
	return true;
}

/* The room's policies: an object or null when present.  The SQL that applies them casts them,
 * so the rules are checked as room-service checks a body (common/src/roompolicy.c: the same
 * kinds and bounds): a bad event goes to the DLQ rather than failing every booking of the room.
 * A member this release does not know (a newer room-service's) is left out of the check and
 * ignored by the SQL. */
static bool decode_room_policies(const json_t *room, struct res_event *ev, char *why, size_t whylen)
{
	json_t *policies = json_object_get(room, "policies");
	json_t *known = NULL, *rules = NULL, *details = NULL;
	const char *key;
	json_t *v;
	bool ok = !policies || json_is_null(policies) || json_is_object(policies);
	if (ok && json_is_object(policies)) {
		ok = (known = json_object()) && (details = json_object());
		json_object_foreach(policies, key, v) {
			if (ok && room_policy_known(key))
				ok = json_object_set(known, key, v) == 0;
		}
		ok = ok && room_policy_normalise(known, &rules, details);
	}
	if (!ok) {
		const char *first = NULL;
		json_t *reason = NULL;
		json_object_foreach(details, first, reason) {
			break;
		}
		snprintf(why, whylen, "room policies invalid%s%s%s%s", first ? ": " : "",
		         first ? first : "", first ? " " : "",
		         first ? json_string_value(reason) : "");
	} else {
		ev->policies_known = policies != NULL;
		ev->policies = json_is_object(policies) ? policies : NULL;
	}
	json_decref(rules);
	json_decref(known);
	json_decref(details);
	return ok;
}

/* Fills the fields of a room event (type is one of the three room_* types). */
static bool decode_room(const json_t *doc, const char *type, struct res_event *ev, char *why,
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
		ev->kind = RES_EVENT_ROOM_DELETE;
		ev->id = (long long)json_integer_value(id);
		return true;
	}
	json_t *room = json_object_get(doc, "room");
	json_t *id = json_object_get(room, "id");
	const char *name = json_string_value(json_object_get(room, "name"));
	const char *tz = json_string_value(json_object_get(room, "time_zone"));
	json_t *capacity = json_object_get(room, "capacity");
	json_t *active = json_object_get(room, "active");
	if (!json_is_integer(id) || json_integer_value(id) < 1 || !name ||
	    !json_is_integer(capacity) || !json_is_boolean(active)) {
		snprintf(why, whylen, "room fields missing");
		return false;
	}
	if (!tz)
		tz = "UTC";
	if (!tz_valid(tz)) {
		snprintf(why, whylen, "unknown time zone");
		return false;
	}
	ev->kind = RES_EVENT_ROOM_UPSERT;
	ev->id = (long long)json_integer_value(id);
	ev->name = name;
	ev->capacity = (long long)json_integer_value(capacity);
	ev->time_zone = tz;
	ev->active = json_is_true(active);
	return decode_room_policies(room, ev, why, whylen) &&
	       decode_room_details(room, ev, why, whylen);
}

/* user_email_changed: user_id ≥ 1, email (1..254 bytes), occurred_at (RFC 3339 with an offset)
 * when present. */
static bool decode_user_email(const json_t *doc, const char *type, struct res_event *ev, char *why,
                              size_t whylen)
{
	const json_t *id = json_object_get(doc, "user_id"),
		     *at = json_object_get(doc, "occurred_at");
	const char *email = json_string_value(json_object_get(doc, "email"));
	struct timefmt_time t;
	if (!json_is_integer(id) || json_integer_value(id) < 1) {
		snprintf(why, whylen, "%s: user_id must be a positive integer", type);
		return false;
	}
	if (!email || !email[0] || strlen(email) > 254) {
		snprintf(why, whylen, "%s: email must be a string of 1 to 254 bytes", type);
		return false;
	}
	if (at && (!json_is_string(at) || !timefmt_parse_rfc3339(json_string_value(at), &t) ||
	           !t.has_offset)) {
		snprintf(why, whylen, "%s: occurred_at must be RFC 3339 with an offset", type);
		return false;
	}
	ev->kind = RES_EVENT_USER_EMAIL;
	ev->id = (long long)json_integer_value(id);
	ev->email = email;
	ev->occurred_at = json_string_value(at);
	ev->type = type;
	return true;
}

/* Fills the fields of a user event (revoke.h reads them): user_deleted cancels the user's future
 * reservations and voids their tokens, user_disabled and user_role_changed void the tokens. */
static bool decode_user(const json_t *doc, const char *type, struct res_event *ev, char *why,
                        size_t whylen)
{
	struct revoke_event rev;
	if (strcmp(type, "user_email_changed") == 0)
		return decode_user_email(doc, type, ev, why, whylen);
	if (!revoke_event_decode(doc, &rev, why, whylen))
		return false;
	if (!revoke_event_voids(rev.kind))
		return true; /* RES_EVENT_IGNORE */
	ev->kind = rev.kind == REVOKE_EVENT_DELETED ? RES_EVENT_USER_DELETE : RES_EVENT_USER_REVOKE;
	ev->id = rev.user_id;
	ev->occurred_at = rev.occurred_at;
	ev->type = type;
	return true;
}

bool res_event_decode(enum res_event_source source, const char *value, size_t len,
                      struct res_event *ev, char *why, size_t whylen)
{
	memset(ev, 0, sizeof *ev);
	ev->kind = RES_EVENT_IGNORE;
	ev->doc = value ? jsonx_loadb(value, len, JSON_REJECT_DUPLICATES, NULL) : NULL;
	const char *type = json_string_value(json_object_get(ev->doc, "event_type"));
	bool ok;
	if (!json_is_object(ev->doc) || !type) {
		snprintf(why, whylen, "not a JSON event");
		ok = false;
	} else if (source == RES_EVENT_FROM_ROOMS) {
		if (strcmp(type, "room_created") == 0 || strcmp(type, "room_updated") == 0 ||
		    strcmp(type, "room_deleted") == 0)
			ok = decode_room(ev->doc, type, ev, why, whylen);
		else
			ok = true; /* a newer producer's event type: not ours to judge */
	} else if (source == RES_EVENT_FROM_USERS) {
		ok = decode_user(ev->doc, type, ev, why, whylen);
	} else {
		ok = true;
	}
	if (!ok)
		res_event_clear(ev);
	return ok;
}

void res_event_clear(struct res_event *ev)
{
	json_decref(ev->doc);
	memset(ev, 0, sizeof *ev);
	ev->kind = RES_EVENT_IGNORE;
}
