/* http_internal: what the files of the request layer share and nothing outside them sees.
 *
 *   http_server.c    civetweb lifecycle: start, drain, stop, error page, log and thread callbacks
 *   http_dispatch.c  one request from begin to end: request id, routing, rate limit,
 *                    authorisation, CORS preflight, access log and metrics
 *   http_builtin.c   /health, /ready, /live, /metrics, /openapi.json
 *   http_request.c   what a handler reads: parameters, query, pagination, If-Match, the body
 *   http_reply.c     what a handler answers: replies, errors, redirects, extra headers, CORS
 *
 * The pure parsing under them is httpparse.c (public: common/include/httpparse.h).  civetweb is
 * included by these files only. */
#ifndef HTTP_INTERNAL_H
#define HTTP_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>

#include "auth.h"
#include "http.h"
#include "httpparse.h"
#include "router.h"

#define HTTP_MAX_EXTRA_HEADERS 8

struct mg_connection;
struct mg_context;
struct mg_request_info;

struct http_server {
	const struct http_options *opts;
	struct mg_context *ctx;
	_Atomic int draining;
};

/* One request, on the stack of the civetweb worker thread that serves it (http_dispatch.c). */
struct req {
	struct mg_connection *conn;
	const struct mg_request_info *ri;
	struct http_server *srv;
	const char *route; /* route template for metrics (static string) */
	const char *path;  /* decoded path (pathbuf), NULL when unusable */
	char pathbuf[ROUTER_MAX_PATH + 1];
	char id[HTTPPARSE_REQUEST_ID_MAX + 1];
	struct router_match match;
	struct auth_user user;
	bool has_user;
	bool replied;
	bool body_read; /* the request body was read to its end (req_body_object) */
	int status;
	long long t0_us;
	size_t nheaders; /* extra headers waiting in the thread's buffer (http_reply.c) */
	const char *error_location; /* req_error_redirect's base, NULL = errors in JSON */
};

/* Set by the dispatcher while it asks civetweb for an error page that must also close the
 * connection: the error-page callback then lets civetweb answer in its own plain form.
 * Per worker thread. */
extern _Thread_local bool http_plain_error;

/* http_reply.c: sends the reply (status, optional content type, body of len bytes, borrowed)
 * with X-Request-ID, Cache-Control, CORS and the headers added so far; marks r replied. */
void http_send(struct req *r, int status, const char *content_type, const char *body, size_t len);
/* http_reply.c: frees the calling worker thread's reply buffers (connection close, thread
 * exit). */
void http_reply_thread_free(void);
/* http_reply.c: the request's Origin header (borrowed) when CORS allows it, else NULL. */
const char *http_cors_origin(const struct req *r);

/* http_builtin.c: the routes every service has, looked up before the service's own. */
extern const struct http_route http_builtin_routes[];
extern const size_t http_builtin_count;

/* http_dispatch.c: civetweb's begin_request callback; serves the request completely and
 * returns its status. */
int http_begin_request(struct mg_connection *conn);

#endif
