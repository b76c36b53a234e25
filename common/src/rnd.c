#include "rnd.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include "encoding.h"

bool rnd_uuid(char out[RND_UUID_LEN])
{
	unsigned char b[16];
	if (RAND_bytes(b, sizeof b) != 1)
		return false;
	b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);
	b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
	char hex[33];
	enc_hex(b, sizeof b, hex);
	snprintf(out, RND_UUID_LEN, "%.8s-%.4s-%.4s-%.4s-%.12s", hex, hex + 8, hex + 12, hex + 16,
	         hex + 20);
	return true;
}

bool rnd_bytes(void *out, size_t n)
{
	return n <= INT_MAX && RAND_bytes(out, (int)n) == 1;
}

char *rnd_token(size_t nbytes)
{
	unsigned char b[64];
	if (nbytes == 0 || nbytes > sizeof b || RAND_bytes(b, (int)nbytes) != 1)
		return NULL;
	return enc_b64url_encode(b, nbytes);
}

char *rnd_name32(size_t nchars)
{
	static const char alphabet[] = "abcdefghijklmnopqrstuvwxyz234567";
	unsigned char b[128];
	char *out;
	/* One random byte per character, of which the low 5 bits are used: 256 is a multiple of 32,
	 * so every character is uniform. */
	if (nchars == 0 || nchars > sizeof b || RAND_bytes(b, (int)nchars) != 1 ||
	    !(out = malloc(nchars + 1)))
		return NULL;
	for (size_t i = 0; i < nchars; i++)
		out[i] = alphabet[b[i] & 31];
	out[nchars] = '\0';
	OPENSSL_cleanse(b, nchars);
	return out;
}

void rnd_token_hash(const char *token, char out[RND_TOKEN_HASH_LEN])
{
	unsigned char d[SHA256_DIGEST_LENGTH];
	SHA256((const unsigned char *)token, strlen(token), d);
	enc_hex(d, sizeof d, out);
}

bool rnd_token_hash_equal(const char *a, const char *b)
{
	if (!a || !b)
		return false;
	size_t n = strlen(a);
	/* The length of a hash is public (always 64); only the content is compared in constant
	 * time. */
	return n == strlen(b) && CRYPTO_memcmp(a, b, n) == 0;
}
