"""`spotid ingest` and `spotid media list` through typer's CliRunner, on synthetic and real cards."""
from __future__ import annotations

import json
import os
import shutil

import pytest
from typer.testing import CliRunner

from spotid.catalog import Catalog
from spotid.cli import app
from test_ingest_helpers import build_done_when_card, burst_times, make_burst_card

runner = CliRunner()
KEYS = {"files_seen", "media_added", "duplicates", "failures", "warnings", "sequences", "ignored",
        "time_sources", "time_from_unmatched", "times_updated",
        "videos_sampled", "video_frames"}


def run(*args):
    return runner.invoke(app, [str(a) for a in args])


def flat(text: str) -> str:
    return " ".join(text.replace("│", " ").split())


def test_ingest_json_is_one_summary_object(tmp_path, db_path):
    card = tmp_path / "card"
    make_burst_card(card, burst_times([0, 1, 500]))
    (card / "DCIM" / "100RECNX" / "broken.JPG").write_bytes(b"")
    r = run("ingest", card, "--deployment", "AL-01", "--db", db_path, "--tz", "+10:00", "--json")
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert set(out) == KEYS
    counts = (out["files_seen"], out["media_added"], out["duplicates"], out["sequences"], out["ignored"])
    assert counts == (4, 3, 0, 2, 0)
    assert [os.path.basename(f["path"]) for f in out["failures"]] == ["broken.JPG"]
    assert set(out["failures"][0]) == {"path", "reason"}
    assert (out["time_sources"], out["time_from_unmatched"], out["times_updated"]) == ({"DateTimeOriginal": 3}, 0, 0)


def test_ingest_table_and_media_list(tmp_path, db_path):
    card = tmp_path / "card"
    make_burst_card(card, burst_times([0, 1]))
    (card / "DCIM" / "100RECNX" / "zero.JPG").write_bytes(b"")
    r = run("ingest", card, "-d", "AL-01", "--db", db_path, "--tz", "+10:00", "--gap", "30")
    assert r.exit_code == 0, r.output
    assert "media added" in r.stdout and "zero.JPG" in r.stdout
    r = run("media", "list", "--db", db_path, "--json", "--deployment", "AL-01")
    rows = json.loads(r.stdout)
    assert [(m["rel_path"], m["time_source"], m["frame_num"]) for m in rows] == [
        ("DCIM/100RECNX/IMG_0001.JPG", "DateTimeOriginal", 0), ("DCIM/100RECNX/IMG_0002.JPG", "DateTimeOriginal", 1)]
    assert rows[0]["timestamp"] == "2024-03-01T22:13:05+10:00"
    r = run("media", "list", "--db", db_path)
    assert r.exit_code == 0 and "IMG_0002.JPG" in r.stdout and "DateTimeOriginal" in r.stdout
    r = run("media", "list", "--db", db_path, "--failures", "--json")
    assert [os.path.basename(f["path"]) for f in json.loads(r.stdout)] == ["zero.JPG"]
    with Catalog(db_path) as cat:
        assert json.loads(cat.scalar("SELECT config_json FROM runs"))["gap_s"] == 30


def test_ingest_bad_arguments_exit_2_with_the_fix(tmp_path, db_path):
    r = run("ingest", tmp_path / "missing", "-d", "X", "--db", db_path)
    assert r.exit_code == 2 and "pass the folder" in flat(r.output)
    (tmp_path / "card").mkdir()
    r = run("ingest", tmp_path / "card", "-d", "X", "--db", db_path, "--tz", "Vladivostok")
    assert r.exit_code == 2 and "+10:00" in flat(r.output)
    r = run("ingest", tmp_path / "card", "--db", db_path)
    assert r.exit_code == 2 and "--deployment" in flat(r.output)


def test_ingest_config_file(tmp_path, db_path):
    card = tmp_path / "card"
    make_burst_card(card, burst_times([0, 100]))
    cfg = tmp_path / "ingest.yaml"
    cfg.write_text("gap_s: 200\ntz: '+03:00'\n")
    r = run("ingest", card, "-d", "S", "--db", db_path, "--config", cfg, "--json")
    assert r.exit_code == 0 and json.loads(r.stdout)["sequences"] == 1
    cfg.write_text("gap: 200\n")
    r = run("ingest", card, "-d", "S", "--db", db_path, "--config", cfg)
    assert r.exit_code == 2 and "gap_s" in flat(r.output)


# -- real frames from ../shared ----------------------------------------------------------------------
@pytest.mark.shared
def test_serengeti_bursts_give_four_sequences(shared, tmp_path, db_path):
    card = tmp_path / "card"
    shutil.copytree(shared / "data/camera-traps/serengeti-bursts", card, copy_function=shutil.copyfile)
    r = run("ingest", card, "-d", "S1_D04", "--db", db_path, "--tz", "+03:00", "--json")
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert (out["media_added"], out["sequences"], out["failures"], out["ignored"]) == (10, 4, [], 2)
    with Catalog(db_path) as cat:
        sizes = [r[0] for r in cat.query("SELECT n_media FROM sequences ORDER BY start")]
        first = cat.query("SELECT * FROM media ORDER BY timestamp, path LIMIT 1")[0]
    assert sizes == [3, 3, 3, 1]
    assert first["timestamp"] == "2010-08-19T18:24:57+03:00" and first["time_source"] == "DateTimeOriginal"
    assert (first["width"], first["height"]) == (2048, 1536)


@pytest.mark.shared
def test_real_exif_camera_and_reconyx_serial(shared):
    from spotid.ingest import probe_file

    p = probe_file(shared / "data/camera-traps/southwest/testdataowl.JPG", "image")
    assert (p.make, p.model, p.serial, p.time_source) == ("RECONYX", "PC900 PROFESSIONAL", "P900FF03149458",
                                                         "DateTimeOriginal")
    p = probe_file(next((shared / "data/camera-traps/megadetector-test").glob("island_conservation*palau*")), "image")
    assert p.serial == "HLPXEL06008661"  # HF2 PRO maker note


@pytest.mark.shared
@pytest.mark.slow
def test_done_when_card(shared, tmp_path, db_path):
    """The issue's acceptance card: exit 0, the two 0-byte files fail, the cut JPEG is a failure or
    a warning, the copy is a duplicate, the text file fails, and a second run adds nothing."""
    card = tmp_path / "card"
    planted = build_done_when_card(shared, card)
    r = run("ingest", card, "-d", "DONE-1", "--db", db_path, "--tz", "+03:00", "--json")
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    fails = {os.path.basename(f["path"]): f["reason"] for f in out["failures"]}
    warns = {os.path.basename(w["path"]) for w in out["warnings"]}
    assert {"error_img.JPG", "error_vid.mp4"} <= set(fails)
    assert "0 bytes" in fails["error_img.JPG"] and "0 bytes" in fails["error_vid.mp4"]
    assert planted["cut"].name in set(fails) | warns
    assert planted["text"].name in fails
    assert out["duplicates"] == 1
    images = 10 + 31 + 17  # serengeti + megadetector-test + southwest frames (2 of them 0-byte)
    assert out["files_seen"] == images + 3 + out["ignored"]
    assert out["media_added"] == images - 2 + (planted["cut"].name in warns)
    assert out["files_seen"] == out["media_added"] + out["duplicates"] + len(out["failures"]) + out["ignored"]
    r2 = run("ingest", card, "-d", "DONE-1", "--db", db_path, "--json")
    assert r2.exit_code == 0
    out2 = json.loads(r2.stdout)
    assert out2["media_added"] == 0 and out2["duplicates"] == out["media_added"] + 1
    assert out2["sequences"] == out["sequences"] and out2["failures"] == out["failures"]
    with Catalog(db_path) as cat:
        assert cat.scalar("SELECT COUNT(*) FROM media") == out["media_added"]
        assert cat.scalar("SELECT COUNT(*) FROM media WHERE sequence_id IS NULL") == 0
