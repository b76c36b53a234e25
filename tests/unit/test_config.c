/* Unit tests of common/src/config.c: environment-driven configuration with bounds. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "countof.h"

struct test_cfg {
	char *secret;
	char *issuer;
	long long port;
	bool debug;
	char *note;
	long long retries;
	long long min_minutes, max_minutes;
	char *client_id, *client_secret;
	char *colour;
	long long even;
	bool legacy;
	long long unloaded; /* no row loads it */
};

#define V_SECRET "TCFG_JWT_SECRET_KEY"
#define V_ISSUER "TCFG_JWT_ISSUER"
#define V_PORT "TCFG_PORT"
#define V_DEBUG "TCFG_DEBUG"
#define V_NOTE "TCFG_NOTE"
#define V_RETRIES "TCFG_RETRIES"
#define V_MIN "TCFG_MIN_MINUTES"
#define V_MAX "TCFG_MAX_MINUTES"
#define V_CLIENT_ID "TCFG_CLIENT_ID"
#define V_CLIENT_SECRET "TCFG_CLIENT_SECRET"
#define V_COLOUR "TCFG_COLOUR"
#define V_EVEN "TCFG_EVEN"
#define V_LEGACY "TCFG_LEGACY"

/* Rows' own checks: a word from a list, an even number, a removed switch that must stay off. */
static bool colour_valid(const char *v, char *why, size_t whylen)
{
	if (strcmp(v, "red") == 0 || strcmp(v, "green") == 0)
		return true;
	snprintf(why, whylen, "must be red or green");
	return false;
}

static bool even_valid(long long v, char *why, size_t whylen)
{
	if (v % 2 == 0)
		return true;
	snprintf(why, whylen, "must be even");
	return false;
}

static bool legacy_off(bool on, char *why, size_t whylen)
{
	(void)why;
	(void)whylen;
	return !on; /* no reason given: the message says "is not valid" */
}

#define TEST_CFG struct test_cfg
static const struct cfg_param params[] = {
	CFG_REQUIRED_STR(TEST_CFG, V_SECRET, secret, 32, 512),
	CFG_STR(TEST_CFG, V_ISSUER, issuer, "meeting-rooms", 1, 64),
	CFG_INT(TEST_CFG, V_PORT, port, "5000", 1, 65535),
	CFG_BOOL(TEST_CFG, V_DEBUG, debug, "false"),
	CFG_STR(TEST_CFG, V_NOTE, note, "", 0, 0),
	CFG_INT(TEST_CFG, V_RETRIES, retries, "-3", -10, 10),
	CFG_INT(TEST_CFG, V_MIN, min_minutes, "5", 1, 1440),
	CFG_INT(TEST_CFG, V_MAX, max_minutes, "1440", 1, 44640),
	CFG_STR(TEST_CFG, V_CLIENT_ID, client_id, "", 0, 512),
	CFG_STR(TEST_CFG, V_CLIENT_SECRET, client_secret, "", 0, 512),
	CFG_STR_CHECKED(TEST_CFG, V_COLOUR, colour, "red", 1, 16, colour_valid),
	CFG_INT_CHECKED(TEST_CFG, V_EVEN, even, "2", 0, 100, even_valid),
	CFG_BOOL_CHECKED(TEST_CFG, V_LEGACY, legacy, "false", legacy_off),
};

static const struct cfg_check checks[] = {
	CFG_CHECK_LE(TEST_CFG, min_minutes, max_minutes),
	CFG_CHECK_REQUIRES(TEST_CFG, client_id, client_secret),
};
#undef TEST_CFG

static const struct cfg_table table = {
	.params = params,
	.nparams = countof(params),
	.checks = checks,
	.nchecks = countof(checks),
};

#define GOOD_SECRET "0123456789abcdef0123456789abcdef" /* exactly 32 bytes */

static int reset_env(void **state)
{
	(void)state;
	for (size_t i = 0; i < countof(params); i++)
		unsetenv(params[i].name);
	setenv(V_SECRET, GOOD_SECRET, 1);
	return 0;
}

/* Loads into a zeroed struct; on failure checks the message and frees what was loaded. */
static bool load(struct test_cfg *c, char *err, size_t errlen)
{
	memset(c, 0, sizeof *c);
	err[0] = '\0';
	bool ok = cfg_load(&table, c, err, errlen);
	if (!ok) {
		assert_true(strlen(err) > 0);
		assert_null(strchr(err, '\n'));
		cfg_free(&table, c);
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
	cfg_free(&table, &c);
	assert_null(c.secret);
	assert_null(c.issuer);
	assert_null(c.note);
	/* A second cfg_free is harmless: the pointers were reset. */
	cfg_free(&table, &c);
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
	cfg_free(&table, &c);
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
	cfg_free(&table, &c);
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
	cfg_free(&table, &c);
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
	cfg_free(&table, &c);
}

static void test_int_bounds(void **state)
{
	(void)state;
	const char *bad[] = {"0",
	                     "65536",
	                     "-1",
	                     "7777777",
	                     "abc",
	                     "12abc",
	                     "5000.5",
	                     "0x50",
	                     "99999999999999999999",
	                     "-99999999999999999999"};
	for (size_t i = 0; i < countof(bad); i++) {
		setenv(V_PORT, bad[i], 1);
		expect_failure(V_PORT, strcmp(bad[i], "0") == 0 ? NULL : bad[i]);
	}
	const struct {
		const char *text;
		long long v;
	} good[] = {{"1", 1}, {"65535", 65535}, {"8080", 8080}};
	for (size_t i = 0; i < countof(good); i++) {
		setenv(V_PORT, good[i].text, 1);
		struct test_cfg c;
		char err[256];
		assert_true(load(&c, err, sizeof err));
		assert_int_equal(c.port, good[i].v);
		cfg_free(&table, &c);
	}
	/* Empty means "use the default". */
	setenv(V_PORT, "", 1);
	struct test_cfg c;
	char err[256];
	assert_true(load(&c, err, sizeof err));
	assert_int_equal(c.port, 5000);
	cfg_free(&table, &c);
}

static void test_bools(void **state)
{
	(void)state;
	const struct {
		const char *text;
		bool v;
	} cases[] = {{"true", true}, {"TRUE", true},   {"1", true},      {"yes", true},
	             {"Yes", true},  {"false", false}, {"False", false}, {"0", false},
	             {"no", false},  {"NO", false}};
	for (size_t i = 0; i < countof(cases); i++) {
		setenv(V_DEBUG, cases[i].text, 1);
		struct test_cfg c;
		char err[256];
		c.debug = !cases[i].v;
		assert_true(load(&c, err, sizeof err));
		assert_int_equal(c.debug, cases[i].v);
		cfg_free(&table, &c);
	}
	const char *bad[] = {"maybe", "2", "enabled", "yess", "-1"};
	for (size_t i = 0; i < countof(bad); i++) {
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
	assert_false(cfg_load(&table, &c, err, sizeof err));
	assert_int_equal(strlen(err), sizeof err - 1);
	assert_memory_equal(err, V_SECRET, sizeof err - 1);
	cfg_free(&table, &c);
}

/* A later parameter failing after strings were copied: cfg_free releases them (ASan checks). */
static void test_failure_after_strings(void **state)
{
	(void)state;
	setenv(V_RETRIES, "11", 1);
	expect_failure(V_RETRIES, NULL);
}

/* The row macros fill in what a hand-written row would. */
static void test_row_macros(void **state)
{
	(void)state;
	const struct cfg_param *secret = &params[0], *port = &params[2], *debug = &params[3];
	assert_string_equal(secret->name, V_SECRET);
	assert_int_equal(secret->type, CFG_TYPE_STRING);
	assert_null(secret->def);
	assert_true(secret->required);
	assert_int_equal(secret->min, 32);
	assert_int_equal(secret->max, 512);
	assert_int_equal(secret->offset, offsetof(struct test_cfg, secret));
	assert_int_equal(port->type, CFG_TYPE_INT);
	assert_string_equal(port->def, "5000");
	assert_false(port->required);
	assert_int_equal(port->offset, offsetof(struct test_cfg, port));
	assert_int_equal(debug->type, CFG_TYPE_BOOL);
	assert_string_equal(debug->def, "false");
	assert_int_equal(debug->offset, offsetof(struct test_cfg, debug));
	assert_int_equal(checks[0].kind, CFG_CHECK_KIND_LE);
	assert_int_equal(checks[0].lhs, offsetof(struct test_cfg, min_minutes));
	assert_int_equal(checks[0].rhs, offsetof(struct test_cfg, max_minutes));
}

/* Loads and expects a failure with exactly this message; what was loaded is freed. */
static void expect_message(const struct cfg_table *t, const char *want)
{
	struct test_cfg c;
	memset(&c, 0, sizeof c);
	char err[256] = "";
	assert_false(cfg_load(t, &c, err, sizeof err));
	assert_string_equal(err, want);
	assert_null(c.secret);
	assert_null(c.issuer);
	assert_null(c.note);
	assert_null(c.client_id);
	assert_null(c.colour);
}

static void expect_success(void)
{
	struct test_cfg c;
	char err[256];
	assert_true(load(&c, err, sizeof err));
	cfg_free(&table, &c);
}

static void test_check_le(void **state)
{
	(void)state;
	setenv(V_MIN, "61", 1);
	setenv(V_MAX, "60", 1);
	expect_message(&table, V_MIN " must not exceed " V_MAX);
	setenv(V_MAX, "61", 1); /* equal is fine */
	expect_success();
	setenv(V_MIN, "1", 1);
	expect_success();
	/* Against a default: MIN above MAX's default 1440. */
	unsetenv(V_MAX);
	setenv(V_MIN, "1440", 1);
	expect_success();
	setenv(V_MAX, "1439", 1);
	expect_message(&table, V_MIN " must not exceed " V_MAX);
}

static void test_check_requires(void **state)
{
	(void)state;
	expect_success(); /* neither set */
	setenv(V_CLIENT_SECRET, "s3cr3t", 1);
	expect_success(); /* only the dependent one */
	setenv(V_CLIENT_ID, "client-1", 1);
	expect_success(); /* both */
	unsetenv(V_CLIENT_SECRET);
	expect_message(&table, V_CLIENT_SECRET " is required when " V_CLIENT_ID " is set");
	setenv(V_CLIENT_SECRET, "", 1); /* empty counts as unset */
	expect_message(&table, V_CLIENT_SECRET " is required when " V_CLIENT_ID " is set");
}

/* Rows fail before rules: a bad value is reported as such, not as a broken rule. */
static void test_rows_before_checks(void **state)
{
	(void)state;
	setenv(V_MIN, "100", 1);
	setenv(V_MAX, "50", 1);
	setenv(V_PORT, "0", 1);
	expect_message(&table, V_PORT " must be an integer from 1 to 65535");
}

/* A row's own check runs on the loaded value (also the default) after type and bounds; its
 * reason follows the variable's name, and a refused string is not left behind (ASan). */
static void test_row_checks(void **state)
{
	(void)state;
	struct test_cfg c;
	char err[256];
	assert_true(load(&c, err, sizeof err)); /* the defaults pass */
	assert_string_equal(c.colour, "red");
	assert_int_equal(c.even, 2);
	cfg_free(&table, &c);
	setenv(V_COLOUR, "green", 1);
	setenv(V_EVEN, "40", 1);
	expect_success();
	setenv(V_COLOUR, "blue", 1);
	expect_message(&table, V_COLOUR " must be red or green");
	setenv(V_COLOUR, "a-colour-far-too-long", 1); /* bounds first */
	expect_message(&table, V_COLOUR " must be 1 to 16 bytes long");
	unsetenv(V_COLOUR);
	setenv(V_EVEN, "41", 1);
	expect_message(&table, V_EVEN " must be even");
	setenv(V_EVEN, "102", 1);
	expect_message(&table, V_EVEN " must be an integer from 0 to 100");
	unsetenv(V_EVEN);
	setenv(V_LEGACY, "true", 1);
	expect_message(&table, V_LEGACY " is not valid");
	setenv(V_LEGACY, "off", 1);
	expect_success();
	const struct cfg_param *colour = &params[10];
	assert_string_equal(colour->name, V_COLOUR);
	assert_ptr_equal(colour->check.str, colour_valid);
	assert_null(params[0].check.str); /* unchecked rows */
}

/* A rule naming a field no row loads, or a row of the other type, is an error in the table. */
static void test_check_outside_table(void **state)
{
	(void)state;
	const struct cfg_check unloaded[] = {
		CFG_CHECK_LE(struct test_cfg, min_minutes, unloaded),
	};
	const struct cfg_check wrong_type[] = {
		{.kind = CFG_CHECK_KIND_REQUIRES,
	         .lhs = offsetof(struct test_cfg, port),
	         .rhs = offsetof(struct test_cfg, client_secret)},
	};
	struct cfg_table t = table;
	t.checks = unloaded;
	t.nchecks = countof(unloaded);
	expect_message(&t, "configuration table: check 0 names a field that no row of its type "
	                   "loads");
	t.checks = wrong_type;
	t.nchecks = countof(wrong_type);
	expect_message(&t, "configuration table: check 0 names a field that no row of its type "
	                   "loads");
	/* No rules at all. */
	t.checks = NULL;
	t.nchecks = 0;
	setenv(V_MIN, "100", 1);
	setenv(V_MAX, "50", 1);
	struct test_cfg c;
	memset(&c, 0, sizeof c);
	char err[256];
	assert_true(cfg_load(&t, &c, err, sizeof err));
	cfg_free(&t, &c);
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
		cmocka_unit_test_setup(test_row_macros, reset_env),
		cmocka_unit_test_setup(test_check_le, reset_env),
		cmocka_unit_test_setup(test_check_requires, reset_env),
		cmocka_unit_test_setup(test_rows_before_checks, reset_env),
		cmocka_unit_test_setup(test_check_outside_table, reset_env),
		cmocka_unit_test_setup(test_row_checks, reset_env),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
