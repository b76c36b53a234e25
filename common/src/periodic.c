#include "periodic.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#include "db.h"
#include "log.h"
#include "timefmt.h"

struct periodic {
	long long interval_ms;
	periodic_job job;
	void *arg;
	pthread_t thread;
	_Atomic bool stop;
	PGconn *session; /* the thread's own (db_open); NULL = none yet or lost */
};

static void *periodic_main(void *arg)
{
	struct periodic *p = arg;
	while (!p->stop) {
		if (p->session || (p->session = db_open()))
			p->job(&p->session, p->arg, &p->stop);
		timefmt_sleep_unless((long)p->interval_ms, &p->stop);
	}
	PQfinish(p->session);
	p->session = NULL;
	return NULL;
}

struct periodic *periodic_start(long long interval_ms, periodic_job job, void *arg)
{
	if (interval_ms <= 0)
		return NULL;
	struct periodic *p = calloc(1, sizeof *p);
	if (!p)
		return NULL;
	p->interval_ms = interval_ms;
	p->job = job;
	p->arg = arg;
	if (pthread_create(&p->thread, NULL, periodic_main, p) != 0) {
		free(p);
		return NULL;
	}
	return p;
}

void periodic_stop(struct periodic *p)
{
	if (!p)
		return;
	p->stop = true;
	pthread_join(p->thread, NULL);
	free(p);
}

/* At most one failure line a minute per thread (a job that fails every tick, at a tick of
 * 100 ms, would log ten a second); the lines left out are counted in the next one. */
#define FAILURE_LOG_EVERY_MS 60000

static void log_failure(const char *what, enum db_status st)
{
	static _Thread_local long long last_ms = -FAILURE_LOG_EVERY_MS;
	static _Thread_local long skipped;
	long long now = timefmt_mono_ms();
	if (now - last_ms < FAILURE_LOG_EVERY_MS) {
		skipped++;
		return;
	}
	char more[64] = "";
	if (skipped > 0)
		snprintf(more, sizeof more, " (%ld failures since the last line)", skipped);
	log_warn("%s failed (%s); tried again next time%s", what, db_status_str(st), more);
	last_ms = now;
	skipped = 0;
}

long long periodic_batches(PGconn **session, const char *sql, int nparams,
                           const char *const *params, long long batch, const _Atomic bool *stop,
                           const char *what, bool *failed)
{
	long long total = 0;
	*failed = false;
	while (!*stop) {
		PGresult *res = NULL;
		enum db_status st = db_exec_on(*session, &res, sql, nparams, params);
		if (st != DB_OK) {
			log_failure(what, st);
			/* A deadlock or a serialization failure leaves the session usable. */
			if (st != DB_RETRY) {
				PQfinish(*session);
				*session = NULL;
			}
			*failed = true;
			break;
		}
		long long n = PQntuples(res) == 1 && PQnfields(res) == 1
		                      ? db_int(res, 0, 0)
		                      : strtoll(PQcmdTuples(res), NULL, 10);
		PQclear(res);
		total += n;
		if (n < batch)
			break;
	}
	return total;
}
