/* user-service: configuration, wiring, signals, start and stop. */
#include <getopt.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "countof.h"
#include "embedded.h"
#include "handlers.h"
#include "httpparse.h"
#include "jsonx.h"
#include "kafka.h"
#include "log.h"
#include "repo.h"
#include "routes.h"
#include "svc.h"
#include "timefmt.h"
#include "user_config.h"

#define SERVICE "user-service"
#define OUTBOX_LOCK_KEY 5000

/* The client-address settings' own checks (rows of the table below).  TRUSTED_GATEWAYS: IPv4
 * addresses or CIDRs only.  The removed TRUST_FORWARDED_FOR=true (it believed X-Forwarded-For
 * from any peer, so anyone who reached the port could choose their rate-limit bucket) stops the
 * service rather than being ignored silently, which would put every client behind the gateway
 * into one bucket. */
static bool user_gateways_valid(const char *list, char *why, size_t whylen)
{
	size_t bad = 0;
	if (httpparse_cidr_list_valid(list, &bad))
		return true;
	snprintf(why, whylen,
	         "must be a comma-separated list of IPv4 addresses or CIDRs (item %zu is not)",
	         bad);
	return false;
}

static bool user_trust_forwarded_for_unset(bool on, char *why, size_t whylen)
{
	if (!on)
		return true;
	snprintf(why, whylen,
	         "is no longer supported: set TRUSTED_GATEWAYS to the gateway's addresses instead");
	return false;
}

#define USER_CFG struct user_config
static const struct cfg_param user_params[] = {
	SVC_COMMON_PARAMS(USER_CFG, common, "5000"),
	CFG_STR(USER_CFG, "KAFKA_BROKER_URL", common.kafka_broker_url, "", 0, 4096),
	CFG_STR(USER_CFG, "USER_EVENTS_TOPIC", user_events_topic, "user_events", 1, 249),
	CFG_STR(USER_CFG, "GOOGLE_CLIENT_ID", google_client_id, "", 0, 512),
	CFG_STR(USER_CFG, "GOOGLE_CLIENT_SECRET", google_client_secret, "", 0, 512),
	CFG_STR(USER_CFG, "GOOGLE_REDIRECT_URI", google_redirect_uri, "", 0, 2048),
	CFG_STR(USER_CFG, "GOOGLE_DISCOVERY_URL", google_discovery_url,
                "https://accounts.google.com/.well-known/openid-configuration", 8, 2048),
	CFG_STR(USER_CFG, "GOOGLE_HOSTED_DOMAIN", google_hosted_domain, "", 0, 253),
	CFG_STR(USER_CFG, "ADMIN_EMAILS", admin_emails, "", 0, 65536),
	CFG_INT(USER_CFG, "JWT_REFRESH_TTL_SECONDS", refresh_ttl, "2592000", 300, 31536000),
	CFG_INT(USER_CFG, "REFRESH_REUSE_GRACE_SECONDS", refresh_reuse_grace, "30", 0, 300),
	CFG_INT(USER_CFG, "REFRESH_TOKEN_RETENTION_SECONDS", refresh_retention_s, "0", 0,
                315360000),
	CFG_BOOL(USER_CFG, "OIDC_ALLOW_HTTP_LOOPBACK", oidc_allow_http_loopback, "false"),
	CFG_INT(USER_CFG, "OIDC_JWKS_REFRESH_SECONDS", oidc_jwks_refresh_s, "3600", 1, 86400),
	CFG_INT(USER_CFG, "RATE_LIMIT_AUTH_PER_MINUTE", auth_rate_limit, "30", 0, 1000000),
	CFG_INT(USER_CFG, "RATE_LIMIT_REFRESH_PER_MINUTE", refresh_rate_limit, "600", 0, 1000000),
	CFG_STR_CHECKED(USER_CFG, "TRUSTED_GATEWAYS", trusted_gateways, "", 0, 4096,
                        user_gateways_valid),
	/* Replaced by TRUSTED_GATEWAYS; read only to refuse "true". */
	CFG_BOOL_CHECKED(USER_CFG, "TRUST_FORWARDED_FOR", trust_forwarded_for, "false",
                         user_trust_forwarded_for_unset),
};

/* Google sign-in is configured completely or not at all. */
static const struct cfg_check user_checks[] = {
	CFG_CHECK_REQUIRES(USER_CFG, google_client_id, google_client_secret),
	CFG_CHECK_REQUIRES(USER_CFG, google_client_id, google_redirect_uri),
};
#undef USER_CFG

static const struct cfg_table user_config_table = {
	.params = user_params,
	.nparams = countof(user_params),
	.checks = user_checks,
	.nchecks = countof(user_checks),
};

static struct user_config cfg;
static struct oidc_client *oidc;

static enum health_state check_identity_provider(char *detail, size_t size)
{
	if (!oidc) {
		snprintf(detail, size, "Google sign-in not configured");
		return HEALTH_DEGRADED;
	}
	enum oidc_status st = oidc_check(oidc);
	if (st == OIDC_OK)
		return HEALTH_OK;
	snprintf(detail, size, "%s", oidc_status_str(st));
	return HEALTH_DEGRADED;
}

static const struct health_check checks[] = {
	{"identity_provider", false, check_identity_provider},
};

/* `user-service token --email E [--name N] [--role admin|employee]`: creates or updates the user
 * and prints one access token. */
static int token_command(int argc, char **argv, const struct auth_config *auth)
{
	static const struct option opts[] = {{"email", required_argument, NULL, 'e'},
	                                     {"name", required_argument, NULL, 'n'},
	                                     {"role", required_argument, NULL, 'r'},
	                                     {NULL, 0, NULL, 0}};
	const char *email = NULL, *name = NULL, *role = NULL;
	int c;
	optind = 2;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'e':
			email = optarg;
			break;
		case 'n':
			name = optarg;
			break;
		case 'r':
			role = optarg;
			break;
		default:
			goto usage;
		}
	}
	if (!email || !*email || optind != argc || !strchr(email, '@') ||
	    jsonx_utf8_len(email) > AUTH_EMAIL_MAX_CHARS || (name && jsonx_utf8_len(name) > 200) ||
	    (role && strcmp(role, "admin") != 0 && strcmp(role, "employee") != 0))
		goto usage;
	char err[512];
	if (!svc_migrate_schema(service_migrations, service_migrations_count, err, sizeof err)) {
		fprintf(stderr, SERVICE ": %s\n", err);
		return 1;
	}
	struct user u;
	long long not_before_ms = 0;
	enum db_status st = user_repo_ensure(email, name, role, cfg.user_events_topic, &u,
	                                     &not_before_ms);
	if (st != DB_OK) {
		fprintf(stderr, SERVICE ": cannot store the user: %s\n", db_status_str(st));
		return 1;
	}
	/* Issued after the change, with its role: never before the revocation the change made
	 * (whatever the skew between this clock and the database's). */
	long long now_ms = timefmt_now_ms();
	char *token = auth_issue_access(auth, u.id, u.email, u.name, u.role,
	                                now_ms > not_before_ms ? now_ms : not_before_ms);
	if (!token)
		return 1;
	printf("%s\n", token);
	free(token);
	db_thread_close();
	return 0;
usage:
	fprintf(stderr, "usage: " SERVICE " token --email E [--name N] [--role admin|employee]\n");
	return 2;
}

int main(int argc, char **argv)
{
	int rc = 0;
	struct oidc_config oidc_cfg;

	svc_init(SERVICE, &user_config_table, &cfg, &cfg.common);
	struct auth_config auth = svc_auth(&cfg.common);
	if (argc > 1 && strcmp(argv[1], "token") == 0) {
		rc = token_command(argc, argv, &auth);
		goto out;
	}
	if (argc > 1) {
		fprintf(stderr, "usage: " SERVICE " [token --email E [--name N] [--role R]]\n");
		rc = 2;
		goto out;
	}
	if (cfg.google_client_id[0]) {
		oidc_cfg = (struct oidc_config){
			.discovery_url = cfg.google_discovery_url,
			.client_id = cfg.google_client_id,
			.client_secret = cfg.google_client_secret,
			.redirect_uri = cfg.google_redirect_uri,
			.hosted_domain = cfg.google_hosted_domain,
			.allow_http_loopback = cfg.oidc_allow_http_loopback,
			.timeout_ms = 10000,
			.jwks_refresh_s = (long)cfg.oidc_jwks_refresh_s,
		};
		oidc = oidc_new(&oidc_cfg);
	} else {
		log_warn("GOOGLE_CLIENT_ID is not set: /auth/google/* answers 503");
	}
	user_handlers_init(&cfg, &auth, oidc);
	/* Sign-in states are worthless once expired; refresh tokens are kept while their sign-in
	 * lives (reuse detection) and REFRESH_TOKEN_RETENTION_SECONDS after. */
	const struct sweep_table sweeps[] = {
		{"login_states", user_repo_sweep_login_states_sql, 0},
		{"refresh_tokens", user_repo_sweep_refresh_tokens_sql, cfg.refresh_retention_s},
	};

	/* The web app renews its access token (one refresh per page load and tab, then one per
	 * token lifetime) and signs out far more often than anyone signs in: their own, larger
	 * limit, so that an office behind one address is not turned away. */
	static const char *const refresh_routes[] = {"/auth/refresh", "/auth/logout", NULL};
	struct svc_service service = {
		.name = SERVICE,
		.cfg = &cfg.common,
		.auth = &auth,
		.routes = user_routes,
		.nroutes = user_routes_count,
		.extra_checks = checks,
		.nextra_checks = countof(checks),
		.migrations = service_migrations,
		.nmigrations = service_migrations_count,
		.openapi = service_openapi,
		.rate_limit_prefix = "/auth/",
		.rate_limit_per_minute = cfg.auth_rate_limit,
		.rate_limit_routes = refresh_routes,
		.rate_limit_routes_per_minute = cfg.refresh_rate_limit,
		.trusted_gateways = cfg.trusted_gateways,
		.route_matched = user_route_matched,
		.outbox_lock_key = OUTBOX_LOCK_KEY,
		.sweeps = sweeps,
		.nsweeps = countof(sweeps),
	};
	rc = svc_serve(&service);
out:
	oidc_free(oidc);
	svc_exit(&user_config_table, &cfg);
	return rc;
}
