/* The routing table of room-service. */
#include "routes.h"

#include "countof.h"
#include "handlers.h"

const struct http_route room_routes[] = {
	{{"GET", "/rooms"}, h_room_list, HTTP_BEARER},
	{{"POST", "/rooms"}, h_room_create, HTTP_ADMIN},
	{{"GET", "/rooms/{id}"}, h_room_get, HTTP_BEARER},
	{{"PUT", "/rooms/{id}"}, h_room_update, HTTP_ADMIN},
	{{"DELETE", "/rooms/{id}"}, h_room_delete, HTTP_ADMIN},
};

const size_t room_routes_count = countof(room_routes);
