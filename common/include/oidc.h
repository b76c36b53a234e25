/* oidc: OpenID Connect sign-in with an authorization-code flow (Google, or any provider with a
 * discovery document): discovery, the authorization URL (state, nonce, PKCE S256, hd,
 * login_hint), the code exchange with libcurl (timeouts, response size cap, HTTPS only unless a
 * loopback provider is explicitly allowed) and id_token verification (RS256 against the
 * provider's JWKS by kid, iss, aud, azp, exp, iat, nonce, email_verified, hd).  The discovery
 * document and the JWKS are cached and fetched again on a schedule (jwks_refresh_s), so a key
 * the provider withdrew stops being trusted; the JWKS is also fetched again when a token names
 * an unknown kid.  When a scheduled refresh fails the cached copy stays in use, but cached keys
 * are never used once they are older than jwks_max_age_s: a key the provider withdrew while its
 * JWKS could not be fetched is not trusted for ever (sign-in then fails until a fetch succeeds).
 * Failed or forced fetches are retried at most every OIDC_JWKS_MIN_REFRESH seconds.
 * Thread-safe. */
#ifndef OIDC_H
#define OIDC_H

#include <stdbool.h>
#include <stddef.h>

#define OIDC_PKCE_CHALLENGE_LEN 44 /* 43 base64url characters + NUL */
#define OIDC_JWKS_MIN_REFRESH 10
#define OIDC_JWKS_REFRESH_DEFAULT 3600
#define OIDC_JWKS_MAX_AGE_DEFAULT 86400 /* at least; see oidc_config.jwks_max_age_s */
#define OIDC_MAX_RESPONSE (1024 * 1024)
#define OIDC_CHECK_TIMEOUT_MS 2000 /* oidc_check's bound (at most timeout_ms) */

struct oidc_client;

struct oidc_config {
	const char *discovery_url;
	const char *client_id;
	const char *client_secret;
	const char *redirect_uri;
	const char *hosted_domain; /* "" or NULL: any */
	bool allow_http_loopback;  /* allow http:// to 127.0.0.1/localhost (tests, make run) */
	long timeout_ms;           /* total time per provider call */
	long jwks_refresh_s;       /* the JWKS and the discovery document are fetched again when
	                                 older than this; 0: OIDC_JWKS_REFRESH_DEFAULT */
	long jwks_max_age_s;       /* cached keys older than this are dropped even when no fetch
	                                 succeeds (refreshes failing that long); 0: the larger of
	                                 OIDC_JWKS_MAX_AGE_DEFAULT and 2 x the refresh interval */
};

enum oidc_status {
	OIDC_OK = 0,
	OIDC_UNREACHABLE,      /* network error, timeout, 5xx: 502 for the caller */
	OIDC_BAD_RESPONSE,     /* the provider answered something unusable: 502 */
	OIDC_REJECTED,         /* the provider refused the code (invalid_grant…): 401 */
	OIDC_INVALID_TOKEN,    /* id_token failed verification: 401 */
	OIDC_EMAIL_UNVERIFIED, /* 403 */
	OIDC_WRONG_DOMAIN,     /* hd does not match the configured hosted domain: 403 */
	OIDC_NOT_ALLOWED,      /* URL scheme/host not permitted by the configuration */
};

/* What the provider told us about the user.  Strings are heap copies; oidc_identity_free(). */
struct oidc_identity {
	char *sub, *email, *name, *picture, *hd;
};

/* Creates a client; cfg and its strings are borrowed and must outlive it.  No network yet. */
struct oidc_client *oidc_new(const struct oidc_config *cfg);
void oidc_free(struct oidc_client *c);

/* The PKCE S256 challenge of a verifier: base64url(SHA-256(verifier)). */
void oidc_pkce_challenge(const char *verifier, char out[OIDC_PKCE_CHALLENGE_LEN]);

/* Builds the authorization URL (heap, caller frees) into *url.  login_hint may be NULL. */
enum oidc_status oidc_authorization_url(struct oidc_client *c, const char *state, const char *nonce,
                                        const char *code_verifier, const char *login_hint,
                                        char **url);

/* Exchanges code (+ verifier) at the token endpoint and verifies the id_token against nonce. */
enum oidc_status oidc_exchange(struct oidc_client *c, const char *code, const char *code_verifier,
                               const char *nonce, struct oidc_identity *id);

void oidc_identity_free(struct oidc_identity *id);

/* Fetches the discovery document if it is not cached or due for refresh (for /health), within
 * OIDC_CHECK_TIMEOUT_MS (a stopping service waits for a check in progress).  Returns OIDC_OK
 * when the provider's metadata is known and its last fetch succeeded, else the status of the
 * failed fetch (sign-in may still work from the cached document). */
enum oidc_status oidc_check(struct oidc_client *c);

const char *oidc_status_str(enum oidc_status st);

#endif
