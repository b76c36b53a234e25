#include "sweep.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "db.h"
#include "log.h"
#include "metrics.h"
#include "timefmt.h"

static const char sweep_metric[] = "sweep_rows_deleted_total";
static const char sweep_metric_help[] = "Rows deleted by the sweeper, by table.";

struct sweep {
	struct sweep_table *tables; /* copies of the rows; their strings are borrowed */
	size_t n;
	long long interval_ms;
	long long batch;
	char batch_param[24]; /* batch as text: $2 of every statement */
	pthread_t thread;
	_Atomic bool stop;
	PGconn *session; /* the thread's own (db_open); NULL = none yet or lost */
};

/* Deletes t's old rows, batch after batch, until a batch comes back short.  Returns the rows
 * deleted; *failed tells whether a statement failed (the session is then ended: the next sweep
 * opens another). */
static long long sweep_table(struct sweep *s, const struct sweep_table *t, bool *failed)
{
	char retention[24];
	const char *params[] = {retention, s->batch_param};
	long long total = 0;
	snprintf(retention, sizeof retention, "%lld", t->retention_s);
	*failed = false;
	while (!s->stop) {
		PGresult *res = NULL;
		enum db_status st = db_exec_on(s->session, &res, t->sql, 2, params);
		if (st != DB_OK) {
			log_warn(
				"sweep: deleting old rows of %s failed (%s); tried again next time",
				t->name, db_status_str(st));
			PQfinish(s->session);
			s->session = NULL;
			*failed = true;
			break;
		}
		long long n = strtoll(PQcmdTuples(res), NULL, 10);
		PQclear(res);
		total += n;
		if (n < s->batch)
			break;
	}
	return total;
}

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

static void sweep_once(struct sweep *s)
{
	for (size_t i = 0; i < s->n && !s->stop; i++) {
		const struct sweep_table *t = &s->tables[i];
		if (!s->session && !(s->session = db_open()))
			return; /* database unreachable: logged by db_open, tried again next time */
		bool failed;
		long long n = sweep_table(s, t, &failed);
		if (n > 0) {
			metrics_counter_add_labeled(sweep_metric, sweep_metric_help, "table",
			                            t->name, (double)n);
			sweep_log(t, n);
		}
		if (failed)
			return;
	}
}

static void *sweep_main(void *arg)
{
	struct sweep *s = arg;
	while (!s->stop) {
		sweep_once(s);
		timefmt_sleep_unless((long)s->interval_ms, &s->stop);
	}
	PQfinish(s->session);
	s->session = NULL;
	return NULL;
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
	s->interval_ms = interval_s * 1000;
	s->batch = batch > 0 ? batch : 1;
	snprintf(s->batch_param, sizeof s->batch_param, "%lld", s->batch);
	/* Every table's series exists from the start, at 0. */
	for (size_t i = 0; i < n; i++)
		metrics_counter_add_labeled(sweep_metric, sweep_metric_help, "table",
		                            tables[i].name, 0);
	if (pthread_create(&s->thread, NULL, sweep_main, s) != 0)
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
	s->stop = true;
	pthread_join(s->thread, NULL);
	free(s->tables);
	free(s);
}
