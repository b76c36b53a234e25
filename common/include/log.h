/* log: one JSON object per line on stderr: ts, level, service, request_id, msg, fields.
 * The level is checked before anything is formatted.  Thread-safe: each line is written with a
 * single write(2).  Never pass secrets or tokens. */
#ifndef LOG_H
#define LOG_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

enum log_level { LOG_LEVEL_DEBUG, LOG_LEVEL_INFO, LOG_LEVEL_WARN, LOG_LEVEL_ERROR };

/* Sets the service name (borrowed; must outlive logging) and the minimum level. Call before
 * threads start. */
void log_init(const char *service, enum log_level min_level);
/* Parses "debug|info|warn|error" (case-insensitive). */
bool log_level_parse(const char *s, enum log_level *out);
bool log_enabled(enum log_level level);

/* The request id stamped on this thread's lines; borrowed, NULL clears it. */
void log_set_request_id(const char *request_id);
const char *log_request_id(void);

/* Longest msg of a line in bytes; a longer one is cut after a whole character and ends in "…". */
#define LOG_MSG_MAX 1024

/* Writes one line.  fields (stolen, may be NULL) is an object merged into the line.  The
 * formatted message may hold any bytes: ill-formed UTF-8 becomes U+FFFD (enc_utf8_sanitize).
 * Strings in fields must be well-formed UTF-8 already (jansson refuses others). */
void log_write(enum log_level level, json_t *fields, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* A field of log_write_fields(): a string (well-formed UTF-8, borrowed), an integer or a number
 * (written as jansson writes it with JSON_REAL_PRECISION(6)). */
enum log_field_type { LOG_FIELD_STR, LOG_FIELD_INT, LOG_FIELD_REAL };
struct log_field {
	const char *key;
	enum log_field_type type;
	const char *str;
	long long num;
	double real;
};

/* The line log_write(level, object of fields, "%s", msg) writes, byte for byte, but built
 * without the heap: for the access log line of every request.  msg (well-formed UTF-8, at most
 * LOG_MSG_MAX bytes) and fields[0..n) are borrowed; the keys must differ from the line's own
 * (ts, level, service, request_id, msg).  Check log_enabled() first. */
void log_write_fields(enum log_level level, const char *msg, const struct log_field *fields,
                      size_t n);

#define LOG_AT_(lvl, fields, ...)                            \
	do {                                                 \
		if (log_enabled(lvl))                        \
			log_write(lvl, fields, __VA_ARGS__); \
	} while (0)
#define log_debug(...) LOG_AT_(LOG_LEVEL_DEBUG, NULL, __VA_ARGS__)
#define log_info(...) LOG_AT_(LOG_LEVEL_INFO, NULL, __VA_ARGS__)
#define log_warn(...) LOG_AT_(LOG_LEVEL_WARN, NULL, __VA_ARGS__)
#define log_error(...) LOG_AT_(LOG_LEVEL_ERROR, NULL, __VA_ARGS__)

#endif
