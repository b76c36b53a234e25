"""Changing recurring reservations (docs/api.md#changing-a-series): PUT
/reservations/series/{id} (times across DST, rule, room, purpose; fail vs skip; If-Match),
PUT/DELETE /reservations/{id}?scope=this_and_following (split, cut), past occurrences left
alone, the events of each kind, and a race of a series change against single bookings that
must leave no overlap."""
import datetime
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor

import psycopg2
import pytest
import requests

from harness import (
    assert_error,
    bearer,
    booked,
    next_dst_days,
    operator_token,
    overlapping_confirmed_pairs,
    res_db_query,
    res_outbox_unsent,
    wait_room_state,
    wait_until,
)
from series_util import (
    DAYS,
    ahead,
    get_series,
    local,
    series_events,
    series_made,
    utc_of,
)

POOL_BATCH = 16
BERLIN = "Europe/Berlin"


def put_series(res_url, headers, sid, body, **extra_headers):
    return requests.put(f"{res_url}/reservations/series/{sid}", json=body,
                        headers=headers | extra_headers, timeout=30)


def put_following(res_url, headers, rid, body, **extra_headers):
    return requests.put(f"{res_url}/reservations/{rid}", json=body,
                        params={"scope": "this_and_following"},
                        headers=headers | extra_headers, timeout=30)


def delete_following(res_url, headers, rid, **extra_headers):
    return requests.delete(f"{res_url}/reservations/{rid}",
                           params={"scope": "this_and_following"},
                           headers=headers | extra_headers, timeout=30)


def series_of(res_url, headers, sid):
    r = get_series(res_url, headers, sid)
    assert r.status_code == 200, r.text
    return r.json()


def by_id(series):
    return {o["id"]: o for o in series["occurrences"]}


def confirmed(series):
    return [o for o in series["occurrences"] if o["status"] == "confirmed"]


def drained(stack):
    wait_until(lambda: res_outbox_unsent(stack.pg) == 0, timeout=30, interval=0.1,
               what="reservation outbox drained")


def daily(res_url, headers, room_id, first, count, hour=10, **extra):
    return series_made(res_url, headers, room_id, f"{first.isoformat()}T{hour:02d}:00:00Z",
                       f"{first.isoformat()}T{hour + 1:02d}:00:00Z",
                       f"FREQ=DAILY;COUNT={count}", **extra)


@pytest.fixture(scope="module")
def berlin(pool):
    return pool.take(time_zone=BERLIN)


# ---- PUT /reservations/series/{id} ----

def test_time_change_keeps_ids_and_local_time_across_dst(stack, res_url, alice, berlin):
    change = next(datetime.date.fromisoformat(d) for d, _ in next_dst_days()
                  if datetime.date.fromisoformat(d) - datetime.timedelta(days=7) >= ahead(2))
    first = change - datetime.timedelta(days=7)
    rule = f"FREQ=WEEKLY;BYDAY={DAYS[first.weekday()]};COUNT=3"
    s = series_made(res_url, alice, berlin["id"], local(first), local(first, 11), rule)
    r = put_series(res_url, alice, s["id"],
                   {"start_time": local(first, 14), "end_time": local(first, 15, 30)})
    assert r.status_code == 200, r.text
    assert r.headers["ETag"] == '"2"'
    got = r.json()
    assert got["skipped"] == [] and got["version"] == 2
    assert got["first_start"] == local(first, 14) and got["duration_seconds"] == 5400
    assert got["rrule"] == rule and got["id"] == s["id"]
    assert [o["id"] for o in got["occurrences"]] == [o["id"] for o in s["occurrences"]]
    for i, o in enumerate(got["occurrences"]):
        d = first + datetime.timedelta(weeks=i)
        # 14:00 Berlin on both sides of the change: the UTC time moves by an hour.
        assert o["start_time"] == utc_of(d, 14, BERLIN)
        assert o["end_time"] == utc_of(d, 15, BERLIN, minute=30)
        assert o["occurrence_start"] == local(d, 14)
        assert o["version"] == 2 and o["status"] == "confirmed"
    assert got["occurrences"][0]["start_time"][11:13] != got["occurrences"][2]["start_time"][11:13]
    # The answer is what a read shows.
    want = dict(got)
    del want["skipped"]
    assert series_of(res_url, alice, s["id"]) == want


def test_rule_change_matches_by_date_cancels_and_adds(stack, res_url, alice, room):
    first = ahead(3)
    s = daily(res_url, alice, room["id"], first, 5)
    ids = [o["id"] for o in s["occurrences"]]
    r = put_series(res_url, alice, s["id"], {"recurrence": "FREQ=DAILY;INTERVAL=2;COUNT=3"})
    assert r.status_code == 200, r.text
    got = by_id(r.json())
    # Days 0, 2, 4 keep their occurrence untouched; days 1 and 3 go.
    for i in (0, 2, 4):
        assert got[ids[i]]["status"] == "confirmed" and got[ids[i]]["version"] == 1
    for i in (1, 3):
        assert got[ids[i]]["status"] == "cancelled"
        assert got[ids[i]]["cancel_reason"] == "series_changed" and got[ids[i]]["version"] == 2
    assert r.json()["rrule"] == "FREQ=DAILY;INTERVAL=2;COUNT=3"
    # Back to every day, one more: days 1 and 3 get new occurrences, day 5 too.
    r = put_series(res_url, alice, s["id"], {"recurrence": {"freq": "DAILY", "count": 6}})
    assert r.status_code == 200, r.text
    now = confirmed(r.json())
    assert [o["occurrence_start"] for o in now] == [
        local(first + datetime.timedelta(days=i)) for i in range(6)]
    new = [o["id"] for o in now if o["id"] not in ids]
    assert len(new) == 3
    assert r.json()["recurrence"] == {"freq": "DAILY", "count": 6}


def test_purpose_only_change_keeps_an_exceptions_times(stack, res_url, alice, room):
    first = ahead(4)
    s = daily(res_url, alice, room["id"], first, 3, purpose="old")
    moved = s["occurrences"][1]
    d1 = first + datetime.timedelta(days=1)
    r = requests.put(f"{res_url}/reservations/{moved['id']}", headers=alice, timeout=10,
                     json={"start_time": f"{d1.isoformat()}T15:00:00Z",
                           "end_time": f"{d1.isoformat()}T16:30:00Z"})
    assert r.status_code == 200, r.text
    r = put_series(res_url, alice, s["id"], {"purpose": "new"})
    assert r.status_code == 200, r.text
    got = by_id(r.json())
    assert r.json()["purpose"] == "new"
    assert {o["purpose"] for o in got.values()} == {"new"}
    assert got[moved["id"]]["start_time"] == f"{d1.isoformat()}T15:00:00Z"
    assert got[moved["id"]]["end_time"] == f"{d1.isoformat()}T16:30:00Z"
    assert res_db_query(stack.pg, "SELECT exception FROM reservations WHERE id = %s",
                        moved["id"]) == [(True,)]
    # A change of times resets the exception to the pattern.
    r = put_series(res_url, alice, s["id"], {"start_time": f"{first.isoformat()}T08:00:00Z",
                                             "end_time": f"{first.isoformat()}T09:00:00Z"})
    assert r.status_code == 200, r.text
    got = by_id(r.json())
    assert got[moved["id"]]["start_time"] == f"{d1.isoformat()}T08:00:00Z"
    assert res_db_query(stack.pg, "SELECT exception FROM reservations WHERE id = %s",
                        moved["id"]) == [(False,)]


def test_a_rule_change_keeps_an_exceptions_times(stack, res_url, alice, room):
    first = ahead(4)
    s = daily(res_url, alice, room["id"], first, 3)
    moved = s["occurrences"][2]
    d2 = first + datetime.timedelta(days=2)
    r = requests.put(f"{res_url}/reservations/{moved['id']}", headers=alice, timeout=10,
                     json={"start_time": f"{d2.isoformat()}T13:00:00Z",
                           "end_time": f"{d2.isoformat()}T14:00:00Z"})
    assert r.status_code == 200, r.text
    r = put_series(res_url, alice, s["id"], {"recurrence": "FREQ=DAILY;COUNT=4"})
    assert r.status_code == 200, r.text
    got = by_id(r.json())
    assert got[moved["id"]]["start_time"] == f"{d2.isoformat()}T13:00:00Z"
    assert len(confirmed(r.json())) == 4


def shift_into_past(stack, sid, days):
    """Moves a series and its occurrences days earlier (the API refuses the past)."""
    res_db_query(stack.pg, "UPDATE reservation_series SET first_start = first_start - "
                           "make_interval(days => %s) WHERE id = %s", days, sid)
    # Earliest first, one row at a time: the exclusion constraint is checked row by row, and
    # one UPDATE of them all, in whatever order it meets the rows, may move a later one onto an
    # earlier one that has not moved yet.
    for (rid,) in res_db_query(stack.pg, "SELECT id FROM reservations WHERE series_id = %s "
                                         "ORDER BY start_time", sid):
        res_db_query(stack.pg, "UPDATE reservations SET start_time = start_time - "
                               "make_interval(days => %s), end_time = end_time - "
                               "make_interval(days => %s), occurrence_start = occurrence_start - "
                               "make_interval(days => %s) WHERE id = %s",
                     days, days, days, rid)


def test_past_occurrences_never_change_and_count_still_counts_them(stack, res_url, alice, room):
    # Every other day from day 3, five of them, moved 6 days back: days -3, -1 (past), 1, 3, 5.
    s = series_made(res_url, alice, room["id"], f"{ahead(3).isoformat()}T10:00:00Z",
                    f"{ahead(3).isoformat()}T11:00:00Z", "FREQ=DAILY;INTERVAL=2;COUNT=5")
    shift_into_past(stack, s["id"], 6)
    before = by_id(series_of(res_url, alice, s["id"]))
    past = [o for o in before.values() if o["start_time"] < ahead(0).isoformat()]
    assert len(past) == 2
    r = put_series(res_url, alice, s["id"],
                   {"recurrence": "FREQ=DAILY;INTERVAL=2;COUNT=6", "purpose": "later"})
    assert r.status_code == 200, r.text
    got = r.json()
    for o in past:
        assert by_id(got)[o["id"]] == o
    # COUNT counts from the series' first start: the two past dates are two of the six.
    starts = [o["occurrence_start"] for o in confirmed(got)]
    assert starts == [local(ahead(d)) for d in (-3, -1, 1, 3, 5, 7)]
    assert [o["purpose"] for o in confirmed(got)] == ["", "", "later", "later", "later", "later"]
    # New times re-anchor the rule at their date and it keeps its COUNT: the rule's dates
    # before the new anchor (-3, -1, 1) are three of the six; the past stays as it was.
    r = put_series(res_url, alice, s["id"], {"start_time": f"{ahead(2).isoformat()}T12:00:00Z",
                                             "end_time": f"{ahead(2).isoformat()}T13:00:00Z"})
    assert r.status_code == 200, r.text
    got = r.json()
    for o in past:
        assert by_id(got)[o["id"]] == o
    assert got["rrule"] == "FREQ=DAILY;INTERVAL=2;COUNT=3"
    assert got["first_start"] == local(ahead(2), 12)
    assert [o["occurrence_start"] for o in confirmed(got) if o["id"] not in before] == [
        local(ahead(d), 12) for d in (2, 4, 6)]
    assert {o["cancel_reason"] for o in got["occurrences"]
            if o["status"] == "cancelled"} == {"series_changed"}


def test_if_match_versions_and_refusals(stack, res_url, alice, bob, root, room):
    first = ahead(5)
    s = daily(res_url, alice, room["id"], first, 2)
    sid = s["id"]
    assert_error(put_series(res_url, alice, sid, {"purpose": "x"}, **{"If-Match": '"9"'}),
                 412, "precondition_failed")
    r = put_series(res_url, alice, sid, {"purpose": "x"}, **{"If-Match": '"1"'})
    assert r.status_code == 200 and r.headers["ETag"] == '"2"', r.text
    assert_error(put_series(res_url, alice, sid, {"purpose": "y"}, **{"If-Match": '"1"'}),
                 412, "precondition_failed")
    assert_error(put_series(res_url, bob, sid, {"purpose": "y"}), 403, "forbidden")
    assert put_series(res_url, root, sid, {"purpose": "by admin"}).status_code == 200
    assert_error(put_series(res_url, alice, 999999999, {"purpose": "y"}), 404, "not_found")
    assert_error(put_series(res_url, alice, sid, {}), 422, "validation_failed", detail="body")
    assert_error(put_series(res_url, alice, sid, {"on_conflict": "skip"}), 422,
                 "validation_failed", detail="body")
    assert_error(put_series(res_url, alice, sid, {"purpose": "y", "colour": "red"}), 422,
                 "validation_failed", detail="colour")
    assert_error(put_series(res_url, alice, sid,
                            {"start_time": f"{first.isoformat()}T12:00:00Z"}),
                 422, "validation_failed", detail="end_time")
    assert_error(put_series(res_url, alice, sid, {"purpose": "y", "on_conflict": "maybe"}), 422,
                 "validation_failed", detail="on_conflict")
    assert_error(put_series(res_url, alice, sid, {"recurrence": "FREQ=YEARLY;COUNT=2"}), 422,
                 "validation_failed", detail="recurrence")
    assert_error(put_series(res_url, alice, sid, {"room_id": 999999999}), 422,
                 "validation_failed", detail="room_id")
    past = ahead(-2)
    assert_error(put_series(res_url, alice, sid, {"start_time": f"{past.isoformat()}T12:00:00Z",
                                                  "end_time": f"{past.isoformat()}T13:00:00Z"}),
                 422, "validation_failed", detail="start_time")
    # A series cancelled is no longer changed.
    assert requests.delete(f"{res_url}/reservations/series/{sid}", headers=alice,
                           timeout=10).status_code == 204
    assert_error(put_series(res_url, alice, sid, {"purpose": "z"}), 409, "conflict")
    assert series_of(res_url, alice, sid)["purpose"] == "by admin"


def test_fail_changes_nothing_and_skip_cancels_the_taken_dates(stack, res_url, alice, bob, room):
    first = ahead(6)
    s = daily(res_url, alice, room["id"], first, 4)
    d2 = first + datetime.timedelta(days=2)
    held = booked(res_url, bob, room["id"], f"{d2.isoformat()}T11:30:00Z",
                  f"{d2.isoformat()}T12:30:00Z")
    move = {"start_time": f"{first.isoformat()}T11:00:00Z",
            "end_time": f"{first.isoformat()}T12:00:00Z"}
    r = put_series(res_url, alice, s["id"], move)
    assert_error(r, 409, "conflict")
    details = r.json()["details"]
    assert details["occurrences"] == [{
        "occurrence_start": local(d2, 11), "start_time": f"{d2.isoformat()}T11:00:00Z",
        "end_time": f"{d2.isoformat()}T12:00:00Z",
        "conflicts": [{"start_time": held["start_time"], "end_time": held["end_time"]}]}]
    assert details["conflicts"] == [{"start_time": held["start_time"],
                                     "end_time": held["end_time"]}]
    unchanged = series_of(res_url, alice, s["id"])
    assert unchanged["version"] == 1
    assert unchanged["occurrences"] == s["occurrences"]

    r = put_series(res_url, alice, s["id"], move | {"on_conflict": "skip"})
    assert r.status_code == 200, r.text
    got = r.json()
    assert got["skipped"] == details["occurrences"]
    occ = by_id(got)
    taken = s["occurrences"][2]["id"]
    assert occ[taken]["status"] == "cancelled" and occ[taken]["cancel_reason"] == "series_changed"
    assert [o["start_time"] for o in confirmed(got)] == [
        f"{(first + datetime.timedelta(days=i)).isoformat()}T11:00:00Z" for i in (0, 1, 3)]
    assert overlapping_confirmed_pairs(stack.pg) == []


def test_room_change_moves_the_occurrences(stack, res_url, alice, bob, pool):
    a, b = pool.take(), pool.take()
    first = ahead(7)
    s = daily(res_url, alice, a["id"], first, 3)
    d1 = first + datetime.timedelta(days=1)
    booked(res_url, bob, b["id"], f"{d1.isoformat()}T10:30:00Z", f"{d1.isoformat()}T11:30:00Z")
    assert_error(put_series(res_url, alice, s["id"], {"room_id": b["id"]}), 409, "conflict")
    r = put_series(res_url, alice, s["id"], {"room_id": b["id"], "on_conflict": "skip"})
    assert r.status_code == 200, r.text
    got = r.json()
    assert got["room_id"] == b["id"]
    assert [o["occurrence_start"] for o in got["skipped"]] == [local(d1)]
    assert [(o["id"], o["room_id"]) for o in confirmed(got)] == [
        (s["occurrences"][i]["id"], b["id"]) for i in (0, 2)]
    # Room a is free again at those times.
    assert res_db_query(stack.pg, "SELECT count(*) FROM reservations WHERE room_id = %s "
                                  "AND status = 'confirmed'", a["id"]) == [(0,)]


# ---- scope=this_and_following ----

def test_scope_is_checked(res_url, alice, bob, room):
    s = daily(res_url, alice, room["id"], ahead(8), 2)
    rid = s["occurrences"][0]["id"]
    for method, body in (("put", {"purpose": "x"}), ("delete", None)):
        r = requests.request(method, f"{res_url}/reservations/{rid}", headers=alice, timeout=10,
                             params={"scope": "everything"}, json=body)
        assert_error(r, 400, "bad_request", detail="scope")
    single = booked(res_url, alice, room["id"], f"{ahead(20).isoformat()}T10:00:00Z",
                    f"{ahead(20).isoformat()}T11:00:00Z")
    assert_error(put_following(res_url, alice, single["id"], {"purpose": "x"}), 422,
                 "validation_failed", detail="scope")
    assert_error(delete_following(res_url, alice, single["id"]), 422, "validation_failed",
                 detail="scope")
    # Only the owner or an admin splits or cuts a series.
    assert_error(put_following(res_url, bob, rid, {"purpose": "x"}), 403, "forbidden")
    assert_error(delete_following(res_url, bob, rid), 403, "forbidden")
    assert_error(put_following(res_url, alice, 999999999, {"purpose": "x"}), 404, "not_found")
    assert_error(delete_following(res_url, alice, 999999999), 404, "not_found")
    assert_error(put_following(res_url, alice, rid, {}), 422, "validation_failed", detail="body")
    # scope=this is the default behaviour.
    r = requests.delete(f"{res_url}/reservations/{rid}", params={"scope": "this"}, headers=alice,
                        timeout=10)
    assert r.status_code == 204
    assert series_of(res_url, alice, s["id"])["version"] == 1


def test_delete_following_cuts_the_series(stack, res_url, alice, root, room):
    first = ahead(5)
    s = daily(res_url, alice, room["id"], first, 5)
    occ = s["occurrences"]
    assert_error(delete_following(res_url, alice, occ[2]["id"], **{"If-Match": '"5"'}), 412,
                 "precondition_failed")
    r = delete_following(res_url, alice, occ[2]["id"], **{"If-Match": '"1"'})
    assert r.status_code == 204, r.text
    got = series_of(res_url, alice, s["id"])
    assert got["status"] == "active" and got["version"] == 2
    assert got["until_time"] == occ[2]["start_time"]
    assert [(o["status"], o["cancel_reason"]) for o in got["occurrences"]] == [
        ("confirmed", None)] * 2 + [("cancelled", "cancelled_by_user")] * 3
    drained(stack)
    ev = [e for e in series_events(stack, [f"series-{s['id']}"])
          if e["event_type"] == "reservation_series_updated"]
    assert len(ev) == 1 and ev[0]["occurrence_ids"] == [occ[0]["id"], occ[1]["id"]]
    assert ev[0]["series"]["until_time"] == occ[2]["start_time"] and ev[0]["version"] == 2
    # Cut at the first: nothing is left to come, and the series ends (an admin's cut).
    assert delete_following(res_url, root, occ[0]["id"]).status_code == 204
    got = series_of(res_url, alice, s["id"])
    assert got["status"] == "cancelled" and got["cancel_reason"] == "cancelled_by_admin"
    assert got["until_time"] == occ[0]["start_time"]
    assert {o["status"] for o in got["occurrences"]} == {"cancelled"}
    drained(stack)
    ev = [e for e in series_events(stack, [f"series-{s['id']}"])
          if e["event_type"] == "reservation_series_cancelled"]
    assert len(ev) == 1 and ev[0]["occurrence_ids"] == []


def test_split_and_cut_refuse_an_occurrence_that_has_begun(stack, res_url, alice, room):
    s = daily(res_url, alice, room["id"], ahead(5), 3)
    rid = s["occurrences"][0]["id"]
    res_db_query(stack.pg, "UPDATE reservations SET start_time = now() - interval '1 hour', "
                           "end_time = now() + interval '1 hour', occurrence_start = "
                           "(now() - interval '1 hour') AT TIME ZONE 'UTC' WHERE id = %s", rid)
    r = delete_following(res_url, alice, rid)
    assert_error(r, 409, "conflict")
    assert "begun" in r.json()["message"]
    assert_error(put_following(res_url, alice, rid, {"purpose": "x"}), 409, "conflict")
    assert series_of(res_url, alice, s["id"])["version"] == 1


def test_put_following_splits_the_series(stack, res_url, alice, berlin):
    first = ahead(3)
    rule = f"FREQ=WEEKLY;BYDAY={DAYS[first.weekday()]};COUNT=6"
    s = series_made(res_url, alice, berlin["id"], local(first), local(first, 11), rule,
                    purpose="Team")
    occ = s["occurrences"]
    d2 = first + datetime.timedelta(weeks=2)
    r = put_following(res_url, alice, occ[2]["id"],
                      {"start_time": local(d2, 15), "end_time": local(d2, 16),
                       "purpose": "Team, later"})
    assert r.status_code == 200, r.text
    new = r.json()
    assert new["id"] != s["id"] and new["parent_id"] == s["id"]
    assert r.headers["ETag"] == '"1"' and new["version"] == 1
    assert new["first_start"] == local(d2, 15) and new["duration_seconds"] == 3600
    # Two of the six were before the split: four are left.
    assert new["rrule"] == f"FREQ=WEEKLY;BYDAY={DAYS[first.weekday()]};COUNT=4"
    assert new["purpose"] == "Team, later" and new["until_time"] is None
    assert [o["id"] for o in new["occurrences"]] == [o["id"] for o in occ[2:]]
    for i, o in enumerate(new["occurrences"]):
        d = d2 + datetime.timedelta(weeks=i)
        assert o["series_id"] == new["id"] and o["occurrence_start"] == local(d, 15)
        assert o["start_time"] == utc_of(d, 15, BERLIN) and o["purpose"] == "Team, later"
    assert series_of(res_url, alice, new["id"]) == {k: v for k, v in new.items()
                                                    if k != "skipped"}
    old = series_of(res_url, alice, s["id"])
    assert old["status"] == "active" and old["version"] == 2
    assert old["until_time"] == occ[2]["start_time"] and old["rrule"] == rule
    assert old["occurrences"] == occ[:2]

    drained(stack)
    events = series_events(stack, [f"series-{s['id']}", f"series-{new['id']}"]
                           + [o["id"] for o in occ])
    kinds = [(e["event_type"], e.get("series", {}).get("id")) for e in events
             if e["event_type"].startswith("reservation_series")]
    assert ("reservation_series_updated", s["id"]) in kinds
    assert ("reservation_series_created", new["id"]) in kinds
    upd = next(e for e in events if e["event_type"] == "reservation_series_updated")
    assert upd["occurrence_ids"] == [occ[0]["id"], occ[1]["id"]]
    made = next(e for e in events if e["event_type"] == "reservation_series_created"
                and e["series"]["id"] == new["id"])
    assert made["occurrence_ids"] == [o["id"] for o in occ[2:]]
    moved = [e["reservation"] for e in events if e["event_type"] == "reservation_updated"]
    assert sorted(m["id"] for m in moved) == [o["id"] for o in occ[2:]]
    assert {m["series_id"] for m in moved} == {new["id"]}


def test_split_counts_the_rules_dates_not_the_rows(stack, res_url, alice, room):
    first = ahead(4)
    ex = first + datetime.timedelta(days=1)
    s = series_made(res_url, alice, room["id"], f"{first.isoformat()}T09:00:00Z",
                    f"{first.isoformat()}T10:00:00Z",
                    {"freq": "DAILY", "count": 6, "exdate": [ex.isoformat(),
                                                             ahead(9).isoformat()]})
    occ = s["occurrences"]
    assert len(occ) == 4    # days 0, 2, 3, 4 (1 and 5 excluded)
    # Days 0, 1 (excluded) and 2 come before the split at day 3: three of the six.
    r = put_following(res_url, alice, occ[2]["id"], {"purpose": "second half"})
    assert r.status_code == 200, r.text
    new = r.json()
    assert new["rrule"] == "FREQ=DAILY;COUNT=3"
    assert new["exdates"] == [ahead(9).isoformat()]
    assert new["first_start"] == local(first + datetime.timedelta(days=3), 9)
    assert [o["id"] for o in new["occurrences"]] == [occ[2]["id"], occ[3]["id"]]
    assert [o["start_time"] for o in new["occurrences"]] == [o["start_time"] for o in occ[2:]]
    assert {o["purpose"] for o in new["occurrences"]} == {"second half"}
    assert [o["id"] for o in series_of(res_url, alice, s["id"])["occurrences"]] == [
        occ[0]["id"], occ[1]["id"]]
    # The new series is changed like any other; its parent keeps its part.
    r = put_series(res_url, alice, new["id"], {"start_time": local(ahead(7), 12),
                                               "end_time": local(ahead(7), 13)})
    assert r.status_code == 200, r.text
    assert [o["occurrence_start"] for o in confirmed(r.json())] == [local(ahead(7), 12),
                                                                     local(ahead(8), 12)]


def test_series_change_events(stack, res_url, alice, room):
    first = ahead(6)
    s = daily(res_url, alice, room["id"], first, 3)
    ids = [o["id"] for o in s["occurrences"]]
    r = put_series(res_url, alice, s["id"], {"recurrence": "FREQ=DAILY;INTERVAL=2;COUNT=2",
                                             "purpose": "evt"})
    assert r.status_code == 200, r.text
    got = r.json()
    added = [o["id"] for o in confirmed(got) if o["id"] not in ids]
    assert added == []
    drained(stack)
    events = series_events(stack, ids + [f"series-{s['id']}"])
    upd = [e for e in events if e["event_type"] == "reservation_series_updated"]
    assert len(upd) == 1 and upd[0]["version"] == 2
    assert upd[0]["occurrence_ids"] == [ids[0], ids[2]]
    assert upd[0]["series"]["purpose"] == "evt"
    assert upd[0]["series"]["rrule"] == "FREQ=DAILY;INTERVAL=2;COUNT=2"
    kinds = sorted((e["event_type"], e["reservation"]["id"]) for e in events
                   if "reservation" in e)
    assert kinds == sorted([("reservation_created", i) for i in ids]
                           + [("reservation_updated", ids[0]), ("reservation_updated", ids[2]),
                              ("reservation_cancelled", ids[1])])
    cancelled = next(e for e in events if e["event_type"] == "reservation_cancelled")
    assert cancelled["reservation"]["cancel_reason"] == "series_changed"


# ---- the race ----

@pytest.fixture(scope="module")
def racers(stack):
    tag = uuid.uuid4().hex[:8]
    return [bearer(operator_token(stack.user, f"edit-racer{i}-{tag}@example.com")[0])
            for i in range(10)]


@pytest.mark.parametrize("on_conflict", ["fail", "skip"])
def test_race_series_change_against_single_bookings_leaves_no_overlap(stack, res_url, alice,
                                                                      racers, pool,
                                                                      on_conflict):
    room = pool.take()
    first = ahead(2)
    days = [first + datetime.timedelta(days=i) for i in range(30)]
    s = daily(res_url, alice, room["id"], first, 30, hour=7)
    singles = []
    for i in range(120):
        d = days[(i * 7) % 30]
        minute = (0, 20, 40)[i % 3]
        singles.append({"room_id": room["id"],
                        "start_time": f"{d.isoformat()}T10:{minute:02d}:00Z",
                        "end_time": f"{d.isoformat()}T11:{minute:02d}:00Z"})
    change = {"start_time": f"{first.isoformat()}T10:00:00Z",
              "end_time": f"{first.isoformat()}T11:00:00Z", "on_conflict": on_conflict}
    jobs = [("post", racers[i % len(racers)], b) for i, b in enumerate(singles)]
    jobs.insert(8, ("put", alice, change))
    local_state = threading.local()

    def one(job):
        kind, headers, body = job
        if not hasattr(local_state, "s"):
            local_state.s = requests.Session()
            local_state.s.headers.update({"Connection": "close"})
        if kind == "put":
            r = local_state.s.put(f"{res_url}/reservations/series/{s['id']}", json=body,
                                  headers=headers, timeout=60)
        else:
            r = local_state.s.post(f"{res_url}/reservations", json=body, headers=headers,
                                   timeout=60)
        return r.status_code, r.json()

    with ThreadPoolExecutor(max_workers=40) as ex:
        results = list(ex.map(one, jobs))
    put_status, put_answer = results.pop(8)
    assert {st for st, _ in results} <= {201, 409}
    assert put_status in (200, 409), put_answer
    assert overlapping_confirmed_pairs(stack.pg) == []
    won = [b for st, b in results if st == 201]
    now = series_of(res_url, alice, s["id"])
    if put_status == 200:
        moved = confirmed(put_answer)
        if on_conflict == "fail":
            assert len(moved) == 30
        else:
            assert len(moved) + len(put_answer["skipped"]) == 30
        assert all(o["start_time"].endswith("T10:00:00Z") for o in moved)
    else:
        assert put_answer["code"] == "conflict"
        assert now["version"] == 1 and len(confirmed(now)) == 30
    rows = res_db_query(stack.pg, "SELECT count(*) FROM reservations WHERE room_id = %s "
                                  "AND status = 'confirmed'", room["id"])[0][0]
    assert rows == len(won) + len(confirmed(now))
    print(f"race ({on_conflict}): series change {put_status}, {len(won)} single(s) booked")


# ---- review 13b: concurrency, splits, cuts ----

def without_skipped(series):
    return {k: v for k, v in series.items() if k != "skipped"}


def held(stack, sql, *args):
    """A transaction of the test's own on reservation_db that ran sql and stays open (the
    caller commits or rolls back): a single writer caught in the middle of its work."""
    conn = psycopg2.connect(stack.pg.dsn("reservation_db"))
    cur = conn.cursor()
    cur.execute(sql, args)
    return conn


def in_thread(fn):
    out = {}
    t = threading.Thread(target=lambda: out.setdefault("r", fn()))
    t.start()
    return t, out


def test_series_change_waits_for_a_single_cancel_and_keeps_it(stack, res_url, alice, pool):
    room = pool.take()
    s = daily(res_url, alice, room["id"], ahead(40), 3)
    o1 = s["occurrences"][1]
    # DELETE /reservations/{o1} as res_repo_cancel writes it, not yet committed.
    conn = held(stack, "UPDATE reservations SET status = 'cancelled', cancel_reason = "
                       "'cancelled_by_user', updated_at = now(), version = version + 1 "
                       "WHERE id = %s", o1["id"])
    t, out = in_thread(lambda: put_series(res_url, alice, s["id"],
                                          {"recurrence": "FREQ=DAILY;INTERVAL=2;COUNT=2"}))
    t.join(1.5)
    assert t.is_alive(), "the series change did not wait for the occurrence's writer"
    conn.commit()
    conn.close()
    t.join()
    assert out["r"].status_code == 200, out["r"].text
    o = by_id(out["r"].json())[o1["id"]]
    # The user's cancellation stands: its reason, its version, and no second event.
    assert (o["status"], o["cancel_reason"], o["version"]) == ("cancelled", "cancelled_by_user", 2)
    drained(stack)
    assert [e["event_type"] for e in series_events(stack, [o1["id"]])] == ["reservation_created"]
    # A rule that yields the date again does not bring the cancelled occurrence back.
    r = put_series(res_url, alice, s["id"], {"recurrence": "FREQ=DAILY;COUNT=3"})
    assert r.status_code == 200, r.text
    assert [(o["occurrence_start"], o["status"]) for o in r.json()["occurrences"]] == [
        (local(ahead(40)), "confirmed"), (local(ahead(41)), "cancelled"),
        (local(ahead(42)), "confirmed")]


def test_series_change_waits_for_a_single_change_and_keeps_the_exception(stack, res_url, alice,
                                                                         pool):
    room = pool.take()
    s = daily(res_url, alice, room["id"], ahead(44), 3)
    o1 = s["occurrences"][1]
    d = ahead(45).isoformat()
    # PUT /reservations/{o1} to 15:00 as res_change writes it (an exception), not yet committed.
    conn = held(stack, "UPDATE reservations SET start_time = %s, end_time = %s, exception = true, "
                       "updated_at = now(), version = version + 1 WHERE id = %s",
                f"{d}T15:00:00Z", f"{d}T16:00:00Z", o1["id"])
    t, out = in_thread(lambda: put_series(res_url, alice, s["id"],
                                          {"recurrence": "FREQ=DAILY;COUNT=4"}))
    t.join(1.5)
    assert t.is_alive()
    conn.commit()
    conn.close()
    t.join()
    assert out["r"].status_code == 200, out["r"].text
    got = out["r"].json()
    o = by_id(got)[o1["id"]]
    # A rule change leaves an exception's times alone (docs/api.md#changing-a-series).
    assert (o["status"], o["start_time"], o["version"]) == ("confirmed", f"{d}T15:00:00Z", 2)
    assert len(confirmed(got)) == 4


def test_rule_change_keeps_a_postponed_exception_whose_date_has_passed(stack, res_url, alice,
                                                                      pool):
    room = pool.take()
    s = daily(res_url, alice, room["id"], ahead(4), 5)
    shift_into_past(stack, s["id"], 5)   # days -1, 0, 1, 2, 3 at 10:00Z
    ex = s["occurrences"][0]["id"]
    d1 = ahead(1).isoformat()
    # Day -1's meeting was postponed to day 1 at 15:00 (an exception).
    res_db_query(stack.pg, "UPDATE reservations SET start_time = %s, end_time = %s, "
                           "exception = true WHERE id = %s",
                 f"{d1}T15:00:00Z", f"{d1}T16:00:00Z", ex)
    r = put_series(res_url, alice, s["id"], {"recurrence": "FREQ=DAILY;COUNT=6"})
    assert r.status_code == 200, r.text
    o = by_id(r.json())[ex]
    assert (o["status"], o["start_time"]) == ("confirmed", f"{d1}T15:00:00Z")
    assert [c["occurrence_start"][:10] for c in confirmed(r.json())] == [
        ahead(d).isoformat() for d in (-1, 0, 1, 2, 3, 4)]


def test_split_with_a_start_before_the_split_date_is_422(res_url, alice, pool):
    room = pool.take()
    first = ahead(50)
    rule = f"FREQ=WEEKLY;BYDAY={DAYS[first.weekday()]};COUNT=5"
    s = series_made(res_url, alice, room["id"], f"{first.isoformat()}T10:00:00Z",
                    f"{first.isoformat()}T11:00:00Z", rule)
    occ = s["occurrences"]
    day = first + datetime.timedelta(days=1)
    r = put_following(res_url, alice, occ[3]["id"], {"start_time": f"{day.isoformat()}T14:00:00Z",
                                                     "end_time": f"{day.isoformat()}T15:00:00Z"})
    assert_error(r, 422, "validation_failed", detail="start_time")
    assert occ[3]["occurrence_start"][:10] in r.json()["details"]["start_time"]
    assert series_of(res_url, alice, s["id"]) == without_skipped(s)
    # The split date itself, at another time, is fine.
    split_day = datetime.date.fromisoformat(occ[3]["occurrence_start"][:10])
    r = put_following(res_url, alice, occ[3]["id"],
                      {"start_time": f"{split_day.isoformat()}T14:00:00Z",
                       "end_time": f"{split_day.isoformat()}T15:00:00Z"})
    assert r.status_code == 200, r.text
    assert [o["start_time"][11:16] for o in confirmed(r.json())] == ["14:00", "14:00"]
    assert [o["start_time"][11:16] for o in confirmed(series_of(res_url, alice, s["id"]))] == [
        "10:00"] * 3


def series_split_from(stack, sid):
    return res_db_query(stack.pg, "SELECT id FROM reservation_series WHERE parent_id = %s "
                                  "ORDER BY id", sid)


def test_a_retried_split_answers_the_same_series(stack, res_url, alice, pool):
    room = pool.take()
    s = daily(res_url, alice, room["id"], ahead(5), 4)
    occ = s["occurrences"]
    r1 = put_following(res_url, alice, occ[2]["id"], {"purpose": "x"})
    assert r1.status_code == 200, r1.text
    r2 = put_following(res_url, alice, occ[2]["id"], {"purpose": "x"})
    assert r2.status_code == 200, r2.text
    child = r1.json()
    assert r2.json()["id"] == child["id"] and r2.json()["parent_id"] == s["id"]
    assert [o["id"] for o in confirmed(r2.json())] == [occ[2]["id"], occ[3]["id"]]
    assert series_split_from(stack, s["id"]) == [(child["id"],)]
    assert series_split_from(stack, child["id"]) == []
    old = series_of(res_url, alice, s["id"])
    assert old["version"] == 2 and [o["id"] for o in old["occurrences"]] == [occ[0]["id"],
                                                                             occ[1]["id"]]
    # With If-Match of the occurrence as first read, a retry is 412 (the split changed it).
    r3 = put_following(res_url, alice, occ[2]["id"], {"purpose": "x"},
                       **{"If-Match": f'"{occ[2]["version"]}"'})
    assert_error(r3, 412, "precondition_failed")


def test_split_at_the_first_occurrence_changes_the_whole_series(stack, res_url, alice, pool):
    room = pool.take()
    s = daily(res_url, alice, room["id"], ahead(12), 3)
    occ = s["occurrences"]
    r = put_following(res_url, alice, occ[0]["id"], {"purpose": "y"})
    assert r.status_code == 200, r.text
    got = r.json()
    assert got["id"] == s["id"] and got["status"] == "active" and got["version"] == 2
    assert got["until_time"] is None and got["purpose"] == "y"
    assert [(o["id"], o["purpose"]) for o in confirmed(got)] == [(o["id"], "y") for o in occ]
    assert series_split_from(stack, s["id"]) == []
    drained(stack)
    kinds = [e["event_type"] for e in series_events(stack, [f"series-{s['id']}"])]
    assert kinds == ["reservation_series_created", "reservation_series_updated"]
    # The first confirmed one after an occurrence cancelled on its own is a first too.
    s2 = daily(res_url, alice, room["id"], ahead(16), 3)
    o2 = s2["occurrences"]
    assert requests.delete(f"{res_url}/reservations/{o2[0]['id']}", headers=alice,
                           timeout=10).status_code == 204
    r = put_following(res_url, alice, o2[1]["id"], {"purpose": "z"})
    assert r.status_code == 200, r.text
    assert r.json()["id"] == s2["id"]
    assert [(o["id"], o["status"], o["purpose"]) for o in r.json()["occurrences"]] == [
        (o2[0]["id"], "cancelled", ""), (o2[1]["id"], "confirmed", "z"),
        (o2[2]["id"], "confirmed", "z")]


def test_a_split_series_splits_again(stack, res_url, alice, pool):
    room = pool.take()
    s = daily(res_url, alice, room["id"], ahead(20), 6)
    occ = s["occurrences"]
    child = put_following(res_url, alice, occ[2]["id"], {"purpose": "b"}).json()
    r = put_following(res_url, alice, occ[4]["id"], {"purpose": "c"})
    assert r.status_code == 200, r.text
    grand = r.json()
    assert grand["parent_id"] == child["id"] and grand["rrule"] == "FREQ=DAILY;COUNT=2"
    assert [o["id"] for o in grand["occurrences"]] == [occ[4]["id"], occ[5]["id"]]
    mid = series_of(res_url, alice, child["id"])
    assert mid["until_time"] == occ[4]["start_time"]
    assert [(o["id"], o["purpose"]) for o in mid["occurrences"]] == [
        (occ[2]["id"], "b"), (occ[3]["id"], "b")]


def test_delete_following_at_a_cancelled_occurrence_cuts_once(stack, res_url, alice, pool):
    room = pool.take()
    s = daily(res_url, alice, room["id"], ahead(25), 4)
    occ = s["occurrences"]
    assert requests.delete(f"{res_url}/reservations/{occ[1]['id']}", headers=alice,
                           timeout=10).status_code == 204
    assert delete_following(res_url, alice, occ[1]["id"]).status_code == 204
    got = series_of(res_url, alice, s["id"])
    assert got["until_time"] == occ[1]["start_time"] and got["version"] == 2
    assert [o["status"] for o in got["occurrences"]] == ["confirmed"] + ["cancelled"] * 3
    # A retry is 204 and writes nothing.
    assert delete_following(res_url, alice, occ[1]["id"]).status_code == 204
    assert series_of(res_url, alice, s["id"]) == got


@pytest.mark.parametrize("hours", [(0, 23), (23, 0)])
def test_occurrences_crossing_midnight_move_without_tripping_the_constraint(res_url, alice,
                                                                           pool, hours):
    room = pool.take()
    first = ahead(60)
    nxt = first + datetime.timedelta(days=1)
    old, new = hours

    def span(h):
        return (f"{first.isoformat()}T{h:02d}:30:00Z",
                f"{(nxt if h == 23 else first).isoformat()}T{(h + 2) % 24:02d}:30:00Z")

    s = series_made(res_url, alice, room["id"], *span(old), "FREQ=DAILY;COUNT=5")
    # Each occurrence's new slot overlaps the old slot of its neighbour.
    start, end = span(new)
    r = put_series(res_url, alice, s["id"], {"start_time": start, "end_time": end})
    assert r.status_code == 200, r.text
    assert [o["id"] for o in confirmed(r.json())] == [o["id"] for o in s["occurrences"]]
    assert {o["start_time"][11:16] for o in confirmed(r.json())} == {f"{new:02d}:30"}


def test_room_change_to_another_zone_keeps_the_local_time(res_url, alice, pool):
    utc_room, berlin_room = pool.take(), pool.take(time_zone=BERLIN)
    first = ahead(30)
    s = daily(res_url, alice, utc_room["id"], first, 3)
    r = put_series(res_url, alice, s["id"], {"room_id": berlin_room["id"]})
    assert r.status_code == 200, r.text
    got = r.json()
    assert got["time_zone"] == BERLIN and got["room_id"] == berlin_room["id"]
    assert [(o["id"], o["start_time"]) for o in confirmed(got)] == [
        (o["id"], utc_of(first + datetime.timedelta(days=i), 10, BERLIN))
        for i, o in enumerate(s["occurrences"])]


def test_room_change_to_an_inactive_or_deleted_room_is_422(res_url, room_url, admin_headers,
                                                           alice, pool):
    a, inactive, gone = pool.take(), pool.take(), pool.take()
    s = daily(res_url, alice, a["id"], ahead(33), 2)
    r = requests.put(f"{room_url}/rooms/{inactive['id']}", json={"active": False},
                     headers=admin_headers, timeout=10)
    assert r.status_code == 200, r.text
    wait_room_state(res_url, alice, inactive["id"], inactive=True)
    assert_error(put_series(res_url, alice, s["id"], {"room_id": inactive["id"]}), 422,
                 "validation_failed", detail="room_id")
    r = requests.delete(f"{room_url}/rooms/{gone['id']}", headers=admin_headers, timeout=10)
    assert r.status_code == 204, r.text
    wait_room_state(res_url, alice, gone["id"], inactive=True)
    assert_error(put_series(res_url, alice, s["id"], {"room_id": gone["id"]}), 422,
                 "validation_failed", detail="room_id")
    assert series_of(res_url, alice, s["id"]) == without_skipped(s)


def test_a_user_deletion_racing_a_series_change_leaves_no_occurrence(stack, user_url, res_url,
                                                                     admin_headers, pool):
    room = pool.take()
    token, uid = operator_token(stack.user, f"h1-{uuid.uuid4().hex[:8]}@example.com")
    h = bearer(token)
    s = daily(res_url, h, room["id"], ahead(62), 2)
    sid = s["id"]
    # The change is held after its inserts (its series event waits), and the user is deleted
    # meanwhile: the consumer must not miss the occurrences the change adds.
    res_db_query(stack.pg, f"""CREATE FUNCTION h1_sleep() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN IF NEW.key = 'series-{sid}' THEN PERFORM pg_sleep(3); END IF; RETURN NEW; END $$""")
    res_db_query(stack.pg, "CREATE TRIGGER h1_sleep BEFORE INSERT ON outbox FOR EACH ROW "
                           "EXECUTE FUNCTION h1_sleep()")
    try:
        t, out = in_thread(lambda: put_series(res_url, h, sid,
                                              {"recurrence": "FREQ=DAILY;COUNT=4"}))
        t.join(1.0)
        assert t.is_alive()
        r = requests.delete(f"{user_url}/admin/users/{uid}", headers=admin_headers, timeout=10)
        assert r.status_code == 204, r.text
        t.join()
        wait_until(lambda: res_db_query(stack.pg, "SELECT status FROM reservation_series "
                                                  "WHERE id = %s", sid) == [("cancelled",)],
                   timeout=30, interval=0.2, what="series cancelled")
    finally:
        res_db_query(stack.pg, "DROP TRIGGER h1_sleep ON outbox")
        res_db_query(stack.pg, "DROP FUNCTION h1_sleep()")
    assert out["r"].status_code in (200, 409), out["r"].text
    rows = res_db_query(stack.pg, "SELECT status FROM reservations WHERE series_id = %s", sid)
    assert rows and {st for (st,) in rows} == {"cancelled"}
