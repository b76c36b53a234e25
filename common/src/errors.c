#include "errors.h"

#include "timefmt.h"

struct err_entry {
	int status;
	const char *code;
	const char *message;
};

static const struct err_entry err_table[ERR_KIND_COUNT] = {
	[ERR_NONE] = {500, "internal", "internal error"},
#define ERR_ROW_(kind, status, code, msg) [kind] = {status, code, msg},
	ERR_KINDS(ERR_ROW_)
#undef ERR_ROW_
};

static const struct err_entry *err_lookup(enum err_kind kind)
{
	if ((int)kind <= 0 || kind >= ERR_KIND_COUNT)
		return &err_table[ERR_INTERNAL];
	return &err_table[kind];
}

int err_status(enum err_kind kind)
{
	return err_lookup(kind)->status;
}

const char *err_code(enum err_kind kind)
{
	return err_lookup(kind)->code;
}

const char *err_default_message(enum err_kind kind)
{
	return err_lookup(kind)->message;
}

json_t *err_body(enum err_kind kind, const char *message, const char *request_id, json_t *details,
                 long long timestamp_ms)
{
	const struct err_entry *e = err_lookup(kind);
	char ts[TIMEFMT_RFC3339_LEN];

	timefmt_rfc3339_ms(timestamp_ms, ts);
	json_t *body = json_pack("{s:b, s:s, s:s, s:i, s:s, s:s?}", "error", 1, "code", e->code,
	                         "message", message && *message ? message : e->message,
	                         "status_code", e->status, "timestamp", ts, "request_id",
	                         request_id);
	if (body && details)
		json_object_set_new(body, "details", details);
	else
		json_decref(details);
	return body;
}
