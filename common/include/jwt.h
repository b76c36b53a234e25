/* jwt: compact JWS tokens.  HS256 signing and verification for the suite's own access tokens
 * (only HS256 is accepted there; constant-time comparison) and RS256 verification against a
 * JWKS for OpenID Connect id_tokens.  Signature checks and claim checks are separate steps so
 * that each can be tested alone.  All functions are thread-safe. */
#ifndef JWT_H
#define JWT_H

#include <stddef.h>
#include <time.h>

#include <jansson.h>

/* Tokens longer than this are rejected before any decoding. */
#define JWT_MAX_LEN 8192
/* RS256 keys from a JWKS: moduli outside these sizes are refused (NIST SP 800-131A: RSA below
 * 2048 bits is disallowed for signatures), and so are public exponents that are even or below
 * 3 (OpenSSL's own public-key check: with e = 1 every "signature" is its own message). */
#define JWT_RSA_MIN_BITS 2048
#define JWT_RSA_MAX_BITS 8192

enum jwt_status {
	JWT_OK = 0,
	JWT_MALFORMED, /* not three canonical base64url parts (unpadded, RFC 7515 §2) with
	                       JSON objects for header and payload */
	JWT_TOO_LARGE, /* longer than JWT_MAX_LEN */
	JWT_BAD_ALG,   /* alg is not the one expected (e.g. "none", "RS256" for HS256) */
	JWT_BAD_SIGNATURE,
	JWT_UNKNOWN_KID, /* RS256: no key in the JWKS with the token's kid */
	JWT_BAD_KEY,     /* RS256: the kid's JWK is not an RSA public key of JWT_RSA_MIN_BITS to
	                       JWT_RSA_MAX_BITS bits with an odd exponent of at least 3 */
	JWT_EXPIRED,
	JWT_NOT_YET_VALID, /* iat/nbf in the future beyond the leeway */
	JWT_BAD_ISSUER,
	JWT_BAD_AUDIENCE,
	JWT_MISSING_CLAIM, /* exp absent or not an integer */
};

/* Short English description of a status, e.g. "token expired". Static string. */
const char *jwt_status_str(enum jwt_status st);

/* Signs claims (borrowed) with HS256.  Returns a heap string (caller frees) or NULL. */
char *jwt_sign_hs256(const json_t *claims, const unsigned char *key, size_t keylen);

/* Verifies the structure, that alg is exactly HS256, and the signature.  On JWT_OK *claims
 * receives a new reference to the payload object (caller decrefs); otherwise it is NULL. */
enum jwt_status jwt_verify_hs256(const char *token, const unsigned char *key, size_t keylen,
                                 json_t **claims);

/* Verifies an RS256 token against jwks ({"keys":[…]}, borrowed): the key is chosen by the
 * header's kid.  JWT_UNKNOWN_KID tells the caller to refresh its JWKS; a key shorter than
 * JWT_RSA_MIN_BITS or with an even exponent or one below 3 gives JWT_BAD_KEY.  On JWT_OK
 * *claims receives a new reference to the payload. */
enum jwt_status jwt_verify_rs256(const char *token, const json_t *jwks, json_t **claims);

/* Checks exp (required), iat and nbf (optional) against now with leeway seconds, iss when
 * issuer is non-NULL (iss must equal it, or equal issuer2 when that is non-NULL) and aud when
 * audience is non-NULL (a string equal to it, or an array containing it). */
enum jwt_status jwt_check_claims(const json_t *claims, time_t now, long leeway, const char *issuer,
                                 const char *issuer2, const char *audience);

#endif
