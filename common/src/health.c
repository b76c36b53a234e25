#include "health.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "db.h"
#include "log.h"
#include "timefmt.h"

#define HEALTH_DETAIL_MAX 256

/* One check and its last result.  check, owner, thread and started are written before the
 * thread starts or by the starting thread only; the rest is guarded by the owner's mutex. */
struct health_slot {
	const struct health_check *check; /* borrowed */
	struct health *owner;
	pthread_t thread;
	bool started;
	bool running;            /* a run is in progress */
	bool stall_logged;       /* ... and health_report logged that it hangs */
	long long run_start_us;  /* monotonic start of the current or last run */
	bool have;               /* a run has finished */
	enum health_state state; /* its outcome */
	char detail[HEALTH_DETAIL_MAX];
	double latency_ms;
	long long done_us; /* monotonic end of the last run */
	long long done_ms; /* the same, wall clock */
};

struct health {
	pthread_mutex_t mu;
	pthread_cond_t cv; /* signalled on stop; on CLOCK_MONOTONIC */
	bool stop;
	long long interval_us;
	size_t n;
	struct health_slot slots[];
};

static const char *health_state_name(enum health_state st)
{
	return st == HEALTH_OK ? "ok" : st == HEALTH_DEGRADED ? "degraded" : "down";
}

/* How a check that cannot answer counts: a hard dependency is down, a soft one degraded. */
static enum health_state health_failed(const struct health_check *c)
{
	return c->hard ? HEALTH_DOWN : HEALTH_DEGRADED;
}

/* Logs a change of a check's outcome (the first outcome only when it is not ok), so that the
 * log shows when a dependency went away and came back without a line per run.  reported: the
 * outcome last logged or shown differed from now (a new outcome, or the run that just ended
 * was reported as hanging). */
static void health_log_change(const struct health_check *c, bool reported, enum health_state now,
                              const char *detail)
{
	if (!reported)
		return;
	if (now == HEALTH_OK)
		log_info("health check %s: ok again", c->name);
	else
		log_warn("health check %s: %s (%s)", c->name, health_state_name(now), detail);
}

/* Waits on h->cv (mutex held) until the monotonic time deadline_us or a stop request. */
static void health_wait_until(struct health *h, long long deadline_us)
{
	struct timespec ts = {(time_t)(deadline_us / 1000000),
	                      (long)(deadline_us % 1000000) * 1000};
	while (!h->stop && timefmt_mono_us() < deadline_us)
		if (pthread_cond_timedwait(&h->cv, &h->mu, &ts) == ETIMEDOUT)
			break;
}

static void *health_main(void *arg)
{
	struct health_slot *s = arg;
	struct health *h = s->owner;
	pthread_mutex_lock(&h->mu);
	while (!h->stop) {
		long long t0 = timefmt_mono_us();
		s->running = true;
		s->run_start_us = t0;
		pthread_mutex_unlock(&h->mu);

		char detail[HEALTH_DETAIL_MAX] = "";
		enum health_state st = s->check->check(detail, sizeof detail);
		long long t1 = timefmt_mono_us();

		pthread_mutex_lock(&h->mu);
		/* The first outcome counts as a change from ok. */
		enum health_state before = s->have ? s->state : HEALTH_OK;
		bool reported = before != st || s->stall_logged;
		s->running = false;
		s->stall_logged = false;
		s->have = true;
		s->state = st;
		snprintf(s->detail, sizeof s->detail, "%s", detail);
		s->latency_ms = (double)(t1 - t0) / 1000.0;
		s->done_us = t1;
		s->done_ms = timefmt_now_ms();
		pthread_mutex_unlock(&h->mu);
		health_log_change(s->check, reported, st, detail);

		pthread_mutex_lock(&h->mu);
		health_wait_until(h, t0 + h->interval_us);
	}
	pthread_mutex_unlock(&h->mu);
	/* The database check ran on this thread's own connection (db.c keeps one per thread). */
	db_thread_close();
	return NULL;
}

struct health *health_start(const struct health_check *checks, size_t n, long long interval_ms,
                            char *err, size_t errlen)
{
	struct health *h = calloc(1, sizeof *h + n * sizeof h->slots[0]);
	pthread_condattr_t ca;
	if (!h) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	pthread_mutex_init(&h->mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&h->cv, &ca);
	pthread_condattr_destroy(&ca);
	h->interval_us = (interval_ms > 0 ? interval_ms : 1) * 1000;
	h->n = n;
	for (size_t i = 0; i < n; i++) {
		struct health_slot *s = &h->slots[i];
		s->check = &checks[i];
		s->owner = h;
		s->run_start_us = timefmt_mono_us();
		int rc = pthread_create(&s->thread, NULL, health_main, s);
		if (rc != 0) {
			snprintf(err, errlen, "cannot start the %s health check: %s",
			         checks[i].name, strerror(rc));
			health_free(h);
			return NULL;
		}
		s->started = true;
	}
	return h;
}

void health_stop(struct health *h)
{
	if (!h)
		return;
	pthread_mutex_lock(&h->mu);
	h->stop = true;
	pthread_cond_broadcast(&h->cv);
	pthread_mutex_unlock(&h->mu);
}

void health_free(struct health *h)
{
	if (!h)
		return;
	health_stop(h);
	for (size_t i = 0; i < h->n; i++)
		if (h->slots[i].started)
			pthread_join(h->slots[i].thread, NULL);
	pthread_cond_destroy(&h->cv);
	pthread_mutex_destroy(&h->mu);
	free(h);
}

/* One check's entry of the report from a copy of its slot taken under the mutex. */
static json_t *health_entry(const struct health_slot *s, long long interval_us, long long now_us,
                            long long now_ms, enum health_state *st)
{
	char detail[HEALTH_DETAIL_MAX], when[TIMEFMT_RFC3339_LEN];
	long long running_us = s->running ? now_us - s->run_start_us : 0;
	double latency_ms = s->latency_ms;
	snprintf(detail, sizeof detail, "%s", s->detail);
	*st = s->state;
	if (s->running && running_us > interval_us) {
		*st = health_failed(s->check);
		latency_ms = (double)running_us / 1000.0;
		snprintf(detail, sizeof detail, "no answer for %lld ms", running_us / 1000);
	} else if (!s->have) {
		*st = health_failed(s->check);
		latency_ms = (double)running_us / 1000.0;
		snprintf(detail, sizeof detail, "not checked yet");
	}
	json_t *e = json_pack("{s:s, s:f}", "status", health_state_name(*st), "latency_ms",
	                      latency_ms);
	if (!e)
		return NULL;
	if (detail[0])
		json_object_set_new(e, "detail", json_string(detail));
	if (s->have) {
		long long age_ms = (now_us - s->done_us) / 1000;
		/* The wall clock of "now" minus the age, so that checked_at and age_ms agree even if
		 * the clock was stepped since. */
		timefmt_rfc3339_ms(now_ms - age_ms, when);
		json_object_set_new(e, "checked_at", json_string(when));
		json_object_set_new(e, "age_ms", json_integer(age_ms));
	} else {
		json_object_set_new(e, "checked_at", json_null());
		json_object_set_new(e, "age_ms", json_null());
	}
	return e;
}

json_t *health_report(struct health *h, enum health_state *overall)
{
	json_t *checks = json_object();
	*overall = HEALTH_OK;
	if (!checks)
		return NULL;
	for (size_t i = 0; i < h->n; i++) {
		struct health_slot copy;
		long long now_us = timefmt_mono_us();
		pthread_mutex_lock(&h->mu);
		struct health_slot *s = &h->slots[i];
		/* The hung thread cannot say so itself: the first report that sees it logs it. */
		bool log_stall = s->running && !s->stall_logged &&
		                 now_us - s->run_start_us > h->interval_us;
		if (log_stall)
			s->stall_logged = true;
		copy = *s;
		pthread_mutex_unlock(&h->mu);
		if (log_stall)
			log_warn("health check %s: %s (no answer for %lld ms)", copy.check->name,
			         health_state_name(health_failed(copy.check)),
			         (now_us - copy.run_start_us) / 1000);
		enum health_state st;
		json_t *e = health_entry(&copy, h->interval_us, now_us, timefmt_now_ms(), &st);
		if (!e) {
			json_decref(checks);
			return NULL;
		}
		json_object_set_new(checks, copy.check->name, e);
		if (st == HEALTH_DOWN && copy.check->hard)
			*overall = HEALTH_DOWN;
		else if (st != HEALTH_OK && *overall != HEALTH_DOWN)
			*overall = HEALTH_DEGRADED;
	}
	return checks;
}
