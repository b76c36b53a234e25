/* search: GET /availability/rooms, the rooms free for a window that fit a need, best fit first,
 * and with ?suggest= the nearest other windows (docs/api.md#finding-a-room).  No SQL here. */
#ifndef RES_SEARCH_H
#define RES_SEARCH_H

#include "http.h"
#include "validate.h"

/* rules is borrowed for the life of the server (the longest window a search may ask for is
 * the longest booking). */
void res_search_init(const struct res_span_rules *rules);

void res_handle_room_search(struct req *r);

#endif
