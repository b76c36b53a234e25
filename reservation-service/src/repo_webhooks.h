/* repo_webhooks: the SQL of webhooks (docs/api.md#webhooks): the webhooks table of
 * migrations/011_webhooks.sql and their rows of the delivery queue (deliver.h, kind
 * 'webhook').  Webhooks travel as JSON objects {id, url, events, created_at}: the secret is
 * read only by res_repo_webhook_target, for signing.  Thread-safe like repo.h. */
#ifndef RES_REPO_WEBHOOKS_H
#define RES_REPO_WEBHOOKS_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "db.h"

/* The kind of the webhooks' rows in the delivery queue. */
#define RES_WEBHOOK_KIND "webhook"

/* The most webhooks there may be: each one adds a row to the transaction of every booking it
 * subscribes to, and GET /webhooks lists them all. */
#define RES_WEBHOOKS_MAX 100

/* Stores a webhook.  events is a JSON array text of event types (borrowed).  *hook: new
 * reference to the webhook as the API returns it; NULL (and DB_OK) when RES_WEBHOOKS_MAX
 * webhooks exist already. */
enum db_status res_repo_webhook_create(const char *url, const char *events, const char *secret,
                                       long long created_by, json_t **hook);
/* All webhooks, oldest first: *list is a new array. */
enum db_status res_repo_webhook_list(json_t **list);
/* One webhook: *hook is a new reference, NULL when there is none with that id. */
enum db_status res_repo_webhook_get(long long id, json_t **hook);
/* Deletes a webhook; *found tells whether it existed.  Its deliveries still pending fail when
 * their turn comes (the sender finds no webhook), so that the delete never waits for a send
 * in progress. */
enum db_status res_repo_webhook_delete(long long id, bool *found);

/* A page of a webhook's deliveries, newest first: limit rows after the cursor's id
 * (after_id 0 = from the newest).  *list is a new array, *next the cursor of the next page or
 * NULL (db_json_page). */
enum db_status res_repo_webhook_deliveries(long long id, long long limit, long long after_id,
                                           json_t **list, json_t **next);

/* Where a delivery goes, read on the delivery worker's session (deliver_item.session, borrowed)
 * for webhook target (its id as text).  On DB_OK *found tells whether it still exists; url and
 * secret receive copies (NUL-terminated, cut at their sizes: the table bounds them to 2048 and
 * 256 bytes). */
enum db_status res_repo_webhook_target(PGconn *session, const char *target, bool *found, char *url,
                                       size_t url_size, char *secret, size_t secret_size);

#endif
