/* metrics: Prometheus text exposition.  Requests by route template, method and status; a
 * latency histogram per route template and method; named counters; gauges computed on demand by
 * callbacks; named histograms.  All functions are thread-safe (one mutex; updates are a few instructions). */
#ifndef METRICS_H
#define METRICS_H

/* Records one finished request.  route and method must be static strings (they are kept). */
void metrics_observe_request(const char *route, const char *method, int status, double seconds);

/* Adds v to the counter name (a static string, e.g. "db_errors_total"). help is kept from the
 * first call. */
void metrics_counter_add(const char *name, const char *help, double v);
/* The same for one series of a counter with one label, e.g. sweep_rows_deleted_total with
 * label "table" = "outbox"; name, label and value must be static strings (they are kept), value
 * without quotes or backslashes.  Series of one name share its HELP and TYPE lines. */
void metrics_counter_add_labeled(const char *name, const char *help, const char *label,
                                 const char *value, double v);

/* Records one observation v (in seconds) in the histogram name (a static string, e.g.
 * "db_pool_wait_seconds"; the same buckets as the request latency).  help is kept from the
 * first call.  At most 8 names; further ones are not recorded. */
void metrics_histogram_observe(const char *name, const char *help, double v);

/* Registers a gauge whose value fn computes at scrape time (e.g. the outbox backlog).  fn runs
 * on the scraping thread.  Call before threads start. */
void metrics_register_gauge(const char *name, const char *help, double (*fn)(void));
/* The same for one series of a gauge with one label (e.g. delivery_pending with label "kind" =
 * "webhook"): fn(value) computes it.  name, help, label and value must be static strings (they
 * are kept), value without quotes or backslashes; series of one name share its HELP and TYPE
 * lines.  May be called while serving (e.g. when a background worker starts). */
void metrics_register_gauge_labeled(const char *name, const char *help, const char *label,
                                    const char *value, double (*fn)(const char *value));

/* Renders everything in the Prometheus text format, each name prefixed with prefix (borrowed,
 * may be ""). Returns a heap string (caller frees) or NULL. */
char *metrics_render(const char *prefix);

#endif
