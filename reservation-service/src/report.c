/* The utilisation report: the query parameters read and checked, the report run
 * (repo_report.h), its rows written as JSON or as RFC 4180 CSV. */
#include "report.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "countof.h"
#include "httpparse.h"
#include "jsonx.h"
#include "repo_report.h"
#include "timefmt.h"

#define BUILDING_MAX_CHARS 100 /* room-service's limit on a room's building */
#define REPORT_MAX_DAYS 366    /* the longest window */

/* A window bound as the client wrote it: a date (the rooms' local midnight) or an instant. */
struct report_bound {
	char text[64];
	bool date;
	long long s;                   /* the instant, or the date's midnight read as UTC */
	char out[TIMEFMT_RFC3339_LEN]; /* as the answer echoes it */
};

/* Reads the required query parameter name: YYYY-MM-DD, or RFC 3339 (without an offset: UTC, as
 * the reservation list reads its from/to).  Replies 400 naming it on failure. */
static bool report_bound(struct req *r, const char *name, struct report_bound *b)
{
	struct timefmt_time t = {0};
	int q = req_query(r, name, b->text, sizeof b->text);
	if (q < 0)
		return false;
	if (q == 0) {
		req_bad_query(r, name, "is required (YYYY-MM-DD or an RFC 3339 date-time)");
		return false;
	}
	b->date = strlen(b->text) == 10 && timefmt_parse_date(b->text, &t.year, &t.month, &t.day);
	if (b->date) {
		b->s = timefmt_wall_as_utc(&t);
		memcpy(b->out, b->text, 11);
		return true;
	}
	if (!timefmt_parse_rfc3339(b->text, &t)) {
		req_bad_query(r, name, "must be a date YYYY-MM-DD or an RFC 3339 date-time");
		return false;
	}
	b->s = t.has_offset ? t.utc : timefmt_wall_as_utc(&t);
	timefmt_rfc3339_s(b->s, b->out);
	return true;
}

/* The q value (0..1000 thousandths) the Accept header gives to the media type type ("text/csv"),
 * ignoring wildcards; 0 when it is not listed. */
static int accept_q(const char *accept, const char *type)
{
	const char *pos = accept, *item;
	size_t len, tlen = strlen(type);
	while (httpparse_list_next(&pos, &item, &len)) {
		const char *end = item + len, *semi = memchr(item, ';', len);
		size_t n = (size_t)((semi ? semi : end) - item);
		while (n > 0 && (item[n - 1] == ' ' || item[n - 1] == '\t'))
			n--;
		if (n != tlen || strncasecmp(item, type, n) != 0)
			continue;
		int q = 1000;
		/* ;q=0.5 among the parameters (RFC 9110: at most three decimals). */
		for (const char *p = semi; p && p < end;
		     p = memchr(p + 1, ';', (size_t)(end - p - 1))) {
			const char *v = p + 1;
			while (v < end && (*v == ' ' || *v == '\t'))
				v++;
			if (end - v < 2 || (v[0] != 'q' && v[0] != 'Q') || v[1] != '=')
				continue;
			v += 2;
			q = 0;
			int digits = 0, scale = 1000;
			if (v < end && (*v == '0' || *v == '1'))
				q = (*v++ - '0') * 1000;
			if (v < end && *v == '.')
				for (v++; v < end && *v >= '0' && *v <= '9' && digits < 3;
				     v++, digits++)
					q += (*v - '0') * (scale /= 10);
			if (q > 1000)
				q = 1000;
		}
		return q;
	}
	return 0;
}

/* CSV when the client prefers it: Accept names text/csv with a higher q than application/json
 * (which counts 0 when not listed); JSON otherwise (docs/api.md#utilisation-report). */
static bool report_wants_csv(struct req *r)
{
	const char *accept = req_header(r, "Accept");
	return accept && accept_q(accept, "text/csv") > accept_q(accept, "application/json");
}

/* ---- the columns of a row ---- */

/* A key column of a row: its name in JSON and CSV, whether it is text (else a number as
 * PostgreSQL wrote it), and where the row holds its value. */
struct report_column {
	const char *name;
	bool text;
	size_t offset; /* of a const char * in struct res_report_row */
};
#define REPORT_COLUMN(field, is_text)                                   \
	{                                                               \
#field, is_text, offsetof(struct res_report_row, field) \
	}

static const struct report_column by_room[] = {
	REPORT_COLUMN(room_id, false),
	REPORT_COLUMN(room_name, true),
	REPORT_COLUMN(building, true),
	REPORT_COLUMN(time_zone, true),
};
static const struct report_column by_building[] = {
	REPORT_COLUMN(building, true),
	REPORT_COLUMN(rooms, false),
};
static const struct report_column by_hour[] = {
	REPORT_COLUMN(weekday, true),
	REPORT_COLUMN(hour, false),
};
static const struct report_column of_totals[] = {
	REPORT_COLUMN(rooms, false),
};

/* The key columns of each grouping's rows. */
static const struct report_keys {
	const struct report_column *columns;
	size_t n;
} report_keys[RES_REPORT_NGROUPS] = {
	[RES_REPORT_BY_ROOM] = {by_room, countof(by_room)},
	[RES_REPORT_BY_BUILDING] = {by_building, countof(by_building)},
	[RES_REPORT_BY_HOUR_OF_WEEK] = {by_hour, countof(by_hour)},
};
static const struct report_keys totals_keys = {of_totals, countof(of_totals)};

static const char *const figure_names[RES_REPORT_NFIGURES] = {
#define REPORT_FIGURE_NAME_(name) #name,
	RES_REPORT_FIGURES(REPORT_FIGURE_NAME_)
#undef REPORT_FIGURE_NAME_
};

static const char *column_value(const struct res_report_row *row, const struct report_column *c)
{
	const char *const *v = (const char *const *)(const void *)((const char *)row + c->offset);
	return *v;
}

/* ---- JSON ---- */

static void json_number_or_null(struct jsonx_text *t, const char *v)
{
	if (v)
		jsonx_text_raw(t, v, strlen(v));
	else
		jsonx_text_lit(t, "null");
}

static void json_member(struct jsonx_text *t, bool first, const char *name)
{
	if (first)
		jsonx_text_lit(t, "{\"");
	else
		jsonx_text_lit(t, ",\"");
	jsonx_text_raw(t, name, strlen(name));
	jsonx_text_lit(t, "\":");
}

/* {key columns, figures} */
static void json_row(struct jsonx_text *t, const struct res_report_row *row,
                     const struct report_keys *keys)
{
	for (size_t k = 0; k < keys->n; k++) {
		const struct report_column *c = &keys->columns[k];
		json_member(t, k == 0, c->name);
		if (c->text)
			jsonx_text_str(t, column_value(row, c));
		else
			json_number_or_null(t, column_value(row, c));
	}
	for (int f = 0; f < RES_REPORT_NFIGURES; f++) {
		json_member(t, false, figure_names[f]);
		json_number_or_null(t, row->figures[f]);
	}
	jsonx_text_lit(t, "}");
}

/* {from, to, building, group_by, rows: [...], totals: {rooms, figures}} */
static void write_json(struct jsonx_text *t, const struct res_report *rep,
                       const struct res_report_query *q, const struct report_bound *from,
                       const struct report_bound *to)
{
	jsonx_text_lit(t, "{\"from\":");
	jsonx_text_str(t, from->out);
	jsonx_text_lit(t, ",\"to\":");
	jsonx_text_str(t, to->out);
	jsonx_text_lit(t, ",\"building\":");
	jsonx_text_str(t, q->building);
	jsonx_text_lit(t, ",\"group_by\":");
	jsonx_text_str(t, res_report_group_names[q->group]);
	jsonx_text_lit(t, ",\"rows\":[");
	for (size_t i = 0; i < rep->n; i++) {
		if (i > 0)
			jsonx_text_lit(t, ",");
		json_row(t, &rep->rows[i], &report_keys[q->group]);
	}
	jsonx_text_lit(t, "],\"totals\":");
	json_row(t, &rep->totals, &totals_keys);
	jsonx_text_lit(t, "}");
}

/* ---- CSV (RFC 4180; a jsonx_text serves as the growing buffer) ---- */

/* A text cell: always quoted, quotes doubled; a cell that a spreadsheet would read as a formula
 * (starting with = + - @, a tab or a carriage return) gets a leading apostrophe (OWASP's advice
 * on CSV injection).  NULL: an empty cell. */
static void csv_text(struct jsonx_text *t, const char *v)
{
	if (!v)
		return;
	jsonx_text_lit(t, "\"");
	if (v[0] && strchr("=+-@\t\r", v[0]))
		jsonx_text_lit(t, "'");
	for (const char *p = v; *p; p++) {
		if (*p == '"')
			jsonx_text_lit(t, "\"\"");
		else
			jsonx_text_raw(t, p, 1);
	}
	jsonx_text_lit(t, "\"");
}

/* A number cell as PostgreSQL wrote it (digits and a '.', no sign); NULL: an empty cell. */
static void csv_number(struct jsonx_text *t, const char *v)
{
	if (v)
		jsonx_text_raw(t, v, strlen(v));
}

/* The header row (key columns, figures), then a line per group; no totals line. */
static void write_csv(struct jsonx_text *t, const struct res_report *rep,
                      const struct report_keys *keys)
{
	for (size_t k = 0; k < keys->n; k++) {
		if (k > 0)
			jsonx_text_lit(t, ",");
		jsonx_text_raw(t, keys->columns[k].name, strlen(keys->columns[k].name));
	}
	for (int f = 0; f < RES_REPORT_NFIGURES; f++) {
		jsonx_text_lit(t, ",");
		jsonx_text_raw(t, figure_names[f], strlen(figure_names[f]));
	}
	jsonx_text_lit(t, "\r\n");
	for (size_t i = 0; i < rep->n; i++) {
		const struct res_report_row *row = &rep->rows[i];
		for (size_t k = 0; k < keys->n; k++) {
			const struct report_column *c = &keys->columns[k];
			if (k > 0)
				jsonx_text_lit(t, ",");
			if (c->text)
				csv_text(t, column_value(row, c));
			else
				csv_number(t, column_value(row, c));
		}
		for (int f = 0; f < RES_REPORT_NFIGURES; f++) {
			jsonx_text_lit(t, ",");
			csv_number(t, row->figures[f]);
		}
		jsonx_text_lit(t, "\r\n");
	}
}

void res_handle_utilisation(struct req *r)
{
	struct report_bound from, to;
	struct res_report_query q = {.group = RES_REPORT_BY_ROOM};
	struct res_report rep = {0};
	struct jsonx_text out = {0};
	char building[4 * BUILDING_MAX_CHARS + 1], group[16];
	int hb, hg;

	if (!report_bound(r, "from", &from) || !report_bound(r, "to", &to) ||
	    (hb = req_query(r, "building", building, sizeof building)) < 0 ||
	    (hg = req_query(r, "group_by", group, sizeof group)) < 0)
		goto out;
	if (hg == 1) {
		size_t i;
		for (i = 0; i < RES_REPORT_NGROUPS; i++)
			if (strcmp(group, res_report_group_names[i]) == 0)
				break;
		if (i == RES_REPORT_NGROUPS) {
			req_bad_query(r, "group_by", "must be room, building or hour_of_week");
			goto out;
		}
		q.group = (enum res_report_group)i;
	}
	if (from.date != to.date) {
		req_bad_query(r, "to",
		              from.date ? "must be a date YYYY-MM-DD, as from is"
		                        : "must be an RFC 3339 date-time, as from is");
		goto out;
	}
	if (to.s <= from.s) {
		req_bad_query(r, "to", "must be after from");
		goto out;
	}
	if (to.s - from.s > REPORT_MAX_DAYS * 86400LL) {
		req_bad_query(r, "to", "must be at most 366 days after from");
		goto out;
	}
	q.dates = from.date;
	q.from_s = from.s;
	q.to_s = to.s;
	q.from_date = from.text;
	q.to_date = to.text;
	if (hb == 1 && building[0])
		q.building = building;

	enum db_status st = res_repo_utilisation(&q, &rep);
	if (st != DB_OK) {
		req_db_error(r, st);
		goto out;
	}
	bool csv = report_wants_csv(r);
	if (csv)
		write_csv(&out, &rep, &report_keys[q.group]);
	else
		write_json(&out, &rep, &q, &from, &to);
	if (out.failed || !out.data) {
		req_db_error(r, DB_ERROR);
		goto out;
	}
	if (csv)
		req_reply_text(r, 200, "text/csv; charset=utf-8", out.data, out.len);
	else
		req_reply_json_text(r, 200, out.data, out.len);
out:
	jsonx_text_free(&out);
	res_report_free(&rep);
}
