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

/* A line being written into a fixed buffer; ok turns false when it does not fit. */
struct log_line {
	char *p, *end;
	bool ok;
};

static void log_put(struct log_line *l, const char *s, size_t n)
{
	if (!l->ok || (size_t)(l->end - l->p) < n) {
		l->ok = false;
		return;
	}
	memcpy(l->p, s, n);
	l->p += n;
}

/* A JSON string as jansson dumps it without flags: ", \\ and control characters escaped,
 * everything else (UTF-8 included) as it is. */
static void log_put_string(struct log_line *l, const char *s)
{
	log_put(l, "\"", 1);
	for (const char *run = s;; s++) {
		unsigned char c = (unsigned char)*s;
		if (c >= 0x20 && c != '"' && c != '\\')
			continue;
		log_put(l, run, (size_t)(s - run));
		if (!c)
			break;
		char esc[8];
		const char *short_esc = c == '"'    ? "\\\""
		                        : c == '\\' ? "\\\\"
		                        : c == '\b' ? "\\b"
		                        : c == '\f' ? "\\f"
		                        : c == '\n' ? "\\n"
		                        : c == '\r' ? "\\r"
		                        : c == '\t' ? "\\t"
		                                    : NULL;
		if (!short_esc) {
			snprintf(esc, sizeof esc, "\\u%04X", c);
			short_esc = esc;
		}
		log_put(l, short_esc, strlen(short_esc));
		run = s + 1;
	}
	log_put(l, "\"", 1);
}

/* jansson's jsonp_dtostr: %.6g, a ".0" when that reads as an integer, no "+" or leading
 * zeros in the exponent. */
static void log_put_real(struct log_line *l, double v)
{
	char buf[40];
	int n = snprintf(buf, sizeof buf, "%.6g", v);
	if (n < 0 || (size_t)n >= sizeof buf - 2) {
		l->ok = false;
		return;
	}
	if (!strpbrk(buf, ".eEni")) {
		memcpy(buf + n, ".0", 3);
		n += 2;
	}
	char *e = strchr(buf, 'e');
	if (e) {
		char *start = e + 1, *digits;
		if (*start == '+')
			memmove(start, start + 1, strlen(start));
		if (*start == '-')
			start++;
		for (digits = start; digits[0] == '0' && digits[1]; digits++)
			;
		memmove(start, digits, strlen(digits) + 1);
		n = (int)strlen(buf);
	}
	log_put(l, buf, (size_t)n);
}

void log_write_fields(enum log_level level, const char *msg, const struct log_field *fields,
                      size_t n)
{
	char text[8192], ts[TIMEFMT_RFC3339_LEN], num[24];
	struct log_line l = {text, text + sizeof text - 1, true};
	timefmt_rfc3339_ms(timefmt_now_ms(), ts);
	log_put(&l, "{\"ts\":", 6);
	log_put_string(&l, ts);
	log_put(&l, ",\"level\":", 9);
	log_put_string(&l, log_names[level]);
	log_put(&l, ",\"service\":", 11);
	log_put_string(&l, log_service);
	log_put(&l, ",\"request_id\":", 14);
	if (log_req_id)
		log_put_string(&l, log_req_id);
	else
		log_put(&l, "null", 4);
	log_put(&l, ",\"msg\":", 7);
	log_put_string(&l, msg);
	for (size_t i = 0; i < n; i++) {
		log_put(&l, ",", 1);
		log_put_string(&l, fields[i].key);
		log_put(&l, ":", 1);
		switch (fields[i].type) {
		case LOG_FIELD_STR:
			log_put_string(&l, fields[i].str);
			break;
		case LOG_FIELD_INT:
			snprintf(num, sizeof num, "%lld", fields[i].num);
			log_put(&l, num, strlen(num));
			break;
		case LOG_FIELD_REAL:
			log_put_real(&l, fields[i].real);
			break;
		}
	}
	log_put(&l, "}\n", 2);
	if (l.ok) {
		ssize_t rc = write(STDERR_FILENO, text, (size_t)(l.p - text));
		(void)rc;
		return;
	}
	/* Longer than the buffer (a path of control characters): the allocating way. */
	json_t *obj = json_object();
	for (size_t i = 0; obj && i < n; i++) {
		json_t *v = fields[i].type == LOG_FIELD_STR   ? json_string(fields[i].str)
		            : fields[i].type == LOG_FIELD_INT ? json_integer(fields[i].num)
		                                              : json_real(fields[i].real);
		json_object_set_new(obj, fields[i].key, v);
	}
	log_write(level, obj, "%s", msg);
}
