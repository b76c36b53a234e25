/* Unit tests of reservation-service/src/mailer.c's rendering (res_mail_render): the headers of
 * an invitation, an update and a cancellation, the Message-ID, the iTIP method, refused rows,
 * and that line breaks in a purpose or a name never make a header of their own. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "jsonx.h"
#include "../../reservation-service/src/mailer.h"

#define FROM "rooms@example.com"
#define NOW 1796000000LL

/* A reservation row's payload as migrations/009_mail.sql writes it. */
static char *payload(const char *method, int version, const char *purpose, const char *name,
                     const char *reason)
{
	char *out = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&out, &len);
	fprintf(f,
	        "{\"method\":\"%s\",\"reservation\":{\"id\":7,\"room_id\":3,\"purpose\":\"%s\","
	        "\"status\":\"%s\",\"version\":%d,\"series_id\":null,\"occurrence_start\":null,"
	        "\"attendees\":[\"bob@example.org\",\"carol@example.net\"],"
	        "\"organizer_email\":\"alice@example.com\",\"organizer_name\":\"%s\","
	        "\"meeting_url\":\"https://meet.jit.si/abc\",\"cancel_reason\":%s},"
	        "\"room\":{\"name\":\"Everest\",\"time_zone\":\"Europe/Berlin\"},"
	        "\"zone\":\"Europe/Berlin\",\"local_start\":\"2026-12-01T10:00:00\","
	        "\"local_end\":\"2026-12-01T11:00:00\",\"series\":null,\"sequence\":%d,"
	        "\"reason\":%s}",
	        method, purpose, strcmp(method, "CANCEL") == 0 ? "cancelled" : "confirmed", version,
	        name, reason ? reason : "null", version - 1, reason ? reason : "null");
	fclose(f);
	return out;
}

/* The header block of msg with folded lines joined (CRLF + blank removed); a new string. */
static char *headers_of(const char *msg)
{
	const char *end = strstr(msg, "\r\n\r\n");
	assert_non_null(end);
	size_t n = (size_t)(end - msg) + 2;
	char *h = malloc(n + 1), *w = h;
	for (size_t i = 0; i < n; i++) {
		if (msg[i] == '\r' && msg[i + 1] == '\n' &&
		    (msg[i + 2] == ' ' || msg[i + 2] == '\t')) {
			i += 1;
			continue;
		}
		*w++ = msg[i];
	}
	*w = '\0';
	return h;
}

/* The value of header name in unfolded headers h ("" when absent), copied into out. */
static const char *header(const char *h, const char *name, char *out, size_t size)
{
	size_t n = strlen(name);
	out[0] = '\0';
	for (const char *line = h; line && *line; line = strstr(line, "\r\n") + 2) {
		if (strncasecmp(line, name, n) == 0 && line[n] == ':') {
			const char *v = line + n + 1, *e = strstr(v, "\r\n");
			while (*v == ' ')
				v++;
			snprintf(out, size, "%.*s", (int)(e - v), v);
			return out;
		}
		if (!strstr(line, "\r\n"))
			break;
	}
	return out;
}

static char *render(const char *p, const char *to)
{
	struct jsonx_text msg = {0};
	const char *why = NULL;
	assert_true(res_mail_render(p, NULL, to, FROM, NOW, &msg, &why));
	assert_null(why);
	return msg.data;
}

static void invitation(void **state)
{
	(void)state;
	char *p = payload("REQUEST", 1, "Design review", "Alice Example", NULL);
	char *msg = render(p, "Bob@Example.org");
	char *h = headers_of(msg);
	char v[512];
	assert_string_equal(header(h, "Subject", v, sizeof v),
	                    "Invitation: Design review @ Everest, 2026-12-01 10:00");
	assert_string_equal(header(h, "From", v, sizeof v), "Meeting rooms <rooms@example.com>");
	assert_string_equal(header(h, "To", v, sizeof v), "Bob@Example.org");
	assert_non_null(strstr(header(h, "Reply-To", v, sizeof v), "<alice@example.com>"));
	header(h, "Message-ID", v, sizeof v);
	assert_int_equal(strlen(v), strlen("<reservation-7-v1-") + 12 + strlen("@example.com>"));
	assert_memory_equal(v, "<reservation-7-v1-", 18);
	for (size_t i = 18; i < 30; i++)
		assert_true(isxdigit((unsigned char)v[i]) && !isupper((unsigned char)v[i]));
	assert_string_equal(v + 30, "@example.com>");
	assert_non_null(strstr(msg, "method=REQUEST"));
	/* The same row to the same recipient in any case: the same Message-ID. */
	char *again = render(p, "bob@example.ORG");
	char *h2 = headers_of(again), v2[512];
	assert_string_equal(header(h2, "Message-ID", v2, sizeof v2), v);
	/* The organizer gets it with their name, without Reply-To. */
	char *own = render(p, "alice@example.com");
	char *h3 = headers_of(own);
	assert_string_equal(header(h3, "To", v2, sizeof v2), "Alice Example <alice@example.com>");
	assert_string_equal(header(h3, "Reply-To", v2, sizeof v2), "");
	free(h3), free(own), free(h2), free(again), free(h), free(msg), free(p);
}

static void update_and_cancel(void **state)
{
	(void)state;
	char v[512];
	char *p = payload("REQUEST", 2, "Design review", "Alice Example", NULL);
	char *msg = render(p, "bob@example.org"), *h = headers_of(msg);
	assert_string_equal(header(h, "Subject", v, sizeof v),
	                    "Updated: Design review @ Everest, 2026-12-01 10:00");
	assert_memory_equal(header(h, "Message-ID", v, sizeof v), "<reservation-7-v2-", 18);
	free(h), free(msg), free(p);
	p = payload("CANCEL", 3, "", "Alice Example", "\"room_deleted\"");
	msg = render(p, "bob@example.org"), h = headers_of(msg);
	assert_string_equal(header(h, "Subject", v, sizeof v),
	                    "Cancelled: Reservation @ Everest, 2026-12-01 10:00");
	assert_non_null(strstr(msg, "method=CANCEL"));
	assert_null(strstr(msg, "method=REQUEST"));
	free(h), free(msg), free(p);
}

static void no_header_injection(void **state)
{
	(void)state;
	char v[512];
	char *p = payload("REQUEST", 1, "Plan\\r\\nBcc: victim@example.com\\r\\nX-Evil: 1",
	                  "Eve\\r\\nBcc: victim@example.com", NULL);
	for (int i = 0; i < 2; i++) {
		char *msg = render(p, i ? "alice@example.com" : "bob@example.org");
		char *h = headers_of(msg);
		assert_string_equal(header(h, "Bcc", v, sizeof v), "");
		assert_string_equal(header(h, "X-Evil", v, sizeof v), "");
		header(h, "Subject", v, sizeof v);
		assert_null(strpbrk(v, "\r\n"));
		assert_null(strstr(h, "\r\nBcc:"));
		assert_null(strstr(h, "\r\nX-Evil:"));
		free(h), free(msg);
	}
	free(p);
}

/* A purpose and an organizer name of 200 two-byte characters (the API's limits) still make a
 * message for every recipient: the subject and the names are cut after a whole character. */
static void long_non_ascii_text(void **state)
{
	(void)state;
	char purpose[401], name[401];
	for (int i = 0; i < 200; i++) {
		memcpy(purpose + 2 * i, "\xd0\xb6", 2); /* ж */
		memcpy(name + 2 * i, "\xc3\xa9", 2);    /* é */
	}
	purpose[400] = name[400] = '\0';
	char *p = payload("REQUEST", 1, purpose, name, NULL);
	for (int i = 0; i < 2; i++) {
		char *msg = render(p, i ? "alice@example.com" : "bob@example.org");
		assert_non_null(strstr(msg, "Subject: "));
		free(msg);
	}
	free(p);
}

/* payload with extra fields spliced in before its last brace (a new string). */
static char *with(char *p, const char *extra)
{
	char *out = NULL;
	size_t n = strlen(p);
	assert_true(asprintf(&out, "%.*s,%s}", (int)(n - 1), p, extra) > 0);
	free(p);
	return out;
}

/* Review 14c L4: an attendee added by an update is invited, one removed gets a CANCEL naming
 * only them (the iCalendar part, base64, is checked by test_res_mail.py). */
static void added_removed_and_utc(void **state)
{
	(void)state;
	char v[512];
	char *p = with(payload("REQUEST", 2, "Design review", "Alice Example", NULL),
	               "\"added\":[\"carol@example.net\"]");
	char *msg = render(p, "Carol@Example.net"), *h = headers_of(msg);
	assert_string_equal(header(h, "Subject", v, sizeof v),
	                    "Invitation: Design review @ Everest, 2026-12-01 10:00");
	assert_non_null(strstr(msg, "You are invited"));
	free(h), free(msg);
	msg = render(p, "bob@example.org"), h = headers_of(msg);
	assert_memory_equal(header(h, "Subject", v, sizeof v), "Updated: ", 9);
	free(h), free(msg), free(p);

	p = with(payload("CANCEL", 2, "Design review", "Alice Example", NULL), "\"removed\":true");
	msg = render(p, "dave@example.org"), h = headers_of(msg);
	assert_memory_equal(header(h, "Subject", v, sizeof v), "Cancelled: ", 11);
	assert_non_null(strstr(msg, "method=CANCEL"));
	assert_non_null(strstr(msg, "removed"));
	free(h), free(msg), free(p);
}

/* A row that refers to a shared payload (013_mail_semantics.sql, "shared") is that payload with
 * the row's own keys over it. */
static void shared_payload(void **state)
{
	(void)state;
	struct jsonx_text msg = {0};
	const char *why = NULL;
	char v[512];
	char *p = payload("REQUEST", 2, "Design review", "Alice Example", NULL);
	assert_true(res_mail_render("{\"shared\":5}", p, "bob@example.org", FROM, NOW, &msg, &why));
	char *h = headers_of(msg.data);
	assert_memory_equal(header(h, "Subject", v, sizeof v), "Updated: Design review", 22);
	free(h), jsonx_text_free(&msg);
	assert_true(res_mail_render("{\"shared\":5,\"method\":\"CANCEL\",\"removed\":true}", p,
	                            "dave@example.org", FROM, NOW, &msg, &why));
	h = headers_of(msg.data);
	assert_memory_equal(header(h, "Subject", v, sizeof v), "Cancelled: Design review", 24);
	assert_non_null(strstr(msg.data, "method=CANCEL"));
	free(h), jsonx_text_free(&msg);
	assert_false(
		res_mail_render("{\"shared\":5}", "{", "bob@example.org", FROM, NOW, &msg, &why));
	jsonx_text_free(&msg);
	free(p);
}

static void refused_rows(void **state)
{
	(void)state;
	struct jsonx_text msg = {0};
	const char *why = NULL;
	char *p = payload("REQUEST", 1, "x", "A", NULL);
	assert_false(res_mail_render("{", NULL, "bob@example.org", FROM, NOW, &msg, &why));
	assert_non_null(why);
	jsonx_text_free(&msg);
	assert_false(res_mail_render("{\"method\":\"PUBLISH\"}", NULL, "bob@example.org", FROM, NOW,
	                             &msg, &why));
	jsonx_text_free(&msg);
	assert_false(
		res_mail_render(p, NULL, "bob@example.org\r\nBcc: x@y.z", FROM, NOW, &msg, &why));
	jsonx_text_free(&msg);
	assert_false(
		res_mail_render(p, NULL, "bob@example.org", "not an address", NOW, &msg, &why));
	jsonx_text_free(&msg);
	free(p);
}

/* SMTP_FROM (review 14d-A L4): its domain is the right side of every Message-ID, so one that
 * leaves no room for the longest left side is refused (at configuration time, main.c), never
 * cut into an id mail_build refuses. */
static void from_fits_message_id(void **state)
{
	(void)state;
	char from[MAIL_ADDRESS_MAX + 1], *d = from + snprintf(from, sizeof from, "r@");
	int fits = MAIL_MESSAGE_ID_MAX - RES_MAIL_MESSAGE_ID_LEFT_MAX - 1;
	/* labels of 60 letters and a dot, up to the fitting length */
	for (int i = 0; i < fits; i++)
		d[i] = i % 61 == 60 ? '.' : 'a';
	d[fits] = '\0';
	assert_true(res_mail_from_valid(from));
	struct jsonx_text msg = {0};
	const char *why = NULL;
	char *p = payload("REQUEST", 1, "x", "A", NULL);
	assert_true(res_mail_render(p, NULL, "bob@example.org", from, NOW, &msg, &why));
	jsonx_text_free(&msg);
	d[fits] = 'b';
	d[fits + 1] = '\0';
	assert_true(mail_address_valid(from));
	assert_false(res_mail_from_valid(from));
	assert_false(res_mail_render(p, NULL, "bob@example.org", from, NOW, &msg, &why));
	jsonx_text_free(&msg);
	free(p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(invitation),          cmocka_unit_test(update_and_cancel),
		cmocka_unit_test(no_header_injection), cmocka_unit_test(long_non_ascii_text),
		cmocka_unit_test(refused_rows),        cmocka_unit_test(added_removed_and_utc),
		cmocka_unit_test(shared_payload),      cmocka_unit_test(from_fits_message_id),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
