/* Unit tests of common/src/encoding.c: base64url (RFC 4648 §5, unpadded) and hex. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "countof.h"
#include "encoding.h"

struct vector {
	const char *raw;
	size_t len;
	const char *enc;
};

/* RFC 4648 §10 test vectors without padding, plus §9's example in the URL alphabet. */
static const struct vector vectors[] = {
	{"", 0, ""},
	{"f", 1, "Zg"},
	{"fo", 2, "Zm8"},
	{"foo", 3, "Zm9v"},
	{"foob", 4, "Zm9vYg"},
	{"fooba", 5, "Zm9vYmE"},
	{"foobar", 6, "Zm9vYmFy"},
	{"\x14\xfb\x9c\x03\xd9\x7e", 6, "FPucA9l-"},
	{"\x14\xfb\x9c\x03\xd9", 5, "FPucA9k"},
	{"\x14\xfb\x9c\x03", 4, "FPucAw"},
	/* The two characters that differ from the standard alphabet. */
	{"\xfb\xef\xbe", 3, "----"},
	{"\xff\xff", 2, "__8"},
	{"\xfb", 1, "-w"},
	{"\0\0\0", 3, "AAAA"},
};
#define NVECTORS countof(vectors)

static void test_encode_vectors(void **state)
{
	(void)state;
	for (size_t i = 0; i < NVECTORS; i++) {
		char *e = enc_b64url_encode(vectors[i].raw, vectors[i].len);
		assert_non_null(e);
		assert_string_equal(e, vectors[i].enc);
		free(e);
	}
}

static void test_decode_vectors(void **state)
{
	(void)state;
	for (size_t i = 0; i < NVECTORS; i++) {
		size_t n = 12345;
		unsigned char *d = enc_b64url_decode(vectors[i].enc, strlen(vectors[i].enc), &n);
		assert_non_null(d);
		assert_int_equal(n, vectors[i].len);
		assert_memory_equal(d, vectors[i].raw, n);
		assert_int_equal(d[n], '\0');
		free(d);
	}
}

/* Item 4 of issue 11: one byte string, one spelling.  Padding (correct or not) is refused by
 * the canonical decoder that JWS parts and cursors use. */
static void test_decode_rejects_padding(void **state)
{
	(void)state;
	const char *padded[] = {"Zg==", "Zm8=", "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy=", "Zm9vYmFy==",
	                        "Zm9vYmFy====", "Zg=", "Zg===", "Zm8==", "AAAA=", "=", "=="};
	for (size_t i = 0; i < countof(padded); i++) {
		size_t n = 0;
		unsigned char *d = enc_b64url_decode(padded[i], strlen(padded[i]), &n);
		if (d)
			fail_msg("canonical decoder accepted padded \"%s\"", padded[i]);
	}
}

/* Whatever the canonical decoder accepts encodes back to exactly the same text: no padding, no
 * second choice of unused low bits in the last character.  Exhaustive over every string of up
 * to three characters from the alphabet plus '=', alone and after a full group. */
static void test_decode_only_canonical(void **state)
{
	(void)state;
	static const char chars[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_=";
	const size_t nc = sizeof chars - 1;
	char s[8];
	size_t accepted = 0;
	for (size_t prefix = 0; prefix <= 4; prefix += 4) {
		memcpy(s, "QUJD", 4); /* "ABC" */
		for (size_t len = 1; len <= 3; len++) {
			size_t total = 1;
			for (size_t i = 0; i < len; i++)
				total *= nc;
			for (size_t k = 0; k < total; k++) {
				size_t v = k;
				for (size_t i = 0; i < len; i++, v /= nc)
					s[prefix + i] = chars[v % nc];
				size_t slen = prefix + len, n = 0;
				unsigned char *d = enc_b64url_decode(s, slen, &n);
				if (!d)
					continue;
				accepted++;
				char *e = enc_b64url_encode(d, n);
				assert_non_null(e);
				if (strlen(e) != slen || memcmp(e, s, slen) != 0)
					fail_msg("\"%.*s\" decoded but encodes back as \"%s\"", (int)slen, s, e);
				free(e);
				free(d);
			}
		}
	}
	/* 2 * (64 * 4 two-character and 64 * 64 * 16 three-character spellings) */
	assert_int_equal(accepted, 2 * (64 * 4 + 64 * 64 * 16));
}

/* The lenient decoder (JWK n and e from the provider) takes RFC 4648 padding as well. */
static void test_decode_lenient_accepts_padding(void **state)
{
	(void)state;
	const struct vector padded[] = {
		{"f", 1, "Zg=="}, {"fo", 2, "Zm8="}, {"foob", 4, "Zm9vYg=="}, {"foobar", 6, "Zm9vYmFy"},
		{"fooba", 5, "Zm9vYmE="}, {"f", 1, "Zg"}, {"", 0, ""}};
	for (size_t i = 0; i < countof(padded); i++) {
		size_t n = 0;
		unsigned char *d = enc_b64url_decode_lenient(padded[i].enc, strlen(padded[i].enc), &n);
		assert_non_null(d);
		assert_int_equal(n, padded[i].len);
		assert_memory_equal(d, padded[i].raw, n);
		free(d);
	}
}

/* ... but only padding that completes the last group of four, and nothing else. */
static void test_decode_lenient_rejects(void **state)
{
	(void)state;
	const char *bad[] = {
		"Zg=",          /* one '=' short */
		"Zg===",        /* one too many */
		"Zm8==",        /* one too many */
		"Zm9vYmFy=",    /* padding after a full group */
		"Zm9vYmFy====", /* a whole group of padding */
		"Zm9v====",
		"Z===",         /* one character of data */
		"=", "==", "====",
		"Zm9=",         /* padded but non-canonical: "fo" is Zm8= */
		"Zh==",         /* non-canonical: trailing bits of "f" set */
		"Zm=9",         /* padding in the middle */
		"Zm9v+A==",     /* standard alphabet */
	};
	for (size_t i = 0; i < countof(bad); i++) {
		size_t n = 0;
		unsigned char *d = enc_b64url_decode_lenient(bad[i], strlen(bad[i]), &n);
		if (d)
			fail_msg("lenient decoder accepted \"%s\"", bad[i]);
	}
}

/* The length argument is what counts, not a NUL. */
static void test_decode_uses_length(void **state)
{
	(void)state;
	size_t n = 0;
	unsigned char *d = enc_b64url_decode("Zm9vYmFyXXXX", 8, &n);
	assert_non_null(d);
	assert_int_equal(n, 6);
	assert_memory_equal(d, "foobar", 6);
	free(d);
}

static void test_decode_rejects(void **state)
{
	(void)state;
	const char *bad[] = {
		"Zm9v+A",   /* standard-alphabet '+' */
		"Zm9v/w",   /* standard-alphabet '/' */
		"Zm 9v",    /* space */
		"Zm9v\n",   /* newline */
		"Zm9v\r\nYg", /* line break inside */
		"Z=g",      /* padding in the middle */
		"Zm9v=Yg",  /* padding in the middle */
		"Zm9v.",    /* JWS separator */
		"Zh",       /* non-canonical: trailing bits of "f" set */
		"Zm9",      /* non-canonical: "fo" is Zm8 */
		"Zm9vYh",   /* non-canonical */
		"____",     /* fine: all ones, 3 bytes */
		"Z",        /* length % 4 == 1 */
		"Zm9vY",    /* length % 4 == 1 */
		"Zm9vYmFyZ", /* length % 4 == 1 */
		"Z===",     /* one character of data */
		"\xc3\xa9", /* non-ASCII */
	};
	for (size_t i = 0; i < countof(bad); i++) {
		size_t n = 0;
		unsigned char *d = enc_b64url_decode(bad[i], strlen(bad[i]), &n);
		if (strcmp(bad[i], "____") == 0) {
			assert_non_null(d);
			assert_int_equal(n, 3);
			assert_memory_equal(d, "\xff\xff\xff", 3);
			free(d);
			continue;
		}
		if (d)
			fail_msg("decoded invalid base64url \"%s\"", bad[i]);
	}
	/* An embedded NUL is an invalid character, not the end. */
	size_t n = 0;
	assert_null(enc_b64url_decode("Zm\0v", 4, &n));
}

static void test_round_trip_random(void **state)
{
	(void)state;
	srand(4242);
	unsigned char buf[100];
	for (int round = 0; round < 20; round++) {
		for (size_t len = 0; len <= sizeof buf; len++) {
			for (size_t i = 0; i < len; i++)
				buf[i] = (unsigned char)(rand() & 0xff);
			char *e = enc_b64url_encode(buf, len);
			assert_non_null(e);
			size_t elen = strlen(e);
			assert_int_equal(elen, (len * 4 + 2) / 3); /* no padding */
			for (size_t i = 0; i < elen; i++)
				assert_non_null(strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
				                       "0123456789-_", e[i]));
			size_t n = 999;
			unsigned char *d = enc_b64url_decode(e, elen, &n);
			assert_non_null(d);
			assert_int_equal(n, len);
			if (len)
				assert_memory_equal(d, buf, len);
			free(d);
			free(e);
		}
	}
}

static void test_hex(void **state)
{
	(void)state;
	char out[64];
	memset(out, 'x', sizeof out);
	enc_hex("\x00\x01\xab\xff\x10\x7f", 6, out);
	assert_string_equal(out, "0001abff107f");
	memset(out, 'x', sizeof out);
	enc_hex("", 0, out);
	assert_string_equal(out, "");
	unsigned char all[16];
	for (size_t i = 0; i < 16; i++)
		all[i] = (unsigned char)(i * 17);
	enc_hex(all, sizeof all, out);
	assert_string_equal(out, "00112233445566778899aabbccddeeff");
}

static void test_utf8_valid(void **state)
{
	(void)state;
	static const char *const good[] = {"", "abc", "\xc3\xa9", "\xe5\x90\x8d",
	                                   "\xf0\x9f\x98\x80", "\xf4\x8f\xbf\xbf"};
	static const char *const bad[] = {
		"\xff", "\xc3", "abc\xc3\x28", "\xc0\xaf",          /* stray, cut, bad tail, overlong */
		"\xe0\x80\xaf", "\xed\xa0\x80",                      /* overlong, surrogate */
		"\xf4\x90\x80\x80", "\xf8\x88\x80\x80\x80",          /* > U+10FFFF, 5-byte form */
	};
	for (size_t i = 0; i < countof(good); i++)
		assert_true(enc_utf8_valid(good[i], strlen(good[i])));
	for (size_t i = 0; i < countof(bad); i++)
		if (enc_utf8_valid(bad[i], strlen(bad[i])))
			fail_msg("bad sequence %zu accepted", i);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_encode_vectors),
		cmocka_unit_test(test_decode_vectors),
		cmocka_unit_test(test_decode_rejects_padding),
		cmocka_unit_test(test_decode_only_canonical),
		cmocka_unit_test(test_decode_lenient_accepts_padding),
		cmocka_unit_test(test_decode_lenient_rejects),
		cmocka_unit_test(test_decode_uses_length),
		cmocka_unit_test(test_decode_rejects),
		cmocka_unit_test(test_round_trip_random),
		cmocka_unit_test(test_hex),
		cmocka_unit_test(test_utf8_valid),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
