#ifndef ROOM_ROUTES_H
#define ROOM_ROUTES_H

#include <stddef.h>

#include "http.h"

extern const struct http_route room_routes[];
extern const size_t room_routes_count;

#endif
