/* urlcheck: the rule for a URL a service calls out to (a webhook's target, JITSI_BASE_URL), in one
 * place so that every outbound URL is judged alike.  The URL is read by libcurl's URL API, the
 * parser that later makes the request, so "http://127.0.0.1@elsewhere/" is not mistaken for a
 * loopback host.  No global state: thread-safe. */
#ifndef URLCHECK_H
#define URLCHECK_H

#include <stdbool.h>
#include <stddef.h>

/* Flags of urlcheck_outbound: what a URL may not carry beyond the common rule. */
enum urlcheck_flag {
	/* A query is refused too: the URL is a base that paths are appended to. */
	URLCHECK_NO_QUERY = 1u << 0,
};

/* True when url (NUL-terminated) may be called: at most max_len bytes; absolute, with a scheme
 * and a non-empty host; https, or http only when the host is loopback (httpparse_host_loopback);
 * no user name or password (a secret in a URL ends up in logs); no fragment; no query with
 * URLCHECK_NO_QUERY.  host (may be NULL) receives the host as libcurl gives it ("[::1]" in
 * brackets); host_size must be at least max_len + 1, so that every host fits.  Otherwise false,
 * with the rule broken in why (whylen bytes), in words that follow the setting's name: "must use
 * https (http only for a loopback host)". */
bool urlcheck_outbound(const char *url, size_t max_len, unsigned flags, char *host,
                       size_t host_size, char *why, size_t whylen);

#endif
