"""Frames without camera time (issue 23, point 7): the file-copy-time frames are counted in the human
summaries, never grouped into bursts, and ``--time-from filename:PATTERN`` reads the time cameras write
into file names. Tiny synthetic JPEGs with and without EXIF, with set modification times."""
from __future__ import annotations

import json
import os
from datetime import datetime, timezone
from types import SimpleNamespace

import pytest
from typer.testing import CliRunner

from spotid.catalog import Catalog, now_iso
from spotid.cli import app
from spotid.identify.bursts import group_bursts
from spotid.ingest import IngestConfig, IngestError, add_deployment, group_by_gap, make_deployment
from spotid.ingest.timefrom import TimeFromError, parse_time_from
from test_ingest_helpers import T0, burst_times, make_burst_card, make_jpeg

runner = CliRunner()
COPY = datetime(2024, 5, 6, 7, 8, 9, tzinfo=timezone.utc).timestamp()   # one copy second for every file


def run(*args):
    return runner.invoke(app, [str(a) for a in args])


def flat(text: str) -> str:
    return " ".join(text.replace("│", " ").split())


def copied_card(card, names, exif=None):
    """JPEGs ``names`` in card/DCIM/100MEDIA; ``exif`` {name: naive time} gives those an EXIF time. Every
    file gets the same mtime, as a copy to a laptop does."""
    for i, n in enumerate(names):
        p = make_jpeg(card / "DCIM" / "100MEDIA" / n, dto=(exif or {}).get(n), make=None, model=None, seed=100 + i)
        os.utime(p, (COPY, COPY))
    return card


def media(db):
    with Catalog(db) as cat:
        return {r["rel_path"].rsplit("/", 1)[-1]: dict(r) for r in cat.query(
            "SELECT m.*, q.n_media FROM media m LEFT JOIN sequences q ON q.id = m.sequence_id")}


# -- bursts ------------------------------------------------------------------------------------------
def test_group_by_gap_keeps_alone_frames_out_of_every_burst():
    assert group_by_gap([0, 1, 2], 60, [False, True, False]) == [[0, 2], [1]]
    assert group_by_gap([0, 0, 0, 100], 60, [True, True, True, False]) == [[0], [1], [2], [3]]
    # an alone frame neither bridges nor splits: 0 and 90 are 90 s apart, so two groups
    assert group_by_gap([0, 45, 90], 60, [False, True, False]) == [[0], [1], [2]]
    assert group_by_gap([0, 5, 100, 101], 60) == [[0, 1], [2, 3]]


def test_mtime_frames_are_never_one_burst(tmp_path):
    """Four photos without EXIF copied in one second (four different animals, say) used to become one
    sequence, which identify votes over as one animal; now each is its own. EXIF bursts still group."""
    NOEXIF = ["a.jpg", "b.jpg", "c.jpg", "d.jpg"]
    card = copied_card(tmp_path / "card", [*NOEXIF, "e.jpg", "f.jpg"],
                       exif={"e.jpg": T0, "f.jpg": T0.replace(second=T0.second + 2)})
    db = tmp_path / "c.db"
    r = run("ingest", card, "-d", "D1", "--db", db, "--tz", "+10:00", "--json")
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert out["time_sources"] == {"DateTimeOriginal": 2, "mtime": 4} and out["sequences"] == 5
    m = media(db)
    assert len({m[n]["sequence_id"] for n in NOEXIF}) == 4 and all(m[n]["n_media"] == 1 for n in NOEXIF)
    assert m["e.jpg"]["sequence_id"] == m["f.jpg"]["sequence_id"] and m["f.jpg"]["frame_num"] == 1
    rows = [SimpleNamespace(sequence_id=v["sequence_id"], media_id=v["id"], detection_id=i)
            for i, v in enumerate(m.values())]
    assert sorted(len(g) for g in group_bursts(rows).values()) == [1, 1, 1, 1, 2]


def test_ingest_summary_counts_frames_without_camera_time_and_says_what_to_do(tmp_path):
    card = copied_card(tmp_path / "card", ["a.jpg", "b.jpg", "c.jpg"], exif={"c.jpg": T0})
    r = run("ingest", card, "-d", "D1", "--db", tmp_path / "c.db", "--tz", "+10:00")
    assert r.exit_code == 0, r.output
    text = flat(r.stdout)
    assert "frames without camera time (file copy time used) 2" in text
    assert "2 frames have no camera time (no EXIF time)" in text and "--time-from filename:PATTERN" in text
    # a card with camera times says nothing about it beyond the zero
    card2 = tmp_path / "card2"
    make_burst_card(card2, burst_times([0, 1]))
    r = run("ingest", card2, "-d", "D2", "--db", tmp_path / "c.db", "--tz", "+10:00")
    assert "frames without camera time (file copy time used) 0" in flat(r.stdout)
    assert "no camera time" not in r.stdout


def test_process_summary_counts_frames_without_camera_time(tmp_path, monkeypatch):
    import spotid.workflow.process as process

    # detect and identify have their own tests; here only what the card's ingest reports matters
    monkeypatch.setattr(process, "run_detect", lambda *a, **k: {"frames": 3, "animal_frames": 0,
                                                                "leopard_detections": 0, "static_fp": 0})
    monkeypatch.setattr(process, "run_identify", lambda *a, **k: {})
    card = copied_card(tmp_path / "card", ["a.jpg", "b.jpg", "c.jpg"])
    r = run("process", card, "--deployment", "D1", "--db", tmp_path / "c.db", "--tz", "+10:00")
    assert r.exit_code == 0, r.output
    text = flat(r.stdout)
    assert "frames without camera time (file copy" in text           # the row (folded at 80 columns)
    assert "3 frames have no camera time" in text and "--time-from" in text


# -- --time-from filename:PATTERN --------------------------------------------------------------------
def test_time_from_pattern_parsing_hand_computed():
    tf = parse_time_from("filename:%Y%m%d_%H%M%S")
    assert tf.from_filename and tf.parse("Front_00_20240301_221305.JPG") == datetime(2024, 3, 1, 22, 13, 5)
    assert tf.parse("IMG_0001.JPG") is None
    assert tf.parse("IMG_20241301_221305.JPG") is None          # month 13: no date, falls back
    assert tf.parse("IMG_120240301_221305.JPG") is None         # never read from inside a longer number
    assert parse_time_from("filename:%y-%m-%d %H.%M").parse("cam 24-03-01 22.13 (2).jpg") == datetime(
        2024, 3, 1, 22, 13)
    assert parse_time_from("filename:100%%_%Y%m%d%H%M%S").parse("100%_20240301221305.jpg") == datetime(
        2024, 3, 1, 22, 13, 5)
    assert not parse_time_from("exif").from_filename and not parse_time_from(None).from_filename
    for bad, says in [("filename:%Y%m%d", "no hour (%H) or minute (%M)"), ("filename:%Y%m%d%H%M%Q", "unknown directive %Q"),
                      ("filename:%m%d_%H%M", "no year (%Y or %y);"),
                      ("filename:%Y%Y%m%d%H%M", "%Y appears twice"), ("name:%Y", "'exif' (the default) or 'filename:"),
                      ("filename", "'filename:PATTERN'")]:
        with pytest.raises(TimeFromError, match="e.g. --time-from filename:%Y%m%d_%H%M%S") as e:
            parse_time_from(bad)
        assert says in str(e.value)
    with pytest.raises(IngestError, match="unknown directive"):
        IngestConfig(time_from="filename:%Q")


def test_ingest_time_from_filename_with_deployment_tz(tmp_path):
    """Names win over EXIF; a name that does not match falls back to EXIF, then mtime, and is counted.
    The deployment's tz (+03:00 here, no --tz) applies to the name's wall-clock time."""
    db = tmp_path / "c.db"
    with Catalog(db) as cat:
        add_deployment(cat, make_deployment("D1", latitude=43.1, longitude=131.5, start="2024-01-01T00:00:00+03:00",
                                            end="2024-12-31T00:00:00+03:00"))
    card = copied_card(tmp_path / "card", ["IMG_20240301_221305.JPG", "IMG_20240301_221306.JPG", "IMG_0003.JPG",
                                           "IMG_0004.JPG"],
                       exif={"IMG_20240301_221306.JPG": datetime(2020, 1, 1), "IMG_0003.JPG": datetime(2024, 3, 2, 1)})
    r = run("ingest", card, "-d", "D1", "--db", db, "--time-from", "filename:%Y%m%d_%H%M%S", "--json")
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert out["time_sources"] == {"DateTimeOriginal": 1, "filename": 2, "mtime": 1}
    assert out["time_from_unmatched"] == 2
    m = media(db)
    assert [(m[n]["timestamp"], m[n]["time_source"]) for n in sorted(m)] == [
        ("2024-03-02T01:00:00+03:00", "DateTimeOriginal"),   # IMG_0003: EXIF, in the deployment's zone
        ("2024-05-06T10:08:09+03:00", "mtime"),              # IMG_0004: 07:08:09 UTC
        ("2024-03-01T22:13:05+03:00", "filename"),
        ("2024-03-01T22:13:06+03:00", "filename"),           # the name wins over EXIF 2020
    ]
    assert m["IMG_20240301_221305.JPG"]["sequence_id"] == m["IMG_20240301_221306.JPG"]["sequence_id"]
    assert "does not match --time-from" in m["IMG_0004.JPG"]["warning"]
    with Catalog(db) as cat:
        assert json.loads(cat.scalar("SELECT config_json FROM runs"))["time_from"] == "filename:%Y%m%d_%H%M%S"


def test_rerun_with_time_from_gives_copied_frames_their_camera_time(tmp_path):
    """The summary tells the user to re-run with --time-from: that re-run must fix the frames it
    ingested before, and regroup them into the burst they were."""
    db, names = tmp_path / "c.db", ["IMG_20240301_221305.JPG", "IMG_20240301_221307.JPG"]
    card = copied_card(tmp_path / "card", names)
    r = run("ingest", card, "-d", "D1", "--db", db, "--tz", "+10:00")
    assert "frames without camera time (file copy time used) 2" in flat(r.stdout)
    m = media(db)
    assert m[names[0]]["sequence_id"] != m[names[1]]["sequence_id"]
    r = run("ingest", card, "-d", "D1", "--db", db, "--tz", "+10:00", "--time-from", "filename:%Y%m%d_%H%M%S")
    assert r.exit_code == 0, r.output
    text = flat(r.stdout)
    assert "frames without camera time (file copy time used) 0" in text
    assert "frames given a camera time on this run (were file copy time) 2" in text
    m = media(db)
    assert [m[n]["timestamp"] for n in names] == ["2024-03-01T22:13:05+10:00", "2024-03-01T22:13:07+10:00"]
    assert m[names[0]]["sequence_id"] == m[names[1]]["sequence_id"] and m[names[1]]["n_media"] == 2
    r = run("ingest", card, "-d", "D1", "--db", db, "--tz", "+10:00", "--time-from", "filename:%Y%m%d_%H%M%S",
            "--json")
    assert json.loads(r.stdout)["times_updated"] == 0


def test_unmatched_names_are_said_in_the_summary(tmp_path):
    card = copied_card(tmp_path / "card", ["IMG_0001.JPG"])
    r = run("ingest", card, "-d", "D1", "--db", tmp_path / "c.db", "--time-from", "filename:%Y-%m-%d %H-%M-%S")
    assert r.exit_code == 0, r.output
    text = flat(r.stdout)
    assert "frames timed by their file name / names not matching 0 / 1" in text
    assert "1 file names do not match --time-from filename:%Y-%m-%d %H-%M-%S" in text


@pytest.mark.parametrize("cmd", ["ingest", "process"])
def test_bad_time_from_exits_2_naming_the_fix_and_creates_no_catalog(tmp_path, cmd):
    card = copied_card(tmp_path / "card", ["IMG_0001.JPG"])
    db = tmp_path / "c.db"
    for bad, says in [("filename:%Y%m%d", "no hour (%H) or minute (%M)"), ("names", "use 'exif' (the default) or")]:
        r = run(cmd, card, "--deployment", "D1", "--db", db, "--time-from", bad)
        assert r.exit_code == 2, r.output
        text = flat(r.output)
        assert says in text and "--time-from filename:%Y%m%d_%H%M%S" in text and "--config" not in text
    assert not db.exists()


def test_identify_gives_copy_time_frames_no_time_for_paired_station_evidence(tmp_path):
    """Paired-station pairing joins a left and a right burst photographed within seconds at one station;
    two cards copied in the same second must not look like that."""
    from spotid.identify.config import IdentifyConfig
    from spotid.identify.pipeline import Identifier

    with Catalog(tmp_path / "c.db") as cat, cat.transaction():
        cat.execute("INSERT INTO deployments (id, created_at) VALUES ('cam1', ?)", (now_iso(),))
        for i, source in enumerate(["mtime", "DateTimeOriginal"]):
            cat.execute("INSERT INTO media (id, deployment_id, sha, path, rel_path, kind, size_bytes, timestamp, "
                        "time_source) VALUES (?, 'cam1', ?, ?, ?, 'image', 1, '2024-03-01T01:00:00+10:00', ?)",
                        (i + 1, f"s{i}", f"/x/{i}.jpg", f"{i}.jpg", source))
            cat.execute("INSERT INTO detections (media_id, detector, category, conf, x, y, w, h, label) "
                        "VALUES (?, 't', 1, 0.9, 0.1, 0.1, 0.2, 0.2, 'leopard')", (i + 1,))
    with Catalog(tmp_path / "c.db") as cat:
        rows = Identifier._todo(SimpleNamespace(cfg=IdentifyConfig()), cat, None)   # reads the catalog and cfg only
    assert {r["media_id"]: r["timestamp"] for r in rows} == {1: None, 2: "2024-03-01T01:00:00+10:00"}
