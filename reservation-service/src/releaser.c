#include "releaser.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

#include "clock.h"
#include "db.h"
#include "log.h"
#include "metrics.h"
#include "repo.h"
#include "timefmt.h"

/* Rows one statement releases at most: a batch's locks are held briefly. */
#define RELEASE_BATCH 200

static const char release_metric[] = "reservations_released_total";
static const char release_metric_help[] =
	"Reservations released as no-shows (not checked in) by this replica.";

struct res_releaser {
	long long interval_ms;
	const char *topic;
	pthread_t thread;
	_Atomic bool stop;
	PGconn *session; /* the thread's own (db_open); NULL = none yet or lost */
};

/* Runs sql ($1 = now at the service's clock, $2 = the batch, $3 = the topic when the statement
 * takes it: n_params) batch after batch while a batch comes back full; returns the rows it
 * counted.  On a failure the session is dropped (a new one next time) and what is tried again
 * next time is logged. */
static long long run_batches(struct res_releaser *rl, const char *sql, int n_params,
                             const char *what)
{
	char now[24], batch[24];
	const char *params[] = {now, batch, rl->topic};
	long long total = 0;
	snprintf(now, sizeof now, "%lld", clock_now_s());
	snprintf(batch, sizeof batch, "%d", RELEASE_BATCH);
	while (!rl->stop && rl->session) {
		PGresult *res = NULL;
		enum db_status st = db_exec_on(rl->session, &res, sql, n_params, params);
		if (st != DB_OK) {
			log_warn("releaser: %s failed (%s); tried again next time", what,
			         db_status_str(st));
			PQfinish(rl->session);
			rl->session = NULL;
			break;
		}
		long long n = db_int(res, 0, 0);
		PQclear(res);
		total += n;
		if (n < RELEASE_BATCH)
			break;
	}
	return total;
}

static void *releaser_main(void *arg)
{
	struct res_releaser *rl = arg;
	while (!rl->stop) {
		if (rl->session || (rl->session = db_open())) {
			long long n = run_batches(rl, res_repo_release_sql, 3,
			                          "releasing no-shows");
			if (n > 0) {
				metrics_counter_add(release_metric, release_metric_help, (double)n);
				log_info("releaser: released %lld reservation(s) not checked in",
				         n);
			}
			/* Waitlist entries whose start has come (docs/api.md#waitlist). */
			long long x = run_batches(rl, res_repo_waitlist_expire_sql, 2,
			                          "expiring waitlist entries");
			if (x > 0)
				log_info("releaser: %lld waitlist entr%s expired", x,
				         x == 1 ? "y" : "ies");
		}
		timefmt_sleep_unless((long)rl->interval_ms, &rl->stop);
	}
	PQfinish(rl->session);
	rl->session = NULL;
	return NULL;
}

struct res_releaser *res_releaser_start(long long interval_ms, const char *topic)
{
	if (interval_ms <= 0)
		return NULL;
	struct res_releaser *rl = calloc(1, sizeof *rl);
	if (!rl)
		return NULL;
	rl->interval_ms = interval_ms;
	rl->topic = topic;
	metrics_counter_add(release_metric, release_metric_help, 0);
	if (pthread_create(&rl->thread, NULL, releaser_main, rl) != 0) {
		free(rl);
		return NULL;
	}
	return rl;
}

void res_releaser_stop(struct res_releaser *rl)
{
	if (!rl)
		return;
	rl->stop = true;
	pthread_join(rl->thread, NULL);
	free(rl);
}
