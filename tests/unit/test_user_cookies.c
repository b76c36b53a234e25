/* Unit tests of user-service/src/cookies.c: the Set-Cookie values of the sign-in and refresh
 * cookies over http and https (tests/integration/test_web_signin.py sees the http ones and the
 * https ones of a service whose callback URL is https), reading them back, and the CSRF rule of
 * the refresh cookie. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "../../user-service/src/cookies.h"

static void test_refresh_cookie_attributes(void **state)
{
	(void)state;
	char out[USER_COOKIE_HEADER_SIZE];
	assert_true(
		user_cookie_format(out, sizeof out, USER_COOKIE_REFRESH, false, "tok", 2592000));
	assert_string_equal(out, "mr_refresh=tok; Max-Age=2592000; Path=/auth; HttpOnly; "
	                         "SameSite=Strict");
	assert_true(user_cookie_format(out, sizeof out, USER_COOKIE_REFRESH, true, "tok", 60));
	assert_string_equal(out, "__Secure-mr_refresh=tok; Max-Age=60; Path=/auth; HttpOnly; "
	                         "SameSite=Strict; Secure");
	/* Cleared with the same attributes, or the browser would keep the cookie. */
	assert_true(user_cookie_format(out, sizeof out, USER_COOKIE_REFRESH, true, "", 0));
	assert_string_equal(out, "__Secure-mr_refresh=; Max-Age=0; Path=/auth; HttpOnly; "
	                         "SameSite=Strict; Secure");
}

static void test_login_cookie_attributes(void **state)
{
	(void)state;
	char out[USER_COOKIE_HEADER_SIZE];
	assert_true(user_cookie_format(out, sizeof out, USER_COOKIE_LOGIN, false, "v", 600));
	assert_string_equal(out, "mr_login=v; Max-Age=600; Path=/; HttpOnly; SameSite=Lax");
	assert_true(user_cookie_format(out, sizeof out, USER_COOKIE_LOGIN, true, "v", 600));
	assert_string_equal(out, "__Host-mr_login=v; Max-Age=600; Path=/; HttpOnly; SameSite=Lax; "
	                         "Secure");
	/* The longest value fits the header buffer; a buffer too small is reported. */
	char value[USER_COOKIE_VALUE_MAX + 1];
	memset(value, 'a', USER_COOKIE_VALUE_MAX);
	value[USER_COOKIE_VALUE_MAX] = '\0';
	assert_true(user_cookie_format(out, sizeof out, USER_COOKIE_REFRESH, true, value,
	                               9999999999LL));
	assert_false(user_cookie_format(out, 40, USER_COOKIE_REFRESH, true, "tok", 60));
}

static void test_read(void **state)
{
	(void)state;
	char out[USER_COOKIE_VALUE_MAX + 1];
	assert_true(user_cookie_read("a=1; mr_refresh=tok; b=2", USER_COOKIE_REFRESH, false, out));
	assert_string_equal(out, "tok");
	/* The name must be the one of the scheme: no plain cookie stands in for a prefixed one. */
	assert_false(user_cookie_read("mr_refresh=tok", USER_COOKIE_REFRESH, true, out));
	assert_true(user_cookie_read("__Secure-mr_refresh=tok", USER_COOKIE_REFRESH, true, out));
	assert_false(user_cookie_read("mr_login=tok", USER_COOKIE_REFRESH, false, out));
	assert_false(user_cookie_read("mr_refresh=", USER_COOKIE_REFRESH, false, out));
	assert_false(user_cookie_read(NULL, USER_COOKIE_REFRESH, false, out));
	char header[USER_COOKIE_VALUE_MAX + 32] = "mr_refresh=";
	size_t at = strlen(header);
	memset(header + at, 'a', USER_COOKIE_VALUE_MAX);
	header[at + USER_COOKIE_VALUE_MAX] = '\0';
	assert_true(user_cookie_read(header, USER_COOKIE_REFRESH, false, out));
	assert_int_equal(strlen(out), USER_COOKIE_VALUE_MAX);
	strcat(header, "a");
	assert_false(user_cookie_read(header, USER_COOKIE_REFRESH, false, out));
}

static void test_csrf_rule(void **state)
{
	(void)state;
	assert_true(user_cookie_csrf_ok("meeting-rooms", NULL));
	assert_true(user_cookie_csrf_ok("meeting-rooms", "same-origin"));
	assert_false(user_cookie_csrf_ok(NULL, NULL));
	assert_false(user_cookie_csrf_ok(NULL, "same-origin"));
	assert_false(user_cookie_csrf_ok("XMLHttpRequest", "same-origin"));
	assert_false(user_cookie_csrf_ok("meeting-rooms", "cross-site"));
	assert_false(user_cookie_csrf_ok("meeting-rooms", "same-site"));
	assert_false(user_cookie_csrf_ok("meeting-rooms", "none"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_refresh_cookie_attributes),
		cmocka_unit_test(test_login_cookie_attributes),
		cmocka_unit_test(test_read),
		cmocka_unit_test(test_csrf_rule),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
