/* room-service: configuration, wiring, signals, start and stop. */
#include <stddef.h>
#include <stdio.h>

#include "cache.h"
#include "countof.h"
#include "embedded.h"
#include "handlers.h"
#include "log.h"
#include "repo.h"
#include "revoke.h"
#include "routes.h"
#include "svc.h"

#define SERVICE "room-service"
#define OUTBOX_LOCK_KEY 5001

struct room_config {
	struct svc_config common;
	char *room_events_topic, *user_events_topic, *consumer_group;
	long long cache_max_entries, cache_max_bytes;
};

#define ROOM_CFG struct room_config
static const struct cfg_param room_params[] = {
	SVC_COMMON_PARAMS(ROOM_CFG, common, "5001"),
	CFG_REQUIRED_STR(ROOM_CFG, "KAFKA_BROKER_URL", common.kafka_broker_url, 1, 4096),
	CFG_STR(ROOM_CFG, "ROOM_EVENTS_TOPIC", room_events_topic, "room_events", 1, 249),
	CFG_STR(ROOM_CFG, "USER_EVENTS_TOPIC", user_events_topic, "user_events", 1, 249),
	/* Not KAFKA_CONSUMER_GROUP, which names reservation-service's group in a shared
	 * configuration (the chart's ConfigMap): one group per consuming service. */
	CFG_STR(ROOM_CFG, "ROOM_CONSUMER_GROUP", consumer_group, "room-service", 1, 249),
	/* The room cache (cache.h); 0 entries = no cache. */
	CFG_INT(ROOM_CFG, "ROOM_CACHE_MAX_ENTRIES", cache_max_entries, "4096", 0, 1000000),
	CFG_INT(ROOM_CFG, "ROOM_CACHE_MAX_BYTES", cache_max_bytes, "16777216", 65536, 1073741824),
};
#undef ROOM_CFG

static const struct cfg_table room_config_table = {
	.params = room_params,
	.nparams = countof(room_params),
};

static const char *room_events_topic;

/* After an upgrade: every room once more on room_events (migration 003). */
static enum db_status republish_rooms(void)
{
	long published = 0;
	enum db_status st = room_repo_republish_requested(room_events_topic, &published);
	if (st == DB_OK && published > 0)
		log_info("%ld room(s) published again for reservation-service's copy", published);
	return st;
}

int main(int argc, char **argv)
{
	static struct room_config cfg;
	int rc = 0;
	(void)argv;

	svc_init(SERVICE, &room_config_table, &cfg, &cfg.common);
	if (argc > 1) {
		fprintf(stderr, "usage: " SERVICE " (configured by environment variables)\n");
		return 2;
	}
	/* The room list's best plan depends on q (a rare substring: the trigram indexes; a common
	 * one: the order index, stopping at the page's end), so its prepared statements are planned
	 * for their values every time, never switched to a generic plan that fits one kind
	 * (docs/architecture.md#threads-and-connections). */
	db_configure_setting("plan_cache_mode", "force_custom_plan");
	struct auth_config auth = svc_auth(&cfg.common);
	room_handlers_init(cfg.room_events_topic);
	room_events_topic = cfg.room_events_topic;
	/* Its own application_name, so that an operator (and a test) can find the session. */
	if (!room_cache_start(SERVICE " cache listener", cfg.cache_max_entries,
	                      cfg.cache_max_bytes)) {
		fprintf(stderr, SERVICE ": cannot start the room cache\n");
		svc_exit(&room_config_table, &cfg);
		return 1;
	}
	/* user_events only feed the token revocations (revoke.h). */
	const char *consume[] = {cfg.user_events_topic, NULL};
	struct svc_service service = {
		.name = SERVICE,
		.cfg = &cfg.common,
		.auth = &auth,
		.routes = room_routes,
		.nroutes = room_routes_count,
		.migrations = service_migrations,
		.nmigrations = service_migrations_count,
		.after_migrations = republish_rooms,
		.openapi = service_openapi,
		.outbox_lock_key = OUTBOX_LOCK_KEY,
		.consume_topics = consume,
		.consumer_group = cfg.consumer_group,
		.consume = revoke_consume,
	};
	rc = svc_serve(&service);
	room_cache_stop();
	svc_exit(&room_config_table, &cfg);
	return rc;
}
