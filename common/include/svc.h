/* svc: what every service daemon shares around its own code: the common configuration
 * variables (docs/operations.md#configuration), process start-up (logging, libraries,
 * database), migrations retried until the database answers, and signal handling for a graceful
 * stop. */
#ifndef SVC_H
#define SVC_H

#include <stdbool.h>
#include <stddef.h>

#include "config.h"
#include "db.h"
#include "health.h"
#include "http.h"
#include "kafka.h"
#include "sweep.h"

struct svc_config {
	long long port;
	char *database_url;
	char *jwt_secret;
	char *jwt_issuer;
	long long access_ttl;
	char *log_level;
	long long num_threads;
	long long db_pool_size; /* 0 (unset): 2 × online processors + 1 */
	long long db_pool_wait_ms;
	long long max_body;
	long long header_timeout_ms;
	char *cors_origins;
	char *kafka_broker_url;
	long long migration_timeout_ms;
	long long health_interval_ms;
	long long drain_delay_ms;
	/* The Kafka connection's security (kafka_configure()); "" = librdkafka's default. */
	char *kafka_security_protocol;
	char *kafka_sasl_mechanism;
	char *kafka_sasl_username;
	char *kafka_sasl_password;
	char *kafka_ssl_ca_location;
	char *kafka_ssl_certificate_location;
	char *kafka_ssl_key_location;
	char *kafka_ssl_key_password;
	/* The sweeper (sweep.h): 0 = off. */
	long long sweep_interval_s;
	long long sweep_batch;
	long long outbox_retention_s;
};

/* The common rows of a service's configuration table.  s is the service's config struct, m the
 * name of its struct svc_config member, default_port the default port as a string. */
#define SVC_COMMON_PARAMS(s, m, default_port)                                                      \
	CFG_INT(s, "PORT", m.port, default_port, 1, 65535),                                        \
		CFG_REQUIRED_STR(s, "DATABASE_URL", m.database_url, 1, 4096),                      \
		CFG_REQUIRED_STR(s, "JWT_SECRET_KEY", m.jwt_secret, 32, 4096),                     \
		CFG_STR(s, "JWT_ISSUER", m.jwt_issuer, "meeting-rooms", 1, 256),                   \
		CFG_INT(s, "JWT_ACCESS_TTL_SECONDS", m.access_ttl, "900", 60, 86400),              \
		CFG_STR(s, "LOG_LEVEL", m.log_level, "info", 4, 5),                                \
		CFG_INT(s, "NUM_THREADS", m.num_threads, "300", 1, 1024),                          \
		CFG_INT(s, "DB_POOL_SIZE", m.db_pool_size, NULL, 1, DB_POOL_MAX),                  \
		CFG_INT(s, "DB_POOL_WAIT_MS", m.db_pool_wait_ms, "1000", 0, 600000),               \
		CFG_INT(s, "MAX_BODY_BYTES", m.max_body, "65536", 1024, 16777216),                 \
		CFG_INT(s, "HEADER_TIMEOUT_MS", m.header_timeout_ms, "5000", 100, 600000),         \
		CFG_INT(s, "MIGRATION_TIMEOUT_MS", m.migration_timeout_ms, "600000", 1000,         \
	                86400000),                                                                 \
		CFG_STR(s, "CORS_ORIGINS", m.cors_origins, "", 0, 4096),                           \
		CFG_INT(s, "HEALTH_CHECK_INTERVAL_MS", m.health_interval_ms, "2000", 1000,         \
	                600000),                                                                   \
		CFG_INT(s, "DRAIN_DELAY_MS", m.drain_delay_ms, "0", 0, 600000),                    \
		CFG_STR(s, "KAFKA_SECURITY_PROTOCOL", m.kafka_security_protocol, "", 0, 32),       \
		CFG_STR(s, "KAFKA_SASL_MECHANISM", m.kafka_sasl_mechanism, "", 0, 32),             \
		CFG_STR(s, "KAFKA_SASL_USERNAME", m.kafka_sasl_username, "", 0, 1024),             \
		CFG_STR(s, "KAFKA_SASL_PASSWORD", m.kafka_sasl_password, "", 0, 4096),             \
		CFG_STR(s, "KAFKA_SSL_CA_LOCATION", m.kafka_ssl_ca_location, "", 0, 4096),         \
		CFG_STR(s, "KAFKA_SSL_CERTIFICATE_LOCATION", m.kafka_ssl_certificate_location, "", \
	                0, 4096),                                                                  \
		CFG_STR(s, "KAFKA_SSL_KEY_LOCATION", m.kafka_ssl_key_location, "", 0, 4096),       \
		CFG_STR(s, "KAFKA_SSL_KEY_PASSWORD", m.kafka_ssl_key_password, "", 0, 4096),       \
		CFG_INT(s, "SWEEP_INTERVAL_SECONDS", m.sweep_interval_s, "300", 0, 86400),         \
		CFG_INT(s, "SWEEP_BATCH_ROWS", m.sweep_batch, "500", 1, 100000),                   \
		CFG_INT(s, "OUTBOX_RETENTION_SECONDS", m.outbox_retention_s, "604800", 0,          \
	                315360000)

/* Loads the table; on failure prints "<service>: <reason>" on stderr and exits with 2.
 * Then validates LOG_LEVEL, sets up logging, jansson, libcurl and the database layer, blocks
 * SIGTERM/SIGINT in this thread (so in every thread started later; svc_wait_signal() takes
 * them) and ignores SIGPIPE. */
void svc_init(const char *service, const struct cfg_table *table, void *cfg,
              const struct svc_config *common);

/* Applies the shared library's migrations (the outbox, token_revocations and deliveries tables;
 * recorded in common_schema_migrations), then the service's m[0..n) (recorded in schema_migrations), once,
 * bounded by MIGRATION_TIMEOUT_MS per statement and for the wait for another replica's
 * migration; SIGTERM/SIGINT end that wait.  m is borrowed.  false + a one-line reason in err
 * on failure.  Call after svc_init(), on the thread that waits for signals. */
bool svc_migrate_schema(const struct db_migration *m, size_t n, char *err, size_t errlen);

/* svc_migrate_schema(), retried every second while the database is unreachable.  Returns 1 when
 * done, 0 when a stop signal arrived first, -1 when a migration itself failed or timed out
 * (logged). */
int svc_migrate(const struct db_migration *m, size_t n);

/* Waits for SIGTERM or SIGINT; returns the signal number.  timeout_ms < 0 waits for ever;
 * otherwise returns 0 when nothing arrived in time. */
int svc_wait_signal(long timeout_ms);

/* Whether migrations finished (for /ready). */
bool svc_migrated(void);

/* What a service daemon consists of, for svc_serve().  Everything is borrowed. */
struct svc_service {
	const char *name;
	const struct svc_config *cfg;
	const struct auth_config *auth;
	const struct http_route *routes;
	size_t nroutes;
	const struct health_check *extra_checks; /* besides database and kafka; may be NULL */
	size_t nextra_checks;
	const struct db_migration *migrations;
	size_t nmigrations;
	/* Optional: runs once the migrations are applied, before the outbox publisher starts; a
	 * database that is away is waited for (as for the migrations), any other failure is logged
	 * and the service goes on.  E.g. room-service's re-publication of every room once after an
	 * upgrade. */
	enum db_status (*after_migrations)(void);
	/* Optional: called as soon as the stop signal arrives, before the drain, to tell the
	 * service's own background work to end (it is joined after svc_serve returns). */
	void (*on_stop)(void);
	const char *openapi;             /* the OpenAPI document served at /openapi.json */
	const char *rate_limit_prefix;   /* e.g. "/auth/"; NULL = no rate limit */
	long long rate_limit_per_minute; /* per client address; 0 = off */
	/* Routes under rate_limit_prefix with a limit of their own (http.h): patterns,
	 * NULL-terminated, may be NULL; per client address, 0 = off. */
	const char *const *rate_limit_routes;
	long long rate_limit_routes_per_minute;
	const char
		*trusted_gateways; /* peers whose X-Real-IP is the client (http.h); may be NULL */
	void (*route_matched)(struct req *r, const char *pattern); /* http.h; may be NULL */
	long long outbox_lock_key; /* tells this service's replicas apart from others */
	/* Optional consumer, started once the schema exists: topics (NULL-terminated) in group,
	 * each message handed to consume(…, consume_arg, …); unusable ones go to <topic>.dlq. */
	const char *const *consume_topics;
	const char *consumer_group;
	kafka_handler_fn consume;
	void *consume_arg;
	/* The service's own tables for the sweeper (the outbox's is added by svc_serve); may be
	 * NULL when nsweeps is 0. */
	const struct sweep_table *sweeps;
	size_t nsweeps;
};

/* Serves until SIGTERM/SIGINT: creates the Kafka producer when KAFKA_BROKER_URL is set (without
 * it events wait in the outbox; every Kafka client gets the KAFKA_SECURITY_PROTOCOL, KAFKA_SASL_*
 * and KAFKA_SSL_* settings), starts the background health checks (database + kafka + extra
 * checks, every HEALTH_CHECK_INTERVAL_MS) and HTTP (routes, /health from the checks' last
 * results, /ready, /metrics with the outbox gauges), applies the migrations (retrying while the
 * database is away), then starts the token revocation cache (revoke.h), the outbox publisher,
 * the consumer and the sweeper (sent outbox rows and the service's sweeps) and waits for the
 * signal.  Then drains: /ready answers 503 while everything else is still served for
 * DRAIN_DELAY_MS (a second signal cuts this short), then stops HTTP (in-flight requests
 * finish), the health checks, the revocation cache, the sweeper, the consumer and the
 * publisher, flushes and frees the producer.  Returns the process exit code (2 for an
 * unusable Kafka configuration). */
int svc_serve(const struct svc_service *s);

/* Releases what svc_init set up and the configuration strings: the last call of main(). */
void svc_exit(const struct cfg_table *table, void *cfg);

/* The access-token settings of a service's configuration (pointers into cfg). */
struct auth_config svc_auth(const struct svc_config *cfg);

#endif
