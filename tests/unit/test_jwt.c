/* Unit tests of common/src/jwt.c: HS256 sign/verify, RS256 verify against a JWKS, claim checks.
 * Published vectors: RFC 7515 appendix A.1 (HS256) and A.2 (RS256). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rsa.h>

#include "countof.h"
#include "encoding.h"
#include "jws_sign.h"
#include "jwt.h"

/* RFC 7515 A.1: header {"typ":"JWT",\r\n "alg":"HS256"}, payload
 * {"iss":"joe",\r\n "exp":1300819380,\r\n "http://example.com/is_root":true}. */
#define A1_HEADER "eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9"
#define A1_PAYLOAD \
	"eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ"
#define A1_SIG "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
static const char a1_token[] = A1_HEADER "." A1_PAYLOAD "." A1_SIG;
/* The JWK {"kty":"oct", "k":…} of A.1. */
static const char a1_k[] =
	"AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-1qS0gZH75aKtMN3Yj0iPS4hcgUuTwjAzZr1Z9CAow";

/* RFC 7515 A.2: header {"alg":"RS256"}, same payload, and the RSA public key's n and e. */
/* clang-format off */
static const char a2_token[] =
	"eyJhbGciOiJSUzI1NiJ9"
	"." A1_PAYLOAD
	".cC4hiUPoj9Eetdgtv3hF80EGrhuB__dzERat0XF9g2VtQgr9PJbu3XOiZj5RZmh7"
	"AAuHIm4Bh-0Qc_lF5YKt_O8W2Fp5jujGbds9uJdbF9CUAr7t1dnZcAcQjbKBYNX4"
	"BAynRFdiuB--f_nZLgrnbyTyWzO75vRK5h6xBArLIARNPvkSjtQBMHlb1L07Qe7K"
	"0GarZRmB_eSN9383LcOLn6_dO--xi12jzDwusC-eOkHWEsqtFZESc6BfI7noOPqv"
	"hJ1phCnvWh6IeYI2w9QOYEUipUTI8np6LbgGY9Fs98rqVt5AXLIhWkWywlVmtVrB"
	"p0igcN_IoypGlUPQGe77Rw";
/* clang-format on */
static const char a2_n[] = "ofgWCuLjybRlzo0tZWJjNiuSfb4p4fAkd_wWJcyQoTbji9k0l8W26mPddx"
			   "HmfHQp-Vaw-4qPCJrcS2mJPMEzP1Pt0Bm4d4QlL-yRT-SFd2lZS-pCgNMs"
			   "D1W_YpRPEwOWvG6b32690r2jZ47soMZo9wGzjb_7OMg0LOL-bSf63kpaSH"
			   "SXndS5z5rexMdbBYUsLA9e-KXBdQOS-UTo7WTBEMa2R2CapHg665xsmtdV"
			   "MTBQY4uDZlxvb3qCo5ZwKh9kG4LT6_I5IhlJH7aGhyxXFvUK-DWNmoudF8"
			   "NAco9_h9iaGNj8q2ethFkMLs91kzk2PAcDTW9gb54h4FRWyuXpoQ";
static const char a2_e[] = "AQAB";

#define A1_EXP 1300819380

static unsigned char *a1_key(size_t *len)
{
	unsigned char *k = enc_b64url_decode(a1_k, strlen(a1_k), len);
	assert_non_null(k);
	assert_int_equal(*len, 64);
	return k;
}

/* b64(header).b64(payload) signed with HMAC (md = EVP_sha256(), EVP_sha512(), or NULL for an
 * empty signature part).  Heap string. */
static char *hmac_token(const char *header, const char *payload, const void *key, size_t keylen,
                        const EVP_MD *md)
{
	char *h = jws_b64(header, strlen(header)), *p = jws_b64(payload, strlen(payload));
	size_t cap = strlen(h) + strlen(p) + 200;
	char *t = malloc(cap);
	assert_non_null(t);
	snprintf(t, cap, "%s.%s.", h, p);
	if (md) {
		unsigned char mac[EVP_MAX_MD_SIZE];
		unsigned int maclen = 0;
		assert_non_null(HMAC(md, key, (int)keylen, (unsigned char *)t, strlen(t) - 1, mac,
		                     &maclen));
		char *s = jws_b64(mac, maclen);
		strcat(t, s);
		free(s);
	}
	free(h);
	free(p);
	return t;
}

static const unsigned char key32[] = "0123456789abcdef0123456789abcdef";
#define KEY32_LEN 32

static enum jwt_status verify_hs(const char *token, const unsigned char *key, size_t keylen)
{
	json_t *claims = (json_t *)&claims; /* must be reset */
	enum jwt_status st = jwt_verify_hs256(token, key, keylen, &claims);
	if (st == JWT_OK) {
		assert_non_null(claims);
		assert_true(json_is_object(claims));
		json_decref(claims);
	} else {
		assert_null(claims);
	}
	return st;
}

static enum jwt_status verify_rs(const char *token, const json_t *jwks)
{
	json_t *claims = (json_t *)&claims;
	enum jwt_status st = jwt_verify_rs256(token, jwks, &claims);
	if (st == JWT_OK) {
		assert_true(json_is_object(claims));
		json_decref(claims);
	} else {
		assert_null(claims);
	}
	return st;
}

/* ---- HS256 ---- */

static void test_rfc7515_a1(void **state)
{
	(void)state;
	size_t klen = 0;
	unsigned char *k = a1_key(&klen);

	/* The header really is the one with "\r\n" in it. */
	size_t hl = 0;
	unsigned char *h = enc_b64url_decode(A1_HEADER, strlen(A1_HEADER), &hl);
	assert_non_null(h);
	assert_string_equal((char *)h, "{\"typ\":\"JWT\",\r\n \"alg\":\"HS256\"}");
	free(h);

	json_t *claims = NULL;
	assert_int_equal(jwt_verify_hs256(a1_token, k, klen, &claims), JWT_OK);
	assert_non_null(claims);
	assert_string_equal(json_string_value(json_object_get(claims, "iss")), "joe");
	assert_int_equal(json_integer_value(json_object_get(claims, "exp")), A1_EXP);
	assert_true(json_is_true(json_object_get(claims, "http://example.com/is_root")));
	assert_int_equal(jwt_check_claims(claims, A1_EXP - 100, 30, "joe", NULL, NULL), JWT_OK);
	assert_int_equal(jwt_check_claims(claims, A1_EXP + 30, 30, "joe", NULL, NULL), JWT_OK);
	assert_int_equal(jwt_check_claims(claims, A1_EXP + 31, 30, "joe", NULL, NULL), JWT_EXPIRED);
	json_decref(claims);

	/* One bit of the key changed. */
	k[0] ^= 1;
	assert_int_equal(verify_hs(a1_token, k, klen), JWT_BAD_SIGNATURE);
	k[0] ^= 1;
	/* A prefix of the key is another key. */
	assert_int_equal(verify_hs(a1_token, k, klen - 1), JWT_BAD_SIGNATURE);
	free(k);
}

static void test_hs256_round_trip(void **state)
{
	(void)state;
	json_t *in = json_pack("{s:s, s:I, s:s, s:b}", "sub", "42", "exp", (json_int_t)2000000000,
	                       "name", "J\xc3\xb6rg \"quoted\"", "flag", 1);
	char *t = jwt_sign_hs256(in, key32, KEY32_LEN);
	assert_non_null(t);
	assert_true(strlen(t) <= JWT_MAX_LEN);
	assert_null(strchr(t, '='));

	/* The header is exactly HS256. */
	const char *dot = strchr(t, '.');
	assert_non_null(dot);
	size_t hl = 0;
	unsigned char *h = enc_b64url_decode(t, (size_t)(dot - t), &hl);
	assert_non_null(h);
	json_t *hj = json_loads((char *)h, 0, NULL);
	assert_non_null(hj);
	assert_string_equal(json_string_value(json_object_get(hj, "alg")), "HS256");
	json_decref(hj);
	free(h);

	json_t *out = NULL;
	assert_int_equal(jwt_verify_hs256(t, key32, KEY32_LEN, &out), JWT_OK);
	assert_true(json_equal(in, out));
	json_decref(out);

	/* Another key of the same length. */
	unsigned char other[KEY32_LEN];
	memcpy(other, key32, KEY32_LEN);
	other[31] = 'X';
	assert_int_equal(verify_hs(t, other, KEY32_LEN), JWT_BAD_SIGNATURE);

	json_decref(in);
	free(t);
}

static void test_hs256_altered(void **state)
{
	(void)state;
	json_t *in = json_pack("{s:s, s:I}", "sub", "42", "exp", (json_int_t)2000000000);
	char *t = jwt_sign_hs256(in, key32, KEY32_LEN);
	json_t *evil = json_pack("{s:s, s:I}", "sub", "1", "exp", (json_int_t)2000000000);
	char *te = jwt_sign_hs256(evil, key32, KEY32_LEN);
	assert_non_null(t);
	assert_non_null(te);

	/* Payload of te, header and signature of t. */
	const char *p1 = strchr(t, '.'), *s1 = strrchr(t, '.');
	const char *p2 = strchr(te, '.'), *s2 = strrchr(te, '.');
	char spliced[1024];
	snprintf(spliced, sizeof spliced, "%.*s%.*s%s", (int)(p1 - t), t, (int)(s2 - p2), p2, s1);
	assert_int_equal(verify_hs(spliced, key32, KEY32_LEN), JWT_BAD_SIGNATURE);

	/* One character of the payload changed. */
	char *m = strdup(t);
	size_t pi = (size_t)(p1 - t) + 3;
	m[pi] = m[pi] == 'A' ? 'B' : 'A';
	assert_int_equal(verify_hs(m, key32, KEY32_LEN), JWT_BAD_SIGNATURE);
	free(m);

	/* One character of the signature changed (the first: fully significant bits). */
	m = strdup(t);
	size_t si = (size_t)(s1 - t) + 1;
	m[si] = m[si] == 'A' ? 'B' : 'A';
	assert_int_equal(verify_hs(m, key32, KEY32_LEN), JWT_BAD_SIGNATURE);
	free(m);

	/* ... and one near its end (every byte of the MAC counts). */
	m = strdup(t);
	si = strlen(m) - 2;
	m[si] = m[si] == 'A' ? 'B' : 'A';
	assert_int_equal(verify_hs(m, key32, KEY32_LEN), JWT_BAD_SIGNATURE);
	free(m);
	si = (size_t)(s1 - t) + 1;

	/* Signature truncated, or emptied. */
	m = strdup(t);
	m[strlen(m) - 4] = '\0';
	assert_int_equal(verify_hs(m, key32, KEY32_LEN), JWT_BAD_SIGNATURE);
	m[si] = '\0';
	assert_int_equal(verify_hs(m, key32, KEY32_LEN), JWT_MALFORMED);
	free(m);

	/* Signature with extra bytes appended (a 33-byte MAC). */
	char longer[1024];
	snprintf(longer, sizeof longer, "%sAAAA", t);
	assert_int_equal(verify_hs(longer, key32, KEY32_LEN), JWT_BAD_SIGNATURE);

	/* Token cut inside the payload: only one dot left. */
	m = strdup(t);
	m[pi] = '\0';
	assert_int_equal(verify_hs(m, key32, KEY32_LEN), JWT_MALFORMED);
	free(m);

	/* The untouched token still verifies. */
	assert_int_equal(verify_hs(t, key32, KEY32_LEN), JWT_OK);
	free(t);
	free(te);
	json_decref(in);
	json_decref(evil);
}

/* Copies token with its last character replaced by the other character that has the same
 * significant bits (the unused low bits flipped): the same signature bytes, another spelling. */
static char *flip_unused_bits(const char *token, unsigned unused_mask)
{
	static const char alphabet[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
	char *m = strdup(token);
	assert_non_null(m);
	char *last = m + strlen(m) - 1;
	unsigned v = (unsigned)(strchr(alphabet, *last) - alphabet);
	*last = alphabet[v ^ unused_mask];
	return m;
}

/* Issue 11 item 4: a token has exactly one spelling (RFC 7515 §2: unpadded base64url).  The
 * signature does not cover its own encoding, so "sig=" or a last character with other unused
 * bits would otherwise be a second valid token. */
static void test_hs256_one_spelling(void **state)
{
	(void)state;
	json_t *in = json_pack("{s:s, s:I}", "sub", "42", "exp", (json_int_t)2000000000);
	char *t = jwt_sign_hs256(in, key32, KEY32_LEN);
	json_decref(in);
	assert_non_null(t);
	assert_int_equal(verify_hs(t, key32, KEY32_LEN), JWT_OK);
	const char *sig = strrchr(t, '.') + 1;
	assert_int_equal(strlen(sig), 43); /* 32 bytes: two unused bits in the last character */

	char buf[1024];
	const char *suffixes[] = {"=", "==", "===", "===="};
	for (size_t i = 0; i < sizeof suffixes / sizeof suffixes[0]; i++) {
		snprintf(buf, sizeof buf, "%s%s", t, suffixes[i]);
		enum jwt_status st = verify_hs(buf, key32, KEY32_LEN);
		if (st != JWT_BAD_SIGNATURE)
			fail_msg("signature padded with \"%s\" gave %d", suffixes[i], st);
	}
	for (unsigned mask = 1; mask <= 3; mask++) {
		char *m = flip_unused_bits(t, mask);
		assert_int_equal(verify_hs(m, key32, KEY32_LEN), JWT_BAD_SIGNATURE);
		free(m);
	}

	/* Correctly MACed by the key holder over a padded header or payload: still not a JWS. */
	char *h = jws_b64("{\"alg\":\"HS256\"}", 15), *p = jws_b64("{\"sub\":\"1\"}", 11);
	/* h (15 bytes) needs no padding, p (11 bytes) one '=' in RFC 4648: superfluous, correct
	 * and excess padding. */
	assert_true(strlen(h) % 4 == 0 && strlen(p) % 4 == 3);
	const char *forms[][2] = {{"=", ""}, {"", "="}, {"", "=="}};
	for (size_t i = 0; i < sizeof forms / sizeof forms[0]; i++) {
		unsigned char mac[EVP_MAX_MD_SIZE];
		unsigned int maclen = 0;
		snprintf(buf, sizeof buf, "%s%s.%s%s", h, forms[i][0], p, forms[i][1]);
		assert_non_null(HMAC(EVP_sha256(), key32, KEY32_LEN, (unsigned char *)buf,
		                     strlen(buf), mac, &maclen));
		char *s = jws_b64(mac, maclen);
		strcat(buf, ".");
		strcat(buf, s);
		free(s);
		enum jwt_status st = verify_hs(buf, key32, KEY32_LEN);
		if (st != JWT_MALFORMED)
			fail_msg("padded form %zu gave %d", i, st);
	}
	/* The same without padding verifies (the test builds tokens correctly). */
	char *ok = hmac_token("{\"alg\":\"HS256\"}", "{\"sub\":\"1\"}", key32, KEY32_LEN,
	                      EVP_sha256());
	assert_int_equal(verify_hs(ok, key32, KEY32_LEN), JWT_OK);
	free(ok);
	free(h);
	free(p);
	free(t);
}

static void test_hs256_structure(void **state)
{
	(void)state;
	json_t *claims = json_pack("{s:I}", "exp", (json_int_t)1);
	char *t = jwt_sign_hs256(claims, key32, KEY32_LEN); /* claims are borrowed */
	json_decref(claims);
	assert_non_null(t);
	char buf[1024];

	const char *bad[] = {"",
	                     ".",
	                     "..",
	                     "...",
	                     "abc",
	                     "abc.def",
	                     "a..c",
	                     ".b.c",
	                     "a.b.",
	                     "eyJhbGciOiJIUzI1NiJ9",
	                     "eyJhbGciOiJIUzI1NiJ9.e30"};
	for (size_t i = 0; i < countof(bad); i++) {
		enum jwt_status st = verify_hs(bad[i], key32, KEY32_LEN);
		if (st != JWT_MALFORMED)
			fail_msg("\"%s\" gave %d", bad[i], st);
	}
	assert_int_equal(verify_hs(NULL, key32, KEY32_LEN), JWT_MALFORMED);

	/* An extra dot (four parts, or five as in JWE). */
	snprintf(buf, sizeof buf, "%s.", t);
	assert_int_equal(verify_hs(buf, key32, KEY32_LEN), JWT_MALFORMED);
	snprintf(buf, sizeof buf, "%s.AAAA", t);
	assert_int_equal(verify_hs(buf, key32, KEY32_LEN), JWT_MALFORMED);
	snprintf(buf, sizeof buf, "%s.AAAA.BBBB", t);
	assert_int_equal(verify_hs(buf, key32, KEY32_LEN), JWT_MALFORMED);
	/* Whitespace around a token is not stripped. */
	snprintf(buf, sizeof buf, " %s", t);
	assert_int_not_equal(verify_hs(buf, key32, KEY32_LEN), JWT_OK);
	snprintf(buf, sizeof buf, "%s\n", t);
	assert_int_not_equal(verify_hs(buf, key32, KEY32_LEN), JWT_OK);
	free(t);
}

/* Correctly MACed tokens whose header or payload is unusable. */
static void test_hs256_bad_parts(void **state)
{
	(void)state;
	const struct {
		const char *header, *payload;
		enum jwt_status want;
	} cases[] = {
		{"{\"alg\":\"HS256\"}", "{\"sub\":\"1\"}", JWT_OK},
		{"{\"alg\":\"HS256\"}", "[1]", JWT_MALFORMED},
		{"{\"alg\":\"HS256\"}", "\"s\"", JWT_MALFORMED},
		{"{\"alg\":\"HS256\"}", "{\"sub\":", JWT_MALFORMED},
		{"{\"alg\":\"HS256\"}", "{\"sub\":\"1\",\"sub\":\"2\"}", JWT_MALFORMED},
		{"[\"HS256\"]", "{}", JWT_MALFORMED},
		{"not json", "{}", JWT_MALFORMED},
		/* A duplicate alg must not let "none" (or anything) through either way. */
		{"{\"alg\":\"none\",\"alg\":\"HS256\"}", "{}", JWT_MALFORMED},
		{"{\"alg\":\"HS256\",\"alg\":\"none\"}", "{}", JWT_MALFORMED},
		{"{\"typ\":\"JWT\"}", "{}", JWT_BAD_ALG},
		{"{\"alg\":null}", "{}", JWT_BAD_ALG},
		{"{\"alg\":256}", "{}", JWT_BAD_ALG},
		{"{\"alg\":\"hs256\"}", "{}", JWT_BAD_ALG},
		{"{\"alg\":\"HS256 \"}", "{}", JWT_BAD_ALG},
		{"{\"alg\":\"HS2560\"}", "{}", JWT_BAD_ALG},
		{"{\"alg\":\"none\"}", "{}", JWT_BAD_ALG},
		{"{\"alg\":\"None\"}", "{}", JWT_BAD_ALG},
		{"{\"alg\":\"RS256\"}", "{}", JWT_BAD_ALG},
		{"{\"alg\":\"HS384\"}", "{}", JWT_BAD_ALG},
	};
	for (size_t i = 0; i < countof(cases); i++) {
		char *t = hmac_token(cases[i].header, cases[i].payload, key32, KEY32_LEN,
		                     EVP_sha256());
		enum jwt_status st = verify_hs(t, key32, KEY32_LEN);
		if (st != cases[i].want)
			fail_msg("case %zu (%s): got %d, want %d", i, cases[i].header, st,
			         cases[i].want);
		free(t);
	}
}

static void test_hs256_alg_none(void **state)
{
	(void)state;
	/* Unsigned: "header.payload." */
	char *t = hmac_token("{\"alg\":\"none\",\"typ\":\"JWT\"}",
	                     "{\"sub\":\"1\",\"exp\":9999999999}", NULL, 0, NULL);
	enum jwt_status st = verify_hs(t, key32, KEY32_LEN);
	assert_true(st == JWT_MALFORMED || st == JWT_BAD_ALG);
	free(t);
	/* With a signature that would be valid for HS256. */
	t = hmac_token("{\"alg\":\"none\"}", "{\"sub\":\"1\",\"exp\":9999999999}", key32, KEY32_LEN,
	               EVP_sha256());
	assert_int_equal(verify_hs(t, key32, KEY32_LEN), JWT_BAD_ALG);
	free(t);
}

static void test_hs512_refused(void **state)
{
	(void)state;
	char *t = hmac_token("{\"alg\":\"HS512\",\"typ\":\"JWT\"}", "{\"sub\":\"1\"}", key32,
	                     KEY32_LEN, EVP_sha512());
	assert_int_equal(verify_hs(t, key32, KEY32_LEN), JWT_BAD_ALG);
	free(t);
	/* A 64-byte MAC under an HS256 header is not a valid signature either. */
	t = hmac_token("{\"alg\":\"HS256\"}", "{\"sub\":\"1\"}", key32, KEY32_LEN, EVP_sha512());
	assert_int_equal(verify_hs(t, key32, KEY32_LEN), JWT_BAD_SIGNATURE);
	free(t);
}

static void test_rs256_token_to_hs256(void **state)
{
	(void)state;
	/* Key confusion: the RSA token must not be checked as an HMAC, whatever the key. */
	assert_int_equal(verify_hs(a2_token, key32, KEY32_LEN), JWT_BAD_ALG);
	assert_int_equal(verify_hs(a2_token, (const unsigned char *)a2_n, strlen(a2_n)),
	                 JWT_BAD_ALG);
}

/* A token padded with a claim to near JWT_MAX_LEN: the longest that fits verifies, one more
 * character is refused before any decoding. */
static void test_hs256_size_limit(void **state)
{
	(void)state;
	size_t pad = 5000;
	char *last_ok = NULL, *too_big = NULL;
	char *filler = malloc(JWT_MAX_LEN);
	assert_non_null(filler);
	for (; pad < JWT_MAX_LEN; pad++) {
		memset(filler, 'x', pad);
		filler[pad] = '\0';
		json_t *c = json_pack("{s:s, s:I}", "pad", filler, "exp", (json_int_t)2000000000);
		char *t = jwt_sign_hs256(c, key32, KEY32_LEN);
		json_decref(c);
		assert_non_null(t);
		if (strlen(t) <= JWT_MAX_LEN) {
			free(last_ok);
			last_ok = t;
		} else {
			too_big = t;
			break;
		}
	}
	assert_non_null(last_ok);
	assert_non_null(too_big);
	assert_true(strlen(last_ok) > JWT_MAX_LEN - 4);
	assert_int_equal(verify_hs(last_ok, key32, KEY32_LEN), JWT_OK);
	assert_int_equal(verify_hs(too_big, key32, KEY32_LEN), JWT_TOO_LARGE);

	/* Garbage longer than the limit: too large, not malformed. */
	char *junk = malloc(JWT_MAX_LEN * 2);
	assert_non_null(junk);
	memset(junk, 'a', JWT_MAX_LEN * 2 - 1);
	junk[JWT_MAX_LEN * 2 - 1] = '\0';
	assert_int_equal(verify_hs(junk, key32, KEY32_LEN), JWT_TOO_LARGE);
	junk[JWT_MAX_LEN + 1] = '\0';
	assert_int_equal(verify_hs(junk, key32, KEY32_LEN), JWT_TOO_LARGE);
	junk[JWT_MAX_LEN] = '\0';
	assert_int_equal(verify_hs(junk, key32, KEY32_LEN), JWT_MALFORMED);
	free(junk);
	free(filler);
	free(last_ok);
	free(too_big);
}

/* ---- RS256 ---- */

static json_t *jwks_with(const char *kid, const char *n, const char *e)
{
	json_t *k = json_pack("{s:s, s:s, s:s}", "kty", "RSA", "n", n, "e", e);
	assert_non_null(k);
	if (kid)
		json_object_set_new(k, "kid", json_string(kid));
	return json_pack("{s:[o]}", "keys", k);
}

static void test_rfc7515_a2(void **state)
{
	(void)state;
	json_t *jwks = jwks_with(NULL, a2_n, a2_e);
	json_t *claims = NULL;
	assert_int_equal(jwt_verify_rs256(a2_token, jwks, &claims), JWT_OK);
	assert_string_equal(json_string_value(json_object_get(claims, "iss")), "joe");
	assert_int_equal(json_integer_value(json_object_get(claims, "exp")), A1_EXP);
	json_decref(claims);

	/* A key marked for signatures is fine; one marked for encryption is not used. */
	json_object_set_new(json_array_get(json_object_get(jwks, "keys"), 0), "use",
	                    json_string("sig"));
	assert_int_equal(verify_rs(a2_token, jwks), JWT_OK);
	json_object_set_new(json_array_get(json_object_get(jwks, "keys"), 0), "use",
	                    json_string("enc"));
	assert_int_equal(verify_rs(a2_token, jwks), JWT_UNKNOWN_KID);
	json_decref(jwks);

	/* The token has no kid: a key that has one is not its key. */
	jwks = jwks_with("k1", a2_n, a2_e);
	assert_int_equal(verify_rs(a2_token, jwks), JWT_UNKNOWN_KID);
	json_decref(jwks);

	/* No keys at all, or a JWKS of the wrong shape. */
	jwks = json_pack("{s:[]}", "keys");
	assert_int_equal(verify_rs(a2_token, jwks), JWT_UNKNOWN_KID);
	json_decref(jwks);
	jwks = json_object();
	assert_int_equal(verify_rs(a2_token, jwks), JWT_UNKNOWN_KID);
	json_decref(jwks);
	jwks = json_pack("{s:[{s:s, s:s, s:s}]}", "keys", "kty", "EC", "n", a2_n, "e", a2_e);
	assert_int_equal(verify_rs(a2_token, jwks), JWT_UNKNOWN_KID);
	json_decref(jwks);
}

static void test_rfc7515_a2_altered(void **state)
{
	(void)state;
	json_t *jwks = jwks_with(NULL, a2_n, a2_e);
	char *m = strdup(a2_token);
	char *sig = strrchr(m, '.') + 1;
	sig[10] = sig[10] == 'A' ? 'B' : 'A';
	assert_int_equal(verify_rs(m, jwks), JWT_BAD_SIGNATURE);
	free(m);

	m = strdup(a2_token);
	char *payload = strchr(m, '.') + 1;
	payload[5] = payload[5] == 'A' ? 'B' : 'A';
	assert_int_equal(verify_rs(m, jwks), JWT_BAD_SIGNATURE);
	free(m);

	/* Signature truncated by one byte. */
	m = strdup(a2_token);
	m[strlen(m) - 4] = '\0';
	assert_int_equal(verify_rs(m, jwks), JWT_BAD_SIGNATURE);
	free(m);

	/* The HS256 example and an HS256 token made with n as the secret are refused. */
	assert_int_equal(verify_rs(a1_token, jwks), JWT_BAD_ALG);
	char *t = hmac_token("{\"alg\":\"HS256\"}", "{\"iss\":\"joe\"}", a2_n, strlen(a2_n),
	                     EVP_sha256());
	assert_int_equal(verify_rs(t, jwks), JWT_BAD_ALG);
	free(t);
	t = hmac_token("{\"alg\":\"none\"}", "{\"iss\":\"joe\"}", NULL, 0, NULL);
	assert_int_not_equal(verify_rs(t, jwks), JWT_OK);
	free(t);
	json_decref(jwks);

	/* The right n with a wrong e, and a different modulus. */
	jwks = jwks_with(NULL, a2_n, "AQAD");
	assert_int_equal(verify_rs(a2_token, jwks), JWT_BAD_SIGNATURE);
	json_decref(jwks);
	char *n2 = strdup(a2_n);
	n2[20] = n2[20] == 'A' ? 'B' : 'A';
	jwks = jwks_with(NULL, n2, a2_e);
	assert_int_equal(verify_rs(a2_token, jwks), JWT_BAD_SIGNATURE);
	json_decref(jwks);
	free(n2);
	/* A toy modulus is not a key. */
	jwks = jwks_with(NULL, "AQAB", a2_e);
	assert_int_equal(verify_rs(a2_token, jwks), JWT_BAD_KEY);
	json_decref(jwks);
}

/* A fresh RSA key, its JWK, and tokens signed with it (to test kid selection). */
static EVP_PKEY *rsa_key;

static int rsa_setup(void **state)
{
	(void)state;
	rsa_key = EVP_RSA_gen(2048);
	return rsa_key ? 0 : -1;
}

static int rsa_teardown(void **state)
{
	(void)state;
	EVP_PKEY_free(rsa_key);
	return 0;
}

static char *bn_b64(const char *param)
{
	return jws_key_param_b64(rsa_key, param);
}

static char *rs_token(const char *header, const char *payload)
{
	return jws_sign_rs256(rsa_key, header, payload);
}

/* {"keys":[{"kty":"RSA","kid":kid,"n":…,"e":…}]} for key's public half. */
static json_t *jwks_of(const EVP_PKEY *key, const char *kid)
{
	char *n = jws_key_param_b64(key, OSSL_PKEY_PARAM_RSA_N);
	char *e = jws_key_param_b64(key, OSSL_PKEY_PARAM_RSA_E);
	json_t *jwks = jwks_with(kid, n, e);
	free(n);
	free(e);
	return jwks;
}

static void test_rs256_kid_selection(void **state)
{
	(void)state;
	char *n = bn_b64(OSSL_PKEY_PARAM_RSA_N), *e = bn_b64(OSSL_PKEY_PARAM_RSA_E);
	/* The RFC key under "old", ours under "new", and a no-kid entry holding the RFC key. */
	json_t *jwks = json_pack("{s:[{s:s,s:s,s:s,s:s}, {s:s,s:s,s:s,s:s,s:s}, {s:s,s:s,s:s}]}",
	                         "keys", "kty", "RSA", "kid", "old", "n", a2_n, "e", a2_e, "kty",
	                         "RSA", "kid", "new", "use", "sig", "n", n, "e", e, "kty", "RSA",
	                         "n", a2_n, "e", a2_e);
	assert_non_null(jwks);

	char *t = rs_token("{\"alg\":\"RS256\",\"kid\":\"new\"}", "{\"sub\":\"u1\"}");
	json_t *claims = NULL;
	assert_int_equal(jwt_verify_rs256(t, jwks, &claims), JWT_OK);
	assert_string_equal(json_string_value(json_object_get(claims, "sub")), "u1");
	json_decref(claims);
	free(t);

	/* Signed by our key but naming another kid. */
	t = rs_token("{\"alg\":\"RS256\",\"kid\":\"old\"}", "{\"sub\":\"u1\"}");
	assert_int_equal(verify_rs(t, jwks), JWT_BAD_SIGNATURE);
	free(t);
	/* No kid: the kid-less entry (the RFC key) is chosen, which is not ours. */
	t = rs_token("{\"alg\":\"RS256\"}", "{\"sub\":\"u1\"}");
	assert_int_equal(verify_rs(t, jwks), JWT_BAD_SIGNATURE);
	free(t);
	/* An unknown kid asks the caller to refresh. */
	t = rs_token("{\"alg\":\"RS256\",\"kid\":\"rotated\"}", "{\"sub\":\"u1\"}");
	assert_int_equal(verify_rs(t, jwks), JWT_UNKNOWN_KID);
	free(t);
	/* RS512 / PS256 under our key are not RS256. */
	t = rs_token("{\"alg\":\"RS512\",\"kid\":\"new\"}", "{\"sub\":\"u1\"}");
	assert_int_equal(verify_rs(t, jwks), JWT_BAD_ALG);
	free(t);
	/* The RFC A.2 token still verifies against the kid-less entry. */
	assert_int_equal(verify_rs(a2_token, jwks), JWT_OK);

	/* Oversized RS256 token. */
	char *big = malloc(JWT_MAX_LEN + 2);
	memset(big, 'a', JWT_MAX_LEN + 1);
	big[JWT_MAX_LEN + 1] = '\0';
	assert_int_equal(verify_rs(big, jwks), JWT_TOO_LARGE);
	free(big);
	json_decref(jwks);
	free(n);
	free(e);
}

/* Issue 11 item 4 for id_tokens: the RS256 signature part has one spelling too (2048-bit
 * key: 256 bytes, four unused bits in the last character). */
static void test_rs256_one_spelling(void **state)
{
	(void)state;
	json_t *jwks = jwks_of(rsa_key, "k");
	char *t = rs_token("{\"alg\":\"RS256\",\"kid\":\"k\"}", "{\"sub\":\"u1\"}");
	assert_int_equal(verify_rs(t, jwks), JWT_OK);
	assert_int_equal(strlen(strrchr(t, '.') + 1), 342);
	char buf[2048];
	const char *suffixes[] = {"=", "==", "===="};
	for (size_t i = 0; i < sizeof suffixes / sizeof suffixes[0]; i++) {
		snprintf(buf, sizeof buf, "%s%s", t, suffixes[i]);
		enum jwt_status st = verify_rs(buf, jwks);
		if (st != JWT_BAD_SIGNATURE)
			fail_msg("signature padded with \"%s\" gave %d", suffixes[i], st);
	}
	for (unsigned mask = 1; mask <= 15; mask++) {
		char *m = flip_unused_bits(t, mask);
		assert_int_equal(verify_rs(m, jwks), JWT_BAD_SIGNATURE);
		free(m);
	}
	/* The RFC 7515 A.2 example is canonical and padding it is refused as well. */
	json_decref(jwks);
	jwks = jwks_with(NULL, a2_n, a2_e);
	snprintf(buf, sizeof buf, "%s==", a2_token);
	assert_int_equal(verify_rs(buf, jwks), JWT_BAD_SIGNATURE);
	json_decref(jwks);
	free(t);
}

/* Issue 11 item 5: RSA keys below 2048 bits are refused when the key is built from the JWKS,
 * even though the signature itself is valid. */
static void test_rs256_short_key_refused(void **state)
{
	(void)state;
	const unsigned bits[] = {1024, 1536, 2040};
	for (size_t i = 0; i < sizeof bits / sizeof bits[0]; i++) {
		EVP_PKEY *weak = EVP_RSA_gen(bits[i]);
		assert_non_null(weak);
		assert_int_equal(EVP_PKEY_get_bits(weak), (int)bits[i]);
		json_t *jwks = jwks_of(weak, "weak");
		char *t = jws_sign_rs256(weak, "{\"alg\":\"RS256\",\"kid\":\"weak\"}",
		                         "{\"sub\":\"u1\"}");
		enum jwt_status st = verify_rs(t, jwks);
		if (st != JWT_BAD_KEY)
			fail_msg("%u-bit key gave %d", bits[i], st);
		free(t);
		json_decref(jwks);
		EVP_PKEY_free(weak);
	}
	assert_string_equal(jwt_status_str(JWT_BAD_KEY),
	                    "unusable signing key (not RSA of 2048 bits or more with an odd "
	                    "exponent >= 3)");

	/* 2048 bits is enough, also with a leading zero byte in n or with RFC 4648 padding on n
	 * and e (the provider's JWKS is decoded leniently, the token never is). */
	char *n = bn_b64(OSSL_PKEY_PARAM_RSA_N), *e = bn_b64(OSSL_PKEY_PARAM_RSA_E);
	char *t = rs_token("{\"alg\":\"RS256\",\"kid\":\"k\"}", "{\"sub\":\"u1\"}");
	json_t *jwks = jwks_with("k", n, e);
	assert_int_equal(verify_rs(t, jwks), JWT_OK);
	json_decref(jwks);
	char padded_n[1024], padded_e[64];
	snprintf(padded_n, sizeof padded_n, "%s%s", n, strlen(n) % 4 == 2 ? "==" : "=");
	snprintf(padded_e, sizeof padded_e, "%s", e); /* "AQAB": 3 bytes, never padded */
	jwks = jwks_with("k", padded_n, padded_e);
	assert_int_equal(verify_rs(t, jwks), JWT_OK);
	json_decref(jwks);
	BIGNUM *bn = NULL;
	assert_int_equal(EVP_PKEY_get_bn_param(rsa_key, OSSL_PKEY_PARAM_RSA_N, &bn), 1);
	unsigned char buf[257] = {0};
	assert_int_equal(BN_bn2bin(bn, buf + 1), 256);
	BN_free(bn);
	char *n0 = jws_b64(buf, sizeof buf);
	jwks = jwks_with("k", n0, e);
	assert_int_equal(verify_rs(t, jwks), JWT_OK);
	json_decref(jwks);
	/* A modulus of more than JWT_RSA_MAX_BITS is not accepted either. */
	unsigned char big[JWT_RSA_MAX_BITS / 8 + 1];
	memset(big, 0xff, sizeof big);
	char *nb = jws_b64(big, sizeof big);
	jwks = jwks_with("k", nb, e);
	assert_int_equal(verify_rs(t, jwks), JWT_BAD_KEY);
	json_decref(jwks);
	/* Nor a JWK without n. */
	jwks = json_pack("{s:[{s:s, s:s, s:s}]}", "keys", "kty", "RSA", "kid", "k", "e", e);
	assert_int_equal(verify_rs(t, jwks), JWT_BAD_KEY);
	json_decref(jwks);
	free(nb);
	free(n0);
	free(t);
	free(n);
	free(e);
}

/* The JWKS's e is bounded too: with e = 1 a "signature" is just the PKCS #1 v1.5 encoding of the
 * message's digest, which anyone can write; an even e is no RSA key.  Such keys are refused
 * (JWT_BAD_KEY) even though the signature checks out arithmetically; e = 3 and 65537 are keys. */
static void test_rs256_public_exponent(void **state)
{
	(void)state;
	/* A token whose signature is EM = 00 01 FF..FF 00 DigestInfo(SHA-256) H(h.p): what
	 * s^1 mod n gives for s = EM, as long as EM < n (it starts with 00 01). */
	static const unsigned char digest_info[] = {0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60,
	                                            0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
	                                            0x01, 0x05, 0x00, 0x04, 0x20};
	const char *hp = "eyJhbGciOiJSUzI1NiIsImtpZCI6ImsifQ.eyJzdWIiOiJhZG1pbiJ9";
	unsigned char em[256];
	memset(em, 0xff, sizeof em);
	em[0] = 0x00;
	em[1] = 0x01;
	size_t tail = sizeof digest_info + 32;
	em[sizeof em - tail - 1] = 0x00;
	memcpy(em + sizeof em - tail, digest_info, sizeof digest_info);
	unsigned int mdlen = 0;
	unsigned char *digest = em + sizeof em - 32;
	assert_int_equal(EVP_Digest(hp, strlen(hp), digest, &mdlen, EVP_sha256(), NULL), 1);
	char *sig = jws_b64(em, sizeof em);
	char forged[1024];
	snprintf(forged, sizeof forged, "%s.%s", hp, sig);
	free(sig);

	char *n = bn_b64(OSSL_PKEY_PARAM_RSA_N);
	const char *bad_e[] = {"AQ" /* 1 */, "Ag" /* 2 */, "AQAA" /* 65536 */, "AA" /* 0 */};
	for (size_t i = 0; i < countof(bad_e); i++) {
		json_t *jwks = jwks_with("k", n, bad_e[i]);
		enum jwt_status st = verify_rs(forged, jwks);
		if (st != JWT_BAD_KEY)
			fail_msg("e = %s gave %d", bad_e[i], st);
		json_decref(jwks);
	}
	/* Odd exponents of at least 3 make keys: the forgery is then just a bad signature. */
	const char *odd_e[] = {"Aw" /* 3 */, "AQAB" /* 65537 */};
	for (size_t i = 0; i < countof(odd_e); i++) {
		json_t *jwks = jwks_with("k", n, odd_e[i]);
		assert_int_equal(verify_rs(forged, jwks), JWT_BAD_SIGNATURE);
		json_decref(jwks);
	}
	free(n);

	/* A real key with e = 3 verifies its own tokens. */
	EVP_PKEY *key3 = NULL;
	EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, "RSA", NULL);
	BIGNUM *three = BN_new();
	assert_non_null(ctx);
	assert_non_null(three);
	assert_int_equal(BN_set_word(three, 3), 1);
	assert_int_equal(EVP_PKEY_keygen_init(ctx), 1);
	assert_int_equal(EVP_PKEY_CTX_set_rsa_keygen_bits(ctx, 2048), 1);
	assert_int_equal(EVP_PKEY_CTX_set1_rsa_keygen_pubexp(ctx, three), 1);
	assert_int_equal(EVP_PKEY_generate(ctx, &key3), 1);
	json_t *jwks = jwks_of(key3, "k3");
	char *t = jws_sign_rs256(key3, "{\"alg\":\"RS256\",\"kid\":\"k3\"}", "{\"sub\":\"u1\"}");
	assert_int_equal(verify_rs(t, jwks), JWT_OK);
	free(t);
	json_decref(jwks);
	EVP_PKEY_free(key3);
	BN_free(three);
	EVP_PKEY_CTX_free(ctx);
}

/* ---- claims ---- */

#define NOW 1795255200L

static enum jwt_status check(const char *claims_json, long leeway, const char *iss,
                             const char *iss2, const char *aud)
{
	json_error_t err;
	json_t *c = json_loads(claims_json, 0, &err);
	if (!c)
		fail_msg("bad fixture %s: %s", claims_json, err.text);
	enum jwt_status st = jwt_check_claims(c, (time_t)NOW, leeway, iss, iss2, aud);
	json_decref(c);
	return st;
}

static void test_claims_exp(void **state)
{
	(void)state;
	char buf[256];
	snprintf(buf, sizeof buf, "{\"exp\":%ld}", NOW + 3600);
	assert_int_equal(check(buf, 30, NULL, NULL, NULL), JWT_OK);
	snprintf(buf, sizeof buf, "{\"exp\":%ld}", NOW);
	assert_int_equal(check(buf, 30, NULL, NULL, NULL), JWT_OK);
	snprintf(buf, sizeof buf, "{\"exp\":%ld}", NOW - 30);
	assert_int_equal(check(buf, 30, NULL, NULL, NULL), JWT_OK); /* within leeway */
	snprintf(buf, sizeof buf, "{\"exp\":%ld}", NOW - 31);
	assert_int_equal(check(buf, 30, NULL, NULL, NULL), JWT_EXPIRED); /* beyond leeway */
	snprintf(buf, sizeof buf, "{\"exp\":%ld}", NOW - 1);
	assert_int_equal(check(buf, 0, NULL, NULL, NULL), JWT_EXPIRED);
	assert_int_equal(check("{\"exp\":0}", 30, NULL, NULL, NULL), JWT_EXPIRED);
	assert_int_equal(check("{\"exp\":-9223372036854775807}", 30, NULL, NULL, NULL),
	                 JWT_EXPIRED);
	/* Far-future expiry is not expired (and must not overflow). */
	assert_int_equal(check("{\"exp\":9223372036854775807}", 30, NULL, NULL, NULL), JWT_OK);
	assert_int_equal(check("{\"exp\":9223372036854775807}", 86400, NULL, NULL, NULL), JWT_OK);

	/* Missing or not an integer. */
	assert_int_equal(check("{}", 30, NULL, NULL, NULL), JWT_MISSING_CLAIM);
	assert_int_equal(check("{\"exp\":null}", 30, NULL, NULL, NULL), JWT_MISSING_CLAIM);
	assert_int_equal(check("{\"exp\":\"1999999999\"}", 30, NULL, NULL, NULL),
	                 JWT_MISSING_CLAIM);
	assert_int_equal(check("{\"exp\":1999999999.5}", 30, NULL, NULL, NULL), JWT_MISSING_CLAIM);
	assert_int_equal(check("{\"iat\":1795255200}", 30, NULL, NULL, NULL), JWT_MISSING_CLAIM);
}

static void test_claims_iat_nbf(void **state)
{
	(void)state;
	char buf[256];
	snprintf(buf, sizeof buf, "{\"exp\":%ld,\"iat\":%ld}", NOW + 600, NOW);
	assert_int_equal(check(buf, 30, NULL, NULL, NULL), JWT_OK);
	snprintf(buf, sizeof buf, "{\"exp\":%ld,\"iat\":%ld}", NOW + 600, NOW + 30);
	assert_int_equal(check(buf, 30, NULL, NULL, NULL), JWT_OK);
	snprintf(buf, sizeof buf, "{\"exp\":%ld,\"iat\":%ld}", NOW + 600, NOW + 31);
	assert_int_equal(check(buf, 30, NULL, NULL, NULL), JWT_NOT_YET_VALID);
	snprintf(buf, sizeof buf, "{\"exp\":%ld,\"iat\":%ld}", NOW + 600, NOW + 86400);
	assert_int_equal(check(buf, 30, NULL, NULL, NULL), JWT_NOT_YET_VALID);
	snprintf(buf, sizeof buf, "{\"exp\":%ld,\"nbf\":%ld}", NOW + 600, NOW + 31);
	assert_int_equal(check(buf, 30, NULL, NULL, NULL), JWT_NOT_YET_VALID);
	snprintf(buf, sizeof buf, "{\"exp\":%ld,\"nbf\":%ld}", NOW + 600, NOW - 5);
	assert_int_equal(check(buf, 30, NULL, NULL, NULL), JWT_OK);
	snprintf(buf, sizeof buf, "{\"exp\":%ld,\"iat\":\"%ld\"}", NOW + 600, NOW);
	assert_int_not_equal(check(buf, 30, NULL, NULL, NULL), JWT_OK);
	snprintf(buf, sizeof buf, "{\"exp\":%ld,\"nbf\":true}", NOW + 600);
	assert_int_not_equal(check(buf, 30, NULL, NULL, NULL), JWT_OK);
}

static void test_claims_issuer(void **state)
{
	(void)state;
	char buf[256];
	snprintf(buf, sizeof buf, "{\"exp\":%ld,\"iss\":\"meeting-rooms\"}", NOW + 60);
	assert_int_equal(check(buf, 30, "meeting-rooms", NULL, NULL), JWT_OK);
	assert_int_equal(check(buf, 30, "other", NULL, NULL), JWT_BAD_ISSUER);
	assert_int_equal(check(buf, 30, "meeting-room", NULL, NULL), JWT_BAD_ISSUER);
	assert_int_equal(check(buf, 30, "meeting-roomsX", NULL, NULL), JWT_BAD_ISSUER);
	assert_int_equal(check(buf, 30, NULL, NULL, NULL), JWT_OK); /* not checked */

	/* Google's two spellings. */
	snprintf(buf, sizeof buf, "{\"exp\":%ld,\"iss\":\"accounts.google.com\"}", NOW + 60);
	assert_int_equal(check(buf, 30, "https://accounts.google.com", "accounts.google.com", NULL),
	                 JWT_OK);
	assert_int_equal(check(buf, 30, "https://accounts.google.com", NULL, NULL), JWT_BAD_ISSUER);
	snprintf(buf, sizeof buf, "{\"exp\":%ld,\"iss\":\"https://accounts.google.com\"}",
	         NOW + 60);
	assert_int_equal(check(buf, 30, "https://accounts.google.com", "accounts.google.com", NULL),
	                 JWT_OK);
	snprintf(buf, sizeof buf, "{\"exp\":%ld,\"iss\":\"https://evil.example\"}", NOW + 60);
	assert_int_equal(check(buf, 30, "https://accounts.google.com", "accounts.google.com", NULL),
	                 JWT_BAD_ISSUER);

	/* Missing or not a string. */
	snprintf(buf, sizeof buf, "{\"exp\":%ld}", NOW + 60);
	assert_int_equal(check(buf, 30, "meeting-rooms", NULL, NULL), JWT_BAD_ISSUER);
	snprintf(buf, sizeof buf, "{\"exp\":%ld,\"iss\":[\"meeting-rooms\"]}", NOW + 60);
	assert_int_equal(check(buf, 30, "meeting-rooms", NULL, NULL), JWT_BAD_ISSUER);
}

static void test_claims_audience(void **state)
{
	(void)state;
	char buf[256];
	snprintf(buf, sizeof buf, "{\"exp\":%ld,\"aud\":\"client-1\"}", NOW + 60);
	assert_int_equal(check(buf, 30, NULL, NULL, "client-1"), JWT_OK);
	assert_int_equal(check(buf, 30, NULL, NULL, "client-2"), JWT_BAD_AUDIENCE);
	assert_int_equal(check(buf, 30, NULL, NULL, "client-"), JWT_BAD_AUDIENCE);
	assert_int_equal(check(buf, 30, NULL, NULL, NULL), JWT_OK);

	snprintf(buf, sizeof buf, "{\"exp\":%ld,\"aud\":[\"other\",\"client-1\"]}", NOW + 60);
	assert_int_equal(check(buf, 30, NULL, NULL, "client-1"), JWT_OK);
	assert_int_equal(check(buf, 30, NULL, NULL, "client-2"), JWT_BAD_AUDIENCE);
	snprintf(buf, sizeof buf, "{\"exp\":%ld,\"aud\":[]}", NOW + 60);
	assert_int_equal(check(buf, 30, NULL, NULL, "client-1"), JWT_BAD_AUDIENCE);
	snprintf(buf, sizeof buf, "{\"exp\":%ld,\"aud\":[1,null,{}]}", NOW + 60);
	assert_int_equal(check(buf, 30, NULL, NULL, "client-1"), JWT_BAD_AUDIENCE);
	snprintf(buf, sizeof buf, "{\"exp\":%ld,\"aud\":{\"client-1\":true}}", NOW + 60);
	assert_int_equal(check(buf, 30, NULL, NULL, "client-1"), JWT_BAD_AUDIENCE);
	snprintf(buf, sizeof buf, "{\"exp\":%ld}", NOW + 60);
	assert_int_equal(check(buf, 30, NULL, NULL, "client-1"), JWT_BAD_AUDIENCE);

	/* Expiry is judged before the audience. */
	snprintf(buf, sizeof buf, "{\"exp\":%ld,\"aud\":\"x\"}", NOW - 3600);
	assert_int_equal(check(buf, 30, NULL, NULL, "client-1"), JWT_EXPIRED);
}

static void test_status_str(void **state)
{
	(void)state;
	for (int a = JWT_OK; a <= JWT_MISSING_CLAIM; a++) {
		const char *s = jwt_status_str((enum jwt_status)a);
		assert_non_null(s);
		assert_true(strlen(s) > 0);
		for (int b = a + 1; b <= JWT_MISSING_CLAIM; b++)
			assert_string_not_equal(s, jwt_status_str((enum jwt_status)b));
	}
	assert_string_equal(jwt_status_str(JWT_EXPIRED), "token expired");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rfc7515_a1),
		cmocka_unit_test(test_hs256_round_trip),
		cmocka_unit_test(test_hs256_altered),
		cmocka_unit_test(test_hs256_one_spelling),
		cmocka_unit_test(test_hs256_structure),
		cmocka_unit_test(test_hs256_bad_parts),
		cmocka_unit_test(test_hs256_alg_none),
		cmocka_unit_test(test_hs512_refused),
		cmocka_unit_test(test_rs256_token_to_hs256),
		cmocka_unit_test(test_hs256_size_limit),
		cmocka_unit_test(test_rfc7515_a2),
		cmocka_unit_test(test_rfc7515_a2_altered),
		cmocka_unit_test_setup_teardown(test_rs256_kid_selection, rsa_setup, rsa_teardown),
		cmocka_unit_test_setup_teardown(test_rs256_one_spelling, rsa_setup, rsa_teardown),
		cmocka_unit_test_setup_teardown(test_rs256_public_exponent, rsa_setup,
	                                        rsa_teardown),
		cmocka_unit_test_setup_teardown(test_rs256_short_key_refused, rsa_setup,
	                                        rsa_teardown),
		cmocka_unit_test(test_claims_exp),
		cmocka_unit_test(test_claims_iat_nbf),
		cmocka_unit_test(test_claims_issuer),
		cmocka_unit_test(test_claims_audience),
		cmocka_unit_test(test_status_str),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
