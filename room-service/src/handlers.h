/* handlers: every room-service endpoint (docs/api.md#room-service).  No SQL here (repo.c). */
#ifndef ROOM_HANDLERS_H
#define ROOM_HANDLERS_H

#include <stdbool.h>

#include <jansson.h>

#include "http.h"

/* topic (borrowed, must outlive the server): where room events go. */
void handlers_init(const char *room_events_topic);

void h_room_list(struct req *r);
void h_room_get(struct req *r);
void h_room_create(struct req *r);
void h_room_update(struct req *r);
void h_room_delete(struct req *r);

/* Normalises equipment given as an array of strings or a comma-separated string: trimmed,
 * empty pieces of a string dropped, duplicates (case-insensitive) removed keeping the first
 * spelling, at most 50 items of 1–50 characters.  Returns a new array, or NULL with a reason in
 * why (an array item that is not a string or is empty/too long, too many items). */
json_t *room_equipment_normalise(const json_t *value, const char **why);

struct room_input;

/* Validates a POST (create) or PUT (partial) body (borrowed) into *in, which starts zeroed;
 * problems go to details (borrowed) as field -> reason.  Strings in *in are borrowed from body;
 * the caller owns in->equipment afterwards (json_decref).  Needs no database (time_zone is
 * checked against the zoneinfo files, tz_valid); thread-safe. */
void room_validate(const json_t *body, bool create, struct room_input *in, json_t *details);

#endif
