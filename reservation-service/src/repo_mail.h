/* repo_mail: the SQL of the mail senders' heartbeat (migrations/014_mail_senders.sql): a
 * reservation-service with SMTP_URL records itself in mail_senders while its senders run, and
 * the outbox trigger queues invitations while some sender was seen recently (the view
 * mail_settings).  A process without SMTP_URL only reads.  Thread-safe. */
#ifndef RES_REPO_MAIL_H
#define RES_REPO_MAIL_H

#include <stdbool.h>

#include <libpq-fe.h>

#include "db.h"

/* The longest instance name (mail_senders.instance). */
#define RES_MAIL_INSTANCE_MAX 300

/* Records that instance's senders run (seen now; the row made at the first call), and drops the
 * rows of senders not seen for a day (gone without a clean stop).  On session (a sender's own,
 * borrowed), or on the pool when session is NULL. */
enum db_status res_repo_mail_beat(PGconn *session, const char *instance);

/* Removes instance's row (a clean stop: its senders run no more). */
enum db_status res_repo_mail_gone(const char *instance);

/* *others receives how many senders other than instance are alive as mail_settings counts them
 * (mail_sender_alive, migrations/016_mail_sender_window.sql). */
enum db_status res_repo_mail_senders_alive(const char *instance, long long *others);

#endif
