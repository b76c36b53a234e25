/* Fuzzes the time parsers with the input as a C string:
 *   - timefmt_parse_rfc3339: accepted fields are in range, the wall-clock text is the input's,
 *     and a time with an offset formats (timefmt_rfc3339_s) and parses back to the same instant;
 *   - timefmt_parse_date: an accepted date is exactly "YYYY-MM-DD" and is accepted as a
 *     date-time at midnight too;
 *   - tz_valid (TZDIR as the services have it: unset, /usr/share/zoneinfo): an accepted name is
 *     short and made of the allowed characters;
 *   - the first 8 bytes as a number of seconds/milliseconds within years 1..9999 through
 *     timefmt_rfc3339_s/_ms, which must parse back. */
#include "fuzz.h"

#include <ctype.h>
#include <strings.h>

#include "timefmt.h"
#include "tz.h"

#define FIRST_SECOND (-62135596800LL) /* 0001-01-01T00:00:00Z */
#define LAST_SECOND 253402300799LL    /* 9999-12-31T23:59:59Z */

static void rfc3339(const char *s)
{
	struct timefmt_time t, again;
	char text[TIMEFMT_RFC3339_LEN];
	if (!timefmt_parse_rfc3339(s, &t))
		return;
	FUZZ_CHECK(t.year >= 1 && t.year <= 9999 && t.month >= 1 && t.month <= 12 && t.day >= 1 &&
	           t.day <= 31 && t.hour <= 23 && t.minute <= 59 && t.second <= 59);
	FUZZ_CHECK(t.offset_minutes > -24 * 60 && t.offset_minutes < 24 * 60);
	FUZZ_CHECK(t.has_offset || t.offset_minutes == 0);

	timefmt_local_text(&t, text);
	FUZZ_CHECK(strlen(text) == 19 && strncasecmp(text, s, 19) == 0);
	FUZZ_CHECK(timefmt_parse_rfc3339(text, &again) && !again.has_offset);
	FUZZ_CHECK(again.year == t.year && again.month == t.month && again.day == t.day &&
	           again.hour == t.hour && again.minute == t.minute && again.second == t.second);

	if (t.has_offset && t.utc >= FIRST_SECOND && t.utc <= LAST_SECOND) {
		timefmt_rfc3339_s(t.utc, text);
		FUZZ_CHECK(timefmt_parse_rfc3339(text, &again));
		FUZZ_CHECK(again.has_offset && again.offset_minutes == 0 && again.utc == t.utc);
	}
}

static void date(const char *s)
{
	int y, m, d;
	char text[32];
	struct timefmt_time t;
	bool ok = timefmt_parse_date(s, &y, &m, &d);
	if (strlen(s) == 10) {
		snprintf(text, sizeof text, "%sT00:00:00Z", s);
		FUZZ_CHECK(ok == timefmt_parse_rfc3339(text, &t));
	}
	if (!ok)
		return;
	snprintf(text, sizeof text, "%04d-%02d-%02d", y, m, d);
	FUZZ_CHECK(strcmp(text, s) == 0);
}

static void zone(const char *s)
{
	if (!tz_valid(s))
		return;
	size_t len = strlen(s);
	FUZZ_CHECK(len > 0 && len <= TZ_NAME_MAX && s[0] != '/' && !strstr(s, ".."));
	for (const char *p = s; *p; p++)
		FUZZ_CHECK(isalnum((unsigned char)*p) || strchr("/_-+", *p));
	FUZZ_CHECK(tz_valid(s)); /* the cached list answers the same */
}

static void format(const uint8_t *data, size_t size)
{
	uint64_t raw = 0;
	char text[TIMEFMT_RFC3339_LEN];
	struct timefmt_time t;
	if (size < 8)
		return;
	memcpy(&raw, data, 8);
	long long span = LAST_SECOND - FIRST_SECOND + 1;
	long long secs = FIRST_SECOND + (long long)(raw % (uint64_t)span);
	timefmt_rfc3339_s(secs, text);
	FUZZ_CHECK(timefmt_parse_rfc3339(text, &t) && t.utc == secs && !t.has_fraction);
	long long ms = secs * 1000 + (long long)(raw >> 54) % 1000;
	timefmt_rfc3339_ms(ms, text);
	FUZZ_CHECK(timefmt_parse_rfc3339(text, &t) && t.utc == secs);
	FUZZ_CHECK(t.has_fraction == (ms % 1000 != 0));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = fuzz_cstr(data, size);
	rfc3339(s);
	date(s);
	zone(s);
	format(data, size);
	free(s);
	return 0;
}
