/* encoding: base64url (RFC 4648 §5, no padding) and hex.  Pure functions, thread-safe. */
#ifndef ENCODING_H
#define ENCODING_H

#include <stdbool.h>
#include <stddef.h>

/* Returns a heap string (caller frees), or NULL on allocation failure. */
char *enc_b64url_encode(const void *data, size_t len);
/* Decodes unpadded base64url (padding '=' is also accepted at the end).  Returns a heap buffer
 * (caller frees, NUL-terminated for convenience) and its length in *outlen, or NULL when the
 * input is not valid base64url. */
unsigned char *enc_b64url_decode(const char *s, size_t len, size_t *outlen);
/* Lower-case hex of len bytes into out (2*len + 1 bytes). */
void enc_hex(const void *data, size_t len, char *out);

/* True when s[0..len) is well-formed UTF-8 (no overlong forms, no surrogates, ≤ U+10FFFF). */
bool enc_utf8_valid(const char *s, size_t len);

#endif
