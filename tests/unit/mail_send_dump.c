/* mail_send_dump: builds one message with common/src/mail.c (and its invitation with ical.h) and
 * sends it with mail_send, for tests/integration/test_mail_send.py, which reads what arrived
 * through Mailpit's API.  Until a service sends mail, this is the libcurl SMTP path's driver.
 *
 *   mail_send_dump < spec.json
 * The JSON object: "message" with the fields of struct mail_message ("from" and "reply_to"
 * objects {name, addr}, "to" and "cc" arrays of them, "subject", "message_id", "date" seconds,
 * "text", "html"); optional "event" for an invitation: "method" (REQUEST or CANCEL), "uid",
 * "sequence", "summary", "location", "url", "zone", "start" and "end" (local
 * "YYYY-MM-DDTHH:MM:SS" in zone), "organizer" and "attendees" (addresses); optional "smtp"
 * {url, user, password, from, timeout_ms} and "rcpt" (the envelope recipients).  Without "smtp"
 * the message is written to stdout; with it, one JSON line {"status": "sent" | "temporary" |
 * "permanent" | "invalid", "smtp_code", "detail"}.  A message the builder refuses gives
 * {"status": "refused", "why": field}.  Exits 0 when it got that far, 1 on bad input. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <jansson.h>

#include "ical.h"
#include "mail.h"

static const char *str_of(const json_t *obj, const char *key)
{
	return json_string_value(json_object_get(obj, key)); /* NULL when absent or not a string */
}

static struct mail_addr addr_of(const json_t *o)
{
	return (struct mail_addr){str_of(o, "name"), str_of(o, "addr")};
}

/* Addresses of a JSON array (heap array, caller frees; NULL when empty). */
static struct mail_addr *addrs_of(const json_t *list, size_t *n)
{
	*n = json_array_size(list);
	struct mail_addr *a = *n ? calloc(*n, sizeof *a) : NULL;
	for (size_t i = 0; a && i < *n; i++)
		a[i] = addr_of(json_array_get(list, i));
	return a;
}

/* A CAL-ADDRESS line (ORGANIZER or ATTENDEE) with the name as CN, quoted (a name holding a
 * double quote is left out: RFC 6868's ^' escaping is not written here). */
static void cal_address(struct ical_text *t, const char *prop, const json_t *who,
                        const char *params)
{
	const char *name = str_of(who, "name"), *addr = str_of(who, "addr");
	ical_raw(t, prop, strlen(prop));
	if (params)
		ical_raw(t, params, strlen(params));
	if (name && *name && !strpbrk(name, "\"\r\n")) {
		ical_lit(t, ";CN=\"");
		ical_raw(t, name, strlen(name));
		ical_lit(t, "\"");
	}
	ical_lit(t, ":mailto:");
	ical_raw(t, addr ? addr : "", addr ? strlen(addr) : 0);
	ical_end_line(t);
}

/* The invitation of "event": an iTIP REQUEST or CANCEL (RFC 5546) with the room's VTIMEZONE. */
static bool build_ics(const json_t *ev, long long now, struct ical_text *t)
{
	const char *method = str_of(ev, "method"), *zone = str_of(ev, "zone");
	char start[ICAL_DATETIME_LEN], end[ICAL_DATETIME_LEN], stamp[ICAL_DATETIME_LEN], prop[96];
	if (!method || !zone ||
	    !ical_local(str_of(ev, "start") ? str_of(ev, "start") : "", start) ||
	    !ical_local(str_of(ev, "end") ? str_of(ev, "end") : "", end))
		return false;
	bool cancel = strcmp(method, "CANCEL") == 0;
	ical_prop(t, "BEGIN", "VCALENDAR");
	ical_prop(t, "VERSION", "2.0");
	ical_prop(t, "PRODID", "-//meeting-rooms//mail_send_dump//EN");
	ical_prop(t, "CALSCALE", "GREGORIAN");
	ical_prop(t, "METHOD", method);
	if (!ical_vtimezone(t, zone))
		return false;
	ical_prop(t, "BEGIN", "VEVENT");
	ical_prop_text(t, "UID", str_of(ev, "uid"));
	snprintf(prop, sizeof prop, "%lld", json_integer_value(json_object_get(ev, "sequence")));
	ical_prop(t, "SEQUENCE", prop);
	ical_utc(now, stamp);
	ical_prop(t, "DTSTAMP", stamp);
	snprintf(prop, sizeof prop, "DTSTART;TZID=%s", zone);
	ical_prop(t, prop, start);
	snprintf(prop, sizeof prop, "DTEND;TZID=%s", zone);
	ical_prop(t, prop, end);
	ical_prop_text(t, "SUMMARY", str_of(ev, "summary"));
	ical_prop_text(t, "LOCATION", str_of(ev, "location"));
	if (str_of(ev, "url"))
		ical_prop(t, "URL", str_of(ev, "url"));
	ical_prop(t, "STATUS", cancel ? "CANCELLED" : "CONFIRMED");
	cal_address(t, "ORGANIZER", json_object_get(ev, "organizer"), NULL);
	const json_t *list = json_object_get(ev, "attendees");
	for (size_t i = 0; i < json_array_size(list); i++)
		cal_address(t, "ATTENDEE", json_array_get(list, i),
		            ";ROLE=REQ-PARTICIPANT;PARTSTAT=NEEDS-ACTION;RSVP=TRUE");
	ical_prop(t, "END", "VEVENT");
	ical_prop(t, "END", "VCALENDAR");
	return !t->text.failed;
}

static const char *status_name(enum mail_status st)
{
	switch (st) {
	case MAIL_SENT:
		return "sent";
	case MAIL_TEMPORARY:
		return "temporary";
	case MAIL_PERMANENT:
		return "permanent";
	case MAIL_INVALID:
		break;
	}
	return "invalid";
}

int main(void)
{
	int rc = 1;
	json_error_t jerr;
	struct ical_text ics = {0};
	struct jsonx_text msg = {0};
	struct mail_addr *to = NULL, *cc = NULL;
	const char **rcpt = NULL;
	const char *why = NULL;
	json_t *in = json_loadf(stdin, 0, &jerr), *out = NULL; /* owned */
	if (!json_is_object(in)) {
		fprintf(stderr, "mail_send_dump: stdin: %s\n", jerr.text);
		goto out;
	}
	curl_global_init(CURL_GLOBAL_DEFAULT);
	const json_t *m = json_object_get(in, "message"), *ev = json_object_get(in, "event");
	struct mail_addr reply_to = addr_of(json_object_get(m, "reply_to"));
	struct mail_message mm = {
		.from = addr_of(json_object_get(m, "from")),
		.reply_to = json_object_get(m, "reply_to") ? &reply_to : NULL,
		.subject = str_of(m, "subject"),
		.message_id = str_of(m, "message_id"),
		.date = json_integer_value(json_object_get(m, "date")),
		.text = str_of(m, "text"),
		.html = str_of(m, "html"),
	};
	mm.to = to = addrs_of(json_object_get(m, "to"), &mm.n_to);
	mm.cc = cc = addrs_of(json_object_get(m, "cc"), &mm.n_cc);
	if (ev) {
		if (!build_ics(ev, mm.date, &ics)) {
			fprintf(stderr, "mail_send_dump: event refused\n");
			goto out;
		}
		mm.ics = ics.text.data;
		mm.ics_method = strcmp(str_of(ev, "method"), "CANCEL") == 0 ? MAIL_ICS_CANCEL
		                                                            : MAIL_ICS_REQUEST;
	}
	if (!mail_build(&mm, &msg, &why)) {
		out = json_pack("{s:s, s:s}", "status", "refused", "why", why);
		goto print;
	}
	const json_t *smtp = json_object_get(in, "smtp");
	if (!smtp) {
		fwrite(msg.data, 1, msg.len, stdout);
		rc = 0;
		goto out;
	}
	const json_t *list = json_object_get(in, "rcpt");
	size_t n = json_array_size(list);
	rcpt = calloc(n ? n : 1, sizeof *rcpt);
	if (!rcpt)
		goto out;
	for (size_t i = 0; i < n; i++)
		rcpt[i] = json_string_value(json_array_get(list, i));
	struct mail_smtp cfg = {
		.url = str_of(smtp, "url"),
		.user = str_of(smtp, "user"),
		.password = str_of(smtp, "password"),
		.from = str_of(smtp, "from"),
		.timeout_ms = (long)json_integer_value(json_object_get(smtp, "timeout_ms")),
	};
	struct mail_result res;
	mail_send(&cfg, rcpt, n, msg.data, msg.len, &res);
	out = json_pack("{s:s, s:I, s:s, s:s, s:b}", "status", status_name(res.status), "smtp_code",
	                (json_int_t)res.smtp_code, "detail", res.detail, "step",
	                mail_step_name(res.step), "relay", res.relay);
print:
	if (out) {
		char *line = json_dumps(out, JSON_COMPACT);
		if (line)
			printf("%s\n", line);
		free(line);
		rc = line ? 0 : 1;
	}
out:
	json_decref(in);
	json_decref(out);
	jsonx_text_free(&msg);
	ical_text_free(&ics);
	free(to);
	free(cc);
	free(rcpt);
	curl_global_cleanup();
	return rc;
}
