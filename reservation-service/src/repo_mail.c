/* The SQL of the mail senders' heartbeat (repo_mail.h). */
#include "repo_mail.h"

#include <stddef.h>

static const char mail_beat_sql[] =
	"WITH gone AS (DELETE FROM mail_senders WHERE seen_at < now() - interval '1 day') "
	"INSERT INTO mail_senders AS m (instance) VALUES ($1) "
	"ON CONFLICT (instance) DO UPDATE SET seen_at = now()";

enum db_status res_repo_mail_beat(PGconn *session, const char *instance)
{
	const char *params[] = {instance};
	if (session)
		return db_exec_on(session, NULL, mail_beat_sql, 1, params);
	return db_write(NULL, mail_beat_sql, 1, params);
}

enum db_status res_repo_mail_gone(const char *instance)
{
	const char *params[] = {instance};
	return db_write(NULL, "DELETE FROM mail_senders WHERE instance = $1", 1, params);
}

enum db_status res_repo_mail_senders_alive(const char *instance, long long *others)
{
	PGresult *res = NULL;
	const char *params[] = {instance};
	*others = 0;
	enum db_status st = db_exec(&res,
	                            "SELECT count(*) FROM mail_senders WHERE instance <> $1 "
	                            "AND mail_sender_alive(seen_at)",
	                            1, params);
	if (st == DB_OK)
		*others = db_int(res, 0, 0);
	PQclear(res);
	return st;
}
