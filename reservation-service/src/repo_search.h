/* repo_search: the SQL of finding a room (docs/api.md#finding-a-room).  The search, its
 * suggestions and the alternatives of a refused booking are server-side functions of
 * migrations/005_find_a_room.sql (res_room_search; res_conflict_alternatives, called by
 * res_book_answer and res_change_answer for repo.c), which share the nearest-window logic
 * (res_nearest_windows).  Thread-safe like repo.h. */
#ifndef RES_REPO_SEARCH_H
#define RES_REPO_SEARCH_H

#include <stdbool.h>

#include <jansson.h>

#include "db.h"
#include "validate.h"

/* What GET /availability/rooms asks for.  Everything is borrowed. */
struct res_search {
	const struct res_time *start, *end; /* local ones are wall-clock times in time_zone */
	const char *time_zone;              /* a valid IANA zone */
	long long capacity;                 /* people, ≥ 1 */
	const char *equipment;              /* JSON array text, all required; NULL: none */
	const char *building;               /* NULL: any */
	bool has_floor;
	long long floor;
	const char *q;         /* a name substring; NULL: any */
	long long limit;       /* 1-100 */
	long long suggest;     /* 0: none, else how many alternative windows at most */
	long long now;         /* UTC seconds: alternatives start after it */
	long long max_seconds; /* the longest window */
};

enum res_search_problem {
	RES_SEARCH_OK,
	RES_SEARCH_END,      /* end not after start (once resolved in time_zone) */
	RES_SEARCH_DURATION, /* longer than max_seconds */
};

/* Runs the search (one statement).  On DB_OK with RES_SEARCH_OK, *body is a new reference:
 * the array of rooms, or with s->suggest the object {rooms, alternatives}. */
enum db_status res_repo_search(const struct res_search *s, enum res_search_problem *problem,
                               json_t **body);

#endif
