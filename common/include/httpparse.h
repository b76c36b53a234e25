/* httpparse: the pure parsing behind the request layer (http.h) — comma lists, the CORS origin
 * list, path percent-decoding, request ids, If-Match, client addresses behind trusted gateways,
 * the next-page Link header, query values.
 * Plain strings in, plain values out: no connection, no civetweb, no global state, so every
 * function is thread-safe and unit-testable.  Only httpparse_next_link allocates. */
#ifndef HTTPPARSE_H
#define HTTPPARSE_H

#include <stdbool.h>
#include <stddef.h>

/* The longest X-Request-ID taken from a client (longer ones are replaced by a fresh id). */
#define HTTPPARSE_REQUEST_ID_MAX 64

/* ---- hosts ---- */

/* True when host (a URL's host as libcurl's URL API gives it) is loopback: 127.0.0.0/8 as a
 * dotted quad of decimal numbers without leading zeros (what inet_pton takes; "127.0.0.08" is
 * a name libcurl would resolve through DNS), [::1] (IPv6 hosts come in brackets), or localhost (libcurl resolves that name to
 * loopback itself, never through DNS).  For the "https unless loopback" rules of outbound URLs. */
bool httpparse_host_loopback(const char *host);

/* ---- comma-separated lists ---- */

/* The next item of a comma-separated list such as "a, b,,c": blanks (space, tab) around an item
 * are not part of it and empty items are skipped, so every item returned is non-empty.  *pos
 * starts at the list (NULL is an empty list) and is advanced past the item; *item points into
 * the list (borrowed, not NUL-terminated) with its length in *len.  Returns false at the end. */
bool httpparse_list_next(const char **pos, const char **item, size_t *len);
/* True when list (may be NULL) has an item equal to item (NUL-terminated, may be NULL), byte
 * for byte or, with nocase, ignoring ASCII case.  "*" is not special here.  An empty item is
 * never listed. */
bool httpparse_list_has(const char *list, const char *item, bool nocase);
/* CORS: true when origin (the Origin header, may be NULL) is allowed by list (CORS_ORIGINS,
 * may be NULL): an item "*" allows every non-empty origin, any other item allows exactly that
 * origin (case-sensitive, as browsers serialise it). */
bool httpparse_origin_allowed(const char *list, const char *origin);

/* ---- the request line and headers ---- */

/* The request method as a static string ("GET" … "OPTIONS", else "OTHER") that outlives the
 * request: metrics keep the pointer. */
const char *httpparse_method_name(const char *method);
/* Percent-decodes a request path into out (size bytes, NUL-terminated).  Returns false, with out
 * unspecified, for "%00" (an encoded NUL would cut the path short), a '%' not followed by two
 * hex digits, or a result that does not fit in size - 1 bytes.  "%2F" decodes to '/'. */
bool httpparse_path_decode(const char *raw, char *out, size_t size);
/* True when s is a request id we echo back: 1 to HTTPPARSE_REQUEST_ID_MAX characters from
 * [A-Za-z0-9._-]. */
bool httpparse_request_id_valid(const char *s);
/* Reads an If-Match header (may be NULL) as a version: absent or "*" gives *version = 0; "\"3\""
 * or W/"3" (leading spaces allowed) gives 3.  Returns false, with *version = 0, when the header
 * is present but names no version: not one quoted decimal, zero, or beyond a PostgreSQL integer
 * (2^31 - 1).  Lists of tags name no single version and are refused too. */
bool httpparse_if_match(const char *header, long long *version);
/* Whether an If-None-Match header (may be NULL) names etag ("\"…\"", optionally W/), by weak
 * comparison (RFC 9110 13.1.2: W/ is ignored on both sides); "*" alone names any.  A malformed
 * header names nothing from where it goes wrong. */
bool httpparse_etag_listed(const char *header, const char *etag);
/* The value of the cookie called name in a Cookie header (may be NULL), "a=1; b=2" (RFC 6265
 * §5.4): *value points into header (borrowed, not NUL-terminated) and *len is its length.  Names
 * compare exactly; blanks around a pair are not part of it; the first pair of that name wins
 * (browsers send the cookie of the longest path first).  Returns false when there is none. */
bool httpparse_cookie(const char *header, const char *name, const char **value, size_t *len);
/* True when a Content-Type (may be NULL) is application/json, in any case, with or without
 * parameters ("application/json; charset=utf-8"). */
bool httpparse_is_json_type(const char *content_type);

/* ---- client addresses ---- */

/* True when list (comma-separated, may be NULL) names only IPv4 addresses ("10.1.2.3") and CIDRs
 * ("10.0.0.0/8", prefix 0-32; bits beyond the prefix are ignored, as nginx does).  Otherwise
 * *bad_item receives the position (from 1) of the first item that is neither, and the result
 * is false.  An empty list is valid. */
bool httpparse_cidr_list_valid(const char *list, size_t *bad_item);
/* True when addr (dotted IPv4, may be NULL) lies in an item of list (as above; invalid items
 * match nothing). */
bool httpparse_cidr_match(const char *list, const char *addr);
/* The client's address into out (size bytes), as the rate limit counts it: real_ip (the
 * X-Real-IP header the gateway sets, may be NULL), blanks around it ignored, when the TCP peer
 * is in trusted (a list as above, may be NULL) and real_ip is an IPv4 or IPv6 address; otherwise
 * peer.  So a header from anyone but a trusted gateway, or one that names no address, changes
 * nothing.  An IPv6 client is named by its /64 in canonical form ("2001:db8:1:2::/64"): one
 * subscriber gets a whole /64 and could otherwise use a new address for every request; an
 * IPv4-mapped one by its IPv4 address. */
void httpparse_client_addr(const char *real_ip, const char *peer, const char *trusted, char *out,
                           size_t size);

/* ---- values ---- */

/* A path id: a positive decimal without sign, leading zero or blanks, of at most 18 digits. */
bool httpparse_positive_id(const char *s, long long *id);
/* A query integer: an optional '-' and decimal digits, nothing else, within [min, max]. */
bool httpparse_int(const char *s, long long min, long long max, long long *out);
/* A query boolean: "true"/"false" in any case, or "1"/"0". */
bool httpparse_bool(const char *s, bool *out);

/* ---- replies ---- */

/* The Link header value announcing the next page: "<path?query&cursor=cursor>; rel=\"next\"",
 * with every parameter of query (may be NULL; not decoded, kept as sent) except cursor, and
 * empty parameters dropped.  cursor must already be URL-safe (base64url).  Returns a heap
 * string (caller frees), or NULL when out of memory. */
char *httpparse_next_link(const char *path, const char *query, const char *cursor);

#endif
