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
#define LOGIN_COOKIE_MAX 128 /* longer values are not ours */

static const struct user_config *cfg;
static const struct auth_config *auth;
static struct oidc_client *oidc;
/* The sign-in cookie: Secure with a __Host- name when the callback is served over HTTPS (the
 * browser then refuses it from anywhere but this host, over HTTPS, with Path=/); a plain name
 * over http (local runs), where browsers would refuse a __Host- cookie. */
static bool login_cookie_secure;
static const char *login_cookie_name;

void user_handlers_init(const struct user_config *c, const struct auth_config *a,
                        struct oidc_client *o)
{
	cfg = c;
	auth = a;
	oidc = o;
	login_cookie_secure = strncasecmp(c->google_redirect_uri, "https://", 8) == 0;
	login_cookie_name = login_cookie_secure ? "__Host-mr_login" : "mr_login";
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

/* Replies 200 with a new access token issued at issued_ms, the given refresh token and the user.
 * issued_ms is the database's time, taken in the transaction that read the user, before the
 * read: a revocation that the read did not see (it committed after) then voids the token too,
 * and both sides of that comparison come from one clock (docs/architecture.md, "Revocation"). */
static void reply_tokens(struct req *r, const struct user *u, const char *refresh,
                         long long issued_ms)
{
	char *access = auth_issue_access(auth, u->id, u->email, u->name, u->role, issued_ms);
	if (!access) {
		req_error(r, ERR_INTERNAL, NULL, NULL);
		return;
	}
	req_reply_json(r, 200,
	               json_pack("{s:s, s:s, s:I, s:s, s:o}", "access_token", access, "token_type",
	                         "Bearer", "expires_in", (json_int_t)auth->access_ttl,
	                         "refresh_token", refresh, "user", user_profile_json(u)));
	free(access);
}

/* ---- sign-in ---- */

/* Sets the sign-in cookie to value for max_age seconds (0 with "" clears it). */
static void set_login_cookie(struct req *r, const char *value, int max_age)
{
	char cookie[256];
	snprintf(cookie, sizeof cookie, "%s=%s; Max-Age=%d; Path=/; HttpOnly; SameSite=Lax%s",
	         login_cookie_name, value, max_age, login_cookie_secure ? "; Secure" : "");
	req_add_header(r, "Set-Cookie", cookie);
}

/* The hash of the sign-in cookie this request carries into out; false when it has none. */
static bool login_cookie_hash(struct req *r, char out[USER_TOKEN_HASH_LEN])
{
	const char *value = NULL;
	size_t len = 0;
	char buf[LOGIN_COOKIE_MAX + 1];
	if (!httpparse_cookie(req_header(r, "Cookie"), login_cookie_name, &value, &len) || !len ||
	    len > LOGIN_COOKIE_MAX)
		return false;
	memcpy(buf, value, len);
	buf[len] = '\0';
	user_token_hash(buf, out);
	return true;
}

void user_handle_login(struct req *r)
{
	char hint[AUTH_EMAIL_SIZE] = "";
	char browser_hash[USER_TOKEN_HASH_LEN];
	char *state = NULL, *nonce = NULL, *verifier = NULL, *browser = NULL, *url = NULL;
	int qh;

	if (!oidc) {
		req_error(r, ERR_UNAVAILABLE, NULL, "Google sign-in is not configured");
		return;
	}
	if ((qh = req_query(r, "login_hint", hint, sizeof hint)) < 0)
		return;
	if (qh == 1 && jsonx_utf8_len(hint) > AUTH_EMAIL_MAX_CHARS) {
		req_error(r, ERR_BAD_REQUEST, json_pack("{s:s}", "login_hint", "is too long"),
		          "query parameter login_hint is longer than %d characters",
		          AUTH_EMAIL_MAX_CHARS);
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
	                                         LOGIN_STATE_TTL);
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

/* Maps a failed sign-in to its status (docs/api.md#user-service). */
static void reply_oidc_error(struct req *r, enum oidc_status os)
{
	switch (os) {
	case OIDC_REJECTED:
	case OIDC_INVALID_TOKEN:
		req_error(r, ERR_UNAUTHORIZED, NULL, "%s", oidc_status_str(os));
		break;
	case OIDC_EMAIL_UNVERIFIED:
	case OIDC_WRONG_DOMAIN:
		req_error(r, ERR_FORBIDDEN, NULL, "%s", oidc_status_str(os));
		break;
	default:
		req_error(r, ERR_BAD_GATEWAY, NULL, "%s", oidc_status_str(os));
		break;
	}
}

void user_handle_callback(struct req *r)
{
	char state[128] = "", code[2048] = "", error[128] = "";
	char nonce[128], verifier[160];
	char hash[USER_TOKEN_HASH_LEN], browser_hash[USER_TOKEN_HASH_LEN];
	struct oidc_identity id = {0};
	char *refresh = NULL;
	enum user_outcome outcome;
	int qs, qc, qe;

	/* The cookie is cleared only once its state is taken: a callback refused as another
	 * browser's (a second sign-in tab, a crafted link) leaves the sign-in in progress alone. */
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
		if (qs == 1 &&
		    user_repo_state_take(state, has_cookie ? browser_hash : NULL, nonce,
		                         sizeof nonce, verifier, sizeof verifier,
		                         &outcome) == DB_OK &&
		    outcome == USER_DONE)
			set_login_cookie(r, "", 0);
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
	enum db_status st = user_repo_state_take(state, has_cookie ? browser_hash : NULL, nonce,
	                                         sizeof nonce, verifier, sizeof verifier, &outcome);
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
	enum oidc_status os = oidc_exchange(oidc, code, verifier, nonce, &id);
	if (os != OIDC_OK) {
		reply_oidc_error(r, os);
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
		          "this e-mail address belongs to a user who signs in with another Google "
		          "account; ask an administrator");
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
	log_info("user %lld signed in", u.id);
	reply_tokens(r, &u, refresh, issued_ms);
out:
	free(refresh);
	oidc_identity_free(&id);
}

void user_handle_refresh(struct req *r)
{
	json_t *body = req_body_object(r), *details = json_object();
	char *fresh = NULL;
	char old_hash[USER_TOKEN_HASH_LEN], new_hash[USER_TOKEN_HASH_LEN];
	char box[USER_TOKEN_BOX_LEN], earlier_box[USER_TOKEN_BOX_LEN];
	char again[USER_TOKEN_SEAL_MAX + 1];
	const char *token = NULL;
	bool grace = cfg->refresh_reuse_grace > 0;

	if (!body)
		goto out;
	user_validate_refresh(body, &token, details);
	if (json_object_size(details) > 0) {
		req_invalid(r, details);
		details = NULL;
		goto out;
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
	switch (outcome) {
	case USER_DONE:
		reply_tokens(r, &u, fresh, issued_ms);
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
		reply_tokens(r, &u, again, issued_ms);
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
	json_t *body = req_body_object(r), *details = json_object();
	const char *token = NULL;
	bool all = false;
	char hash[USER_TOKEN_HASH_LEN];

	if (!body)
		goto out;
	user_validate_logout(body, &token, &all, details);
	if (json_object_size(details) > 0) {
		req_invalid(r, details);
		details = NULL;
		goto out;
	}
	if (token)
		user_token_hash(token, hash);
	enum db_status st = user_repo_refresh_revoke(req_user(r)->id, all ? NULL : hash);
	if (st != DB_OK) {
		req_db_error(r, st);
		goto out;
	}
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
