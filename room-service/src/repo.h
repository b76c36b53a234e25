/* repo: every SQL statement of room-service.  Each function runs on the calling thread's
 * connection and leaves it idle.  Rooms travel as JSON objects in the shape of docs/api.md#rooms,
 * built by PostgreSQL itself (json_build_object), so the API, the events and the database
 * agree. */
#ifndef ROOM_REPO_H
#define ROOM_REPO_H

#include <stdbool.h>

#include <jansson.h>

#include "db.h"
#include "validate.h"

#define ROOM_Q_MAX 200

struct room_filter {
	bool has_min_capacity;
	long long min_capacity;
	json_t *equipment; /* borrowed array of lower-case strings, NULL = any */
	const char *
		q; /* substring of name, building or description (≤ ROOM_Q_MAX bytes); NULL = any */
	bool has_active, active;
	const char *after_name; /* cursor: lower(name), id of the last row; NULL = first page */
	long long after_id;
	long long limit;
};

enum room_outcome { ROOM_DONE, ROOM_NOT_FOUND, ROOM_STALE, ROOM_DUPLICATE };

/* Each write stores its event in the outbox (topic) in the same transaction.  *room receives a
 * new reference to the room after the change (not for delete). */
enum db_status room_repo_create(const struct room_input *in, const char *topic, json_t **room,
                                enum room_outcome *outcome);
enum db_status room_repo_update(long long id, const struct room_input *in, const char *topic,
                                json_t **room, enum room_outcome *outcome);
/* When room_republish (migration 003) has a request: deletes it and writes a room_updated event
 * of every room, at its current version, to topic (one statement); *published is how many. */
enum db_status room_repo_republish_requested(const char *topic, long *published);
enum db_status room_repo_delete(long long id, long long if_version, const char *topic,
                                enum room_outcome *outcome);
enum db_status room_repo_get(long long id, json_t **room);
/* *rooms: new array of at most limit rooms; *next: the cursor key of the next page
 * ([lower(name), id] as PostgreSQL lower-cases it) or NULL on the last page. */
enum db_status room_repo_list(const struct room_filter *f, json_t **rooms, json_t **next);

#endif
