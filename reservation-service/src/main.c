/* reservation-service: configuration, wiring, signals, start and stop. */
#include <stddef.h>
#include <stdio.h>

#include "events.h"
#include "handlers.h"
#include "kafka.h"
#include "routes.h"
#include "svc.h"

#define SERVICE "reservation-service"
#define OUTBOX_LOCK_KEY 5002

extern const struct db_migration service_migrations[];
extern const size_t service_migrations_count;
extern const char service_openapi[];

struct reservation_config {
	struct svc_config common;
	char *room_events_topic, *user_events_topic, *reservation_events_topic, *consumer_group;
	long long min_minutes, max_minutes, horizon_days;
};

static const struct cfg_param reservation_params[] = {
	SVC_COMMON_PARAMS(struct reservation_config, common, "5002"),
	{"KAFKA_BROKER_URL", CFG_STRING, NULL, 1, 4096, true,
	 offsetof(struct reservation_config, common.kafka_broker_url)},
	{"ROOM_EVENTS_TOPIC", CFG_STRING, "room_events", 1, 249, false,
	 offsetof(struct reservation_config, room_events_topic)},
	{"USER_EVENTS_TOPIC", CFG_STRING, "user_events", 1, 249, false,
	 offsetof(struct reservation_config, user_events_topic)},
	{"RESERVATION_EVENTS_TOPIC", CFG_STRING, "reservation_events", 1, 249, false,
	 offsetof(struct reservation_config, reservation_events_topic)},
	{"KAFKA_CONSUMER_GROUP", CFG_STRING, "reservation-service", 1, 249, false,
	 offsetof(struct reservation_config, consumer_group)},
	{"MIN_DURATION_MINUTES", CFG_INT, "5", 1, 1440, false,
	 offsetof(struct reservation_config, min_minutes)},
	{"MAX_DURATION_MINUTES", CFG_INT, "1440", 1, 44640, false,
	 offsetof(struct reservation_config, max_minutes)},
	{"BOOKING_HORIZON_DAYS", CFG_INT, "365", 1, 3650, false,
	 offsetof(struct reservation_config, horizon_days)},
};

int main(int argc, char **argv)
{
	static struct reservation_config cfg;
	(void)argv;

	svc_init(SERVICE, reservation_params,
	         sizeof reservation_params / sizeof reservation_params[0], &cfg, &cfg.common);
	if (argc > 1) {
		fprintf(stderr, "usage: " SERVICE " (configured by environment variables)\n");
		return 2;
	}
	if (cfg.min_minutes > cfg.max_minutes) {
		fprintf(stderr, SERVICE ": MIN_DURATION_MINUTES must not exceed MAX_DURATION_MINUTES\n");
		return 2;
	}
	struct auth_config auth = svc_auth(&cfg.common);
	struct res_rules rules = {cfg.min_minutes, cfg.max_minutes, cfg.horizon_days,
	                          cfg.reservation_events_topic};
	handlers_init(&rules);
	struct events_topics topics = {cfg.room_events_topic, cfg.user_events_topic,
	                               cfg.reservation_events_topic};
	const char *consume[] = {cfg.room_events_topic, cfg.user_events_topic, NULL};
	struct svc_service service = {
		.name = SERVICE,
		.cfg = &cfg.common,
		.auth = &auth,
		.routes = reservation_routes,
		.nroutes = reservation_routes_count,
		.migrations = service_migrations,
		.nmigrations = service_migrations_count,
		.openapi = service_openapi,
		.outbox_lock_key = OUTBOX_LOCK_KEY,
		.consume_topics = consume,
		.consumer_group = cfg.consumer_group,
		.consume = events_handle,
		.consume_arg = &topics,
	};
	int rc = svc_serve(&service);
	svc_exit(reservation_params, sizeof reservation_params / sizeof reservation_params[0], &cfg);
	return rc;
}
