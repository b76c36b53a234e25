#include "auth.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "countof.h"
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

/* ---- tokens verified before ----
 *
 * A client sends the same token with every request for its life (15 minutes by default), and
 * verifying it (HMAC, two base64 decodes, two JSON parses) was a tenth of a read's CPU.  So the
 * tokens that verified are kept, AUTH_CACHE_SLOTS of them, each in the slot its hash picks (a
 * newer one replaces it), with what they told: a token is served from here only when it is
 * byte for byte the one verified (compared in constant time), under the same configuration (the
 * same secret and issuer strings), and still within its times (exp and iat/nbf are checked again
 * at each use, as the full check would).  Only tokens that verified get in: a forged token never
 * does, whatever its hash.  Revocation is not cached here (revoke_check asks at each request). */
#define AUTH_CACHE_SLOTS 4096
#define AUTH_CACHE_LOCKS 64

struct auth_cached {
	char *text; /* owned: the token, NUL, email, NUL, name, NUL; NULL: an empty slot */
	size_t len; /* the token's length */
	uint64_t hash;
	const struct auth_config *cfg; /* borrowed; with its secret and issuer pointers */
	const char *secret, *issuer;
	uint64_t keys; /* auth_cache_keys(): the secret and issuer's contents when verified */
	long long exp, not_before; /* exp; the later of iat and nbf (LLONG_MIN: neither) */
	long long id, issued_ms;
	char role[16];
	bool admin;
};

static struct auth_cached auth_cache[AUTH_CACHE_SLOTS];
static pthread_mutex_t auth_cache_locks[AUTH_CACHE_LOCKS];
static pthread_once_t auth_cache_once = PTHREAD_ONCE_INIT;

static void auth_cache_init(void)
{
	for (size_t i = 0; i < countof(auth_cache_locks); i++)
		pthread_mutex_init(&auth_cache_locks[i], NULL);
}

/* FNV-1a, 64 bits: spreads the tokens over the slots (only verified tokens are stored, so a
 * chosen collision evicts nothing but the chooser's own entries). */
static uint64_t auth_cache_hash(const char *s, size_t len)
{
	uint64_t h = 14695981039346656037ULL;
	for (size_t i = 0; i < len; i++) {
		h ^= (unsigned char)s[i];
		h *= 1099511628211ULL;
	}
	return h;
}

/* The contents of cfg's secret and issuer, so that a slot verified under other ones (a secret
 * changed in place) is never taken for this configuration. */
static uint64_t auth_cache_keys(const struct auth_config *cfg)
{
	uint64_t h = auth_cache_hash(cfg->secret, strlen(cfg->secret) + 1);
	return h ^ (auth_cache_hash(cfg->issuer ? cfg->issuer : "",
	                            cfg->issuer ? strlen(cfg->issuer) : 0) *
	            31);
}

/* Fills *user from the slot of token when it holds it for cfg and its times allow now. */
static bool auth_cache_get(const struct auth_config *cfg, const char *token, size_t len,
                           uint64_t hash, time_t now, struct auth_user *user)
{
	struct auth_cached *e = &auth_cache[hash % AUTH_CACHE_SLOTS];
	pthread_mutex_t *lock = &auth_cache_locks[hash % AUTH_CACHE_LOCKS];
	bool hit = false;
	pthread_mutex_lock(lock);
	if (e->text && e->hash == hash && e->len == len && e->cfg == cfg &&
	    e->secret == cfg->secret && e->issuer == cfg->issuer &&
	    e->keys == auth_cache_keys(cfg) && CRYPTO_memcmp(e->text, token, len) == 0 &&
	    (long long)now - AUTH_LEEWAY_SECONDS <= e->exp &&
	    (e->not_before == LLONG_MIN || e->not_before <= (long long)now + AUTH_LEEWAY_SECONDS)) {
		const char *email = e->text + len + 1, *name = email + strlen(email) + 1;
		memcpy(user->email, email, strlen(email) + 1);
		memcpy(user->name, name, strlen(name) + 1);
		memcpy(user->role, e->role, sizeof user->role);
		user->id = e->id;
		user->issued_ms = e->issued_ms;
		user->admin = e->admin;
		hit = true;
	}
	pthread_mutex_unlock(lock);
	return hit;
}

/* Keeps what token told (verified just now) in its slot.  Out of memory: not kept. */
static void auth_cache_put(const struct auth_config *cfg, const char *token, size_t len,
                           uint64_t hash, const struct auth_user *user, long long exp,
                           long long not_before)
{
	size_t el = strlen(user->email), nl = strlen(user->name);
	char *text = malloc(len + 1 + el + 1 + nl + 1);
	if (!text)
		return;
	memcpy(text, token, len);
	text[len] = '\0';
	memcpy(text + len + 1, user->email, el + 1);
	memcpy(text + len + 1 + el + 1, user->name, nl + 1);
	struct auth_cached *e = &auth_cache[hash % AUTH_CACHE_SLOTS];
	pthread_mutex_t *lock = &auth_cache_locks[hash % AUTH_CACHE_LOCKS];
	pthread_mutex_lock(lock);
	char *old = e->text;
	*e = (struct auth_cached){.text = text,
	                          .len = len,
	                          .hash = hash,
	                          .cfg = cfg,
	                          .secret = cfg->secret,
	                          .issuer = cfg->issuer,
	                          .keys = auth_cache_keys(cfg),
	                          .exp = exp,
	                          .not_before = not_before,
	                          .id = user->id,
	                          .issued_ms = user->issued_ms,
	                          .admin = user->admin};
	memcpy(e->role, user->role, sizeof e->role);
	pthread_mutex_unlock(lock);
	free(old);
}

/* The later of two optional integer claims (LLONG_MIN: neither). */
static long long auth_latest(const json_t *a, const json_t *b)
{
	long long t = LLONG_MIN;
	if (json_is_integer(a))
		t = (long long)json_integer_value(a);
	if (json_is_integer(b) && (long long)json_integer_value(b) > t)
		t = (long long)json_integer_value(b);
	return t;
}

enum jwt_status auth_verify_access(const struct auth_config *cfg, const char *token, time_t now,
                                   struct auth_user *user)
{
	json_t *claims = NULL;
	memset(user, 0, sizeof *user);
	size_t len = token ? strnlen(token, JWT_MAX_LEN + 1) : 0;
	uint64_t hash = 0;
	if (token && len <= JWT_MAX_LEN) {
		pthread_once(&auth_cache_once, auth_cache_init);
		hash = auth_cache_hash(token, len);
		if (auth_cache_get(cfg, token, len, hash, now, user))
			return JWT_OK;
	}
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
	long long issued = json_is_integer(iat) ? (long long)json_integer_value(iat) : -1;
	if (issued < 0 || issued > LLONG_MAX / 1000)
		goto out;
	/* Our tokens all carry iat and live at most AUTH_MAX_TTL_SECONDS (jwt_check_claims accepted
	 * exp as an integer); a longer life would outlive its revocation (revoke.h). */
	long long exp = (long long)json_integer_value(json_object_get(claims, "exp"));
	if (exp - issued > AUTH_MAX_TTL_SECONDS)
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
	auth_cache_put(cfg, token, len, hash, user, exp,
	               auth_latest(iat, json_object_get(claims, "nbf")));
out:
	json_decref(claims);
	return st;
}
