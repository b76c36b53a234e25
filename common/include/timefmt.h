/* timefmt: the suite's clocks (wall, monotonic, sleep) and RFC 3339 formatting/parsing in
 * UTC. */
#ifndef TIMEFMT_H
#define TIMEFMT_H

#include <stdbool.h>
#include <stddef.h>

/* Room for "2026-11-21T10:00:00.000Z" with any int year. */
#define TIMEFMT_RFC3339_LEN 64

/* Milliseconds since the Unix epoch (CLOCK_REALTIME). */
long long timefmt_now_ms(void);
/* Monotonic clock in microseconds, for latencies. */
long long timefmt_mono_us(void);
/* Monotonic clock in milliseconds, for deadlines and back-off. */
long long timefmt_mono_ms(void);
/* Sleeps ms milliseconds (a signal may end it early).  Thread-safe. */
void timefmt_sleep_ms(long ms);
/* Sleeps ms milliseconds, in slices of TIMEFMT_SLEEP_SLICE_MS so that *stop becoming true ends
 * the pause early (the background threads' pauses, so that shutdown never waits for one).
 * stop is borrowed.  Thread-safe. */
#define TIMEFMT_SLEEP_SLICE_MS 50
void timefmt_sleep_unless(long ms, const _Atomic bool *stop);
/* Writes ms as "YYYY-MM-DDTHH:MM:SS.mmmZ" into out (TIMEFMT_RFC3339_LEN bytes). */
void timefmt_rfc3339_ms(long long ms, char out[TIMEFMT_RFC3339_LEN]);
/* Writes seconds as "YYYY-MM-DDTHH:MM:SSZ" into out. */
void timefmt_rfc3339_s(long long secs, char out[TIMEFMT_RFC3339_LEN]);

/* A parsed RFC 3339 date-time.  Without an offset it is a wall-clock time whose zone the caller
 * supplies (the suite's rule: the room's time zone). */
struct timefmt_time {
	int year, month, day, hour, minute, second;
	bool has_offset;    /* "Z" or ±HH:MM was given */
	int offset_minutes; /* east of UTC */
	bool has_fraction;  /* a non-zero fractional second was given */
	long long utc;      /* seconds since the epoch; valid only when has_offset */
};

/* Parses "YYYY-MM-DDTHH:MM:SS[.frac][Z|±HH:MM]" (a 't' or 'z' is accepted too; seconds may not be
 * 60).  Returns false for anything else, including impossible dates such as 2026-02-30. */
bool timefmt_parse_rfc3339(const char *s, struct timefmt_time *t);
/* The wall-clock part read as UTC, in seconds since the epoch (t->utc of a time without an
 * offset, when the caller's rule is UTC). */
long long timefmt_wall_as_utc(const struct timefmt_time *t);
/* The wall-clock part as "YYYY-MM-DDTHH:MM:SS" (for PostgreSQL's AT TIME ZONE). */
void timefmt_local_text(const struct timefmt_time *t, char out[TIMEFMT_RFC3339_LEN]);
/* Parses "YYYY-MM-DD" into year/month/day (a real calendar date). */
bool timefmt_parse_date(const char *s, int *year, int *month, int *day);

#endif
