#ifndef RES_ROUTES_H
#define RES_ROUTES_H

#include <stddef.h>

#include "http.h"

extern const struct http_route reservation_routes[];
extern const size_t reservation_routes_count;

#endif
