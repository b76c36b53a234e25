/* equipment: a room's equipment list as clients write it, in a body (room-service) or in a
 * query's ?equipment= (room-service's list, reservation-service's searches and day grid), read
 * one way everywhere.  Pure functions, thread-safe. */
#ifndef EQUIPMENT_H
#define EQUIPMENT_H

#include <jansson.h>

#define EQUIPMENT_MAX_ITEMS 50
#define EQUIPMENT_MAX_LEN 50

/* Normalises equipment given as an array of strings or a comma-separated string (value,
 * borrowed): trimmed, empty pieces of a string dropped, duplicates (case-insensitive) removed
 * keeping the first spelling, at most EQUIPMENT_MAX_ITEMS items of 1–EQUIPMENT_MAX_LEN
 * characters.  Returns a new array (caller decrefs), or NULL with a reason (static text) in why
 * (an array item that is not a string or is empty/too long, too many items). */
json_t *equipment_normalise(const json_t *value, const char **why);

#endif
