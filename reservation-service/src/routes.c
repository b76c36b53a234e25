/* The routing table of reservation-service. */
#include "routes.h"

#include "countof.h"
#include "handlers.h"

const struct http_route reservation_routes[] = {
	{{"POST", "/reservations"}, h_res_create, HTTP_BEARER},
	{{"GET", "/reservations"}, h_res_list, HTTP_BEARER},
	{{"GET", "/reservations/{id}"}, h_res_get, HTTP_BEARER},
	{{"PUT", "/reservations/{id}"}, h_res_update, HTTP_BEARER},
	{{"DELETE", "/reservations/{id}"}, h_res_cancel, HTTP_BEARER},
	{{"GET", "/availability"}, h_availability, HTTP_BEARER},
	{{"GET", "/availability/rooms/{id}"}, h_availability_room, HTTP_BEARER},
};

const size_t reservation_routes_count = countof(reservation_routes);
