#include "jwt.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/param_build.h>

#include "encoding.h"
#include "jsonx.h"

const char *jwt_status_str(enum jwt_status st)
{
	switch (st) {
	case JWT_OK:
		return "ok";
	case JWT_MALFORMED:
		return "malformed token";
	case JWT_TOO_LARGE:
		return "token too large";
	case JWT_BAD_ALG:
		return "unsupported token algorithm";
	case JWT_BAD_SIGNATURE:
		return "invalid token signature";
	case JWT_UNKNOWN_KID:
		return "unknown signing key";
	case JWT_BAD_KEY:
		return "unusable signing key (not RSA of 2048 bits or more with an odd exponent "
		       ">= 3)";
	case JWT_EXPIRED:
		return "token expired";
	case JWT_NOT_YET_VALID:
		return "token not yet valid";
	case JWT_BAD_ISSUER:
		return "wrong token issuer";
	case JWT_BAD_AUDIENCE:
		return "wrong token audience";
	case JWT_MISSING_CLAIM:
		return "token lacks a required claim";
	}
	return "invalid token";
}

/* The three parts of a compact JWS, pointing into the token (borrowed). */
struct jws_parts {
	const char *header;
	size_t header_len;
	const char *payload;
	size_t payload_len;
	const char *sig;
	size_t sig_len;
};

static enum jwt_status jws_split(const char *token, struct jws_parts *p)
{
	if (!token)
		return JWT_MALFORMED;
	size_t len = strnlen(token, JWT_MAX_LEN + 1);
	if (len > JWT_MAX_LEN)
		return JWT_TOO_LARGE;
	const char *d1 = memchr(token, '.', len);
	if (!d1)
		return JWT_MALFORMED;
	const char *d2 = memchr(d1 + 1, '.', len - (size_t)(d1 + 1 - token));
	if (!d2 || memchr(d2 + 1, '.', len - (size_t)(d2 + 1 - token)))
		return JWT_MALFORMED;
	p->header = token;
	p->header_len = (size_t)(d1 - token);
	p->payload = d1 + 1;
	p->payload_len = (size_t)(d2 - d1 - 1);
	p->sig = d2 + 1;
	p->sig_len = len - (size_t)(d2 + 1 - token);
	if (!p->header_len || !p->payload_len || !p->sig_len)
		return JWT_MALFORMED;
	return JWT_OK;
}

/* Decodes one base64url part as a JSON object (new reference) or NULL.  All three parts go
 * through enc_b64url_decode, which accepts only the canonical unpadded form (RFC 7515 §2), so a
 * token has exactly one spelling: the signature does not cover its own encoding, and with
 * padding or non-zero unused low bits accepted, "…sig=" would be a second valid token. */
static json_t *jws_json_part(const char *s, size_t len)
{
	size_t n = 0;
	unsigned char *raw = enc_b64url_decode(s, len, &n);
	if (!raw)
		return NULL;
	json_t *obj = jsonx_loadb((const char *)raw, n, JSON_REJECT_DUPLICATES, NULL);
	free(raw);
	if (obj && !json_is_object(obj)) {
		json_decref(obj);
		return NULL;
	}
	return obj;
}

/* Splits and decodes the header; checks alg equals want_alg.  *header is a new reference. */
static enum jwt_status jws_open(const char *token, const char *want_alg, struct jws_parts *p,
                                json_t **header)
{
	*header = NULL;
	enum jwt_status st = jws_split(token, p);
	if (st != JWT_OK)
		return st;
	json_t *h = jws_json_part(p->header, p->header_len);
	if (!h)
		return JWT_MALFORMED;
	const char *alg = json_string_value(json_object_get(h, "alg"));
	if (!alg || strcmp(alg, want_alg) != 0) {
		json_decref(h);
		return JWT_BAD_ALG;
	}
	*header = h;
	return JWT_OK;
}

char *jwt_sign_hs256(const json_t *claims, const unsigned char *key, size_t keylen)
{
	static const char header_json[] = "{\"alg\":\"HS256\",\"typ\":\"JWT\"}";
	char *payload_json = NULL, *header = NULL, *payload = NULL, *sig = NULL, *token = NULL;
	unsigned char mac[EVP_MAX_MD_SIZE];
	unsigned int maclen = 0;

	payload_json = json_dumps(claims, JSON_COMPACT);
	header = enc_b64url_encode(header_json, sizeof header_json - 1);
	if (!payload_json || !header)
		goto out;
	payload = enc_b64url_encode(payload_json, strlen(payload_json));
	if (!payload)
		goto out;
	size_t hl = strlen(header), pl = strlen(payload);
	token = malloc(hl + 1 + pl + 1 + 44);
	if (!token)
		goto out;
	memcpy(token, header, hl);
	token[hl] = '.';
	memcpy(token + hl + 1, payload, pl);
	if (!HMAC(EVP_sha256(), key, (int)keylen, (unsigned char *)token, hl + 1 + pl, mac,
	          &maclen)) {
		free(token);
		token = NULL;
		goto out;
	}
	sig = enc_b64url_encode(mac, maclen);
	if (!sig) {
		free(token);
		token = NULL;
		goto out;
	}
	token[hl + 1 + pl] = '.';
	memcpy(token + hl + 1 + pl + 1, sig, strlen(sig) + 1);
out:
	free(payload_json);
	free(header);
	free(payload);
	free(sig);
	return token;
}

enum jwt_status jwt_verify_hs256(const char *token, const unsigned char *key, size_t keylen,
                                 json_t **claims)
{
	struct jws_parts p;
	json_t *header = NULL;
	unsigned char *sig = NULL;
	unsigned char mac[EVP_MAX_MD_SIZE];
	unsigned int maclen = 0;
	size_t siglen = 0;

	*claims = NULL;
	enum jwt_status st = jws_open(token, "HS256", &p, &header);
	if (st != JWT_OK)
		goto out;
	st = JWT_BAD_SIGNATURE;
	sig = enc_b64url_decode(p.sig, p.sig_len, &siglen);
	if (!sig || siglen != 32)
		goto out;
	if (!HMAC(EVP_sha256(), key, (int)keylen, (const unsigned char *)token,
	          p.header_len + 1 + p.payload_len, mac, &maclen) ||
	    maclen != 32 || CRYPTO_memcmp(mac, sig, 32) != 0)
		goto out;
	*claims = jws_json_part(p.payload, p.payload_len);
	st = *claims ? JWT_OK : JWT_MALFORMED;
out:
	free(sig);
	json_decref(header);
	return st;
}

/* Builds an RSA public key from a JWK's base64url n and e into *key (new key).  Returns JWT_OK,
 * or JWT_BAD_KEY when n or e is missing or undecodable, the modulus is shorter than
 * JWT_RSA_MIN_BITS (or longer than JWT_RSA_MAX_BITS), or e is even or below 3 (what OpenSSL's
 * RSA public-key check refuses; EVP_PKEY_fromdata does not check it: with e = 1 any message
 * is its own signature).  n and e come from the provider's JWKS, fetched over TLS, not from the
 * token: their spelling changes nothing an attacker controls, so RFC 4648 padding is tolerated
 * there (enc_b64url_decode_lenient) in case a provider pads. */
static enum jwt_status jwk_rsa_key(const json_t *jwk, EVP_PKEY **key)
{
	const char *n64 = json_string_value(json_object_get(jwk, "n"));
	const char *e64 = json_string_value(json_object_get(jwk, "e"));
	unsigned char *n = NULL, *e = NULL;
	size_t nlen = 0, elen = 0;
	BIGNUM *bn_n = NULL, *bn_e = NULL;
	OSSL_PARAM_BLD *bld = NULL;
	OSSL_PARAM *params = NULL;
	EVP_PKEY_CTX *ctx = NULL;
	enum jwt_status st = JWT_BAD_KEY;

	*key = NULL;
	if (!n64 || !e64)
		goto out;
	n = enc_b64url_decode_lenient(n64, strlen(n64), &nlen);
	e = enc_b64url_decode_lenient(e64, strlen(e64), &elen);
	if (!n || !e || nlen == 0 || nlen > JWT_RSA_MAX_BITS / 8 || elen == 0 || elen > 8)
		goto out;
	bn_n = BN_bin2bn(n, (int)nlen, NULL);
	bn_e = BN_bin2bn(e, (int)elen, NULL);
	if (!bn_n || !bn_e || BN_num_bits(bn_n) < JWT_RSA_MIN_BITS || !BN_is_odd(bn_e) ||
	    BN_is_one(bn_e))
		goto out;
	bld = OSSL_PARAM_BLD_new();
	if (!bld || !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, bn_n) ||
	    !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, bn_e))
		goto out;
	params = OSSL_PARAM_BLD_to_param(bld);
	ctx = EVP_PKEY_CTX_new_from_name(NULL, "RSA", NULL);
	if (!params || !ctx || EVP_PKEY_fromdata_init(ctx) <= 0 ||
	    EVP_PKEY_fromdata(ctx, key, EVP_PKEY_PUBLIC_KEY, params) <= 0) {
		*key = NULL;
		goto out;
	}
	st = JWT_OK;
out:
	EVP_PKEY_CTX_free(ctx);
	OSSL_PARAM_free(params);
	OSSL_PARAM_BLD_free(bld);
	BN_free(bn_n);
	BN_free(bn_e);
	free(n);
	free(e);
	return st;
}

/* Finds the RSA signing key with the given kid in a JWKS (borrowed), or NULL. */
static const json_t *jwks_find(const json_t *jwks, const char *kid)
{
	size_t i;
	json_t *k;
	json_array_foreach(json_object_get(jwks, "keys"), i, k) {
		const char *kty = json_string_value(json_object_get(k, "kty"));
		const char *use = json_string_value(json_object_get(k, "use"));
		const char *kkid = json_string_value(json_object_get(k, "kid"));
		if (!kty || strcmp(kty, "RSA") != 0 || (use && strcmp(use, "sig") != 0))
			continue;
		if ((kid && kkid && strcmp(kid, kkid) == 0) || (!kid && !kkid))
			return k;
	}
	return NULL;
}

enum jwt_status jwt_verify_rs256(const char *token, const json_t *jwks, json_t **claims)
{
	struct jws_parts p;
	json_t *header = NULL;
	unsigned char *sig = NULL;
	size_t siglen = 0;
	EVP_PKEY *key = NULL;
	EVP_MD_CTX *md = NULL;

	*claims = NULL;
	enum jwt_status st = jws_open(token, "RS256", &p, &header);
	if (st != JWT_OK)
		goto out;
	const json_t *jwk = jwks_find(jwks, json_string_value(json_object_get(header, "kid")));
	if (!jwk) {
		st = JWT_UNKNOWN_KID;
		goto out;
	}
	st = jwk_rsa_key(jwk, &key);
	if (st != JWT_OK)
		goto out;
	st = JWT_BAD_SIGNATURE;
	sig = enc_b64url_decode(p.sig, p.sig_len, &siglen);
	md = EVP_MD_CTX_new();
	if (!sig || !md || EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, key) != 1 ||
	    EVP_DigestVerify(md, sig, siglen, (const unsigned char *)token,
	                     p.header_len + 1 + p.payload_len) != 1)
		goto out;
	*claims = jws_json_part(p.payload, p.payload_len);
	st = *claims ? JWT_OK : JWT_MALFORMED;
out:
	EVP_MD_CTX_free(md);
	EVP_PKEY_free(key);
	free(sig);
	json_decref(header);
	return st;
}

enum jwt_status jwt_check_claims(const json_t *claims, time_t now, long leeway, const char *issuer,
                                 const char *issuer2, const char *audience)
{
	json_t *exp = json_object_get(claims, "exp");
	json_t *iat = json_object_get(claims, "iat");
	json_t *nbf = json_object_get(claims, "nbf");

	if (!json_is_integer(exp))
		return JWT_MISSING_CLAIM;
	if ((long long)now - leeway >
	    (long long)json_integer_value(exp)) /* huge exp: no overflow */
		return JWT_EXPIRED;
	if ((iat && !json_is_integer(iat)) || (nbf && !json_is_integer(nbf)))
		return JWT_MALFORMED;
	if (iat && (long long)json_integer_value(iat) > (long long)now + leeway)
		return JWT_NOT_YET_VALID;
	if (nbf && (long long)json_integer_value(nbf) > (long long)now + leeway)
		return JWT_NOT_YET_VALID;
	if (issuer) {
		const char *iss = json_string_value(json_object_get(claims, "iss"));
		if (!iss || (strcmp(iss, issuer) != 0 && (!issuer2 || strcmp(iss, issuer2) != 0)))
			return JWT_BAD_ISSUER;
	}
	if (audience) {
		json_t *aud = json_object_get(claims, "aud");
		bool found = false;
		if (json_is_string(aud)) {
			found = strcmp(json_string_value(aud), audience) == 0;
		} else if (json_is_array(aud)) {
			size_t i;
			json_t *a;
			json_array_foreach(aud, i, a) {
				if (json_is_string(a) &&
				    strcmp(json_string_value(a), audience) == 0)
					found = true;
			}
		}
		if (!found)
			return JWT_BAD_AUDIENCE;
	}
	return JWT_OK;
}
