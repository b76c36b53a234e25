/* health: the dependency checks behind GET /health (docs/operations.md#probes), run in the
 * background.  Each check has a thread of its own that runs it every interval, so a slow or
 * hanging dependency (a Kafka metadata request waits up to 1 s, an identity-provider call up to
 * 10 s) never holds an HTTP worker, and one hanging check does not delay the others: /health only
 * reads the last results, with their age.  A check still running one interval after it started
 * counts as failed ("no answer for N ms") until it returns: a dependency that hangs is reported,
 * not hidden behind its last good answer.  Changes are logged once each: a check turning
 * degraded or down (a hang as soon as a report sees it) at warn, its recovery at info. */
#ifndef HEALTH_H
#define HEALTH_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

enum health_state { HEALTH_OK, HEALTH_DEGRADED, HEALTH_DOWN };

/* One dependency.  check() runs on the check's own thread, never on an HTTP worker: it may
 * block, but must return within its own timeouts (the thread is joined at shutdown).  When not
 * OK it writes a short reason for people into detail (size bytes; no secrets, no addresses).
 * A hard dependency that is down, or has not answered for an interval, makes /health 503; any
 * other failure makes it "degraded". */
struct health_check {
	const char *name;
	bool hard;
	enum health_state (*check)(char *detail, size_t size);
};

struct health;

/* Starts one thread per check, each running its check at once and then every interval_ms
 * (measured from the start of one run to the start of the next; a run that takes longer is
 * followed by the next at once).  checks, and everything the checks use, are borrowed and must
 * outlive health_free().  Returns NULL with a reason in err when memory or a thread cannot be
 * had (the threads already started are stopped again). */
struct health *health_start(const struct health_check *checks, size_t n, long long interval_ms,
                            char *err, size_t errlen);
/* Asks every thread to stop after its current run, without waiting: call it early in a
 * shutdown, so that a run in progress overlaps the rest of the shutdown.  NULL is a no-op. */
void health_stop(struct health *h);
/* Stops the threads (if not done yet), waits for them and frees h.  NULL is a no-op. */
void health_free(struct health *h);

/* The "checks" object of the /health body from the last results (a new reference; NULL when
 * out of memory): for each check {"status": "ok"|"degraded"|"down", "latency_ms": the last run's
 * duration (or how long the current run has been going when that counts as failed),
 * "detail"?: the reason, "checked_at": RFC 3339 end of the last run or null before the first,
 * "age_ms": milliseconds since then or null}.  *overall receives HEALTH_DOWN when a hard check is
 * down, HEALTH_DEGRADED when any other check is not ok, else HEALTH_OK.  A check that has no
 * result yet counts as failed ("not checked yet").  Thread-safe; it never waits for a running
 * check (one mutex, held only to copy the results). */
json_t *health_report(struct health *h, enum health_state *overall);

#endif
