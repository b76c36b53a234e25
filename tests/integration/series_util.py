"""Helpers of the recurring-reservation tests (test_res_series*.py): dates, local and UTC
times, and the series requests."""
import datetime
from zoneinfo import ZoneInfo

import requests

SERIES_KEYS = {"id", "room_id", "user_id", "purpose", "recurrence", "rrule", "exdates",
               "time_zone", "first_start", "duration_seconds", "until_time", "parent_id",
               "status", "cancel_reason", "version", "created_at", "updated_at", "occurrences",
               "attendees", "organizer_email", "organizer_name", "online_meeting"}
DAYS = ["MO", "TU", "WE", "TH", "FR", "SA", "SU"]


def today():
    return datetime.datetime.now(datetime.UTC).date()


def ahead(days):
    return today() + datetime.timedelta(days=days)


def local(d, hour=10, minute=0):
    """A local (offset-less) time on date d, as the API reads it in the room's zone."""
    return f"{d.isoformat()}T{hour:02d}:{minute:02d}:00"


def utc_text(t):
    """An aware datetime as the API writes instants ("…Z")."""
    return t.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def utc_of(d, hour, zone, minute=0):
    """The UTC text of a local time in zone (the oracle: zoneinfo)."""
    return utc_text(datetime.datetime(d.year, d.month, d.day, hour, minute, tzinfo=ZoneInfo(zone)))


def series_post(res_url, headers, room_id, start, end, recurrence, **extra):
    body = {"room_id": room_id, "start_time": start, "end_time": end, "recurrence": recurrence}
    body.update(extra)
    return requests.post(f"{res_url}/reservations", json=body, headers=headers, timeout=30)


def series_made(res_url, headers, room_id, start, end, recurrence, **extra):
    r = series_post(res_url, headers, room_id, start, end, recurrence, **extra)
    assert r.status_code == 201, r.text
    return r.json()


def get_series(res_url, headers, sid):
    return requests.get(f"{res_url}/reservations/series/{sid}", headers=headers, timeout=10)


def list_series(res_url, headers, sid, status="all"):
    r = requests.get(f"{res_url}/reservations", headers=headers, timeout=10,
                     params={"series_id": sid, "status": status, "limit": 200})
    assert r.status_code == 200, r.text
    return r.json()


def series_events(stack, keys):
    """reservation_events messages whose key is one of keys (reservation ids, "series-<id>")."""
    keys = {str(k) for k in keys}
    return [m["value"] for m in stack.kafka.read("reservation_events") if m.get("key") in keys]
