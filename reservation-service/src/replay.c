#include "replay.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>

#include "events.h"
#include "kafka.h"
#include "log.h"
#include "repo.h"
#include "timefmt.h"

struct res_replay {
	const struct res_replay_config *cfg; /* borrowed */
	pthread_t thread;
	_Atomic bool stop;
};

/* n rooms lack details after what happened (why): the operator's way out. */
static void replay_advise(long long n, const char *why)
{
	log_warn("%lld room(s) lack equipment, building and floor (copied before they were kept; "
	         "%s); room searches list them as unknown until room-service publishes them "
	         "again: INSERT INTO room_republish DEFAULT VALUES in room-service's database and "
	         "restart it (docs/operations.md#upgrading-to-room-search)",
	         n, why);
}

static void *replay_main(void *arg)
{
	struct res_replay *r = arg;
	const struct res_replay_config *cfg = r->cfg;
	const char *topic = cfg->topics->rooms;
	struct kafka_replay_stats stats;
	char err[256] = "";
	long long left = 0;
	long long started = timefmt_mono_ms();
	bool done = kafka_replay(cfg->brokers, cfg->group, topic, res_events_handle, cfg->topics,
	                         &r->stop, cfg->timeout_ms, &stats, err, sizeof err);
	if (r->stop) {
		/* The next start replays again while rooms lack details. */
		log_info("replay of %s stopped at shutdown after %llu event(s) applied again",
		         topic, stats.applied);
		goto out;
	}
	enum db_status st = res_repo_rooms_without_details(&left);
	if (done)
		log_info(
			"%s replayed: %llu event(s) applied again (%llu unusable skipped) from %zu "
			"partition(s) in %lld ms; %lld room(s) still without details",
			topic, stats.applied, stats.skipped, stats.partitions,
			timefmt_mono_ms() - started, st == DB_OK ? left : -1LL);
	else
		log_warn("replay of %s ended early: %s; %llu event(s) applied again", topic, err,
		         stats.applied);
	if (st != DB_OK)
		log_warn("rooms without details not counted after the replay: %s",
		         db_status_str(st));
	else if (left > 0)
		replay_advise(left, done ? "the room events still on the topic have none"
		                         : "the replay of room events did not finish");
out:
	db_thread_close();
	return NULL;
}

enum db_status res_replay_start(const struct res_replay_config *cfg, struct res_replay **out)
{
	long long n = 0;
	*out = NULL;
	/* Rules are not replayed (the events of an older room-service have none): a warning with
	 * the operator's way out (review 15a L8). */
	enum db_status st = res_repo_rooms_without_policies(&n);
	if (st != DB_OK)
		return st;
	if (n > 0)
		log_warn(
			"%lld room(s) have no known policies (last changed by a room-service "
			"without them, or copied before migration 018): they are booked without "
			"rules until room-service publishes them again: INSERT INTO room_republish "
			"DEFAULT VALUES in room-service's database and restart it "
			"(docs/operations.md#upgrading-to-room-policies)",
			n);
	n = 0;
	st = res_repo_rooms_without_details(&n);
	if (st != DB_OK || n == 0)
		return st;
	if (!cfg->brokers || !cfg->brokers[0] || cfg->timeout_ms <= 0) {
		replay_advise(n, "no replay of room events configured");
		return DB_OK;
	}
	struct res_replay *r = calloc(1, sizeof *r);
	if (!r) {
		replay_advise(n, "no memory for the replay of room events");
		return DB_OK;
	}
	r->cfg = cfg;
	log_info("%lld room(s) lack equipment, building and floor: replaying %s in the background "
	         "(at most %lld s)",
	         n, cfg->topics->rooms, cfg->timeout_ms / 1000);
	if (pthread_create(&r->thread, NULL, replay_main, r) != 0) {
		free(r);
		replay_advise(n, "the replay of room events could not start");
		return DB_OK;
	}
	*out = r;
	return DB_OK;
}

void res_replay_signal(struct res_replay *r)
{
	if (r)
		r->stop = true;
}

void res_replay_stop(struct res_replay *r)
{
	if (!r)
		return;
	r->stop = true;
	pthread_join(r->thread, NULL);
	free(r);
}
