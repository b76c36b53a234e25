/* Unit tests of user-service/src/tokens.c: the stored hash of a secret, the constant-time hash
 * comparison of the sign-in browser binding, and the sealed successor of a rotated refresh token
 * (tests/integration/test_user_refresh_grace.py sees the latter through HTTP). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "../../user-service/src/tokens.h"
#include "encoding.h"

static void test_hash_is_hex_sha256(void **state)
{
	(void)state;
	char h[USER_TOKEN_HASH_LEN];
	/* SHA-256("abc"), FIPS 180-2 appendix B.1. */
	user_token_hash("abc", h);
	assert_string_equal(h, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
	user_token_hash("", h);
	assert_string_equal(h, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

static void test_hash_equal(void **state)
{
	(void)state;
	char a[USER_TOKEN_HASH_LEN], b[USER_TOKEN_HASH_LEN];
	user_token_hash("browser-a", a);
	user_token_hash("browser-a", b);
	assert_true(user_token_hash_equal(a, b));
	user_token_hash("browser-b", b);
	assert_false(user_token_hash_equal(a, b));
	/* A missing cookie or a row without a binding never matches, not even each other. */
	assert_false(user_token_hash_equal(a, NULL));
	assert_false(user_token_hash_equal(NULL, a));
	assert_false(user_token_hash_equal(NULL, NULL));
	/* A prefix is not the hash. */
	assert_false(user_token_hash_equal(a, ""));
	b[0] = '\0';
	assert_false(user_token_hash_equal(a, b));
	memcpy(b, a, sizeof b);
	b[63] = '\0';
	assert_false(user_token_hash_equal(a, b));
}

static void test_seal_round_trip(void **state)
{
	(void)state;
	const char *presented = "kAyx3vQ2u0o6W9f3n3S4m2vX8a7Yb1cD0eF9gH8iJ7k";
	const char *successor = "Zz9yX8wV7uT6sR5qP4oN3mL2kJ1iH0gF9eD8cB7aA6b";
	char box[USER_TOKEN_BOX_LEN], again[USER_TOKEN_BOX_LEN], out[USER_TOKEN_SEAL_MAX + 1];
	assert_true(user_token_seal(presented, successor, box));
	/* base64url of nonce + 43 bytes + tag, and the successor is not in it in clear. */
	assert_int_equal(strlen(box), (12 + 43 + 16) * 4 / 3 + 1);
	assert_null(strstr(box, successor));
	assert_true(user_token_open(presented, box, out));
	assert_string_equal(out, successor);
	/* A fresh nonce each time: two boxes of one successor differ and both open. */
	assert_true(user_token_seal(presented, successor, again));
	assert_string_not_equal(box, again);
	assert_true(user_token_open(presented, again, out));
	assert_string_equal(out, successor);
	/* The longest token it takes, and one byte more. */
	char longest[USER_TOKEN_SEAL_MAX + 2];
	memset(longest, 'x', sizeof longest - 1);
	longest[USER_TOKEN_SEAL_MAX] = '\0';
	assert_true(user_token_seal(presented, longest, box));
	assert_true(user_token_open(presented, box, out));
	assert_string_equal(out, longest);
	longest[USER_TOKEN_SEAL_MAX] = 'x';
	longest[USER_TOKEN_SEAL_MAX + 1] = '\0';
	assert_false(user_token_seal(presented, longest, box));
}

static void test_open_refuses_other_token_and_tampering(void **state)
{
	(void)state;
	const char *presented = "the-rotated-refresh-token";
	char box[USER_TOKEN_BOX_LEN], out[USER_TOKEN_SEAL_MAX + 1];
	assert_true(user_token_seal(presented, "the-successor", box));
	/* Another token — or the stored hash of this one — does not open it. */
	char hash[USER_TOKEN_HASH_LEN];
	user_token_hash(presented, hash);
	assert_false(user_token_open("the-rotated-refresh-tokeN", box, out));
	assert_false(user_token_open(hash, box, out));
	assert_string_equal(out, "");
	/* Every byte is covered by the tag. */
	size_t n = 0;
	unsigned char *raw = enc_b64url_decode(box, strlen(box), &n);
	assert_non_null(raw);
	for (size_t i = 0; i < n; i++) {
		raw[i] ^= 0x01;
		char *bad = enc_b64url_encode(raw, n);
		assert_non_null(bad);
		assert_false(user_token_open(presented, bad, out));
		free(bad);
		raw[i] ^= 0x01;
	}
	/* Cut short, empty, not base64url, absent. */
	char *cut = enc_b64url_encode(raw, n - 1);
	assert_false(user_token_open(presented, cut, out));
	free(cut);
	free(raw);
	assert_false(user_token_open(presented, "", out));
	assert_false(user_token_open(presented, "not base64!", out));
	assert_false(user_token_open(presented, NULL, out));
	assert_true(user_token_open(presented, box, out));
	assert_string_equal(out, "the-successor");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hash_is_hex_sha256),
		cmocka_unit_test(test_hash_equal),
		cmocka_unit_test(test_seal_round_trip),
		cmocka_unit_test(test_open_refuses_other_token_and_tampering),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
