/* timefmt: wall-clock helpers and RFC 3339 formatting/parsing in UTC. */
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
/* Writes ms as "YYYY-MM-DDTHH:MM:SS.mmmZ" into out (TIMEFMT_RFC3339_LEN bytes). */
void timefmt_rfc3339_ms(long long ms, char out[TIMEFMT_RFC3339_LEN]);
/* Writes seconds as "YYYY-MM-DDTHH:MM:SSZ" into out. */
void timefmt_rfc3339_s(long long secs, char out[TIMEFMT_RFC3339_LEN]);

#endif
