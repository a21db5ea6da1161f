"""Videos (issue 23 item 1): frames sampled at ingest become media children of the video, detect and the
Camtrap DP export treat them like photos, and a video OpenCV cannot read is a recorded failure that the
human summaries of ingest, detect and process show."""
from __future__ import annotations

import csv
import hashlib
import json
from datetime import timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from spotid.catalog import Catalog
from spotid.cli import app
from spotid.detect import mdjson
from spotid.ingest.ingester import IngestConfig, Ingester
from spotid.ingest.video import FrameSampler, frames_dir
from spotid.types import Detection, ImageResult
from test_ingest_helpers import T0, make_clip, make_jpeg

runner = CliRunner()
CLIP = "DCIM/100MEDIA/clip.mp4"


def _card(root: Path, *, broken: bool = True) -> Path:
    """A photo, an 8-s clip (blob moving in frames 30-49) timed T0 + 10 s, and (``broken``) a clip cut in
    half and a file that only starts like an MP4."""
    make_jpeg(root / "DCIM/100MEDIA/IMG_0001.JPG", dto=T0, seed=1)
    make_clip(root / CLIP, created=T0 + timedelta(seconds=10))
    if broken:
        whole = make_clip(root / "tmp.mp4", created=T0).read_bytes()
        (root / "tmp.mp4").unlink()
        (root / "DCIM/100MEDIA/cut.mp4").write_bytes(whole[: len(whole) // 2])   # mdat cut, no moov
        (root / "DCIM/100MEDIA/junk.mp4").write_bytes(b"\x00\x00\x00\x14ftypmp42" + bytes(range(256)) * 8)
    return root


def _ingest(db: Path, card: Path, **kw):
    with Catalog(db) as cat:
        return Ingester(cat, IngestConfig(tz="+10:00", video_every_s=2.0, video_max_frames=8, **kw))(card, "D1")


# -- sampling ------------------------------------------------------------------------------------------
def test_sampler_takes_regular_frames_and_frames_around_motion(tmp_path):
    clip = make_clip(tmp_path / "c.mp4")   # 80 frames at 10 fps; the blob moves in frames 30..49
    s = FrameSampler(every_s=2.0, max_frames=8, motion=0.01)(clip)
    assert s.failure is None and (s.fps, s.n_decoded, s.n_header) == (10.0, 80, 80)
    regular = [f.index for f in s.frames if f.reason == "regular"]
    motion = [f.index for f in s.frames if f.reason == "motion"]
    assert regular == [0, 20, 40, 60]                          # every 2 s
    assert motion and all(30 <= i <= 50 for i in motion)       # only where the blob moves (or leaves)
    assert all(f.offset_s == pytest.approx(f.index / 10) for f in s.frames)
    assert all((f.width, f.height) == (64, 48) and f.jpeg[:2] == b"\xff\xd8" for f in s.frames)
    # no motion sampling: the regular frames only
    assert [f.index for f in FrameSampler(every_s=2.0, max_frames=8, motion=0.0)(clip).frames] == [0, 20, 40, 60]
    # cap 3: spacing widens to 8 s / 3 (frames 0, 27, 54), the strongest motion peak takes one slot and
    # the first and last regular frames the other two
    capped = FrameSampler(every_s=2.0, max_frames=3, motion=0.01)(clip).frames
    assert len(capped) == 3 and capped[0].index == 0 and capped[2].index == 54
    assert capped[1].reason == "motion" and 30 <= capped[1].index <= 50


def test_sampler_failures_name_the_fix(tmp_path):
    (tmp_path / "junk.mp4").write_bytes(b"\x00\x00\x00\x14ftypmp42" + bytes(range(256)) * 8)
    s = FrameSampler()(tmp_path / "junk.mp4")
    assert s.frames == [] and "OpenCV cannot read" in s.failure and "re-copy it from the card" in s.failure
    with pytest.raises(ValueError, match="video_max_frames"):
        FrameSampler(max_frames=0)


def test_a_clip_cut_short_keeps_what_decodes_with_a_warning(tmp_path):
    """An AVI (MJPG) cut at 60 %: the container says 80 frames, 46 decode; the frames before the cut are
    kept and the video row carries the warning."""
    import cv2
    import numpy as np

    w = cv2.VideoWriter(str(tmp_path / "full.avi"), cv2.VideoWriter_fourcc(*"MJPG"), 10, (64, 48))
    for i in range(80):
        w.write(np.random.default_rng(i).integers(0, 255, (48, 64, 3), dtype=np.uint8))
    w.release()
    data = (tmp_path / "full.avi").read_bytes()
    card = tmp_path / "card"
    card.mkdir()
    (card / "cut.avi").write_bytes(data[: len(data) * 6 // 10])
    s = FrameSampler(every_s=2.0, max_frames=8, motion=0.0)(card / "cut.avi")
    assert (s.n_header, s.n_decoded, [f.index for f in s.frames]) == (80, 46, [0, 20, 40])
    assert s.warning.startswith("video decodes to 4.6 s of 8.0 s: cut short?")
    summary = _ingest(tmp_path / "c.db", card)
    assert summary.failures == [] and summary.video_frames >= 3
    assert [w.reason for w in summary.warnings if w.path.endswith("cut.avi")][0].count("cut short?") == 1


# -- ingest ---------------------------------------------------------------------------------------------
def test_ingest_stores_frames_as_media_children_with_their_time(tmp_path):
    card, db = _card(tmp_path / "card", broken=False), tmp_path / "c.db"
    s = _ingest(db, card)
    assert s.media_added == 2 and s.failures == [] and (s.videos_sampled, s.video_frames) == (1, 6)
    with Catalog(db) as cat:
        video = dict(cat.query("SELECT * FROM media WHERE kind = 'video'")[0])
        frames = [dict(r) for r in cat.query("SELECT * FROM media WHERE parent_id IS NOT NULL ORDER BY frame_offset_s")]
    assert video["timestamp"] == "2024-03-01T22:13:15+10:00" and video["parent_id"] is None
    assert [f["frame_offset_s"] for f in frames][:1] == [0.0] and len(frames) == 6
    regular = [f for f in frames if f["rel_path"] in {f"{CLIP}/frame0000{n}.jpg" for n in ("00", "20", "40", "60")}]
    assert [(f["rel_path"].rsplit("/", 1)[1], f["timestamp"]) for f in regular] == [
        ("frame000000.jpg", "2024-03-01T22:13:15+10:00"), ("frame000020.jpg", "2024-03-01T22:13:17+10:00"),
        ("frame000040.jpg", "2024-03-01T22:13:19+10:00"), ("frame000060.jpg", "2024-03-01T22:13:21+10:00")]
    for f in frames:
        p = Path(f["path"])
        assert p.parent == frames_dir(db) / video["sha"] and p.is_file()
        # keyed by the video and frame number: identical frames (the still background of 0, 20, 60) stay apart
        key = f"{video['sha']}/{p.name[:-4]}".encode()
        assert f["sha"] == hashlib.blake2b(key, digest_size=20).hexdigest()
        assert (f["kind"], f["deployment_id"], f["time_source"], f["sequence_id"]) == (
            "image", "D1", "QuickTimeCreateDate", video["sequence_id"])   # the video's burst
    # a re-run samples nothing again and adds nothing
    s2 = _ingest(db, card)
    assert (s2.media_added, s2.videos_sampled, s2.video_frames) == (0, 0, 0)


def test_unreadable_video_is_a_recorded_failure_in_the_ingest_summary(tmp_path):
    card, db = _card(tmp_path / "card"), tmp_path / "c.db"
    r = runner.invoke(app, ["ingest", str(card), "-d", "D1", "--db", str(db), "--tz", "+10:00"])
    assert r.exit_code == 0, r.output
    assert "videos sampled / their frames" in r.output and "cut.mp4" in r.output
    assert r.output.count("OpenCV cannot read") == 2
    with Catalog(db) as cat:
        fails = {Path(p).name: why for p, why in cat.query("SELECT path, reason FROM ingest_failures")}
        assert set(fails) == {"cut.mp4", "junk.mp4"} and all("OpenCV cannot read" in w for w in fails.values())
        assert cat.scalar("SELECT COUNT(*) FROM media WHERE kind = 'video'") == 1


# -- detect, process and export ------------------------------------------------------------------------
def _md(path: Path, label: str = "leopard") -> Path:
    """An MD batch file with an animal box (classified ``label``) on the clip's frame 20 (2 s in), nothing
    elsewhere."""
    box = Detection(1, 0.9, (0.25, 0.25, 0.5, 0.5), ((label, 0.8),))
    mdjson.write_batch(path, [ImageResult(f"{CLIP}/frame000020.jpg", (box,)),
                              ImageResult("DCIM/100MEDIA/IMG_0001.JPG", ())],
                       detector="ref", typical_threshold=0.2, conservative_threshold=0.05)
    return path


def test_detect_runs_on_frames_and_says_what_was_not_analysed(tmp_path):
    card, db = _card(tmp_path / "card"), tmp_path / "c.db"
    _ingest(db, card)
    md = _md(tmp_path / "md.json")
    r = runner.invoke(app, ["detect", "--db", str(db), "--detector", f"mdjson:{md}", "--json"])
    assert r.exit_code == 0, r.output
    s = json.loads(r.stdout)
    assert s["frames"] == 1 + 6 and s["video_frames"] == 6 and s["ingest_failures"] == 2
    with Catalog(db) as cat:
        assert cat.scalar("SELECT COUNT(*) FROM detection_status s JOIN media m ON m.id = s.media_id "
                          "WHERE m.kind = 'video'") == 0          # the video goes through its frames only
        on = cat.query("SELECT m.rel_path, m.frame_offset_s FROM detections d JOIN media m ON m.id = d.media_id")
        assert [tuple(x) for x in on] == [(f"{CLIP}/frame000020.jpg", 2.0)]
        # another model's "leopard" probabilities: identify holds them to no founding floor
        assert cat.get_setting("detect.found_min_leopard_p:mdjson:ref") == ""
    # the human summary names the files ingest could not read
    with Catalog(db) as cat, cat.transaction():
        cat.execute("DELETE FROM detection_status")
        cat.execute("DELETE FROM detections")
    r = runner.invoke(app, ["detect", "--db", str(db), "--detector", f"mdjson:{md}"])
    assert "6 of the frames were sampled from videos" in r.output
    assert "2 files could not be ingested" in r.output and "spotid media list --failures" in r.output


def test_a_video_ingested_without_frames_is_reported_by_detect(tmp_path):
    """Catalogs from before frame sampling: the video was never analysed; detect says so and how to fix it."""
    card, db = _card(tmp_path / "card", broken=False), tmp_path / "c.db"
    _ingest(db, card)
    with Catalog(db) as cat, cat.transaction():
        cat.execute("DELETE FROM media WHERE parent_id IS NOT NULL")
    r = runner.invoke(app, ["detect", "--db", str(db), "--detector", f"mdjson:{_md(tmp_path / 'md.json')}", "--json"])
    fails = {f["file"]: f["reason"] for f in json.loads(r.stdout)["failures"]}
    assert set(fails) == {CLIP} and "re-run `spotid ingest`" in fails[CLIP]
    # re-ingesting the card samples it
    assert _ingest(db, card).video_frames == 6


def test_process_summary_shows_videos_and_failures(tmp_path):
    card, db = _card(tmp_path / "card"), tmp_path / "c.db"
    cfg = tmp_path / "cfg.yaml"
    md = _md(tmp_path / "md.json", label="other")   # no leopard: identify has nothing to do
    cfg.write_text(f"ingest:\n  video_every_s: 2.0\n  video_max_frames: 8\ndetect:\n  detector: mdjson:{md}\n")
    r = runner.invoke(app, ["process", str(card), "--deployment", "D1", "--db", str(db), "--tz", "+10:00",
                            "--config", str(cfg)], env={"COLUMNS": "200"})
    assert r.exit_code == 0, r.output
    out = " ".join(r.output.split())
    assert "videos sampled / their frames │ 1 / 6" in out and "frames detected / with animals │ 7 / 1" in out
    assert "failed" in out and "cut.mp4" in out and "junk.mp4" in out and "OpenCV cannot read" in out


def test_camtrapdp_maps_a_frame_detection_to_the_video_with_its_offset(tmp_path):
    card, db = _card(tmp_path / "card", broken=False), tmp_path / "c.db"
    _ingest(db, card)
    with Catalog(db) as cat, cat.transaction():
        cat.execute("UPDATE deployments SET latitude = 43.1, longitude = 131.5")
    r = runner.invoke(app, ["detect", "--db", str(db), "--detector", f"mdjson:{_md(tmp_path / 'md.json')}"])
    assert r.exit_code == 0, r.output
    from spotid.export.camtrapdp import export_camtrapdp

    with Catalog(db) as cat:
        export_camtrapdp(cat, tmp_path / "dp")
        video_id = str(cat.scalar("SELECT id FROM media WHERE kind = 'video'"))
        photo_id = str(cat.scalar("SELECT id FROM media WHERE rel_path LIKE '%IMG_0001.JPG'"))
    media = list(csv.DictReader((tmp_path / "dp/media.csv").open()))
    # no frame rows; paths are <deployment>/<rel_path> (unique across cameras)
    assert sorted(m["filePath"] for m in media) == ["D1/DCIM/100MEDIA/IMG_0001.JPG", "D1/" + CLIP]
    video = next(m for m in media if m["mediaID"] == video_id)
    assert video["fileMediatype"] == "video/mp4" and video["timestamp"] == "2024-03-01T22:13:15+10:00"
    obs = {o["mediaID"]: o for o in csv.DictReader((tmp_path / "dp/observations.csv").open())}
    assert set(obs) == {video_id, photo_id}
    o = obs[video_id]
    assert (o["observationType"], o["eventStart"], o["eventEnd"]) == (
        "animal", "2024-03-01T22:13:17+10:00", "2024-03-01T22:13:17+10:00")     # video start + 2.0 s
    assert o["observationComments"].startswith("video frame at 2.00 s") and o["bboxX"] == "0.25"
    assert obs[photo_id]["observationType"] == "blank"


@pytest.mark.shared
def test_camtrapdp_with_a_video_validates(tmp_path, shared):
    pytest.importorskip("frictionless")
    from spotid.export.camtrapdp import export_camtrapdp
    from spotid.export.validate import validate_package

    card, db = _card(tmp_path / "card", broken=False), tmp_path / "c.db"
    _ingest(db, card)
    with Catalog(db) as cat, cat.transaction():
        cat.execute("UPDATE deployments SET latitude = 43.1, longitude = 131.5")
    runner.invoke(app, ["detect", "--db", str(db), "--detector", f"mdjson:{_md(tmp_path / 'md.json')}"])
    with Catalog(db) as cat:
        export_camtrapdp(cat, tmp_path / "dp")
    assert validate_package(tmp_path / "dp", shared / "data" / "camtrap-dp") == []


@pytest.mark.shared
def test_real_camtrapr_video_is_sampled(tmp_path, shared):
    """camtrapR's sample clip (StationA/PBE, 34 frames of 1280x720 at 29.9 fps, 1.1 s) gives its first frame
    and the one 1 s in, timed from its mvhd creation time."""
    src = shared / "data/camera-traps/camtrapR-samples/pictures/sample_images_species_dir/StationA/PBE/20251112_100312.mp4"
    card = tmp_path / "card"
    card.mkdir()
    (card / src.name).write_bytes(src.read_bytes())
    with Catalog(tmp_path / "c.db") as cat:
        s = Ingester(cat, IngestConfig(tz="+08:00"))(card, "A")
        rows = [tuple(r) for r in cat.query("SELECT rel_path, frame_offset_s, timestamp, width, height FROM media "
                                            "WHERE parent_id IS NOT NULL ORDER BY id")]
    assert s.failures == [] and s.video_frames == 2
    assert rows == [(f"{src.name}/frame000000.jpg", 0.0, "2025-11-12T02:03:13+08:00", 1280, 720),
                    (f"{src.name}/frame000030.jpg", 1.002, "2025-11-12T02:03:14+08:00", 1280, 720)]


def test_detect_folder_mode_samples_videos_into_megadetector_frame_entries(tmp_path):
    card = _card(tmp_path / "card")
    md, out = _md(tmp_path / "md.json"), tmp_path / "out.json"
    r = runner.invoke(app, ["detect", str(card), "--detector", f"mdjson:{md}", "--output", str(out), "--json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["video_frames"] == 10    # default sampling: every 1 s (8) + 2 motion peaks
    images = {im["file"]: im for im in json.loads(out.read_text())["images"]}
    frames = sorted(f for f in images if f.startswith(CLIP + "/"))
    assert len(frames) == 10 and frames[0] == f"{CLIP}/frame000000.jpg" and CLIP not in images
    assert [d["bbox"] for d in images[f"{CLIP}/frame000020.jpg"]["detections"]] == [[0.25, 0.25, 0.5, 0.5]]
    assert "OpenCV cannot read" in images["DCIM/100MEDIA/cut.mp4"]["failure"]
    assert "OpenCV cannot read" in images["DCIM/100MEDIA/junk.mp4"]["failure"]


def test_review_page_shows_a_video_frame_like_a_photo(tmp_path):
    from fastapi.testclient import TestClient

    from spotid.review.app import create_app

    card, db = _card(tmp_path / "card", broken=False), tmp_path / "c.db"
    _ingest(db, card)
    runner.invoke(app, ["detect", "--db", str(db), "--detector", f"mdjson:{_md(tmp_path / 'md.json')}"])
    with Catalog(db) as cat:
        frame = cat.scalar("SELECT id FROM media WHERE rel_path = ?", (f"{CLIP}/frame000020.jpg",))
        video = cat.scalar("SELECT id FROM media WHERE kind = 'video'")
    c = TestClient(create_app(db, reviewer="t"), base_url="http://127.0.0.1")
    r = c.get(f"/img/frame/{frame}")
    assert r.status_code == 200 and r.content[:2] == b"\xff\xd8"   # the frame, with its box drawn
    assert c.get(f"/img/frame/{video}").status_code == 404         # a video has no still of its own
