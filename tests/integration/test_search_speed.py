"""Migration 023 (issue 18, bench/README.md#the-room-search-since-issue-15): the room search's
res_in_the_way_scan, without res_busy(), gives the answer of migration 018's res_in_the_way.
(The plan it allows, one index-only scan of the active spans for a search of every room, shows
at the bench's 1,000,000 reservations, not at the suite's few: the bench's room search figures.
What a search answers with buffers: test_res_search.py.)"""
import random

from harness import res_db_query

# Migration 018's res_in_the_way, written out: the ranges it stands for (the function itself
# is compared too).
RANGES_018 = """
    res_busy(rs, re, rb) && res_busy(to_timestamp(s), to_timestamp(e), gap)
    OR tstzrange(rs, re, '[)') && tstzrange(to_timestamp(s - gap), to_timestamp(e + gap), '[)')
"""


def spans(n, seed):
    """n (rs, re, rb, start_s, end_s, gap_s): reservations and requests within a few hours of
    each other, with the buffers' whole range (0..14400 s, a room's and a reservation's), and
    many on a boundary or one second either side of it (an end touching the request's start
    less a buffer, a start touching its end plus the room's buffer)."""
    rnd = random.Random(seed)
    base = 1_800_000_000
    out = []
    for _ in range(n):
        s = base + rnd.randrange(0, 6 * 3600, 300)
        e = s + rnd.choice((900, 1800, 3600, 7200))
        gap = rnd.choice((0, 0, 300, 900, 3600, 14400))
        rb = rnd.choice((0, 0, 300, 900, 3600, 14400))
        kind = rnd.randrange(5)
        if kind == 0:  # ends at the request's start, less one of the buffers, +-1 s
            re = s - rnd.choice((0, rb, gap, max(rb, gap))) + rnd.choice((-1, 0, 0, 1))
            rs = re - rnd.choice((900, 3600))
        elif kind == 1:  # starts at the request's end, plus the room's buffer, +-1 s
            rs = e + rnd.choice((0, gap)) + rnd.choice((-1, 0, 0, 1))
            re = rs + rnd.choice((900, 3600))
        else:
            rs = base + rnd.randrange(-5 * 3600, 11 * 3600, 1)
            re = rs + rnd.choice((1, 60, 900, 3600, 4 * 3600))
        out.append((rs, re, rb, s, e, gap))
    return out


def test_in_the_way_is_018s_answer(stack):
    rows = spans(6000, 23)
    cols = [list(c) for c in zip(*rows, strict=True)]
    [(differ, in_the_way, clear)] = res_db_query(
        stack.pg,
        "SELECT count(*) FILTER (WHERE now_ IS DISTINCT FROM then_ "
        "OR now_ IS DISTINCT FROM fn), "
        "count(*) FILTER (WHERE now_), count(*) FILTER (WHERE NOT now_) "
        "FROM (SELECT res_in_the_way_scan(rs, re, rb, s, e, gap) AS now_, "
        f"({RANGES_018}) AS then_, res_in_the_way(rs, re, rb, s, e, gap) AS fn "
        "FROM (SELECT to_timestamp(a) AS rs, to_timestamp(b) AS re, rb, s, e, gap "
        "FROM unnest(%s::bigint[], %s::bigint[], %s::int[], %s::bigint[], %s::bigint[], "
        "%s::int[]) AS u (a, b, rb, s, e, gap)) x) y", *cols)
    assert differ == 0
    # Both answers are common, so a definition that always said one of them would fail.
    assert in_the_way > 1000 and clear > 1000, (in_the_way, clear)

