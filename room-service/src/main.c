/* room-service: configuration, wiring, signals, start and stop. */
#include <stddef.h>
#include <stdio.h>

#include "handlers.h"
#include "routes.h"
#include "svc.h"

#define SERVICE "room-service"
#define OUTBOX_LOCK_KEY 5001

extern const struct db_migration service_migrations[];
extern const size_t service_migrations_count;
extern const char service_openapi[];

struct room_config {
	struct svc_config common;
	char *room_events_topic;
};

static const struct cfg_param room_params[] = {
	SVC_COMMON_PARAMS(struct room_config, common, "5001"),
	{"KAFKA_BROKER_URL", CFG_STRING, NULL, 1, 4096, true,
	 offsetof(struct room_config, common.kafka_broker_url)},
	{"ROOM_EVENTS_TOPIC", CFG_STRING, "room_events", 1, 249, false,
	 offsetof(struct room_config, room_events_topic)},
};

int main(int argc, char **argv)
{
	static struct room_config cfg;
	int rc = 0;
	(void)argv;

	svc_init(SERVICE, room_params, sizeof room_params / sizeof room_params[0], &cfg,
	         &cfg.common);
	if (argc > 1) {
		fprintf(stderr, "usage: " SERVICE " (configured by environment variables)\n");
		return 2;
	}
	struct auth_config auth = svc_auth(&cfg.common);
	handlers_init(cfg.room_events_topic);
	struct svc_service service = {
		.name = SERVICE,
		.cfg = &cfg.common,
		.auth = &auth,
		.routes = room_routes,
		.nroutes = room_routes_count,
		.migrations = service_migrations,
		.nmigrations = service_migrations_count,
		.openapi = service_openapi,
		.outbox_lock_key = OUTBOX_LOCK_KEY,
	};
	rc = svc_serve(&service);
	svc_exit(room_params, sizeof room_params / sizeof room_params[0], &cfg);
	return rc;
}
