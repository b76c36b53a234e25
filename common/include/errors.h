/* errors: the one table of error kinds.  Each kind gives the HTTP status, the stable JSON `code`
 * and the default message of the error body (docs/api.md#errors).  Handlers return or raise a
 * kind plus a message; err_body() turns it into the JSON the client sees. */
#ifndef ERRORS_H
#define ERRORS_H

#include <jansson.h>

#define ERR_KINDS(X)                                                                 \
	X(ERR_BAD_REQUEST, 400, "bad_request", "bad request")                        \
	X(ERR_UNAUTHORIZED, 401, "unauthorized", "authentication required")          \
	X(ERR_TOKEN_REVOKED, 401, "token_revoked", "the access token was revoked")   \
	X(ERR_FORBIDDEN, 403, "forbidden", "not allowed")                            \
	X(ERR_NOT_FOUND, 404, "not_found", "not found")                              \
	X(ERR_METHOD_NOT_ALLOWED, 405, "method_not_allowed", "method not allowed")   \
	X(ERR_CONFLICT, 409, "conflict", "conflict")                                 \
	X(ERR_LENGTH_REQUIRED, 411, "length_required", "Content-Length required")    \
	X(ERR_PRECONDITION_FAILED, 412, "precondition_failed",                       \
	  "If-Match does not match the current ETag")                                \
	X(ERR_PAYLOAD_TOO_LARGE, 413, "payload_too_large", "request body too large") \
	X(ERR_UNSUPPORTED_MEDIA_TYPE, 415, "unsupported_media_type",                 \
	  "request body must be application/json")                                   \
	X(ERR_VALIDATION_FAILED, 422, "validation_failed", "validation failed")      \
	X(ERR_RATE_LIMITED, 429, "rate_limited", "too many requests")                \
	X(ERR_INTERNAL, 500, "internal", "internal error")                           \
	X(ERR_BAD_GATEWAY, 502, "bad_gateway", "upstream service failed")            \
	X(ERR_UNAVAILABLE, 503, "unavailable", "service temporarily unavailable")

enum err_kind {
	ERR_NONE = 0,
/* clang-format off */
#define ERR_ENUM_(kind, status, code, msg) kind,
	ERR_KINDS(ERR_ENUM_)
#undef ERR_ENUM_
	ERR_KIND_COUNT
	/* clang-format on */
};

/* HTTP status of a kind (500 for ERR_NONE or an out-of-range value). Thread-safe. */
int err_status(enum err_kind kind);
/* Stable machine-readable code, e.g. "validation_failed". Static string. */
const char *err_code(enum err_kind kind);
/* Default human message for a kind. Static string. */
const char *err_default_message(enum err_kind kind);

/* Builds the error object of docs/api.md#errors.  message may be NULL (the default message is
 * used); request_id may be NULL; details is stolen (may be NULL).  timestamp_ms is the Unix time
 * in ms.  Returns a new reference, or NULL on allocation failure. */
json_t *err_body(enum err_kind kind, const char *message, const char *request_id, json_t *details,
                 long long timestamp_ms);

#endif
