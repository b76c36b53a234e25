// node --test tests/webapp/: the app's pure date and time functions (web/assets/time.js).
import assert from "node:assert/strict";
import test from "node:test";

import {
  addDays, dayFraction, formatRange, instantAt, localDate, localTime, minutesInDay, nextLink,
  parseList, recurrenceRule, seriesDate, zoneParts,
} from "../../web/assets/time.js";

test("wall clock of an instant in a zone", () => {
  assert.deepEqual(zoneParts("2026-12-01T09:30:00Z", "Europe/Berlin"),
    { date: "2026-12-01", time: "10:30", minutes: 630, weekday: 2 });
  assert.equal(zoneParts("2026-12-01T23:00:00Z", "Europe/Berlin").time, "00:00");
});

test("minutes of the day clamp to the day, DST days keep wall-clock hours", () => {
  assert.equal(minutesInDay("2026-12-01T23:00:00Z", "Europe/Berlin", "2026-12-01"), 1440);
  assert.equal(minutesInDay("2026-11-30T22:00:00Z", "Europe/Berlin", "2026-12-01"), 0);
  // 2027-03-28: Berlin goes from 02:00 to 03:00; 03:30 local is 01:30Z.
  assert.equal(minutesInDay("2027-03-28T01:30:00Z", "Europe/Berlin", "2027-03-28"), 210);
});

test("calendar arithmetic and local times", () => {
  assert.equal(addDays("2026-12-31", 1), "2027-01-01");
  assert.equal(addDays("2027-03-01", -1), "2027-02-28");
  assert.equal(localTime("2026-12-01", 600), "2026-12-01T10:00:00");
  assert.equal(localTime("2026-12-01", 1440 + 30), "2026-12-02T00:30:00");
});

test("repeat picker gives the API's rules", () => {
  assert.equal(recurrenceRule("none", 4, "2026-12-01"), null);
  assert.equal(recurrenceRule("weekly", 4, "2026-12-01"), "FREQ=WEEKLY;BYDAY=TU;COUNT=4");
  assert.equal(recurrenceRule("daily", "3", "2026-12-01"), "FREQ=DAILY;COUNT=3");
  assert.equal(recurrenceRule("weekdays", 10, "2026-12-01"),
    "FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR;COUNT=10");
  assert.equal(recurrenceRule("monthly", 2, "2026-12-05"), "FREQ=MONTHLY;BYMONTHDAY=5;COUNT=2");
});

test("formatting, lists and links", () => {
  assert.equal(formatRange("2026-12-01T09:00:00Z", "2026-12-01T10:00:00Z", "UTC"),
    "Tue 1 Dec 2026, 09:00–10:00");
  assert.deepEqual(parseList(" a@x.com, b@x.com;\nc@x.com "), ["a@x.com", "b@x.com", "c@x.com"]);
  assert.equal(nextLink('</rooms?limit=2&cursor=abc>; rel="next"'), "/rooms?limit=2&cursor=abc");
  assert.equal(nextLink(null), null);
});

test("a series' rule is anchored on the room's local date, not the browser's", () => {
  // Tue 1 Dec 2026 20:00 in New York is Wed 2 Dec 02:00 in Berlin: the API expands the rule
  // in Berlin, so "every week on this day" is Wednesday there.
  const start = "2026-12-02T01:00:00Z";
  assert.equal(seriesDate(start, "America/New_York"), "2026-12-01");
  assert.equal(seriesDate(start, "Europe/Berlin"), "2026-12-02");
  assert.equal(recurrenceRule("weekly", 4, seriesDate(start, "Europe/Berlin")),
    "FREQ=WEEKLY;BYDAY=WE;COUNT=4");
  assert.equal(recurrenceRule("monthly", 2, seriesDate("2026-12-31T23:30:00Z", "Asia/Tokyo")),
    "FREQ=MONTHLY;BYMONTHDAY=1;COUNT=2");
});

test("a 25-hour day places the repeated hour's bookings apart", () => {
  // 2026-10-25 in Berlin: 22:00Z (the 24th) to 23:00Z, 25 hours; 02:00-03:00 happens twice,
  // at 00:00Z (summer time) and 01:00Z (winter time).
  const [a, b] = ["2026-10-24T22:00:00Z", "2026-10-25T23:00:00Z"];
  const first = dayFraction("2026-10-25T00:00:00Z", a, b);
  const second = dayFraction("2026-10-25T01:00:00Z", a, b);
  assert.equal(first, 2 / 25);
  assert.equal(second, 3 / 25);
  // A block across the change has a positive width; instants outside the day clamp.
  assert.ok(dayFraction("2026-10-25T01:30:00Z", a, b) > dayFraction("2026-10-25T00:30:00Z", a, b));
  assert.equal(dayFraction("2026-10-24T12:00:00Z", a, b), 0);
  assert.equal(dayFraction("2026-10-26T12:00:00Z", a, b), 1);
  // Clicking the first 02:00 gives its own instant, not the second's.
  assert.equal(instantAt(first * 25 * 60, a, 15), "2026-10-25T00:00:00Z");
  assert.equal(instantAt(second * 25 * 60, a, 15), "2026-10-25T01:00:00Z");
  assert.equal(zoneParts(instantAt(first * 25 * 60, a), "Europe/Berlin").time, "02:00");
});

test("a minute of a 23- or 25-hour day is that minute, not one earlier", () => {
  // 2027-03-28 in Berlin is 23 hours (23:00Z the 27th to 22:00Z), 2026-10-25 is 25 hours: the
  // grid's click at 195 or 435 minutes books 04:15 or 06:15, never 04:14 or 06:14.
  const short = "2027-03-27T23:00:00Z";
  const long = "2026-10-24T22:00:00Z";
  for (const m of [195, 255, 390, 510, 780]) {
    assert.equal(Date.parse(instantAt(m, short)) - Date.parse(short), m * 60000, `minute ${m}`);
  }
  for (const m of [435, 855, 870]) {
    assert.equal(Date.parse(instantAt(m, long)) - Date.parse(long), m * 60000, `minute ${m}`);
  }
  assert.equal(zoneParts(instantAt(195, short), "Europe/Berlin").time, "04:15");
  assert.equal(zoneParts(instantAt(435, long), "Europe/Berlin").time, "06:15");
  assert.equal(instantAt(14, short, 15), short);
});

test("the browser's local date", () => {
  assert.equal(localDate(new Date(2026, 0, 5, 23, 59)), "2026-01-05");
});
