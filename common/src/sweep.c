#include "sweep.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "db.h"
#include "log.h"
#include "metrics.h"
#include "periodic.h"

static const char sweep_metric[] = "sweep_rows_deleted_total";
static const char sweep_metric_help[] = "Rows deleted by the sweeper, by table.";

struct sweep {
	struct sweep_table *tables; /* copies of the rows; their strings are borrowed */
	size_t n;
	long long batch;
	char batch_param[24]; /* batch as text: $2 of every statement */
	struct periodic *thread;
};

/* One line per table and sweep that deleted rows, with fields a log reader can match on. */
static void sweep_log(const struct sweep_table *t, long long n)
{
	if (!log_enabled(LOG_LEVEL_INFO))
		return;
	json_t *fields = json_pack("{s:s, s:I, s:I}", "table", t->name, "rows", (json_int_t)n,
	                           "retention_s", (json_int_t)t->retention_s);
	log_write(LOG_LEVEL_INFO, fields,
	          "sweep: deleted %lld row(s) of %s older than the retention (%lld s)", n, t->name,
	          t->retention_s);
}

/* Deletes each table's old rows, batch after batch (periodic_batches); a failure ends the
 * sweep (the next one opens another session unless the failure kept it: a deadlock, a
 * serialization failure). */
static void sweep_once(PGconn **session, void *arg, const _Atomic bool *stop)
{
	struct sweep *s = arg;
	for (size_t i = 0; i < s->n && !*stop; i++) {
		const struct sweep_table *t = &s->tables[i];
		char retention[24], what[96];
		const char *params[] = {retention, s->batch_param};
		bool failed;
		snprintf(retention, sizeof retention, "%lld", t->retention_s);
		snprintf(what, sizeof what, "sweep: deleting old rows of %s", t->name);
		long long n = periodic_batches(session, t->sql, 2, params, s->batch, stop, what,
		                               &failed);
		if (n > 0) {
			metrics_counter_add_labeled(sweep_metric, sweep_metric_help, "table",
			                            t->name, (double)n);
			sweep_log(t, n);
		}
		if (failed)
			return;
	}
}

struct sweep *sweep_start(const struct sweep_table *tables, size_t n, long long interval_s,
                          long long batch)
{
	if (n == 0 || interval_s <= 0)
		return NULL;
	struct sweep *s = calloc(1, sizeof *s);
	if (!s)
		return NULL;
	s->tables = calloc(n, sizeof *s->tables);
	if (!s->tables)
		goto fail;
	memcpy(s->tables, tables, n * sizeof *tables);
	s->n = n;
	s->batch = batch > 0 ? batch : 1;
	snprintf(s->batch_param, sizeof s->batch_param, "%lld", s->batch);
	/* Every table's series exists from the start, at 0. */
	for (size_t i = 0; i < n; i++)
		metrics_counter_add_labeled(sweep_metric, sweep_metric_help, "table",
		                            tables[i].name, 0);
	if (!(s->thread = periodic_start(interval_s * 1000, sweep_once, s)))
		goto fail;
	return s;
fail:
	free(s->tables);
	free(s);
	return NULL;
}

void sweep_stop(struct sweep *s)
{
	if (!s)
		return;
	periodic_stop(s->thread);
	free(s->tables);
	free(s);
}
