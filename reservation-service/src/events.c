/* Applies room and user events to the local copy of rooms, to reservations and to the token
 * revocations.  Every change is idempotent (versions for rooms; "cancel future confirmed" for
 * deletions; a revocation's time never moves back), so a re-delivered event changes nothing.
 * A message that cannot be understood goes to the DLQ; a database that is away makes the
 * consumer retry the same message.
 *
 * res_event_decode() (event_decode.c) turns a message into a struct res_event without touching
 * the database; res_events_handle() applies it. */
#include "events.h"

#include <stdio.h>
#include <string.h>

#include "event_decode.h"
#include "log.h"
#include "repo.h"
#include "repo_feeds.h"

static enum kafka_handled events_status(enum db_status st, char *why, size_t whylen)
{
	if (st == DB_OK)
		return KAFKA_APPLIED;
	snprintf(why, whylen, "%s", db_status_str(st));
	/* Data the schema refuses will never apply; everything else may once the database is back. */
	return st == DB_CHECK_VIOLATION ? KAFKA_POISON : KAFKA_RETRY;
}

/* Applies a decoded event; topic is where the changes' own events go. */
static enum kafka_handled events_apply(const struct res_event *ev, const char *topic, char *why,
                                       size_t whylen)
{
	long cancelled = 0;
	enum db_status st = DB_OK;
	switch (ev->kind) {
	case RES_EVENT_IGNORE:
		return KAFKA_APPLIED;
	case RES_EVENT_ROOM_UPSERT:
		st = res_repo_room_upsert(ev);
		break;
	case RES_EVENT_ROOM_DELETE:
		st = res_repo_room_delete(ev->id, ev->version, topic, &cancelled);
		if (st == DB_OK && cancelled < 0)
			log_debug("room %lld: already deleted", ev->id);
		else if (st == DB_OK)
			log_info("room %lld deleted: %ld future reservation(s) cancelled", ev->id,
			         cancelled);
		break;
	case RES_EVENT_USER_DELETE:
		st = res_repo_user_deleted(ev->id, ev->occurred_at, topic, &cancelled);
		if (st == DB_OK)
			log_info("user %lld deleted: tokens issued before %s are void, %ld future "
			         "reservation(s) cancelled",
			         ev->id, ev->occurred_at ? ev->occurred_at : "now", cancelled);
		break;
	case RES_EVENT_USER_EMAIL:
		st = res_repo_feed_user_email(ev->id, ev->email, ev->occurred_at);
		if (st == DB_OK)
			log_info("user %lld: e-mail address changed; the calendar feed follows it",
			         ev->id);
		break;
	case RES_EVENT_USER_REVOKE:
		st = res_repo_user_revoked(ev->id, ev->occurred_at, ev->type);
		if (st == DB_OK)
			log_info("user %lld: %s, tokens issued before %s are void", ev->id,
			         ev->type, ev->occurred_at ? ev->occurred_at : "now");
		break;
	}
	return events_status(st, why, whylen);
}

enum kafka_handled res_events_handle(const char *topic, const char *key, size_t keylen,
                                     const char *value, size_t len, void *arg, char *why,
                                     size_t whylen)
{
	const struct res_events_topics *t = arg;
	struct res_event ev;
	(void)key;
	(void)keylen;
	enum res_event_source source = strcmp(topic, t->rooms) == 0   ? RES_EVENT_FROM_ROOMS
	                               : strcmp(topic, t->users) == 0 ? RES_EVENT_FROM_USERS
	                                                              : RES_EVENT_FROM_OTHER;
	enum kafka_handled h = res_event_decode(source, value, len, &ev, why, whylen)
	                               ? events_apply(&ev, t->reservations, why, whylen)
	                               : KAFKA_POISON;
	res_event_clear(&ev);
	return h;
}
