/* repo_series: the SQL of recurring reservations (docs/api.md#recurring-reservations).  A
 * series is booked by one call of res_book_series (migrations/006_recurrence.sql) after one
 * read of the room (res_repo_series_start): the C side expands the rule in between
 * (series.c).  Series travel as JSON objects built by PostgreSQL (res_series_answer), for
 * reads and writes alike.  Each function runs on the calling thread's connection and leaves
 * it idle. */
#ifndef RES_REPO_SERIES_H
#define RES_REPO_SERIES_H

#include <stdbool.h>

#include <jansson.h>

#include "db.h"
#include "repo.h"

/* The outcomes of the series functions, with the names the SQL functions answer. */
#define RES_SERIES_OUTCOMES(X)                                                                    \
	X(RES_SERIES_DONE, "done")                                                                \
	X(RES_SERIES_NOT_FOUND, "not_found")                                                      \
	X(RES_SERIES_FORBIDDEN, "forbidden")                                                      \
	X(RES_SERIES_STALE, "stale")                                                              \
	X(RES_SERIES_ROOM_UNKNOWN, "room_unknown")                                                \
	X(RES_SERIES_ROOM_INACTIVE, "room_inactive")                                              \
	X(RES_SERIES_EMPTY, "empty")       /* no occurrence left (a UTC UNTIL) */                 \
	X(RES_SERIES_TOO_MANY, "too_many") /* more than max_occurrences */                        \
	X(RES_SERIES_RULES, "rules")       /* *body: [index, start, end, local date] */           \
	X(RES_SERIES_OVERLAP, "overlap")   /* *body: [index, local date]: overlaps the next */    \
	X(RES_SERIES_REVOKED, "revoked")                                                          \
	X(RES_SERIES_REPLAY, "replay") /* *body: the first answer */                              \
	X(RES_SERIES_KEY_MISMATCH, "key_mismatch")                                                \
	X(RES_SERIES_ROOM_UNAVAILABLE, "room_unavailable")                                        \
	X(RES_SERIES_CONFLICT, "conflict")             /* *body: {occurrences, conflicts} */      \
	X(RES_SERIES_CANCELLED, "cancelled")           /* the series (or a split's occurrence) */ \
	X(RES_SERIES_NOT_OCCURRENCE, "not_occurrence") /* scope on a reservation of no series */  \
	X(RES_SERIES_PAST, "past")         /* a split at an occurrence that has begun */          \
	X(RES_SERIES_CAPACITY, "capacity") /* *body: [people, capacity] */                        \
	X(RES_SERIES_POLICY, "policy") /* *body: {policy, field, message, occurrence_start, ...} */

enum res_series_outcome {
/* clang-format off */
#define RES_SERIES_ENUM_(e, name) e,
	RES_SERIES_OUTCOMES(RES_SERIES_ENUM_)
#undef RES_SERIES_ENUM_
	/* clang-format on */
};

/* What a series create needs to know of its room before it expands the rule. */
struct res_series_room {
	bool found, active; /* as struct res_room */
	char time_zone[80];
	char local_start[32]; /* the first requested start in the zone, "YYYY-MM-DDTHH:MM:SS" */
	long long duration_s; /* end - start (may be <= 0: the rules refuse it later) */
	char today[16];       /* today's date in the zone, "YYYY-MM-DD" */
	bool has_given;       /* the request gave a start: given_s is its instant */
	long long given_s;
};

/* Reads the room and resolves start/end (borrowed, as the client wrote them) in its zone at
 * now (UTC seconds).  One statement. */
enum db_status res_repo_series_start(long long room_id, const struct res_time *start,
                                     const struct res_time *end, long long now,
                                     struct res_series_room *room);

/* A series to book; everything borrowed. */
struct res_series_booking {
	long long room_id, user_id, token_issued_ms;
	const char *purpose;     /* NULL: "" */
	const char *recurrence;  /* the rule as given, JSON text */
	const char *rrule;       /* canonical text */
	const char *exdates;     /* SQL array text of dates, "{2026-12-22}" */
	const char *time_zone;   /* the zone the starts were expanded in */
	const char *first_start; /* local start of the rule's first date */
	const char *starts;      /* SQL array text of the local starts, ascending */
	long long duration_s;
	const char *until_s; /* a UTC UNTIL in Unix seconds as text, or NULL */
	bool skip;           /* on_conflict = skip */
	long long max_occurrences;
	const char *attendees;       /* SQL text[] literal (res_attendees_param) */
	const char *organizer_email; /* the token's; NULL: unknown */
	const char *organizer_name;
	const char *meeting_urls; /* SQL text[] literal, one link per start; NULL: no meeting */
};

/* Books series b as res_book_series does (q: the rules, the clock and the events' topic; out:
 * q->skipped, the rules an override skipped; idem_key/idem_hash may be NULL): one statement, one transaction.  *body: new reference to
 * the JSON the outcome carries (see RES_SERIES_OUTCOMES), else NULL.  DB_RETRY (the room's
 * zone changed since res_repo_series_start, a swept key) and DB_EXCLUSION_VIOLATION (an
 * overlapping row written without the room's lock) ask the caller to read the room, expand the
 * rule and call again. */
enum db_status res_repo_series_create(const struct res_series_booking *b, struct res_request *q,
                                      const char *idem_key, const char *idem_hash, json_t **body,
                                      enum res_series_outcome *outcome);

/* *series: new reference to the series id with all its occurrences, or NULL when unknown. */
enum db_status res_repo_series_get(long long id, json_t **series);

/* *data: new reference to what the .ics export of series id needs (series_ics.h), as a JSON
 * object {user_id, zone, first_start, duration_s, rule (canonical text with EXDATE=…),
 * until_s, purpose, room_name, created_s, updated_s, version, cancelled, occurrences:
 * [{occurrence_start, local_start (its start in the series' zone), start_s, end_s, confirmed,
 * exception, purpose, room_name}]}, or NULL when unknown.  One statement. */
enum db_status res_repo_series_ics(long long id, json_t **data);

/* Cancels series id for caller (admin: anyone's) as res_cancel_series does: RES_SERIES_DONE
 * (also when already cancelled), _NOT_FOUND, _FORBIDDEN, _STALE (if_match, 0 = any, differs);
 * now: the service's clock for the promotions of the freed time.  One statement, run again
 * (up to 3 times) while the database answers DB_RETRY. */
enum db_status res_repo_series_cancel(long long id, long long caller, bool admin,
                                      long long if_match, const char *topic, long long now,
                                      enum res_series_outcome *outcome);

/* What a change of a series needs to know before it expands the rule (res_series_edit_start,
 * migrations/007_series_edit.sql). */
struct res_series_base {
	enum res_series_outcome problem; /* RES_SERIES_DONE: none; else _NOT_FOUND,
	                                    _NOT_OCCURRENCE, _CANCELLED, _ROOM_UNKNOWN,
	                                    _ROOM_INACTIVE */
	long long user_id;               /* the owner (set for every problem but _NOT_FOUND) */
	long long series_id;
	long long version;         /* the series' (a split: the occurrence's) */
	long long series_version;  /* the series' */
	char *rule;                /* the stored rule as RRULE text with EXDATE; owned */
	char first_start[32];      /* the series' DTSTART, local */
	char split_start[32];      /* a split: the occurrence's original local start */
	char organizer_email[320]; /* the series' ("" when unknown) */
	bool online_meeting;       /* the series has an online meeting */
	long long future;          /* its confirmed occurrences that have not begun (a split:
	                              from the occurrence's date on) */
	/* The expansion's base: the zone, the start to expand from, the length, today. */
	struct res_series_room room;
};

/* Reads series id (split false) or the series of occurrence id (split true) for a change that
 * names room_id (0: none) and start/end (borrowed; NULL: none), at now.  One statement.  Free
 * b->rule with res_series_base_free. */
enum db_status res_repo_series_edit_start(long long id, bool split, long long room_id,
                                          const struct res_time *start, const struct res_time *end,
                                          long long now, struct res_series_base *b);
void res_series_base_free(struct res_series_base *b);

/* A change of a series to write (res_change_series); everything borrowed, NULL text: kept. */
struct res_series_edit {
	long long id; /* the series, or (split) the occurrence */
	bool split;
	long long caller;
	bool admin;
	long long if_match, seen_version, seen_series;
	long long room_id;   /* 0: kept */
	const char *purpose; /* NULL: kept */
	bool regenerate, reset;
	const char *recurrence; /* JSON text */
	const char *rrule, *exdates, *time_zone, *first_start, *starts, *until_s;
	long long duration_s; /* 0: kept */
	bool has_given;
	long long given_s;
	bool skip;
	long long max_occurrences;
	const char *attendees;      /* SQL text[] literal (res_attendees_param); NULL: kept */
	const char *online_meeting; /* "true", "false"; NULL: kept */
	const char *meeting_urls;   /* SQL text[] literal of fresh links (b.future, then one per
	                               start); NULL: none */
};

/* Changes a series (or splits one) as res_change_series does: one statement, one transaction.
 * *body as res_repo_series_create (done: the series; conflict, rules, overlap: the details;
 * q->skipped as there).
 * DB_RETRY asks the caller to read and expand again; so does DB_EXCLUSION_VIOLATION. */
enum db_status res_repo_series_change(const struct res_series_edit *e, struct res_request *q,
                                      json_t **body, enum res_series_outcome *outcome);

/* DELETE /reservations/{id}?scope=this_and_following as res_cancel_following does, "begun"
 * judged at now (Unix seconds, the service's clock): RES_SERIES_DONE, _NOT_FOUND, _FORBIDDEN,
 * _NOT_OCCURRENCE, _STALE, _PAST.  One statement, run again (up to 3 times) while the database
 * answers DB_RETRY. */
enum db_status res_repo_series_cancel_following(long long id, long long caller, bool admin,
                                                long long if_match, const char *topic,
                                                long long now, enum res_series_outcome *outcome);

#endif
