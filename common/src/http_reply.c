/* Replies: the one place a response is written (http_send), errors in the standard shape,
 * redirects, extra headers and CORS on every reply. */
#include "http_internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <civetweb.h>

#include "db.h"
#include "encoding.h"
#include "timefmt.h"

const char *http_cors_origin(const struct req *r)
{
	const char *origin = mg_get_header(r->conn, "Origin");
	return httpparse_origin_allowed(r->srv->opts->cors_origins, origin) ? origin : NULL;
}

static bool req_has_header(const struct req *r, const char *name);

void http_send(struct req *r, int status, const char *content_type, const char *body, size_t len)
{
	char clen[24];
	snprintf(clen, sizeof clen, "%zu", len);
	mg_response_header_start(r->conn, status);
	if (content_type)
		mg_response_header_add(r->conn, "Content-Type", content_type, -1);
	/* A 304 has no body, and its Content-Length would describe the 200's (RFC 9110 8.6). */
	if (status != 304)
		mg_response_header_add(r->conn, "Content-Length", clen, -1);
	mg_response_header_add(r->conn, "X-Request-ID", r->id, -1);
	if (!req_has_header(r, "Cache-Control"))
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

char *req_json_text(const json_t *body)
{
	return json_dumps(body, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(6));
}

void req_reply_json_text(struct req *r, int status, const char *text, size_t len)
{
	if (!r->replied)
		http_send(r, status, "application/json", text, len);
}

void req_reply_json(struct req *r, int status, json_t *body)
{
	if (r->replied) {
		json_decref(body);
		return;
	}
	char *text = body ? req_json_text(body) : NULL;
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
