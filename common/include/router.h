/* router: matches a method and a path against a table of patterns such as "/admin/users/{id}".
 * A trailing slash is ignored ("/rooms/" matches "/rooms"); "{name}" matches one non-empty
 * segment; everything else matches literally.  Pure and thread-safe: no allocation, results
 * point into the caller's buffers. */
#ifndef ROUTER_H
#define ROUTER_H

#include <stdbool.h>
#include <stddef.h>

#define ROUTER_MAX_PARAMS 4
#define ROUTER_MAX_PATH 1024

struct router_route {
	const char *method;  /* "GET", "POST", … */
	const char *pattern; /* "/rooms/{id}" */
};

struct router_param {
	const char *name; /* points into the pattern; length name_len */
	size_t name_len;
	const char *value; /* points into the path; length value_len */
	size_t value_len;
};

struct router_match {
	long index; /* matching route, or -1 */
	size_t nparams;
	struct router_param params[ROUTER_MAX_PARAMS];
	bool path_known; /* some route has this path (with another method): 405 */
	char allow[128]; /* methods allowed for this path, "GET, PUT" */
};

/* Finds the route for method + path.  routes is an array of n entries whose first member is a
 * struct router_route, each stride bytes apart (so a caller's own route struct can embed it).
 * Returns true when a route matched (m->index). */
bool router_find(const void *routes, size_t n, size_t stride, const char *method, const char *path,
                 struct router_match *m);

/* Copies the value of a path parameter into buf (NUL-terminated).  Returns false when there is
 * no such parameter or it does not fit. */
bool router_param(const struct router_match *m, const char *name, char *buf, size_t size);

#endif
