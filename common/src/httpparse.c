#include "countof.h"
#include "httpparse.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ---- comma-separated lists ---- */

static bool httpparse_blank(char c)
{
	return c == ' ' || c == '\t';
}

bool httpparse_list_next(const char **pos, const char **item, size_t *len)
{
	const char *p = *pos;
	if (!p)
		return false;
	while (httpparse_blank(*p) || *p == ',')
		p++;
	const char *end = p;
	while (*end && *end != ',')
		end++;
	const char *last = end;
	while (last > p && httpparse_blank(last[-1]))
		last--;
	*pos = end;
	*item = p;
	*len = (size_t)(last - p);
	return *len > 0;
}

bool httpparse_list_has(const char *list, const char *item, bool nocase)
{
	size_t want = item ? strlen(item) : 0;
	const char *p = list, *s;
	size_t len;
	if (want == 0)
		return false;
	while (httpparse_list_next(&p, &s, &len)) {
		if (len != want)
			continue;
		if ((nocase ? strncasecmp(s, item, len) : strncmp(s, item, len)) == 0)
			return true;
	}
	return false;
}

bool httpparse_origin_allowed(const char *list, const char *origin)
{
	const char *p = list, *s;
	size_t len;
	if (!origin || !*origin)
		return false;
	while (httpparse_list_next(&p, &s, &len))
		if (len == 1 && *s == '*')
			return true;
	return httpparse_list_has(list, origin, false);
}

/* ---- the request line and headers ---- */

const char *httpparse_method_name(const char *method)
{
	static const char *const known[] = {"GET",   "POST", "PUT",    "DELETE",
	                                    "PATCH", "HEAD", "OPTIONS"};
	for (size_t i = 0; i < countof(known); i++)
		if (strcmp(method, known[i]) == 0)
			return known[i];
	return "OTHER";
}

static int httpparse_hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

bool httpparse_path_decode(const char *raw, char *out, size_t size)
{
	size_t n = 0;
	if (size == 0)
		return false;
	for (const char *p = raw; *p; p++) {
		char c = *p;
		if (c == '%') {
			/* p[2] is read only when p[1] is a hex digit, so never past the NUL. */
			int hi = httpparse_hexval(p[1]), lo = hi < 0 ? -1 : httpparse_hexval(p[2]);
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

bool httpparse_request_id_valid(const char *s)
{
	size_t n = 0;
	for (; s[n]; n++) {
		char c = s[n];
		bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		          (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
		if (n >= HTTPPARSE_REQUEST_ID_MAX || !ok)
			return false;
	}
	return n > 0;
}

bool httpparse_if_match(const char *h, long long *version)
{
	*version = 0;
	if (!h)
		return true;
	while (*h == ' ')
		h++;
	if (strcmp(h, "*") == 0)
		return true;
	if (strncmp(h, "W/", 2) == 0)
		h += 2;
	if (*h == '"' && h[1] >= '0' && h[1] <= '9') {
		char *end = NULL;
		long long v = strtoll(h + 1, &end, 10);
		/* Versions are PostgreSQL integers: anything larger names no version. */
		if (*end == '"' && end[1] == '\0' && v > 0 && v <= 2147483647) {
			*version = v;
			return true;
		}
	}
	return false;
}

bool httpparse_etag_listed(const char *h, const char *etag)
{
	if (!h || !etag)
		return false;
	if (strncmp(etag, "W/", 2) == 0)
		etag += 2;
	size_t len = strlen(etag);
	/* "*" matches any current representation, but only alone (RFC 9110 13.1.2). */
	const char *star = h + strspn(h, " \t");
	if (*star == '*' && star[1 + strspn(star + 1, " \t")] == '\0')
		return true;
	for (;;) {
		while (*h == ' ' || *h == '\t' || *h == ',')
			h++;
		if (strncmp(h, "W/", 2) == 0)
			h += 2;
		/* An entity tag is quoted and may hold commas, so the list is read tag by tag. */
		const char *end = *h == '"' ? strchr(h + 1, '"') : NULL;
		if (!end)
			return false;
		if ((size_t)(end + 1 - h) == len && memcmp(h, etag, len) == 0)
			return true;
		h = end + 1;
	}
}

bool httpparse_cookie(const char *header, const char *name, const char **value, size_t *len)
{
	size_t nlen = name ? strlen(name) : 0;
	const char *p = header;
	while (p && *p && nlen) {
		while (httpparse_blank(*p) || *p == ';')
			p++;
		const char *end = strchr(p, ';');
		if (!end)
			end = p + strlen(p);
		const char *eq = memchr(p, '=', (size_t)(end - p));
		if (eq && (size_t)(eq - p) == nlen && memcmp(p, name, nlen) == 0) {
			const char *v = eq + 1, *e = end;
			while (e > v && httpparse_blank(e[-1]))
				e--;
			*value = v;
			*len = (size_t)(e - v);
			return true;
		}
		p = end;
	}
	return false;
}

bool httpparse_is_json_type(const char *ct)
{
	static const char want[] = "application/json";
	if (!ct || strncasecmp(ct, want, sizeof want - 1) != 0)
		return false;
	char next = ct[sizeof want - 1];
	return next == '\0' || next == ';' || next == ' ';
}

/* ---- client addresses ---- */

/* Parses one list item (len bytes, not NUL-terminated) "a.b.c.d" or "a.b.c.d/n" into a network
 * address and mask (host byte order). */
static bool httpparse_cidr(const char *item, size_t len, uint32_t *net, uint32_t *mask)
{
	char buf[INET_ADDRSTRLEN + 4];
	struct in_addr a;
	long long prefix = 32;
	if (len >= sizeof buf)
		return false;
	memcpy(buf, item, len);
	buf[len] = '\0';
	char *slash = strchr(buf, '/');
	if (slash) {
		*slash = '\0';
		if (!(slash[1] >= '0' && slash[1] <= '9') ||
		    !httpparse_int(slash + 1, 0, 32, &prefix))
			return false;
	}
	if (inet_pton(AF_INET, buf, &a) != 1)
		return false;
	*mask = prefix == 0 ? 0 : ~(uint32_t)0 << (32 - prefix);
	*net = ntohl(a.s_addr) & *mask;
	return true;
}

bool httpparse_cidr_list_valid(const char *list, size_t *bad_item)
{
	const char *p = list, *item;
	size_t len, n = 0;
	uint32_t net, mask;
	while (httpparse_list_next(&p, &item, &len)) {
		n++;
		if (!httpparse_cidr(item, len, &net, &mask)) {
			*bad_item = n;
			return false;
		}
	}
	return true;
}

bool httpparse_cidr_match(const char *list, const char *addr)
{
	const char *p = list, *item;
	size_t len;
	uint32_t net, mask;
	struct in_addr a;
	if (!addr || inet_pton(AF_INET, addr, &a) != 1)
		return false;
	uint32_t host = ntohl(a.s_addr);
	while (httpparse_list_next(&p, &item, &len))
		if (httpparse_cidr(item, len, &net, &mask) && (host & mask) == net)
			return true;
	return false;
}

/* Writes the rate-limit name of the address in text (NUL-terminated) into out: an IPv4 address
 * as it is, an IPv6 one as its /64 in canonical form ("2001:db8:1:2::/64"; IPv4-mapped ones as
 * their IPv4 address).  False when text is no address. */
static bool httpparse_addr_key(const char *text, char *out, size_t size)
{
	struct in_addr a4;
	struct in6_addr a6;
	char buf[INET6_ADDRSTRLEN];
	if (inet_pton(AF_INET, text, &a4) == 1) {
		snprintf(out, size, "%s", text);
		return true;
	}
	if (inet_pton(AF_INET6, text, &a6) != 1)
		return false;
	if (IN6_IS_ADDR_V4MAPPED(&a6)) {
		memcpy(&a4, a6.s6_addr + 12, sizeof a4);
		snprintf(out, size, "%s", inet_ntop(AF_INET, &a4, buf, sizeof buf));
		return true;
	}
	memset(a6.s6_addr + 8, 0, 8);
	snprintf(out, size, "%s/64", inet_ntop(AF_INET6, &a6, buf, sizeof buf));
	return true;
}

void httpparse_client_addr(const char *real_ip, const char *peer, const char *trusted, char *out,
                           size_t size)
{
	char buf[INET6_ADDRSTRLEN];
	if (real_ip && httpparse_cidr_match(trusted, peer)) {
		while (httpparse_blank(*real_ip))
			real_ip++;
		size_t len = strlen(real_ip);
		while (len > 0 && httpparse_blank(real_ip[len - 1]))
			len--;
		if (len < sizeof buf) {
			memcpy(buf, real_ip, len);
			buf[len] = '\0';
			if (httpparse_addr_key(buf, out, size))
				return;
		}
	}
	snprintf(out, size, "%s", peer);
}

/* ---- values ---- */

bool httpparse_positive_id(const char *s, long long *id)
{
	if (s[0] < '1' || s[0] > '9' || strlen(s) > 18)
		return false;
	char *end = NULL;
	long long v = strtoll(s, &end, 10);
	if (*end != '\0' || v <= 0)
		return false;
	*id = v;
	return true;
}

bool httpparse_int(const char *s, long long min, long long max, long long *out)
{
	if (s[0] != '-' && !(s[0] >= '0' && s[0] <= '9'))
		return false;
	char *end = NULL;
	errno = 0;
	long long v = strtoll(s, &end, 10);
	if (*end || end == s || errno == ERANGE || v < min || v > max)
		return false;
	*out = v;
	return true;
}

bool httpparse_bool(const char *s, bool *out)
{
	if (strcasecmp(s, "true") == 0 || strcmp(s, "1") == 0)
		*out = true;
	else if (strcasecmp(s, "false") == 0 || strcmp(s, "0") == 0)
		*out = false;
	else
		return false;
	return true;
}

/* ---- replies ---- */

char *httpparse_next_link(const char *path, const char *query, const char *cursor)
{
	const char *qs = query ? query : "";
	/* "<" path "?" + each kept parameter and its '&' (at most the query plus one) +
	 * "cursor=" cursor ">; rel=\"next\"" + NUL: 24 bytes besides the three strings. */
	size_t cap = strlen(path) + strlen(qs) + strlen(cursor) + 32;
	char *link = malloc(cap);
	if (!link)
		return NULL;
	size_t len = (size_t)snprintf(link, cap, "<%s?", path);
	for (const char *p = qs; *p;) {
		const char *amp = strchr(p, '&');
		size_t plen = amp ? (size_t)(amp - p) : strlen(p);
		if (plen && strncmp(p, "cursor=", 7) != 0 &&
		    !(plen == 6 && strncmp(p, "cursor", 6) == 0)) {
			memcpy(link + len, p, plen);
			len += plen;
			link[len++] = '&';
		}
		p += plen;
		if (*p == '&')
			p++;
	}
	snprintf(link + len, cap - len, "cursor=%s>; rel=\"next\"", cursor);
	return link;
}

bool httpparse_host_loopback(const char *host)
{
	struct in_addr a;
	if (!host)
		return false;
	/* inet_pton takes dotted decimal only, as a resolver would: "127.0.0.08" (which libcurl
	 * keeps as a name, leading zeros being octal) is a name here too. */
	if (inet_pton(AF_INET, host, &a) == 1)
		return (ntohl(a.s_addr) >> 24) == 127;
	return strcmp(host, "[::1]") == 0 || strcasecmp(host, "localhost") == 0;
}
