/* GET /availability/rooms: reads and checks the query (400 naming the parameter, 422 for a
 * window that ends before it starts or is longer than MAX_DURATION_MINUTES), then one call of
 * the repo, which answers with the JSON of the rooms. */
#include "search.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "handlers.h"
#include "repo_search.h"
#include "tz.h"

#define SEARCH_LIMIT_DEFAULT 20
#define SEARCH_LIMIT_MAX 100
#define SEARCH_SUGGEST_MAX 10
#define SEARCH_TEXT_MAX 200     /* building and q, in bytes */
#define SEARCH_PEOPLE_MAX 10000 /* room-service's largest capacity */
#define SEARCH_FLOOR_MIN -100
#define SEARCH_FLOOR_MAX 500

static const struct res_span_rules *rules;

void res_search_init(const struct res_span_rules *r)
{
	rules = r;
}

/* start or end: required, RFC 3339 in whole seconds (res_validate_time's rules); 400 else. */
static bool query_window_time(struct req *r, const char *name, struct res_time *t)
{
	char buf[64];
	int q = req_query(r, name, buf, sizeof buf);
	if (q < 0)
		return false;
	if (q == 0) {
		req_bad_query(r, name, "is required");
		return false;
	}
	json_t *details = json_object();
	bool ok = res_validate_time(name, buf, t, details);
	if (!ok)
		req_error(r, ERR_BAD_REQUEST, details, "query parameter %s %s", name,
		          json_string_value(json_object_get(details, name)));
	else
		json_decref(details);
	return ok;
}

/* An optional text parameter into buf: *out is buf when present and not empty, else NULL (an
 * empty one is ignored, as the day grid and room-service's list ignore it). */
static bool query_text(struct req *r, const char *name, char *buf, size_t size, const char **out)
{
	int q = req_query(r, name, buf, size);
	*out = q == 1 && buf[0] ? buf : NULL;
	return q >= 0;
}

void res_handle_room_search(struct req *r)
{
	struct res_time start, end;
	char zone[TZ_NAME_MAX + 1], building[SEARCH_TEXT_MAX + 1], q[SEARCH_TEXT_MAX + 1];
	char *equipment = NULL;
	struct res_search s = {.start = &start,
	                       .end = &end,
	                       .time_zone = zone,
	                       .capacity = 1,
	                       .limit = SEARCH_LIMIT_DEFAULT};
	bool present = false;
	json_t *body = NULL;
	int hz;

	if (!query_window_time(r, "start", &start) || !query_window_time(r, "end", &end) ||
	    (hz = req_query(r, "time_zone", zone, sizeof zone)) < 0)
		return;
	if (hz == 0)
		snprintf(zone, sizeof zone, "UTC"); /* req_query empties buffers of absent names */
	else if (!tz_valid(zone)) {
		req_bad_query(r, "time_zone", "must be an IANA time zone such as Europe/Berlin");
		return;
	}
	if (!req_query_int(r, "capacity", 1, SEARCH_PEOPLE_MAX, &s.capacity, &present) ||
	    !res_query_equipment(r, &equipment) ||
	    !query_text(r, "building", building, sizeof building, &s.building) ||
	    !req_query_int(r, "floor", SEARCH_FLOOR_MIN, SEARCH_FLOOR_MAX, &s.floor,
	                   &s.has_floor) ||
	    !query_text(r, "q", q, sizeof q, &s.q) ||
	    !req_query_int(r, "limit", 1, SEARCH_LIMIT_MAX, &s.limit, &present) ||
	    !req_query_int(r, "suggest", 1, SEARCH_SUGGEST_MAX, &s.suggest, &present))
		goto out;
	s.equipment = equipment;
	s.now = clock_now_s();
	s.max_seconds = rules->max_minutes * 60;
	enum res_search_problem problem;
	enum db_status st = res_repo_search(&s, &problem, &body);
	if (st != DB_OK)
		req_db_error(r, st);
	else if (problem == RES_SEARCH_END)
		req_invalid(r, json_pack("{s:s}", "end", "must be after start"));
	else if (problem == RES_SEARCH_DURATION)
		req_invalid(r, json_pack("{s:o}", "end",
		                         json_sprintf("the window must be at most %lld minutes",
		                                      rules->max_minutes)));
	else
		req_reply_json(r, 200, body);
out:
	free(equipment);
}
