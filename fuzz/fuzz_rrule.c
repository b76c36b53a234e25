/* Fuzzes the recurrence rules (common/src/rrule.c).  The input is a rule: its JSON form
 * through rrule_parse when it starts with '{' or '"', else its text form through
 * rrule_parse_text.  A hash of the input picks dtstart (1900..2079), the local start time,
 * limit (up to ~11 years after dtstart, or before it) and max.
 *   - a refused rule: a part and a reason, short, printable, the reason valid in a JSON string;
 *   - an accepted rule: its fields in range, its canonical text (rrule_format) parses back to
 *     the same rule and formats the same, its JSON form (built here) parses to the same rule;
 *   - its expansion: ascending, within [dtstart, limit], no excluded date, no date after UNTIL,
 *     at most COUNT and max dates, each matching BYDAY/BYMONTHDAY, the stop reason consistent,
 *     and a smaller max or limit gives a prefix of the same dates. */
#include "fuzz.h"

#include "rrule.h"

#define OUT_MAX 400

static void check_refusal(const struct rrule_error *err)
{
	size_t plen = strnlen(err->part, sizeof err->part);
	size_t rlen = strnlen(err->reason, sizeof err->reason);
	FUZZ_CHECK(plen > 0 && plen < sizeof err->part && rlen > 0 && rlen < sizeof err->reason);
	json_t *s = json_string(err->reason); /* NULL when not valid UTF-8 */
	FUZZ_CHECK(s != NULL);
	json_decref(s);
	s = json_string(err->part);
	FUZZ_CHECK(s != NULL);
	json_decref(s);
}

static bool date_valid(struct rrule_date d)
{
	struct rrule_date back = rrule_date_from_days(rrule_days_from_date(d));
	return d.year >= 1 && d.year <= 9999 && d.month >= 1 && d.month <= 12 &&
	       memcmp(&back, &d, sizeof d) == 0;
}

static void check_fields(const struct rrule *r)
{
	FUZZ_CHECK(r->freq == RRULE_DAILY || r->freq == RRULE_WEEKLY || r->freq == RRULE_MONTHLY);
	FUZZ_CHECK(r->interval >= 1 && r->interval <= RRULE_MAX_INTERVAL);
	FUZZ_CHECK(r->nbyday <= RRULE_MAX_BYDAY && r->nbymonthday <= RRULE_MAX_BYMONTHDAY);
	FUZZ_CHECK(r->nexdates <= RRULE_MAX_EXDATES);
	FUZZ_CHECK((r->count != 0) != (r->until_kind != RRULE_UNTIL_NONE));
	FUZZ_CHECK(r->count >= 0 && r->count <= RRULE_MAX_COUNT);
	for (size_t i = 0; i < r->nbyday; i++) {
		FUZZ_CHECK(r->byday[i].weekday >= 0 && r->byday[i].weekday <= 6);
		FUZZ_CHECK(r->byday[i].ordinal >= -5 && r->byday[i].ordinal <= 5);
		FUZZ_CHECK(r->byday[i].ordinal == 0 || r->freq == RRULE_MONTHLY);
	}
	for (size_t i = 0; i < r->nbymonthday; i++)
		FUZZ_CHECK(r->bymonthday[i] != 0 && r->bymonthday[i] >= -31 &&
		           r->bymonthday[i] <= 31);
	FUZZ_CHECK(r->nbymonthday == 0 || r->freq == RRULE_MONTHLY);
	if (r->until_kind != RRULE_UNTIL_NONE)
		FUZZ_CHECK(date_valid(r->until_date) && r->until_seconds >= 0 &&
		           r->until_seconds < 86400);
	for (size_t i = 0; i < r->nexdates; i++)
		FUZZ_CHECK(date_valid(r->exdates[i]));
}

static void check_same(const struct rrule *a, const struct rrule *b)
{
	FUZZ_CHECK(memcmp(a, b, sizeof *a) == 0);
}

/* The canonical text parses back to the rule (without its EXDATE, which it does not carry)
 * and formats the same. */
static void check_format(const struct rrule *rule)
{
	char text[RRULE_TEXT_MAX], again_text[RRULE_TEXT_MAX];
	struct rrule again, bare = *rule;
	struct rrule_error err;
	int len = rrule_format(rule, text, sizeof text);
	FUZZ_CHECK(len > 0 && (size_t)len == strlen(text));
	FUZZ_CHECK(rrule_format(rule, again_text, (size_t)len) == -1 && again_text[0] == '\0');
	bool parsed = rrule_parse_text(text, &again, &err);
	if (!parsed)
		fprintf(stderr, "%s refused: %s\n", text, err.reason);
	FUZZ_CHECK(parsed);
	bare.nexdates = 0;
	memset(bare.exdates, 0, sizeof bare.exdates);
	check_same(&bare, &again);
	FUZZ_CHECK(rrule_format(&again, again_text, sizeof again_text) == len);
	FUZZ_CHECK(strcmp(text, again_text) == 0);
}

static json_t *date_json(struct rrule_date d, int seconds, bool time, bool utc)
{
	char text[40];
	if (time)
		snprintf(text, sizeof text, "%04d-%02d-%02dT%02d:%02d:%02d%s", d.year, d.month,
		         d.day, seconds / 3600, seconds / 60 % 60, seconds % 60, utc ? "Z" : "");
	else
		snprintf(text, sizeof text, "%04d-%02d-%02d", d.year, d.month, d.day);
	return json_string(text);
}

/* The rule's JSON form parses to the same rule. */
static void check_json_form(const struct rrule *rule)
{
	static const char *const freqs[] = {"DAILY", "WEEKLY", "MONTHLY"};
	static const char *const days[] = {"MO", "TU", "WE", "TH", "FR", "SA", "SU"};
	json_t *obj = json_object();
	json_object_set_new(obj, "freq", json_string(freqs[rule->freq]));
	if (rule->interval > 1)
		json_object_set_new(obj, "interval", json_integer(rule->interval));
	if (rule->nbyday) {
		json_t *a = json_array();
		for (size_t i = 0; i < rule->nbyday; i++) {
			char item[8];
			if (rule->byday[i].ordinal)
				snprintf(item, sizeof item, "%d%s", rule->byday[i].ordinal,
				         days[rule->byday[i].weekday]);
			else
				snprintf(item, sizeof item, "%s", days[rule->byday[i].weekday]);
			json_array_append_new(a, json_string(item));
		}
		json_object_set_new(obj, "byday", a);
	}
	if (rule->nbymonthday) {
		json_t *a = json_array();
		for (size_t i = 0; i < rule->nbymonthday; i++)
			json_array_append_new(a, json_integer(rule->bymonthday[i]));
		json_object_set_new(obj, "bymonthday", a);
	}
	if (rule->count)
		json_object_set_new(obj, "count", json_integer(rule->count));
	if (rule->until_kind != RRULE_UNTIL_NONE)
		json_object_set_new(obj, "until",
		                    date_json(rule->until_date, rule->until_seconds,
		                              rule->until_kind != RRULE_UNTIL_DATE,
		                              rule->until_kind == RRULE_UNTIL_UTC));
	if (rule->nexdates) {
		json_t *a = json_array();
		for (size_t i = 0; i < rule->nexdates; i++)
			json_array_append_new(a, date_json(rule->exdates[i], 0, false, false));
		json_object_set_new(obj, "exdate", a);
	}
	struct rrule again;
	struct rrule_error err;
	FUZZ_CHECK(rrule_parse(obj, &again, &err));
	check_same(rule, &again);
	json_decref(obj);
}

static bool date_excluded(const struct rrule *r, struct rrule_date d)
{
	for (size_t i = 0; i < r->nexdates; i++)
		if (memcmp(&r->exdates[i], &d, sizeof d) == 0)
			return true;
	return false;
}

static int days_in_month(struct rrule_date d)
{
	struct rrule_date next = {d.month == 12 ? d.year + 1 : d.year, d.month % 12 + 1, 1};
	return (int)(rrule_days_from_date(next) -
	             rrule_days_from_date((struct rrule_date){d.year, d.month, 1}));
}

/* d is a date the rule's BYDAY/BYMONTHDAY (or dtstart's defaults) allow. */
static bool date_matches(const struct rrule *r, struct rrule_date d, struct rrule_date start)
{
	int wd = rrule_weekday(d), ndays = days_in_month(d);
	bool byday = r->nbyday == 0, bymonthday = r->nbymonthday == 0;
	for (size_t i = 0; i < r->nbyday; i++) {
		int ord = r->byday[i].ordinal;
		if (r->byday[i].weekday != wd)
			continue;
		byday |= ord == 0 || (ord > 0 && (d.day - 1) / 7 + 1 == ord) ||
		         (ord < 0 && (ndays - d.day) / 7 + 1 == -ord);
	}
	for (size_t i = 0; i < r->nbymonthday; i++)
		bymonthday |= r->bymonthday[i] == d.day || ndays + 1 + r->bymonthday[i] == d.day;
	if (r->freq == RRULE_WEEKLY && r->nbyday == 0)
		return wd == rrule_weekday(start);
	if (r->freq == RRULE_MONTHLY && r->nbyday == 0 && r->nbymonthday == 0)
		return d.day == start.day;
	return byday && bymonthday;
}

static void check_expand(const struct rrule *r, uint64_t hash)
{
	static struct rrule_date out[OUT_MAX], again[OUT_MAX];
	long first = rrule_days_from_date((struct rrule_date){1900, 1, 1});
	long start_days = first + (long)(hash % 65536);
	long span = (long)((hash >> 16) % 4200) - 200;
	struct rrule_date start = rrule_date_from_days(start_days);
	struct rrule_date limit = rrule_date_from_days(start_days + span);
	int seconds = (int)((hash >> 32) % 86400);
	size_t max = (size_t)((hash >> 52) % (OUT_MAX + 1));
	enum rrule_stop stop;
	size_t n = rrule_expand(r, start, seconds, limit, out, max, &stop);
	FUZZ_CHECK(n <= max);
	FUZZ_CHECK(stop != RRULE_STOP_MAX || n == max);
	if (r->count)
		FUZZ_CHECK((long)n <= r->count);
	long until = rrule_days_from_date(r->until_date);
	long prev = start_days - 1;
	for (size_t i = 0; i < n; i++) {
		long d = rrule_days_from_date(out[i]);
		FUZZ_CHECK(d > prev && d <= start_days + span);
		FUZZ_CHECK(!date_excluded(r, out[i]));
		FUZZ_CHECK(date_matches(r, out[i], start));
		if (r->until_kind == RRULE_UNTIL_DATE)
			FUZZ_CHECK(d <= until);
		else if (r->until_kind == RRULE_UNTIL_LOCAL)
			FUZZ_CHECK(d < until || (d == until && seconds <= r->until_seconds));
		else if (r->until_kind == RRULE_UNTIL_UTC)
			FUZZ_CHECK(d <= until + 1);
		if (r->freq == RRULE_DAILY)
			FUZZ_CHECK((d - start_days) % r->interval == 0);
		long weeks = (d - rrule_weekday(out[i]) - (start_days - rrule_weekday(start))) / 7;
		if (r->freq == RRULE_WEEKLY)
			FUZZ_CHECK(weeks % r->interval == 0);
		long months = (out[i].year - start.year) * 12L + out[i].month - start.month;
		if (r->freq == RRULE_MONTHLY)
			FUZZ_CHECK(months % r->interval == 0);
		prev = d;
	}
	/* With room for one less, the same dates but the last, and MAX. */
	if (n > 0) {
		enum rrule_stop stop2;
		size_t n2 = rrule_expand(r, start, seconds, limit, again, n - 1, &stop2);
		FUZZ_CHECK(n2 == n - 1 && stop2 == RRULE_STOP_MAX);
		FUZZ_CHECK(memcmp(again, out, n2 * sizeof out[0]) == 0);
		/* limit on the last date: the same dates. */
		n2 = rrule_expand(r, start, seconds, out[n - 1], again, max, &stop2);
		FUZZ_CHECK(n2 == n && memcmp(again, out, n * sizeof out[0]) == 0);
		FUZZ_CHECK(stop2 == (stop == RRULE_STOP_END ? RRULE_STOP_END : RRULE_STOP_LIMIT));
	}
	/* A later limit and more room: the dates so far come first. */
	if (stop != RRULE_STOP_END) {
		enum rrule_stop stop2;
		size_t n2 = rrule_expand(r, start, seconds,
		                         rrule_date_from_days(start_days + span + 400), again,
		                         OUT_MAX, &stop2);
		FUZZ_CHECK(n2 >= n && memcmp(again, out, n * sizeof out[0]) == 0);
		if (stop == RRULE_STOP_MAX)
			FUZZ_CHECK(n2 > n || stop2 == RRULE_STOP_MAX);
	}
}

static uint64_t fnv1a(const uint8_t *data, size_t size)
{
	uint64_t h = 0xcbf29ce484222325ULL;
	for (size_t i = 0; i < size; i++)
		h = (h ^ data[i]) * 0x100000001b3ULL;
	return h;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct rrule rule;
	struct rrule_error err;
	bool ok;
	if (size > 8192)
		return 0;
	char *s = fuzz_cstr(data, size);
	if (s[0] == '{' || s[0] == '"') {
		json_error_t jerr;
		json_t *value = json_loadb((const char *)data, size,
		                           JSON_DECODE_ANY | JSON_ALLOW_NUL, &jerr);
		if (!value) {
			free(s);
			return 0;
		}
		ok = rrule_parse(value, &rule, &err);
		json_decref(value);
	} else {
		ok = rrule_parse_text(s, &rule, &err);
	}
	free(s);
	if (!ok) {
		check_refusal(&err);
		return 0;
	}
	check_fields(&rule);
	check_format(&rule);
	check_json_form(&rule);
	check_expand(&rule, fnv1a(data, size));
	return 0;
}
