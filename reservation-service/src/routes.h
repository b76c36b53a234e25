#ifndef RES_ROUTES_H
#define RES_ROUTES_H

#include <stddef.h>

#include "http.h"

extern const struct http_route res_routes[];
extern const size_t res_routes_count;
/* The routes but the last, PUT /internal/test-clock: those of a service without TEST_CLOCK. */
extern const size_t res_routes_count_without_test_clock;

#endif
