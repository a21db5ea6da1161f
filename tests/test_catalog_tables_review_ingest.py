"""Table functions the review page and ingest call that have logic of their own (optional parts, IN-lists,
ordering, aggregates), on the hand-built catalog of tests/test_catalog_tables.py; expectations counted by hand."""
from __future__ import annotations

from test_catalog_tables import cat  # noqa: F401  (the fixture)

from spotid.catalog.tables import detections, individuals, media, sightings
from spotid.types import MediaRow


def test_the_queue_holds_pending_then_auto_on_request(cat):  # noqa: F811
    assert sightings.queue_count(cat, False, False) == 2                      # sightings 3 and 4
    assert sightings.queue_count(cat, True, False) == 3                       # + sighting 1 (auto)
    assert sorted(r["id"] for r in sightings.queue_rows(cat, False, False)) == [3, 4]
    assert sightings.queued_sql(False, False) == "(s.status = 'pending')"


def test_individual_summaries_sum_their_sightings(cat):  # noqa: F811
    rows = individuals.summaries(cat)
    assert [r["name"] for r in rows] == ["L-0001", "L-0002", "L-0003", "R-0001"]   # by flank, then name
    one = individuals.summaries(cat, 1)
    assert len(one) == 1
    r = one[0]
    assert (r["n_counted"], r["n_pending"], r["stations"]) == (2, 1, "D1")
    assert r["first_seen"] == r["last_seen"] == "2024-03-05T22:00:00+10:00"   # both counted ones on media 1
    assert individuals.merged_into(cat, 4) == 1 and individuals.merged_into(cat, 1) is None
    assert individuals.merged_from_ids(cat, 1) == [4]
    assert [x.name for x in individuals.same_flank(cat, "left", 1)] == ["L-0001"]   # merged L-0003 left out


def test_media_listing_orders_filters_and_limits(cat):  # noqa: F811
    # ORDER BY deployment, timestamp (NULL first), path
    assert [r["id"] for r in media.listing(cat)] == [4, 2, 1, 3]
    assert [r["id"] for r in media.listing(cat, "D1", limit=2)] == [4, 2]
    assert media.listing(cat, "no-such-deployment") == []
    assert media.failures(cat) == []


def test_media_counts_over_in_lists_and_insert_leaves_unset_columns_null(cat):  # noqa: F811
    assert media.count_by_time_source(cat, ["sha1", "sha2", "nosuch"]) == {None: 2}
    assert media.count_by_time_source(cat, [f"x{i}" for i in range(1200)] + ["sha3"]) == {None: 1}  # 3 IN-lists
    with cat.transaction():
        mid = media.insert(cat, MediaRow(deployment_id="D1", sha="new", path="/c/new.jpg", rel_path="new.jpg",
                                         kind="image", size_bytes=1))
    assert mid == 5
    row = media.by_sha(cat, "new")
    assert row.id == 5 and row.width is None and row.timestamp is None


def test_crop_records_join_frame_and_station(cat):  # noqa: F811
    recs = {r["detection_id"]: r for r in detections.crop_records(cat, [1, 3])}
    assert set(recs) == {1, 3}
    assert recs[3]["media_id"] == 2 and recs[3]["station"] == "D1" and recs[3]["has_image"] == 0
    assert detections.best_crop_records(cat, [1]) == []   # no crop images in this catalog
