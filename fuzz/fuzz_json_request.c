/* Fuzzes request-body parsing and validation: the services' own validators (their
 * src/validate.c), linked as the services link them.  The first byte picks the resource (its
 * low three bits; bit 3 picks the second body where there are two), the rest is the body as it
 * arrives (jsonx_parse_object, as req_body_object does):
 *   0  PUT /users/profile                     user_validate_profile
 *   1  PUT /admin/users/{id}                  user_validate_admin
 *   2  POST /rooms                            room_validate (create), policies included
 *   3  PUT /rooms/{id}                        room_validate (partial)
 *   4  POST /reservations, PUT /reservations/{id}
 *                                             res_validate_create / res_validate_update, then
 *                                             the times through res_validate_time; with bit 4
 *                                             POST /waitlist (res_validate_waitlist)
 *   5  POST /auth/logout, POST /auth/refresh  user_validate_logout / user_validate_refresh
 *   6  the body's "equipment"                 equipment_normalise
 *   7  every integer member                   jsonx_int_range, bounds from the first byte
 * Beyond "no crash, no leak", every problem must be reported as field -> reason, and what
 * validation accepts must lie within the bounds of docs/api.md. */
#include "fuzz.h"

#include <ctype.h>
#include <strings.h>

#include "../reservation-service/src/validate.h"
#include "roompolicy.h"
#include "../room-service/src/validate.h"
#include "../user-service/src/validate.h"
#include "jsonx.h"
#include "tz.h"

/* ---- user-service ---- */

static void user_profile(const json_t *body, json_t *details)
{
	struct user_profile_change c = {0};
	user_validate_profile(body, &c, details);
	fuzz_check_string(body, "name", c.name, 1, 200);
	/* A cleared picture is "" whatever the body said (null or ""). */
	if (c.picture && *c.picture)
		fuzz_check_string(body, "picture", c.picture, 0, 2048);
	if (json_object_size(details) == 0) {
		FUZZ_CHECK(c.name || c.picture);
		FUZZ_CHECK(!c.picture || !*c.picture || strncmp(c.picture, "http", 4) == 0);
	}
}

static void user_admin(const json_t *body, json_t *details)
{
	struct user_patch p = {0};
	user_validate_admin(body, &p, details);
	fuzz_check_string(body, "name", p.name, 1, 200);
	fuzz_check_string(body, "email", p.email, 3, 320);
	fuzz_check_string(body, "role", p.role, 1, 15);
	if (json_object_size(details) == 0) {
		FUZZ_CHECK(!p.email || strchr(p.email, '@'));
		FUZZ_CHECK(!p.role || strcmp(p.role, "admin") == 0 ||
		           strcmp(p.role, "employee") == 0);
	}
}

static void user_tokens(const json_t *body, bool refresh, json_t *details)
{
	const char *token = NULL, *cookie_token = NULL;
	bool all = false, cookie_all = false;
	json_t *cookie_details = json_object();
	if (refresh) {
		user_validate_refresh(body, false, &token, details);
		user_validate_refresh(body, true, &cookie_token, cookie_details);
	} else {
		user_validate_logout(body, false, &token, &all, details);
		user_validate_logout(body, true, &cookie_token, &cookie_all, cookie_details);
	}
	fuzz_check_string(body, "refresh_token", token, 1, 512);
	fuzz_check_string(body, "refresh_token", cookie_token, 1, 512);
	if (json_object_size(details) == 0) {
		FUZZ_CHECK(token || (!refresh && all));
		/* With the refresh cookie the token is optional, nothing else changes. */
		FUZZ_CHECK(json_object_size(cookie_details) == 0 && cookie_token == token &&
		           cookie_all == all);
	}
	json_decref(cookie_details);
}

/* ---- room-service ---- */

/* Accepted policies: present in the body; a non-empty object (no rules is NULL); normalised
 * already, so normalising them again accepts them unchanged. */
static void room_policies(const json_t *body, const struct room_input *in)
{
	FUZZ_CHECK(in->has_policies == (json_object_get(body, "policies") != NULL));
	FUZZ_CHECK(in->has_policies || !in->policies);
	if (!in->policies)
		return;
	FUZZ_CHECK(json_is_object(in->policies) && json_object_size(in->policies) > 0);
	json_t *again = NULL, *details = json_object();
	FUZZ_CHECK(room_policy_normalise(in->policies, &again, details));
	FUZZ_CHECK(json_object_size(details) == 0 && json_equal(again, in->policies));
	json_decref(again);
	json_decref(details);
}

static void room_body(const json_t *body, bool create, json_t *details)
{
	struct room_input in = {0};
	room_validate(body, create, &in, details);
	if (json_object_size(details) == 0) {
		if (create)
			FUZZ_CHECK(in.name && in.has_capacity);
		fuzz_check_string(body, "name", in.name, 1, 100);
		if (in.name)
			FUZZ_CHECK(!isspace((unsigned char)in.name[0]) &&
			           !isspace((unsigned char)in.name[strlen(in.name) - 1]));
		if (in.has_capacity)
			FUZZ_CHECK(in.capacity >= 1 && in.capacity <= 10000);
		if (in.has_floor && !in.floor_null)
			FUZZ_CHECK(in.floor >= -100 && in.floor <= 500);
		fuzz_check_string(body, "building", in.building, 0, 100);
		fuzz_check_string(body, "description", in.description, 0, 1000);
		if (in.time_zone)
			FUZZ_CHECK(tz_valid(in.time_zone));
		if (in.equipment)
			fuzz_check_equipment(in.equipment);
		room_policies(body, &in);
	}
	json_decref(in.equipment);
	json_decref(in.policies);
}

/* ---- reservation-service ---- */

/* A time member (when a string) as the handlers read it before they ask the database about
 * wall-clock times: an instant, or the wall-clock text of the input itself. */
static void reservation_time(const json_t *body, const char *field, json_t *details)
{
	const char *text = json_string_value(json_object_get(body, field));
	struct res_time t;
	if (!text || !res_validate_time(field, text, &t, details))
		return;
	FUZZ_CHECK(strlen(t.text) == 19 && strncasecmp(t.text, text, 19) == 0);
	if (!t.local)
		FUZZ_CHECK(strlen(text) > 19);
}

static void reservation_body(const json_t *body, bool update, json_t *details)
{
	struct res_change c = {.room_id = 1, .purpose = "current"};
	if (update)
		res_validate_update(body, &c, details);
	else
		res_validate_create(body, &c, details);
	if (json_object_size(details) == 0) {
		FUZZ_CHECK(c.room_id >= 1 && c.room_id <= 9007199254740991LL);
		if (c.purpose && *c.purpose && strcmp(c.purpose, "current") != 0)
			fuzz_check_string(body, "purpose", c.purpose, 0, 200);
		if (!update)
			FUZZ_CHECK(json_is_string(json_object_get(body, "start_time")) &&
			           json_is_string(json_object_get(body, "end_time")));
		reservation_time(body, "start_time", details);
		reservation_time(body, "end_time", details);
	}
}

/* A POST /waitlist body: what validation accepts names a room, both times and a purpose within
 * bounds, and no other member. */
static void waitlist_body(const json_t *body, json_t *details)
{
	struct res_change c = {0};
	res_validate_waitlist(body, &c, details);
	if (json_object_size(details) == 0) {
		FUZZ_CHECK(c.room_id >= 1 && c.room_id <= 9007199254740991LL);
		if (c.purpose && *c.purpose)
			fuzz_check_string(body, "purpose", c.purpose, 0, 200);
		FUZZ_CHECK(json_is_string(json_object_get(body, "start_time")) &&
		           json_is_string(json_object_get(body, "end_time")));
		FUZZ_CHECK(json_object_size(body) <= 4);
		reservation_time(body, "start_time", details);
		reservation_time(body, "end_time", details);
	}
}

/* ---- the generic checks ---- */

/* Every integer member through jsonx_int_range with bounds taken from the input. */
static void int_ranges(const json_t *body, long long min, long long max, json_t *details)
{
	const char *key;
	json_t *v;
	json_object_foreach((json_t *)body, key, v) {
		long long out = 0;
		bool present = false;
		if (jsonx_int_range(body, key, min, max, &out, &present, details) && present)
			FUZZ_CHECK(out >= min && out <= max && out == json_integer_value(v));
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char err[256] = "";
	if (size < 1)
		return 0;
	json_t *body = jsonx_parse_object((const char *)data + 1, size - 1, err, sizeof err);
	if (!body) {
		FUZZ_CHECK(err[0] != '\0');
		return 0;
	}
	FUZZ_CHECK(json_is_object(body));
	json_t *details = json_object();
	bool second = data[0] & 8;
	switch (data[0] % 8) {
	case 0:
		user_profile(body, details);
		break;
	case 1:
		user_admin(body, details);
		break;
	case 2:
	case 3:
		room_body(body, data[0] % 8 == 2, details);
		break;
	case 4:
		if (data[0] & 16)
			waitlist_body(body, details);
		else
			reservation_body(body, second, details);
		break;
	case 5:
		user_tokens(body, second, details);
		break;
	case 6:
		fuzz_room_equipment(json_object_get(body, "equipment"), details);
		break;
	default:
		int_ranges(body, -(long long)(data[0] >> 3) * 1000,
		           (long long)(data[0] >> 3) * 1000, details);
		break;
	}
	fuzz_check_details(details);
	/* The 422 response: the reasons must serialise. */
	char *text = json_dumps(details, JSON_COMPACT);
	FUZZ_CHECK(text != NULL);
	free(text);
	json_decref(details);
	json_decref(body);
	return 0;
}
