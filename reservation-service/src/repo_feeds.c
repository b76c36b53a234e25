/* The SQL of the calendar feeds (repo_feeds.h).  A feed is one statement: the room (or the
 * token) and its reservations in the window, read on the (room_id, start_time), (user_id,
 * start_time) or reservation_attendees' (email_key, start_time) index as a range of start times, the window's start moved back by the longest
 * reservation the rules allow so that one that started before it and overlaps it is found. */
#include "repo_feeds.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The window: 30 days back, 365 ahead, in hours (a day of the session's zone could be 23 or 25
 * hours long). */
#define FEED_FROM "now() - interval '720 hours'"
#define FEED_TO "now() + interval '8760 hours'"
#define FEED_LONGEST "interval '" RES_LONGEST_HOURS " hours'"
#define FEED_LIMIT "LIMIT " FEED_STR(RES_FEED_MAX_EVENTS)
#define FEED_STR(x) FEED_STR_(x)
#define FEED_STR_(x) #x
/* Reservation r (an alias) overlaps the window. */
#define FEED_WINDOW(r)                                                                      \
	r ".start_time >= " FEED_FROM " - " FEED_LONGEST " AND " r ".start_time < " FEED_TO \
	  " AND " r ".end_time > " FEED_FROM

/* The columns of one event, from column FEED_COL on (r a reservation, m its room); purpose and
 * meeting are the SQL expressions of the purpose and meeting link columns (NULL for busy
 * times). */
#define FEED_EVENT_COLUMNS(purpose, meeting)                                                           \
	"r.id, extract(epoch FROM r.start_time)::bigint, extract(epoch FROM r.end_time)::bigint, "     \
	"floor(extract(epoch FROM r.created_at))::bigint, "                                            \
	"floor(extract(epoch FROM r.updated_at))::bigint, r.version, r.status = 'cancelled', " purpose \
	", m.name, m.time_zone, res_feed_local(r.start_time, m.time_zone), "                           \
	"res_feed_local(r.end_time, m.time_zone), " meeting
#define FEED_COL 2

void res_feed_free(struct res_feed *f)
{
	PQclear(f->rows);
	free(f->events);
	memset(f, 0, sizeof *f);
}

/* Runs a feed's statement (sql, one parameter) and reads its rows into out: one event per row
 * whose column FEED_COL (the reservation's id) is not NULL, out->found when there is any row;
 * out->rows owns the result.  On failure out is empty. */
static enum db_status feed_query(const char *sql, const char *param, struct res_feed *out)
{
	PGresult *res = NULL;
	const char *params[] = {param};
	memset(out, 0, sizeof *out);
	enum db_status st = db_exec(&res, sql, 1, params);
	if (st != DB_OK)
		return st;
	int n = PQntuples(res);
	out->rows = res;
	out->found = n > 0;
	if (n > 0 && !(out->events = calloc((size_t)n, sizeof *out->events))) {
		res_feed_free(out);
		return DB_ERROR;
	}
	for (int i = 0; i < n; i++) {
		const int c = FEED_COL;
		if (PQgetisnull(res, i, c))
			continue; /* the room or token without reservations */
		struct res_feed_event *e = &out->events[out->nevents++];
		e->id = db_int(res, i, c);
		e->start_utc = db_int(res, i, c + 1);
		e->end_utc = db_int(res, i, c + 2);
		e->created_utc = db_int(res, i, c + 3);
		e->updated_utc = db_int(res, i, c + 4);
		e->version = db_int(res, i, c + 5);
		e->cancelled = db_bool(res, i, c + 6);
		e->purpose = db_value(res, i, c + 7);
		e->room_name = PQgetvalue(res, i, c + 8);
		e->zone = PQgetvalue(res, i, c + 9);
		e->local_start = db_value(res, i, c + 10);
		e->local_end = db_value(res, i, c + 11);
		e->meeting_url = db_value(res, i, c + 12);
	}
	return DB_OK;
}

enum db_status res_repo_feed_room(long long room_id, struct res_feed *out)
{
	char room[24];
	snprintf(room, sizeof room, "%lld", room_id);
	/* One row per reservation, or one with NULLs for a room without any; none for an unknown
	 * room.  Only the columns a busy time shows: the purpose and the holder never leave the
	 * database. */
	/* clang-format off */
	enum db_status st = feed_query(
		"SELECT m.name, m.time_zone, " FEED_EVENT_COLUMNS("NULL::text", "NULL::text") " "
		"FROM rooms m LEFT JOIN LATERAL (SELECT * FROM reservations r "
		"  WHERE r.room_id = m.id AND r.status = 'confirmed' AND " FEED_WINDOW("r") ") r "
		"  ON true "
		"WHERE m.id = $1::bigint AND NOT m.deleted ORDER BY r.start_time, r.id " FEED_LIMIT,
		room, out);
	/* clang-format on */
	if (st == DB_OK && out->found) {
		out->room_name = PQgetvalue(out->rows, 0, 0);
		out->zone = PQgetvalue(out->rows, 0, 1);
	}
	return st;
}

enum db_status res_repo_feed_me(const char *hash, struct res_feed *out)
{
	/* The reservations the token's owner organises (the (user_id, start_time) index), and
	 * those that invite the address stored with the token (any case: reservation_attendees,
	 * read as a range of (email_key, start_time), migration 017), each bounded by the window
	 * and the cap: UNION, so one that does both is one event. */
	/* clang-format off */
	enum db_status st = feed_query(
		"SELECT t.user_id, t.token_hash, " FEED_EVENT_COLUMNS("r.purpose", "r.meeting_url") " "
		"FROM feed_tokens t LEFT JOIN LATERAL ("
		"  (SELECT r.* FROM reservations r WHERE r.user_id = t.user_id AND " FEED_WINDOW("r")
		"   ORDER BY r.start_time, r.id " FEED_LIMIT ")"
		"  UNION "
		"  (SELECT r.* FROM reservation_attendees a "
		"   JOIN reservations r ON r.id = a.reservation_id "
		"   WHERE a.email_key = lower(t.email) "
		"   AND a.start_time >= " FEED_FROM " - " FEED_LONGEST " AND a.start_time < " FEED_TO
		"   AND a.end_time > " FEED_FROM
		"   ORDER BY a.start_time, a.reservation_id " FEED_LIMIT ")"
		") r ON true "
		"LEFT JOIN rooms m ON m.id = r.room_id "
		"WHERE t.token_hash = $1 ORDER BY r.start_time, r.id " FEED_LIMIT,
		hash, out);
	/* clang-format on */
	if (st == DB_OK && out->found) {
		out->user_id = db_int(out->rows, 0, 0);
		snprintf(out->token_hash, sizeof out->token_hash, "%s",
		         PQgetvalue(out->rows, 0, 1));
	}
	return st;
}

enum db_status res_repo_feed_token_known(const char *hash, bool *known,
                                         char stored[RND_TOKEN_HASH_LEN])
{
	PGresult *res = NULL;
	const char *params[] = {hash};
	enum db_status st = db_exec(
		&res, "SELECT token_hash FROM feed_tokens WHERE token_hash = $1", 1, params);
	*known = st == DB_OK && PQntuples(res) == 1;
	if (*known)
		snprintf(stored, RND_TOKEN_HASH_LEN, "%s", PQgetvalue(res, 0, 0));
	PQclear(res);
	return st;
}

enum db_status res_repo_feed_token_set(long long user_id, const char *email, const char *hash,
                                       long long issued_ms, bool *revoked)
{
	char user[24], issued[24];
	PGresult *res = NULL;
	snprintf(user, sizeof user, "%lld", user_id);
	snprintf(issued, sizeof issued, "%lld", issued_ms);
	const char *params[] = {user, hash, email, issued};
	*revoked = false;
	/* revoke_guard first, before any row lock (revoke.h). */
	enum db_status st = db_write(
		&res,
		/* The address of the latest user_email_changed consumed, if any, else the access
		 * token's (which may predate a change whose event has already come). */
		"INSERT INTO feed_tokens AS f (user_id, token_hash, email) "
		"SELECT $1::bigint, $2, coalesce((SELECT e.email FROM user_emails e "
		"  WHERE e.user_id = $1::bigint), $3) "
		"WHERE NOT revoke_guard($1::bigint, $4::bigint) "
		"ON CONFLICT (user_id) DO UPDATE SET token_hash = EXCLUDED.token_hash, "
		"  email = EXCLUDED.email, created_at = now() "
		"RETURNING 1",
		4, params);
	if (st == DB_OK)
		*revoked = PQntuples(res) == 0;
	PQclear(res);
	return st;
}

enum db_status res_repo_feed_token_delete(long long user_id, bool *removed)
{
	char user[24];
	PGresult *res = NULL;
	snprintf(user, sizeof user, "%lld", user_id);
	const char *params[] = {user};
	enum db_status st = db_write(
		&res, "DELETE FROM feed_tokens WHERE user_id = $1::bigint RETURNING 1", 1, params);
	*removed = st == DB_OK && PQntuples(res) > 0;
	PQclear(res);
	return st;
}

enum db_status res_repo_feed_user_email(long long user_id, const char *email,
                                        const char *occurred_at)
{
	char user[24];
	snprintf(user, sizeof user, "%lld", user_id);
	const char *params[] = {user, email, occurred_at};
	/* The newest change wins (a redelivered older event changes nothing); the feed token, if
	 * any, takes the address in the same statement. */
	return db_write(NULL,
	                "WITH e AS (INSERT INTO user_emails AS x (user_id, email, changed_at) "
	                "  VALUES ($1::bigint, $2, coalesce($3::timestamptz, now())) "
	                "  ON CONFLICT (user_id) DO UPDATE SET email = EXCLUDED.email, "
	                "    changed_at = EXCLUDED.changed_at "
	                "  WHERE x.changed_at <= EXCLUDED.changed_at RETURNING x.email) "
	                "UPDATE feed_tokens t SET email = e.email FROM e "
	                "WHERE t.user_id = $1::bigint",
	                3, params);
}

enum db_status res_repo_feed_token_revoke(long long user_id)
{
	char user[24];
	snprintf(user, sizeof user, "%lld", user_id);
	const char *params[] = {user};
	return db_exec(NULL, "DELETE FROM feed_tokens WHERE user_id = $1::bigint", 1, params);
}
