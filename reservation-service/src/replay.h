/* replay: how reservation-service fills in the room details its copy lacks.  Rooms copied before
 * equipment, building and floor were kept get them from room-service's one-time re-publication;
 * when a reservation-service of the previous release consumed those events (room-service
 * upgraded first) they passed this release by.  So, once after the migrations and only while
 * such rooms exist, room_events is read again from its start on a thread of its own and every
 * event handed to res_events_handle, which is idempotent: an old event changes nothing newer
 * (docs/operations.md#upgrading-to-room-search). */
#ifndef RES_REPLAY_H
#define RES_REPLAY_H

#include "db.h"

struct res_events_topics;
struct res_replay;

struct res_replay_config {
	const char *brokers;              /* KAFKA_BROKER_URL; NULL or "" = no replay */
	const char *group;                /* the consumer group: its id only (kafka_replay) */
	struct res_events_topics *topics; /* res_events_handle's argument; rooms is read */
	long long timeout_ms;             /* the replay's bound; 0 = no replay */
};

/* Logs a warning with the count of rooms whose policies are not known (not replayed: the
 * events that lack them cannot fill them in), with the operator's way out.  Counts the rooms
 * without details (not deleted).  When there are any, starts the replay in the
 * background (*out receives it, for res_replay_stop()) or, when there is no replay, logs how to
 * have room-service publish them again.  The thread logs the outcome: one info line (events
 * applied again, rooms still without details), a warn when it ended early, and that advice
 * while rooms still lack details.  Returns the count's status (a database that is away: nothing
 * started, call again).  cfg is borrowed until res_replay_stop().  Not thread-safe. */
enum db_status res_replay_start(const struct res_replay_config *cfg, struct res_replay **out);

/* Asks the replay to end soon (thread-safe; NULL: nothing); res_replay_stop() still joins it. */
void res_replay_signal(struct res_replay *r);

/* Stops the replay if it still runs, waits for its thread and frees r (NULL: nothing). */
void res_replay_stop(struct res_replay *r);

#endif
