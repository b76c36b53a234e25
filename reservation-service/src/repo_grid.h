/* repo_grid: the SQL of the day grid (GET /availability/grid, docs/api.md#day-grid), beside
 * repo.c so that the grid's statement and the reading of its rows stay together.  Like repo.c it
 * runs on the calling thread's connection and leaves it idle; time-zone arithmetic (a room's
 * local day, 23 or 25 hours on DST days) is PostgreSQL's. */
#ifndef RES_REPO_GRID_H
#define RES_REPO_GRID_H

#include <stdbool.h>

#include <jansson.h>

#include "db.h"
#include "jsonx.h"

/* Which rooms a page of the grid holds.  Strings are borrowed. */
struct res_grid_filter {
	const char *date; /* "YYYY-MM-DD", a calendar day in each room's own zone */
	bool has_capacity;
	long long capacity;    /* at least this many people */
	const char *equipment; /* JSON array text of the items all required, or NULL */
	const char *building;  /* equal ignoring case, or NULL */
	bool has_floor;
	long long floor;
	/* The cursor: the sort key of the previous page's last room. */
	bool after;
	const char *after_building; /* NULL: that room had no building */
	bool after_has_floor;
	long long after_floor;
	const char *after_name;
	long long after_id;
	long long limit;
	/* Whose holder details (reservation_id, user_id, purpose) the page shows: every
	 * reservation's (an admin), or only those of the viewer's own (docs/api.md#day-grid). */
	bool all_holders;
	long long viewer;
};

/* One page of the grid in one statement: active rooms not deleted matching f, ordered by
 * building, floor (each missing last), name and id.  A room whose copy does not know its
 * details yet (details_known false) passes the building, floor and equipment filters: it cannot
 * be judged, and is listed marked rather than silently dropped.  *page: the JSON text of an array of
 * {room: {id, name, capacity, equipment, building, floor, time_zone, active}, details_known,
 * day: {date, time_zone, start_time, end_time}, busy: [{start_time, end_time, reservation_id,
 * user_id, purpose}]} where busy are the confirmed reservations overlapping the room's local
 * day, clipped to it, by start, the last three only where f lets the viewer see the holder (the
 * privacy rule, applied while writing).  *next: the cursor of the next page ([building, floor,
 * name, id], nulls for missing values) or NULL on the last one, a new reference.  On failure
 * *page is empty (nothing to free) and *next NULL; otherwise jsonx_text_free(page). */
enum db_status res_repo_grid(const struct res_grid_filter *f, struct jsonx_text *page,
                             json_t **next);

#endif
