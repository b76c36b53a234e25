/* The routing table of reservation-service. */
#include "routes.h"

#include "countof.h"
#include "feeds.h"
#include "grid.h"
#include "handlers.h"
#include "report.h"
#include "search.h"
#include "series.h"
#include "waitlist.h"
#include "webhooks.h"

const struct http_route res_routes[] = {
	{{"POST", "/reservations"}, res_handle_create, HTTP_BEARER},
	{{"GET", "/reservations"}, res_handle_list, HTTP_BEARER},
	{{"GET", "/reservations/{id}"}, res_handle_get, HTTP_BEARER},
	{{"PUT", "/reservations/{id}"}, res_handle_update, HTTP_BEARER},
	{{"DELETE", "/reservations/{id}"}, res_handle_cancel, HTTP_BEARER},
	{{"POST", "/reservations/{id}/approve"}, res_handle_approve, HTTP_ADMIN},
	{{"POST", "/reservations/{id}/reject"}, res_handle_reject, HTTP_ADMIN},
	{{"POST", "/reservations/{id}/check-in"}, res_handle_check_in, HTTP_BEARER},
	{{"GET", "/reservations/series/{id}"}, res_handle_series_get, HTTP_BEARER},
	{{"PUT", "/reservations/series/{id}"}, res_handle_series_update, HTTP_BEARER},
	{{"DELETE", "/reservations/series/{id}"}, res_handle_series_cancel, HTTP_BEARER},
	{{"GET", "/availability"}, res_handle_availability, HTTP_BEARER},
	{{"GET", "/availability/rooms"}, res_handle_room_search, HTTP_BEARER},
	{{"GET", "/availability/rooms/{id}"}, res_handle_availability_room, HTTP_BEARER},
	{{"GET", "/availability/grid"}, res_handle_grid, HTTP_BEARER},
	{{"POST", "/waitlist"}, res_handle_waitlist_create, HTTP_BEARER},
	{{"GET", "/waitlist"}, res_handle_waitlist_list, HTTP_BEARER},
	{{"GET", "/waitlist/{id}"}, res_handle_waitlist_get, HTTP_BEARER},
	{{"DELETE", "/waitlist/{id}"}, res_handle_waitlist_cancel, HTTP_BEARER},
	{{"GET", "/reports/utilisation"}, res_handle_utilisation, HTTP_ADMIN},
	{{"POST", "/webhooks"}, res_handle_webhook_create, HTTP_ADMIN},
	{{"GET", "/webhooks"}, res_handle_webhook_list, HTTP_ADMIN},
	{{"GET", "/webhooks/{id}"}, res_handle_webhook_get, HTTP_ADMIN},
	{{"DELETE", "/webhooks/{id}"}, res_handle_webhook_delete, HTTP_ADMIN},
	{{"GET", "/webhooks/{id}/deliveries"}, res_handle_webhook_deliveries, HTTP_ADMIN},
	/* A bearer token, or a feed token as ?token= (checked by the handler). */
	{{"GET", "/calendars/rooms/{id}"}, res_handle_feed_room, HTTP_BEARER_OR_TOKEN},
	{{"GET", "/calendars/me.ics"}, res_handle_feed_me, HTTP_PUBLIC},
	{{"POST", "/calendars/me/token"}, res_handle_feed_token_create, HTTP_BEARER},
	{{"DELETE", "/calendars/me/token"}, res_handle_feed_token_delete, HTTP_BEARER},
	/* Routed only with TEST_CLOCK=true (res_routes_served), so without it the path answers 404
	 * to anyone before any check of the caller; the gateway routes no /internal path. */
	{{"PUT", "/internal/test-clock"}, res_handle_test_clock, HTTP_ADMIN},
};

const size_t res_routes_count = countof(res_routes);

const struct http_route *res_routes_served(bool test_clock, size_t *n)
{
	static struct http_route without[countof(res_routes)];
	if (test_clock) {
		*n = countof(res_routes);
		return res_routes;
	}
	size_t k = 0;
	for (size_t i = 0; i < countof(res_routes); i++) {
		if (res_routes[i].handler != res_handle_test_clock)
			without[k++] = res_routes[i];
	}
	*n = k;
	return without;
}
