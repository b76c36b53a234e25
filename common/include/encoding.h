/* encoding: base64url (RFC 4648 §5, no padding), hex and UTF-8 checks.  Pure functions,
 * thread-safe. */
#ifndef ENCODING_H
#define ENCODING_H

#include <stdbool.h>
#include <stddef.h>

/* Returns a heap string (caller frees), or NULL on allocation failure. */
char *enc_b64url_encode(const void *data, size_t len);
/* Decodes base64url in its canonical form only: the URL alphabet, no padding '=', and the
 * unused low bits of a final partial group zero — what enc_b64url_encode writes, so that one
 * byte string has exactly one accepted spelling (JWS parts, RFC 7515 §2; opaque cursors).
 * Returns a heap buffer (caller frees, NUL-terminated for convenience) and its length in
 * *outlen, or NULL when the input is not canonical base64url or on allocation failure. */
unsigned char *enc_b64url_decode(const char *s, size_t len, size_t *outlen);
/* As enc_b64url_decode, but also accepts RFC 4648 padding: one or two '=' that make the length
 * a multiple of 4 (never more, never in the middle).  Only for values we did not mint and whose
 * spelling carries no meaning, e.g. a JWK's n and e from the identity provider. */
unsigned char *enc_b64url_decode_lenient(const char *s, size_t len, size_t *outlen);
/* Lower-case hex of len bytes into out (2*len + 1 bytes). */
void enc_hex(const void *data, size_t len, char *out);

/* True when s[0..len) is well-formed UTF-8 (no overlong forms, no surrogates, ≤ U+10FFFF). */
bool enc_utf8_valid(const char *s, size_t len);

/* Copies s[0..len) (any bytes) into out[0..size) as well-formed UTF-8, NUL-terminated, for text
 * bound for JSON — a log line, an error message: jansson refuses an ill-formed string, and the
 * whole line or body would be lost with it.  Each ill-formed sequence (its maximal subpart, as
 * Unicode §3.9 and Python's errors="replace" do) becomes U+FFFD.  When the result does not fit
 * in size bytes, it is cut after a whole character and ends with "…" (U+2026).  Set truncated
 * when s is itself cut short (vsnprintf ran out of room): the result then ends with "…" too, and
 * a character that s ends in the middle of is dropped rather than replaced.  size must be at
 * least 4 (the ellipsis and the NUL).  Returns strlen(out).  Pure, thread-safe. */
size_t enc_utf8_sanitize(char *out, size_t size, const char *s, size_t len, bool truncated);

#endif
