/* All SQL of recurring reservations: calls of the functions of migrations/006_recurrence.sql
 * and 007_series_edit.sql (res_series_edit_start and res_change_series as 012_series_attendees.sql
 * redefines them; the writes through 018_policies.sql's _checked wrappers, which apply the
 * rooms' policies to the occurrences they place). */
#include "repo_series.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "countof.h"
#include "log.h"

static const char *const outcome_names[] = {
#define RES_SERIES_NAME_(e, name) name,
	RES_SERIES_OUTCOMES(RES_SERIES_NAME_)
#undef RES_SERIES_NAME_
};

/* The cancelling functions run again while the database asks to (DB_RETRY: a deadlock or a
 * serialization failure rolled the call back), as the booking calls of repo.c do; the writers
 * that expand a rule first (create, change) are repeated by series.c, which reads the series
 * and expands the rule again. */
#define ATTEMPTS 3

static void num(char *buf, size_t size, long long v)
{
	snprintf(buf, size, "%lld", v);
}

/* The clock, the rules and the occurrence limit of a create or change, as parameter text. */
struct rule_params {
	char now[24], min[24], max[24], horizon[24], most[24];
};

static void rule_params(const struct res_request *q, long long max_occurrences,
                        struct rule_params *p)
{
	num(p->now, sizeof p->now, q->now);
	num(p->min, sizeof p->min, q->rules->min_minutes * 60);
	num(p->max, sizeof p->max, q->rules->max_minutes * 60);
	num(p->horizon, sizeof p->horizon, q->rules->horizon_days * 86400);
	num(p->most, sizeof p->most, max_occurrences);
}

/* The outcome named in column 0 of row 0 of res (borrowed); false for none that is known (a
 * programming error: the function and the table disagree). */
static bool outcome_of(const PGresult *res, enum res_series_outcome *outcome)
{
	const char *name = PQntuples(res) == 1 ? db_value(res, 0, 0) : NULL;
	for (size_t i = 0; name && i < countof(outcome_names); i++)
		if (strcmp(outcome_names[i], name) == 0) {
			*outcome = (enum res_series_outcome)i;
			return true;
		}
	log_error("series function answered %s", name ? name : "no outcome");
	return false;
}

/* The (outcome, body) row of series function fn (res borrowed): *outcome, and *body a new
 * reference to the body's JSON (NULL without one; body NULL: the function answers only an
 * outcome).  DB_ERROR for an outcome or a body that cannot be read. */
static enum db_status outcome_and_body(const PGresult *res, const char *fn,
                                       enum res_series_outcome *outcome, json_t **body)
{
	if (!outcome_of(res, outcome))
		return DB_ERROR;
	const char *text = body ? db_value(res, 0, 1) : NULL;
	if (text && !(*body = json_loads(text, 0, NULL))) {
		/* Not the body itself: it holds what users wrote (the purpose). */
		log_error("%s answered %s with a body that is not JSON (%zu bytes)", fn,
		          outcome_names[*outcome], strlen(text));
		return DB_ERROR;
	}
	return DB_OK;
}

/* Runs sql, the call of series function fn with n params, as a transaction of its own (up to
 * attempts times while it answers DB_RETRY) and reads its row (outcome_and_body); with q, its
 * third column, the rules an override skipped, into q->skipped. */
static enum db_status call_series(const char *fn, const char *sql, const char *const *params, int n,
                                  int attempts, struct res_request *q,
                                  enum res_series_outcome *outcome, json_t **body)
{
	enum db_status st = DB_RETRY;
	for (int i = 0; i < attempts && st == DB_RETRY; i++) {
		PGresult *res = NULL;
		if (body)
			*body = NULL;
		st = db_write(&res, sql, n, params);
		if (st == DB_OK)
			st = outcome_and_body(res, fn, outcome, body);
		if (st == DB_OK && q)
			snprintf(q->skipped, sizeof q->skipped, "%s",
			         db_value(res, 0, 2) ? db_value(res, 0, 2) : "");
		PQclear(res);
	}
	return st;
}

/* The call sql of a cancelling series function fn taking (id, caller, admin, if_match, topic,
 * now_s). */
static enum db_status call_cancel(const char *fn, const char *sql, long long id, long long caller,
                                  bool admin, long long if_match, const char *topic, long long now,
                                  enum res_series_outcome *outcome)
{
	char ids[24], who[24], version[24], nows[24];
	num(ids, sizeof ids, id);
	num(who, sizeof who, caller);
	num(version, sizeof version, if_match);
	num(nows, sizeof nows, now);
	const char *params[] = {ids, who, admin ? "true" : "false", version, topic, nows};
	return call_series(fn, sql, params, (int)countof(params), ATTEMPTS, NULL, outcome, NULL);
}

enum db_status res_repo_series_start(long long room_id, const struct res_time *start,
                                     const struct res_time *end, long long now,
                                     struct res_series_room *room)
{
	char ids[24], start_abs[24], end_abs[24], nows[24];
	const char *start_s, *start_local, *end_s, *end_local;
	PGresult *res = NULL;
	num(ids, sizeof ids, room_id);
	num(nows, sizeof nows, now);
	res_time_param(start, start_abs, &start_s, &start_local);
	res_time_param(end, end_abs, &end_s, &end_local);
	const char *params[] = {ids, start_s, start_local, end_s, end_local, nows};
	memset(room, 0, sizeof *room);
	enum db_status st = db_exec(
		&res,
		"SELECT s.problem, s.zone, s.local_start, s.duration_s, s.today, s.given_s "
		"FROM res_series_start($1::bigint, $2::bigint, $3::timestamp, $4::bigint, "
		"$5::timestamp, $6::bigint) s",
		(int)countof(params), params);
	if (st == DB_OK && PQntuples(res) == 1) {
		const char *problem = db_value(res, 0, 0);
		room->found = !problem || strcmp(problem, "room_unknown") != 0;
		room->active = !problem;
		if (!problem) {
			snprintf(room->time_zone, sizeof room->time_zone, "%s",
			         PQgetvalue(res, 0, 1));
			snprintf(room->local_start, sizeof room->local_start, "%s",
			         PQgetvalue(res, 0, 2));
			room->duration_s = db_int(res, 0, 3);
			snprintf(room->today, sizeof room->today, "%s", PQgetvalue(res, 0, 4));
			room->has_given = !PQgetisnull(res, 0, 5);
			room->given_s = room->has_given ? db_int(res, 0, 5) : 0;
		}
	} else if (st == DB_OK) {
		st = DB_ERROR;
	}
	PQclear(res);
	return st;
}

enum db_status res_repo_series_create(const struct res_series_booking *b, struct res_request *q,
                                      const char *idem_key, const char *idem_hash, json_t **body,
                                      enum res_series_outcome *outcome)
{
	char room[24], user[24], duration[24], issued[24];
	struct rule_params p;
	num(room, sizeof room, b->room_id);
	num(user, sizeof user, b->user_id);
	num(duration, sizeof duration, b->duration_s);
	num(issued, sizeof issued, b->token_issued_ms);
	rule_params(q, b->max_occurrences, &p);
	const char *params[] = {room,
	                        user,
	                        b->purpose ? b->purpose : "",
	                        b->recurrence,
	                        b->rrule,
	                        b->exdates,
	                        b->time_zone,
	                        b->first_start,
	                        b->starts,
	                        duration,
	                        b->until_s,
	                        b->skip ? "skip" : "fail",
	                        issued,
	                        q->topic,
	                        idem_key,
	                        idem_hash,
	                        p.now,
	                        p.min,
	                        p.max,
	                        p.horizon,
	                        p.most,
	                        b->attendees,
	                        b->organizer_email,
	                        b->organizer_name,
	                        b->meeting_urls,
	                        q->role,
	                        q->override ? "true" : "false"};
	return call_series(
		"res_book_series_checked",
		"SELECT b.outcome, b.body, b.skipped FROM res_book_series_checked($1::bigint, "
		"$2::bigint, $3::text, "
		"$4::json, $5::text, $6::date[], $7::text, $8::timestamp, $9::timestamp[], "
		"$10::bigint, $11::bigint, $12::text, $13::bigint, $14::text, $15::text, $16::text, "
		"$17::bigint, $18::bigint, $19::bigint, $20::bigint, $21::int, $22::text[], $23::text, "
		"$24::text, $25::text[], $26::text, $27::boolean) b",
		params, (int)countof(params), 1, q, outcome, body);
}

/* Runs sql, a read of series id ($1) that answers at most one row of one JSON column: *out a
 * new reference to it, or NULL without a row. */
static enum db_status read_json(const char *sql, long long id, json_t **out)
{
	char ids[24];
	PGresult *res = NULL;
	num(ids, sizeof ids, id);
	const char *params[] = {ids};
	*out = NULL;
	enum db_status st = db_exec(&res, sql, 1, params);
	if (st == DB_OK && PQntuples(res) == 1 &&
	    !(*out = json_loads(PQgetvalue(res, 0, 0), 0, NULL)))
		st = DB_ERROR;
	PQclear(res);
	return st;
}

enum db_status res_repo_series_get(long long id, json_t **series)
{
	return read_json("SELECT res_series_answer(s, NULL) FROM reservation_series s "
	                 "WHERE s.id = $1::bigint",
	                 id, series);
}

enum db_status res_repo_series_cancel(long long id, long long caller, bool admin,
                                      long long if_match, const char *topic, long long now,
                                      enum res_series_outcome *outcome)
{
	/* The rooms first, then the series (migrations/020_waitlist.sql: the cancelled time goes
	 * to the rooms' waitlists in the same transaction, at the service's clock). */
	return call_cancel(
		"res_cancel_series_promoting",
		"SELECT res_cancel_series_promoting($1::bigint, $2::bigint, $3::boolean, "
		"$4::bigint, $5::text, $6::bigint)",
		id, caller, admin, if_match, topic, now, outcome);
}

enum db_status res_repo_series_ics(long long id, json_t **data)
{
	return read_json("SELECT d FROM res_series_ics_data($1::bigint) d WHERE d IS NOT NULL", id,
	                 data);
}

/* ---- changes (migrations/007_series_edit.sql) ---- */

void res_series_base_free(struct res_series_base *b)
{
	free(b->rule);
	b->rule = NULL;
}

/* Copies column col of row 0 of res (borrowed) into buf ("" for NULL). */
static void copy_text(const PGresult *res, int col, char *buf, size_t size)
{
	const char *v = db_value(res, 0, col);
	snprintf(buf, size, "%s", v ? v : "");
}

enum db_status res_repo_series_edit_start(long long id, bool split, long long room_id,
                                          const struct res_time *start, const struct res_time *end,
                                          long long now, struct res_series_base *b)
{
	char ids[24], rooms[24], start_abs[24], end_abs[24], nows[24];
	const char *start_s, *start_local, *end_s, *end_local;
	PGresult *res = NULL;
	num(ids, sizeof ids, id);
	num(rooms, sizeof rooms, room_id);
	num(nows, sizeof nows, now);
	res_time_param(start, start_abs, &start_s, &start_local);
	res_time_param(end, end_abs, &end_s, &end_local);
	const char *params[] = {ids,
	                        split ? "true" : "false",
	                        room_id ? rooms : NULL,
	                        start_s,
	                        start_local,
	                        end_s,
	                        end_local,
	                        nows};
	memset(b, 0, sizeof *b);
	enum db_status st = db_exec(
		&res,
		"SELECT e.problem, e.user_id, e.series_id, e.version, e.series_version, e.rule, "
		"e.first_start, e.split_start, e.zone, e.local_start, e.given_s, e.duration_s, "
		"e.today, e.organizer_email, e.online_meeting, e.future "
		"FROM res_series_edit_start($1::bigint, $2::boolean, $3::bigint, $4::bigint, "
		"$5::timestamp, $6::bigint, $7::timestamp, $8::bigint) e",
		(int)countof(params), params);
	if (st != DB_OK)
		goto out;
	b->problem = RES_SERIES_DONE;
	if (!PQgetisnull(res, 0, 0) && !outcome_of(res, &b->problem)) {
		st = DB_ERROR;
		goto out;
	}
	b->user_id = PQgetisnull(res, 0, 1) ? 0 : db_int(res, 0, 1);
	if (b->problem != RES_SERIES_DONE)
		goto out;
	b->series_id = db_int(res, 0, 2);
	b->version = db_int(res, 0, 3);
	b->series_version = db_int(res, 0, 4);
	if (!(b->rule = strdup(PQgetvalue(res, 0, 5)))) {
		st = DB_ERROR;
		goto out;
	}
	copy_text(res, 6, b->first_start, sizeof b->first_start);
	copy_text(res, 7, b->split_start, sizeof b->split_start);
	b->room.found = b->room.active = true;
	copy_text(res, 8, b->room.time_zone, sizeof b->room.time_zone);
	copy_text(res, 9, b->room.local_start, sizeof b->room.local_start);
	b->room.has_given = !PQgetisnull(res, 0, 10);
	b->room.given_s = b->room.has_given ? db_int(res, 0, 10) : 0;
	b->room.duration_s = db_int(res, 0, 11);
	copy_text(res, 12, b->room.today, sizeof b->room.today);
	copy_text(res, 13, b->organizer_email, sizeof b->organizer_email);
	b->online_meeting = db_bool(res, 0, 14);
	b->future = db_int(res, 0, 15);
out:
	if (st != DB_OK)
		res_series_base_free(b);
	PQclear(res);
	return st;
}

enum db_status res_repo_series_change(const struct res_series_edit *e, struct res_request *q,
                                      json_t **body, enum res_series_outcome *outcome)
{
	char id[24], caller[24], if_match[24], seen[24], seen_series[24], room[24], duration[24],
		given[24];
	struct rule_params p;
	num(id, sizeof id, e->id);
	num(caller, sizeof caller, e->caller);
	num(if_match, sizeof if_match, e->if_match);
	num(seen, sizeof seen, e->seen_version);
	num(seen_series, sizeof seen_series, e->seen_series);
	num(room, sizeof room, e->room_id);
	num(duration, sizeof duration, e->duration_s);
	num(given, sizeof given, e->given_s);
	rule_params(q, e->max_occurrences, &p);
	const char *params[] = {e->split ? NULL : id,
	                        e->split ? id : NULL,
	                        caller,
	                        e->admin ? "true" : "false",
	                        if_match,
	                        seen,
	                        seen_series,
	                        e->room_id ? room : NULL,
	                        e->purpose,
	                        e->regenerate ? "true" : "false",
	                        e->reset ? "true" : "false",
	                        e->recurrence,
	                        e->rrule,
	                        e->exdates,
	                        e->time_zone,
	                        e->first_start,
	                        e->duration_s ? duration : NULL,
	                        e->starts,
	                        e->until_s,
	                        e->has_given ? given : NULL,
	                        e->skip ? "skip" : "fail",
	                        q->topic,
	                        p.now,
	                        p.min,
	                        p.max,
	                        p.horizon,
	                        p.most,
	                        e->attendees,
	                        e->online_meeting,
	                        e->meeting_urls,
	                        q->role,
	                        q->override ? "true" : "false"};
	/* The rooms the change may free time in are locked first, then the series
	 * (migrations/020_waitlist.sql: an occurrence moved to another room and cancelled or moved
	 * by the change hands its time to that room's waitlist in the same transaction). */
	return call_series(
		"res_change_series_checked_promoting",
		"SELECT c.outcome, c.body, c.skipped FROM res_change_series_checked_promoting($1::bigint, "
		"$2::bigint, $3::bigint, "
		"$4::boolean, $5::bigint, $6::bigint, $7::bigint, $8::bigint, $9::text, $10::boolean, "
		"$11::boolean, $12::json, $13::text, $14::date[], $15::text, $16::timestamp, "
		"$17::bigint, $18::timestamp[], $19::bigint, $20::bigint, $21::text, $22::text, "
		"$23::bigint, $24::bigint, $25::bigint, $26::bigint, $27::int, $28::text[], "
		"$29::boolean, $30::text[], $31::text, $32::boolean) c",
		params, (int)countof(params), 1, q, outcome, body);
}

enum db_status res_repo_series_cancel_following(long long id, long long caller, bool admin,
                                                long long if_match, const char *topic,
                                                long long now, enum res_series_outcome *outcome)
{
	char ids[24], who[24], version[24], nows[24];
	num(ids, sizeof ids, id);
	num(who, sizeof who, caller);
	num(version, sizeof version, if_match);
	num(nows, sizeof nows, now);
	const char *params[] = {ids, who, admin ? "true" : "false", version, topic, nows};
	return call_series(
		"res_cancel_following_promoting",
		"SELECT res_cancel_following_promoting($1::bigint, $2::bigint, $3::boolean, "
		"$4::bigint, $5::text, $6::bigint)",
		params, (int)countof(params), ATTEMPTS, NULL, outcome, NULL);
}
