/* Hashes and sealed successors of user-service's secrets (see tokens.h). */
#include "tokens.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include "encoding.h"

#define NONCE_LEN 12
#define TAG_LEN 16
#define KEY_LEN 32

/* Keys of the successor boxes are HMAC(presented token, this label): a function of the token
 * that is not the SHA-256 stored as its lookup hash. */
static const char seal_label[] = "meeting-rooms refresh successor v1";

void user_token_hash(const char *token, char out[USER_TOKEN_HASH_LEN])
{
	rnd_token_hash(token, out);
}

bool user_token_hash_equal(const char *a, const char *b)
{
	return rnd_token_hash_equal(a, b);
}

static bool seal_key(const char *presented, unsigned char key[KEY_LEN])
{
	unsigned int len = 0;
	size_t plen = strlen(presented);
	if (plen > INT32_MAX)
		return false;
	return HMAC(EVP_sha256(), presented, (int)plen, (const unsigned char *)seal_label,
	            sizeof seal_label - 1, key, &len) != NULL &&
	       len == KEY_LEN;
}

bool user_token_seal(const char *presented, const char *successor, char out[USER_TOKEN_BOX_LEN])
{
	unsigned char key[KEY_LEN], box[NONCE_LEN + USER_TOKEN_SEAL_MAX + TAG_LEN];
	EVP_CIPHER_CTX *ctx = NULL;
	char *text = NULL;
	bool ok = false;
	int len = 0, fin = 0;
	size_t n = strlen(successor);

	if (n > USER_TOKEN_SEAL_MAX || !seal_key(presented, key) || RAND_bytes(box, NONCE_LEN) != 1)
		goto out;
	if (!(ctx = EVP_CIPHER_CTX_new()) ||
	    EVP_EncryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, key, box) != 1 ||
	    EVP_EncryptUpdate(ctx, box + NONCE_LEN, &len, (const unsigned char *)successor,
	                      (int)n) != 1 ||
	    EVP_EncryptFinal_ex(ctx, box + NONCE_LEN + len, &fin) != 1 ||
	    (size_t)(len + fin) != n ||
	    EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, TAG_LEN, box + NONCE_LEN + n) != 1)
		goto out;
	if (!(text = enc_b64url_encode(box, NONCE_LEN + n + TAG_LEN)) ||
	    strlen(text) >= USER_TOKEN_BOX_LEN)
		goto out;
	memcpy(out, text, strlen(text) + 1);
	ok = true;
out:
	OPENSSL_cleanse(key, sizeof key);
	EVP_CIPHER_CTX_free(ctx);
	free(text);
	return ok;
}

bool user_token_open(const char *presented, const char *box, char out[USER_TOKEN_SEAL_MAX + 1])
{
	unsigned char key[KEY_LEN], plain[USER_TOKEN_SEAL_MAX], *raw = NULL;
	EVP_CIPHER_CTX *ctx = NULL;
	size_t rawlen = 0, n = 0;
	bool ok = false;
	int len = 0, fin = 0;

	out[0] = '\0';
	if (!box || !(raw = enc_b64url_decode(box, strlen(box), &rawlen)) ||
	    rawlen < NONCE_LEN + TAG_LEN || rawlen > NONCE_LEN + USER_TOKEN_SEAL_MAX + TAG_LEN ||
	    !seal_key(presented, key))
		goto out;
	n = rawlen - NONCE_LEN - TAG_LEN;
	if (!(ctx = EVP_CIPHER_CTX_new()) ||
	    EVP_DecryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, key, raw) != 1 ||
	    EVP_DecryptUpdate(ctx, plain, &len, raw + NONCE_LEN, (int)n) != 1 ||
	    EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, TAG_LEN, raw + NONCE_LEN + n) != 1 ||
	    EVP_DecryptFinal_ex(ctx, plain + len, &fin) != 1 || (size_t)(len + fin) != n ||
	    memchr(plain, '\0', n))
		goto out;
	memcpy(out, plain, n);
	out[n] = '\0';
	ok = true;
out:
	OPENSSL_cleanse(key, sizeof key);
	OPENSSL_cleanse(plain, sizeof plain);
	EVP_CIPHER_CTX_free(ctx);
	free(raw);
	return ok;
}
