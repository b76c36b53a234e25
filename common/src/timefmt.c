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

/* The UTC calendar fields of secs, by arithmetic (H. Hinnant's civil_from_days): gmtime_r takes
 * glibc's time-zone lock on every call, and a page of reservations formats 80 times.  False for
 * a year outside 0..9999 (the callers then take gmtime_r and snprintf, which print any year). */
static bool timefmt_civil(long long secs, int f[6])
{
	/* ±10^13 s is beyond year 9999 either way and keeps the arithmetic far from overflow. */
	if (secs < -100000000000000LL || secs > 100000000000000LL)
		return false;
	long long days = secs / 86400, rem = secs % 86400;
	if (rem < 0) {
		rem += 86400;
		days--;
	}
	long long z = days + 719468;
	long long era = (z >= 0 ? z : z - 146096) / 146097;
	long long doe = z - era * 146097;                                      /* [0, 146096] */
	long long yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365; /* [0, 399] */
	long long doy = doe - (365 * yoe + yoe / 4 - yoe / 100);               /* [0, 365] */
	long long mp = (5 * doy + 2) / 153;                                    /* [0, 11] */
	long long month = mp < 10 ? mp + 3 : mp - 9;
	long long year = yoe + era * 400 + (month <= 2);
	if (year < 0 || year > 9999)
		return false;
	f[0] = (int)year;
	f[1] = (int)month;
	f[2] = (int)(doy - (153 * mp + 2) / 5 + 1);
	f[3] = (int)(rem / 3600);
	f[4] = (int)(rem / 60 % 60);
	f[5] = (int)(rem % 60);
	return true;
}

/* Writes v as n decimal digits (v < 10^n) and returns the end. */
static char *timefmt_put(char *p, int v, int n)
{
	for (int i = n - 1; i >= 0; i--, v /= 10)
		p[i] = (char)('0' + v % 10);
	return p + n;
}

/* "YYYY-MM-DDTHH:MM:SS" then, frac >= 0, ".mmm", then "Z"; without snprintf (the cost of a
 * reservation page was mostly its formatting). */
static void timefmt_rfc3339(long long secs, int frac, char out[TIMEFMT_RFC3339_LEN])
{
	int f[6];
	if (!timefmt_civil(secs, f)) {
		struct tm tm;
		time_t t = (time_t)secs;
		gmtime_r(&t, &tm);
		int n = snprintf(out, TIMEFMT_RFC3339_LEN, "%04d-%02d-%02dT%02d:%02d:%02d",
		                 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
		                 tm.tm_min, tm.tm_sec);
		if (n > 0 && n < TIMEFMT_RFC3339_LEN)
			snprintf(out + n, (size_t)(TIMEFMT_RFC3339_LEN - n),
			         frac >= 0 ? ".%03dZ" : "Z", frac);
		return;
	}
	static const char seps[] = "--T::";
	char *p = timefmt_put(out, f[0], 4);
	for (int i = 1; i < 6; i++) {
		*p++ = seps[i - 1];
		p = timefmt_put(p, f[i], 2);
	}
	if (frac >= 0) {
		*p++ = '.';
		p = timefmt_put(p, frac, 3);
	}
	*p++ = 'Z';
	*p = '\0';
}

void timefmt_rfc3339_ms(long long ms, char out[TIMEFMT_RFC3339_LEN])
{
	long long secs = ms / 1000, frac = ms % 1000;
	if (frac < 0) {
		frac += 1000;
		secs -= 1;
	}
	timefmt_rfc3339(secs, (int)frac, out);
}

void timefmt_rfc3339_s(long long secs, char out[TIMEFMT_RFC3339_LEN])
{
	timefmt_rfc3339(secs, -1, out);
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
