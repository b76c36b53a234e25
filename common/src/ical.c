#include "ical.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "rrule.h"
#include "timefmt.h"
#include "tz.h"

/* ---- content lines ---- */

/* Starts a continuation line: CRLF and the one space that unfolding removes. */
static void ical_fold(struct ical_text *t)
{
	jsonx_text_lit(&t->text, "\r\n ");
	t->col = 1;
}

void ical_raw(struct ical_text *t, const char *s, size_t n)
{
	while (n > 0 && !t->text.failed) {
		size_t room = t->col < ICAL_LINE_MAX ? ICAL_LINE_MAX - t->col : 0;
		if (n <= room) {
			jsonx_text_raw(&t->text, s, n);
			t->col += n;
			return;
		}
		/* The longest piece that fits and ends before a UTF-8 lead byte (s[cut] is where the
		 * next line starts, never a continuation byte).  A run of stray continuation bytes
		 * longer than a line is cut anyway rather than never. */
		size_t cut = room;
		while (cut > 0 && ((unsigned char)s[cut] & 0xC0) == 0x80)
			cut--;
		if (cut == 0 && t->col <= 1)
			cut = room;
		jsonx_text_raw(&t->text, s, cut);
		ical_fold(t);
		s += cut;
		n -= cut;
	}
}

/* Appends s[0..n) (an escape sequence) on one physical line: folds first when it does not fit.
 * A fold inside "\n" is legal but trips naive readers. */
static void ical_atom(struct ical_text *t, const char *s, size_t n)
{
	if (t->col + n > ICAL_LINE_MAX)
		ical_fold(t);
	ical_raw(t, s, n);
}

void ical_escaped(struct ical_text *t, const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	while (*p && !t->text.failed) {
		/* The run that needs no escape is copied at once. */
		const unsigned char *run = p;
		size_t n;
		while ((*p >= 0x20 || *p == '\t') && *p != 0x7F && *p != '\\' && *p != ';' &&
		       *p != ',' && (n = jsonx_utf8_seq(p)) > 0)
			p += n;
		ical_raw(t, (const char *)run, (size_t)(p - run));
		switch (*p) {
		case '\0':
			return;
		case '\\':
			ical_atom(t, "\\\\", 2);
			break;
		case ';':
			ical_atom(t, "\\;", 2);
			break;
		case ',':
			ical_atom(t, "\\,", 2);
			break;
		case '\r': /* CR LF and a lone CR are one line break */
			if (p[1] == '\n')
				p++;
			ical_atom(t, "\\n", 2);
			break;
		case '\n':
			ical_atom(t, "\\n", 2);
			break;
		default:
			if (*p >= 0x80) { /* not UTF-8 */
				t->text.failed = true;
				return;
			}
			break; /* another control character: left out */
		}
		p++;
	}
}

void ical_end_line(struct ical_text *t)
{
	jsonx_text_lit(&t->text, "\r\n");
	t->col = 0;
}

void ical_prop(struct ical_text *t, const char *name, const char *value)
{
	size_t n = strlen(name), v = strlen(value);
	/* Most lines need no fold: one append instead of four (a feed writes ~15 a reservation). */
	if (t->col == 0 && n + 1 + v <= ICAL_LINE_MAX) {
		char line[ICAL_LINE_MAX + 2];
		memcpy(line, name, n);
		line[n] = ':';
		memcpy(line + n + 1, value, v);
		memcpy(line + n + 1 + v, "\r\n", 2);
		jsonx_text_raw(&t->text, line, n + v + 3);
		return;
	}
	ical_raw(t, name, n);
	ical_lit(t, ":");
	ical_raw(t, value, v);
	ical_end_line(t);
}

void ical_prop_text(struct ical_text *t, const char *name, const char *value)
{
	ical_raw(t, name, strlen(name));
	ical_lit(t, ":");
	ical_escaped(t, value);
	ical_end_line(t);
}

void ical_prop_cal_address(struct ical_text *t, const char *name, const char *params,
                           const char *cn, const char *addr)
{
	ical_raw(t, name, strlen(name));
	if (params)
		ical_raw(t, params, strlen(params));
	if (cn && *cn) {
		/* RFC 6868: ^ as ^^, a line break (CRLF, LF or CR) as ^n, " as ^'; any other control
		 * character, which a parameter value cannot hold at all, as a space. */
		size_t n = strlen(cn), k = 0;
		char *q = malloc(2 * n + 1);
		if (!q) {
			t->text.failed = true;
			return;
		}
		for (size_t i = 0; i < n; i++) {
			unsigned char u = (unsigned char)cn[i];
			if (u == '^' || u == '"' || u == '\n' || u == '\r') {
				q[k++] = '^';
				q[k++] = u == '^' ? '^' : u == '"' ? '\'' : 'n';
				if (u == '\r' && cn[i + 1] == '\n')
					i++;
			} else {
				q[k++] = u < 0x20 || u == 0x7f ? ' ' : cn[i];
			}
		}
		ical_lit(t, ";CN=\"");
		ical_raw(t, q, k);
		ical_lit(t, "\"");
		free(q);
	}
	ical_lit(t, ":mailto:");
	ical_raw(t, addr, strlen(addr));
	ical_end_line(t);
}

void ical_text_free(struct ical_text *t)
{
	jsonx_text_free(&t->text);
	t->col = 0;
}

/* ---- date-times ---- */

void ical_utc(long long secs, char out[ICAL_DATETIME_LEN])
{
	/* "YYYY-MM-DDTHH:MM:SSZ" without its '-' and ':'. */
	char rfc[TIMEFMT_RFC3339_LEN];
	timefmt_rfc3339_s(secs, rfc);
	size_t j = 0;
	for (const char *p = rfc; *p && j + 1 < ICAL_DATETIME_LEN; p++)
		if (*p != '-' && *p != ':')
			out[j++] = *p;
	out[j] = '\0';
}

bool ical_local(const char *local, char out[ICAL_DATETIME_LEN])
{
	static const char shape[] = "dddd-dd-ddTdd:dd:dd";
	if (strlen(local) != sizeof shape - 1)
		return false;
	size_t j = 0;
	for (size_t i = 0; shape[i]; i++) {
		if (shape[i] == 'd') {
			if (local[i] < '0' || local[i] > '9')
				return false;
			out[j++] = local[i];
		} else if (local[i] != shape[i]) {
			return false;
		} else if (shape[i] == 'T') {
			out[j++] = 'T';
		}
	}
	out[j] = '\0';
	return true;
}

void ical_prop_utc(struct ical_text *t, const char *name, long long secs)
{
	char value[ICAL_DATETIME_LEN];
	ical_utc(secs, value);
	ical_prop(t, name, value);
}

bool ical_prop_local(struct ical_text *t, const char *name, const char *zone, const char *local)
{
	char value[ICAL_DATETIME_LEN];
	if (!ical_local(local, value))
		return false;
	ical_raw(t, name, strlen(name));
	ical_lit(t, ";TZID=");
	ical_raw(t, zone, strlen(zone));
	ical_lit(t, ":");
	ical_raw(t, value, strlen(value));
	ical_end_line(t);
	return true;
}

/* ---- VTIMEZONE ---- */

/* TZif files are a few KB (the largest of tzdata 2025 is under 4 KB); anything much larger is
 * not one. */
#define ICAL_TZIF_MAX (64 * 1024)
/* The POSIX TZ string of a footer (tzdata's longest is under 50 characters). */
#define ICAL_TZSTR_MAX 128

/* Reads the whole file at path (a regular file of at most max bytes) into a new buffer (the
 * caller frees it); NULL when it cannot be read, is not a regular file or is larger. */
static unsigned char *ical_read_file(const char *path, size_t max, size_t *len)
{
	unsigned char *buf = NULL;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return NULL;
	struct stat st;
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size <= 0 ||
	    (unsigned long long)st.st_size > max)
		goto out;
	size_t size = (size_t)st.st_size, got = 0;
	if (!(buf = malloc(size)))
		goto out;
	while (got < size) {
		ssize_t r = read(fd, buf + got, size - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) /* an error, or the file shrank */
			break;
		got += (size_t)r;
	}
	if (got < size) {
		free(buf);
		buf = NULL;
	}
	*len = got;
out:
	close(fd);
	return buf;
}

static uint64_t ical_be32(const unsigned char *p)
{
	return (uint64_t)p[0] << 24 | (uint64_t)p[1] << 16 | (uint64_t)p[2] << 8 | p[3];
}

/* RFC 8536: the header of a TZif data block at buf[at..], and the block's length with time
 * values of tsize bytes; false when the header is not one or the block overruns len. */
static bool ical_tzif_block(const unsigned char *buf, uint64_t len, uint64_t at, uint64_t tsize,
                            uint64_t *block)
{
	if (at + 44 > len || memcmp(buf + at, "TZif", 4) != 0)
		return false;
	const unsigned char *c = buf + at + 20;
	uint64_t isutcnt = ical_be32(c), isstdcnt = ical_be32(c + 4), leapcnt = ical_be32(c + 8),
		 timecnt = ical_be32(c + 12), typecnt = ical_be32(c + 16),
		 charcnt = ical_be32(c + 20);
	*block = 44 + timecnt * (tsize + 1) + typecnt * 6 + charcnt + leapcnt * (tsize + 4) +
	         isstdcnt + isutcnt;
	return at + *block <= len;
}

/* The POSIX TZ string of the TZif file of zone (checked by tz_valid) into out. */
static bool ical_tz_string(const char *zone, char *out, size_t size)
{
	unsigned char *buf = NULL;
	bool ok = false;
	char path[512];
	size_t got;
	if (!tz_valid(zone))
		return false;
	int w = snprintf(path, sizeof path, "%s/%s", tz_dir(), zone);
	if (w < 0 || (size_t)w >= sizeof path || !(buf = ical_read_file(path, ICAL_TZIF_MAX, &got)))
		goto out;
	uint64_t len = got, v1, v2;
	/* Version 2 or later: a version-1 block, the same data with 64-bit times, then the footer
	 * "\n<TZ string>\n". */
	if (!ical_tzif_block(buf, len, 0, 4, &v1) || buf[4] < '2' ||
	    !ical_tzif_block(buf, len, v1, 8, &v2))
		goto out;
	uint64_t at = v1 + v2;
	if (at >= len || buf[at] != '\n')
		goto out;
	const unsigned char *start = buf + at + 1;
	const unsigned char *end = memchr(start, '\n', (size_t)(len - at - 1));
	if (!end || (size_t)(end - start) >= size || memchr(start, '\0', (size_t)(end - start)))
		goto out;
	memcpy(out, start, (size_t)(end - start));
	out[end - start] = '\0';
	ok = true;
out:
	free(buf);
	return ok;
}

/* One transition rule of a POSIX TZ string, "Mm.w.d[/time]": day d (0 = Sunday) of week w
 * (5 = the last) of month m, at time seconds after that day's midnight in the offset it ends
 * (negative, or 24 hours and more in TZif version 3: another day). */
struct ical_rule {
	int month, week, wday;
	long time;
};

struct ical_posix {
	char std[32], dst[32];
	long std_off, dst_off; /* seconds east of UTC (a TZ string writes them west) */
	bool has_dst;
	struct ical_rule start, end; /* to daylight time, back to standard time */
};

/* A name: "<…>" with letters, digits, '+' and '-', or 3 or more letters. */
static bool ical_posix_name(const char **s, char *out, size_t size)
{
	const char *p = *s;
	size_t n = 0;
	bool quoted = *p == '<';
	if (quoted)
		p++;
	while ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') ||
	       (quoted && ((*p >= '0' && *p <= '9') || *p == '+' || *p == '-'))) {
		if (n + 1 >= size)
			return false;
		out[n++] = *p++;
	}
	out[n] = '\0';
	if (quoted && *p++ != '>')
		return false;
	*s = p;
	return n >= 3 || (quoted && n >= 1);
}

static bool ical_posix_num(const char **s, long max, long *out)
{
	const char *p = *s;
	long v = 0;
	if (*p < '0' || *p > '9')
		return false;
	while (*p >= '0' && *p <= '9') {
		v = v * 10 + (*p++ - '0');
		if (v > max)
			return false;
	}
	*s = p;
	*out = v;
	return true;
}

/* "[+-]hh[:mm[:ss]]" with hh at most max_hours, as seconds (negative for '-'). */
static bool ical_posix_hms(const char **s, long max_hours, long *out)
{
	const char *p = *s;
	long sign = 1, h, m = 0, sec = 0;
	if (*p == '+' || *p == '-')
		sign = *p++ == '-' ? -1 : 1;
	if (!ical_posix_num(&p, max_hours, &h))
		return false;
	if (*p == ':') {
		p++;
		if (!ical_posix_num(&p, 59, &m))
			return false;
		if (*p == ':') {
			p++;
			if (!ical_posix_num(&p, 59, &sec))
				return false;
		}
	}
	*s = p;
	*out = sign * (h * 3600 + m * 60 + sec);
	return true;
}

/* ",Mm.w.d[/time]"; the Jn and n forms are refused. */
static bool ical_posix_rule(const char **s, struct ical_rule *r)
{
	const char *p = *s;
	long m, w, d, at = 2 * 3600;
	if (*p++ != ',' || *p++ != 'M' || !ical_posix_num(&p, 12, &m) || m < 1 || *p++ != '.' ||
	    !ical_posix_num(&p, 5, &w) || w < 1 || *p++ != '.' || !ical_posix_num(&p, 6, &d))
		return false;
	if (*p == '/') {
		p++;
		if (!ical_posix_hms(&p, 167, &at))
			return false;
	}
	*r = (struct ical_rule){.month = (int)m, .week = (int)w, .wday = (int)d, .time = at};
	*s = p;
	return true;
}

static bool ical_posix_parse(const char *s, struct ical_posix *tz)
{
	long off;
	memset(tz, 0, sizeof *tz);
	if (!ical_posix_name(&s, tz->std, sizeof tz->std) || !ical_posix_hms(&s, 24, &off))
		return false;
	tz->std_off = -off;
	if (*s == '\0')
		return true;
	tz->has_dst = true;
	if (!ical_posix_name(&s, tz->dst, sizeof tz->dst))
		return false;
	tz->dst_off = tz->std_off + 3600;
	if (*s != ',') {
		if (!ical_posix_hms(&s, 24, &off))
			return false;
		tz->dst_off = -off;
	}
	/* zic always writes the rules; POSIX leaves their default to the implementation. */
	return ical_posix_rule(&s, &tz->start) && ical_posix_rule(&s, &tz->end) && *s == '\0';
}

static const char *const ical_wday[7] = {"SU", "MO", "TU", "WE", "TH", "FR", "SA"};
/* Days of each month in a common year, and the days of the year before each month. */
static const int ical_mdays[13] = {0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
static const int ical_before[13] = {0, 0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334};

static long ical_floor_div(long a, long b)
{
	return a / b - (a % b != 0 && (a < 0) != (b < 0));
}

/* The yearly RRULE of rule (its day moved by shift days, for a time outside 0..24 h) into out,
 * and its date in 1970 (*month, *day).  False when the moved days cross the end of February
 * or of the year, which one yearly rule cannot say. */
static bool ical_rule_rrule(const struct ical_rule *r, long shift, char *out, size_t size,
                            int *month, int *day)
{
	int m = r->month, w = r->week;
	const char *wd = ical_wday[((r->wday + shift) % 7 + 7) % 7];
	/* The rule's day in 1970 (a common year), then moved. */
	struct rrule_date first = {1970, m, 1};
	int monday_based = (r->wday + 6) % 7;
	int d = 1 + (monday_based - rrule_weekday(first) + 7) % 7 + 7 * (w - 1);
	while (d > ical_mdays[m])
		d -= 7;
	struct rrule_date on = rrule_date_from_days(
		rrule_days_from_date((struct rrule_date){1970, m, d}) + shift);
	if (on.year != 1970)
		return false;
	*month = on.month;
	*day = on.day;
	size_t n = 0;
	int wrote;
	if (shift == 0) {
		wrote = snprintf(out, size, "FREQ=YEARLY;BYMONTH=%d;BYDAY=%d%s", m, w == 5 ? -1 : w,
		                 wd);
		return wrote > 0 && (size_t)wrote < size;
	}
	/* The seven days the moved day can fall on, as days of the month (counted from its
	 * start, or from its end for the last week) when they stay inside it in every year,
	 * else as days of the year (from its start up to 28 February, from its end after it). */
	long lo = w == 5 ? -7 + shift : 7L * (w - 1) + 1 + shift;
	long min_len = m == 2 ? 28 : ical_mdays[m];
	bool in_month = w == 5 ? lo >= -min_len && lo + 6 <= -1 : lo >= 1 && lo + 6 <= min_len;
	if (in_month) {
		wrote = snprintf(out, size, "FREQ=YEARLY;BYMONTH=%d;BYDAY=%s;BYMONTHDAY=", m, wd);
	} else {
		if (w == 5 && m == 2)
			return false;
		/* Day of a common year of the first of the seven. */
		long yd = w == 5 ? ical_before[m] + ical_mdays[m] + 1 + lo : ical_before[m] + lo;
		if (yd >= 1 && yd + 6 <= 59)
			lo = yd;
		else if (yd >= 60 && yd + 6 <= 365)
			lo = yd - 366;
		else
			return false;
		wrote = snprintf(out, size, "FREQ=YEARLY;BYDAY=%s;BYYEARDAY=", wd);
	}
	if (wrote < 0 || (size_t)wrote >= size)
		return false;
	n = (size_t)wrote;
	for (long i = 0; i < 7; i++) {
		wrote = snprintf(out + n, size - n, "%s%ld", i ? "," : "", lo + i);
		if (wrote < 0 || (size_t)wrote >= size - n)
			return false;
		n += (size_t)wrote;
	}
	return true;
}

/* "+hhmm" or "+hhmmss" (RFC 5545 UTC-OFFSET); |secs| is at most 25 hours (ical_posix_hms). */
static void ical_offset(long secs, char out[16])
{
	char sign = secs < 0 ? '-' : '+';
	int a = (int)((secs < 0 ? -secs : secs) % (100 * 3600));
	if (a % 60)
		snprintf(out, 16, "%c%02d%02d%02d", sign, a / 3600, a / 60 % 60, a % 60);
	else
		snprintf(out, 16, "%c%02d%02d", sign, a / 3600, a / 60 % 60);
}

/* One STANDARD or DAYLIGHT sub-component; rule NULL for a zone without daylight saving time. */
static bool ical_observance(struct ical_text *t, const char *kind, long from, long to,
                            const char *name, const struct ical_rule *rule)
{
	char rrule[160] = "", line[64], off[16];
	int month = 1, day = 1;
	long tod = 0;
	if (rule) {
		long shift = ical_floor_div(rule->time, 86400);
		tod = rule->time - shift * 86400;
		if (!ical_rule_rrule(rule, shift, rrule, sizeof rrule, &month, &day))
			return false;
	}
	ical_prop(t, "BEGIN", kind);
	ical_offset(from, off);
	ical_prop(t, "TZOFFSETFROM", off);
	ical_offset(to, off);
	ical_prop(t, "TZOFFSETTO", off);
	ical_prop_text(t, "TZNAME", name);
	snprintf(line, sizeof line, "1970%02d%02dT%02ld%02ld%02ld", month, day, tod / 3600,
	         tod / 60 % 60, tod % 60);
	ical_prop(t, "DTSTART", line);
	if (rule)
		ical_prop(t, "RRULE", rrule);
	ical_prop(t, "END", kind);
	return true;
}

bool ical_vtimezone(struct ical_text *t, const char *zone)
{
	char tzstr[ICAL_TZSTR_MAX];
	struct ical_posix tz;
	if (!ical_tz_string(zone, tzstr, sizeof tzstr) || !ical_posix_parse(tzstr, &tz))
		return false;
	/* Written aside first: a rule that cannot be said leaves t untouched. */
	struct ical_text part = {0};
	bool ok;
	ical_prop(&part, "BEGIN", "VTIMEZONE");
	ical_prop(&part, "TZID", zone);
	if (!tz.has_dst)
		ok = ical_observance(&part, "STANDARD", tz.std_off, tz.std_off, tz.std, NULL);
	else {
		/* Europe/Dublin's "standard" time is its summer time (IST-1GMT0): the larger
		 * offset is written as DAYLIGHT, as clients expect (tzdata's rearguard form). */
		bool negative = tz.dst_off < tz.std_off;
		ok = ical_observance(&part, negative ? "DAYLIGHT" : "STANDARD", tz.dst_off,
		                     tz.std_off, tz.std, &tz.end) &&
		     ical_observance(&part, negative ? "STANDARD" : "DAYLIGHT", tz.std_off,
		                     tz.dst_off, tz.dst, &tz.start);
	}
	ical_prop(&part, "END", "VTIMEZONE");
	ok = ok && !part.text.failed;
	if (ok) {
		/* Whole lines: t's current line is unaffected. */
		jsonx_text_raw(&t->text, part.text.data, part.text.len);
	}
	ical_text_free(&part);
	return ok;
}
