/* auth: the suite's own access tokens (HS256 JWTs, docs/api.md#authentication).  Claims: sub
 * (user id as decimal string), email, name, role, iat, iat_ms, exp, iss, jti.  iat_ms is the
 * issue time in Unix milliseconds (iat is that time in whole seconds, as RFC 7519 spells it): the
 * precision that revocation (revoke.h) needs.  Verification accepts only HS256, allows
 * AUTH_LEEWAY_SECONDS of clock skew and checks the issuer.  Thread-safe. */
#ifndef AUTH_H
#define AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "jwt.h"

#define AUTH_LEEWAY_SECONDS 30
/* The longest access-token life (JWT_ACCESS_TTL_SECONDS's maximum): a token claiming a longer
 * one (exp − iat) is refused, so that a revocation older than that (REVOKE_RETENTION_S) can be
 * forgotten. */
#define AUTH_MAX_TTL_SECONDS 86400
/* E-mail addresses are limited in characters (the users table's CHECK, the validators); a
 * buffer holds the longest one in bytes: every character may take 4 UTF-8 bytes. */
#define AUTH_EMAIL_MAX_CHARS 320
#define AUTH_EMAIL_SIZE (AUTH_EMAIL_MAX_CHARS * 4 + 1)

struct auth_config {
	const char *secret;   /* borrowed; at least 32 bytes */
	const char *issuer;   /* borrowed */
	long long access_ttl; /* seconds */
};

/* The caller of a request, as told by a verified access token. */
struct auth_user {
	long long id;
	char email[AUTH_EMAIL_SIZE];
	char name[804]; /* 200 characters of up to 4 UTF-8 bytes */
	char role[16];  /* "admin" or "employee" */
	bool admin;
	/* When the token was issued, in Unix milliseconds: iat_ms, or iat × 1000 for a token
	 * without iat_ms (the start of its second, so that revocation errs on the safe side); a
	 * token without iat is refused. */
	long long issued_ms;
};

/* Issues an access token issued at now_ms (Unix milliseconds): a heap string the caller frees,
 * or NULL.  email/name/role borrowed. */
char *auth_issue_access(const struct auth_config *cfg, long long user_id, const char *email,
                        const char *name, const char *role, long long now_ms);

/* Verifies token and fills *user.  Returns JWT_OK, or the reason it was refused; claims that
 * are missing or malformed (sub not a positive decimal, unknown role, iat_ms not within iat's
 * second) give JWT_MISSING_CLAIM. */
enum jwt_status auth_verify_access(const struct auth_config *cfg, const char *token, time_t now,
                                   struct auth_user *user);

#endif
