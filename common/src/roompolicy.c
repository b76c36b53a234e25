/* A room's booking rules: one table of the known keys with their kind and bounds
 * (docs/api.md#room-policies, design in /work/wt/design15.md), checked member by member; the
 * rules that relate two members afterwards. */
#include "roompolicy.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "countof.h"
#include "jsonx.h"

enum policy_kind {
	POLICY_INT,   /* integer within min..max */
	POLICY_BOOL,  /* true or false */
	POLICY_HOURS, /* opening hours per weekday */
	POLICY_ROLES, /* non-empty array of role names */
	POLICY_USERS, /* non-empty array of user ids */
};

/* Every known policy, in the order of docs/api.md. */
static const struct policy_key {
	const char *name;
	enum policy_kind kind;
	long long min, max;
} policy_keys[] = {
	{"opening_hours", POLICY_HOURS, 0, 0},
	{"min_duration_minutes", POLICY_INT, 1, 1440},
	{"max_duration_minutes", POLICY_INT, 1, 1440},
	{"buffer_minutes", POLICY_INT, 0, 240},
	{"max_advance_days", POLICY_INT, 1, 3650},
	{"max_bookings_per_user_per_day", POLICY_INT, 1, 1000},
	{"max_bookings_per_user_per_week", POLICY_INT, 1, 1000},
	{"allowed_roles", POLICY_ROLES, 0, 0},
	{"allowed_users", POLICY_USERS, 1, 999999999999999999LL},
	{"requires_approval", POLICY_BOOL, 0, 0},
	{"check_in_required", POLICY_BOOL, 0, 0},
	{"check_in_window_minutes", POLICY_INT, 0, 240},
	{"release_after_minutes", POLICY_INT, 1, 240},
};

static const unsigned policy_types[] = {
	[POLICY_INT] = JSONX_INT,     [POLICY_BOOL] = JSONX_BOOL,   [POLICY_HOURS] = JSONX_OBJECT,
	[POLICY_ROLES] = JSONX_ARRAY, [POLICY_USERS] = JSONX_ARRAY,
};

/* The weekdays as opening_hours names them, Monday first (ISO 8601), and the roles of the
 * suite's access tokens (common/src/auth.c). */
static const char *const policy_days[] = {"mon", "tue", "wed", "thu", "fri", "sat", "sun"};
static const char *const policy_roles[] = {"admin", "employee"};

#define WHY_MAX 160

/* "HH:MM" (two digits each, 00:00..24:00) as minutes since midnight, or -1. */
static int clock_minutes(const json_t *v)
{
	const char *s = json_string_value(v);
	if (!s || strlen(s) != 5 || s[2] != ':')
		return -1;
	for (int i = 0; i < 5; i++)
		if (i != 2 && (s[i] < '0' || s[i] > '9'))
			return -1;
	int h = (s[0] - '0') * 10 + (s[1] - '0'), m = (s[3] - '0') * 10 + (s[4] - '0');
	if (h > 24 || m > 59 || (h == 24 && m > 0))
		return -1;
	return h * 60 + m;
}

/* One day's intervals (borrowed array): a new copy, or NULL with the reason in why. */
static json_t *day_normalise(const char *day, const json_t *intervals, char *why)
{
	size_t i;
	json_t *iv;
	int last_end = -1;
	if (!json_is_array(intervals)) {
		snprintf(why, WHY_MAX,
		         "%s: must be an array of [\"HH:MM\", \"HH:MM\"] intervals, [] (closed) or "
		         "null (open all day)",
		         day);
		return NULL;
	}
	if (json_array_size(intervals) > ROOM_POLICY_MAX_INTERVALS) {
		snprintf(why, WHY_MAX, "%s: more than %d intervals", day,
		         ROOM_POLICY_MAX_INTERVALS);
		return NULL;
	}
	json_array_foreach(intervals, i, iv) {
		int start = clock_minutes(json_array_get(iv, 0));
		int end = clock_minutes(json_array_get(iv, 1));
		if (!json_is_array(iv) || json_array_size(iv) != 2 || start < 0 || end < 0) {
			snprintf(why, WHY_MAX,
			         "%s: interval %zu must be [\"HH:MM\", \"HH:MM\"] (00:00 to 24:00)",
			         day, i + 1);
			return NULL;
		}
		if (start >= end) {
			snprintf(why, WHY_MAX, "%s: interval %zu must end after it starts", day,
			         i + 1);
			return NULL;
		}
		/* Touching intervals would split one opening in two, and a booking must lie
		 * inside one interval: they are refused, not joined silently. */
		if (start <= last_end) {
			snprintf(why, WHY_MAX,
			         "%s: interval %zu must start after interval %zu ends (in order, "
			         "neither overlapping nor touching)",
			         day, i + 1, i);
			return NULL;
		}
		last_end = end;
	}
	return json_deep_copy(intervals);
}

/* opening_hours (borrowed object): a new object of the days given (lower-case, Monday
 * first), null days dropped, or JSON null when no day remains; or NULL with the reason in
 * why. */
static json_t *hours_normalise(const json_t *hours, char *why)
{
	json_t *days[countof(policy_days)] = {NULL}, *out = NULL;
	bool given[countof(policy_days)] = {false};
	const char *key;
	json_t *v;
	json_object_foreach((json_t *)hours, key, v) {
		size_t d = 0;
		while (d < countof(policy_days) && strcasecmp(key, policy_days[d]) != 0)
			d++;
		if (d == countof(policy_days)) {
			snprintf(why, WHY_MAX,
			         "has a key that is no day: mon, tue, wed, thu, fri, sat "
			         "or sun");
			goto out;
		}
		if (given[d]) {
			snprintf(why, WHY_MAX, "%s: given twice", policy_days[d]);
			goto out;
		}
		given[d] = true;
		if (!json_is_null(v) && !(days[d] = day_normalise(policy_days[d], v, why)))
			goto out;
	}
	out = json_object();
	for (size_t d = 0; out && d < countof(policy_days); d++)
		if (days[d] && json_object_set(out, policy_days[d], days[d]) != 0) {
			json_decref(out);
			out = NULL;
		}
	if (!out)
		snprintf(why, WHY_MAX, "cannot be stored (out of memory)");
	else if (json_object_size(out) == 0) {
		/* Every day open all day: no rule. */
		json_decref(out);
		out = json_null();
	}
out:
	for (size_t d = 0; d < countof(policy_days); d++)
		json_decref(days[d]);
	return out;
}

/* allowed_roles (borrowed array): a new array of the roles named, in policy_roles' order; or
 * NULL with the reason in why. */
static json_t *roles_normalise(const json_t *roles, char *why)
{
	bool named[countof(policy_roles)] = {false};
	size_t i;
	json_t *v, *out;
	if (json_array_size(roles) == 0) {
		snprintf(why, WHY_MAX, "must name at least one role (null = no restriction)");
		return NULL;
	}
	json_array_foreach(roles, i, v) {
		size_t r = 0;
		while (r < countof(policy_roles) &&
		       !(json_is_string(v) && strcmp(json_string_value(v), policy_roles[r]) == 0))
			r++;
		if (r == countof(policy_roles)) {
			snprintf(why, WHY_MAX, "items must be \"admin\" or \"employee\"");
			return NULL;
		}
		named[r] = true;
	}
	out = json_array();
	for (size_t r = 0; out && r < countof(policy_roles); r++)
		if (named[r] && json_array_append_new(out, json_string(policy_roles[r])) != 0) {
			json_decref(out);
			out = NULL;
		}
	if (!out)
		snprintf(why, WHY_MAX, "cannot be stored (out of memory)");
	return out;
}

static int cmp_ids(const void *a, const void *b)
{
	long long x = *(const long long *)a, y = *(const long long *)b;
	return (x > y) - (x < y);
}

/* allowed_users (borrowed array of user ids within min..max): a new array of the ids,
 * ascending, each once; or NULL with the reason in why. */
static json_t *users_normalise(const json_t *users, long long min, long long max, char *why)
{
	size_t n = json_array_size(users), i;
	long long *ids = NULL;
	json_t *v, *out = NULL;
	if (n == 0 || n > ROOM_POLICY_MAX_USERS) {
		snprintf(why, WHY_MAX, "must name 1 to %d users (null = no restriction)",
		         ROOM_POLICY_MAX_USERS);
		return NULL;
	}
	json_array_foreach(users, i, v) {
		if (!json_is_integer(v) || json_integer_value(v) < min ||
		    json_integer_value(v) > max) {
			snprintf(why, WHY_MAX, "items must be user ids (integers from %lld)", min);
			return NULL;
		}
	}
	if (!(ids = malloc(n * sizeof *ids)))
		goto out;
	json_array_foreach(users, i, v)
		ids[i] = (long long)json_integer_value(v);
	qsort(ids, n, sizeof *ids, cmp_ids);
	out = json_array();
	for (i = 0; out && i < n; i++)
		if ((i == 0 || ids[i] != ids[i - 1]) &&
		    json_array_append_new(out, json_integer((json_int_t)ids[i])) != 0) {
			json_decref(out);
			out = NULL;
		}
out:
	if (!out)
		snprintf(why, WHY_MAX, "cannot be stored (out of memory)");
	free(ids);
	return out;
}

/* The value of the known member k (present, not null, of the right type) normalised: a new
 * reference (JSON null: no rule), or NULL with the reason in why. */
static json_t *member_normalise(const struct policy_key *k, const json_t *v, char *why)
{
	switch (k->kind) {
	case POLICY_INT:
		if (json_integer_value(v) < k->min || json_integer_value(v) > k->max) {
			snprintf(why, WHY_MAX, "must be between %lld and %lld", k->min, k->max);
			return NULL;
		}
		return json_integer(json_integer_value(v));
	case POLICY_BOOL:
		return json_boolean(json_is_true(v));
	case POLICY_HOURS:
		return hours_normalise(v, why);
	case POLICY_ROLES:
		return roles_normalise(v, why);
	case POLICY_USERS:
		return users_normalise(v, k->min, k->max, why);
	}
	snprintf(why, WHY_MAX, "is not a known policy");
	return NULL;
}

/* The rules between two members of the normalised object (borrowed); problems go to
 * problems (borrowed) under the key without its prefix.  Members that were refused on their
 * own are not in rules, so they raise no second problem here. */
static void relations_check(const json_t *rules, json_t *problems)
{
	json_t *min = json_object_get(rules, "min_duration_minutes");
	json_t *max = json_object_get(rules, "max_duration_minutes");
	if (min && max && json_integer_value(max) < json_integer_value(min))
		json_object_set_new(problems, "max_duration_minutes",
		                    json_string("must not be less than min_duration_minutes"));

	/* The check-in window and the release belong to check_in_required: both are needed
	 * with it, neither without it (a reader should never wonder which one applies). */
	static const char *const check_in[] = {"check_in_window_minutes", "release_after_minutes"};
	json_t *required = json_object_get(rules, "check_in_required");
	for (size_t i = 0; i < countof(check_in); i++) {
		if (json_object_get(problems, check_in[i]))
			continue;
		bool given = json_object_get(rules, check_in[i]) != NULL;
		if (json_is_true(required) && !given)
			json_object_set_new(
				problems, check_in[i],
				json_string("is required when check_in_required is true"));
		else if (!json_is_true(required) && given &&
		         !json_object_get(problems, "check_in_required"))
			json_object_set_new(
				problems, check_in[i],
				json_string("applies only with check_in_required: true"));
	}
}

bool room_policy_known(const char *key)
{
	for (size_t i = 0; i < countof(policy_keys); i++)
		if (strcmp(policy_keys[i].name, key) == 0)
			return true;
	return false;
}

bool room_policy_normalise(const json_t *policies, json_t **out, json_t *details)
{
	struct jsonx_field fields[countof(policy_keys)];
	json_t *problems = json_object(), *rules = json_object();
	char why[WHY_MAX];
	const char *key;
	json_t *v;
	bool ok = false;

	*out = NULL;
	if (!problems || !rules) {
		json_object_set_new(details, "policies",
		                    json_string("cannot be stored (out of memory)"));
		goto out;
	}
	for (size_t i = 0; i < countof(policy_keys); i++)
		fields[i] = (struct jsonx_field){
			policy_keys[i].name, policy_types[policy_keys[i].kind] | JSONX_NULL, false};
	jsonx_check(policies, fields, countof(fields), problems);
	for (size_t i = 0; i < countof(policy_keys); i++) {
		const struct policy_key *k = &policy_keys[i];
		v = json_object_get(policies, k->name);
		if (!v || json_is_null(v) || json_object_get(problems, k->name))
			continue;
		json_t *value = member_normalise(k, v, why);
		if (!value)
			json_object_set_new(problems, k->name, json_string(why));
		else if (json_is_null(value))
			json_decref(value); /* no rule after all */
		else
			json_object_set_new(rules, k->name, value);
	}
	relations_check(rules, problems);

	json_object_foreach(problems, key, v) {
		/* An unknown member's key is the client's, of any length: details names it whole
		 * (docs/api.md#errors). */
		size_t size = strlen(key) + sizeof "policies.";
		char *field = malloc(size);
		if (field)
			snprintf(field, size, "policies.%s", key);
		json_object_set(details, field ? field : "policies", v);
		free(field);
	}
	ok = json_object_size(problems) == 0;
	if (ok && json_object_size(rules) > 0) {
		*out = rules;
		rules = NULL;
	}
out:
	json_decref(problems);
	json_decref(rules);
	return ok;
}
