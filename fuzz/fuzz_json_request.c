/* Fuzzes request-body parsing and validation.  The first byte picks the resource, the rest is
 * the body as it arrives (jsonx_parse_object, as req_body_object does):
 *   0  PUT /users/profile        user-service's field table and checks (mirrored below: its
 *   1  PUT /admin/users/{id}     handlers are not exported)
 *   2  POST /rooms               room_validate (create)
 *   3  PUT /rooms/{id}           room_validate (partial)
 *   4  POST /reservations        res_validate_create, then the times as the handler reads them
 *   5  POST /auth/logout         (mirrored; refresh uses the same member)
 *   6  the body's "equipment"    room_equipment_normalise
 * Beyond "no crash, no leak", every problem must be reported as field -> reason, and what
 * validation accepts must lie within the bounds of docs/api.md. */
#include "fuzz.h"

#include "jsonx.h"

static void user_profile(const json_t *body, json_t *details)
{
	static const struct jsonx_field fields[] = {{"name", JSONX_STRING, false},
	                                            {"picture", JSONX_STRING | JSONX_NULL, false},
	                                            {"email", JSONX_STRING, false},
	                                            {"role", JSONX_STRING, false}};
	const char *name = NULL, *picture = NULL;
	jsonx_check(body, fields, 4, details);
	if (jsonx_string_len(body, "name", 1, 200, &name, details))
		fuzz_check_string(body, "name", name, 1, 200);
	if (jsonx_string_len(body, "picture", 0, 2048, &picture, details))
		fuzz_check_string(body, "picture", picture, 0, 2048);
}

static void user_admin(const json_t *body, json_t *details)
{
	static const struct jsonx_field fields[] = {{"name", JSONX_STRING, false},
	                                            {"email", JSONX_STRING, false},
	                                            {"role", JSONX_STRING, false},
	                                            {"disabled", JSONX_BOOL, false}};
	const char *name = NULL, *email = NULL, *role = NULL;
	jsonx_check(body, fields, 4, details);
	if (jsonx_string_len(body, "name", 1, 200, &name, details))
		fuzz_check_string(body, "name", name, 1, 200);
	if (jsonx_string_len(body, "email", 3, 320, &email, details))
		fuzz_check_string(body, "email", email, 3, 320);
	if (jsonx_string_len(body, "role", 1, 15, &role, details))
		fuzz_check_string(body, "role", role, 1, 15);
}

static void user_logout(const json_t *body, json_t *details)
{
	static const struct jsonx_field fields[] = {{"refresh_token", JSONX_STRING, false},
	                                            {"all", JSONX_BOOL, false}};
	const char *token = NULL;
	bool ok = jsonx_check(body, fields, 2, details);
	FUZZ_CHECK(ok == (json_object_size(details) == 0));
	if (jsonx_string_len(body, "refresh_token", 1, 512, &token, details))
		fuzz_check_string(body, "refresh_token", token, 1, 512);
}

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
	switch (data[0] % 8) {
	case 0:
		user_profile(body, details);
		break;
	case 1:
		user_admin(body, details);
		break;
	case 2:
	case 3:
		fuzz_room_body(body, data[0] % 8 == 2, details);
		break;
	case 4:
		fuzz_reservation_body(body, details);
		break;
	case 5:
		user_logout(body, details);
		break;
	case 6:
		fuzz_room_equipment(json_object_get(body, "equipment"), details);
		break;
	default:
		int_ranges(body, -(long long)(data[0] >> 3) * 1000, (long long)(data[0] >> 3) * 1000,
		           details);
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
