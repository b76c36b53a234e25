/* roompolicy: a room's booking rules (docs/api.md#room-policies), checked and normalised as a
 * pure function of the JSON (no civetweb, no SQL).  room-service checks a body with it, stores
 * and publishes the rules; reservation-service checks the rules of every room event with it
 * again (one table of kinds and bounds for both) and enforces them.  Thread-safe. */
#ifndef ROOM_POLICY_H
#define ROOM_POLICY_H

#include <stdbool.h>

#include <jansson.h>

/* The largest numbers of opening intervals per day and of users in allowed_users. */
#define ROOM_POLICY_MAX_INTERVALS 4
#define ROOM_POLICY_MAX_USERS 1000

/* Checks the "policies" object of a room body (borrowed).  Every problem goes to details
 * (borrowed) as "policies.<key>" -> reason, and false is returned.  Otherwise *out receives the
 * normalised rules as a new object (caller json_decref()s it): members that are null dropped,
 * day names lower-case, roles and users without duplicates in a fixed order; or NULL when no
 * rule remains (an empty object means no rules, as null does). */
bool room_policy_normalise(const json_t *policies, json_t **out, json_t *details);
/* Whether key names a policy this release knows (room_policy_normalise refuses the others). */
bool room_policy_known(const char *key);

#endif
