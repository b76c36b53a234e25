/* Unit tests of common/src/health.c: checks run on their own threads, the report answers from
 * the last results at once (also while a check hangs), a hanging check counts as failed after
 * one interval, hard and soft failures, and stop/join. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdbool.h>
#include <string.h>
#include <time.h>

#include "health.h"
#include "timefmt.h"

/* A check the test controls: it blocks while `hold` is set and returns `result`. */
static pthread_mutex_t gate_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t gate_cv = PTHREAD_COND_INITIALIZER;
static bool hold;
static int runs;
static enum health_state result = HEALTH_OK;

static void gate(bool on)
{
	pthread_mutex_lock(&gate_mu);
	hold = on;
	pthread_cond_broadcast(&gate_cv);
	pthread_mutex_unlock(&gate_mu);
}

static enum health_state gated_check(char *detail, size_t size)
{
	pthread_mutex_lock(&gate_mu);
	while (hold)
		pthread_cond_wait(&gate_cv, &gate_mu);
	runs++;
	enum health_state st = result;
	pthread_mutex_unlock(&gate_mu);
	if (st != HEALTH_OK)
		snprintf(detail, size, "gated check failed");
	return st;
}

static enum health_state ok_check(char *detail, size_t size)
{
	(void)detail;
	(void)size;
	return HEALTH_OK;
}

static enum health_state degraded_check(char *detail, size_t size)
{
	snprintf(detail, size, "half broken");
	return HEALTH_DEGRADED;
}

static void sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
}

/* The report's entry of check name (borrowed from *report, which the caller frees). */
static json_t *entry(struct health *h, json_t **report, const char *name,
                     enum health_state *overall)
{
	json_decref(*report);
	*report = health_report(h, overall);
	assert_non_null(*report);
	json_t *e = json_object_get(*report, name);
	assert_non_null(e);
	return e;
}

static const char *status_of(const json_t *e)
{
	return json_string_value(json_object_get(e, "status"));
}

static const char *detail_of(const json_t *e)
{
	const char *d = json_string_value(json_object_get(e, "detail"));
	return d ? d : "";
}

/* Polls the report until check name has status want and its detail contains part (up to 10 s,
 * generous for sanitizer builds on a busy machine). */
static json_t *wait_for(struct health *h, json_t **report, const char *name, const char *want,
                        const char *part, enum health_state *overall)
{
	for (int i = 0; i < 1000; i++) {
		json_t *e = entry(h, report, name, overall);
		if (strcmp(status_of(e), want) == 0 && strstr(detail_of(e), part))
			return e;
		sleep_ms(10);
	}
	fail_msg("%s never became %s (%s)", name, want, part);
	return NULL;
}

static void test_results_with_age(void **state)
{
	(void)state;
	static const struct health_check checks[] = {
		{"database", true, ok_check},
		{"kafka", false, degraded_check},
	};
	char err[128];
	json_t *report = NULL;
	enum health_state overall;
	struct health *h = health_start(checks, 2, 1000, err, sizeof err);
	assert_non_null(h);
	json_t *e = wait_for(h, &report, "database", "ok", "", &overall);
	assert_null(json_object_get(e, "detail"));
	assert_true(json_is_number(json_object_get(e, "latency_ms")));
	e = wait_for(h, &report, "kafka", "degraded", "half broken", &overall);
	assert_int_equal(overall, HEALTH_DEGRADED);
	/* checked_at is an RFC 3339 time, age_ms how long ago (a run every second: at most ~1 s). */
	struct timefmt_time t;
	assert_true(timefmt_parse_rfc3339(json_string_value(json_object_get(e, "checked_at")), &t));
	assert_true(t.has_offset);
	json_int_t age = json_integer_value(json_object_get(e, "age_ms"));
	assert_true(json_is_integer(json_object_get(e, "age_ms")));
	assert_true(age >= 0 && age < 5000);
	json_decref(report);
	health_free(h);
}

static void test_hanging_check_does_not_block_the_report(void **state)
{
	(void)state;
	static const struct health_check checks[] = {
		{"identity_provider", false, gated_check},
		{"database", true, ok_check},
	};
	char err[128];
	json_t *report = NULL;
	enum health_state overall;
	runs = 0;
	result = HEALTH_OK;
	gate(true); /* the first run hangs */
	struct health *h = health_start(checks, 2, 100, err, sizeof err);
	assert_non_null(h);

	/* Before its first answer the check counts as failed, and the report does not wait. */
	long long t0 = timefmt_mono_us();
	json_t *e = entry(h, &report, "identity_provider", &overall);
	assert_true(timefmt_mono_us() - t0 < 50000);
	assert_string_equal(status_of(e), "degraded");
	assert_true(json_is_null(json_object_get(e, "checked_at")));
	assert_true(json_is_null(json_object_get(e, "age_ms")));
	/* Once it has hung for longer than the interval it is reported as not answering; the
	 * other check is unaffected. */
	e = wait_for(h, &report, "identity_provider", "degraded", "no answer for", &overall);
	assert_true(json_number_value(json_object_get(e, "latency_ms")) >= 100.0);
	e = wait_for(h, &report, "database", "ok", "", &overall);
	assert_int_equal(overall, HEALTH_DEGRADED);

	/* It answers: ok, with a time. */
	gate(false);
	e = wait_for(h, &report, "identity_provider", "ok", "", &overall);
	assert_true(json_is_string(json_object_get(e, "checked_at")));
	assert_int_equal(overall, HEALTH_OK);

	/* It runs again every interval: a new failure shows up without anyone asking. */
	pthread_mutex_lock(&gate_mu);
	result = HEALTH_DEGRADED;
	int before = runs;
	pthread_mutex_unlock(&gate_mu);
	e = wait_for(h, &report, "identity_provider", "degraded", "gated check failed", &overall);
	pthread_mutex_lock(&gate_mu);
	assert_true(runs > before);
	pthread_mutex_unlock(&gate_mu);

	/* Hung again at shutdown: health_stop returns at once, health_free waits for the run. */
	gate(true);
	sleep_ms(250);
	t0 = timefmt_mono_us();
	health_stop(h);
	assert_true(timefmt_mono_us() - t0 < 50000);
	gate(false);
	json_decref(report);
	health_free(h);
}

static void test_hard_check_down(void **state)
{
	(void)state;
	static const struct health_check checks[] = {
		{"database", true, gated_check},
		{"kafka", false, ok_check},
	};
	char err[128];
	json_t *report = NULL;
	enum health_state overall;
	result = HEALTH_DOWN;
	gate(false);
	struct health *h = health_start(checks, 2, 100, err, sizeof err);
	assert_non_null(h);
	wait_for(h, &report, "database", "down", "gated check failed", &overall);
	assert_int_equal(overall, HEALTH_DOWN);
	/* A hard check that hangs counts as down too. */
	pthread_mutex_lock(&gate_mu);
	result = HEALTH_OK;
	pthread_mutex_unlock(&gate_mu);
	wait_for(h, &report, "database", "ok", "", &overall);
	gate(true);
	wait_for(h, &report, "database", "down", "no answer for", &overall);
	assert_int_equal(overall, HEALTH_DOWN);
	gate(false);
	json_decref(report);
	health_free(h);
}

static void test_no_checks(void **state)
{
	(void)state;
	char err[128];
	enum health_state overall = HEALTH_DOWN;
	struct health *h = health_start(NULL, 0, 1000, err, sizeof err);
	assert_non_null(h);
	json_t *report = health_report(h, &overall);
	assert_int_equal(json_object_size(report), 0);
	assert_int_equal(overall, HEALTH_OK);
	json_decref(report);
	health_free(h);
	health_stop(NULL);
	health_free(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_results_with_age),
		cmocka_unit_test(test_hanging_check_does_not_block_the_report),
		cmocka_unit_test(test_hard_check_down),
		cmocka_unit_test(test_no_checks),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
