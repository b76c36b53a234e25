/* E-mail invitations (mailer.h). */
#include "mailer.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <jansson.h>

#include "db.h"
#include "deliver.h"
#include "encoding.h"
#include "ical.h"
#include "rnd.h"
#include "rrule.h"
#include "series_ics.h"

#define MAIL_ATTENDEES_MAX 100 /* validate.c's limit */
#define SUBJECT_MAX 512

/* What one row says, borrowed from its JSON. */
struct invite {
	const json_t *p;
	bool cancel, series; /* METHOD:CANCEL; a whole series (else one reservation) */
	long long id;        /* the reservation's or the series' */
	int version, sequence;
	const char *purpose, *room, *zone, *local_start, *local_end, *reason;
	const char *organizer_email, *organizer_name, *meeting_url;
	const char *attendees[MAIL_ATTENDEES_MAX];
	size_t nattendees;
	long long series_id; /* an occurrence's series (0: none) */
	const char *series_zone, *occurrence_start, *rrule;
	const json_t *series_head; /* an occurrence's series without occurrences (NULL: a row
	                              queued before 013_mail_semantics.sql) */
	bool utc;                  /* times in UTC: one is in a repeated (fall-back) hour */
	long long start_s, end_s;
	bool removed;        /* a CANCEL to an attendee this change removed */
	const json_t *added; /* the lower-cased addresses this change invited (NULL: none) */
	bool has_cut;        /* a series ended after its confirmed occurrences (REQUEST) */
	long long cut_s;
	const json_t *series_data; /* a series' res_series_ics_data ("series_ics") */
	const json_t *instances;   /* a series mail to a recipient invited to some occurrences
	                              only: their original starts (NULL: the whole series) */
	size_t ninstances;         /* the occurrences written for them */
};

static const char *str(const json_t *o, const char *key)
{
	return json_string_value(json_object_get(o, key));
}

static void add(struct jsonx_text *t, const char *s)
{
	if (s)
		jsonx_text_raw(t, s, strlen(s));
}

/* Words for a cancel_reason (docs/api.md#reservations). */
static const char *reason_text(const char *reason)
{
	static const char *const words[][2] = {
		{"cancelled_by_user", "cancelled by the organizer"},
		{"cancelled_by_admin", "cancelled by an administrator"},
		{"room_deleted", "the room was deleted"},
		{"user_deleted", "the organizer's account was deleted"},
		{"series_changed", "the series was changed"},
		{"awaiting_approval", "the change awaits an administrator's approval"},
		{"no_show", "nobody checked in: the room was released"},
		{"not_approved", "it was not approved before its start"},
		{"rejected", "an administrator rejected it"},
	};
	for (size_t i = 0; reason && i < sizeof words / sizeof words[0]; i++)
		if (strcmp(reason, words[i][0]) == 0)
			return words[i][1];
	return reason;
}

static bool read_attendees(const json_t *list, struct invite *v)
{
	size_t i;
	const json_t *a;
	json_array_foreach(list, i, a) {
		if (v->nattendees == MAIL_ATTENDEES_MAX || !json_is_string(a))
			return false;
		v->attendees[v->nattendees++] = json_string_value(a);
	}
	return true;
}

/* Whether recipient is one of the addresses this change invited. */
static bool newly_invited(const struct invite *v, const char *recipient)
{
	size_t i;
	const json_t *a;
	json_array_foreach(v->added, i, a) {
		const char *x = json_string_value(a);
		if (x && strcasecmp(x, recipient) == 0)
			return true;
	}
	return false;
}

static bool read_invite(const json_t *p, struct invite *v, const char **why)
{
	const char *method = str(p, "method");
	const json_t *room = json_object_get(p, "room");
	*v = (struct invite){.p = p};
	if (!method || (strcmp(method, "REQUEST") != 0 && strcmp(method, "CANCEL") != 0)) {
		*why = "no method";
		return false;
	}
	v->cancel = strcmp(method, "CANCEL") == 0;
	v->sequence = (int)json_integer_value(json_object_get(p, "sequence"));
	v->reason = str(p, "reason");
	v->room = str(room, "name");
	v->removed = json_is_true(json_object_get(p, "removed"));
	v->added = json_is_array(json_object_get(p, "added")) ? json_object_get(p, "added") : NULL;
	const json_t *r = json_object_get(p, "reservation");
	const json_t *s = json_object_get(p, "series");
	if (json_is_object(r)) {
		v->id = json_integer_value(json_object_get(r, "id"));
		v->version = (int)json_integer_value(json_object_get(r, "version"));
		v->purpose = str(r, "purpose");
		v->zone = str(p, "zone");
		v->local_start = str(p, "local_start");
		v->local_end = str(p, "local_end");
		v->organizer_email = str(r, "organizer_email");
		v->organizer_name = str(r, "organizer_name");
		v->meeting_url = str(r, "meeting_url");
		v->occurrence_start = str(r, "occurrence_start");
		v->utc = json_is_true(json_object_get(p, "utc"));
		v->start_s = json_integer_value(json_object_get(p, "start_s"));
		v->end_s = json_integer_value(json_object_get(p, "end_s"));
		if (json_is_object(s)) {
			v->series_id = json_integer_value(json_object_get(s, "id"));
			v->series_zone = str(s, "time_zone");
			if (json_is_object(json_object_get(s, "head")))
				v->series_head = json_object_get(s, "head");
		}
		if (!read_attendees(json_object_get(r, "attendees"), v)) {
			*why = "bad attendees";
			return false;
		}
		if (!v->zone || !v->local_start || !v->local_end ||
		    (v->series_id && (!v->series_zone || !v->occurrence_start))) {
			*why = "no times";
			return false;
		}
	} else if (json_is_object(s) && json_is_object(json_object_get(p, "series_ics"))) {
		const json_t *cut = json_object_get(p, "cut_s");
		v->series = true;
		v->series_data = json_object_get(p, "series_ics");
		v->has_cut = json_is_integer(cut);
		v->cut_s = json_integer_value(cut);
		v->id = json_integer_value(json_object_get(s, "id"));
		v->version = (int)json_integer_value(json_object_get(s, "version"));
		v->purpose = str(s, "purpose");
		v->zone = str(s, "time_zone");
		v->local_start = str(s, "first_start");
		v->rrule = str(s, "rrule");
		v->organizer_email = str(p, "organizer_email");
		v->organizer_name = str(p, "organizer_name");
		if (json_is_array(json_object_get(p, "instances")))
			v->instances = json_object_get(p, "instances");
		if (!read_attendees(json_object_get(p, "attendees"), v)) {
			*why = "bad attendees";
			return false;
		}
	} else {
		*why = "neither a reservation nor a series";
		return false;
	}
	if (v->organizer_email && !mail_address_valid(v->organizer_email))
		v->organizer_email = NULL;
	return true;
}

/* The RECURRENCE-ID of an occurrence: the instance its series' mails name (series_ics.h). */
static bool recurrence_id(const struct invite *v, char out[TIMEFMT_RFC3339_LEN])
{
	struct rrule rule;
	struct series_ics s;
	struct series_ics_occurrence *none = NULL;
	const char *why = NULL;
	if (!v->series_head) { /* a row queued before the head was: its stored start */
		snprintf(out, TIMEFMT_RFC3339_LEN, "%s", v->occurrence_start);
		return true;
	}
	bool ok = series_ics_read(v->series_head, v->series_id, 0, &s, &rule, &none, &why) &&
	          series_ics_recurrence_id(&s, v->occurrence_start, out, &why);
	free(none);
	return ok;
}

/* ORGANIZER and ATTENDEE lines: the attendees, or only the recipient of a removal's CANCEL
 * (RFC 5546 3.2.5: the attendee being removed). */
static void people_lines(const struct invite *v, const char *recipient, struct ical_text *t)
{
	const char *only[] = {recipient};
	series_ics_people(v->organizer_email, v->organizer_name, v->removed ? only : v->attendees,
	                  v->removed ? 1 : v->nattendees, t);
}

/* The iTIP object of one reservation (or one occurrence of a series: RECURRENCE-ID). */
static bool single_ics(const struct invite *v, const char *recipient, long long now,
                       struct ical_text *t)
{
	char uid[64], seq[16], recur[TIMEFMT_RFC3339_LEN];
	if (v->series_id)
		snprintf(uid, sizeof uid, "series-%lld@" RES_MAIL_UID_DOMAIN, v->series_id);
	else
		snprintf(uid, sizeof uid, "reservation-%lld@" RES_MAIL_UID_DOMAIN, v->id);
	snprintf(seq, sizeof seq, "%d", v->sequence);
	series_ics_calendar_begin(t, v->cancel ? "CANCEL" : "REQUEST");
	if (!ical_vtimezone(t, v->zone))
		return false;
	if (v->series_id && strcmp(v->series_zone, v->zone) != 0 &&
	    !ical_vtimezone(t, v->series_zone))
		return false;
	ical_prop(t, "BEGIN", "VEVENT");
	ical_prop(t, "UID", uid);
	ical_prop_utc(t, "DTSTAMP", now);
	ical_prop(t, "SEQUENCE", seq);
	if (v->series_id && (!recurrence_id(v, recur) ||
	                     !ical_prop_local(t, "RECURRENCE-ID", v->series_zone, recur)))
		return false;
	if (v->utc) { /* a local time in a repeated hour names two instants */
		ical_prop_utc(t, "DTSTART", v->start_s);
		ical_prop_utc(t, "DTEND", v->end_s);
	} else if (!ical_prop_local(t, "DTSTART", v->zone, v->local_start) ||
	           !ical_prop_local(t, "DTEND", v->zone, v->local_end)) {
		return false;
	}
	ical_prop_text(t, "SUMMARY", v->purpose && *v->purpose ? v->purpose : "Reservation");
	if (v->room && *v->room)
		ical_prop_text(t, "LOCATION", v->room);
	people_lines(v, recipient, t);
	if (v->meeting_url) {
		char desc[1200];
		snprintf(desc, sizeof desc, "Online meeting: %s", v->meeting_url);
		ical_prop(t, "URL", v->meeting_url); /* a URI: not escaped as TEXT */
		ical_prop_text(t, "DESCRIPTION", desc);
	}
	ical_prop(t, "STATUS", v->cancel ? "CANCELLED" : "CONFIRMED");
	ical_prop(t, "END", "VEVENT");
	ical_prop(t, "END", "VCALENDAR");
	return !t->text.failed;
}

/* The local start a series mail is dated by (review 14c L5): its next confirmed occurrence at
 * now, else its next one (a cancelled series: the next that no longer takes place), else its
 * last confirmed one, else its first start. */
static const char *series_date(const struct series_ics *s, long long now)
{
	const char *next = NULL, *last = NULL;
	for (size_t i = 0; i < s->noccurrences; i++) {
		const struct series_ics_occurrence *o = &s->occurrences[i];
		if (o->start_utc >= now && o->confirmed)
			return o->local_start;
		if (o->start_utc >= now && !next)
			next = o->local_start;
		if (o->confirmed)
			last = o->local_start;
	}
	return next ? next : last ? last : s->first_start;
}

/* Whether the original start of o is one of the instances v is about. */
static bool listed(const struct invite *v, const struct series_ics_occurrence *o)
{
	size_t i;
	const json_t *a;
	json_array_foreach(v->instances, i, a) {
		const char *x = json_string_value(a);
		if (x && strcmp(x, o->occurrence_start) == 0)
			return true;
	}
	return false;
}

/* Keeps of s's occurrences (occ, owned) only those v lists, in order: a recipient invited to
 * some occurrences only gets those (struct series_ics.instances_only); v->ninstances. */
static void keep_listed(struct invite *v, struct series_ics *s, struct series_ics_occurrence *occ)
{
	size_t n = 0;
	for (size_t i = 0; i < s->noccurrences; i++)
		if (listed(v, &occ[i]))
			occ[n++] = occ[i];
	s->noccurrences = n;
	s->instances_only = true;
	v->ninstances = n;
}

/* The iTIP object of a whole series (series_ics.h), as the .ics export writes it, for recipient
 * (the occurrences that are theirs), or of the instances v lists; date gets the local start
 * the subject names. */
static bool series_ics(struct invite *v, const char *recipient, long long now, struct ical_text *t,
                       char date[TIMEFMT_RFC3339_LEN], const char **why)
{
	struct rrule rule;
	struct series_ics s;
	struct series_ics_occurrence *occ = NULL;
	const char *valid[MAIL_ATTENDEES_MAX];
	size_t n = 0;
	bool ok = series_ics_read(v->series_data, v->id, now, &s, &rule, &occ, why);
	if (ok) {
		if (v->removed)
			valid[n++] = recipient;
		for (size_t i = 0; !v->removed && i < v->nattendees; i++)
			if (mail_address_valid(v->attendees[i]))
				valid[n++] = v->attendees[i];
		s.method = v->cancel ? "CANCEL" : "REQUEST";
		if (v->has_cut) {
			/* Ended with confirmed (begun) occurrences left: a REQUEST that keeps them and
			 * ends the rule after them, never a CANCEL of the past meetings (M6). */
			if (!s.has_until || v->cut_s < s.until_utc)
				s.until_utc = v->cut_s;
			s.has_until = true;
			s.cancelled = false;
		} else {
			s.cancelled = s.cancelled || v->cancel;
		}
		s.organizer_email = v->organizer_email;
		s.organizer_name = v->organizer_name;
		s.attendees = valid;
		s.nattendees = n;
		s.recipient = recipient;
		if (v->instances)
			keep_listed(v, &s, occ);
		if (v->instances && !v->ninstances) {
			*why = "none of its instances is in the series";
			ok = false;
		} else {
			snprintf(date, TIMEFMT_RFC3339_LEN, "%s", series_date(&s, now));
			ok = series_ics_build(&s, t, why);
		}
	}
	free(occ);
	return ok;
}

/* s with every control character as a space (a subject or a display name is one line), cut
 * after a whole character with "…" when it does not fit (a purpose or a name may hold 200
 * characters of up to 4 bytes: cut in the middle of one, the header would not be UTF-8 and the
 * message could not be built for anyone). */
static void one_line(const char *s, char *out, size_t size)
{
	s = s ? s : "";
	enc_utf8_sanitize(out, size, s, strlen(s), false);
	for (char *c = out; *c; c++)
		if ((unsigned char)*c < 0x20 || *c == 0x7f)
			*c = ' ';
}

/* "2026-12-01 10:00" of a local "2026-12-01T10:00:00". */
static void short_time(const char *local, char out[17])
{
	size_t n = local ? strnlen(local, 16) : 0;
	memcpy(out, local ? local : "", n);
	out[n] = '\0';
	if (strlen(out) > 10 && out[10] == 'T')
		out[10] = ' ';
}

static void text_line(struct jsonx_text *t, const char *label, const char *value)
{
	add(t, label);
	add(t, value);
	add(t, "\n");
}

static void html_line(struct jsonx_text *h, const char *label, const char *value)
{
	add(h, "<tr><th align=\"left\">");
	add(h, label);
	add(h, "</th><td>");
	mail_html_escape(h, value);
	add(h, "</td></tr>\n");
}

/* The text and HTML parts and the subject. */
static void bodies(const struct invite *v, const char *recipient, struct jsonx_text *text,
                   struct jsonx_text *html, char *subject, size_t subject_size)
{
	/* line holds a whole purpose and room name (each up to 200 characters of 4 bytes), who a
	 * whole organizer name (auth.h) and address: only one_line cuts, after a whole character. */
	char start[17], end[17], when[128], purpose[256], who[1100], line[2 * 804 + 64];
	const char *title = v->purpose && *v->purpose ? v->purpose : "Reservation";
	bool organizer = v->organizer_email && strcasecmp(v->organizer_email, recipient) == 0;
	bool invited = v->version <= 1 || newly_invited(v, recipient);
	const char *verb = v->cancel || v->has_cut ? "Cancelled"
	                   : invited               ? "Invitation"
	                                           : "Updated";
	short_time(v->local_start, start);
	short_time(v->local_end, end);
	if (v->instances && v->ninstances > 1)
		snprintf(when, sizeof when, "%s and %zu more of the series (%s)", start,
		         v->ninstances - 1, v->zone);
	else if (v->instances)
		snprintf(when, sizeof when, "%s (%s)", start, v->zone);
	else if (v->series)
		snprintf(when, sizeof when, "from %s, repeating (%s)", start, v->zone);
	else
		snprintf(when, sizeof when, "%s - %s (%s)", start,
		         end + (strncmp(start, end, 10) ? 0 : 11), v->zone);
	one_line(title, purpose, sizeof purpose);
	snprintf(line, sizeof line, "%s: %s @ %s, %s", verb, purpose, v->room ? v->room : "",
	         start);
	one_line(line, subject, subject_size);
	if (v->organizer_name && *v->organizer_name)
		snprintf(who, sizeof who, "%s <%s>", v->organizer_name, v->organizer_email);
	else
		snprintf(who, sizeof who, "%s", v->organizer_email ? v->organizer_email : "");

	const char *lead = v->removed  ? "You were removed from this meeting's attendees."
	                   : v->cancel ? "This meeting was cancelled."
	                   : v->has_cut
	                           ? "The rest of this series was cancelled; its meetings that "
	                             "took place stay in your calendar."
	                   : organizer ? "Your reservation, as booked."
	                   : invited   ? "You are invited to this meeting."
	                               : "This meeting was changed.";
	add(text, lead);
	add(text, "\n\n");
	add(html, "<p>");
	mail_html_escape(html, lead);
	add(html, "</p>\n<table>\n");
	const char *labels[][2] = {
		{"What:        ", title},
		{"When:        ", when},
		{"Where:       ", v->room},
		{"Organizer:   ", who},
		{"Repeats:     ", v->series && !v->instances ? v->rrule : NULL},
		{"Online link: ", v->meeting_url},
		{"Reason:      ", v->cancel || v->has_cut ? reason_text(v->reason) : NULL},
	};
	for (size_t i = 0; i < sizeof labels / sizeof labels[0]; i++) {
		if (!labels[i][1] || !*labels[i][1])
			continue;
		text_line(text, labels[i][0], labels[i][1]);
		char label[24];
		snprintf(label, sizeof label, "%s", labels[i][0]);
		for (size_t k = strlen(label); k > 0 && label[k - 1] == ' '; k--)
			label[k - 1] = '\0';
		html_line(html, label, labels[i][1]);
	}
	if (v->nattendees) {
		add(text, "Attendees:   ");
		add(html, "<tr><th align=\"left\">Attendees:</th><td>");
		for (size_t i = 0; i < v->nattendees; i++) {
			add(text, i ? ", " : "");
			add(text, v->attendees[i]);
			add(html, i ? ", " : "");
			mail_html_escape(html, v->attendees[i]);
		}
		add(text, "\n");
		add(html, "</td></tr>\n");
	}
	add(text, "\nThe attached invitation (invite.ics) adds it to your calendar.\n");
	add(html, "</table>\n<p>The attached invitation (invite.ics) adds it to your "
	          "calendar.</p>\n");
}

bool res_mail_from_valid(const char *from)
{
	const char *at = from ? strrchr(from, '@') : NULL;
	return mail_address_valid(from) && at &&
	       strlen(at + 1) <= MAIL_MESSAGE_ID_MAX - RES_MAIL_MESSAGE_ID_LEFT_MAX - 1;
}

bool res_mail_render(const char *payload, const char *shared, const char *recipient,
                     const char *from, long long now, struct jsonx_text *msg, const char **why)
{
	json_t *p = json_loads(payload, 0, NULL);
	json_t *base = shared ? json_loads(shared, 0, NULL) : NULL;
	char date[TIMEFMT_RFC3339_LEN];
	struct invite v;
	struct ical_text ics = {0};
	struct jsonx_text text = {0}, html = {0};
	char subject[SUBJECT_MAX], message_id[MAIL_MESSAGE_ID_MAX + 1], lower[MAIL_ADDRESS_MAX + 1];
	char hash[RND_TOKEN_HASH_LEN], name[256], reply_name[256];
	bool ok = false;
	*why = NULL;
	if (!json_is_object(p) || (shared && !json_is_object(base))) {
		*why = "payload is not JSON";
		goto out;
	}
	if (shared) { /* the row's own keys over the shared payload */
		if (json_object_update(base, p) != 0) {
			*why = "memory";
			goto out;
		}
		json_decref(p);
		p = json_incref(base);
	}
	if (!mail_address_valid(recipient)) {
		*why = "recipient is not an e-mail address";
		goto out;
	}
	const char *domain = from ? strrchr(from, '@') : NULL;
	if (!domain || !res_mail_from_valid(from)) {
		*why = "the sender is not an e-mail address whose domain fits a Message-ID";
		goto out;
	}
	domain++;
	if (!read_invite(p, &v, why))
		goto out;
	if (v.series ? !series_ics(&v, recipient, now, &ics, date, why)
	             : !single_ics(&v, recipient, now, &ics)) {
		if (!*why)
			*why = "the invitation cannot be written (zone, times)";
		goto out;
	}
	if (v.series)
		v.local_start = date;
	bodies(&v, recipient, &text, &html, subject, sizeof subject);
	if (text.failed || html.failed) {
		*why = "memory";
		goto out;
	}
	size_t i = 0;
	for (; recipient[i] && i < MAIL_ADDRESS_MAX; i++)
		lower[i] = (char)tolower((unsigned char)recipient[i]);
	lower[i] = '\0';
	rnd_token_hash(lower, hash);
	hash[12] = '\0';
	/* A recipient of some instances may get their update and their cancel for one version. */
	snprintf(message_id, sizeof message_id, "%s-%lld-v%d-%s%s@%s",
	         v.series ? "series" : "reservation", v.id, v.version, hash,
	         !v.instances ? ""
	         : v.cancel   ? "-ic"
	                      : "-ir",
	         domain);
	bool organizer = v.organizer_email && strcasecmp(v.organizer_email, recipient) == 0;
	one_line(organizer ? v.organizer_name : NULL, name, sizeof name);
	struct mail_addr to = {name, recipient};
	struct mail_addr reply = {NULL, v.organizer_email};
	if (v.organizer_email) {
		one_line(v.organizer_name, reply_name, sizeof reply_name);
		reply.name = reply_name;
	}
	struct mail_message m = {
		.to = &to,
		.n_to = 1,
		.reply_to = v.organizer_email && !organizer ? &reply : NULL,
		.subject = subject,
		.message_id = message_id,
		.date = now,
		.text = text.data,
		.html = html.data,
		.ics = ics.text.data,
		.ics_method = v.cancel ? MAIL_ICS_CANCEL : MAIL_ICS_REQUEST,
	};
	m.from = (struct mail_addr){RES_MAIL_FROM_NAME, from};
	if (!mail_build(&m, msg, why))
		goto out;
	*why = NULL; /* mail_build leaves its last check's name there */
	ok = true;
out:
	ical_text_free(&ics);
	jsonx_text_free(&text);
	jsonx_text_free(&html);
	json_decref(p);
	json_decref(base);
	return ok;
}

/* clang-format off */
const char res_mail_sweep_sql[] =
	"DELETE FROM mail_payloads WHERE id = ANY (ARRAY("
	"SELECT m.id FROM mail_payloads m "
	"WHERE m.created_at < now() - make_interval(secs => $1::bigint) "
	"AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.kind = '" RES_MAIL_KIND "' "
	"AND d.payload->>'shared' IS NOT NULL AND d.payload->>'shared' = m.id::text) "
	"LIMIT $2::int))";
/* clang-format on */

/* The shared payload a row refers to (013_mail_semantics.sql: "shared", one row of
 * mail_payloads for all the recipients of a series change), read on the sender's session:
 * *shared a new string, NULL for a row without one.  false when it cannot be read now
 * (temporary) or is gone (*gone). */
static bool shared_of(const struct deliver_item *item, char **shared, bool *gone)
{
	json_t *p = json_loads(item->payload, 0, NULL);
	const json_t *id = json_object_get(p, "shared");
	char text[24];
	bool ok = true;
	*shared = NULL;
	*gone = false;
	if (json_is_integer(id)) {
		PGresult *res = NULL;
		snprintf(text, sizeof text, "%lld", (long long)json_integer_value(id));
		const char *params[] = {text};
		ok = db_exec_on(item->session, &res,
		                "SELECT payload::text FROM mail_payloads WHERE id = $1::bigint", 1,
		                params) == DB_OK;
		if (ok && PQntuples(res) == 1)
			*shared = strdup(PQgetvalue(res, 0, 0));
		else if (ok)
			*gone = true;
		ok = ok && !*gone && *shared;
		PQclear(res);
	}
	json_decref(p);
	return ok;
}

void res_mail_send(const struct deliver_item *item, void *arg, struct deliver_result *out)
{
	const struct res_mailer *cfg = arg;
	struct jsonx_text msg = {0};
	struct mail_result res;
	const char *why = NULL;
	char *shared = NULL;
	bool gone;
	*out = (struct deliver_result){.outcome = DELIVER_PERMANENT};
	if (!shared_of(item, &shared, &gone)) {
		out->outcome = gone ? DELIVER_PERMANENT : DELIVER_TEMPORARY;
		snprintf(out->error, sizeof out->error, "not sent: %s",
		         gone ? "its shared payload is gone"
		              : "its shared payload cannot be read now");
		goto out;
	}
	if (!res_mail_render(item->payload, shared, item->target, cfg->smtp.from,
	                     (long long)time(NULL), &msg, &why)) {
		snprintf(out->error, sizeof out->error, "not sent: %s", why ? why : "unknown");
		goto out;
	}
	const char *rcpt[] = {item->target};
	switch (mail_send(&cfg->smtp, rcpt, 1, msg.data, msg.len, &res)) {
	case MAIL_SENT:
		out->outcome = DELIVER_SENT;
		break;
	case MAIL_TEMPORARY:
		out->outcome = DELIVER_TEMPORARY;
		break;
	case MAIL_PERMANENT:
	case MAIL_INVALID:
	default:
		out->outcome = DELIVER_PERMANENT;
		break;
	}
	out->status = (int)res.smtp_code;
	if (out->outcome != DELIVER_SENT)
		snprintf(out->error, sizeof out->error, "%s", res.detail);
out:
	free(shared);
	jsonx_text_free(&msg);
}
