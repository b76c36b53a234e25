/* handlers: every room-service endpoint (docs/api.md#room-service).  No SQL here (repo.c). */
#ifndef ROOM_HANDLERS_H
#define ROOM_HANDLERS_H

#include "http.h"

/* topic (borrowed, must outlive the server): where room events go. */
void room_handlers_init(const char *room_events_topic);

void room_handle_list(struct req *r);
void room_handle_get(struct req *r);
void room_handle_create(struct req *r);
void room_handle_update(struct req *r);
void room_handle_delete(struct req *r);

#endif
