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

#endif
