/* Fuzzes reservation-service's Kafka event decoder (res_event_decode: no database).  The first
 * byte picks the topic (room_events, user_events, another), the rest is the message value; an
 * input of one byte with the high bit set stands for a message without a value (a tombstone).
 * A decoded event must carry what the applier relies on; a refused one a reason and nothing
 * owned. */
#include "fuzz.h"

#include "../reservation-service/src/event_decode.h"
#include "roompolicy.h"
#include "timefmt.h"
#include "tz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct res_event ev;
	char why[128] = "";
	if (size < 1)
		return 0;
	enum res_event_source source = (enum res_event_source)(data[0] % 3);
	const char *value = size == 1 && (data[0] & 0x80) ? NULL : (const char *)data + 1;
	if (!res_event_decode(source, value, size - 1, &ev, why, sizeof why)) {
		FUZZ_CHECK(why[0] != '\0' && ev.doc == NULL && ev.kind == RES_EVENT_IGNORE);
		res_event_clear(&ev);
		return 0;
	}
	FUZZ_CHECK(json_is_object(ev.doc));
	FUZZ_CHECK(json_is_string(json_object_get(ev.doc, "event_type")));
	switch (ev.kind) {
	case RES_EVENT_IGNORE:
		break;
	case RES_EVENT_ROOM_UPSERT:
		FUZZ_CHECK(source == RES_EVENT_FROM_ROOMS);
		FUZZ_CHECK(ev.id >= 1 && ev.version >= 1 && ev.name != NULL);
		FUZZ_CHECK(ev.time_zone != NULL && tz_valid(ev.time_zone));
		/* Policies only from an object the decoder saw, within room-service's bounds. */
		FUZZ_CHECK(!ev.policies || (ev.policies_known && json_is_object(ev.policies)));
		if (ev.policies) {
			json_t *known = json_object(), *rules = NULL, *details = json_object();
			const char *key;
			json_t *v;
			json_object_foreach((json_t *)ev.policies, key, v) {
				if (room_policy_known(key))
					json_object_set(known, key, v);
			}
			FUZZ_CHECK(room_policy_normalise(known, &rules, details));
			json_decref(rules);
			json_decref(known);
			json_decref(details);
		}
		break;
	case RES_EVENT_ROOM_DELETE:
		FUZZ_CHECK(source == RES_EVENT_FROM_ROOMS);
		FUZZ_CHECK(ev.id >= 1 && ev.version >= 1);
		break;
	case RES_EVENT_USER_DELETE:
	case RES_EVENT_USER_REVOKE: {
		struct timefmt_time t;
		FUZZ_CHECK(source == RES_EVENT_FROM_USERS && ev.id >= 1 && ev.type != NULL);
		if (ev.occurred_at)
			FUZZ_CHECK(timefmt_parse_rfc3339(ev.occurred_at, &t) && t.has_offset);
		break;
	}
	default:
		FUZZ_CHECK(ev.kind <= RES_EVENT_USER_REVOKE);
	}
	res_event_clear(&ev);
	FUZZ_CHECK(ev.doc == NULL);
	return 0;
}
