/* Fuzzes routing and query strings.  The input reads like a request line, "METHOD PATH?QUERY":
 *   - the path is percent-decoded (httpparse_path_decode), then the method and path go through
 *     router_find as http_dispatch.c dispatches them (the built-in routes first, then each
 *     service's table; OPTIONS looks up ""), then router_param and httpparse_positive_id;
 *   - the query goes through mg_get_var for every parameter name the services read, with their
 *     buffer sizes, and on to what the handlers do with the value (integers, booleans, dates,
 *     RFC 3339 times, equipment, the pagination cursor: base64url + JSON as req_page does, and
 *     the next page's Link);
 *   - the path and query as headers: request id, If-Match, comma lists and CORS origins;
 *   - the whole input through enc_utf8_valid (compared with jansson's own UTF-8 check) and
 *     base64url (decoding then encoding must give the input back).
 * The route tables copy the patterns of each service's src/routes.c and http_builtin.c. */
#include "fuzz.h"

#include <ctype.h>
#include <errno.h>
#include <strings.h>
#include <time.h>

#include <civetweb.h>

#include "countof.h"
#include "encoding.h"
#include "httpparse.h"
#include "router.h"
#include "timefmt.h"

/* A route as the services declare theirs: the router_route first, then the rest (stride). */
struct fuzz_route {
	struct router_route route;
	int access;
};

static const struct fuzz_route builtin_routes[] = {
	{{"GET", "/health"}, 0},  {{"GET", "/ready"}, 0},        {{"GET", "/live"}, 0},
	{{"GET", "/metrics"}, 0}, {{"GET", "/openapi.json"}, 0},
};

static const struct fuzz_route user_routes[] = {
	{{"GET", "/auth/google/login"}, 0}, {{"GET", "/auth/google/callback"}, 0},
	{{"POST", "/auth/refresh"}, 0},     {{"POST", "/auth/logout"}, 1},
	{{"GET", "/users/profile"}, 1},     {{"GET", "/users/me"}, 1},
	{{"PUT", "/users/profile"}, 1},     {{"PUT", "/users/me"}, 1},
	{{"GET", "/admin/users"}, 2},       {{"GET", "/users"}, 2},
	{{"GET", "/admin/users/{id}"}, 2},  {{"PUT", "/admin/users/{id}"}, 2},
	{{"PUT", "/users/{id}"}, 2},        {{"DELETE", "/admin/users/{id}"}, 2},
};

static const struct fuzz_route room_routes[] = {
	{{"GET", "/rooms"}, 1},      {{"POST", "/rooms"}, 2},        {{"GET", "/rooms/{id}"}, 1},
	{{"PUT", "/rooms/{id}"}, 2}, {{"DELETE", "/rooms/{id}"}, 2},
};

static const struct fuzz_route res_routes[] = {
	{{"POST", "/reservations"}, 1},        {{"GET", "/reservations"}, 1},
	{{"GET", "/reservations/{id}"}, 1},    {{"PUT", "/reservations/{id}"}, 1},
	{{"DELETE", "/reservations/{id}"}, 1}, {{"GET", "/availability"}, 1},
	{{"GET", "/availability/rooms"}, 1},   {{"GET", "/availability/rooms/{id}"}, 1},
};

static const struct {
	const struct fuzz_route *routes;
	size_t n;
} services[] = {
	{user_routes, countof(user_routes)},
	{room_routes, countof(room_routes)},
	{res_routes, countof(res_routes)},
};

/* What the match must satisfy whatever the input. */
static void check_match(const struct fuzz_route *routes, size_t n, const char *lookup,
                        const char *path, bool found, const struct router_match *m)
{
	size_t plen = strlen(path);
	FUZZ_CHECK(strlen(m->allow) < sizeof m->allow);
	FUZZ_CHECK(found == (m->index >= 0));
	if (!found)
		return;
	FUZZ_CHECK(m->path_known && m->allow[0]);
	FUZZ_CHECK((size_t)m->index < n);
	FUZZ_CHECK(strcmp(routes[m->index].route.method, lookup) == 0);
	FUZZ_CHECK(m->nparams <= ROUTER_MAX_PARAMS);
	for (size_t i = 0; i < m->nparams; i++) {
		const struct router_param *p = &m->params[i];
		FUZZ_CHECK(p->value >= path && p->value + p->value_len <= path + plen);
		FUZZ_CHECK(p->value_len > 0 && !memchr(p->value, '/', p->value_len));
		FUZZ_CHECK(p->name_len == 2 && memcmp(p->name, "id", 2) == 0);
	}
}

/* req_param_id: a positive decimal of at most 18 digits, written back as it came. */
static void param_id(const struct router_match *m)
{
	char buf[24], small[2];
	if (!router_param(m, "id", buf, sizeof buf)) {
		FUZZ_CHECK(m->nparams == 0 || m->params[0].value_len >= sizeof buf);
		return;
	}
	FUZZ_CHECK(strlen(buf) <= m->params[0].value_len);
	FUZZ_CHECK(router_param(m, "id", small, sizeof small) == (m->params[0].value_len < 2));
	FUZZ_CHECK(!router_param(m, "nope", buf, sizeof buf));
	long long v = 0;
	if (httpparse_positive_id(buf, &v)) {
		char again[24];
		FUZZ_CHECK(v >= 1 && v <= 999999999999999999LL);
		snprintf(again, sizeof again, "%lld", v);
		FUZZ_CHECK(strcmp(again, buf) == 0);
	}
}

static void route(const char *method, const char *path)
{
	const char *lookup = strcmp(method, "OPTIONS") == 0 ? "" : method;
	const struct fuzz_route *routes = builtin_routes;
	size_t n = countof(builtin_routes);
	struct router_match m;
	bool found = router_find(routes, n, sizeof routes[0], lookup, path, &m);
	check_match(routes, n, lookup, path, found, &m);
	for (size_t s = 0; !found && !m.path_known && s < countof(services); s++) {
		struct router_match ms;
		bool f = router_find(services[s].routes, services[s].n,
		                     sizeof services[s].routes[0], lookup, path, &ms);
		check_match(services[s].routes, services[s].n, lookup, path, f, &ms);
		if (f)
			param_id(&ms);
		/* A trailing slash changes nothing. */
		size_t len = strlen(path);
		if (len > 0 && len < ROUTER_MAX_PATH) {
			char *slashed = malloc(len + 2);
			FUZZ_CHECK(slashed != NULL);
			memcpy(slashed, path, len);
			memcpy(slashed + len, "/", 2);
			struct router_match m2;
			bool f2 = router_find(services[s].routes, services[s].n,
			                      sizeof services[s].routes[0], lookup, slashed, &m2);
			FUZZ_CHECK(f2 == f && m2.index == ms.index &&
			           m2.path_known == ms.path_known &&
			           strcmp(m2.allow, ms.allow) == 0);
			free(slashed);
		}
	}
}

/* req_query: 0 absent, 1 present (valid UTF-8 without NUL), -1 refused. */
static int query(const char *qs, const char *name, char *buf, size_t size)
{
	int n = mg_get_var(qs, strlen(qs), name, buf, size);
	if (n == -1)
		return 0;
	if (n < 0 || strlen(buf) != (size_t)n || !enc_utf8_valid(buf, (size_t)n))
		return -1;
	FUZZ_CHECK((size_t)n < size);
	return 1;
}

/* req_query_int. */
static void query_int(const char *qs, const char *name, long long min, long long max)
{
	char buf[32];
	long long v = 0;
	if (query(qs, name, buf, sizeof buf) != 1 || !httpparse_int(buf, min, max, &v))
		return;
	FUZZ_CHECK(v >= min && v <= max);
	FUZZ_CHECK(buf[0] == '-' || isdigit((unsigned char)buf[0]));
}

/* req_query_bool. */
static void query_bool(const char *qs, const char *name)
{
	char buf[8];
	bool b = false;
	if (query(qs, name, buf, sizeof buf) != 1 || !httpparse_bool(buf, &b))
		return;
	FUZZ_CHECK(strcasecmp(buf, b ? "true" : "false") == 0 || strcmp(buf, b ? "1" : "0") == 0);
}

/* query_date of reservation-service. */
static void query_date(const char *qs, const char *name)
{
	char buf[16];
	int y, m, d;
	if (query(qs, name, buf, sizeof buf) == 1 && timefmt_parse_date(buf, &y, &m, &d)) {
		FUZZ_CHECK(y >= 1 && y <= 9999 && m >= 1 && m <= 12 && d >= 1 && d <= 31);
		struct tm tm = {.tm_year = y - 1900, .tm_mon = m - 1, .tm_mday = d};
		(void)timegm(&tm);
	}
}

/* query_time of reservation-service. */
static void query_time(const char *qs, const char *name)
{
	char buf[64];
	struct timefmt_time t;
	if (query(qs, name, buf, sizeof buf) != 1 || !timefmt_parse_rfc3339(buf, &t))
		return;
	if (!t.has_offset)
		t.utc = timefmt_wall_as_utc(&t);
}

/* req_page's cursor: base64url of a JSON array. */
static void query_cursor(const char *qs)
{
	char buf[512];
	if (query(qs, "cursor", buf, sizeof buf) != 1 || !buf[0])
		return;
	size_t n = 0;
	unsigned char *raw = enc_b64url_decode(buf, strlen(buf), &n);
	json_t *v = raw ? json_loadb((const char *)raw, n, JSON_DECODE_ANY, NULL) : NULL;
	free(raw);
	if (json_is_array(v)) {
		/* req_next_page writes cursors this way; one must read back as the same array. */
		char *text = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
		FUZZ_CHECK(text != NULL);
		char *again = enc_b64url_encode(text, strlen(text));
		FUZZ_CHECK(again != NULL);
		size_t n2 = 0;
		unsigned char *raw2 = enc_b64url_decode(again, strlen(again), &n2);
		FUZZ_CHECK(raw2 != NULL && n2 == strlen(text) && memcmp(raw2, text, n2) == 0);
		free(raw2);
		free(again);
		free(text);
	}
	json_decref(v);
}

/* room-service's equipment filter: a comma-separated string. */
static void query_equipment(const char *qs)
{
	char buf[2048];
	if (query(qs, "equipment", buf, sizeof buf) != 1 || !buf[0])
		return;
	json_t *s = json_string(buf);
	FUZZ_CHECK(s != NULL); /* query() checked the UTF-8 */
	json_t *details = json_object();
	fuzz_room_equipment(s, details);
	json_decref(details);
	json_decref(s);
}

/* req_next_page: the Link keeps the path and ends with the new cursor. */
static void next_link(const char *path, const char *qs)
{
	static const char tail[] = "cursor=WzFd>; rel=\"next\"";
	char *link = httpparse_next_link(path, qs, "WzFd");
	FUZZ_CHECK(link != NULL);
	size_t plen = strlen(path), tlen = strlen(tail), len = strlen(link);
	/* "<" path "?", the kept parameters each with its '&' (at most the query + 1), tail. */
	FUZZ_CHECK(len >= plen + 2 + tlen && len <= plen + 2 + strlen(qs) + 1 + tlen);
	FUZZ_CHECK(link[0] == '<' && strncmp(link + 1, path, plen) == 0 && link[plen + 1] == '?');
	FUZZ_CHECK(strcmp(link + len - tlen, tail) == 0);
	FUZZ_CHECK(len == plen + 2 + tlen || link[len - tlen - 1] == '&');
	free(link);
}

/* The target as header values: request id, If-Match, a comma list, a CORS origin list. */
static void headers(const char *target, const char *qs)
{
	if (httpparse_request_id_valid(target)) {
		size_t n = strlen(target);
		FUZZ_CHECK(n >= 1 && n <= HTTPPARSE_REQUEST_ID_MAX);
		FUZZ_CHECK(strspn(target, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
		                          "0123456789._-") == n);
	}
	long long version = -1;
	if (httpparse_if_match(target, &version) && version > 0) {
		/* The ETag the services send for that version reads back as the same version. */
		char etag[32];
		long long again = -1;
		FUZZ_CHECK(version <= 2147483647);
		snprintf(etag, sizeof etag, "\"%lld\"", version);
		FUZZ_CHECK(httpparse_if_match(etag, &again) && again == version);
	} else {
		FUZZ_CHECK(version == 0);
	}
	const char *pos = target, *item;
	size_t len;
	bool wildcard = false;
	while (httpparse_list_next(&pos, &item, &len)) {
		FUZZ_CHECK(len > 0 && !memchr(item, ',', len));
		FUZZ_CHECK(item[0] != ' ' && item[0] != '\t' && item[len - 1] != ' ' &&
		           item[len - 1] != '\t');
		char *copy = strndup(item, len);
		FUZZ_CHECK(copy != NULL);
		FUZZ_CHECK(httpparse_list_has(target, copy, false));
		FUZZ_CHECK(httpparse_list_has(target, copy, true));
		wildcard = wildcard || strcmp(copy, "*") == 0;
		free(copy);
	}
	bool allowed = httpparse_origin_allowed(target, qs);
	FUZZ_CHECK(allowed == (qs[0] && (wildcard || httpparse_list_has(target, qs, false))));
}

static void query_strings(const char *qs)
{
	static const struct {
		const char *name;
		size_t size;
	} strings[] = {{"q", 201},     {"role", 16},   {"status", 16}, {"login_hint", 1281},
	               {"state", 128}, {"code", 2048}, {"error", 128}};
	char buf[2048];
	for (size_t i = 0; i < countof(strings); i++)
		(void)query(qs, strings[i].name, buf, strings[i].size);
}

/* base64url both ways on raw bytes. */
static void b64(const char *s, size_t len)
{
	size_t n = 0;
	unsigned char *raw = enc_b64url_decode(s, len, &n);
	if (raw) {
		/* Canonical only: what decodes encodes back to exactly the input (one spelling). */
		char *again = enc_b64url_encode(raw, n);
		FUZZ_CHECK(again != NULL);
		FUZZ_CHECK(strlen(again) == len && memcmp(again, s, len) == 0);
		free(again);
		free(raw);
	}
	char *enc = enc_b64url_encode(s, len);
	FUZZ_CHECK(enc != NULL);
	raw = enc_b64url_decode(enc, strlen(enc), &n);
	FUZZ_CHECK(raw != NULL && n == len && memcmp(raw, s, len) == 0);
	free(raw);
	free(enc);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* jansson validates UTF-8 the same way: both must agree. */
	json_t *js = json_stringn((const char *)data, size);
	FUZZ_CHECK(enc_utf8_valid((const char *)data, size) == (js != NULL));
	json_decref(js);
	b64((const char *)data, size);

	char *line = fuzz_cstr(data, size);
	char *sp = strchr(line, ' ');
	const char *method = "GET", *target = line;
	if (sp) {
		*sp = '\0';
		method = line;
		target = sp + 1;
	}
	char *qmark = strchr(target, '?');
	const char *qs = NULL;
	if (qmark) {
		*qmark = '\0';
		qs = qmark + 1;
	}
	/* As http_dispatch.c routes the decoded path (one that does not decode is a 404 before any
	 * routing); the router itself must also survive the raw target. */
	char path[ROUTER_MAX_PATH + 1];
	bool decoded = httpparse_path_decode(target, path, sizeof path);
	if (decoded) {
		FUZZ_CHECK(strlen(path) <= strlen(target) && !strstr(target, "%00"));
		next_link(path, qs ? qs : "");
	}
	route(method, decoded ? path : target);
	headers(target, qs ? qs : "");
	FUZZ_CHECK(strcmp(httpparse_method_name(method), "OTHER") == 0 ||
	           strcmp(httpparse_method_name(method), method) == 0);
	if (qs) {
		query_int(qs, "limit", 1, 200);
		query_int(qs, "user_id", 1, 9007199254740991LL);
		query_int(qs, "room_id", 1, 9007199254740991LL);
		query_int(qs, "min_capacity", 1, 10000);
		query_bool(qs, "active");
		query_date(qs, "date");
		query_date(qs, "start_date");
		query_date(qs, "end_date");
		query_time(qs, "from");
		query_time(qs, "to");
		query_cursor(qs);
		query_equipment(qs);
		query_strings(qs);
	}
	free(line);
	return 0;
}
