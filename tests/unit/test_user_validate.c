/* Unit tests of user-service/src/validate.c: the bodies of PUT /users/profile, PUT
 * /admin/users/{id}, POST /auth/refresh and POST /auth/logout, as
 * tests/integration/test_user_profile.py, test_user_admin.py and test_user_input.py see them
 * through HTTP (each problem named by its field). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../user-service/src/validate.h"
#include "body_check.h"
#include "countof.h"
#include "jsonx.h"

enum body_kind { PROFILE, ADMIN, REFRESH, LOGOUT };

/* One validation: the body (owned; accepted strings point into it), the problems found (owned)
 * and the values of each kind of body. */
struct run {
	json_t *body, *details;
	struct user_profile_change profile;
	struct user_patch patch;
	const char *token;
	bool all;
};

static void validate(struct run *o, enum body_kind kind, const char *text)
{
	memset(o, 0, sizeof *o);
	o->patch.if_version = 5;
	o->body = body_parse(text);
	o->details = json_object();
	switch (kind) {
	case PROFILE:
		user_validate_profile(o->body, &o->profile, o->details);
		break;
	case ADMIN:
		user_validate_admin(o->body, &o->patch, o->details);
		break;
	case REFRESH:
		user_validate_refresh(o->body, false, &o->token, o->details);
		break;
	case LOGOUT:
		user_validate_logout(o->body, false, &o->token, &o->all, o->details);
		break;
	}
}

static void run_free(struct run *o)
{
	json_decref(o->details);
	json_decref(o->body);
}

static const char *reason(const struct run *o, const char *field)
{
	return json_string_value(json_object_get(o->details, field));
}

/* The body must be refused with a reason naming field, and nothing else. */
static void refused(enum body_kind kind, const char *text, const char *field)
{
	struct run o;
	validate(&o, kind, text);
	body_assert_only(o.details, field, text);
	run_free(&o);
}

/* {"key":"<n copies of c>"} as a new string. */
static char *member(const char *key, const char *prefix, const char *c, size_t n)
{
	char *value = body_repeat(c, n);
	size_t size = strlen(key) + strlen(prefix) + strlen(value) + 16;
	char *s = malloc(size);
	snprintf(s, size, "{\"%s\":\"%s%s\"}", key, prefix, value);
	free(value);
	return s;
}

static void test_profile_refusals(void **state)
{
	(void)state;
	static const struct {
		const char *body, *field;
	} cases[] = {
		{"{\"email\":\"new@example.com\"}", "email"},
		{"{\"role\":\"admin\"}", "role"},
		{"{\"name\":\"Sneaky\",\"role\":\"admin\"}", "role"},
		{"{\"name\":\"\"}", "name"},
		{"{\"name\":42}", "name"},
		{"{\"name\":[\"a\"]}", "name"},
		{"{\"name\":{\"first\":\"a\"}}", "name"},
		{"{\"name\":true}", "name"},
		{"{\"name\":null}", "name"},
		{"{\"name\":\"a\\u0000b\"}", "name"},
		{"{\"name\":\"Ok\",\"nickname\":\"x\"}", "nickname"},
		{"{}", "name"},
		{"{\"picture\":\"javascript:alert(1)\"}", "picture"},
		{"{\"picture\":\"https://example.com/a b.png\"}", "picture"},
		{"{\"picture\":5}", "picture"},
	};
	for (size_t i = 0; i < countof(cases); i++)
		refused(PROFILE, cases[i].body, cases[i].field);

	char *name201 = member("name", "", "x", 201);
	char *picture2049 = member("picture", "https://example.com/", "p", 2029);
	refused(PROFILE, name201, "name");
	refused(PROFILE, picture2049, "picture");
	free(name201);
	free(picture2049);

	struct run o;
	validate(&o, PROFILE, "{}");
	assert_string_equal(reason(&o, "name"), "is required");
	run_free(&o);
	validate(&o, PROFILE, "{\"email\":\"a@b.c\"}");
	assert_string_equal(reason(&o, "email"), "cannot be changed here");
	run_free(&o);
}

static void test_profile_accepted_values(void **state)
{
	(void)state;
	struct run o;
	validate(&o, PROFILE, "{\"name\":\"Ada\",\"picture\":\"https://example.com/p.png\"}");
	assert_int_equal(json_object_size(o.details), 0);
	assert_string_equal(o.profile.name, "Ada");
	assert_string_equal(o.profile.picture, "https://example.com/p.png");
	run_free(&o);

	/* null or "" clears the picture; the name stays. */
	validate(&o, PROFILE, "{\"picture\":null}");
	assert_int_equal(json_object_size(o.details), 0);
	assert_null(o.profile.name);
	assert_string_equal(o.profile.picture, "");
	run_free(&o);
	validate(&o, PROFILE, "{\"picture\":\"\"}");
	assert_int_equal(json_object_size(o.details), 0);
	assert_string_equal(o.profile.picture, "");
	run_free(&o);

	/* Without picture it is left alone. */
	validate(&o, PROFILE, "{\"name\":\"Ada\"}");
	assert_null(o.profile.picture);
	run_free(&o);

	/* Limits count characters: 200 for a name, 2048 for a picture URL. */
	static const char *const chars[] = {"x", "\xc3\xa9", "\xe6\x9d\xb1"};
	for (size_t i = 0; i < countof(chars); i++) {
		char *name = member("name", "", chars[i], 200);
		validate(&o, PROFILE, name);
		assert_int_equal(json_object_size(o.details), 0);
		assert_int_equal(jsonx_utf8_len(o.profile.name), 200);
		run_free(&o);
		free(name);
	}
	char *picture = member("picture", "https://example.com/", "\xc3\xa9", 2028);
	validate(&o, PROFILE, picture);
	assert_int_equal(json_object_size(o.details), 0);
	assert_int_equal(jsonx_utf8_len(o.profile.picture), 2048);
	run_free(&o);
	free(picture);
}

static void test_admin_refusals(void **state)
{
	(void)state;
	static const struct {
		const char *body, *field;
	} cases[] = {
		{"{\"role\":\"superuser\"}", "role"},
		{"{\"role\":\"\"}", "role"},
		{"{\"role\":1}", "role"},
		{"{\"email\":\"not-an-email\"}", "email"},
		{"{\"email\":\"a@b\"}", "email"},
		{"{\"email\":\"two@@example.com\"}", "email"},
		{"{\"email\":\"has space@example.com\"}", "email"},
		{"{\"email\":\"@example.com\"}", "email"},
		{"{\"email\":\"a@.example.com\"}", "email"},
		{"{\"email\":\"a@example.com.\"}", "email"},
		{"{\"name\":\"\"}", "name"},
		{"{\"disabled\":\"yes\"}", "disabled"},
		{"{\"disabled\":null}", "disabled"},
		{"{\"password\":\"x\"}", "password"},
		{"{\"id\":5}", "id"},
	};
	for (size_t i = 0; i < countof(cases); i++)
		refused(ADMIN, cases[i].body, cases[i].field);
	char *name201 = member("name", "", "x", 201);
	refused(ADMIN, name201, "name");
	free(name201);
}

static void test_admin_accepted_values(void **state)
{
	(void)state;
	struct run o;
	validate(&o, ADMIN,
	         "{\"name\":\"Grace\",\"email\":\"grace@example.com\",\"role\":\"admin\","
	         "\"disabled\":true}");
	assert_int_equal(json_object_size(o.details), 0);
	assert_string_equal(o.patch.name, "Grace");
	assert_string_equal(o.patch.email, "grace@example.com");
	assert_string_equal(o.patch.role, "admin");
	assert_true(o.patch.set_disabled && o.patch.disabled);
	assert_int_equal(o.patch.if_version, 5);
	run_free(&o);

	/* Nothing named, nothing changed. */
	validate(&o, ADMIN, "{}");
	assert_int_equal(json_object_size(o.details), 0);
	assert_null(o.patch.name);
	assert_null(o.patch.email);
	assert_null(o.patch.role);
	assert_false(o.patch.set_disabled);
	run_free(&o);

	validate(&o, ADMIN, "{\"role\":\"employee\",\"disabled\":false}");
	assert_int_equal(json_object_size(o.details), 0);
	assert_string_equal(o.patch.role, "employee");
	assert_true(o.patch.set_disabled);
	assert_false(o.patch.disabled);
	run_free(&o);
}

static void test_refresh_and_logout(void **state)
{
	(void)state;
	char *t512 = member("refresh_token", "", "t", 512),
	     *t513 = member("refresh_token", "", "t", 513);
	refused(REFRESH, "{}", "refresh_token");
	refused(REFRESH, "{\"refresh_token\":\"\"}", "refresh_token");
	refused(REFRESH, "{\"refresh_token\":5}", "refresh_token");
	refused(REFRESH, "{\"refresh_token\":null}", "refresh_token");
	refused(REFRESH, t513, "refresh_token");
	refused(REFRESH, "{\"refresh_token\":\"t\",\"all\":true}", "all");

	struct run o;
	validate(&o, REFRESH, t512);
	assert_int_equal(json_object_size(o.details), 0);
	assert_int_equal(strlen(o.token), 512);
	run_free(&o);

	refused(LOGOUT, "{}", "refresh_token");
	refused(LOGOUT, "{\"all\":false}", "refresh_token");
	refused(LOGOUT, "{\"all\":\"yes\"}", "all");
	refused(LOGOUT, "{\"refresh_token\":5,\"all\":true}", "refresh_token");
	refused(LOGOUT, t513, "refresh_token");
	refused(LOGOUT, "{\"refresh_token\":\"t\",\"device\":1}", "device");
	validate(&o, LOGOUT, "{}");
	assert_string_equal(reason(&o, "refresh_token"), "is required unless all is true");
	run_free(&o);

	validate(&o, LOGOUT, "{\"all\":true}");
	assert_int_equal(json_object_size(o.details), 0);
	assert_null(o.token);
	assert_true(o.all);
	run_free(&o);
	validate(&o, LOGOUT, "{\"refresh_token\":\"abc\"}");
	assert_int_equal(json_object_size(o.details), 0);
	assert_string_equal(o.token, "abc");
	assert_false(o.all);
	run_free(&o);
	free(t512);
	free(t513);
}

/* The body must be refused with a reason naming field, by both validators, with the cookie. */
static void refused_with_cookie(const char *text, const char *field)
{
	const char *token;
	bool all;
	json_t *body = body_parse(text), *details = json_object();
	user_validate_refresh(body, true, &token, details);
	body_assert_only(details, field, text);
	json_object_clear(details);
	user_validate_logout(body, true, &token, &all, details);
	body_assert_only(details, field, text);
	json_decref(details);
	json_decref(body);
}

/* With the refresh cookie the token may be left out (no body, {}), but a body still obeys the
 * same rules: an unknown or malformed field is refused, a token given is taken. */
static void test_refresh_and_logout_with_cookie(void **state)
{
	(void)state;
	const char *token = "x";
	bool all = true;
	json_t *details = json_object();
	user_validate_refresh(NULL, true, &token, details);
	assert_null(token);
	user_validate_logout(NULL, true, &token, &all, details);
	assert_null(token);
	assert_false(all);
	assert_int_equal(json_object_size(details), 0);

	static const char *const accepted[] = {"{}", "{\"all\":false}"};
	for (size_t i = 0; i < countof(accepted); i++) {
		json_t *body = body_parse(accepted[i]);
		user_validate_logout(body, true, &token, &all, details);
		assert_null(token);
		assert_false(all);
		if (i == 0) {
			user_validate_refresh(body, true, &token, details);
			assert_null(token);
		}
		assert_int_equal(json_object_size(details), 0);
		json_decref(body);
	}
	json_t *body = body_parse("{\"refresh_token\":\"abc\"}");
	user_validate_refresh(body, true, &token, details);
	assert_string_equal(token, "abc");
	assert_int_equal(json_object_size(details), 0);
	json_decref(body);

	json_decref(details);
	refused_with_cookie("{\"refresh_token\":\"\"}", "refresh_token");
	refused_with_cookie("{\"device\":1}", "device");
}

/* The return path of a web sign-in: a path of this site and nothing that a browser could read as
 * another host or a script. */
static void test_return_to(void **state)
{
	(void)state;
	static const char *const good[] = {
		"/",
		"/app/find",
		"/app/grid?date=2026-12-01&building=B%201",
		"/app/a-b_c.d~e+f",
	};
	for (size_t i = 0; i < countof(good); i++)
		assert_null(user_validate_return_to(good[i]));
	static const char *const bad[] = {
		"",
		"app/find",
		"//evil.com",
		"/\\evil.com",
		"https://evil.com",
		"javascript:alert(1)",
		"/app:x",
		"/app find",
		"/app\tfind",
		"/app\r\nSet-Cookie:x",
		"/a#b",
		"/a\"b",
		"/a<b>",
		"/\x7f",
		"/\xc3\xa9",
	};
	for (size_t i = 0; i < countof(bad); i++)
		assert_non_null(user_validate_return_to(bad[i]));
	char *longest = body_repeat("a", USER_RETURN_TO_MAX);
	longest[0] = '/';
	assert_null(user_validate_return_to(longest));
	free(longest);
	char *too_long = body_repeat("a", USER_RETURN_TO_MAX + 1);
	too_long[0] = '/';
	assert_non_null(user_validate_return_to(too_long));
	free(too_long);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_profile_refusals),
		cmocka_unit_test(test_profile_accepted_values),
		cmocka_unit_test(test_admin_refusals),
		cmocka_unit_test(test_admin_accepted_values),
		cmocka_unit_test(test_refresh_and_logout),
		cmocka_unit_test(test_refresh_and_logout_with_cookie),
		cmocka_unit_test(test_return_to),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
