/* repo: every SQL statement of user-service.  Functions run on the calling thread's database
 * connection, return a db_status, and leave the connection idle (their transactions commit or
 * roll back before returning). */
#ifndef USER_REPO_H
#define USER_REPO_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "db.h"
#include "validate.h"

struct user {
	long long id;
	char email[321];
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
	bool make_admin; /* e-mail listed in ADMIN_EMAILS */
};

enum user_outcome {
	USER_DONE,
	USER_NOT_FOUND,
	USER_STALE,         /* If-Match version differs */
	USER_LAST_ADMIN,    /* would leave no active admin */
	USER_DUPLICATE,     /* e-mail taken */
	USER_TOKEN_INVALID, /* unknown, expired or revoked refresh token */
	USER_TOKEN_REUSED,  /* rotated token presented again: family revoked */
	USER_DISABLED,      /* the user is disabled */
};

enum db_status user_repo_state_save(const char *state, const char *nonce, const char *verifier,
                                    int ttl_seconds);
/* Consumes a login state (single use); *found false when unknown or expired. */
enum db_status user_repo_state_take(const char *state, char *nonce, size_t nonce_size,
                                    char *verifier, size_t verifier_size, bool *found);

/* Creates or updates the user after a sign-in: by provider sub, then by e-mail. */
enum db_status user_repo_login(const struct user_login *login, struct user *out);
/* Creates or updates a user by e-mail (operator token command).  name/role may be NULL. */
enum db_status user_repo_ensure(const char *email, const char *name, const char *role,
                                struct user *out);
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
enum db_status user_repo_admin_update(long long id, const struct user_patch *p, struct user *out,
                                      enum user_outcome *outcome);
/* Deletes the user (and its refresh tokens); the same statement writes its user_deleted event
 * to the outbox (topic).  if_version 0 = unconditional. */
enum db_status user_repo_delete(long long id, long long if_version, const char *topic,
                                enum user_outcome *outcome);

/* Refresh tokens: hashes are hex SHA-256 of the token. family NULL starts a new family. */
enum db_status user_repo_refresh_issue(long long user_id, const char *hash, const char *family,
                                       long long ttl_seconds);
/* Rotates old_hash into new_hash; *user receives the owner on USER_DONE. */
enum db_status user_repo_refresh_rotate(const char *old_hash, const char *new_hash,
                                        long long ttl_seconds, struct user *user,
                                        enum user_outcome *outcome);
/* Revokes one token of user_id (hash) or all of them (hash NULL). */
enum db_status user_repo_refresh_revoke(long long user_id, const char *hash);

#endif
