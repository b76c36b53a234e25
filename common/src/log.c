#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "countof.h"
#include "encoding.h"
#include "timefmt.h"

static const char *log_service = "service";
static enum log_level log_min = LOG_LEVEL_INFO;
static _Thread_local const char *log_req_id;

static const char *const log_names[] = {"debug", "info", "warn", "error"};

void log_init(const char *service, enum log_level min_level)
{
	log_service = service;
	log_min = min_level;
}

bool log_level_parse(const char *s, enum log_level *out)
{
	for (size_t i = 0; i < countof(log_names); i++) {
		if (strcasecmp(s, log_names[i]) == 0) {
			*out = (enum log_level)i;
			return true;
		}
	}
	return false;
}

bool log_enabled(enum log_level level)
{
	return level >= log_min;
}

void log_set_request_id(const char *request_id)
{
	log_req_id = request_id;
}

const char *log_request_id(void)
{
	return log_req_id;
}

void log_write(enum log_level level, json_t *fields, const char *fmt, ...)
{
	char raw[LOG_MSG_MAX], msg[LOG_MSG_MAX], ts[TIMEFMT_RFC3339_LEN];
	va_list ap;
	json_t *line = NULL;
	char *text = NULL;

	/* The message may quote anything (a path, a database error): cut on a character boundary
	 * and with ill-formed bytes replaced, so that jansson accepts it and the line is written. */
	va_start(ap, fmt);
	int n = vsnprintf(raw, sizeof raw, fmt, ap);
	va_end(ap);
	if (n < 0)
		raw[0] = '\0';
	enc_utf8_sanitize(msg, sizeof msg, raw, strlen(raw), n >= (int)sizeof raw);
	timefmt_rfc3339_ms(timefmt_now_ms(), ts);

	line = json_pack("{s:s, s:s, s:s, s:s?, s:s}", "ts", ts, "level", log_names[level],
	                 "service", log_service, "request_id", log_req_id, "msg", msg);
	if (!line)
		goto out;
	if (fields)
		json_object_update_missing(line, fields);
	text = json_dumps(line, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(6));
	if (!text)
		goto out;
	size_t len = strlen(text);
	text[len] = '\n'; /* the terminating NUL becomes the newline */
	ssize_t rc = write(STDERR_FILENO, text, len + 1);
	(void)rc;
out:
	free(text);
	json_decref(line);
	json_decref(fields);
}
