/* Unit tests of common/src/auth.c: the suite's own HS256 access tokens. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "auth.h"
#include "countof.h"
#include "jwt.h"

#define SECRET "an-hs256-secret-of-at-least-32-bytes!"
static const struct auth_config cfg = {SECRET, "meeting-rooms", 900};

static time_t now;

static int set_now(void **state)
{
	(void)state;
	now = time(NULL);
	return 0;
}

/* A time in seconds as the milliseconds auth_issue_access() takes. */
static long long ms(time_t t)
{
	return (long long)t * 1000;
}

/* Signs arbitrary claims with the configured secret (as a forger who knows it would). */
static char *sign(json_t *claims)
{
	assert_non_null(claims);
	char *t = jwt_sign_hs256(claims, (const unsigned char *)SECRET, strlen(SECRET));
	json_decref(claims);
	assert_non_null(t);
	return t;
}

static enum jwt_status verify(const struct auth_config *c, const char *token, time_t at,
                              struct auth_user *u)
{
	memset(u, 0x5a, sizeof *u);
	enum jwt_status st = auth_verify_access(c, token, at, u);
	if (st != JWT_OK) {
		/* A refused token never leaves a usable identity behind. */
		assert_false(u->admin);
		assert_true(u->id == 0);
	}
	return st;
}

static void test_round_trip_employee(void **state)
{
	(void)state;
	char *t = auth_issue_access(&cfg, 42, "ada@example.com", "Ada Lovelace", "employee",
	                            ms(now));
	assert_non_null(t);
	struct auth_user u;
	assert_int_equal(verify(&cfg, t, now, &u), JWT_OK);
	assert_true(u.id == 42);
	assert_string_equal(u.email, "ada@example.com");
	assert_string_equal(u.name, "Ada Lovelace");
	assert_string_equal(u.role, "employee");
	assert_false(u.admin);

	/* The token carries the claims of docs/api.md#authentication. */
	json_t *c = NULL;
	assert_int_equal(jwt_verify_hs256(t, (const unsigned char *)SECRET, strlen(SECRET), &c),
	                 JWT_OK);
	assert_string_equal(json_string_value(json_object_get(c, "sub")), "42");
	assert_string_equal(json_string_value(json_object_get(c, "email")), "ada@example.com");
	assert_string_equal(json_string_value(json_object_get(c, "name")), "Ada Lovelace");
	assert_string_equal(json_string_value(json_object_get(c, "role")), "employee");
	assert_string_equal(json_string_value(json_object_get(c, "iss")), "meeting-rooms");
	assert_true(json_is_integer(json_object_get(c, "iat")));
	assert_true(json_integer_value(json_object_get(c, "iat")) == (json_int_t)now);
	assert_true(json_integer_value(json_object_get(c, "exp")) == (json_int_t)now + 900);
	const char *jti = json_string_value(json_object_get(c, "jti"));
	assert_non_null(jti);
	assert_int_equal(strlen(jti), 36);
	json_decref(c);

	/* Every token gets its own jti. */
	char *t2 = auth_issue_access(&cfg, 42, "ada@example.com", "Ada Lovelace", "employee",
	                             ms(now));
	assert_non_null(t2);
	assert_string_not_equal(t, t2);
	free(t2);
	free(t);
}

static void test_round_trip_admin(void **state)
{
	(void)state;
	char *t = auth_issue_access(&cfg, 9007199254740993LL, "root@example.com", "", "admin",
	                            ms(now));
	assert_non_null(t);
	struct auth_user u;
	assert_int_equal(verify(&cfg, t, now + 899, &u), JWT_OK);
	assert_true(u.id == 9007199254740993LL);
	assert_true(u.admin);
	assert_string_equal(u.role, "admin");
	assert_string_equal(u.name, "");
	free(t);
}

static void test_wrong_secret(void **state)
{
	(void)state;
	char *t = auth_issue_access(&cfg, 1, "a@example.com", "A", "admin", ms(now));
	struct auth_config other = cfg;
	other.secret = "an-hs256-secret-of-at-least-32-bytes?";
	struct auth_user u;
	assert_int_equal(verify(&other, t, now, &u), JWT_BAD_SIGNATURE);
	free(t);
}

static void test_wrong_issuer(void **state)
{
	(void)state;
	char *t = auth_issue_access(&cfg, 1, "a@example.com", "A", "employee", ms(now));
	struct auth_config other = cfg;
	other.issuer = "someone-else";
	struct auth_user u;
	assert_int_equal(verify(&other, t, now, &u), JWT_BAD_ISSUER);
	free(t);
}

/* A token verified once is answered from the cache of verified tokens afterwards: the same
 * identity, and never where the full check would refuse (expired by then, not yet valid, another
 * secret or issuer, one byte changed). */
static void test_verified_token_cache(void **state)
{
	(void)state;
	char *t = auth_issue_access(&cfg, 77, "grace@example.com", "Grace Hopper", "admin",
	                            ms(now));
	assert_non_null(t);
	struct auth_user u;
	for (int i = 0; i < 3; i++) {
		assert_int_equal(verify(&cfg, t, now + i, &u), JWT_OK);
		assert_true(u.id == 77);
		assert_true(u.admin);
		assert_true(u.issued_ms == ms(now));
		assert_string_equal(u.email, "grace@example.com");
		assert_string_equal(u.name, "Grace Hopper");
		assert_string_equal(u.role, "admin");
	}
	assert_int_equal(verify(&cfg, t, now + 900 + AUTH_LEEWAY_SECONDS + 1, &u), JWT_EXPIRED);
	assert_int_equal(verify(&cfg, t, now - AUTH_LEEWAY_SECONDS - 1, &u), JWT_NOT_YET_VALID);
	struct auth_config other = cfg;
	other.secret = "an-hs256-secret-of-at-least-32-bytes?";
	assert_int_equal(verify(&other, t, now, &u), JWT_BAD_SIGNATURE);
	other = cfg;
	other.issuer = "someone-else";
	assert_int_equal(verify(&other, t, now, &u), JWT_BAD_ISSUER);
	/* The last byte of the signature changed (its low bits are significant in 'A'/'Q'). */
	size_t n = strlen(t);
	t[n - 1] = t[n - 1] == 'A' ? 'Q' : 'A';
	assert_int_equal(verify(&cfg, t, now, &u), JWT_BAD_SIGNATURE);
	free(t);
}

static void test_expiry(void **state)
{
	(void)state;
	struct auth_user u;
	char *t = auth_issue_access(&cfg, 1, "a@example.com", "A", "employee", ms(now - 7200));
	assert_int_equal(verify(&cfg, t, now, &u), JWT_EXPIRED);
	free(t);
	/* exp = now - 30: inside the 30 s leeway; one second more is too late. */
	t = auth_issue_access(&cfg, 1, "a@example.com", "A", "employee", ms(now - 930));
	assert_int_equal(verify(&cfg, t, now, &u), JWT_OK);
	free(t);
	t = auth_issue_access(&cfg, 1, "a@example.com", "A", "employee", ms(now - 931));
	assert_int_equal(verify(&cfg, t, now, &u), JWT_EXPIRED);
	free(t);
	/* Issued in the future (a clock ahead by more than the leeway). */
	t = auth_issue_access(&cfg, 1, "a@example.com", "A", "employee", ms(now + 3600));
	assert_int_equal(verify(&cfg, t, now, &u), JWT_NOT_YET_VALID);
	free(t);
}

static json_t *claims_with(const char *sub, const char *role)
{
	json_t *c = json_pack("{s:s, s:s, s:I, s:I, s:s, s:s}", "email", "a@example.com", "name",
	                      "A", "iat", (json_int_t)now, "exp", (json_int_t)now + 600, "iss",
	                      "meeting-rooms", "jti", "x");
	if (sub)
		json_object_set_new(c, "sub", json_string(sub));
	if (role)
		json_object_set_new(c, "role", json_string(role));
	return c;
}

static void test_bad_sub(void **state)
{
	(void)state;
	struct auth_user u;
	char *t = sign(claims_with("17", "employee"));
	assert_int_equal(verify(&cfg, t, now, &u), JWT_OK);
	assert_true(u.id == 17);
	free(t);

	const char *bad[] = {"abc",   "0",   "-5", "+5",  " 5",   "5 ",
	                     "12abc", "007", "",   "1.5", "0x10", "99999999999999999999"};
	for (size_t i = 0; i < countof(bad); i++) {
		t = sign(claims_with(bad[i], "employee"));
		enum jwt_status st = verify(&cfg, t, now, &u);
		if (st != JWT_MISSING_CLAIM)
			fail_msg("sub \"%s\" gave %d", bad[i], st);
		free(t);
	}
	/* Absent, or a number instead of a decimal string. */
	t = sign(claims_with(NULL, "employee"));
	assert_int_equal(verify(&cfg, t, now, &u), JWT_MISSING_CLAIM);
	free(t);
	json_t *c = claims_with(NULL, "employee");
	json_object_set_new(c, "sub", json_integer(5));
	t = sign(c);
	assert_int_equal(verify(&cfg, t, now, &u), JWT_MISSING_CLAIM);
	free(t);
}

/* The issue time in milliseconds (revocation compares it with a user's not_before). */
static void test_issued_ms(void **state)
{
	(void)state;
	struct auth_user u;
	char *t = auth_issue_access(&cfg, 5, "a@example.com", "A", "employee", ms(now) + 987);
	assert_int_equal(verify(&cfg, t, now, &u), JWT_OK);
	assert_true(u.issued_ms == ms(now) + 987);
	json_t *c = NULL;
	assert_int_equal(jwt_verify_hs256(t, (const unsigned char *)SECRET, strlen(SECRET), &c),
	                 JWT_OK);
	/* iat stays whole seconds (RFC 7519); iat_ms carries the milliseconds. */
	assert_true(json_integer_value(json_object_get(c, "iat")) == (json_int_t)now);
	assert_true(json_integer_value(json_object_get(c, "iat_ms")) == (json_int_t)ms(now) + 987);
	json_decref(c);
	free(t);

	/* Without iat_ms (a token of an earlier release): the start of iat's second, so that a
	 * revocation in that second voids it. */
	t = sign(claims_with("5", "employee"));
	assert_int_equal(verify(&cfg, t, now, &u), JWT_OK);
	assert_true(u.issued_ms == ms(now));
	free(t);
	/* Without iat: refused (every token of ours carries it; without it, its life is unknown). */
	c = claims_with("5", "employee");
	json_object_del(c, "iat");
	t = sign(c);
	assert_int_equal(verify(&cfg, t, now, &u), JWT_MISSING_CLAIM);
	free(t);
	/* A life (exp − iat) of at most AUTH_MAX_TTL_SECONDS, the longest JWT_ACCESS_TTL_SECONDS. */
	for (int extra = 0; extra <= 1; extra++) {
		c = claims_with("5", "employee");
		json_object_set_new(c, "exp",
		                    json_integer((json_int_t)(now + AUTH_MAX_TTL_SECONDS + extra)));
		t = sign(c);
		assert_int_equal(verify(&cfg, t, now, &u), extra ? JWT_MISSING_CLAIM : JWT_OK);
		free(t);
	}

	/* iat_ms must lie within iat's second, and needs iat. */
	const long long bad_ms[] = {ms(now) - 1, ms(now) + 1000, ms(now) + 60000, -1};
	for (size_t i = 0; i < countof(bad_ms); i++) {
		c = claims_with("5", "employee");
		json_object_set_new(c, "iat_ms", json_integer((json_int_t)bad_ms[i]));
		t = sign(c);
		if (verify(&cfg, t, now, &u) != JWT_MISSING_CLAIM)
			fail_msg("iat_ms %lld with iat %lld accepted", bad_ms[i], (long long)now);
		free(t);
	}
	c = claims_with("5", "employee");
	json_object_set_new(c, "iat_ms", json_string("soon"));
	t = sign(c);
	assert_int_equal(verify(&cfg, t, now, &u), JWT_MISSING_CLAIM);
	free(t);
	c = claims_with("5", "employee");
	json_object_del(c, "iat");
	json_object_set_new(c, "iat_ms", json_integer((json_int_t)ms(now)));
	t = sign(c);
	assert_int_equal(verify(&cfg, t, now, &u), JWT_MISSING_CLAIM);
	free(t);
}

static void test_bad_role(void **state)
{
	(void)state;
	struct auth_user u;
	const char *bad[] = {"superuser", "Admin", "ADMIN", "", "admin ", "administrator"};
	for (size_t i = 0; i < countof(bad); i++) {
		char *t = sign(claims_with("3", bad[i]));
		enum jwt_status st = verify(&cfg, t, now, &u);
		if (st != JWT_MISSING_CLAIM)
			fail_msg("role \"%s\" gave %d", bad[i], st);
		free(t);
	}
	char *t = sign(claims_with("3", NULL));
	assert_int_equal(verify(&cfg, t, now, &u), JWT_MISSING_CLAIM);
	free(t);
	json_t *c = claims_with("3", NULL);
	json_object_set_new(c, "role", json_true());
	t = sign(c);
	assert_int_equal(verify(&cfg, t, now, &u), JWT_MISSING_CLAIM);
	free(t);
	/* "admin" through the issue path is the only way to the admin flag. */
	t = auth_issue_access(&cfg, 3, "a@example.com", "A", "root", ms(now));
	assert_non_null(t);
	assert_int_equal(verify(&cfg, t, now, &u), JWT_MISSING_CLAIM);
	free(t);
}

static void test_bad_email(void **state)
{
	(void)state;
	struct auth_user u;
	json_t *c = claims_with("3", "employee");
	json_object_del(c, "email");
	char *t = sign(c);
	assert_int_equal(verify(&cfg, t, now, &u), JWT_MISSING_CLAIM);
	free(t);
	/* Longer than the 320 characters an e-mail address may have. */
	char email[400];
	memset(email, 'e', sizeof email - 1);
	email[sizeof email - 1] = '\0';
	c = claims_with("3", "employee");
	json_object_set_new(c, "email", json_string(email));
	t = sign(c);
	assert_int_equal(verify(&cfg, t, now, &u), JWT_MISSING_CLAIM);
	free(t);
}

/* An address of 320 characters that take 4 bytes each (U+1D52A, the Fraktur "m"). */
static char *fraktur_email(size_t chars)
{
	static const char m[] = "\xf0\x9d\x94\xaa", domain[] = "@example.com";
	size_t local = chars - (sizeof domain - 1);
	char *s = malloc(local * 4 + sizeof domain);
	assert_non_null(s);
	for (size_t i = 0; i < local; i++)
		memcpy(s + 4 * i, m, 4);
	memcpy(s + 4 * local, domain, sizeof domain);
	return s;
}

static void test_long_non_ascii_email(void **state)
{
	(void)state;
	struct auth_user u;
	/* 320 characters, 1256 bytes: far beyond 320 bytes, still a valid address — issued and
	 * read back whole (a byte-sized buffer cut it mid-character). */
	char *email = fraktur_email(AUTH_EMAIL_MAX_CHARS);
	assert_int_equal(strlen(email), (AUTH_EMAIL_MAX_CHARS - 12) * 4 + 12);
	char *t = auth_issue_access(&cfg, 7, email, "M", "employee", ms(now));
	assert_non_null(t);
	assert_int_equal(verify(&cfg, t, now, &u), JWT_OK);
	assert_string_equal(u.email, email);
	free(t);
	free(email);
	/* One character more is not an address of ours. */
	email = fraktur_email(AUTH_EMAIL_MAX_CHARS + 1);
	t = auth_issue_access(&cfg, 7, email, "M", "employee", ms(now));
	assert_non_null(t);
	assert_int_equal(verify(&cfg, t, now, &u), JWT_MISSING_CLAIM);
	free(t);
	free(email);
}

static void test_only_hs256(void **state)
{
	(void)state;
	struct auth_user u;
	/* {"alg":"none"} + the payload of a genuine admin token + an empty signature. */
	char *t = auth_issue_access(&cfg, 3, "a@example.com", "A", "admin", ms(now));
	char *dot = strchr(t, '.');
	char forged[4096];
	snprintf(forged, sizeof forged, "eyJhbGciOiJub25lIn0%.*s.", (int)(strrchr(t, '.') - dot),
	         dot);
	assert_int_not_equal(verify(&cfg, forged, now, &u), JWT_OK);
	assert_int_not_equal(verify(&cfg, "", now, &u), JWT_OK);
	assert_int_equal(verify(&cfg, "not a token", now, &u), JWT_MALFORMED);
	free(t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_round_trip_employee, set_now),
		cmocka_unit_test_setup(test_round_trip_admin, set_now),
		cmocka_unit_test_setup(test_wrong_secret, set_now),
		cmocka_unit_test_setup(test_verified_token_cache, set_now),
		cmocka_unit_test_setup(test_wrong_issuer, set_now),
		cmocka_unit_test_setup(test_expiry, set_now),
		cmocka_unit_test_setup(test_bad_sub, set_now),
		cmocka_unit_test_setup(test_issued_ms, set_now),
		cmocka_unit_test_setup(test_bad_role, set_now),
		cmocka_unit_test_setup(test_bad_email, set_now),
		cmocka_unit_test_setup(test_long_non_ascii_email, set_now),
		cmocka_unit_test_setup(test_only_hs256, set_now),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
