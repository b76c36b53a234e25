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

static const char *refused4(const char *ip, bool allow_private, bool loopback_host)
{
	struct sockaddr_in a = {.sin_family = AF_INET};
	assert_int_equal(inet_pton(AF_INET, ip, &a.sin_addr), 1);
	return res_webhook_address_refused((const struct sockaddr *)&a, allow_private,
	                                   loopback_host);
}

static const char *refused6(const char *ip, bool allow_private, bool loopback_host)
{
	struct sockaddr_in6 a = {.sin6_family = AF_INET6};
	assert_int_equal(inet_pton(AF_INET6, ip, &a.sin6_addr), 1);
	return res_webhook_address_refused((const struct sockaddr *)&a, allow_private,
	                                   loopback_host);
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
	/* Loopback: when the URL names loopback itself, or when allowed. */
	assert_non_null(strstr(refused4("127.0.0.1", false, false), "loopback"));
	assert_null(refused4("127.0.0.1", false, true));
	assert_null(refused4("127.0.0.1", true, false));
	assert_non_null(refused6("::1", false, false));
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
		cmocka_unit_test(loopback_hosts),
		cmocka_unit_test(signature),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
