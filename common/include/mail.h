/* mail: writing an e-mail message (RFC 5322 with MIME, RFC 2045-2047) and sending it over SMTP
 * with libcurl.
 *
 * The message: Date, From, To, Cc, Reply-To, Subject, Message-ID, MIME-Version and
 * Auto-Submitted headers, CRLF line ends, a multipart/alternative body (text/plain and text/html,
 * UTF-8, quoted-printable) and, for an invitation, a multipart/mixed wrapper that adds the
 * iCalendar object (RFC 5546 iTIP as RFC 6047 iMIP carries it), text/calendar with the method
 * parameter and base64, twice: as the last alternative and as the attachment invite.ics.  Header
 * injection is impossible by construction: every header value is checked (a CR or LF in an
 * address, a display name or the subject refuses the message; addresses must be valid
 * mailboxes, mail_address_valid) and written by this module in encoded or quoted form; the
 * bodies are quoted-printable or base64, so no body line can look like a header or a MIME
 * boundary.  (Values are C strings: a NUL ends one and cannot carry anything past itself; JSON
 * input with \u0000 is refused earlier, by jsonx_check.)
 *
 * Sending: smtp:// with STARTTLS required (CURLUSESSL_ALL) unless the host is loopback, or
 * smtps:// (TLS from the start); certificates verified; optional user name and password;
 * connect and total timeouts; the outcome says whether to try again (mail_status).
 *
 * Pure functions and one fresh curl handle per mail_send: thread-safe, no global state (the
 * caller has called curl_global_init, as svc does). */
#ifndef MAIL_H
#define MAIL_H

#include <stdbool.h>
#include <stddef.h>

#include "jsonx.h"

/* RFC 5321 4.5.3.1: local part 64 octets, domain 255, a path (the address in <>) 256, so an
 * address at most 254; a DNS label 63 (RFC 1035). */
#define MAIL_LOCAL_MAX 64
#define MAIL_DOMAIN_MAX 255
#define MAIL_ADDRESS_MAX 254
#define MAIL_LABEL_MAX 63
#define MAIL_MESSAGE_ID_MAX 250
#define MAIL_DATE_LEN 40
#define MAIL_TIMEOUT_DEFAULT 30000 /* ms */

/* True when s is a mailbox this module writes and sends to: dot-string "@" domain (RFC 5321
 * 4.1.2), i.e. a local part of atext characters (letters, digits, !#$%&'*+-/=?^_`{|}~) and
 * single dots not at either end, at most MAIL_LOCAL_MAX octets; a domain of dot-separated labels
 * (letters, digits, hyphens, not starting or ending with a hyphen, at most MAIL_LABEL_MAX each),
 * at most MAIL_DOMAIN_MAX; the whole at most MAIL_ADDRESS_MAX.  Refused too, though RFC 5321
 * has them: quoted local parts ("a b"@x), address literals (a@[192.0.2.1]) and non-ASCII
 * addresses (RFC 6531, which needs SMTPUTF8) — no spaces, controls, quotes or <> ever pass.
 * NULL is not valid.  Pure. */
bool mail_address_valid(const char *s);

/* Removes from addrs[0..n) every address equal, ignoring ASCII case, to an earlier one, keeping
 * the first spelling and the order; returns the new count.  The pointers are borrowed and
 * moved within the array, nothing is freed.  Quadratic: for lists of a few hundred at most. */
size_t mail_address_dedupe(const char **addrs, size_t n);

/* A mailbox with an optional display name (UTF-8; NULL or "" for none).  Borrowed. */
struct mail_addr {
	const char *name;
	const char *addr;
};

/* The iCalendar attachment's iTIP method (RFC 5546): the Content-Type's method parameter, which
 * must agree with the object's METHOD property. */
enum mail_ics_method { MAIL_ICS_NONE, MAIL_ICS_REQUEST, MAIL_ICS_CANCEL };

/* A message to build; every string borrowed, UTF-8. */
struct mail_message {
	struct mail_addr from;
	const struct mail_addr *reply_to; /* NULL: none */
	const struct mail_addr *to;
	size_t n_to;
	const struct mail_addr *cc;
	size_t n_cc;
	const char *subject;
	/* "left@right" without the angle brackets (both sides atext and dots), chosen by the caller
	 * and stable across sends of the same message, so a message sent twice is recognised as one;
	 * at most MAIL_MESSAGE_ID_MAX octets. */
	const char *message_id;
	long long date; /* seconds since the epoch, written in UTC */
	/* The plain text (line breaks LF, CRLF or CR; written as CRLF). */
	const char *text;
	/* The HTML part: trusted markup written by the caller, every value from outside inserted
	 * through mail_html_escape; NULL: made from text (escaped, paragraphs and line breaks). */
	const char *html;
	/* The iCalendar object (ical.h's text, CRLF line ends) and its method; NULL / MAIL_ICS_NONE:
	 * no attachment. */
	const char *ics;
	enum mail_ics_method ics_method;
};

/* Writes the message into out (starts zeroed; out->data owned by the caller,
 * jsonx_text_free).  Returns true when written; false with the name of the field at fault in
 * *why ("from", "to", "cc", "reply_to", "subject", "message_id", "text", "html", "ics",
 * "ics_method", "memory") when a value is refused: an address that is not mail_address_valid,
 * a name or subject holding CR or LF or not UTF-8, no To recipient, a text or HTML that is
 * not UTF-8, an ics whose METHOD line differs from ics_method.  out's content is then not to be
 * used.  Other control characters in names and the subject are written encoded (RFC 2047),
 * never raw.  Pure, thread-safe. */
bool mail_build(const struct mail_message *m, struct jsonx_text *out, const char **why);

/* Appends s with the five HTML special characters as references (& < > " '), for values
 * inserted into the html of a mail_message. */
void mail_html_escape(struct jsonx_text *out, const char *s);

/* The RFC 5322 date-time of secs in UTC: "Mon, 30 Nov 2026 15:15:00 +0000" (English names
 * whatever the locale). */
void mail_date(long long secs, char out[MAIL_DATE_LEN]);

struct mail_result;

/* How to reach the SMTP server; strings borrowed. */
struct mail_smtp {
	const char *url;      /* smtp://host[:port][/ehlo-name] or smtps://… */
	const char *user;     /* NULL or "": no AUTH */
	const char *password; /* with user */
	const char *from;     /* the envelope sender (MAIL FROM), a valid mailbox */
	long timeout_ms;      /* the whole transaction, connecting at most 10 s of it; 0:
	                         MAIL_TIMEOUT_DEFAULT */
	/* Told the result of every send that was attempted (not of one refused as MAIL_INVALID),
	 * on the sending thread, before mail_send returns: for a service's health and metrics
	 * (e.g. the relay refusing us).  NULL: nobody.  arg is observe_arg. */
	void (*observe)(const struct mail_result *res, void *arg);
	void *observe_arg;
};

/* True when url is smtp:// or smtps:// with a host (and nothing but an optional EHLO name as
 * its path; no query, fragment or credentials in it).  *loopback (may be NULL) receives whether
 * the host is 127.0.0.0/8, ::1 or localhost, where smtp:// may go without STARTTLS. */
bool mail_smtp_url_valid(const char *url, bool *loopback);

enum mail_status {
	MAIL_SENT,      /* the server accepted the message (250 after DATA) */
	MAIL_TEMPORARY, /* try again later: a 4xx reply, no connection, a timeout, a TLS failure, or
	                   the server refusing us rather than the recipient (relay, below) */
	MAIL_PERMANENT, /* do not retry: a 5xx reply to this recipient or to this message */
	MAIL_INVALID,   /* refused before any network: bad URL, sender or recipient address */
};

/* How far an SMTP transaction got: the last command written (RFC 5321 4.1.1), or the
 * connection and greeting before any. */
enum mail_step {
	MAIL_STEP_CONNECT,   /* connecting, TLS of smtps://, the server's greeting */
	MAIL_STEP_HELLO,     /* EHLO (or HELO) */
	MAIL_STEP_STARTTLS,  /* STARTTLS and the TLS handshake after it */
	MAIL_STEP_AUTH,      /* AUTH and its exchange */
	MAIL_STEP_SENDER,    /* MAIL FROM */
	MAIL_STEP_RECIPIENT, /* RCPT TO */
	MAIL_STEP_DATA,      /* DATA, the message and its end */
};

/* The step's name for logs and metric labels: "connect", "hello", "starttls", "auth",
 * "sender", "recipient", "data" (a static string). */
const char *mail_step_name(enum mail_step step);

/* How a send that failed counts.  step: how far it got; smtp_code: the server's last reply (0:
 * none); reply: the text of the server's last negative reply ("554 5.7.1 Relay access denied";
 * NULL or "" when none); client_refused: libcurl gave up on its own before the message over something the
 * configuration decides (the login: no mechanism in common or the credentials refused; TLS:
 * STARTTLS not offered, a certificate not trusted).
 * *relay (may be NULL) receives whether the fault is on our side of the conversation — the
 * server refusing this client, its login or its sender address (a 5xx before RCPT TO, or 530
 * "authentication required" anywhere), its relaying (a 5xx to RCPT TO that
 * mail_reply_refuses_relay says refuses relaying — a policy refusal that only concerns this
 * recipient, such as "554 5.7.1 <x>: Recipient address rejected: Access denied", is the
 * recipient's), or client_refused — which an operator fixes in the
 * configuration (SMTP_URL, SMTP_USER/SMTP_PASSWORD, SMTP_FROM) or at the relay: such a failure
 * is MAIL_TEMPORARY, so that the messages wait for the fix instead of failing for good.  Else a
 * 5xx reply (to RCPT TO, DATA or the message: about this recipient or this message) is
 * MAIL_PERMANENT, and anything else (a 4xx, no reply: no connection, a timeout) MAIL_TEMPORARY
 * (RFC 5321 4.2.1).  Pure. */
enum mail_status mail_failure_status(enum mail_step step, long smtp_code, const char *reply,
                                     bool client_refused, bool *relay);
/* Whether a negative reply's text refuses relaying for this client (review 14e L3): the enhanced
 * status code 5.7.54 ("unable to relay") or 5.7.64 (tenant attribution), or 4.7.54/4.7.64,
 * right after the reply code (RFC 3463, 3.2 and the IANA registry), or the words "relay access
 * denied", "relaying denied", "unable to relay", "relay not permitted" or "relaying not
 * allowed" (any case, so 5.7.1 with them).  Any other 5.7.x (5.7.1 "Recipient address
 * rejected: Access denied", Exchange's 5.7.133 for a group) is a policy refusal of this
 * recipient: false.  NULL is false.  Pure. */
bool mail_reply_refuses_relay(const char *reply);

struct mail_result {
	enum mail_status status;
	long smtp_code;      /* the server's last reply code (250, 451, 550…), 0 when none */
	enum mail_step step; /* how far the transaction got */
	bool relay;          /* a failure on our side (mail_failure_status), not the recipient's */
	char detail[256];    /* why, for the log (curl's message; never the message or password) */
};

/* Sends msg[0..len) (mail_build's text) to the envelope recipients rcpt[0..n) (valid
 * mailboxes, n >= 1) through cfg, within cfg->timeout_ms.  The server refusing any one
 * recipient fails the whole transaction, nothing is delivered (curl's default): send one message
 * per recipient for an outcome per recipient.  Returns the status, also in *res. */
enum mail_status mail_send(const struct mail_smtp *cfg, const char *const *rcpt, size_t n,
                           const char *msg, size_t len, struct mail_result *res);

#endif
