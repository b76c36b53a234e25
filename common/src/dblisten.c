#include "dblisten.h"

#include <assert.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "db.h"
#include "log.h"
#include "timefmt.h"

#define DB_LISTEN_POLL_MS 50
#define DB_LISTEN_RETRY_MIN_MS 250
#define DB_LISTEN_RETRY_MAX_MS 5000

struct db_listener {
	const char *channel, *app_name;
	db_listen_fn fn;
	void *arg;
	pthread_t thread;
	_Atomic bool stopping;
	_Atomic long long confirmed_ms; /* db_listen_confirmed_ms() */
};

/* One session's life on the listener's state: whether the owner was told UP, when the last
 * answered probe was sent, and the probe in flight (0 = none). */
struct db_listen_session {
	PGconn *c;
	bool up;
	long long confirmed_ms, probe_sent_ms;
};

static void db_listen_tell(struct db_listener *l, struct db_listen_session *s, bool up)
{
	if (s->up == up)
		return;
	s->up = up;
	if (!up)
		l->confirmed_ms = 0;
	l->fn(l->arg, up ? DB_LISTEN_UP : DB_LISTEN_DOWN);
	if (up)
		l->confirmed_ms = s->confirmed_ms;
}

/* Names the session and LISTENs.  False (logged) when the session is not usable. */
static bool db_listen_subscribe(struct db_listener *l, PGconn *c)
{
	char sql[96];
	const char *params[] = {l->app_name};
	PGresult *r = PQexecParams(c, "SELECT set_config('application_name', $1, false)", 1, NULL,
	                           params, NULL, NULL, 0);
	bool ok = PQresultStatus(r) == PGRES_TUPLES_OK;
	PQclear(r);
	snprintf(sql, sizeof sql, "LISTEN %s", l->channel);
	if (ok) {
		r = PQexec(c, sql);
		ok = PQresultStatus(r) == PGRES_COMMAND_OK;
		PQclear(r);
	}
	if (!ok)
		log_warn("listening on %s failed: %s", l->channel, PQerrorMessage(c));
	return ok;
}

/* Reads what arrived: notifications and the probe's answer.  False when the session broke. */
static bool db_listen_read(struct db_listener *l, struct db_listen_session *s)
{
	if (PQconsumeInput(s->c) != 1)
		return false;
	bool answered = false;
	while (s->probe_sent_ms && !answered && PQisBusy(s->c) == 0) {
		PGresult *r = PQgetResult(s->c);
		answered = r == NULL;
		bool ok = answered || PQresultStatus(r) == PGRES_TUPLES_OK;
		PQclear(r);
		if (!ok)
			return false;
	}
	/* The notifications that came before the answer were parsed on the way to it: they are
	 * told first, and only then is the probe's moment taken as confirmed. */
	bool notified = false;
	PGnotify *n;
	while ((n = PQnotifies(s->c)) != NULL) {
		PQfreemem(n);
		notified = true;
	}
	if (notified && s->up)
		l->fn(l->arg, DB_LISTEN_NOTIFIED);
	if (answered) {
		s->confirmed_ms = s->probe_sent_ms;
		s->probe_sent_ms = 0;
		if (s->up)
			l->confirmed_ms = s->confirmed_ms;
	}
	return PQstatus(s->c) == CONNECTION_OK;
}

/* Serves one LISTENing session until it breaks or the listener stops. */
static void db_listen_serve(struct db_listener *l, struct db_listen_session *s)
{
	struct pollfd pfd = {.fd = PQsocket(s->c), .events = POLLIN};
	db_listen_tell(l, s, true);
	while (!l->stopping) {
		long long now = timefmt_mono_ms();
		if (s->probe_sent_ms == 0 && now - s->confirmed_ms >= DB_LISTEN_PROBE_MS) {
			if (PQsendQuery(s->c, "SELECT 1") != 1)
				break;
			s->probe_sent_ms = now;
		}
		if (s->probe_sent_ms && now - s->probe_sent_ms >= DB_LISTEN_DEAD_MS) {
			log_warn("listening session on %s gave no answer for %d ms: reconnecting",
			         l->channel, DB_LISTEN_DEAD_MS);
			break;
		}
		if (poll(&pfd, 1, DB_LISTEN_POLL_MS) < 0 || !db_listen_read(l, s))
			break;
		db_listen_tell(l, s, timefmt_mono_ms() - s->confirmed_ms < DB_LISTEN_FRESH_MS);
	}
	db_listen_tell(l, s, false);
}

static void *db_listen_main(void *arg)
{
	struct db_listener *l = arg;
	long pause_ms = DB_LISTEN_RETRY_MIN_MS;
	while (!l->stopping) {
		struct db_listen_session s = {.c = db_open()};
		/* Confirmed from (just before) the moment LISTEN is sent: it takes effect before
		 * its answer arrives. */
		s.confirmed_ms = timefmt_mono_ms();
		if (s.c && db_listen_subscribe(l, s.c)) {
			log_info("listening on %s", l->channel);
			pause_ms = DB_LISTEN_RETRY_MIN_MS;
			db_listen_serve(l, &s);
			if (!l->stopping)
				log_warn("listening session on %s lost: %s", l->channel,
				         PQerrorMessage(s.c));
		}
		PQfinish(s.c);
		if (l->stopping)
			break;
		timefmt_sleep_unless(pause_ms, &l->stopping);
		pause_ms = pause_ms * 2 > DB_LISTEN_RETRY_MAX_MS ? DB_LISTEN_RETRY_MAX_MS
		                                                 : pause_ms * 2;
	}
	return NULL;
}

struct db_listener *db_listen_start(const char *channel, const char *app_name, db_listen_fn fn,
                                    void *arg)
{
	/* The channel is spliced into LISTEN: a programming error if it is not a plain name. */
	assert(channel && channel[0] &&
	       strspn(channel, "abcdefghijklmnopqrstuvwxyz_") == strlen(channel) &&
	       strlen(channel) < 64);
	struct db_listener *l = calloc(1, sizeof *l);
	if (!l)
		return NULL;
	*l = (struct db_listener){.channel = channel, .app_name = app_name, .fn = fn, .arg = arg};
	if (pthread_create(&l->thread, NULL, db_listen_main, l) != 0) {
		free(l);
		return NULL;
	}
	return l;
}

long long db_listen_confirmed_ms(const struct db_listener *l)
{
	return l ? l->confirmed_ms : 0;
}

void db_listen_stop(struct db_listener *l)
{
	if (!l)
		return;
	l->stopping = true;
	pthread_join(l->thread, NULL);
	free(l);
}
