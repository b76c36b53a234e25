/* Replies: the one place a response is written (http_send), errors in the standard shape,
 * redirects, extra headers and CORS on every reply.
 *
 * A response with a body up to HTTP_BODY_COPY_MAX leaves in one mg_write: status line, headers
 * and body are assembled in a buffer of the worker thread, reused by every request it serves
 * (civetweb's own header functions send each header line apart and copy every name and value to
 * the heap); a larger body follows the head in a second write, from the handler's memory.  The
 * extra headers a handler adds wait in a second such buffer, and a JSON body is dumped into a
 * third one. */
#include "http_internal.h"

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
#include "log.h"
#include "metrics.h"
#include "timefmt.h"

/* A byte buffer of one worker thread that keeps its memory from request to request; one that
 * grew beyond HTTP_BUF_KEEP for a large reply is freed after it (a thread keeps its buffers while
 * its connection lives: 64 keep-alive clients of large answers would hold 64 of them). */
struct http_buf {
	char *data;
	size_t len, cap;
};

#define HTTP_BUF_KEEP (64 * 1024)
/* The largest body http_send copies behind the head to send both in one write. */
#define HTTP_BODY_COPY_MAX (16 * 1024)

static _Thread_local struct http_buf http_out, http_body, http_extra;

/* How every JSON body is written (req_reply_json, req_json_text). */
#define HTTP_JSON_FLAGS (JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(6))

static bool req_has_header(const struct req *r, const char *name);

/* Room for n more bytes after len; false when memory is short. */
static bool http_buf_reserve(struct http_buf *b, size_t n)
{
	if (b->cap - b->len >= n)
		return true;
	size_t cap = b->cap ? b->cap : 4096;
	while (cap - b->len < n)
		cap *= 2;
	char *p = realloc(b->data, cap);
	if (!p)
		return false;
	b->data = p;
	b->cap = cap;
	return true;
}

static bool http_buf_add(struct http_buf *b, const char *s, size_t n)
{
	if (!http_buf_reserve(b, n))
		return false;
	memcpy(b->data + b->len, s, n);
	b->len += n;
	return true;
}

static bool http_buf_str(struct http_buf *b, const char *s)
{
	return http_buf_add(b, s, strlen(s));
}

/* "Name: value\r\n" */
static bool http_buf_header(struct http_buf *b, const char *name, const char *value)
{
	return http_buf_str(b, name) && http_buf_add(b, ": ", 2) && http_buf_str(b, value) &&
	       http_buf_add(b, "\r\n", 2);
}

static void http_buf_trim(struct http_buf *b)
{
	b->len = 0;
	if (b->cap > HTTP_BUF_KEEP) {
		free(b->data);
		b->data = NULL;
		b->cap = 0;
	}
}

void http_reply_thread_free(void)
{
	struct http_buf *all[] = {&http_out, &http_body, &http_extra};
	for (size_t i = 0; i < countof(all); i++) {
		free(all[i]->data);
		*all[i] = (struct http_buf){0};
	}
}

const char *http_cors_origin(const struct req *r)
{
	const char *origin = mg_get_header(r->conn, "Origin");
	return httpparse_origin_allowed(r->srv->opts->cors_origins, origin) ? origin : NULL;
}

/* Whether the connection stays open after this reply, as civetweb 1.15 decides after the
 * handler: a Connection header keeps it when it lists keep-alive, none keeps an HTTP/1.1 one
 * (should_keep_alive; checked against it for every case in tests/integration/test_http_serving.py),
 * and a request body that was not read to its end closes it.  Saying so matters behind the
 * gateway, which keeps upstream connections alive: it must not send its next request into a
 * connection that civetweb is closing.  While the server drains (http_drain) every reply
 * says `Connection: close`: the gateway then holds no idle connection to this process when
 * http_stop closes them, where a POST it had just sent on one would be lost (nginx repeats no
 * POST once sent, and answers 502).  That one is advice only: civetweb does not see the header
 * (the reply is written raw) and keeps the connection, and its worker thread, until the peer
 * closes it - nginx closes at once, a direct client may send another request on it. */
static bool http_keep_alive(const struct req *r)
{
	if (r->srv->draining)
		return false;
	bool has_body = r->ri->content_length > 0 ||
	                mg_get_header(r->conn, "Transfer-Encoding") != NULL;
	if (has_body && !r->body_read)
		return false;
	const char *connection = mg_get_header(r->conn, "Connection");
	if (connection)
		return httpparse_list_has(connection, "keep-alive", true);
	return r->ri->http_version && strcmp(r->ri->http_version, "1.1") == 0;
}

/* The Date header's value, formatted once a second per thread. */
static const char *http_date(void)
{
	static _Thread_local char text[40];
	static _Thread_local time_t at = -1;
	time_t now = time(NULL);
	if (now != at) {
		struct tm tm;
		if (!gmtime_r(&now, &tm) ||
		    !strftime(text, sizeof text, "%a, %d %b %Y %H:%M:%S GMT", &tm))
			text[0] = '\0';
		at = now;
	}
	return text;
}

/* The status line and headers of a reply (Content-Length: len unless a 304) into http_out,
 * replacing what it held; false when memory is short. */
static bool http_head(struct req *r, int status, const char *content_type, size_t len)
{
	struct http_buf *b = &http_out;
	char line[64], clen[24];
	const char *version = r->ri->http_version ? r->ri->http_version : "1.1";
	snprintf(line, sizeof line, "HTTP/%s %d ", strcmp(version, "1.0") == 0 ? "1.0" : "1.1",
	         status);
	snprintf(clen, sizeof clen, "%zu", len);
	const char *origin = http_cors_origin(r);
	b->len = 0;
	bool ok = http_buf_str(b, line) &&
	          http_buf_str(b, mg_get_response_code_text(r->conn, status)) &&
	          http_buf_add(b, "\r\n", 2) &&
	          (!content_type || http_buf_header(b, "Content-Type", content_type)) &&
	          /* A 304 has no body, and its Content-Length would describe the 200's (RFC 9110
	           * 8.6). */
	          (status == 304 || http_buf_header(b, "Content-Length", clen)) &&
	          http_buf_header(b, "X-Request-ID", r->id) &&
	          (req_has_header(r, "Cache-Control") ||
	           http_buf_header(b, "Cache-Control", "no-store"));
	if (ok && origin)
		ok = http_buf_header(b, "Access-Control-Allow-Origin", origin) &&
		     http_buf_header(b, "Vary", "Origin") &&
		     http_buf_header(b, "Access-Control-Expose-Headers",
		                     "ETag, Link, Location, Retry-After, X-Request-ID");
	if (ok && r->nheaders)
		ok = http_buf_add(b, http_extra.data, http_extra.len);
	return ok && http_buf_header(b, "Date", http_date()) &&
	       http_buf_header(b, "Connection", http_keep_alive(r) ? "keep-alive" : "close") &&
	       http_buf_add(b, "\r\n", 2);
}

void http_send(struct req *r, int status, const char *content_type, const char *body, size_t len)
{
	bool ok = http_head(r, status, content_type, len);
	if (ok && len <= HTTP_BODY_COPY_MAX && http_buf_add(&http_out, body, len)) {
		mg_write(r->conn, http_out.data, http_out.len);
	} else if (ok) {
		/* A larger body follows the head from where the handler holds it: a copy would
		 * cost as much memory again, kept by the thread (up to HTTP_BUF_KEEP) while its
		 * connection lives. */
		if (mg_write(r->conn, http_out.data, http_out.len) > 0 && len > 0)
			mg_write(r->conn, body, len);
	} else {
		/* Out of memory: a bodiless 500 rather than nothing. */
		static const char oom[] =
			"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\n"
			"Connection: close\r\n\r\n";
		mg_write(r->conn, oom, sizeof oom - 1);
		status = 500;
	}
	http_buf_trim(&http_out);
	http_buf_trim(&http_extra);
	r->nheaders = 0;
	r->status = status;
	r->replied = true;
}

void req_add_header(struct req *r, const char *name, const char *value)
{
	if (r->nheaders == HTTP_MAX_EXTRA_HEADERS)
		return;
	if (r->nheaders == 0)
		http_extra.len = 0;
	size_t mark = http_extra.len;
	if (!http_buf_str(&http_extra, name) || !http_buf_add(&http_extra, ": ", 2)) {
		http_extra.len = mark;
		return;
	}
	/* Header values come from our own code, but never let a CR/LF through. */
	size_t at = http_extra.len;
	if (!http_buf_str(&http_extra, value) || !http_buf_add(&http_extra, "\r\n", 2)) {
		http_extra.len = mark;
		return;
	}
	for (char *p = http_extra.data + at; p < http_extra.data + http_extra.len - 2; p++)
		if (*p == '\r' || *p == '\n')
			*p = ' ';
	r->nheaders++;
}

static bool req_has_header(const struct req *r, const char *name)
{
	/* http_extra holds r->nheaders lines "Name: value\r\n" (values without CR or LF). */
	size_t n = strlen(name);
	const char *line = http_extra.data, *end = http_extra.data + http_extra.len;
	for (size_t i = 0; i < r->nheaders && line < end; i++) {
		if ((size_t)(end - line) > n && strncasecmp(line, name, n) == 0 && line[n] == ':')
			return true;
		const char *cr = memchr(line, '\r', (size_t)(end - line));
		if (!cr)
			break;
		line = cr + 2;
	}
	return false;
}

char *req_json_text(const json_t *body)
{
	return json_dumps(body, HTTP_JSON_FLAGS);
}

void req_reply_json_text(struct req *r, int status, const char *text, size_t len)
{
	if (!r->replied)
		http_send(r, status, "application/json", text, len);
}

void req_reply_text(struct req *r, int status, const char *content_type, const char *text,
                    size_t len)
{
	if (!r->replied)
		http_send(r, status, content_type, text, len);
}

void req_reply_json(struct req *r, int status, json_t *body)
{
	if (r->replied) {
		json_decref(body);
		return;
	}
	const size_t flags = HTTP_JSON_FLAGS;
	struct http_buf *b = &http_body;
	size_t len = 0;
	if (body) {
		/* Dumped into the thread's buffer; a body larger than it is dumped again once the
		 * buffer has grown to its size. */
		len = json_dumpb(body, b->data, b->cap, flags);
		if (len > b->cap && http_buf_reserve(b, len))
			len = json_dumpb(body, b->data, b->cap, flags);
		json_decref(body);
		if (len == 0 || len > b->cap) {
			http_buf_trim(b);
			http_send(r, 500, "application/json", "", 0);
			return;
		}
	}
	http_send(r, status, "application/json", len ? b->data : "", len);
	http_buf_trim(b);
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

void req_error_redirect(struct req *r, const char *base)
{
	r->error_location = base;
}

/* The HTTP status of each error kind as a static string: the label of
 * http_redirected_errors_total. */
/* clang-format off */
static const char *const status_texts[ERR_KIND_COUNT] = {
	[ERR_NONE] = "500",
#define ERR_STATUS_TEXT_(kind, status, code, msg) [kind] = #status,
	ERR_KINDS(ERR_STATUS_TEXT_)
#undef ERR_STATUS_TEXT_
};
/* clang-format on */

/* req_error's answer after req_error_redirect: 303 to the base and the error's code.  The 303
 * is what the access log and http_requests_total record, so the error itself stays visible
 * here: logged at its own level (error for 5xx, warn for 4xx) with its status and code, and
 * counted in http_redirected_errors_total{status} (the 5xx alert adds it). */
static void req_error_redirected(struct req *r, enum err_kind kind, const char *msg)
{
	char location[256];
	int n = snprintf(location, sizeof location, "%s%s", r->error_location, err_code(kind));
	if (n < 0 || (size_t)n >= sizeof location) {
		log_error("the error location %s does not fit its buffer", r->error_location);
		http_send(r, 500, "application/json", "", 0);
		return;
	}
	int status = err_status(kind);
	if (status >= 500)
		log_error("%s %s: %d %s (%s), answered with a redirect to %s", req_method(r),
		          r->route, status, err_code(kind), msg, location);
	else
		log_warn("%s %s: %d %s (%s), answered with a redirect to %s", req_method(r),
		         r->route, status, err_code(kind), msg, location);
	size_t i = (size_t)kind < ERR_KIND_COUNT ? (size_t)kind : ERR_NONE;
	metrics_counter_add_labeled(
		"http_redirected_errors_total",
		"Errors answered with a redirect to a web page (the web sign-in's "
		"303), by the status they stand for.",
		"status", status_texts[i], 1);
	req_add_header(r, "Location", location);
	req_reply_empty(r, 303);
}

static void req_verror(struct req *r, enum err_kind kind, json_t *details, const char *fmt,
                       va_list ap)
{
	/* Messages quote what the client sent (a field name, a parser's complaint): cut on a
	 * character boundary and with ill-formed bytes replaced, or jansson would refuse the
	 * message and the client would get no error body at all. */
	char raw[HTTP_ERROR_MESSAGE_MAX], msg[HTTP_ERROR_MESSAGE_MAX] = "";
	if (fmt) {
		int n = vsnprintf(raw, sizeof raw, fmt, ap);
		if (n < 0)
			raw[0] = '\0';
		enc_utf8_sanitize(msg, sizeof msg, raw, strlen(raw), n >= (int)sizeof raw);
	}
	if (r->error_location) {
		json_decref(details); /* a page is not told them */
		req_error_redirected(r, kind, msg);
		return;
	}
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
	/* DB_OK here is a caller's mistake: answer it as the internal error it is. */
	req_error(r, kind == ERR_NONE ? ERR_INTERNAL : kind, NULL, "%s", db_status_reply(st));
}

bool req_page_read(struct req *r, int db_status, const json_t *next)
{
	if (db_status != DB_OK) {
		req_db_error(r, db_status);
		return false;
	}
	if (next)
		req_next_page(r, next);
	return true;
}
