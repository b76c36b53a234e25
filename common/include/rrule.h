/* rrule: the subset of RFC 5545 recurrence rules that recurring reservations accept
 * (docs/api.md#recurring-reservations), parsed from the RRULE text or from its JSON object form,
 * written back as canonical RRULE text, and expanded into local calendar dates.
 *
 * Pure: no time zones, no clock, no allocation; thread-safe.  The expansion works on local
 * dates only; the time of day is the caller's (a series keeps its local start time, the room's
 * zone turns each date into an instant, docs/api.md#recurring-reservations).
 *
 * Accepted (everything else in the RRULE grammar is refused, naming the part):
 *   FREQ=DAILY|WEEKLY|MONTHLY          required, first or anywhere
 *   INTERVAL=n                         1..RRULE_MAX_INTERVAL, default 1
 *   BYDAY=MO,TU,…                      DAILY (a filter), WEEKLY (the days of each week);
 *                 2TU,-1FR,TU           MONTHLY (nth weekday of the month; plain TU = every Tuesday)
 *   BYMONTHDAY=1,15,-1                 MONTHLY only: 1..31 or -31..-1; a month without the day
 *                                      is skipped (RFC 5545), -1 is the last day
 *   COUNT=n | UNTIL=date[-time]        exactly one of them: UNTIL=YYYYMMDD (a local date,
 *                                      inclusive), YYYYMMDDTHHMMSS (local date-time) or
 *                                      YYYYMMDDTHHMMSSZ (UTC; applied by the caller, see
 *                                      rrule_expand)
 *   EXDATE=YYYYMMDD,…                  local dates to skip (not an RRULE part in RFC 5545, where
 *                                      it is a property of its own; accepted here for
 *                                      convenience); YYYY-MM-DD accepted too
 *   WKST=MO                            accepted only as MO (the weeks of INTERVAL start Monday)
 * Names are upper-case in the text form (as RFC 5545 writes them; lower-case is accepted too);
 * parts are separated by ';' (one trailing ';' is accepted), list items by ','; a part may appear
 * once, an item once in its list.  BYDAY numbers and BYMONTHDAY may carry a '+' (RFC 5545);
 * COUNT and INTERVAL are digits only.  BYDAY with FREQ=MONTHLY is either all plain weekdays
 * or all numbered ones (RFC 5545 would take a mix as a union, python-dateutil as an
 * intersection).  UNTIL and EXDATE take the YYYY-MM-DD[THH:MM:SS[Z]] forms too.
 *
 * The JSON object form has the same parts as lower-case keys: {"freq": "WEEKLY", "interval": 2,
 * "byday": ["TU", "TH"] or "TU,TH", "bymonthday": [1, -1], "count": 10 | "until":
 * "2027-03-31" / "2027-03-31T10:00:00" / "2027-03-31T09:00:00Z", "exdate": ["2026-12-22"]};
 * count, interval and bymonthday are JSON integers; a key whose value is null is absent. */
#ifndef RRULE_H
#define RRULE_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#define RRULE_MAX_INTERVAL 1000
#define RRULE_MAX_COUNT 100000
/* More BYDAY items than this are refused. */
#define RRULE_MAX_BYDAY 35
#define RRULE_MAX_BYMONTHDAY 62
#define RRULE_MAX_EXDATES 400
/* Enough for the canonical text of any rule rrule_parse_* accepts, EXDATE included. */
#define RRULE_TEXT_MAX 4096

enum rrule_freq { RRULE_DAILY, RRULE_WEEKLY, RRULE_MONTHLY };

/* A calendar date (proleptic Gregorian), month 1..12, day 1..31. */
struct rrule_date {
	int year, month, day;
};

struct rrule_byday {
	int weekday; /* 0 = MO … 6 = SU */
	int ordinal; /* 0: every such weekday; MONTHLY only: 1..5 or -5..-1 (the nth, the nth last) */
};

enum rrule_until { RRULE_UNTIL_NONE, RRULE_UNTIL_DATE, RRULE_UNTIL_LOCAL, RRULE_UNTIL_UTC };

struct rrule {
	enum rrule_freq freq;
	int interval; /* >= 1 */
	size_t nbyday;
	struct rrule_byday byday[RRULE_MAX_BYDAY];
	size_t nbymonthday;
	int bymonthday[RRULE_MAX_BYMONTHDAY]; /* 1..31 or -31..-1 */
	long count;                           /* 0: none (then until is given) */
	enum rrule_until until_kind;
	struct rrule_date until_date;
	int until_seconds; /* of the day, 0..86399 (RRULE_UNTIL_LOCAL, RRULE_UNTIL_UTC) */
	size_t nexdates;
	struct rrule_date exdates[RRULE_MAX_EXDATES];
};

/* Why a rule was refused: part names the RRULE part ("FREQ", "BYDAY", "BYSETPOS", "COUNT/UNTIL"
 * for a rule with both or neither, "recurrence" for the shape of the whole); reason is a
 * sentence for the error's details, naming the part ("BYSETPOS is not supported; supported
 * parts: …"). */
struct rrule_error {
	char part[32];
	char reason[256];
};

/* Parses the RRULE text form ("FREQ=WEEKLY;BYDAY=TU;COUNT=10"; an optional leading "RRULE:" is
 * accepted).  Returns false with *err filled for anything outside the subset above. */
bool rrule_parse_text(const char *text, struct rrule *rule, struct rrule_error *err);
/* Parses the JSON object form (borrowed).  Unknown keys are refused, naming them. */
bool rrule_parse_json(const json_t *obj, struct rrule *rule, struct rrule_error *err);
/* A "recurrence" value as a request gives it: a string (rrule_parse_text) or an object
 * (rrule_parse_json); anything else is refused (part "recurrence"). */
bool rrule_parse(const json_t *value, struct rrule *rule, struct rrule_error *err);

/* Writes the canonical RRULE text of rule (parts in the order FREQ, INTERVAL (when > 1), BYDAY,
 * BYMONTHDAY, COUNT, UNTIL; without EXDATE, which iCalendar writes as a property of its own) into
 * buf.  UNTIL is written as given (YYYYMMDD, YYYYMMDDTHHMMSS or YYYYMMDDTHHMMSSZ).  Returns the
 * length, or -1 when size is too small (RRULE_TEXT_MAX always suffices). */
int rrule_format(const struct rrule *rule, char *buf, size_t size);

/* Why rrule_expand stopped. */
enum rrule_stop {
	RRULE_STOP_END,   /* the rule has no further occurrence (COUNT reached, past UNTIL) */
	RRULE_STOP_MAX,   /* max dates were written and the rule has at least one more */
	RRULE_STOP_LIMIT, /* the next occurrence would fall after limit */
};

/* Expands rule from dtstart (the local date of the series' first requested start; start_seconds
 * its local time of day, 0..86399, for a local UNTIL): the first occurrence is the first date on
 * or after dtstart that the rule produces (so dtstart itself only when it matches the rule, as
 * python-dateutil's rrule does), the weeks and months of INTERVAL counted from dtstart's (weeks
 * starting on Monday).  COUNT counts the rule's dates before EXDATE removes any (RFC 5545); the
 * excluded dates are not written.  UNTIL=date keeps dates up to it inclusive; a local UNTIL keeps
 * the dates whose local start (date + start_seconds) is at or before it; a UTC UNTIL cannot be
 * decided without the zone, so the expansion keeps every date up to the day after its date (no
 * zone is more than 14 hours ahead of UTC) and the caller drops the occurrences whose instant is
 * after it.  No date after 9999-12-31 exists (python-dateutil's last year).  Writes at most max
 * dates into out, ascending, never a date after limit.  Returns the number written; *stop says
 * why it stopped (an excluded date is no occurrence: a rule whose dates after limit are all
 * excluded ends).  Time is linear in the dates the rule steps over up to the stop; a rule that
 * never produces a date again (like BYMONTHDAY=31 with INTERVAL=12 from a month with 30 days)
 * is recognised after one cycle of the calendar (7 days, 4800 months) and ends. */
size_t rrule_expand(const struct rrule *rule, struct rrule_date dtstart, int start_seconds,
                    struct rrule_date limit, struct rrule_date *out, size_t max,
                    enum rrule_stop *stop);

/* Day arithmetic shared with the callers: days since 1970-01-01 (negative before), its inverse,
 * and the weekday (0 = MO … 6 = SU). */
long rrule_days_from_date(struct rrule_date d);
struct rrule_date rrule_date_from_days(long days);
int rrule_weekday(struct rrule_date d);

#endif
