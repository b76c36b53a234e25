/* handlers: every reservation-service endpoint (docs/api.md#reservation-service).  No SQL here. */
#ifndef RESERVATION_HANDLERS_H
#define RESERVATION_HANDLERS_H

#include "http.h"

struct res_rules {
	long long min_minutes, max_minutes, horizon_days;
	const char *topic; /* reservation_events */
};

/* rules is borrowed for the life of the server. */
void handlers_init(const struct res_rules *rules);

void h_res_create(struct req *r);
void h_res_list(struct req *r);
void h_res_get(struct req *r);
void h_res_update(struct req *r);
void h_res_cancel(struct req *r);
void h_availability(struct req *r);
void h_availability_room(struct req *r);

struct res_change;

/* The checks of a POST /reservations body (borrowed) that need no database: known fields and
 * their types, room_id in range, purpose length.  Problems go to details (borrowed) as field ->
 * reason; c->room_id and c->purpose (borrowed from body) are set when valid.  The times are
 * resolved later, in the room's zone.  Thread-safe. */
void res_validate_create(const json_t *body, struct res_change *c, json_t *details);

#endif
