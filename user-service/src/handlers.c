/* user-service endpoints: sign-in with Google (OpenID Connect), token refresh with rotation,
 * logout, the caller's profile and admin user management.  Validation and rules live here;
 * every SQL statement is in repo.c. */
#include "handlers.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <openssl/sha.h>

#include "encoding.h"
#include "httpparse.h"
#include "jsonx.h"
#include "log.h"
#include "repo.h"
#include "rnd.h"
#include "timefmt.h"

#define LOGIN_STATE_TTL 600
#define REFRESH_TOKEN_BYTES 32

static const struct user_config *cfg;
static const struct auth_config *auth;
static struct oidc_client *oidc;

void handlers_init(const struct user_config *c, const struct auth_config *a,
                   struct oidc_client *o)
{
	cfg = c;
	auth = a;
	oidc = o;
}

bool handlers_is_bootstrap_admin(const char *list, const char *email)
{
	return httpparse_list_has(list, email, true);
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

static void token_hash(const char *token, char out[2 * SHA256_DIGEST_LENGTH + 1])
{
	unsigned char d[SHA256_DIGEST_LENGTH];
	SHA256((const unsigned char *)token, strlen(token), d);
	enc_hex(d, sizeof d, out);
}

/* Replies 200 with a new access token, the given refresh token and the user. */
static void reply_tokens(struct req *r, const struct user *u, const char *refresh)
{
	char *access = auth_issue_access(auth, u->id, u->email, u->name, u->role, time(NULL));
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

void h_login(struct req *r)
{
	char hint[321] = "";
	char *state = NULL, *nonce = NULL, *verifier = NULL, *url = NULL;

	if (!oidc) {
		req_error(r, ERR_UNAVAILABLE, NULL, "Google sign-in is not configured");
		return;
	}
	if (req_query(r, "login_hint", hint, sizeof hint) < 0)
		return;
	state = rnd_token(32);
	nonce = rnd_token(32);
	verifier = rnd_token(48); /* 64 characters: within PKCE's 43–128 */
	if (!state || !nonce || !verifier) {
		req_error(r, ERR_INTERNAL, NULL, NULL);
		goto out;
	}
	enum oidc_status os = oidc_authorization_url(oidc, state, nonce, verifier, hint, &url);
	if (os != OIDC_OK) {
		req_error(r, ERR_BAD_GATEWAY, NULL, "%s", oidc_status_str(os));
		goto out;
	}
	enum db_status st = repo_state_save(state, nonce, verifier, LOGIN_STATE_TTL);
	if (st != DB_OK) {
		req_db_error(r, st);
		goto out;
	}
	req_redirect(r, url);
out:
	free(state);
	free(nonce);
	free(verifier);
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

void h_callback(struct req *r)
{
	char state[128] = "", code[2048] = "", error[128] = "";
	char nonce[128], verifier[160];
	char hash[2 * SHA256_DIGEST_LENGTH + 1];
	struct oidc_identity id = {0};
	char *refresh = NULL;
	bool found = false;
	int qs, qc, qe;

	if (!oidc) {
		req_error(r, ERR_UNAVAILABLE, NULL, "Google sign-in is not configured");
		return;
	}
	if ((qs = req_query(r, "state", state, sizeof state)) < 0 ||
	    (qc = req_query(r, "code", code, sizeof code)) < 0 ||
	    (qe = req_query(r, "error", error, sizeof error)) < 0)
		return;
	if (qe == 1) {
		/* The user said no (or the provider failed): the state is spent either way. */
		if (qs == 1)
			repo_state_take(state, nonce, sizeof nonce, verifier, sizeof verifier, &found);
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
	enum db_status st = repo_state_take(state, nonce, sizeof nonce, verifier, sizeof verifier,
	                                    &found);
	if (st != DB_OK) {
		req_db_error(r, st);
		return;
	}
	if (!found) {
		req_error(r, ERR_BAD_REQUEST, json_pack("{s:s}", "state", "is unknown or expired"),
		          "sign-in state is unknown, used or expired; start again at /auth/google/login");
		return;
	}
	enum oidc_status os = oidc_exchange(oidc, code, verifier, nonce, &id);
	if (os != OIDC_OK) {
		reply_oidc_error(r, os);
		goto out;
	}
	struct user_login login = {
		.sub = id.sub, .email = id.email, .name = id.name, .picture = id.picture,
		.make_admin = handlers_is_bootstrap_admin(cfg->admin_emails, id.email),
	};
	struct user u;
	if ((st = repo_user_login(&login, &u)) != DB_OK) {
		req_db_error(r, st);
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
	token_hash(refresh, hash);
	if ((st = repo_refresh_issue(u.id, hash, NULL, cfg->refresh_ttl)) != DB_OK) {
		req_db_error(r, st);
		goto out;
	}
	log_info("user %lld signed in", u.id);
	reply_tokens(r, &u, refresh);
out:
	free(refresh);
	oidc_identity_free(&id);
}

void h_refresh(struct req *r)
{
	static const struct jsonx_field fields[] = {{"refresh_token", JSONX_STRING, true}};
	json_t *body = req_body_object(r), *details = json_object();
	char *fresh = NULL;
	char old_hash[2 * SHA256_DIGEST_LENGTH + 1], new_hash[2 * SHA256_DIGEST_LENGTH + 1];
	const char *token = NULL;

	if (!body)
		goto out;
	if (!jsonx_check(body, fields, 1, details) ||
	    !jsonx_string_len(body, "refresh_token", 1, 512, &token, details)) {
		req_invalid(r, details);
		details = NULL;
		goto out;
	}
	fresh = rnd_token(REFRESH_TOKEN_BYTES);
	if (!fresh) {
		req_error(r, ERR_INTERNAL, NULL, NULL);
		goto out;
	}
	token_hash(token, old_hash);
	token_hash(fresh, new_hash);
	struct user u;
	enum repo_outcome outcome;
	enum db_status st = repo_refresh_rotate(old_hash, new_hash, cfg->refresh_ttl, &u, &outcome);
	if (st != DB_OK) {
		req_db_error(r, st);
		goto out;
	}
	switch (outcome) {
	case REPO_DONE:
		reply_tokens(r, &u, fresh);
		break;
	case REPO_TOKEN_REUSED:
		log_warn("refresh token re-used; its sign-in was revoked");
		req_error(r, ERR_UNAUTHORIZED, NULL,
		          "refresh token was already used; this sign-in has been revoked");
		break;
	case REPO_DISABLED:
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

void h_logout(struct req *r)
{
	static const struct jsonx_field fields[] = {{"refresh_token", JSONX_STRING, false},
	                                            {"all", JSONX_BOOL, false}};
	json_t *body = req_body_object(r), *details = json_object();
	const char *token = NULL;
	char hash[2 * SHA256_DIGEST_LENGTH + 1];

	if (!body)
		goto out;
	if (!jsonx_check(body, fields, 2, details) ||
	    !jsonx_string_len(body, "refresh_token", 1, 512, &token, details)) {
		req_invalid(r, details);
		details = NULL;
		goto out;
	}
	bool all = json_is_true(json_object_get(body, "all"));
	if (!token && !all) {
		json_object_set_new(details, "refresh_token", json_string("is required unless all is true"));
		req_invalid(r, details);
		details = NULL;
		goto out;
	}
	if (token)
		token_hash(token, hash);
	enum db_status st = repo_refresh_revoke(req_user(r)->id, all ? NULL : hash);
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

void h_profile_get(struct req *r)
{
	struct user u;
	bool found = false;
	enum db_status st = repo_user_get(req_user(r)->id, &u, &found);
	if (st != DB_OK)
		req_db_error(r, st);
	else if (!found)
		req_error(r, ERR_UNAUTHORIZED, NULL, "the account of this token no longer exists");
	else
		reply_user(r, 200, &u, false);
}

/* True when s holds no blank and no control character (URLs, e-mail addresses). */
static bool no_blank_or_control(const char *s)
{
	for (const char *p = s; *p; p++)
		if ((unsigned char)*p <= ' ' || *p == 0x7f)
			return false;
	return true;
}

/* Validates a picture URL: http(s), printable, bounded. */
static bool valid_picture(const char *s)
{
	return (strncmp(s, "https://", 8) == 0 || strncmp(s, "http://", 7) == 0) &&
	       no_blank_or_control(s);
}

void h_profile_put(struct req *r)
{
	static const struct jsonx_field fields[] = {{"name", JSONX_STRING, false},
	                                            {"picture", JSONX_STRING | JSONX_NULL, false},
	                                            {"email", JSONX_STRING, false},
	                                            {"role", JSONX_STRING, false}};
	json_t *body = NULL, *details = json_object();
	const char *name = NULL, *picture = NULL;
	long long if_version = 0;

	if (!req_if_match(r, &if_version) || !(body = req_body_object(r)))
		goto out;
	jsonx_check(body, fields, 4, details);
	if (json_object_get(body, "email"))
		json_object_set_new(details, "email", json_string("cannot be changed here"));
	if (json_object_get(body, "role"))
		json_object_set_new(details, "role", json_string("cannot be changed here"));
	jsonx_string_len(body, "name", 1, 200, &name, details);
	jsonx_string_len(body, "picture", 0, 2048, &picture, details);
	if (picture && *picture && !valid_picture(picture))
		json_object_set_new(details, "picture", json_string("must be an http(s) URL"));
	if (json_object_size(details) == 0 && !name && !json_object_get(body, "picture"))
		json_object_set_new(details, "name", json_string("is required"));
	if (json_object_size(details) > 0) {
		req_invalid(r, details);
		details = NULL;
		goto out;
	}
	struct user u;
	enum repo_outcome outcome;
	/* An explicit null or "" clears the picture. */
	if (json_object_get(body, "picture") && (!picture || !*picture))
		picture = "";
	enum db_status st = repo_user_update_profile(req_user(r)->id, name, picture, if_version, &u,
	                                             &outcome);
	if (st != DB_OK)
		req_db_error(r, st);
	else if (outcome == REPO_NOT_FOUND)
		req_error(r, ERR_UNAUTHORIZED, NULL, "the account of this token no longer exists");
	else if (outcome == REPO_STALE)
		req_error(r, ERR_PRECONDITION_FAILED, NULL,
		          "your profile has changed (current version %lld)", u.version);
	else
		reply_user(r, 200, &u, false);
out:
	json_decref(details);
	json_decref(body);
}

/* ---- admin ---- */

void h_admin_list(struct req *r)
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
		req_error(r, ERR_BAD_REQUEST, json_pack("{s:s}", "role", "must be admin or employee"),
		          "query parameter role must be admin or employee");
		goto out;
	}
	long long after = 0;
	if (cursor) {
		json_t *k = json_array_get(cursor, 0);
		if (json_array_size(cursor) != 1 || !json_is_integer(k) || json_integer_value(k) < 0) {
			req_error(r, ERR_BAD_REQUEST, json_pack("{s:s}", "cursor", "is invalid"),
			          "query parameter cursor is invalid");
			goto out;
		}
		after = (long long)json_integer_value(k);
	}
	enum db_status st = repo_user_list(hq == 1 && q[0] ? q : NULL, hr == 1 ? role : NULL, after,
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

void h_admin_get(struct req *r)
{
	long long id;
	struct user u;
	bool found = false;
	if (!req_param_id(r, "id", &id))
		return;
	enum db_status st = repo_user_get(id, &u, &found);
	if (st != DB_OK)
		req_db_error(r, st);
	else if (!found)
		req_error(r, ERR_NOT_FOUND, NULL, "no user with id %lld", id);
	else
		reply_user(r, 200, &u, true);
}

/* A plausible e-mail address: one @, something on both sides, a dot in the domain, no spaces. */
static bool valid_email(const char *s)
{
	const char *at = strchr(s, '@');
	if (!at || at == s || strchr(at + 1, '@') || !strchr(at + 1, '.') || at[1] == '.' ||
	    s[strlen(s) - 1] == '.')
		return false;
	return no_blank_or_control(s);
}

void h_admin_put(struct req *r)
{
	static const struct jsonx_field fields[] = {{"name", JSONX_STRING, false},
	                                            {"email", JSONX_STRING, false},
	                                            {"role", JSONX_STRING, false},
	                                            {"disabled", JSONX_BOOL, false}};
	json_t *body = NULL, *details = json_object();
	struct user_patch p = {0};
	long long id;

	if (!req_param_id(r, "id", &id) || !req_if_match(r, &p.if_version) ||
	    !(body = req_body_object(r)))
		goto out;
	jsonx_check(body, fields, 4, details);
	jsonx_string_len(body, "name", 1, 200, &p.name, details);
	jsonx_string_len(body, "email", 3, 320, &p.email, details);
	jsonx_string_len(body, "role", 1, 15, &p.role, details);
	if (p.email && !valid_email(p.email))
		json_object_set_new(details, "email", json_string("must be an e-mail address"));
	if (p.role && strcmp(p.role, "admin") != 0 && strcmp(p.role, "employee") != 0)
		json_object_set_new(details, "role", json_string("must be admin or employee"));
	json_t *dis = json_object_get(body, "disabled");
	if (json_is_boolean(dis)) {
		p.set_disabled = true;
		p.disabled = json_is_true(dis);
	}
	if (json_object_size(details) > 0) {
		req_invalid(r, details);
		details = NULL;
		goto out;
	}
	struct user u;
	enum repo_outcome outcome;
	enum db_status st = repo_user_admin_update(id, &p, &u, &outcome);
	if (st != DB_OK) {
		req_db_error(r, st);
		goto out;
	}
	switch (outcome) {
	case REPO_DONE:
		log_info("admin %lld updated user %lld", req_user(r)->id, id);
		reply_user(r, 200, &u, true);
		break;
	case REPO_NOT_FOUND:
		req_error(r, ERR_NOT_FOUND, NULL, "no user with id %lld", id);
		break;
	case REPO_STALE:
		req_error(r, ERR_PRECONDITION_FAILED, NULL,
		          "user %lld has changed (current version %lld)", id, u.version);
		break;
	case REPO_LAST_ADMIN:
		req_error(r, ERR_CONFLICT, NULL,
		          "user %lld is the last active admin and must stay an active admin", id);
		break;
	case REPO_DUPLICATE:
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

void h_admin_delete(struct req *r)
{
	long long id, if_version = 0;
	char event_id[RND_UUID_LEN], ts[TIMEFMT_RFC3339_LEN];
	json_t *event = NULL;

	if (!req_param_id(r, "id", &id) || !req_if_match(r, &if_version))
		return;
	if (!rnd_uuid(event_id)) {
		req_error(r, ERR_INTERNAL, NULL, NULL);
		return;
	}
	timefmt_rfc3339_ms(timefmt_now_ms(), ts);
	event = json_pack("{s:s, s:s, s:s, s:I}", "event_type", "user_deleted", "event_id", event_id,
	                  "occurred_at", ts, "user_id", (json_int_t)id);
	enum repo_outcome outcome;
	enum db_status st = repo_user_delete(id, if_version, cfg->user_events_topic, event, &outcome);
	json_decref(event);
	if (st != DB_OK) {
		req_db_error(r, st);
		return;
	}
	switch (outcome) {
	case REPO_DONE:
		log_info("admin %lld deleted user %lld", req_user(r)->id, id);
		req_reply_empty(r, 204);
		break;
	case REPO_NOT_FOUND:
		req_error(r, ERR_NOT_FOUND, NULL, "no user with id %lld", id);
		break;
	case REPO_STALE:
		req_error(r, ERR_PRECONDITION_FAILED, NULL, "user %lld has changed", id);
		break;
	case REPO_LAST_ADMIN:
		req_error(r, ERR_CONFLICT, NULL, "user %lld is the last active admin", id);
		break;
	default:
		req_error(r, ERR_INTERNAL, NULL, NULL);
		break;
	}
}
