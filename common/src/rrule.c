/* rrule: the recurrence rules of recurring reservations (common/include/rrule.h).
 *
 * Parsing: the text form is split at ';' into NAME=VALUE parts and list values at ','; the JSON
 * form gives the same parts as keys.  Both feed the same item parsers, and one check of the whole
 * rule (rule_check) follows, so that both forms accept and refuse exactly the same rules.
 *
 * Expansion: the rule steps by periods (a day, a week, a month, times INTERVAL, counted from
 * dtstart's), each period yields its candidate dates ascending, and COUNT, UNTIL, EXDATE, max and
 * limit are applied to that stream.  The semantics are python-dateutil's rrule (the integration
 * tests compare against it): the first period is dtstart's day/week (Monday first)/month, dates
 * before dtstart are dropped, WEEKLY without BYDAY takes dtstart's weekday, MONTHLY without BYDAY
 * or BYMONTHDAY takes dtstart's day of the month (a month without it yields nothing), BYDAY and
 * BYMONTHDAY together yield the dates that match both. */
#include "rrule.h"

#include <assert.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ---- days ---- */

/* H. Hinnant's days_from_civil / civil_from_days (proleptic Gregorian, any year). */
long rrule_days_from_date(struct rrule_date d)
{
	long y = (long)d.year - (d.month <= 2);
	long era = (y >= 0 ? y : y - 399) / 400;
	long yoe = y - era * 400;
	long mp = (d.month + 9) % 12;
	long doy = (153 * mp + 2) / 5 + d.day - 1;
	long doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

struct rrule_date rrule_date_from_days(long days)
{
	long z = days + 719468;
	long era = (z >= 0 ? z : z - 146096) / 146097;
	long doe = z - era * 146097;
	long yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	long doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	long mp = (5 * doy + 2) / 153;
	long day = doy - (153 * mp + 2) / 5 + 1;
	long month = mp < 10 ? mp + 3 : mp - 9;
	long year = yoe + era * 400 + (month <= 2);
	return (struct rrule_date){(int)year, (int)month, (int)day};
}

/* 1970-01-01 was a Thursday (3 with Monday 0). */
static int weekday_of_days(long days)
{
	long w = (days + 3) % 7;
	return (int)(w < 0 ? w + 7 : w);
}

int rrule_weekday(struct rrule_date d)
{
	return weekday_of_days(rrule_days_from_date(d));
}

static bool leap_year(long y)
{
	return y % 4 == 0 && (y % 100 != 0 || y % 400 == 0);
}

static int days_in_month(long year, int month)
{
	static const int days[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	return month == 2 && leap_year(year) ? 29 : days[month - 1];
}

/* ---- errors ---- */

#define SUPPORTED_PARTS "FREQ, INTERVAL, BYDAY, BYMONTHDAY, COUNT, UNTIL, EXDATE and WKST"

__attribute__((format(printf, 3, 4))) static bool fail(struct rrule_error *err, const char *part,
                                                       const char *fmt, ...)
{
	va_list ap;
	snprintf(err->part, sizeof err->part, "%s", part);
	va_start(ap, fmt);
	vsnprintf(err->reason, sizeof err->reason, fmt, ap);
	va_end(ap);
	return false;
}

/* A piece of the client's input, quoted and followed by a space, for a reason ("\"XX\" "), or ""
 * when it is long or not printable ASCII (the reason goes into a JSON string: it must stay
 * valid UTF-8, and a long echo says nothing more). */
struct shown {
	char text[32];
};

static struct shown show(const char *s, size_t n)
{
	struct shown out = {""};
	if (n == 0 || n > 20)
		return out;
	for (size_t i = 0; i < n; i++)
		if (s[i] < 0x21 || s[i] > 0x7e || s[i] == '"' || s[i] == '\\')
			return out;
	snprintf(out.text, sizeof out.text, "\"%.*s\" ", (int)n, s);
	return out;
}

/* ---- the parts: one table ---- */

/* The parts of the subset, then the RFC 5545 parts that are refused by name. */
/* clang-format off */
#define RRULE_PARTS(X) \
	X(FREQ) X(INTERVAL) X(BYDAY) X(BYMONTHDAY) X(COUNT) X(UNTIL) X(EXDATE) X(WKST) \
	X(BYSETPOS) X(BYHOUR) X(BYMINUTE) X(BYSECOND) X(BYWEEKNO) X(BYYEARDAY) X(BYMONTH) \
	X(RSCALE) X(SKIP)
/* clang-format on */
enum part {
	PART_NONE = -1,
#define PART_ENUM(name) PART_##name,
	RRULE_PARTS(PART_ENUM)
#undef PART_ENUM
};
static const char *const part_names[] = {
#define PART_NAME(name) #name,
	RRULE_PARTS(PART_NAME)
#undef PART_NAME
};
#define PART_COUNT_OF ((int)(sizeof part_names / sizeof part_names[0]))
#define FIRST_REFUSED PART_BYSETPOS

static enum part part_lookup(const char *s, size_t n)
{
	for (int i = 0; i < PART_COUNT_OF; i++)
		if (strlen(part_names[i]) == n && strncasecmp(part_names[i], s, n) == 0)
			return (enum part)i;
	return PART_NONE;
}

/* A part the subset does not have: a known RFC 5545 one (named) or anything else. */
static bool fail_part(struct rrule_error *err, enum part p, const char *name, size_t n)
{
	if (p != PART_NONE)
		return fail(err, part_names[p], "%s is not supported; supported parts: %s",
		            part_names[p], SUPPORTED_PARTS);
	struct shown sh = show(name, n);
	if (!sh.text[0])
		return fail(err, "recurrence", "the rule has an unknown part; supported parts: %s",
		            SUPPORTED_PARTS);
	char part[32];
	snprintf(part, sizeof part, "%.*s", (int)n, name);
	return fail(err, part, "%sis not an RRULE part; supported parts: %s", sh.text,
	            SUPPORTED_PARTS);
}

static const char *const weekday_names[7] = {"MO", "TU", "WE", "TH", "FR", "SA", "SU"};
static const char *const freq_names[] =
	{[RRULE_DAILY] = "DAILY", [RRULE_WEEKLY] = "WEEKLY", [RRULE_MONTHLY] = "MONTHLY"};

/* ---- item parsers (s[0..n), not NUL-terminated) ---- */

static bool token_is(const char *s, size_t n, const char *word)
{
	return strlen(word) == n && strncasecmp(s, word, n) == 0;
}

/* Digits only (RFC 5545's 1*DIGIT: no sign, no space), value in [min, max]. */
static bool digits_in_range(const char *s, size_t n, long min, long max, long *out)
{
	long v = 0;
	if (n == 0)
		return false;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		v = v * 10 + (s[i] - '0');
		if (v > max)
			return false;
	}
	if (v < min)
		return false;
	*out = v;
	return true;
}

static bool parse_freq(const char *s, size_t n, struct rrule *rule, struct rrule_error *err)
{
	for (size_t f = 0; f < sizeof freq_names / sizeof freq_names[0]; f++)
		if (token_is(s, n, freq_names[f])) {
			rule->freq = (enum rrule_freq)f;
			return true;
		}
	static const char *const refused[] = {"YEARLY", "HOURLY", "MINUTELY", "SECONDLY"};
	for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++)
		if (token_is(s, n, refused[i]))
			return fail(
				err, "FREQ",
				"FREQ=%s is not supported; FREQ must be DAILY, WEEKLY or MONTHLY",
				refused[i]);
	return fail(err, "FREQ", "FREQ %smust be DAILY, WEEKLY or MONTHLY", show(s, n).text);
}

static bool parse_interval(const char *s, size_t n, struct rrule *rule, struct rrule_error *err)
{
	long v;
	if (!digits_in_range(s, n, 1, RRULE_MAX_INTERVAL, &v))
		return fail(err, "INTERVAL", "INTERVAL %smust be a whole number from 1 to %d",
		            show(s, n).text, RRULE_MAX_INTERVAL);
	rule->interval = (int)v;
	return true;
}

static bool parse_count(const char *s, size_t n, struct rrule *rule, struct rrule_error *err)
{
	if (!digits_in_range(s, n, 1, RRULE_MAX_COUNT, &rule->count))
		return fail(err, "COUNT", "COUNT %smust be a whole number from 1 to %d",
		            show(s, n).text, RRULE_MAX_COUNT);
	return true;
}

/* [+|-][1-5]WD */
static bool parse_byday(const char *s, size_t n, struct rrule *rule, struct rrule_error *err)
{
	struct rrule_byday bd = {0, 0};
	size_t i = 0;
	int sign = 1;
	if (n == 0)
		return fail(err, "BYDAY", "BYDAY has an empty item; list weekdays as MO,TU,FR");
	if (s[0] == '+' || s[0] == '-') {
		sign = s[0] == '-' ? -1 : 1;
		i++;
	}
	size_t number = i; /* s[number..i) is the number, s[i..n) the weekday */
	while (i < n && s[i] >= '0' && s[i] <= '9')
		i++;
	bool known = false;
	if (n - i == 2)
		for (int w = 0; w < 7; w++)
			if (strncasecmp(s + i, weekday_names[w], 2) == 0) {
				bd.weekday = w;
				known = true;
			}
	bool sign_alone = number == 1 && i == 1;
	if (!known || sign_alone)
		return fail(err, "BYDAY",
		            "BYDAY item %sis not a weekday: use MO, TU, WE, TH, FR, SA or SU, with "
		            "FREQ=MONTHLY optionally numbered (2TU, -1FR)",
		            show(s, n).text);
	if (i > number) {
		long ord;
		if (!digits_in_range(s + number, i - number, 1, 5, &ord))
			return fail(
				err, "BYDAY",
				"BYDAY item %shas a number outside 1 to 5 and -1 to -5 (the nth "
				"or nth last weekday of the month)",
				show(s, n).text);
		bd.ordinal = sign * (int)ord;
	}
	for (size_t k = 0; k < rule->nbyday; k++)
		if (rule->byday[k].weekday == bd.weekday && rule->byday[k].ordinal == bd.ordinal)
			return fail(err, "BYDAY", "BYDAY lists %stwice", show(s, n).text);
	if (rule->nbyday == RRULE_MAX_BYDAY)
		return fail(err, "BYDAY", "BYDAY has more than %d items", RRULE_MAX_BYDAY);
	rule->byday[rule->nbyday++] = bd;
	return true;
}

static bool add_bymonthday(long v, struct rrule *rule, struct rrule_error *err)
{
	char text[24];
	snprintf(text, sizeof text, "%ld", v);
	if (v == 0 || v > 31 || v < -31)
		return fail(err, "BYMONTHDAY",
		            "BYMONTHDAY item %s is not a day of the month: use 1 to 31, or -1 (the "
		            "last day) to -31",
		            text);
	for (size_t k = 0; k < rule->nbymonthday; k++)
		if (rule->bymonthday[k] == v)
			return fail(err, "BYMONTHDAY", "BYMONTHDAY lists %s twice", text);
	/* Unreachable with distinct items in range (62 of them), kept as the array's guard. */
	if (rule->nbymonthday == RRULE_MAX_BYMONTHDAY)
		return fail(err, "BYMONTHDAY", "BYMONTHDAY has more than %d items",
		            RRULE_MAX_BYMONTHDAY);
	rule->bymonthday[rule->nbymonthday++] = (int)v;
	return true;
}

/* [+|-]digits */
static bool parse_bymonthday(const char *s, size_t n, struct rrule *rule, struct rrule_error *err)
{
	long v;
	size_t i = 0;
	if (n == 0)
		return fail(err, "BYMONTHDAY",
		            "BYMONTHDAY has an empty item; list days as 1,15,-1");
	if (s[0] == '+' || s[0] == '-')
		i++;
	if (!digits_in_range(s + i, n - i, 0, 99, &v))
		return fail(err, "BYMONTHDAY",
		            "BYMONTHDAY item %sis not a day of the month: use 1 to 31, or -1 (the "
		            "last day) to -31",
		            show(s, n).text);
	return add_bymonthday(s[0] == '-' ? -v : v, rule, err);
}

/* YYYYMMDD or YYYY-MM-DD, then (when time is not NULL) optionally THHMMSS or THH:MM:SS (the same
 * style as the date) and a final Z.  *time is -1 without a time; *utc tells the Z.  A date that
 * does not exist (20270230), year 0 and second 60 are refused. */
static bool parse_datetime(const char *s, size_t n, struct rrule_date *date, int *time, bool *utc)
{
	bool ext = n >= 5 && s[4] == '-';
	size_t dlen = ext ? 10 : 8;
	long y, mo, d, h, mi, se;
	if (n < dlen)
		return false;
	if (ext) {
		if (s[7] != '-' || !digits_in_range(s, 4, 1, 9999, &y) ||
		    !digits_in_range(s + 5, 2, 1, 12, &mo) || !digits_in_range(s + 8, 2, 1, 31, &d))
			return false;
	} else if (!digits_in_range(s, 4, 1, 9999, &y) || !digits_in_range(s + 4, 2, 1, 12, &mo) ||
	           !digits_in_range(s + 6, 2, 1, 31, &d)) {
		return false;
	}
	if (d > days_in_month(y, (int)mo))
		return false;
	*date = (struct rrule_date){(int)y, (int)mo, (int)d};
	if (n == dlen) {
		if (time) {
			*time = -1;
			*utc = false;
		}
		return true;
	}
	if (!time || (s[dlen] != 'T' && s[dlen] != 't'))
		return false;
	const char *t = s + dlen + 1;
	size_t tlen = n - dlen - 1;
	*utc = tlen > 0 && (t[tlen - 1] == 'Z' || t[tlen - 1] == 'z');
	if (*utc)
		tlen--;
	if (ext) {
		if (tlen != 8 || t[2] != ':' || t[5] != ':' || !digits_in_range(t, 2, 0, 23, &h) ||
		    !digits_in_range(t + 3, 2, 0, 59, &mi) ||
		    !digits_in_range(t + 6, 2, 0, 59, &se))
			return false;
	} else if (tlen != 6 || !digits_in_range(t, 2, 0, 23, &h) ||
	           !digits_in_range(t + 2, 2, 0, 59, &mi) ||
	           !digits_in_range(t + 4, 2, 0, 59, &se)) {
		return false;
	}
	*time = (int)(h * 3600 + mi * 60 + se);
	return true;
}

static bool parse_until(const char *s, size_t n, struct rrule *rule, struct rrule_error *err)
{
	int time;
	bool utc;
	if (!parse_datetime(s, n, &rule->until_date, &time, &utc))
		return fail(
			err, "UNTIL",
			"UNTIL %smust be a date that exists: YYYYMMDD (a local date), "
			"YYYYMMDDTHHMMSS (local) or YYYYMMDDTHHMMSSZ (UTC); YYYY-MM-DD forms too",
			show(s, n).text);
	rule->until_kind = time < 0 ? RRULE_UNTIL_DATE : utc ? RRULE_UNTIL_UTC : RRULE_UNTIL_LOCAL;
	rule->until_seconds = time < 0 ? 0 : time;
	return true;
}

static bool parse_exdate(const char *s, size_t n, struct rrule *rule, struct rrule_error *err)
{
	struct rrule_date d;
	if (n == 0)
		return fail(err, "EXDATE",
		            "EXDATE has an empty item; list dates as 20261222,20261229");
	if (!parse_datetime(s, n, &d, NULL, NULL))
		return fail(err, "EXDATE",
		            "EXDATE item %sis not a local date that exists: use YYYYMMDD or "
		            "YYYY-MM-DD",
		            show(s, n).text);
	for (size_t k = 0; k < rule->nexdates; k++)
		if (memcmp(&rule->exdates[k], &d, sizeof d) == 0)
			return fail(err, "EXDATE", "EXDATE lists %stwice", show(s, n).text);
	if (rule->nexdates == RRULE_MAX_EXDATES)
		return fail(err, "EXDATE", "EXDATE has more than %d dates", RRULE_MAX_EXDATES);
	rule->exdates[rule->nexdates++] = d;
	return true;
}

static bool parse_wkst(const char *s, size_t n, struct rrule *rule, struct rrule_error *err)
{
	(void)rule;
	if (!token_is(s, n, "MO"))
		return fail(err, "WKST",
		            "WKST %sis not supported; only WKST=MO (weeks start on Monday)",
		            show(s, n).text);
	return true;
}

typedef bool item_parser(const char *s, size_t n, struct rrule *rule, struct rrule_error *err);

/* Each item of a ','-separated list; an empty item (",," or a trailing ',') goes to the parser,
 * which refuses it. */
static bool parse_list(const char *s, size_t n, item_parser *item, struct rrule *rule,
                       struct rrule_error *err)
{
	for (;;) {
		const char *comma = memchr(s, ',', n);
		size_t len = comma ? (size_t)(comma - s) : n;
		if (!item(s, len, rule, err))
			return false;
		if (!comma)
			return true;
		n -= len + 1;
		s = comma + 1;
	}
}

static bool parse_value(enum part p, const char *s, size_t n, struct rrule *rule,
                        struct rrule_error *err)
{
	switch (p) {
	case PART_FREQ:
		return parse_freq(s, n, rule, err);
	case PART_INTERVAL:
		return parse_interval(s, n, rule, err);
	case PART_BYDAY:
		return parse_list(s, n, parse_byday, rule, err);
	case PART_BYMONTHDAY:
		return parse_list(s, n, parse_bymonthday, rule, err);
	case PART_COUNT:
		return parse_count(s, n, rule, err);
	case PART_UNTIL:
		return parse_until(s, n, rule, err);
	case PART_EXDATE:
		return parse_list(s, n, parse_exdate, rule, err);
	case PART_WKST:
		return parse_wkst(s, n, rule, err);
	default:
		return fail_part(err, p, s, n);
	}
}

/* A part about to be read: refused ones, duplicates. */
static bool part_begin(enum part p, const char *name, size_t n, unsigned *seen,
                       struct rrule_error *err)
{
	if (p == PART_NONE || p >= FIRST_REFUSED)
		return fail_part(err, p, name, n);
	if (*seen & (1u << p))
		return fail(err, part_names[p], "%s is given twice; each part may appear once",
		            part_names[p]);
	*seen |= 1u << p;
	return true;
}

static void rule_init(struct rrule *rule, struct rrule_error *err)
{
	memset(rule, 0, sizeof *rule);
	rule->interval = 1;
	memset(err, 0, sizeof *err);
}

/* What no single part can tell. */
static bool rule_check(const struct rrule *rule, unsigned seen, struct rrule_error *err)
{
	bool has_count = seen & (1u << PART_COUNT), has_until = seen & (1u << PART_UNTIL);
	if (!(seen & (1u << PART_FREQ)))
		return fail(err, "FREQ",
		            "FREQ is required: FREQ=DAILY, FREQ=WEEKLY or FREQ=MONTHLY");
	if (has_count && has_until)
		return fail(err, "COUNT/UNTIL",
		            "COUNT and UNTIL cannot both be given: end the rule with one of them");
	if (!has_count && !has_until)
		return fail(err, "COUNT/UNTIL",
		            "COUNT or UNTIL is required: end the rule with COUNT=n or UNTIL=date");
	if (rule->nbymonthday && rule->freq != RRULE_MONTHLY)
		return fail(err, "BYMONTHDAY", "BYMONTHDAY is allowed only with FREQ=MONTHLY");
	size_t numbered = 0;
	for (size_t k = 0; k < rule->nbyday; k++)
		numbered += rule->byday[k].ordinal != 0;
	if (numbered && rule->freq != RRULE_MONTHLY)
		return fail(err, "BYDAY",
		            "BYDAY with a number (2TU, -1FR) is allowed only with FREQ=MONTHLY; "
		            "use plain weekdays (MO,TU,FR) with FREQ=%s",
		            freq_names[rule->freq]);
	/* RFC 5545 would yield the union, python-dateutil (and so most calendar clients) the
	 * intersection: refused rather than ambiguous. */
	if (numbered && numbered != rule->nbyday)
		return fail(err, "BYDAY",
		            "BYDAY cannot mix plain weekdays (TU) and numbered ones (2TU) in one "
		            "rule");
	return true;
}

bool rrule_parse_text(const char *text, struct rrule *rule, struct rrule_error *err)
{
	unsigned seen = 0;
	rule_init(rule, err);
	if (strncasecmp(text, "RRULE:", 6) == 0)
		text += 6;
	if (!*text)
		return fail(err, "recurrence",
		            "the rule is empty; it needs FREQ and COUNT or UNTIL, e.g. "
		            "FREQ=WEEKLY;BYDAY=TU;COUNT=10");
	for (const char *p = text; *p;) {
		const char *end = strchr(p, ';');
		if (!end)
			end = p + strlen(p);
		if (end == p)
			return fail(err, "recurrence",
			            "the rule has an empty part (a leading ';' or ';;'); parts are "
			            "NAME=VALUE separated by ';'");
		const char *eq = memchr(p, '=', (size_t)(end - p));
		size_t name_len = (size_t)((eq ? eq : end) - p);
		enum part part = part_lookup(p, name_len);
		if (!part_begin(part, p, name_len, &seen, err))
			return false;
		if (!eq || eq + 1 == end)
			return fail(err, part_names[part], "%s needs a value (%s=...)",
			            part_names[part], part_names[part]);
		if (!parse_value(part, eq + 1, (size_t)(end - eq - 1), rule, err))
			return false;
		/* One trailing ';' is accepted (some clients end every part with one). */
		p = *end ? end + 1 : end;
	}
	return rule_check(rule, seen, err);
}

/* A JSON string value without a NUL inside, as s[0..n). */
static bool json_text(const json_t *v, const char **s, size_t *n)
{
	if (!json_is_string(v))
		return false;
	*s = json_string_value(v);
	*n = json_string_length(v);
	return strlen(*s) == *n;
}

static bool json_number_part(enum part p, const json_t *v, struct rrule *rule,
                             struct rrule_error *err)
{
	long max = p == PART_COUNT ? RRULE_MAX_COUNT : RRULE_MAX_INTERVAL;
	if (!json_is_integer(v) || json_integer_value(v) < 1 || json_integer_value(v) > max)
		return fail(err, part_names[p], "%s must be an integer from 1 to %ld",
		            part_names[p], max);
	if (p == PART_COUNT)
		rule->count = (long)json_integer_value(v);
	else
		rule->interval = (int)json_integer_value(v);
	return true;
}

static bool json_bymonthday_item(const json_t *v, struct rrule *rule, struct rrule_error *err)
{
	if (!json_is_integer(v))
		return fail(
			err, "BYMONTHDAY",
			"BYMONTHDAY items must be integers: 1 to 31, or -1 (the last day) to -31");
	return add_bymonthday((long)json_integer_value(v), rule, err);
}

/* byday, bymonthday, exdate: a list as an array, or as the text form's ','-separated string;
 * bymonthday as one integer too. */
static bool json_list_part(enum part p, const json_t *v, item_parser *item, struct rrule *rule,
                           struct rrule_error *err)
{
	const char *s;
	size_t n, i;
	const json_t *elem;
	if (json_text(v, &s, &n))
		return parse_list(s, n, item, rule, err);
	if (p == PART_BYMONTHDAY && json_is_integer(v))
		return json_bymonthday_item(v, rule, err);
	if (!json_is_array(v) || json_array_size(v) == 0)
		return fail(err, part_names[p], "%s must be a non-empty array%s", part_names[p],
		            p == PART_BYMONTHDAY ? " of integers" : " of strings");
	json_array_foreach(v, i, elem) {
		if (p == PART_BYMONTHDAY) {
			if (!json_bymonthday_item(elem, rule, err))
				return false;
		} else if (!json_text(elem, &s, &n)) {
			return fail(err, part_names[p], "%s items must be strings", part_names[p]);
		} else if (!item(s, n, rule, err)) {
			return false;
		}
	}
	return true;
}

static bool json_part(enum part p, const json_t *v, struct rrule *rule, struct rrule_error *err)
{
	const char *s;
	size_t n;
	switch (p) {
	case PART_INTERVAL:
	case PART_COUNT:
		return json_number_part(p, v, rule, err);
	case PART_BYDAY:
		return json_list_part(p, v, parse_byday, rule, err);
	case PART_BYMONTHDAY:
		return json_list_part(p, v, parse_bymonthday, rule, err);
	case PART_EXDATE:
		return json_list_part(p, v, parse_exdate, rule, err);
	default:
		if (!json_text(v, &s, &n))
			return fail(err, part_names[p], "%s must be a string", part_names[p]);
		return parse_value(p, s, n, rule, err);
	}
}

bool rrule_parse_json(const json_t *obj, struct rrule *rule, struct rrule_error *err)
{
	unsigned seen = 0;
	const char *key;
	const json_t *value;
	rule_init(rule, err);
	if (!json_is_object(obj))
		return fail(err, "recurrence", "the rule must be a JSON object");
	/* json_object_foreach wants a non-const object; nothing is changed. */
	json_object_foreach((json_t *)obj, key, value) {
		if (json_is_null(value))
			continue; /* a key given as null is absent */
		size_t n = strlen(key);
		enum part part = part_lookup(key, n);
		if (!part_begin(part, key, n, &seen, err) || !json_part(part, value, rule, err))
			return false;
	}
	return rule_check(rule, seen, err);
}

bool rrule_parse(const json_t *value, struct rrule *rule, struct rrule_error *err)
{
	const char *s;
	size_t n;
	if (json_is_object(value))
		return rrule_parse_json(value, rule, err);
	if (json_text(value, &s, &n))
		return rrule_parse_text(s, rule, err);
	rule_init(rule, err);
	return fail(err, "recurrence",
	            "recurrence must be an RRULE string (\"FREQ=WEEKLY;BYDAY=TU;COUNT=10\") or an "
	            "object ({\"freq\": \"WEEKLY\", \"byday\": [\"TU\"], \"count\": 10})");
}

/* ---- format ---- */

struct out {
	char *buf;
	size_t size, len;
	bool overflow;
};

__attribute__((format(printf, 2, 3))) static void put(struct out *o, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(o->buf + o->len, o->size - o->len, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= o->size - o->len)
		o->overflow = true;
	else
		o->len += (size_t)n;
}

int rrule_format(const struct rrule *rule, char *buf, size_t size)
{
	struct out o = {buf, size, 0, size == 0};
	if (o.overflow)
		return -1;
	buf[0] = '\0';
	put(&o, "FREQ=%s", freq_names[rule->freq]);
	if (rule->interval > 1)
		put(&o, ";INTERVAL=%d", rule->interval);
	for (size_t k = 0; k < rule->nbyday && !o.overflow; k++) {
		const struct rrule_byday *bd = &rule->byday[k];
		put(&o, k ? "," : ";BYDAY=");
		if (bd->ordinal)
			put(&o, "%d", bd->ordinal);
		put(&o, "%s", weekday_names[bd->weekday]);
	}
	for (size_t k = 0; k < rule->nbymonthday && !o.overflow; k++)
		put(&o, "%s%d", k ? "," : ";BYMONTHDAY=", rule->bymonthday[k]);
	if (rule->count)
		put(&o, ";COUNT=%ld", rule->count);
	if (rule->until_kind != RRULE_UNTIL_NONE) {
		const struct rrule_date *d = &rule->until_date;
		put(&o, ";UNTIL=%04d%02d%02d", d->year, d->month, d->day);
		if (rule->until_kind != RRULE_UNTIL_DATE)
			put(&o, "T%02d%02d%02d%s", rule->until_seconds / 3600,
			    rule->until_seconds / 60 % 60, rule->until_seconds % 60,
			    rule->until_kind == RRULE_UNTIL_UTC ? "Z" : "");
	}
	if (o.overflow) {
		buf[0] = '\0';
		return -1;
	}
	return (int)o.len;
}

/* ---- expansion ---- */

/* The stream of the rule's dates, period by period. */
struct gen {
	const struct rrule *rule;
	long start;       /* dtstart, in days */
	long period;      /* the next period's index */
	long first_month; /* dtstart's month as year * 12 + month - 1 (MONTHLY) */
	long cand[31];    /* the current period's dates, ascending, none before start */
	size_t ncand, next;
};

/* Day day of month m, counted as year * 12 + month - 1. */
static struct rrule_date month_date(long m, int day)
{
	long y = (m >= 0 ? m : m - 11) / 12;
	return (struct rrule_date){(int)y, (int)(m - y * 12) + 1, day};
}

/* The first day of period k (a bound: no date of the period is before it). */
static long period_first_day(const struct gen *g, long k)
{
	const struct rrule *r = g->rule;
	switch (r->freq) {
	case RRULE_DAILY:
		return g->start + k * r->interval;
	case RRULE_WEEKLY:
		return g->start - weekday_of_days(g->start) + 7 * k * r->interval;
	default:
		return rrule_days_from_date(month_date(g->first_month + k * r->interval, 1));
	}
}

/* Bit d (1..31) set for each day of the month (y, m) that BYDAY yields. */
static uint32_t month_byday_mask(const struct rrule *r, int y, int m, int ndays)
{
	int first_wd = rrule_weekday((struct rrule_date){y, m, 1});
	uint32_t mask = 0;
	for (size_t k = 0; k < r->nbyday; k++) {
		const struct rrule_byday *bd = &r->byday[k];
		int first = 1 + (bd->weekday - first_wd + 7) % 7;
		int last = first + (ndays - first) / 7 * 7;
		if (bd->ordinal == 0) {
			for (int d = first; d <= ndays; d += 7)
				mask |= 1u << d;
			continue;
		}
		int d = bd->ordinal > 0 ? first + 7 * (bd->ordinal - 1)
		                        : last + 7 * (bd->ordinal + 1);
		if (d >= 1 && d <= ndays)
			mask |= 1u << d;
	}
	return mask;
}

/* Fills g's candidates from period k. */
static void period_dates(struct gen *g, long k)
{
	const struct rrule *r = g->rule;
	long first = period_first_day(g, k);
	g->ncand = g->next = 0;
	if (r->freq == RRULE_DAILY) {
		bool ok = r->nbyday == 0;
		for (size_t i = 0; i < r->nbyday; i++)
			ok |= r->byday[i].weekday == weekday_of_days(first);
		if (ok)
			g->cand[g->ncand++] = first;
		return;
	}
	if (r->freq == RRULE_WEEKLY) {
		unsigned days = r->nbyday ? 0 : 1u << weekday_of_days(g->start);
		for (size_t i = 0; i < r->nbyday; i++)
			days |= 1u << r->byday[i].weekday;
		for (int w = 0; w < 7; w++)
			if (days & (1u << w) && first + w >= g->start)
				g->cand[g->ncand++] = first + w;
		return;
	}
	struct rrule_date month = month_date(g->first_month + k * r->interval, 1);
	int y = month.year, mon = month.month, ndays = days_in_month(y, mon);
	uint32_t mask;
	if (r->nbymonthday || r->nbyday) {
		uint32_t md = 0;
		for (size_t i = 0; i < r->nbymonthday; i++) {
			int d = r->bymonthday[i] > 0 ? r->bymonthday[i]
			                             : ndays + 1 + r->bymonthday[i];
			if (d >= 1 && d <= ndays)
				md |= 1u << d;
		}
		uint32_t bd = month_byday_mask(r, y, mon, ndays);
		mask = r->nbymonthday && r->nbyday ? md & bd : md | bd;
	} else {
		int d = rrule_date_from_days(g->start).day;
		mask = d <= ndays ? 1u << d : 0;
	}
	for (int d = 1; d <= ndays; d++)
		if (mask & (1u << d) && first + d - 1 >= g->start)
			g->cand[g->ncand++] = first + d - 1;
}

static long gcd(long a, long b)
{
	while (b) {
		long t = a % b;
		a = b;
		b = t;
	}
	return a;
}

static int cmp_long(const void *a, const void *b)
{
	long x = *(const long *)a, y = *(const long *)b;
	return (x > y) - (x < y);
}

size_t rrule_expand(const struct rrule *rule, struct rrule_date dtstart, int start_seconds,
                    struct rrule_date limit, struct rrule_date *out, size_t max,
                    enum rrule_stop *stop)
{
	assert(rule->interval >= 1 && rule->interval <= RRULE_MAX_INTERVAL);
	assert(rule->nbyday <= RRULE_MAX_BYDAY && rule->nbymonthday <= RRULE_MAX_BYMONTHDAY);
	assert(rule->nexdates <= RRULE_MAX_EXDATES);
	struct gen g = {.rule = rule, .start = rrule_days_from_date(dtstart)};
	g.first_month = (long)dtstart.year * 12 + dtstart.month - 1;

	long last = rrule_days_from_date(limit);
	/* The last date the rule can yield: UNTIL's, and none after 9999-12-31 (python-dateutil's
	 * last year too). */
	long end = rrule_days_from_date((struct rrule_date){9999, 12, 31});
	long until = rrule_days_from_date(rule->until_date);
	switch (rule->until_kind) {
	case RRULE_UNTIL_NONE:
		break;
	case RRULE_UNTIL_DATE:
		end = until < end ? until : end;
		break;
	case RRULE_UNTIL_LOCAL:
		until -= start_seconds > rule->until_seconds;
		end = until < end ? until : end;
		break;
	case RRULE_UNTIL_UTC:
		until += 1; /* the caller drops what is after the instant */
		end = until < end ? until : end;
		break;
	}

	long excluded[RRULE_MAX_EXDATES];
	for (size_t i = 0; i < rule->nexdates; i++)
		excluded[i] = rrule_days_from_date(rule->exdates[i]);
	qsort(excluded, rule->nexdates, sizeof excluded[0], cmp_long);
	size_t next_excluded = 0;

	/* A rule whose periods yield nothing for a whole cycle of the calendar never yields
	 * anything again: a day's weekday repeats every 7 days and a month's calendar every 4800
	 * months (400 years are 146097 days, whole weeks), so the periods repeat every 7 or 4800
	 * divided by their gcd with INTERVAL; a WEEKLY period is empty only when it is the first
	 * one (whose dates before dtstart are dropped: hence one more).  So past limit the search
	 * for the next date (an excluded one does not count) ends too. */
	long days_or_months = rule->freq == RRULE_DAILY ? 7 : 4800;
	size_t cycle = rule->freq == RRULE_WEEKLY
	                       ? 1
	                       : (size_t)(days_or_months / gcd(days_or_months, rule->interval));
	size_t empty_periods = 0;
	long produced = 0;
	size_t written = 0;
	*stop = RRULE_STOP_END;
	for (;;) {
		if (rule->count && produced == rule->count)
			break;
		while (g.next == g.ncand && empty_periods <= cycle &&
		       period_first_day(&g, g.period) <= end) {
			period_dates(&g, g.period++);
			empty_periods = g.ncand ? 0 : empty_periods + 1;
		}
		if (g.next == g.ncand)
			break;
		long day = g.cand[g.next++];
		if (day > end)
			break;
		produced++;
		while (next_excluded < rule->nexdates && excluded[next_excluded] < day)
			next_excluded++;
		if (next_excluded < rule->nexdates && excluded[next_excluded] == day)
			continue;
		if (day > last) {
			*stop = RRULE_STOP_LIMIT;
			break;
		}
		if (written == max) {
			*stop = RRULE_STOP_MAX;
			break;
		}
		out[written++] = rrule_date_from_days(day);
	}
	return written;
}
