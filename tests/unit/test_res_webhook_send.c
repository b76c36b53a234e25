/* Unit tests of reservation-service/src/webhook_send.c's pure parts: the URL rules, the
 * addresses a delivery may connect to, and the signature a receiver checks. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "httpparse.h"
#include "../../reservation-service/src/webhook_send.h"

static void urls(void **state)
{
	(void)state;
	char why[128];
	const char *good[] = {
		"https://example.com/hook",   "https://example.com:8443/a?b=c",
		"http://127.0.0.1:8080/hook", "http://localhost/hook",
		"http://[::1]:9/x",           "HTTPS://EXAMPLE.COM/",
		"https://10.0.0.1/hook", /* private addresses are refused when sending */
	};
	for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
		assert_true(res_webhook_url_valid(good[i], why, sizeof why));
	struct {
		const char *url, *why;
	} bad[] = {
		{"http://example.com/hook", "https"},
		{"http://127.0.0.1.example.com/", "https"},
		{"ftp://example.com/", "https"},
		{"https://user:pw@example.com/", "user name"},
		{"https://user@example.com/", "user name"},
		{"https://example.com/#top", "fragment"},
		{"example.com/hook", "absolute"},
		{"", "absolute"},
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		why[0] = '\0';
		if (res_webhook_url_valid(bad[i].url, why, sizeof why))
			fail_msg("accepted %s", bad[i].url);
		if (!strstr(why, bad[i].why))
			fail_msg("%s: %s", bad[i].url, why);
	}
	char long_url[2200];
	snprintf(long_url, sizeof long_url, "https://example.com/%02090d", 0);
	assert_false(res_webhook_url_valid(long_url, why, sizeof why));
	assert_non_null(strstr(why, "2048"));
}

static const char *refused4(const char *ip, bool allow_private, bool allow_loopback)
{
	struct sockaddr_in a = {.sin_family = AF_INET};
	assert_int_equal(inet_pton(AF_INET, ip, &a.sin_addr), 1);
	return res_webhook_address_refused((const struct sockaddr *)&a, allow_private,
	                                   allow_loopback);
}

static const char *refused6(const char *ip, bool allow_private, bool allow_loopback)
{
	struct sockaddr_in6 a = {.sin6_family = AF_INET6};
	assert_int_equal(inet_pton(AF_INET6, ip, &a.sin6_addr), 1);
	return res_webhook_address_refused((const struct sockaddr *)&a, allow_private,
	                                   allow_loopback);
}

static void addresses(void **state)
{
	(void)state;
	/* Public: always. */
	assert_null(refused4("93.184.216.34", false, false));
	assert_null(refused4("172.32.0.1", false, false));
	assert_null(refused6("2606:2800:220:1::1", false, false));
	/* Private: only when allowed. */
	const char *priv4[] = {"10.1.2.3", "172.16.0.1", "172.31.255.255", "192.168.1.1",
	                       "100.64.0.1"};
	for (size_t i = 0; i < sizeof priv4 / sizeof priv4[0]; i++) {
		assert_non_null(strstr(refused4(priv4[i], false, false), "private"));
		assert_null(refused4(priv4[i], true, false));
	}
	assert_non_null(refused6("fd00::1", false, false));
	assert_null(refused6("fd00::1", true, false));
	assert_non_null(refused6("::ffff:10.0.0.1", false, false));
	assert_null(refused6("::ffff:93.184.216.34", false, false));
	/* Loopback: only when allowed (WEBHOOK_ALLOW_LOOPBACK), whatever the URL's host;
	 * WEBHOOK_ALLOW_PRIVATE does not allow it. */
	assert_non_null(strstr(refused4("127.0.0.1", false, false), "loopback"));
	assert_non_null(strstr(refused4("127.0.0.1", true, false), "loopback"));
	assert_null(refused4("127.0.0.1", false, true));
	assert_non_null(refused6("::1", true, false));
	assert_null(refused6("::1", false, true));
	assert_non_null(refused6("::ffff:127.0.0.1", false, false));
	/* Never: unspecified, link-local (cloud metadata), multicast, broadcast. */
	const char *never4[] = {"0.0.0.0",   "0.1.2.3",         "169.254.169.254",
	                        "224.0.0.1", "239.255.255.250", "255.255.255.255",
	                        "240.0.0.1"};
	for (size_t i = 0; i < sizeof never4 / sizeof never4[0]; i++) {
		assert_non_null(refused4(never4[i], true, true));
		assert_non_null(refused4(never4[i], false, false));
	}
	const char *never6[] = {"::", "fe80::1", "febf::1", "ff02::1", "::ffff:169.254.1.1"};
	for (size_t i = 0; i < sizeof never6 / sizeof never6[0]; i++)
		assert_non_null(refused6(never6[i], true, true));
	struct sockaddr unix_addr = {.sa_family = AF_UNIX};
	assert_non_null(res_webhook_address_refused(&unix_addr, true, true));
}

/* The IPv6 forms that carry an IPv4 address are judged as that address; the other special
 * ranges by their own rule. */
static void embedded_and_special_addresses(void **state)
{
	(void)state;
	struct {
		const char *ip, *why; /* why: a word of the refusal; NULL = allowed */
	} cases[] = {
		/* NAT64 64:ff9b::/96 */
		{"64:ff9b::a00:1", "private"},
		{"64:ff9b::a9fe:a9fe", "link-local"},
		{"64:ff9b::7f00:1", "loopback"},
		{"64:ff9b::5db8:d822", NULL}, /* 93.184.216.34 */
		/* local-use NAT64 64:ff9b:1::/48: private whatever it carries */
		{"64:ff9b:1::a9fe:a9fe", "private"},
		{"64:ff9b:1:abcd::5db8:d822", "private"},
		/* 6to4 2002::/16: the IPv4 address in bits 16-47 */
		{"2002:a9fe:a9fe::1", "link-local"},
		{"2002:7f00:1::1", "loopback"},
		{"2002:a00:1::1", "private"},
		{"2002:5db8:d822::1", NULL},
		/* IPv4-compatible ::/96 */
		{"::a00:1", "private"},
		{"::7f00:1", "loopback"},
		{"::a9fe:a9fe", "link-local"},
		{"::5db8:d822", NULL},
		/* IPv4-mapped ::ffff:0:0/96 and SIIT ::ffff:0:0:0/96 */
		{"::ffff:10.0.0.1", "private"},
		{"::ffff:0:a9fe:a9fe", "link-local"},
		{"::ffff:0:a00:1", "private"},
		{"::ffff:0:5db8:d822", NULL},
		/* Teredo, documentation, discard */
		{"2001::5efe:1", "reserved"},
		{"2001:0:4136:e378:8000:63bf:3fff:fdd2", "reserved"},
		{"2001:db8::1", "reserved"},
		{"100::1", "reserved"},
		/* site-local fec0::/10, unique-local fc00::/7 */
		{"fec0::1", "private"},
		{"feff::1", "private"},
		{"fc00::1", "private"},
		{"fdff::1", "private"},
		/* IPv4 ranges */
		{"100.64.0.1", "private"},
		{"100.127.255.254", "private"},
		{"100.128.0.1", NULL},
		{"0.0.0.1", "link-local"},
		{"192.0.0.170", "private"},
		{"192.0.1.1", NULL},
		{"198.18.0.1", "private"},
		{"198.19.255.255", "private"},
		{"198.20.0.1", NULL},
		{"240.0.0.1", "multicast"},
		{"192.0.2.1", "reserved"},
		{"198.51.100.7", "reserved"},
		{"203.0.113.9", "reserved"},
		{"2606:2800:220:1::1", NULL},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		bool v6 = strchr(cases[i].ip, ':') != NULL;
		const char *got = v6 ? refused6(cases[i].ip, false, false)
		                     : refused4(cases[i].ip, false, false);
		if (!cases[i].why ? got != NULL : !got || !strstr(got, cases[i].why))
			fail_msg("%s: %s (expected %s)", cases[i].ip, got ? got : "allowed",
			         cases[i].why ? cases[i].why : "allowed");
	}
	/* With both flags, an embedded private or loopback address is allowed like the plain
	 * one, and link-local still never. */
	assert_null(refused6("64:ff9b::a00:1", true, true));
	assert_null(refused6("2002:7f00:1::1", true, true));
	assert_non_null(refused6("64:ff9b::a9fe:a9fe", true, true));
	assert_non_null(refused6("2001:db8::1", true, true));
}

static void loopback_hosts(void **state)
{
	(void)state;
	assert_true(httpparse_host_loopback("127.0.0.1"));
	assert_true(httpparse_host_loopback("127.255.0.9"));
	assert_true(httpparse_host_loopback("LocalHost"));
	assert_true(httpparse_host_loopback("[::1]"));
	assert_false(httpparse_host_loopback("128.0.0.1"));
	assert_false(httpparse_host_loopback("127.0.0.1.example.com"));
	assert_false(httpparse_host_loopback("localhost.example.com"));
	assert_false(httpparse_host_loopback(NULL));
	/* Leading zeros: libcurl keeps these as names (octal would be 127.0.0.8), so DNS would
	 * answer for them: not loopback. */
	assert_false(httpparse_host_loopback("127.0.0.08"));
	assert_false(httpparse_host_loopback("127.0.0.09"));
	assert_false(httpparse_host_loopback("127.0.0.099"));
	assert_false(httpparse_host_loopback("0177.0.0.1"));
	assert_false(httpparse_host_loopback("127.1"));
}

/* The signature a receiver recomputes: HMAC-SHA256(secret, timestamp "." body), as Python's
 * hmac.new(b"0123456789abcdef-secret", b"1796000000." + body, hashlib.sha256) gives it. */
static void signature(void **state)
{
	(void)state;
	char sig[RES_WEBHOOK_SIGNATURE_LEN];
	const char *body = "{\"event_type\":\"reservation_created\"}";
	assert_true(res_webhook_signature("0123456789abcdef-secret", "1796000000", body,
	                                  strlen(body), sig));
	assert_string_equal(
		sig, "sha256=c214e271e2a03801b3356257cf4f2803ce098b55a835835fc6bbce40b2bd700f");
	assert_true(res_webhook_signature("Jefe", "1", "", 0, sig));
	assert_string_equal(
		sig, "sha256=c5009ac9fb219943cae5947bf5ea45251fc6f7bb84976c7a02e94799d5d100a9");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(urls),
		cmocka_unit_test(addresses),
		cmocka_unit_test(embedded_and_special_addresses),
		cmocka_unit_test(loopback_hosts),
		cmocka_unit_test(signature),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
