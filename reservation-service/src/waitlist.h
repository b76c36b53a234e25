/* waitlist: the endpoints of the waitlist (docs/api.md#waitlist): a signed-in user waits for a
 * slot of a room that is taken, reads and cancels their entries (admins anyone's).  The booking
 * of an entry when time of its room frees is the database's (migrations/020_waitlist.sql), in
 * the transaction of the write that frees it. */
#ifndef RES_WAITLIST_H
#define RES_WAITLIST_H

#include "http.h"

struct res_rules;

/* rules is borrowed for the life of the server. */
void res_waitlist_init(const struct res_rules *rules);

void res_handle_waitlist_create(struct req *r);
void res_handle_waitlist_list(struct req *r);
void res_handle_waitlist_get(struct req *r);
void res_handle_waitlist_cancel(struct req *r);

#endif
