/* validate: the checks of user-service request bodies, as pure functions of the JSON (no
 * civetweb, no SQL), so the unit tests and the fuzz targets call them as the handlers do.
 * Problems go to details (a borrowed object) as field -> reason; accepted strings are borrowed
 * from the body.  Thread-safe. */
#ifndef USER_VALIDATE_H
#define USER_VALIDATE_H

#include <stdbool.h>

#include <jansson.h>

/* A profile change (PUT /users/profile): NULL = leave unchanged; picture "" = clear it. */
struct user_profile_change {
	const char *name, *picture;
};

/* Partial admin update (PUT /admin/users/{id}): NULL/false = leave unchanged. */
struct user_patch {
	const char *name, *email, *role;
	bool set_disabled, disabled;
	long long if_version; /* 0 = no If-Match */
};

/* name (1-200 characters) and picture (an http(s) URL of up to 2048 characters; null or ""
 * clears it); email and role cannot be changed here; one of name and picture is required. */
void user_validate_profile(const json_t *body, struct user_profile_change *c, json_t *details);

/* name (1-200 characters), email (an address of 3-320 characters), role (admin or employee),
 * disabled (boolean), each optional.  p->if_version is left as it is. */
void user_validate_admin(const json_t *body, struct user_patch *p, json_t *details);

/* POST /auth/refresh: refresh_token, 1-512 characters, into *token (NULL when absent).  Required
 * unless the request carries the refresh cookie (cookie true), which stands in for it: body may
 * then be NULL (none was sent). */
void user_validate_refresh(const json_t *body, bool cookie, const char **token, json_t *details);

/* POST /auth/logout: refresh_token (1-512 characters) into *token (NULL when absent), required
 * unless all is true or the request carries the refresh cookie (cookie true; body may then be
 * NULL); all (boolean) into *all. */
void user_validate_logout(const json_t *body, bool cookie, const char **token, bool *all,
                          json_t *details);

/* The longest return_to of GET /auth/google/login, in bytes (all of them ASCII). */
#define USER_RETURN_TO_MAX 512

/* A web sign-in's return path (GET /auth/google/login?return_to=, decoded): a path of this
 * origin that the callback may redirect to — 1 to USER_RETURN_TO_MAX characters, starting with
 * "/" but not "//" (another host), only [A-Za-z0-9/._~%?=&+-] (no "\", which browsers read as
 * "/", no ":", no blank or control character).  Returns NULL when valid, else the reason
 * (static string). */
const char *user_validate_return_to(const char *s);

#endif
