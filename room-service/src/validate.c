/* Validation of room-service request bodies: pure functions of the JSON (no civetweb, no SQL),
 * so the unit tests and the fuzz targets call them as the handlers do. */
#include "validate.h"

#include <ctype.h>
#include <string.h>
#include <strings.h>

#include "countof.h"
#include "httpparse.h"
#include "jsonx.h"
#include "tz.h"

#define EQUIPMENT_MAX_ITEMS 50
#define EQUIPMENT_MAX_LEN 50

/* Appends piece[0..len) trimmed to out unless empty or already there (case-insensitive). */
static const char *equipment_add(json_t *out, const char *piece, size_t len, bool from_array)
{
	while (len && isspace((unsigned char)*piece)) {
		piece++;
		len--;
	}
	while (len && isspace((unsigned char)piece[len - 1]))
		len--;
	if (len == 0)
		return from_array ? "items must not be empty" : NULL;
	char item[EQUIPMENT_MAX_LEN * 4 + 1];
	if (len > sizeof item - 1)
		return "items must be 1 to 50 characters long";
	memcpy(item, piece, len);
	item[len] = '\0';
	if (jsonx_utf8_len(item) > EQUIPMENT_MAX_LEN)
		return "items must be 1 to 50 characters long";
	size_t i;
	json_t *v;
	json_array_foreach(out, i, v) {
		if (strcasecmp(json_string_value(v), item) == 0)
			return NULL;
	}
	if (json_array_size(out) == EQUIPMENT_MAX_ITEMS)
		return "at most 50 items";
	json_array_append_new(out, json_string(item));
	return NULL;
}

json_t *room_equipment_normalise(const json_t *value, const char **why)
{
	json_t *out = json_array();
	*why = NULL;
	if (json_is_string(value)) {
		const char *s = json_string_value(value);
		if (strlen(s) != json_string_length(value))
			*why = "must not contain NUL characters";
		const char *item;
		size_t len;
		while (!*why && httpparse_list_next(&s, &item, &len))
			*why = equipment_add(out, item, len, false);
	} else if (json_is_array(value)) {
		size_t i;
		json_t *v;
		json_array_foreach(value, i, v) {
			if (!json_is_string(v) ||
			    strlen(json_string_value(v)) != json_string_length(v)) {
				*why = "items must be strings";
				break;
			}
			const char *s = json_string_value(v);
			if ((*why = equipment_add(out, s, strlen(s), true)) != NULL)
				break;
		}
	} else {
		*why = "must be an array of strings or a comma-separated string";
	}
	if (*why) {
		json_decref(out);
		return NULL;
	}
	return out;
}

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
		in->equipment = json_is_null(eq) ? json_array()
		                                 : room_equipment_normalise(eq, &why);
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
}
