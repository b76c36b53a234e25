/* What a handler reads from its request: the caller, headers, path and query parameters,
 * pagination, If-Match and the JSON body.  The parsing itself is httpparse.c; this file adds the
 * connection and the standard error replies. */
#include "http_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <civetweb.h>

#include "encoding.h"
#include "equipment.h"
#include "jsonx.h"

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
	if (req_param(r, name, buf, sizeof buf) && httpparse_positive_id(buf, id))
		return true;
	req_error(r, ERR_NOT_FOUND, NULL, "no such %s", name);
	return false;
}

int req_query_quiet(const struct req *r, const char *name, char *buf, size_t size)
{
	const char *qs = r->ri->query_string;
	if (!qs)
		return 0;
	int n = mg_get_var(qs, strlen(qs), name, buf, size);
	if (n == -1)
		return 0;
	if (n < 0 || strlen(buf) != (size_t)n || !enc_utf8_valid(buf, (size_t)n))
		return -1;
	return 1;
}

int req_query(struct req *r, const char *name, char *buf, size_t size)
{
	int q = req_query_quiet(r, name, buf, size);
	if (q < 0)
		req_bad_query(r, name, "is too long or invalid");
	return q;
}

bool req_query_int(struct req *r, const char *name, long long min, long long max, long long *out,
                   bool *present)
{
	char buf[32];
	int q = req_query(r, name, buf, sizeof buf);
	*present = q == 1;
	if (q <= 0)
		return q == 0;
	if (!httpparse_int(buf, min, max, out)) {
		json_t *details = json_object();
		json_object_set_new(details, name,
		                    json_sprintf("must be an integer from %lld to %lld", min, max));
		req_error(r, ERR_BAD_REQUEST, details,
		          "query parameter %s must be an integer from %lld to %lld", name, min,
		          max);
		return false;
	}
	return true;
}

bool req_query_bool(struct req *r, const char *name, bool *out, bool *present)
{
	char buf[8];
	int q = req_query(r, name, buf, sizeof buf);
	*present = q == 1;
	if (q <= 0)
		return q == 0;
	if (!httpparse_bool(buf, out)) {
		req_bad_query(r, name, "must be true or false");
		return false;
	}
	return true;
}

bool req_query_equipment(struct req *r, const char *name, json_t **list)
{
	/* EQUIPMENT_MAX_ITEMS items of EQUIPMENT_MAX_LEN characters (≤ 4 bytes each) and commas. */
	char buf[EQUIPMENT_MAX_ITEMS * (EQUIPMENT_MAX_LEN * 4 + 1) + 1];
	const char *why = NULL;
	*list = NULL;
	int q = req_query(r, name, buf, sizeof buf);
	if (q <= 0)
		return q == 0;
	json_t *s = json_string(buf);
	json_t *items = s ? equipment_normalise(s, &why) : NULL;
	json_decref(s);
	if (!items) {
		if (why)
			req_bad_query(r, name, why);
		else
			req_error(r, ERR_INTERNAL, NULL, NULL);
		return false;
	}
	if (json_array_size(items) == 0)
		json_decref(items);
	else
		*list = items;
	return true;
}

void req_bad_query(struct req *r, const char *name, const char *why)
{
	req_error(r, ERR_BAD_REQUEST, json_pack("{s:s}", name, why), "query parameter %s %s", name,
	          why);
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

bool req_page_after_id(struct req *r, long long *limit, long long *after)
{
	json_t *cursor = NULL;
	*after = 0;
	if (!req_page(r, limit, &cursor))
		return false;
	bool ok = true;
	if (cursor) {
		const json_t *last = json_array_get(cursor, 1);
		ok = json_array_size(cursor) == 2 && json_is_integer(last) &&
		     json_integer_value(last) >= 1;
		if (ok)
			*after = (long long)json_integer_value(last);
		else
			req_bad_query(r, "cursor", "is invalid");
	}
	json_decref(cursor);
	return ok;
}

void req_next_page(struct req *r, const json_t *key)
{
	char *text = json_dumps(key, JSON_COMPACT | JSON_ENCODE_ANY);
	char *cursor = text ? enc_b64url_encode(text, strlen(text)) : NULL;
	char *link = cursor ? httpparse_next_link(r->path, r->ri->query_string, cursor) : NULL;
	if (link)
		req_add_header(r, "Link", link);
	free(link);
	free(cursor);
	free(text);
}

bool req_if_match(struct req *r, long long *version)
{
	if (httpparse_if_match(mg_get_header(r->conn, "If-Match"), version))
		return true;
	req_error(r, ERR_PRECONDITION_FAILED, NULL, "If-Match does not name a current version");
	return false;
}

bool req_not_modified(struct req *r, const char *etag)
{
	if (!httpparse_etag_listed(mg_get_header(r->conn, "If-None-Match"), etag))
		return false;
	req_add_header(r, "ETag", etag);
	req_reply_empty(r, 304);
	return true;
}

bool req_has_body(const struct req *r)
{
	const char *te = mg_get_header(r->conn, "Transfer-Encoding");
	return r->ri->content_length > 0 || (te && strcasecmp(te, "chunked") == 0);
}

/* req_body_object and req_body_object_opt: *out is the body's object, or NULL.  optional: an
 * empty body (a chunked one without data) is no body, whatever its Content-Type, so the type
 * is checked once something was read.  False after replying. */
static bool read_body_object(struct req *r, bool optional, json_t **out)
{
	long long max = r->srv->opts->max_body;
	long long declared = r->ri->content_length;
	const char *te = mg_get_header(r->conn, "Transfer-Encoding");
	bool chunked = te && strcasecmp(te, "chunked") == 0;
	bool json_type = httpparse_is_json_type(mg_get_header(r->conn, "Content-Type"));
	char *buf = NULL;
	bool ok = false;

	*out = NULL;
	if (declared < 0 && !chunked) {
		req_error(r, ERR_LENGTH_REQUIRED, NULL,
		          "a request body with Content-Length is required");
		goto out;
	}
	if (declared > max) {
		req_error(r, ERR_PAYLOAD_TOO_LARGE, NULL, "request body exceeds %lld bytes", max);
		goto out;
	}
	if (!optional && !json_type) {
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
	r->body_read = declared >= 0 ? got == (size_t)declared : got < cap;
	if ((long long)got > max) {
		req_error(r, ERR_PAYLOAD_TOO_LARGE, NULL, "request body exceeds %lld bytes", max);
		goto out;
	}
	if (declared >= 0 && got != (size_t)declared) {
		req_error(r, ERR_BAD_REQUEST, NULL, "request body shorter than Content-Length");
		goto out;
	}
	if (optional && got == 0) {
		ok = true;
		goto out;
	}
	if (!json_type) {
		req_error(r, ERR_UNSUPPORTED_MEDIA_TYPE, NULL,
		          "Content-Type must be application/json");
		goto out;
	}
	if (got == 0) {
		req_error(r, ERR_BAD_REQUEST, NULL, "request body must be a JSON object");
		goto out;
	}
	char err[256];
	*out = jsonx_parse_object(buf, got, err, sizeof err);
	if (!*out)
		req_error(r, ERR_BAD_REQUEST, NULL, "%s", err);
	ok = *out != NULL;
out:
	free(buf);
	return ok;
}

json_t *req_body_object(struct req *r)
{
	json_t *obj;
	read_body_object(r, false, &obj);
	return obj;
}

bool req_body_object_opt(struct req *r, json_t **out)
{
	*out = NULL;
	return !req_has_body(r) || read_body_object(r, true, out);
}
