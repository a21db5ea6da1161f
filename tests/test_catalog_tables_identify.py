"""Catalog table functions detect and identify call that have logic of their own (optional deployment parts,
IN-lists read or written in chunks, joins with a rule in them), on a tiny hand-built catalog; every expectation
is worked out by hand from the rows in the fixture's docstring."""
from __future__ import annotations

import pytest

from spotid.catalog import Catalog
from spotid.catalog.tables import crops, deployments, detections, individuals, media, sightings

T = "2024-01-01T00:00:00+00:00"


@pytest.fixture
def cat(tmp_path):
    """Deployments D1 (station S1), D2 (no station), D3 (station S1); sequence 1 of D1 with 3 frames.
    Media: 1 D1 photo 2024-03-01T01:00 (EXIF, sequence 1, detected); 2 D1 photo 2024-03-01T00:30 (a file copy
    time, 'mtime'); 3 D1 video; 4 D1 frame of video 3, 02:00; 5 D2 photo 2024-02-01; 6 D2 video without frames.
    Ingest failures: one of D1, two of D2.
    Detections: 1 m1 leopard; 2 m2 leopard; 3 m4 leopard static_fp; 4 m5 leopard; 5 m1 'other'; 6 m4 leopard;
    7 m5 leopard; 8 m5 leopard; 9 m1 leopard.
    Individuals: 1 L-0001 left proposed; 2 L-0002 left merged into 1; 3 R-0001 right confirmed.
    Crops: det 1 left, 4 unknown, 6 left, 7 unknown.
    Sightings: 1 det 6 -> ind 2 pending; 2 det 4 -> ind 1 auto; 3 det 7 -> ind 3 confirmed; 4 det 2 set aside
    ('too small'); 5 det 8 set aside ('crop failed'); 6 det 9 unusable without a reason (a person decided)."""
    with Catalog(tmp_path / "t.db") as c:
        with c.transaction() as conn:
            for dep, loc in (("D1", "S1"), ("D2", None), ("D3", "S1")):
                conn.execute("INSERT INTO deployments (id, location_id, created_at) VALUES (?, ?, ?)", (dep, loc, T))
            conn.execute("INSERT INTO sequences (id, deployment_id, start, end, n_media) VALUES (1, 'D1', ?, ?, 3)",
                         (T, T))
            for mid, dep, kind, ts, src, seq, parent in (
                    (1, "D1", "image", "2024-03-01T01:00:00+10:00", "DateTimeOriginal", 1, None),
                    (2, "D1", "image", "2024-03-01T00:30:00+10:00", "mtime", None, None),
                    (3, "D1", "video", None, None, None, None),
                    (4, "D1", "image", "2024-03-01T02:00:00+10:00", "DateTimeOriginal", None, 3),
                    (5, "D2", "image", "2024-02-01T01:00:00+10:00", "DateTimeOriginal", None, None),
                    (6, "D2", "video", None, None, None, None)):
                conn.execute("INSERT INTO media (id, deployment_id, sha, path, rel_path, kind, timestamp, time_source, "
                             "size_bytes, sequence_id, parent_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 1, ?, ?)",
                             (mid, dep, f"sha{mid}", f"/c/{mid}", f"v{mid}.mp4" if kind == "video" else f"{mid}.jpg",
                              kind, ts, src, seq, parent))
            conn.execute("INSERT INTO detection_status (media_id, detector, processed_at) VALUES (1, 'md', ?)", (T,))
            for i, dep in enumerate(("D1", "D2", "D2")):
                conn.execute("INSERT INTO ingest_failures (deployment_id, path, reason, recorded_at) "
                             "VALUES (?, ?, 'unreadable', ?)", (dep, f"/c/bad{i}.jpg", T))
            for did, mid, label, static in ((1, 1, "leopard", 0), (2, 2, "leopard", 0), (3, 4, "leopard", 1),
                                            (4, 5, "leopard", 0), (5, 1, "other", 0), (6, 4, "leopard", 0),
                                            (7, 5, "leopard", 0), (8, 5, "leopard", 0), (9, 1, "leopard", 0)):
                conn.execute("INSERT INTO detections (id, media_id, detector, category, conf, x, y, w, h, label, "
                             "static_fp) VALUES (?, ?, 'md', 1, 0.9, 0.1, 0.2, 0.3, 0.4, ?, ?)",
                             (did, mid, label, static))
            for iid, name, flank, status, into in ((1, "L-0001", "left", "proposed", None),
                                                   (2, "L-0002", "left", "merged", 1),
                                                   (3, "R-0001", "right", "confirmed", None)):
                conn.execute("INSERT INTO individuals (id, name, flank, status, merged_into, created_at) "
                             "VALUES (?, ?, ?, ?, ?, ?)", (iid, name, flank, status, into, T))
            for did, flank in ((1, "left"), (4, "unknown"), (6, "left"), (7, "unknown")):
                conn.execute("INSERT INTO crops (detection_id, flank, crop_path) VALUES (?, ?, ?)",
                             (did, flank, f"/k/{did}.jpg"))
            for sid, did, ind, status, reason in ((1, 6, 2, "pending", None), (2, 4, 1, "auto", None),
                                                  (3, 7, 3, "confirmed", None), (4, 2, None, "unusable", "too small"),
                                                  (5, 8, None, "unusable", "crop failed"),
                                                  (6, 9, None, "unusable", None)):
                conn.execute("INSERT INTO sightings (id, detection_id, individual_id, status, set_aside_reason, "
                             "updated_at) VALUES (?, ?, ?, ?, ?, ?)", (sid, did, ind, status, reason, T))
        yield c


def test_detect_bookkeeping_of_all_media_or_one_deployment(cat):
    # media 1 is detected, 3 and 6 are videos: photos and frames 2, 4, 5 remain, by id
    assert [r["id"] for r in media.awaiting_detection(cat)] == [2, 4, 5]
    assert [(r["id"], r["parent_id"]) for r in media.awaiting_detection(cat, "D1")] == [(2, None), (4, 3)]
    assert (media.count_frames(cat), media.count_frames(cat, "D1"), media.count_frames(cat, "D2")) == (4, 3, 1)
    assert [media.count_ingest_failures(cat, d) for d in (None, "D1", "D2", "D3")] == [3, 1, 2, 0]
    # video 3 has its frame 4; video 6 has none
    assert media.videos_without_frames(cat) == ["v6.mp4"]
    assert media.videos_without_frames(cat, "D1") == [] and media.videos_without_frames(cat, "D2") == ["v6.mp4"]
    assert sorted(media.deployment_ids(cat)) == ["D1", "D2"]
    assert detections.count(cat) == 9


def test_detect_writes_status_once_and_static_flags_in_chunks(cat):
    assert detections.insert_status(cat, 2, run_id=None, detector="md", failure=None, processed_at=T)
    assert not detections.insert_status(cat, 2, run_id=None, detector="md2", failure="x", processed_at=T)
    assert tuple(cat.query("SELECT detector, failure FROM detection_status WHERE media_id = 2")[0]) == ("md", None)
    # 1,002 ids: three UPDATE statements, ids 1 and 2 in the last one
    detections.set_static_fp(cat, [*range(1000, 2000), 1, 2], True)
    assert [r[0] for r in cat.query("SELECT id FROM detections WHERE static_fp = 1 ORDER BY id")] == [1, 2, 3]
    detections.set_static_fp(cat, range(1, 10), False)
    assert cat.scalar("SELECT COUNT(*) FROM detections WHERE static_fp = 1") == 0
    # boxes of one deployment with their frame's time: D2 has detections 4, 7, 8 on media 5
    assert [(r["id"], r["timestamp"]) for r in detections.boxes_of_deployment(cat, "D2")] == [
        (4, "2024-02-01T01:00:00+10:00"), (7, "2024-02-01T01:00:00+10:00"), (8, "2024-02-01T01:00:00+10:00")]


def test_leopards_to_identify_and_forgetting_set_aside_sightings(cat):
    # leopard, not static, without a sighting: detection 1 only
    assert [r["id"] for r in detections.leopards_to_identify(cat)] == [1]
    # D1's set-aside sighting 4 (det 2) goes; sighting 6 has no reason (a person decided) and stays
    assert sightings.delete_set_aside(cat, "D1") == 1
    rows = detections.leopards_to_identify(cat)
    # by the frame's stored time: media 2 (00:30) before media 1 (01:00); media 2's copy time comes back NULL
    assert [(r["id"], r["timestamp"], r["burst_frames"]) for r in rows] == [
        (2, None, 1), (1, "2024-03-01T01:00:00+10:00", 3)]
    assert detections.leopards_to_identify(cat, "D2") == []
    assert sightings.delete_set_aside(cat) == 1          # sighting 5 (det 8, D2)
    assert [r["id"] for r in detections.leopards_to_identify(cat, "D2")] == [8]
    assert [r["id"] for r in detections.leopards_to_identify(cat)] == [8, 2, 1]   # February first
    assert cat.scalar("SELECT COUNT(*) FROM sightings") == 4


def test_burst_frames_count_the_sequence_frames_near_the_frame(cat):
    # sequence 1 (n_media 3) holds media 1 (01:00:00); add media 7 a second later and media 8 49 s later,
    # with a leopard (detection 10) on media 8
    with cat.transaction() as conn:
        for mid, ts in ((7, "2024-03-01T01:00:01+10:00"), (8, "2024-03-01T01:00:49+10:00")):
            conn.execute("INSERT INTO media (id, deployment_id, sha, path, rel_path, kind, timestamp, time_source, "
                         "size_bytes, sequence_id) VALUES (?, 'D1', ?, ?, ?, 'image', ?, 'DateTimeOriginal', 1, 1)",
                         (mid, f"sha{mid}", f"/c/{mid}", f"{mid}.jpg", ts))
        conn.execute("INSERT INTO detections (id, media_id, detector, category, conf, x, y, w, h, label, static_fp) "
                     "VALUES (10, 8, 'md', 1, 0.9, 0.1, 0.2, 0.3, 0.4, 'leopard', 0)")

    def frames(**kw):
        return {r["id"]: r["burst_frames"] for r in detections.leopards_to_identify(cat, "D1", **kw)}

    # the whole sequence (its n_media)
    assert frames() == {1: 3, 10: 3}
    # within 10 s: media 1 and 7 are one burst, media 8 (49 s on) a burst of its own
    assert frames(burst_s=10) == {1: 2, 10: 1}
    assert frames(burst_s=49) == {1: 3, 10: 3} and frames(burst_s=0) == {1: 1, 10: 1}


def test_gallery_keeps_seen_flanks_and_resolves_merged_individuals(cat):
    # left: sighting 1 (det 6, crop left) of merged L-0002 counts for L-0001; sighting 2 (det 4) is an
    # auto sighting whose crop has no left/right flank: not a reference
    assert [(r["detection_id"], r["ind"], r["crop_path"]) for r in sightings.gallery(cat, "left")] == [
        (6, 1, "/k/6.jpg")]
    # right: sighting 3's crop has no flank, but a person confirmed it
    assert [(r["detection_id"], r["ind"]) for r in sightings.gallery(cat, "right")] == [(7, 3)]


def test_crops_read_in_chunks_and_typed(cat):
    ids = [*range(100, 1100), 7, 1, 4, 6]   # 1,004 ids: the crops are all in the third chunk
    got = crops.of_detections(cat, ids)
    assert sorted(got) == [1, 4, 6, 7]
    assert (got[6].flank, got[6].crop_path, got[6].embedding) == ("left", "/k/6.jpg", None)
    crops.upsert_local_features(cat, [(1, "aliked", "v1", b"k", b"d", 0), (6, "aliked", "v1", None, None, 1)])
    crops.upsert_local_features(cat, [(1, "aliked", "v2", b"k2", b"d2", 1)])   # replaces (1, aliked)
    rows = crops.local_features(cat, [*range(100, 1100), 6, 1])
    assert sorted((r["detection_id"], r["version"], r["infrared"]) for r in rows) == [(1, "v2", 1), (6, "v1", 1)]


def test_crop_cache_upsert_and_feature_update(cat):
    values = dict.fromkeys(crops.CACHE_COLUMNS)
    values.update(detection_id=1, flank="right", embedder="e1", crop_path="/k/1b.jpg")
    crops.upsert_cache(cat, [tuple(values[c] for c in crops.CACHE_COLUMNS)])   # det 1 had a crop: replaced
    values.update(detection_id=2, flank="left")
    crops.upsert_cache(cat, [tuple(values[c] for c in crops.CACHE_COLUMNS)])   # det 2 had none: added
    crops.update_features(cat, [(b"\0" * 4, "e2", None, None, 1, None, None, "f2", 2)])
    got = crops.of_detections(cat, [1, 2])
    assert (got[1].flank, got[1].embedder, got[1].crop_path) == ("right", "e1", "/k/1b.jpg")
    assert (got[2].flank, got[2].embedder, got[2].infrared, got[2].features_version) == ("left", "e2", 1, "f2")


def test_identify_inserts_skip_detections_that_have_a_sighting(cat):
    sid = sightings.insert_identified(cat, detection_id=1, individual_id=1, flank="left", status="pending",
                                      probability=None, run_id=None, model_version="m", updated_at=T)
    assert sid == 7
    assert sightings.insert_identified(cat, detection_id=1, individual_id=3, flank="right", status="auto",
                                       probability=0.9, run_id=None, model_version="m", updated_at=T) is None
    assert sightings.insert_set_aside(cat, detection_id=1, flank="left", run_id=None, model_version="m",
                                      updated_at=T, reason="r") is None
    assert sightings.insert_set_aside(cat, detection_id=3, flank="left", run_id=None, model_version="m",
                                      updated_at=T, reason="r") == 8
    for rank, ind in ((1, 1), (2, 3), (3, 1)):   # individual 1 again: ignored
        sightings.insert_candidate(cat, sighting_id=7, individual_id=ind, rank=rank, embed_score=0.5,
                                   verify_inliers=10, probability=0.4, reference_detection_id=6, evidence_json="{}",
                                   run_id=None, model_version="m")
    assert [tuple(r) for r in cat.query("SELECT rank, individual_id FROM match_candidates WHERE sighting_id = 7 "
                                        "ORDER BY rank")] == [(1, 1), (2, 3)]
    assert individuals.flanks(cat) == {1: "left", 2: "left", 3: "right"}
    assert deployments.stations(cat) == {"D1": "S1", "D2": "D2", "D3": "S1"}
