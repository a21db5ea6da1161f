"""Catalog table functions ingest uses that have logic of their own (checked column lists, IN-lists in chunks,
optional WHERE and LIMIT, aggregates), on a tiny hand-built catalog; expectations are counted by hand."""
from __future__ import annotations

import pytest

from spotid.catalog import Catalog
from spotid.catalog.tables import deployments, media
from spotid.types import MediaRow

T = "2024-01-01T00:00:00+00:00"


def _photo(dep: str, n: int, **kw) -> MediaRow:
    return MediaRow(**{"deployment_id": dep, "sha": f"sha{n}", "path": f"/c/{dep}/{n}.jpg", "rel_path": f"{n}.jpg",
                       "kind": "image", "size_bytes": 10 * n, **kw})


@pytest.fixture
def cat(tmp_path):
    """Deployments D1, D2; media sha1 (D1, EXIF time), sha2 (D1, mtime), sha3 (D1, no time), sha4 (D2, EXIF time);
    sha1 and sha2 in sequence 1, sha4 in sequence 2; failures /c/b.jpg (D1) and /c/a.jpg (D2)."""
    with Catalog(tmp_path / "t.db") as c:
        assert (c.start_run("ingest"), c.start_run("ingest")) == (1, 2)   # failures reference runs
        with c.transaction() as conn:
            for dep in ("D2", "D1"):
                deployments.upsert(conn, {"id": dep, "tz": "+10:00", "auto_created": 1})
            s1 = media.insert_sequence(conn, "D1", T, T, 2)
            s2 = media.insert_sequence(conn, "D2", T, T, 1)
            for n, dep, source, seq in ((1, "D1", "DateTimeOriginal", s1), (2, "D1", "mtime", s1),
                                        (3, "D1", None, None), (4, "D2", "DateTimeOriginal", s2)):
                assert media.insert_if_new(conn, _photo(dep, n, time_source=source, timestamp=T if source else None))
                media.set_sequence_frames(conn, [(seq, 0, n)] if seq else [])
            media.record_failures(conn, 1, "D1", [("/c/b.jpg", "empty file")])
            media.record_failures(conn, 1, "D2", [("/c/a.jpg", "not a JPEG")])
        yield c


def test_upsert_inserts_then_updates_the_given_columns_and_refuses_others(cat):
    created = deployments.get(cat, "D1")["created_at"]
    deployments.upsert(cat, {"id": "D1", "tz": "+09:00", "comments": "moved"})
    row = deployments.get(cat, "D1")
    assert (row["tz"], row["comments"], row["auto_created"], row["created_at"]) == ("+09:00", "moved", 1, created)
    assert deployments.ids(cat) == ["D1", "D2"]
    assert [(r["id"], r["n_media"]) for r in deployments.with_media_counts(cat)] == [("D1", 3), ("D2", 1)]
    for bad in ({"tz": "+10:00"}, {"id": "D3", "media_root": "/x"}, {"id": "D3", "tz = 1, id": "x"}):
        with pytest.raises(ValueError, match="upsert sets id"):
            deployments.upsert(cat, bad)
    assert deployments.get(cat, "D3") is None


def test_insert_if_new_ignores_a_known_hash(cat):
    assert not media.insert_if_new(cat, _photo("D2", 1))           # sha1 is D1's already
    assert media.by_sha(cat, "sha1").deployment_id == "D1"
    assert media.count_of_deployment(cat, "D1") == 3 and media.count_of_deployment(cat, "D2") == 1


def test_counts_over_in_lists_of_hashes(cat, monkeypatch):
    monkeypatch.setattr(media, "_IN_CHUNK", 2)    # sha1..sha4 and an unknown hash: three IN-lists
    shas = ["sha1", "sha2", "sha3", "sha4", "nope"]
    assert media.count_by_time_source(cat, shas) == {"DateTimeOriginal": 2, "mtime": 1, None: 1}
    assert media.sequence_ids_of(cat, shas) == {1, 2}
    assert media.sequence_ids_of(cat, ["sha3"]) == set()        # no sequence: NULL is left out


def test_listing_and_failures_optional_deployment_and_limit(cat):
    # media by deployment, timestamp (NULL first), path
    assert [r["sha"] for r in media.listing(cat)] == ["sha3", "sha1", "sha2", "sha4"]
    assert [r["sha"] for r in media.listing(cat, "D1", limit=2)] == ["sha3", "sha1"]
    assert media.listing(cat, "D9") == []
    assert [r["path"] for r in media.failures(cat)] == ["/c/a.jpg", "/c/b.jpg"]   # by path
    assert [r["path"] for r in media.failures(cat, "D1")] == ["/c/b.jpg"]
    assert len(media.failures(cat, limit=1)) == 1


def test_record_failures_keeps_one_row_per_path(cat):
    media.record_failures(cat, 2, "D2", [("/c/b.jpg", "truncated")])
    rows = media.failures(cat)
    assert [(r["path"], r["deployment_id"], r["reason"], r["run_id"]) for r in rows] == [
        ("/c/a.jpg", "D2", "not a JPEG", 1), ("/c/b.jpg", "D2", "truncated", 2)]
    media.clear_failures(cat, ["/c/a.jpg", "/c/none.jpg"])
    assert media.failure_paths(cat) == {"/c/b.jpg"}
