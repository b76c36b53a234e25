/* series: the endpoints of recurring reservations (docs/api.md#recurring-reservations): a
 * series create (POST /reservations with a recurrence, after handlers.c checked the body),
 * GET, PUT and DELETE /reservations/series/{id}, and
 * scope=this_and_following on an occurrence.  No SQL here (repo_series.c). */
#ifndef RES_SERIES_H
#define RES_SERIES_H

#include <stdbool.h>

#include <jansson.h>

#include "handlers.h"
#include "http.h"
#include "repo.h"

struct rrule;

/* rules is borrowed for the life of the server (res_handlers_init calls it). */
void res_series_init(const struct res_rules *rules);

/* Books the series that body (borrowed) asks for: rule parsed from its recurrence, skip its
 * on_conflict, c and q as res_handle_create filled them (valid fields, the times as written,
 * the caller, the clock), idem_key/idem_hash NULL without Idempotency-Key.  Replies. */
void res_series_create(struct req *r, const json_t *body, const struct rrule *rule, bool skip,
                       const struct res_change *c, struct res_request *q, const char *idem_key,
                       const char *idem_hash);

void res_handle_series_get(struct req *r);
void res_handle_series_cancel(struct req *r);
/* PUT /reservations/series/{id} (docs/api.md#changing-a-series). */
void res_handle_series_update(struct req *r);

/* PUT and DELETE /reservations/{id}?scope=this_and_following, after handlers.c read the id
 * (and, for DELETE, If-Match: the occurrence's version, 0 = any): a split of the series at
 * occurrence id, or its cut there.  Reply. */
void res_series_update_following(struct req *r, long long id);
void res_series_cancel_following(struct req *r, long long id, long long if_match);

#endif
