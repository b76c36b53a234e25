/* Unit tests of common/src/encoding.c: base64url (RFC 4648 §5, unpadded), hex, UTF-8 checks
 * and sanitizing. */
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
	const char *padded[] = {
		"Zg==", "Zm8=",  "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy=", "Zm9vYmFy==", "Zm9vYmFy====",
		"Zg=",  "Zg===", "Zm8==",    "AAAA=",    "=",         "=="};
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
					fail_msg("\"%.*s\" decoded but encodes back as \"%s\"",
					         (int)slen, s, e);
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
	const struct vector padded[] = {{"f", 1, "Zg=="},
	                                {"fo", 2, "Zm8="},
	                                {"foob", 4, "Zm9vYg=="},
	                                {"foobar", 6, "Zm9vYmFy"},
	                                {"fooba", 5, "Zm9vYmE="},
	                                {"f", 1, "Zg"},
	                                {"", 0, ""}};
	for (size_t i = 0; i < countof(padded); i++) {
		size_t n = 0;
		unsigned char *d = enc_b64url_decode_lenient(padded[i].enc, strlen(padded[i].enc),
		                                             &n);
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
		"Z===", /* one character of data */
		"=",
		"==",
		"====",
		"Zm9=",     /* padded but non-canonical: "fo" is Zm8= */
		"Zh==",     /* non-canonical: trailing bits of "f" set */
		"Zm=9",     /* padding in the middle */
		"Zm9v+A==", /* standard alphabet */
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
		"Zm9v+A",     /* standard-alphabet '+' */
		"Zm9v/w",     /* standard-alphabet '/' */
		"Zm 9v",      /* space */
		"Zm9v\n",     /* newline */
		"Zm9v\r\nYg", /* line break inside */
		"Z=g",        /* padding in the middle */
		"Zm9v=Yg",    /* padding in the middle */
		"Zm9v.",      /* JWS separator */
		"Zh",         /* non-canonical: trailing bits of "f" set */
		"Zm9",        /* non-canonical: "fo" is Zm8 */
		"Zm9vYh",     /* non-canonical */
		"____",       /* fine: all ones, 3 bytes */
		"Z",          /* length % 4 == 1 */
		"Zm9vY",      /* length % 4 == 1 */
		"Zm9vYmFyZ",  /* length % 4 == 1 */
		"Z===",       /* one character of data */
		"\xc3\xa9",   /* non-ASCII */
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
				assert_non_null(strchr(
					"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
					"0123456789-_",
					e[i]));
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
	static const char *const good[] = {
		"", "abc", "\xc3\xa9", "\xe5\x90\x8d", "\xf0\x9f\x98\x80", "\xf4\x8f\xbf\xbf"};
	static const char *const bad[] = {
		"\xff",
		"\xc3",
		"abc\xc3\x28",
		"\xc0\xaf", /* stray, cut, bad tail, overlong */
		"\xe0\x80\xaf",
		"\xed\xa0\x80", /* overlong, surrogate */
		"\xf4\x90\x80\x80",
		"\xf8\x88\x80\x80\x80", /* > U+10FFFF, 5-byte form */
	};
	for (size_t i = 0; i < countof(good); i++)
		assert_true(enc_utf8_valid(good[i], strlen(good[i])));
	for (size_t i = 0; i < countof(bad); i++)
		if (enc_utf8_valid(bad[i], strlen(bad[i])))
			fail_msg("bad sequence %zu accepted", i);
}

/* ---- enc_utf8_sanitize (issue 11 item 13) ---- */

#define FFFD "\xef\xbf\xbd"
#define ELLIPSIS "\xe2\x80\xa6"

/* Calls enc_utf8_sanitize on a buffer with guard bytes after size, checks what every result must
 * satisfy (well-formed, NUL-terminated, within size, length returned, guards untouched) and
 * returns the text in out. */
static void sanitize(char *out, size_t size, const char *s, size_t len, bool truncated)
{
	char buf[4096 + 16];
	assert_true(size <= 4096);
	memset(buf, 'G', sizeof buf);
	size_t n = enc_utf8_sanitize(buf, size, s, len, truncated);
	assert_true(n < size);
	assert_int_equal(buf[n], '\0');
	assert_int_equal(strlen(buf), n);
	assert_true(enc_utf8_valid(buf, n));
	for (size_t i = size; i < sizeof buf; i++)
		assert_int_equal(buf[i], 'G');
	memcpy(out, buf, n + 1);
}

static void test_sanitize_copies_what_fits(void **state)
{
	(void)state;
	char out[64];
	static const char *const fine[] = {"",
	                                   "abc",
	                                   "caf\xc3\xa9",
	                                   "\xe5\x90\x8d\xe5\x89\x8d",
	                                   "\xf0\x9f\x98\x80!",
	                                   "\xf4\x8f\xbf\xbf",
	                                   FFFD,
	                                   ELLIPSIS};
	for (size_t i = 0; i < countof(fine); i++) {
		sanitize(out, sizeof out, fine[i], strlen(fine[i]), false);
		assert_string_equal(out, fine[i]);
	}
	/* Exactly size - 1 bytes fit as they are, with no ellipsis. */
	sanitize(out, 6, "ab\xe2\x82\xac", 5, false);
	assert_string_equal(out, "ab\xe2\x82\xac");
	/* The smallest buffer holds the ellipsis alone, or a text of up to three bytes. */
	sanitize(out, 4, "abcd", 4, false);
	assert_string_equal(out, ELLIPSIS);
	sanitize(out, 4, "\xc3\xa9!", 3, false);
	assert_string_equal(out, "\xc3\xa9!");
	sanitize(out, 4, "", 0, true);
	assert_string_equal(out, ELLIPSIS);
}

/* A text too long is cut after the last whole character that leaves room for "…": never inside
 * a 2-, 3- or 4-byte character, whatever the size. */
static void test_sanitize_cuts_on_character_boundaries(void **state)
{
	(void)state;
	static const char *const chars[] = {"a", "\xc3\xa9", "\xe2\x82\xac", "\xf0\x9f\x98\x80"};
	char text[64], out[64], want[64];
	for (size_t c = 0; c < countof(chars); c++) {
		size_t w = strlen(chars[c]), len = 10 * w;
		for (size_t i = 0; i < 10; i++)
			memcpy(text + i * w, chars[c], w);
		for (size_t size = 4; size <= len + 1; size++) {
			sanitize(out, size, text, len, false);
			if (size > len) {
				assert_memory_equal(out, text, len);
				assert_int_equal(strlen(out), len);
				continue;
			}
			size_t keep = (size - 4) / w * w; /* whole characters before "…" and NUL */
			memcpy(want, text, keep);
			memcpy(want + keep, ELLIPSIS, 4);
			if (strcmp(out, want) != 0)
				fail_msg("%zu-byte characters, size %zu: got \"%s\"", w, size, out);
		}
	}
}

/* truncated: the input is a prefix cut by its producer.  It ends with "…", and a character cut
 * in the middle is dropped (not turned into U+FFFD). */
static void test_sanitize_truncated_input(void **state)
{
	(void)state;
	char out[64];
	sanitize(out, sizeof out, "abc", 3, true);
	assert_string_equal(out, "abc" ELLIPSIS);
	sanitize(out, sizeof out, "ab\xc3", 3, true);
	assert_string_equal(out, "ab" ELLIPSIS);
	sanitize(out, sizeof out, "ab\xe2\x82", 4, true);
	assert_string_equal(out, "ab" ELLIPSIS);
	for (size_t cut = 1; cut < 4; cut++) {
		sanitize(out, sizeof out, "x\xf0\x9f\x98\x80", 1 + cut, true);
		assert_string_equal(out, "x" ELLIPSIS);
	}
	/* An ill-formed byte at the end is not a cut character: it is replaced. */
	sanitize(out, sizeof out, "ab\xff", 3, true);
	assert_string_equal(out, "ab" FFFD ELLIPSIS);
	/* No room left for the ellipsis after the whole text: the last character makes way. */
	sanitize(out, 6, "abcde", 5, true);
	assert_string_equal(out, "ab" ELLIPSIS);
	/* The same input not known to be cut: the unfinished character is ill-formed. */
	sanitize(out, sizeof out, "ab\xe2\x82", 4, false);
	assert_string_equal(out, "ab" FFFD);
}

/* Ill-formed input: each maximal subpart of an ill-formed sequence becomes one U+FFFD (Unicode
 * §3.9; what Python's bytes.decode("utf-8", "replace") gives too). */
static void test_sanitize_replaces_ill_formed(void **state)
{
	(void)state;
	static const struct {
		const char *in, *want;
	} cases[] = {
		/* clang-format off */
		{"\xff", FFFD},
		{"/rooms/\xff", "/rooms/" FFFD},
		{"a\xff" "b", "a" FFFD "b"},
		{"\xc3", FFFD},                                      /* cut at the end */
		{"\xc3\x28", FFFD "("},                              /* bad second byte */
		{"\xc0\xaf", FFFD FFFD},                             /* overlong '/' */
		{"\xe0\x80\xaf", FFFD FFFD FFFD},                    /* overlong, 3 bytes */
		{"\xed\xa0\x80", FFFD FFFD FFFD},                    /* surrogate U+D800 */
		{"\xf4\x90\x80\x80", FFFD FFFD FFFD FFFD},           /* above U+10FFFF */
		{"\xf0\x80\x80", FFFD FFFD FFFD},                    /* overlong, 4 bytes */
		{"\xf8\x88\x80\x80\x80", FFFD FFFD FFFD FFFD FFFD}, /* 5-byte form */
		{"\xe2\x82", FFFD},                                  /* one subpart, one U+FFFD */
		{"\xe2\x82" "A", FFFD "A"},
		{"\xf0\x9f\x98", FFFD},
		{"\x80\x80", FFFD FFFD},                             /* stray continuation bytes */
		{"\xe1\x80\xe2\xf0\x91\x92\xf1\xbf" "A", FFFD FFFD FFFD FFFD "A"},
		{"\xc3\xa9\xff\xc3\xa9", "\xc3\xa9" FFFD "\xc3\xa9"},
	};
	/* clang-format on */
	char out[64];
	for (size_t i = 0; i < countof(cases); i++) {
		sanitize(out, sizeof out, cases[i].in, strlen(cases[i].in), false);
		if (strcmp(out, cases[i].want) != 0)
			fail_msg("case %zu: got \"%s\"", i, out);
	}
	/* Replacement grows the text (1 byte -> 3): the cut still comes after a whole U+FFFD. */
	sanitize(out, 16, "\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff", 10, false);
	assert_string_equal(out, FFFD FFFD FFFD FFFD ELLIPSIS);
	/* Each byte becomes at most 3: a buffer of 3 * len + 1 is never too small. */
	sanitize(out, 31, "\xff\xfe\x80\xc0\xc1\xf5\xf8\xfc\xfe\xff", 10, false);
	assert_int_equal(strlen(out), 30);
}

/* Whatever the bytes and the size, the result is well-formed, fits, and a text that fits and is
 * well-formed comes out unchanged (sanitize() checks the first two). */
static void test_sanitize_random(void **state)
{
	(void)state;
	static const unsigned char alphabet[] = {'a',  0x7f, 0x80, 0x8f, 0x90, 0x9f, 0xa0,
	                                         0xbf, 0xc0, 0xc2, 0xdf, 0xe0, 0xe1, 0xed,
	                                         0xee, 0xef, 0xf0, 0xf1, 0xf4, 0xf5, 0xff};
	char in[64], out[256];
	srand(1313);
	for (int round = 0; round < 20000; round++) {
		size_t len = (size_t)rand() % sizeof in;
		for (size_t i = 0; i < len; i++)
			in[i] = (char)alphabet[(size_t)rand() % sizeof alphabet];
		size_t size = 4 + (size_t)rand() % (sizeof out - 4);
		bool truncated = rand() % 4 == 0;
		sanitize(out, size, in, len, truncated);
		if (!truncated && len < size && enc_utf8_valid(in, len))
			assert_memory_equal(out, in, len);
	}
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
		cmocka_unit_test(test_sanitize_copies_what_fits),
		cmocka_unit_test(test_sanitize_cuts_on_character_boundaries),
		cmocka_unit_test(test_sanitize_truncated_input),
		cmocka_unit_test(test_sanitize_replaces_ill_formed),
		cmocka_unit_test(test_sanitize_random),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
