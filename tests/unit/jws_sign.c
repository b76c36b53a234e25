/* RS256 signing for the JWT and OIDC unit tests (see jws_sign.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/evp.h>

#include "encoding.h"
#include "jws_sign.h"

char *jws_b64(const void *data, size_t len)
{
	char *s = enc_b64url_encode(data, len);
	assert_non_null(s);
	return s;
}

char *jws_key_param_b64(const EVP_PKEY *key, const char *param)
{
	BIGNUM *bn = NULL;
	assert_int_equal(EVP_PKEY_get_bn_param(key, param, &bn), 1);
	unsigned char buf[1024];
	assert_true(BN_num_bytes(bn) <= (int)sizeof buf);
	int n = BN_bn2bin(bn, buf);
	BN_free(bn);
	assert_true(n > 0);
	return jws_b64(buf, (size_t)n);
}

char *jws_sign_rs256(EVP_PKEY *key, const char *header, const char *payload)
{
	char *h = jws_b64(header, strlen(header)), *p = jws_b64(payload, strlen(payload));
	size_t cap = strlen(h) + strlen(p) + 2048;
	char *t = malloc(cap);
	assert_non_null(t);
	snprintf(t, cap, "%s.%s", h, p);
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	unsigned char sig[1024];
	size_t siglen = sizeof sig;
	assert_non_null(md);
	assert_int_equal(EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, key), 1);
	assert_int_equal(EVP_DigestSign(md, sig, &siglen, (unsigned char *)t, strlen(t)), 1);
	EVP_MD_CTX_free(md);
	char *s = jws_b64(sig, siglen);
	strcat(t, ".");
	strcat(t, s);
	free(s);
	free(h);
	free(p);
	return t;
}
