#ifndef USER_ROUTES_H
#define USER_ROUTES_H

#include <stddef.h>

#include "http.h"

extern const struct http_route user_routes[];
extern const size_t user_routes_count;

#endif
