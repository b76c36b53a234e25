/* series_ics: a reservation series as iCalendar text (GET /reservations/series/{id}.ics,
 * docs/api.md#recurring-reservations): one VCALENDAR with the VTIMEZONE of the series' zone, a
 * master VEVENT (RRULE, EXDATE, RDATE) and one VEVENT with RECURRENCE-ID for each confirmed
 * occurrence that differs from the rule, so that a calendar client importing it yields exactly
 * the series' confirmed occurrences.
 *
 * Pure: no SQL, no HTTP, no clock, and no time-zone arithmetic beyond what the caller gives
 * (the database turns local times into instants); reads the zone's TZif file (ical_vtimezone).
 * Thread-safe. */
#ifndef SERIES_ICS_H
#define SERIES_ICS_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "timefmt.h"

struct ical_text;
struct rrule;

/* One occurrence of the series, confirmed or cancelled (strings borrowed). */
struct series_ics_occurrence {
	const char *occurrence_start; /* the original local start "YYYY-MM-DDTHH:MM:SS" */
	const char *local_start;      /* its start now, local in the series' zone */
	long long start_utc, end_utc; /* seconds since the epoch */
	bool confirmed;               /* false: cancelled */
	bool exception;               /* changed on its own (PUT on the occurrence) */
	const char *purpose;          /* NULL: the series' */
	const char *room_name;        /* NULL: the series' */
	int version;                  /* its own version (0: unknown): an override's SEQUENCE is
	                                 never lower than version - 1, the SEQUENCE its own mails
	                                 had */
	const char *const *attendees; /* its ATTENDEE lines when they differ from the series' */
	size_t nattendees;
	bool own_attendees; /* attendees (even none) instead of the series' */
};

/* A series (strings and arrays borrowed). */
struct series_ics {
	long long id;
	const char *zone;         /* the series' IANA zone (its VTIMEZONE and every TZID) */
	const char *first_start;  /* local "YYYY-MM-DDTHH:MM:SS": DTSTART, the rule's first date */
	long duration_s;          /* > 0: DURATION of every occurrence of the rule */
	const struct rrule *rule; /* the parsed rule (COUNT/UNTIL and its EXDATEs included) */
	bool has_until;
	long long until_utc; /* when has_until: no occurrence at or after it (a cut series) */
	const char *purpose; /* "" or NULL: SUMMARY "Reservation" */
	const char *room_name;
	const char *organizer_email;  /* NULL: no ORGANIZER */
	const char *organizer_name;   /* its CN; NULL: none */
	const char *const *attendees; /* ATTENDEE lines (valid mailboxes) */
	size_t nattendees;
	/* METHOD; NULL: PUBLISH.  With a method every VEVENT carries ORGANIZER and ATTENDEE
	 * (RFC 5546 3.2.2); under CANCEL the master alone is written, STATUS:CANCELLED, with the
	 * highest SEQUENCE of the series and its occurrences (no CONFIRMED component). */
	const char *method;
	long long created_utc, updated_utc, stamp_utc; /* CREATED, LAST-MODIFIED, DTSTAMP */
	int version;    /* SEQUENCE version - 1 (an override: at least its own) */
	bool cancelled; /* STATUS:CANCELLED */
	const struct series_ics_occurrence *occurrences;
	size_t noccurrences;
	/* The address an iTIP object is written for (NULL: everyone, e.g. the export).  An
	 * occurrence whose own attendees leave the recipient out (and that is not the recipient's
	 * own booking: the organizer sees every one) is not theirs: its instance is an EXDATE of
	 * the master and has no override, so that a REQUEST never gives back an instance the
	 * recipient was removed from (RFC 5546: a REQUEST replaces the whole set). */
	const char *recipient;
	/* Only the occurrences, no master: one VEVENT with RECURRENCE-ID each (STATUS CANCELLED
	 * under CANCEL), for a recipient invited to some occurrences only, whose calendar holds
	 * those instances and not the series (docs/api.md#invitations); a cancelled one names
	 * the recipient alone as ATTENDEE. */
	bool instances_only;
};

/* The parameters of an invited attendee's line (RFC 5546: a reply is asked for). */
#define SERIES_ICS_ATTENDEE_PARAMS ";ROLE=REQ-PARTICIPANT;PARTSTAT=NEEDS-ACTION;RSVP=TRUE"

/* The instances the rule may produce at most: a rule with more (it cannot be stored: a series
 * has at most MAX_OCCURRENCES) is refused. */
#define SERIES_ICS_MAX_DATES 5000
/* The occurrences series_ics_read takes at most (a series has at most MAX_OCCURRENCES, 1,000). */
#define SERIES_ICS_MAX_OCCURRENCES 2000

/* The RECURRENCE-ID that names the instance of s an occurrence with original start
 * occurrence_start (local) stands for, as series_ics_build writes it in an override: the
 * occurrence's date at the series' time of day (first_start's) when the rule yields that date,
 * else its own original start (an RDATE of the master).  The one rule for the series' mails and
 * the mails about one occurrence (mailer.c), so that a later message about an instance names
 * the instance the client has.  s needs zone, first_start, rule and the cut (no occurrences).
 * out: local "YYYY-MM-DDTHH:MM:SS".  false and why when the series or the time is unusable. */
bool series_ics_recurrence_id(const struct series_ics *s, const char *occurrence_start,
                              char out[TIMEFMT_RFC3339_LEN], const char **why);

/* Appends the VCALENDAR prelude every iTIP object and export of this service starts with:
 * BEGIN, VERSION, PRODID, CALSCALE and METHOD (method NULL: PUBLISH). */
void series_ics_calendar_begin(struct ical_text *out, const char *method);

/* The ORGANIZER (CN organizer_name) and ATTENDEE lines of a VEVENT, for the addresses that
 * are mail_address_valid (mail.h: the addresses mail is sent to) only: the one filter of the
 * series' and the single reservations' iTIP objects. */
void series_ics_people(const char *organizer_email, const char *organizer_name,
                       const char *const *attendees, size_t n, struct ical_text *out);

/* Appends the VCALENDAR of s to out (a zeroed or partly written struct ical_text; the caller
 * frees it).  Returns false when it cannot be written (the zone has no VTIMEZONE here, a local
 * time is malformed, the rule yields more than SERIES_ICS_MAX_DATES dates, memory ran out);
 * out then holds nothing usable.  why (may be NULL) gets a short reason for the log line. */
bool series_ics_build(const struct series_ics *s, struct ical_text *out, const char **why);

/* Fills s from data (the JSON of res_series_ics_data, migrations/009_mail.sql: the series, its
 * room's name and its occurrences; borrowed, as s's strings are) for series id: rule receives
 * the parsed rule, *occ a new array of the occurrences (the caller frees it, also on failure).
 * DTSTAMP is stamp_utc; METHOD, the organizer's name and the attendees are left for the caller.
 * false and why when data is not usable. */
bool series_ics_read(const json_t *data, long long id, long long stamp_utc, struct series_ics *s,
                     struct rrule *rule, struct series_ics_occurrence **occ, const char **why);

#endif
