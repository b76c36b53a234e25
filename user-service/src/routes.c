/* The routing table of user-service: method + path → handler, with the access each needs. */
#include "routes.h"

#include "countof.h"
#include "handlers.h"

const struct http_route user_routes[] = {
	{{"GET", "/auth/google/login"}, h_login, HTTP_PUBLIC},
	{{"GET", "/auth/google/callback"}, h_callback, HTTP_PUBLIC},
	{{"POST", "/auth/refresh"}, h_refresh, HTTP_PUBLIC},
	{{"POST", "/auth/logout"}, h_logout, HTTP_BEARER},
	{{"GET", "/users/profile"}, h_profile_get, HTTP_BEARER},
	{{"GET", "/users/me"}, h_profile_get, HTTP_BEARER},
	{{"PUT", "/users/profile"}, h_profile_put, HTTP_BEARER},
	{{"PUT", "/users/me"}, h_profile_put, HTTP_BEARER},
	{{"GET", "/admin/users"}, h_admin_list, HTTP_ADMIN},
	{{"GET", "/users"}, h_admin_list, HTTP_ADMIN},
	{{"GET", "/admin/users/{id}"}, h_admin_get, HTTP_ADMIN},
	{{"PUT", "/admin/users/{id}"}, h_admin_put, HTTP_ADMIN},
	{{"PUT", "/users/{id}"}, h_admin_put, HTTP_ADMIN},
	{{"DELETE", "/admin/users/{id}"}, h_admin_delete, HTTP_ADMIN},
};

const size_t user_routes_count = countof(user_routes);
