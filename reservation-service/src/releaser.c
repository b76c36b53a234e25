#include "releaser.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

#include "clock.h"
#include "countof.h"
#include "db.h"
#include "log.h"
#include "metrics.h"
#include "periodic.h"
#include "repo.h"

/* Rows of each kind (no-shows, unapproved) one statement releases at most: a batch's locks
 * are held briefly. */
#define RELEASE_BATCH 200

static const char release_metric[] = "reservations_released_total";
static const char release_metric_help[] =
	"Reservations released by this replica: no-shows (not checked in) and pending ones not approved by their start.";

struct res_releaser {
	const char *topic;
	struct periodic *thread;
};

/* What the releaser runs each tick, in this order, each batch after batch ($1 = now at the
 * service's clock, $2 = the batch, $3 = the topic where the statement takes it). */
static const struct {
	const char *sql;
	int n_params;
	const char *what;
	bool released; /* counted in reservations_released_total */
} release_steps[] = {
	{res_repo_release_sql, 3, "releaser: releasing no-shows", true},
	{res_repo_unapproved_sql, 3, "releaser: cancelling unapproved bookings", true},
	/* Waitlist entries whose start has come (docs/api.md#waitlist). */
	{res_repo_waitlist_expire_sql, 2, "releaser: expiring waitlist entries", false},
};

/* Releases what is due at the service's clock (periodic_batches); a failure ends the tick (the
 * next tick opens another session unless the failure kept it: a deadlock, a serialization
 * failure, possible in the promotion at the batch's commit, is retried on the same one). */
static void release_due(PGconn **session, void *arg, const _Atomic bool *stop)
{
	struct res_releaser *rl = arg;
	char now[24], batch[24];
	const char *params[] = {now, batch, rl->topic};
	long long released = 0, expired = 0;
	bool failed = false;
	snprintf(now, sizeof now, "%lld", clock_now_s());
	snprintf(batch, sizeof batch, "%d", RELEASE_BATCH);
	for (size_t i = 0; i < countof(release_steps) && !failed && !*stop; i++) {
		long long n = periodic_batches(session, release_steps[i].sql,
		                               release_steps[i].n_params, params, RELEASE_BATCH,
		                               stop, release_steps[i].what, &failed);
		*(release_steps[i].released ? &released : &expired) += n;
	}
	if (released > 0) {
		metrics_counter_add(release_metric, release_metric_help, (double)released);
		log_info("releaser: released %lld reservation(s) not checked in or not approved",
		         released);
	}
	if (expired > 0)
		log_info("releaser: %lld waitlist entr%s expired", expired,
		         expired == 1 ? "y" : "ies");
}

struct res_releaser *res_releaser_start(long long interval_ms, const char *topic)
{
	struct res_releaser *rl = calloc(1, sizeof *rl);
	if (!rl)
		return NULL;
	rl->topic = topic;
	metrics_counter_add(release_metric, release_metric_help, 0);
	if (!(rl->thread = periodic_start(interval_ms, release_due, rl))) {
		free(rl);
		return NULL;
	}
	return rl;
}

void res_releaser_stop(struct res_releaser *rl)
{
	if (!rl)
		return;
	periodic_stop(rl->thread);
	free(rl);
}
