"""Media paths (issue 23 points 4 and 5): rel_paths under a per-deployment media root, export paths unique
across cameras, `spotid media relocate` after a card folder moved, and catalog migration 0012."""
from __future__ import annotations

import csv
import hashlib
import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

import spotid.catalog as catalog_mod
from spotid.catalog import Catalog
from spotid.cli import app
from test_ingest_helpers import burst_times, make_burst_card

runner = CliRunner()


def run(*args):
    return runner.invoke(app, [str(a) for a in args])


def flat(text: str) -> str:
    """Output with rich's error box and line wrapping taken out."""
    return " ".join(text.replace("│", " ").split())


def blake(path: Path) -> str:
    return hashlib.blake2b(path.read_bytes(), digest_size=20).hexdigest()


def ingest(card: Path, dep: str, db: Path, tz: str = "+10:00"):
    r = run("ingest", card, "-d", dep, "--db", db, "--tz", tz, "--json")
    assert r.exit_code == 0, r.output
    return json.loads(r.stdout)


def mark_detected(db: Path) -> None:
    """Every media processed by a detector, with one animal box each (what `spotid detect --db` writes)."""
    with Catalog(db) as cat, cat.transaction():
        for (mid,) in cat.query("SELECT id FROM media"):
            cat.execute("INSERT INTO detection_status (media_id, detector, processed_at) VALUES (?, 'test@0', 'x')",
                        (mid,))
            cat.execute("INSERT INTO detections (media_id, detector, category, conf, x, y, w, h) "
                        "VALUES (?, 'test@0', 1, 0.9, 0.1, 0.1, 0.2, 0.2)", (mid,))


def md_validate(path: Path) -> None:
    """MegaDetector's own validator when installed, else spotid's reader (which refuses a malformed file)."""
    try:
        from megadetector.postprocessing.validate_batch_results import validate_batch_results
    except ImportError:
        from spotid.detect.mdjson import read_batch

        read_batch(path)
        return
    res = validate_batch_results(str(path))["validation_results"]
    assert res["errors"] == [], res


# -- point 4: exported paths unique across cameras --------------------------------------------------------
def test_two_cameras_with_the_same_file_names_export_distinct_paths(tmp_path, shared):
    """Two cameras each write DCIM/100RECNX/IMG_0001.JPG and IMG_0002.JPG. Before: both exports named the
    files DCIM/100RECNX/IMG_0001.JPG twice. Now: A1/... and B1/..., each naming the right file when the
    cards sit in one folder per deployment (Timelapse's root folder), and both exports validate."""
    pytest.importorskip("frictionless")
    from spotid.export.validate import validate_package

    cards, db = tmp_path / "cards", tmp_path / "c.db"
    make_burst_card(cards / "A1", burst_times([0, 1]), seed0=0)
    make_burst_card(cards / "B1", burst_times([0, 1]), seed0=50)
    for dep, lat in (("A1", 43.1), ("B1", 43.2)):
        ingest(cards / dep, dep, db)
        r = run("deployments", "add", dep, "--lat", lat, "--lon", 131.9, "--start", "2024-03-01T00:00:00+10:00",
                "--end", "2024-03-03", "--replace", "--db", db)
        assert r.exit_code == 0, r.output
    mark_detected(db)
    with Catalog(db) as cat:
        sha = {r["id"]: r["sha"] for r in cat.query("SELECT id, sha FROM media")}
        assert {r[0] for r in cat.query("SELECT rel_path FROM media")} == {"DCIM/100RECNX/IMG_0001.JPG",
                                                                          "DCIM/100RECNX/IMG_0002.JPG"}

    r = run("export", "mdjson", "--db", db, "--out", tmp_path / "md.json")
    assert r.exit_code == 0, r.output
    md = json.loads((tmp_path / "md.json").read_text())
    files = [im["file"] for im in md["images"]]
    assert sorted(files) == ["A1/DCIM/100RECNX/IMG_0001.JPG", "A1/DCIM/100RECNX/IMG_0002.JPG",
                             "B1/DCIM/100RECNX/IMG_0001.JPG", "B1/DCIM/100RECNX/IMG_0002.JPG"]
    md_validate(tmp_path / "md.json")

    out = tmp_path / "dp"
    r = run("export", "camtrapdp", "--db", db, "--out", out, "--no-census")
    assert r.exit_code == 0, r.output
    media = list(csv.DictReader((out / "media.csv").open(encoding="utf-8")))
    assert sorted(m["filePath"] for m in media) == sorted(files)
    for m in media:  # each path names the very file ingested, under the folder holding the cards
        assert m["filePath"].split("/")[0] == m["deploymentID"]
        assert blake(cards / m["filePath"]) == sha[int(m["mediaID"])]
    assert validate_package(out, shared / "data" / "camtrap-dp") == []


def test_second_card_of_a_deployment_widens_the_media_root(tmp_path):
    """Two cards of one camera, both starting at IMG_0001.JPG: the root becomes their common folder and the
    first card's rel_paths get its folder name in front, so no two rel_paths of the deployment collide."""
    cards, db = tmp_path / "cards", tmp_path / "c.db"
    make_burst_card(cards / "A1_2024-03", burst_times([0]), seed0=0)
    make_burst_card(cards / "A1_2024-06", burst_times([3600]), seed0=7)
    ingest(cards / "A1_2024-03", "A1", db)
    with Catalog(db) as cat:
        assert cat.scalar("SELECT media_root FROM deployments") == str((cards / "A1_2024-03").resolve())
    out = ingest(cards / "A1_2024-06", "A1", db)
    assert out["media_added"] == 1
    with Catalog(db) as cat:
        assert cat.scalar("SELECT media_root FROM deployments") == str(cards.resolve())
        rows = cat.query("SELECT path, rel_path FROM media ORDER BY rel_path")
    assert [r["rel_path"] for r in rows] == ["A1_2024-03/DCIM/100RECNX/IMG_0001.JPG",
                                             "A1_2024-06/DCIM/100RECNX/IMG_0001.JPG"]
    assert all(r["path"] == str(cards.resolve() / r["rel_path"]) for r in rows)
    # a card inside the root (one of its folders again) keeps the root
    assert ingest(cards / "A1_2024-06", "A1", db)["duplicates"] == 1
    with Catalog(db) as cat:
        assert cat.scalar("SELECT media_root FROM deployments") == str(cards.resolve())


# -- point 5: relocating a moved card folder ---------------------------------------------------------------
def _frame_status(db: Path, media_id: int):
    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    from spotid.review.app import create_app

    client = TestClient(create_app(db, reviewer="tester"), base_url="http://127.0.0.1")
    r = client.get(f"/img/frame/{media_id}")
    return r.status_code, (r.json().get("detail", "") if r.status_code != 200 else "")


def _state(db: Path) -> list:
    with Catalog(db) as cat:
        return ([tuple(r) for r in cat.query("SELECT id, media_root FROM deployments ORDER BY id")]
                + [tuple(r) for r in cat.query("SELECT id, path, rel_path FROM media ORDER BY id")])


def test_relocate_a_moved_card_folder(tmp_path):
    cards, db = tmp_path / "cards", tmp_path / "c.db"
    make_burst_card(cards / "A1", burst_times([0, 1, 2, 600]), seed0=0)
    make_burst_card(cards / "A1", burst_times([5]), prefix="X", folder="DCIM/101RECNX", seed0=90)
    make_burst_card(cards / "B1", burst_times([0, 1, 2, 600]), seed0=30)  # same file names, other camera
    (cards / "A1" / "DCIM" / "100RECNX" / "broken.JPG").write_bytes(b"")
    ingest(cards / "A1", "A1", db)
    ingest(cards / "B1", "B1", db)
    with Catalog(db) as cat:
        mid = cat.scalar("SELECT id FROM media WHERE deployment_id = 'A1' ORDER BY rel_path")

    archive = tmp_path / "archive" / "2024"
    archive.mkdir(parents=True)
    shutil.move(str(cards / "A1"), str(archive / "A1"))
    code, detail = _frame_status(db, mid)
    assert code == 404 and "spotid media relocate --deployment A1" in detail and "identify" not in detail
    with Catalog(db) as cat, cat.transaction():  # detect ran meanwhile: what `spotid detect --db` records
        for m in cat.query("SELECT id, path FROM media ORDER BY id"):
            failure = f"file not found: {m['path']}" if m["id"] == mid else None
            cat.execute("INSERT INTO detection_status (media_id, detector, failure, processed_at) "
                        "VALUES (?, 'test@0', ?, 'x')", (m["id"], failure))

    before = _state(db)
    # the wrong folder: the other camera's card, same file names, other content
    r = run("media", "relocate", "--deployment", "A1", cards / "B1", "--db", db)
    assert r.exit_code == 2 and "does not hold deployment A1's files" in flat(r.output)
    assert "nothing was changed" in flat(r.output)
    # a copy with one sampled file changed (same size): the content hash refuses it
    bad = tmp_path / "bad" / "A1"
    shutil.copytree(archive / "A1", bad)
    first = bad / "DCIM" / "100RECNX" / "IMG_0001.JPG"
    data = bytearray(first.read_bytes())
    data[-3] ^= 0xFF
    first.write_bytes(bytes(data))
    r = run("media", "relocate", "-d", "A1", bad, "--db", db)
    assert r.exit_code == 2 and "IMG_0001.JPG: different content (hash)" in flat(r.output)
    r = run("media", "relocate", "-d", "A1", archive, "--db", db)  # one folder too high
    assert r.exit_code == 2 and "did you mean" in flat(r.output)
    r = run("media", "relocate", "-d", "A1", tmp_path / "nowhere", "--db", db)
    assert r.exit_code == 2 and "is not a folder" in flat(r.output)
    r = run("media", "relocate", "-d", "ZZ", archive / "A1", "--db", db)
    assert r.exit_code == 2 and "no deployment 'ZZ'" in flat(r.output)
    r = run("media", "relocate", "-d", "A1", archive / "A1", "--db", db, "--dry-run")
    assert r.exit_code == 0 and "dry run" in flat(r.output)
    assert _state(db) == before
    # ingesting the moved folder again is refused with the command to run instead
    r = run("ingest", archive / "A1", "-d", "A1", "--db", db)
    assert r.exit_code == 2 and "spotid media relocate --deployment A1" in flat(r.output)
    assert _state(db) == before

    r = run("media", "relocate", "--deployment", "A1", archive / "A1", "--db", db, "--json")
    assert r.exit_code == 0, r.output
    res = json.loads(r.stdout)
    assert (res["moved"], res["n_media"], res["checked_sizes"], res["checked_hashes"], res["n_missing"]) == (
        True, 5, 5, 5, 0)
    assert res["failures_moved"] == 1
    assert res["detect_cleared"] == 1  # the frame detect could not find is pending again, the others are not
    with Catalog(db) as cat:
        from spotid.detect.run import pending_media

        assert [r["id"] for r in pending_media(cat)] == [mid]
    new = (archive / "A1").resolve()
    with Catalog(db) as cat:
        assert cat.scalar("SELECT media_root FROM deployments WHERE id = 'A1'") == str(new)
        rows = cat.query("SELECT path, rel_path, sha FROM media WHERE deployment_id = 'A1'")
        assert all(r["path"] == str(new / r["rel_path"]) and blake(Path(r["path"])) == r["sha"] for r in rows)
        assert cat.scalar("SELECT path FROM ingest_failures") == str(new / "DCIM" / "100RECNX" / "broken.JPG")
        b1 = cat.query("SELECT path FROM media WHERE deployment_id = 'B1'")
        assert all(r["path"].startswith(str(cards.resolve() / "B1")) for r in b1)  # the other camera untouched
    assert _frame_status(db, mid)[0] == 200


def test_relocate_samples_evenly_and_tolerates_files_left_out(tmp_path):
    """--sample 2 of 5 hashes the first and last file in path order; a file missing outside the sample
    is reported (n_missing), not refused; one missing inside it is refused."""
    from spotid.ingest.media_root import _spread

    assert _spread(5, 2) == [0, 4] and _spread(5, 3) == [0, 2, 4] and _spread(3, 20) == [0, 1, 2]
    assert _spread(0, 5) == [] and _spread(7, 1) == [0]
    card, db = tmp_path / "card", tmp_path / "c.db"
    frames = make_burst_card(card, burst_times([0, 1, 2, 3, 4]))
    ingest(card, "A1", db)
    moved = tmp_path / "moved"
    shutil.copytree(card, moved)
    (moved / frames[2].relative_to(card)).unlink()
    r = run("media", "relocate", "-d", "A1", moved, "--sample", "2", "--db", db, "--json")
    assert r.exit_code == 0, r.output
    res = json.loads(r.stdout)
    assert (res["checked_hashes"], res["checked_sizes"], res["missing"]) == (2, 4, ["DCIM/100RECNX/IMG_0003.JPG"])
    (moved / frames[0].relative_to(card)).unlink()
    r = run("media", "relocate", "-d", "A1", card, "--sample", "2", "--db", db)  # back: all there
    assert r.exit_code == 0, r.output
    r = run("media", "relocate", "-d", "A1", moved, "--sample", "2", "--db", db)
    assert r.exit_code == 2 and "IMG_0001.JPG: missing" in flat(r.output)


# -- migration 0012 ---------------------------------------------------------------------------------------
def test_migration_0012_gives_old_catalogs_a_media_root(tmp_path, monkeypatch):
    """A catalog written before 0012 (rel_path relative to each card): one card keeps its rel_paths, two
    cards of one deployment get their folder names in front, rows not written by ingest are left alone."""
    db = tmp_path / "old.db"
    shipped = catalog_mod.migrations()
    monkeypatch.setattr(catalog_mod, "migrations", lambda: [m for m in shipped if m[0] < "0012"])
    with Catalog(db) as cat, cat.transaction():
        cat.execute("INSERT INTO deployments (id, created_at) VALUES ('A', 'x'), ('B', 'x'), ('C', 'x'), ('D', 'x')")
        rows = [("A", "a1", "/data/cards/A_2024-03/DCIM/100RECNX/IMG_0001.JPG", "DCIM/100RECNX/IMG_0001.JPG"),
                ("A", "a2", "/data/cards/A_2024-06/DCIM/100RECNX/IMG_0001.JPG", "DCIM/100RECNX/IMG_0001.JPG"),
                ("B", "b1", "/data/cards/B/DCIM/100RECNX/P1.JPG", "DCIM/100RECNX/P1.JPG"),
                ("B", "b2", "/data/cards/B/DCIM/101RECNX/P1.JPG", "DCIM/101RECNX/P1.JPG"),
                ("C", "c1", "/world/1.jpg", "DCIM/1.jpg"),              # path does not end in rel_path
                ("D", "d1", "/cam/sub/x.jpg", "x.jpg"), ("D", "d2", "/cam/sub/deeper/y.jpg", "y.jpg")]
        for dep, sha, path, rel in rows:
            cat.execute("INSERT INTO media (deployment_id, sha, path, rel_path, kind, size_bytes) "
                        "VALUES (?, ?, ?, ?, 'image', 1)", (dep, sha, path, rel))
    monkeypatch.setattr(catalog_mod, "migrations", lambda: shipped)
    with Catalog(db) as cat:
        assert "0012_media_root.sql" in cat.applied_migrations()
        roots = {r["id"]: r["media_root"] for r in cat.query("SELECT id, media_root FROM deployments")}
        rels = {r["sha"]: (r["rel_path"], r["path"]) for r in cat.query("SELECT sha, rel_path, path FROM media")}
    assert roots == {"A": "/data/cards", "B": "/data/cards/B", "C": None, "D": "/cam/sub"}
    assert {k: v[0] for k, v in rels.items()} == {
        "a1": "A_2024-03/DCIM/100RECNX/IMG_0001.JPG", "a2": "A_2024-06/DCIM/100RECNX/IMG_0001.JPG",
        "b1": "DCIM/100RECNX/P1.JPG", "b2": "DCIM/101RECNX/P1.JPG", "c1": "DCIM/1.jpg",
        "d1": "x.jpg", "d2": "deeper/y.jpg"}
    assert all(path == f"{roots[sha[0].upper()]}/{rel}" for sha, (rel, path) in rels.items() if sha != "c1")


def test_migration_0012_single_card(tmp_path, monkeypatch):
    db = tmp_path / "old.db"
    shipped = catalog_mod.migrations()
    monkeypatch.setattr(catalog_mod, "migrations", lambda: [m for m in shipped if m[0] < "0012"])
    card = tmp_path / "cards" / "A"
    frames = make_burst_card(card, burst_times([0, 1]))
    with Catalog(db) as cat, cat.transaction():
        cat.execute("INSERT INTO deployments (id, created_at) VALUES ('A', 'x')")
        for i, f in enumerate(frames):
            cat.execute("INSERT INTO media (deployment_id, sha, path, rel_path, kind, size_bytes) "
                        "VALUES ('A', ?, ?, ?, 'image', ?)",
                        (blake(f), str(f), f.relative_to(card).as_posix(), f.stat().st_size))
    monkeypatch.setattr(catalog_mod, "migrations", lambda: shipped)
    with Catalog(db) as cat:
        assert cat.scalar("SELECT media_root FROM deployments") == str(card)
        assert [r[0] for r in cat.query("SELECT rel_path FROM media ORDER BY id")] == [
            "DCIM/100RECNX/IMG_0001.JPG", "DCIM/100RECNX/IMG_0002.JPG"]
    shutil.move(str(card), str(tmp_path / "B"))
    r = run("media", "relocate", "-d", "A", tmp_path / "B", "--db", db)
    assert r.exit_code == 0, r.output
    with Catalog(db) as cat:
        assert all(Path(p).is_file() for (p,) in cat.query("SELECT path FROM media"))


@pytest.mark.shared
def test_real_cameras_with_the_same_file_names(tmp_path, shared):
    """camtrapR's sample cards: StationA and StationB both hold IMG0001.JPG-IMG0003.JPG (real Reconyx-style
    frames with EXIF). Ingested as two deployments, both exports name six distinct files that resolve under
    raw_images/, and a copy of StationA elsewhere is accepted by relocate while StationB is refused."""
    pytest.importorskip("frictionless")
    from spotid.export.validate import validate_package

    raw, db = shared / "data/camera-traps/camtrapR-samples/pictures/raw_images", tmp_path / "c.db"
    for dep, lat in (("StationA", 4.1), ("StationB", 4.2)):
        assert ingest(raw / dep, dep, db, tz="+08:00")["media_added"] == 3
        r = run("deployments", "add", dep, "--lat", lat, "--lon", 117.0, "--start", "2009-01-01T00:00:00+08:00",
                "--end", "2009-12-31", "--replace", "--db", db)
        assert r.exit_code == 0, r.output
    mark_detected(db)
    r = run("export", "mdjson", "--db", db, "--out", tmp_path / "md.json")
    assert r.exit_code == 0, r.output
    files = sorted(im["file"] for im in json.loads((tmp_path / "md.json").read_text())["images"])
    assert files == [f"Station{s}/IMG000{i}.JPG" for s in "AB" for i in (1, 2, 3)]
    md_validate(tmp_path / "md.json")
    r = run("export", "camtrapdp", "--db", db, "--out", tmp_path / "dp", "--no-census")
    assert r.exit_code == 0, r.output
    media = list(csv.DictReader((tmp_path / "dp" / "media.csv").open(encoding="utf-8")))
    with Catalog(db) as cat:
        sha = {str(r["id"]): r["sha"] for r in cat.query("SELECT id, sha FROM media")}
    assert sorted(m["filePath"] for m in media) == files
    assert all(blake(raw / m["filePath"]) == sha[m["mediaID"]] for m in media)
    assert validate_package(tmp_path / "dp", shared / "data" / "camtrap-dp") == []

    shutil.copytree(raw / "StationA", tmp_path / "copy" / "StationA")
    r = run("media", "relocate", "-d", "StationA", raw / "StationB", "--db", db)
    assert r.exit_code == 2 and "does not hold deployment StationA's files" in flat(r.output)
    r = run("media", "relocate", "-d", "StationA", tmp_path / "copy" / "StationA", "--db", db, "--json")
    assert r.exit_code == 0 and json.loads(r.stdout)["checked_hashes"] == 3
