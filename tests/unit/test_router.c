/* Unit tests of common/src/router.c: method + path matching with {params}. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "countof.h"
#include "router.h"

/* A caller's own route struct embedding router_route first, as the services do. */
struct my_route {
	struct router_route r;
	int tag;
	const char *extra;
};

static const struct my_route routes[] = {
	{{"GET", "/rooms"}, 100, "list"},
	{{"POST", "/rooms"}, 101, "create"},
	{{"GET", "/rooms/{id}"}, 102, "get"},
	{{"PUT", "/rooms/{id}"}, 103, "put"},
	{{"DELETE", "/rooms/{id}"}, 104, "delete"},
	{{"GET", "/rooms/{id}/availability"}, 105, "avail"},
	{{"GET", "/users/{id}"}, 106, "user"},
	{{"PUT", "/users/{id}"}, 107, "user-put"},
	{{"GET", "/a/{x}/b/{y}"}, 108, "two"},
	{{"GET", "/health"}, 109, "health"},
	{{"GET", "/"}, 110, "root"},
};
#define NROUTES countof(routes)

static bool find(const char *method, const char *path, struct router_match *m)
{
	memset(m, 0xa5, sizeof *m); /* router_find must initialise everything */
	return router_find(routes, NROUTES, sizeof routes[0], method, path, m);
}

static int tag_of(const struct router_match *m)
{
	assert_true(m->index >= 0 && (size_t)m->index < NROUTES);
	return routes[m->index].tag;
}

static void expect_route(const char *method, const char *path, int tag)
{
	struct router_match m;
	if (!find(method, path, &m))
		fail_msg("%s %s did not match", method, path);
	assert_int_equal(tag_of(&m), tag);
	assert_true(m.path_known);
}

/* No route: neither this method nor any other has the path (404). */
static void expect_unknown(const char *method, const char *path)
{
	struct router_match m;
	if (find(method, path, &m))
		fail_msg("%s %s matched route %ld", method, path, m.index);
	assert_int_equal(m.index, -1);
	if (m.path_known)
		fail_msg("%s %s: path_known set", method, path);
}

static void test_static_routes(void **state)
{
	(void)state;
	struct router_match m;
	assert_true(find("GET", "/rooms", &m));
	assert_int_equal(tag_of(&m), 100);
	assert_int_equal(m.nparams, 0);
	assert_string_equal(routes[m.index].extra, "list");
	expect_route("POST", "/rooms", 101);
	expect_route("GET", "/health", 109);
	expect_route("GET", "/", 110);
}

static void test_params(void **state)
{
	(void)state;
	struct router_match m;
	char buf[64];
	assert_true(find("GET", "/rooms/7", &m));
	assert_int_equal(tag_of(&m), 102);
	assert_int_equal(m.nparams, 1);
	assert_int_equal(m.params[0].name_len, 2);
	assert_memory_equal(m.params[0].name, "id", 2);
	assert_true(router_param(&m, "id", buf, sizeof buf));
	assert_string_equal(buf, "7");

	assert_true(find("PUT", "/rooms/abc-DEF_1.2", &m));
	assert_int_equal(tag_of(&m), 103);
	assert_true(router_param(&m, "id", buf, sizeof buf));
	assert_string_equal(buf, "abc-DEF_1.2");

	/* Encoded characters are not decoded by the router. */
	assert_true(find("GET", "/rooms/a%2Fb", &m));
	assert_true(router_param(&m, "id", buf, sizeof buf));
	assert_string_equal(buf, "a%2Fb");

	assert_true(find("GET", "/rooms/42/availability", &m));
	assert_int_equal(tag_of(&m), 105);
	assert_true(router_param(&m, "id", buf, sizeof buf));
	assert_string_equal(buf, "42");

	assert_true(find("GET", "/a/first/b/second", &m));
	assert_int_equal(tag_of(&m), 108);
	assert_int_equal(m.nparams, 2);
	assert_true(router_param(&m, "x", buf, sizeof buf));
	assert_string_equal(buf, "first");
	assert_true(router_param(&m, "y", buf, sizeof buf));
	assert_string_equal(buf, "second");
	assert_false(router_param(&m, "z", buf, sizeof buf));
	assert_false(router_param(&m, "", buf, sizeof buf));
	assert_false(router_param(&m, "xx", buf, sizeof buf));
}

static void test_trailing_slash(void **state)
{
	(void)state;
	char buf[16];
	struct router_match m;
	expect_route("GET", "/rooms/", 100);
	expect_route("POST", "/rooms/", 101);
	expect_route("GET", "/health/", 109);
	assert_true(find("GET", "/rooms/7/", &m));
	assert_int_equal(tag_of(&m), 102);
	assert_true(router_param(&m, "id", buf, sizeof buf));
	assert_string_equal(buf, "7"); /* the slash is not part of the value */
	expect_route("GET", "/rooms/7/availability/", 105);
}

static void test_double_slashes(void **state)
{
	(void)state;
	/* An empty segment is never a parameter value, and "//x" is not "/x". */
	expect_unknown("GET", "/rooms//7");
	expect_unknown("GET", "//rooms");
	expect_unknown("GET", "//rooms/7");
	expect_unknown("GET", "/rooms//7/availability");
	expect_unknown("GET", "/a//b/2");
	expect_unknown("GET", "/a/1/b//");
	/* "//" must not crash or read out of bounds; if it matches, it is the root. */
	struct router_match m;
	if (find("GET", "//", &m))
		assert_int_equal(tag_of(&m), 110);
}

static void test_method_not_allowed(void **state)
{
	(void)state;
	struct router_match m;
	assert_false(find("PATCH", "/users/9", &m));
	assert_int_equal(m.index, -1);
	assert_true(m.path_known);
	assert_string_equal(m.allow, "GET, PUT");

	assert_false(find("DELETE", "/rooms", &m));
	assert_true(m.path_known);
	assert_string_equal(m.allow, "GET, POST");

	assert_false(find("POST", "/rooms/3/", &m));
	assert_true(m.path_known);
	assert_string_equal(m.allow, "GET, PUT, DELETE");

	/* Methods are case-sensitive. */
	assert_false(find("get", "/health", &m));
	assert_true(m.path_known);
	assert_string_equal(m.allow, "GET");

	/* On a match the allow list is filled too (for OPTIONS), including the method. */
	assert_true(find("PUT", "/users/9", &m));
	assert_string_equal(m.allow, "GET, PUT");
}

static void test_unknown_paths(void **state)
{
	(void)state;
	expect_unknown("GET", "/roomsx");
	expect_unknown("GET", "/room");
	expect_unknown("GET", "/rooms/7/extra");
	expect_unknown("GET", "/rooms/7/availabilityx");
	expect_unknown("GET", "/rooms/7/availability/x");
	expect_unknown("GET", "/healthz");
	expect_unknown("GET", "/Rooms");
	expect_unknown("GET", "/a/1/b");
	expect_unknown("GET", "/a/1/b/");
	expect_unknown("GET", "/nowhere");
	expect_unknown("GET", "");
	expect_unknown("GET", "rooms");
	expect_unknown("POST", "/roomsx");
	struct router_match m;
	assert_false(find("GET", "/nowhere", &m));
	assert_string_equal(m.allow, "");
	assert_int_equal(m.nparams, 0);
}

static void test_param_buffer(void **state)
{
	(void)state;
	struct router_match m;
	char buf[8];
	assert_true(find("GET", "/rooms/12345", &m));
	memset(buf, 'z', sizeof buf);
	assert_false(router_param(&m, "id", buf, 5)); /* needs 6 with the NUL */
	assert_true(router_param(&m, "id", buf, 6));
	assert_string_equal(buf, "12345");
	assert_false(router_param(&m, "id", buf, 0));
	assert_false(router_param(&m, "id", buf, 1));
}

static void test_long_paths(void **state)
{
	(void)state;
	char *path = malloc(ROUTER_MAX_PATH + 64);
	assert_non_null(path);
	/* Exactly ROUTER_MAX_PATH characters: accepted. */
	strcpy(path, "/rooms/");
	size_t pre = strlen(path);
	memset(path + pre, '9', ROUTER_MAX_PATH - pre);
	path[ROUTER_MAX_PATH] = '\0';
	struct router_match m;
	assert_true(find("GET", path, &m));
	assert_int_equal(tag_of(&m), 102);
	assert_int_equal(m.params[0].value_len, ROUTER_MAX_PATH - pre);
	char small[16];
	assert_false(router_param(&m, "id", small, sizeof small));

	/* One more: refused, and not reported as a known path. */
	path[ROUTER_MAX_PATH] = '9';
	path[ROUTER_MAX_PATH + 1] = '\0';
	expect_unknown("GET", path);
	expect_unknown("POST", path);
	free(path);
}

static void test_empty_table(void **state)
{
	(void)state;
	struct router_match m;
	assert_false(router_find(routes, 0, sizeof routes[0], "GET", "/rooms", &m));
	assert_int_equal(m.index, -1);
	assert_false(m.path_known);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_static_routes),      cmocka_unit_test(test_params),
		cmocka_unit_test(test_trailing_slash),     cmocka_unit_test(test_double_slashes),
		cmocka_unit_test(test_method_not_allowed), cmocka_unit_test(test_unknown_paths),
		cmocka_unit_test(test_param_buffer),       cmocka_unit_test(test_long_paths),
		cmocka_unit_test(test_empty_table),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
