/* events: what reservation-service does with room_events and user_events. */
#ifndef RESERVATION_EVENTS_H
#define RESERVATION_EVENTS_H

#include <stddef.h>

#include "kafka.h"

struct events_topics {
	const char *rooms, *users, *reservations;
};

/* The consumer handler (see kafka_handler_fn); arg is a struct events_topics. */
enum kafka_handled events_handle(const char *topic, const char *key, size_t keylen,
                                 const char *value, size_t len, void *arg, char *why,
                                 size_t whylen);

#endif
