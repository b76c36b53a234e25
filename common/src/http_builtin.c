/* The operational endpoints every service has: /health (dependency checks), /ready (load
 * balancer), /live (process), /metrics (Prometheus text) and /openapi.json. */
#include "countof.h"
#include "http_internal.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "health.h"
#include "metrics.h"

/* Answers from the last results of the background checks (health.h): never waits for a
 * dependency, so a hanging broker or identity provider cannot hold a worker here. */
static void http_health(struct req *r)
{
	const struct http_options *o = r->srv->opts;
	enum health_state overall = HEALTH_OK;
	json_t *checks = o->health ? health_report(o->health, &overall) : json_object();
	if (!checks) {
		req_error(r, ERR_INTERNAL, NULL, NULL);
		return;
	}
	bool down = overall == HEALTH_DOWN;
	const char *status = down ? "unavailable" : overall == HEALTH_DEGRADED ? "degraded" : "ok";
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
