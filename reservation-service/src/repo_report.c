/* The utilisation report's statement (repo_report.h).  All its arithmetic (time zones, opening
 * hours, DST, clipping, medians, rounding) is PostgreSQL's, in res_utilisation() (migration 021):
 * this file only passes the parameters and points at the answer's values. */
#include "repo_report.h"

#include <stdio.h>
#include <stdlib.h>

#include <libpq-fe.h>

const char *const res_report_group_names[RES_REPORT_NGROUPS] = {
	[RES_REPORT_BY_ROOM] = "room",
	[RES_REPORT_BY_BUILDING] = "building",
	[RES_REPORT_BY_HOUR_OF_WEEK] = "hour_of_week",
};

/* Columns of res_utilisation()'s rows. */
enum {
	COL_TOTAL,
	COL_ROOM_ID,
	COL_ROOM_NAME,
	COL_BUILDING,
	COL_TIME_ZONE,
	COL_WEEKDAY,
	COL_HOUR,
	COL_ROOMS,
	COL_FIGURES, /* the first of RES_REPORT_NFIGURES */
	COL_COUNT = COL_FIGURES + RES_REPORT_NFIGURES,
};

static void read_row(const PGresult *res, int i, struct res_report_row *row)
{
	row->room_id = db_value(res, i, COL_ROOM_ID);
	row->room_name = db_value(res, i, COL_ROOM_NAME);
	row->building = db_value(res, i, COL_BUILDING);
	row->time_zone = db_value(res, i, COL_TIME_ZONE);
	row->weekday = db_value(res, i, COL_WEEKDAY);
	row->hour = db_value(res, i, COL_HOUR);
	row->rooms = db_value(res, i, COL_ROOMS);
	for (int f = 0; f < RES_REPORT_NFIGURES; f++)
		row->figures[f] = db_value(res, i, COL_FIGURES + f);
}

enum db_status res_repo_utilisation(const struct res_report_query *q, struct res_report *out)
{
	char from_s[24], to_s[24];
	PGresult *res = NULL;
	*out = (struct res_report){0};
	snprintf(from_s, sizeof from_s, "%lld", q->from_s);
	snprintf(to_s, sizeof to_s, "%lld", q->to_s);
	const char *params[] = {q->dates ? NULL : from_s,
	                        q->dates ? q->from_date : NULL,
	                        q->dates ? NULL : to_s,
	                        q->dates ? q->to_date : NULL,
	                        q->building,
	                        res_report_group_names[q->group]};
	/* A transaction of its own for two settings of this statement alone.  The planner costs
	 * the report far above its real work (its default row estimates of the set-returning
	 * functions: 1,000 days, 100 opening intervals a day), which would have PostgreSQL
	 * JIT-compile it: measured 2.1 s of compilation for a 0.7 s statement (30 days, 1,000
	 * rooms, 1 M reservations).  The medians sort their group's bookings: more room than the
	 * default work_mem keeps that sort in memory. */
	enum db_status st = db_begin();
	if (st != DB_OK)
		return st;
	st = db_exec(NULL,
	             "SELECT set_config('jit', 'off', true), set_config('work_mem', '64MB', true)",
	             0, NULL);
	if (st == DB_OK)
		st = db_exec_planned(
			&res,
			"SELECT * FROM res_utilisation($1::bigint, $2::date, $3::bigint, "
			"$4::date, $5::text, $6::text)",
			6, params);
	db_rollback(); /* it changed nothing */
	if (st != DB_OK)
		return st;
	int n = PQntuples(res);
	/* The last row is the totals: res_utilisation() always answers it. */
	if (n < 1 || PQnfields(res) != COL_COUNT || !db_bool(res, n - 1, COL_TOTAL)) {
		PQclear(res);
		return DB_ERROR;
	}
	out->rows = calloc((size_t)n, sizeof *out->rows);
	if (!out->rows) {
		PQclear(res);
		return DB_ERROR;
	}
	for (int i = 0; i < n - 1; i++)
		read_row(res, i, &out->rows[i]);
	read_row(res, n - 1, &out->totals);
	out->n = (size_t)(n - 1);
	out->result = res;
	return DB_OK;
}

void res_report_free(struct res_report *rep)
{
	free(rep->rows);
	PQclear(rep->result);
	*rep = (struct res_report){0};
}
