/* The routing table of user-service: method + path → handler, with the access each needs. */
#include "routes.h"

#include "countof.h"
#include "handlers.h"

const struct http_route user_routes[] = {
	{{"GET", "/auth/google/login"}, user_handle_login, HTTP_PUBLIC},
	{{"GET", "/auth/google/callback"}, user_handle_callback, HTTP_PUBLIC},
	{{"POST", "/auth/refresh"}, user_handle_refresh, HTTP_PUBLIC},
	{{"POST", "/auth/logout"}, user_handle_logout, HTTP_BEARER_OR_COOKIE},
	{{"GET", "/users/profile"}, user_handle_profile_get, HTTP_BEARER},
	{{"GET", "/users/me"}, user_handle_profile_get, HTTP_BEARER},
	{{"PUT", "/users/profile"}, user_handle_profile_put, HTTP_BEARER},
	{{"PUT", "/users/me"}, user_handle_profile_put, HTTP_BEARER},
	{{"GET", "/admin/users"}, user_handle_admin_list, HTTP_ADMIN},
	{{"GET", "/users"}, user_handle_admin_list, HTTP_ADMIN},
	{{"GET", "/admin/users/{id}"}, user_handle_admin_get, HTTP_ADMIN},
	{{"PUT", "/admin/users/{id}"}, user_handle_admin_put, HTTP_ADMIN},
	{{"PUT", "/users/{id}"}, user_handle_admin_put, HTTP_ADMIN},
	{{"DELETE", "/admin/users/{id}"}, user_handle_admin_delete, HTTP_ADMIN},
};

const size_t user_routes_count = countof(user_routes);
