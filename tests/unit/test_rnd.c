/* Unit tests of common/src/rnd.c: version-4 UUIDs, random base64url tokens and the hashes they
 * are stored under. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "countof.h"
#include "encoding.h"
#include "rnd.h"

#define NSAMPLES 1000

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void assert_all_distinct(char **v, size_t n)
{
	qsort(v, n, sizeof v[0], cmp_str);
	for (size_t i = 1; i < n; i++)
		assert_string_not_equal(v[i - 1], v[i]);
}

static void assert_uuid_v4(const char *u)
{
	assert_int_equal(strlen(u), 36);
	for (size_t i = 0; i < 36; i++) {
		if (i == 8 || i == 13 || i == 18 || i == 23)
			assert_int_equal(u[i], '-');
		else
			assert_non_null(strchr("0123456789abcdef", u[i]));
	}
	assert_int_equal(u[14], '4');           /* version 4 */
	assert_non_null(strchr("89ab", u[19])); /* RFC 4122 variant 10xx */
}

static void test_uuid_format_and_unique(void **state)
{
	(void)state;
	static char store[NSAMPLES][RND_UUID_LEN];
	char *ptrs[NSAMPLES];
	int variant_seen[4] = {0};
	for (size_t i = 0; i < NSAMPLES; i++) {
		memset(store[i], 'X', RND_UUID_LEN);
		assert_true(rnd_uuid(store[i]));
		assert_uuid_v4(store[i]);
		variant_seen[strchr("89ab", store[i][19]) - "89ab"]++;
		ptrs[i] = store[i];
	}
	/* The variant nibble still carries two random bits. */
	for (size_t v = 0; v < 4; v++)
		assert_true(variant_seen[v] > 0);
	assert_all_distinct(ptrs, NSAMPLES);
}

static void test_token_lengths(void **state)
{
	(void)state;
	const size_t sizes[] = {1, 2, 3, 16, 32, 48, 64};
	for (size_t i = 0; i < countof(sizes); i++) {
		char *t = rnd_token(sizes[i]);
		assert_non_null(t);
		assert_int_equal(strlen(t), (sizes[i] * 4 + 2) / 3);
		size_t n = 0;
		unsigned char *raw = enc_b64url_decode(t, strlen(t), &n);
		assert_non_null(raw);
		assert_int_equal(n, sizes[i]);
		free(raw);
		free(t);
	}
	assert_null(rnd_token(0));
}

static void test_name32(void **state)
{
	(void)state;
	static char *names[NSAMPLES];
	bool seen[256] = {false};
	for (size_t i = 0; i < NSAMPLES; i++) {
		names[i] = rnd_name32(26);
		assert_non_null(names[i]);
		assert_int_equal(strlen(names[i]), 26);
		for (const char *c = names[i]; *c; c++) {
			assert_non_null(strchr("abcdefghijklmnopqrstuvwxyz234567", *c));
			seen[(unsigned char)*c] = true;
		}
	}
	/* All 32 characters occur among 26 000 draws. */
	size_t distinct = 0;
	for (size_t i = 0; i < 256; i++)
		distinct += seen[i];
	assert_int_equal(distinct, 32);
	assert_all_distinct(names, NSAMPLES);
	for (size_t i = 0; i < NSAMPLES; i++)
		free(names[i]);
	assert_null(rnd_name32(0));
	assert_null(rnd_name32(129));
}

static void test_tokens_unique(void **state)
{
	(void)state;
	char *tokens[NSAMPLES];
	for (size_t i = 0; i < NSAMPLES; i++) {
		tokens[i] = rnd_token(32);
		assert_non_null(tokens[i]);
		assert_int_equal(strlen(tokens[i]), 43);
	}
	assert_all_distinct(tokens, NSAMPLES);
	for (size_t i = 0; i < NSAMPLES; i++)
		free(tokens[i]);
}

/* SHA-256 (FIPS 180-2 appendix B.1 for "abc"), lower-case hex; equal only when equal. */
static void test_token_hash(void **state)
{
	(void)state;
	char a[RND_TOKEN_HASH_LEN], b[RND_TOKEN_HASH_LEN];
	rnd_token_hash("abc", a);
	assert_string_equal(a, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
	rnd_token_hash("abc", b);
	assert_true(rnd_token_hash_equal(a, b));
	rnd_token_hash("abd", b);
	assert_false(rnd_token_hash_equal(a, b));
	assert_false(rnd_token_hash_equal(a, NULL));
	assert_false(rnd_token_hash_equal(NULL, NULL));
	assert_false(rnd_token_hash_equal(a, ""));
	a[63] = '\0';
	assert_false(rnd_token_hash_equal(a, b)); /* another length */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_uuid_format_and_unique),
		cmocka_unit_test(test_token_lengths),
		cmocka_unit_test(test_tokens_unique),
		cmocka_unit_test(test_name32),
		cmocka_unit_test(test_token_hash),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
