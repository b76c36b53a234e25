/* All SQL of reservation-service.  Writers of one room are serialised by locking the room's row
 * (FOR NO KEY UPDATE) before touching its reservations, so concurrent attempts queue instead of
 * deadlocking on the exclusion constraint; the constraint itself is the guarantee.  A create
 * with an Idempotency-Key claims the key before the room, so its twins queue on the key.
 * Writes outside a transaction go through db_write(). */
#include "repo.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "outbox.h"
#include "revoke.h"

#define TS_S(col) "to_char(" col " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"

/* clang-format off */
#define RES_JSON(r)                                                                          \
	"json_build_object('id', " r ".id, 'room_id', " r ".room_id, 'user_id', " r ".user_id, " \
	"'purpose', " r ".purpose, 'start_time', " TS_S(r ".start_time") ", 'end_time', "        \
	TS_S(r ".end_time") ", 'status', " r ".status, 'cancel_reason', " r ".cancel_reason, "   \
	"'created_at', " DB_TS_MS(r ".created_at") ", 'updated_at', "                           \
	DB_TS_MS(r ".updated_at") ", 'version', " r ".version)"
/* clang-format on */

/* clang-format off */
#define EVENT(type, r)                                                                       \
	OUTBOX_EVENT(type, "clock_timestamp()", "'version', " r ".version, 'reservation', " RES_JSON(r))
/* clang-format on */

#define ATTEMPTS 3

const char res_repo_sweep_idempotency_keys_sql[] =
	"DELETE FROM idempotency_keys WHERE ctid = ANY (ARRAY("
	"SELECT ctid FROM idempotency_keys "
	"WHERE created_at < now() - make_interval(secs => $1::bigint) LIMIT $2::int))";

static void num(char *buf, size_t size, long long v)
{
	snprintf(buf, size, "%lld", v);
}

static json_t *first_json(const PGresult *res)
{
	return PQntuples(res) > 0 ? json_loads(PQgetvalue(res, 0, 0), 0, NULL) : NULL;
}

/* Ends a write transaction whose statement returned one JSON object (res is consumed). */
static enum db_status commit_with_json(PGresult *res, json_t **out)
{
	*out = first_json(res);
	PQclear(res);
	if (!*out) {
		db_rollback();
		return DB_ERROR;
	}
	return db_commit();
}

enum db_status res_repo_room_info(long long room_id, struct res_room *room)
{
	char id[24];
	PGresult *res = NULL;
	num(id, sizeof id, room_id);
	const char *params[] = {id};
	memset(room, 0, sizeof *room);
	enum db_status st = db_exec(&res,
	                            "SELECT time_zone, active FROM rooms "
	                            "WHERE id = $1::bigint AND NOT deleted",
	                            1, params);
	if (st == DB_OK && PQntuples(res) == 1) {
		room->found = true;
		snprintf(room->time_zone, sizeof room->time_zone, "%s", PQgetvalue(res, 0, 0));
		room->active = db_bool(res, 0, 1);
	}
	PQclear(res);
	return st;
}

enum db_status res_repo_local_to_utc(const char *local, const char *tz, long long *utc)
{
	PGresult *res = NULL;
	const char *params[] = {local, tz};
	enum db_status st = db_exec(&res,
	                            "SELECT extract(epoch FROM ($1::timestamp AT TIME ZONE $2))"
	                            "::bigint",
	                            2, params);
	if (st == DB_OK)
		*utc = db_int(res, 0, 0);
	PQclear(res);
	return st;
}

enum db_status res_repo_day_bounds(const char *first, const char *last, const char *tz,
                                   long long *start, long long *end)
{
	PGresult *res = NULL;
	const char *params[] = {first, last, tz};
	enum db_status st = db_exec(
		&res,
		"SELECT extract(epoch FROM ($1::date::timestamp AT TIME ZONE $3))::bigint, "
		"       extract(epoch FROM (($2::date + 1)::timestamp AT TIME ZONE $3))::bigint",
		3, params);
	if (st == DB_OK) {
		*start = db_int(res, 0, 0);
		*end = db_int(res, 0, 1);
	}
	PQclear(res);
	return st;
}

/* Inside a transaction: locks the room rows (in id order, so two movers never deadlock) and
 * tells whether room_id can take bookings. */
static enum db_status lock_rooms(long long room_id, long long other_room, bool *bookable)
{
	char a[24], b[24];
	PGresult *res = NULL;
	num(a, sizeof a, room_id);
	num(b, sizeof b, other_room ? other_room : room_id);
	const char *params[] = {a, b};
	enum db_status st = db_exec(&res,
	                            "SELECT id, active AND NOT deleted FROM rooms "
	                            "WHERE id IN ($1::bigint, $2::bigint) ORDER BY id "
	                            "FOR NO KEY UPDATE",
	                            2, params);
	*bookable = false;
	for (int i = 0; st == DB_OK && i < PQntuples(res); i++)
		if (db_int(res, i, 0) == room_id)
			*bookable = db_bool(res, i, 1);
	PQclear(res);
	return st;
}

/* The confirmed reservations of room overlapping [start, end), except one id. */
static enum db_status find_conflicts(long long room_id, long long start, long long end,
                                     long long except, json_t **conflicts)
{
	char r[24], s[24], e[24], x[24];
	PGresult *res = NULL;
	num(r, sizeof r, room_id);
	num(s, sizeof s, start);
	num(e, sizeof e, end);
	num(x, sizeof x, except);
	const char *params[] = {r, s, e, x};
	*conflicts = json_array();
	/* clang-format off */
	enum db_status st = db_exec(
		&res,
		"SELECT " TS_S("start_time") ", " TS_S("end_time") " FROM reservations "
		"WHERE room_id = $1::bigint AND status = 'confirmed' AND id <> $4::bigint "
		"AND tstzrange(start_time, end_time, '[)') && "
		"    tstzrange(to_timestamp($2::bigint), to_timestamp($3::bigint), '[)') "
		"ORDER BY start_time",
		4, params);
	/* clang-format on */
	for (int i = 0; st == DB_OK && i < PQntuples(res); i++)
		json_array_append_new(*conflicts,
		                      json_pack("{s:s, s:s}", "start_time", PQgetvalue(res, i, 0),
		                                "end_time", PQgetvalue(res, i, 1)));
	PQclear(res);
	return st;
}

/* Inside the create's transaction, before anything else: claims (user, key) for this request.
 * While another transaction holds an uncommitted claim on the same key the INSERT waits for it
 * to end, so concurrent requests with one key run one after the other.  *mine is false when
 * the key is taken by a committed creation; the caller then answers from its row. */
static enum db_status idem_claim(const char *user, const char *key, const char *hash, bool *mine)
{
	PGresult *r = NULL;
	const char *params[] = {user, key, hash};
	/* status 0 and no response until the reservation exists: the row is seen by others only
	 * after COMMIT, by which time the create's statement has filled both. */
	enum db_status st = db_write(&r,
	                             "INSERT INTO idempotency_keys (user_id, key, request_hash, "
	                             "  status, response) VALUES ($1::bigint, $2, $3, 0, '') "
	                             "ON CONFLICT DO NOTHING RETURNING 1",
	                             3, params);
	*mine = st == DB_OK && PQntuples(r) == 1;
	PQclear(r);
	return st;
}

/* An idempotency key already used: the stored response, or a mismatch. */
static enum db_status idem_lookup(const char *user, const char *key, const char *hash, json_t **res,
                                  enum res_outcome *outcome, bool *found)
{
	PGresult *r = NULL;
	const char *params[] = {user, key};
	*found = false;
	enum db_status st = db_exec(&r,
	                            "SELECT request_hash, response FROM idempotency_keys "
	                            "WHERE user_id = $1::bigint AND key = $2",
	                            2, params);
	if (st == DB_OK && PQntuples(r) == 1) {
		*found = true;
		if (strcmp(PQgetvalue(r, 0, 0), hash) == 0) {
			*res = json_loads(PQgetvalue(r, 0, 1), 0, NULL);
			*outcome = RES_REPLAY;
			if (!*res)
				st = DB_ERROR;
		} else {
			*outcome = RES_KEY_MISMATCH;
		}
	}
	PQclear(r);
	return st;
}

/* One attempt at a create.  With an idempotency key the key is claimed first, in the same
 * transaction, so a concurrent twin waits for this attempt: if it commits, the twin replays
 * its 201; if it rolls back (409 conflict, 422 room, 503), nothing is remembered and the twin
 * books on its own, meeting the same conflict or succeeding. */
static enum db_status res_create_once(const struct res_change *c, const char *topic,
                                      const char *idem_key, const char *idem_hash, json_t **out,
                                      json_t **conflicts, enum res_outcome *outcome)
{
	char room[24], user[24], start[24], end[24];
	PGresult *res = NULL;
	bool bookable = false, found = false, mine = false;
	num(room, sizeof room, c->room_id);
	num(user, sizeof user, c->user_id);
	num(start, sizeof start, c->start);
	num(end, sizeof end, c->end);

	enum db_status st = db_begin();
	if (st != DB_OK)
		return st;
	/* First (revoke.h): a deletion of the user being applied finishes before this booking goes
	 * on and is seen, or sees this booking and cancels it. */
	bool revoked = false;
	if ((st = revoke_guard(c->user_id, c->token_issued_ms, &revoked)) != DB_OK)
		goto fail;
	if (revoked) {
		*outcome = RES_TOKEN_REVOKED;
		goto fail;
	}
	if (idem_key) {
		if ((st = idem_claim(user, idem_key, idem_hash, &mine)) != DB_OK)
			goto fail;
		if (!mine) {
			st = idem_lookup(user, idem_key, idem_hash, out, outcome, &found);
			if (st == DB_OK && !found)
				st = DB_RETRY; /* swept meanwhile: claim it afresh */
			goto fail;             /* nothing to keep: the answer is the stored one */
		}
	}
	if ((st = lock_rooms(c->room_id, 0, &bookable)) != DB_OK)
		goto fail;
	if (!bookable) {
		*outcome = RES_ROOM_UNAVAILABLE;
		goto fail;
	}
	const char *params[] = {room,  user,    c->purpose ? c->purpose : "", start, end,
	                        topic, idem_key};
	/* clang-format off */
	st = db_write(&res,
	              "WITH r AS (INSERT INTO reservations (room_id, user_id, purpose, start_time, "
	              "  end_time) VALUES ($1::bigint, $2::bigint, $3, to_timestamp($4::bigint), "
	              "  to_timestamp($5::bigint)) RETURNING *), "
	              "e AS (" OUTBOX_INSERT "$6, r.id::text, "
	              "  " EVENT("'reservation_created'", "r") " FROM r), "
	              "k AS (UPDATE idempotency_keys i SET status = 201, "
	              "  response = " RES_JSON("r") "::text FROM r "
	              "  WHERE i.user_id = $2::bigint AND i.key = $7::text) "
	              "SELECT " RES_JSON("r") "::text FROM r",
	              7, params);
	/* clang-format on */
	if (st == DB_EXCLUSION_VIOLATION) {
		db_rollback();
		*outcome = RES_CONFLICT;
		return find_conflicts(c->room_id, c->start, c->end, 0, conflicts);
	}
	if (st != DB_OK)
		goto fail;
	return commit_with_json(res, out);
fail:
	PQclear(res);
	db_rollback();
	return st;
}

enum db_status res_repo_create(const struct res_change *c, const char *topic, const char *idem_key,
                               const char *idem_hash, json_t **res, json_t **conflicts,
                               enum res_outcome *outcome)
{
	enum db_status st = DB_RETRY;
	for (int i = 0; i < ATTEMPTS && st == DB_RETRY; i++) {
		*res = NULL;
		*conflicts = NULL;
		*outcome = RES_DONE;
		st = res_create_once(c, topic, idem_key, idem_hash, res, conflicts, outcome);
	}
	return st;
}

enum db_status res_repo_get(long long id, json_t **out)
{
	char ids[24];
	PGresult *res = NULL;
	num(ids, sizeof ids, id);
	const char *params[] = {ids};
	*out = NULL;
	/* clang-format off */
	enum db_status st = db_exec(&res, "SELECT " RES_JSON("r") "::text FROM reservations r "
	                                  "WHERE r.id = $1::bigint",
	                            1, params);
	/* clang-format on */
	if (st == DB_OK)
		*out = first_json(res);
	PQclear(res);
	return st;
}

/* The current status and version of reservation id, inside a transaction, locked. */
static enum db_status res_lock(const char *id, long long *room_id, bool *confirmed,
                               long long *version, bool *found)
{
	PGresult *res = NULL;
	const char *params[] = {id};
	enum db_status st = db_exec(&res,
	                            "SELECT room_id, status = 'confirmed', version "
	                            "FROM reservations WHERE id = $1::bigint FOR UPDATE",
	                            1, params);
	*found = st == DB_OK && PQntuples(res) == 1;
	if (*found) {
		*room_id = db_int(res, 0, 0);
		*confirmed = db_bool(res, 0, 1);
		*version = db_int(res, 0, 2);
	}
	PQclear(res);
	return st;
}

static enum db_status res_update_once(long long id, const struct res_change *c, const char *topic,
                                      json_t **out, json_t **conflicts, enum res_outcome *outcome)
{
	char ids[24], room[24], start[24], end[24];
	PGresult *res = NULL;
	bool bookable = false, found = false, confirmed = false;
	long long old_room = 0, locked_room = 0, version = 0;
	num(ids, sizeof ids, id);
	num(room, sizeof room, c->room_id);
	num(start, sizeof start, c->start);
	num(end, sizeof end, c->end);

	/* Rooms first, then the reservation: the order every writer (and the consumer deleting a
	 * room) uses, so they queue instead of deadlocking.  The room is read before the lock and
	 * checked again after it. */
	const char *by_id[] = {ids};
	enum db_status st = db_exec(&res, "SELECT room_id FROM reservations WHERE id = $1::bigint",
	                            1, by_id);
	if (st != DB_OK)
		return st;
	if (PQntuples(res) == 0) {
		PQclear(res);
		*outcome = RES_NOT_FOUND;
		return DB_OK;
	}
	old_room = db_int(res, 0, 0);
	PQclear(res);
	res = NULL;
	if ((st = db_begin()) != DB_OK)
		return st;
	if ((st = lock_rooms(c->room_id, old_room, &bookable)) != DB_OK)
		goto fail;
	if ((st = res_lock(ids, &locked_room, &confirmed, &version, &found)) != DB_OK)
		goto fail;
	if (!found) {
		*outcome = RES_NOT_FOUND;
		goto fail;
	}
	if (locked_room != old_room) {
		st = DB_RETRY; /* moved meanwhile: take the right locks again */
		goto fail;
	}
	if (!confirmed) {
		*outcome = RES_CANCELLED;
		goto fail;
	}
	if (c->expected_version && version != c->expected_version) {
		*outcome = RES_STALE;
		goto fail;
	}
	if (!bookable) {
		*outcome = RES_ROOM_UNAVAILABLE;
		goto fail;
	}
	const char *params[] = {ids, room, c->purpose ? c->purpose : "", start, end, topic};
	/* clang-format off */
	st = db_exec(&res,
	             "WITH r AS (UPDATE reservations SET room_id = $2::bigint, purpose = $3, "
	             "  start_time = to_timestamp($4::bigint), end_time = to_timestamp($5::bigint), "
	             "  updated_at = now(), version = version + 1 WHERE id = $1::bigint RETURNING *), "
	             "e AS (" OUTBOX_INSERT "$6, r.id::text, "
	             "  " EVENT("'reservation_updated'", "r") " FROM r) "
	             "SELECT " RES_JSON("r") "::text FROM r",
	             6, params);
	/* clang-format on */
	if (st == DB_EXCLUSION_VIOLATION) {
		db_rollback();
		*outcome = RES_CONFLICT;
		return find_conflicts(c->room_id, c->start, c->end, id, conflicts);
	}
	if (st != DB_OK)
		goto fail;
	return commit_with_json(res, out);
fail:
	PQclear(res);
	db_rollback();
	return st;
}

enum db_status res_repo_update(long long id, const struct res_change *c, const char *topic,
                               json_t **res, json_t **conflicts, enum res_outcome *outcome)
{
	enum db_status st = DB_RETRY;
	for (int i = 0; i < ATTEMPTS && st == DB_RETRY; i++) {
		*res = NULL;
		*conflicts = NULL;
		*outcome = RES_DONE;
		st = res_update_once(id, c, topic, res, conflicts, outcome);
	}
	return st;
}

enum db_status res_repo_cancel(long long id, long long expected_version, const char *reason,
                               const char *topic, enum res_outcome *outcome)
{
	char ids[24], ver[24];
	PGresult *res = NULL;
	num(ids, sizeof ids, id);
	num(ver, sizeof ver, expected_version);
	const char *params[] = {ids, ver, reason, topic};
	*outcome = RES_DONE;
	/* clang-format off */
	enum db_status st = db_write(
		&res,
		"WITH cur AS (SELECT id, status, version FROM reservations WHERE id = $1::bigint), "
		"r AS (UPDATE reservations SET status = 'cancelled', cancel_reason = $3, "
		"  updated_at = now(), version = version + 1 WHERE id = $1::bigint "
		"  AND status = 'confirmed' AND ($2::int = 0 OR version = $2::int) RETURNING *), "
		"e AS (" OUTBOX_INSERT "$4, r.id::text, "
		"  " EVENT("'reservation_cancelled'", "r") " FROM r) "
		"SELECT (SELECT count(*) FROM r), cur.status, cur.version FROM cur",
		4, params);
	/* clang-format on */
	if (st == DB_OK) {
		if (PQntuples(res) == 0)
			*outcome = RES_NOT_FOUND;
		else if (db_int(res, 0, 0) == 0 && strcmp(PQgetvalue(res, 0, 1), "confirmed") == 0)
			*outcome = RES_STALE;
	}
	PQclear(res);
	return st;
}

enum db_status res_repo_list(const struct res_filter *f, json_t **list, json_t **next)
{
	char user[24], room[24], from[24], to[24], after_id[24], limit[24];
	PGresult *res = NULL;
	num(user, sizeof user, f->user_id);
	num(room, sizeof room, f->room_id);
	num(from, sizeof from, f->from);
	num(to, sizeof to, f->to);
	num(after_id, sizeof after_id, f->after_id);
	num(limit, sizeof limit, f->limit + 1);
	const char *params[] = {f->user_id ? user : NULL,
	                        f->room_id ? room : NULL,
	                        f->date,
	                        f->has_from ? from : NULL,
	                        f->has_to ? to : NULL,
	                        f->status,
	                        f->after_start,
	                        after_id,
	                        limit};
	*list = NULL;
	*next = NULL;
	/* clang-format off */
	enum db_status st = db_exec(
		&res,
		"SELECT " RES_JSON("r") "::text, " TS_S("r.start_time") ", r.id "
		"FROM reservations r JOIN rooms m ON m.id = r.room_id "
		"WHERE ($1::bigint IS NULL OR r.user_id = $1::bigint) "
		"AND ($2::bigint IS NULL OR r.room_id = $2::bigint) "
		"AND ($3::date IS NULL OR tstzrange(r.start_time, r.end_time, '[)') && "
		"    tstzrange($3::date::timestamp AT TIME ZONE m.time_zone, "
		"              ($3::date + 1)::timestamp AT TIME ZONE m.time_zone, '[)')) "
		"AND ($4::bigint IS NULL OR r.end_time > to_timestamp($4::bigint)) "
		"AND ($5::bigint IS NULL OR r.start_time < to_timestamp($5::bigint)) "
		"AND ($6::text IS NULL OR r.status = $6) "
		"AND ($7::timestamptz IS NULL OR (r.start_time, r.id) > ($7::timestamptz, $8::bigint)) "
		"ORDER BY r.start_time, r.id LIMIT $9::bigint",
		9, params);
	/* clang-format on */
	if (st != DB_OK)
		return st;
	db_json_page(res, f->limit, list, next);
	PQclear(res);
	return DB_OK;
}

enum db_status res_repo_busy(long long room_id, long long from, long long to, json_t **busy)
{
	char room[24], f[24], t[24];
	PGresult *res = NULL;
	num(room, sizeof room, room_id);
	num(f, sizeof f, from);
	num(t, sizeof t, to);
	const char *params[] = {room, f, t};
	*busy = NULL;
	enum db_status st = db_exec(
		&res,
		"SELECT greatest(extract(epoch FROM start_time)::bigint, $2::bigint), "
		"       least(extract(epoch FROM end_time)::bigint, $3::bigint) "
		"FROM reservations WHERE room_id = $1::bigint AND status = 'confirmed' "
		/* The exclusion constraint's GiST index answers this overlap directly, so the cost
		 * does not grow with the room's history. */
		"AND tstzrange(start_time, end_time, '[)') && "
		"    tstzrange(to_timestamp($2::bigint), to_timestamp($3::bigint), '[)') "
		"ORDER BY start_time",
		3, params);
	if (st != DB_OK)
		return st;
	*busy = json_array();
	for (int i = 0; i < PQntuples(res); i++)
		json_array_append_new(*busy, json_pack("[I, I]", (json_int_t)db_int(res, i, 0),
		                                       (json_int_t)db_int(res, i, 1)));
	PQclear(res);
	return DB_OK;
}

enum db_status res_repo_room_upsert(long long id, const char *name, long long capacity,
                                    const char *time_zone, bool active, long long version)
{
	char ids[24], cap[24], ver[24];
	num(ids, sizeof ids, id);
	num(cap, sizeof cap, capacity);
	num(ver, sizeof ver, version);
	const char *params[] = {ids, name, cap, time_zone, active ? "true" : "false", ver};
	return db_write(NULL,
	                "INSERT INTO rooms (id, name, capacity, time_zone, active, version) "
	                "VALUES ($1::bigint, $2, $3::int, $4, $5::boolean, $6::int) "
	                "ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name, "
	                "capacity = EXCLUDED.capacity, time_zone = EXCLUDED.time_zone, "
	                "active = EXCLUDED.active, version = EXCLUDED.version, updated_at = now() "
	                "WHERE rooms.version < EXCLUDED.version AND NOT rooms.deleted",
	                6, params);
}

/* Cancels future confirmed reservations matching column = value, with their events. */
static enum db_status cancel_future(const char *column_is, const char *value, const char *reason,
                                    const char *topic, long *cancelled)
{
	char sql[2048];
	PGresult *res = NULL;
	const char *params[] = {value, reason, topic};
	/* clang-format off */
	snprintf(sql, sizeof sql,
	         "WITH r AS (UPDATE reservations SET status = 'cancelled', cancel_reason = $2, "
	         "  updated_at = now(), version = version + 1 WHERE %s = $1::bigint "
	         "  AND status = 'confirmed' AND start_time > now() RETURNING *), "
	         "e AS (" OUTBOX_INSERT "$3, r.id::text, "
	         "  " EVENT("'reservation_cancelled'", "r") " FROM r) "
	         "SELECT count(*) FROM r",
	         column_is);
	/* clang-format on */
	enum db_status st = db_write(&res, sql, 3, params);
	if (st == DB_OK)
		*cancelled = (long)db_int(res, 0, 0);
	PQclear(res);
	return st;
}

enum db_status res_repo_room_delete(long long id, long long version, const char *topic,
                                    long *cancelled)
{
	char ids[24], ver[24];
	num(ids, sizeof ids, id);
	num(ver, sizeof ver, version);
	const char *params[] = {ids, ver};
	*cancelled = 0;
	enum db_status st = db_begin();
	if (st != DB_OK)
		return st;
	/* A tombstone even for a room never seen, so a late room_created cannot resurrect it. */
	st = db_exec(NULL,
	             "INSERT INTO rooms (id, active, deleted, version) "
	             "VALUES ($1::bigint, false, true, $2::int) "
	             "ON CONFLICT (id) DO UPDATE SET active = false, deleted = true, "
	             "version = greatest(rooms.version, EXCLUDED.version), updated_at = now()",
	             2, params);
	if (st == DB_OK)
		st = cancel_future("room_id", ids, "room_deleted", topic, cancelled);
	if (st != DB_OK) {
		db_rollback();
		return st;
	}
	return db_commit();
}

enum db_status res_repo_user_deleted(long long user_id, const char *occurred_at, const char *topic,
                                     long *cancelled)
{
	char ids[24];
	num(ids, sizeof ids, user_id);
	*cancelled = 0;
	enum db_status st = db_begin();
	if (st != DB_OK)
		return st;
	/* The revocation first: it waits for bookings of the user in flight (revoke_guard) and
	 * makes later ones wait for this transaction, so the cancelling below sees every booking
	 * that got past the guard, and none gets past it afterwards. */
	st = revoke_apply(user_id, occurred_at, "user_deleted", NULL);
	if (st == DB_OK)
		st = cancel_future("user_id", ids, "user_deleted", topic, cancelled);
	if (st != DB_OK) {
		db_rollback();
		return st;
	}
	return db_commit();
}

enum db_status res_repo_user_revoked(long long user_id, const char *occurred_at, const char *reason)
{
	enum db_status st = db_begin();
	if (st != DB_OK)
		return st;
	st = revoke_apply(user_id, occurred_at, reason, NULL);
	if (st != DB_OK) {
		db_rollback();
		return st;
	}
	return db_commit();
}
