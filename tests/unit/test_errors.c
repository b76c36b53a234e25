/* Unit tests of common/src/errors.c: the error-kind table and the body of docs/api.md#errors. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "countof.h"
#include "errors.h"

struct expected_kind {
	enum err_kind kind;
	int status;
	const char *code;
	const char *message;
};

/* Written out by hand (not generated from ERR_KINDS) so a change to the table fails here. */
static const struct expected_kind expected[] = {
	{ERR_BAD_REQUEST, 400, "bad_request", "bad request"},
	{ERR_UNAUTHORIZED, 401, "unauthorized", "authentication required"},
	{ERR_TOKEN_REVOKED, 401, "token_revoked", "the access token was revoked"},
	{ERR_FORBIDDEN, 403, "forbidden", "not allowed"},
	{ERR_NOT_FOUND, 404, "not_found", "not found"},
	{ERR_METHOD_NOT_ALLOWED, 405, "method_not_allowed", "method not allowed"},
	{ERR_CONFLICT, 409, "conflict", "conflict"},
	{ERR_LENGTH_REQUIRED, 411, "length_required", "Content-Length required"},
	{ERR_PRECONDITION_FAILED, 412, "precondition_failed",
         "If-Match does not match the current ETag"},
	{ERR_PAYLOAD_TOO_LARGE, 413, "payload_too_large", "request body too large"},
	{ERR_UNSUPPORTED_MEDIA_TYPE, 415, "unsupported_media_type",
         "request body must be application/json"},
	{ERR_VALIDATION_FAILED, 422, "validation_failed", "validation failed"},
	{ERR_RATE_LIMITED, 429, "rate_limited", "too many requests"},
	{ERR_INTERNAL, 500, "internal", "internal error"},
	{ERR_BAD_GATEWAY, 502, "bad_gateway", "upstream service failed"},
	{ERR_UNAVAILABLE, 503, "unavailable", "service temporarily unavailable"},
};
#define NEXPECTED countof(expected)

static void test_every_kind(void **state)
{
	(void)state;
	/* Every kind of the enum is listed above: a new kind must get a test row. */
	assert_int_equal(NEXPECTED, ERR_KIND_COUNT - 1);
	for (size_t i = 0; i < NEXPECTED; i++) {
		const struct expected_kind *e = &expected[i];
		assert_int_equal(err_status(e->kind), e->status);
		assert_string_equal(err_code(e->kind), e->code);
		assert_string_equal(err_default_message(e->kind), e->message);
	}
}

static void test_codes_unique(void **state)
{
	(void)state;
	for (int a = ERR_NONE + 1; a < ERR_KIND_COUNT; a++)
		for (int b = a + 1; b < ERR_KIND_COUNT; b++)
			assert_string_not_equal(err_code((enum err_kind)a),
			                        err_code((enum err_kind)b));
}

static void test_out_of_range_is_internal(void **state)
{
	(void)state;
	const enum err_kind bad[] = {ERR_NONE, ERR_KIND_COUNT, (enum err_kind)(ERR_KIND_COUNT + 7),
	                             (enum err_kind) - 1, (enum err_kind)1000000};
	for (size_t i = 0; i < countof(bad); i++) {
		assert_int_equal(err_status(bad[i]), 500);
		assert_string_equal(err_code(bad[i]), "internal");
		assert_string_equal(err_default_message(bad[i]), "internal error");
	}
}

/* "YYYY-MM-DDTHH:MM:SS.mmmZ" */
static void assert_timestamp_shape(const char *ts)
{
	assert_non_null(ts);
	assert_int_equal(strlen(ts), 24);
	for (size_t i = 0; i < 24; i++) {
		char c = ts[i];
		switch (i) {
		case 4:
		case 7:
			assert_int_equal(c, '-');
			break;
		case 10:
			assert_int_equal(c, 'T');
			break;
		case 13:
		case 16:
			assert_int_equal(c, ':');
			break;
		case 19:
			assert_int_equal(c, '.');
			break;
		case 23:
			assert_int_equal(c, 'Z');
			break;
		default:
			assert_true(c >= '0' && c <= '9');
		}
	}
}

static void test_body_shape(void **state)
{
	(void)state;
	json_t *details = json_pack("{s:s}", "end_time", "must be after start_time");
	assert_non_null(details);
	/* 2026-11-21T10:00:00.123Z */
	json_t *b = err_body(ERR_VALIDATION_FAILED, "end_time must be after start_time", "req-1",
	                     details, 1795255200123LL);
	assert_non_null(b);
	assert_true(json_is_true(json_object_get(b, "error")));
	assert_string_equal(json_string_value(json_object_get(b, "code")), "validation_failed");
	assert_string_equal(json_string_value(json_object_get(b, "message")),
	                    "end_time must be after start_time");
	assert_true(json_is_integer(json_object_get(b, "status_code")));
	assert_int_equal(json_integer_value(json_object_get(b, "status_code")), 422);
	const char *ts = json_string_value(json_object_get(b, "timestamp"));
	assert_timestamp_shape(ts);
	assert_string_equal(ts, "2026-11-21T10:00:00.123Z");
	assert_string_equal(json_string_value(json_object_get(b, "request_id")), "req-1");
	/* details was stolen: the body holds the very object, and nobody else does. */
	assert_ptr_equal(json_object_get(b, "details"), details);
	assert_int_equal(details->refcount, 1);
	assert_string_equal(json_string_value(json_object_get(details, "end_time")),
	                    "must be after start_time");
	assert_int_equal(json_object_size(b), 7);
	json_decref(b);
}

static void test_body_defaults(void **state)
{
	(void)state;
	/* NULL and "" messages give the default; no details → no details key. */
	const char *msgs[] = {NULL, ""};
	for (size_t i = 0; i < 2; i++) {
		json_t *b = err_body(ERR_NOT_FOUND, msgs[i], NULL, NULL, 0);
		assert_non_null(b);
		assert_string_equal(json_string_value(json_object_get(b, "message")), "not found");
		assert_string_equal(json_string_value(json_object_get(b, "code")), "not_found");
		assert_int_equal(json_integer_value(json_object_get(b, "status_code")), 404);
		assert_string_equal(json_string_value(json_object_get(b, "timestamp")),
		                    "1970-01-01T00:00:00.000Z");
		assert_null(json_object_get(b, "details"));
		json_t *rid = json_object_get(b, "request_id");
		assert_true(rid == NULL || json_is_null(rid));
		json_decref(b);
	}
}

static void test_body_out_of_range_kind(void **state)
{
	(void)state;
	json_t *b = err_body((enum err_kind)9999, NULL, "r", json_object(), 1);
	assert_non_null(b);
	assert_string_equal(json_string_value(json_object_get(b, "code")), "internal");
	assert_int_equal(json_integer_value(json_object_get(b, "status_code")), 500);
	assert_string_equal(json_string_value(json_object_get(b, "message")), "internal error");
	assert_string_equal(json_string_value(json_object_get(b, "timestamp")),
	                    "1970-01-01T00:00:00.001Z");
	json_decref(b);
}

static void test_body_every_kind(void **state)
{
	(void)state;
	for (size_t i = 0; i < NEXPECTED; i++) {
		json_t *b = err_body(expected[i].kind, NULL, "id", NULL, 1795255200000LL);
		assert_non_null(b);
		assert_string_equal(json_string_value(json_object_get(b, "code")),
		                    expected[i].code);
		assert_int_equal(json_integer_value(json_object_get(b, "status_code")),
		                 expected[i].status);
		assert_string_equal(json_string_value(json_object_get(b, "message")),
		                    expected[i].message);
		assert_timestamp_shape(json_string_value(json_object_get(b, "timestamp")));
		json_decref(b);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_every_kind),
		cmocka_unit_test(test_codes_unique),
		cmocka_unit_test(test_out_of_range_is_internal),
		cmocka_unit_test(test_body_shape),
		cmocka_unit_test(test_body_defaults),
		cmocka_unit_test(test_body_out_of_range_kind),
		cmocka_unit_test(test_body_every_kind),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
