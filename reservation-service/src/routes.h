#ifndef RES_ROUTES_H
#define RES_ROUTES_H

#include <stdbool.h>
#include <stddef.h>

#include "http.h"

extern const struct http_route res_routes[];
extern const size_t res_routes_count;
/* The routes to serve (*n of them): all with test_clock, else all but the one handled by
 * res_handle_test_clock (PUT /internal/test-clock), wherever it stands in res_routes (review
 * 15c L5).  Called once at start, before the server's threads (it fills a static copy). */
const struct http_route *res_routes_served(bool test_clock, size_t *n);

#endif
