/* Validation of reservation-service requests: pure functions of the JSON and the rules (no
 * civetweb, no SQL), so the unit tests and the fuzz targets call them as the handlers do. */
#include "validate.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "countof.h"
#include "jsonx.h"
#include "mail.h"
#include "rrule.h"

#define PURPOSE_MAX 200

/* True when addr equals one of a's addresses, ignoring ASCII case. */
static bool attendee_listed(const struct res_attendees *a, const char *addr)
{
	for (size_t i = 0; i < a->n; i++)
		if (strcasecmp(a->list[i], addr) == 0)
			return true;
	return false;
}

/* ATTENDEE_DOMAINS (res_validate_set_attendee_domains): the domains attendees may be at, or
 * none (any domain).  Written once before threads start, read-only afterwards. */
static char attendee_domains_text[RES_ATTENDEE_DOMAINS_MAX_LEN + 1];
static const char *attendee_domains[RES_ATTENDEE_DOMAINS_MAX];
static size_t attendee_domains_n;

/* Splits list (comma-separated, blanks around items allowed) into out[0..*n), pointers into
 * text (a copy, written).  False for an empty item, one that is not a domain name (letters,
 * digits, hyphens and dots, at most 253 characters), too many or a list too long. */
static bool domains_split(const char *list, char *text, const char **out, size_t *n)
{
	*n = 0;
	if (strlen(list) > RES_ATTENDEE_DOMAINS_MAX_LEN)
		return false;
	strcpy(text, list);
	for (char *item = text, *next; item; item = next) {
		next = strchr(item, ',');
		if (next)
			*next++ = '\0';
		item += strspn(item, " \t");
		size_t len = strcspn(item, " \t");
		if (item[len + strspn(item + len, " \t")] != '\0')
			return false; /* a blank inside the item */
		item[len] = '\0';
		if (len == 0 || len > 253 ||
		    strspn(item, "abcdefghijklmnopqrstuvwxyz"
		                 "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-") != len ||
		    item[0] == '.' || item[len - 1] == '.' || *n == RES_ATTENDEE_DOMAINS_MAX)
			return false;
		out[(*n)++] = item;
	}
	return true;
}

bool res_validate_attendee_domains_valid(const char *list, char *why, size_t whylen)
{
	char text[RES_ATTENDEE_DOMAINS_MAX_LEN + 1];
	const char *items[RES_ATTENDEE_DOMAINS_MAX];
	size_t n;
	if (!*list || domains_split(list, text, items, &n))
		return true;
	snprintf(why, whylen,
	         "must be empty or a comma-separated list of at most %d domain names "
	         "(example.com,example.org)",
	         RES_ATTENDEE_DOMAINS_MAX);
	return false;
}

bool res_validate_set_attendee_domains(const char *list)
{
	attendee_domains_n = 0;
	return !*list ||
	       domains_split(list, attendee_domains_text, attendee_domains, &attendee_domains_n);
}

/* True when addr's domain (after the last '@') is allowed: any without ATTENDEE_DOMAINS. */
static bool attendee_domain_allowed(const char *addr)
{
	const char *at = strrchr(addr, '@');
	if (attendee_domains_n == 0)
		return true;
	for (size_t i = 0; at && i < attendee_domains_n; i++)
		if (strcasecmp(at + 1, attendee_domains[i]) == 0)
			return true;
	return false;
}

static void attendees_too_many(json_t *details)
{
	json_object_set_new(details, "attendees",
	                    json_sprintf("must list at most %d addresses besides the organizer's",
	                                 RES_ATTENDEES_MAX));
}

void res_validate_attendees(const json_t *body, struct res_attendees *a, enum res_online *online,
                            json_t *details)
{
	const json_t *list = json_object_get(body, "attendees");
	const json_t *flag = json_object_get(body, "online_meeting");
	size_t i;
	const json_t *item;
	bool too_many = false;
	a->given = list != NULL;
	a->n = 0;
	if (json_is_boolean(flag) && !json_object_get(details, "online_meeting"))
		*online = json_is_true(flag) ? RES_ONLINE_ON : RES_ONLINE_OFF;
	if (!list || json_is_null(list) || json_object_get(details, "attendees"))
		return;
	if (!json_is_array(list)) {
		json_object_set_new(details, "attendees",
		                    json_string("must be an array of e-mail addresses"));
		return;
	}
	if (json_array_size(list) > RES_ATTENDEES_ITEMS_MAX) {
		json_object_set_new(details, "attendees",
		                    json_sprintf("must be an array of at most %d items",
		                                 RES_ATTENDEES_ITEMS_MAX));
		return;
	}
	/* De-duplicated as they come, so that the work stays bounded: past one more than the
	 * limit the list is refused anyway, and the rest is only checked. */
	json_array_foreach(list, i, item) {
		const char *addr = json_string_value(item);
		/* A string with a NUL (\u0000) would be cut short there: refused as it is. */
		if (!addr || strlen(addr) != json_string_length(item) ||
		    !mail_address_valid(addr)) {
			json_object_set_new(
				details, "attendees",
				json_sprintf("item %zu is not an e-mail address", i + 1));
			a->n = 0;
			return;
		}
		if (!attendee_domain_allowed(addr)) {
			json_object_set_new(
				details, "attendees",
				json_sprintf("item %zu: the domain %s is not one attendees "
			                     "may be invited from",
			                     i + 1, strrchr(addr, '@') + 1));
			a->n = 0;
			return;
		}
		if (too_many || attendee_listed(a, addr))
			continue;
		if (a->n < countof(a->list))
			a->list[a->n++] = addr;
		else
			too_many = true;
	}
	if (too_many) {
		attendees_too_many(details);
		a->n = 0;
	}
}

bool res_attendees_fit(const struct res_attendees *a, const char *organizer, json_t *details)
{
	if (a->n <= RES_ATTENDEES_MAX || (organizer && attendee_listed(a, organizer)))
		return true;
	attendees_too_many(details);
	return false;
}

/* The members of a POST /reservations body; the first BOOKING_WAITLIST_FIELDS are those of a
 * POST /waitlist body. */
static const struct jsonx_field booking_fields[] = {
	{"room_id", JSONX_INT, true},
	{"start_time", JSONX_STRING, true},
	{"end_time", JSONX_STRING, true},
	{"purpose", JSONX_STRING | JSONX_NULL, false},
	{"recurrence", JSONX_STRING | JSONX_OBJECT, false},
	{"on_conflict", JSONX_STRING, false},
	{"attendees", JSONX_ARRAY | JSONX_NULL, false},
	{"online_meeting", JSONX_BOOL, false},
};
#define BOOKING_WAITLIST_FIELDS 4

/* The first n booking_fields of body, and its room_id and purpose into c. */
static void check_booking(const json_t *body, size_t n, struct res_change *c, json_t *details)
{
	bool present = false;
	jsonx_check(body, booking_fields, n, details);
	if (!json_object_get(details, "room_id"))
		jsonx_int_range(body, "room_id", 1, RES_ID_MAX, &c->room_id, &present, details);
	if (!json_object_get(details, "purpose"))
		jsonx_string_len(body, "purpose", 0, PURPOSE_MAX, &c->purpose, details);
}

void res_validate_create(const json_t *body, struct res_change *c, json_t *details)
{
	check_booking(body, countof(booking_fields), c, details);
	res_validate_attendees(body, &c->attendees, &c->online_meeting, details);
	if (!json_object_get(details, "on_conflict") && json_object_get(body, "on_conflict") &&
	    !json_object_get(body, "recurrence"))
		json_object_set_new(details, "on_conflict",
		                    json_string("applies only to a series (with recurrence)"));
}

void res_validate_waitlist(const json_t *body, struct res_change *c, json_t *details)
{
	check_booking(body, BOOKING_WAITLIST_FIELDS, c, details);
}

/* on_conflict of body (jsonx_check checked its type): "fail" (default) or "skip" (*skip). */
static void read_on_conflict(const json_t *body, bool *skip, json_t *details)
{
	const char *on_conflict = json_string_value(json_object_get(body, "on_conflict"));
	*skip = false;
	if (json_object_get(details, "on_conflict") || !on_conflict)
		return;
	if (strcmp(on_conflict, "skip") == 0)
		*skip = true;
	else if (strcmp(on_conflict, "fail") != 0)
		json_object_set_new(details, "on_conflict", json_string("must be fail or skip"));
}

void res_validate_recurrence(const json_t *body, struct rrule *rule, bool *skip, json_t *details)
{
	struct rrule_error err;
	if (json_object_get(details, "recurrence") == NULL &&
	    !rrule_parse(json_object_get(body, "recurrence"), rule, &err))
		json_object_set_new(details, "recurrence", json_string(err.reason));
	read_on_conflict(body, skip, details);
}

void res_validate_series_change(const json_t *body, struct res_series_change *c, struct rrule *rule,
                                json_t *details)
{
	static const struct jsonx_field fields[] = {
		{"room_id", JSONX_INT, false},
		{"start_time", JSONX_STRING, false},
		{"end_time", JSONX_STRING, false},
		{"purpose", JSONX_STRING | JSONX_NULL, false},
		{"recurrence", JSONX_STRING | JSONX_OBJECT, false},
		{"on_conflict", JSONX_STRING, false},
		{"attendees", JSONX_ARRAY | JSONX_NULL, false},
		{"online_meeting", JSONX_BOOL, false},
	};
	static const char *const changes[] = {"room_id",       "start_time", "end_time",
	                                      "purpose",       "recurrence", "attendees",
	                                      "online_meeting"};
	bool present = false, changed = false;
	struct rrule_error err;
	memset(c, 0, sizeof *c);
	jsonx_check(body, fields, countof(fields), details);
	for (size_t i = 0; i < countof(changes); i++)
		changed = changed || json_object_get(body, changes[i]);
	if (!changed)
		json_object_set_new(details, "body",
		                    json_string("must change start_time and end_time, recurrence, "
		                                "room_id, purpose, attendees or online_meeting"));
	if (!json_object_get(details, "room_id"))
		jsonx_int_range(body, "room_id", 1, RES_ID_MAX, &c->room_id, &present, details);
	if (!json_object_get(details, "purpose") && json_object_get(body, "purpose")) {
		jsonx_string_len(body, "purpose", 0, PURPOSE_MAX, &c->purpose, details);
		if (!c->purpose)
			c->purpose = "";
	}
	res_validate_attendees(body, &c->attendees, &c->online_meeting, details);
	/* Both or neither: together they are the new first start and the length. */
	bool has_start = json_object_get(body, "start_time") != NULL;
	if (has_start != (json_object_get(body, "end_time") != NULL))
		json_object_set_new(details, has_start ? "end_time" : "start_time",
		                    json_string(has_start ? "must be given with start_time"
		                                          : "must be given with end_time"));
	c->has_rule = json_object_get(body, "recurrence") &&
	              !json_object_get(details, "recurrence");
	if (c->has_rule && !rrule_parse(json_object_get(body, "recurrence"), rule, &err)) {
		json_object_set_new(details, "recurrence", json_string(err.reason));
		c->has_rule = false;
	}
	read_on_conflict(body, &c->skip, details);
}

void res_validate_update(const json_t *body, struct res_change *c, json_t *details)
{
	static const struct jsonx_field fields[] = {
		{"room_id", JSONX_INT, false},
		{"start_time", JSONX_STRING, false},
		{"end_time", JSONX_STRING, false},
		{"purpose", JSONX_STRING | JSONX_NULL, false},
		{"attendees", JSONX_ARRAY | JSONX_NULL, false},
		{"online_meeting", JSONX_BOOL, false},
	};
	bool present = false;
	jsonx_check(body, fields, countof(fields), details);
	if (json_object_size(body) == 0)
		json_object_set_new(
			details, "body",
			json_string("must change room_id, start_time, end_time, purpose, "
		                    "attendees or online_meeting"));
	res_validate_attendees(body, &c->attendees, &c->online_meeting, details);
	if (!json_object_get(details, "room_id"))
		jsonx_int_range(body, "room_id", 1, RES_ID_MAX, &c->room_id, &present, details);
	if (!json_object_get(details, "purpose") && json_object_get(body, "purpose")) {
		jsonx_string_len(body, "purpose", 0, PURPOSE_MAX, &c->purpose, details);
		if (!c->purpose)
			c->purpose = "";
	}
}

bool res_validate_time(const char *field, const char *text, struct res_time *t, json_t *details)
{
	struct timefmt_time parsed;
	if (!text || !timefmt_parse_rfc3339(text, &parsed)) {
		json_object_set_new(
			details, field,
			json_string("must be an RFC 3339 date-time, e.g. "
		                    "2026-11-23T10:00:00Z, +02:00 or none (room time)"));
		return false;
	}
	if (parsed.has_fraction) {
		json_object_set_new(details, field, json_string("must be in whole seconds"));
		return false;
	}
	t->local = !parsed.has_offset;
	t->utc = parsed.has_offset ? parsed.utc : 0;
	timefmt_local_text(&parsed, t->text);
	return true;
}

void res_validate_span(const struct res_span_rules *rules, long long now, long long start,
                       long long end, json_t *details)
{
	if (end <= start) {
		json_object_set_new(details, "end_time", json_string("must be after start_time"));
		return;
	}
	if (start <= now)
		json_object_set_new(details, "start_time", json_string("must be in the future"));
	else if (start > now + rules->horizon_days * 86400)
		json_object_set_new(
			details, "start_time",
			json_sprintf("must be within %lld days from now", rules->horizon_days));
	if (end - start < rules->min_minutes * 60 || end - start > rules->max_minutes * 60)
		json_object_set_new(details, "end_time",
		                    json_sprintf("duration must be between %lld and %lld minutes",
		                                 rules->min_minutes, rules->max_minutes));
}

bool res_validate_idempotency_key(const char *key)
{
	size_t n = strlen(key);
	if (n == 0 || n > 255)
		return false;
	for (const char *p = key; *p; p++)
		if ((unsigned char)*p < 0x21 || (unsigned char)*p > 0x7e)
			return false;
	return true;
}
