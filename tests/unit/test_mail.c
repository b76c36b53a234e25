/* Unit tests of common/src/mail.c: the mailbox validator and its limits, the case-insensitive
 * dedupe, the message builder (header encoding and folding, the MIME structure, quoted-printable
 * and base64 bodies, HTML escaping) and every header injection attempt refused.  Sending through
 * a real SMTP server is tests/integration/test_mail_send.py. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "countof.h"
#include "mail.h"

/* ---- helpers ---- */

static char *repeat(char c, size_t n)
{
	char *s = malloc(n + 1);
	assert_non_null(s);
	memset(s, c, n);
	s[n] = '\0';
	return s;
}

/* local@domain with the given lengths: the domain made of labels of at most 63 ("aaa.aaa…com"). */
static char *address_of(size_t local, size_t domain)
{
	char *s = malloc(local + domain + 2);
	assert_non_null(s);
	memset(s, 'l', local);
	s[local] = '@';
	char *d = s + local + 1;
	for (size_t i = 0; i < domain; i++)
		d[i] = (i % 64 == 63) ? '.' : 'd';
	if (domain > 0 && d[domain - 1] == '.')
		d[domain - 1] = 'd';
	d[domain] = '\0';
	return s;
}

/* The checks every built message passes: CRLF line ends only (no bare CR or LF), lines of at
 * most max characters (76, or RFC 5322's 998 when an address or Message-ID that cannot be folded
 * is longer), the header section's lines each a field "Name: …" or a continuation. */
static void check_lines(const char *msg, size_t max)
{
	bool in_header = true;
	for (const char *p = msg; *p;) {
		const char *eol = strstr(p, "\r\n");
		assert_non_null(eol);
		size_t n = (size_t)(eol - p);
		assert_null(memchr(p, '\n', n));
		assert_null(memchr(p, '\r', n));
		assert_in_range(n, 0, max);
		if (in_header && n == 0) {
			in_header = false;
		} else if (in_header && p[0] != ' ') {
			const char *colon = memchr(p, ':', n);
			assert_non_null(colon);
			for (const char *c = p; c < colon; c++)
				assert_true((*c >= 'A' && *c <= 'Z') || (*c >= 'a' && *c <= 'z') ||
				            *c == '-');
		}
		p = eol + 2;
	}
	assert_false(in_header);
}

/* The unfolded value of header name in msg's header section (caller frees), or NULL. */
static char *header(const char *msg, const char *name)
{
	const char *end = strstr(msg, "\r\n\r\n");
	size_t nl = strlen(name);
	assert_non_null(end);
	for (const char *p = msg; p < end; p = strstr(p, "\r\n") + 2) {
		if (strncmp(p, name, nl) != 0 || p[nl] != ':')
			continue;
		char *out = calloc((size_t)(end - p) + 1, 1);
		size_t o = 0;
		const char *q = p + nl + 1;
		if (*q == ' ')
			q++;
		for (;;) {
			const char *eol = strstr(q, "\r\n");
			memcpy(out + o, q, (size_t)(eol - q));
			o += (size_t)(eol - q);
			if (eol[2] != ' ' && eol[2] != '\t')
				break;
			q = eol + 2; /* unfolding drops only the CRLF: the space stays */
		}
		out[o] = '\0';
		return out;
	}
	return NULL;
}

static size_t b64_decode(const char *in, size_t n, unsigned char *out)
{
	int len = EVP_DecodeBlock(out, (const unsigned char *)in, (int)n);
	assert_true(len >= 0);
	size_t pad = (size_t)(n > 0 && in[n - 1] == '=') + (size_t)(n > 1 && in[n - 2] == '=');
	return (size_t)len - pad;
}

/* Decodes the RFC 2047 "=?UTF-8?B?…?=" words of an unstructured value (whitespace between two
 * encoded-words dropped, as RFC 2047 6.2 says).  Caller frees. */
static char *decode_words(const char *v)
{
	char *out = calloc(strlen(v) + 1, 1);
	size_t o = 0, spaces = 0; /* spaces copied since the last encoded-word */
	bool last_was_word = false;
	while (*v) {
		if (strncmp(v, "=?UTF-8?B?", 10) == 0) {
			const char *end = strstr(v + 10, "?=");
			assert_non_null(end);
			if (last_was_word) /* drop the white space between two encoded-words */
				o -= spaces;
			o += b64_decode(v + 10, (size_t)(end - v - 10), (unsigned char *)out + o);
			v = end + 2;
			last_was_word = true;
			spaces = 0;
			continue;
		}
		if (*v == ' ')
			spaces++;
		else
			last_was_word = false;
		out[o++] = *v++;
	}
	out[o] = '\0';
	return out;
}

/* Quoted-printable decoding (soft breaks removed).  Caller frees. */
static char *qp_decode(const char *in, size_t n)
{
	char *out = malloc(n + 1);
	size_t o = 0;
	for (size_t i = 0; i < n; i++) {
		if (in[i] == '=' && i + 2 < n + 1 && in[i + 1] == '\r' && in[i + 2] == '\n') {
			i += 2;
		} else if (in[i] == '=') {
			unsigned v;
			assert_int_equal(sscanf(in + i + 1, "%2X", &v), 1);
			out[o++] = (char)v;
			i += 2;
		} else {
			out[o++] = in[i];
		}
	}
	out[o] = '\0';
	return out;
}

/* The body of the part whose header block contains type (after "Content-Type: "), up to the
 * CRLF before the next boundary line.  Caller frees (decoded: QP or base64 by the part's
 * Content-Transfer-Encoding). */
static char *part(const char *msg, const char *type, size_t nth)
{
	const char *p = msg;
	char want[160];
	snprintf(want, sizeof want, "\r\nContent-Type: %s", type);
	for (size_t i = 0; i <= nth; i++) {
		p = strstr(p + 1, want);
		if (!p)
			return NULL;
	}
	const char *body = strstr(p, "\r\n\r\n") + 4;
	const char *end = strstr(body, "\r\n--=_meeting-rooms-");
	assert_non_null(end);
	bool b64 = strstr(p, "Content-Transfer-Encoding: base64") != NULL &&
	           strstr(p, "Content-Transfer-Encoding: base64") < body;
	if (!b64)
		return qp_decode(body, (size_t)(end - body));
	char *joined = calloc((size_t)(end - body) + 1, 1), *out = calloc((size_t)(end - body), 1);
	size_t j = 0;
	for (const char *c = body; c < end; c++)
		if (*c != '\r' && *c != '\n')
			joined[j++] = *c;
	size_t n = b64_decode(joined, j, (unsigned char *)out);
	out[n] = '\0';
	free(joined);
	return out;
}

static const struct mail_addr TO[] = {{"Bob", "bob@example.com"}};

static struct mail_message simple(void)
{
	return (struct mail_message){
		.from = {"Meeting Rooms", "rooms@example.com"},
		.to = TO,
		.n_to = 1,
		.subject = "Weekly sync",
		.message_id = "reservation-42.3@rooms.example.com",
		.date = 1796051700, /* 2026-11-30 15:15:00 UTC */
		.text = "Hello Bob,\nsee you there.\n",
	};
}

/* Builds m; asserts it succeeds and passes check_lines.  Caller frees. */
static char *built_max(const struct mail_message *m, size_t max)
{
	struct jsonx_text t = {0};
	const char *why = NULL;
	bool ok = mail_build(m, &t, &why);
	if (!ok)
		fail_msg("mail_build refused: %s", why);
	check_lines(t.data, max);
	return t.data;
}

static char *built(const struct mail_message *m)
{
	return built_max(m, 76);
}

static const char *refused(const struct mail_message *m)
{
	struct jsonx_text t = {0};
	const char *why = NULL;
	assert_false(mail_build(m, &t, &why));
	jsonx_text_free(&t);
	assert_non_null(why);
	return why;
}

/* ---- addresses ---- */

static void test_address_valid(void **state)
{
	(void)state;
	const char *good[] = {
		"a@b",
		"alice@example.com",
		"Alice.Smith+rooms@mail.example.co.uk",
		"!#$%&'*+-/=?^_`{|}~@example.com",
		"x@a-b.example",
		"x@123.example",
		"x@xn--bcher-kva.example",
	};
	const char *bad[] = {
		"",
		"alice",
		"@example.com",
		"alice@",
		"alice@@example.com",
		"a@b@example.com",
		".alice@example.com",
		"alice.@example.com",
		"al..ice@example.com",
		"alice@.example.com",
		"alice@example.com.",
		"alice@example..com",
		"alice@-example.com",
		"alice@example-.com",
		"alice@exa_mple.com",
		"al ice@example.com",
		"alice @example.com",
		"alice@exam ple.com",
		"\"al ice\"@example.com",
		"alice@[192.0.2.1]",
		"<alice@example.com>",
		"alice<@example.com",
		"alice@example.com>",
		"alice@example.com\r\nBcc: eve@example.com",
		"alice\r@example.com",
		"alice\n@example.com",
		"alice\t@example.com",
		"ali\x7f"
		"ce@example.com",
		"alice,bob@example.com",
		"alice;@example.com",
		"alice@exämple.com",
		"jörg@example.com",
		"alice@example.com ",
	};
	for (size_t i = 0; i < countof(good); i++)
		if (!mail_address_valid(good[i]))
			fail_msg("refused: %s", good[i]);
	for (size_t i = 0; i < countof(bad); i++)
		if (mail_address_valid(bad[i]))
			fail_msg("accepted: %s", bad[i]);
	assert_false(mail_address_valid(NULL));
}

static void test_address_limits(void **state)
{
	(void)state;
	char *s;
	/* Local part: 64 octets, not 65. */
	s = address_of(64, 11);
	assert_true(mail_address_valid(s));
	free(s);
	s = address_of(65, 11);
	assert_false(mail_address_valid(s));
	free(s);
	/* The whole address: 254 octets, not 255 (64 + 1 + 189 and 64 + 1 + 190). */
	s = address_of(64, 189);
	assert_int_equal(strlen(s), 254);
	assert_true(mail_address_valid(s));
	free(s);
	s = address_of(64, 190);
	assert_int_equal(strlen(s), 255);
	assert_false(mail_address_valid(s));
	free(s);
	/* A domain of 252 octets (the most a 254-octet address leaves) passes; one of 256 is
	 * refused whatever the total. */
	s = address_of(1, 252);
	assert_true(mail_address_valid(s));
	free(s);
	s = address_of(1, 256);
	assert_false(mail_address_valid(s));
	free(s);
	/* A label: 63 octets, not 64. */
	char *label = repeat('d', 63);
	char buf[128];
	snprintf(buf, sizeof buf, "x@%s.com", label);
	assert_true(mail_address_valid(buf));
	snprintf(buf, sizeof buf, "x@%sd.com", label);
	assert_false(mail_address_valid(buf));
	free(label);
}

static void test_address_dedupe(void **state)
{
	(void)state;
	const char *list[] = {"Alice@Example.com", "bob@example.com", "alice@example.COM",
	                      "carol@example.com", "BOB@EXAMPLE.COM", "alice@example.org"};
	size_t n = mail_address_dedupe(list, countof(list));
	assert_int_equal(n, 4);
	assert_string_equal(list[0], "Alice@Example.com"); /* the first spelling stays */
	assert_string_equal(list[1], "bob@example.com");
	assert_string_equal(list[2], "carol@example.com");
	assert_string_equal(list[3], "alice@example.org");
	assert_int_equal(mail_address_dedupe(list, 0), 0);
	const char *one[] = {"a@b"};
	assert_int_equal(mail_address_dedupe(one, 1), 1);
}

/* ---- headers ---- */

static void test_date(void **state)
{
	(void)state;
	char d[MAIL_DATE_LEN];
	mail_date(0, d);
	assert_string_equal(d, "Thu, 01 Jan 1970 00:00:00 +0000");
	mail_date(1796051700, d);
	assert_string_equal(d, "Mon, 30 Nov 2026 15:15:00 +0000");
	mail_date(951782400, d); /* 2000-02-29 */
	assert_string_equal(d, "Tue, 29 Feb 2000 00:00:00 +0000");
}

static void test_simple_message(void **state)
{
	(void)state;
	struct mail_message m = simple();
	char *msg = built(&m);
	const char *head =
		"Date: Mon, 30 Nov 2026 15:15:00 +0000\r\n"
		"From: Meeting Rooms <rooms@example.com>\r\n"
		"To: Bob <bob@example.com>\r\n"
		"Subject: Weekly sync\r\n"
		"Message-ID: <reservation-42.3@rooms.example.com>\r\n"
		"MIME-Version: 1.0\r\n"
		"Auto-Submitted: auto-generated\r\n"
		"Content-Type: multipart/alternative; boundary=\"=_meeting-rooms-alt\"\r\n"
		"\r\n"
		"--=_meeting-rooms-alt\r\n"
		"Content-Type: text/plain; charset=UTF-8\r\n"
		"Content-Transfer-Encoding: quoted-printable\r\n"
		"\r\n"
		"Hello Bob,\r\nsee you there.\r\n\r\n"
		"--=_meeting-rooms-alt\r\n"
		"Content-Type: text/html; charset=UTF-8\r\n";
	assert_memory_equal(msg, head, strlen(head));
	assert_null(strstr(msg, "multipart/mixed"));
	assert_null(strstr(msg, "text/calendar"));
	assert_non_null(strstr(msg, "\r\n--=_meeting-rooms-alt--\r\n"));
	char *html = part(msg, "text/html", 0);
	assert_non_null(strstr(html, "<p>Hello Bob,<br>\r\nsee you there.</p>"));
	free(html);
	free(msg);
}

static void test_display_names(void **state)
{
	(void)state;
	const struct mail_addr to[] = {
		{"Doe, John", "john@example.com"},    {"Say \"hi\" \\o/", "hi@example.com"},
		{NULL, "plain@example.com"},          {"", "empty@example.com"},
		{"Jörg Müller", "joerg@example.com"}, {"=?UTF-8?B?SGk=?=", "trick@example.com"},
		{"Tab\there", "tab@example.com"},
	};
	struct mail_message m = simple();
	m.to = to;
	m.n_to = countof(to);
	char *msg = built(&m);
	char *v = header(msg, "To");
	assert_non_null(strstr(v, "\"Doe, John\" <john@example.com>,"));
	assert_non_null(strstr(v, "\"Say \\\"hi\\\" \\\\o/\" <hi@example.com>,"));
	assert_non_null(strstr(v, " plain@example.com,"));
	assert_non_null(strstr(v, " empty@example.com,"));
	assert_null(strstr(v, "Jörg"));
	/* An encoded-word spelled by the user is itself encoded (a reader must not decode it). */
	assert_null(strstr(v, "=?UTF-8?B?SGk=?= <"));
	assert_null(strstr(v, "\t"));
	char *d = decode_words(v);
	assert_non_null(strstr(d, "Jörg Müller <joerg@example.com>,"));
	assert_non_null(strstr(d, "=?UTF-8?B?SGk=?= <trick@example.com>,"));
	assert_non_null(strstr(d, "Tab\there <tab@example.com>"));
	free(d);
	free(v);
	free(msg);
}

static void test_long_names_fold(void **state)
{
	(void)state;
	/* 150 characters of non-ASCII: several encoded-words on folded lines (check_lines holds
	 * them to 76), decoding to the name. */
	char name[512] = "";
	for (int i = 0; i < 50; i++)
		strcat(name, i % 2 ? "ß" : "é");
	for (int i = 0; i < 100; i++)
		strcat(name, "x");
	const struct mail_addr to[] = {{name, "long@example.com"}, {"Bob", "bob@example.com"}};
	struct mail_message m = simple();
	m.to = to;
	m.n_to = 2;
	char *msg = built(&m);
	assert_non_null(strstr(msg, "\r\n =?UTF-8?B?"));
	char *v = header(msg, "To");
	char *d = decode_words(v);
	char want[600];
	snprintf(want, sizeof want, "%s <long@example.com>, Bob <bob@example.com>", name);
	assert_string_equal(d, want);
	free(d);
	free(v);
	free(msg);
}

static void test_subject_encoding(void **state)
{
	(void)state;
	struct {
		const char *subject;
		bool plain; /* written as it is */
	} cases[] = {
		{"Weekly sync", true},
		{"Re: [rooms] 3rd floor, 10:00-11:00 (Tuesday) & more!", true},
		{"Réunion hebdomadaire", false},
		{"会議室の予約: 第3会議室 — 10:00〜11:00", false},
		{"Emoji 🎉 party", false},
		{"=?UTF-8?B?SGk=?= not decoded", false},
		{"two  spaces", false},
		{" leading", false},
		{"trailing ", false},
		{"tab\tinside", false},
		{"escape \x1b[31m red", false},
		{"", false},
	};
	for (size_t i = 0; i < countof(cases); i++) {
		struct mail_message m = simple();
		m.subject = cases[i].subject;
		char *msg = built(&m);
		char *v = header(msg, "Subject");
		if (cases[i].plain)
			assert_string_equal(v, cases[i].subject);
		else
			assert_true(*cases[i].subject == '\0' || strncmp(v, "=?UTF-8?B?", 10) == 0);
		char *d = decode_words(v);
		assert_string_equal(d, cases[i].subject);
		free(d);
		free(v);
		free(msg);
	}
}

static void test_subject_folding(void **state)
{
	(void)state;
	/* A long ASCII subject folds at its spaces; a long non-ASCII one becomes several
	 * encoded-words; a word longer than a line is encoded rather than left over-long. */
	char ascii[400] = "", utf8[800] = "";
	for (int i = 0; i < 30; i++)
		strcat(ascii, i ? " meeting" : "meeting");
	for (int i = 0; i < 60; i++)
		strcat(utf8, "Größe ");
	strcat(utf8, "end");
	char *word = repeat('w', 120);
	const char *subjects[] = {ascii, utf8, word};
	for (size_t i = 0; i < countof(subjects); i++) {
		struct mail_message m = simple();
		m.subject = subjects[i];
		char *msg = built(&m);
		char *v = header(msg, "Subject");
		char *d = decode_words(v);
		assert_string_equal(d, subjects[i]);
		const char *field = strstr(msg, "\r\nSubject:");
		assert_non_null(field);
		assert_non_null(strstr(field + 2, "\r\n "));
		free(d);
		free(v);
		free(msg);
	}
	free(word);
}

/* ---- injection ---- */

static void test_injection_refused(void **state)
{
	(void)state;
	const char *evil[] = {
		"x\r\nBcc: eve@example.com",
		"x\nBcc: eve@example.com",
		"x\rBcc: eve@example.com",
		"x\r\n\r\n<html>spoof</html>",
		"\r\n",
		"\n",
		"x\n",
	};
	for (size_t i = 0; i < countof(evil); i++) {
		struct mail_message m = simple();
		m.subject = evil[i];
		assert_string_equal(refused(&m), "subject");

		m = simple();
		m.from.name = evil[i];
		assert_string_equal(refused(&m), "from");

		struct mail_addr to[] = {{"Bob", "bob@example.com"}, {evil[i], "eve@example.com"}};
		m = simple();
		m.to = to;
		m.n_to = 2;
		assert_string_equal(refused(&m), "to");

		struct mail_addr cc[] = {{evil[i], "carol@example.com"}};
		m = simple();
		m.cc = cc;
		m.n_cc = 1;
		assert_string_equal(refused(&m), "cc");

		struct mail_addr rt = {evil[i], "organizer@example.com"};
		m = simple();
		m.reply_to = &rt;
		assert_string_equal(refused(&m), "reply_to");
	}
	/* Addresses: anything that could end the field or open another one. */
	const char *bad_addr[] = {
		"bob@example.com\r\nBcc: eve@example.com",
		"bob@example.com\nBcc: eve@example.com",
		"bob@example.com>, eve@example.com",
		"Bob <bob@example.com>",
		"bob@example.com, eve@example.com",
		"bob@example.com eve@example.com",
		"",
	};
	for (size_t i = 0; i < countof(bad_addr); i++) {
		struct mail_message m = simple();
		m.from.addr = bad_addr[i];
		assert_string_equal(refused(&m), "from");
		struct mail_addr to[] = {{"Bob", bad_addr[i]}};
		m = simple();
		m.to = to;
		assert_string_equal(refused(&m), "to");
		struct mail_addr rt = {"R", bad_addr[i]};
		m = simple();
		m.reply_to = &rt;
		assert_string_equal(refused(&m), "reply_to");
	}
	/* The Message-ID. */
	const char *bad_id[] = {
		"abc@example.com>\r\nBcc: eve@example.com",
		"abc@example.com\r\n",
		"<abc@example.com>",
		"abc def@example.com",
		"abc",
		"@example.com",
		"abc@",
		"a@b@c",
		"",
	};
	for (size_t i = 0; i < countof(bad_id); i++) {
		struct mail_message m = simple();
		m.message_id = bad_id[i];
		assert_string_equal(refused(&m), "message_id");
	}
	struct mail_message m = simple();
	m.message_id = NULL;
	assert_string_equal(refused(&m), "message_id");
	char *long_id = repeat('i', MAIL_MESSAGE_ID_MAX);
	long_id[10] = '@';
	m.message_id = long_id;
	free(built_max(&m, 998));
	char *longer = repeat('i', MAIL_MESSAGE_ID_MAX + 1);
	longer[10] = '@';
	m.message_id = longer;
	assert_string_equal(refused(&m), "message_id");
	free(long_id);
	free(longer);
	/* Not UTF-8, a missing subject, no recipient. */
	m = simple();
	m.subject = "caf\xe9";
	assert_string_equal(refused(&m), "subject");
	m = simple();
	m.subject = NULL;
	assert_string_equal(refused(&m), "subject");
	m = simple();
	m.from.name = "\xc3\x28";
	assert_string_equal(refused(&m), "from");
	m = simple();
	m.n_to = 0;
	assert_string_equal(refused(&m), "to");
	m = simple();
	m.text = "caf\xe9";
	assert_string_equal(refused(&m), "text");
	m = simple();
	m.html = "<p>caf\xe9</p>";
	assert_string_equal(refused(&m), "html");
}

/* A body cannot produce a header or a boundary: what looks like one arrives encoded. */
static void test_body_cannot_break_out(void **state)
{
	(void)state;
	const char *text = "line\r\n\r\nBcc: eve@example.com\r\n--=_meeting-rooms-alt--\r\n"
			   "--=_meeting-rooms-mixed\r\nContent-Type: text/html\r\n\r\n.\r\nend";
	struct mail_message m = simple();
	m.text = text;
	char *msg = built(&m);
	assert_int_equal(strstr(msg, "\r\n--=_meeting-rooms-alt--\r\n") -
	                         strstr(msg, "--=_meeting-rooms-alt--"),
	                 -2);
	const char *close = strstr(msg, "--=_meeting-rooms-alt--");
	assert_null(strstr(close + 1, "--=_meeting-rooms-alt"));
	assert_null(strstr(msg, "\r\n.\r\n")); /* the lone dot is "=2E" */
	char *plain = part(msg, "text/plain", 0);
	char *want = malloc(strlen(text) + 1);
	/* the text's line breaks are CRLF already: it comes back byte for byte */
	strcpy(want, text);
	assert_string_equal(plain, want);
	free(want);
	free(plain);
	free(msg);
}

/* ---- bodies ---- */

static void test_quoted_printable(void **state)
{
	(void)state;
	char text[2048] = "";
	strcat(text, "a=b\tc \n"); /* '=' and the space before a line break encoded */
	strcat(text, "Grüße, naïve café\r\n");
	for (int i = 0; i < 40; i++)
		strcat(text, "0123456789"); /* a 400-character line: soft breaks */
	strcat(text, "\rlast line\twith tab at end\t");
	struct mail_message m = simple();
	m.text = text;
	char *msg = built(&m);
	assert_non_null(strstr(msg, "a=3Db\tc=20\r\n"));
	assert_non_null(strstr(msg, "Gr=C3=BC=C3=9Fe, na=C3=AFve caf=C3=A9\r\n"));
	assert_non_null(strstr(msg, "=\r\n"));
	assert_non_null(strstr(msg, "with tab at end=09\r\n"));
	char *plain = part(msg, "text/plain", 0);
	/* LF and CR became CRLF */
	char want[2048] = "a=b\tc \r\nGrüße, naïve café\r\n";
	for (int i = 0; i < 40; i++)
		strcat(want, "0123456789");
	strcat(want, "\r\nlast line\twith tab at end\t");
	assert_string_equal(plain, want);
	free(plain);
	free(msg);
}

static void test_html(void **state)
{
	(void)state;
	/* Made from the text: every special character escaped, paragraphs and line breaks. */
	struct mail_message m = simple();
	m.text = "Purpose: <script>alert('x')</script> & \"more\"\n\nSecond paragraph\nline 2";
	char *msg = built(&m);
	char *html = part(msg, "text/html", 0);
	assert_non_null(strstr(
		html, "<p>Purpose: &lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; "
		      "&amp; &quot;more&quot;</p>\r\n<p>Second paragraph<br>\r\nline 2</p>"));
	assert_null(strstr(html, "<script>"));
	free(html);
	free(msg);

	/* Given by the caller, with values through mail_html_escape. */
	struct jsonx_text h = {0};
	jsonx_text_lit(&h, "<p><b>Room:</b> ");
	mail_html_escape(&h, "A&B <\"Blue\"> 'room'");
	jsonx_text_lit(&h, "</p>");
	assert_string_equal(h.data, "<p><b>Room:</b> A&amp;B &lt;&quot;Blue&quot;&gt; "
	                            "&#39;room&#39;</p>");
	m = simple();
	m.html = h.data;
	msg = built(&m);
	html = part(msg, "text/html", 0);
	assert_string_equal(html, h.data);
	free(html);
	free(msg);
	jsonx_text_free(&h);
}

static const char ICS_REQUEST[] = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//EN\r\n"
				  "METHOD:REQUEST\r\nBEGIN:VEVENT\r\nUID:r-42@rooms\r\n"
				  "SUMMARY:Réunion\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n";

static void test_calendar_parts(void **state)
{
	(void)state;
	struct mail_message m = simple();
	m.ics = ICS_REQUEST;
	m.ics_method = MAIL_ICS_REQUEST;
	char *msg = built(&m);
	assert_non_null(strstr(msg, "\r\nContent-Type: multipart/mixed; "
	                            "boundary=\"=_meeting-rooms-mixed\"\r\n\r\n"
	                            "--=_meeting-rooms-mixed\r\n"
	                            "Content-Type: multipart/alternative; "
	                            "boundary=\"=_meeting-rooms-alt\"\r\n"));
	/* The alternative the calendar clients act on, then the attachment. */
	const char *alt = strstr(msg,
	                         "Content-Type: text/calendar; charset=UTF-8; method=REQUEST\r\n"
	                         "Content-Transfer-Encoding: base64\r\n\r\n");
	const char *att = strstr(msg,
	                         "Content-Type: text/calendar; charset=UTF-8; method=REQUEST;\r\n"
	                         " name=\"invite.ics\"\r\n"
	                         "Content-Disposition: attachment; filename=\"invite.ics\"\r\n"
	                         "Content-Transfer-Encoding: base64\r\n\r\n");
	const char *alt_end = strstr(msg, "--=_meeting-rooms-alt--\r\n");
	assert_non_null(alt);
	assert_non_null(att);
	assert_true(alt < alt_end && alt_end < att);
	assert_non_null(strstr(msg, "\r\n--=_meeting-rooms-mixed--\r\n"));
	for (size_t i = 0; i < 2; i++) {
		char *ics = part(msg, "text/calendar", i);
		assert_string_equal(ics, ICS_REQUEST);
		free(ics);
	}
	free(msg);

	/* The method parameter must agree with the object's METHOD. */
	m.ics_method = MAIL_ICS_CANCEL;
	assert_string_equal(refused(&m), "ics");
	m.ics_method = MAIL_ICS_NONE;
	assert_string_equal(refused(&m), "ics_method");
	m.ics = NULL;
	m.ics_method = MAIL_ICS_REQUEST;
	assert_string_equal(refused(&m), "ics_method");
	m.ics = "BEGIN:VCALENDAR\r\nMETHOD:REQUEST\r\nMETHOD:CANCEL\r\nEND:VCALENDAR\r\n";
	assert_string_equal(refused(&m), "ics");
	m.ics = "BEGIN:VCALENDAR\r\nMETHOD:REQUESTED\r\nEND:VCALENDAR\r\n";
	assert_string_equal(refused(&m), "ics");
	m.ics = "BEGIN:VCALENDAR\r\nMETHOD:CANCEL\r\nEND:VCALENDAR\r\n";
	m.ics_method = MAIL_ICS_CANCEL;
	msg = built(&m);
	assert_non_null(strstr(msg, "method=CANCEL"));
	free(msg);
}

/* ---- sending: what is refused before any network ---- */

static void test_smtp_url(void **state)
{
	(void)state;
	struct {
		const char *url;
		bool valid, loopback;
	} cases[] = {
		{"smtp://127.0.0.1:1025", true, true},
		{"smtp://127.12.0.3", true, true},
		{"smtp://localhost:25", true, true},
		{"smtp://LOCALHOST:25", true, true},
		{"smtp://[::1]:25", true, true},
		{"smtp://mail.example.com:587", true, false},
		{"smtps://mail.example.com", true, false},
		{"smtp://mail.example.com/client.example.com", true, false},
		{"smtp://128.0.0.1", true, false},
		{"smtp://127.0.0.1.example.com", true, false},
		{"smtp://localhost.example.com", true, false},
		{"smtp://[::2]", true, false},
		{"http://mail.example.com", false, false},
		{"file:///etc/passwd", false, false},
		{"smtp://user:secret@mail.example.com", false, false},
		{"smtp://mail.example.com/?x=1", false, false},
		{"smtp://mail.example.com/a b", false, false},
		{"mail.example.com:25", false, false},
		{"", false, false},
	};
	for (size_t i = 0; i < countof(cases); i++) {
		bool loopback = !cases[i].loopback;
		bool valid = mail_smtp_url_valid(cases[i].url, &loopback);
		if (valid != cases[i].valid || loopback != cases[i].loopback)
			fail_msg("%s: valid %d loopback %d", cases[i].url, valid, loopback);
	}
	assert_false(mail_smtp_url_valid(NULL, NULL));
}

static void test_send_invalid(void **state)
{
	(void)state;
	struct mail_result res;
	const char *rcpt[] = {"bob@example.com"};
	const char *evil[] = {"bob@example.com>\r\nRCPT TO:<eve@example.com"};
	struct mail_smtp cfg = {
		"smtp://127.0.0.1:1", NULL, NULL, "rooms@example.com", 1000, NULL, NULL};
	assert_int_equal(mail_send(&cfg, evil, 1, "x", 1, &res), MAIL_INVALID);
	assert_int_equal(res.status, MAIL_INVALID);
	assert_int_equal(mail_send(&cfg, rcpt, 0, "x", 1, &res), MAIL_INVALID);
	cfg.from = "rooms@example.com>\r\nRCPT TO:<eve@example.com";
	assert_int_equal(mail_send(&cfg, rcpt, 1, "x", 1, &res), MAIL_INVALID);
	cfg.from = "rooms@example.com";
	cfg.url = "http://127.0.0.1:1";
	assert_int_equal(mail_send(&cfg, rcpt, 1, "x", 1, &res), MAIL_INVALID);
	assert_int_equal(res.smtp_code, 0);
}

/* Review 14c M4: a refusal of our side of the conversation (the relay refusing this client,
 * its login, its sender address, TLS) waits for the configuration to be fixed; a refusal of the
 * recipient or of the message is final; no reply or a 4xx passes. */
static void test_failure_status(void **state)
{
	(void)state;
	struct {
		enum mail_step step;
		long code;
		bool client_refused;
		enum mail_status status;
		bool relay;
	} cases[] = {
		/* No connection, a timeout: temporary, nobody's configuration. */
		{MAIL_STEP_CONNECT, 0, false, MAIL_TEMPORARY, false},
		/* A greeting of 554 (this client is not served) or 421 (busy). */
		{MAIL_STEP_CONNECT, 554, false, MAIL_TEMPORARY, true},
		{MAIL_STEP_CONNECT, 421, false, MAIL_TEMPORARY, false},
		{MAIL_STEP_HELLO, 550, false, MAIL_TEMPORARY, true},
		/* STARTTLS not offered (curl refuses after EHLO's 250), or refused. */
		{MAIL_STEP_HELLO, 250, true, MAIL_TEMPORARY, true},
		{MAIL_STEP_STARTTLS, 454, true, MAIL_TEMPORARY, true},
		/* The login: 535 refused, 534 mechanism too weak, 454 temporary. */
		{MAIL_STEP_AUTH, 535, true, MAIL_TEMPORARY, true},
		{MAIL_STEP_AUTH, 534, false, MAIL_TEMPORARY, true},
		{MAIL_STEP_AUTH, 454, false, MAIL_TEMPORARY, false},
		/* MAIL FROM: 530 authentication required, 550/553 this sender not allowed. */
		{MAIL_STEP_SENDER, 530, false, MAIL_TEMPORARY, true},
		{MAIL_STEP_SENDER, 550, false, MAIL_TEMPORARY, true},
		{MAIL_STEP_SENDER, 553, false, MAIL_TEMPORARY, true},
		{MAIL_STEP_SENDER, 451, false, MAIL_TEMPORARY, false},
		/* RCPT TO: this recipient; 530 still means the login is missing. */
		{MAIL_STEP_RECIPIENT, 550, false, MAIL_PERMANENT, false},
		{MAIL_STEP_RECIPIENT, 553, false, MAIL_PERMANENT, false},
		{MAIL_STEP_RECIPIENT, 530, false, MAIL_TEMPORARY, true},
		{MAIL_STEP_RECIPIENT, 451, false, MAIL_TEMPORARY, false},
		{MAIL_STEP_RECIPIENT, 452, false, MAIL_TEMPORARY, false},
		/* DATA and the message: refused for good (554 content), or later (451). */
		{MAIL_STEP_DATA, 554, false, MAIL_PERMANENT, false},
		{MAIL_STEP_DATA, 552, false, MAIL_PERMANENT, false},
		{MAIL_STEP_DATA, 451, false, MAIL_TEMPORARY, false},
		{MAIL_STEP_DATA, 0, false, MAIL_TEMPORARY, false},
	};
	for (size_t i = 0; i < countof(cases); i++) {
		bool relay = !cases[i].relay;
		enum mail_status st = mail_failure_status(cases[i].step, cases[i].code, NULL,
		                                          cases[i].client_refused, &relay);
		if (st != cases[i].status || relay != cases[i].relay)
			fail_msg("%s %ld: status %d relay %d", mail_step_name(cases[i].step),
			         cases[i].code, (int)st, relay);
	}
	assert_int_equal(mail_failure_status(MAIL_STEP_RECIPIENT, 550, NULL, false, NULL),
	                 MAIL_PERMANENT);
	/* Relaying refused at RCPT TO (review 14d-A L1): our configuration or the relay's policy,
	 * not this recipient: temporary, counted as the relay's refusal.  A recipient unknown or
	 * a full mailbox keeps its own class. */
	static const struct {
		long code;
		const char *reply;
		enum mail_status status;
		bool relay;
	} replies[] = {
		{554, "554 5.7.1 <bob@example.org>: Relay access denied", MAIL_TEMPORARY, true},
		{550, "550 5.7.54 SMTP; Unable to relay recipient in non-accepted domain",
	         MAIL_TEMPORARY, true},
		{550, "550-5.7.64 TenantAttribution; Relay Access Denied", MAIL_TEMPORARY, true},
		{554, "554 Relay access denied", MAIL_TEMPORARY, true},
		{550, "550 relaying denied for <x@example.org>", MAIL_TEMPORARY, true},
		{550,
	         "550 5.1.1 <bob@example.org>: Recipient address rejected: User unknown in "
	         "relay recipient table",
	         MAIL_PERMANENT, false},
		{550, "550 5.1.1 No such user", MAIL_PERMANENT, false},
		{552, "552 5.2.2 Mailbox full", MAIL_PERMANENT, false},
		{550, "550 No such user (5.7.1 mentioned later)", MAIL_PERMANENT, false},
		/* Review 14e L3: a policy refusal of this recipient is the recipient's (permanent, no
		 * relay fault), whatever its 5.7.x; only the relay words, 5.7.54 and 5.7.64 are ours. */
		{554, "554 5.7.1 <bob@example.org>: Recipient address rejected: Access denied",
	         MAIL_PERMANENT, false},
		{550, "550 5.7.1 Delivery not authorized, message refused by policy",
	         MAIL_PERMANENT, false},
		{550, "550 5.7.133 RESOLVER.RST.SenderNotAuthenticatedForGroup", MAIL_PERMANENT,
	         false},
		{550, "550 5.7.606 Access denied, banned sending IP", MAIL_PERMANENT, false},
		{550, "550 5.7.541 something else", MAIL_PERMANENT, false},
		{554, "554 5.7.1 <bob@example.org>: Relay access denied", MAIL_TEMPORARY, true},
		{550, "550 5.7.1 Unable to relay for bob@example.org", MAIL_TEMPORARY, true},
		{554, "554 5.7.1 RELAYING DENIED", MAIL_TEMPORARY, true},
		{550, "550 5.7.64 TenantAttribution; Relay Access Denied", MAIL_TEMPORARY, true},
		{550, "550 5.7.64 TenantAttribution", MAIL_TEMPORARY, true},
		{550, "", MAIL_PERMANENT, false},
		{451, "451 4.7.1 Greylisted, try again", MAIL_TEMPORARY, false},
	};
	for (size_t i = 0; i < countof(replies); i++) {
		bool relay = !replies[i].relay;
		enum mail_status st = mail_failure_status(MAIL_STEP_RECIPIENT, replies[i].code,
		                                          replies[i].reply, false, &relay);
		if (st != replies[i].status || relay != replies[i].relay)
			fail_msg("%s: status %d relay %d", replies[i].reply, (int)st, relay);
	}
	/* At DATA a policy refusal is about the message: permanent. */
	assert_int_equal(mail_failure_status(MAIL_STEP_DATA, 554,
	                                     "554 5.7.1 Message rejected as spam", false, NULL),
	                 MAIL_PERMANENT);
	assert_true(mail_reply_refuses_relay("550 5.7.54 Unable to relay"));
	assert_false(mail_reply_refuses_relay(NULL));
	assert_false(mail_reply_refuses_relay("55"));
	assert_false(mail_reply_refuses_relay("550 5.7."));
	assert_false(mail_reply_refuses_relay("550 5.7.1 Access denied"));
	assert_false(mail_reply_refuses_relay("550 5.7.5"));
	assert_true(mail_reply_refuses_relay("550-5.7.64 x"));
	assert_string_equal(mail_step_name(MAIL_STEP_SENDER), "sender");
	assert_string_equal(mail_step_name((enum mail_step)99), "connect");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_address_valid),
		cmocka_unit_test(test_address_limits),
		cmocka_unit_test(test_address_dedupe),
		cmocka_unit_test(test_date),
		cmocka_unit_test(test_simple_message),
		cmocka_unit_test(test_display_names),
		cmocka_unit_test(test_long_names_fold),
		cmocka_unit_test(test_subject_encoding),
		cmocka_unit_test(test_subject_folding),
		cmocka_unit_test(test_injection_refused),
		cmocka_unit_test(test_body_cannot_break_out),
		cmocka_unit_test(test_quoted_printable),
		cmocka_unit_test(test_html),
		cmocka_unit_test(test_calendar_parts),
		cmocka_unit_test(test_smtp_url),
		cmocka_unit_test(test_send_invalid),
		cmocka_unit_test(test_failure_status),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
