/* Unit tests of req_error_redirect (common/src/http_reply.c) and http_options.route_matched
 * (http_dispatch.c), through a real server on a loopback port: a handler's error after
 * req_error_redirect is a 303 to the base and the error's code, logged and counted by the status
 * it stands for (http_redirected_errors_total); a base too long for the location answers 500;
 * route_matched runs before the route's rate limit, so the limit's 429 is redirected too. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "countof.h"
#include "errors.h"
#include "http.h"
#include "log.h"
#include "metrics.h"
#include "ratelimit.h"

#define SIGNIN_BASE "/app/signin?error="

static char long_base[300];

static void handle_provider_away(struct req *r)
{
	req_error_redirect(r, SIGNIN_BASE);
	req_error(r, ERR_BAD_GATEWAY, NULL, "the provider is away");
}

static void handle_refused(struct req *r)
{
	req_error_redirect(r, SIGNIN_BASE);
	req_error(r, ERR_FORBIDDEN, NULL, "not this account");
}

static void handle_long_base(struct req *r)
{
	req_error_redirect(r, long_base);
	req_error(r, ERR_BAD_REQUEST, NULL, "whatever");
}

static void handle_plain(struct req *r)
{
	req_error(r, ERR_BAD_GATEWAY, NULL, "the provider is away");
}

static void handle_ok(struct req *r)
{
	req_reply_empty(r, 204);
}

static const struct http_route routes[] = {
	{{"GET", "/away"}, handle_provider_away, HTTP_PUBLIC},
	{{"GET", "/refused"}, handle_refused, HTTP_PUBLIC},
	{{"GET", "/long"}, handle_long_base, HTTP_PUBLIC},
	{{"GET", "/plain"}, handle_plain, HTTP_PUBLIC},
	{{"GET", "/limited/signin"}, handle_ok, HTTP_PUBLIC},
};

static void redirect_signin(struct req *r, const char *pattern)
{
	if (strcmp(pattern, "/limited/signin") == 0)
		req_error_redirect(r, SIGNIN_BASE);
}

static int port;

/* The whole answer to GET path (Connection: close) into out. */
static void get(const char *path, char *out, size_t size)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(fd >= 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
	char req[256];
	int n = snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
	                 path);
	assert_int_equal(write(fd, req, (size_t)n), n);
	size_t got = 0;
	ssize_t k;
	while (got + 1 < size && (k = read(fd, out + got, size - 1 - got)) > 0)
		got += (size_t)k;
	out[got] = '\0';
	close(fd);
}

static void assert_contains(const char *text, const char *part)
{
	if (!strstr(text, part))
		fail_msg("missing: %s\n--- in ---\n%s", part, text);
}

static void test_error_is_a_303_counted_by_its_status(void **state)
{
	(void)state;
	char answer[4096];
	get("/away", answer, sizeof answer);
	assert_true(strncmp(answer, "HTTP/1.1 303", 12) == 0);
	assert_contains(answer, "Location: /app/signin?error=bad_gateway\r\n");
	get("/refused", answer, sizeof answer);
	assert_true(strncmp(answer, "HTTP/1.1 303", 12) == 0);
	assert_contains(answer, "Location: /app/signin?error=forbidden\r\n");
	/* Without req_error_redirect: the JSON error, not counted as redirected. */
	get("/plain", answer, sizeof answer);
	assert_true(strncmp(answer, "HTTP/1.1 502", 12) == 0);
	assert_contains(answer, "\"code\":\"bad_gateway\"");
	char *text = metrics_render("");
	assert_non_null(text);
	assert_contains(text, "http_redirected_errors_total{status=\"502\"} 1\n");
	assert_contains(text, "http_redirected_errors_total{status=\"403\"} 1\n");
	assert_contains(text,
	                "http_requests_total{route=\"/away\",method=\"GET\",status=\"303\"} 1\n");
	free(text);
}

static void test_a_location_that_does_not_fit_answers_500(void **state)
{
	(void)state;
	char answer[4096];
	get("/long", answer, sizeof answer);
	assert_true(strncmp(answer, "HTTP/1.1 500", 12) == 0);
	assert_null(strstr(answer, "Location:"));
}

static void test_route_matched_runs_before_the_rate_limit(void **state)
{
	(void)state;
	char answer[4096];
	get("/limited/signin", answer, sizeof answer);
	assert_true(strncmp(answer, "HTTP/1.1 204", 12) == 0);
	get("/limited/signin", answer, sizeof answer); /* the bucket (1 a minute) is empty */
	assert_true(strncmp(answer, "HTTP/1.1 303", 12) == 0);
	assert_contains(answer, "Location: /app/signin?error=rate_limited\r\n");
	assert_contains(answer, "Retry-After: ");
}

int main(void)
{
	log_init("test", (enum log_level)(LOG_LEVEL_ERROR + 1)); /* quiet */
	memset(long_base, 'a', sizeof long_base - 1);
	long_base[0] = '/';
	struct ratelimit *limit = ratelimit_new(1);
	struct http_options opts = {
		.service = "test",
		.listen_host = "127.0.0.1",
		.num_threads = 2,
		.max_body = 1024,
		.routes = routes,
		.nroutes = countof(routes),
		.rate_limit_prefix = "/limited/",
		.rate_limit = limit,
		.route_matched = redirect_signin,
	};
	struct http_server *srv = NULL;
	char err[256];
	/* A free port: bind 0, read it, let it go (a race with another process is unlikely). */
	for (int attempt = 0; attempt < 5 && !srv; attempt++) {
		int fd = socket(AF_INET, SOCK_STREAM, 0);
		struct sockaddr_in a = {.sin_family = AF_INET};
		a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		socklen_t len = sizeof a;
		if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) != 0 ||
		    getsockname(fd, (struct sockaddr *)&a, &len) != 0)
			return 1;
		port = ntohs(a.sin_port);
		close(fd);
		opts.port = port;
		srv = http_start(&opts, err, sizeof err);
	}
	if (!srv) {
		fprintf(stderr, "test_http_redirect: %s\n", err);
		return 1;
	}
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_error_is_a_303_counted_by_its_status),
		cmocka_unit_test(test_a_location_that_does_not_fit_answers_500),
		cmocka_unit_test(test_route_matched_runs_before_the_rate_limit),
	};
	int failed = cmocka_run_group_tests(tests, NULL, NULL);
	http_stop(srv);
	ratelimit_free(limit);
	return failed;
}
