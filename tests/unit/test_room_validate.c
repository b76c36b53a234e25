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
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
