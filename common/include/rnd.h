/* rnd: cryptographically strong identifiers from OpenSSL's RAND_bytes.  Thread-safe. */
#ifndef RND_H
#define RND_H

#include <stdbool.h>
#include <stddef.h>

#define RND_UUID_LEN 37 /* 36 characters + NUL */

/* A random version-4 UUID in canonical lower-case form. Returns false if the CSPRNG failed. */
bool rnd_uuid(char out[RND_UUID_LEN]);
/* n random bytes into out.  Returns false if the CSPRNG failed. */
bool rnd_bytes(void *out, size_t n);
/* A base64url string of nbytes random bytes (heap, caller frees), or NULL on failure. */
char *rnd_token(size_t nbytes);
/* A string of nchars (1..128) random characters of lower-case base32 (RFC 4648's alphabet,
 * a-z2-7), 5 bits each: for names that a consumer folds to one case (heap, caller frees), or
 * NULL on failure. */
char *rnd_name32(size_t nchars);

/* Hex SHA-256 and its NUL. */
#define RND_TOKEN_HASH_LEN 65
/* The lower-case hex SHA-256 of token: the form in which a database stores a secret handed out
 * (refresh tokens, sign-in cookies, calendar feed tokens), so that reading the table does not
 * give the secret. */
void rnd_token_hash(const char *token, char out[RND_TOKEN_HASH_LEN]);
/* True when a and b are the same hash (both non-NULL, same length), compared in constant time
 * so that an attacker timing refusals learns nothing about a stored hash. */
bool rnd_token_hash_equal(const char *a, const char *b);

#endif
