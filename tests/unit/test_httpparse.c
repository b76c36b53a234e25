/* Unit tests of common/src/httpparse.c: comma lists, CORS origins, path decoding, request ids,
 * If-Match, Content-Type, client addresses behind trusted gateways (CIDR lists, X-Real-IP), query
 * values and the next-page Link. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "countof.h"
#include "httpparse.h"

/* ---- comma lists ---- */

/* The items of list joined with '|' (each checked non-empty and free of blanks at its ends). */
static void items_of(const char *list, char *out, size_t size)
{
	const char *pos = list, *item = NULL;
	size_t len = 0, n = 0;
	out[0] = '\0';
	while (httpparse_list_next(&pos, &item, &len)) {
		assert_true(len > 0);
		assert_true(item[0] != ' ' && item[0] != '\t' && item[0] != ',');
		assert_true(item[len - 1] != ' ' && item[len - 1] != '\t');
		n += (size_t)snprintf(out + n, size - n, "%s%.*s", n ? "|" : "", (int)len, item);
		assert_true(n < size);
	}
	/* The end stays the end. */
	assert_false(httpparse_list_next(&pos, &item, &len));
}

static void expect_items(const char *list, const char *want)
{
	char got[256];
	items_of(list, got, sizeof got);
	if (strcmp(got, want) != 0)
		fail_msg("list \"%s\": items \"%s\", want \"%s\"", list ? list : "(null)", got,
		         want);
}

static void test_list_next(void **state)
{
	(void)state;
	expect_items(NULL, "");
	expect_items("", "");
	expect_items(" ", "");
	expect_items(",", "");
	expect_items(" , ,\t,, ", "");
	expect_items("a", "a");
	expect_items("a,b,c", "a|b|c");
	expect_items("  a ,  b\t,\tc  ", "a|b|c");
	expect_items(",,a,,b,,", "a|b");
	expect_items("a b, c d", "a b|c d"); /* inner blanks belong to the item */
	expect_items("*", "*");
	expect_items("x\n, y", "x\n|y"); /* only space and tab are blanks */
	expect_items("\xc3\xa9t\xc3\xa9, caf\xc3\xa9", "\xc3\xa9t\xc3\xa9|caf\xc3\xa9");
}

static void test_list_next_points_into_list(void **state)
{
	(void)state;
	const char *list = " one , two";
	const char *pos = list, *item = NULL;
	size_t len = 0;
	assert_true(httpparse_list_next(&pos, &item, &len));
	assert_ptr_equal(item, list + 1);
	assert_int_equal(len, 3);
	assert_true(httpparse_list_next(&pos, &item, &len));
	assert_ptr_equal(item, list + 7);
	assert_int_equal(len, 3);
	assert_false(httpparse_list_next(&pos, &item, &len));
	assert_int_equal(*pos, '\0');
}

static void test_list_has(void **state)
{
	(void)state;
	const char *admins = " Ada@Example.org ,bob@example.org,\tcy@example.org\t";
	assert_true(httpparse_list_has(admins, "ada@example.org", true));
	assert_true(httpparse_list_has(admins, "ADA@EXAMPLE.ORG", true));
	assert_false(httpparse_list_has(admins, "ada@example.org", false));
	assert_true(httpparse_list_has(admins, "Ada@Example.org", false));
	assert_true(httpparse_list_has(admins, "cy@example.org", true));
	assert_false(httpparse_list_has(admins, "ada@example.or", true)); /* prefix */
	assert_false(httpparse_list_has(admins, "da@example.org", true)); /* suffix */
	assert_false(httpparse_list_has(admins, "bob@example.org,", true));
	/* The item sought is not trimmed. */
	assert_false(httpparse_list_has(admins, " bob@example.org", true));
	/* Empty lists, empty and missing items. */
	assert_false(httpparse_list_has(NULL, "a", true));
	assert_false(httpparse_list_has("", "a", true));
	assert_false(httpparse_list_has(" , ", "a", true));
	assert_false(httpparse_list_has("a,,b", "", true));
	assert_false(httpparse_list_has("a,,b", NULL, false));
	/* "*" is an item like any other here (an admin list must not mean "everyone"). */
	assert_false(httpparse_list_has("*", "a@example.org", true));
	assert_true(httpparse_list_has("a, *", "*", false));
}

static void test_origin_allowed(void **state)
{
	(void)state;
	const char *list = "https://app.example.org, http://localhost:8080";
	assert_true(httpparse_origin_allowed(list, "https://app.example.org"));
	assert_true(httpparse_origin_allowed(list, "http://localhost:8080"));
	assert_false(httpparse_origin_allowed(list, "http://localhost:808"));
	assert_false(httpparse_origin_allowed(list, "https://app.example.org.evil"));
	/* Case-sensitive: browsers send the origin in lower case. */
	assert_false(httpparse_origin_allowed(list, "https://APP.example.org"));
	assert_false(httpparse_origin_allowed(list, "null"));
	/* '*' allows any non-empty origin, wherever it stands, with blanks around it. */
	assert_true(httpparse_origin_allowed("*", "https://any.example"));
	assert_true(httpparse_origin_allowed(" https://a.example , * ", "https://b.example"));
	assert_true(httpparse_origin_allowed("\t*\t", "null"));
	assert_false(httpparse_origin_allowed("**", "https://b.example"));
	assert_false(httpparse_origin_allowed("*.example", "https://b.example"));
	/* Nothing configured, nothing sent. */
	assert_false(httpparse_origin_allowed(NULL, "https://a.example"));
	assert_false(httpparse_origin_allowed("", "https://a.example"));
	assert_false(httpparse_origin_allowed(" ,, ", "https://a.example"));
	assert_false(httpparse_origin_allowed("*", NULL));
	assert_false(httpparse_origin_allowed("*", ""));
}

/* ---- method, path, request id ---- */

static void test_method_name(void **state)
{
	(void)state;
	static const char *const known[] = {"GET",   "POST", "PUT",    "DELETE",
	                                    "PATCH", "HEAD", "OPTIONS"};
	for (size_t i = 0; i < countof(known); i++) {
		char copy[16];
		snprintf(copy, sizeof copy, "%s", known[i]);
		const char *name = httpparse_method_name(copy);
		assert_string_equal(name, known[i]);
		assert_ptr_not_equal(name, copy); /* static, not the caller's buffer */
	}
	assert_string_equal(httpparse_method_name("get"), "OTHER");
	assert_string_equal(httpparse_method_name("TRACE"), "OTHER");
	assert_string_equal(httpparse_method_name("GETS"), "OTHER");
	assert_string_equal(httpparse_method_name(""), "OTHER");
}

static void expect_path(const char *raw, const char *want)
{
	char out[64];
	memset(out, 'x', sizeof out);
	if (!httpparse_path_decode(raw, out, sizeof out))
		fail_msg("path \"%s\" refused", raw);
	assert_string_equal(out, want);
}

static void expect_bad_path(const char *raw)
{
	char out[64];
	if (httpparse_path_decode(raw, out, sizeof out))
		fail_msg("path \"%s\" accepted as \"%s\"", raw, out);
}

static void test_path_decode(void **state)
{
	(void)state;
	expect_path("", "");
	expect_path("/", "/");
	expect_path("/rooms/42", "/rooms/42");
	expect_path("/a%20b", "/a b");
	expect_path("/%41%62%63", "/Abc");
	expect_path("/%e2%82%ac", "/\xe2\x82\xac"); /* lower-case hex */
	expect_path("/%E2%82%AC", "/\xe2\x82\xac"); /* upper-case hex */
	expect_path("/rooms%2F42", "/rooms/42");    /* an encoded slash is a slash */
	expect_path("/%2500", "/%00");              /* decoded once, not twice */
	expect_path("/%01", "/\x01");
	expect_path("/%ff", "/\xff");
	expect_path("/a+b", "/a+b"); /* '+' is not a space in a path */
	/* An encoded NUL, bad or cut escapes. */
	expect_bad_path("/%00");
	expect_bad_path("/rooms/%00/x");
	expect_bad_path("%");
	expect_bad_path("/%");
	expect_bad_path("/%4");
	expect_bad_path("/%4g");
	expect_bad_path("/%g4");
	expect_bad_path("/% 4");
	expect_bad_path("/%-1");
	expect_bad_path("/%%41");
}

static void test_path_decode_length(void **state)
{
	(void)state;
	char out[8];
	/* size - 1 characters fit, one more does not; escapes count once decoded. */
	assert_true(httpparse_path_decode("/abcdef", out, sizeof out));
	assert_string_equal(out, "/abcdef");
	assert_false(httpparse_path_decode("/abcdefg", out, sizeof out));
	assert_true(httpparse_path_decode("/%61%62%63%64%65%66", out, sizeof out));
	assert_string_equal(out, "/abcdef");
	assert_false(httpparse_path_decode("/%61%62%63%64%65%66%67", out, sizeof out));
	assert_true(httpparse_path_decode("", out, 1));
	assert_string_equal(out, "");
	assert_false(httpparse_path_decode("/", out, 1));
	assert_false(httpparse_path_decode("", out, 0));

	/* A long path, as the dispatcher's 1024 + 1 byte buffer sees it. */
	char raw[2100], big[1025];
	memset(raw, 'a', sizeof raw);
	raw[0] = '/';
	raw[1024] = '\0';
	assert_true(httpparse_path_decode(raw, big, sizeof big));
	assert_int_equal(strlen(big), 1024);
	raw[1024] = 'a';
	raw[1025] = '\0';
	assert_false(httpparse_path_decode(raw, big, sizeof big));
	raw[1025] = 'a';
	raw[sizeof raw - 1] = '\0';
	assert_false(httpparse_path_decode(raw, big, sizeof big));
}

static void test_request_id(void **state)
{
	(void)state;
	char longest[HTTPPARSE_REQUEST_ID_MAX + 2];
	memset(longest, 'a', sizeof longest);
	longest[HTTPPARSE_REQUEST_ID_MAX] = '\0';
	assert_true(httpparse_request_id_valid(longest));
	longest[HTTPPARSE_REQUEST_ID_MAX] = 'a';
	longest[HTTPPARSE_REQUEST_ID_MAX + 1] = '\0';
	assert_false(httpparse_request_id_valid(longest));

	static const char *const good[] = {
		"a", "Z", "0", "-", "abc-123", "req.42_x", "0f8fad5b-d9cb-469f-a165-70867728950e"};
	for (size_t i = 0; i < countof(good); i++)
		if (!httpparse_request_id_valid(good[i]))
			fail_msg("request id \"%s\" refused", good[i]);
	static const char *const bad[] = {
		"",    " ",   "a b",      "a\tb",  "a/b",  "a:b", "a\"b", "a\r\nX-Evil: 1",
		"a,b", "a;b", "\xc3\xa9", "a%20b", "{id}", "a+b", "a\x7f"};
	for (size_t i = 0; i < countof(bad); i++)
		if (httpparse_request_id_valid(bad[i]))
			fail_msg("request id %zu accepted", i);
}

/* ---- headers ---- */

static void test_etag_listed(void **state)
{
	(void)state;
	assert_true(httpparse_etag_listed("\"3\"", "\"3\""));
	assert_true(httpparse_etag_listed("W/\"3\"", "\"3\"")); /* weak comparison */
	assert_true(httpparse_etag_listed("\"3\"", "W/\"3\""));
	assert_true(httpparse_etag_listed("*", "\"3\""));
	assert_true(httpparse_etag_listed(" \"1\" ,\"a,b\", \"3\"", "\"3\""));
	assert_true(httpparse_etag_listed("\"a,b\"", "\"a,b\"")); /* a comma inside a tag */
	assert_false(httpparse_etag_listed(NULL, "\"3\""));
	assert_false(httpparse_etag_listed("", "\"3\""));
	assert_false(httpparse_etag_listed("\"33\"", "\"3\""));
	assert_false(httpparse_etag_listed("\"3", "\"3\""));
	assert_false(httpparse_etag_listed("3", "\"3\""));
	assert_false(httpparse_etag_listed("\"a,b\"", "\"a\""));
	/* Malformed from the second tag on: what came before still counts, nothing after. */
	assert_true(httpparse_etag_listed("\"3\", garbage", "\"3\""));
	assert_false(httpparse_etag_listed("garbage, \"3\"", "\"3\""));
	/* "*" only alone. */
	assert_true(httpparse_etag_listed(" * ", "\"3\""));
	assert_false(httpparse_etag_listed("\"1\", *", "\"3\""));
	assert_false(httpparse_etag_listed("*garbage", "\"3\""));
	assert_false(httpparse_etag_listed("*, \"1\"", "\"3\""));
}

static void expect_if_match(const char *header, long long want)
{
	long long v = -1;
	if (!httpparse_if_match(header, &v))
		fail_msg("If-Match \"%s\" refused", header ? header : "(absent)");
	assert_int_equal(v, want);
}

static void expect_bad_if_match(const char *header)
{
	long long v = -1;
	if (httpparse_if_match(header, &v))
		fail_msg("If-Match \"%s\" accepted as %lld", header, v);
	assert_int_equal(v, 0);
}

static void test_if_match(void **state)
{
	(void)state;
	expect_if_match(NULL, 0);
	expect_if_match("*", 0);
	expect_if_match("  *", 0);
	expect_if_match("\"1\"", 1);
	expect_if_match("\"42\"", 42);
	expect_if_match("W/\"42\"", 42); /* weak tags compare like strong ones */
	expect_if_match("  W/\"7\"", 7);
	expect_if_match("\"007\"", 7);
	expect_if_match("\"2147483647\"", 2147483647);
	/* Not one quoted positive decimal within a PostgreSQL integer. */
	static const char *const bad[] = {
		"",
		" ",
		"* ",
		"**",
		"\"*\"",
		"42",
		"\"42",
		"42\"",
		"'42'",
		"\"\"",
		"\"0\"",
		"\"00\"",
		"\"-1\"",
		"\"+1\"",
		"\" 1\"",
		"\"1 \"",
		"\"1\" ",
		"\"1\"x",
		"\"1a\"",
		"\"0x10\"",
		"\"1.0\"",
		"\"1e3\"",
		"w/\"1\"",
		"W/ \"1\"",
		"W/W/\"1\"",
		"W/",
		"W/\"\"",
		"\"1\", \"2\"",
		"\"1\",\"2\"",
		"*, \"1\"",
		"\"2147483648\"",
		"\"9223372036854775807\"",
		"\"9223372036854775808\"",
		"\"99999999999999999999999\"",
		"\"18446744073709551617\"",
		"\"\t1\"",
		"\t\"1\"",
	};
	for (size_t i = 0; i < countof(bad); i++)
		expect_bad_if_match(bad[i]);
}

static void expect_cookie(const char *header, const char *name, const char *want)
{
	const char *v = NULL;
	size_t len = 0;
	bool found = httpparse_cookie(header, name, &v, &len);
	if (!want) {
		assert_false(found);
		return;
	}
	assert_true(found);
	assert_int_equal(len, strlen(want));
	assert_memory_equal(v, want, len);
}

static void test_cookie(void **state)
{
	(void)state;
	expect_cookie("mr_login=abc", "mr_login", "abc");
	expect_cookie("a=1; mr_login=abc; b=2", "mr_login", "abc");
	expect_cookie("a=1;mr_login=abc;b=2", "mr_login", "abc");
	expect_cookie("  mr_login=abc  ;  b=2", "mr_login", "abc");
	expect_cookie("mr_login=", "mr_login", "");
	expect_cookie("mr_login=a=b", "mr_login", "a=b");
	/* The first of two wins (the most specific path comes first). */
	expect_cookie("mr_login=first; mr_login=second", "mr_login", "first");
	/* Names compare exactly: no prefix, suffix or case variant, and a value is not a name. */
	expect_cookie("__Host-mr_login=abc", "mr_login", NULL);
	expect_cookie("__Host-mr_login=abc", "__Host-mr_login", "abc");
	expect_cookie("mr_login_x=abc", "mr_login", NULL);
	expect_cookie("MR_LOGIN=abc", "mr_login", NULL);
	expect_cookie("a=mr_login=abc", "mr_login", NULL);
	expect_cookie("mr_login", "mr_login", NULL);
	expect_cookie("", "mr_login", NULL);
	expect_cookie(";;; ", "mr_login", NULL);
	expect_cookie(NULL, "mr_login", NULL);
	expect_cookie("mr_login=abc", "", NULL);
}

static void test_is_json_type(void **state)
{
	(void)state;
	assert_true(httpparse_is_json_type("application/json"));
	assert_true(httpparse_is_json_type("Application/JSON"));
	assert_true(httpparse_is_json_type("application/json; charset=utf-8"));
	assert_true(httpparse_is_json_type("application/json;charset=UTF-8"));
	assert_true(httpparse_is_json_type("application/json "));
	assert_false(httpparse_is_json_type(NULL));
	assert_false(httpparse_is_json_type(""));
	assert_false(httpparse_is_json_type("application/jso"));
	assert_false(httpparse_is_json_type("application/jsonp"));
	assert_false(httpparse_is_json_type("application/json-patch+json"));
	assert_false(httpparse_is_json_type("application/problem+json"));
	assert_false(httpparse_is_json_type(" application/json"));
	assert_false(httpparse_is_json_type("text/json"));
	assert_false(httpparse_is_json_type("text/plain"));
}

/* ---- client addresses ---- */

static void test_cidr_list_valid(void **state)
{
	(void)state;
	size_t bad = 0;
	assert_true(httpparse_cidr_list_valid(NULL, &bad));
	assert_true(httpparse_cidr_list_valid("", &bad));
	assert_true(httpparse_cidr_list_valid(" , ", &bad));
	assert_true(httpparse_cidr_list_valid("127.0.0.1", &bad));
	assert_true(httpparse_cidr_list_valid("10.0.0.0/8, 172.16.0.0/12,192.168.0.0/16", &bad));
	assert_true(httpparse_cidr_list_valid("0.0.0.0/0,255.255.255.255/32", &bad));
	/* Host bits beyond the prefix are ignored, as nginx does. */
	assert_true(httpparse_cidr_list_valid("10.1.2.3/8", &bad));
	static const char *const invalid[] = {
		"10.0.0.0/33",
		"10.0.0.0/-1",
		"10.0.0.0/",
		"10.0.0.0/8x",
		"10.0.0.0/ 8",
		"10.0.0",
		"10.0.0.256",
		"10.0.0.1.2",
		"010.0.0.1",
		"localhost",
		"::1",
		"fc00::/7",
		"/8",
		"10.0.0.0//8",
		"10.0.0.0/8/8",
		"1.2.3.4 5.6.7.8",
		"10.0.0.0/0008x",
		"123456789012345678901234567890",
	};
	for (size_t i = 0; i < countof(invalid); i++) {
		char list[96];
		snprintf(list, sizeof list, "127.0.0.1, %s ,10.0.0.0/8", invalid[i]);
		bad = 0;
		if (httpparse_cidr_list_valid(list, &bad))
			fail_msg("accepted \"%s\"", invalid[i]);
		assert_int_equal(bad, 2);
	}
	assert_false(httpparse_cidr_list_valid("nope", &bad));
	assert_int_equal(bad, 1);
}

static void test_cidr_match(void **state)
{
	(void)state;
	assert_true(httpparse_cidr_match("127.0.0.1", "127.0.0.1"));
	assert_false(httpparse_cidr_match("127.0.0.1", "127.0.0.2"));
	assert_true(httpparse_cidr_match("10.0.0.0/8", "10.255.1.2"));
	assert_false(httpparse_cidr_match("10.0.0.0/8", "11.0.0.1"));
	assert_false(httpparse_cidr_match("10.0.0.0/8", "9.255.255.255"));
	assert_true(httpparse_cidr_match("172.16.0.0/12", "172.31.255.255"));
	assert_false(httpparse_cidr_match("172.16.0.0/12", "172.32.0.0"));
	assert_true(httpparse_cidr_match("10.1.2.3/8", "10.9.9.9"));
	assert_true(httpparse_cidr_match("0.0.0.0/0", "203.0.113.7"));
	assert_true(httpparse_cidr_match("192.0.2.1/32", "192.0.2.1"));
	assert_false(httpparse_cidr_match("192.0.2.1/32", "192.0.2.0"));
	assert_true(httpparse_cidr_match("192.0.2.128/25", "192.0.2.200"));
	assert_false(httpparse_cidr_match("192.0.2.128/25", "192.0.2.127"));
	/* Any item of the list; invalid items match nothing, the others still do. */
	assert_true(httpparse_cidr_match("bogus, 10.0.0.0/33, 192.168.0.0/16", "192.168.7.7"));
	assert_false(httpparse_cidr_match("bogus, 10.0.0.0/33", "10.0.0.1"));
	/* No list, an empty list or no usable address: nothing matches. */
	assert_false(httpparse_cidr_match(NULL, "127.0.0.1"));
	assert_false(httpparse_cidr_match("", "127.0.0.1"));
	assert_false(httpparse_cidr_match("0.0.0.0/0", NULL));
	assert_false(httpparse_cidr_match("0.0.0.0/0", ""));
	assert_false(httpparse_cidr_match("0.0.0.0/0", "::1"));
	assert_false(httpparse_cidr_match("0.0.0.0/0", "127.0.0.1 "));
}

static void expect_client(const char *real_ip, const char *peer, const char *trusted,
                          const char *want)
{
	char out[64];
	httpparse_client_addr(real_ip, peer, trusted, out, sizeof out);
	assert_string_equal(out, want);
}

static void test_client_addr(void **state)
{
	(void)state;
	const char *gw = "127.0.0.1, 10.0.0.0/8";
	/* From a trusted gateway the header names the client. */
	expect_client("203.0.113.7", "127.0.0.1", gw, "203.0.113.7");
	expect_client("203.0.113.7", "10.4.5.6", gw, "203.0.113.7");
	expect_client("  203.0.113.7 ", "10.4.5.6", gw, "203.0.113.7");
	/* IPv6 by its /64 in one spelling; IPv4-mapped as IPv4. */
	expect_client("2001:db8::7", "10.4.5.6", gw, "2001:db8::/64");
	expect_client("2001:DB8:0:0:ffff:1:2:3", "10.4.5.6", gw, "2001:db8::/64");
	expect_client("2001:0db8:0001:0002:0003:0004:0005:0006", "10.4.5.6", gw,
	              "2001:db8:1:2::/64");
	expect_client("2001:db8:1:2::", "10.4.5.6", gw, "2001:db8:1:2::/64");
	expect_client("2001:db8:1:3::1", "10.4.5.6", gw, "2001:db8:1:3::/64");
	expect_client("::1", "10.4.5.6", gw, "::/64");
	expect_client("::ffff:203.0.113.7", "10.4.5.6", gw, "203.0.113.7");
	/* From anyone else it is ignored. */
	expect_client("203.0.113.7", "192.0.2.9", gw, "192.0.2.9");
	expect_client("203.0.113.7", "127.0.0.1", NULL, "127.0.0.1");
	expect_client("203.0.113.7", "127.0.0.1", "", "127.0.0.1");
	/* No header, or one that names no address, leaves the peer. */
	expect_client(NULL, "127.0.0.1", gw, "127.0.0.1");
	expect_client("", "127.0.0.1", gw, "127.0.0.1");
	expect_client("   ", "127.0.0.1", gw, "127.0.0.1");
	expect_client("203.0.113.7, 198.51.100.1", "127.0.0.1", gw, "127.0.0.1");
	expect_client("evil", "127.0.0.1", gw, "127.0.0.1");
	expect_client("203.0.113.256", "127.0.0.1", gw, "127.0.0.1");
	expect_client("1111:2222:3333:4444:5555:6666:7777:8888:9999", "127.0.0.1", gw, "127.0.0.1");
	/* Bounded by the output buffer. */
	char small[4];
	httpparse_client_addr("203.0.113.7", "127.0.0.1", gw, small, sizeof small);
	assert_string_equal(small, "203");
}

/* ---- values ---- */

static void test_positive_id(void **state)
{
	(void)state;
	long long id = -1;
	assert_true(httpparse_positive_id("1", &id));
	assert_int_equal(id, 1);
	assert_true(httpparse_positive_id("42", &id));
	assert_int_equal(id, 42);
	assert_true(httpparse_positive_id("999999999999999999", &id)); /* 18 digits */
	assert_int_equal(id, 999999999999999999LL);
	static const char *const bad[] = {"",
	                                  "0",
	                                  "00",
	                                  "01",
	                                  "-1",
	                                  "+1",
	                                  " 1",
	                                  "1 ",
	                                  "1a",
	                                  "a",
	                                  "1.0",
	                                  "0x1",
	                                  "1e3",
	                                  "1000000000000000000", /* 19 digits */
	                                  "9223372036854775807",
	                                  "9223372036854775808",
	                                  "99999999999999999999999"};
	for (size_t i = 0; i < countof(bad); i++) {
		id = -1;
		if (httpparse_positive_id(bad[i], &id))
			fail_msg("id \"%s\" accepted", bad[i]);
		assert_int_equal(id, -1); /* untouched on failure */
	}
}

static void test_int(void **state)
{
	(void)state;
	long long v = 0;
	assert_true(httpparse_int("1", 1, 200, &v));
	assert_int_equal(v, 1);
	assert_true(httpparse_int("200", 1, 200, &v));
	assert_int_equal(v, 200);
	assert_true(httpparse_int("-5", -10, 10, &v));
	assert_int_equal(v, -5);
	assert_true(httpparse_int("-0", 0, 1, &v));
	assert_int_equal(v, 0);
	assert_true(httpparse_int("007", 1, 10, &v));
	assert_int_equal(v, 7);
	assert_true(httpparse_int("9007199254740991", 1, 9007199254740991LL, &v));
	assert_true(httpparse_int("9223372036854775807", 0, LLONG_MAX, &v));
	assert_true(v == LLONG_MAX);
	assert_true(httpparse_int("-9223372036854775808", LLONG_MIN, 0, &v));
	assert_true(v == LLONG_MIN);

	static const char *const bad[] = {"",    "-",   "+1",  " 1",   "1 ",  "1a",  "a",
	                                  "--1", "- 1", "1.5", "0x10", "1e3", "201", "0"};
	for (size_t i = 0; i < countof(bad); i++) {
		v = -7;
		if (httpparse_int(bad[i], 1, 200, &v))
			fail_msg("integer \"%s\" accepted", bad[i]);
		assert_int_equal(v, -7);
	}
	/* Beyond 64 bits is out of every range, not clamped into it. */
	assert_false(httpparse_int("9223372036854775808", 0, LLONG_MAX, &v));
	assert_false(httpparse_int("99999999999999999999", 0, LLONG_MAX, &v));
	assert_false(httpparse_int("-9223372036854775809", LLONG_MIN, 0, &v));
	assert_false(httpparse_int("9007199254740992", 1, 9007199254740991LL, &v));
}

static void test_bool(void **state)
{
	(void)state;
	static const char *const yes[] = {"true", "TRUE", "True", "1"};
	static const char *const no[] = {"false", "FALSE", "fAlSe", "0"};
	static const char *const bad[] = {"", "t", "yes", "on", "2", "01", " true", "true ", "10"};
	bool b;
	for (size_t i = 0; i < countof(yes); i++) {
		b = false;
		assert_true(httpparse_bool(yes[i], &b));
		assert_true(b);
	}
	for (size_t i = 0; i < countof(no); i++) {
		b = true;
		assert_true(httpparse_bool(no[i], &b));
		assert_false(b);
	}
	for (size_t i = 0; i < countof(bad); i++)
		if (httpparse_bool(bad[i], &b))
			fail_msg("boolean \"%s\" accepted", bad[i]);
}

/* ---- the next-page Link ---- */

static void expect_link(const char *path, const char *query, const char *want)
{
	char *link = httpparse_next_link(path, query, "WzEsMl0");
	assert_non_null(link);
	assert_string_equal(link, want);
	free(link);
}

static void test_next_link(void **state)
{
	(void)state;
	expect_link("/rooms", NULL, "</rooms?cursor=WzEsMl0>; rel=\"next\"");
	expect_link("/rooms", "", "</rooms?cursor=WzEsMl0>; rel=\"next\"");
	expect_link("/rooms", "limit=2", "</rooms?limit=2&cursor=WzEsMl0>; rel=\"next\"");
	/* The old cursor goes, every other parameter stays as sent, in order. */
	expect_link("/rooms", "limit=2&cursor=old&q=a%20b",
	            "</rooms?limit=2&q=a%20b&cursor=WzEsMl0>; rel=\"next\"");
	expect_link("/rooms", "cursor=old", "</rooms?cursor=WzEsMl0>; rel=\"next\"");
	expect_link("/rooms", "cursor", "</rooms?cursor=WzEsMl0>; rel=\"next\"");
	expect_link("/rooms", "cursor=a&cursor=b&limit=1",
	            "</rooms?limit=1&cursor=WzEsMl0>; rel=\"next\"");
	/* Only the parameter named exactly cursor. */
	expect_link("/rooms", "cursors=1&xcursor=2&Cursor=3",
	            "</rooms?cursors=1&xcursor=2&Cursor=3&cursor=WzEsMl0>; rel=\"next\"");
	/* Empty parameters are dropped. */
	expect_link("/rooms", "&&limit=2&&", "</rooms?limit=2&cursor=WzEsMl0>; rel=\"next\"");
	expect_link("/rooms", "&", "</rooms?cursor=WzEsMl0>; rel=\"next\"");
	expect_link("/admin/users", "role=admin",
	            "</admin/users?role=admin&cursor=WzEsMl0>; rel=\"next\"");
}

static void test_next_link_capacity(void **state)
{
	(void)state;
	/* Worst cases for the size estimate: many one-character parameters, a long cursor. */
	char query[1002], cursor[600];
	for (size_t i = 0; i < sizeof query - 1; i++)
		query[i] = i % 2 ? '&' : 'a';
	query[sizeof query - 1] = '\0';
	memset(cursor, 'c', sizeof cursor - 1);
	cursor[sizeof cursor - 1] = '\0';
	char *link = httpparse_next_link("/p", query, cursor);
	assert_non_null(link);
	size_t len = strlen(link);
	/* "</p?" + 501 × "a&" + "cursor=" + cursor + ">; rel=\"next\"" */
	assert_int_equal(len, 4 + 501 * 2 + 7 + strlen(cursor) + 13);
	free(link);

	link = httpparse_next_link("", "a", "");
	assert_non_null(link);
	assert_string_equal(link, "<?a&cursor=>; rel=\"next\"");
	free(link);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_list_next),
		cmocka_unit_test(test_list_next_points_into_list),
		cmocka_unit_test(test_list_has),
		cmocka_unit_test(test_origin_allowed),
		cmocka_unit_test(test_method_name),
		cmocka_unit_test(test_path_decode),
		cmocka_unit_test(test_path_decode_length),
		cmocka_unit_test(test_request_id),
		cmocka_unit_test(test_if_match),
		cmocka_unit_test(test_etag_listed),
		cmocka_unit_test(test_cookie),
		cmocka_unit_test(test_is_json_type),
		cmocka_unit_test(test_cidr_list_valid),
		cmocka_unit_test(test_cidr_match),
		cmocka_unit_test(test_client_addr),
		cmocka_unit_test(test_positive_id),
		cmocka_unit_test(test_int),
		cmocka_unit_test(test_bool),
		cmocka_unit_test(test_next_link),
		cmocka_unit_test(test_next_link_capacity),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
