/* The rule for outbound URLs (urlcheck.h). */
#include "urlcheck.h"

#include <assert.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>

#include "httpparse.h"

/* True when u has the part what (a user name, a query, …), empty ones included. */
static bool urlcheck_has(CURLU *u, CURLUPart what)
{
	char *v = NULL;
	bool present = curl_url_get(u, what, &v, 0) == CURLUE_OK;
	curl_free(v);
	return present;
}

bool urlcheck_outbound(const char *url, size_t max_len, unsigned flags, char *host,
                       size_t host_size, char *why, size_t whylen)
{
	CURLU *u = curl_url();
	char *scheme = NULL, *h = NULL;
	bool ok = false;
	assert(!host || host_size > max_len);
	if (!u) {
		snprintf(why, whylen, "could not be parsed (out of memory)");
		goto out;
	}
	if (strlen(url) > max_len) {
		snprintf(why, whylen, "must be at most %zu bytes long", max_len);
		goto out;
	}
	if (curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_HOST, &h, 0) != CURLUE_OK || !h[0] ||
	    (host && strlen(h) >= host_size)) {
		snprintf(why, whylen, "must be an absolute http(s) URL");
		goto out;
	}
	if (urlcheck_has(u, CURLUPART_USER) || urlcheck_has(u, CURLUPART_PASSWORD)) {
		snprintf(why, whylen, "must not carry a user name or password");
		goto out;
	}
	if ((flags & URLCHECK_NO_QUERY) && urlcheck_has(u, CURLUPART_QUERY)) {
		snprintf(why, whylen, "must not carry a query");
		goto out;
	}
	if (urlcheck_has(u, CURLUPART_FRAGMENT)) {
		snprintf(why, whylen, "must not carry a fragment");
		goto out;
	}
	if (strcasecmp(scheme, "https") != 0 &&
	    !(strcasecmp(scheme, "http") == 0 && httpparse_host_loopback(h))) {
		snprintf(why, whylen, "must use https (http only for a loopback host)");
		goto out;
	}
	if (host)
		memcpy(host, h, strlen(h) + 1);
	ok = true;
out:
	curl_free(scheme);
	curl_free(h);
	curl_url_cleanup(u);
	return ok;
}
