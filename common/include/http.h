/* http: the request layer on civetweb.  One entry point receives every request, builds a
 * struct req (connection, request id, caller, start time), routes it by method and path,
 * enforces authentication, calls the handler and finishes in one place: the reply, the access
 * log line, the metrics and the release of any open database transaction.
 *
 * Built in on every service: GET /health, /ready, /live, /metrics, /openapi.json; CORS (by
 * configuration);
 * 404/405 in the standard error shape; X-Request-ID on every response.
 *
 * Handlers reply exactly once, through req_reply_* or req_error.  Functions documented as
 * "replies on failure" have already answered the client when they return false: the handler
 * just returns.  A struct req lives on the stack of the worker thread serving it: the req_*
 * functions are called from that request's handler only, and what they return is borrowed for
 * the request unless stated otherwise.
 *
 * Implemented in common/src/http_*.c, one concern per file (listed in http_internal.h); the
 * pure parsing underneath (lists, paths, ids, If-Match, Link) is httpparse.h. */
#ifndef HTTP_H
#define HTTP_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "auth.h"
#include "errors.h"
#include "router.h"

struct health;
struct req;
struct http_server;

enum http_access {
	HTTP_PUBLIC, /* anyone */
	HTTP_BEARER, /* a valid access token */
	HTTP_ADMIN,  /* a valid access token with role admin */
	/* A valid access token, unless the query string has a `token` parameter, which the handler
	 * must check itself (req_user is then NULL): for URLs of clients that cannot send a bearer
	 * token (calendar subscriptions). */
	HTTP_BEARER_OR_TOKEN,
	/* A valid access token when the request has an Authorization header; without one the
	 * handler runs with req_user NULL and must authenticate the request itself, by a cookie
	 * (user-service's POST /auth/logout with the refresh cookie), or refuse it. */
	HTTP_BEARER_OR_COOKIE,
};

typedef void (*http_handler_fn)(struct req *r);

struct http_route {
	struct router_route route; /* method + pattern; must be first */
	http_handler_fn handler;
	enum http_access access;
};

struct http_options {
	const char *service;     /* "user-service" */
	const char *listen_host; /* NULL = 0.0.0.0 */
	long long port;
	/* civetweb worker threads: each serves one connection at a time, for as long as the
	 * connection lives (keep-alive included), so this bounds the connections served at once. */
	long long num_threads;
	long long max_body; /* bytes */
	/* A request's line and headers must have arrived within this of the connection's start
	 * (first request) or of the previous reply (keep-alive), else the connection is closed;
	 * also civetweb's limit for a stalled body read or reply write (http_server.c).
	 * 0 = 5000. */
	long long header_timeout_ms;
	const char *cors_origins; /* comma-separated, "*" or empty */
	const struct auth_config *auth;
	const struct http_route *routes;
	size_t nroutes;
	struct health *health; /* GET /health reports its last results; NULL = no checks */
	bool (*ready)(void);   /* extra readiness condition, may be NULL */
	const char *openapi;   /* the service's OpenAPI document (JSON text), may be NULL */
	/* Requests whose path starts with rate_limit_prefix (e.g. "/auth/") take a token from
	 * rate_limit per client address; an empty bucket answers 429 with Retry-After.  The client
	 * address is the peer, or the X-Real-IP header (the address the gateway resolved) when the
	 * peer is listed in trusted_gateways (comma-separated IPv4 addresses or CIDRs, validated by
	 * the caller with httpparse_cidr_list_valid; NULL or empty = believe no header). */
	const char *rate_limit_prefix;
	struct ratelimit *rate_limit;
	/* Routes (their patterns, NULL-terminated; may be NULL) under rate_limit_prefix that take
	 * their tokens from route_rate_limit instead, one bucket per client address for all of
	 * them (NULL = not limited): e.g. the web app's token renewals, far more frequent than
	 * sign-ins. */
	const char *const *rate_limit_routes;
	struct ratelimit *route_rate_limit;
	const char *trusted_gateways;
	void (*thread_exit)(void); /* per-thread cleanup of the service, may be NULL */
	/* Optional: called with every request that matched one of routes (pattern: its route's),
	 * before the route's rate limit and access check; e.g. to call req_error_redirect, so
	 * that those refusals are answered that way too. */
	void (*route_matched)(struct req *r, const char *pattern);
};

/* Starts the server; opts and everything it points to must outlive it.  Returns NULL with a
 * reason in err when the port cannot be bound. */
struct http_server *http_start(const struct http_options *opts, char *err, size_t errlen);
/* From now on /ready answers 503 (the load balancer stops sending); everything else is still
 * served until http_stop, each reply with `Connection: close`, so that a gateway keeps no
 * connection to this process that the stop could close under a request just sent. */
void http_drain(struct http_server *s);
/* Stops accepting (a connection attempt is refused from then on, which a gateway passes to
 * another replica), waits for in-flight requests, frees the server. */
void http_stop(struct http_server *s);

/* ---- inside a handler ---- */

const char *req_method(const struct req *r);
const char *req_id(const struct req *r);
/* The verified caller (routes with HTTP_BEARER/HTTP_ADMIN, and the others when they verified a
 * bearer token), else NULL. */
const struct auth_user *req_user(const struct req *r);
/* A request header (case-insensitive name) or NULL; borrowed for the request's lifetime. */
const char *req_header(const struct req *r, const char *name);
/* Copies path parameter name; false if absent or too long. */
bool req_param(const struct req *r, const char *name, char *buf, size_t size);
/* Path parameter as a positive 64-bit id.  Replies 404 on failure (a malformed id names no
 * resource). */
bool req_param_id(struct req *r, const char *name, long long *id);

/* Query parameter, URL-decoded, into buf.  Returns 1 when present, 0 when absent; replies 400
 * and returns -1 when it is too long for buf. */
int req_query(struct req *r, const char *name, char *buf, size_t size);
/* As req_query, but never replies: -1 when the parameter is too long or invalid. */
int req_query_quiet(const struct req *r, const char *name, char *buf, size_t size);
/* Optional integer query parameter within [min, max]; replies 400 on failure. */
bool req_query_int(struct req *r, const char *name, long long min, long long max, long long *out,
                   bool *present);
/* Optional boolean query parameter (true/false/1/0); replies 400 on failure. */
bool req_query_bool(struct req *r, const char *name, bool *out, bool *present);
/* Optional equipment list (comma-separated, equipment.h's rules): *list receives a new array of
 * the normalised items, NULL when the parameter is absent or lists nothing.  Replies 400 on
 * failure. */
bool req_query_equipment(struct req *r, const char *name, json_t **list);
/* Replies 400 bad_request for query parameter name: details {name: why}, message "query
 * parameter <name> <why>". */
void req_bad_query(struct req *r, const char *name, const char *why);

/* Pagination: ?limit= (1–200, default 50) and ?cursor= (opaque).  *cursor receives a new
 * reference to the decoded cursor value, or NULL on the first page.  Replies 400 on failure. */
bool req_page(struct req *r, long long *limit, json_t **cursor);
/* req_page for a list ordered by id alone, whose cursor is [id as text, id] (db_json_page's key
 * of a query that answers those two columns): *after receives the id of the last row seen, 0
 * on the first page.  Replies 400 (cursor is invalid) for any other cursor. */
bool req_page_after_id(struct req *r, long long *limit, long long *after);
/* Announces the next page: Link: <path?…&cursor=…>; rel="next".  key is borrowed. */
void req_next_page(struct req *r, const json_t *key);

/* Whether the request carries a body: a Content-Length above 0 (its value, not its text: "00"
 * is none), or a chunked one (its length unknown until read). */
bool req_has_body(const struct req *r);
/* Reads the body as a JSON object: 411 without a length, 413 over the limit, 415 for another
 * content type, 400 for bad JSON.  Returns a new reference, or NULL after replying. */
json_t *req_body_object(struct req *r);
/* For an optional body: true with *out NULL when there is none (no Content-Length above 0 and
 * not chunked, or chunked without data, whatever its Content-Type), else req_body_object's
 * object in *out (a new reference); false after replying as req_body_object does. */
bool req_body_object_opt(struct req *r, json_t **out);

/* Adds a response header for the coming reply (copied). */
void req_add_header(struct req *r, const char *name, const char *value);
/* The If-Match header's version ("3" from "\"3\"" or W/"3"); 0 when absent.  Replies 412 and
 * returns false when it is present but names no valid version. */
bool req_if_match(struct req *r, long long *version);

/* Conditional GET: when the If-None-Match header names etag (weak comparison, "*" names any),
 * replies 304 with ETag: etag and no body, and returns true; else returns false and does
 * nothing.  Call it once the resource's current ETag is known. */
bool req_not_modified(struct req *r, const char *etag);

/* Replies with body (stolen; NULL for no body) and status. */
void req_reply_json(struct req *r, int status, json_t *body);
/* The text req_reply_json() sends for body (borrowed): new string (free()), NULL when out of
 * memory.  Thread-safe. */
char *req_json_text(const json_t *body);
/* Replies with status and a JSON text body of len bytes (borrowed), e.g. from req_json_text(). */
void req_reply_json_text(struct req *r, int status, const char *text, size_t len);
/* Replies with status and a body of len bytes (borrowed) of another media type than JSON
 * (content_type, e.g. "text/calendar; charset=utf-8"). */
void req_reply_text(struct req *r, int status, const char *content_type, const char *text,
                    size_t len);
/* Replies without body (e.g. 204). */
void req_reply_empty(struct req *r, int status);
/* Replies with a redirect (302) to location. */
void req_redirect(struct req *r, const char *location);
/* Longest error message in bytes; a longer one is cut after a whole character and ends in "…". */
#define HTTP_ERROR_MESSAGE_MAX 512

/* Replies with the error body of docs/api.md#errors.  details is stolen (may be NULL).  fmt may
 * be NULL for the kind's default message; the formatted message may quote any bytes (ill-formed
 * UTF-8 becomes U+FFFD, see enc_utf8_sanitize).  Adds Retry-After for 429/503,
 * WWW-Authenticate for 401. */
void req_error(struct req *r, enum err_kind kind, json_t *details, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
/* From now on every error of this request (req_error and what answers through it, the
 * dispatcher's refusals after route_matched included) is answered 303 See Other to base followed
 * by the error's code (err_code: a fixed word, nothing the request sent), its message logged
 * instead of sent: for a page a person's browser navigated to, which should land on a page of
 * the app rather than on JSON.  base (e.g. "/app/signin?error=") must outlive the request, e.g.
 * a string literal; NULL answers errors in JSON again. */
void req_error_redirect(struct req *r, const char *base);
/* Replies 422 with a details object (stolen) and a message built from its first entry. */
void req_invalid(struct req *r, json_t *details);
/* Replies for a failed database status (409/422/503/500). */
void req_db_error(struct req *r, int db_status);
/* Before the reply with a page of a list read with db_status: unless DB_OK, replies as
 * req_db_error() and returns false; else adds, when next is not NULL (borrowed), the Link to the
 * next page (req_next_page) and returns true: the caller then replies 200 with the page. */
bool req_page_read(struct req *r, int db_status, const json_t *next);

#endif
