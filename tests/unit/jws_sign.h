/* jws_sign: compact JWS tokens signed with RS256 under OpenSSL keys, and the base64url parts of a
 * JWK, for the unit tests of jwt.c and oidc.c (tests/unit/test_jwt.c, test_oidc.c) - the
 * provider's side of an id_token.  Failures end the running cmocka test. */
#ifndef JWS_SIGN_H
#define JWS_SIGN_H

#include <stddef.h>

#include <openssl/types.h>

/* base64url of data[0..len), unpadded; heap string (caller frees). */
char *jws_b64(const void *data, size_t len);

/* One big-number parameter of key (OSSL_PKEY_PARAM_RSA_N, OSSL_PKEY_PARAM_RSA_E) as a JWK writes
 * it: base64url of its big-endian bytes; heap string. */
char *jws_key_param_b64(const EVP_PKEY *key, const char *param);

/* b64(header).b64(payload).b64(signature), the signature RS256 (RSASSA-PKCS1-v1_5 with SHA-256)
 * under key over the first two parts; heap string.  header and payload are used as given. */
char *jws_sign_rs256(EVP_PKEY *key, const char *header, const char *payload);

#endif
