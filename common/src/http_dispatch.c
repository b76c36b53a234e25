/* Dispatch: one request from civetweb's begin_request to its access log line.  Builds the struct
 * req (decoded path, request id, start time), routes it by method and path (built-in routes
 * first), answers CORS preflights, 404 and 405, applies the rate limit and the route's access
 * rule, calls the handler, and finishes in one place: database connection released, metrics,
 * access log. */
#include "http_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <civetweb.h>

#include "countof.h"
#include "db.h"
#include "encoding.h"
#include "log.h"
#include "metrics.h"
#include "ratelimit.h"
#include "revoke.h"
#include "rnd.h"
#include "timefmt.h"

/* Verifies the bearer token and asks whether it was revoked; replies 401/403 (503 when that
 * cannot be told) and returns false when access is refused. */
static bool http_authorize(struct req *r, enum http_access access)
{
	if (access == HTTP_PUBLIC)
		return true;
	if (access == HTTP_BEARER_OR_TOKEN) {
		const char *qs = r->ri->query_string;
		char probe[1];
		/* -1: absent; present with any value (0, or -2 when it does not fit): the handler's. */
		if (qs && mg_get_var(qs, strlen(qs), "token", probe, sizeof probe) != -1)
			return true;
		access = HTTP_BEARER;
	}
	const char *h = mg_get_header(r->conn, "Authorization");
	if (access == HTTP_BEARER_OR_COOKIE) {
		if (!h)
			return true; /* the handler's */
		access = HTTP_BEARER;
	}
	if (!h || strncasecmp(h, "Bearer ", 7) != 0) {
		req_error(r, ERR_UNAUTHORIZED, NULL, "missing bearer token");
		return false;
	}
	const char *token = h + 7;
	while (*token == ' ')
		token++;
	enum jwt_status st = auth_verify_access(r->srv->opts->auth, token, time(NULL), &r->user);
	if (st != JWT_OK) {
		req_error(r, ERR_UNAUTHORIZED, NULL, "%s", jwt_status_str(st));
		return false;
	}
	switch (revoke_check(r->user.id, r->user.issued_ms)) {
	case REVOKE_VALID:
		break;
	case REVOKE_REVOKED:
		req_error(
			r, ERR_TOKEN_REVOKED, NULL,
			"this access token was revoked (its account was disabled, deleted or given "
			"another role): refresh it or sign in again");
		return false;
	case REVOKE_UNKNOWN:
		req_error(
			r, ERR_UNAVAILABLE, NULL,
			"cannot tell whether this token was revoked (database unavailable); try again");
		return false;
	}
	r->has_user = true;
	if (access == HTTP_ADMIN && !r->user.admin) {
		req_error(r, ERR_FORBIDDEN, NULL, "admin role required");
		return false;
	}
	return true;
}

/* The limit of the request's route (r->route): its own one when listed in rate_limit_routes,
 * else the prefix's for a path under rate_limit_prefix; NULL = none. */
static struct ratelimit *http_rate_limit_of(const struct req *r)
{
	const struct http_options *o = r->srv->opts;
	for (const char *const *p = o->rate_limit_routes; p && *p; p++)
		if (strcmp(*p, r->route) == 0)
			return o->route_rate_limit;
	if (!o->rate_limit_prefix ||
	    strncmp(r->path, o->rate_limit_prefix, strlen(o->rate_limit_prefix)) != 0)
		return NULL;
	return o->rate_limit;
}

/* Applies the rate limit of the route; replies 429 and returns true when exceeded. */
static bool http_rate_limited(struct req *r)
{
	const struct http_options *o = r->srv->opts;
	struct ratelimit *limit = http_rate_limit_of(r);
	if (!limit)
		return false;
	char addr[RATELIMIT_KEY_MAX], retry[16];
	int after = 0;
	/* The client: the peer, or the address a trusted gateway resolved and sent as X-Real-IP. */
	httpparse_client_addr(mg_get_header(r->conn, "X-Real-IP"), r->ri->remote_addr,
	                      o->trusted_gateways, addr, sizeof addr);
	if (ratelimit_take(limit, addr, timefmt_mono_us() / 1000, &after))
		return false;
	snprintf(retry, sizeof retry, "%d", after);
	req_add_header(r, "Retry-After", retry);
	metrics_counter_add("http_rate_limited_total", "Requests refused by the rate limit.", 1);
	req_error(r, ERR_RATE_LIMITED, NULL, "too many requests from %s; retry in %d s", addr,
	          after);
	return true;
}

static void http_preflight(struct req *r, const char *allow)
{
	if (http_cors_origin(r)) {
		req_add_header(r, "Access-Control-Allow-Methods", allow);
		req_add_header(
			r, "Access-Control-Allow-Headers",
			"Authorization, Content-Type, If-Match, Idempotency-Key, X-Request-ID");
		req_add_header(r, "Access-Control-Max-Age", "600");
	}
	req_add_header(r, "Allow", allow);
	req_reply_empty(r, 204);
}

static void http_route_request(struct req *r)
{
	const struct http_options *o = r->srv->opts;
	const char *method = r->ri->request_method;
	const struct http_route *route = NULL;

	if (!r->path) {
		req_error(r, ERR_NOT_FOUND, NULL, "no such path");
		return;
	}
	bool is_options = strcmp(method, "OPTIONS") == 0;
	const char *lookup = is_options ? "" : method;
	if (router_find(http_builtin_routes, http_builtin_count, sizeof http_builtin_routes[0],
	                lookup, r->path, &r->match)) {
		route = &http_builtin_routes[r->match.index];
	} else if (!r->match.path_known && router_find(o->routes, o->nroutes, sizeof o->routes[0],
	                                               lookup, r->path, &r->match)) {
		route = &o->routes[r->match.index];
	}
	if (!route) {
		if (is_options && r->match.path_known) {
			http_preflight(r, r->match.allow);
		} else if (r->match.path_known) {
			req_add_header(r, "Allow", r->match.allow);
			req_error(r, ERR_METHOD_NOT_ALLOWED, NULL, "method %s not allowed here",
			          method);
		} else {
			req_error(r, ERR_NOT_FOUND, NULL, "no such path");
		}
		return;
	}
	r->route = route->route.pattern;
	if (o->route_matched)
		o->route_matched(r, r->route);
	if (http_rate_limited(r) || !http_authorize(r, route->access))
		return;
	route->handler(r);
	if (!r->replied) {
		log_error("handler for %s %s did not reply", method, r->route);
		req_error(r, ERR_INTERNAL, NULL, NULL);
	}
}

int http_begin_request(struct mg_connection *conn)
{
	struct req r;
	memset(&r, 0, sizeof r);
	r.conn = conn;
	r.ri = mg_get_request_info(conn);
	r.srv = r.ri->user_data;
	r.t0_us = timefmt_mono_us();
	r.route = "unmatched";
	/* civetweb keeps the first MG_MAX_HEADERS headers and drops the rest, Content-Length
	 * included, so a body could be read as another request: refuse and close instead. */
	if (r.ri->num_headers >= MG_MAX_HEADERS) {
		/* civetweb's own error page, because only that path also closes the connection. */
		http_plain_error = true;
		mg_send_http_error(conn, 400, "%s", "too many request headers");
		http_plain_error = false;
		metrics_observe_request(r.route, httpparse_method_name(r.ri->request_method), 400,
		                        0);
		return 400;
	}
	/* civetweb runs with decode_url=no so that an encoded NUL cannot cut the path short. */
	r.path = r.ri->local_uri &&
	                         httpparse_path_decode(r.ri->local_uri, r.pathbuf, sizeof r.pathbuf)
	                 ? r.pathbuf
	                 : NULL;

	const char *rid = mg_get_header(conn, "X-Request-ID");
	if (rid && httpparse_request_id_valid(rid))
		snprintf(r.id, sizeof r.id, "%s", rid);
	else if (!rnd_uuid(r.id))
		snprintf(r.id, sizeof r.id, "%llx", (unsigned long long)r.t0_us);
	log_set_request_id(r.id);

	http_route_request(&r);

	/* Whatever the handler did, the connection goes back idle for the next request. */
	db_idle();
	double secs = (double)(timefmt_mono_us() - r.t0_us) / 1e6;
	metrics_observe_request(r.route, httpparse_method_name(r.ri->request_method), r.status,
	                        secs);
	if (log_enabled(LOG_LEVEL_INFO)) {
		/* The decoded path is any bytes (%FF decodes to 0xFF): logged with ill-formed UTF-8
		 * replaced, as a log line is UTF-8 JSON.  Each byte becomes at most one U+FFFD, so
		 * nothing is cut.  The line is built without the heap (log_write_fields). */
		char path[3 * ROUTER_MAX_PATH + 1];
		enc_utf8_sanitize(path, sizeof path, r.path ? r.path : "",
		                  r.path ? strlen(r.path) : 0, false);
		const struct log_field fields[] = {
			{.key = "method", .type = LOG_FIELD_STR, .str = r.ri->request_method},
			{.key = "path", .type = LOG_FIELD_STR, .str = path},
			{.key = "status", .type = LOG_FIELD_INT, .num = r.status},
			{.key = "duration_ms", .type = LOG_FIELD_REAL, .real = secs * 1000.0},
			{.key = "remote", .type = LOG_FIELD_STR, .str = r.ri->remote_addr},
		};
		log_write_fields(LOG_LEVEL_INFO, "request", fields, countof(fields));
	}
	log_set_request_id(NULL);
	return r.status ? r.status : 500;
}
