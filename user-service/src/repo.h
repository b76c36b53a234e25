/* repo: every SQL statement of user-service.  Functions run on the calling thread's database
 * connection, return a db_status, and leave the connection idle (their transactions commit or
 * roll back before returning). */
#ifndef USER_REPO_H
#define USER_REPO_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "db.h"

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

/* Partial admin update: NULL/false = leave unchanged. */
struct user_patch {
	const char *name, *email, *role;
	bool set_disabled, disabled;
	long long if_version; /* 0 = no If-Match */
};

enum repo_outcome {
	REPO_DONE,
	REPO_NOT_FOUND,
	REPO_STALE,          /* If-Match version differs */
	REPO_LAST_ADMIN,     /* would leave no active admin */
	REPO_DUPLICATE,      /* e-mail taken */
	REPO_TOKEN_INVALID,  /* unknown, expired or revoked refresh token */
	REPO_TOKEN_REUSED,   /* rotated token presented again: family revoked */
	REPO_DISABLED,       /* the user is disabled */
};

enum db_status repo_state_save(const char *state, const char *nonce, const char *verifier,
                               int ttl_seconds);
/* Consumes a login state (single use); *found false when unknown or expired. */
enum db_status repo_state_take(const char *state, char *nonce, size_t nonce_size,
                               char *verifier, size_t verifier_size, bool *found);

/* Creates or updates the user after a sign-in: by provider sub, then by e-mail. */
enum db_status repo_user_login(const struct user_login *login, struct user *out);
/* Creates or updates a user by e-mail (operator token command).  name/role may be NULL. */
enum db_status repo_user_ensure(const char *email, const char *name, const char *role,
                                struct user *out);
enum db_status repo_user_get(long long id, struct user *out, bool *found);
/* Lists users ordered by id after after_id; q matches name or e-mail (case-insensitive
 * substring), role filters exactly.  Fills at most limit users into *out (new array of user
 * objects built by to_json) and sets *more when another page exists. */
enum db_status repo_user_list(const char *q, const char *role, long long after_id,
                              long long limit, json_t *(*to_json)(const struct user *),
                              json_t **out, bool *more);
/* if_version 0 = unconditional; *outcome REPO_DONE, REPO_NOT_FOUND or REPO_STALE. */
enum db_status repo_user_update_profile(long long id, const char *name, const char *picture,
                                        long long if_version, struct user *out,
                                        enum repo_outcome *outcome);
enum db_status repo_user_admin_update(long long id, const struct user_patch *p, struct user *out,
                                      enum repo_outcome *outcome);
/* Deletes the user (and its refresh tokens), writing event (borrowed) to the outbox in the same
 * transaction.  if_version 0 = unconditional. */
enum db_status repo_user_delete(long long id, long long if_version, const char *topic,
                                const json_t *event, enum repo_outcome *outcome);

/* Refresh tokens: hashes are hex SHA-256 of the token. family NULL starts a new family. */
enum db_status repo_refresh_issue(long long user_id, const char *hash, const char *family,
                                  long long ttl_seconds);
/* Rotates old_hash into new_hash; *user receives the owner on REPO_DONE. */
enum db_status repo_refresh_rotate(const char *old_hash, const char *new_hash,
                                   long long ttl_seconds, struct user *user,
                                   enum repo_outcome *outcome);
/* Revokes one token of user_id (hash) or all of them (hash NULL). */
enum db_status repo_refresh_revoke(long long user_id, const char *hash);


#endif
