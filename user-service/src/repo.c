/* All SQL of user-service.  Statements are parameterised with explicit casts; constraints live
 * in the schema and failures are classified by SQLSTATE (db.c). */
#include "repo.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "outbox.h"
#include "revoke.h"

/* clang-format off */
#define USER_COLS                                                                            \
	"id, email, name, COALESCE(picture, ''), role, disabled, " DB_TS_MS("created_at") ", "   \
	DB_TS_MS("updated_at") ", version"
/* clang-format on */

/* The time of a change as its events and its revocation carry it: the database's clock,
 * truncated to milliseconds (the precision of occurred_at). */
#define USER_CHANGE_TIME "SELECT date_trunc('milliseconds', clock_timestamp()) AS at"

/* The payload of a user event (docs/events.md): type, user id and time are SQL expressions. */
#define USER_EVENT(type, id, at) OUTBOX_EVENT(type, at, "'user_id', " id)
/* user_role_changed: the envelope and the new role. */
#define USER_ROLE_EVENT(id, role, at) \
	OUTBOX_EVENT("'user_role_changed'", at, "'user_id', " id ", 'role', " role)
/* user_email_changed: the envelope and the new address. */
#define USER_EMAIL_EVENT(id, email, at) \
	OUTBOX_EVENT("'user_email_changed'", at, "'user_id', " id ", 'email', " email)

/* Serialises changes to the set of active admins so the last one can never be removed by two
 * concurrent requests that each see another admin. */
#define ADMIN_SET_LOCK "SELECT pg_advisory_xact_lock(1001)"

/* How many times a transaction that PostgreSQL aborted as a deadlock or serialization failure
 * (DB_RETRY) is run before the request is answered 503. */
#define ATTEMPTS 3

const char user_repo_sweep_login_states_sql[] =
	"DELETE FROM login_states WHERE ctid = ANY (ARRAY("
	"SELECT ctid FROM login_states "
	"WHERE expires_at < now() - make_interval(secs => $1::bigint) LIMIT $2::int))";

/* A family's rows go together, once its newest token expired (a rotation needs a valid token,
 * so no new row can join such a family). */
const char user_repo_sweep_refresh_tokens_sql[] =
	"DELETE FROM refresh_tokens WHERE ctid = ANY (ARRAY("
	"SELECT t.ctid FROM refresh_tokens t "
	"WHERE t.expires_at < now() - make_interval(secs => $1::bigint) "
	"AND NOT EXISTS (SELECT 1 FROM refresh_tokens l WHERE l.family = t.family "
	"AND l.expires_at >= now() - make_interval(secs => $1::bigint)) "
	"LIMIT $2::int))";

static void copy_text(char *dst, size_t size, const char *src)
{
	snprintf(dst, size, "%s", src ? src : "");
}

static void row_to_user(const PGresult *res, int row, struct user *u)
{
	u->id = db_int(res, row, 0);
	copy_text(u->email, sizeof u->email, db_value(res, row, 1));
	copy_text(u->name, sizeof u->name, db_value(res, row, 2));
	copy_text(u->picture, sizeof u->picture, db_value(res, row, 3));
	copy_text(u->role, sizeof u->role, db_value(res, row, 4));
	u->disabled = db_bool(res, row, 5);
	copy_text(u->created_at, sizeof u->created_at, db_value(res, row, 6));
	copy_text(u->updated_at, sizeof u->updated_at, db_value(res, row, 7));
	u->version = db_int(res, row, 8);
}

/* The user row, if any, of a statement's result (res is consumed). */
static enum db_status user_row(enum db_status st, PGresult *res, struct user *out, bool *found)
{
	*found = false;
	if (st == DB_OK && PQntuples(res) > 0) {
		row_to_user(res, 0, out);
		*found = true;
	}
	PQclear(res);
	return st;
}

/* Runs a statement expected to return at most one user row. */
static enum db_status user_query(const char *sql, int n, const char *const *params,
                                 struct user *out, bool *found)
{
	PGresult *res = NULL;
	enum db_status st = db_exec(&res, sql, n, params);
	return user_row(st, res, out, found);
}

/* The same for a write outside a transaction (db_write: never reported failed once
 * committed). */
static enum db_status user_write(const char *sql, int n, const char *const *params,
                                 struct user *out, bool *found)
{
	PGresult *res = NULL;
	enum db_status st = db_write(&res, sql, n, params);
	return user_row(st, res, out, found);
}

enum db_status user_repo_state_save(const char *state, const char *nonce, const char *verifier,
                                    const char *browser_hash, const char *return_to,
                                    int ttl_seconds)
{
	char ttl[16];
	snprintf(ttl, sizeof ttl, "%d", ttl_seconds);
	const char *params[] = {state, nonce, verifier, ttl, browser_hash, return_to};
	/* Expired states are swept on the way, in the same statement; the table stays small without
	 * a cron job. */
	return db_write(NULL,
	                "WITH swept AS (DELETE FROM login_states WHERE expires_at < now()) "
	                "INSERT INTO login_states (state, nonce, code_verifier, expires_at, "
	                "browser_hash, return_to) "
	                "VALUES ($1, $2, $3, now() + make_interval(secs => $4::int), $5, $6)",
	                6, params);
}

enum db_status user_repo_state_take(const char *state, const char *browser_hash,
                                    struct user_login_state *out, enum user_outcome *outcome)
{
	PGresult *res = NULL;
	const char *params[] = {state};
	*outcome = USER_NOT_FOUND;
	enum db_status st = db_begin();
	if (st != DB_OK)
		return st;
	/* The row is locked while its binding is compared: two callbacks of one state cannot both
	 * take it. */
	st = db_exec(&res,
	             "SELECT nonce, code_verifier, browser_hash, expires_at > now(), "
	             "coalesce(return_to, '') FROM login_states WHERE state = $1 FOR UPDATE",
	             1, params);
	if (st != DB_OK || PQntuples(res) != 1 || !db_bool(res, 0, 3))
		goto fail;
	/* A row without a binding (started before migration 002) matches no browser. */
	if (!user_token_hash_equal(PQgetisnull(res, 0, 2) ? NULL : db_value(res, 0, 2),
	                           browser_hash)) {
		*outcome = USER_WRONG_BROWSER;
		goto fail;
	}
	copy_text(out->nonce, sizeof out->nonce, db_value(res, 0, 0));
	copy_text(out->verifier, sizeof out->verifier, db_value(res, 0, 1));
	copy_text(out->return_to, sizeof out->return_to, db_value(res, 0, 4));
	PQclear(res);
	res = NULL;
	if ((st = db_exec(NULL, "DELETE FROM login_states WHERE state = $1", 1, params)) != DB_OK)
		goto fail;
	if ((st = db_commit()) == DB_OK)
		*outcome = USER_DONE;
	return st;
fail:
	PQclear(res);
	db_rollback();
	return st;
}

/* Inside a transaction, before the user row is read: the issue time of the access token it will
 * answer, from the database's clock (Unix milliseconds) — the clock of every not_before
 * (USER_CHANGE_TIME, revoke_apply), so that a clock difference between this pod and the
 * database neither lets a revoked token through nor voids a new one. */
static enum db_status issue_time(long long *issued_ms)
{
	PGresult *res = NULL;
	enum db_status st = db_exec(&res,
	                            "SELECT (extract(epoch FROM date_trunc('milliseconds', "
	                            "clock_timestamp())) * 1000)::bigint",
	                            0, NULL);
	if (st == DB_OK)
		*issued_ms = db_int(res, 0, 0);
	PQclear(res);
	return st;
}

static enum db_status login_tx(const struct user_login *l, struct user *out, long long *issued_ms,
                               enum user_outcome *outcome)
{
	bool found = false, linked = false;
	PGresult *res = NULL;
	const char *admin = l->make_admin ? "true" : "false";
	*outcome = USER_DONE;
	enum db_status st = db_begin();
	if (st != DB_OK)
		return st;
	if ((st = issue_time(issued_ms)) != DB_OK)
		goto fail;
	const char *by_sub[] = {l->sub};
	st = user_query("SELECT " USER_COLS " FROM users WHERE google_sub = $1 FOR UPDATE", 1,
	                by_sub, out, &found);
	if (st == DB_OK && !found) {
		/* Not found by this sub, so a sub on the e-mail's row is another account's (subs are
		 * unique): an address can be recycled or given to someone else, and linking it would
		 * hand them that user. */
		const char *by_email[] = {l->email};
		st = db_exec(&res,
		             "SELECT " USER_COLS ", google_sub IS NOT NULL FROM users "
		             "WHERE lower(email) = lower($1) FOR UPDATE",
		             1, by_email);
		if (st == DB_OK && PQntuples(res) > 0) {
			row_to_user(res, 0, out);
			found = true;
			linked = db_bool(res, 0, 9);
		}
		PQclear(res);
	}
	if (st != DB_OK)
		goto fail;
	if (linked) {
		*outcome = USER_SUB_CONFLICT;
		goto fail;
	}
	if (found) {
		char id[24];
		snprintf(id, sizeof id, "%lld", out->id);
		/* The provider's address replaces the one on record (found by sub): a change is
		 * published (user_email_changed), in this transaction, for the services that keep
		 * the address (reservation-service's calendar feeds). */
		bool email_changed = strcmp(out->email, l->email) != 0;
		/* The name is the user's to change (PUT /users/profile): only fill it when empty.  The
		 * provider's may be longer than a profile's 200 characters: it is cut to fit. */
		const char *params[] = {l->sub, l->email, l->name, l->picture, admin, id};
		st = user_query("UPDATE users SET google_sub = $1, email = $2, "
		                "name = CASE WHEN name = '' THEN COALESCE(left($3, 200), '') "
		                "ELSE name END, "
		                "picture = COALESCE($4, picture), "
		                "role = CASE WHEN $5::boolean THEN 'admin' ELSE role END, "
		                "last_login_at = now(), updated_at = now(), version = version + 1 "
		                "WHERE id = $6::bigint RETURNING " USER_COLS,
		                6, params, out, &found);
		if (st == DB_OK && email_changed) {
			const char *ev[] = {l->topic, id, l->email};
			st = db_exec(NULL,
			             OUTBOX_INSERT "$1, $2, " USER_EMAIL_EVENT(
					     "$2::bigint", "$3::text",
					     "date_trunc('milliseconds', clock_timestamp())"),
			             3, ev);
		}
	} else {
		const char *params[] = {l->sub, l->email, l->name, l->picture, admin};
		st = user_query("INSERT INTO users (google_sub, email, name, picture, role, "
		                "last_login_at) VALUES ($1, $2, COALESCE(left($3, 200), ''), $4, "
		                "CASE WHEN $5::boolean THEN 'admin' ELSE 'employee' END, now()) "
		                "RETURNING " USER_COLS,
		                5, params, out, &found);
	}
	if (st != DB_OK)
		goto fail;
	return db_commit();
fail:
	db_rollback();
	return st;
}

enum db_status user_repo_login(const struct user_login *login, struct user *out,
                               long long *issued_ms, enum user_outcome *outcome)
{
	/* Two first sign-ins of one person at the same moment race on the unique keys; the loser
	 * finds the winner's row on the second try. */
	enum db_status st = DB_RETRY;
	for (int i = 0; i < ATTEMPTS && (st == DB_RETRY || (i == 1 && st == DB_UNIQUE_VIOLATION));
	     i++)
		st = login_tx(login, out, issued_ms, outcome);
	return st;
}

enum db_status user_repo_ensure(const char *email, const char *name, const char *role,
                                const char *topic, struct user *out, long long *not_before_ms)
{
	PGresult *res = NULL;
	const char *params[] = {email, name, role, topic};
	*not_before_ms = 0;
	enum db_status st = db_begin();
	if (st != DB_OK)
		return st;
	/* A role given to an existing user who had another one is a role change like an admin's
	 * (event and revocation), so that the operator can demote too. */
	/* clang-format off */
	st = db_exec(&res,
	             "WITH old AS (SELECT role FROM users WHERE lower(email) = lower($1)), "
	             "u AS (INSERT INTO users (email, name, role) "
	             "  VALUES ($1, COALESCE($2, ''), COALESCE($3, 'employee')) "
	             "  ON CONFLICT ((lower(email))) DO UPDATE SET "
	             "  name = COALESCE($2, users.name), role = COALESCE($3, users.role), "
	             "  updated_at = now(), version = users.version + 1 RETURNING *), "
	             "t AS (" USER_CHANGE_TIME "), "
	             "ev AS (SELECT u.id, u.role, t.at FROM u, old, t WHERE u.role <> old.role), "
	             "e AS (" OUTBOX_INSERT "$4, ev.id::text, "
	             "  " USER_ROLE_EVENT("ev.id", "ev.role", "ev.at") " FROM ev) "
	             "SELECT " USER_COLS ", " DB_TS_MS("t.at") ", EXISTS (SELECT 1 FROM ev) FROM u, t",
	             4, params);
	/* clang-format on */
	if (st != DB_OK)
		goto fail;
	row_to_user(res, 0, out);
	if (db_bool(res, 0, 10) && (st = revoke_apply(out->id, db_value(res, 0, 9),
	                                              "user_role_changed", not_before_ms)) != DB_OK)
		goto fail;
	PQclear(res);
	if ((st = db_commit()) == DB_OK && *not_before_ms)
		revoke_note(out->id, *not_before_ms);
	return st;
fail:
	PQclear(res);
	db_rollback();
	return st;
}

enum db_status user_repo_get(long long id, struct user *out, bool *found)
{
	char ids[24];
	snprintf(ids, sizeof ids, "%lld", id);
	const char *params[] = {ids};
	return user_query("SELECT " USER_COLS " FROM users WHERE id = $1::bigint", 1, params, out,
	                  found);
}

enum db_status user_repo_list(const char *q, const char *role, long long after_id, long long limit,
                              json_t *(*to_json)(const struct user *), json_t **out, bool *more)
{
	char after[24], lim[24];
	snprintf(after, sizeof after, "%lld", after_id);
	snprintf(lim, sizeof lim, "%lld", limit + 1);
	const char *params[] = {after, q, role, lim};
	PGresult *res = NULL;
	*out = NULL;
	*more = false;
	/* q is matched as a literal substring: LIKE wildcards in it are escaped. */
	/* clang-format off */
	enum db_status st = db_exec(
		&res,
		"SELECT " USER_COLS " FROM users WHERE id > $1::bigint "
		"AND ($2::text IS NULL OR strpos(lower(email), lower($2)) > 0 "
		"     OR strpos(lower(name), lower($2)) > 0) "
		"AND ($3::text IS NULL OR role = $3) "
		"ORDER BY id LIMIT $4::bigint",
		4, params);
	/* clang-format on */
	if (st != DB_OK)
		return st;
	json_t *arr = json_array();
	int n = PQntuples(res);
	for (int i = 0; i < n && i < limit; i++) {
		struct user u;
		row_to_user(res, i, &u);
		json_array_append_new(arr, to_json(&u));
	}
	*more = n > limit;
	PQclear(res);
	*out = arr;
	return DB_OK;
}

enum db_status user_repo_update_profile(long long id, const char *name, const char *picture,
                                        long long if_version, struct user *out,
                                        enum user_outcome *outcome)
{
	char ids[24], ver[24];
	bool found = false;
	snprintf(ids, sizeof ids, "%lld", id);
	snprintf(ver, sizeof ver, "%lld", if_version);
	const char *params[] = {ids, name, picture, ver};
	*outcome = USER_DONE;
	/* clang-format off */
	enum db_status st = user_write("UPDATE users SET name = COALESCE($2, name), "
	                               "picture = COALESCE($3, picture), updated_at = now(), "
	                               "version = version + 1 WHERE id = $1::bigint "
	                               "AND ($4::int = 0 OR version = $4::int) RETURNING " USER_COLS,
	                               4, params, out, &found);
	/* clang-format on */
	if (st == DB_OK && !found) {
		st = user_repo_get(id, out, &found);
		*outcome = found ? USER_STALE : USER_NOT_FOUND;
	}
	return st;
}

/* Inside a transaction holding ADMIN_SET_LOCK: is there an active admin other than id? */
static enum db_status other_admin_exists(const char *id, bool *exists)
{
	PGresult *res = NULL;
	const char *params[] = {id};
	enum db_status st = db_exec(&res,
	                            "SELECT EXISTS (SELECT 1 FROM users WHERE role = 'admin' "
	                            "AND NOT disabled AND id <> $1::bigint)",
	                            1, params);
	*exists = st == DB_OK && db_bool(res, 0, 0);
	PQclear(res);
	return st;
}

/* Opens the transaction of an admin change to user ids: takes the admin-set lock, locks the row
 * into *u and checks If-Match.  Returns with the transaction open on DB_OK + USER_DONE; rolled
 * back otherwise. */
static enum db_status admin_change_begin(const char *ids, long long if_version, struct user *u,
                                         enum user_outcome *outcome)
{
	bool found = false;
	const char *by_id[] = {ids};
	enum db_status st = db_begin();
	if (st != DB_OK)
		return st;
	/* clang-format off */
	if ((st = db_exec(NULL, ADMIN_SET_LOCK, 0, NULL)) == DB_OK)
		st = user_query("SELECT " USER_COLS " FROM users WHERE id = $1::bigint FOR UPDATE", 1,
		                by_id, u, &found);
	/* clang-format on */
	if (st == DB_OK && !found)
		*outcome = USER_NOT_FOUND;
	else if (st == DB_OK && if_version && if_version != u->version)
		*outcome = USER_STALE;
	else if (st == DB_OK)
		return DB_OK;
	db_rollback();
	return st;
}

enum db_status user_repo_admin_update(long long id, const struct user_patch *p, const char *topic,
                                      struct user *out, enum user_outcome *outcome)
{
	char ids[24];
	bool others = false;
	long long not_before_ms = 0;
	PGresult *res = NULL;
	snprintf(ids, sizeof ids, "%lld", id);
	const char *by_id[] = {ids};
	*outcome = USER_DONE;

	enum db_status st = admin_change_begin(ids, p->if_version, out, outcome);
	if (st != DB_OK || *outcome != USER_DONE)
		return st;
	bool active_admin = strcmp(out->role, "admin") == 0 && !out->disabled;
	bool stays_admin = (p->role ? strcmp(p->role, "admin") == 0
	                            : strcmp(out->role, "admin") == 0) &&
	                   !(p->set_disabled ? p->disabled : out->disabled);
	if (active_admin && !stays_admin) {
		if ((st = other_admin_exists(ids, &others)) != DB_OK)
			goto fail;
		if (!others) {
			*outcome = USER_LAST_ADMIN;
			goto fail;
		}
	}
	const char *params[] = {ids,
	                        p->name,
	                        p->email,
	                        p->role,
	                        p->set_disabled ? (p->disabled ? "true" : "false") : NULL,
	                        topic};
	/* The events are built from the row before and after the change by the statement that
	 * changes it: user_role_changed when the role differs, user_disabled / user_enabled when
	 * disabled does.  The last column names those that void the user's tokens. */
	/* clang-format off */
	st = db_exec(
		&res,
		"WITH old AS (SELECT role, disabled, email FROM users WHERE id = $1::bigint), "
		"u AS (UPDATE users SET name = COALESCE($2, name), email = COALESCE($3, email), "
		"  role = COALESCE($4, role), disabled = COALESCE($5::boolean, disabled), "
		"  updated_at = now(), version = version + 1 WHERE id = $1::bigint RETURNING *), "
		"t AS (" USER_CHANGE_TIME "), "
		"ev AS (SELECT x.n, x.type, u.id, u.role, u.email, t.at FROM u, old, t, LATERAL (VALUES "
		"  (1, CASE WHEN u.role <> old.role THEN 'user_role_changed' END), "
		"  (2, CASE WHEN u.disabled AND NOT old.disabled THEN 'user_disabled' "
		"           WHEN old.disabled AND NOT u.disabled THEN 'user_enabled' END), "
		"  (3, CASE WHEN u.email <> old.email THEN 'user_email_changed' END)) "
		"  AS x(n, type) WHERE x.type IS NOT NULL), "
		"e AS (" OUTBOX_INSERT "$6, ev.id::text, "
		"  CASE ev.type WHEN 'user_role_changed' THEN " USER_ROLE_EVENT("ev.id", "ev.role", "ev.at")
		"  WHEN 'user_email_changed' THEN " USER_EMAIL_EVENT("ev.id", "ev.email", "ev.at")
		"  ELSE " USER_EVENT("ev.type", "ev.id", "ev.at") " END FROM ev ORDER BY ev.n) "
		"SELECT " USER_COLS ", " DB_TS_MS("t.at") ", "
		"  (SELECT string_agg(type, ',' ORDER BY n) FROM ev "
		"   WHERE type IN ('user_role_changed', 'user_disabled')) "
		"FROM u, t",
		6, params);
	/* clang-format on */
	if (st == DB_UNIQUE_VIOLATION) {
		*outcome = USER_DUPLICATE;
		st = DB_OK;
		goto fail;
	}
	/* The row is locked since admin_change_begin: it is there to update. */
	if (st == DB_OK && PQntuples(res) != 1)
		st = DB_ERROR;
	if (st != DB_OK)
		goto fail;
	row_to_user(res, 0, out);
	const char *voided_by = db_value(res, 0, 10);
	bool voids = voided_by != NULL;
	if (voids &&
	    (st = revoke_apply(id, db_value(res, 0, 9), voided_by, &not_before_ms)) != DB_OK)
		goto fail;
	if (out->disabled) {
		st = db_exec(NULL,
		             "UPDATE refresh_tokens SET revoked_at = now(), successor_box = NULL "
		             "WHERE user_id = $1::bigint AND revoked_at IS NULL",
		             1, by_id);
		if (st != DB_OK)
			goto fail;
	}
	PQclear(res);
	if ((st = db_commit()) == DB_OK && voids)
		revoke_note(id, not_before_ms);
	return st;
fail:
	PQclear(res);
	db_rollback();
	return st;
}

enum db_status user_repo_delete(long long id, long long if_version, const char *topic,
                                enum user_outcome *outcome)
{
	char ids[24];
	bool others = false;
	struct user u;
	PGresult *res = NULL;
	long long not_before_ms = 0;
	snprintf(ids, sizeof ids, "%lld", id);
	*outcome = USER_DONE;

	enum db_status st = admin_change_begin(ids, if_version, &u, outcome);
	if (st != DB_OK || *outcome != USER_DONE)
		return st;
	if (strcmp(u.role, "admin") == 0 && !u.disabled) {
		if ((st = other_admin_exists(ids, &others)) != DB_OK)
			goto fail;
		if (!others) {
			*outcome = USER_LAST_ADMIN;
			goto fail;
		}
	}
	/* The event is built from the deleted row by the statement that deletes it, as room- and
	 * reservation-service build theirs; its time is the user's not_before. */
	const char *params[] = {ids, topic};
	/* clang-format off */
	st = db_exec(&res,
	             "WITH u AS (DELETE FROM users WHERE id = $1::bigint RETURNING id), "
	             "t AS (" USER_CHANGE_TIME "), "
	             "e AS (" OUTBOX_INSERT "$2, u.id::text, " USER_EVENT("'user_deleted'", "u.id", "t.at")
	             "  FROM u, t) "
	             "SELECT u.id, " DB_TS_MS("t.at") " FROM u, t",
	             2, params);
	/* clang-format on */
	/* The row is locked since admin_change_begin: it is there to delete. */
	if (st == DB_OK && PQntuples(res) != 1)
		st = DB_ERROR;
	if (st == DB_OK)
		st = revoke_apply(id, db_value(res, 0, 1), "user_deleted", &not_before_ms);
	PQclear(res);
	if (st != DB_OK)
		goto fail;
	if ((st = db_commit()) == DB_OK)
		revoke_note(id, not_before_ms);
	return st;
fail:
	db_rollback();
	return st;
}

enum db_status user_repo_refresh_issue(long long user_id, const char *hash, const char *family,
                                       long long ttl_seconds)
{
	char uid[24], ttl[24];
	snprintf(uid, sizeof uid, "%lld", user_id);
	snprintf(ttl, sizeof ttl, "%lld", ttl_seconds);
	const char *params[] = {uid, hash, family, ttl};
	return db_write(NULL,
	                "INSERT INTO refresh_tokens (user_id, token_hash, family, expires_at) "
	                "VALUES ($1::bigint, $2, COALESCE($3::uuid, gen_random_uuid()), "
	                "now() + make_interval(secs => $4::bigint))",
	                4, params);
}

/* Inside the rotation's transaction, with the presented token's row (tid) locked and already
 * rotated: the box of that rotation when it may be answered again — within grace_s seconds of
 * it, and its successor neither used, revoked nor expired (once the successor is used, only a
 * copy of the old token can come back).  A statement of its own, so that it sees a successor
 * committed by a concurrent rotation this one waited for. */
static enum db_status replay_box(const char *tid, long long grace_s,
                                 char box_out[USER_TOKEN_BOX_LEN], bool *found)
{
	PGresult *res = NULL;
	char grace[24];
	snprintf(grace, sizeof grace, "%lld", grace_s);
	const char *params[] = {tid, grace};
	*found = false;
	enum db_status st = db_exec(&res,
	                            "SELECT t.successor_box FROM refresh_tokens t "
	                            "JOIN refresh_tokens s ON s.id = t.successor_id "
	                            "WHERE t.id = $1::bigint AND t.successor_box IS NOT NULL "
	                            "AND t.used_at > now() - make_interval(secs => $2::bigint) "
	                            "AND s.used_at IS NULL AND s.revoked_at IS NULL "
	                            "AND s.expires_at > now()",
	                            2, params);
	if (st == DB_OK && PQntuples(res) == 1) {
		copy_text(box_out, USER_TOKEN_BOX_LEN, db_value(res, 0, 0));
		*found = true;
	}
	PQclear(res);
	return st;
}

static enum db_status rotate_once(const char *old_hash, const char *new_hash, const char *box,
                                  long long ttl_seconds, long long grace_s, struct user *user,
                                  char box_out[USER_TOKEN_BOX_LEN], long long *issued_ms,
                                  enum user_outcome *outcome)
{
	PGresult *res = NULL;
	bool found = false, replay = false;
	char family[40], uid[24], tid[24], sid[24];
	const char *by_hash[] = {old_hash};
	*outcome = USER_TOKEN_INVALID;
	box_out[0] = '\0';

	enum db_status st = db_begin();
	if (st != DB_OK)
		return st;
	if ((st = issue_time(issued_ms)) != DB_OK)
		goto fail;
	/* The locks are taken in the order of an admin's change (admin_change_begin, then the
	 * user's refresh tokens): the user row first, then the token row.  So the owner is read
	 * without a lock first; a token never changes owner. */
	st = db_exec(&res, "SELECT user_id FROM refresh_tokens WHERE token_hash = $1", 1, by_hash);
	if (st != DB_OK || PQntuples(res) == 0)
		goto fail;
	copy_text(uid, sizeof uid, db_value(res, 0, 0));
	PQclear(res);
	res = NULL;
	const char *by_uid[] = {uid};
	/* FOR SHARE: a role change, disabling or deletion in progress finishes first, so the new
	 * access token is issued either with what it changed or before it (and is then revoked). */
	/* clang-format off */
	st = user_query("SELECT " USER_COLS " FROM users WHERE id = $1::bigint FOR SHARE", 1, by_uid,
	                user, &found);
	/* clang-format on */
	if (st != DB_OK || !found)
		goto fail;
	/* Concurrent presentations of one token queue here; each sees what the one before did. */
	const char *by_token[] = {old_hash, uid};
	st = db_exec(&res,
	             "SELECT id, family, used_at IS NOT NULL, revoked_at IS NOT NULL, "
	             "expires_at <= now() FROM refresh_tokens "
	             "WHERE token_hash = $1 AND user_id = $2::bigint FOR UPDATE",
	             2, by_token);
	if (st != DB_OK || PQntuples(res) == 0)
		goto fail;
	copy_text(tid, sizeof tid, db_value(res, 0, 0));
	copy_text(family, sizeof family, db_value(res, 0, 1));
	bool used = db_bool(res, 0, 2), revoked = db_bool(res, 0, 3), expired = db_bool(res, 0, 4);
	PQclear(res);
	res = NULL;
	if (used && !revoked && grace_s > 0 &&
	    (st = replay_box(tid, grace_s, box_out, &replay)) != DB_OK)
		goto fail;
	if (used && !revoked && !replay) {
		/* A rotated token came back: someone holds a copy.  End the whole sign-in. */
		const char *fam[] = {family};
		st = db_exec(NULL,
		             "UPDATE refresh_tokens SET revoked_at = now(), successor_box = NULL "
		             "WHERE family = $1::uuid AND revoked_at IS NULL",
		             1, fam);
		if (st != DB_OK)
			goto fail;
		*outcome = USER_TOKEN_REUSED;
		return db_commit();
	}
	/* Disabling revokes the tokens too; say why rather than "invalid". */
	if (user->disabled) {
		*outcome = USER_DISABLED;
		goto fail;
	}
	if (replay) {
		/* The client lost the answer of the rotation: it gets the same successor again. */
		*outcome = USER_TOKEN_REPLAYED;
		goto fail; /* nothing to write */
	}
	if (used || revoked || expired)
		goto fail;
	char ttl[24];
	snprintf(ttl, sizeof ttl, "%lld", ttl_seconds);
	const char *ins[] = {uid, new_hash, family, ttl};
	st = db_exec(&res,
	             "INSERT INTO refresh_tokens (user_id, token_hash, family, expires_at) "
	             "VALUES ($1::bigint, $2, $3::uuid, now() + make_interval(secs => $4::bigint)) "
	             "RETURNING id",
	             4, ins);
	if (st != DB_OK)
		goto fail;
	copy_text(sid, sizeof sid, db_value(res, 0, 0));
	PQclear(res);
	res = NULL;
	const char *rot[] = {tid, sid, box};
	st = db_exec(NULL,
	             "UPDATE refresh_tokens SET used_at = now(), successor_id = $2::bigint, "
	             "successor_box = $3 WHERE id = $1::bigint",
	             3, rot);
	if (st != DB_OK)
		goto fail;
	/* The box is kept for a repeat of this request; it opens only with the presented token,
	 * which the database does not hold.  The family's previous box is spent now (its successor
	 * is the token being rotated): dropped, unless a request holds that row — then it is
	 * skipped rather than waited for, as waiting could deadlock with that request. */
	const char *prev[] = {family, tid};
	st = db_exec(NULL,
	             "UPDATE refresh_tokens SET successor_box = NULL WHERE id IN ("
	             "SELECT id FROM refresh_tokens WHERE family = $1::uuid AND id <> $2::bigint "
	             "AND successor_box IS NOT NULL FOR UPDATE SKIP LOCKED)",
	             2, prev);
	if (st != DB_OK)
		goto fail;
	*outcome = USER_DONE;
	return db_commit();
fail:
	PQclear(res);
	db_rollback();
	return st;
}

enum db_status user_repo_refresh_rotate(const char *old_hash, const char *new_hash, const char *box,
                                        long long ttl_seconds, long long grace_s, struct user *user,
                                        char box_out[USER_TOKEN_BOX_LEN], long long *issued_ms,
                                        enum user_outcome *outcome)
{
	enum db_status st = DB_RETRY;
	for (int i = 0; i < ATTEMPTS && st == DB_RETRY; i++)
		st = rotate_once(old_hash, new_hash, box, ttl_seconds, grace_s, user, box_out,
		                 issued_ms, outcome);
	return st;
}

enum db_status user_repo_refresh_revoke(long long user_id, const char *hash)
{
	char uid[24];
	snprintf(uid, sizeof uid, "%lld", user_id);
	const char *params[] = {uid, hash};
	return db_write(NULL,
	                "UPDATE refresh_tokens SET revoked_at = now(), successor_box = NULL "
	                "WHERE user_id = $1::bigint "
	                "AND revoked_at IS NULL AND ($2::text IS NULL OR token_hash = $2)",
	                2, params);
}

enum db_status user_repo_refresh_revoke_family(const char *hash)
{
	const char *params[] = {hash};
	return db_write(NULL,
	                "UPDATE refresh_tokens SET revoked_at = now(), successor_box = NULL "
	                "WHERE family = (SELECT family FROM refresh_tokens WHERE token_hash = $1) "
	                "AND revoked_at IS NULL",
	                1, params);
}
