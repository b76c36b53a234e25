#include "auth.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jsonx.h"
#include "rnd.h"

char *auth_issue_access(const struct auth_config *cfg, long long user_id, const char *email,
                        const char *name, const char *role, long long now_ms)
{
	char sub[24], jti[RND_UUID_LEN];
	long long now = now_ms / 1000;
	snprintf(sub, sizeof sub, "%lld", user_id);
	if (!rnd_uuid(jti) || now_ms < 0)
		return NULL;
	json_t *claims = json_pack("{s:s, s:s, s:s, s:s, s:I, s:I, s:I, s:s, s:s}", "sub", sub,
	                           "email", email, "name", name ? name : "", "role", role, "iat",
	                           (json_int_t)now, "iat_ms", (json_int_t)now_ms, "exp",
	                           (json_int_t)(now + cfg->access_ttl), "iss", cfg->issuer, "jti",
	                           jti);
	if (!claims)
		return NULL;
	char *token = jwt_sign_hs256(claims, (const unsigned char *)cfg->secret,
	                             strlen(cfg->secret));
	json_decref(claims);
	return token;
}

static bool auth_copy(char *dst, size_t size, const json_t *v)
{
	const char *s = json_string_value(v);
	if (!s || strlen(s) >= size)
		return false;
	memcpy(dst, s, strlen(s) + 1);
	return true;
}

enum jwt_status auth_verify_access(const struct auth_config *cfg, const char *token, time_t now,
                                   struct auth_user *user)
{
	json_t *claims = NULL;
	memset(user, 0, sizeof *user);
	enum jwt_status st = jwt_verify_hs256(token, (const unsigned char *)cfg->secret,
	                                      strlen(cfg->secret), &claims);
	if (st != JWT_OK)
		goto out;
	st = jwt_check_claims(claims, now, AUTH_LEEWAY_SECONDS, cfg->issuer, NULL, NULL);
	if (st != JWT_OK)
		goto out;
	st = JWT_MISSING_CLAIM;
	const char *sub = json_string_value(json_object_get(claims, "sub"));
	if (!sub || *sub < '1' || *sub > '9')
		goto out;
	char *end = NULL;
	errno = 0;
	long long id = strtoll(sub, &end, 10);
	if (errno || *end || id <= 0)
		goto out;
	/* An address is limited in characters; the buffer holds the longest in bytes. */
	if (!auth_copy(user->email, sizeof user->email, json_object_get(claims, "email")) ||
	    jsonx_utf8_len(user->email) > AUTH_EMAIL_MAX_CHARS ||
	    !auth_copy(user->role, sizeof user->role, json_object_get(claims, "role")))
		goto out;
	if (!auth_copy(user->name, sizeof user->name, json_object_get(claims, "name")))
		user->name[0] = '\0';
	if (strcmp(user->role, "admin") != 0 && strcmp(user->role, "employee") != 0)
		goto out;
	/* The issue time: iat_ms must lie within iat's second (both are ours, signed together). */
	json_t *iat = json_object_get(claims, "iat"), *iat_ms = json_object_get(claims, "iat_ms");
	long long issued = iat ? (long long)json_integer_value(iat) : 0;
	if (issued < 0 || issued > LLONG_MAX / 1000)
		goto out;
	issued *= 1000;
	if (iat_ms) {
		long long ms = json_is_integer(iat_ms) ? (long long)json_integer_value(iat_ms) : -1;
		if (!iat || ms < issued || ms - issued > 999)
			goto out;
		issued = ms;
	}
	user->admin = strcmp(user->role, "admin") == 0;
	user->issued_ms = issued;
	user->id = id;
	st = JWT_OK;
out:
	json_decref(claims);
	return st;
}
