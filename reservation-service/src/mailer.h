/* mailer: e-mail invitations (docs/api.md#invitations).  The rows of kind RES_MAIL_KIND that
 * migrations/009_mail.sql queues (one per recipient and change, payload = what changed) are
 * rendered here as an iMIP message (mail.h: text, HTML and the RFC 5546 iTIP object written
 * with ical.h, or series_ics.h for a whole series) and sent by the delivery queue's worker
 * (deliver.h) through SMTP, one message per recipient.  Rendering is pure; the send callback
 * only talks SMTP.  Thread-safe. */
#ifndef RES_MAILER_H
#define RES_MAILER_H

#include <stdbool.h>
#include <stddef.h>

#include "jsonx.h"
#include "mail.h"

struct deliver_item;
struct deliver_result;

#define RES_MAIL_KIND "mail"
/* The host part of every UID.  A single reservation's UID (reservation-<id>@…) is the one the
 * calendar feeds and the .ics exports use, so a client merges that invitation with the event it
 * already has; a series' mails use the series' UID (series-<id>@…, with RECURRENCE-ID for one
 * occurrence) as the series' .ics export does, while the feeds list each occurrence under its
 * own reservation-<id>@… (docs/api.md#invitations). */
#define RES_MAIL_UID_DOMAIN "meeting-rooms"
#define RES_MAIL_FROM_NAME "Meeting rooms"

/* The longest left side of a Message-ID this service writes
 * ("reservation-<id>-v<version>-<12 hex>-ic": 12 + 20 + 2 + 11 + 1 + 12 + 3); its right side
 * is SMTP_FROM's domain. */
#define RES_MAIL_MESSAGE_ID_LEFT_MAX 61

/* Whether from can be SMTP_FROM: a plain address (mail_address_valid) whose domain leaves room
 * for the left side of every Message-ID (MAIL_MESSAGE_ID_MAX in all). */
bool res_mail_from_valid(const char *from);

/* How messages are sent (SMTP_* configuration); read-only once the queue started. */
struct res_mailer {
	struct mail_smtp smtp; /* smtp.from: SMTP_FROM, also the From header; its domain is the
	                          right side of every Message-ID */
};

/* Writes the message for payload (a queued row's JSON) to recipient into msg (zeroed; the
 * caller frees it with jsonx_text_free), from the address from, dated now (seconds since the
 * epoch).  shared: the JSON of the mail_payloads row the payload refers to ("shared"; NULL
 * when it refers to none), under the payload's own keys.  false and why (a static string) when the
 * payload is not one this service queues or the message cannot be built: such a row can never
 * be sent. */
bool res_mail_render(const char *payload, const char *shared, const char *recipient,
                     const char *from, long long now, struct jsonx_text *msg, const char **why);

/* The sweeper's statement (struct sweep_table) for mail_payloads: deletes at most $2 rows
 * older than $1 seconds that no delivery refers to any more. */
extern const char res_mail_sweep_sql[];

/* The delivery queue's send callback (deliver_send_fn) for mail; arg is a struct res_mailer.
 * Renders the row and sends it to its target: accepted is sent, a 4xx reply, no connection or
 * a timeout is temporary, a 5xx reply or a message that cannot be built is permanent. */
void res_mail_send(const struct deliver_item *item, void *arg, struct deliver_result *out);

#endif
