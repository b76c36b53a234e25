/* events: what reservation-service does with room_events and user_events: each message is
 * decoded (event_decode.h, no database) and then applied through the repo. */
#ifndef RES_EVENTS_H
#define RES_EVENTS_H

#include <stddef.h>

#include "kafka.h"

struct res_events_topics {
	const char *rooms, *users, *reservations;
};

/* The consumer handler (see kafka_handler_fn); arg is a struct res_events_topics.  Decodes, then
 * applies through the repo: bad messages are KAFKA_POISON, unknown event types KAFKA_APPLIED,
 * database failures KAFKA_RETRY (KAFKA_POISON for data the schema refuses). */
enum kafka_handled res_events_handle(const char *topic, const char *key, size_t keylen,
                                     const char *value, size_t len, void *arg, char *why,
                                     size_t whylen);

#endif
