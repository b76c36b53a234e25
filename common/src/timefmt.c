#include "timefmt.h"

#include <stdio.h>
#include <time.h>

long long timefmt_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

long long timefmt_mono_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void timefmt_utc(long long secs, struct tm *tm)
{
	time_t t = (time_t)secs;
	gmtime_r(&t, tm);
}

void timefmt_rfc3339_ms(long long ms, char out[TIMEFMT_RFC3339_LEN])
{
	struct tm tm;
	long long secs = ms / 1000, frac = ms % 1000;
	if (frac < 0) {
		frac += 1000;
		secs -= 1;
	}
	timefmt_utc(secs, &tm);
	snprintf(out, TIMEFMT_RFC3339_LEN, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
	         tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)frac);
}

void timefmt_rfc3339_s(long long secs, char out[TIMEFMT_RFC3339_LEN])
{
	struct tm tm;
	timefmt_utc(secs, &tm);
	snprintf(out, TIMEFMT_RFC3339_LEN, "%04d-%02d-%02dT%02d:%02d:%02dZ", tm.tm_year + 1900,
	         tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
}
