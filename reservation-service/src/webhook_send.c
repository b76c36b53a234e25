/* Delivering one webhook (webhook_send.h). */
#include "webhook_send.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include <curl/curl.h>
#include <jansson.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "deliver.h"
#include "encoding.h"
#include "httpparse.h"
#include "jsonx.h"
#include "repo_webhooks.h"
#include "urlcheck.h"

#define WEBHOOK_CONNECT_TIMEOUT_MS 5000
#define WEBHOOK_USER_AGENT "meeting-rooms-webhooks/1"

bool res_webhook_url_valid(const char *url, char *why, size_t whylen)
{
	return urlcheck_outbound(url, RES_WEBHOOK_URL_MAX, 0, NULL, 0, why, whylen);
}

/* The kinds of address, for res_webhook_address_refused. */
enum addr_class { ADDR_PUBLIC, ADDR_LOOPBACK, ADDR_PRIVATE, ADDR_RESERVED, ADDR_NEVER };

static enum addr_class class_v4(uint32_t a)
{
	uint8_t b0 = (uint8_t)(a >> 24), b1 = (uint8_t)(a >> 16), b2 = (uint8_t)(a >> 8);
	if (b0 == 0 || (b0 == 169 && b1 == 254) || b0 >= 224) /* also 240/4 and broadcast */
		return ADDR_NEVER;
	if (b0 == 127)
		return ADDR_LOOPBACK;
	if (b0 == 10 || (b0 == 172 && (b1 & 0xf0) == 16) || (b0 == 192 && b1 == 168) ||
	    (b0 == 100 && (b1 & 0xc0) == 64) ||  /* carrier-grade NAT */
	    (b0 == 192 && b1 == 0 && b2 == 0) || /* IETF protocol assignments */
	    (b0 == 198 && (b1 & 0xfe) == 18))    /* benchmarking */
		return ADDR_PRIVATE;
	if ((b0 == 192 && b1 == 0 && b2 == 2) || (b0 == 198 && b1 == 51 && b2 == 100) ||
	    (b0 == 203 && b1 == 0 && b2 == 113)) /* documentation */
		return ADDR_RESERVED;
	return ADDR_PUBLIC;
}

static uint32_t v4_at(const uint8_t *b)
{
	return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
}

/* IPv6, with the forms that carry an IPv4 address judged by that address: a NAT64 gateway,
 * a 6to4 relay or the kernel would connect to it. */
static enum addr_class class_v6(const uint8_t *b)
{
	static const uint8_t zero[16] = {0};
	static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
	static const uint8_t siit[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0, 0};
	static const uint8_t nat64[12] = {0, 0x64, 0xff, 0x9b, 0, 0, 0, 0, 0, 0, 0, 0};
	if (memcmp(b, zero, 15) == 0)
		return b[15] == 1   ? ADDR_LOOPBACK
		       : b[15] == 0 ? ADDR_NEVER
		                    : class_v4(v4_at(b + 12));
	if (memcmp(b, zero, 12) == 0 || /* IPv4-compatible ::/96 */
	    memcmp(b, mapped, 12) == 0 || memcmp(b, siit, 12) == 0 || memcmp(b, nat64, 12) == 0)
		return class_v4(v4_at(b + 12));
	if (b[0] == 0x20 && b[1] == 0x02) /* 6to4 2002::/16 */
		return class_v4(v4_at(b + 2));
	if (memcmp(b, nat64, 4) == 0 && b[4] == 0 && b[5] == 1) /* 64:ff9b:1::/48, local NAT64 */
		return ADDR_PRIVATE;
	if ((b[0] & 0xfe) == 0xfc || (b[0] == 0xfe && (b[1] & 0xc0) == 0xc0)) /* ULA, site-local */
		return ADDR_PRIVATE;
	if (b[0] == 0xff || (b[0] == 0xfe && (b[1] & 0xc0) == 0x80)) /* multicast, link-local */
		return ADDR_NEVER;
	if ((b[0] == 0x20 && b[1] == 0x01 && b[2] == 0 && b[3] == 0) ||       /* Teredo 2001::/32 */
	    (b[0] == 0x20 && b[1] == 0x01 && b[2] == 0x0d && b[3] == 0xb8) || /* 2001:db8::/32 */
	    (b[0] == 0x01 && memcmp(b + 1, zero, 7) == 0))                    /* discard 100::/64 */
		return ADDR_RESERVED;
	return ADDR_PUBLIC;
}

const char *res_webhook_address_refused(const struct sockaddr *sa, bool allow_private,
                                        bool allow_loopback)
{
	enum addr_class c;
	if (sa->sa_family == AF_INET)
		c = class_v4(
			ntohl(((const struct sockaddr_in *)(const void *)sa)->sin_addr.s_addr));
	else if (sa->sa_family == AF_INET6)
		c = class_v6(((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr.s6_addr);
	else
		return "is not an internet address";
	switch (c) {
	case ADDR_PUBLIC:
		return NULL;
	case ADDR_LOOPBACK:
		return allow_loopback ? NULL : "is a loopback address (WEBHOOK_ALLOW_LOOPBACK)";
	case ADDR_PRIVATE:
		return allow_private ? NULL : "is a private address (WEBHOOK_ALLOW_PRIVATE)";
	case ADDR_RESERVED:
		return "is reserved (documentation, discard or Teredo tunnelling)";
	case ADDR_NEVER:
	default:
		return "is unspecified, link-local, multicast or broadcast";
	}
}

bool res_webhook_signature(const char *secret, const char *timestamp, const char *body, size_t len,
                           char out[RES_WEBHOOK_SIGNATURE_LEN])
{
	EVP_MAC *mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
	EVP_MAC_CTX *ctx = mac ? EVP_MAC_CTX_new(mac) : NULL;
	unsigned char md[32];
	size_t mdlen = 0;
	char digest[] = "SHA256";
	OSSL_PARAM params[] = {
		OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
		OSSL_PARAM_construct_end(),
	};
	bool ok = ctx && EVP_MAC_init(ctx, (const unsigned char *)secret, strlen(secret), params) &&
	          EVP_MAC_update(ctx, (const unsigned char *)timestamp, strlen(timestamp)) &&
	          EVP_MAC_update(ctx, (const unsigned char *)".", 1) &&
	          EVP_MAC_update(ctx, (const unsigned char *)body, len) &&
	          EVP_MAC_final(ctx, md, &mdlen, sizeof md) && mdlen == sizeof md;
	if (ok) {
		memcpy(out, "sha256=", 7);
		enc_hex(md, sizeof md, out + 7);
	}
	EVP_MAC_CTX_free(ctx);
	EVP_MAC_free(mac);
	return ok;
}

/* ---- the sender ---- */

/* One delivery's state for libcurl's callbacks. */
struct send_ctx {
	const struct res_webhook_sender *cfg;
	const struct deliver_item *item;
	bool loopback_host;
	int opened;        /* addresses connected to (or tried) */
	char refused[160]; /* why an address was refused ("" = none was) */
};

/* libcurl is about to connect to address: the check against DNS rebinding, on the address
 * actually used. */
static curl_socket_t send_open_socket(void *arg, curlsocktype purpose, struct curl_sockaddr *a)
{
	struct send_ctx *c = arg;
	(void)purpose;
	const char *why = res_webhook_address_refused(&a->addr, c->cfg->allow_private,
	                                              c->cfg->allow_loopback);
	if (why) {
		char ip[INET6_ADDRSTRLEN] = "?";
		const void *raw =
			a->family == AF_INET6
				? (const void *)&(
					  (const struct sockaddr_in6 *)(const void *)&a->addr)
					  ->sin6_addr
				: (const void *)&(
					  (const struct sockaddr_in *)(const void *)&a->addr)
					  ->sin_addr;
		inet_ntop(a->family, raw, ip, sizeof ip);
		snprintf(c->refused, sizeof c->refused, "refused: %s %s", ip, why);
		return CURL_SOCKET_BAD;
	}
	c->opened++;
	return socket(a->family, a->socktype, a->protocol);
}

/* The answer's body is not used: it is read and dropped. */
static size_t send_discard(char *data, size_t size, size_t n, void *arg)
{
	(void)data;
	(void)arg;
	return size * n;
}

/* A stop of the queue ends a delivery in progress. */
static int send_progress(void *arg, curl_off_t a, curl_off_t b, curl_off_t c, curl_off_t d)
{
	const struct send_ctx *ctx = arg;
	(void)a, (void)b, (void)c, (void)d;
	return *ctx->item->stop ? 1 : 0;
}

static void fail(struct deliver_result *out, enum deliver_outcome outcome, int status,
                 const char *why)
{
	out->outcome = outcome;
	out->status = status;
	snprintf(out->error, sizeof out->error, "%s", why);
}

/* POSTs body to url with the signature headers; records the outcome in out. */
static void send_post(struct send_ctx *ctx, const char *url, const char *secret, const char *body,
                      struct deliver_result *out)
{
	const struct deliver_item *it = ctx->item;
	struct curl_slist *headers = NULL;
	CURL *h = NULL;
	char ts[24], line[RES_WEBHOOK_SIGNATURE_LEN + 64], sig[RES_WEBHOOK_SIGNATURE_LEN];
	char errbuf[CURL_ERROR_SIZE] = "";
	size_t len = strlen(body);
	json_t *event = jsonx_loadb(body, len, 0, NULL);
	const char *event_id = json_string_value(json_object_get(event, "event_id"));

	snprintf(ts, sizeof ts, "%lld", (long long)time(NULL));
	if (!res_webhook_signature(secret, ts, body, len, sig) || !(h = curl_easy_init())) {
		fail(out, DELIVER_TEMPORARY, 0, "out of memory");
		goto out;
	}
	const char *lines[][2] = {
		{"Content-Type", "application/json"},
		{"X-Webhook-Timestamp", ts},
		{"X-Signature", sig},
		{"X-Webhook-Id", it->target},
		{"X-Event-Id", event_id ? event_id : ""},
		{"Expect", ""}, /* no 100-continue round trip */
	};
	for (size_t i = 0; i < sizeof lines / sizeof lines[0]; i++) {
		snprintf(line, sizeof line, "%s: %s", lines[i][0], lines[i][1]);
		struct curl_slist *l = curl_slist_append(headers, line);
		if (!l) {
			fail(out, DELIVER_TEMPORARY, 0, "out of memory");
			goto out;
		}
		headers = l;
	}
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, ctx->loopback_host ? "http,https" : "https");
	curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(h, CURLOPT_PROXY, ""); /* the address check must see the receiver's */
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)ctx->cfg->timeout_ms);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS,
	                 (long)(ctx->cfg->timeout_ms < WEBHOOK_CONNECT_TIMEOUT_MS
	                                ? ctx->cfg->timeout_ms
	                                : WEBHOOK_CONNECT_TIMEOUT_MS));
	curl_easy_setopt(h, CURLOPT_USERAGENT, WEBHOOK_USER_AGENT);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
	curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, send_discard);
	curl_easy_setopt(h, CURLOPT_OPENSOCKETFUNCTION, send_open_socket);
	curl_easy_setopt(h, CURLOPT_OPENSOCKETDATA, ctx);
	curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
	curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, send_progress);
	curl_easy_setopt(h, CURLOPT_XFERINFODATA, ctx);
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
	CURLcode rc = curl_easy_perform(h);
	long code = 0;
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
	/* A refused address matters only when no other one could be tried: libcurl goes on to the
	 * next address, which may deliver (the outcome is judged by what happened). */
	if (rc != CURLE_OK && ctx->refused[0] && ctx->opened == 0) {
		fail(out, DELIVER_PERMANENT, 0, ctx->refused);
	} else if (rc == CURLE_UNSUPPORTED_PROTOCOL || rc == CURLE_URL_MALFORMAT) {
		fail(out, DELIVER_PERMANENT, 0, errbuf[0] ? errbuf : curl_easy_strerror(rc));
	} else if (rc != CURLE_OK) {
		fail(out, DELIVER_TEMPORARY, 0, errbuf[0] ? errbuf : curl_easy_strerror(rc));
	} else if (code >= 200 && code < 300) {
		out->outcome = DELIVER_SENT;
		out->status = (int)code;
		out->error[0] = '\0';
	} else {
		char why[48];
		snprintf(why, sizeof why, "HTTP %ld", code);
		fail(out, DELIVER_TEMPORARY, (int)code, why);
	}
out:
	curl_slist_free_all(headers);
	curl_easy_cleanup(h);
	json_decref(event);
}

void res_webhook_send(const struct deliver_item *item, void *arg, struct deliver_result *out)
{
	struct send_ctx ctx = {arg, item, false, 0, ""};
	char url[RES_WEBHOOK_URL_MAX + 1], secret[RES_WEBHOOK_SECRET_MAX * 4 + 1];
	char host[RES_WEBHOOK_URL_MAX + 1], why[128];
	bool found;
	enum db_status st = res_repo_webhook_target(item->session, item->target, &found, url,
	                                            sizeof url, secret, sizeof secret);
	if (st != DB_OK) {
		fail(out, DELIVER_TEMPORARY, 0, "reading the webhook failed");
		goto out;
	}
	if (!found) {
		fail(out, DELIVER_PERMANENT, 0, "the webhook was deleted");
		goto out;
	}
	if (!urlcheck_outbound(url, RES_WEBHOOK_URL_MAX, 0, host, sizeof host, why, sizeof why)) {
		char msg[160];
		snprintf(msg, sizeof msg, "url %s", why);
		fail(out, DELIVER_PERMANENT, 0, msg);
		goto out;
	}
	ctx.loopback_host = httpparse_host_loopback(host);
	send_post(&ctx, url, secret, item->payload, out);
out:
	/* The key is a secret: no copy of it is left on the stack. */
	OPENSSL_cleanse(secret, sizeof secret);
}
