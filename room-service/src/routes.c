/* The routing table of room-service. */
#include "routes.h"

#include "countof.h"
#include "handlers.h"

const struct http_route room_routes[] = {
	{{"GET", "/rooms"}, room_handle_list, HTTP_BEARER},
	{{"POST", "/rooms"}, room_handle_create, HTTP_ADMIN},
	{{"GET", "/rooms/{id}"}, room_handle_get, HTTP_BEARER},
	{{"PUT", "/rooms/{id}"}, room_handle_update, HTTP_ADMIN},
	{{"DELETE", "/rooms/{id}"}, room_handle_delete, HTTP_ADMIN},
};

const size_t room_routes_count = countof(room_routes);
