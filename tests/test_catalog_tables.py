"""Catalog table functions with logic of their own (optional WHERE parts, IN-lists, checked column lists,
aggregates), on a tiny hand-built catalog; expectations are counted by hand from the rows below."""
from __future__ import annotations

import pytest

from spotid.catalog import Catalog
from spotid.catalog.tables import individuals, media, reviews, sightings

T = "2024-01-01T00:00:00+00:00"


@pytest.fixture
def cat(tmp_path):
    """One deployment; media 1, 2 (2024), 3 (2025), 4 (no time); detections 1-2 on media 1, 3 on media 2,
    4 on media 3; individuals 1 L-0002 left confirmed, 2 L-0001 left proposed, 3 R-0001 right proposed,
    4 L-0003 left merged into 1; sightings 1 (det 1, ind 1, auto), 2 (det 2, ind 1, confirmed),
    3 (det 3, ind 1, pending), 4 (det 4, no individual, pending)."""
    with Catalog(tmp_path / "t.db") as c:
        with c.transaction() as conn:
            conn.execute("INSERT INTO deployments (id, created_at) VALUES ('D1', ?)", (T,))
            for mid, ts in ((1, "2024-03-05T22:00:00+10:00"), (2, "2024-03-01T01:00:00+10:00"),
                            (3, "2025-07-09T03:00:00+10:00"), (4, None)):
                conn.execute("INSERT INTO media (id, deployment_id, sha, path, rel_path, kind, timestamp, size_bytes) "
                             "VALUES (?, 'D1', ?, ?, ?, 'image', ?, 1)", (mid, f"sha{mid}", f"/c/{mid}.jpg",
                                                                          f"{mid}.jpg", ts))
            for did, mid in ((1, 1), (2, 1), (3, 2), (4, 3)):
                conn.execute("INSERT INTO detections (id, media_id, detector, category, conf, x, y, w, h) "
                             "VALUES (?, ?, 'md', 1, 0.9, 0.1, 0.2, 0.3, 0.4)", (did, mid))
            for iid, name, flank, status, into in ((1, "L-0002", "left", "confirmed", None),
                                                   (2, "L-0001", "left", "proposed", None),
                                                   (3, "R-0001", "right", "proposed", None),
                                                   (4, "L-0003", "left", "merged", 1)):
                conn.execute("INSERT INTO individuals (id, name, flank, status, merged_into, created_at) "
                             "VALUES (?, ?, ?, ?, ?, ?)", (iid, name, flank, status, into, T))
            for sid, ind, status in ((1, 1, "auto"), (2, 1, "confirmed"), (3, 1, "pending"), (4, None, "pending")):
                conn.execute("INSERT INTO sightings (id, detection_id, individual_id, status, updated_at) "
                             "VALUES (?, ?, ?, ?, ?)", (sid, sid, ind, status, T))
        yield c


def test_update_reviewed_sets_values_bumps_the_version_and_refuses_other_columns(cat):
    assert sightings.update_reviewed(cat, 3, individual_id=None, status="rejected") == 1
    row = sightings.review_state(cat, 3)
    assert (row.individual_id, row.status, row.version) == (None, "rejected", 1)
    assert cat.scalar("SELECT updated_at FROM sightings WHERE id = 3") != T
    assert sightings.update_reviewed(cat, 99, status="rejected") == 0   # no such sighting: nothing changed
    for bad in ({"version": 7}, {"status = 'auto', id": 5}, {}):
        with pytest.raises(ValueError, match="update_reviewed sets some of"):
            sightings.update_reviewed(cat, 3, **bad)
    assert sightings.review_state(cat, 3).version == 1


def test_count_of_individual_optional_conditions(cat):
    assert sightings.count_of_individual(cat, 1) == 3                      # sightings 1, 2, 3
    assert sightings.count_of_individual(cat, 1, counted_only=True) == 2   # 1 auto, 2 confirmed
    assert sightings.count_of_individual(cat, 1, counted_only=True, except_id=2) == 1
    assert sightings.count_of_individual(cat, 1, except_id=3) == 2
    assert sightings.ids_of_individual(cat, 1) == [1, 2, 3]


def test_assignable_individuals_of_the_given_flanks_by_name(cat):
    # merged L-0003 is not assignable; order is by name, not id
    assert [r.name for r in individuals.assignable(cat, ("left",))] == ["L-0001", "L-0002"]
    assert [(r.id, r.flank) for r in individuals.assignable(cat, ("left", "right"))] == [(2, "left"), (1, "left"),
                                                                                        (3, "right")]
    assert individuals.names_like(cat, "R-%") == ["R-0001"]
    assert individuals.id_by_name(cat, "L-0003") == 4 and individuals.id_by_name(cat, "L-0009") is None


def test_next_name_continues_each_flanks_sequence(cat):
    # L-0001..L-0003 (one merged) and R-0001 exist: the merged one's number is not reused
    assert individuals.next_name(cat, "left") == "L-0004"
    assert individuals.next_name(cat, "right") == "R-0002"


def test_decisions_recent_last_and_live(cat):
    ids = [reviews.insert(cat, sighting_id=sid, action=action, reviewer=who, decided_at=at, previous_json="{}",
                          new_json="{}")
           for sid, action, who, at in ((1, "confirm", "ann", "2024-01-02T10:00:00+00:00"),
                                        (1, "skip", "bob", "2024-01-03T10:00:00+00:00"),
                                        (2, "reject", "ann", "2024-01-03T11:00:00+00:00"),
                                        (2, "undo", "ann", "2024-01-03T12:00:00+00:00"))]
    assert ids == [1, 2, 3, 4]
    reviews.set_undone_by(cat, 3, 4)
    assert reviews.recent_ids(cat, 2) == [4, 3]
    assert reviews.recent_ids(cat, 10, "ann") == [4, 3, 1]
    assert reviews.last_for_sighting(cat, 1)["action"] == "skip"
    assert reviews.last_for_sighting(cat, 1, live_only=True)["action"] == "confirm"
    assert reviews.last_for_sighting(cat, 2, live_only=True) is None    # the reject was undone, undos don't count
    assert reviews.last_undoable_id(cat, "ann") == 1 and reviews.last_undoable_id(cat, "bob") == 2
    assert [r["id"] for r in reviews.live_after(cat, 0)] == [1]
    assert reviews.count_live_since(cat, "ann", "2024-01-02") == 1
    assert reviews.count_live_since(cat, "ann", "2024-01-03") == 0


def test_per_year_counts_frames_and_counted_sightings(cat):
    # 2024: media 1 and 2 (days 03-01 to 03-05), counted sightings 1 (auto) and 2 (confirmed), 3 is pending;
    # 2025: media 3, its sighting 4 has no individual; media 4 has no time and is left out.
    assert [tuple(r) for r in media.per_year(cat)] == [("2024", "2024-03-01", "2024-03-05", 2, 2),
                                                       ("2025", "2025-07-09", "2025-07-09", 1, 0)]
