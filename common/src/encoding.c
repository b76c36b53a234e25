#include "encoding.h"

#include <assert.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static const char b64url_alphabet[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

char *enc_b64url_encode(const void *data, size_t len)
{
	const unsigned char *in = data;
	char *out = malloc(len / 3 * 4 + 5), *p = out;
	if (!out)
		return NULL;
	size_t i = 0;
	for (; i + 2 < len; i += 3) {
		uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
		*p++ = b64url_alphabet[v >> 18 & 63];
		*p++ = b64url_alphabet[v >> 12 & 63];
		*p++ = b64url_alphabet[v >> 6 & 63];
		*p++ = b64url_alphabet[v & 63];
	}
	if (len - i == 1) {
		uint32_t v = (uint32_t)in[i] << 16;
		*p++ = b64url_alphabet[v >> 18 & 63];
		*p++ = b64url_alphabet[v >> 12 & 63];
	} else if (len - i == 2) {
		uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8;
		*p++ = b64url_alphabet[v >> 18 & 63];
		*p++ = b64url_alphabet[v >> 12 & 63];
		*p++ = b64url_alphabet[v >> 6 & 63];
	}
	*p = '\0';
	return out;
}

static int b64url_value(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '-')
		return 62;
	if (c == '_')
		return 63;
	return -1;
}

unsigned char *enc_b64url_decode(const char *s, size_t len, size_t *outlen)
{
	/* A length of 4k+1 leaves 6 bits: not even one byte. '=' is not in the alphabet, so padding
	 * fails in the loop below like any other foreign character. */
	if (len % 4 == 1)
		return NULL;
	unsigned char *out = malloc(len / 4 * 3 + 3), *p = out;
	if (!out)
		return NULL;
	uint32_t acc = 0;
	int bits = 0;
	for (size_t i = 0; i < len; i++) {
		int v = b64url_value((unsigned char)s[i]);
		if (v < 0) {
			free(out);
			return NULL;
		}
		acc = acc << 6 | (uint32_t)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			*p++ = (unsigned char)(acc >> bits & 0xff);
		}
	}
	/* Leftover bits must be zero, or the encoding is not canonical. */
	if (bits > 0 && (acc & ((1u << bits) - 1)) != 0) {
		free(out);
		return NULL;
	}
	*outlen = (size_t)(p - out);
	*p = '\0';
	return out;
}

unsigned char *enc_b64url_decode_lenient(const char *s, size_t len, size_t *outlen)
{
	/* "xx==" and "xxx=" are the only padded forms: padding completes the last group of four. */
	size_t pad = 0;
	while (pad < 2 && len - pad > 0 && s[len - pad - 1] == '=')
		pad++;
	if (pad > 0 && len % 4 != 0)
		return NULL;
	return enc_b64url_decode(s, len - pad, outlen);
}

void enc_hex(const void *data, size_t len, char *out)
{
	static const char digits[] = "0123456789abcdef";
	const unsigned char *in = data;
	for (size_t i = 0; i < len; i++) {
		out[2 * i] = digits[in[i] >> 4];
		out[2 * i + 1] = digits[in[i] & 15];
	}
	out[2 * len] = '\0';
}

/* What utf8_next found at the start of its input. */
enum utf8_seq {
	UTF8_CHAR,  /* a well-formed character */
	UTF8_BAD,   /* an ill-formed sequence */
	UTF8_SHORT, /* the start of a character that the input ends in the middle of */
};

/* Classifies the sequence at p (p < end) by Unicode's table of well-formed byte sequences
 * (Unicode §3.9, table 3-7: no overlong forms, no surrogates, nothing above U+10FFFF) and stores
 * in *n how many bytes it takes: the character, or the maximal subpart of an ill-formed
 * sequence (at least 1 byte), which is what one U+FFFD replaces. */
static enum utf8_seq utf8_next(const unsigned char *p, const unsigned char *end, size_t *n)
{
	unsigned char c = p[0], lo = 0x80, hi = 0xbf;
	size_t need;
	*n = 1;
	if (c < 0x80)
		return UTF8_CHAR;
	if (c >= 0xc2 && c <= 0xdf) {
		need = 1;
	} else if (c >= 0xe0 && c <= 0xef) {
		need = 2;
		if (c == 0xe0)
			lo = 0xa0; /* overlong below U+0800 */
		else if (c == 0xed)
			hi = 0x9f; /* surrogates */
	} else if (c >= 0xf0 && c <= 0xf4) {
		need = 3;
		if (c == 0xf0)
			lo = 0x90; /* overlong below U+10000 */
		else if (c == 0xf4)
			hi = 0x8f; /* above U+10FFFF */
	} else {
		return UTF8_BAD;
	}
	for (size_t i = 1; i <= need; i++) {
		if (p + i == end) {
			*n = i;
			return UTF8_SHORT;
		}
		if (p[i] < lo || p[i] > hi) {
			*n = i;
			return UTF8_BAD;
		}
		lo = 0x80;
		hi = 0xbf;
	}
	*n = need + 1;
	return UTF8_CHAR;
}

bool enc_utf8_valid(const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s, *end = p + len;
	size_t n;
	for (; p < end; p += n)
		if (utf8_next(p, end, &n) != UTF8_CHAR)
			return false;
	return true;
}

size_t enc_utf8_sanitize(char *out, size_t size, const char *s, size_t len, bool truncated)
{
	static const char replacement[] = "\xef\xbf\xbd", ellipsis[] = "\xe2\x80\xa6";
	const unsigned char *p = (const unsigned char *)s, *end = p + len;
	size_t used = 0, keep = 0, n;
	assert(size >= sizeof ellipsis);
	/* keep: the longest output so far, ending after a whole character, that leaves room for
	 * the ellipsis and the NUL; where the text is cut, it is cut there. */
	for (; p < end; p += n) {
		enum utf8_seq k = utf8_next(p, end, &n);
		if (k == UTF8_SHORT && truncated)
			break; /* the producer cut this character: drop its start */
		const char *piece = k == UTF8_CHAR ? (const char *)p : replacement;
		size_t plen = k == UTF8_CHAR ? n : sizeof replacement - 1;
		if (used + plen >= size) {
			truncated = true;
			break;
		}
		memcpy(out + used, piece, plen);
		used += plen;
		if (used + sizeof ellipsis <= size)
			keep = used;
	}
	if (truncated) {
		memcpy(out + keep, ellipsis, sizeof ellipsis - 1);
		used = keep + sizeof ellipsis - 1;
	}
	out[used] = '\0';
	return used;
}
