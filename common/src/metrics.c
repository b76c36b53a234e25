#include "metrics.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "countof.h"

#define METRICS_MAX_SERIES 512
#define METRICS_MAX_HIST 128
#define METRICS_MAX_COUNTERS 64
#define METRICS_MAX_GAUGES 32
#define METRICS_MAX_NAMED_HIST 8

static const double metrics_buckets[] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                         0.1,   0.25,   0.5,   1,    2.5,   5};
#define METRICS_NBUCKETS countof(metrics_buckets)

struct metrics_series {
	const char *route, *method;
	int status;
	unsigned long long count;
};

struct metrics_buckets {
	unsigned long long buckets[METRICS_NBUCKETS]; /* observations <= metrics_buckets[i] */
	unsigned long long count;
	double sum;
};

struct metrics_hist {
	const char *route, *method;
	struct metrics_buckets b;
};

struct metrics_named_hist {
	const char *name, *help;
	struct metrics_buckets b;
};

struct metrics_counter {
	const char *name, *help;
	const char *label, *label_value; /* NULL for a counter without label */
	double value;
};

struct metrics_gauge {
	const char *name, *help;
	double (*fn)(void);
	/* A series of a labelled gauge instead (fn NULL): label=value, computed by fn_labeled. */
	const char *label, *label_value;
	double (*fn_labeled)(const char *label_value);
};

static pthread_mutex_t metrics_lock = PTHREAD_MUTEX_INITIALIZER;
static struct metrics_series metrics_series[METRICS_MAX_SERIES];
static size_t metrics_nseries;
static struct metrics_hist metrics_hists[METRICS_MAX_HIST];
static size_t metrics_nhists;
static struct metrics_counter metrics_counters[METRICS_MAX_COUNTERS];
static size_t metrics_ncounters;
static struct metrics_gauge metrics_gauges[METRICS_MAX_GAUGES];
static size_t metrics_ngauges;
static struct metrics_named_hist metrics_named[METRICS_MAX_NAMED_HIST];
static size_t metrics_nnamed;

static void metrics_buckets_add(struct metrics_buckets *b, double v)
{
	for (size_t i = 0; i < METRICS_NBUCKETS; i++)
		if (v <= metrics_buckets[i])
			b->buckets[i]++;
	b->count++;
	b->sum += v;
}

void metrics_observe_request(const char *route, const char *method, int status, double seconds)
{
	pthread_mutex_lock(&metrics_lock);
	size_t i;
	for (i = 0; i < metrics_nseries; i++) {
		struct metrics_series *s = &metrics_series[i];
		if (s->status == status && s->route == route && strcmp(s->method, method) == 0)
			break;
	}
	if (i == metrics_nseries && metrics_nseries < METRICS_MAX_SERIES)
		metrics_series[metrics_nseries++] = (struct metrics_series){route, method, status,
		                                                            0};
	if (i < metrics_nseries)
		metrics_series[i].count++;

	for (i = 0; i < metrics_nhists; i++) {
		if (metrics_hists[i].route == route && strcmp(metrics_hists[i].method, method) == 0)
			break;
	}
	if (i == metrics_nhists && metrics_nhists < METRICS_MAX_HIST) {
		memset(&metrics_hists[i], 0, sizeof metrics_hists[i]);
		metrics_hists[i].route = route;
		metrics_hists[i].method = method;
		metrics_nhists++;
	}
	if (i < metrics_nhists)
		metrics_buckets_add(&metrics_hists[i].b, seconds);
	pthread_mutex_unlock(&metrics_lock);
}

void metrics_histogram_observe(const char *name, const char *help, double v)
{
	pthread_mutex_lock(&metrics_lock);
	size_t i;
	for (i = 0; i < metrics_nnamed; i++)
		if (strcmp(metrics_named[i].name, name) == 0)
			break;
	if (i == metrics_nnamed && metrics_nnamed < METRICS_MAX_NAMED_HIST)
		metrics_named[metrics_nnamed++] = (struct metrics_named_hist){name,
		                                                              help,
		                                                              {{0}, 0, 0}};
	if (i < metrics_nnamed)
		metrics_buckets_add(&metrics_named[i].b, v);
	pthread_mutex_unlock(&metrics_lock);
}

static bool metrics_same(const char *a, const char *b)
{
	return a == b || (a && b && strcmp(a, b) == 0);
}

void metrics_counter_add_labeled(const char *name, const char *help, const char *label,
                                 const char *value, double v)
{
	pthread_mutex_lock(&metrics_lock);
	size_t i;
	for (i = 0; i < metrics_ncounters; i++) {
		const struct metrics_counter *c = &metrics_counters[i];
		if (strcmp(c->name, name) == 0 && metrics_same(c->label, label) &&
		    metrics_same(c->label_value, value))
			break;
	}
	if (i == metrics_ncounters && metrics_ncounters < METRICS_MAX_COUNTERS)
		metrics_counters[metrics_ncounters++] = (struct metrics_counter){name, help, label,
		                                                                 value, 0};
	if (i < metrics_ncounters)
		metrics_counters[i].value += v;
	pthread_mutex_unlock(&metrics_lock);
}

void metrics_counter_add(const char *name, const char *help, double v)
{
	metrics_counter_add_labeled(name, help, NULL, NULL, v);
}

void metrics_register_gauge(const char *name, const char *help, double (*fn)(void))
{
	pthread_mutex_lock(&metrics_lock);
	if (metrics_ngauges < METRICS_MAX_GAUGES)
		metrics_gauges[metrics_ngauges++] = (struct metrics_gauge){name, help, fn,
		                                                           NULL, NULL, NULL};
	pthread_mutex_unlock(&metrics_lock);
}

void metrics_register_gauge_labeled(const char *name, const char *help, const char *label,
                                    const char *value, double (*fn)(const char *value))
{
	pthread_mutex_lock(&metrics_lock);
	if (metrics_ngauges < METRICS_MAX_GAUGES)
		metrics_gauges[metrics_ngauges++] = (struct metrics_gauge){name,  help,  NULL,
		                                                           label, value, fn};
	pthread_mutex_unlock(&metrics_lock);
}

/* A growing text buffer; on allocation failure it stays failed and render returns NULL. */
struct mbuf {
	char *data;
	size_t len, cap;
	bool failed;
};

__attribute__((format(printf, 2, 3))) static void mbuf_printf(struct mbuf *b, const char *fmt, ...)
{
	if (b->failed)
		return;
	for (;;) {
		va_list ap;
		va_start(ap, fmt);
		int n = vsnprintf(b->data + b->len, b->cap - b->len, fmt, ap);
		va_end(ap);
		if (n < 0) {
			b->failed = true;
			return;
		}
		if ((size_t)n < b->cap - b->len) {
			b->len += (size_t)n;
			return;
		}
		size_t cap = b->cap * 2 + (size_t)n;
		char *p = realloc(b->data, cap);
		if (!p) {
			b->failed = true;
			return;
		}
		b->data = p;
		b->cap = cap;
	}
}

char *metrics_render(const char *prefix)
{
	struct mbuf b = {malloc(8192), 0, 8192, false};
	if (!b.data)
		return NULL;
	b.data[0] = '\0';

	/* Gauges call back into the service (e.g. a SQL count): not under the lock. */
	size_t ngauges;
	struct metrics_gauge gauges[METRICS_MAX_GAUGES];
	pthread_mutex_lock(&metrics_lock);
	ngauges = metrics_ngauges;
	memcpy(gauges, metrics_gauges, sizeof gauges);
	pthread_mutex_unlock(&metrics_lock);
	/* Each name once, with all its series together (a labelled gauge has one per value). */
	for (size_t i = 0; i < ngauges; i++) {
		const struct metrics_gauge *g = &gauges[i];
		bool first = true;
		for (size_t k = 0; k < i && first; k++)
			first = strcmp(gauges[k].name, g->name) != 0;
		if (!first)
			continue;
		mbuf_printf(&b, "# HELP %s%s %s\n# TYPE %s%s gauge\n", prefix, g->name, g->help,
		            prefix, g->name);
		for (size_t k = i; k < ngauges; k++) {
			const struct metrics_gauge *s = &gauges[k];
			if (strcmp(s->name, g->name) != 0)
				continue;
			if (s->fn)
				mbuf_printf(&b, "%s%s %.17g\n", prefix, s->name, s->fn());
			else
				mbuf_printf(&b, "%s%s{%s=\"%s\"} %.17g\n", prefix, s->name,
				            s->label, s->label_value,
				            s->fn_labeled(s->label_value));
		}
	}

	pthread_mutex_lock(&metrics_lock);
	mbuf_printf(&b,
	            "# HELP %shttp_requests_total Requests by route template, method and "
	            "status.\n# TYPE %shttp_requests_total counter\n",
	            prefix, prefix);
	for (size_t i = 0; i < metrics_nseries; i++) {
		struct metrics_series *s = &metrics_series[i];
		mbuf_printf(
			&b,
			"%shttp_requests_total{route=\"%s\",method=\"%s\",status=\"%d\"} %llu\n",
			prefix, s->route, s->method, s->status, s->count);
	}
	mbuf_printf(&b,
	            "# HELP %shttp_request_duration_seconds Request latency.\n"
	            "# TYPE %shttp_request_duration_seconds histogram\n",
	            prefix, prefix);
	for (size_t i = 0; i < metrics_nhists; i++) {
		struct metrics_hist *h = &metrics_hists[i];
		for (size_t k = 0; k < METRICS_NBUCKETS; k++)
			mbuf_printf(
				&b,
				"%shttp_request_duration_seconds_bucket{route=\"%s\",method=\"%s\","
				"le=\"%g\"} %llu\n",
				prefix, h->route, h->method, metrics_buckets[k], h->b.buckets[k]);
		mbuf_printf(&b,
		            "%shttp_request_duration_seconds_bucket{route=\"%s\",method=\"%s\","
		            "le=\"+Inf\"} %llu\n",
		            prefix, h->route, h->method, h->b.count);
		mbuf_printf(
			&b,
			"%shttp_request_duration_seconds_sum{route=\"%s\",method=\"%s\"} %.9f\n"
			"%shttp_request_duration_seconds_count{route=\"%s\",method=\"%s\"} %llu\n",
			prefix, h->route, h->method, h->b.sum, prefix, h->route, h->method,
			h->b.count);
	}
	for (size_t i = 0; i < metrics_nnamed; i++) {
		const struct metrics_named_hist *h = &metrics_named[i];
		mbuf_printf(&b, "# HELP %s%s %s\n# TYPE %s%s histogram\n", prefix, h->name, h->help,
		            prefix, h->name);
		for (size_t k = 0; k < METRICS_NBUCKETS; k++)
			mbuf_printf(&b, "%s%s_bucket{le=\"%g\"} %llu\n", prefix, h->name,
			            metrics_buckets[k], h->b.buckets[k]);
		mbuf_printf(&b, "%s%s_bucket{le=\"+Inf\"} %llu\n%s%s_sum %.9f\n%s%s_count %llu\n",
		            prefix, h->name, h->b.count, prefix, h->name, h->b.sum, prefix, h->name,
		            h->b.count);
	}
	/* Each name once, with all its series together (the text format wants them grouped). */
	for (size_t i = 0; i < metrics_ncounters; i++) {
		const struct metrics_counter *c = &metrics_counters[i];
		bool first = true;
		for (size_t k = 0; k < i && first; k++)
			first = strcmp(metrics_counters[k].name, c->name) != 0;
		if (!first)
			continue;
		mbuf_printf(&b, "# HELP %s%s %s\n# TYPE %s%s counter\n", prefix, c->name, c->help,
		            prefix, c->name);
		for (size_t k = i; k < metrics_ncounters; k++) {
			const struct metrics_counter *s = &metrics_counters[k];
			if (strcmp(s->name, c->name) != 0)
				continue;
			if (s->label)
				mbuf_printf(&b, "%s%s{%s=\"%s\"} %.17g\n", prefix, s->name,
				            s->label, s->label_value, s->value);
			else
				mbuf_printf(&b, "%s%s %.17g\n", prefix, s->name, s->value);
		}
	}
	pthread_mutex_unlock(&metrics_lock);
	if (b.failed) {
		free(b.data);
		return NULL;
	}
	return b.data;
}
