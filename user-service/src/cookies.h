/* cookies: user-service's two cookies as pure text — the Set-Cookie values it sends, the value a
 * Cookie header brings back — and the rule that lets a request use the refresh cookie (its CSRF
 * defence).  No civetweb, no SQL; every function is thread-safe (docs/api.md, "Sign-in in the
 * browser").
 *
 * - The sign-in cookie binds a started sign-in to the browser that started it (GET
 *   /auth/google/login sets it, the callback takes it back): Path=/, SameSite=Lax, because it
 *   must come back on the provider's cross-site redirect to the callback.
 * - The refresh cookie holds a web sign-in's refresh token, out of reach of JavaScript:
 *   Path=/auth (only /auth/refresh and /auth/logout need it), SameSite=Strict.
 * Both are HttpOnly.  Over HTTPS (the public callback URL, GOOGLE_REDIRECT_URI, is https) they
 * are Secure and carry the prefix that makes a browser enforce it: __Host- for the sign-in cookie
 * (this host only, Path=/), __Secure- for the refresh cookie (__Host- would need Path=/). */
#ifndef USER_COOKIES_H
#define USER_COOKIES_H

#include <stdbool.h>
#include <stddef.h>

enum user_cookie {
	USER_COOKIE_LOGIN,
	USER_COOKIE_REFRESH,
};

/* Longest cookie value taken from a request; a longer one is not ours (ignored). */
#define USER_COOKIE_VALUE_MAX 128
/* Room for a Set-Cookie value of a value of at most USER_COOKIE_VALUE_MAX bytes. */
#define USER_COOKIE_HEADER_SIZE 256
/* The header a request that uses the refresh cookie must carry, and its value: a page of another
 * site cannot send it without a CORS preflight, which it does not pass. */
#define USER_COOKIE_CSRF_HEADER "X-Requested-With"
#define USER_COOKIE_CSRF_VALUE "meeting-rooms"

/* The cookie's name: the prefixed one when secure (static string). */
const char *user_cookie_name(enum user_cookie cookie, bool secure);

/* The Set-Cookie value that sets cookie to value (at most USER_COOKIE_VALUE_MAX bytes of cookie
 * characters) for max_age seconds, or clears it ("" and 0), with the cookie's attributes, into
 * out.  Returns false (out unspecified) when it does not fit in size. */
bool user_cookie_format(char *out, size_t size, enum user_cookie cookie, bool secure,
                        const char *value, long long max_age);

/* Copies the value of cookie from a Cookie header (may be NULL) into out (NUL-terminated).
 * Returns false when the header has none, an empty one, or one longer than
 * USER_COOKIE_VALUE_MAX bytes. */
bool user_cookie_read(const char *header, enum user_cookie cookie, bool secure,
                      char out[USER_COOKIE_VALUE_MAX + 1]);

/* Whether a request may use the refresh cookie, from two of its headers (each may be NULL):
 * X-Requested-With must be USER_COOKIE_CSRF_VALUE and Sec-Fetch-Site, which browsers send
 * and pages cannot forge, must be same-origin when present (clients other than browsers do not
 * send it). */
bool user_cookie_csrf_ok(const char *requested_with, const char *sec_fetch_site);

#endif
