/* All SQL of room-service.  Every write is one statement that changes the room and inserts its
 * event into the outbox (a data-modifying CTE), so both commit together or not at all; it runs
 * through db_write(), so a lost answer never turns a committed change into a 409/412/404. */
#include "repo.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "outbox.h"
#include "sqlbuild.h"
#include "timefmt.h"

/* The room representation of docs/api.md#rooms, for a row alias r. */
/* clang-format off */
#define ROOM_JSON(r)                                                                         \
	"json_build_object('id', " r ".id, 'name', " r ".name, 'capacity', " r ".capacity, "     \
	"'equipment', to_json(" r ".equipment), 'building', " r ".building, 'floor', " r         \
	".floor, 'description', " r ".description, 'time_zone', " r ".time_zone, 'active', " r    \
	".active, 'created_at', " DB_TS_MS(r ".created_at") ", 'updated_at', "                  \
	DB_TS_MS(r ".updated_at") ", 'version', " r ".version, 'policies', " r ".policies)"
/* clang-format on */

/* The reads' columns of a room, for a row alias r, turned into the same representation in C by
 * room_from_row(): plain values, the equipment as a JSON array, the times as milliseconds since
 * the epoch (truncated, as DB_TS_MS does).  Cheaper for the database than ROOM_JSON (measured,
 * docs/architecture.md#the-room-cache). */
/* clang-format off */
#define ROOM_COLUMNS(r)                                                                      \
	r ".id, " r ".name, " r ".capacity, to_json(" r ".equipment)::text, " r ".building, "    \
	r ".floor, " r ".description, " r ".time_zone, " r ".active, "                           \
	"floor(extract(epoch FROM " r ".created_at) * 1000)::int8, "                              \
	"floor(extract(epoch FROM " r ".updated_at) * 1000)::int8, " r ".version, "             \
	r ".policies::text"
/* clang-format on */
#define ROOM_NCOLUMNS 13

/* The room in row of res (columns ROOM_COLUMNS from the first): a new object, NULL when out of
 * memory. */
static json_t *room_from_row(const PGresult *res, int row)
{
	char created[TIMEFMT_RFC3339_LEN], updated[TIMEFMT_RFC3339_LEN];
	timefmt_rfc3339_ms(db_int(res, row, 9), created);
	timefmt_rfc3339_ms(db_int(res, row, 10), updated);
	json_t *equipment = json_loads(PQgetvalue(res, row, 3), 0, NULL);
	json_t *floor = db_value(res, row, 5) ? json_integer(db_int(res, row, 5)) : json_null();
	/* Parsed only when the room has rules, and only on a cache miss (handlers.c keeps the
	 * answer's text). */
	json_t *policies = db_value(res, row, 12) ? json_loads(PQgetvalue(res, row, 12), 0, NULL)
	                                          : json_null();
	if (!equipment || !floor || !policies) {
		json_decref(equipment);
		json_decref(floor);
		json_decref(policies);
		return NULL;
	}
	return json_pack("{s:I, s:s, s:I, s:o, s:s?, s:o, s:s?, s:s, s:b, s:s, s:s, s:I, s:o}",
	                 "id", (json_int_t)db_int(res, row, 0), "name", PQgetvalue(res, row, 1),
	                 "capacity", (json_int_t)db_int(res, row, 2), "equipment", equipment,
	                 "building", db_value(res, row, 4), "floor", floor, "description",
	                 db_value(res, row, 6), "time_zone", PQgetvalue(res, row, 7), "active",
	                 (int)db_bool(res, row, 8), "created_at", created, "updated_at", updated,
	                 "version", (json_int_t)db_int(res, row, 11), "policies", policies);
}

/* Equipment from a JSON array parameter, de-duplicated with PostgreSQL's (Unicode) lower(),
 * keeping the first spelling and the given order. */
/* clang-format off */
#define EQUIPMENT(param)                                                                     \
	"ARRAY(SELECT e FROM (SELECT DISTINCT ON (lower(e)) e, o "                               \
	"FROM json_array_elements_text(" param "::json) WITH ORDINALITY AS t(e, o) "              \
	"ORDER BY lower(e), o) d ORDER BY o)"
/* clang-format on */

/* clang-format off */
#define EVENT(type, r)                                                                       \
	OUTBOX_EVENT("'" type "'", "clock_timestamp()", "'version', " r ".version, 'room', " ROOM_JSON(r))
/* clang-format on */

static json_t *parse_json(const char *text)
{
	return json_loads(text, 0, NULL);
}

/* Fills the text parameters of a room change; scratch holds the number strings. */
struct room_params {
	char capacity[24], floor[24], if_version[24];
	char *equipment, *policies;
};

static void room_params_fill(const struct room_input *in, struct room_params *p)
{
	snprintf(p->capacity, sizeof p->capacity, "%lld", in->capacity);
	snprintf(p->floor, sizeof p->floor, "%lld", in->floor);
	snprintf(p->if_version, sizeof p->if_version, "%lld", in->if_version);
	p->equipment = in->equipment ? json_dumps(in->equipment, JSON_COMPACT) : NULL;
	p->policies = in->policies ? json_dumps(in->policies, JSON_COMPACT) : NULL;
}

/* False when a JSON parameter could not be written (out of memory): the change must not run
 * with the member missing, which would keep or clear what the client set. */
static bool room_params_ok(const struct room_input *in, const struct room_params *p)
{
	return (!in->equipment || p->equipment) && (!in->policies || p->policies);
}

static void room_params_free(struct room_params *p)
{
	free(p->equipment);
	free(p->policies);
}

/* One JSON object in the first column of a single-row result. */
static enum db_status one_json(enum db_status st, PGresult *res, json_t **out, bool *found)
{
	*found = false;
	if (st == DB_OK && PQntuples(res) == 1) {
		*out = parse_json(PQgetvalue(res, 0, 0));
		*found = *out != NULL;
		if (!*found)
			st = DB_ERROR;
	}
	PQclear(res);
	return st;
}

enum db_status room_repo_create(const struct room_input *in, const char *topic, json_t **room,
                                enum room_outcome *outcome)
{
	struct room_params p;
	PGresult *res = NULL;
	bool found = false;
	room_params_fill(in, &p);
	const char *params[] = {in->name,
	                        p.capacity,
	                        p.equipment ? p.equipment : "[]",
	                        in->building,
	                        in->has_floor && !in->floor_null ? p.floor : NULL,
	                        in->description,
	                        in->time_zone ? in->time_zone : "UTC",
	                        in->has_active ? (in->active ? "true" : "false") : "true",
	                        topic,
	                        p.policies};
	if (!room_params_ok(in, &p)) {
		room_params_free(&p);
		return DB_ERROR;
	}
	/* clang-format off */
	enum db_status st = db_write(
		&res,
		"WITH r AS (INSERT INTO rooms (name, capacity, equipment, building, floor, description, "
		"  time_zone, active, policies) VALUES ($1, $2::int, "
		"  " EQUIPMENT("$3") ", $4, $5::int, $6, $7, $8::boolean, $10::jsonb) "
		"  RETURNING *), "
		"e AS (" OUTBOX_INSERT "$9, r.id::text, " EVENT("room_created", "r") " FROM r) "
		"SELECT " ROOM_JSON("r") "::text FROM r",
		10, params);
	/* clang-format on */
	room_params_free(&p);
	*outcome = ROOM_DONE;
	if (st == DB_UNIQUE_VIOLATION) {
		*outcome = ROOM_DUPLICATE;
		PQclear(res);
		return DB_OK;
	}
	return one_json(st, res, room, &found);
}

/* After a conditional write touched no row: was the room missing, or its version stale? */
static enum db_status why_untouched(const char *id, enum room_outcome *outcome)
{
	PGresult *res = NULL;
	const char *params[] = {id};
	enum db_status st = db_exec(&res, "SELECT 1 FROM rooms WHERE id = $1::bigint", 1, params);
	if (st == DB_OK)
		*outcome = PQntuples(res) ? ROOM_STALE : ROOM_NOT_FOUND;
	PQclear(res);
	return st;
}

enum db_status room_repo_update(long long id, const struct room_input *in, const char *topic,
                                json_t **room, enum room_outcome *outcome)
{
	struct room_params p;
	PGresult *res = NULL;
	bool found = false;
	char ids[24];
	snprintf(ids, sizeof ids, "%lld", id);
	room_params_fill(in, &p);
	const char *params[] = {
		ids,
		in->name,
		in->has_capacity ? p.capacity : NULL,
		p.equipment,
		in->has_building ? "true" : "false",
		in->building,
		in->has_floor ? "true" : "false",
		in->has_floor && !in->floor_null ? p.floor : NULL,
		in->has_description ? "true" : "false",
		in->description,
		in->time_zone,
		in->has_active ? (in->active ? "true" : "false") : NULL,
		p.if_version,
		topic,
		in->has_policies ? "true" : "false",
		p.policies,
	};
	if (!room_params_ok(in, &p)) {
		room_params_free(&p);
		return DB_ERROR;
	}
	/* clang-format off */
	enum db_status st = db_write(
		&res,
		"WITH r AS (UPDATE rooms SET name = COALESCE($2, name), "
		"  capacity = COALESCE($3::int, capacity), "
		"  equipment = CASE WHEN $4::json IS NULL THEN equipment "
		"              ELSE " EQUIPMENT("$4") " END, "
		"  building = CASE WHEN $5::boolean THEN $6 ELSE building END, "
		"  floor = CASE WHEN $7::boolean THEN $8::int ELSE floor END, "
		"  description = CASE WHEN $9::boolean THEN $10 ELSE description END, "
		"  time_zone = COALESCE($11, time_zone), active = COALESCE($12::boolean, active), "
		"  policies = CASE WHEN $15::boolean THEN $16::jsonb ELSE policies END, "
		"  updated_at = now(), version = version + 1 "
		"  WHERE id = $1::bigint AND ($13::int = 0 OR version = $13::int) RETURNING *), "
		"e AS (" OUTBOX_INSERT "$14, r.id::text, " EVENT("room_updated", "r") " FROM r) "
		"SELECT " ROOM_JSON("r") "::text FROM r",
		16, params);
	/* clang-format on */
	room_params_free(&p);
	*outcome = ROOM_DONE;
	if (st == DB_UNIQUE_VIOLATION) {
		*outcome = ROOM_DUPLICATE;
		PQclear(res);
		return DB_OK;
	}
	st = one_json(st, res, room, &found);
	if (st == DB_OK && !found)
		st = why_untouched(ids, outcome);
	return st;
}

enum db_status room_repo_delete(long long id, long long if_version, const char *topic,
                                enum room_outcome *outcome)
{
	PGresult *res = NULL;
	char ids[24], ver[24];
	snprintf(ids, sizeof ids, "%lld", id);
	snprintf(ver, sizeof ver, "%lld", if_version);
	const char *params[] = {ids, ver, topic};
	/* clang-format off */
	enum db_status st = db_write(
		&res,
		"WITH r AS (DELETE FROM rooms WHERE id = $1::bigint "
		"  AND ($2::int = 0 OR version = $2::int) RETURNING id, version), "
		"e AS (" OUTBOX_INSERT "$3, r.id::text, "
		"  " OUTBOX_EVENT("'room_deleted'", "clock_timestamp()",
		                  "'version', r.version + 1, 'room_id', r.id") " FROM r) "
		"SELECT id FROM r",
		3, params);
	/* clang-format on */
	*outcome = ROOM_DONE;
	bool deleted = st == DB_OK && PQntuples(res) == 1;
	PQclear(res);
	if (st == DB_OK && !deleted)
		st = why_untouched(ids, outcome);
	return st;
}

enum db_status room_repo_republish_requested(const char *topic, long *published)
{
	PGresult *res = NULL;
	const char *params[] = {topic};
	/* clang-format off */
	enum db_status st = db_write(
		&res,
		"WITH q AS (DELETE FROM room_republish RETURNING 1), "
		"e AS (" OUTBOX_INSERT "$1, r.id::text, " EVENT("room_updated", "r") " "
		"  FROM rooms r WHERE EXISTS (SELECT FROM q) RETURNING 1) "
		"SELECT count(*) FROM e",
		1, params);
	/* clang-format on */
	*published = st == DB_OK ? (long)db_int(res, 0, 0) : 0;
	PQclear(res);
	return st;
}

enum db_status room_repo_get(long long id, json_t **room)
{
	PGresult *res = NULL;
	char ids[24];
	snprintf(ids, sizeof ids, "%lld", id);
	const char *params[] = {ids};
	*room = NULL;
	enum db_status st = db_exec(
		&res, "SELECT " ROOM_COLUMNS("r") " FROM rooms r WHERE r.id = $1::bigint", 1,
		params);
	if (st == DB_OK && PQntuples(res) == 1 && !(*room = room_from_row(res, 0)))
		st = DB_ERROR;
	PQclear(res);
	return st;
}

/* items (a JSON array of strings, borrowed) as a PostgreSQL array literal, every element quoted
 * and escaped.  New string (free()), NULL when out of memory. */
static char *text_array_literal(const json_t *items)
{
	size_t i, size = 3;
	json_t *v;
	json_array_foreach(items, i, v)
		size += 2 * json_string_length(v) + 3;
	char *out = malloc(size), *o = out;
	if (!out)
		return NULL;
	*o++ = '{';
	json_array_foreach(items, i, v) {
		if (i)
			*o++ = ',';
		*o++ = '"';
		for (const char *p = json_string_value(v); p && *p; p++) {
			if (*p == '"' || *p == '\\')
				*o++ = '\\';
			*o++ = *p;
		}
		*o++ = '"';
	}
	*o++ = '}';
	*o = '\0';
	return out;
}

/* q as a LIKE pattern that matches it anywhere (%, _ and a backslash stand for themselves) into out of
 * size bytes; false when it does not fit. */
static bool like_contains(const char *q, char *out, size_t size)
{
	size_t o = 0;
	out[o++] = '%';
	for (const char *p = q; *p; p++) {
		if (o + 4 > size)
			return false;
		if (*p == '%' || *p == '_' || *p == '\\')
			out[o++] = '\\';
		out[o++] = *p;
	}
	out[o++] = '%';
	out[o] = '\0';
	return true;
}

enum db_status room_repo_list(const struct room_filter *f, json_t **rooms, json_t **next)
{
	struct sqlbuild s = {.len = 0};
	PGresult *res = NULL;
	enum db_status st =
		DB_ERROR; /* out of memory, or a q the validation let through too long */
	char minc[24], after_id[24], limit[24], pattern[2 * ROOM_Q_MAX + 3];
	char *equipment = f->equipment ? text_array_literal(f->equipment) : NULL;
	snprintf(minc, sizeof minc, "%lld", f->min_capacity);
	snprintf(after_id, sizeof after_id, "%lld", f->after_id);
	snprintf(limit, sizeof limit, "%lld", f->limit + 1);
	*rooms = NULL;
	*next = NULL;
	if ((f->equipment && !equipment) || (f->q && !like_contains(f->q, pattern, sizeof pattern)))
		goto out;
	/* Only the conditions of the filters given (sqlbuild.h): at most 32 statement texts.
	 * Filter, sort and cut first; build the JSON only for the rows of the page.  The
	 * conditions are the expressions of the indexes of migration 002: equipment_key (GIN),
	 * room_fold(name|building|description) (trigram GIN), (lower(name), id) for the order. */
	/* clang-format off */
	sqlbuild_add(&s, "SELECT " ROOM_COLUMNS("r") ", lower(r.name) FROM ("
	                 "SELECT * FROM rooms r WHERE true", NULL);
	if (f->has_min_capacity)
		sqlbuild_add(&s, " AND r.capacity >= ?::int", minc);
	if (equipment)
		/* An immutable function of a constant: PostgreSQL computes it while planning and
		 * estimates the filter from the column's statistics. */
		sqlbuild_add(&s, " AND r.equipment_key @> room_equipment_key(?::text[])",
		             equipment);
	if (f->q)
		sqlbuild_add(&s, " AND (room_fold(r.name) LIKE lower(?) "
		                 "OR room_fold(r.building) LIKE lower(?) "
		                 "OR room_fold(r.description) LIKE lower(?))",
		             pattern);
	if (f->has_active)
		sqlbuild_add(&s, " AND r.active = ?::boolean", f->active ? "true" : "false");
	if (f->after_name) {
		sqlbuild_add(&s, " AND (lower(r.name), r.id) > (?", f->after_name);
		sqlbuild_add(&s, ", ?::bigint)", after_id);
	}
	sqlbuild_add(&s, " ORDER BY lower(r.name), r.id LIMIT ?::bigint) r "
	                 "ORDER BY lower(r.name), r.id", limit);
	/* clang-format on */
	st = db_exec(&res, s.text, s.n, s.params);
	if (st != DB_OK)
		goto out;
	/* limit + 1 rows were asked for: one more than the page says there is a next page. */
	int n = PQntuples(res);
	*rooms = json_array();
	for (int i = 0; *rooms && i < n && i < f->limit; i++) {
		json_t *room = room_from_row(res, i);
		if (!room || json_array_append_new(*rooms, room) != 0) {
			json_decref(*rooms);
			*rooms = NULL;
		}
	}
	if (*rooms && n > f->limit) {
		int last = (int)f->limit - 1;
		*next = json_pack("[s, I]", PQgetvalue(res, last, ROOM_NCOLUMNS),
		                  (json_int_t)db_int(res, last, 0));
	}
	if (!*rooms || (n > f->limit && !*next)) {
		json_decref(*rooms);
		*rooms = NULL;
		st = DB_ERROR;
	}
out:
	PQclear(res);
	free(equipment);
	return st;
}
