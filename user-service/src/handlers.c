/* user-service endpoints: sign-in with Google (OpenID Connect), token refresh with rotation,
 * logout, the caller's profile and admin user management.  The rules live here, the checks of
 * request bodies in validate.c; every SQL statement is in repo.c. */
#include "handlers.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "cookies.h"
#include "httpparse.h"
#include "jsonx.h"
#include "log.h"
#include "repo.h"
#include "rnd.h"
#include "tokens.h"
#include "validate.h"

#define LOGIN_STATE_TTL 600
#define REFRESH_TOKEN_BYTES 32
#define LOGIN_COOKIE_BYTES 32
/* Where a web sign-in that failed sends the browser: the app's sign-in page, which shows the
 * error's code. */
#define WEB_SIGNIN_FAILED "/app/signin?error="

static const struct user_config *cfg;
static const struct auth_config *auth;
static struct oidc_client *oidc;
/* The cookies are Secure, with a prefixed name, when the callback is served over HTTPS: the
 * public URL the browser comes back to decides (cookies.h); plain over http (local runs), where
 * browsers would refuse the prefixed names. */
static bool cookies_secure;

void user_handlers_init(const struct user_config *c, const struct auth_config *a,
                        struct oidc_client *o)
{
	cfg = c;
	auth = a;
	oidc = o;
	cookies_secure = strncasecmp(c->google_redirect_uri, "https://", 8) == 0;
}

/* ---- cookies ---- */

/* Sets cookie to value for max_age seconds ("" and 0 clear it). */
static void set_cookie(struct req *r, enum user_cookie cookie, const char *value, long long max_age)
{
	char header[USER_COOKIE_HEADER_SIZE];
	if (user_cookie_format(header, sizeof header, cookie, cookies_secure, value, max_age))
		req_add_header(r, "Set-Cookie", header);
	else
		log_error("the %s cookie does not fit its buffer", user_cookie_name(cookie, false));
}

/* The value of cookie in this request into out; false when it has none. */
static bool read_cookie(struct req *r, enum user_cookie cookie, char out[USER_COOKIE_VALUE_MAX + 1])
{
	return user_cookie_read(req_header(r, "Cookie"), cookie, cookies_secure, out);
}

/* The refresh cookie of this request into out: true when it has one.  A request that carries
 * it more than once (cookies.h, user_cookie_repeated) is answered 401 here, *refused set, and
 * nothing is cleared: clearing would remove only this site's own cookie and leave the other
 * one to be used next time. */
static bool read_refresh_cookie(struct req *r, char out[USER_COOKIE_VALUE_MAX + 1], bool *refused)
{
	*refused = user_cookie_repeated(req_header(r, "Cookie"), USER_COOKIE_REFRESH,
	                                cookies_secure);
	if (*refused) {
		log_warn("a request carried the refresh cookie more than once: refused");
		req_error(
			r, ERR_UNAUTHORIZED, NULL,
			"the refresh cookie %s came more than once (one was set by another host "
			"of this site): remove this site's cookies in the browser and sign in again",
			user_cookie_name(USER_COOKIE_REFRESH, cookies_secure));
		return false;
	}
	return read_cookie(r, USER_COOKIE_REFRESH, out);
}

/* Whether the request comes from the web app (it names itself in the CSRF header). */
static bool from_app(struct req *r)
{
	const char *v = req_header(r, USER_COOKIE_CSRF_HEADER);
	return v && strcmp(v, USER_COOKIE_CSRF_VALUE) == 0;
}

/* A request that uses the refresh cookie must come from a page of this site (cookies.h);
 * replies 403 and returns false when it does not.  A page of another site can make the browser
 * send the cookie only without this header (adding it needs a CORS preflight, refused), and a
 * browser that reports the request as cross-site is believed. */
static bool cookie_request_allowed(struct req *r)
{
	if (user_cookie_csrf_ok(req_header(r, USER_COOKIE_CSRF_HEADER),
	                        req_header(r, "Sec-Fetch-Site")))
		return true;
	req_error(r, ERR_FORBIDDEN, NULL,
	          "the refresh cookie is only accepted from this site's pages, with the header "
	          "%s: %s",
	          USER_COOKIE_CSRF_HEADER, USER_COOKIE_CSRF_VALUE);
	return false;
}

/* ---- representations ---- */

static json_t *user_profile_json(const struct user *u)
{
	return json_pack("{s:I, s:s, s:s, s:s?, s:s, s:s}", "id", (json_int_t)u->id, "email",
	                 u->email, "name", u->name, "picture", u->picture[0] ? u->picture : NULL,
	                 "role", u->role, "created_at", u->created_at);
}

static json_t *user_admin_json(const struct user *u)
{
	json_t *j = user_profile_json(u);
	json_object_set_new(j, "disabled", json_boolean(u->disabled));
	json_object_set_new(j, "updated_at", json_string(u->updated_at));
	json_object_set_new(j, "version", json_integer(u->version));
	return j;
}

static void reply_user(struct req *r, int status, const struct user *u, bool admin_view)
{
	char etag[32];
	snprintf(etag, sizeof etag, "\"%lld\"", u->version);
	req_add_header(r, "ETag", etag);
	req_reply_json(r, status, admin_view ? user_admin_json(u) : user_profile_json(u));
}

/* ---- tokens ---- */

/* Replies 200 with a new access token issued at issued_ms, the given refresh token and the user;
 * in_cookie puts the refresh token in the refresh cookie instead of the body, out of reach of
 * the page's scripts.  issued_ms is the database's time, taken in the transaction that read the
 * user, before the read: a revocation that the read did not see (it committed after) then voids
 * the token too, and both sides of that comparison come from one clock (docs/architecture.md,
 * "Revocation"). */
static void reply_tokens(struct req *r, const struct user *u, const char *refresh,
                         long long issued_ms, bool in_cookie)
{
	char *access = auth_issue_access(auth, u->id, u->email, u->name, u->role, issued_ms);
	if (!access) {
		req_error(r, ERR_INTERNAL, NULL, NULL);
		return;
	}
	if (in_cookie)
		set_cookie(r, USER_COOKIE_REFRESH, refresh, cfg->refresh_ttl);
	/* "s*": a NULL refresh_token leaves the member out. */
	req_reply_json(r, 200,
	               json_pack("{s:s, s:s, s:I, s:s*, s:o}", "access_token", access, "token_type",
	                         "Bearer", "expires_in", (json_int_t)auth->access_ttl,
	                         "refresh_token", in_cookie ? NULL : refresh, "user",
	                         user_profile_json(u)));
	free(access);
}

/* ---- sign-in ---- */

/* Whether the browser navigated to this request as a page of its own (a link, a redirect, the
 * address bar), rather than a script's fetch: only browsers send these headers, and no page of
 * another site can make them claim a navigation that is not one. */
static bool top_level_navigation(struct req *r)
{
	const char *mode = req_header(r, "Sec-Fetch-Mode"), *dest = req_header(r, "Sec-Fetch-Dest");
	return mode && dest && strcmp(mode, "navigate") == 0 && strcmp(dest, "document") == 0;
}

void user_route_matched(struct req *r, const char *pattern)
{
	char return_to[USER_RETURN_TO_MAX + 1];
	int q;
	if (strcmp(pattern, "/auth/google/login") == 0) {
		/* A web sign-in (a valid return_to) ends on the app's page whatever fails, and so
		 * does a navigation with a return_to the app would not have sent (cannot go there). */
		q = req_query_quiet(r, "return_to", return_to, sizeof return_to);
		if (q != 0 &&
		    (top_level_navigation(r) || (q == 1 && !user_validate_return_to(return_to))))
			req_error_redirect(r, WEB_SIGNIN_FAILED);
	} else if (strcmp(pattern, "/auth/google/callback") == 0 && top_level_navigation(r)) {
		/* Until the state is found nothing says whether the sign-in is a web one: a person
		 * whose browser came back gets the app's page (user_handle_callback decides again
		 * once the state is taken). */
		req_error_redirect(r, WEB_SIGNIN_FAILED);
	}
}

/* Sets the sign-in cookie to value for max_age seconds (0 with "" clears it). */
static void set_login_cookie(struct req *r, const char *value, int max_age)
{
	set_cookie(r, USER_COOKIE_LOGIN, value, max_age);
}

/* The hash of the sign-in cookie this request carries into out; false when it has none. */
static bool login_cookie_hash(struct req *r, char out[USER_TOKEN_HASH_LEN])
{
	char value[USER_COOKIE_VALUE_MAX + 1];
	if (!read_cookie(r, USER_COOKIE_LOGIN, value))
		return false;
	user_token_hash(value, out);
	return true;
}

void user_handle_login(struct req *r)
{
	char hint[AUTH_EMAIL_SIZE] = "", return_to[USER_RETURN_TO_MAX + 1] = "";
	char browser_hash[USER_TOKEN_HASH_LEN];
	char *state = NULL, *nonce = NULL, *verifier = NULL, *browser = NULL, *url = NULL;
	const char *why;
	int qh, qr;

	if (!oidc) {
		req_error(r, ERR_UNAVAILABLE, NULL, "Google sign-in is not configured");
		return;
	}
	if ((qh = req_query(r, "login_hint", hint, sizeof hint)) < 0 ||
	    (qr = req_query(r, "return_to", return_to, sizeof return_to)) < 0)
		return;
	if (qh == 1 && jsonx_utf8_len(hint) > AUTH_EMAIL_MAX_CHARS) {
		req_error(r, ERR_BAD_REQUEST, json_pack("{s:s}", "login_hint", "is too long"),
		          "query parameter login_hint is longer than %d characters",
		          AUTH_EMAIL_MAX_CHARS);
		return;
	}
	/* A web sign-in: the callback will send the browser there, so only a path of this site
	 * will do (no open redirect). */
	if (qr == 1 && (why = user_validate_return_to(return_to))) {
		req_bad_query(r, "return_to", why);
		return;
	}
	state = rnd_token(32);
	nonce = rnd_token(32);
	verifier = rnd_token(48); /* 64 characters: within PKCE's 43–128 */
	browser = rnd_token(LOGIN_COOKIE_BYTES);
	if (!state || !nonce || !verifier || !browser) {
		req_error(r, ERR_INTERNAL, NULL, NULL);
		goto out;
	}
	enum oidc_status os = oidc_authorization_url(oidc, state, nonce, verifier, hint, &url);
	if (os != OIDC_OK) {
		req_error(r, ERR_BAD_GATEWAY, NULL, "%s", oidc_status_str(os));
		goto out;
	}
	/* The flow is bound to this browser: the callback must bring the cookie back, so whoever
	 * else sees the callback URL (a log, a Referer, a shoulder) cannot finish this sign-in, and
	 * a callback URL of someone else's sign-in does not sign this browser in (login CSRF). */
	user_token_hash(browser, browser_hash);
	enum db_status st = user_repo_state_save(state, nonce, verifier, browser_hash,
	                                         qr == 1 ? return_to : NULL, LOGIN_STATE_TTL);
	if (st != DB_OK) {
		req_db_error(r, st);
		goto out;
	}
	set_login_cookie(r, browser, LOGIN_STATE_TTL);
	req_redirect(r, url);
out:
	free(state);
	free(nonce);
	free(verifier);
	free(browser);
	free(url);
}

/* The error kind of a failed sign-in (docs/api.md#user-service). */
static enum err_kind oidc_error_kind(enum oidc_status os)
{
	switch (os) {
	case OIDC_REJECTED:
	case OIDC_INVALID_TOKEN:
		return ERR_UNAUTHORIZED;
	case OIDC_EMAIL_UNVERIFIED:
	case OIDC_WRONG_DOMAIN:
		return ERR_FORBIDDEN;
	default:
		return ERR_BAD_GATEWAY;
	}
}

/* Once the state of a sign-in is taken, its errors are answered as the sign-in asks: a web
 * sign-in (return_to not "") sends the browser to the app's sign-in page with the error's code
 * (303), so the page a person sees is the app's, never a JSON error (the reason is logged); any
 * other gets JSON, also when a browser navigated there. */
static void sign_in_errors(struct req *r, const char *return_to)
{
	req_error_redirect(r, return_to[0] ? WEB_SIGNIN_FAILED : NULL);
}

void user_handle_callback(struct req *r)
{
	char state[128] = "", code[2048] = "", error[128] = "";
	char hash[USER_TOKEN_HASH_LEN], browser_hash[USER_TOKEN_HASH_LEN];
	struct user_login_state taken;
	struct oidc_identity id = {0};
	char *refresh = NULL;
	enum user_outcome outcome;
	int qs, qc, qe;

	/* The cookie is cleared only once its state is taken: a callback refused as another
	 * browser's (a second sign-in tab, a crafted link) leaves the sign-in in progress alone.
	 * Until then errors are JSON, or the app's sign-in page for a navigation
	 * (user_route_matched). */
	bool has_cookie = login_cookie_hash(r, browser_hash);
	if (!oidc) {
		req_error(r, ERR_UNAVAILABLE, NULL, "Google sign-in is not configured");
		return;
	}
	if ((qs = req_query(r, "state", state, sizeof state)) < 0 ||
	    (qc = req_query(r, "code", code, sizeof code)) < 0 ||
	    (qe = req_query(r, "error", error, sizeof error)) < 0)
		return;
	if (qe == 1) {
		/* The user said no (or the provider failed): the state is spent either way — by its
		 * own browser only, so that nobody else can cancel a sign-in in progress. */
		bool spent = qs == 1 &&
		             user_repo_state_take(state, has_cookie ? browser_hash : NULL, &taken,
		                                  &outcome) == DB_OK &&
		             outcome == USER_DONE;
		if (spent) {
			set_login_cookie(r, "", 0);
			sign_in_errors(r, taken.return_to);
		}
		for (char *p = error; *p; p++)
			if (!isalnum((unsigned char)*p) && *p != '_')
				*p = '_';
		req_error(r, ERR_UNAUTHORIZED, NULL, "sign-in refused by the identity provider: %s",
		          error);
		return;
	}
	if (qs != 1 || !state[0] || qc != 1 || !code[0]) {
		json_t *details = json_object();
		if (qs != 1 || !state[0])
			json_object_set_new(details, "state", json_string("is required"));
		if (qc != 1 || !code[0])
			json_object_set_new(details, "code", json_string("is required"));
		req_error(r, ERR_BAD_REQUEST, details, "state and code are required");
		return;
	}
	enum db_status st = user_repo_state_take(state, has_cookie ? browser_hash : NULL, &taken,
	                                         &outcome);
	if (st != DB_OK) {
		req_db_error(r, st);
		return;
	}
	if (outcome == USER_DONE)
		set_login_cookie(r, "", 0); /* it has done its work, whatever happens next */
	if (outcome == USER_WRONG_BROWSER) {
		log_warn("sign-in callback refused: %s",
		         has_cookie ? "the sign-in cookie belongs to another sign-in"
		                    : "no sign-in cookie");
		req_error(
			r, ERR_FORBIDDEN, NULL,
			"this sign-in was started in another browser, or the browser did not send "
			"its sign-in cookie; start again at /auth/google/login");
		return;
	}
	if (outcome != USER_DONE) {
		req_error(
			r, ERR_BAD_REQUEST, json_pack("{s:s}", "state", "is unknown or expired"),
			"sign-in state is unknown, used or expired; start again at /auth/google/login");
		return;
	}
	/* From here on the state is taken: a web sign-in ends in the app, whatever happens. */
	const char *web = taken.return_to;
	sign_in_errors(r, web);
	enum oidc_status os = oidc_exchange(oidc, code, taken.verifier, taken.nonce, &id);
	if (os != OIDC_OK) {
		req_error(r, oidc_error_kind(os), NULL, "%s", oidc_status_str(os));
		goto out;
	}
	struct user_login login = {
		.sub = id.sub,
		.email = id.email,
		.name = id.name,
		.picture = id.picture,
		.make_admin = httpparse_list_has(cfg->admin_emails, id.email, true),
		.topic = cfg->user_events_topic,
	};
	struct user u;
	long long issued_ms = 0;
	if ((st = user_repo_login(&login, &u, &issued_ms, &outcome)) != DB_OK) {
		req_db_error(r, st);
		goto out;
	}
	if (outcome == USER_SUB_CONFLICT) {
		/* Someone else's Google account now has this user's address: never hand them the
		 * user.  An admin can change the user's e-mail if the address really moved. */
		log_warn(
			"sign-in refused: the e-mail address of user %lld belongs to another Google "
			"account (a different sub)",
			u.id);
		req_error(r, ERR_FORBIDDEN, NULL,
		          "this e-mail address belongs to a user who signs in with another "
		          "Google account; ask an administrator");
		goto out;
	}
	if (u.disabled) {
		req_error(r, ERR_FORBIDDEN, NULL, "this account is disabled");
		goto out;
	}
	refresh = rnd_token(REFRESH_TOKEN_BYTES);
	if (!refresh) {
		req_error(r, ERR_INTERNAL, NULL, NULL);
		goto out;
	}
	user_token_hash(refresh, hash);
	if ((st = user_repo_refresh_issue(u.id, hash, NULL, cfg->refresh_ttl)) != DB_OK) {
		req_db_error(r, st);
		goto out;
	}
	log_info("user %lld signed in%s", u.id, web[0] ? " in the browser" : "");
	if (web[0]) {
		/* The browser goes back to the app with the refresh token in its cookie; the app
		 * gets its access token from POST /auth/refresh.  No token in the URL or the body. */
		set_cookie(r, USER_COOKIE_REFRESH, refresh, cfg->refresh_ttl);
		req_add_header(r, "Location", web);
		req_reply_empty(r, 303);
	} else {
		reply_tokens(r, &u, refresh, issued_ms, false);
	}
out:
	free(refresh);
	oidc_identity_free(&id);
}

/* The body of POST /auth/refresh or /auth/logout into *body: required without the refresh
 * cookie (as it always was), optional with it (none, or {}, is the cookie form).  Replies and
 * returns false when it cannot be read. */
static bool read_auth_body(struct req *r, bool has_cookie, json_t **body)
{
	*body = NULL;
	if (has_cookie)
		return req_body_object_opt(r, body);
	return (*body = req_body_object(r)) != NULL;
}

void user_handle_refresh(struct req *r)
{
	json_t *body = NULL, *details = json_object();
	char *fresh = NULL;
	char old_hash[USER_TOKEN_HASH_LEN], new_hash[USER_TOKEN_HASH_LEN];
	char box[USER_TOKEN_BOX_LEN], earlier_box[USER_TOKEN_BOX_LEN];
	char again[USER_TOKEN_SEAL_MAX + 1], cookie[USER_COOKIE_VALUE_MAX + 1];
	const char *token = NULL;
	bool grace = cfg->refresh_reuse_grace > 0, refused = false;
	bool has_cookie = read_refresh_cookie(r, cookie, &refused);
	/* The web app's probe at start ("am I signed in?") names itself and may send no body. */
	bool app = from_app(r);

	if (refused || !read_auth_body(r, has_cookie || app, &body))
		goto out;
	user_validate_refresh(body, has_cookie || app, &token, details);
	if (json_object_size(details) > 0) {
		req_invalid(r, details);
		details = NULL;
		goto out;
	}
	if (!token && !has_cookie) {
		req_error(r, ERR_UNAUTHORIZED, NULL,
		          "not signed in: no refresh cookie and no refresh_token in the body");
		goto out;
	}
	/* A token in the body wins (API clients); without one the cookie is the token. */
	bool by_cookie = !token;
	if (by_cookie) {
		if (!cookie_request_allowed(r))
			goto out;
		token = cookie;
	}
	fresh = rnd_token(REFRESH_TOKEN_BYTES);
	/* With a grace period the new token is kept sealed under the presented one, so that a
	 * repeat of this request (its answer was lost) gets the same token back. */
	if (!fresh || (grace && !user_token_seal(token, fresh, box))) {
		req_error(r, ERR_INTERNAL, NULL, NULL);
		goto out;
	}
	user_token_hash(token, old_hash);
	user_token_hash(fresh, new_hash);
	struct user u;
	enum user_outcome outcome;
	long long issued_ms = 0;
	enum db_status st = user_repo_refresh_rotate(old_hash, new_hash, grace ? box : NULL,
	                                             cfg->refresh_ttl, cfg->refresh_reuse_grace, &u,
	                                             earlier_box, &issued_ms, &outcome);
	if (st != DB_OK) {
		req_db_error(r, st);
		goto out;
	}
	/* A refresh token that will never work again leaves the browser with the cookie. */
	if (by_cookie && outcome != USER_DONE && outcome != USER_TOKEN_REPLAYED)
		set_cookie(r, USER_COOKIE_REFRESH, "", 0);
	switch (outcome) {
	case USER_DONE:
		reply_tokens(r, &u, fresh, issued_ms, by_cookie);
		break;
	case USER_TOKEN_REPLAYED:
		/* The box was sealed under this very token when it was rotated: it opens. */
		if (!user_token_open(token, earlier_box, again)) {
			log_error(
				"refresh of user %lld: the successor of a rotated token does not open",
				u.id);
			req_error(r, ERR_INTERNAL, NULL, NULL);
			break;
		}
		log_info("refresh token of user %lld presented again within the grace period: same "
		         "successor returned",
		         u.id);
		reply_tokens(r, &u, again, issued_ms, by_cookie);
		break;
	case USER_TOKEN_REUSED:
		log_warn("refresh token re-used; its sign-in was revoked");
		req_error(r, ERR_UNAUTHORIZED, NULL,
		          "refresh token was already used; this sign-in has been revoked");
		break;
	case USER_DISABLED:
		req_error(r, ERR_FORBIDDEN, NULL, "this account is disabled");
		break;
	default:
		req_error(r, ERR_UNAUTHORIZED, NULL, "refresh token is invalid or expired");
		break;
	}
out:
	free(fresh);
	json_decref(details);
	json_decref(body);
}

void user_handle_logout(struct req *r)
{
	json_t *body = NULL, *details = json_object();
	const char *token = NULL;
	bool all = false;
	char hash[USER_TOKEN_HASH_LEN], cookie[USER_COOKIE_VALUE_MAX + 1];
	const struct auth_user *caller = req_user(r);
	bool refused = false;
	bool has_cookie = read_refresh_cookie(r, cookie, &refused);
	enum db_status st;

	if (refused)
		goto out;
	/* HTTP_BEARER_OR_COOKIE: without a bearer token only the cookie form is open. */
	if (!caller && !has_cookie) {
		req_error(r, ERR_UNAUTHORIZED, NULL, "missing bearer token");
		goto out;
	}
	if (!read_auth_body(r, has_cookie, &body))
		goto out;
	user_validate_logout(body, has_cookie, &token, &all, details);
	if (json_object_size(details) > 0) {
		req_invalid(r, details);
		details = NULL;
		goto out;
	}
	if (token || all) {
		/* The body form, as always: the caller's token, or all of them. */
		if (!caller) {
			req_error(r, ERR_UNAUTHORIZED, NULL, "missing bearer token");
			goto out;
		}
		if (token)
			user_token_hash(token, hash);
		st = user_repo_refresh_revoke(caller->id, all ? NULL : hash);
	} else {
		/* The cookie form: holding the refresh token is what entitles the request to end
		 * its sign-in (a bearer token is not needed), once it comes from this site. */
		if (!cookie_request_allowed(r))
			goto out;
		user_token_hash(cookie, hash);
		st = user_repo_refresh_revoke_family(hash);
	}
	if (st != DB_OK) {
		req_db_error(r, st);
		goto out;
	}
	/* Every sign-in ended (all) includes this browser's; a cookie that is revoked goes. */
	if (has_cookie && (all || !token))
		set_cookie(r, USER_COOKIE_REFRESH, "", 0);
	req_reply_empty(r, 204);
out:
	json_decref(details);
	json_decref(body);
}

/* ---- profile ---- */

void user_handle_profile_get(struct req *r)
{
	struct user u;
	bool found = false;
	enum db_status st = user_repo_get(req_user(r)->id, &u, &found);
	if (st != DB_OK)
		req_db_error(r, st);
	else if (!found)
		req_error(r, ERR_UNAUTHORIZED, NULL, "the account of this token no longer exists");
	else
		reply_user(r, 200, &u, false);
}

void user_handle_profile_put(struct req *r)
{
	json_t *body = NULL, *details = json_object();
	struct user_profile_change c = {0};
	long long if_version = 0;

	if (!req_if_match(r, &if_version) || !(body = req_body_object(r)))
		goto out;
	user_validate_profile(body, &c, details);
	if (json_object_size(details) > 0) {
		req_invalid(r, details);
		details = NULL;
		goto out;
	}
	struct user u;
	enum user_outcome outcome;
	enum db_status st = user_repo_update_profile(req_user(r)->id, c.name, c.picture, if_version,
	                                             &u, &outcome);
	if (st != DB_OK)
		req_db_error(r, st);
	else if (outcome == USER_NOT_FOUND)
		req_error(r, ERR_UNAUTHORIZED, NULL, "the account of this token no longer exists");
	else if (outcome == USER_STALE)
		req_error(r, ERR_PRECONDITION_FAILED, NULL,
		          "your profile has changed (current version %lld)", u.version);
	else
		reply_user(r, 200, &u, false);
out:
	json_decref(details);
	json_decref(body);
}

/* ---- admin ---- */

void user_handle_admin_list(struct req *r)
{
	char q[201] = "", role[16] = "";
	long long limit = 0;
	json_t *cursor = NULL, *items = NULL;
	bool more = false;
	int hq, hr;

	if (!req_page(r, &limit, &cursor) || (hq = req_query(r, "q", q, sizeof q)) < 0 ||
	    (hr = req_query(r, "role", role, sizeof role)) < 0)
		goto out;
	if (hr == 1 && strcmp(role, "admin") != 0 && strcmp(role, "employee") != 0) {
		req_error(r, ERR_BAD_REQUEST,
		          json_pack("{s:s}", "role", "must be admin or employee"),
		          "query parameter role must be admin or employee");
		goto out;
	}
	long long after = 0;
	if (cursor) {
		json_t *k = json_array_get(cursor, 0);
		if (json_array_size(cursor) != 1 || !json_is_integer(k) ||
		    json_integer_value(k) < 0) {
			req_error(r, ERR_BAD_REQUEST, json_pack("{s:s}", "cursor", "is invalid"),
			          "query parameter cursor is invalid");
			goto out;
		}
		after = (long long)json_integer_value(k);
	}
	enum db_status st = user_repo_list(hq == 1 && q[0] ? q : NULL, hr == 1 ? role : NULL, after,
	                                   limit, user_admin_json, &items, &more);
	if (st != DB_OK) {
		req_db_error(r, st);
		goto out;
	}
	if (more) {
		json_t *last = json_array_get(items, json_array_size(items) - 1);
		json_t *key = json_pack("[O]", json_object_get(last, "id"));
		req_next_page(r, key);
		json_decref(key);
	}
	req_reply_json(r, 200, items);
	items = NULL;
out:
	json_decref(items);
	json_decref(cursor);
}

void user_handle_admin_get(struct req *r)
{
	long long id;
	struct user u;
	bool found = false;
	if (!req_param_id(r, "id", &id))
		return;
	enum db_status st = user_repo_get(id, &u, &found);
	if (st != DB_OK)
		req_db_error(r, st);
	else if (!found)
		req_error(r, ERR_NOT_FOUND, NULL, "no user with id %lld", id);
	else
		reply_user(r, 200, &u, true);
}

void user_handle_admin_put(struct req *r)
{
	json_t *body = NULL, *details = json_object();
	struct user_patch p = {0};
	long long id;

	if (!req_param_id(r, "id", &id) || !req_if_match(r, &p.if_version) ||
	    !(body = req_body_object(r)))
		goto out;
	user_validate_admin(body, &p, details);
	if (json_object_size(details) > 0) {
		req_invalid(r, details);
		details = NULL;
		goto out;
	}
	struct user u;
	enum user_outcome outcome;
	enum db_status st = user_repo_admin_update(id, &p, cfg->user_events_topic, &u, &outcome);
	if (st != DB_OK) {
		req_db_error(r, st);
		goto out;
	}
	switch (outcome) {
	case USER_DONE:
		log_info("admin %lld updated user %lld", req_user(r)->id, id);
		reply_user(r, 200, &u, true);
		break;
	case USER_NOT_FOUND:
		req_error(r, ERR_NOT_FOUND, NULL, "no user with id %lld", id);
		break;
	case USER_STALE:
		req_error(r, ERR_PRECONDITION_FAILED, NULL,
		          "user %lld has changed (current version %lld)", id, u.version);
		break;
	case USER_LAST_ADMIN:
		req_error(r, ERR_CONFLICT, NULL,
		          "user %lld is the last active admin and must stay an active admin", id);
		break;
	case USER_DUPLICATE:
		req_error(r, ERR_CONFLICT, json_pack("{s:s}", "email", "is already in use"),
		          "e-mail address already in use");
		break;
	default:
		req_error(r, ERR_INTERNAL, NULL, NULL);
		break;
	}
out:
	json_decref(details);
	json_decref(body);
}

void user_handle_admin_delete(struct req *r)
{
	long long id, if_version = 0;

	if (!req_param_id(r, "id", &id) || !req_if_match(r, &if_version))
		return;
	enum user_outcome outcome;
	enum db_status st = user_repo_delete(id, if_version, cfg->user_events_topic, &outcome);
	if (st != DB_OK) {
		req_db_error(r, st);
		return;
	}
	switch (outcome) {
	case USER_DONE:
		log_info("admin %lld deleted user %lld", req_user(r)->id, id);
		req_reply_empty(r, 204);
		break;
	case USER_NOT_FOUND:
		req_error(r, ERR_NOT_FOUND, NULL, "no user with id %lld", id);
		break;
	case USER_STALE:
		req_error(r, ERR_PRECONDITION_FAILED, NULL, "user %lld has changed", id);
		break;
	case USER_LAST_ADMIN:
		req_error(r, ERR_CONFLICT, NULL, "user %lld is the last active admin", id);
		break;
	default:
		req_error(r, ERR_INTERNAL, NULL, NULL);
		break;
	}
}
