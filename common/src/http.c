#include "http.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <civetweb.h>

#include "countof.h"
#include "db.h"
#include "encoding.h"
#include "jsonx.h"
#include "log.h"
#include "metrics.h"
#include "ratelimit.h"
#include "rnd.h"
#include "timefmt.h"

#define HTTP_MAX_EXTRA_HEADERS 8
#define HTTP_REQUEST_ID_MAX 64

/* Set while begin_request itself asks civetweb for an error it must also close on. */
static _Thread_local bool http_plain_error;

struct http_server {
	const struct http_options *opts;
	struct mg_context *ctx;
	_Atomic int draining;
};

struct req {
	struct mg_connection *conn;
	const struct mg_request_info *ri;
	struct http_server *srv;
	const char *route;           /* route template for metrics (static string) */
	const char *path;            /* decoded path (pathbuf), NULL when unusable */
	char pathbuf[ROUTER_MAX_PATH + 1];
	char id[HTTP_REQUEST_ID_MAX + 1];
	struct router_match match;
	struct auth_user user;
	bool has_user;
	bool replied;
	int status;
	long long t0_us;
	size_t nheaders;
	char *hname[HTTP_MAX_EXTRA_HEADERS];
	char *hvalue[HTTP_MAX_EXTRA_HEADERS];
};

/* ---- replies ---- */

/* The Origin header when CORS allows it, else NULL. */
static const char *http_cors_origin(const struct req *r)
{
	const char *allowed = r->srv->opts->cors_origins;
	const char *origin = mg_get_header(r->conn, "Origin");
	if (!allowed || !*allowed || !origin || !*origin)
		return NULL;
	size_t olen = strlen(origin);
	for (const char *p = allowed; *p;) {
		while (*p == ' ' || *p == ',')
			p++;
		const char *end = p;
		while (*end && *end != ',')
			end++;
		const char *last = end;
		while (last > p && last[-1] == ' ')
			last--;
		size_t len = (size_t)(last - p);
		if ((len == 1 && *p == '*') || (len == olen && strncmp(p, origin, len) == 0))
			return origin;
		p = end;
	}
	return NULL;
}

static void http_send(struct req *r, int status, const char *content_type, const char *body,
                      size_t len)
{
	char clen[24];
	snprintf(clen, sizeof clen, "%zu", len);
	mg_response_header_start(r->conn, status);
	if (content_type)
		mg_response_header_add(r->conn, "Content-Type", content_type, -1);
	mg_response_header_add(r->conn, "Content-Length", clen, -1);
	mg_response_header_add(r->conn, "X-Request-ID", r->id, -1);
	mg_response_header_add(r->conn, "Cache-Control", "no-store", -1);
	const char *origin = http_cors_origin(r);
	if (origin) {
		mg_response_header_add(r->conn, "Access-Control-Allow-Origin", origin, -1);
		mg_response_header_add(r->conn, "Vary", "Origin", -1);
		mg_response_header_add(r->conn, "Access-Control-Expose-Headers",
		                       "ETag, Link, Location, Retry-After, X-Request-ID", -1);
	}
	for (size_t i = 0; i < r->nheaders; i++)
		mg_response_header_add(r->conn, r->hname[i], r->hvalue[i], -1);
	mg_response_header_send(r->conn);
	if (len)
		mg_write(r->conn, body, len);
	r->status = status;
	r->replied = true;
}

void req_add_header(struct req *r, const char *name, const char *value)
{
	if (r->nheaders == HTTP_MAX_EXTRA_HEADERS)
		return;
	char *n = strdup(name), *v = strdup(value);
	if (!n || !v) {
		free(n);
		free(v);
		return;
	}
	/* Header values come from our own code, but never let a CR/LF through. */
	for (char *p = v; *p; p++)
		if (*p == '\r' || *p == '\n')
			*p = ' ';
	r->hname[r->nheaders] = n;
	r->hvalue[r->nheaders] = v;
	r->nheaders++;
}

static bool req_has_header(const struct req *r, const char *name)
{
	for (size_t i = 0; i < r->nheaders; i++)
		if (strcasecmp(r->hname[i], name) == 0)
			return true;
	return false;
}

void req_reply_json(struct req *r, int status, json_t *body)
{
	if (r->replied) {
		json_decref(body);
		return;
	}
	char *text = body ? json_dumps(body, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(6)) : NULL;
	json_decref(body);
	if (body && !text) {
		http_send(r, 500, "application/json", "", 0);
		return;
	}
	http_send(r, status, "application/json", text ? text : "", text ? strlen(text) : 0);
	free(text);
}

void req_reply_empty(struct req *r, int status)
{
	if (!r->replied)
		http_send(r, status, NULL, "", 0);
}

void req_redirect(struct req *r, const char *location)
{
	req_add_header(r, "Location", location);
	req_reply_empty(r, 302);
}

static void req_verror(struct req *r, enum err_kind kind, json_t *details, const char *fmt,
                       va_list ap)
{
	char msg[512] = "";
	if (fmt)
		vsnprintf(msg, sizeof msg, fmt, ap);
	int status = err_status(kind);
	if ((status == 503 || status == 429) && !req_has_header(r, "Retry-After"))
		req_add_header(r, "Retry-After", "1");
	if (status == 401 && !req_has_header(r, "WWW-Authenticate"))
		req_add_header(r, "WWW-Authenticate", "Bearer error=\"invalid_token\"");
	json_t *body = err_body(kind, msg, r->id, details, timefmt_now_ms());
	req_reply_json(r, status, body);
}

void req_error(struct req *r, enum err_kind kind, json_t *details, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	req_verror(r, kind, details, fmt, ap);
	va_end(ap);
}

void req_invalid(struct req *r, json_t *details)
{
	const char *key = NULL, *reason = "is invalid";
	void *it = json_object_iter(details);
	if (it) {
		key = json_object_iter_key(it);
		const char *s = json_string_value(json_object_iter_value(it));
		if (s)
			reason = s;
	}
	if (key)
		req_error(r, ERR_VALIDATION_FAILED, details, "%s %s", key, reason);
	else
		req_error(r, ERR_VALIDATION_FAILED, details, NULL);
}

void req_db_error(struct req *r, int db_status)
{
	enum db_status st = (enum db_status)db_status;
	enum err_kind kind = db_err_kind(st);
	if (kind == ERR_INTERNAL || kind == ERR_NONE)
		req_error(r, ERR_INTERNAL, NULL, NULL);
	else if (kind == ERR_UNAVAILABLE)
		req_error(r, kind, NULL, "database unavailable, try again");
	else
		req_error(r, kind, NULL, "%s", db_status_str(st));
}

/* ---- request accessors ---- */

const char *req_method(const struct req *r)
{
	return r->ri->request_method;
}

const char *req_id(const struct req *r)
{
	return r->id;
}

const struct auth_user *req_user(const struct req *r)
{
	return r->has_user ? &r->user : NULL;
}

const char *req_header(const struct req *r, const char *name)
{
	return mg_get_header(r->conn, name);
}

bool req_param(const struct req *r, const char *name, char *buf, size_t size)
{
	return router_param(&r->match, name, buf, size);
}

bool req_param_id(struct req *r, const char *name, long long *id)
{
	char buf[24];
	if (req_param(r, name, buf, sizeof buf) && buf[0] >= '1' && buf[0] <= '9') {
		char *end = NULL;
		long long v = strtoll(buf, &end, 10);
		if (*end == '\0' && v > 0 && strlen(buf) <= 18) {
			*id = v;
			return true;
		}
	}
	req_error(r, ERR_NOT_FOUND, NULL, "no such %s", name);
	return false;
}

int req_query(struct req *r, const char *name, char *buf, size_t size)
{
	const char *qs = r->ri->query_string;
	if (!qs)
		return 0;
	int n = mg_get_var(qs, strlen(qs), name, buf, size);
	if (n == -1)
		return 0;
	if (n < 0 || strlen(buf) != (size_t)n || !enc_utf8_valid(buf, (size_t)n)) {
		req_error(r, ERR_BAD_REQUEST, json_pack("{s:s}", name, "is too long or invalid"),
		          "query parameter %s is too long or invalid", name);
		return -1;
	}
	return 1;
}

bool req_query_int(struct req *r, const char *name, long long min, long long max,
                   long long *out, bool *present)
{
	char buf[32];
	int q = req_query(r, name, buf, sizeof buf);
	*present = q == 1;
	if (q <= 0)
		return q == 0;
	char *end = NULL;
	long long v = strtoll(buf, &end, 10);
	if (!buf[0] || *end || v < min || v > max || (buf[0] != '-' && !isdigit((unsigned char)buf[0]))) {
		json_t *details = json_object();
		json_object_set_new(details, name,
		                    json_sprintf("must be an integer from %lld to %lld", min, max));
		req_error(r, ERR_BAD_REQUEST, details,
		          "query parameter %s must be an integer from %lld to %lld", name, min, max);
		return false;
	}
	*out = v;
	return true;
}

bool req_query_bool(struct req *r, const char *name, bool *out, bool *present)
{
	char buf[8];
	int q = req_query(r, name, buf, sizeof buf);
	*present = q == 1;
	if (q <= 0)
		return q == 0;
	if (strcasecmp(buf, "true") == 0 || strcmp(buf, "1") == 0)
		*out = true;
	else if (strcasecmp(buf, "false") == 0 || strcmp(buf, "0") == 0)
		*out = false;
	else {
		req_error(r, ERR_BAD_REQUEST, json_pack("{s:s}", name, "must be true or false"),
		          "query parameter %s must be true or false", name);
		return false;
	}
	return true;
}

bool req_page(struct req *r, long long *limit, json_t **cursor)
{
	bool present = false;
	char buf[512];
	*cursor = NULL;
	*limit = 50;
	if (!req_query_int(r, "limit", 1, 200, limit, &present))
		return false;
	int q = req_query(r, "cursor", buf, sizeof buf);
	if (q < 0)
		return false;
	if (q == 0 || !buf[0])
		return true;
	size_t n = 0;
	unsigned char *raw = enc_b64url_decode(buf, strlen(buf), &n);
	json_t *v = raw ? jsonx_loadb((const char *)raw, n, JSON_DECODE_ANY, NULL) : NULL;
	free(raw);
	if (!json_is_array(v)) {
		json_decref(v);
		req_error(r, ERR_BAD_REQUEST, json_pack("{s:s}", "cursor", "is invalid"),
		          "query parameter cursor is invalid");
		return false;
	}
	*cursor = v;
	return true;
}

void req_next_page(struct req *r, const json_t *key)
{
	char *text = json_dumps(key, JSON_COMPACT | JSON_ENCODE_ANY);
	char *cursor = text ? enc_b64url_encode(text, strlen(text)) : NULL;
	free(text);
	if (!cursor)
		return;
	/* Keep every other query parameter as sent, replace cursor. */
	const char *qs = r->ri->query_string ? r->ri->query_string : "";
	size_t cap = strlen(r->path) + strlen(qs) + strlen(cursor) + 32;
	char *link = malloc(cap);
	if (!link) {
		free(cursor);
		return;
	}
	size_t len = (size_t)snprintf(link, cap, "<%s?", r->path);
	for (const char *p = qs; *p;) {
		const char *amp = strchr(p, '&');
		size_t plen = amp ? (size_t)(amp - p) : strlen(p);
		if (plen && strncmp(p, "cursor=", 7) != 0 && !(plen == 6 && strncmp(p, "cursor", 6) == 0)) {
			memcpy(link + len, p, plen);
			len += plen;
			link[len++] = '&';
		}
		p += plen;
		if (*p == '&')
			p++;
	}
	snprintf(link + len, cap - len, "cursor=%s>; rel=\"next\"", cursor);
	req_add_header(r, "Link", link);
	free(link);
	free(cursor);
}

bool req_if_match(struct req *r, long long *version)
{
	*version = 0;
	const char *h = mg_get_header(r->conn, "If-Match");
	if (!h)
		return true;
	while (*h == ' ')
		h++;
	if (strcmp(h, "*") == 0)
		return true;
	if (strncmp(h, "W/", 2) == 0)
		h += 2;
	char *end = NULL;
	long long v = 0;
	if (*h == '"' && isdigit((unsigned char)h[1])) {
		v = strtoll(h + 1, &end, 10);
		/* Versions are PostgreSQL integers: anything larger names no version. */
		if (*end == '"' && end[1] == '\0' && v > 0 && v <= 2147483647) {
			*version = v;
			return true;
		}
	}
	req_error(r, ERR_PRECONDITION_FAILED, NULL, "If-Match does not name a current version");
	return false;
}

static bool http_is_json_type(const char *ct)
{
	static const char want[] = "application/json";
	if (!ct || strncasecmp(ct, want, sizeof want - 1) != 0)
		return false;
	char next = ct[sizeof want - 1];
	return next == '\0' || next == ';' || next == ' ';
}

json_t *req_body_object(struct req *r)
{
	long long max = r->srv->opts->max_body;
	long long declared = r->ri->content_length;
	const char *te = mg_get_header(r->conn, "Transfer-Encoding");
	bool chunked = te && strcasecmp(te, "chunked") == 0;
	char *buf = NULL;
	json_t *obj = NULL;

	if (declared < 0 && !chunked) {
		req_error(r, ERR_LENGTH_REQUIRED, NULL, "a request body with Content-Length is required");
		goto out;
	}
	if (declared > max) {
		req_error(r, ERR_PAYLOAD_TOO_LARGE, NULL, "request body exceeds %lld bytes", max);
		goto out;
	}
	if (!http_is_json_type(mg_get_header(r->conn, "Content-Type"))) {
		req_error(r, ERR_UNSUPPORTED_MEDIA_TYPE, NULL,
		          "Content-Type must be application/json");
		goto out;
	}
	/* A chunked body has no declared size: read at most max + 1 bytes to detect excess. */
	size_t cap = (size_t)(declared >= 0 ? declared : max + 1);
	buf = malloc(cap + 1);
	if (!buf) {
		req_error(r, ERR_INTERNAL, NULL, NULL);
		goto out;
	}
	size_t got = 0;
	while (got < cap) {
		int n = mg_read(r->conn, buf + got, cap - got);
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	if ((long long)got > max) {
		req_error(r, ERR_PAYLOAD_TOO_LARGE, NULL, "request body exceeds %lld bytes", max);
		goto out;
	}
	if (declared >= 0 && got != (size_t)declared) {
		req_error(r, ERR_BAD_REQUEST, NULL, "request body shorter than Content-Length");
		goto out;
	}
	if (got == 0) {
		req_error(r, ERR_BAD_REQUEST, NULL, "request body must be a JSON object");
		goto out;
	}
	char err[256];
	obj = jsonx_parse_object(buf, got, err, sizeof err);
	if (!obj)
		req_error(r, ERR_BAD_REQUEST, NULL, "%s", err);
out:
	free(buf);
	return obj;
}

/* ---- built-in operational endpoints ---- */

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

static const struct http_route http_builtin[] = {
	{{"GET", "/health"}, http_health, HTTP_PUBLIC},
	{{"GET", "/ready"}, http_ready, HTTP_PUBLIC},
	{{"GET", "/live"}, http_live, HTTP_PUBLIC},
	{{"GET", "/metrics"}, http_metrics, HTTP_PUBLIC},
	{{"GET", "/openapi.json"}, http_openapi, HTTP_PUBLIC},
};

/* ---- dispatch ---- */

static bool http_valid_request_id(const char *s)
{
	size_t n = 0;
	for (; s[n]; n++) {
		unsigned char c = (unsigned char)s[n];
		if (n >= HTTP_REQUEST_ID_MAX || !(isalnum(c) || c == '.' || c == '_' || c == '-'))
			return false;
	}
	return n > 0;
}

/* Verifies the bearer token; replies 401/403 and returns false when access is refused. */
static bool http_authorize(struct req *r, enum http_access access)
{
	if (access == HTTP_PUBLIC)
		return true;
	const char *h = mg_get_header(r->conn, "Authorization");
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
	r->has_user = true;
	if (access == HTTP_ADMIN && !r->user.admin) {
		req_error(r, ERR_FORBIDDEN, NULL, "admin role required");
		return false;
	}
	return true;
}

/* The client's address: the peer, or behind a trusted proxy the last X-Forwarded-For entry. */
static void http_client_addr(const struct req *r, char *out, size_t size)
{
	const char *xff = r->srv->opts->trust_forwarded_for ? mg_get_header(r->conn, "X-Forwarded-For")
	                                                    : NULL;
	const char *last = xff ? strrchr(xff, ',') : NULL;
	const char *addr = last ? last + 1 : xff;
	while (addr && *addr == ' ')
		addr++;
	snprintf(out, size, "%s", addr && *addr ? addr : r->ri->remote_addr);
}

/* Applies the rate limit of the path; replies 429 and returns false when exceeded. */
static bool http_rate_limited(struct req *r)
{
	const struct http_options *o = r->srv->opts;
	if (!o->rate_limit || !o->rate_limit_prefix ||
	    strncmp(r->path, o->rate_limit_prefix, strlen(o->rate_limit_prefix)) != 0)
		return false;
	char addr[RATELIMIT_KEY_MAX], retry[16];
	int after = 0;
	http_client_addr(r, addr, sizeof addr);
	if (ratelimit_take(o->rate_limit, addr, timefmt_mono_us() / 1000, &after))
		return false;
	snprintf(retry, sizeof retry, "%d", after);
	req_add_header(r, "Retry-After", retry);
	metrics_counter_add("http_rate_limited_total", "Requests refused by the rate limit.", 1);
	req_error(r, ERR_RATE_LIMITED, NULL, "too many requests from %s; retry in %d s", addr, after);
	return true;
}

static void http_preflight(struct req *r, const char *allow)
{
	if (http_cors_origin(r)) {
		req_add_header(r, "Access-Control-Allow-Methods", allow);
		req_add_header(r, "Access-Control-Allow-Headers",
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
	if (router_find(http_builtin, countof(http_builtin),
	                sizeof http_builtin[0], lookup, r->path, &r->match)) {
		route = &http_builtin[r->match.index];
	} else if (!r->match.path_known &&
	           router_find(o->routes, o->nroutes, sizeof o->routes[0], lookup, r->path,
	                       &r->match)) {
		route = &o->routes[r->match.index];
	}
	if (!route) {
		if (is_options && r->match.path_known) {
			http_preflight(r, r->match.allow);
		} else if (r->match.path_known) {
			req_add_header(r, "Allow", r->match.allow);
			req_error(r, ERR_METHOD_NOT_ALLOWED, NULL, "method %s not allowed here", method);
		} else {
			req_error(r, ERR_NOT_FOUND, NULL, "no such path");
		}
		return;
	}
	r->route = route->route.pattern;
	if (http_rate_limited(r) || !http_authorize(r, route->access))
		return;
	route->handler(r);
	if (!r->replied) {
		log_error("handler for %s %s did not reply", method, r->route);
		req_error(r, ERR_INTERNAL, NULL, NULL);
	}
}

/* The method as a static string: metrics keep the pointer, and civetweb's own buffer is reused
 * by the next request on that thread. */
static const char *http_method_name(const char *m)
{
	static const char *const known[] = {"GET", "POST", "PUT", "DELETE", "PATCH", "HEAD",
	                                    "OPTIONS"};
	for (size_t i = 0; i < countof(known); i++)
		if (strcmp(m, known[i]) == 0)
			return known[i];
	return "OTHER";
}

static int http_hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Percent-decodes the request path (civetweb runs with decode_url=no so that an encoded NUL
 * cannot cut the path short).  Returns false for "%00", a bad escape or an overlong path. */
static bool http_decode_path(const char *raw, char *out, size_t size)
{
	size_t n = 0;
	for (const char *p = raw; *p; p++) {
		char c = *p;
		if (c == '%') {
			int hi = http_hexval(p[1]), lo = hi < 0 ? -1 : http_hexval(p[2]);
			if (lo < 0 || (hi == 0 && lo == 0))
				return false;
			c = (char)(hi * 16 + lo);
			p += 2;
		}
		if (n + 1 >= size)
			return false;
		out[n++] = c;
	}
	out[n] = '\0';
	return true;
}

static int http_begin_request(struct mg_connection *conn)
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
		metrics_observe_request(r.route, http_method_name(r.ri->request_method), 400, 0);
		return 400;
	}
	r.path = r.ri->local_uri && http_decode_path(r.ri->local_uri, r.pathbuf, sizeof r.pathbuf)
	                 ? r.pathbuf
	                 : NULL;

	const char *rid = mg_get_header(conn, "X-Request-ID");
	if (rid && http_valid_request_id(rid))
		snprintf(r.id, sizeof r.id, "%s", rid);
	else if (!rnd_uuid(r.id))
		snprintf(r.id, sizeof r.id, "%llx", (unsigned long long)r.t0_us);
	log_set_request_id(r.id);

	http_route_request(&r);

	/* Whatever the handler did, the connection goes back idle for the next request. */
	db_idle();
	double secs = (double)(timefmt_mono_us() - r.t0_us) / 1e6;
	metrics_observe_request(r.route, http_method_name(r.ri->request_method), r.status, secs);
	if (log_enabled(LOG_LEVEL_INFO))
		log_write(LOG_LEVEL_INFO,
		          json_pack("{s:s, s:s, s:i, s:f, s:s}", "method", r.ri->request_method,
		                    "path", r.path ? r.path : "", "status", r.status, "duration_ms",
		                    secs * 1000.0, "remote", r.ri->remote_addr),
		          "request");
	log_set_request_id(NULL);
	for (size_t i = 0; i < r.nheaders; i++) {
		free(r.hname[i]);
		free(r.hvalue[i]);
	}
	return r.status ? r.status : 500;
}

/* civetweb's own errors (malformed request, headers over max_request_size…) in the standard JSON
 * shape too; the connection is closed afterwards. */
static int http_error_page(struct mg_connection *conn, int status, const char *msg)
{
	(void)msg;
	if (http_plain_error)
		return 1;
	enum err_kind kind = status == 404   ? ERR_NOT_FOUND
	                     : status == 405 ? ERR_METHOD_NOT_ALLOWED
	                     : status == 413 ? ERR_PAYLOAD_TOO_LARGE
	                     : status >= 500 ? ERR_INTERNAL
	                                     : ERR_BAD_REQUEST;
	char id[RND_UUID_LEN];
	if (!rnd_uuid(id))
		snprintf(id, sizeof id, "-");
	const char *message = status == 413 || status == 431 ? "request headers too large"
	                      : status >= 500                 ? NULL
	                                                      : "malformed request";
	json_t *body = err_body(kind, message, id, NULL, timefmt_now_ms());
	char *text = body ? json_dumps(body, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
	json_decref(body);
	if (!text)
		return 1;
	mg_printf(conn,
	          "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n"
	          "X-Request-ID: %s\r\nConnection: close\r\n\r\n%s",
	          err_status(kind), mg_get_response_code_text(conn, err_status(kind)), strlen(text),
	          id, text);
	free(text);
	return 0;
}

static int http_log_message(const struct mg_connection *conn, const char *message)
{
	(void)conn;
	log_warn("civetweb: %s", message);
	return 1;
}

static int http_log_access(const struct mg_connection *conn, const char *message)
{
	(void)conn;
	(void)message;
	return 1; /* we write our own access log line */
}

static struct http_server *http_thread_owner;

static void http_exit_thread(const struct mg_context *ctx, int thread_type, void *user)
{
	(void)ctx;
	(void)thread_type;
	(void)user;
	db_thread_close();
	if (http_thread_owner && http_thread_owner->opts->thread_exit)
		http_thread_owner->opts->thread_exit();
}

struct http_server *http_start(const struct http_options *opts, char *err, size_t errlen)
{
	struct http_server *s = calloc(1, sizeof *s);
	if (!s) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	s->opts = opts;
	http_thread_owner = s;

	char ports[80], threads[24];
	snprintf(ports, sizeof ports, "%s:%lld", opts->listen_host ? opts->listen_host : "0.0.0.0",
	         opts->port);
	snprintf(threads, sizeof threads, "%lld", opts->num_threads);
	char timeout[24];
	snprintf(timeout, sizeof timeout, "%lld",
	         opts->request_timeout_ms > 0 ? opts->request_timeout_ms : 30000);
	const char *options[] = {"listening_ports", ports,
	                         "num_threads", threads,
	                         "request_timeout_ms", timeout,
	                         "decode_url", "no",
	                         /* civetweb writes a response in several small sends; without this,
	                          * Nagle + delayed ACK add ~40 ms to every keep-alive reply. */
	                         "tcp_nodelay", "1",
	                         "enable_keep_alive", "yes",
	                         "keep_alive_timeout_ms", "5000",
	                         "max_request_size", "16384",
	                         "linger_timeout_ms", "100",
	                         NULL};
	struct mg_callbacks cb;
	memset(&cb, 0, sizeof cb);
	cb.begin_request = http_begin_request;
	cb.log_message = http_log_message;
	cb.http_error = http_error_page;
	cb.log_access = http_log_access;
	cb.exit_thread = http_exit_thread;

	mg_init_library(0);
	s->ctx = mg_start(&cb, s, options);
	if (!s->ctx) {
		snprintf(err, errlen, "cannot listen on %s (port in use or not permitted)", ports);
		mg_exit_library();
		free(s);
		http_thread_owner = NULL;
		return NULL;
	}
	return s;
}

void http_drain(struct http_server *s)
{
	s->draining = 1;
}

void http_stop(struct http_server *s)
{
	if (!s)
		return;
	mg_stop(s->ctx);
	mg_exit_library();
	http_thread_owner = NULL;
	free(s);
}
