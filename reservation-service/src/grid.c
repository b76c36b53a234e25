/* The day grid: for each room of a page, its local day and what is booked in it.  Who holds a
 * slot is shown only to that holder and to admins (docs/api.md#day-grid, the privacy rule); the
 * others see the interval alone (res_repo_grid applies the rule while writing the page). */
#include "grid.h"

#include <stdlib.h>
#include <string.h>

#include "equipment.h"
#include "handlers.h"
#include "repo_grid.h"

#define BUILDING_MAX_CHARS 100 /* room-service's limit on a room's building */

/* The cursor of req_page: [building or null, floor or null, name, id] (repo_grid.h) into f,
 * borrowing from cursor.  Replies 400 on failure. */
static bool grid_after(struct req *r, const json_t *cursor, struct res_grid_filter *f)
{
	const json_t *b = json_array_get(cursor, 0), *fl = json_array_get(cursor, 1),
		     *n = json_array_get(cursor, 2), *id = json_array_get(cursor, 3);
	if (json_array_size(cursor) != 4 || !(json_is_string(b) || json_is_null(b)) ||
	    !(json_is_integer(fl) || json_is_null(fl)) || !json_is_string(n) ||
	    !json_is_integer(id)) {
		req_bad_query(r, "cursor", "is invalid");
		return false;
	}
	f->after = true;
	f->after_building = json_string_value(b);
	f->after_has_floor = json_is_integer(fl);
	f->after_floor = (long long)json_integer_value(fl);
	f->after_name = json_string_value(n);
	f->after_id = (long long)json_integer_value(id);
	return true;
}

void res_handle_grid(struct req *r)
{
	struct res_grid_filter f = {0};
	json_t *cursor = NULL, *next = NULL;
	struct jsonx_text page = {0};
	char date[16], building[4 * BUILDING_MAX_CHARS + 1];
	char *equipment = NULL;
	int hb;

	if (!req_page(r, &f.limit, &cursor) || !res_query_date(r, "date", date, sizeof date) ||
	    !req_query_int(r, "capacity", 1, 10000, &f.capacity, &f.has_capacity) ||
	    !req_query_int(r, "floor", -100, 500, &f.floor, &f.has_floor) ||
	    (hb = req_query(r, "building", building, sizeof building)) < 0 ||
	    !res_query_equipment(r, &equipment) || (cursor && !grid_after(r, cursor, &f)))
		goto out;
	f.date = date;
	f.equipment = equipment;
	if (hb == 1 && building[0])
		f.building = building;
	f.all_holders = req_user(r)->admin;
	f.viewer = req_user(r)->id;
	enum db_status st = res_repo_grid(&f, &page, &next);
	if (req_page_read(r, st, next))
		req_reply_json_text(r, 200, page.data, page.len);
out:
	json_decref(next);
	jsonx_text_free(&page);
	json_decref(cursor);
	free(equipment);
}
