#include "timefmt.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
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

long long timefmt_mono_ms(void)
{
	return timefmt_mono_us() / 1000;
}

void timefmt_sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
}

void timefmt_sleep_unless(long ms, const _Atomic bool *stop)
{
	for (long slept = 0; slept < ms && !*stop; slept += TIMEFMT_SLEEP_SLICE_MS)
		timefmt_sleep_ms(ms - slept < TIMEFMT_SLEEP_SLICE_MS ? ms - slept
		                                                     : TIMEFMT_SLEEP_SLICE_MS);
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

/* Reads exactly n digits. */
static bool timefmt_digits(const char **p, int n, int *out)
{
	int v = 0;
	for (int i = 0; i < n; i++) {
		if (!isdigit((unsigned char)(*p)[i]))
			return false;
		v = v * 10 + ((*p)[i] - '0');
	}
	*p += n;
	*out = v;
	return true;
}

static bool timefmt_valid_date(int y, int m, int d)
{
	static const int days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	if (y < 1 || m < 1 || m > 12 || d < 1)
		return false;
	int max = days[m - 1];
	if (m == 2 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0))
		max = 29;
	return d <= max;
}

bool timefmt_parse_date(const char *s, int *year, int *month, int *day)
{
	const char *p = s;
	if (!timefmt_digits(&p, 4, year) || *p++ != '-' || !timefmt_digits(&p, 2, month) ||
	    *p++ != '-' || !timefmt_digits(&p, 2, day) || *p)
		return false;
	return timefmt_valid_date(*year, *month, *day);
}

bool timefmt_parse_rfc3339(const char *s, struct timefmt_time *t)
{
	const char *p = s;
	memset(t, 0, sizeof *t);
	if (!timefmt_digits(&p, 4, &t->year) || *p++ != '-' || !timefmt_digits(&p, 2, &t->month) ||
	    *p++ != '-' || !timefmt_digits(&p, 2, &t->day) || (*p != 'T' && *p != 't'))
		return false;
	p++;
	if (!timefmt_digits(&p, 2, &t->hour) || *p++ != ':' || !timefmt_digits(&p, 2, &t->minute) ||
	    *p++ != ':' || !timefmt_digits(&p, 2, &t->second))
		return false;
	if (!timefmt_valid_date(t->year, t->month, t->day) || t->hour > 23 || t->minute > 59 ||
	    t->second > 59)
		return false;
	if (*p == '.') {
		p++;
		if (!isdigit((unsigned char)*p))
			return false;
		for (int n = 0; isdigit((unsigned char)*p); p++, n++) {
			if (n >= 9)
				return false;
			if (*p != '0')
				t->has_fraction = true;
		}
	}
	if (*p == 'Z' || *p == 'z') {
		t->has_offset = true;
		p++;
	} else if (*p == '+' || *p == '-') {
		int sign = *p++ == '-' ? -1 : 1, oh, om;
		if (!timefmt_digits(&p, 2, &oh) || *p++ != ':' || !timefmt_digits(&p, 2, &om) ||
		    oh > 23 || om > 59)
			return false;
		t->has_offset = true;
		t->offset_minutes = sign * (oh * 60 + om);
	}
	if (*p)
		return false;
	if (t->has_offset)
		t->utc = timefmt_wall_as_utc(t) - (long long)t->offset_minutes * 60;
	return true;
}

long long timefmt_wall_as_utc(const struct timefmt_time *t)
{
	struct tm tm = {.tm_year = t->year - 1900,
	                .tm_mon = t->month - 1,
	                .tm_mday = t->day,
	                .tm_hour = t->hour,
	                .tm_min = t->minute,
	                .tm_sec = t->second};
	return (long long)timegm(&tm);
}

void timefmt_local_text(const struct timefmt_time *t, char out[TIMEFMT_RFC3339_LEN])
{
	snprintf(out, TIMEFMT_RFC3339_LEN, "%04d-%02d-%02dT%02d:%02d:%02d", t->year, t->month,
	         t->day, t->hour, t->minute, t->second);
}
