/* All SQL of reservation-service.  A create and a change are each one call of a server-side
 * function (migrations/002_booking_functions.sql: res_book, res_change) in a db_write()
 * transaction, so a request takes two round trips (the call, then COMMIT) whatever it checks.
 * Writers of one room are serialised by locking the room's row (FOR NO KEY UPDATE) before
 * touching its reservations, so concurrent attempts queue instead of deadlocking on the
 * exclusion constraint; the constraint itself is the guarantee.  A create with an
 * Idempotency-Key claims the key before the room, so its twins queue on the key.  The JSON of a
 * reservation and of its events is spelled by the SQL functions res_json and res_event for the
 * writes, and by res_write_columns for the reads. */
#include "repo.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "countof.h"
#include "event_decode.h"
#include "jsonx.h"
#include "log.h"
#include "meeting.h"
#include "outbox.h"
#include "repo_feeds.h"
#include "revoke.h"
#include "sqlbuild.h"
#include "timefmt.h"

/* The payload of a reservation's event (type: an SQL text expression; r: a row of reservations,
 * or of a CTE returning one).  Writes answer with the reservation as res_json() builds it in the
 * same statement; reads write the same object in C from plain columns (res_write_columns), which
 * measured faster (bench/json_ab.py). */
#define EVENT(type, r) "res_event(" type ", " r ")"

#define ATTEMPTS 3

const char res_repo_sweep_idempotency_keys_sql[] =
	"DELETE FROM idempotency_keys WHERE ctid = ANY (ARRAY("
	"SELECT ctid FROM idempotency_keys "
	"WHERE created_at < now() - make_interval(secs => $1::bigint) LIMIT $2::int))";

const char res_repo_sweep_mail_quota_sql[] =
	"DELETE FROM mail_quota WHERE ctid = ANY (ARRAY("
	"SELECT ctid FROM mail_quota "
	"WHERE minute < now() - make_interval(secs => $1::bigint) LIMIT $2::int))";

static void num(char *buf, size_t size, long long v)
{
	snprintf(buf, size, "%lld", v);
}

/* A reservation as plain columns, for res_write_columns(): the times in Unix seconds
 * (start_time, end_time, whole seconds) and milliseconds (created_at, updated_at, truncated as
 * DB_TS_MS writes them), occurrence_start as the text res_local_text() writes. */
#define RES_COLUMNS(r)                                                                             \
	r ".id, " r ".room_id, " r ".user_id, " r ".purpose, "                                     \
	  "floor(extract(epoch FROM " r ".start_time))::bigint, "                                  \
	  "floor(extract(epoch FROM " r ".end_time))::bigint, " r ".status, " r ".cancel_reason, " \
	  "floor(extract(epoch FROM " r ".created_at) * 1000)::bigint, "                           \
	  "floor(extract(epoch FROM " r ".updated_at) * 1000)::bigint, " r ".version, " r          \
	  ".series_id, to_char(" r ".occurrence_start, 'YYYY-MM-DD\"T\"HH24:MI:SS'), "             \
	  "array_to_json(" r ".attendees), " r ".organizer_email, " r ".organizer_name, " r        \
	  ".meeting_url, floor(extract(epoch FROM " r ".check_in_from))::bigint, "                 \
	  "floor(extract(epoch FROM " r ".release_at))::bigint, "                                  \
	  "floor(extract(epoch FROM " r ".checked_in_at))::bigint"

/* Column col of row i, Unix seconds or NULL, as an RFC 3339 string or null. */
static void write_time_or_null(struct jsonx_text *t, const PGresult *res, int i, int col)
{
	char buf[TIMEFMT_RFC3339_LEN];
	if (PQgetisnull(res, i, col)) {
		jsonx_text_lit(t, "null");
		return;
	}
	timefmt_rfc3339_s(db_int(res, i, col), buf);
	jsonx_text_str(t, buf);
}

/* Appends row i of res (RES_COLUMNS from column 0, borrowed) to t as the reservation object of
 * res_json(), key for key and byte for byte: written as text, not through jansson's objects (a
 * page of them cost more than the rest of the request). */
static void res_write_columns(struct jsonx_text *t, const PGresult *res, int i,
                              const struct auth_user *reader)
{
	char start[TIMEFMT_RFC3339_LEN], end[TIMEFMT_RFC3339_LEN], created[TIMEFMT_RFC3339_LEN],
		updated[TIMEFMT_RFC3339_LEN];
	timefmt_rfc3339_s(db_int(res, i, 4), start);
	timefmt_rfc3339_s(db_int(res, i, 5), end);
	timefmt_rfc3339_ms(db_int(res, i, 8), created);
	timefmt_rfc3339_ms(db_int(res, i, 9), updated);
	jsonx_text_lit(t, "{\"id\":");
	jsonx_text_int(t, db_int(res, i, 0));
	jsonx_text_lit(t, ",\"room_id\":");
	jsonx_text_int(t, db_int(res, i, 1));
	jsonx_text_lit(t, ",\"user_id\":");
	jsonx_text_int(t, db_int(res, i, 2));
	jsonx_text_lit(t, ",\"purpose\":");
	jsonx_text_str(t, PQgetvalue(res, i, 3));
	jsonx_text_lit(t, ",\"start_time\":");
	jsonx_text_str(t, start);
	jsonx_text_lit(t, ",\"end_time\":");
	jsonx_text_str(t, end);
	jsonx_text_lit(t, ",\"status\":");
	jsonx_text_str(t, PQgetvalue(res, i, 6));
	jsonx_text_lit(t, ",\"cancel_reason\":");
	jsonx_text_str(t, db_value(res, i, 7));
	jsonx_text_lit(t, ",\"created_at\":");
	jsonx_text_str(t, created);
	jsonx_text_lit(t, ",\"updated_at\":");
	jsonx_text_str(t, updated);
	jsonx_text_lit(t, ",\"version\":");
	jsonx_text_int(t, db_int(res, i, 10));
	jsonx_text_lit(t, ",\"series_id\":");
	if (PQgetisnull(res, i, 11))
		jsonx_text_lit(t, "null");
	else
		jsonx_text_int(t, db_int(res, i, 11));
	jsonx_text_lit(t, ",\"occurrence_start\":");
	jsonx_text_str(t, db_value(res, i, 12));
	/* PostgreSQL's JSON of a text[]: an array of strings. */
	jsonx_text_lit(t, ",\"attendees\":");
	jsonx_text_raw(t, PQgetvalue(res, i, 13), (size_t)PQgetlength(res, i, 13));
	jsonx_text_lit(t, ",\"organizer_email\":");
	jsonx_text_str(t, db_value(res, i, 14));
	jsonx_text_lit(t, ",\"organizer_name\":");
	jsonx_text_str(t, db_value(res, i, 15));
	jsonx_text_lit(t, ",\"online_meeting\":");
	if (PQgetisnull(res, i, 16))
		jsonx_text_lit(t, "false");
	else
		jsonx_text_lit(t, "true");
	jsonx_text_lit(t, ",\"meeting_url\":");
	res_meeting_write_url(t, db_value(res, i, 16), db_int(res, i, 4), db_int(res, i, 5),
	                      reader);
	jsonx_text_lit(t, ",\"check_in_from\":");
	write_time_or_null(t, res, i, 17);
	jsonx_text_lit(t, ",\"release_at\":");
	write_time_or_null(t, res, i, 18);
	jsonx_text_lit(t, ",\"checked_in_at\":");
	write_time_or_null(t, res, i, 19);
	jsonx_text_lit(t, "}");
}

/* Row i of res as the same object in jansson (new reference; the link unsigned), or NULL. */
static json_t *res_from_columns(const PGresult *res, int i)
{
	struct jsonx_text t = {0};
	res_write_columns(&t, res, i, NULL);
	json_t *v = t.failed ? NULL : json_loadb(t.data, t.len, 0, NULL);
	jsonx_text_free(&t);
	return v;
}

/* The outcomes res_book() and res_change() answer with, by name. */
static const struct {
	const char *name;
	enum res_outcome outcome;
} outcome_names[] = {
	{"done", RES_DONE},
	{"not_found", RES_NOT_FOUND},
	{"forbidden", RES_FORBIDDEN},
	{"room_unknown", RES_ROOM_UNKNOWN},
	{"room_inactive", RES_ROOM_INACTIVE},
	{"rules", RES_RULES},
	{"revoked", RES_TOKEN_REVOKED},
	{"replay", RES_REPLAY},
	{"key_mismatch", RES_KEY_MISMATCH},
	{"cancelled", RES_CANCELLED},
	{"stale", RES_STALE},
	{"room_unavailable", RES_ROOM_UNAVAILABLE},
	{"conflict", RES_CONFLICT},
	{"capacity", RES_CAPACITY},
	{"policy", RES_POLICY},
	{"not_pending", RES_NOT_PENDING},
	{"started", RES_STARTED},
};

/* Reads the (outcome, body, alternatives) row of res_book_answer() or res_change_answer()
 * (migrations/005_find_a_room.sql: res_book() or res_change(), and the alternatives of a
 * conflict computed once the room's lock is released; res borrowed): body
 * is the reservation (done, replay: *out), the overlapping spans (conflict: *conflicts, as
 * {conflicts, alternatives} with the alternatives of the third column) or the span resolved in
 * the room's zone (rules: c->start, c->end).  DB_ERROR for an answer that is none of
 * these (a programming error: the function and this table disagree). */
static enum db_status booking_answer(const PGresult *res, struct res_change *c, json_t **out,
                                     json_t **conflicts, enum res_outcome *outcome)
{
	/* The body of not_pending is a bare state, not JSON. */
	if (PQntuples(res) == 1 && strcmp(PQgetvalue(res, 0, 0), "not_pending") == 0) {
		*outcome = RES_NOT_PENDING;
		return DB_OK;
	}
	const char *name = PQntuples(res) == 1 ? db_value(res, 0, 0) : NULL;
	const char *body = PQntuples(res) == 1 ? db_value(res, 0, 1) : NULL;
	json_t *doc = body ? json_loads(body, 0, NULL) : NULL;
	size_t i = 0;
	while (name && i < countof(outcome_names) && strcmp(outcome_names[i].name, name) != 0)
		i++;
	if (!name || i == countof(outcome_names) || (body && !doc)) {
		/* Not the body itself: it holds what users wrote (the purpose). */
		log_error("booking function answered %s with %s (%zu bytes)",
		          name ? name : "no outcome",
		          !body ? "no body"
		          : doc ? "a body"
		                : "a body that is not JSON",
		          body ? strlen(body) : 0);
		json_decref(doc);
		return DB_ERROR;
	}
	*outcome = outcome_names[i].outcome;
	switch (*outcome) {
	case RES_DONE:
	case RES_REPLAY:
		*out = doc;
		return doc ? DB_OK : DB_ERROR;
	case RES_CONFLICT: {
		const char *text = db_value(res, 0, 2);
		json_t *alt = text ? json_loads(text, 0, NULL) : NULL;
		if (!doc || !alt) {
			log_error("booking function answered conflict with %s",
			          !doc    ? "no spans"
			          : !text ? "no alternatives"
			                  : "alternatives that are not JSON");
			json_decref(doc);
			json_decref(alt);
			return DB_ERROR;
		}
		*conflicts = json_pack("{s:o, s:o}", "conflicts", doc, "alternatives", alt);
		return *conflicts ? DB_OK : DB_ERROR;
	}
	case RES_CAPACITY:
	case RES_POLICY:
		*conflicts = doc;
		return doc ? DB_OK : DB_ERROR;
	case RES_RULES:
		c->start = (long long)json_integer_value(json_array_get(doc, 0));
		c->end = (long long)json_integer_value(json_array_get(doc, 1));
		break;
	default:
		break;
	}
	json_decref(doc);
	return DB_OK;
}

/* The parameter text that a create and an update share: each time as the client wrote it,
 * seconds (*_s) or wall-clock text (*_local, the other NULL; both NULL when not given), the
 * service's clock and the rules in seconds.  Borrows from the request. */
struct request_params {
	char start[24], end[24], now[24], min[24], max[24], horizon[24];
	const char *start_s, *start_local, *end_s, *end_local;
};

void res_time_param(const struct res_time *t, char abs[24], const char **abs_out,
                    const char **local_out)
{
	*abs_out = *local_out = NULL;
	if (t && t->local) {
		*local_out = t->text;
	} else if (t) {
		num(abs, 24, t->utc);
		*abs_out = abs;
	}
}

static void request_params(const struct res_request *q, struct request_params *p)
{
	res_time_param(q->start, p->start, &p->start_s, &p->start_local);
	res_time_param(q->end, p->end, &p->end_s, &p->end_local);
	num(p->now, sizeof p->now, q->now);
	num(p->min, sizeof p->min, q->rules->min_minutes * 60);
	num(p->max, sizeof p->max, q->rules->max_minutes * 60);
	num(p->horizon, sizeof p->horizon, q->rules->horizon_days * 86400);
}

/* Runs the call of a booking function (sql with n params) in a transaction of its own, again
 * while it asks to (DB_RETRY) or meets an exclusion violation, and reads its answer
 * (booking_answer).  The function looks for conflicts under the room's lock, so a violation
 * means that a writer who does not take that lock (an operator's INSERT, say) committed an
 * overlapping reservation after the look: the next call sees it and answers conflict with the
 * overlapping spans (or books, if it is gone again).  Past ATTEMPTS the violation is answered
 * as it is (409 without the spans). */
static enum db_status booking_call(const char *sql, const char *const *params, int n,
                                   struct res_change *c, struct res_request *q, json_t **res,
                                   json_t **conflicts, enum res_outcome *outcome)
{
	enum db_status st = DB_RETRY;
	for (int i = 0; i < ATTEMPTS && st == DB_RETRY; i++) {
		PGresult *r = NULL;
		*res = NULL;
		*conflicts = NULL;
		*outcome = RES_DONE;
		st = db_write(&r, sql, n, params);
		if (st == DB_OK)
			st = booking_answer(r, c, res, conflicts, outcome);
		if (st == DB_OK && q)
			snprintf(q->skipped, sizeof q->skipped, "%s",
			         PQnfields(r) > 3 && PQntuples(r) == 1 ? PQgetvalue(r, 0, 3) : "");
		else if (st == DB_EXCLUSION_VIOLATION && i + 1 < ATTEMPTS)
			st = DB_RETRY;
		PQclear(r);
	}
	return st;
}

enum db_status res_repo_room_info(long long room_id, struct res_room *room)
{
	char id[24];
	PGresult *res = NULL;
	num(id, sizeof id, room_id);
	const char *params[] = {id};
	memset(room, 0, sizeof *room);
	enum db_status st = db_exec(&res,
	                            "SELECT time_zone, active FROM rooms "
	                            "WHERE id = $1::bigint AND NOT deleted",
	                            1, params);
	if (st == DB_OK && PQntuples(res) == 1) {
		room->found = true;
		snprintf(room->time_zone, sizeof room->time_zone, "%s", PQgetvalue(res, 0, 0));
		room->active = db_bool(res, 0, 1);
	}
	PQclear(res);
	return st;
}

enum db_status res_repo_create(struct res_change *c, struct res_request *q, const char *idem_key,
                               const char *idem_hash, json_t **res, json_t **conflicts,
                               enum res_outcome *outcome)
{
	char room[24], user[24], issued[24];
	struct request_params p;
	num(room, sizeof room, c->room_id);
	num(user, sizeof user, c->user_id);
	num(issued, sizeof issued, c->token_issued_ms);
	request_params(q, &p);
	char *attendees = res_attendees_param(&c->attendees);
	if (!attendees)
		return DB_ERROR;
	const char *params[] = {room,
	                        user,
	                        c->purpose ? c->purpose : "",
	                        p.start_s,
	                        p.start_local,
	                        p.end_s,
	                        p.end_local,
	                        issued,
	                        q->topic,
	                        idem_key,
	                        idem_hash,
	                        p.now,
	                        p.min,
	                        p.max,
	                        p.horizon,
	                        attendees,
	                        c->organizer_email,
	                        c->organizer_name,
	                        c->online_meeting == RES_ONLINE_ON ? c->meeting_url : NULL,
	                        q->role,
	                        q->override ? "true" : "false"};
	/* Retried when the key was swept between its claim and its lookup. */
	enum db_status st = booking_call(
		"SELECT b.outcome, b.body, b.alternatives, b.skipped "
		"FROM res_book_answer($1::bigint, $2::bigint, $3::text, "
		"$4::bigint, $5::timestamp, $6::bigint, $7::timestamp, $8::bigint, "
		"$9::text, $10::text, $11::text, $12::bigint, $13::bigint, "
		"$14::bigint, $15::bigint, $16::text[], $17::text, $18::text, $19::text, "
		"$20::text, $21::boolean) b",
		params, (int)countof(params), c, q, res, conflicts, outcome);
	free(attendees);
	return st;
}

char *res_attendees_param(const struct res_attendees *a)
{
	return sqlbuild_text_array(a->list, a->n);
}

enum db_status res_repo_get(long long id, json_t **out)
{
	char ids[24];
	PGresult *res = NULL;
	num(ids, sizeof ids, id);
	const char *params[] = {ids};
	*out = NULL;
	enum db_status st = db_exec(
		&res, "SELECT " RES_COLUMNS("r") " FROM reservations r WHERE r.id = $1::bigint", 1,
		params);
	if (st == DB_OK && PQntuples(res) == 1 && !(*out = res_from_columns(res, 0)))
		st = DB_ERROR;
	PQclear(res);
	return st;
}

enum db_status res_repo_update(long long id, struct res_change *c, struct res_request *q,
                               json_t **res, json_t **conflicts, enum res_outcome *outcome)
{
	char ids[24], caller[24], room[24], version[24];
	struct request_params p;
	num(ids, sizeof ids, id);
	num(caller, sizeof caller, c->user_id);
	num(room, sizeof room, c->room_id);
	num(version, sizeof version, c->expected_version);
	request_params(q, &p);
	bool moved = c->room_id || q->start || q->end;
	char *attendees = c->attendees.given ? res_attendees_param(&c->attendees) : NULL;
	if (c->attendees.given && !attendees)
		return DB_ERROR;
	const char *params[] = {ids,
	                        caller,
	                        q->admin ? "true" : "false",
	                        c->room_id ? room : NULL,
	                        c->purpose,
	                        p.start_s,
	                        p.start_local,
	                        p.end_s,
	                        p.end_local,
	                        moved ? "true" : "false",
	                        version,
	                        q->topic,
	                        p.now,
	                        p.min,
	                        p.max,
	                        p.horizon,
	                        attendees,
	                        c->online_meeting == RES_ONLINE_KEEP ? NULL
	                        : c->online_meeting == RES_ONLINE_ON ? "true"
	                                                             : "false",
	                        c->meeting_url,
	                        q->role,
	                        q->override ? "true" : "false"};
	/* Retried when the reservation moved to another room before it was locked. */
	enum db_status st = booking_call(
		"SELECT b.outcome, b.body, b.alternatives, b.skipped "
		"FROM res_change_answer_promoting($1::bigint, $2::bigint, "
		"$3::boolean, $4::bigint, $5::text, $6::bigint, $7::timestamp, "
		"$8::bigint, $9::timestamp, $10::boolean, $11::bigint, $12::text, "
		"$13::bigint, $14::bigint, $15::bigint, $16::bigint, $17::text[], $18::boolean, "
		"$19::text, $20::text, $21::boolean) b",
		params, (int)countof(params), c, q, res, conflicts, outcome);
	free(attendees);
	return st;
}

enum db_status res_repo_decide(long long id, bool approve, const char *note, const char *topic,
                               long long now_s, json_t **res, char status[16],
                               enum res_outcome *outcome)
{
	char ids[24], now[24];
	PGresult *r = NULL;
	json_t *conflicts = NULL;
	struct res_change c = {0};
	num(ids, sizeof ids, id);
	num(now, sizeof now, now_s);
	const char *params[] = {ids, approve ? "true" : "false", note, topic, now};
	*res = NULL;
	status[0] = '\0';
	/* res_decide_promoting (020): the room locked first, checked still the reservation's
	 * after the lock (else DB_RETRY, tried again), the approval's start and the promotions at
	 * the service's clock. */
	enum db_status st = DB_RETRY;
	for (int i = 0; i < ATTEMPTS && st == DB_RETRY; i++) {
		PQclear(r);
		r = NULL;
		st = db_write(&r,
		              "SELECT d.outcome, d.body FROM res_decide_promoting($1::bigint, "
		              "$2::boolean, $3::text, $4::text, $5::bigint) d",
		              (int)countof(params), params);
	}
	if (st == DB_OK && PQntuples(r) == 1 && strcmp(PQgetvalue(r, 0, 0), "not_pending") == 0)
		snprintf(status, 16, "%s", PQgetvalue(r, 0, 1));
	if (st == DB_OK)
		st = booking_answer(r, &c, res, &conflicts, outcome);
	json_decref(conflicts);
	PQclear(r);
	return st;
}

enum db_status res_repo_cancel(long long id, long long caller, bool admin,
                               long long expected_version, const char *topic,
                               enum res_outcome *outcome)
{
	char ids[24], ver[24], who[24], now[24];
	num(ids, sizeof ids, id);
	num(ver, sizeof ver, expected_version);
	num(who, sizeof who, caller);
	num(now, sizeof now, clock_now_s());
	const char *params[] = {ids, ver, who, admin ? "true" : "false", topic, now};
	*outcome = RES_DONE;
	/* res_cancel (migrations/020_waitlist.sql) locks the room before the reservation, and the
	 * freed slot goes to the room's waitlist in the same transaction; again when the
	 * reservation moved to another room between its read and its lock. */
	enum db_status st = DB_RETRY;
	for (int i = 0; i < ATTEMPTS && st == DB_RETRY; i++) {
		PGresult *res = NULL;
		st = db_write(&res,
		              "SELECT c.cancelled, c.was, c.may FROM res_cancel($1::bigint, "
		              "$2::bigint, $3::bigint, $4::boolean, $5::text, $6::bigint) c",
		              (int)countof(params), params);
		if (st == DB_OK) {
			if (PQntuples(res) == 0)
				*outcome = RES_NOT_FOUND;
			else if (!db_bool(res, 0, 2))
				*outcome = RES_FORBIDDEN;
			else if (db_int(res, 0, 0) == 0 &&
			         strcmp(PQgetvalue(res, 0, 1), "cancelled") != 0)
				*outcome = RES_STALE;
		}
		PQclear(res);
	}
	return st;
}

enum db_status res_repo_check_in(long long id, long long now_s, const char *topic, json_t **out)
{
	char ids[24], now[24];
	PGresult *res = NULL;
	num(ids, sizeof ids, id);
	num(now, sizeof now, now_s);
	const char *params[] = {ids, now, topic};
	*out = NULL;
	/* clang-format off */
	enum db_status st = db_write(
		&res,
		"WITH r AS (UPDATE reservations SET checked_in_at = to_timestamp($2::bigint), "
		"  updated_at = now(), version = version + 1 WHERE id = $1::bigint "
		"  AND status = 'confirmed' AND checked_in_at IS NULL "
		"  AND to_timestamp($2::bigint) >= check_in_from "
		"  AND to_timestamp($2::bigint) < release_at RETURNING *), "
		"e AS (" OUTBOX_INSERT "$3, r.id::text, "
		"  " EVENT("'reservation_checked_in'", "r") " FROM r) "
		"SELECT " RES_COLUMNS("r") " FROM r",
		(int)countof(params), params);
	/* clang-format on */
	if (st == DB_OK && PQntuples(res) == 1 && !(*out = res_from_columns(res, 0)))
		st = DB_ERROR;
	PQclear(res);
	return st;
}

/* Oldest due first, never waiting: res_release_due (migrations/020_waitlist.sql) takes the due rows
 * and their rooms with SKIP LOCKED (a row another replica or a writer holds is left to it, a
 * room a writer holds to the next tick) and releases only the occurrence itself (a series keeps
 * its other rows); the freed time goes to the rooms' waitlists in the same transaction. */
const char res_repo_release_sql[] = "SELECT res_release_due($1::bigint, $2::int, $3::text)";

/* The pending reservations that reached their start without an approval, as res_release_due
 * takes the no-shows: oldest first, the rows and then their rooms with SKIP LOCKED (never
 * waiting), only the rows whose room it holds; cancelled as not_approved with the event
 * reservation_cancelled (they held the slot; a calendar that showed them drops them), their
 * time promoted to the rooms' waitlists at the service's clock (res_waitlist_context, read at
 * commit by the deferred trigger; the CTE is scanned by the final SELECT). */
const char res_repo_unapproved_sql[] =
	"WITH ctx AS (SELECT res_waitlist_context($1::bigint, $3::text)), "
	"due AS (SELECT id, room_id FROM reservations "
	"  WHERE start_time <= to_timestamp($1::bigint) AND status = 'pending' "
	"  ORDER BY start_time LIMIT $2::int FOR UPDATE SKIP LOCKED), "
	"held AS (SELECT m.id FROM rooms m WHERE m.id IN (SELECT room_id FROM due) "
	"  ORDER BY m.id FOR NO KEY UPDATE SKIP LOCKED), "
	"r AS (UPDATE reservations t SET status = 'cancelled', cancel_reason = 'not_approved', "
	"  updated_at = now(), version = t.version + 1 "
	"  WHERE t.id IN (SELECT id FROM due) AND t.room_id IN (SELECT id FROM held) "
	"  AND t.status = 'pending' RETURNING t.*), "
	"e AS (" OUTBOX_INSERT "$3, r.id::text, " EVENT(
		"'reservation_cancelled'", "r") " FROM r) "
						"SELECT (SELECT count(*) FROM r) FROM ctx";

const char res_repo_waitlist_expire_sql[] = "SELECT res_waitlist_expire($1::bigint, $2::int)";

enum db_status res_repo_list(const struct res_filter *f, struct jsonx_text *page, json_t **next)
{
	char user[24], room[24], series[24], from[24], to[24], after_id[24], limit[24];
	PGresult *res = NULL;
	num(user, sizeof user, f->user_id);
	num(room, sizeof room, f->room_id);
	num(series, sizeof series, f->series_id);
	num(from, sizeof from, f->from);
	num(to, sizeof to, f->to);
	num(after_id, sizeof after_id, f->after_id);
	num(limit, sizeof limit, f->limit + 1);
	struct sqlbuild s = {.len = 0};
	*page = (struct jsonx_text){0};
	*next = NULL;
	/* Only the conditions of the filters given (sqlbuild.h), and the room joined only for the
	 * zone of a date: an employee's list (user_id and status) is a plain range of the
	 * (user_id, start_time) index under a generic plan.  Every reservation has its room (a
	 * foreign key), so the join drops no row.  An invitee's list walks the invitations of the
	 * address (reservation_attendees, migration 017) as a range of (email_key, start_time): the
	 * times, the order and the cursor are read there (its start_time and end_time are the
	 * reservation's), so a page costs its own rows whatever the address's history. */
	const bool inv = f->attendee != NULL;
	/* clang-format off */
	sqlbuild_add(&s, "SELECT " RES_COLUMNS("r"), NULL);
	if (inv)
		sqlbuild_add(&s, " FROM reservation_attendees a "
		                 "JOIN reservations r ON r.id = a.reservation_id", NULL);
	else
		sqlbuild_add(&s, " FROM reservations r", NULL);
	if (f->date)
		sqlbuild_add(&s, " JOIN rooms m ON m.id = r.room_id", NULL);
	sqlbuild_add(&s, " WHERE true", NULL);
	if (f->user_id)
		sqlbuild_add(&s, " AND r.user_id = ?::bigint", user);
	if (inv)
		sqlbuild_add(&s, " AND a.email_key = lower(?::text)", f->attendee);
	if (f->room_id)
		sqlbuild_add(&s, " AND r.room_id = ?::bigint", room);
	if (f->series_id)
		sqlbuild_add(&s, " AND r.series_id = ?::bigint", series);
	if (f->date)
		sqlbuild_add(&s, " AND tstzrange(r.start_time, r.end_time, '[)') && "
		                 "tstzrange(?::date::timestamp AT TIME ZONE m.time_zone, "
		                 "(?::date + 1)::timestamp AT TIME ZONE m.time_zone, '[)')",
		             f->date);
	if (f->has_from)
		sqlbuild_add(&s, inv ? " AND a.end_time > to_timestamp(?::bigint)"
		                     : " AND r.end_time > to_timestamp(?::bigint)", from);
	/* No reservation lasts longer than MAX_DURATION_MINUTES allows (at most 31 days): the
	 * invitations that can overlap [from, ...) start after from less that. */
	if (f->has_from && inv)
		sqlbuild_add(&s, " AND a.start_time > to_timestamp(?::bigint) - "
		                 "interval '" RES_LONGEST_HOURS " hours'", from);
	if (f->has_to)
		sqlbuild_add(&s, inv ? " AND a.start_time < to_timestamp(?::bigint)"
		                     : " AND r.start_time < to_timestamp(?::bigint)", to);
	if (f->status && strcmp(f->status, "active") == 0)
		sqlbuild_add(&s, " AND r.status IN ('confirmed', 'pending')", NULL);
	else if (f->status)
		sqlbuild_add(&s, " AND r.status = ?::text", f->status);
	if (f->after_start) {
		sqlbuild_add(&s, inv ? " AND (a.start_time, a.reservation_id) > (?::timestamptz"
		                     : " AND (r.start_time, r.id) > (?::timestamptz", f->after_start);
		sqlbuild_add(&s, ", ?::bigint)", after_id);
	}
	sqlbuild_add(&s, inv ? " ORDER BY a.start_time, a.reservation_id LIMIT ?::bigint"
	                     : " ORDER BY r.start_time, r.id LIMIT ?::bigint", limit);
	/* clang-format on */
	/* An invitee's list is planned for its address every time (a prepared statement's generic
	 * plan could settle on another order of the join for a common address). */
	enum db_status st = inv ? db_exec_planned(&res, s.text, s.n, s.params)
	                        : db_exec(&res, s.text, s.n, s.params);
	if (st != DB_OK)
		return st;
	int n = PQntuples(res);
	jsonx_text_lit(page, "[");
	for (int i = 0; i < n && i < f->limit; i++) {
		if (i > 0)
			jsonx_text_lit(page, ",");
		res_write_columns(page, res, i, f->reader);
	}
	jsonx_text_lit(page, "]");
	if (page->failed)
		st = DB_ERROR; /* out of memory: no page rather than a short one */
	if (f->limit > 0 && n > f->limit) {
		char start[TIMEFMT_RFC3339_LEN];
		int last = (int)f->limit - 1;
		timefmt_rfc3339_s(db_int(res, last, 4), start);
		if (!(*next = json_pack("[s, I]", start, (json_int_t)db_int(res, last, 0))))
			st = DB_ERROR;
	}
	if (st != DB_OK) {
		jsonx_text_free(page);
		json_decref(*next);
		*next = NULL;
		st = DB_ERROR;
	}
	PQclear(res);
	return st;
}

enum db_status res_repo_busy(long long room_id, const char *first, const char *last,
                             struct res_day_span *span, json_t **busy)
{
	char room[24];
	PGresult *res = NULL;
	num(room, sizeof room, room_id);
	const char *params[] = {room, first, last};
	memset(span, 0, sizeof *span);
	*busy = NULL;
	/* One row per busy span, or one with NULL spans for a free room; none for an unknown one. */
	enum db_status st = db_exec(
		&res,
		"SELECT m.time_zone, d.s, d.e, extract(epoch FROM r.start_time)::bigint, "
		"       extract(epoch FROM r.end_time)::bigint "
		"FROM rooms m CROSS JOIN LATERAL (SELECT "
		"  extract(epoch FROM ($2::date::timestamp AT TIME ZONE m.time_zone))::bigint AS s, "
		"  extract(epoch FROM (($3::date + 1)::timestamp AT TIME ZONE m.time_zone))::bigint "
		"  AS e) d "
		"LEFT JOIN LATERAL (SELECT start_time, end_time FROM reservations "
		"  WHERE room_id = m.id AND status IN ('confirmed', 'pending') "
		/* A pending reservation holds its slot (docs/api.md#room-policies).  The GiST index
		 * reservations_active_span (migration 018) answers this overlap directly, so the cost
		 * does not grow with the room's history.  OFFSET 0 keeps room_id = $1 out of the
		 * subquery: with it the planner also reads the room's whole (room_id, start_time)
		 * index and ANDs the two bitmaps. */
		"  AND tstzrange(start_time, end_time, '[)') && "
		"      tstzrange(to_timestamp(d.s), to_timestamp(d.e), '[)') OFFSET 0) r ON true "
		"WHERE m.id = $1::bigint AND NOT m.deleted ORDER BY r.start_time",
		3, params);
	if (st != DB_OK)
		return st;
	*busy = json_array();
	if (PQntuples(res) > 0) {
		span->found = true;
		snprintf(span->time_zone, sizeof span->time_zone, "%s", PQgetvalue(res, 0, 0));
		span->start = db_int(res, 0, 1);
		span->end = db_int(res, 0, 2);
	}
	for (int i = 0; *busy && i < PQntuples(res) && !PQgetisnull(res, i, 3); i++) {
		long long start = db_int(res, i, 3), end = db_int(res, i, 4);
		if (json_array_append_new(
			    *busy,
			    json_pack("[I, I]",
		                      (json_int_t)(start > span->start ? start : span->start),
		                      (json_int_t)(end < span->end ? end : span->end))) != 0) {
			json_decref(*busy);
			*busy = NULL; /* out of memory: no answer rather than a short one */
		}
	}
	PQclear(res);
	return *busy ? DB_OK : DB_ERROR;
}

enum db_status res_repo_room_upsert(const struct res_event *ev)
{
	char ids[24], cap[24], ver[24], floor[24];
	num(ids, sizeof ids, ev->id);
	num(cap, sizeof cap, ev->capacity);
	num(ver, sizeof ver, ev->version);
	num(floor, sizeof floor, ev->floor);
	char *equipment = ev->details_known ? json_dumps(ev->equipment, JSON_COMPACT) : NULL;
	char *policies = ev->policies ? json_dumps(ev->policies, JSON_COMPACT) : NULL;
	enum db_status st = DB_ERROR;
	if ((ev->details_known && !equipment) || (ev->policies && !policies))
		goto out;
	const char *params[] = {ids,
	                        ev->name,
	                        cap,
	                        ev->time_zone,
	                        ev->active ? "true" : "false",
	                        ver,
	                        ev->details_known ? "true" : "false",
	                        equipment ? equipment : "[]",
	                        ev->building,
	                        ev->has_floor ? floor : NULL,
	                        policies,
	                        ev->policies_known ? "true" : "false"};
	/* A copy without details takes an event that has them at its own version too.  A newer
	 * event without details (an older producer's, e.g. during a rolling upgrade) leaves the
	 * details as they were but marks them unknown: they may no longer be true.  The policies
	 * are filled in at the same version likewise (policies_known); an event without them
	 * leaves the room without rules (docs/api.md#room-policies). */
	st = db_write(
		NULL,
		"INSERT INTO rooms AS r (id, name, capacity, time_zone, active, version, details_known, "
		"  equipment, building, floor, policies, policies_known) "
		"VALUES ($1::bigint, $2, $3::int, $4, $5::boolean, $6::int, $7::boolean, "
		"  ARRAY(SELECT json_array_elements_text($8::json)), $9, $10::int, $11::jsonb, "
		"  $12::boolean) "
		"ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name, capacity = EXCLUDED.capacity, "
		"  time_zone = EXCLUDED.time_zone, active = EXCLUDED.active, version = EXCLUDED.version, "
		"  details_known = EXCLUDED.details_known, "
		"  equipment = CASE WHEN EXCLUDED.details_known THEN EXCLUDED.equipment "
		"    ELSE r.equipment END, "
		"  building = CASE WHEN EXCLUDED.details_known THEN EXCLUDED.building ELSE r.building END, "
		"  floor = CASE WHEN EXCLUDED.details_known THEN EXCLUDED.floor ELSE r.floor END, "
		"  policies = EXCLUDED.policies, policies_known = EXCLUDED.policies_known, "
		"  updated_at = now() "
		"WHERE NOT r.deleted AND (r.version < EXCLUDED.version OR (r.version = EXCLUDED.version "
		"  AND (NOT r.details_known AND EXCLUDED.details_known "
		"       OR NOT r.policies_known AND EXCLUDED.policies_known)))",
		12, params);
out:
	free(equipment);
	free(policies);
	return st;
}

/* The count a statement without parameters answers (0 when it failed). */
static enum db_status count_of(const char *sql, long long *count)
{
	PGresult *res = NULL;
	enum db_status st = db_exec(&res, sql, 0, NULL);
	*count = st == DB_OK ? db_int(res, 0, 0) : 0;
	PQclear(res);
	return st;
}

enum db_status res_repo_rooms_without_policies(long long *count)
{
	return count_of("SELECT count(*) FROM rooms WHERE NOT policies_known AND NOT deleted",
	                count);
}

enum db_status res_repo_rooms_without_details(long long *count)
{
	return count_of("SELECT count(*) FROM rooms WHERE NOT details_known AND NOT deleted",
	                count);
}

/* A room deletion (by_room: id is the room's) or a user deletion in the caller's transaction:
 * res_cancel_future (migrations/018_policies.sql) cancels the future (at the service's clock,
 * clock.h) confirmed and pending reservations
 * of the room or user, with their events, and ends their active series (with every future
 * occurrence of those, in any room), locking the series before the reservations as every
 * series writer does.  *cancelled: how many reservations. */
static enum db_status cancel_future(bool by_room, const char *id, const char *reason,
                                    const char *topic, long *cancelled)
{
	PGresult *res = NULL;
	char now[24];
	num(now, sizeof now, clock_now_s());
	const char *params[] = {by_room ? "true" : "false", id, reason, topic, now};
	enum db_status st = db_write(&res,
	                             "SELECT res_cancel_future_promoting($1::boolean, $2::bigint, "
	                             "$3::text, "
	                             "$4::text, to_timestamp($5::bigint))",
	                             5, params);
	if (st == DB_OK)
		*cancelled = (long)db_int(res, 0, 0);
	PQclear(res);
	return st;
}

enum db_status res_repo_room_delete(long long id, long long version, const char *topic,
                                    long *cancelled)
{
	char ids[24], ver[24];
	num(ids, sizeof ids, id);
	num(ver, sizeof ver, version);
	const char *params[] = {ids, ver};
	*cancelled = 0;
	enum db_status st = db_begin();
	if (st != DB_OK)
		return st;
	/* The room and every room where its deletion may cancel (occurrences of its series moved
	 * elsewhere) are locked first, in id order, as a series cancel locks them
	 * (migrations/020_waitlist.sql, review 15w M2); then a tombstone even for a room never
	 * seen, so a late room_created cannot resurrect it.  A room already deleted at that version
	 * (a re-delivery, a replay) changes nothing: its future reservations were cancelled then,
	 * and none can be booked since. */
	PGresult *res = NULL;
	char now[24];
	num(now, sizeof now, clock_now_s());
	st = db_exec(NULL,
	             "SELECT res_lock_future_rooms(true, $1::bigint, to_timestamp($2::bigint))", 2,
	             (const char *const[]){ids, now});
	if (st == DB_OK)
		st = db_exec(
			&res,
			"INSERT INTO rooms (id, active, deleted, version) "
			"VALUES ($1::bigint, false, true, $2::int) "
			"ON CONFLICT (id) DO UPDATE SET active = false, deleted = true, "
			"version = greatest(rooms.version, EXCLUDED.version), updated_at = now() "
			"WHERE NOT rooms.deleted OR rooms.version < EXCLUDED.version RETURNING 1",
			2, params);
	bool changed = st == DB_OK && PQntuples(res) == 1;
	PQclear(res);
	if (st == DB_OK && !changed)
		*cancelled = -1;
	else if (st == DB_OK)
		st = cancel_future(true, ids, "room_deleted", topic, cancelled);
	if (st != DB_OK) {
		db_rollback();
		return st;
	}
	return db_commit();
}

enum db_status res_repo_user_deleted(long long user_id, const char *occurred_at, const char *topic,
                                     long *cancelled)
{
	char ids[24];
	num(ids, sizeof ids, user_id);
	*cancelled = 0;
	enum db_status st = db_begin();
	if (st != DB_OK)
		return st;
	/* The revocation first: it waits for bookings of the user in flight (revoke_guard) and
	 * makes later ones wait for this transaction, so the cancelling below sees every booking
	 * that got past the guard, and none gets past it afterwards. */
	st = revoke_apply(user_id, occurred_at, "user_deleted", NULL);
	if (st == DB_OK)
		st = cancel_future(false, ids, "user_deleted", topic, cancelled);
	if (st == DB_OK)
		st = res_repo_feed_token_revoke(user_id);
	if (st == DB_OK)
		st = db_exec(NULL, "DELETE FROM user_emails WHERE user_id = $1::bigint", 1,
		             (const char *const[]){ids});
	if (st != DB_OK) {
		db_rollback();
		return st;
	}
	return db_commit();
}

enum db_status res_repo_user_revoked(long long user_id, const char *occurred_at, const char *reason)
{
	enum db_status st = db_begin();
	if (st != DB_OK)
		return st;
	st = revoke_apply(user_id, occurred_at, reason, NULL);
	/* A disabled user's calendar feed stops (a role change leaves it). */
	if (st == DB_OK && strcmp(reason, "user_disabled") == 0)
		st = res_repo_feed_token_revoke(user_id);
	if (st != DB_OK) {
		db_rollback();
		return st;
	}
	return db_commit();
}
