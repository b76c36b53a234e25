/* user-service configuration (docs/operations.md#configuration), loaded once by main.c. */
#ifndef USER_CONFIG_H
#define USER_CONFIG_H

#include <stdbool.h>

#include "svc.h"

struct user_config {
	struct svc_config common;
	char *user_events_topic;
	char *google_client_id;
	char *google_client_secret;
	char *google_redirect_uri;
	char *google_discovery_url;
	char *google_hosted_domain;
	char *admin_emails;
	long long refresh_ttl;
	long long refresh_reuse_grace; /* seconds a rotated refresh token may repeat; 0 = never */
	long long refresh_retention_s; /* kept after a sign-in's last refresh token expired */
	bool oidc_allow_http_loopback;
	long long oidc_jwks_refresh_s; /* provider keys and metadata re-fetched after this */
	long long auth_rate_limit;     /* /auth/... per client address and minute; 0 = off */
	long long refresh_rate_limit;  /* POST /auth/refresh and /auth/logout, instead; 0 = off */
	char *trusted_gateways;        /* peers whose X-Real-IP is the client's address */
	bool trust_forwarded_for;      /* removed setting: only read to refuse "true" */
};

#endif
