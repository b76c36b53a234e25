#include "series_ics.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>

#include "ical.h"
#include "mail.h"
#include "rrule.h"
#include "timefmt.h"

/* A local "YYYY-MM-DDTHH:MM:SS" read into its date and second of the day. */
struct series_ics_local {
	struct rrule_date date;
	long days; /* rrule_days_from_date(date) */
	int secs;
};

static bool series_ics_parse_local(const char *text, struct series_ics_local *out)
{
	char ical[ICAL_DATETIME_LEN];
	struct timefmt_time t;
	if (!text || !ical_local(text, ical) || !timefmt_parse_rfc3339(text, &t) || t.has_offset)
		return false;
	out->date = (struct rrule_date){t.year, t.month, t.day};
	out->days = rrule_days_from_date(out->date);
	out->secs = t.hour * 3600 + t.minute * 60 + t.second;
	return true;
}

/* The local date-time days + secs as "YYYY-MM-DDTHH:MM:SS" (to compare with the database's). */
static void series_ics_local_text(long days, int secs, char out[TIMEFMT_RFC3339_LEN])
{
	struct rrule_date d = rrule_date_from_days(days);
	snprintf(out, TIMEFMT_RFC3339_LEN, "%04d-%02d-%02dT%02d:%02d:%02d", d.year, d.month, d.day,
	         secs / 3600, secs / 60 % 60, secs % 60);
}

/* "NAME;TZID=zone:YYYYMMDDTHHMMSS" for the local date-time days + secs. */
static void series_ics_tzid_prop(struct ical_text *out, const char *name, const char *zone,
                                 long days, int secs)
{
	char local[TIMEFMT_RFC3339_LEN];
	series_ics_local_text(days, secs, local);
	(void)ical_prop_local(out, name, zone, local);
}

/* An exact duration (RFC 5545 3.3.6) in hours, minutes and seconds: "PT1H", "PT1H0M30S",
 * "PT25H" (never days, which are nominal and would follow a DST change). */
static void series_ics_duration(long secs, char out[48])
{
	long h = secs / 3600, m = secs / 60 % 60, s = secs % 60;
	int n = snprintf(out, 48, "PT");
	if (h)
		n += snprintf(out + n, (size_t)(48 - n), "%ldH", h);
	if (m || (h && s))
		n += snprintf(out + n, (size_t)(48 - n), "%ldM", m);
	if (s)
		snprintf(out + n, (size_t)(48 - n), "%ldS", s);
}

static int series_ics_cmp_long(const void *a, const void *b)
{
	long x = *(const long *)a, y = *(const long *)b;
	return (x > y) - (x < y);
}

static bool series_ics_has_day(const long *days, size_t n, long day)
{
	return bsearch(&day, days, n, sizeof *days, series_ics_cmp_long) != NULL;
}

static bool series_ics_same(const char *a, const char *b)
{
	return strcmp(a ? a : "", b ? b : "") == 0;
}

static const char *series_ics_summary(const char *purpose)
{
	return purpose && *purpose ? purpose : "Reservation";
}

/* The instances of the master VEVENT: the written rule and the local dates it yields (always
 * the dates a client computes from it, and at most a few more after a UTC UNTIL, which the
 * EXDATEs then cover).  The series' own rule is written as it is, except that
 * - its EXDATEs become EXDATE properties (with every other date that has no confirmed
 *   occurrence), not an RRULE part;
 * - a local UNTIL (a date, or a date-time without Z) becomes the COUNT of the dates it keeps:
 *   RFC 5545 wants UNTIL in UTC with a DTSTART;TZID, and its instant needs the zone;
 * - a cut series (until_utc) ends with UNTIL = until_utc - 1 s in UTC, unless the rule itself
 *   ends at least two days before. */
static bool series_ics_instances(const struct series_ics *s, const struct series_ics_local *first,
                                 struct rrule *written, struct rrule_date *dates, size_t *ndates,
                                 const char **why)
{
	static const struct rrule_date limit = {9999, 12, 31};
	enum rrule_stop stop;
	*written = *s->rule;
	written->nexdates = 0;
	size_t n = rrule_expand(written, first->date, first->secs, limit, dates,
	                        SERIES_ICS_MAX_DATES, &stop);
	if (stop != RRULE_STOP_END) {
		*why = "the rule yields too many dates";
		return false;
	}
	if (n == 0) {
		*why = "the rule yields no date";
		return false;
	}
	bool cut = false;
	if (s->has_until) {
		long long u = s->until_utc - 1;
		long day = (long)(u / 86400 - (u % 86400 < 0));
		cut = rrule_days_from_date(dates[n - 1]) + 2 > day;
		if (cut) {
			written->count = 0;
			written->until_kind = RRULE_UNTIL_UTC;
			written->until_date = rrule_date_from_days(day);
			written->until_seconds = (int)(u - (long long)day * 86400);
			n = rrule_expand(written, first->date, first->secs, limit, dates,
			                 SERIES_ICS_MAX_DATES, &stop);
			if (stop != RRULE_STOP_END) {
				*why = "the rule yields too many dates";
				return false;
			}
		}
	}
	if (!cut &&
	    (written->until_kind == RRULE_UNTIL_DATE || written->until_kind == RRULE_UNTIL_LOCAL)) {
		written->until_kind = RRULE_UNTIL_NONE;
		written->count = (long)n;
	}
	*ndates = n;
	return true;
}

/* The instance days of s (sorted, distinct, DTSTART's among them: RFC 5545 makes it an
 * instance always) and the rule as written: what every RECURRENCE-ID and EXDATE is judged by. */
struct series_ics_plan {
	struct series_ics_local first;
	struct rrule written;
	struct rrule_date *dates;
	size_t ndates;
	long *instances;
	size_t ninstances;
};

static void series_ics_plan_free(struct series_ics_plan *p)
{
	free(p->dates);
	free(p->instances);
}

static bool series_ics_plan(const struct series_ics *s, struct series_ics_plan *p, const char **why)
{
	*p = (struct series_ics_plan){0};
	if (!series_ics_parse_local(s->first_start, &p->first) || s->duration_s <= 0) {
		*why = "malformed first_start or duration";
		return false;
	}
	p->dates = malloc(SERIES_ICS_MAX_DATES * sizeof *p->dates);
	p->instances = malloc((SERIES_ICS_MAX_DATES + 1) * sizeof *p->instances);
	if (!p->dates || !p->instances) {
		*why = "out of memory";
		return false;
	}
	if (!series_ics_instances(s, &p->first, &p->written, p->dates, &p->ndates, why))
		return false;
	for (size_t i = 0; i < p->ndates; i++)
		p->instances[i] = rrule_days_from_date(p->dates[i]);
	p->instances[p->ndates] = p->first.days;
	qsort(p->instances, p->ndates + 1, sizeof *p->instances, series_ics_cmp_long);
	for (size_t i = 0; i <= p->ndates; i++)
		if (p->ninstances == 0 || p->instances[p->ninstances - 1] != p->instances[i])
			p->instances[p->ninstances++] = p->instances[i];
	return true;
}

/* The second of the day of the RECURRENCE-ID of an occurrence originally at `at`
 * (series_ics_recurrence_id). */
static int series_ics_recur_secs(const struct series_ics_plan *p, const struct series_ics_local *at)
{
	return series_ics_has_day(p->instances, p->ninstances, at->days) ? p->first.secs : at->secs;
}

bool series_ics_recurrence_id(const struct series_ics *s, const char *occurrence_start,
                              char out[TIMEFMT_RFC3339_LEN], const char **why)
{
	struct series_ics_plan p;
	struct series_ics_local at;
	const char *reason = NULL;
	bool ok = series_ics_plan(s, &p, &reason);
	if (ok && !series_ics_parse_local(occurrence_start, &at)) {
		reason = "malformed occurrence_start";
		ok = false;
	}
	if (ok)
		series_ics_local_text(at.days, series_ics_recur_secs(&p, &at), out);
	series_ics_plan_free(&p);
	if (why)
		*why = reason;
	return ok;
}

/* The SEQUENCE of o's override: never lower than the one its own mails had (RFC 5546 2.1.5:
 * a client keeps the instance with the higher one). */
static int series_ics_sequence(const struct series_ics *s, const struct series_ics_occurrence *o)
{
	int seq = s->version > 0 ? s->version - 1 : 0;
	return o && o->version - 1 > seq ? o->version - 1 : seq;
}

void series_ics_calendar_begin(struct ical_text *out, const char *method)
{
	ical_prop(out, "BEGIN", "VCALENDAR");
	ical_prop(out, "VERSION", "2.0");
	ical_prop(out, "PRODID", "-//meeting-rooms//reservation-service//EN");
	ical_prop(out, "CALSCALE", "GREGORIAN");
	ical_prop(out, "METHOD", method ? method : "PUBLISH");
}

void series_ics_people(const char *organizer_email, const char *organizer_name,
                       const char *const *attendees, size_t n, struct ical_text *out)
{
	if (mail_address_valid(organizer_email))
		ical_prop_cal_address(out, "ORGANIZER", NULL, organizer_name, organizer_email);
	for (size_t i = 0; i < n; i++)
		if (mail_address_valid(attendees[i]))
			ical_prop_cal_address(out, "ATTENDEE", SERIES_ICS_ATTENDEE_PARAMS, NULL,
			                      attendees[i]);
}

/* The people of a VEVENT of an iTIP object (none without a method: a PUBLISH). */
static void series_ics_itip_people(const struct series_ics *s, const char *const *attendees,
                                   size_t n, struct ical_text *out)
{
	if (s->method)
		series_ics_people(s->organizer_email, s->organizer_name, attendees, n, out);
}

/* Whether occurrence o is not the recipient's (struct series_ics.recipient): its own attendees
 * leave them out and they are not the organizer. */
static bool series_ics_not_theirs(const struct series_ics *s, const struct series_ics_occurrence *o)
{
	if (!s->recipient || !o->own_attendees ||
	    (s->organizer_email && strcasecmp(s->organizer_email, s->recipient) == 0))
		return false;
	for (size_t i = 0; i < o->nattendees; i++)
		if (o->attendees[i] && strcasecmp(o->attendees[i], s->recipient) == 0)
			return false;
	return true;
}

/* The VEVENT that overrides one instance (RECURRENCE-ID = its local start recur_days +
 * recur_secs) with occurrence o; its times in UTC, which say the instant without the zone's
 * help (a local time in the hour a DST change repeats names two). */
static void series_ics_override(const struct series_ics *s, const char *uid,
                                const struct series_ics_occurrence *o, long recur_days,
                                int recur_secs, const char *status, struct ical_text *out)
{
	char sequence[24];
	snprintf(sequence, sizeof sequence, "%d", series_ics_sequence(s, o));
	ical_prop(out, "BEGIN", "VEVENT");
	ical_prop(out, "UID", uid);
	ical_prop_utc(out, "DTSTAMP", s->stamp_utc);
	ical_prop(out, "SEQUENCE", sequence);
	series_ics_tzid_prop(out, "RECURRENCE-ID", s->zone, recur_days, recur_secs);
	ical_prop_utc(out, "DTSTART", o->start_utc);
	ical_prop_utc(out, "DTEND", o->end_utc);
	ical_prop_text(out, "SUMMARY", series_ics_summary(o->purpose ? o->purpose : s->purpose));
	if (o->room_name || s->room_name)
		ical_prop_text(out, "LOCATION", o->room_name ? o->room_name : s->room_name);
	const char *const only[] = {s->recipient};
	if (s->instances_only && s->recipient && strcmp(status, "CANCELLED") == 0)
		series_ics_itip_people(s, only, 1,
		                       out); /* RFC 5546 3.2.5: the attendee it is for */
	else if (o->own_attendees)
		series_ics_itip_people(s, o->attendees, o->nattendees, out);
	else
		series_ics_itip_people(s, s->attendees, s->nattendees, out);
	ical_prop(out, "STATUS", status);
	ical_prop(out, "END", "VEVENT");
}

bool series_ics_build(const struct series_ics *s, struct ical_text *out, const char **why)
{
	const char *reason = NULL;
	struct series_ics_plan plan;
	long *confirmed = NULL;
	size_t nconfirmed = 0;
	char uid[64], sequence[24], line[RRULE_TEXT_MAX];
	bool ok = false;
	bool cancel = s->method && strcmp(s->method, "CANCEL") == 0;

	if (!series_ics_plan(s, &plan, &reason))
		goto out;
	if (s->organizer_email && !mail_address_valid(s->organizer_email)) {
		reason = "malformed organizer address";
		goto out;
	}
	confirmed = malloc((s->noccurrences ? s->noccurrences : 1) * sizeof *confirmed);
	if (!confirmed) {
		reason = "out of memory";
		goto out;
	}
	const struct series_ics_local first = plan.first;
	const long *instances = plan.instances;
	size_t ninstances = plan.ninstances;
	int master_seq = series_ics_sequence(s, NULL);
	for (size_t i = 0; i < s->noccurrences; i++) {
		struct series_ics_local o;
		if (!series_ics_parse_local(s->occurrences[i].occurrence_start, &o)) {
			reason = "malformed occurrence_start";
			goto out;
		}
		if (s->occurrences[i].confirmed && !series_ics_not_theirs(s, &s->occurrences[i]))
			confirmed[nconfirmed++] = o.days;
		/* A CANCEL of the whole series supersedes every instance's own messages. */
		if (cancel && series_ics_sequence(s, &s->occurrences[i]) > master_seq)
			master_seq = series_ics_sequence(s, &s->occurrences[i]);
	}
	qsort(confirmed, nconfirmed, sizeof *confirmed, series_ics_cmp_long);
	if (rrule_format(&plan.written, line, sizeof line) < 0) {
		reason = "rule too long";
		goto out;
	}

	series_ics_calendar_begin(out, s->method);
	if (!ical_vtimezone(out, s->zone)) {
		reason = "no VTIMEZONE for the zone";
		goto out;
	}

	snprintf(uid, sizeof uid, "series-%lld@meeting-rooms", s->id);
	if (s->instances_only) {
		/* The recipient's instances alone: no master, whose rule they were never sent. */
		for (size_t i = 0; i < s->noccurrences; i++) {
			const struct series_ics_occurrence *o = &s->occurrences[i];
			struct series_ics_local at;
			(void)series_ics_parse_local(o->occurrence_start, &at);
			series_ics_override(s, uid, o, at.days, series_ics_recur_secs(&plan, &at),
			                    cancel || !o->confirmed ? "CANCELLED" : "CONFIRMED",
			                    out);
		}
		goto end;
	}
	snprintf(sequence, sizeof sequence, "%d", master_seq);
	ical_prop(out, "BEGIN", "VEVENT");
	ical_prop(out, "UID", uid);
	ical_prop_utc(out, "DTSTAMP", s->stamp_utc);
	ical_prop_utc(out, "CREATED", s->created_utc);
	ical_prop_utc(out, "LAST-MODIFIED", s->updated_utc);
	ical_prop(out, "SEQUENCE", sequence);
	series_ics_tzid_prop(out, "DTSTART", s->zone, first.days, first.secs);
	char duration[48];
	series_ics_duration(s->duration_s, duration);
	ical_prop(out, "DURATION", duration);
	ical_prop(out, "RRULE", line);
	/* Every instance without a confirmed occurrence: cancelled, skipped at creation, one of
	 * the rule's EXDATEs, or past a cut. */
	for (size_t i = 0; i < ninstances; i++)
		if (!series_ics_has_day(confirmed, nconfirmed, instances[i]))
			series_ics_tzid_prop(out, "EXDATE", s->zone, instances[i], first.secs);
	/* A confirmed occurrence on a date the rule does not yield (one from before an edit that
	 * moved the series' start) is an instance of its own. */
	for (size_t i = 0; i < s->noccurrences; i++) {
		const struct series_ics_occurrence *o = &s->occurrences[i];
		struct series_ics_local at;
		(void)series_ics_parse_local(o->occurrence_start, &at);
		if (o->confirmed && !series_ics_not_theirs(s, o) &&
		    !series_ics_has_day(instances, ninstances, at.days))
			series_ics_tzid_prop(out, "RDATE", s->zone, at.days, at.secs);
	}
	ical_prop_text(out, "SUMMARY", series_ics_summary(s->purpose));
	if (s->room_name)
		ical_prop_text(out, "LOCATION", s->room_name);
	series_ics_people(s->organizer_email, s->organizer_name, s->attendees, s->nattendees, out);
	ical_prop(out, "STATUS", s->cancelled || cancel ? "CANCELLED" : "CONFIRMED");
	ical_prop(out, "END", "VEVENT");

	/* A confirmed occurrence that differs from its instance: moved, resized, changed on its
	 * own, or kept with its old times when the series was edited.  None under CANCEL. */
	for (size_t i = 0; i < s->noccurrences && !cancel; i++) {
		const struct series_ics_occurrence *o = &s->occurrences[i];
		struct series_ics_local at;
		char want[TIMEFMT_RFC3339_LEN];
		if (!o->confirmed || series_ics_not_theirs(s, o))
			continue;
		(void)series_ics_parse_local(o->occurrence_start, &at);
		int recur_secs = series_ics_recur_secs(&plan, &at);
		series_ics_local_text(at.days, recur_secs, want);
		if (o->exception || !o->local_start || strcmp(o->local_start, want) != 0 ||
		    o->end_utc - o->start_utc != s->duration_s ||
		    (o->purpose && !series_ics_same(o->purpose, s->purpose)) ||
		    (o->room_name && !series_ics_same(o->room_name, s->room_name)) ||
		    (s->method && o->own_attendees))
			series_ics_override(s, uid, o, at.days, recur_secs, "CONFIRMED", out);
	}
end:
	ical_prop(out, "END", "VCALENDAR");
	if (out->text.failed) {
		reason = "out of memory or text not UTF-8";
		goto out;
	}
	ok = true;
out:
	series_ics_plan_free(&plan);
	free(confirmed);
	if (why)
		*why = reason;
	return ok;
}

/* ---- reading the JSON of res_series_ics_data ---- */

/* The occurrences of an export (data's array, borrowed) into occ (room for the array's), their
 * own attendee lists into names (room for all of them); false when one lacks a field. */
static bool ics_occurrences(const json_t *list, struct series_ics_occurrence *occ,
                            const char **names, size_t *n)
{
	size_t i;
	const json_t *o;
	*n = 0;
	json_array_foreach(list, i, o) {
		struct series_ics_occurrence *x = &occ[i];
		const json_t *att = json_object_get(o, "attendees");
		x->occurrence_start = json_string_value(json_object_get(o, "occurrence_start"));
		x->local_start = json_string_value(json_object_get(o, "local_start"));
		x->start_utc = (long long)json_integer_value(json_object_get(o, "start_s"));
		x->end_utc = (long long)json_integer_value(json_object_get(o, "end_s"));
		x->confirmed = json_is_true(json_object_get(o, "confirmed"));
		x->exception = json_is_true(json_object_get(o, "exception"));
		x->purpose = json_string_value(json_object_get(o, "purpose"));
		x->room_name = json_string_value(json_object_get(o, "room_name"));
		x->version = (int)json_integer_value(json_object_get(o, "version"));
		if (json_is_array(att)) {
			size_t k;
			const json_t *a;
			x->own_attendees = true;
			x->attendees = names;
			json_array_foreach(att, k, a) {
				if (!json_is_string(a))
					return false;
				names[x->nattendees++] = json_string_value(a);
			}
			names += x->nattendees;
		}
		if (!x->occurrence_start || !x->local_start)
			return false;
	}
	*n = json_array_size(list);
	return true;
}

bool series_ics_read(const json_t *data, long long id, long long stamp_utc, struct series_ics *s,
                     struct rrule *rule, struct series_ics_occurrence **occ, const char **why)
{
	const json_t *until = json_object_get(data, "until_s");
	*s = (struct series_ics){
		.id = id,
		.zone = json_string_value(json_object_get(data, "zone")),
		.first_start = json_string_value(json_object_get(data, "first_start")),
		.duration_s = (long)json_integer_value(json_object_get(data, "duration_s")),
		.rule = rule,
		.has_until = json_is_integer(until),
		.until_utc = (long long)json_integer_value(until),
		.purpose = json_string_value(json_object_get(data, "purpose")),
		.room_name = json_string_value(json_object_get(data, "room_name")),
		.created_utc = (long long)json_integer_value(json_object_get(data, "created_s")),
		.updated_utc = (long long)json_integer_value(json_object_get(data, "updated_s")),
		.stamp_utc = stamp_utc,
		.version = (int)json_integer_value(json_object_get(data, "version")),
		.cancelled = json_is_true(json_object_get(data, "cancelled")),
	};
	struct rrule_error rerr;
	const char *text = json_string_value(json_object_get(data, "rule"));
	*occ = NULL;
	if (!text || !rrule_parse_text(text, rule, &rerr)) {
		*why = "the stored rule does not parse";
		return false;
	}
	/* One block: the occurrences, then their own attendee lists' pointers. */
	const json_t *list = json_object_get(data, "occurrences"), *o;
	size_t n = json_array_size(list), names = 0, i;
	if (n > SERIES_ICS_MAX_OCCURRENCES) {
		*why = "too many occurrences";
		return false;
	}
	json_array_foreach(list, i, o)
		names += json_array_size(json_object_get(o, "attendees"));
	if (!(*occ = calloc(1, (n ? n : 1) * sizeof **occ + names * sizeof(const char *)))) {
		*why = "out of memory";
		return false;
	}
	if (!ics_occurrences(list, *occ, (const char **)(void *)(*occ + (n ? n : 1)),
	                     &s->noccurrences)) {
		*why = "an occurrence lacks a field";
		return false;
	}
	s->occurrences = *occ;
	return true;
}
