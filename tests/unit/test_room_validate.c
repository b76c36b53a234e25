/* Unit tests of room-service/src/validate.c: the checks of POST and PUT /rooms bodies and the
 * equipment normalisation, as tests/integration/test_room_validation.py sees them through HTTP
 * (each bad value is reported under its own field; accepted values come back normalised). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../room-service/src/validate.h"
#include "body_check.h"
#include "countof.h"
#include "equipment.h"
#include "jsonx.h"

/* One validation: the body (owned; accepted strings point into it), the problems found
 * (owned) and the values. */
struct run {
	json_t *body, *details;
	struct room_input in;
};

static void validate(struct run *o, const char *text, bool create)
{
	memset(o, 0, sizeof *o);
	o->body = body_parse(text);
	o->details = json_object();
	room_validate(o->body, create, &o->in, o->details);
}

static void run_free(struct run *o)
{
	json_decref(o->in.equipment);
	json_decref(o->in.policies);
	json_decref(o->details);
	json_decref(o->body);
}

static const char *reason(const struct run *o, const char *field)
{
	return json_string_value(json_object_get(o->details, field));
}

/* The body must be refused with a reason naming field, and nothing else. */
static void assert_only_problem(const char *text, bool create, const char *field)
{
	struct run o;
	validate(&o, text, create);
	body_assert_only(o.details, field, text);
	run_free(&o);
}

static void test_each_bad_field_is_named(void **state)
{
	(void)state;
	static const struct {
		const char *body, *field;
	} cases[] = {
		{"{\"capacity\":4}", "name"},
		{"{\"name\":\"A\"}", "capacity"},
		{"{\"name\":\"\",\"capacity\":4}", "name"},
		{"{\"name\":\" padded \",\"capacity\":4}", "name"},
		{"{\"name\":\"padded \",\"capacity\":4}", "name"},
		{"{\"name\":\"\\tpadded\",\"capacity\":4}", "name"},
		{"{\"name\":null,\"capacity\":4}", "name"},
		{"{\"name\":5,\"capacity\":4}", "name"},
		{"{\"name\":\"nul\\u0000inside\",\"capacity\":4}", "name"},
		{"{\"name\":\"A\",\"capacity\":0}", "capacity"},
		{"{\"name\":\"A\",\"capacity\":10001}", "capacity"},
		{"{\"name\":\"A\",\"capacity\":-1}", "capacity"},
		{"{\"name\":\"A\",\"capacity\":\"5\"}", "capacity"},
		{"{\"name\":\"A\",\"capacity\":5.5}", "capacity"},
		{"{\"name\":\"A\",\"capacity\":null}", "capacity"},
		{"{\"name\":\"A\",\"capacity\":true}", "capacity"},
		{"{\"name\":\"A\",\"capacity\":4,\"equipment\":[1]}", "equipment"},
		{"{\"name\":\"A\",\"capacity\":4,\"equipment\":[\"\"]}", "equipment"},
		{"{\"name\":\"A\",\"capacity\":4,\"equipment\":[\"   \"]}", "equipment"},
		{"{\"name\":\"A\",\"capacity\":4,\"equipment\":[null]}", "equipment"},
		{"{\"name\":\"A\",\"capacity\":4,\"equipment\":[[\"x\"]]}", "equipment"},
		{"{\"name\":\"A\",\"capacity\":4,\"equipment\":{}}", "equipment"},
		{"{\"name\":\"A\",\"capacity\":4,\"equipment\":5}", "equipment"},
		{"{\"name\":\"A\",\"capacity\":4,\"equipment\":true}", "equipment"},
		{"{\"name\":\"A\",\"capacity\":4,\"time_zone\":\"Mars/Base\"}", "time_zone"},
		{"{\"name\":\"A\",\"capacity\":4,\"time_zone\":\"../etc/passwd\"}", "time_zone"},
		{"{\"name\":\"A\",\"capacity\":4,\"time_zone\":\"/etc/passwd\"}", "time_zone"},
		{"{\"name\":\"A\",\"capacity\":4,\"time_zone\":\"\"}", "time_zone"},
		{"{\"name\":\"A\",\"capacity\":4,\"time_zone\":\"Europe\"}", "time_zone"},
		{"{\"name\":\"A\",\"capacity\":4,\"time_zone\":null}", "time_zone"},
		{"{\"name\":\"A\",\"capacity\":4,\"time_zone\":1}", "time_zone"},
		{"{\"name\":\"A\",\"capacity\":4,\"floor\":501}", "floor"},
		{"{\"name\":\"A\",\"capacity\":4,\"floor\":-101}", "floor"},
		{"{\"name\":\"A\",\"capacity\":4,\"floor\":\"3\"}", "floor"},
		{"{\"name\":\"A\",\"capacity\":4,\"floor\":2.5}", "floor"},
		{"{\"name\":\"A\",\"capacity\":4,\"building\":7}", "building"},
		{"{\"name\":\"A\",\"capacity\":4,\"description\":[]}", "description"},
		{"{\"name\":\"A\",\"capacity\":4,\"active\":\"yes\"}", "active"},
		{"{\"name\":\"A\",\"capacity\":4,\"active\":1}", "active"},
		{"{\"name\":\"A\",\"capacity\":4,\"active\":null}", "active"},
		{"{\"name\":\"A\",\"capacity\":4,\"colour\":\"red\"}", "colour"},
		{"{\"name\":\"A\",\"capacity\":4,\"id\":5}", "id"},
		{"{\"name\":\"A\",\"capacity\":4,\"version\":1}", "version"},
	};
	for (size_t i = 0; i < countof(cases); i++)
		assert_only_problem(cases[i].body, true, cases[i].field);
}

/* A valid room body with key set to n copies of the character c. */
static char *repeat_member(const char *key, const char *c, size_t n)
{
	char *value = body_repeat(c, n);
	size_t size = strlen(key) + strlen(value) + 64;
	char *s = malloc(size);
	snprintf(s, size, "{\"name\":\"A\",\"capacity\":4,\"%s\":\"%s\"}", key, value);
	free(value);
	return s;
}

static void test_lengths_in_characters(void **state)
{
	(void)state;
	static const struct {
		const char *field;
		size_t max;
	} limits[] = {{"building", 100}, {"description", 1000}};
	struct run o;
	for (size_t i = 0; i < countof(limits); i++) {
		char *ok = repeat_member(limits[i].field, "\xc3\xa9", limits[i].max);
		char *over = repeat_member(limits[i].field, "b", limits[i].max + 1);
		validate(&o, ok, true);
		assert_int_equal(json_object_size(o.details), 0);
		run_free(&o);
		assert_only_problem(over, true, limits[i].field);
		free(ok);
		free(over);
	}
	/* A name of 100 two-byte characters is fine, 101 ASCII ones are not. */
	char *u100 = body_repeat("\xc3\xbc", 100), *x101 = body_repeat("x", 101), text[512];
	snprintf(text, sizeof text, "{\"capacity\":4,\"name\":\"%s\"}", u100);
	validate(&o, text, true);
	assert_int_equal(json_object_size(o.details), 0);
	assert_int_equal(jsonx_utf8_len(o.in.name), 100);
	run_free(&o);
	snprintf(text, sizeof text, "{\"capacity\":4,\"name\":\"%s\"}", x101);
	assert_only_problem(text, true, "name");
	free(u100);
	free(x101);
}

static void test_several_problems_together(void **state)
{
	(void)state;
	static const char *const fields[] = {"name",        "capacity", "equipment",
	                                     "time_zone",   "floor",    "building",
	                                     "description", "active",   "bogus"};
	struct run o;
	validate(&o,
	         "{\"name\":\"\",\"capacity\":0,\"equipment\":[\"\"],\"time_zone\":\"Mars/Base\","
	         "\"floor\":\"3\",\"building\":5,\"description\":5,\"active\":\"yes\",\"bogus\":1}",
	         true);
	for (size_t i = 0; i < countof(fields); i++)
		assert_non_null(reason(&o, fields[i]));
	assert_int_equal(json_object_size(o.details), countof(fields));
	assert_null(o.in.equipment);
	run_free(&o);

	validate(&o, "{}", true);
	assert_string_equal(reason(&o, "name"), "is required");
	assert_string_equal(reason(&o, "capacity"), "is required");
	assert_int_equal(json_object_size(o.details), 2);
	run_free(&o);
}

static void test_accepted_values(void **state)
{
	(void)state;
	struct run o;
	validate(&o,
	         "{\"name\":\"Aurora\",\"capacity\":10000,\"floor\":500,\"building\":\"B\","
	         "\"description\":\"\",\"time_zone\":\"Etc/GMT+5\",\"active\":false,"
	         "\"equipment\":\"TV, tv ,Screen\"}",
	         true);
	assert_int_equal(json_object_size(o.details), 0);
	assert_string_equal(o.in.name, "Aurora");
	assert_true(o.in.has_capacity);
	assert_int_equal(o.in.capacity, 10000);
	assert_true(o.in.has_floor);
	assert_false(o.in.floor_null);
	assert_int_equal(o.in.floor, 500);
	assert_true(o.in.has_building);
	assert_string_equal(o.in.building, "B");
	assert_true(o.in.has_description);
	assert_string_equal(o.in.description, "");
	assert_string_equal(o.in.time_zone, "Etc/GMT+5");
	assert_true(o.in.has_active);
	assert_false(o.in.active);
	json_t *want = json_pack("[s, s]", "TV", "Screen");
	assert_true(json_equal(o.in.equipment, want));
	json_decref(want);
	run_free(&o);

	/* Lower bounds; null clears floor and building, and makes equipment empty. */
	validate(&o,
	         "{\"name\":\"A\",\"capacity\":1,\"floor\":null,\"building\":null,"
	         "\"equipment\":null}",
	         true);
	assert_int_equal(json_object_size(o.details), 0);
	assert_int_equal(o.in.capacity, 1);
	assert_true(o.in.has_floor && o.in.floor_null);
	assert_true(o.in.has_building);
	assert_null(o.in.building);
	assert_int_equal(json_array_size(o.in.equipment), 0);
	assert_false(o.in.has_active);
	assert_null(o.in.time_zone);
	run_free(&o);

	validate(&o, "{\"name\":\"A\",\"capacity\":1,\"floor\":-100}", true);
	assert_int_equal(json_object_size(o.details), 0);
	assert_int_equal(o.in.floor, -100);
	run_free(&o);
}

static void test_time_zones(void **state)
{
	(void)state;
	static const char *const good[] = {
		"UTC",          "Etc/UTC",          "EST",
		"Asia/Kolkata", "America/St_Johns", "America/Argentina/Buenos_Aires"};
	static const char *const bad[] = {"localtime", "posixrules", "Europe//Berlin",
	                                  "posix/UTC", "right/UTC",  "zone.tab"};
	char text[128];
	struct run o;
	for (size_t i = 0; i < countof(good); i++) {
		snprintf(text, sizeof text, "{\"time_zone\":\"%s\"}", good[i]);
		validate(&o, text, false);
		if (json_object_size(o.details) != 0)
			fail_msg("%s refused", good[i]);
		assert_string_equal(o.in.time_zone, good[i]);
		run_free(&o);
	}
	for (size_t i = 0; i < countof(bad); i++) {
		snprintf(text, sizeof text, "{\"time_zone\":\"%s\"}", bad[i]);
		assert_only_problem(text, false, "time_zone");
	}
}

static void test_partial_update(void **state)
{
	(void)state;
	static const struct {
		const char *body, *field;
	} cases[] = {
		{"{\"name\":\"\"}", "name"},
		{"{\"name\":null}", "name"},
		{"{\"name\":\" x\"}", "name"},
		{"{\"capacity\":0}", "capacity"},
		{"{\"capacity\":null}", "capacity"},
		{"{\"equipment\":[\"\"]}", "equipment"},
		{"{\"time_zone\":null}", "time_zone"},
		{"{\"floor\":501}", "floor"},
		{"{\"active\":null}", "active"},
		{"{\"active\":\"no\"}", "active"},
		{"{\"bogus\":1}", "bogus"},
	};
	struct run o;
	/* PUT needs neither name nor capacity; what is absent stays unchanged. */
	validate(&o, "{\"description\":\"Quiet\"}", false);
	assert_int_equal(json_object_size(o.details), 0);
	assert_null(o.in.name);
	assert_false(o.in.has_capacity || o.in.has_floor || o.in.has_building || o.in.has_active);
	assert_null(o.in.equipment);
	assert_true(o.in.has_description);
	assert_string_equal(o.in.description, "Quiet");
	run_free(&o);

	validate(&o, "{}", false);
	assert_int_equal(json_object_size(o.details), 0);
	run_free(&o);

	for (size_t i = 0; i < countof(cases); i++)
		assert_only_problem(cases[i].body, false, cases[i].field);
}

/* Equipment (a JSON text) through equipment_normalise; want is a JSON array, or NULL for
 * a refusal. */
static void check_equipment(const char *value, const char *want)
{
	const char *why = "unset";
	json_error_t err;
	json_t *v = json_loads(value, JSON_DECODE_ANY, &err);
	assert_non_null(v);
	json_t *got = equipment_normalise(v, &why);
	if (want) {
		json_t *w = json_loads(want, 0, &err);
		if (!got || !json_equal(got, w))
			fail_msg("%s: want %s, got %s", value, want, got ? "another list" : why);
		assert_null(why);
		json_decref(w);
	} else {
		if (got)
			fail_msg("%s: accepted", value);
		assert_non_null(why);
		assert_true(strlen(why) > 0);
	}
	json_decref(got);
	json_decref(v);
}

static void test_equipment_normalised(void **state)
{
	(void)state;
	check_equipment("\"Projector, whiteboard, projector,,\"",
	                "[\"Projector\", \"whiteboard\"]");
	check_equipment("\" TV ,Screen\"", "[\"TV\", \"Screen\"]");
	check_equipment("\"\"", "[]");
	check_equipment("\",, ,\"", "[]");
	check_equipment("[]", "[]");
	check_equipment("[\"Projector\", \"PROJECTOR\", \" projector \", \"Whiteboard\", "
	                "\"whiteBOARD\"]",
	                "[\"Projector\", \"Whiteboard\"]");
	check_equipment("[\"  Speaker phone  \"]", "[\"Speaker phone\"]");

	check_equipment("[1]", NULL);
	check_equipment("[\"\"]", NULL);
	check_equipment("[\"   \"]", NULL);
	check_equipment("[null]", NULL);
	check_equipment("[[\"x\"]]", NULL);
	check_equipment("{}", NULL);
	check_equipment("5", NULL);
	check_equipment("true", NULL);
}

static void test_equipment_limits(void **state)
{
	(void)state;
	const char *why = NULL;
	/* Items of 50 characters (two bytes each, or one) are fine; 51 are not. */
	char *e50 = body_repeat("\xc3\xa9", 50), *x50 = body_repeat("x", 50),
	     *x51 = body_repeat("x", 51);
	json_t *v = json_pack("[s, s]", e50, x50);
	json_t *got = equipment_normalise(v, &why);
	assert_non_null(got);
	assert_true(json_equal(got, v));
	json_decref(got);
	json_decref(v);
	v = json_pack("[s]", x51);
	assert_null(equipment_normalise(v, &why));
	assert_non_null(why);
	json_decref(v);
	char list[128];
	snprintf(list, sizeof list, "ok, %s", x51);
	v = json_string(list);
	assert_null(equipment_normalise(v, &why));
	json_decref(v);

	/* At most 50 items, counted after de-duplication. */
	v = json_array();
	for (int i = 0; i < 50; i++) {
		char item[24];
		snprintf(item, sizeof item, "item %d", i);
		json_array_append_new(v, json_string(item));
	}
	json_array_append_new(v, json_string("ITEM 7"));
	got = equipment_normalise(v, &why);
	assert_non_null(got);
	assert_int_equal(json_array_size(got), 50);
	json_decref(got);
	json_array_append_new(v, json_string("item 50"));
	assert_null(equipment_normalise(v, &why));
	assert_non_null(why);
	json_decref(v);
	free(e50);
	free(x50);
	free(x51);
}

/* A PUT body {"policies": <policies>} (a JSON text). */
static char *policies_body(const char *policies)
{
	size_t size = strlen(policies) + 32;
	char *s = malloc(size);
	snprintf(s, size, "{\"policies\":%s}", policies);
	return s;
}

/* policies must be refused with a reason under field only. */
static void assert_policy_refused(const char *policies, const char *field)
{
	char *text = policies_body(policies);
	assert_only_problem(text, false, field);
	free(text);
}

/* policies must be accepted as want (a JSON text; "null" = no rules). */
static void assert_policy_accepted(const char *policies, const char *want)
{
	struct run o;
	char *text = policies_body(policies);
	validate(&o, text, false);
	if (json_object_size(o.details) != 0) {
		char *d = json_dumps(o.details, 0);
		fail_msg("%s refused: %s", policies, d);
	}
	assert_true(o.in.has_policies);
	json_t *w = json_loads(want, JSON_DECODE_ANY, NULL);
	assert_non_null(w);
	if (json_is_null(w) ? o.in.policies != NULL : !json_equal(o.in.policies, w)) {
		char *got = o.in.policies ? json_dumps(o.in.policies, 0) : strdup("NULL");
		fail_msg("%s: want %s, got %s", policies, want, got);
	}
	json_decref(w);
	run_free(&o);
	free(text);
}

static void test_policies_each_bad_value_is_named(void **state)
{
	(void)state;
	static const struct {
		const char *policies, *field;
	} cases[] = {
		{"[]", "policies"},
		{"\"none\"", "policies"},
		{"5", "policies"},
		{"true", "policies"},
		{"{\"colour\":1}", "policies.colour"},
		{"{\"Buffer_minutes\":1}", "policies.Buffer_minutes"},
		{"{\"min_duration_minutes\":0}", "policies.min_duration_minutes"},
		{"{\"min_duration_minutes\":1441}", "policies.min_duration_minutes"},
		{"{\"min_duration_minutes\":\"15\"}", "policies.min_duration_minutes"},
		{"{\"min_duration_minutes\":15.5}", "policies.min_duration_minutes"},
		{"{\"max_duration_minutes\":0}", "policies.max_duration_minutes"},
		{"{\"max_duration_minutes\":1441}", "policies.max_duration_minutes"},
		{"{\"min_duration_minutes\":61,\"max_duration_minutes\":60}",
	         "policies.max_duration_minutes"},
		{"{\"buffer_minutes\":-1}", "policies.buffer_minutes"},
		{"{\"buffer_minutes\":241}", "policies.buffer_minutes"},
		{"{\"buffer_minutes\":true}", "policies.buffer_minutes"},
		{"{\"max_advance_days\":0}", "policies.max_advance_days"},
		{"{\"max_advance_days\":3651}", "policies.max_advance_days"},
		{"{\"max_bookings_per_user_per_day\":0}", "policies.max_bookings_per_user_per_day"},
		{"{\"max_bookings_per_user_per_day\":1001}",
	         "policies.max_bookings_per_user_per_day"},
		{"{\"max_bookings_per_user_per_week\":0}",
	         "policies.max_bookings_per_user_per_week"},
		{"{\"max_bookings_per_user_per_week\":1001}",
	         "policies.max_bookings_per_user_per_week"},
		{"{\"allowed_roles\":[]}", "policies.allowed_roles"},
		{"{\"allowed_roles\":[\"user\"]}", "policies.allowed_roles"},
		{"{\"allowed_roles\":[\"Admin\"]}", "policies.allowed_roles"},
		{"{\"allowed_roles\":[1]}", "policies.allowed_roles"},
		{"{\"allowed_roles\":\"admin\"}", "policies.allowed_roles"},
		{"{\"allowed_users\":[]}", "policies.allowed_users"},
		{"{\"allowed_users\":[0]}", "policies.allowed_users"},
		{"{\"allowed_users\":[-3]}", "policies.allowed_users"},
		{"{\"allowed_users\":[\"12\"]}", "policies.allowed_users"},
		{"{\"allowed_users\":[1.5]}", "policies.allowed_users"},
		{"{\"allowed_users\":[1000000000000000000]}", "policies.allowed_users"},
		{"{\"allowed_users\":12}", "policies.allowed_users"},
		{"{\"requires_approval\":1}", "policies.requires_approval"},
		{"{\"requires_approval\":\"true\"}", "policies.requires_approval"},
		{"{\"check_in_required\":\"yes\"}", "policies.check_in_required"},
		{"{\"check_in_required\":true,\"release_after_minutes\":10}",
	         "policies.check_in_window_minutes"},
		{"{\"check_in_required\":true,\"check_in_window_minutes\":10}",
	         "policies.release_after_minutes"},
		{"{\"check_in_window_minutes\":10}", "policies.check_in_window_minutes"},
		{"{\"check_in_required\":false,\"release_after_minutes\":10}",
	         "policies.release_after_minutes"},
		{"{\"check_in_required\":true,\"check_in_window_minutes\":-1,"
	         "\"release_after_minutes\":10}",
	         "policies.check_in_window_minutes"},
		{"{\"check_in_required\":true,\"check_in_window_minutes\":241,"
	         "\"release_after_minutes\":10}",
	         "policies.check_in_window_minutes"},
		{"{\"check_in_required\":true,\"check_in_window_minutes\":0,"
	         "\"release_after_minutes\":0}",
	         "policies.release_after_minutes"},
		{"{\"check_in_required\":true,\"check_in_window_minutes\":0,"
	         "\"release_after_minutes\":241}",
	         "policies.release_after_minutes"},
		/* opening_hours: the shape, each time, each interval, their order. */
		{"{\"opening_hours\":[]}", "policies.opening_hours"},
		{"{\"opening_hours\":{\"monday\":[]}}", "policies.opening_hours"},
		{"{\"opening_hours\":{\"mo\":[]}}", "policies.opening_hours"},
		{"{\"opening_hours\":{\"mon\":[],\"MON\":null}}", "policies.opening_hours"},
		{"{\"opening_hours\":{\"mon\":{}}}", "policies.opening_hours"},
		{"{\"opening_hours\":{\"mon\":\"08:00-18:00\"}}", "policies.opening_hours"},
		{"{\"opening_hours\":{\"mon\":[\"08:00\",\"18:00\"]}}", "policies.opening_hours"},
		{"{\"opening_hours\":{\"mon\":[[\"08:00\"]]}}", "policies.opening_hours"},
		{"{\"opening_hours\":{\"mon\":[[\"08:00\",\"12:00\",\"18:00\"]]}}",
	         "policies.opening_hours"},
		{"{\"opening_hours\":{\"mon\":[[\"8:00\",\"18:00\"]]}}", "policies.opening_hours"},
		{"{\"opening_hours\":{\"mon\":[[\"08:00:00\",\"18:00\"]]}}",
	         "policies.opening_hours"},
		{"{\"opening_hours\":{\"mon\":[[\"08h00\",\"18:00\"]]}}", "policies.opening_hours"},
		{"{\"opening_hours\":{\"mon\":[[\"08:60\",\"18:00\"]]}}", "policies.opening_hours"},
		{"{\"opening_hours\":{\"mon\":[[\"08:00\",\"24:01\"]]}}", "policies.opening_hours"},
		{"{\"opening_hours\":{\"mon\":[[\"08:00\",\"25:00\"]]}}", "policies.opening_hours"},
		{"{\"opening_hours\":{\"mon\":[[\"24:00\",\"24:00\"]]}}", "policies.opening_hours"},
		{"{\"opening_hours\":{\"mon\":[[480,1080]]}}", "policies.opening_hours"},
		{"{\"opening_hours\":{\"mon\":[[\"18:00\",\"08:00\"]]}}", "policies.opening_hours"},
		{"{\"opening_hours\":{\"mon\":[[\"08:00\",\"08:00\"]]}}", "policies.opening_hours"},
		{"{\"opening_hours\":{\"tue\":[[\"13:00\",\"18:00\"],[\"08:00\",\"12:00\"]]}}",
	         "policies.opening_hours"},
		{"{\"opening_hours\":{\"tue\":[[\"08:00\",\"13:00\"],[\"12:00\",\"18:00\"]]}}",
	         "policies.opening_hours"},
		{"{\"opening_hours\":{\"tue\":[[\"08:00\",\"12:00\"],[\"12:00\",\"18:00\"]]}}",
	         "policies.opening_hours"},
		{"{\"opening_hours\":{\"sun\":[[\"01:00\",\"02:00\"],[\"03:00\",\"04:00\"],"
	         "[\"05:00\",\"06:00\"],[\"07:00\",\"08:00\"],[\"09:00\",\"10:00\"]]}}",
	         "policies.opening_hours"},
	};
	for (size_t i = 0; i < countof(cases); i++)
		assert_policy_refused(cases[i].policies, cases[i].field);
}

static void test_policies_accepted_and_normalised(void **state)
{
	(void)state;
	/* Every rule at its bounds. */
	assert_policy_accepted(
		"{\"min_duration_minutes\":1,\"max_duration_minutes\":1440,\"buffer_minutes\":0,"
		"\"max_advance_days\":1,\"max_bookings_per_user_per_day\":1,"
		"\"max_bookings_per_user_per_week\":1000,\"requires_approval\":false,"
		"\"check_in_required\":true,\"check_in_window_minutes\":0,"
		"\"release_after_minutes\":240}",
		"{\"min_duration_minutes\":1,\"max_duration_minutes\":1440,\"buffer_minutes\":0,"
		"\"max_advance_days\":1,\"max_bookings_per_user_per_day\":1,"
		"\"max_bookings_per_user_per_week\":1000,\"requires_approval\":false,"
		"\"check_in_required\":true,\"check_in_window_minutes\":0,"
		"\"release_after_minutes\":240}");
	assert_policy_accepted("{\"min_duration_minutes\":1440,\"max_duration_minutes\":1440,"
	                       "\"buffer_minutes\":240,\"max_advance_days\":3650,"
	                       "\"max_bookings_per_user_per_day\":1000,"
	                       "\"check_in_required\":true,\"check_in_window_minutes\":240,"
	                       "\"release_after_minutes\":1}",
	                       "{\"min_duration_minutes\":1440,\"max_duration_minutes\":1440,"
	                       "\"buffer_minutes\":240,\"max_advance_days\":3650,"
	                       "\"max_bookings_per_user_per_day\":1000,"
	                       "\"check_in_required\":true,\"check_in_window_minutes\":240,"
	                       "\"release_after_minutes\":1}");
	/* Null members are no rule; an object without rules is none at all. */
	assert_policy_accepted("{}", "null");
	assert_policy_accepted("null", "null");
	assert_policy_accepted("{\"buffer_minutes\":null,\"allowed_roles\":null,"
	                       "\"check_in_window_minutes\":null}",
	                       "null");
	assert_policy_accepted("{\"opening_hours\":{\"sun\":null}}", "null");
	assert_policy_accepted("{\"buffer_minutes\":10,\"max_advance_days\":null}",
	                       "{\"buffer_minutes\":10}");
	/* Days lower-case; [] closed, null open; 24:00 as an end; four intervals. */
	assert_policy_accepted(
		"{\"opening_hours\":{\"MON\":[[\"08:00\",\"18:00\"]],\"Sat\":[],\"sun\":null,"
		"\"tue\":[[\"00:00\",\"06:00\"],[\"06:01\",\"12:00\"],[\"13:00\",\"14:00\"],"
		"[\"23:59\",\"24:00\"]]}}",
		"{\"opening_hours\":{\"mon\":[[\"08:00\",\"18:00\"]],\"sat\":[],"
		"\"tue\":[[\"00:00\",\"06:00\"],[\"06:01\",\"12:00\"],[\"13:00\",\"14:00\"],"
		"[\"23:59\",\"24:00\"]]}}");
	assert_policy_accepted("{\"opening_hours\":{\"wed\":[[\"00:00\",\"24:00\"]]}}",
	                       "{\"opening_hours\":{\"wed\":[[\"00:00\",\"24:00\"]]}}");
	/* Roles and users each once, in a fixed order. */
	assert_policy_accepted("{\"allowed_roles\":[\"employee\",\"admin\",\"employee\"],"
	                       "\"allowed_users\":[40,12,40,999999999999999999]}",
	                       "{\"allowed_roles\":[\"admin\",\"employee\"],"
	                       "\"allowed_users\":[12,40,999999999999999999]}");

	/* 1000 users are fine (duplicates count), 1001 are not. */
	char list[16 * 1001 + 64] = "{\"allowed_users\":[";
	for (int i = 1; i <= 1000; i++)
		snprintf(list + strlen(list), sizeof list - strlen(list), "%s%d", i > 1 ? "," : "",
		         i);
	strcat(list, "]}");
	char *text = policies_body(list);
	struct run o;
	validate(&o, text, false);
	assert_int_equal(json_object_size(o.details), 0);
	assert_int_equal(json_array_size(json_object_get(o.in.policies, "allowed_users")), 1000);
	run_free(&o);
	free(text);
	list[strlen(list) - 2] = '\0';
	strcat(list, ",1]}");
	assert_policy_refused(list, "policies.allowed_users");
}

static void test_policies_in_room_bodies(void **state)
{
	(void)state;
	struct run o;
	/* Absent on PUT: unchanged. */
	validate(&o, "{\"capacity\":3}", false);
	assert_false(o.in.has_policies);
	assert_null(o.in.policies);
	run_free(&o);
	/* On create, with the room. */
	validate(&o, "{\"name\":\"A\",\"capacity\":3,\"policies\":{\"buffer_minutes\":5}}", true);
	assert_int_equal(json_object_size(o.details), 0);
	assert_true(o.in.has_policies);
	assert_int_equal(json_integer_value(json_object_get(o.in.policies, "buffer_minutes")), 5);
	run_free(&o);
	/* Every problem of the object at once, each under its own name, next to the room's. */
	validate(&o,
	         "{\"capacity\":0,\"policies\":{\"buffer_minutes\":999,\"colour\":1,"
	         "\"opening_hours\":{\"xyz\":[]},\"min_duration_minutes\":30,"
	         "\"max_duration_minutes\":20}}",
	         false);
	static const char *const fields[] = {"capacity", "policies.buffer_minutes",
	                                     "policies.colour", "policies.opening_hours",
	                                     "policies.max_duration_minutes"};
	for (size_t i = 0; i < countof(fields); i++)
		if (!reason(&o, fields[i]))
			fail_msg("%s not named", fields[i]);
	assert_int_equal(json_object_size(o.details), countof(fields));
	assert_null(o.in.policies);
	run_free(&o);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_each_bad_field_is_named),
		cmocka_unit_test(test_lengths_in_characters),
		cmocka_unit_test(test_several_problems_together),
		cmocka_unit_test(test_accepted_values),
		cmocka_unit_test(test_time_zones),
		cmocka_unit_test(test_partial_update),
		cmocka_unit_test(test_equipment_normalised),
		cmocka_unit_test(test_equipment_limits),
		cmocka_unit_test(test_policies_each_bad_value_is_named),
		cmocka_unit_test(test_policies_accepted_and_normalised),
		cmocka_unit_test(test_policies_in_room_bodies),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
