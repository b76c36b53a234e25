#include "oidc.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <curl/curl.h>
#include <jansson.h>
#include <openssl/sha.h>

#include "encoding.h"
#include "jsonx.h"
#include "jwt.h"
#include "log.h"

#define OIDC_LEEWAY 60

/* One cached provider document (discovery or JWKS), guarded by the client's lock. */
struct oidc_cached {
	json_t *doc;           /* owned; NULL until the first successful fetch */
	time_t fetched_at;     /* last successful fetch */
	time_t tried_at;       /* last attempt, successful or not */
	enum oidc_status last; /* outcome of the last attempt */
};

struct oidc_client {
	const struct oidc_config *cfg;
	long refresh_s;      /* cfg->jwks_refresh_s or the default */
	long jwks_max_age_s; /* cfg->jwks_max_age_s or the default */
	pthread_mutex_t lock;
	struct oidc_cached discovery, jwks;
};

const char *oidc_status_str(enum oidc_status st)
{
	switch (st) {
	case OIDC_OK:
		return "ok";
	case OIDC_UNREACHABLE:
		return "identity provider unreachable";
	case OIDC_BAD_RESPONSE:
		return "identity provider sent an unusable response";
	case OIDC_REJECTED:
		return "identity provider rejected the authorization code";
	case OIDC_INVALID_TOKEN:
		return "id_token failed verification";
	case OIDC_EMAIL_UNVERIFIED:
		return "e-mail address not verified by the identity provider";
	case OIDC_WRONG_DOMAIN:
		return "account is not in the permitted hosted domain";
	case OIDC_NOT_ALLOWED:
		return "identity provider URL not permitted";
	}
	return "identity provider error";
}

struct oidc_client *oidc_new(const struct oidc_config *cfg)
{
	struct oidc_client *c = calloc(1, sizeof *c);
	if (!c)
		return NULL;
	c->cfg = cfg;
	c->refresh_s = cfg->jwks_refresh_s > 0 ? cfg->jwks_refresh_s : OIDC_JWKS_REFRESH_DEFAULT;
	c->jwks_max_age_s = cfg->jwks_max_age_s;
	if (c->jwks_max_age_s <= 0)
		c->jwks_max_age_s = 2 * c->refresh_s > OIDC_JWKS_MAX_AGE_DEFAULT
		                            ? 2 * c->refresh_s
		                            : OIDC_JWKS_MAX_AGE_DEFAULT;
	pthread_mutex_init(&c->lock, NULL);
	return c;
}

void oidc_free(struct oidc_client *c)
{
	if (!c)
		return;
	json_decref(c->discovery.doc);
	json_decref(c->jwks.doc);
	pthread_mutex_destroy(&c->lock);
	free(c);
}

void oidc_identity_free(struct oidc_identity *id)
{
	free(id->sub);
	free(id->email);
	free(id->name);
	free(id->picture);
	free(id->hd);
	memset(id, 0, sizeof *id);
}

void oidc_pkce_challenge(const char *verifier, char out[OIDC_PKCE_CHALLENGE_LEN])
{
	unsigned char digest[SHA256_DIGEST_LENGTH];
	SHA256((const unsigned char *)verifier, strlen(verifier), digest);
	char *b = enc_b64url_encode(digest, sizeof digest);
	snprintf(out, OIDC_PKCE_CHALLENGE_LEN, "%s", b ? b : "");
	free(b);
}

/* Whether url may be called: https always; http only to a loopback host when allowed.  The host
 * is taken from a real URL parse, so "http://127.0.0.1@elsewhere/" is not mistaken for loopback. */
static bool oidc_url_allowed(const struct oidc_config *cfg, const char *url)
{
	CURLU *u = curl_url();
	char *scheme = NULL, *host = NULL;
	bool ok = false;
	if (!u || !url || curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK)
		goto out;
	if (strcasecmp(scheme, "https") == 0)
		ok = true;
	else if (cfg->allow_http_loopback && strcasecmp(scheme, "http") == 0)
		ok = strcmp(host, "127.0.0.1") == 0 || strcasecmp(host, "localhost") == 0 ||
		     strcmp(host, "[::1]") == 0;
out:
	curl_free(scheme);
	curl_free(host);
	curl_url_cleanup(u);
	return ok;
}

struct oidc_buf {
	char *data;
	size_t len;
	bool overflow;
};

static size_t oidc_write(char *ptr, size_t size, size_t nmemb, void *userdata)
{
	struct oidc_buf *b = userdata;
	size_t n = size * nmemb;
	if (b->len + n > OIDC_MAX_RESPONSE) {
		b->overflow = true;
		return 0; /* aborts the transfer */
	}
	char *p = realloc(b->data, b->len + n + 1);
	if (!p)
		return 0;
	memcpy(p + b->len, ptr, n);
	b->data = p;
	b->len += n;
	b->data[b->len] = '\0';
	return n;
}

/* GET (form == NULL) or POST form to url, within timeout_ms; parses the JSON object answer into
 * *out.  *http_status receives the status code. */
static enum oidc_status oidc_call(const struct oidc_config *cfg, const char *url, const char *form,
                                  long timeout_ms, json_t **out, long *http_status)
{
	struct oidc_buf b = {NULL, 0, false};
	CURL *h = NULL;
	enum oidc_status st = OIDC_UNREACHABLE;
	*out = NULL;
	*http_status = 0;

	if (!oidc_url_allowed(cfg, url))
		return OIDC_NOT_ALLOWED;
	/* A fresh handle per call: sign-ins are rare and this keeps no state between users. */
	h = curl_easy_init();
	if (!h)
		goto out;
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR,
	                 cfg->allow_http_loopback ? "https,http" : "https");
	curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, timeout_ms < 3000 ? timeout_ms : 3000L);
	curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, timeout_ms);
	curl_easy_setopt(h, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)OIDC_MAX_RESPONSE);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, oidc_write);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, &b);
	curl_easy_setopt(h, CURLOPT_USERAGENT, "meeting-rooms/1.0");
	if (form)
		curl_easy_setopt(h, CURLOPT_POSTFIELDS, form);
	CURLcode rc = curl_easy_perform(h);
	if (rc != CURLE_OK) {
		log_warn("identity provider call failed: %s", curl_easy_strerror(rc));
		st = (b.overflow || rc == CURLE_FILESIZE_EXCEEDED) ? OIDC_BAD_RESPONSE
		                                                   : OIDC_UNREACHABLE;
		goto out;
	}
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, http_status);
	if (*http_status >= 500) {
		st = OIDC_UNREACHABLE;
		goto out;
	}
	*out = b.data ? jsonx_loadb(b.data, b.len, JSON_REJECT_DUPLICATES, NULL) : NULL;
	if (!json_is_object(*out)) {
		json_decref(*out);
		*out = NULL;
		st = OIDC_BAD_RESPONSE;
		goto out;
	}
	st = OIDC_OK;
out:
	curl_easy_cleanup(h);
	free(b.data);
	return st;
}

/* Decides whether to fetch a cached document again (the caller holds c->lock).  Returns false
 * and a new reference in *doc when the cached copy is to be used; returns true (and records the
 * attempt, so that concurrent callers keep using the cached copy meanwhile) when the caller
 * must fetch.
 * A copy older than the refresh interval is fetched again, and so is any copy when force is set
 * (an unknown kid); either way not sooner than OIDC_JWKS_MIN_REFRESH seconds (or the refresh
 * interval, if shorter) after the previous attempt.  A copy older than max_age_s (0: no limit)
 * is dropped first: then the caller fetches, and has nothing to fall back on if that fails. */
static bool oidc_cache_due(struct oidc_client *c, struct oidc_cached *k, bool force, long max_age_s,
                           const char *what, time_t now, json_t **doc)
{
	if (k->doc && max_age_s > 0 && now - k->fetched_at >= max_age_s) {
		log_error("identity provider %s not refreshed for %lld s (the limit is %ld s): no "
		          "longer trusted; sign-in fails until a fetch succeeds",
		          what, (long long)(now - k->fetched_at), max_age_s);
		json_decref(k->doc);
		k->doc = NULL;
	}
	long retry_s = c->refresh_s < OIDC_JWKS_MIN_REFRESH ? c->refresh_s : OIDC_JWKS_MIN_REFRESH;
	bool due = !k->doc || force || now - k->fetched_at >= c->refresh_s;
	bool may = !k->doc || now - k->tried_at >= retry_s;
	if (due && may) {
		k->tried_at = now;
		return true;
	}
	*doc = json_incref(k->doc);
	return false;
}

/* Stores the outcome of a fetch of k.  On success fetched (owned) replaces the cached copy and
 * *doc receives a new reference to it.  On failure *doc receives the cached copy when there is
 * one and keep_on_failure is set (the return value is then OIDC_OK), else NULL and st. */
static enum oidc_status oidc_cache_store(struct oidc_client *c, struct oidc_cached *k,
                                         enum oidc_status st, json_t *fetched, time_t now,
                                         bool keep_on_failure, const char *what, json_t **doc)
{
	*doc = NULL;
	pthread_mutex_lock(&c->lock);
	k->last = st;
	if (st == OIDC_OK) {
		json_decref(k->doc);
		k->doc = fetched;
		k->fetched_at = now;
		*doc = json_incref(fetched);
	} else if (k->doc && keep_on_failure) {
		log_warn(
			"identity provider %s refresh failed (%s): keeping the copy from %lld s ago",
			what, oidc_status_str(st), (long long)(now - k->fetched_at));
		*doc = json_incref(k->doc);
		st = OIDC_OK;
	}
	pthread_mutex_unlock(&c->lock);
	return st;
}

/* Returns a new reference to the discovery document, fetching it when missing or due.  A failed
 * refresh keeps the cached document in use: the endpoints it names rarely change, and sign-in
 * should not stop because one metadata fetch failed. */
static enum oidc_status oidc_discovery(struct oidc_client *c, long timeout_ms, json_t **doc)
{
	time_t now = time(NULL);
	*doc = NULL;
	pthread_mutex_lock(&c->lock);
	bool fetch = oidc_cache_due(c, &c->discovery, false, 0, "discovery document", now, doc);
	pthread_mutex_unlock(&c->lock);
	if (!fetch)
		return OIDC_OK;

	long status = 0;
	json_t *d = NULL;
	enum oidc_status st = oidc_call(c->cfg, c->cfg->discovery_url, NULL, timeout_ms, &d,
	                                &status);
	if (st == OIDC_OK && (status != 200 || !json_is_string(json_object_get(d, "issuer")) ||
	                      !json_is_string(json_object_get(d, "authorization_endpoint")) ||
	                      !json_is_string(json_object_get(d, "token_endpoint")) ||
	                      !json_is_string(json_object_get(d, "jwks_uri"))))
		st = OIDC_BAD_RESPONSE;
	if (st != OIDC_OK) {
		json_decref(d);
		d = NULL;
	}
	return oidc_cache_store(c, &c->discovery, st, d, now, true, "discovery document", doc);
}

enum oidc_status oidc_check(struct oidc_client *c)
{
	json_t *d = NULL;
	/* A short bound: the check runs on a health thread that a stopping service joins. */
	long timeout_ms = c->cfg->timeout_ms < OIDC_CHECK_TIMEOUT_MS ? c->cfg->timeout_ms
	                                                             : OIDC_CHECK_TIMEOUT_MS;
	enum oidc_status st = oidc_discovery(c, timeout_ms, &d);
	json_decref(d);
	if (st == OIDC_OK) {
		pthread_mutex_lock(&c->lock);
		st = c->discovery.last;
		pthread_mutex_unlock(&c->lock);
	}
	return st;
}

/* Returns a new reference to the JWKS.  It is fetched again when older than the refresh
 * interval — so that a key the provider withdrew stops being trusted within that time, even
 * though no token names an unknown kid — and when force is set (a token names an unknown kid:
 * the provider rotated its keys).  A failed scheduled refresh keeps the cached keys in use
 * (the provider's hiccup should not stop sign-in; the next attempt follows within
 * OIDC_JWKS_MIN_REFRESH seconds) until they are jwks_max_age_s old: keys nobody could confirm
 * for that long are dropped, and sign-in fails closed until a fetch succeeds.  A failed forced
 * fetch is reported to the caller. */
static enum oidc_status oidc_jwks(struct oidc_client *c, const json_t *disc, bool force,
                                  json_t **jwks)
{
	time_t now = time(NULL);
	*jwks = NULL;
	pthread_mutex_lock(&c->lock);
	bool fetch = oidc_cache_due(c, &c->jwks, force, c->jwks_max_age_s, "JWKS", now, jwks);
	pthread_mutex_unlock(&c->lock);
	if (!fetch)
		return OIDC_OK;

	long status = 0;
	json_t *k = NULL;
	enum oidc_status st = oidc_call(c->cfg,
	                                json_string_value(json_object_get(disc, "jwks_uri")), NULL,
	                                c->cfg->timeout_ms, &k, &status);
	if (st == OIDC_OK && (status != 200 || !json_is_array(json_object_get(k, "keys"))))
		st = OIDC_BAD_RESPONSE;
	if (st != OIDC_OK) {
		json_decref(k);
		k = NULL;
	}
	return oidc_cache_store(c, &c->jwks, st, k, now, !force, "JWKS", jwks);
}

/* Appends "&name=value" (value URL-encoded) to a heap string; returns false on failure. */
static bool oidc_append(char **s, const char *name, const char *value, bool first)
{
	char *enc = curl_easy_escape(NULL, value, 0);
	if (!enc)
		return false;
	size_t len = strlen(*s), add = strlen(name) + strlen(enc) + 3;
	char *p = realloc(*s, len + add);
	if (!p) {
		curl_free(enc);
		return false;
	}
	snprintf(p + len, add, "%s%s=%s", first ? "" : "&", name, enc);
	curl_free(enc);
	*s = p;
	return true;
}

enum oidc_status oidc_authorization_url(struct oidc_client *c, const char *state, const char *nonce,
                                        const char *code_verifier, const char *login_hint,
                                        char **url)
{
	json_t *disc = NULL;
	char challenge[OIDC_PKCE_CHALLENGE_LEN];
	*url = NULL;
	enum oidc_status st = oidc_discovery(c, c->cfg->timeout_ms, &disc);
	if (st != OIDC_OK)
		return st;
	const char *endpoint = json_string_value(json_object_get(disc, "authorization_endpoint"));
	oidc_pkce_challenge(code_verifier, challenge);
	char *u = strdup(endpoint);
	bool ok = u != NULL;
	if (ok) {
		char sep[2] = {strchr(u, '?') ? '&' : '?', '\0'};
		char *p = realloc(u, strlen(u) + 2);
		ok = p != NULL;
		if (ok) {
			u = p;
			strcat(u, sep);
		}
	}
	ok = ok && oidc_append(&u, "response_type", "code", true) &&
	     oidc_append(&u, "client_id", c->cfg->client_id, false) &&
	     oidc_append(&u, "redirect_uri", c->cfg->redirect_uri, false) &&
	     oidc_append(&u, "scope", "openid email profile", false) &&
	     oidc_append(&u, "state", state, false) && oidc_append(&u, "nonce", nonce, false) &&
	     oidc_append(&u, "code_challenge", challenge, false) &&
	     oidc_append(&u, "code_challenge_method", "S256", false);
	if (ok && c->cfg->hosted_domain && *c->cfg->hosted_domain)
		ok = oidc_append(&u, "hd", c->cfg->hosted_domain, false);
	if (ok && login_hint && *login_hint)
		ok = oidc_append(&u, "login_hint", login_hint, false);
	json_decref(disc);
	if (!ok) {
		free(u);
		return OIDC_BAD_RESPONSE;
	}
	*url = u;
	return OIDC_OK;
}

static char *oidc_claim(const json_t *claims, const char *name)
{
	const char *s = json_string_value(json_object_get(claims, name));
	return s ? strdup(s) : NULL;
}

/* Verifies the id_token and fills id.  disc is borrowed. */
static enum oidc_status oidc_verify(struct oidc_client *c, const json_t *disc, const char *id_token,
                                    const char *nonce, struct oidc_identity *id)
{
	json_t *jwks = NULL, *claims = NULL;
	enum oidc_status st = oidc_jwks(c, disc, false, &jwks);
	if (st != OIDC_OK)
		return st;
	enum jwt_status js = jwt_verify_rs256(id_token, jwks, &claims);
	if (js == JWT_UNKNOWN_KID) {
		/* The provider rotated its keys: fetch them again once. */
		json_decref(jwks);
		jwks = NULL;
		st = oidc_jwks(c, disc, true, &jwks);
		if (st != OIDC_OK)
			return st;
		js = jwt_verify_rs256(id_token, jwks, &claims);
	}
	json_decref(jwks);
	st = OIDC_INVALID_TOKEN;
	if (js != JWT_OK) {
		log_warn("id_token refused: %s", jwt_status_str(js));
		goto out;
	}
	const char *issuer = json_string_value(json_object_get(disc, "issuer"));
	/* Google's id_tokens carry either form of its issuer. */
	const char *issuer2 = strcmp(issuer, "https://accounts.google.com") == 0
	                              ? "accounts.google.com"
	                              : NULL;
	js = jwt_check_claims(claims, time(NULL), OIDC_LEEWAY, issuer, issuer2, c->cfg->client_id);
	if (js != JWT_OK) {
		log_warn("id_token refused: %s", jwt_status_str(js));
		goto out;
	}
	/* azp (authorized party) names the client the token was issued to (OpenID Connect Core
	 * §2, §3.1.3.7): when present it must be us, even if aud lists us among others; with several
	 * audiences it must be present. */
	json_t *azp = json_object_get(claims, "azp"), *aud = json_object_get(claims, "aud");
	if (azp &&
	    (!json_is_string(azp) || strcmp(json_string_value(azp), c->cfg->client_id) != 0)) {
		log_warn("id_token refused: azp is not this client");
		goto out;
	}
	if (!azp && json_is_array(aud) && json_array_size(aud) > 1) {
		log_warn("id_token refused: several audiences and no azp");
		goto out;
	}
	const char *tnonce = json_string_value(json_object_get(claims, "nonce"));
	if (!tnonce || !nonce || strcmp(tnonce, nonce) != 0) {
		log_warn("id_token refused: nonce mismatch");
		goto out;
	}
	if (!json_is_string(json_object_get(claims, "sub")) ||
	    !json_is_string(json_object_get(claims, "email")))
		goto out;
	json_t *verified = json_object_get(claims, "email_verified");
	if (!(json_is_true(verified) ||
	      (json_is_string(verified) && strcmp(json_string_value(verified), "true") == 0))) {
		st = OIDC_EMAIL_UNVERIFIED;
		goto out;
	}
	const char *hd = json_string_value(json_object_get(claims, "hd"));
	if (c->cfg->hosted_domain && *c->cfg->hosted_domain &&
	    (!hd || strcasecmp(hd, c->cfg->hosted_domain) != 0)) {
		st = OIDC_WRONG_DOMAIN;
		goto out;
	}
	id->sub = oidc_claim(claims, "sub");
	id->email = oidc_claim(claims, "email");
	id->name = oidc_claim(claims, "name");
	id->picture = oidc_claim(claims, "picture");
	id->hd = oidc_claim(claims, "hd");
	st = id->sub && id->email ? OIDC_OK : OIDC_BAD_RESPONSE;
	if (st != OIDC_OK)
		oidc_identity_free(id);
out:
	json_decref(claims);
	return st;
}

enum oidc_status oidc_exchange(struct oidc_client *c, const char *code, const char *code_verifier,
                               const char *nonce, struct oidc_identity *id)
{
	json_t *disc = NULL, *resp = NULL;
	char *form = strdup("");
	long status = 0;
	memset(id, 0, sizeof *id);

	enum oidc_status st = oidc_discovery(c, c->cfg->timeout_ms, &disc);
	if (st != OIDC_OK)
		goto out;
	st = OIDC_BAD_RESPONSE;
	if (!form || !oidc_append(&form, "grant_type", "authorization_code", true) ||
	    !oidc_append(&form, "code", code, false) ||
	    !oidc_append(&form, "redirect_uri", c->cfg->redirect_uri, false) ||
	    !oidc_append(&form, "client_id", c->cfg->client_id, false) ||
	    !oidc_append(&form, "client_secret", c->cfg->client_secret, false) ||
	    !oidc_append(&form, "code_verifier", code_verifier, false))
		goto out;
	st = oidc_call(c->cfg, json_string_value(json_object_get(disc, "token_endpoint")), form,
	               c->cfg->timeout_ms, &resp, &status);
	if (st != OIDC_OK)
		goto out;
	if (status >= 400 && status < 500) {
		st = OIDC_REJECTED;
		goto out;
	}
	const char *id_token = json_string_value(json_object_get(resp, "id_token"));
	if (status != 200 || !id_token) {
		st = OIDC_BAD_RESPONSE;
		goto out;
	}
	st = oidc_verify(c, disc, id_token, nonce, id);
out:
	json_decref(disc);
	json_decref(resp);
	free(form);
	return st;
}
