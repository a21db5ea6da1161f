"""Catalog table functions used by export, census and workflow that have logic of their own (optional WHERE
parts, IN-lists, chunked reads, aggregates, an upsert, the labelling decision pick), on a tiny hand-built
catalog; every expectation is counted by hand from the rows in the fixture's docstring."""
from __future__ import annotations

import pytest

from spotid.catalog import Catalog
from spotid.catalog.tables import deployments, detections, individuals, media, reviews, sightings

T = "2024-01-01T00:00:00+00:00"


@pytest.fixture
def cat(tmp_path):
    """Deployments D2 then D1. Media 1 (D1, 2024-03-05), 2 (D1, 2024-03-01), 3 (D2, 2025-07-09), 4 (D2, no time).
    Detector status: media 1, 2 ok, 3 failed. Detections (media, label, static_fp, conf): 1 (1, leopard, 0, 0.5),
    2 (1, leopard, 1, 0.9), 3 (2, leopard, 0, 0.6), 4 (3, other, 0, 0.7), 5 (2, leopard, 0, 0.8), 6 (3, -, 0, 0.3).
    Crops: detection 1 (quality 0.5, a.jpg), 3 (quality 0.9, c.jpg). Individuals 1 L-1 left proposed, 2 R-1
    right confirmed. Sightings (detection, individual, status, probability): 1 (1, 1, pending, -), 2 (2, 1, auto,
    0.9), 3 (3, 2, confirmed, -), 4 (4, -, unusable 'front view', -), 5 (6, 1, pending, 0.4); detection 5 has
    none. Decisions: 1 ann confirm s3; 2 bob unusable s4; 3 ann confirm s2, undone by 4; 4 dan undo s2; 5 cy
    skip s4."""
    with Catalog(tmp_path / "t.db") as c:
        with c.transaction() as conn:
            for dep in ("D2", "D1"):
                conn.execute("INSERT INTO deployments (id, created_at) VALUES (?, ?)", (dep, T))
            for mid, dep, ts in ((1, "D1", "2024-03-05T22:00:00+10:00"), (2, "D1", "2024-03-01T01:00:00+10:00"),
                                 (3, "D2", "2025-07-09T03:00:00+10:00"), (4, "D2", None)):
                conn.execute("INSERT INTO media (id, deployment_id, sha, path, rel_path, kind, timestamp, size_bytes) "
                             "VALUES (?, ?, ?, ?, ?, 'image', ?, 1)", (mid, dep, f"sha{mid}", f"/c/{mid}.jpg",
                                                                       f"{mid}.jpg", ts))
            for mid, failure in ((1, None), (2, None), (3, "corrupt")):
                conn.execute("INSERT INTO detection_status (media_id, detector, failure, processed_at) "
                             "VALUES (?, 'md', ?, ?)", (mid, failure, T))
            for did, mid, label, fp, conf in ((1, 1, "leopard", 0, 0.5), (2, 1, "leopard", 1, 0.9),
                                              (3, 2, "leopard", 0, 0.6), (4, 3, "other", 0, 0.7),
                                              (5, 2, "leopard", 0, 0.8), (6, 3, None, 0, 0.3)):
                conn.execute("INSERT INTO detections (id, media_id, detector, category, conf, x, y, w, h, label, "
                             "static_fp) VALUES (?, ?, 'md', 1, ?, 0.1, 0.2, 0.3, 0.4, ?, ?)",
                             (did, mid, conf, label, fp))
            conn.execute("INSERT INTO crops (detection_id, quality, crop_path) VALUES (1, 0.5, 'a.jpg'), "
                         "(3, 0.9, 'c.jpg')")
            conn.execute("INSERT INTO individuals (id, name, flank, status, created_at) VALUES "
                         "(1, 'L-1', 'left', 'proposed', ?), (2, 'R-1', 'right', 'confirmed', ?)", (T, T))
            for sid, det, ind, status, p, why in ((1, 1, 1, "pending", None, None), (2, 2, 1, "auto", 0.9, None),
                                                  (3, 3, 2, "confirmed", None, None),
                                                  (4, 4, None, "unusable", None, "front view"),
                                                  (5, 6, 1, "pending", 0.4, None)):
                conn.execute("INSERT INTO sightings (id, detection_id, individual_id, status, probability, "
                             "set_aside_reason, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)", (sid, det, ind, status, p,
                                                                                            why, T))
            undone = []
            for rid, sid, action, who, undone_by in ((1, 3, "confirm", "ann", None), (2, 4, "unusable", "bob", None),
                                                     (3, 2, "confirm", "ann", 4), (4, 2, "undo", "dan", None),
                                                     (5, 4, "skip", "cy", None)):
                conn.execute("INSERT INTO review_decisions (id, sighting_id, action, reviewer, decided_at, "
                             "previous_json, new_json) VALUES (?, ?, ?, ?, ?, '{}', '{}')", (rid, sid, action, who, T))
                if undone_by is not None:   # names a later decision: set once that one exists
                    undone.append((undone_by, rid))
            conn.executemany("UPDATE review_decisions SET undone_by = ? WHERE id = ?", undone)
        yield c


def test_deployment_rows_by_id_and_media_time_spans(cat):
    assert [r["id"] for r in deployments.rows(cat, by_id=True)] == ["D1", "D2"]
    assert sorted(r["id"] for r in deployments.rows(cat)) == ["D1", "D2"]
    # D1's first frame is media 2 (March 1st), its last media 1; D2's untimed media 4 is left out
    assert media.time_span_by_deployment(cat) == {
        "D1": ("2024-03-01T01:00:00+10:00", "2024-03-05T22:00:00+10:00"),
        "D2": ("2025-07-09T03:00:00+10:00", "2025-07-09T03:00:00+10:00")}


def test_detector_status_optional_deployment_and_processed_ids(cat):
    assert [(r["id"], r["deployment_id"], r["failure"]) for r in detections.status_with_media(cat)] == [
        (1, "D1", None), (2, "D1", None), (3, "D2", "corrupt")]
    assert [r["id"] for r in detections.status_with_media(cat, "D1")] == [1, 2]
    assert [r["id"] for r in detections.status_with_media(cat, "D9")] == []
    assert sorted(detections.processed_media_ids(cat)) == [1, 2]     # media 3 failed, 4 never processed


def test_detection_reads_order_and_leopard_counts(cat):
    # by media then confidence high to low: media 1 (0.9, 0.5), media 2 (0.8, 0.6), media 3 (0.7, 0.3)
    assert [(r.media_id, r.conf) for r in detections.for_mdjson(cat)] == [
        (1, 0.9), (1, 0.5), (2, 0.8), (2, 0.6), (3, 0.7), (3, 0.3)]
    joined = detections.with_media_and_sighting(cat)
    assert [(r["id"], r["sid"]) for r in joined] == [(1, 1), (2, 2), (3, 3), (5, None), (4, 4), (6, 5)]
    assert detections.count_leopards(cat) == 3                          # 1, 3, 5 (2 is a static false positive)
    assert detections.count_leopards(cat, without_sighting=True) == 1   # 5


def test_sighting_counts_with_optional_and_empty_status_lists(cat):
    assert sightings.count_by_status(cat) == {"auto": 1, "confirmed": 1, "pending": 2, "unusable": 1}
    assert sightings.count_by_status(cat, not_in=("auto", "confirmed")) == {"pending": 2, "unusable": 1}
    assert sightings.count_by_status(cat, not_in=()) == sightings.count_by_status(cat)
    assert sightings.count_assigned(cat, ("auto", "confirmed")) == 2     # 2, 3
    assert sightings.count_assigned(cat, ("pending",)) == 2              # 1, 5
    assert sightings.count_assigned(cat, ()) == 0
    assert sightings.count_with_status(cat, "unusable") == 1
    rows = sightings.assigned_with_media(cat, ("auto", "confirmed"))
    assert sorted((r["sid"], r["iid"], r["did"], r["mid"], r["dep"]) for r in rows) == [
        (2, 1, 2, 1, "D1"), (3, 2, 3, 2, "D1")]
    assert sightings.assigned_with_media(cat, ()) == []
    assert sorted((r["individual_id"], r["detection_id"], r["flank"])
                  for r in sightings.assigned_with_flank(cat, ("pending", "confirmed"))) == [
        (1, 1, "left"), (1, 6, "left"), (2, 3, "right")]
    assert [(r["ts"], r["why"]) for r in sightings.unusable_with_time(cat)] == [("2025-07-09T03:00:00+10:00",
                                                                                 "front view")]


def test_sightings_with_crops_reads_past_the_variable_limit(cat):
    rows = sightings.with_crops(cat, [4, 3, 1])
    assert sorted((r["sid"], r["det"], r["quality"], r["crop_path"]) for r in rows) == [
        (1, 1, 0.5, "a.jpg"), (3, 3, 0.9, "c.jpg"), (4, 4, None, None)]
    # 1,200 ids: three reads of at most 500; the five sightings come back once each
    assert sorted(r["sid"] for r in sightings.with_crops(cat, range(1, 1201))) == [1, 2, 3, 4, 5]
    assert sightings.with_crops(cat, []) == []


def test_accept_founders_of_proposed_only_takes_unscored_pending(cat):
    with cat.transaction() as conn:
        assert sightings.accept_founders_of_proposed(conn) == 1   # sighting 1; 5 has a probability
    assert sightings.count_by_status(cat) == {"auto": 2, "confirmed": 1, "pending": 1, "unusable": 1}
    assert cat.scalar("SELECT status FROM sightings WHERE id = 5") == "pending"


def test_reviewer_by_sighting_and_labelling_decisions(cat):
    # live decisions, later ones winning: s3 ann (1), s4 cy (skip 5 after bob's 2), s2 dan (the undo 4)
    assert reviews.reviewer_by_sighting(cat) == {3: "ann", 4: "cy", 2: "dan"}
    # s2's confirm was undone, and an undo labels nothing; s4's skip does not hide bob's unusable
    rows = reviews.labelling_decisions(cat)
    assert [(r["sid"], r["action"], r["reviewer"], r["did"], r["mid"], r["crop_path"]) for r in rows] == [
        (3, "confirm", "ann", 3, 2, "c.jpg"), (4, "unusable", "bob", 4, 3, None)]


def test_flank_link_upsert_keeps_one_row_per_pair(cat):
    with cat.transaction() as conn:
        individuals.upsert_flank_link(conn, 1, 2, reason="a", evidence_json="{}", created_at=T)
        individuals.upsert_flank_link(conn, 1, 2, reason="b", evidence_json='{"n": 2}', created_at="later")
    assert [tuple(r) for r in individuals.flank_links(cat)] == [(1, 2, "b", '{"n": 2}')]
    assert cat.scalar("SELECT created_at FROM flank_links") == T
    assert [(r.id, r.name, r.status, r.merged_into) for r in individuals.brief_rows(cat)] == [
        (1, "L-1", "proposed", None), (2, "R-1", "confirmed", None)]
