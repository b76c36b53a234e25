/* Validation of room-service request bodies: pure functions of the JSON (no civetweb, no SQL),
 * so the unit tests and the fuzz targets call them as the handlers do. */
#include "validate.h"

#include <ctype.h>
#include <string.h>

#include "countof.h"
#include "equipment.h"
#include "jsonx.h"
#include "roompolicy.h"
#include "tz.h"

void room_validate(const json_t *body, bool create, struct room_input *in, json_t *details)
{
	static const struct jsonx_field fields[] = {
		{"name", JSONX_STRING, false},
		{"capacity", JSONX_INT, false},
		{"equipment", JSONX_STRING | JSONX_ARRAY | JSONX_NULL, false},
		{"building", JSONX_STRING | JSONX_NULL, false},
		{"floor", JSONX_INT | JSONX_NULL, false},
		{"description", JSONX_STRING | JSONX_NULL, false},
		{"time_zone", JSONX_STRING, false},
		{"active", JSONX_BOOL, false},
		{"policies", JSONX_OBJECT | JSONX_NULL, false},
	};
	bool present = false;
	jsonx_check(body, fields, countof(fields), details);
	if (json_object_get(details, "name") == NULL &&
	    jsonx_string_len(body, "name", 1, 100, &in->name, details) && in->name) {
		/* Surrounding blanks would make "A" and "A " two rooms. */
		if (isspace((unsigned char)in->name[0]) ||
		    isspace((unsigned char)in->name[strlen(in->name) - 1]))
			json_object_set_new(details, "name",
			                    json_string("must not start or end with white space"));
	}
	if (create && !json_object_get(body, "name") && !json_object_get(details, "name"))
		json_object_set_new(details, "name", json_string("is required"));
	if (!json_object_get(details, "capacity") &&
	    jsonx_int_range(body, "capacity", 1, 10000, &in->capacity, &present, details))
		in->has_capacity = present;
	if (create && !json_object_get(body, "capacity") && !json_object_get(details, "capacity"))
		json_object_set_new(details, "capacity", json_string("is required"));

	json_t *eq = json_object_get(body, "equipment");
	if (eq && !json_object_get(details, "equipment")) {
		const char *why = NULL;
		in->equipment = json_is_null(eq) ? json_array() : equipment_normalise(eq, &why);
		if (!in->equipment)
			json_object_set_new(details, "equipment", json_string(why));
	}
	if (json_object_get(body, "building") && !json_object_get(details, "building")) {
		in->has_building = true;
		jsonx_string_len(body, "building", 0, 100, &in->building, details);
	}
	json_t *floor = json_object_get(body, "floor");
	if (floor && !json_object_get(details, "floor")) {
		in->has_floor = true;
		in->floor_null = json_is_null(floor);
		if (!in->floor_null)
			jsonx_int_range(body, "floor", -100, 500, &in->floor, &present, details);
	}
	if (json_object_get(body, "description") && !json_object_get(details, "description")) {
		in->has_description = true;
		jsonx_string_len(body, "description", 0, 1000, &in->description, details);
	}
	if (!json_object_get(details, "time_zone") &&
	    jsonx_string_len(body, "time_zone", 1, TZ_NAME_MAX, &in->time_zone, details) &&
	    in->time_zone && !tz_valid(in->time_zone))
		json_object_set_new(details, "time_zone",
		                    json_string("must be an IANA time zone such as Europe/Berlin"));
	json_t *active = json_object_get(body, "active");
	if (json_is_boolean(active)) {
		in->has_active = true;
		in->active = json_is_true(active);
	}
	/* Absent keeps the stored rules (PUT), null clears them, an object replaces them whole. */
	json_t *policies = json_object_get(body, "policies");
	if (policies && !json_object_get(details, "policies")) {
		in->has_policies = true;
		if (json_is_object(policies))
			room_policy_normalise(policies, &in->policies, details);
	}
}
