/* The operational endpoints every service has: /health (dependency checks), /ready (load
 * balancer), /live (process), /metrics (Prometheus text) and /openapi.json. */
#include "countof.h"
#include "http_internal.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "metrics.h"
#include "timefmt.h"

static void http_health(struct req *r)
{
	const struct http_options *o = r->srv->opts;
	json_t *checks = json_object();
	bool down = false, degraded = false;
	for (size_t i = 0; i < o->nchecks; i++) {
		char detail[256] = "";
		long long t0 = timefmt_mono_us();
		enum health_state st = o->checks[i].check(detail, sizeof detail);
		double ms = (double)(timefmt_mono_us() - t0) / 1000.0;
		const char *name = st == HEALTH_OK ? "ok" : st == HEALTH_DEGRADED ? "degraded" : "down";
		json_t *c = json_pack("{s:s, s:f}", "status", name, "latency_ms", ms);
		if (detail[0])
			json_object_set_new(c, "detail", json_string(detail));
		json_object_set_new(checks, o->checks[i].name, c);
		if (st == HEALTH_DOWN && o->checks[i].hard)
			down = true;
		else if (st != HEALTH_OK)
			degraded = true;
	}
	const char *status = down ? "unavailable" : degraded ? "degraded" : "ok";
	if (down)
		req_add_header(r, "Retry-After", "5");
	req_reply_json(r, down ? 503 : 200,
	               json_pack("{s:s, s:s, s:o}", "status", status, "service", o->service,
	                         "checks", checks));
}

static void http_ready(struct req *r)
{
	const struct http_options *o = r->srv->opts;
	if (r->srv->draining)
		req_error(r, ERR_UNAVAILABLE, NULL, "shutting down");
	else if (o->ready && !o->ready())
		req_error(r, ERR_UNAVAILABLE, NULL, "not ready");
	else
		req_reply_json(r, 200, json_pack("{s:s}", "status", "ready"));
}

static void http_live(struct req *r)
{
	req_reply_json(r, 200, json_pack("{s:s}", "status", "alive"));
}

static void http_metrics(struct req *r)
{
	char *text = metrics_render("");
	if (!text) {
		req_error(r, ERR_INTERNAL, NULL, NULL);
		return;
	}
	http_send(r, 200, "text/plain; version=0.0.4; charset=utf-8", text, strlen(text));
	free(text);
}

static void http_openapi(struct req *r)
{
	const char *doc = r->srv->opts->openapi;
	if (!doc) {
		req_error(r, ERR_NOT_FOUND, NULL, "no OpenAPI document");
		return;
	}
	http_send(r, 200, "application/json", doc, strlen(doc));
}

const struct http_route http_builtin_routes[] = {
	{{"GET", "/health"}, http_health, HTTP_PUBLIC},
	{{"GET", "/ready"}, http_ready, HTTP_PUBLIC},
	{{"GET", "/live"}, http_live, HTTP_PUBLIC},
	{{"GET", "/metrics"}, http_metrics, HTTP_PUBLIC},
	{{"GET", "/openapi.json"}, http_openapi, HTTP_PUBLIC},
};
const size_t http_builtin_count = countof(http_builtin_routes);
