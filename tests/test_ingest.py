"""Ingest on synthetic cards: EXIF time sources, time zones, bursts, duplicates, broken files."""
from __future__ import annotations

import io
import json
import os
from datetime import datetime, timedelta, timezone

import numpy as np
import pytest
from PIL import Image

from spotid.catalog import Catalog, migrations
from spotid.config import default_yaml, load_config
from spotid.ingest import (
    IngestConfig, IngestError, Ingester, add_deployment, get_deployment, group_by_gap, make_deployment, probe_file,
)
from spotid.ingest.probe import jpeg_structure, parse_exif_time
from test_ingest_helpers import T0, burst_times, make_burst_card, make_clip, make_jpeg


def ingest(db_path, card, dep="D1", **cfg):
    with Catalog(db_path) as cat:
        return Ingester(cat, IngestConfig(**cfg))(card, dep)


def media(db_path, dep=None):
    with Catalog(db_path) as cat:
        q = "SELECT * FROM media" + (" WHERE deployment_id = ?" if dep else "") + " ORDER BY timestamp, path"
        return [dict(r) for r in cat.query(q, (dep,) if dep else ())]


def test_config_defaults_match_yaml():
    assert load_config(IngestConfig, default_yaml(IngestConfig)) == IngestConfig()


def test_migration_from_empty_database(db_path):
    with Catalog(db_path) as cat:
        assert "0002_ingest.sql" in cat.applied_migrations()
        assert cat.schema_version == len(migrations())
        cols = {r["name"] for r in cat.query("PRAGMA table_info(deployments)")}
        assert "extra_json" in cols
        assert cat.scalar("SELECT name FROM sqlite_master WHERE type='index' AND name='media_path'") == "media_path"


# -- time -----------------------------------------------------------------------------------------------
def test_time_from_exif_subifd_wins_over_ifd0(tmp_path):
    p = make_jpeg(tmp_path / "a.jpg", dto=T0, dtd=T0 + timedelta(hours=1), dt=T0 + timedelta(hours=2),
                  serial="SN-42")
    pr = probe_file(p, "image")
    assert (pr.naive_time, pr.time_source) == (T0, "DateTimeOriginal")
    assert (pr.make, pr.model, pr.serial, pr.width, pr.height) == ("RECONYX", "HF2X", "SN-42", 64, 48)
    assert pr.failure is None and pr.warnings == []


def test_time_fallbacks_digitized_then_ifd0_datetime(tmp_path):
    a = probe_file(make_jpeg(tmp_path / "a.jpg", dtd=T0, dt=T0 + timedelta(hours=2)), "image")
    b = probe_file(make_jpeg(tmp_path / "b.jpg", dt=T0 + timedelta(hours=2)), "image")
    assert (a.naive_time, a.time_source) == (T0, "DateTimeDigitized")
    assert (b.naive_time, b.time_source) == (T0 + timedelta(hours=2), "DateTime")


def test_invalid_exif_time_is_skipped_with_warning():
    assert parse_exif_time("0000:00:00 00:00:00") is None
    assert parse_exif_time("2024:13:01 00:00:00") is None
    assert parse_exif_time(b"2024:03:01 22:13:05\x00") == T0
    assert parse_exif_time("    ") is None


def test_missing_exif_falls_back_to_mtime(tmp_path, db_path):
    card = tmp_path / "card"
    p = make_jpeg(card / "DCIM" / "x.jpg", make=None, model=None)
    mtime = datetime(2024, 5, 6, 7, 8, 9, tzinfo=timezone.utc).timestamp()
    os.utime(p, (mtime, mtime))
    s = ingest(db_path, card, tz="+10:00")
    [m] = media(db_path)
    assert m["time_source"] == "mtime" and m["make"] is None
    assert m["timestamp"] == "2024-05-06T17:08:09+10:00"  # the same instant, shown in the camera's zone
    assert any("no EXIF time" in w.reason for w in s.warnings)


def test_deployment_tz_is_applied(tmp_path, db_path):
    card = tmp_path / "card"
    make_jpeg(card / "a.jpg", dto=T0)
    with Catalog(db_path) as cat:
        add_deployment(cat, make_deployment("D1", latitude=43.1, longitude=131.9, start="2024-02-01T00:00:00+10:00",
                                            end="2024-04-01T00:00:00+10:00"))
    s = ingest(db_path, card)
    assert media(db_path)[0]["timestamp"] == "2024-03-01T22:13:05+10:00"
    assert s.warnings == []


def test_tz_option_is_stored_on_a_deployment_without_one(tmp_path, db_path):
    card = tmp_path / "card"
    make_jpeg(card / "a.jpg", dto=T0)
    ingest(db_path, card, tz="+09:30")
    with Catalog(db_path) as cat:
        assert get_deployment(cat, "D1").tz == "+09:30"
    assert media(db_path)[0]["timestamp"] == "2024-03-01T22:13:05+09:30"


def test_exif_offset_wins_over_deployment_tz(tmp_path, db_path):
    card = tmp_path / "card"
    make_jpeg(card / "a.jpg", dto=T0, offset="-05:00")
    ingest(db_path, card, tz="+10:00")
    assert media(db_path)[0]["timestamp"] == "2024-03-01T22:13:05-05:00"


def test_no_tz_anywhere_stores_utc_and_says_how_to_fix(tmp_path, db_path):
    card = tmp_path / "card"
    make_jpeg(card / "a.jpg", dto=T0)
    s = ingest(db_path, card)
    assert media(db_path)[0]["timestamp"] == "2024-03-01T22:13:05+00:00"
    [w] = s.warnings
    assert "--tz" in w.reason and "deployment's tz" in w.reason


def test_frame_outside_deployment_period_warns(tmp_path, db_path):
    card = tmp_path / "card"
    make_jpeg(card / "ok.jpg", dto=T0)
    make_jpeg(card / "reset.jpg", dto=datetime(2000, 1, 1, 0, 0, 5))  # camera clock reset
    with Catalog(db_path) as cat:
        add_deployment(cat, make_deployment("D1", latitude=43.1, longitude=131.9, start="2024-02-01", end="2024-04-01",
                                            tz="+10:00"))
    s = ingest(db_path, card)
    assert [os.path.basename(w.path) for w in s.warnings] == ["reset.jpg"]
    assert "outside deployment D1" in s.warnings[0].reason and s.media_added == 2
    row = [m for m in media(db_path) if m["rel_path"] == "reset.jpg"][0]
    assert "outside deployment" in row["warning"]


# -- sequences --------------------------------------------------------------------------------------------
def test_group_by_gap_hand_computed():
    assert group_by_gap([0, 5, 100, 101], 60) == [[0, 1], [2, 3]]
    assert group_by_gap([0, 60, 120.5], 60) == [[0, 1], [2]]  # exactly 60 s stays in the burst
    assert group_by_gap([], 60) == []


def test_bursts_and_frame_numbers(tmp_path, db_path):
    card = tmp_path / "card"
    make_burst_card(card, burst_times([0, 2, 4, 200, 201, 1000]))
    s = ingest(db_path, card, tz="+10:00")
    assert s.sequences == 3
    rows = media(db_path)
    seqs = [r["sequence_id"] for r in rows]
    assert seqs[0] == seqs[1] == seqs[2] != seqs[3] == seqs[4] != seqs[5]
    assert [r["frame_num"] for r in rows] == [0, 1, 2, 0, 1, 0]
    with Catalog(db_path) as cat:
        assert [r[0] for r in cat.query("SELECT n_media FROM sequences ORDER BY start")] == [3, 2, 1]
    # A wider gap on a re-run regroups the deployment: 196 s <= 300 s joins the first two bursts.
    s2 = ingest(db_path, card, gap_s=300)
    assert s2.sequences == 2 and s2.media_added == 0
    with Catalog(db_path) as cat:
        assert cat.scalar("SELECT COUNT(*) FROM sequences") == 2


def test_second_card_interleaves_and_sequences_are_recomputed(tmp_path, db_path):
    a, b = tmp_path / "cardA", tmp_path / "cardB"
    make_burst_card(a, burst_times([0, 120, 240]), prefix="A", seed0=0)
    make_burst_card(b, burst_times([60, 180]), prefix="B", seed0=100)
    assert ingest(db_path, a, tz="+10:00").sequences == 3
    first_ids = {r["sequence_id"] for r in media(db_path)}
    s = ingest(db_path, b)
    assert s.sequences == 1 and s.media_added == 2
    rows = media(db_path)
    assert len({r["sequence_id"] for r in rows}) == 1
    assert rows[0]["sequence_id"] in first_ids  # an old id is kept, not a fresh one
    assert [r["rel_path"].split("/")[-1] for r in rows] == ["A_0001.JPG", "B_0001.JPG", "A_0002.JPG", "B_0002.JPG",
                                                           "A_0003.JPG"]
    assert [r["frame_num"] for r in rows] == [0, 1, 2, 3, 4]
    with Catalog(db_path) as cat:
        assert [tuple(r) for r in cat.query("SELECT n_media, start, end FROM sequences")] == [
            (5, "2024-03-01T22:13:05+10:00", "2024-03-01T22:17:05+10:00")]


# -- duplicates -------------------------------------------------------------------------------------------
def test_duplicates_across_cards_and_reruns(tmp_path, db_path):
    a, b = tmp_path / "cardA", tmp_path / "cardB"
    frames = make_burst_card(a, burst_times([0, 1, 2]))
    (b / "DCIM" / "100EK113").mkdir(parents=True)
    (b / "DCIM" / "100EK113" / "copy.jpg").write_bytes(frames[1].read_bytes())
    make_jpeg(b / "DCIM" / "100EK113" / "new.jpg", dto=T0 + timedelta(hours=5), seed=999)
    s1 = ingest(db_path, a, tz="+10:00")
    assert (s1.media_added, s1.duplicates) == (3, 0)
    s2 = ingest(db_path, b, dep="D2", tz="+10:00")  # another deployment's card holding a copy
    assert (s2.files_seen, s2.media_added, s2.duplicates, s2.already_ingested) == (2, 1, 1, 0)
    assert s2.elsewhere == {"D1": 1} and any("other deployment(s) (D1: 1)" in w.reason for w in s2.warnings)
    assert len(media(db_path)) == 4
    s3 = ingest(db_path, a)  # re-run: nothing new, same sequences
    assert (s3.media_added, s3.duplicates, s3.already_ingested, s3.sequences) == (0, 3, 3, s1.sequences)
    # A copy inside one card is recognised too.
    (a / "DCIM" / "100RECNX" / "IMG_0001 (copy).JPG").write_bytes(frames[0].read_bytes())
    s4 = ingest(db_path, a)
    assert (s4.media_added, s4.duplicates) == (0, 4)
    with Catalog(db_path) as cat:
        assert cat.scalar("SELECT COUNT(*) FROM media") == cat.scalar("SELECT COUNT(DISTINCT sha) FROM media") == 4


# -- broken input -----------------------------------------------------------------------------------------
def _noise_jpeg_bytes(w=512, h=384, seed=1) -> bytes:
    rng = np.random.default_rng(seed)
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(buf, "JPEG", quality=90)
    return buf.getvalue()


def test_jpeg_structure_finds_the_real_scan_end():
    data = _noise_jpeg_bytes()
    sos, eoi = jpeg_structure(data)
    assert 0 < sos < eoi == len(data) - 2
    assert jpeg_structure(data[: len(data) // 2])[1] == -1            # cut inside the scan
    assert jpeg_structure(data[:sos - 10]) == (-1, -1)                  # cut inside the header
    assert jpeg_structure(data + b"trailer")[1] == len(data) - 2        # bytes after EOI are fine
    assert jpeg_structure(b"not a jpeg") == (-1, -1)


def test_broken_files_never_stop_the_run(tmp_path, db_path):
    card = tmp_path / "card"
    d = card / "DCIM" / "100RECNX"
    make_jpeg(d / "good.JPG", dto=T0)
    (d / "empty.JPG").write_bytes(b"")
    (d / "notes.jpg").write_text("this is a field note, not a photo\n")
    full = _noise_jpeg_bytes()
    (d / "cut_header.jpg").write_bytes(full[:100])
    (d / "cut_20pct.jpg").write_bytes(full[: len(full) // 5])
    (d / "cut_80pct.jpeg").write_bytes(full[: len(full) * 4 // 5])
    (d / "garbage.mp4").write_bytes(b"\x00" * 64)
    make_clip(d / "clip.MOV", created=T0, n=10, blob=None)
    (d / "stub.mov").write_bytes(b"\x00\x00\x00\x18ftypqt  " + b"\x00" * 100)   # a header, no video
    (d / "empty.avi").write_bytes(b"")
    (card / ".DS_Store").write_bytes(b"\x00\x01")
    (d / "._good.JPG").write_bytes(b"\x00\x05\x16\x07")
    (card / "log.txt").write_text("camera log")
    make_jpeg(card / ".Trashes" / "501" / "deleted.JPG", dto=T0)  # hidden folders are not entered
    s = ingest(db_path, card, tz="+10:00")
    fails = {os.path.basename(f.path): f.reason for f in s.failures}
    assert set(fails) == {"empty.JPG", "notes.jpg", "cut_header.jpg", "cut_20pct.jpg", "garbage.mp4", "empty.avi",
                          "stub.mov"}
    assert "0 bytes" in fails["empty.JPG"] and "looks like text" in fails["notes.jpg"]
    assert "header" in fails["cut_header.jpg"] and "truncated JPEG" in fails["cut_20pct.jpg"]
    assert "not a video" in fails["garbage.mp4"] and "OpenCV cannot read" in fails["stub.mov"]
    warned = {os.path.basename(w.path): w.reason for w in s.warnings}
    assert "cut_80pct.jpeg" in warned and "truncated JPEG" in warned["cut_80pct.jpeg"]
    assert s.media_added == 3 and s.ignored == 3
    assert s.files_seen == s.media_added + s.duplicates + len(s.failures) + s.ignored == 13
    kinds = {m["rel_path"]: m["kind"] for m in media(db_path) if m["parent_id"] is None}
    assert kinds == {"DCIM/100RECNX/good.JPG": "image", "DCIM/100RECNX/cut_80pct.jpeg": "image",
                     "DCIM/100RECNX/clip.MOV": "video"}
    with Catalog(db_path) as cat:
        assert cat.scalar("SELECT COUNT(*) FROM ingest_failures") == 7
    # The re-copied file ingests and leaves the failure list.
    make_jpeg(d / "empty.JPG", dto=T0 + timedelta(minutes=1), seed=5)
    s2 = ingest(db_path, card)
    assert s2.media_added == 1 and len(s2.failures) == 6
    with Catalog(db_path) as cat:
        assert cat.scalar("SELECT COUNT(*) FROM ingest_failures WHERE path LIKE '%empty.JPG'") == 0


def _mp4(created: datetime | None, *, v1: bool = False) -> bytes:
    """A minimal MP4: ftyp, a 'free' box, then moov/mvhd (version 0 or 1) with the creation time."""
    secs = 0 if created is None else int((created - datetime(1904, 1, 1)).total_seconds())
    if v1:
        mvhd_body = b"\x01\x00\x00\x00" + secs.to_bytes(8, "big") + b"\x00" * 100
    else:
        mvhd_body = b"\x00\x00\x00\x00" + secs.to_bytes(4, "big") + b"\x00" * 92
    mvhd = (8 + len(mvhd_body)).to_bytes(4, "big") + b"mvhd" + mvhd_body
    moov = (8 + len(mvhd)).to_bytes(4, "big") + b"moov" + mvhd
    ftyp = b"\x00\x00\x00\x14ftypmp42\x00\x00\x00\x00mp42"
    free = b"\x00\x00\x00\x10free" + b"\x00" * 8
    return ftyp + free + moov


def test_video_time_from_mp4_header(tmp_path, db_path):
    from spotid.ingest.probe import probe_file

    card = tmp_path / "card"
    make_clip(card / "a.MP4", created=T0, n=10, blob=None)                          # mvhd version 0
    make_clip(card / "b.mov", created=T0 + timedelta(seconds=30), n=10, blob=None)
    make_clip(card / "c.mp4", created=None, n=10, blob=None)                        # no time in the header
    mtime = datetime(2024, 5, 6, tzinfo=timezone.utc).timestamp()
    os.utime(card / "c.mp4", (mtime, mtime))
    s = ingest(db_path, card, tz="+10:00")
    assert s.media_added == 3 and s.failures == [] and s.sequences == 2
    got = {m["rel_path"]: (m["kind"], m["timestamp"], m["time_source"]) for m in media(db_path)
           if m["parent_id"] is None}
    assert got == {
        "a.MP4": ("video", "2024-03-01T22:13:05+10:00", "QuickTimeCreateDate"),
        "b.mov": ("video", "2024-03-01T22:13:35+10:00", "QuickTimeCreateDate"),
        "c.mp4": ("video", "2024-05-06T10:00:00+10:00", "mtime"),
    }
    # a version-1 mvhd (64-bit times); header-only, so probed rather than ingested (no frame decodes)
    (tmp_path / "v1.mp4").write_bytes(_mp4(T0 + timedelta(seconds=30), v1=True))
    p = probe_file(tmp_path / "v1.mp4", "video")
    assert (p.naive_time, p.time_source, p.failure) == (T0 + timedelta(seconds=30), "QuickTimeCreateDate", None)


def test_run_is_recorded_with_resolved_config(tmp_path, db_path):
    card = tmp_path / "card"
    make_burst_card(card, burst_times([0, 1]))
    s = ingest(db_path, card, tz="+10:00", gap_s=30)
    with Catalog(db_path) as cat:
        row = cat.query("SELECT * FROM runs WHERE id = ?", (s.run_id,))[0]
        assert row["stage"] == "ingest" and row["status"] == "done"
        cfg = json.loads(row["config_json"])
        assert cfg["gap_s"] == 30 and cfg["tz_applied"] == "+10:00" and cfg["deployment"] == "D1"
        assert json.loads(row["summary_json"])["media_added"] == 2
        assert cat.scalar("SELECT COUNT(*) FROM media WHERE run_id = ?", (s.run_id,)) == 2


def test_keyboard_interrupt_keeps_committed_batches_and_resumes(tmp_path, db_path, monkeypatch):
    card = tmp_path / "card"
    make_burst_card(card, burst_times(list(range(0, 250, 10))))  # 25 frames
    calls = {"n": 0}
    real_write = Ingester._write

    def flaky_write(self, rows, failures, dep_id, s, *videos):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return real_write(self, rows, failures, dep_id, s, *videos)

    monkeypatch.setattr(Ingester, "_write", flaky_write)
    with pytest.raises(KeyboardInterrupt):
        ingest(db_path, card, tz="+10:00", batch_size=5)
    assert len(media(db_path)) == 10  # two committed batches
    with Catalog(db_path) as cat:
        assert cat.scalar("SELECT status FROM runs ORDER BY id DESC LIMIT 1") == "interrupted"
    monkeypatch.setattr(Ingester, "_write", real_write)
    s = ingest(db_path, card, batch_size=5)
    assert (s.media_added, s.duplicates) == (15, 10)
    rows = media(db_path)
    assert len(rows) == 25 == len({r["sha"] for r in rows})
    assert len({r["sequence_id"] for r in rows}) == 1 and all(r["sequence_id"] for r in rows)


def test_bad_input_errors_name_the_fix(tmp_path, db_path):
    with pytest.raises(IngestError, match="pass the folder"):
        ingest(db_path, tmp_path / "nope")
    with pytest.raises(IngestError, match="use an offset"):
        IngestConfig(tz="Vladivostok")
    with pytest.raises(IngestError, match="--gap"):
        IngestConfig(gap_s=-1)


def test_unforeseen_error_on_one_file_is_a_failure_not_a_crash(tmp_path, db_path, monkeypatch):
    import spotid.ingest.ingester as ing

    card = tmp_path / "card"
    make_burst_card(card, burst_times([0, 1, 2]))
    real = ing.probe_file

    def boom(path, kind, **kw):
        if path.name == "IMG_0002.JPG":
            raise RuntimeError("disk hiccup")
        return real(path, kind, **kw)

    monkeypatch.setattr(ing, "probe_file", boom)
    s = ingest(db_path, card, tz="+10:00")
    assert s.media_added == 2 and [os.path.basename(f.path) for f in s.failures] == ["IMG_0002.JPG"]
    assert "RuntimeError: disk hiccup" in s.failures[0].reason


def test_large_files_are_hashed_streaming_and_checked_from_their_ends(tmp_path, monkeypatch):
    import hashlib

    import spotid.ingest.probe as probe_mod

    monkeypatch.setattr(probe_mod, "MAX_IN_MEMORY", 1000)
    monkeypatch.setattr(probe_mod, "CHUNK", 4096)
    data = _noise_jpeg_bytes(400, 300)
    (tmp_path / "big.jpg").write_bytes(data)
    (tmp_path / "cut.jpg").write_bytes(data[: len(data) // 2])
    big, cut = probe_file(tmp_path / "big.jpg", "image"), probe_file(tmp_path / "cut.jpg", "image")
    assert big.sha == hashlib.blake2b(data, digest_size=20).hexdigest()
    assert (big.width, big.height, big.failure) == (400, 300, None)
    assert "no end marker" in cut.failure
