/* events: what reservation-service does with room_events and user_events.  Decoding (JSON and
 * field checks, no database) is separate from applying, so that it can be tested and fuzzed
 * alone. */
#ifndef RESERVATION_EVENTS_H
#define RESERVATION_EVENTS_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "kafka.h"

struct events_topics {
	const char *rooms, *users, *reservations;
};

/* Where a message came from. */
enum events_source {
	EVENTS_FROM_ROOMS, /* room_events */
	EVENTS_FROM_USERS, /* user_events */
	EVENTS_FROM_OTHER, /* any other topic: nothing to do once the message is a JSON event */
};

/* What a decoded message asks of this service. */
enum events_kind {
	EVENTS_IGNORE,      /* nothing: another event type (a newer producer's, or not ours) */
	EVENTS_ROOM_UPSERT, /* room_created, room_updated */
	EVENTS_ROOM_DELETE, /* room_deleted */
	EVENTS_USER_DELETE, /* user_deleted */
};

/* A decoded event.  The strings are borrowed from doc, which the event owns: release it with
 * events_event_clear(). */
struct events_event {
	enum events_kind kind;
	long long id;            /* room id (room events) or user id (user_deleted), ≥ 1 */
	long long version;       /* room events, ≥ 1 */
	const char *name;        /* ROOM_UPSERT */
	long long capacity;      /* ROOM_UPSERT */
	const char *time_zone;   /* ROOM_UPSERT: a valid IANA zone ("UTC" when absent) */
	bool active;             /* ROOM_UPSERT */
	const char *occurred_at; /* USER_DELETE: RFC 3339 with offset, or NULL when absent */
	json_t *doc;             /* owned: the parsed message */
};

/* Parses and checks value[0..len) (not NUL-terminated; value may be NULL) from source into
 * *ev.  Returns false, with the reason in why, for a message that can never be applied (the
 * consumer sends it to the DLQ); *ev then owns nothing.  Needs no database; thread-safe. */
bool events_decode(enum events_source source, const char *value, size_t len,
                   struct events_event *ev, char *why, size_t whylen);

/* Releases what ev owns (NULL-safe; ev is zeroed). */
void events_event_clear(struct events_event *ev);

/* The consumer handler (see kafka_handler_fn); arg is a struct events_topics.  Decodes, then
 * applies through the repo: bad messages are KAFKA_POISON, unknown event types KAFKA_APPLIED,
 * database failures KAFKA_RETRY (KAFKA_POISON for data the schema refuses). */
enum kafka_handled events_handle(const char *topic, const char *key, size_t keylen,
                                 const char *value, size_t len, void *arg, char *why,
                                 size_t whylen);

#endif
