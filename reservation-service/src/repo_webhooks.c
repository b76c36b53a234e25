/* The SQL of webhooks (repo_webhooks.h). */
#include "repo_webhooks.h"

#include <stdio.h>
#include <string.h>

/* The webhook as the API returns it: never the secret. */
/* clang-format off */
#define WEBHOOK_JSON                                                                   \
	"json_build_object('id', w.id, 'url', w.url, 'events', to_json(w.events), "    \
	"'created_at', " DB_TS_MS("w.created_at") ")::text"

/* A delivery as GET /webhooks/{id}/deliveries lists it. */
#define DELIVERY_JSON                                                                       \
	"json_build_object('id', d.id, 'event_type', d.payload->>'event_type', "            \
	"'event_id', d.payload->>'event_id', 'key', d.key, 'status', d.status, "            \
	"'attempts', d.attempts, 'last_status', d.last_status, 'last_error', d.last_error, " \
	"'created_at', " DB_TS_MS("d.created_at") ", "                                        \
	"'last_attempt_at', " DB_TS_MS("d.last_attempt_at") ", "                              \
	"'next_attempt_at', CASE WHEN d.status = 'pending' THEN "                            \
	DB_TS_MS("d.next_attempt_at") " END, "                                                \
	"'sent_at', " DB_TS_MS("d.sent_at") ")::text"
/* clang-format on */

static void num(char *buf, size_t size, long long v)
{
	snprintf(buf, size, "%lld", v);
}

/* The JSON object of column 0 of the first row of res as a new reference, or NULL. */
static json_t *first_object(const PGresult *res)
{
	if (PQntuples(res) < 1)
		return NULL;
	return json_loads(PQgetvalue(res, 0, 0), 0, NULL);
}

enum db_status res_repo_webhook_create(const char *url, const char *events, const char *secret,
                                       long long created_by, json_t **hook)
{
	char by[24];
	PGresult *res = NULL;
	num(by, sizeof by, created_by);
	char most[16];
	snprintf(most, sizeof most, "%d", RES_WEBHOOKS_MAX);
	const char *params[] = {url, events, secret, by, most};
	*hook = NULL;
	/* Two admins racing at the limit may both pass the count: a bound, not an exact one. */
	enum db_status st = db_write(
		&res,
		"INSERT INTO webhooks AS w (url, events, secret, created_by) "
		"SELECT $1, array(SELECT json_array_elements_text($2::json)), $3, $4::bigint "
		"WHERE (SELECT count(*) FROM webhooks) < $5::int "
		"RETURNING " WEBHOOK_JSON,
		5, params);
	if (st == DB_OK && PQntuples(res) == 1 && !(*hook = first_object(res)))
		st = DB_ERROR;
	PQclear(res);
	return st;
}

enum db_status res_repo_webhook_list(json_t **list)
{
	PGresult *res = NULL;
	json_t *next = NULL;
	*list = NULL;
	enum db_status st = db_exec(&res, "SELECT " WEBHOOK_JSON " FROM webhooks w ORDER BY w.id",
	                            0, NULL);
	if (st == DB_OK)
		db_json_page(res, PQntuples(res), list, &next);
	json_decref(next);
	PQclear(res);
	return st;
}

enum db_status res_repo_webhook_get(long long id, json_t **hook)
{
	char i[24];
	PGresult *res = NULL;
	num(i, sizeof i, id);
	const char *params[] = {i};
	*hook = NULL;
	enum db_status st = db_exec(
		&res, "SELECT " WEBHOOK_JSON " FROM webhooks w WHERE w.id = $1::bigint", 1, params);
	if (st == DB_OK)
		*hook = first_object(res);
	PQclear(res);
	return st;
}

enum db_status res_repo_webhook_delete(long long id, bool *found)
{
	char i[24];
	PGresult *res = NULL;
	num(i, sizeof i, id);
	const char *params[] = {i};
	*found = false;
	enum db_status st = db_write(&res, "DELETE FROM webhooks WHERE id = $1::bigint", 1, params);
	if (st == DB_OK)
		*found = strcmp(PQcmdTuples(res), "0") != 0;
	PQclear(res);
	return st;
}

enum db_status res_repo_webhook_deliveries(long long id, long long limit, long long after_id,
                                           json_t **list, json_t **next)
{
	char i[24], l[24], a[24];
	PGresult *res = NULL;
	num(i, sizeof i, id);
	num(l, sizeof l, limit + 1);
	num(a, sizeof a, after_id);
	const char *params[] = {i, l, a};
	*list = NULL;
	*next = NULL;
	/* Columns 1 and 2 are the cursor (db_json_page): [created_at, id]. */
	enum db_status st = db_exec(
		&res,
		"SELECT " DELIVERY_JSON ", " DB_TS_MS(
			"d.created_at") ", d.id FROM deliveries d "
					"WHERE d.kind = '" RES_WEBHOOK_KIND
					"' AND d.target = $1::bigint::text "
					"AND ($3::bigint = 0 OR d.id < $3::bigint) ORDER BY d.id DESC LIMIT $2::int",
		3, params);
	if (st == DB_OK)
		db_json_page(res, limit, list, next);
	PQclear(res);
	return st;
}

enum db_status res_repo_webhook_target(PGconn *session, const char *target, bool *found, char *url,
                                       size_t url_size, char *secret, size_t secret_size)
{
	PGresult *res = NULL;
	const char *params[] = {target};
	*found = false;
	enum db_status st = db_exec_on(
		session, &res, "SELECT url, secret FROM webhooks WHERE id = $1::bigint", 1, params);
	if (st == DB_OK && PQntuples(res) == 1) {
		*found = true;
		snprintf(url, url_size, "%s", PQgetvalue(res, 0, 0));
		snprintf(secret, secret_size, "%s", PQgetvalue(res, 0, 1));
	}
	PQclear(res);
	return st;
}
