/* Recurring reservations: a series is expanded here into the local starts of its occurrences
 * (rrule_expand, common/src/rrule.c) in the room's zone, and booked all at once by the
 * database (repo_series.c: res_book_series), under the same room lock as single bookings, so
 * that no overlap can appear between a series and anything else. */
#include "series.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clock.h"
#include "httpparse.h"
#include "ical.h"
#include "log.h"
#include "meeting.h"
#include "repo_series.h"
#include "rrule.h"
#include "series_ics.h"

/* A series create reads the room, expands and books again while the database asks to
 * (DB_RETRY: the room's zone changed in between, a swept Idempotency-Key) or meets a row
 * written without the room's lock (DB_EXCLUSION_VIOLATION), as res_repo_create does. */
#define ATTEMPTS 3

/* Bytes of one local start in an SQL timestamp[] literal: "YYYY-MM-DD HH:MM:SS" and a comma. */
#define START_ITEM_LEN 20
/* Bytes of one date in an SQL date[] literal: "YYYY-MM-DD" and a comma. */
#define DATE_ITEM_LEN 11

static const struct res_rules *rules;

void res_series_init(const struct res_rules *r)
{
	rules = r;
}

static void reply_recurrence(struct req *r, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* 422 naming recurrence with the formatted reason. */
static void reply_recurrence(struct req *r, const char *fmt, ...)
{
	char buf[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof buf, fmt, ap);
	va_end(ap);
	req_invalid(r, json_pack("{s:s}", "recurrence", buf));
}

/* A rule's occurrences as the booking function takes them. */
struct expansion {
	char first_start[32]; /* local start of the rule's first date (DTSTART) */
	char *starts;         /* SQL timestamp[] literal of the local starts; owned */
	char *exdates;        /* SQL date[] literal of the rule's EXDATEs; owned */
	char until_s[24];     /* a UTC UNTIL in Unix seconds, or "" */
};

/* EXPAND_HORIZON: the rule goes on past the horizon; EXPAND_BEYOND: its first date already is
 * past it. */
enum expand_result { EXPAND_OK, EXPAND_EMPTY, EXPAND_HORIZON, EXPAND_BEYOND, EXPAND_FAILED };

/* The number of items of a non-empty SQL array literal of unquoted items ("{a,b}"). */
static size_t literal_items(const char *literal)
{
	size_t n = 1;
	for (const char *p = literal; *p; p++)
		n += *p == ',';
	return n;
}

static void expansion_free(struct expansion *x)
{
	free(x->starts);
	free(x->exdates);
	memset(x, 0, sizeof *x);
}

static size_t put_date(char *p, struct rrule_date d)
{
	return (size_t)sprintf(p, "%04d-%02d-%02d", d.year, d.month, d.day);
}

/* Expands rule from the room's local start (room, read at now) up to the horizon's last local
 * day and one more (the occurrences of that day past the horizon's instant are refused by the
 * rules, naming the horizon), at most max + 1 dates (more than max: the database answers
 * too_many, after a UTC UNTIL has dropped what it drops).  A rule that goes on past that day
 * runs past the horizon, unless a UTC UNTIL within the horizon ends it anyway (the expansion
 * cannot apply it without the zone: rrule.h).  *x is filled for EXPAND_OK (then
 * expansion_free). */
static enum expand_result expand(const struct rrule *rule, const struct res_series_room *room,
                                 long long now, long long horizon_days, long long max,
                                 struct expansion *x)
{
	struct rrule_date start, today, *dates = NULL;
	int hh, mm, ss;
	enum rrule_stop stop;
	enum expand_result result = EXPAND_FAILED;
	memset(x, 0, sizeof *x);
	if (sscanf(room->local_start, "%d-%d-%dT%d:%d:%d", &start.year, &start.month, &start.day,
	           &hh, &mm, &ss) != 6 ||
	    sscanf(room->today, "%d-%d-%d", &today.year, &today.month, &today.day) != 3) {
		log_error("series: the database wrote the local start %s / today %s unreadably",
		          room->local_start, room->today);
		return EXPAND_FAILED;
	}
	int seconds = hh * 3600 + mm * 60 + ss;
	struct rrule_date limit = rrule_date_from_days(rrule_days_from_date(today) + horizon_days +
	                                               1);
	size_t cap = (size_t)max + 1;
	if (!(dates = malloc(cap * sizeof *dates)))
		goto out;
	size_t n = rrule_expand(rule, start, seconds, limit, dates, cap, &stop);
	bool utc_until = rule->until_kind == RRULE_UNTIL_UTC;
	long long until = utc_until ? rrule_days_from_date(rule->until_date) * 86400LL +
	                                      rule->until_seconds
	                            : 0;
	if (stop == RRULE_STOP_LIMIT && !(utc_until && until <= now + horizon_days * 86400)) {
		result = n == 0 ? EXPAND_BEYOND : EXPAND_HORIZON;
		goto out;
	}
	if (n == 0) {
		result = EXPAND_EMPTY;
		goto out;
	}
	if (utc_until)
		snprintf(x->until_s, sizeof x->until_s, "%lld", until);
	/* DTSTART is the rule's first date even when an EXDATE removes it: COUNT counts it. */
	struct rrule first_rule = *rule;
	struct rrule_date first;
	enum rrule_stop first_stop;
	first_rule.nexdates = 0;
	if (rrule_expand(&first_rule, start, seconds, limit, &first, 1, &first_stop) != 1)
		first = dates[0];
	char *p = x->first_start;
	p += put_date(p, first);
	sprintf(p, "T%02d:%02d:%02d", hh, mm, ss);

	if (!(x->starts = malloc(n * START_ITEM_LEN + 3)) ||
	    !(x->exdates = malloc(rule->nexdates * DATE_ITEM_LEN + 3)))
		goto out;
	p = x->starts;
	*p++ = '{';
	for (size_t i = 0; i < n; i++) {
		if (i > 0)
			*p++ = ',';
		p += put_date(p, dates[i]);
		p += sprintf(p, " %02d:%02d:%02d", hh, mm, ss);
	}
	strcpy(p, "}");
	p = x->exdates;
	*p++ = '{';
	for (size_t i = 0; i < rule->nexdates; i++) {
		if (i > 0)
			*p++ = ',';
		p += put_date(p, rule->exdates[i]);
	}
	strcpy(p, "}");
	result = EXPAND_OK;
out:
	free(dates);
	if (result != EXPAND_OK)
		expansion_free(x);
	return result;
}

/* 422: the rule runs past BOOKING_HORIZON_DAYS. */
static void reply_horizon(struct req *r)
{
	reply_recurrence(r,
	                 "runs past the booking horizon (%lld days): end it with COUNT or UNTIL "
	                 "sooner",
	                 rules->span.horizon_days);
}

/* 422 for a rule whose first date is past the horizon: a requested start that a single booking
 * would refuse is answered as one (start_time, end_time: shortening the rule cannot help),
 * else the rule runs past the horizon. */
static void reply_beyond(struct req *r, const struct res_series_room *room, long long now)
{
	json_t *details = json_object();
	if (room->has_given)
		res_validate_span(&rules->span, now, room->given_s,
		                  room->given_s + room->duration_s, details);
	if (json_object_size(details) > 0) {
		req_invalid(r, details);
		return;
	}
	json_decref(details);
	reply_horizon(r);
}

/* expand() with the configured limits; replies to a rule that yields nothing or runs past the
 * horizon (422) or to a failure (500), and returns false then. */
static bool expand_or_reply(struct req *r, const struct rrule *rule,
                            const struct res_series_room *room, long long now, struct expansion *x)
{
	switch (expand(rule, room, now, rules->span.horizon_days, rules->max_occurrences, x)) {
	case EXPAND_OK:
		return true;
	case EXPAND_EMPTY:
		reply_recurrence(r, "yields no occurrence");
		return false;
	case EXPAND_HORIZON:
		reply_horizon(r);
		return false;
	case EXPAND_BEYOND:
		reply_beyond(r, room, now);
		return false;
	case EXPAND_FAILED:
		break;
	}
	req_error(r, ERR_INTERNAL, NULL, NULL);
	return false;
}

/* 422 for an occurrence that breaks a booking rule (body: [index, start, end, local date] from
 * res_book_series, borrowed): the first occurrence as a single booking (start_time, end_time);
 * a later one names its date, or the horizon, the one rule a later occurrence can break alone
 * (the duration is the same for all, and they start later). */
static void reply_rules(struct req *r, long long now, const json_t *body)
{
	long long index = (long long)json_integer_value(json_array_get(body, 0));
	long long start = (long long)json_integer_value(json_array_get(body, 1));
	long long end = (long long)json_integer_value(json_array_get(body, 2));
	const char *date = json_string_value(json_array_get(body, 3));
	json_t *details = json_object();
	res_validate_span(&rules->span, now, start, end, details);
	if (json_object_size(details) == 0) {
		/* The database's predicate (res_span_breaks_rules) and res_validate_span disagree. */
		log_error("occurrence %lld..%lld breaks no rule here but did in the database",
		          start, end);
		json_decref(details);
		req_db_error(r, DB_ERROR);
		return;
	}
	if (index == 0) {
		req_invalid(r, details);
		return;
	}
	if (start > now + rules->span.horizon_days * 86400) {
		reply_horizon(r);
	} else {
		void *it = json_object_iter(details);
		reply_recurrence(r, "the occurrence on %s: %s %s", date ? date : "?",
		                 json_object_iter_key(it),
		                 json_string_value(json_object_iter_value(it)));
	}
	json_decref(details);
}

/* 201 (or 200) with the series (stolen): ETag, and Location for a create. */
static void reply_series(struct req *r, int status, json_t *series)
{
	res_meeting_sign_series(series, req_user(r));
	res_reply_versioned(r, status, series, "/reservations/series/");
}

/* What a reply names: the status of success (201 create, 200 change), and for a change the id
 * the request named (a series, or the occurrence of a split) and whether If-Match was given. */
struct reply_ctx {
	int ok_status;
	long long id;
	bool split;
	bool if_match;
};

/* Replies for the outcome of a series create or change; body is stolen. */
static void reply_outcome(struct req *r, const struct reply_ctx *ctx, long long now,
                          enum res_series_outcome outcome, json_t *body)
{
	const char *what = ctx->split ? "reservation" : "series";
	switch (outcome) {
	case RES_SERIES_REPLAY:
		req_add_header(r, "Idempotent-Replayed", "true");
		/* fall through */
	case RES_SERIES_DONE:
		if (outcome == RES_SERIES_DONE)
			log_info("series %lld %s: %zu occurrence(s), %zu skipped",
			         (long long)json_integer_value(json_object_get(body, "id")),
			         ctx->ok_status == 201 ? "created"
			         : ctx->split          ? "split off"
			                               : "changed",
			         json_array_size(json_object_get(body, "occurrences")),
			         json_array_size(json_object_get(body, "skipped")));
		reply_series(r, ctx->ok_status, body);
		body = NULL;
		break;
	case RES_SERIES_ROOM_UNKNOWN:
	case RES_SERIES_ROOM_INACTIVE:
		res_reply_room_problem(r, outcome == RES_SERIES_ROOM_INACTIVE);
		break;
	case RES_SERIES_EMPTY:
		reply_recurrence(r, "yields no occurrence");
		break;
	case RES_SERIES_TOO_MANY:
		reply_recurrence(r, "yields more than MAX_OCCURRENCES (%lld) occurrences",
		                 rules->max_occurrences);
		break;
	case RES_SERIES_RULES:
		reply_rules(r, now, body);
		break;
	case RES_SERIES_OVERLAP:
		reply_recurrence(
			r,
			"the occurrence on %s overlaps the next one: the duration is longer "
			"than the time between them",
			json_string_value(json_array_get(body, 1)));
		break;
	case RES_SERIES_REVOKED:
		res_reply_token_revoked(r);
		break;
	case RES_SERIES_KEY_MISMATCH:
		res_reply_key_mismatch(r);
		break;
	case RES_SERIES_ROOM_UNAVAILABLE:
		res_reply_room_unavailable(r);
		break;
	case RES_SERIES_CONFLICT: {
		size_t n = json_array_size(json_object_get(body, "occurrences"));
		req_error(
			r, ERR_CONFLICT, body,
			"the room is already booked at the time of %zu occurrence(s) of the series",
			n);
		body = NULL;
		break;
	}
	case RES_SERIES_NOT_FOUND:
		req_error(r, ERR_NOT_FOUND, NULL, "no %s with id %lld", what, ctx->id);
		break;
	case RES_SERIES_FORBIDDEN:
		req_error(r, ERR_FORBIDDEN, NULL, "this %s belongs to someone else", what);
		break;
	case RES_SERIES_STALE:
		if (ctx->if_match)
			req_error(r, ERR_PRECONDITION_FAILED, NULL, "%s %lld has changed", what,
			          ctx->id);
		else
			req_error(r, ERR_CONFLICT, NULL,
			          "%s %lld changed while it was being updated; try again", what,
			          ctx->id);
		break;
	case RES_SERIES_CANCELLED:
		req_error(r, ERR_CONFLICT, NULL, "%s %lld is cancelled and cannot change", what,
		          ctx->id);
		break;
	case RES_SERIES_NOT_OCCURRENCE:
		req_error(r, ERR_VALIDATION_FAILED,
		          json_pack("{s:s}", "scope",
		                    "this_and_following applies only to an occurrence of a series"),
		          "reservation %lld is no occurrence of a series: "
		          "scope=this_and_following does not apply",
		          ctx->id);
		break;
	case RES_SERIES_CAPACITY:
		res_reply_capacity(r, body);
		break;
	case RES_SERIES_POLICY:
		res_reply_policy(r, body);
		break;
	case RES_SERIES_PAST:
		req_error(r, ERR_CONFLICT, NULL,
		          "reservation %lld has already begun: a series can be split or cut only "
		          "at an occurrence that has not",
		          ctx->id);
		break;
	}
	json_decref(body);
}

/* An admin's series write with ?override=true that skipped rules of its rooms: logged (info,
 * the rules), as single bookings are. */
static void log_override(struct req *r, const struct res_request *q,
                         enum res_series_outcome outcome, const json_t *answer)
{
	if (outcome == RES_SERIES_DONE)
		res_log_override(r, q, "series",
		                 (long long)json_integer_value(json_object_get(answer, "id")));
}

void res_series_create(struct req *r, const json_t *body, const struct rrule *rule, bool skip,
                       const struct res_change *c, struct res_request *q, const char *idem_key,
                       const char *idem_hash)
{
	char rrule_text[RRULE_TEXT_MAX];
	char *recurrence = NULL, *attendees = NULL, *urls = NULL;
	json_t *answer = NULL;
	struct expansion x = {0};
	struct res_series_room room;
	enum res_series_outcome outcome = RES_SERIES_DONE;
	enum db_status st = DB_RETRY;

	if (rrule_format(rule, rrule_text, sizeof rrule_text) < 0 ||
	    !(recurrence = json_dumps(json_object_get(body, "recurrence"),
	                              JSON_COMPACT | JSON_ENCODE_ANY)) ||
	    !(attendees = res_attendees_param(&c->attendees))) {
		req_error(r, ERR_INTERNAL, NULL, NULL);
		goto out;
	}
	for (int i = 0; i < ATTEMPTS && (st == DB_RETRY || st == DB_EXCLUSION_VIOLATION); i++) {
		expansion_free(&x);
		json_decref(answer);
		answer = NULL;
		if ((st = res_repo_series_start(c->room_id, q->start, q->end, q->now, &room)) !=
		    DB_OK)
			break;
		if (!room.active) {
			res_reply_room_problem(r, room.found);
			goto out;
		}
		if (!expand_or_reply(r, rule, &room, q->now, &x))
			goto out;
		/* One link per occurrence, each its own room. */
		free(urls);
		urls = NULL;
		if (c->online_meeting == RES_ONLINE_ON &&
		    !(urls = res_meeting_new_urls(literal_items(x.starts)))) {
			req_error(r, ERR_INTERNAL, NULL, NULL);
			goto out;
		}
		struct res_series_booking b = {
			.room_id = c->room_id,
			.user_id = c->user_id,
			.token_issued_ms = c->token_issued_ms,
			.purpose = c->purpose,
			.recurrence = recurrence,
			.rrule = rrule_text,
			.exdates = x.exdates,
			.time_zone = room.time_zone,
			.first_start = x.first_start,
			.starts = x.starts,
			.duration_s = room.duration_s,
			.until_s = x.until_s[0] ? x.until_s : NULL,
			.skip = skip,
			.max_occurrences = rules->max_occurrences,
			.attendees = attendees,
			.organizer_email = c->organizer_email,
			.organizer_name = c->organizer_name,
			.meeting_urls = urls,
		};
		st = res_repo_series_create(&b, q, idem_key, idem_hash, &answer, &outcome);
	}
	if (st != DB_OK) {
		res_reply_write_error(r, st);
		goto out;
	}
	log_override(r, q, outcome, answer);
	reply_outcome(r, &(struct reply_ctx){.ok_status = 201}, q->now, outcome, answer);
	answer = NULL;
out:
	json_decref(answer);
	expansion_free(&x);
	free(recurrence);
	free(attendees);
	free(urls);
}

/* ---- read, cancel ---- */

/* GET /reservations/series/{id}.ics: the series as iCalendar text (series_ics.h). */
static void series_ics(struct req *r, long long id)
{
	json_t *data = NULL;
	struct ical_text out = {0};
	struct rrule rule;
	struct series_ics s;
	struct series_ics_occurrence *occ = NULL;
	const char *why = NULL;
	const struct auth_user *u = req_user(r);
	enum db_status st = res_repo_series_ics(id, &data);
	if (st != DB_OK) {
		req_db_error(r, st);
		goto out;
	}
	if (!data) {
		req_error(r, ERR_NOT_FOUND, NULL, "no series with id %lld", id);
		goto out;
	}
	if (!u->admin && json_integer_value(json_object_get(data, "user_id")) != u->id) {
		req_error(r, ERR_FORBIDDEN, NULL, "this series belongs to someone else");
		goto out;
	}
	if (series_ics_read(data, id, (long long)time(NULL), &s, &rule, &occ, &why) &&
	    series_ics_build(&s, &out, &why)) {
		char disposition[64], etag[32];
		snprintf(disposition, sizeof disposition,
		         "attachment; filename=\"series-%lld.ics\"", id);
		snprintf(etag, sizeof etag, "\"%d\"", s.version);
		req_add_header(r, "Content-Disposition", disposition);
		req_add_header(r, "ETag", etag);
		req_reply_text(r, 200, "text/calendar; charset=utf-8", out.text.data, out.text.len);
		goto out;
	}
	log_error("series %lld: no .ics: %s", id, why ? why : "unknown");
	req_error(r, ERR_INTERNAL, NULL, "series %lld cannot be written as iCalendar", id);
out:
	free(occ);
	ical_text_free(&out);
	json_decref(data);
}

void res_handle_series_get(struct req *r)
{
	long long id;
	char raw[32];
	json_t *series = NULL;
	const struct auth_user *u = req_user(r);
	size_t len = req_param(r, "id", raw, sizeof raw) ? strlen(raw) : 0;
	if (len > 4 && strcmp(raw + len - 4, ".ics") == 0) {
		raw[len - 4] = '\0';
		if (!httpparse_positive_id(raw, &id))
			req_error(r, ERR_NOT_FOUND, NULL, "no such id");
		else
			series_ics(r, id);
		return;
	}
	if (!req_param_id(r, "id", &id))
		return;
	enum db_status st = res_repo_series_get(id, &series);
	if (st != DB_OK)
		req_db_error(r, st);
	else if (!series)
		req_error(r, ERR_NOT_FOUND, NULL, "no series with id %lld", id);
	else if (!u->admin && json_integer_value(json_object_get(series, "user_id")) != u->id)
		req_error(r, ERR_FORBIDDEN, NULL, "this series belongs to someone else");
	else {
		reply_series(r, 200, series);
		series = NULL;
	}
	json_decref(series);
}

void res_handle_series_cancel(struct req *r)
{
	long long id, if_match = 0;
	const struct auth_user *u = req_user(r);
	enum res_series_outcome outcome = RES_SERIES_DONE;
	if (!req_param_id(r, "id", &id) || !req_if_match(r, &if_match))
		return;
	enum db_status st = res_repo_series_cancel(id, u->id, u->admin, if_match, rules->topic,
	                                           clock_now_s(), &outcome);
	if (st != DB_OK)
		req_db_error(r, st);
	else if (outcome == RES_SERIES_NOT_FOUND)
		req_error(r, ERR_NOT_FOUND, NULL, "no series with id %lld", id);
	else if (outcome == RES_SERIES_FORBIDDEN)
		req_error(r, ERR_FORBIDDEN, NULL, "this series belongs to someone else");
	else if (outcome == RES_SERIES_STALE)
		req_error(r, ERR_PRECONDITION_FAILED, NULL, "series %lld has changed", id);
	else {
		log_info("series %lld cancelled", id);
		req_reply_empty(r, 204);
	}
}

/* ---- change: PUT /reservations/series/{id}, scope=this_and_following ---- */

static bool parse_date(const char *text, struct rrule_date *d)
{
	return text && sscanf(text, "%d-%d-%d", &d->year, &d->month, &d->day) == 3;
}

/* The rule's dates (its EXDATEs counted, as COUNT counts them) from the series' DTSTART
 * (first_start, local) to the day before split (a local date): how many of its COUNT the
 * earlier part of a split used.  -1 when first_start is unreadable or memory is short. */
static long dates_before(const struct rrule *rule, const char *first_start, struct rrule_date split)
{
	struct rrule all = *rule;
	struct rrule_date start, *dates = NULL;
	enum rrule_stop stop;
	int hh, mm, ss;
	if (sscanf(first_start, "%d-%d-%dT%d:%d:%d", &start.year, &start.month, &start.day, &hh,
	           &mm, &ss) != 6)
		return -1;
	all.nexdates = 0;
	if (!(dates = malloc((size_t)rule->count * sizeof *dates)))
		return -1;
	struct rrule_date limit = rrule_date_from_days(rrule_days_from_date(split) - 1);
	size_t n = rrule_expand(&all, start, hh * 3600 + mm * 60 + ss, limit, dates,
	                        (size_t)rule->count, &stop);
	free(dates);
	return (long)n;
}

/* The rule of the new series of a split at local date split, when the body gives none: the
 * old series' rule with its COUNT reduced by the dates before the split, and only its EXDATEs
 * from the split on.  False when nothing of its COUNT is left (or on failure). */
static bool rule_after_split(struct rrule *rule, const char *first_start, struct rrule_date split)
{
	if (rule->count > 0) {
		long used = dates_before(rule, first_start, split);
		if (used < 0 || used >= rule->count)
			return false;
		rule->count -= used;
	}
	size_t kept = 0;
	long from = rrule_days_from_date(split);
	for (size_t i = 0; i < rule->nexdates; i++)
		if (rrule_days_from_date(rule->exdates[i]) >= from)
			rule->exdates[kept++] = rule->exdates[i];
	rule->nexdates = kept;
	return true;
}

/* The rule as a recurrence value (new JSON string): its canonical text with its EXDATEs. */
static json_t *rule_value(const struct rrule *rule)
{
	char text[RRULE_TEXT_MAX + RRULE_MAX_EXDATES * 9 + 8];
	int n = rrule_format(rule, text, sizeof text);
	if (n < 0)
		return NULL;
	size_t len = (size_t)n;
	for (size_t i = 0; i < rule->nexdates; i++)
		len += (size_t)snprintf(text + len, sizeof text - len, "%s%04d%02d%02d",
		                        i == 0 ? ";EXDATE=" : ",", rule->exdates[i].year,
		                        rule->exdates[i].month, rule->exdates[i].day);
	return json_string(text);
}

/* Answers the problems res_series_edit_start found, in the order a client expects them: 404,
 * 403, then the body's (details, stolen), then the state.  True when it replied. */
static bool reply_base_problem(struct req *r, const struct reply_ctx *ctx,
                               const struct res_series_base *b, json_t *details)
{
	const struct auth_user *u = req_user(r);
	enum res_series_outcome o = b->problem;
	if (o == RES_SERIES_NOT_FOUND || (!u->admin && b->user_id != u->id)) {
		reply_outcome(r, ctx, 0, o == RES_SERIES_NOT_FOUND ? o : RES_SERIES_FORBIDDEN,
		              NULL);
	} else if (o == RES_SERIES_NOT_OCCURRENCE) {
		reply_outcome(r, ctx, 0, o, NULL);
	} else if (json_object_size(details)) {
		req_invalid(r, details);
		return true;
	} else if (o != RES_SERIES_DONE) {
		reply_outcome(r, ctx, 0, o, NULL);
	} else {
		json_decref(details);
		return false;
	}
	json_decref(details);
	return true;
}

/* A change of series id (split false: PUT /reservations/series/{id}) or a split at occurrence
 * id (PUT /reservations/{id}?scope=this_and_following), as docs/api.md#changing-a-series
 * describes: the body is checked, the series read (res_series_edit_start), the rule expanded
 * here and the result written by res_change_series in one transaction.  Replies. */
static void series_change(struct req *r, long long id, bool split)
{
	json_t *body = NULL, *details = json_object(), *answer = NULL, *value = NULL;
	char rrule_text[RRULE_TEXT_MAX];
	char *recurrence = NULL, *attendees = NULL, *urls = NULL;
	struct res_series_change c;
	struct rrule rule;
	struct rrule_error rerr;
	struct res_time given[2];
	const struct res_time *start = NULL, *end = NULL;
	struct res_series_base b = {0};
	struct expansion x = {0};
	const struct auth_user *u = req_user(r);
	struct res_request q = {.rules = &rules->span, .topic = rules->topic};
	struct reply_ctx ctx = {.ok_status = 200, .id = id, .split = split};
	enum res_series_outcome outcome = RES_SERIES_DONE;
	enum db_status st = DB_RETRY;
	long long if_match = 0;

	if (!req_if_match(r, &if_match) || !res_read_override(r, &q) ||
	    !(body = req_body_object(r)))
		goto out;
	ctx.if_match = if_match != 0;
	res_validate_series_change(body, &c, &rule, details);
	if (json_object_size(details) == 0)
		res_read_times(body, given, &start, &end, details);
	bool valid = json_object_size(details) == 0;
	if (valid && c.attendees.given && !(attendees = res_attendees_param(&c.attendees))) {
		req_error(r, ERR_INTERNAL, NULL, NULL);
		goto out;
	}
	q.now = clock_now_s();
	for (int i = 0; i < ATTEMPTS && (st == DB_RETRY || st == DB_EXCLUSION_VIOLATION); i++) {
		res_series_base_free(&b);
		expansion_free(&x);
		json_decref(answer);
		json_decref(value);
		free(recurrence);
		free(urls);
		answer = value = NULL;
		recurrence = urls = NULL;
		if ((st = res_repo_series_edit_start(id, split, valid ? c.room_id : 0,
		                                     valid ? start : NULL, valid ? end : NULL,
		                                     q.now, &b)) != DB_OK)
			break;
		if (reply_base_problem(r, &ctx, &b, details)) {
			details = NULL;
			goto out;
		}
		details = NULL;
		/* One more than the limit passes only with the organizer's own address in it. */
		json_t *fit = json_object();
		if (!res_attendees_fit(&c.attendees, b.organizer_email, fit)) {
			req_invalid(r, fit);
			goto out;
		}
		json_decref(fit);
		if (!c.has_rule && !rrule_parse_text(b.rule, &rule, &rerr)) {
			log_error("series %lld: the stored rule does not parse: %s", b.series_id,
			          rerr.reason);
			req_error(r, ERR_INTERNAL, NULL, NULL);
			goto out;
		}
		/* A split starts at its occurrence's date or later: "this and following". */
		if (split && start && strncmp(b.room.local_start, b.split_start, 10) < 0) {
			char why[128];
			snprintf(
				why, sizeof why,
				"must not be before %.10s, the date of the occurrence the series is "
				"split at",
				b.split_start);
			req_invalid(r, json_pack("{s:s}", "start_time", why));
			goto out;
		}
		/* The stored rule re-anchored at a split or at new times keeps its COUNT: the
		 * dates before the new anchor count (docs/api.md#changing-a-series). */
		bool anchored = !c.has_rule && (split || start);
		struct rrule_date at;
		if (anchored && (!parse_date(b.room.local_start, &at) ||
		                 !rule_after_split(&rule, b.first_start, at))) {
			if (split)
				reply_recurrence(r, "yields no occurrence from reservation %lld on",
				                 id);
			else
				reply_recurrence(r,
				                 "yields no occurrence from start_time's date on");
			goto out;
		}
		bool regenerate = c.has_rule || start || c.room_id;
		if ((regenerate || split) && !expand_or_reply(r, &rule, &b.room, q.now, &x))
			goto out;
		bool new_rule = c.has_rule || anchored;
		value = c.has_rule ? json_incref(json_object_get(body, "recurrence"))
		        : anchored ? rule_value(&rule)
		                   : NULL;
		if (new_rule &&
		    (!value || rrule_format(&rule, rrule_text, sizeof rrule_text) < 0 ||
		     !(recurrence = json_dumps(value, JSON_COMPACT | JSON_ENCODE_ANY)))) {
			req_error(r, ERR_INTERNAL, NULL, NULL);
			goto out;
		}
		bool expanded = regenerate || split;
		/* Fresh links for the occurrences that may need one: with online_meeting turned on,
		 * every future one that has none; with the series online, those the rule adds
		 * (indexed after the future ones: res_change_series). */
		bool online = c.online_meeting == RES_ONLINE_ON ||
		              (c.online_meeting == RES_ONLINE_KEEP && b.online_meeting);
		size_t links = online && (c.online_meeting == RES_ONLINE_ON || regenerate)
		                       ? (size_t)b.future +
		                                 (regenerate ? literal_items(x.starts) : 0)
		                       : 0;
		if (links > 0 && !(urls = res_meeting_new_urls(links))) {
			req_error(r, ERR_INTERNAL, NULL, NULL);
			goto out;
		}
		struct res_series_edit e = {
			.id = id,
			.split = split,
			.caller = u->id,
			.admin = u->admin,
			.if_match = if_match,
			.seen_version = b.version,
			.seen_series = b.series_version,
			.room_id = c.room_id,
			.purpose = c.purpose,
			.regenerate = regenerate,
			.reset = start || c.room_id,
			.recurrence = recurrence,
			.rrule = new_rule ? rrule_text : NULL,
			.exdates = new_rule ? x.exdates : NULL,
			.time_zone = expanded ? b.room.time_zone : NULL,
			.first_start = expanded ? x.first_start : NULL,
			.starts = regenerate ? x.starts : NULL,
			.until_s = regenerate && x.until_s[0] ? x.until_s : NULL,
			.duration_s = expanded ? b.room.duration_s : 0,
			.has_given = b.room.has_given,
			.given_s = b.room.given_s,
			.skip = c.skip,
			.max_occurrences = rules->max_occurrences,
			.attendees = attendees,
			.online_meeting = c.online_meeting == RES_ONLINE_KEEP ? NULL
		                          : c.online_meeting == RES_ONLINE_ON ? "true"
		                                                              : "false",
			.meeting_urls = urls,
		};
		st = res_repo_series_change(&e, &q, &answer, &outcome);
	}
	if (st != DB_OK) {
		res_reply_write_error(r, st);
		goto out;
	}
	log_override(r, &q, outcome, answer);
	reply_outcome(r, &ctx, q.now, outcome, answer);
	answer = NULL;
out:
	json_decref(value);
	json_decref(answer);
	json_decref(details);
	json_decref(body);
	free(recurrence);
	free(attendees);
	free(urls);
	expansion_free(&x);
	res_series_base_free(&b);
}

void res_handle_series_update(struct req *r)
{
	long long id;
	if (req_param_id(r, "id", &id))
		series_change(r, id, false);
}

void res_series_update_following(struct req *r, long long id)
{
	series_change(r, id, true);
}

void res_series_cancel_following(struct req *r, long long id, long long if_match)
{
	const struct auth_user *u = req_user(r);
	enum res_series_outcome outcome = RES_SERIES_DONE;
	enum db_status st = res_repo_series_cancel_following(id, u->id, u->admin, if_match,
	                                                     rules->topic, clock_now_s(), &outcome);
	if (st != DB_OK) {
		req_db_error(r, st);
	} else if (outcome == RES_SERIES_DONE) {
		log_info("reservation %lld and the following occurrences cancelled", id);
		req_reply_empty(r, 204);
	} else {
		struct reply_ctx ctx = {.id = id, .split = true, .if_match = true};
		reply_outcome(r, &ctx, 0, outcome, NULL);
	}
}
