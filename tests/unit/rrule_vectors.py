#!/usr/bin/env python3
"""Random recurrence rules expanded by python-dateutil: the oracle of tests/unit/test_rrule.c.

    tests/unit/rrule_vectors.py [--seed S] [--count N] [--out FILE] [--text]

Writes N rules (seed S), each with the occurrences that python-dateutil's rrule/rruleset
yields, as the C string lines that test_rrule.c includes (tests/unit/rrule_vectors.inc, checked
in: regenerate it with the defaults), or with --text as plain lines for a bigger run:
    tests/unit/rrule_vectors.py --text --count 20000 --seed 7 --out /tmp/v.txt
    RRULE_VECTORS=/tmp/v.txt build/san/tests/test_rrule

One line per rule, tab-separated: the rule's text form (with EXDATE), its JSON object form,
dtstart (YYYYMMDD), the local start time in seconds, limit (YYYYMMDD), max, the stop (END, MAX or
LIMIT) and the dates written, each as days after the one before (the first: after dtstart),
separated by ',' ('-' for none).  The
semantics are those of common/include/rrule.h: UNTIL=date keeps its date (dateutil is given
23:59:59 of it), UNTIL=...Z keeps every date up to the day after (the caller decides the
instant), COUNT counts before EXDATE, no date after limit, at most max dates written.
"""

import argparse
import datetime as dt
import json
import random
import sys

from dateutil import rrule as du

WEEKDAYS = ["MO", "TU", "WE", "TH", "FR", "SA", "SU"]
DU_WEEKDAYS = [du.MO, du.TU, du.WE, du.TH, du.FR, du.SA, du.SU]
FREQS = {"DAILY": du.DAILY, "WEEKLY": du.WEEKLY, "MONTHLY": du.MONTHLY}


def ymd(d):
    return f"{d.year:04d}{d.month:02d}{d.day:02d}"  # strftime does not pad years before 1000


def add_days(d, n):
    """d + n days, within the years 1..9999 that datetime (and so dateutil) has."""
    return dt.date.fromordinal(min(max(d.toordinal() + n, 1), dt.date.max.toordinal()))


def random_start(rng, wide):
    year = rng.randint(1, 9999) if wide else rng.randint(1995, 2045)
    kind = rng.random()
    if kind < 0.1 and year % 4 == 0:
        return dt.date(year, 2, 29)
    if kind < 0.25:
        month = rng.choice([1, 3, 5, 7, 8, 10, 12])
        return dt.date(year, month, rng.choice([29, 30, 31]))
    return add_days(dt.date(year, 1, 1), rng.randrange(365))


def random_rule(rng, start, wide):
    """The rule's parts as (name, value) pairs for the text form, and its JSON object."""
    freq = rng.choice(list(FREQS))
    parts, obj = [("FREQ", freq)], {"freq": freq}
    r = rng.random()
    interval = 1 if r < 0.5 else rng.randint(2, 5) if r < 0.9 else rng.choice([7, 12, 13, 52])
    if wide:
        interval = rng.randint(1, 1000)
    if interval > 1 or rng.random() < 0.1:
        parts.append(("INTERVAL", str(interval)))
        obj["interval"] = interval
    byday = []
    if freq == "MONTHLY":
        kind = rng.random()
        if kind < 0.3:
            byday = [(0, w) for w in rng.sample(range(7), rng.randint(1, 3))]
        elif kind < 0.65:
            items = set()
            for _ in range(rng.randint(1, 3)):
                items.add((rng.choice([1, 2, 3, 4, 5, -1, -2, -5]), rng.randrange(7)))
            byday = sorted(items)
    elif rng.random() < (0.7 if freq == "WEEKLY" else 0.4):
        byday = [(0, w) for w in sorted(rng.sample(range(7), rng.randint(1, 4)))]
    if byday:
        items = [(str(n) if n else "") + WEEKDAYS[w] for n, w in byday]
        parts.append(("BYDAY", ",".join(items)))
        obj["byday"] = items
    bymonthday = []
    if freq == "MONTHLY" and rng.random() < (0.25 if byday else 0.45):
        pool = list(range(1, 32)) + list(range(-31, 0))
        bymonthday = rng.sample(pool, rng.randint(1, 3))
        weights = rng.random()
        if weights < 0.5:  # the month-end cases more often
            bymonthday = rng.sample([28, 29, 30, 31, -1, -2, -29, -31], rng.randint(1, 2))
        parts.append(("BYMONTHDAY", ",".join(map(str, bymonthday))))
        obj["bymonthday"] = bymonthday
    until = None
    r = rng.random()
    if r < 0.5:
        count = rng.randint(1, 40)
        parts.append(("COUNT", str(count)))
        obj["count"] = count
    else:
        day = add_days(start, rng.randint(-3, 700))
        secs = rng.randrange(86400)
        t = dt.time(secs // 3600, secs // 60 % 60, secs % 60)
        if r < 0.7:
            until = ("date", day, None)
            parts.append(("UNTIL", ymd(day)))
            obj["until"] = day.isoformat()
        elif r < 0.9:
            until = ("local", day, t)
            parts.append(("UNTIL", ymd(day) + "T" + t.strftime("%H%M%S")))
            obj["until"] = day.isoformat() + "T" + t.isoformat()
        else:
            until = ("utc", day, t)
            parts.append(("UNTIL", ymd(day) + "T" + t.strftime("%H%M%S") + "Z"))
            obj["until"] = day.isoformat() + "T" + t.isoformat() + "Z"
    return parts, obj, byday, bymonthday, until, interval, freq


def dateutil_rule(freq, start_dt, interval, byday, bymonthday, parts, until):
    kw = {"freq": FREQS[freq], "dtstart": start_dt, "interval": interval, "wkst": du.MO}
    if byday:
        kw["byweekday"] = [DU_WEEKDAYS[w](n) if n else DU_WEEKDAYS[w] for n, w in byday]
    if bymonthday:
        kw["bymonthday"] = bymonthday
    count = dict(parts).get("COUNT")
    if count:
        kw["count"] = int(count)
    elif until[0] == "date":
        kw["until"] = dt.datetime.combine(until[1], dt.time(23, 59, 59))
    elif until[0] == "local":
        kw["until"] = dt.datetime.combine(until[1], until[2])
    else:  # every date up to the day after
        kw["until"] = dt.datetime.combine(add_days(until[1], 1), dt.time(23, 59, 59))
    return du.rrule(**kw)


def expand(rule, exdates, start_dt, limit, maximum):
    rs = du.rruleset()
    rs.rrule(rule)
    for d in exdates:
        rs.exdate(dt.datetime.combine(d, start_dt.time()))
    out = []
    for occurrence in rs:
        d = occurrence.date()
        if d > limit:
            return out, "LIMIT"
        if len(out) == maximum:
            return out, "MAX"
        out.append(d)
    return out, "END"


def vector(rng):
    # A few rules anywhere in years 1..9999 with any INTERVAL and a far limit.
    wide = rng.random() < 0.05
    start = random_start(rng, wide)
    secs = rng.randrange(86400)
    start_dt = dt.datetime.combine(start, dt.time(secs // 3600, secs // 60 % 60, secs % 60))
    parts, obj, byday, bymonthday, until, interval, freq = random_rule(rng, start, wide)
    rule = dateutil_rule(freq, start_dt, interval, byday, bymonthday, parts, until)
    exdates = []
    if rng.random() < 0.35:
        # Mostly dates the rule yields, some it does not.
        end = dt.datetime.combine(add_days(start, 400), start_dt.time())
        some = [o.date() for o in rule.between(start_dt, end)]
        picks = rng.sample(some, min(len(some), rng.randint(1, 4)))
        picks += [add_days(start, rng.randrange(400)) for _ in range(rng.randint(0, 1))]
        exdates = sorted(set(picks))
    if exdates:
        parts.append(("EXDATE", ",".join(ymd(d) for d in exdates)))
        obj["exdate"] = [d.isoformat() for d in exdates]
    rng.shuffle(parts)  # the parts in any order
    limit = add_days(start, rng.randint(0, 400000 if wide else 1200))
    maximum = rng.choice([0, 1, 5]) if rng.random() < 0.1 else rng.randint(10, 40)
    dates, stop = expand(rule, exdates, start_dt, limit, maximum)
    gaps = zip([start] + dates, dates, strict=False)
    offsets = ",".join(str((d - p).days) for p, d in gaps) or "-"
    text = ";".join(f"{k}={v}" for k, v in parts)
    fields = [text, json.dumps(obj, separators=(",", ":")), ymd(start), str(secs), ymd(limit),
              str(maximum), stop, offsets]
    return "\t".join(fields)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seed", type=int, default=13)
    ap.add_argument("--count", type=int, default=600)
    ap.add_argument("--out", default="tests/unit/rrule_vectors.inc")
    ap.add_argument("--text", action="store_true", help="plain lines, not C strings")
    args = ap.parse_args()
    rng = random.Random(args.seed)
    with open(args.out, "w") as f:
        if not args.text:
            f.write(f"/* Generated by tests/unit/rrule_vectors.py --seed {args.seed} "
                    f"--count {args.count}: do not edit. */\n")
        for _ in range(args.count):
            line = vector(rng)
            if args.text:
                f.write(line + "\n")
            else:
                f.write(json.dumps(line) + ",\n")  # a C string literal: only \" and \t inside
    return 0


if __name__ == "__main__":
    sys.exit(main())
