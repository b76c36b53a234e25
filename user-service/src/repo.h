/* repo: every SQL statement of user-service.  Functions run on the calling thread's database
 * connection, return a db_status, and leave the connection idle (their transactions commit or
 * roll back before returning). */
#ifndef USER_REPO_H
#define USER_REPO_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "auth.h"
#include "db.h"
#include "tokens.h"
#include "validate.h"

struct user {
	long long id;
	char email[AUTH_EMAIL_SIZE];
	char name[804];     /* 200 characters of up to 4 UTF-8 bytes */
	char picture[8196]; /* 2048 characters */
	char role[16];
	bool disabled;
	char created_at[40];
	char updated_at[40];
	long long version;
};

/* What the identity provider said about a signing-in user (borrowed strings). */
struct user_login {
	const char *sub, *email, *name, *picture;
	bool make_admin;   /* e-mail listed in ADMIN_EMAILS */
	const char *topic; /* of user_events: a changed e-mail is published (user_email_changed) */
};

enum user_outcome {
	USER_DONE,
	USER_NOT_FOUND,
	USER_STALE,          /* If-Match version differs */
	USER_LAST_ADMIN,     /* would leave no active admin */
	USER_DUPLICATE,      /* e-mail taken */
	USER_TOKEN_INVALID,  /* unknown, expired or revoked refresh token */
	USER_TOKEN_REUSED,   /* rotated token presented again: family revoked */
	USER_DISABLED,       /* the user is disabled */
	USER_WRONG_BROWSER,  /* sign-in state started by another browser (or without its cookie) */
	USER_SUB_CONFLICT,   /* the e-mail's user is linked to another provider account (sub) */
	USER_TOKEN_REPLAYED, /* just-rotated token presented again within the grace period */
};

/* Stores a started sign-in: state, nonce and PKCE verifier, browser_hash, the hash
 * (user_token_hash) of the random value in the cookie of the browser that started it, and
 * return_to, the path a web sign-in returns to (NULL for every other sign-in). */
enum db_status user_repo_state_save(const char *state, const char *nonce, const char *verifier,
                                    const char *browser_hash, const char *return_to,
                                    int ttl_seconds);
/* What a taken sign-in state held (user_repo_state_take). */
struct user_login_state {
	char nonce[128];
	char verifier[160];
	char return_to[USER_RETURN_TO_MAX + 1]; /* "" unless a web sign-in */
};

/* Consumes a login state (single use) when browser_hash (may be NULL: no cookie) is the one it
 * was saved with, compared in constant time; *outcome USER_DONE with *out filled,
 * USER_NOT_FOUND when unknown or expired, or USER_WRONG_BROWSER — the state is then left as it
 * was, for the browser that holds the cookie, so a stranger who saw the callback URL can
 * neither use nor cancel it. */
enum db_status user_repo_state_take(const char *state, const char *browser_hash,
                                    struct user_login_state *out, enum user_outcome *outcome);

/* Creates or updates the user after a sign-in: by provider sub, then by e-mail — the e-mail
 * only links a user that has no sub yet (created by an admin or the operator command).  An
 * e-mail whose user is linked to another sub gives USER_SUB_CONFLICT (nothing changes; *out
 * holds that user); else USER_DONE with *out the signed-in user.  *issued_ms receives the issue
 * time of the access token to answer: the database's clock (Unix milliseconds) in the same
 * transaction, before the user was read (docs/architecture.md, "Revocation").  A deadlock or
 * serialization failure is retried a few times. */
enum db_status user_repo_login(const struct user_login *login, struct user *out,
                               long long *issued_ms, enum user_outcome *outcome);
/* Creates or updates a user by e-mail (operator token command).  name/role may be NULL.  When
 * role changes an existing user's role, the same transaction writes user_role_changed (topic)
 * and voids the user's earlier tokens: *not_before_ms then receives the time from which tokens
 * are valid again (Unix milliseconds), else 0. */
enum db_status user_repo_ensure(const char *email, const char *name, const char *role,
                                const char *topic, struct user *out, long long *not_before_ms);
enum db_status user_repo_get(long long id, struct user *out, bool *found);
/* Lists users ordered by id after after_id; q matches name or e-mail (case-insensitive
 * substring), role filters exactly.  Fills at most limit users into *out (new array of user
 * objects built by to_json) and sets *more when another page exists. */
enum db_status user_repo_list(const char *q, const char *role, long long after_id, long long limit,
                              json_t *(*to_json)(const struct user *), json_t **out, bool *more);
/* if_version 0 = unconditional; *outcome USER_DONE, USER_NOT_FOUND or USER_STALE. */
enum db_status user_repo_update_profile(long long id, const char *name, const char *picture,
                                        long long if_version, struct user *out,
                                        enum user_outcome *outcome);
/* Applies an admin's change.  The same statement writes the events of what changed to the outbox
 * (topic): user_role_changed, user_disabled, user_enabled; the same transaction voids the
 * user's earlier tokens (revoke.h) for a role change or a disabling, and revokes the refresh
 * tokens of a disabled user. */
enum db_status user_repo_admin_update(long long id, const struct user_patch *p, const char *topic,
                                      struct user *out, enum user_outcome *outcome);
/* Deletes the user (and its refresh tokens); the same statement writes its user_deleted event
 * to the outbox (topic), the same transaction voids its tokens.  if_version 0 = unconditional. */
enum db_status user_repo_delete(long long id, long long if_version, const char *topic,
                                enum user_outcome *outcome);

/* Refresh tokens: hashes are hex SHA-256 of the token. family NULL starts a new family. */
enum db_status user_repo_refresh_issue(long long user_id, const char *hash, const char *family,
                                       long long ttl_seconds);
/* Rotates old_hash into new_hash; box is the new token sealed under the presented one
 * (user_token_seal), kept with the old row.  *user receives the owner on USER_DONE and
 * USER_TOKEN_REPLAYED.  A token that was already rotated, presented again within grace_s
 * seconds of its rotation while its successor is still unused and valid, gives
 * USER_TOKEN_REPLAYED with the box of that rotation in box_out (nothing changes); otherwise a
 * rotated token presented again revokes its whole family: USER_TOKEN_REUSED.  grace_s 0 turns
 * the replay off.  Other outcomes: USER_DISABLED, USER_TOKEN_INVALID.  *issued_ms as for
 * user_repo_login.  Locks the user row before the token's (the order of an admin's change);
 * a deadlock or serialization failure is retried a few times. */
enum db_status user_repo_refresh_rotate(const char *old_hash, const char *new_hash, const char *box,
                                        long long ttl_seconds, long long grace_s, struct user *user,
                                        char box_out[USER_TOKEN_BOX_LEN], long long *issued_ms,
                                        enum user_outcome *outcome);
/* Revokes one token of user_id (hash) or all of them (hash NULL). */
enum db_status user_repo_refresh_revoke(long long user_id, const char *hash);
/* Revokes the sign-in (family) of the token whose hash is hash, whoever it belongs to: the
 * holder of a refresh token may end its sign-in (logout by the refresh cookie).  An unknown
 * hash changes nothing. */
enum db_status user_repo_refresh_revoke_family(const char *hash);

/* The sweeper's statements (struct sweep_table in sweep.h), each deleting at most $2 rows:
 * - sign-in states that expired more than $1 seconds ago;
 * - refresh tokens of sign-ins (families) whose every token expired more than $1 seconds ago.
 *   Spent and revoked tokens of a family that still has a valid token stay, so that presenting
 *   one of them is still recognised as reuse and ends the sign-in. */
extern const char user_repo_sweep_login_states_sql[];
extern const char user_repo_sweep_refresh_tokens_sql[];

#endif
