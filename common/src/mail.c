#include "mail.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <ctype.h>
#include <strings.h>
#include <time.h>

#include <curl/curl.h>
#include <openssl/evp.h>

#include "encoding.h"
#include "httpparse.h"

/* ---- addresses ---- */

/* RFC 5322 3.2.3 atext: what a dot-atom (a local part, a Message-ID side) is made of. */
static bool mail_atext(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       (c != '\0' && strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL);
}

/* True when s[0..n) is a dot-atom-text: atext runs joined by single dots. */
static bool mail_dot_atom(const char *s, size_t n)
{
	if (n == 0 || s[0] == '.' || s[n - 1] == '.')
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '.' ? s[i + 1] == '.' : !mail_atext(c))
			return false;
	}
	return true;
}

static bool mail_let_dig(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

/* RFC 5321 4.1.2 Domain: sub-domains (Let-dig [Ldh-str]) joined by dots. */
static bool mail_domain(const char *s, size_t n)
{
	if (n == 0 || n > MAIL_DOMAIN_MAX)
		return false;
	size_t label = 0;
	for (size_t i = 0; i <= n; i++) {
		if (i == n || s[i] == '.') {
			if (label == 0 || label > MAIL_LABEL_MAX || s[i - 1] == '-')
				return false;
			label = 0;
			continue;
		}
		unsigned char c = (unsigned char)s[i];
		if (!(mail_let_dig(c) || (c == '-' && label > 0)))
			return false;
		label++;
	}
	return true;
}

bool mail_address_valid(const char *s)
{
	if (!s)
		return false;
	size_t n = strnlen(s, MAIL_ADDRESS_MAX + 1);
	const char *at = memchr(s, '@', n);
	if (n > MAIL_ADDRESS_MAX || !at)
		return false;
	size_t local = (size_t)(at - s);
	return local <= MAIL_LOCAL_MAX && mail_dot_atom(s, local) &&
	       mail_domain(at + 1, n - local - 1);
}

size_t mail_address_dedupe(const char **addrs, size_t n)
{
	size_t kept = 0;
	for (size_t i = 0; i < n; i++) {
		bool seen = false;
		for (size_t j = 0; j < kept && !seen; j++)
			seen = strcasecmp(addrs[j], addrs[i]) == 0;
		if (!seen)
			addrs[kept++] = addrs[i];
	}
	return kept;
}

/* ---- header fields ---- */

/* RFC 2047 2: a line holding an encoded-word is at most 76 characters; the other header lines
 * keep to it too (RFC 5322 2.1.1 asks for 78). */
#define MAIL_HEADER_LINE 76
/* Octets of UTF-8 per encoded-word: 36 -> 48 base64 characters -> a 60-character word, which
 * fits after the longest field name written here ("Reply-To: ") with room to spare. */
#define MAIL_EW_OCTETS 36

/* A header field written token by token: each token is preceded by a space, which becomes a
 * fold (CRLF + that space) when the token would make the line longer than MAIL_HEADER_LINE. */
struct mail_header {
	struct jsonx_text *t;
	size_t col;
	bool first; /* no token on this field yet */
};

static void mail_header_start(struct mail_header *h, const char *name)
{
	jsonx_text_raw(h->t, name, strlen(name));
	jsonx_text_lit(h->t, ":");
	h->col = strlen(name) + 1;
	h->first = true;
}

static void mail_header_token(struct mail_header *h, const char *s, size_t n)
{
	if (!h->first && h->col + 1 + n > MAIL_HEADER_LINE) {
		jsonx_text_lit(h->t, "\r\n ");
		h->col = 1;
	} else {
		jsonx_text_lit(h->t, " ");
		h->col++;
	}
	jsonx_text_raw(h->t, s, n);
	h->col += n;
	h->first = false;
}

static void mail_header_end(struct mail_header *h)
{
	jsonx_text_lit(h->t, "\r\n");
}

/* Standard base64 (RFC 4648 4, with padding) of data[0..n) appended to t. */
static void mail_b64(struct jsonx_text *t, const void *data, size_t n)
{
	unsigned char buf[4 * 64 / 3 + 4];
	const unsigned char *p = data;
	while (n > 0 && !t->failed) {
		size_t chunk = n < 48 ? n : 48;
		int len = EVP_EncodeBlock(buf, p, (int)chunk);
		jsonx_text_raw(t, (const char *)buf, (size_t)len);
		p += chunk;
		n -= chunk;
	}
}

/* s (valid UTF-8) as RFC 2047 encoded-words ("=?UTF-8?B?…?="), each holding whole characters,
 * as tokens of h (adjacent encoded-words are joined without their separating space). */
static void mail_header_encoded(struct mail_header *h, const char *s)
{
	size_t n = strlen(s);
	while (n > 0) {
		size_t cut = n < MAIL_EW_OCTETS ? n : MAIL_EW_OCTETS;
		while (cut < n && ((unsigned char)s[cut] & 0xC0) == 0x80)
			cut--;
		struct jsonx_text word = {0};
		jsonx_text_lit(&word, "=?UTF-8?B?");
		mail_b64(&word, s, cut);
		jsonx_text_lit(&word, "?=");
		if (word.failed)
			h->t->failed = true;
		else
			mail_header_token(h, word.data, word.len);
		jsonx_text_free(&word);
		s += cut;
		n -= cut;
	}
}

/* A display name or subject may go into a header when it is UTF-8 without CR or LF (a NUL
 * cannot be inside a C string: it ends the value). */
static bool mail_header_text_ok(const char *s)
{
	return s && !strpbrk(s, "\r\n") && enc_utf8_valid(s, strlen(s));
}

/* True when s is printable ASCII words separated by single spaces, no word longer than max and
 * none looking like an encoded-word: writable as it is, folded at its spaces. */
static bool mail_plain_words(const char *s, size_t max, bool atoms_only)
{
	size_t word = 0;
	if (*s == ' ' || strstr(s, "=?"))
		return false;
	for (const char *p = s; *p; p++) {
		unsigned char c = (unsigned char)*p;
		if (c == ' ') {
			if (word == 0)
				return false;
			word = 0;
		} else if (c < 0x21 || c > 0x7E || (atoms_only && !mail_atext(c)) || ++word > max) {
			return false;
		}
	}
	return word > 0;
}

/* Writes s[…] split at its single spaces as tokens. */
static void mail_header_words(struct mail_header *h, const char *s)
{
	while (*s) {
		size_t n = strcspn(s, " ");
		mail_header_token(h, s, n);
		s += n;
		if (*s == ' ')
			s++;
	}
}

/* A display name (RFC 5322 3.2.5 phrase): atoms as they are, other printable ASCII as one
 * quoted-string (of at most MAIL_QUOTED_MAX characters, so that its line stays within
 * MAIL_HEADER_LINE), anything else (non-ASCII, controls, longer) as encoded-words. */
#define MAIL_QUOTED_MAX 60
static void mail_header_phrase(struct mail_header *h, const char *name)
{
	if (mail_plain_words(name, 40, true)) {
		mail_header_words(h, name);
		return;
	}
	char quoted[MAIL_QUOTED_MAX + 1];
	size_t q = 0;
	bool printable = !strstr(name, "=?");
	quoted[q++] = '"';
	for (const char *p = name; *p && printable; p++) {
		if (*p == '"' || *p == '\\')
			quoted[q++] = '\\';
		quoted[q++] = *p;
		printable = *p >= 0x20 && *p <= 0x7E && q < MAIL_QUOTED_MAX - 1;
	}
	quoted[q++] = '"';
	if (printable)
		mail_header_token(h, quoted, q);
	else
		mail_header_encoded(h, name);
}

/* "name: addr, Name <addr>, …" (mailbox-list).  False when an address or name is refused. */
static bool mail_header_addresses(struct jsonx_text *t, const char *field,
                                  const struct mail_addr *list, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		const char *name = list[i].name;
		if (!mail_address_valid(list[i].addr) || (name && !mail_header_text_ok(name)))
			return false;
	}
	struct mail_header h = {t, 0, true};
	mail_header_start(&h, field);
	for (size_t i = 0; i < n; i++) {
		const char *name = list[i].name;
		char tok[MAIL_ADDRESS_MAX + 4];
		bool named = name && *name;
		if (named)
			mail_header_phrase(&h, name);
		int len = snprintf(tok, sizeof tok, named ? "<%s>%s" : "%s%s", list[i].addr,
		                   i + 1 < n ? "," : "");
		mail_header_token(&h, tok, (size_t)len);
	}
	mail_header_end(&h);
	return true;
}

static bool mail_header_subject(struct jsonx_text *t, const char *subject)
{
	if (!mail_header_text_ok(subject))
		return false;
	struct mail_header h = {t, 0, true};
	mail_header_start(&h, "Subject");
	if (mail_plain_words(subject, 60, false))
		mail_header_words(&h, subject);
	else
		mail_header_encoded(&h, subject);
	mail_header_end(&h);
	return true;
}

void mail_date(long long secs, char out[MAIL_DATE_LEN])
{
	static const char days[7][4] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
	static const char months[12][4] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
	                                   "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
	time_t tt = (time_t)secs;
	struct tm tm;
	if (!gmtime_r(&tt, &tm)) {
		tt = 0;
		gmtime_r(&tt, &tm);
	}
	snprintf(out, MAIL_DATE_LEN, "%s, %02d %s %04d %02d:%02d:%02d +0000", days[tm.tm_wday],
	         tm.tm_mday, months[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min,
	         tm.tm_sec);
}

/* "left@right", both dot-atom-text (RFC 5322 3.6.4 msg-id without the no-fold-literal form). */
static bool mail_message_id_valid(const char *id)
{
	if (!id)
		return false;
	size_t n = strnlen(id, MAIL_MESSAGE_ID_MAX + 1);
	const char *at = memchr(id, '@', n);
	if (n > MAIL_MESSAGE_ID_MAX || !at)
		return false;
	size_t left = (size_t)(at - id);
	return mail_dot_atom(id, left) && mail_dot_atom(at + 1, n - left - 1);
}

/* ---- bodies ---- */

/* The boundaries hold "=_", which neither quoted-printable (where '=' starts "=XX" or ends a
 * line) nor base64 ever writes: no part can contain them, so they can be fixed strings. */
#define MAIL_BOUNDARY_MIXED "=_meeting-rooms-mixed"
#define MAIL_BOUNDARY_ALT "=_meeting-rooms-alt"

/* RFC 2045 6.7 quoted-printable of s, its line breaks (LF, CRLF or CR) written as CRLF, lines of
 * at most 76 characters (soft breaks "=" CRLF).  Encoded: '=', controls, non-ASCII, a space or
 * TAB before a line break, and a '.' starting a line (a lone "." would end the SMTP DATA if
 * some relay failed to dot-stuff it). */
static void mail_qp(struct jsonx_text *t, const char *s)
{
	size_t col = 0;
	for (const unsigned char *p = (const unsigned char *)s; *p && !t->failed; p++) {
		if (*p == '\r' || *p == '\n') {
			if (*p == '\r' && p[1] == '\n')
				p++;
			jsonx_text_lit(t, "\r\n");
			col = 0;
			continue;
		}
		bool line_end = p[1] == '\0' || p[1] == '\r' || p[1] == '\n';
		bool plain = (*p >= 0x21 && *p <= 0x7E && *p != '=') ||
		             ((*p == ' ' || *p == '\t') && !line_end);
		size_t need = plain ? 1 : 3;
		/* 75 characters and the soft break's '=' make 76; the last character of a line may
		 * take the 76th place itself when no soft break follows it. */
		if (col + need > (line_end ? 76 : 75)) {
			jsonx_text_lit(t, "=\r\n");
			col = 0;
		}
		if (*p == '.' && col == 0)
			plain = false, need = 3;
		if (plain) {
			jsonx_text_raw(t, (const char *)p, 1);
		} else {
			char hex[4];
			snprintf(hex, sizeof hex, "=%02X", *p);
			jsonx_text_raw(t, hex, 3);
		}
		col += need;
	}
}

/* Base64 in lines of 76 characters (RFC 2045 6.8), each ended by CRLF. */
static void mail_b64_lines(struct jsonx_text *t, const char *s, size_t n)
{
	while (n > 0 && !t->failed) {
		size_t chunk = n < 57 ? n : 57;
		mail_b64(t, s, chunk);
		jsonx_text_lit(t, "\r\n");
		s += chunk;
		n -= chunk;
	}
}

void mail_html_escape(struct jsonx_text *out, const char *s)
{
	while (*s) {
		size_t run = strcspn(s, "&<>\"'");
		jsonx_text_raw(out, s, run);
		s += run;
		switch (*s) {
		case '&':
			jsonx_text_lit(out, "&amp;");
			break;
		case '<':
			jsonx_text_lit(out, "&lt;");
			break;
		case '>':
			jsonx_text_lit(out, "&gt;");
			break;
		case '"':
			jsonx_text_lit(out, "&quot;");
			break;
		case '\'':
			jsonx_text_lit(out, "&#39;");
			break;
		default:
			return;
		}
		s++;
	}
}

/* The HTML of a plain text: escaped, a blank line between paragraphs, other line breaks <br>. */
static void mail_html_of_text(struct jsonx_text *out, const char *text)
{
	jsonx_text_lit(out,
	               "<!DOCTYPE html>\r\n<html><head><meta charset=\"utf-8\"></head><body>\r\n"
	               "<p>");
	bool blank_run = false; /* a paragraph just ended at a blank line */
	while (*text) {
		size_t n = strcspn(text, "\r\n");
		if (n > 0) {
			char *line = strndup(text, n);
			if (!line) {
				out->failed = true;
				return;
			}
			mail_html_escape(out, line);
			free(line);
			blank_run = false;
		}
		text += n;
		if (!*text)
			break;
		text += (text[0] == '\r' && text[1] == '\n') ? 2 : 1;
		if (n == 0) {
			if (!blank_run)
				jsonx_text_lit(out, "</p>\r\n<p>");
			blank_run = true;
		} else if (*text && *text != '\r' && *text != '\n') {
			jsonx_text_lit(out, "<br>\r\n");
		}
	}
	jsonx_text_lit(out, "</p>\r\n</body></html>\r\n");
}

static const char *mail_method_name(enum mail_ics_method m)
{
	return m == MAIL_ICS_REQUEST ? "REQUEST" : m == MAIL_ICS_CANCEL ? "CANCEL" : NULL;
}

/* True when the iCalendar object's METHOD property (exactly one, on a line of its own) is the
 * method named: RFC 6047 2.4 wants the Content-Type's method parameter to agree with it. */
static bool mail_ics_method_ok(const char *ics, const char *method)
{
	const char *line = strstr(ics, "\r\nMETHOD:");
	if (!line || strstr(line + 1, "\r\nMETHOD:"))
		return false;
	line += strlen("\r\nMETHOD:");
	size_t n = strlen(method);
	return strncmp(line, method, n) == 0 && strncmp(line + n, "\r\n", 2) == 0;
}

static void mail_part_header(struct jsonx_text *t, const char *boundary, const char *type,
                             const char *extra)
{
	jsonx_text_lit(t, "--");
	jsonx_text_raw(t, boundary, strlen(boundary));
	jsonx_text_lit(t, "\r\nContent-Type: ");
	jsonx_text_raw(t, type, strlen(type));
	jsonx_text_lit(t, "\r\n");
	if (extra)
		jsonx_text_raw(t, extra, strlen(extra));
	jsonx_text_lit(t, "\r\n");
}

static void mail_close(struct jsonx_text *t, const char *boundary)
{
	jsonx_text_lit(t, "--");
	jsonx_text_raw(t, boundary, strlen(boundary));
	jsonx_text_lit(t, "--\r\n");
}

/* The iCalendar object as a base64 part of the given boundary. */
static void mail_ics_part(struct jsonx_text *t, const char *boundary, const char *method,
                          const char *ics, bool attachment)
{
	char type[96];
	snprintf(type, sizeof type, "text/calendar; charset=UTF-8; method=%s%s", method,
	         attachment ? ";\r\n name=\"invite.ics\"" : "");
	mail_part_header(t, boundary, type,
	                 attachment ? "Content-Disposition: attachment; filename=\"invite.ics\"\r\n"
	                              "Content-Transfer-Encoding: base64\r\n"
	                            : "Content-Transfer-Encoding: base64\r\n");
	mail_b64_lines(t, ics, strlen(ics));
}

bool mail_build(const struct mail_message *m, struct jsonx_text *out, const char **why)
{
	struct jsonx_text html = {0};
	const char *method = mail_method_name(m->ics_method);
	bool ok = false;
	char date[MAIL_DATE_LEN];

	*why = "from";
	if (!mail_address_valid(m->from.addr))
		goto out;
	*why = "message_id";
	if (!mail_message_id_valid(m->message_id))
		goto out;
	*why = "to";
	if (m->n_to == 0 || !m->to)
		goto out;
	*why = "text";
	if (!m->text || !enc_utf8_valid(m->text, strlen(m->text)))
		goto out;
	*why = "html";
	if (m->html && !enc_utf8_valid(m->html, strlen(m->html)))
		goto out;
	*why = "ics_method";
	if ((m->ics != NULL) != (method != NULL))
		goto out;
	*why = "ics";
	if (m->ics &&
	    (!enc_utf8_valid(m->ics, strlen(m->ics)) || !mail_ics_method_ok(m->ics, method)))
		goto out;

	mail_date(m->date, date);
	jsonx_text_lit(out, "Date: ");
	jsonx_text_raw(out, date, strlen(date));
	jsonx_text_lit(out, "\r\n");
	*why = "from";
	if (!mail_header_addresses(out, "From", &m->from, 1))
		goto out;
	*why = "to";
	if (!mail_header_addresses(out, "To", m->to, m->n_to))
		goto out;
	*why = "cc";
	if (m->n_cc > 0 && !mail_header_addresses(out, "Cc", m->cc, m->n_cc))
		goto out;
	*why = "reply_to";
	if (m->reply_to && !mail_header_addresses(out, "Reply-To", m->reply_to, 1))
		goto out;
	*why = "subject";
	if (!mail_header_subject(out, m->subject))
		goto out;
	jsonx_text_lit(out, "Message-ID: <");
	jsonx_text_raw(out, m->message_id, strlen(m->message_id));
	jsonx_text_lit(out, ">\r\nMIME-Version: 1.0\r\nAuto-Submitted: auto-generated\r\n");

	if (method)
		jsonx_text_lit(out, "Content-Type: multipart/mixed; boundary=\"" MAIL_BOUNDARY_MIXED
		                    "\"\r\n\r\n--" MAIL_BOUNDARY_MIXED "\r\n");
	jsonx_text_lit(out, "Content-Type: multipart/alternative; boundary=\"" MAIL_BOUNDARY_ALT
	                    "\"\r\n\r\n");
	const char *qp = "Content-Transfer-Encoding: quoted-printable\r\n";
	mail_part_header(out, MAIL_BOUNDARY_ALT, "text/plain; charset=UTF-8", qp);
	mail_qp(out, m->text);
	jsonx_text_lit(out, "\r\n");
	if (!m->html)
		mail_html_of_text(&html, m->text);
	mail_part_header(out, MAIL_BOUNDARY_ALT, "text/html; charset=UTF-8", qp);
	mail_qp(out, m->html ? m->html : html.data ? html.data : "");
	jsonx_text_lit(out, "\r\n");
	/* The invitation twice, as Google Calendar, Yahoo and Thunderbird send it: as the last
	 * alternative (where Outlook and Exchange look, [MS-OXCMAIL]) and as an attachment (for
	 * clients that look only there). */
	if (method)
		mail_ics_part(out, MAIL_BOUNDARY_ALT, method, m->ics, false);
	mail_close(out, MAIL_BOUNDARY_ALT);
	if (method) {
		mail_ics_part(out, MAIL_BOUNDARY_MIXED, method, m->ics, true);
		mail_close(out, MAIL_BOUNDARY_MIXED);
	}
	*why = "memory";
	ok = !out->failed && !html.failed;
out:
	jsonx_text_free(&html);
	return ok;
}

/* ---- sending ---- */

bool mail_smtp_url_valid(const char *url, bool *loopback)
{
	CURLU *u = curl_url();
	char *scheme = NULL, *host = NULL, *path = NULL, *part = NULL;
	bool ok = false;
	if (loopback)
		*loopback = false;
	if (!u || !url || curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK)
		goto out;
	if (strcasecmp(scheme, "smtp") != 0 && strcasecmp(scheme, "smtps") != 0)
		goto out;
	/* Credentials belong in SMTP_USER / SMTP_PASSWORD, never in a URL that may be logged. */
	CURLUPart refused[] = {CURLUPART_USER, CURLUPART_PASSWORD, CURLUPART_OPTIONS,
	                       CURLUPART_QUERY, CURLUPART_FRAGMENT};
	for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
		if (curl_url_get(u, refused[i], &part, 0) == CURLUE_OK)
			goto out;
	}
	/* The path, if any, is the EHLO name: one domain. */
	if (curl_url_get(u, CURLUPART_PATH, &path, 0) == CURLUE_OK && strcmp(path, "/") != 0 &&
	    !mail_domain(path + 1, strlen(path + 1)))
		goto out;
	if (loopback)
		*loopback = httpparse_host_loopback(host);
	ok = true;
out:
	curl_free(scheme);
	curl_free(host);
	curl_free(path);
	curl_free(part);
	curl_url_cleanup(u);
	return ok;
}

struct mail_upload {
	const char *data;
	size_t len, off;
};

static size_t mail_read(char *buf, size_t size, size_t nitems, void *userdata)
{
	struct mail_upload *up = userdata;
	size_t n = size * nitems, left = up->len - up->off;
	if (n > left)
		n = left;
	memcpy(buf, up->data + up->off, n);
	up->off += n;
	return n;
}

static enum mail_status mail_result_set(struct mail_result *res, enum mail_status st,
                                        const char *detail)
{
	res->status = st;
	snprintf(res->detail, sizeof res->detail, "%s", detail);
	return st;
}

const char *mail_step_name(enum mail_step step)
{
	static const char *const names[] = {"connect", "hello",     "starttls", "auth",
	                                    "sender",  "recipient", "data"};
	return (unsigned)step < sizeof names / sizeof names[0] ? names[step] : "connect";
}

bool mail_reply_refuses_relay(const char *reply)
{
	static const char *const phrases[] = {"relay access denied", "relaying denied",
	                                      "unable to relay", "relay not permitted",
	                                      "relaying not allowed"};
	if (!reply)
		return false;
	/* "550 5.7.54 …" or "550-5.7.64 …": the code, a space or hyphen, then the enhanced code.  Any other 5.7.x (5.7.1 without the words below) may be about the
	 * recipient: a policy refusing mail to it. */
	size_t n = strspn(reply, "0123456789");
	if (n == 3 && (reply[3] == ' ' || reply[3] == '-') &&
	    (reply[4] == '5' || reply[4] == '4') && strncmp(reply + 5, ".7.", 3) == 0) {
		size_t d = strspn(reply + 8, "0123456789");
		if (d == 2 &&
		    (strncmp(reply + 8, "54", 2) == 0 || strncmp(reply + 8, "64", 2) == 0))
			return true;
	}
	for (size_t i = 0; i < sizeof phrases / sizeof phrases[0]; i++)
		if (strcasestr(reply, phrases[i]))
			return true;
	return false;
}

enum mail_status mail_failure_status(enum mail_step step, long smtp_code, const char *reply,
                                     bool client_refused, bool *relay)
{
	bool permanent = smtp_code >= 500 && smtp_code <= 599;
	bool ours = client_refused || smtp_code == 530 ||
	            (permanent && step < MAIL_STEP_RECIPIENT) ||
	            (permanent && step == MAIL_STEP_RECIPIENT && mail_reply_refuses_relay(reply));
	if (relay)
		*relay = ours;
	return permanent && !ours ? MAIL_PERMANENT : MAIL_TEMPORARY;
}

/* The commands a client writes, in the order RFC 5321 allows them, and the step each starts:
 * a line moves the step on only to a later one, and AUTH's continuation lines (base64, never
 * a space or ':') match nothing, so a credential can never be taken for a command. */
static const struct {
	const char *prefix;
	enum mail_step step;
} mail_commands[] = {
	{"EHLO ", MAIL_STEP_HELLO},         {"HELO ", MAIL_STEP_HELLO},
	{"STARTTLS\r", MAIL_STEP_STARTTLS}, {"AUTH ", MAIL_STEP_AUTH},
	{"MAIL FROM:", MAIL_STEP_SENDER},   {"RCPT TO:", MAIL_STEP_RECIPIENT},
	{"DATA\r", MAIL_STEP_DATA},
};

/* What the debug callback follows through one send. */
struct mail_trace_state {
	enum mail_step step;
	char reply[160]; /* the last negative reply line (4xx, 5xx), cut; "" when none */
};

/* libcurl's debug callback (CURLOPT_DEBUGFUNCTION), told every command written and every reply
 * line read: follows the step, and keeps the last negative reply line (for its enhanced status:
 * mail_failure_status).  Nothing is printed, and no command is kept (the AUTH lines carry the
 * credentials); a negative reply carries none. */
static int mail_trace(CURL *h, curl_infotype type, char *data, size_t size, void *userp)
{
	struct mail_trace_state *t = userp;
	(void)h;
	if (type == CURLINFO_HEADER_IN) {
		if (size >= 4 && (data[0] == '4' || data[0] == '5')) {
			size_t n = size < sizeof t->reply ? size : sizeof t->reply - 1;
			memcpy(t->reply, data, n);
			t->reply[n] = '\0';
			t->reply[strcspn(t->reply, "\r\n")] = '\0';
		}
		return 0;
	}
	if (type != CURLINFO_HEADER_OUT)
		return 0;
	for (size_t i = 0; i < sizeof mail_commands / sizeof mail_commands[0]; i++) {
		size_t n = strlen(mail_commands[i].prefix);
		if (mail_commands[i].step >= t->step && size >= n &&
		    strncasecmp(data, mail_commands[i].prefix, n) == 0) {
			t->step = mail_commands[i].step;
			break;
		}
	}
	return 0;
}

enum mail_status mail_send(const struct mail_smtp *cfg, const char *const *rcpt, size_t n,
                           const char *msg, size_t len, struct mail_result *res)
{
	CURL *h = NULL;
	struct curl_slist *to = NULL;
	char from[MAIL_ADDRESS_MAX + 3], errbuf[CURL_ERROR_SIZE] = "";
	struct mail_upload up = {msg, len, 0};
	struct mail_trace_state trace = {MAIL_STEP_CONNECT, ""};
	bool loopback;
	enum mail_status st;

	res->smtp_code = 0;
	res->step = MAIL_STEP_CONNECT;
	res->relay = false;
	if (!mail_smtp_url_valid(cfg->url, &loopback))
		return mail_result_set(res, MAIL_INVALID,
		                       "SMTP URL is not smtp:// or smtps://host");
	if (!mail_address_valid(cfg->from))
		return mail_result_set(res, MAIL_INVALID, "sender address is not valid");
	if (n == 0)
		return mail_result_set(res, MAIL_INVALID, "no recipient");
	for (size_t i = 0; i < n; i++) {
		char path[MAIL_ADDRESS_MAX + 3];
		struct curl_slist *next;
		if (!mail_address_valid(rcpt[i])) {
			st = mail_result_set(res, MAIL_INVALID, "recipient address is not valid");
			goto out;
		}
		snprintf(path, sizeof path, "<%s>", rcpt[i]);
		if (!(next = curl_slist_append(to, path))) {
			st = mail_result_set(res, MAIL_TEMPORARY, "out of memory");
			goto out;
		}
		to = next;
	}
	snprintf(from, sizeof from, "<%s>", cfg->from);

	long timeout_ms = cfg->timeout_ms > 0 ? cfg->timeout_ms : MAIL_TIMEOUT_DEFAULT;
	/* A fresh handle per message: nothing is shared between threads or between messages. */
	st = mail_result_set(res, MAIL_TEMPORARY, "out of memory");
	if (!(h = curl_easy_init()))
		goto out;
	curl_easy_setopt(h, CURLOPT_URL, cfg->url);
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "smtp,smtps");
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, timeout_ms < 10000 ? timeout_ms : 10000L);
	curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, timeout_ms);
	/* STARTTLS or fail, unless the server is on this machine (smtps:// is TLS anyway).
	 * Certificates are verified (curl's default, left on). */
	curl_easy_setopt(h, CURLOPT_USE_SSL,
	                 loopback ? (long)CURLUSESSL_NONE : (long)CURLUSESSL_ALL);
	if (cfg->user && *cfg->user) {
		curl_easy_setopt(h, CURLOPT_USERNAME, cfg->user);
		curl_easy_setopt(h, CURLOPT_PASSWORD, cfg->password ? cfg->password : "");
	}
	curl_easy_setopt(h, CURLOPT_MAIL_FROM, from);
	curl_easy_setopt(h, CURLOPT_MAIL_RCPT, to);
	curl_easy_setopt(h, CURLOPT_UPLOAD, 1L);
	curl_easy_setopt(h, CURLOPT_READFUNCTION, mail_read);
	curl_easy_setopt(h, CURLOPT_READDATA, &up);
	curl_easy_setopt(h, CURLOPT_INFILESIZE_LARGE, (curl_off_t)len);
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
	/* The commands written tell how far the conversation got, and the replies read why it
	 * ended (mail_failure_status). */
	curl_easy_setopt(h, CURLOPT_DEBUGFUNCTION, mail_trace);
	curl_easy_setopt(h, CURLOPT_DEBUGDATA, &trace);
	curl_easy_setopt(h, CURLOPT_VERBOSE, 1L);

	CURLcode rc = curl_easy_perform(h);
	res->step = trace.step;
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &res->smtp_code);
	if (rc == CURLE_OK) {
		st = mail_result_set(res, MAIL_SENT, "sent");
	} else {
		/* libcurl's own refusals that the configuration decides: the login (no mechanism in
		 * common, or refused), TLS (STARTTLS not offered or refused, a certificate not
		 * trusted). */
		bool client_refused = rc == CURLE_LOGIN_DENIED || rc == CURLE_USE_SSL_FAILED ||
		                      rc == CURLE_PEER_FAILED_VERIFICATION;
		st = mail_failure_status(res->step, res->smtp_code, trace.reply, client_refused,
		                         &res->relay);
		mail_result_set(res, st, *errbuf ? errbuf : curl_easy_strerror(rc));
	}
	if (cfg->observe)
		cfg->observe(res, cfg->observe_arg);
out:
	curl_slist_free_all(to);
	curl_easy_cleanup(h);
	return st;
}
