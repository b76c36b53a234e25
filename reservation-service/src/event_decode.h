/* event_decode: turns a room_events or user_events message into what it asks of
 * reservation-service, checking every field the applier relies on.  Pure: no database, no
 * librdkafka, so that it can be unit-tested and fuzzed alone.  Thread-safe. */
#ifndef RES_EVENT_DECODE_H
#define RES_EVENT_DECODE_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

/* Where a message came from. */
enum res_event_source {
	RES_EVENT_FROM_ROOMS, /* room_events */
	RES_EVENT_FROM_USERS, /* user_events */
	RES_EVENT_FROM_OTHER, /* any other topic: nothing to do once the message is a JSON event */
};

/* What a decoded message asks of this service. */
enum res_event_kind {
	RES_EVENT_IGNORE,      /* nothing: another event type (a newer producer's, or not ours) */
	RES_EVENT_ROOM_UPSERT, /* room_created, room_updated */
	RES_EVENT_ROOM_DELETE, /* room_deleted */
	RES_EVENT_USER_DELETE, /* user_deleted */
	RES_EVENT_USER_REVOKE, /* user_disabled, user_role_changed: the user's tokens are void */
	RES_EVENT_USER_EMAIL,  /* user_email_changed: the user's address (calendar feeds) */
};

/* A decoded event.  The strings are borrowed from doc, which the event owns: release it with
 * res_event_clear(). */
struct res_event {
	enum res_event_kind kind;
	long long id;          /* room id (room events) or user id (user events), ≥ 1 */
	long long version;     /* room events, ≥ 1 */
	const char *name;      /* ROOM_UPSERT */
	long long capacity;    /* ROOM_UPSERT */
	const char *time_zone; /* ROOM_UPSERT: a valid IANA zone ("UTC" when absent) */
	bool active;           /* ROOM_UPSERT */
	/* ROOM_UPSERT: what a room search needs (docs/api.md#finding-a-room).  details_known is
	 * true when the event carries all three (every room_events producer of this suite does);
	 * an older producer's event leaves them unknown rather than empty. */
	bool details_known;
	const json_t *equipment; /* ROOM_UPSERT, details_known: an array of strings, borrowed */
	const char *building;    /* ROOM_UPSERT: NULL when null or unknown */
	bool has_floor;          /* ROOM_UPSERT: floor is set */
	long long floor;         /* ROOM_UPSERT, has_floor */
	/* ROOM_UPSERT: the room's booking rules (docs/api.md#room-policies).  policies_known:
	 * the event carries the key (an older producer's does not); policies: the object,
	 * borrowed, or NULL for null (no rules). */
	bool policies_known;
	const json_t *policies;
	const char *occurred_at; /* USER_*: RFC 3339 with offset, or NULL when absent */
	const char *type;        /* USER_*: the event type (the revocation's reason) */
	const char *email;       /* USER_EMAIL: the new address, 1..254 bytes */
	json_t *doc;             /* owned: the parsed message */
};

/* Parses and checks value[0..len) (not NUL-terminated; value may be NULL) from source into
 * *ev.  Returns false, with the reason in why, for a message that can never be applied (the
 * consumer sends it to the DLQ); *ev then owns nothing.  Needs no database; thread-safe. */
bool res_event_decode(enum res_event_source source, const char *value, size_t len,
                      struct res_event *ev, char *why, size_t whylen);

/* Releases what ev owns (NULL-safe; ev is zeroed). */
void res_event_clear(struct res_event *ev);

#endif
