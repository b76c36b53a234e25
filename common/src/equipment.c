/* The equipment list (equipment.h): the same reading for a body's array or string and a query's
 * comma-separated ?equipment=. */
#include "equipment.h"

#include <ctype.h>
#include <stdbool.h>
#include <string.h>
#include <strings.h>

#include "httpparse.h"
#include "jsonx.h"

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

json_t *equipment_normalise(const json_t *value, const char **why)
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
