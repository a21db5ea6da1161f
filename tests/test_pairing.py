"""Paired-station evidence in identify: unambiguous left/right co-occurrences, and new clusters of
one flank joined through the other flank's pattern match."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone


from spotid.catalog import Catalog, now_iso
from spotid.identify.pairing import BurstSpan, join_through_pairs, pair_bursts
from test_identify import _frame, _ident, _sightings
from test_identify_helpers import coat, tint_right, warp

T0 = datetime(2024, 3, 1, 22, 0, tzinfo=timezone(timedelta(hours=10)))


def _s(flank, station, camera, sec, dur=2.0):
    return BurstSpan(flank, station, camera, T0 + timedelta(seconds=sec), T0 + timedelta(seconds=sec + dur))


def test_pair_bursts_only_unambiguous_cooccurrences():
    spans = [
        _s("left", "S1", "A", 0), _s("right", "S1", "B", 1),        # 0-1: a pair
        _s("left", "S1", "A", 100), _s("right", "S1", "A", 100),    # same camera: never
        _s("left", "S2", "A", 0),                                    # other station, no partner
        _s("left", "S1", "A", 300), _s("right", "S1", "B", 315),    # 13 s after the left ends: too late
        _s("left", "S1", "A", 600), _s("right", "S1", "B", 600), _s("right", "S1", "B", 605),  # two animals
        _s("right", "S1", "B", 900), _s("left", "S1", "A", 909),    # 9 s gap (right ends at 902): pairs
        BurstSpan("left", None, "A", None, None),                   # no time or station
    ]
    assert pair_bursts(spans, 10.0) == [(0, 1), (11, 10)]
    assert pair_bursts(spans, 20.0) == [(0, 1), (5, 6), (11, 10)]   # the 13 s pair joins at 20 s
    crowded = BurstSpan("left", "S1", "A", T0, T0 + timedelta(seconds=2), crowded=True)  # two leopards in a frame
    assert pair_bursts([crowded, _s("right", "S1", "B", 1)], 10.0) == []


def test_join_through_pairs_connects_same_flank_clusters_via_the_other_flank():
    # left bursts in one cluster (matched), right bursts in two clusters (not matched); each pair links
    nodes = [("left", 0), ("right", 0), ("left", 0), ("right", 1), ("right", 2), ("known", 7)]
    root = join_through_pairs(nodes, [(0, 1), (2, 3), (5, 4)])
    assert root[("right", 0)] == root[("right", 1)] == root[("left", 0)]
    assert root[("right", 2)] == root[("known", 7)] != root[("right", 0)]


def _burst(cat, folder, dep, t: datetime, animals, n0):
    with cat.transaction():
        iso = t.isoformat()
        seq = cat.execute("INSERT INTO sequences (deployment_id, start, end, n_media) VALUES (?, ?, ?, ?)",
                          (dep, iso, iso, len(animals))).lastrowid
        dets = []
        for k, a in enumerate(animals):
            p = folder / f"{dep}_{n0 + k:04d}.jpg"
            box = _frame(p, a, n0 + k)
            ts = (t + timedelta(seconds=k)).isoformat()
            mid = cat.execute(
                "INSERT INTO media (deployment_id, sha, path, rel_path, kind, timestamp, width, height, size_bytes, "
                "sequence_id, frame_num) VALUES (?, ?, ?, ?, 'image', ?, 640, 480, ?, ?, ?)",
                (dep, f"sha{dep}{n0 + k}", str(p), p.name, ts, p.stat().st_size, seq, k)).lastrowid
            dets.append(cat.execute(
                "INSERT INTO detections (media_id, detector, category, conf, x, y, w, h, label, label_conf, static_fp) "
                "VALUES (?, 'test', 1, 0.9, ?, ?, ?, ?, 'leopard', 0.9, 0)", (mid, *box)).lastrowid)
    return dets


def _paired_world(tmp_path):
    """Animal A passes a paired station twice: its left flank (camera d1) matches across the two
    visits; its right flank (camera d2) is rendered as two unrelated coats, i.e. the verifier cannot
    match them, as with a night photo and a day photo."""
    cat = Catalog(tmp_path / "cat.db")
    with cat.transaction():
        for d in ("d1", "d2"):
            cat.execute("INSERT INTO deployments (id, location_id, created_at) VALUES (?, 'S1', ?)", (d, now_iso()))
    A = coat(31)
    t1, t2 = T0, T0 + timedelta(hours=5)
    ids = {
        "L1": _burst(cat, tmp_path, "d1", t1, [warp(A, 1), warp(A, 2)], 0),
        "R1": _burst(cat, tmp_path, "d2", t1 + timedelta(seconds=1), [warp(tint_right(coat(41)), 3)], 10),
        "L2": _burst(cat, tmp_path, "d1", t2, [warp(A, 4), warp(A, 5)], 20),
        "R2": _burst(cat, tmp_path, "d2", t2 + timedelta(seconds=2), [warp(tint_right(coat(42)), 6)], 30),
    }
    return cat, ids


def test_identify_joins_right_bursts_paired_with_matching_left_bursts(tmp_path):
    cat, ids = _paired_world(tmp_path)
    res = _ident()(cat)
    s = _sightings(cat)
    names = {k: {s[d]["name"] for d in v} for k, v in ids.items()}
    assert names["L1"] == names["L2"] == {"L-0001"}            # matched by pattern
    assert names["R1"] == names["R2"] == {"R-0001"}            # joined through the left match
    assert res.paired_merges == 1 and sorted(res.new_individuals) == ["L-0001", "R-0001"]
    # the why is stored with the proposal and shown on the review page
    note = cat.scalar("SELECT notes FROM individuals WHERE name = 'R-0001'")
    assert "2 groups of right-flank bursts" in note and "d2 2024-03-01T22:00:01+10:00 with d1" in note
    assert cat.scalar("SELECT notes FROM individuals WHERE name = 'L-0001'") is None
    from spotid.review.config import ReviewConfig
    from spotid.review.queue import load_item

    item = load_item(cat, s[ids["R2"][0]]["id"], ReviewConfig())
    assert item.proposed.name == "R-0001" and item.proposed.notes == note
    cat.close()


def test_pairing_off_keeps_unmatched_bursts_apart(tmp_path):
    cat, ids = _paired_world(tmp_path)
    res = _ident(pair_seconds=None)(cat)
    s = _sightings(cat)
    assert {s[d]["name"] for d in ids["R1"]} != {s[d]["name"] for d in ids["R2"]}
    assert res.paired_merges == 0 and sorted(res.new_individuals) == ["L-0001", "R-0001", "R-0002"]
    cat.close()


def test_second_season_right_bursts_join_through_a_known_left_individual(tmp_path):
    """Season 1 proposes L-0001 (animal A's left flank). Season 2: A passes twice; both left bursts
    match L-0001 (a known individual), the two right bursts match nothing, not even each other: they
    become one new right identity, because both were photographed with L-0001."""
    cat, ids = _paired_world(tmp_path)
    _ident()(cat)
    A = coat(31)
    t3 = T0 + timedelta(days=20)
    t4 = t3 + timedelta(hours=6)
    new = {
        "L3": _burst(cat, tmp_path, "d1", t3, [warp(A, 7), warp(A, 8)], 40),
        "R3": _burst(cat, tmp_path, "d2", t3 + timedelta(seconds=1), [warp(tint_right(coat(43)), 9)], 52),
        "L4": _burst(cat, tmp_path, "d1", t4, [warp(A, 10), warp(A, 11)], 60),
        "R4": _burst(cat, tmp_path, "d2", t4 + timedelta(seconds=3), [warp(tint_right(coat(44)), 12)], 72),
    }
    res = _ident()(cat)
    s = _sightings(cat)
    names = {k: {s[d]["name"] for d in v} for k, v in new.items()}
    assert names["L3"] == names["L4"] == {"L-0001"} and res.matched == 4      # known left flank
    assert names["R3"] == names["R4"] == {"R-0002"}                          # one new right identity
    assert res.paired_merges == 1 and res.new_individuals == ["R-0002"]
    cat.close()


def test_burst_span_marks_two_leopards_in_one_frame_as_crowded():
    from types import SimpleNamespace as NS

    from spotid.identify.pairing import burst_span

    t = [(T0 + timedelta(seconds=k)).isoformat() for k in range(3)]
    box = (0.2, 0.3, 0.4, 0.2)
    one = [NS(time=t[0], camera="d1", media_id=1, box=box), NS(time=t[2], camera="d1", media_id=2, box=box)]
    dup = one + [NS(time=t[0], camera="d1", media_id=1, box=(0.25, 0.3, 0.2, 0.2))]  # a part box: 100% inside
    two = one + [NS(time=t[0], camera="d1", media_id=1, box=(0.5, 0.3, 0.4, 0.2))]   # half of it outside
    s = burst_span("left", one, {"d1": "S1"})
    assert (s.station, s.camera, s.start, s.end, s.crowded) == ("S1", "d1", T0, T0 + timedelta(seconds=2), False)
    assert not burst_span("left", dup, {"d1": "S1"}).crowded
    assert burst_span("left", two, {"d1": "S1"}).crowded
