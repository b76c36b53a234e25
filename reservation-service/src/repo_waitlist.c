/* The SQL of the waitlist (repo_waitlist.h). */
#include "repo_waitlist.h"

#include <stdio.h>
#include <string.h>

#include "countof.h"
#include "log.h"
#include "repo.h"

static void num(char *buf, size_t size, long long v)
{
	snprintf(buf, size, "%lld", v);
}

const char res_repo_sweep_waitlist_sql[] =
	"DELETE FROM waitlist WHERE id = ANY (ARRAY("
	"SELECT id FROM waitlist WHERE status <> 'waiting' "
	"AND updated_at < now() - make_interval(secs => $1::bigint) ORDER BY updated_at "
	"LIMIT $2::int))";

/* The outcomes res_waitlist_join answers with, by name. */
static const struct {
	const char *name;
	enum res_waitlist_outcome outcome;
} join_outcomes[] = {
	{"done", RES_WAITLIST_DONE},
	{"room_unknown", RES_WAITLIST_ROOM_UNKNOWN},
	{"room_inactive", RES_WAITLIST_ROOM_INACTIVE},
	{"rules", RES_WAITLIST_RULES},
	{"revoked", RES_WAITLIST_REVOKED},
	{"policy", RES_WAITLIST_POLICY},
	{"duplicate", RES_WAITLIST_DUPLICATE},
	{"too_many", RES_WAITLIST_TOO_MANY},
	{"own", RES_WAITLIST_OWN},
	{"free", RES_WAITLIST_FREE},
};

/* Reads res_waitlist_join's (outcome, body) row (res borrowed); DB_ERROR for an answer that is
 * none of join_outcomes or a body that is not JSON (a programming error). */
static enum db_status join_answer(const PGresult *res, struct res_change *c, json_t **body,
                                  enum res_waitlist_outcome *outcome)
{
	const char *name = PQntuples(res) == 1 ? db_value(res, 0, 0) : NULL;
	const char *text = PQntuples(res) == 1 ? db_value(res, 0, 1) : NULL;
	json_t *doc = text ? json_loads(text, JSON_DECODE_ANY, NULL) : NULL;
	size_t i = 0;
	while (name && i < countof(join_outcomes) && strcmp(join_outcomes[i].name, name) != 0)
		i++;
	if (!name || i == countof(join_outcomes) || (text && !doc)) {
		log_error("res_waitlist_join answered %s with %s", name ? name : "no outcome",
		          !text ? "no body"
		          : doc ? "a body"
		                : "a body that is not JSON");
		json_decref(doc);
		return DB_ERROR;
	}
	*outcome = join_outcomes[i].outcome;
	if (*outcome == RES_WAITLIST_RULES) {
		c->start = (long long)json_integer_value(json_array_get(doc, 0));
		c->end = (long long)json_integer_value(json_array_get(doc, 1));
		json_decref(doc);
		return DB_OK;
	}
	if ((*outcome == RES_WAITLIST_DONE || *outcome == RES_WAITLIST_POLICY ||
	     *outcome == RES_WAITLIST_TOO_MANY || *outcome == RES_WAITLIST_OWN) &&
	    !doc)
		return DB_ERROR;
	*body = doc;
	return DB_OK;
}

enum db_status res_repo_waitlist_join(struct res_change *c, const struct res_request *q,
                                      json_t **body, enum res_waitlist_outcome *outcome)
{
	char room[24], user[24], issued[24], now[24], min[24], max[24], horizon[24], start[24],
		end[24];
	const char *start_s, *start_local, *end_s, *end_local;
	PGresult *res = NULL;
	num(room, sizeof room, c->room_id);
	num(user, sizeof user, c->user_id);
	num(issued, sizeof issued, c->token_issued_ms);
	num(now, sizeof now, q->now);
	num(min, sizeof min, q->rules->min_minutes * 60);
	num(max, sizeof max, q->rules->max_minutes * 60);
	num(horizon, sizeof horizon, q->rules->horizon_days * 86400);
	res_time_param(q->start, start, &start_s, &start_local);
	res_time_param(q->end, end, &end_s, &end_local);
	const char *params[] = {room,
	                        user,
	                        c->purpose ? c->purpose : "",
	                        start_s,
	                        start_local,
	                        end_s,
	                        end_local,
	                        issued,
	                        now,
	                        min,
	                        max,
	                        horizon,
	                        q->role,
	                        c->organizer_email,
	                        c->organizer_name,
	                        q->topic};
	*body = NULL;
	enum db_status st = db_write(
		&res,
		"SELECT j.outcome, j.body FROM res_waitlist_join($1::bigint, $2::bigint, $3::text, "
		"$4::bigint, $5::timestamp, $6::bigint, $7::timestamp, $8::bigint, $9::bigint, "
		"$10::bigint, $11::bigint, $12::bigint, $13::text, $14::text, $15::text, $16::text) j",
		(int)countof(params), params);
	if (st == DB_OK)
		st = join_answer(res, c, body, outcome);
	PQclear(res);
	return st;
}

enum db_status res_repo_waitlist_get(long long id, long long now_s, json_t **entry)
{
	char ids[24], now[24];
	PGresult *res = NULL;
	num(ids, sizeof ids, id);
	num(now, sizeof now, now_s);
	const char *params[] = {ids, now};
	*entry = NULL;
	enum db_status st = db_exec(&res,
	                            "SELECT res_waitlist_json(w, $2::bigint) FROM waitlist w "
	                            "WHERE w.id = $1::bigint",
	                            2, params);
	if (st == DB_OK && PQntuples(res) == 1 &&
	    !(*entry = json_loads(PQgetvalue(res, 0, 0), 0, NULL)))
		st = DB_ERROR;
	PQclear(res);
	return st;
}

enum db_status res_repo_waitlist_cancel(long long id, long long caller, bool admin, long long now_s,
                                        json_t **entry, enum res_waitlist_outcome *outcome)
{
	char ids[24], who[24], now[24];
	PGresult *res = NULL;
	num(ids, sizeof ids, id);
	num(who, sizeof who, caller);
	num(now, sizeof now, now_s);
	const char *params[] = {ids, who, admin ? "true" : "false", now};
	*entry = NULL;
	*outcome = RES_WAITLIST_DONE;
	/* Only an entry the caller may cancel is locked (a promotion waits for it, review 15w
	 * L3); someone else's is read without a lock for the 403. */
	/* clang-format off */
	enum db_status st = db_write(
		&res,
		"WITH cur AS (SELECT * FROM waitlist WHERE id = $1::bigint "
		"  AND ($3::boolean OR user_id = $2::bigint) FOR UPDATE), "
		"u AS (UPDATE waitlist w SET status = 'cancelled', updated_at = now() FROM cur "
		"  WHERE w.id = cur.id AND cur.status = 'waiting' "
		"  AND cur.start_time > to_timestamp($4::bigint) RETURNING w.id) "
		"SELECT res_waitlist_json(cur, $4::bigint), true, (SELECT count(*) FROM u) FROM cur "
		"UNION ALL SELECT res_waitlist_json(w, $4::bigint), false, 0 FROM waitlist w "
		"  WHERE w.id = $1::bigint AND NOT ($3::boolean OR w.user_id = $2::bigint)",
		(int)countof(params), params);
	/* clang-format on */
	if (st == DB_OK) {
		json_t *doc = PQntuples(res) == 1 ? json_loads(PQgetvalue(res, 0, 0), 0, NULL)
		                                  : NULL;
		const char *status = json_string_value(json_object_get(doc, "status"));
		if (PQntuples(res) == 0)
			*outcome = RES_WAITLIST_NOT_FOUND;
		else if (!status)
			st = DB_ERROR;
		else if (!db_bool(res, 0, 1))
			*outcome = RES_WAITLIST_FORBIDDEN;
		else if (db_int(res, 0, 2) == 0 && strcmp(status, "cancelled") != 0) {
			*outcome = RES_WAITLIST_NOT_WAITING;
			*entry = doc;
			doc = NULL;
		}
		json_decref(doc);
	}
	PQclear(res);
	return st;
}

enum db_status res_repo_waitlist_list(long long user_id, const char *status, long long now_s,
                                      long long limit, long long after_id, json_t **list,
                                      json_t **next)
{
	char user[24], now[24], lim[24], after[24];
	PGresult *res = NULL;
	num(user, sizeof user, user_id);
	num(now, sizeof now, now_s);
	num(lim, sizeof lim, limit + 1);
	num(after, sizeof after, after_id);
	const char *params[] = {user, status, now, lim, after};
	*list = NULL;
	*next = NULL;
	/* Columns 1 and 2 are the cursor (db_json_page): [id as text, id]. */
	enum db_status st = db_exec(
		&res,
		"SELECT res_waitlist_json(w, $3::bigint), w.id::text, w.id FROM waitlist w "
		"WHERE w.user_id = $1::bigint AND ($5::bigint = 0 OR w.id < $5::bigint) "
		"AND ($2::text IS NULL OR $2::text = CASE WHEN w.status = 'waiting' "
		"  AND w.start_time <= to_timestamp($3::bigint) THEN 'expired' ELSE w.status END) "
		"ORDER BY w.id DESC LIMIT $4::int",
		(int)countof(params), params);
	if (st == DB_OK)
		db_json_page(res, limit, list, next);
	PQclear(res);
	return st;
}
