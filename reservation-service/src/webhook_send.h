/* webhook_send: delivering one webhook (docs/api.md#webhooks): the rules for a webhook's URL,
 * the signature, the addresses a delivery may connect to, and the sender that the delivery
 * queue (deliver.h, kind RES_WEBHOOK_KIND) calls with libcurl.  Only the sender touches the
 * database (through repo_webhooks.h, on the queue's session); the rest is pure.  Thread-safe. */
#ifndef RES_WEBHOOK_SEND_H
#define RES_WEBHOOK_SEND_H

#include <stdbool.h>
#include <stddef.h>

struct sockaddr;
struct deliver_item;
struct deliver_result;

#define RES_WEBHOOK_URL_MAX 2048
#define RES_WEBHOOK_SECRET_MAX 256

/* How deliveries are made (WEBHOOK_* configuration).  Read-only once the queue started. */
struct res_webhook_sender {
	long long timeout_ms; /* a whole delivery: connect, send, answer */
	bool allow_private;   /* private addresses may be connected to */
	bool allow_loopback;  /* loopback addresses may be connected to (the tests, make run) */
};

/* A webhook's URL as registered: https, or http when the host is loopback; a host; no user
 * name or password, no fragment; at most RES_WEBHOOK_URL_MAX bytes.  false and why (words
 * after "url ") otherwise. */
bool res_webhook_url_valid(const char *url, char *why, size_t whylen);

/* Why a delivery may not connect to address sa (the address libcurl is about to connect to,
 * after every DNS answer: so a name that resolves to another address at send time than at
 * registration is still checked), or NULL when it may.  Never: unspecified (0.0.0.0/8, ::),
 * link-local (169.254/16, fe80::/10: cloud metadata lives there), multicast, broadcast and
 * 240/4; reserved (documentation 192.0.2/24, 198.51.100/24, 203.0.113/24, 2001:db8::/32,
 * discard 100::/64, Teredo 2001::/32).  Only with allow_private: private (10/8, 172.16/12,
 * 192.168/16, 100.64/10, 192.0.0/24, 198.18/15, fc00::/7, fec0::/10, 64:ff9b:1::/48).  Only
 * with allow_loopback: loopback (127/8, ::1), whatever the URL's host.  IPv6 forms that carry
 * an IPv4 address are judged as that address: IPv4-mapped ::ffff:0:0/96, SIIT ::ffff:0:0:0/96,
 * IPv4-compatible ::/96, NAT64 64:ff9b::/96, 6to4 2002::/16.  A static string. */
const char *res_webhook_address_refused(const struct sockaddr *sa, bool allow_private,
                                        bool allow_loopback);

/* "sha256=" and the lower-case hex HMAC-SHA256 under secret of timestamp "." body[0..len).
 * out receives RES_WEBHOOK_SIGNATURE_LEN bytes (NUL included).  false when OpenSSL fails. */
#define RES_WEBHOOK_SIGNATURE_LEN (7 + 64 + 1)
bool res_webhook_signature(const char *secret, const char *timestamp, const char *body, size_t len,
                           char out[RES_WEBHOOK_SIGNATURE_LEN]);

/* The delivery queue's send callback (deliver_send_fn) for webhooks; arg is a struct
 * res_webhook_sender.  POSTs the event (the row's payload) to the webhook's URL with the
 * signature headers; 2xx is sent, any other answer, a timeout or a connection failure is
 * temporary, a refused address or URL (or a webhook deleted since) is permanent. */
void res_webhook_send(const struct deliver_item *item, void *arg, struct deliver_result *out);

#endif
