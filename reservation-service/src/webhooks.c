/* The endpoints of webhooks (webhooks.h). */
#include "webhooks.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "countof.h"
#include "jsonx.h"
#include "repo_webhooks.h"
#include "webhook_send.h"

/* The reservation events a webhook may subscribe to (docs/events.md#reservation_events). */
static const char *const webhook_events[] = {
	"reservation_created",        "reservation_updated",        "reservation_cancelled",
	"reservation_series_created", "reservation_series_updated", "reservation_series_cancelled",
	"reservation_approved",       "reservation_rejected",       "reservation_checked_in",
	"reservation_released",       "waitlist_promoted",
};

#define WEBHOOK_SECRET_MIN 16

static bool event_known(const char *name)
{
	for (size_t i = 0; i < countof(webhook_events); i++)
		if (strcmp(webhook_events[i], name) == 0)
			return true;
	return false;
}

/* The events of a body: a non-empty array of known types, duplicates dropped (order kept).
 * A new array, or NULL after adding the problem to details. */
static json_t *read_events(const json_t *events, json_t *details)
{
	json_t *out = json_array();
	char why[96];
	size_t i;
	const json_t *v;
	if (!json_is_array(events) || json_array_size(events) == 0) {
		json_object_set_new(details, "events", json_string("must be a non-empty array"));
		goto fail;
	}
	json_array_foreach(events, i, v) {
		const char *name = json_string_value(v);
		if (!name || !event_known(name)) {
			snprintf(why, sizeof why, "item %zu is not a known event type", i + 1);
			json_object_set_new(details, "events", json_string(why));
			goto fail;
		}
		bool seen = false;
		for (size_t k = 0; k < json_array_size(out) && !seen; k++)
			seen = strcmp(json_string_value(json_array_get(out, k)), name) == 0;
		if (!seen)
			json_array_append_new(out, json_string(name));
	}
	return out;
fail:
	json_decref(out);
	return NULL;
}

void res_handle_webhook_create(struct req *r)
{
	static const struct jsonx_field fields[] = {
		{"url", JSONX_STRING, true},
		{"events", JSONX_ARRAY, true},
		{"secret", JSONX_STRING, true},
	};
	json_t *body = NULL, *details = json_object(), *events = NULL, *hook = NULL;
	char *events_text = NULL;
	const char *url = NULL, *secret = NULL;
	char why[128];

	if (!(body = req_body_object(r)))
		goto out;
	jsonx_check(body, fields, countof(fields), details);
	url = json_string_value(json_object_get(body, "url"));
	if (url && !json_object_get(details, "url") && !res_webhook_url_valid(url, why, sizeof why))
		json_object_set_new(details, "url", json_string(why));
	if (!json_object_get(details, "events") && json_object_get(body, "events"))
		events = read_events(json_object_get(body, "events"), details);
	if (!json_object_get(details, "secret"))
		jsonx_string_len(body, "secret", WEBHOOK_SECRET_MIN, RES_WEBHOOK_SECRET_MAX,
		                 &secret, details);
	if (json_object_size(details)) {
		req_invalid(r, details);
		details = NULL;
		goto out;
	}
	if (!(events_text = json_dumps(events, JSON_COMPACT))) {
		req_error(r, ERR_INTERNAL, NULL, NULL);
		goto out;
	}
	enum db_status st = res_repo_webhook_create(url, events_text, secret, req_user(r)->id,
	                                            &hook);
	if (st != DB_OK) {
		req_db_error(r, st);
		goto out;
	}
	if (!hook) {
		req_error(r, ERR_CONFLICT, NULL,
		          "there are %d webhooks already, the most there may be", RES_WEBHOOKS_MAX);
		goto out;
	}
	char location[48];
	snprintf(location, sizeof location, "/webhooks/%lld",
	         (long long)json_integer_value(json_object_get(hook, "id")));
	req_add_header(r, "Location", location);
	req_reply_json(r, 201, hook);
	hook = NULL;
out:
	free(events_text);
	json_decref(hook);
	json_decref(events);
	json_decref(details);
	json_decref(body);
}

void res_handle_webhook_list(struct req *r)
{
	json_t *list = NULL;
	enum db_status st = res_repo_webhook_list(&list);
	if (st != DB_OK)
		req_db_error(r, st);
	else
		req_reply_json(r, 200, list);
}

static void reply_not_found(struct req *r)
{
	req_error(r, ERR_NOT_FOUND, NULL, "webhook not found");
}

void res_handle_webhook_get(struct req *r)
{
	long long id;
	json_t *hook = NULL;
	if (!req_param_id(r, "id", &id))
		return;
	enum db_status st = res_repo_webhook_get(id, &hook);
	if (st != DB_OK)
		req_db_error(r, st);
	else if (!hook)
		reply_not_found(r);
	else
		req_reply_json(r, 200, hook);
}

void res_handle_webhook_delete(struct req *r)
{
	long long id;
	bool found;
	if (!req_param_id(r, "id", &id))
		return;
	enum db_status st = res_repo_webhook_delete(id, &found);
	if (st != DB_OK)
		req_db_error(r, st);
	else if (!found)
		reply_not_found(r);
	else
		req_reply_empty(r, 204);
}

void res_handle_webhook_deliveries(struct req *r)
{
	long long id, limit, after = 0;
	json_t *hook = NULL, *list = NULL, *next = NULL;
	if (!req_param_id(r, "id", &id) || !req_page_after_id(r, &limit, &after))
		goto out;
	enum db_status st = res_repo_webhook_get(id, &hook);
	if (st == DB_OK && !hook) {
		reply_not_found(r);
		goto out;
	}
	if (st == DB_OK)
		st = res_repo_webhook_deliveries(id, limit, after, &list, &next);
	if (req_page_read(r, st, next)) {
		req_reply_json(r, 200, list);
		list = NULL;
	}
out:
	json_decref(list);
	json_decref(next);
	json_decref(hook);
}
