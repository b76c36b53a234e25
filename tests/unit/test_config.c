/* Unit tests of common/src/config.c: environment-driven configuration with bounds. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"

struct test_cfg {
	char *secret;
	char *issuer;
	long long port;
	bool debug;
	char *note;
	long long retries;
};

#define V_SECRET "TCFG_JWT_SECRET_KEY"
#define V_ISSUER "TCFG_JWT_ISSUER"
#define V_PORT "TCFG_PORT"
#define V_DEBUG "TCFG_DEBUG"
#define V_NOTE "TCFG_NOTE"
#define V_RETRIES "TCFG_RETRIES"

static const struct cfg_param params[] = {
	{V_SECRET, CFG_STRING, NULL, 32, 512, true, offsetof(struct test_cfg, secret)},
	{V_ISSUER, CFG_STRING, "meeting-rooms", 1, 64, false, offsetof(struct test_cfg, issuer)},
	{V_PORT, CFG_INT, "5000", 1, 65535, false, offsetof(struct test_cfg, port)},
	{V_DEBUG, CFG_BOOL, "false", 0, 0, false, offsetof(struct test_cfg, debug)},
	{V_NOTE, CFG_STRING, "", 0, 0, false, offsetof(struct test_cfg, note)},
	{V_RETRIES, CFG_INT, "-3", -10, 10, false, offsetof(struct test_cfg, retries)},
};
#define NPARAMS (sizeof params / sizeof params[0])

#define GOOD_SECRET "0123456789abcdef0123456789abcdef" /* exactly 32 bytes */

static int reset_env(void **state)
{
	(void)state;
	for (size_t i = 0; i < NPARAMS; i++)
		unsetenv(params[i].name);
	setenv(V_SECRET, GOOD_SECRET, 1);
	return 0;
}

/* Loads into a zeroed struct; on failure checks the message and frees what was loaded. */
static bool load(struct test_cfg *c, char *err, size_t errlen)
{
	memset(c, 0, sizeof *c);
	err[0] = '\0';
	bool ok = cfg_load(params, NPARAMS, c, err, errlen);
	if (!ok) {
		assert_true(strlen(err) > 0);
		assert_null(strchr(err, '\n'));
		cfg_free(params, NPARAMS, c);
	}
	return ok;
}

/* The load fails, the message names var and does not contain the secret value. */
static void expect_failure(const char *var, const char *value)
{
	struct test_cfg c;
	char err[256];
	assert_false(load(&c, err, sizeof err));
	assert_non_null(strstr(err, var));
	if (value && *value)
		assert_null(strstr(err, value));
}

static void test_defaults(void **state)
{
	(void)state;
	struct test_cfg c;
	char err[256];
	assert_true(load(&c, err, sizeof err));
	assert_string_equal(c.secret, GOOD_SECRET);
	assert_string_equal(c.issuer, "meeting-rooms");
	assert_int_equal(c.port, 5000);
	assert_false(c.debug);
	assert_non_null(c.note);
	assert_string_equal(c.note, "");
	assert_true(c.retries == -3);
	cfg_free(params, NPARAMS, &c);
	assert_null(c.secret);
	assert_null(c.issuer);
	assert_null(c.note);
	/* A second cfg_free is harmless: the pointers were reset. */
	cfg_free(params, NPARAMS, &c);
}

static void test_values_from_env(void **state)
{
	(void)state;
	setenv(V_ISSUER, "https://issuer.example", 1);
	setenv(V_PORT, "65535", 1);
	setenv(V_DEBUG, "yes", 1);
	setenv(V_NOTE, "hello", 1);
	setenv(V_RETRIES, "-10", 1);
	struct test_cfg c;
	char err[256];
	assert_true(load(&c, err, sizeof err));
	assert_string_equal(c.issuer, "https://issuer.example");
	assert_int_equal(c.port, 65535);
	assert_true(c.debug);
	assert_string_equal(c.note, "hello");
	assert_true(c.retries == -10);
	cfg_free(params, NPARAMS, &c);
}

static void test_strings_are_copies(void **state)
{
	(void)state;
	struct test_cfg c;
	char err[256];
	assert_true(load(&c, err, sizeof err));
	assert_ptr_not_equal(c.secret, getenv(V_SECRET));
	setenv(V_SECRET, "ZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZ", 1);
	assert_string_equal(c.secret, GOOD_SECRET);
	cfg_free(params, NPARAMS, &c);
}

static void test_required_missing(void **state)
{
	(void)state;
	unsetenv(V_SECRET);
	expect_failure(V_SECRET, NULL);
	setenv(V_SECRET, "", 1);
	expect_failure(V_SECRET, NULL);
}

static void test_secret_length(void **state)
{
	(void)state;
	/* 31 bytes: one short of the minimum. */
	const char *short_secret = "S3cr3t-Value-That-Must-Not-Leak";
	assert_int_equal(strlen(short_secret), 31);
	setenv(V_SECRET, short_secret, 1);
	expect_failure(V_SECRET, short_secret);

	char big[600];
	memset(big, 'k', sizeof big - 1);
	big[sizeof big - 1] = '\0';
	setenv(V_SECRET, big, 1);
	expect_failure(V_SECRET, big);

	/* The boundaries themselves are accepted. */
	big[512] = '\0';
	setenv(V_SECRET, big, 1);
	struct test_cfg c;
	char err[256];
	assert_true(load(&c, err, sizeof err));
	assert_int_equal(strlen(c.secret), 512);
	cfg_free(params, NPARAMS, &c);
}

static void test_string_max(void **state)
{
	(void)state;
	char issuer[66];
	memset(issuer, 'i', 65);
	issuer[65] = '\0';
	setenv(V_ISSUER, issuer, 1);
	expect_failure(V_ISSUER, issuer);
	issuer[64] = '\0';
	setenv(V_ISSUER, issuer, 1);
	struct test_cfg c;
	char err[256];
	assert_true(load(&c, err, sizeof err));
	assert_string_equal(c.issuer, issuer);
	cfg_free(params, NPARAMS, &c);
}

static void test_int_bounds(void **state)
{
	(void)state;
	const char *bad[] = {"0", "65536", "-1", "7777777", "abc", "12abc", "5000.5", "0x50",
	                     "99999999999999999999", "-99999999999999999999"};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		setenv(V_PORT, bad[i], 1);
		expect_failure(V_PORT, strcmp(bad[i], "0") == 0 ? NULL : bad[i]);
	}
	const struct {
		const char *text;
		long long v;
	} good[] = {{"1", 1}, {"65535", 65535}, {"8080", 8080}};
	for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
		setenv(V_PORT, good[i].text, 1);
		struct test_cfg c;
		char err[256];
		assert_true(load(&c, err, sizeof err));
		assert_int_equal(c.port, good[i].v);
		cfg_free(params, NPARAMS, &c);
	}
	/* Empty means "use the default". */
	setenv(V_PORT, "", 1);
	struct test_cfg c;
	char err[256];
	assert_true(load(&c, err, sizeof err));
	assert_int_equal(c.port, 5000);
	cfg_free(params, NPARAMS, &c);
}

static void test_bools(void **state)
{
	(void)state;
	const struct {
		const char *text;
		bool v;
	} cases[] = {{"true", true}, {"TRUE", true}, {"1", true},   {"yes", true},
	             {"Yes", true},  {"false", false}, {"False", false}, {"0", false},
	             {"no", false},  {"NO", false}};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		setenv(V_DEBUG, cases[i].text, 1);
		struct test_cfg c;
		char err[256];
		c.debug = !cases[i].v;
		assert_true(load(&c, err, sizeof err));
		assert_int_equal(c.debug, cases[i].v);
		cfg_free(params, NPARAMS, &c);
	}
	const char *bad[] = {"maybe", "2", "enabled", "yess", "-1"};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		setenv(V_DEBUG, bad[i], 1);
		expect_failure(V_DEBUG, bad[i]);
	}
}

static void test_error_truncated_safely(void **state)
{
	(void)state;
	unsetenv(V_SECRET);
	struct test_cfg c;
	memset(&c, 0, sizeof c);
	char err[8];
	memset(err, 'x', sizeof err);
	assert_false(cfg_load(params, NPARAMS, &c, err, sizeof err));
	assert_int_equal(strlen(err), sizeof err - 1);
	assert_memory_equal(err, V_SECRET, sizeof err - 1);
	cfg_free(params, NPARAMS, &c);
}

/* A later parameter failing after strings were copied: cfg_free releases them (ASan checks). */
static void test_failure_after_strings(void **state)
{
	(void)state;
	setenv(V_RETRIES, "11", 1);
	expect_failure(V_RETRIES, NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_defaults, reset_env),
		cmocka_unit_test_setup(test_values_from_env, reset_env),
		cmocka_unit_test_setup(test_strings_are_copies, reset_env),
		cmocka_unit_test_setup(test_required_missing, reset_env),
		cmocka_unit_test_setup(test_secret_length, reset_env),
		cmocka_unit_test_setup(test_string_max, reset_env),
		cmocka_unit_test_setup(test_int_bounds, reset_env),
		cmocka_unit_test_setup(test_bools, reset_env),
		cmocka_unit_test_setup(test_error_truncated_safely, reset_env),
		cmocka_unit_test_setup(test_failure_after_strings, reset_env),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
