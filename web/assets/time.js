// Dates, times and time zones for the pages. Pure functions (no DOM), so that
// `node --test tests/webapp/` can check them. Instants travel as RFC 3339 texts in UTC
// ("2026-12-01T10:00:00Z"); local wall times as "YYYY-MM-DD" and "HH:MM".

const formatters = new Map();

// One Intl formatter per zone, kept: making one costs far more than using it, and the day
// grid asks for hundreds of times in a handful of zones.
function formatter(zone) {
  let f = formatters.get(zone);
  if (!f) {
    f = new Intl.DateTimeFormat("en-CA", {
      timeZone: zone, year: "numeric", month: "2-digit", day: "2-digit",
      hour: "2-digit", minute: "2-digit", hourCycle: "h23", weekday: "short",
    });
    formatters.set(zone, f);
  }
  return f;
}

const WEEKDAYS = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];

// The wall-clock parts of an instant in a zone: {date: "YYYY-MM-DD", time: "HH:MM",
// minutes (since local midnight), weekday (0 = Sunday)}.
export function zoneParts(instant, zone) {
  const d = instant instanceof Date ? instant : new Date(instant);
  const p = {};
  for (const part of formatter(zone).formatToParts(d)) p[part.type] = part.value;
  const hour = Number(p.hour) % 24;
  return {
    date: `${p.year}-${p.month}-${p.day}`,
    time: `${String(hour).padStart(2, "0")}:${p.minute}`,
    minutes: hour * 60 + Number(p.minute),
    weekday: WEEKDAYS.indexOf(p.weekday),
  };
}

// The browser's own time zone (an IANA name), UTC when it cannot tell.
export function browserZone() {
  return Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC";
}

// The browser's local calendar date of a Date, "YYYY-MM-DD".
export function localDate(d) {
  return `${d.getFullYear()}-${String(d.getMonth() + 1).padStart(2, "0")}-`
    + `${String(d.getDate()).padStart(2, "0")}`;
}

// The fraction (0..1) of a day [dayStart, dayEnd) (instants) at which `instant` lies, clamped.
// A day is 23 or 25 hours long on a DST change: placing by instants keeps the repeated hour's
// bookings apart and never gives a block a negative width.
export function dayFraction(instant, dayStart, dayEnd) {
  const a = Date.parse(dayStart);
  const f = (Date.parse(instant) - a) / (Date.parse(dayEnd) - a);
  return Math.min(1, Math.max(0, f));
}

// The instant ("…Z") `minutes` after the day's start `dayStart` (an instant), rounded down to
// `snap` minutes. Whole minutes in integer arithmetic: a fraction of a 23- or 25-hour day
// times its length is not always the minute it came from (195/1380*1380 < 195).
export function instantAt(minutes, dayStart, snap = 1) {
  const m = Math.floor(Math.round(minutes) / snap) * snap;
  return isoUtc(new Date(Date.parse(dayStart) + m * 60000));
}

// Minutes since local midnight of `date` in `zone` at which `instant` lies, clamped to
// 0..1440 (an instant on the next day is 1440, on the day before 0). The grid places busy
// blocks with it; a DST day keeps its wall-clock hours.
export function minutesInDay(instant, zone, date) {
  const p = zoneParts(instant, zone);
  if (p.date > date) return 1440;
  if (p.date < date) return 0;
  return p.minutes;
}

// "YYYY-MM-DD" n days after date (calendar arithmetic, no zone involved).
export function addDays(date, n) {
  const d = new Date(`${date}T00:00:00Z`);
  d.setUTCDate(d.getUTCDate() + n);
  return d.toISOString().slice(0, 10);
}

// The weekday (0 = Sunday) of a calendar date.
export function weekdayOf(date) {
  return new Date(`${date}T00:00:00Z`).getUTCDay();
}

// An instant as the API's "YYYY-MM-DDTHH:MM:SSZ" (whole seconds).
export function isoUtc(d) {
  return `${d.toISOString().slice(0, 19)}Z`;
}

// "HH:MM" <-> minutes since midnight ("24:00" is 1440).
export function toMinutes(hhmm) {
  const m = /^(\d{2}):(\d{2})$/.exec(hhmm || "");
  return m ? Number(m[1]) * 60 + Number(m[2]) : NaN;
}

export function fromMinutes(min) {
  const h = Math.floor(min / 60);
  return `${String(h).padStart(2, "0")}:${String(min % 60).padStart(2, "0")}`;
}

// A local wall time of a room, as the API reads a time without offset: "YYYY-MM-DDTHH:MM:00".
// Minutes past 1440 roll into the next day.
export function localTime(date, minutes) {
  const day = addDays(date, Math.floor(minutes / 1440));
  return `${day}T${fromMinutes(((minutes % 1440) + 1440) % 1440)}:00`;
}

// "Tue 1 Dec 2026, 10:00–11:00" in zone (the end's date is named when it differs).
export function formatRange(start, end, zone) {
  const a = zoneParts(start, zone);
  const b = zoneParts(end, zone);
  const day = formatDate(a.date);
  return a.date === b.date
    ? `${day}, ${a.time}–${b.time}`
    : `${day}, ${a.time} – ${formatDate(b.date)}, ${b.time}`;
}

const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov",
  "Dec"];

// "Tue 1 Dec 2026" for "2026-12-01".
export function formatDate(date) {
  const [y, m, d] = date.split("-").map(Number);
  return `${WEEKDAYS[weekdayOf(date)]} ${d} ${MONTHS[m - 1]} ${y}`;
}

const BYDAY = ["SU", "MO", "TU", "WE", "TH", "FR", "SA"];

// The API's recurrence text for the repeat picker: kind is "none", "daily", "weekdays",
// "weekly" or "monthly"; count the number of occurrences; date the first one's local date
// **in the room's zone** (the API expands the rule there: seriesDate() gives it). Returns null
// for "none".
export function recurrenceRule(kind, count, date) {
  const n = Math.max(1, Math.floor(Number(count) || 1));
  switch (kind) {
  case "daily": return `FREQ=DAILY;COUNT=${n}`;
  case "weekdays": return `FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR;COUNT=${n}`;
  case "weekly": return `FREQ=WEEKLY;BYDAY=${BYDAY[weekdayOf(date)]};COUNT=${n}`;
  case "monthly": return `FREQ=MONTHLY;BYMONTHDAY=${Number(date.slice(8, 10))};COUNT=${n}`;
  default: return null;
  }
}

// The room-local date of a series' first occurrence starting at `start` (an instant): the
// date the API reads the rule's weekday and day of the month from.
export function seriesDate(start, roomZone) {
  return zoneParts(start, roomZone).date;
}

// Attendees typed as a list separated by commas, semicolons, blanks or lines.
export function parseList(text) {
  return String(text || "").split(/[\s,;]+/).filter((s) => s.length > 0);
}

// The URL of rel="next" in a Link header, or null.
export function nextLink(header) {
  const m = /<([^>]*)>\s*;\s*rel="next"/.exec(header || "");
  return m ? m[1] : null;
}
