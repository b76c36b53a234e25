/* validate: the checks of room-service request bodies, as pure functions of the JSON (no
 * civetweb, no SQL).  Thread-safe. */
#ifndef ROOM_VALIDATE_H
#define ROOM_VALIDATE_H

#include <stdbool.h>

#include <jansson.h>

/* A validated room change: NULL / has_* false = leave unchanged (PUT) or default (POST). */
struct room_input {
	const char *name;
	bool has_capacity;
	long long capacity;
	json_t *equipment; /* array of strings, NULL = unchanged; room_validate's caller frees it */
	bool has_building;
	const char *building; /* NULL with has_building = clear */
	bool has_floor, floor_null;
	long long floor;
	bool has_description;
	const char *description;
	const char *time_zone;
	bool has_active, active;
	/* The normalised policies (room_policy_normalise): NULL with has_policies = none (clear);
	 * room_validate's caller frees it. */
	bool has_policies;
	json_t *policies;
	long long if_version; /* 0 = unconditional */
};

/* Validates a POST (create) or PUT (partial) body (borrowed) into *in, which starts zeroed;
 * problems go to details (borrowed) as field -> reason.  Strings in *in are borrowed from body;
 * the caller owns in->equipment and in->policies afterwards (json_decref).  Needs no database (time_zone is
 * checked against the zoneinfo files, tz_valid). */
void room_validate(const json_t *body, bool create, struct room_input *in, json_t *details);

#endif
