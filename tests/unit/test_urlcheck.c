/* Unit tests of common/src/urlcheck.c: the rule for URLs the services call out to. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "urlcheck.h"

#define MAX 64

/* The reason url is refused with flags ("" when it is accepted). */
static const char *refused(const char *url, unsigned flags)
{
	static char why[128];
	why[0] = '\0';
	char host[MAX + 1] = "";
	if (urlcheck_outbound(url, MAX, flags, host, sizeof host, why, sizeof why))
		return "";
	assert_string_not_equal(why, "");
	return why;
}

static void accepted_with_host(void **state)
{
	(void)state;
	struct {
		const char *url, *host;
	} good[] = {
		{"https://example.com/hook", "example.com"},
		{"HTTPS://Example.COM:8443/a/b", "Example.COM"},
		{"https://example.com/a?b=c", "example.com"},
		{"http://127.0.0.1:8080/x", "127.0.0.1"},
		{"http://127.9.8.7/", "127.9.8.7"},
		{"http://LocalHost/x", "LocalHost"},
		{"http://[::1]:9/x", "[::1]"},
		{"https://[2001:db8::1]/", "[2001:db8::1]"},
	};
	char host[MAX + 1], why[128];
	for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
		if (!urlcheck_outbound(good[i].url, MAX, 0, host, sizeof host, why, sizeof why))
			fail_msg("refused %s: %s", good[i].url, why);
		assert_string_equal(host, good[i].host);
	}
	/* The host is optional. */
	assert_true(urlcheck_outbound("https://example.com/", MAX, 0, NULL, 0, why, sizeof why));
}

static void http_only_for_loopback(void **state)
{
	(void)state;
	const char *https = "must use https (http only for a loopback host)";
	assert_string_equal(refused("http://example.com/hook", 0), https);
	assert_string_equal(refused("http://10.0.0.1/", 0), https);
	assert_string_equal(refused("http://[::2]/", 0), https);
	assert_string_equal(refused("http://[::ffff:127.0.0.1]/", 0), https);
	/* What libcurl would connect to decides, not what the text starts with. */
	assert_string_equal(refused("http://127.0.0.1.example.com/", 0), https);
	assert_string_equal(refused("http://localhost.example.com/", 0), https);
	assert_string_equal(refused("http://127.0.0.1@example.com/", 0),
	                    "must not carry a user name or password");
	/* Other schemes never, loopback or not. */
	assert_string_equal(refused("ftp://example.com/", 0), https);
	assert_string_equal(refused("ftp://127.0.0.1/", 0), https);
	/* A scheme libcurl does not know is not parsed at all. */
	assert_string_equal(refused("ws://localhost/", 0), "must be an absolute http(s) URL");
}

static void parts_refused(void **state)
{
	(void)state;
	const char *userinfo = "must not carry a user name or password";
	assert_string_equal(refused("https://user:pw@example.com/", 0), userinfo);
	assert_string_equal(refused("https://user@example.com/", 0), userinfo);
	assert_string_equal(refused("https://:pw@example.com/", 0), userinfo);
	assert_string_equal(refused("https://example.com/#top", 0), "must not carry a fragment");
	/* A query only with URLCHECK_NO_QUERY. */
	assert_string_equal(refused("https://example.com/a?b=c", 0), "");
	assert_string_equal(refused("https://example.com/a?b=c", URLCHECK_NO_QUERY),
	                    "must not carry a query");
	assert_string_equal(refused("https://example.com/", URLCHECK_NO_QUERY), "");
}

static void not_absolute(void **state)
{
	(void)state;
	const char *absolute = "must be an absolute http(s) URL";
	assert_string_equal(refused("example.com/hook", 0), absolute);
	assert_string_equal(refused("", 0), absolute);
	assert_string_equal(refused("https://", 0), absolute);
	assert_string_equal(refused("https://exa mple.com/", 0), absolute);
}

static void oversized(void **state)
{
	(void)state;
	char url[MAX + 2], why[128];
	/* Exactly MAX bytes is accepted, one more is not. */
	snprintf(url, sizeof url, "https://example.com/%0*d", MAX - 20, 0);
	assert_int_equal(strlen(url), MAX);
	assert_true(urlcheck_outbound(url, MAX, 0, NULL, 0, why, sizeof why));
	snprintf(url, sizeof url, "https://example.com/%0*d", MAX - 19, 0);
	assert_false(urlcheck_outbound(url, MAX, 0, NULL, 0, why, sizeof why));
	assert_string_equal(why, "must be at most 64 bytes long");
	/* A short why is cut, never overrun. */
	char tiny[8];
	assert_false(urlcheck_outbound("ftp://x/", MAX, 0, NULL, 0, tiny, sizeof tiny));
	assert_string_equal(tiny, "must us");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(accepted_with_host), cmocka_unit_test(http_only_for_loopback),
		cmocka_unit_test(parts_refused),      cmocka_unit_test(not_absolute),
		cmocka_unit_test(oversized),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
