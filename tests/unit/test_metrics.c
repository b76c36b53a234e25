/* Unit tests of common/src/metrics.c: Prometheus text exposition.  The module keeps global
 * state, so each test uses its own route and metric names. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "countof.h"
#include "metrics.h"

static void assert_has_line(const char *text, const char *line)
{
	size_t n = strlen(line);
	for (const char *p = text; (p = strstr(p, line)) != NULL; p++) {
		if ((p == text || p[-1] == '\n') && p[n] == '\n')
			return;
	}
	fail_msg("missing line: %s\n--- in ---\n%s", line, text);
}

static void assert_no_line_starting(const char *text, const char *start)
{
	for (const char *p = text; (p = strstr(p, start)) != NULL; p++)
		if (p == text || p[-1] == '\n')
			fail_msg("unexpected line starting: %s", start);
}

/* Every line is a comment or "name[{labels}] value"; the text ends with a newline. */
static void assert_exposition_format(const char *text)
{
	size_t len = strlen(text);
	assert_true(len > 0);
	assert_int_equal(text[len - 1], '\n');
	const char *line = text;
	while (*line) {
		const char *end = strchr(line, '\n');
		assert_non_null(end);
		if (*line != '#') {
			const char *sp = NULL;
			for (const char *q = end - 1; q > line; q--)
				if (*q == ' ') {
					sp = q;
					break;
				}
			assert_non_null(sp);
			char *num_end = NULL;
			strtod(sp + 1, &num_end);
			assert_ptr_equal(num_end, end);
		} else {
			assert_true(strncmp(line, "# HELP ", 7) == 0 ||
			            strncmp(line, "# TYPE ", 7) == 0);
		}
		line = end + 1;
	}
}

static const char route_room[] = "/rooms/{id}";
static const char route_rooms[] = "/rooms";

static void test_requests_and_histogram(void **state)
{
	(void)state;
	metrics_observe_request(route_room, "GET", 200, 0.003);
	metrics_observe_request(route_room, "GET", 200, 0.2);
	metrics_observe_request(route_room, "GET", 404, 0.0005);
	metrics_observe_request(route_rooms, "POST", 201, 7.0);
	metrics_observe_request(route_rooms, "POST", 422, 0.001); /* exactly on a bucket bound */

	char *t = metrics_render("svc_");
	assert_non_null(t);
	assert_exposition_format(t);
	assert_has_line(t, "# TYPE svc_http_requests_total counter");
	assert_has_line(
		t,
		"svc_http_requests_total{route=\"/rooms/{id}\",method=\"GET\",status=\"200\"} 2");
	assert_has_line(
		t,
		"svc_http_requests_total{route=\"/rooms/{id}\",method=\"GET\",status=\"404\"} 1");
	assert_has_line(
		t, "svc_http_requests_total{route=\"/rooms\",method=\"POST\",status=\"201\"} 1");
	assert_has_line(
		t, "svc_http_requests_total{route=\"/rooms\",method=\"POST\",status=\"422\"} 1");
	assert_no_line_starting(t, "svc_http_requests_total{route=\"/rooms/{id}\",method=\"POST\"");

	assert_has_line(t, "# TYPE svc_http_request_duration_seconds histogram");
	/* Cumulative buckets for GET /rooms/{id}: 0.0005, 0.003, 0.2. */
	const struct {
		const char *le;
		int count;
	} want[] = {{"0.001", 1}, {"0.0025", 1}, {"0.005", 2}, {"0.01", 2}, {"0.025", 2},
	            {"0.05", 2},  {"0.1", 2},    {"0.25", 3},  {"0.5", 3},  {"1", 3},
	            {"2.5", 3},   {"5", 3},      {"+Inf", 3}};
	char line[256];
	for (size_t i = 0; i < countof(want); i++) {
		snprintf(
			line, sizeof line,
			"svc_http_request_duration_seconds_bucket{route=\"/rooms/{id}\",method=\"GET\","
			"le=\"%s\"} %d",
			want[i].le, want[i].count);
		assert_has_line(t, line);
	}
	assert_has_line(
		t,
		"svc_http_request_duration_seconds_count{route=\"/rooms/{id}\",method=\"GET\"} 3");
	static const char sum_key[] =
		"\nsvc_http_request_duration_seconds_sum{route=\"/rooms/{id}\",method=\"GET\"} ";
	const char *sum = strstr(t, sum_key);
	assert_non_null(sum);
	double s = strtod(sum + strlen(sum_key), NULL);
	assert_float_equal(s, 0.2035, 1e-9);

	/* POST /rooms: 7 s is beyond every finite bucket; 0.001 counts in le="0.001". */
	assert_has_line(
		t,
		"svc_http_request_duration_seconds_bucket{route=\"/rooms\",method=\"POST\",le=\"0.001\"} 1");
	assert_has_line(
		t,
		"svc_http_request_duration_seconds_bucket{route=\"/rooms\",method=\"POST\",le=\"5\"} 1");
	assert_has_line(
		t,
		"svc_http_request_duration_seconds_bucket{route=\"/rooms\",method=\"POST\",le=\"+Inf\"} 2");
	assert_has_line(
		t, "svc_http_request_duration_seconds_count{route=\"/rooms\",method=\"POST\"} 2");
	free(t);

	/* Without a prefix. */
	t = metrics_render("");
	assert_non_null(t);
	assert_has_line(
		t, "http_requests_total{route=\"/rooms/{id}\",method=\"GET\",status=\"200\"} 2");
	assert_no_line_starting(t, "svc_");
	free(t);
}

static void test_counters(void **state)
{
	(void)state;
	metrics_counter_add("test_db_errors_total", "Database errors.", 1);
	metrics_counter_add("test_db_errors_total", "ignored later help", 1);
	metrics_counter_add("test_db_errors_total", "ignored later help", 0.5);
	metrics_counter_add("test_kafka_sent_total", "Events sent.", 3);
	char *t = metrics_render("svc_");
	assert_non_null(t);
	assert_exposition_format(t);
	assert_has_line(t, "# HELP svc_test_db_errors_total Database errors.");
	assert_has_line(t, "# TYPE svc_test_db_errors_total counter");
	assert_has_line(t, "svc_test_db_errors_total 2.5");
	assert_has_line(t, "svc_test_kafka_sent_total 3");
	assert_null(strstr(t, "ignored later help"));
	free(t);
}

/* Series of one labelled counter share one HELP/TYPE pair and stay together, even when another
 * counter was added between them. */
static void test_labeled_counters(void **state)
{
	(void)state;
	metrics_counter_add_labeled("test_rows_swept_total", "Rows swept.", "table", "outbox", 0);
	metrics_counter_add("test_between_total", "Another counter.", 1);
	metrics_counter_add_labeled("test_rows_swept_total", "Rows swept.", "table", "keys", 4);
	metrics_counter_add_labeled("test_rows_swept_total", "Rows swept.", "table", "outbox", 3);
	metrics_counter_add_labeled("test_rows_swept_total", "Rows swept.", "table", "outbox", 2);
	char *t = metrics_render("svc_");
	assert_non_null(t);
	assert_exposition_format(t);
	assert_has_line(t, "# HELP svc_test_rows_swept_total Rows swept.");
	assert_has_line(t, "svc_test_rows_swept_total{table=\"outbox\"} 5");
	assert_has_line(t, "svc_test_rows_swept_total{table=\"keys\"} 4");
	assert_has_line(t, "svc_test_between_total 1");
	const char *help = strstr(t, "# HELP svc_test_rows_swept_total");
	assert_non_null(help);
	assert_null(strstr(help + 1, "# HELP svc_test_rows_swept_total"));
	const char *type = strstr(help, "# TYPE svc_test_rows_swept_total counter\n");
	const char *outbox = strstr(t, "svc_test_rows_swept_total{table=\"outbox\"}");
	const char *keys = strstr(t, "svc_test_rows_swept_total{table=\"keys\"}");
	const char *between = strstr(t, "svc_test_between_total 1");
	assert_non_null(type);
	assert_true(type < outbox && outbox < keys);
	assert_true(between < help || between > keys);
	free(t);
}

/* A named histogram: cumulative buckets, +Inf, sum and count under one HELP/TYPE pair. */
static void test_named_histogram(void **state)
{
	(void)state;
	metrics_histogram_observe("test_wait_seconds", "Waits.", 0);
	metrics_histogram_observe("test_wait_seconds", "ignored later help", 0.02);
	metrics_histogram_observe("test_wait_seconds", "ignored later help", 7);
	char *t = metrics_render("svc_");
	assert_non_null(t);
	assert_exposition_format(t);
	assert_has_line(t, "# HELP svc_test_wait_seconds Waits.");
	assert_has_line(t, "# TYPE svc_test_wait_seconds histogram");
	assert_has_line(t, "svc_test_wait_seconds_bucket{le=\"0.001\"} 1");
	assert_has_line(t, "svc_test_wait_seconds_bucket{le=\"0.025\"} 2");
	assert_has_line(t, "svc_test_wait_seconds_bucket{le=\"5\"} 2");
	assert_has_line(t, "svc_test_wait_seconds_bucket{le=\"+Inf\"} 3");
	assert_has_line(t, "svc_test_wait_seconds_sum 7.020000000");
	assert_has_line(t, "svc_test_wait_seconds_count 3");
	assert_null(strstr(t, "ignored later help"));
	free(t);
}

static int gauge_calls;
static double gauge_backlog(void)
{
	gauge_calls++;
	return 17;
}

static void test_gauges(void **state)
{
	(void)state;
	metrics_register_gauge("test_outbox_backlog", "Events waiting in the outbox.",
	                       gauge_backlog);
	int before = gauge_calls;
	char *t = metrics_render("svc_");
	assert_non_null(t);
	assert_int_equal(gauge_calls, before + 1);
	assert_exposition_format(t);
	assert_has_line(t, "# HELP svc_test_outbox_backlog Events waiting in the outbox.");
	assert_has_line(t, "# TYPE svc_test_outbox_backlog gauge");
	assert_has_line(t, "svc_test_outbox_backlog 17");
	free(t);
	/* Computed again at every scrape. */
	t = metrics_render("svc_");
	assert_int_equal(gauge_calls, before + 2);
	free(t);
}

static const char route_threads[] = "/threads";
#define NTHREADS 4
#define PER_THREAD 2000

static void *observer(void *arg)
{
	(void)arg;
	for (int i = 0; i < PER_THREAD; i++) {
		metrics_observe_request(route_threads, "GET", 200, 0.01);
		metrics_counter_add("test_threads_total", "Thread test.", 1);
	}
	return NULL;
}

static void test_concurrent_updates(void **state)
{
	(void)state;
	pthread_t th[NTHREADS];
	for (int i = 0; i < NTHREADS; i++)
		assert_int_equal(pthread_create(&th[i], NULL, observer, NULL), 0);
	/* Scraping while others update must be safe. */
	for (int i = 0; i < 20; i++)
		free(metrics_render("svc_"));
	for (int i = 0; i < NTHREADS; i++)
		pthread_join(th[i], NULL);
	char *t = metrics_render("svc_");
	char line[256];
	snprintf(line, sizeof line,
	         "svc_http_requests_total{route=\"/threads\",method=\"GET\",status=\"200\"} %d",
	         NTHREADS * PER_THREAD);
	assert_has_line(t, line);
	snprintf(line, sizeof line,
	         "svc_http_request_duration_seconds_count{route=\"/threads\",method=\"GET\"} %d",
	         NTHREADS * PER_THREAD);
	assert_has_line(t, line);
	snprintf(line, sizeof line, "svc_test_threads_total %d", NTHREADS * PER_THREAD);
	assert_has_line(t, line);
	free(t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_requests_and_histogram),
		cmocka_unit_test(test_counters),
		cmocka_unit_test(test_labeled_counters),
		cmocka_unit_test(test_gauges),
		cmocka_unit_test(test_concurrent_updates),
		cmocka_unit_test(test_named_histogram),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
