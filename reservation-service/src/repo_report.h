/* repo_report: the SQL of the utilisation report (GET /reports/utilisation,
 * docs/api.md#utilisation-report): one call of res_utilisation()
 * (reservation-service/migrations/021_utilisation.sql), whose rows it hands over as plain
 * strings.  Like repo.c it runs on the calling thread's connection and leaves it idle. */
#ifndef RES_REPO_REPORT_H
#define RES_REPO_REPORT_H

#include <stdbool.h>
#include <stddef.h>

#include "db.h"

/* The groups of a report. */
enum res_report_group {
	RES_REPORT_BY_ROOM,
	RES_REPORT_BY_BUILDING,
	RES_REPORT_BY_HOUR_OF_WEEK,
};
#define RES_REPORT_NGROUPS 3
/* Their names in the API (?group_by=), indexed by enum res_report_group. */
extern const char *const res_report_group_names[RES_REPORT_NGROUPS];

/* The figures of a group, in the order of res_utilisation()'s columns: X(name). */
#define RES_REPORT_FIGURES(X) \
	X(available_hours)    \
	X(booked_hours)       \
	X(occupancy_pct)      \
	X(bookings)           \
	X(cancellations)      \
	X(cancellation_rate)  \
	X(no_show_count)      \
	X(checked_in_count)   \
	X(no_show_rate)       \
	X(median_lead_time_hours)

enum {
#define RES_REPORT_COUNT_(name) +1
	RES_REPORT_NFIGURES = 0 RES_REPORT_FIGURES(RES_REPORT_COUNT_)
#undef RES_REPORT_COUNT_
};

/* What a report covers.  Strings are borrowed. */
struct res_report_query {
	/* The window: [from_s, to_s) in Unix seconds, or when dates is true the local days
	 * [from_date, to_date) ("YYYY-MM-DD") in each room's own time zone. */
	bool dates;
	long long from_s, to_s;
	const char *from_date, *to_date;
	const char *building; /* rooms of this building only (ignoring case), or NULL */
	enum res_report_group group;
};

/* One group (or the totals).  Strings are borrowed from the report; NULL for SQL NULL (a key
 * that is not of the report's kind of group, a room without a building, an undefined figure).
 * Numbers are PostgreSQL's decimal text (digits and at most one '.', never a sign). */
struct res_report_row {
	const char *room_id, *room_name, *building, *time_zone; /* by room (building also by
	                                                          * building) */
	const char *weekday, *hour;               /* by hour of the week: "mon".."sun", 0..23 */
	const char *rooms;                        /* rooms in the group */
	const char *figures[RES_REPORT_NFIGURES]; /* in RES_REPORT_FIGURES order */
};

/* A whole report: the groups in the answer's order, and the totals of all of them. */
struct res_report {
	struct res_report_row *rows;
	size_t n;
	struct res_report_row totals;
	void *result; /* the PGresult that owns the strings */
};

/* Runs the report for q: one statement, planned for its parameters at every run
 * (db_exec_planned: a report is rare and its best plan depends on the window), in a
 * transaction of its own (rolled back) that turns JIT off for it (repo_report.c says why).
 * On DB_OK *out is filled (res_report_free() it); on failure it is empty.  Thread-safe (the
 * thread's own connection). */
enum db_status res_repo_utilisation(const struct res_report_query *q, struct res_report *out);
/* Frees what res_repo_utilisation() filled in; an empty report is fine. */
void res_report_free(struct res_report *rep);

#endif
