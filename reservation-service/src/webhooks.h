/* webhooks: the endpoints of webhooks (docs/api.md#webhooks), for admins: register, list, read,
 * delete, and the deliveries of one.  The sending is webhook_send.h's, on the delivery queue
 * (deliver.h). */
#ifndef RES_WEBHOOKS_H
#define RES_WEBHOOKS_H

#include "http.h"

void res_handle_webhook_create(struct req *r);
void res_handle_webhook_list(struct req *r);
void res_handle_webhook_get(struct req *r);
void res_handle_webhook_delete(struct req *r);
void res_handle_webhook_deliveries(struct req *r);

#endif
