/* The SQL of finding a room: one call of res_room_search() (migrations/005_find_a_room.sql),
 * which resolves wall-clock times in the zone, checks the window and answers with the JSON of
 * the rooms (and of the alternatives with ?suggest=), built by PostgreSQL.  The busy rooms of a
 * window come from one index-only scan (reservations_confirmed_span), whatever the number of
 * rooms. */
#include "repo_search.h"

#include <stdio.h>
#include <string.h>

#include "countof.h"
#include "repo.h"

enum db_status res_repo_search(const struct res_search *s, enum res_search_problem *problem,
                               json_t **body)
{
	char cap[24], floor[24], limit[24], suggest[24], now[24], max[24], start[24], end[24];
	const char *start_s, *start_local, *end_s, *end_local;
	PGresult *res = NULL;
	snprintf(cap, sizeof cap, "%lld", s->capacity);
	snprintf(floor, sizeof floor, "%lld", s->floor);
	snprintf(limit, sizeof limit, "%lld", s->limit);
	snprintf(suggest, sizeof suggest, "%lld", s->suggest);
	snprintf(now, sizeof now, "%lld", s->now);
	snprintf(max, sizeof max, "%lld", s->max_seconds);
	res_time_param(s->start, start, &start_s, &start_local);
	res_time_param(s->end, end, &end_s, &end_local);
	const char *params[] = {cap,       s->equipment, s->building, s->has_floor ? floor : NULL,
	                        s->q,      start_s,      start_local, end_s,
	                        end_local, s->time_zone, limit,       suggest,
	                        now,       max};
	*problem = RES_SEARCH_OK;
	*body = NULL;
	enum db_status st = db_exec(&res,
	                            "SELECT problem, body FROM res_room_search($1::int, $2::json, "
	                            "$3::text, $4::int, $5::text, $6::bigint, $7::timestamp, "
	                            "$8::bigint, $9::timestamp, $10::text, $11::int, $12::int, "
	                            "$13::bigint, $14::bigint)",
	                            (int)countof(params), params);
	if (st != DB_OK)
		return st;
	const char *what = PQntuples(res) == 1 ? db_value(res, 0, 0) : NULL;
	const char *text = PQntuples(res) == 1 ? db_value(res, 0, 1) : NULL;
	if (what)
		*problem = strcmp(what, "end") == 0 ? RES_SEARCH_END : RES_SEARCH_DURATION;
	else if (!text || !(*body = json_loads(text, 0, NULL)))
		st = DB_ERROR; /* the function and this reader disagree, or out of memory */
	PQclear(res);
	return st;
}
