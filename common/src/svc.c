#include "svc.h"

#include <errno.h>
#include <malloc.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>
#include <jansson.h>

#include "countof.h"
#include "deliver.h"
#include "health.h"
#include "kafka.h"
#include "log.h"
#include "metrics.h"
#include "outbox.h"
#include "ratelimit.h"
#include "revoke.h"
#include "sweep.h"

static _Atomic bool svc_migrations_done;
static int svc_migration_timeout_ms;

/* The shared library's own tables, applied before each service's migrations and recorded in a
 * ledger of their own, so that their versions never mix with a service's.  Append only. */
static const struct db_migration svc_common_migrations[] = {
	{1, "001_outbox", outbox_schema_sql},
	{2, "002_token_revocations", revoke_schema_sql},
	{3, "003_revoke_guard", revoke_guard_schema_sql},
	{4, "004_deliveries", deliver_schema_sql},
	{5, "005_deliveries_leases", deliver_leases_schema_sql},
	{6, "006_delivery_targets", deliver_targets_schema_sql},
	{7, "007_deliveries_claim", deliver_claim_schema_sql},
	{8, "008_deliveries_record", deliver_record_schema_sql},
};

/* Blocks of at least this many bytes get their own mapping, returned to the system when freed.
 * glibc's threshold starts at 128 KB but rises to the size of each such block freed (up to 32
 * MB): after the first large reply every later one came from the heap arenas of the worker
 * threads, which keep what they held at the busiest moment (bench/README.md#memory-peak-rss).
 * GLIBC_TUNABLES' glibc.malloc.mmap_threshold or MALLOC_MMAP_THRESHOLD_, when set, rules. */
#define SVC_MMAP_THRESHOLD (128 * 1024)

/* Whether the environment sets a malloc parameter itself: as a GLIBC_TUNABLES tunable or as
 * its older MALLOC_* variable. */
static bool svc_malloc_env_sets(const char *tunable, const char *variable)
{
	const char *tunables = getenv("GLIBC_TUNABLES");
	return (tunables && strstr(tunables, tunable)) || getenv(variable);
}

static void svc_malloc_configure(void)
{
	if (!svc_malloc_env_sets("glibc.malloc.mmap_threshold", "MALLOC_MMAP_THRESHOLD_"))
		(void)mallopt(M_MMAP_THRESHOLD, SVC_MMAP_THRESHOLD);
	/* One heap arena per CPU the process may run on (at least two, at most eight) instead of
	 * glibc's eight per core: no more threads than that run at once, and each arena keeps the
	 * free memory of its busiest moment; with 300 worker threads spread over 16 arenas that
	 * residue was ~4-5 MB of a service's peak (bench/README.md#memory-peak-rss).  The CPUs
	 * counted are the affinity mask's, not a container's CPU quota, hence the ceiling.
	 * GLIBC_TUNABLES' glibc.malloc.arena_max or MALLOC_ARENA_MAX, when set, rule. */
	if (!svc_malloc_env_sets("glibc.malloc.arena_max", "MALLOC_ARENA_MAX")) {
		cpu_set_t cpus;
		int n = sched_getaffinity(0, sizeof cpus, &cpus) == 0 ? CPU_COUNT(&cpus) : 2;
		(void)mallopt(M_ARENA_MAX, n < 2 ? 2 : n > 8 ? 8 : n);
	}
}

void svc_init(const char *service, const struct cfg_table *table, void *cfg,
              const struct svc_config *common)
{
	svc_malloc_configure();
	char err[256];
	enum log_level level;
	if (!cfg_load(table, cfg, err, sizeof err)) {
		fprintf(stderr, "%s: %s\n", service, err);
		exit(2);
	}
	if (!log_level_parse(common->log_level, &level)) {
		fprintf(stderr, "%s: LOG_LEVEL must be debug, info, warn or error\n", service);
		exit(2);
	}
	log_init(service, level);
	/* Gone in issue 18: civetweb 1.15 has one timeout for the header, a stalled body and a
	 * stalled write, now HEADER_TIMEOUT_MS (docs/operations.md#connections-and-timeouts). */
	if (getenv("REQUEST_TIMEOUT_MS"))
		log_warn("REQUEST_TIMEOUT_MS has no effect any more: see HEADER_TIMEOUT_MS");
	json_object_seed(0);
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		fprintf(stderr, "%s: libcurl initialisation failed\n", service);
		exit(1);
	}
	db_configure(common->database_url, service, 10000);
	db_pool_configure((int)common->db_pool_size, (int)common->db_pool_wait_ms);
	log_info("database pool: up to %d connections, a request waits up to %lld ms for one",
	         db_pool_size(), common->db_pool_wait_ms);
	svc_migration_timeout_ms = (int)common->migration_timeout_ms;

	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);
}

int svc_wait_signal(long timeout_ms)
{
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	for (;;) {
		int sig;
		if (timeout_ms < 0) {
			if (sigwait(&set, &sig) == 0)
				return sig;
			continue;
		}
		struct timespec ts = {timeout_ms / 1000, (timeout_ms % 1000) * 1000000L};
		sig = sigtimedwait(&set, NULL, &ts);
		if (sig > 0)
			return sig;
		if (errno == EAGAIN)
			return 0;
	}
}

/* db_migrate's pause while another replica holds the migration lock: a stop signal ends it
 * (and is remembered, so that svc_migrate reports a stop rather than a failure). */
static _Atomic bool svc_migration_stopped;
static bool svc_migration_wait(long ms)
{
	if (svc_wait_signal(ms) <= 0)
		return false;
	svc_migration_stopped = true;
	return true;
}

bool svc_migrate_schema(const struct db_migration *m, size_t n, char *err, size_t errlen)
{
	const struct db_migration_set sets[] = {
		{"common_schema_migrations", svc_common_migrations, countof(svc_common_migrations)},
		{"schema_migrations", m, n},
	};
	return db_migrate(sets, countof(sets), svc_migration_timeout_ms, svc_migration_wait, err,
	                  errlen);
}

/* Runs a service's after_migrations step: 1 when done (or failed for good, logged), 0 when a
 * signal came while the database was away. */
static int svc_after_migrations(enum db_status (*step)(void))
{
	bool warned = false;
	for (;;) {
		enum db_status st = step();
		if (st == DB_OK)
			return 1;
		if (db_err_kind(st) != ERR_UNAVAILABLE) {
			log_error("after the migrations: %s", db_status_str(st));
			return 1;
		}
		if (!warned)
			log_warn("after the migrations, waiting for the database: %s",
			         db_status_str(st));
		warned = true;
		if (svc_wait_signal(1000) > 0)
			return 0;
	}
}

int svc_migrate(const struct db_migration *m, size_t n)
{
	char err[512];
	bool warned = false;
	for (;;) {
		if (svc_migrate_schema(m, n, err, sizeof err)) {
			svc_migrations_done = true;
			log_info("database schema up to date (%zu migrations)", n);
			return 1;
		}
		if (svc_migration_stopped) {
			log_info("signal: %s", err);
			return 0;
		}
		double ms;
		if (db_ping(&ms)) {
			/* Reachable but the migration failed: a bug or a broken schema. */
			log_error("%s", err);
			return -1;
		}
		if (!warned)
			log_warn("waiting for the database: %s", err);
		warned = true;
		if (svc_wait_signal(1000) > 0)
			return 0;
	}
}

bool svc_migrated(void)
{
	return svc_migrations_done;
}

#define SVC_MAX_CHECKS 8
#define SVC_MAX_SWEEPS 8

static struct kafka_producer *svc_kafka;
static _Atomic(struct outbox *) svc_outbox; /* read by the /metrics gauge */

/* The checks every service has.  They run on the health module's threads (health.h); the
 * database check borrows a pooled connection like a request. */
static enum health_state svc_check_database(char *detail, size_t size)
{
	double ms;
	if (db_ping(&ms))
		return HEALTH_OK;
	snprintf(detail, size, "database unreachable");
	return HEALTH_DOWN;
}

static enum health_state svc_check_kafka(char *detail, size_t size)
{
	if (!svc_kafka) {
		snprintf(detail, size, "KAFKA_BROKER_URL not set: events wait in the outbox");
		return HEALTH_DEGRADED;
	}
	if (kafka_producer_ping(svc_kafka, 1000))
		return HEALTH_OK;
	snprintf(detail, size, "broker unreachable: events wait in the outbox");
	return HEALTH_DEGRADED;
}

static bool svc_ready(void)
{
	double ms;
	return svc_migrated() && db_ping(&ms);
}

static double svc_outbox_leader(void)
{
	return outbox_leading(svc_outbox) ? 1 : 0;
}

/* The Kafka security settings of the configuration, for kafka_configure() (kept for the
 * process's life: the clients read them when they are created). */
static void svc_kafka_configure(const struct svc_config *c)
{
	const struct kafka_property props[] = {
		{"security.protocol", c->kafka_security_protocol, false},
		{"sasl.mechanism", c->kafka_sasl_mechanism, false},
		{"sasl.username", c->kafka_sasl_username, false},
		{"sasl.password", c->kafka_sasl_password, true},
		{"ssl.ca.location", c->kafka_ssl_ca_location, false},
		{"ssl.certificate.location", c->kafka_ssl_certificate_location, false},
		{"ssl.key.location", c->kafka_ssl_key_location, false},
		{"ssl.key.password", c->kafka_ssl_key_password, true},
	};
	static struct kafka_property kept[countof(props)];
	memcpy(kept, props, sizeof props);
	kafka_configure(kept, countof(kept));
}

/* The sweeper: sent outbox rows (OUTBOX_RETENTION_SECONDS), token revocations that can void no
 * live token any more, and the service's own tables. */
static struct sweep *svc_sweep_start(const struct svc_service *s)
{
	struct sweep_table tables[SVC_MAX_SWEEPS] = {
		{"outbox", outbox_sweep_sql, s->cfg->outbox_retention_s},
		{"token_revocations", revoke_sweep_sql, REVOKE_RETENTION_S},
	};
	size_t n = 2;
	for (size_t i = 0; i < s->nsweeps && n < SVC_MAX_SWEEPS; i++)
		tables[n++] = s->sweeps[i];
	return sweep_start(tables, n, s->cfg->sweep_interval_s, s->cfg->sweep_batch);
}

struct auth_config svc_auth(const struct svc_config *cfg)
{
	return (struct auth_config){cfg->jwt_secret, cfg->jwt_issuer, cfg->access_ttl};
}

/* After the stop signal: /ready answers 503 at once, so that load balancers stop sending, but
 * requests are still served for drain_ms (they may still be routed here while the endpoint
 * removal spreads); a second signal ends the wait early. */
static void svc_drain(struct http_server *srv, long long drain_ms)
{
	http_drain(srv);
	if (drain_ms <= 0)
		return;
	log_info("draining: /ready answers 503, requests are served for %lld ms more", drain_ms);
	if (svc_wait_signal((long)drain_ms) > 0)
		log_info("second signal: ending the drain delay early");
}

int svc_serve(const struct svc_service *s)
{
	char err[256];
	int rc = 0;
	struct outbox *outbox = NULL;
	struct sweep *sweep = NULL;
	struct kafka_consumer *consumer = NULL;
	struct kafka_producer *producer = NULL;
	struct health *health = NULL;
	static struct health_check checks[SVC_MAX_CHECKS] = {
		{"database", true, svc_check_database},
		{"kafka", false, svc_check_kafka},
	};
	size_t nchecks = 2;
	for (size_t i = 0; i < s->nextra_checks && nchecks < SVC_MAX_CHECKS; i++)
		checks[nchecks++] = s->extra_checks[i];
	if (s->cfg->kafka_broker_url && s->cfg->kafka_broker_url[0]) {
		svc_kafka_configure(s->cfg);
		producer = kafka_producer_new(s->cfg->kafka_broker_url, s->name, err, sizeof err);
		if (!producer) {
			fprintf(stderr, "%s: %s\n", s->name, err);
			return 2;
		}
	} else {
		log_warn("KAFKA_BROKER_URL is not set: events wait in the outbox");
	}
	svc_kafka = producer;
	metrics_register_gauge("outbox_backlog", "Outbox rows not yet published.", outbox_backlog);
	metrics_register_gauge("outbox_oldest_pending_age_seconds",
	                       "Seconds since the oldest outbox row not yet published was written "
	                       "(0: none).",
	                       outbox_oldest_age);
	metrics_register_gauge("token_revocation_cache_age_seconds",
	                       "Seconds since the token revocation cache was read from the "
	                       "database (-1: never).",
	                       revoke_age_seconds);
	metrics_register_gauge("outbox_leader",
	                       "1 while this instance's outbox publisher holds the publisher lock.",
	                       svc_outbox_leader);
	/* Before HTTP, so that the first /health already has results. */
	health = health_start(checks, nchecks, s->cfg->health_interval_ms, err, sizeof err);
	if (!health) {
		fprintf(stderr, "%s: %s\n", s->name, err);
		kafka_producer_free(producer, 0);
		return 1;
	}
	struct http_options opts = {
		.service = s->name,
		.port = s->cfg->port,
		.num_threads = s->cfg->num_threads,
		.max_body = s->cfg->max_body,
		.header_timeout_ms = s->cfg->header_timeout_ms,
		.cors_origins = s->cfg->cors_origins,
		.auth = s->auth,
		.routes = s->routes,
		.nroutes = s->nroutes,
		.health = health,
		.ready = svc_ready,
		.openapi = s->openapi,
		.rate_limit_prefix = s->rate_limit_prefix,
		.rate_limit_routes = s->rate_limit_routes,
		.trusted_gateways = s->trusted_gateways,
		.route_matched = s->route_matched,
	};
	if (s->rate_limit_prefix && s->rate_limit_per_minute > 0)
		opts.rate_limit = ratelimit_new((unsigned)s->rate_limit_per_minute);
	if (s->rate_limit_routes && s->rate_limit_routes_per_minute > 0)
		opts.route_rate_limit = ratelimit_new((unsigned)s->rate_limit_routes_per_minute);
	struct http_server *srv = http_start(&opts, err, sizeof err);
	if (!srv) {
		fprintf(stderr, "%s: %s\n", s->name, err);
		ratelimit_free(opts.rate_limit);
		ratelimit_free(opts.route_rate_limit);
		health_free(health);
		kafka_producer_free(producer, 0);
		return 1;
	}
	log_info("listening on port %lld", s->cfg->port);
	int migrated = svc_migrate(s->migrations, s->nmigrations);
	if (migrated > 0 && s->after_migrations)
		migrated = svc_after_migrations(s->after_migrations);
	if (migrated > 0) {
		/* The revocation cache, the publisher and the consumer need the tables the migrations
		 * create. */
		if (!revoke_start()) {
			log_error("cannot start the token revocation thread");
			rc = 1;
		}
		if (producer) {
			outbox = outbox_start(producer, s->outbox_lock_key);
			svc_outbox = outbox;
		}
		sweep = svc_sweep_start(s);
		if (s->consume && producer) {
			/* The handlers run on the consumer's thread and use its database
			 * connection (db.h), which closes when that thread ends. */
			consumer = kafka_consumer_start(s->cfg->kafka_broker_url, s->consumer_group,
			                                s->consume_topics, s->consume,
			                                s->consume_arg, db_thread_close, producer,
			                                err, sizeof err);
			if (!consumer) {
				log_error("%s", err);
				rc = 1;
			}
		}
		if (rc == 0) {
			int sig = svc_wait_signal(-1);
			log_info("signal %d: shutting down", sig);
			if (s->on_stop)
				s->on_stop();
		}
	} else if (migrated < 0) {
		rc = 1;
	}
	/* Only a service that was serving waits: one that never became ready got no traffic. */
	svc_drain(srv, migrated > 0 && rc == 0 ? s->cfg->drain_delay_ms : 0);
	/* A check in progress finishes while HTTP stops; the join below then rarely waits. */
	health_stop(health);
	http_stop(srv);
	health_free(health);
	revoke_stop();
	ratelimit_free(opts.rate_limit);
	ratelimit_free(opts.route_rate_limit);
	sweep_stop(sweep);
	kafka_consumer_stop(consumer);
	svc_outbox = NULL;
	outbox_stop(outbox);
	svc_kafka = NULL;
	/* A short flush: unsent rows stay in the outbox, and SIGTERM must end within 10 s. */
	kafka_producer_free(producer, 1000);
	log_info("stopped");
	return rc;
}

void svc_exit(const struct cfg_table *table, void *cfg)
{
	db_thread_close();
	db_pool_close();
	cfg_free(table, cfg);
	curl_global_cleanup();
}
