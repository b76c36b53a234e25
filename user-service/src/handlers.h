/* handlers: every user-service endpoint (docs/api.md#user-service).  No SQL here (repo.c). */
#ifndef USER_HANDLERS_H
#define USER_HANDLERS_H

#include "http.h"
#include "oidc.h"
#include "user_config.h"

/* Borrowed for the life of the server; oidc may be NULL when Google sign-in is not set up. */
void user_handlers_init(const struct user_config *cfg, const struct auth_config *auth,
                        struct oidc_client *oidc);

/* http_options.route_matched: the errors of a sign-in a person's browser is going through
 * (GET /auth/google/login with return_to, or a navigation to the callback) are answered with the
 * app's sign-in page (req_error_redirect), the rate limit's included. */
void user_route_matched(struct req *r, const char *pattern);

void user_handle_login(struct req *r);
void user_handle_callback(struct req *r);
void user_handle_refresh(struct req *r);
void user_handle_logout(struct req *r);
void user_handle_profile_get(struct req *r);
void user_handle_profile_put(struct req *r);
void user_handle_admin_list(struct req *r);
void user_handle_admin_get(struct req *r);
void user_handle_admin_put(struct req *r);
void user_handle_admin_delete(struct req *r);

#endif
