/* tokens: the pure cryptography of user-service's opaque secrets — refresh tokens and the sign-in
 * browser binding — as the handlers and the repository use them: the hash under which a secret is
 * stored, a constant-time comparison of two such hashes, and the sealed copy of a refresh token's
 * successor that lets a repeated refresh within the grace period get the same answer
 * (docs/api.md#user-service).  No SQL, no civetweb; every function is thread-safe. */
#ifndef USER_TOKENS_H
#define USER_TOKENS_H

#include <stdbool.h>
#include <stddef.h>

#include "rnd.h"

/* Hex SHA-256 and its NUL. */
#define USER_TOKEN_HASH_LEN RND_TOKEN_HASH_LEN
/* The longest token user_token_seal accepts (refresh tokens are 43 characters). */
#define USER_TOKEN_SEAL_MAX 128
/* A sealed token in base64url: 12-byte nonce, the encrypted token, 16-byte tag; and the NUL. */
#define USER_TOKEN_BOX_LEN (((12 + USER_TOKEN_SEAL_MAX + 16) * 4 + 2) / 3 + 1)

/* The lower-case hex SHA-256 of token, the form in which the database stores secrets
 * (rnd_token_hash). */
void user_token_hash(const char *token, char out[USER_TOKEN_HASH_LEN]);

/* True when a and b are the same hash (both non-NULL, same length), compared in constant time
 * so that an attacker timing refusals learns nothing about a stored hash (rnd_token_hash_equal). */
bool user_token_hash_equal(const char *a, const char *b);

/* Seals successor (at most USER_TOKEN_SEAL_MAX bytes) under a key derived from presented — the
 * refresh token being rotated — with AES-256-GCM: HMAC-SHA256(presented, a fixed label) is the
 * key, a fresh random nonce comes first.  Only someone who holds presented can open the box;
 * the database keeps SHA-256(presented), which is not the key.  Writes the box into out; returns
 * false when successor is too long or the CSPRNG or cipher failed. */
bool user_token_seal(const char *presented, const char *successor, char out[USER_TOKEN_BOX_LEN]);

/* Opens a box written by user_token_seal with the same presented token into out (a NUL-terminated
 * string of at most USER_TOKEN_SEAL_MAX bytes).  Returns false when box is malformed, was sealed
 * under another token, or was altered (the GCM tag does not verify). */
bool user_token_open(const char *presented, const char *box, char out[USER_TOKEN_SEAL_MAX + 1]);

#endif
