/* The cookies of user-service as text (see cookies.h). */
#include "cookies.h"

#include <stdio.h>
#include <string.h>

#include "httpparse.h"

/* One row per cookie: its names over http and over https, and its attributes. */
static const struct {
	const char *name, *secure_name, *path, *same_site;
} user_cookies[] = {
	[USER_COOKIE_LOGIN] = {"mr_login", "__Host-mr_login", "/", "Lax"},
	[USER_COOKIE_REFRESH] = {"mr_refresh", "__Secure-mr_refresh", "/auth", "Strict"},
};

const char *user_cookie_name(enum user_cookie cookie, bool secure)
{
	return secure ? user_cookies[cookie].secure_name : user_cookies[cookie].name;
}

bool user_cookie_format(char *out, size_t size, enum user_cookie cookie, bool secure,
                        const char *value, long long max_age)
{
	int n = snprintf(out, size, "%s=%s; Max-Age=%lld; Path=%s; HttpOnly; SameSite=%s%s",
	                 user_cookie_name(cookie, secure), value, max_age,
	                 user_cookies[cookie].path, user_cookies[cookie].same_site,
	                 secure ? "; Secure" : "");
	return n >= 0 && (size_t)n < size;
}

bool user_cookie_read(const char *header, enum user_cookie cookie, bool secure,
                      char out[USER_COOKIE_VALUE_MAX + 1])
{
	const char *value = NULL;
	size_t len = 0;
	if (!httpparse_cookie(header, user_cookie_name(cookie, secure), &value, &len) || !len ||
	    len > USER_COOKIE_VALUE_MAX)
		return false;
	memcpy(out, value, len);
	out[len] = '\0';
	return true;
}

bool user_cookie_csrf_ok(const char *requested_with, const char *sec_fetch_site)
{
	return requested_with && strcmp(requested_with, USER_COOKIE_CSRF_VALUE) == 0 &&
	       (!sec_fetch_site || strcmp(sec_fetch_site, "same-origin") == 0);
}
