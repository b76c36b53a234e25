/* ical: writing iCalendar text (RFC 5545): content lines ended by CRLF and folded at 75 octets
 * (never inside a UTF-8 sequence), TEXT values escaped, and the VTIMEZONE of an IANA zone made
 * from the POSIX TZ string at the end of its TZif file (docs/api.md#recurring-reservations).
 *
 * The text is written into a struct jsonx_text (the suite's growable text buffer): its failed
 * flag is set when memory runs out or a TEXT value is not UTF-8, and the text is then not to be
 * used.  A line is written piece by piece (ical_raw, ical_escaped) and ended by ical_end_line;
 * struct ical_text keeps how many octets the current physical line holds, for the folding.
 * Thread-safe (no shared state; one struct ical_text per writer). */
#ifndef ICAL_H
#define ICAL_H

#include <stdbool.h>
#include <stddef.h>

#include "jsonx.h"

/* RFC 5545 3.1: lines SHOULD NOT be longer than 75 octets, excluding the line break. */
#define ICAL_LINE_MAX 75

/* Starts zeroed; text.data is owned (ical_text_free releases it). */
struct ical_text {
	struct jsonx_text text;
	size_t col; /* octets on the current physical line */
};

/* Appends s[0..n) to the current content line as it is (names, parameters, values already in
 * iCalendar form), folding (CRLF + one space) before an octet that would make the physical line
 * longer than ICAL_LINE_MAX; a UTF-8 sequence is never split (a fold goes before its lead byte). */
void ical_raw(struct ical_text *t, const char *s, size_t n);
#define ical_lit(t, s) ical_raw((t), (s), sizeof(s) - 1)
/* Appends s (NUL-terminated) as a TEXT value (RFC 5545 3.3.11): backslash, ';' and ',' escaped
 * with a backslash, a line break (LF, CR LF or CR) as "\n", other control characters (but TAB)
 * left out.  s not valid UTF-8 sets t->text.failed. */
void ical_escaped(struct ical_text *t, const char *s);
/* Ends the current content line (CRLF). */
void ical_end_line(struct ical_text *t);
/* A whole line "name:value" (both in iCalendar form already; name may carry parameters:
 * "DTSTART;TZID=Europe/Berlin"). */
void ical_prop(struct ical_text *t, const char *name, const char *value);
/* A whole line "name:" + value as TEXT (ical_escaped). */
void ical_prop_text(struct ical_text *t, const char *name, const char *value);
/* A whole CAL-ADDRESS line (ORGANIZER, ATTENDEE): name, params as written (";RSVP=TRUE" or
 * NULL), ";CN=" + cn quoted (NULL or "": none) with RFC 6868's encoding (a DQUOTE as ^', a line
 * break as ^n, ^ as ^^; another control character, which a parameter value cannot hold, as a
 * space), ":mailto:" + addr.  addr must be a
 * valid mailbox (mail_address_valid: nothing in it needs escaping). */
void ical_prop_cal_address(struct ical_text *t, const char *name, const char *params,
                           const char *cn, const char *addr);
void ical_text_free(struct ical_text *t);

/* Writes the VTIMEZONE component of the IANA zone (TZID = zone): one STANDARD sub-component
 * and, for a zone with daylight saving time, one DAYLIGHT, from the rule the zone follows now
 * (the POSIX TZ string of its TZif file's footer, e.g. "CET-1CEST,M3.5.0,M10.5.0/3"), with
 * DTSTART in 1970 and a yearly RRULE (BYMONTH + BYDAY=nWD; a transition time outside 0..24 h,
 * as Asia/Jerusalem's M3.4.4/26, moves the day: BYDAY=WD with BYMONTHDAY, or BYYEARDAY when the
 * days cross a month's end).  The zone's older rules are not described.  Returns false (and
 * writes nothing) when zone is not a valid zone name (tz_valid), its file cannot be read or is
 * not TZif version 2 or later, or its TZ string uses a form not written here (the Jn and n day
 * forms, which no zone of tzdata 2025 uses).  Reads the file on every call (a few KB). */
bool ical_vtimezone(struct ical_text *t, const char *zone);

/* Writes seconds since the epoch as an iCalendar UTC date-time "YYYYMMDDTHHMMSSZ" into out. */
#define ICAL_DATETIME_LEN 32
void ical_utc(long long secs, char out[ICAL_DATETIME_LEN]);
/* Writes a local "YYYY-MM-DDTHH:MM:SS" (the form PostgreSQL gives a timestamp) as the iCalendar
 * "YYYYMMDDTHHMMSS" into out.  Returns false when local is not of that form. */
bool ical_local(const char *local, char out[ICAL_DATETIME_LEN]);
/* A whole line "name:YYYYMMDDTHHMMSSZ" for secs since the epoch (DTSTAMP, or an instant that
 * needs no zone). */
void ical_prop_utc(struct ical_text *t, const char *name, long long secs);
/* A whole line "name;TZID=zone:YYYYMMDDTHHMMSS" for local "YYYY-MM-DDTHH:MM:SS" (the VTIMEZONE of
 * zone is the caller's to write).  Returns false (and writes nothing) when local is not of that
 * form. */
bool ical_prop_local(struct ical_text *t, const char *name, const char *zone, const char *local);

#endif
