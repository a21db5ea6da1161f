"""`spotid train fusion --db`: the review decisions of a catalog refit the matcher's calibrated fusion."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from spotid.cli import app
from test_identify import CAL
from test_identify_helpers import FakeEmbedder, coat, warp


class NoFlank:
    """The flank classifier must not be asked: a confirmed sighting's flank is a person's."""

    version = "no-flank@000000000000"

    def __call__(self, images):
        raise AssertionError("the flank classifier was asked about a confirmed crop")


def _catalog(tmp_path: Path, days: dict[str, int], pending: int = 1) -> Path:
    """A catalog with confirmed left-flank sightings: individual name -> days it was seen (2 crops a day,
    camera S1), plus ``pending`` sightings of the first individual that must be ignored."""
    from PIL import Image

    from spotid.catalog import Catalog, now_iso

    db, folder = tmp_path / "season.db", tmp_path / "crops"
    folder.mkdir()
    k = 0
    with Catalog(db) as cat, cat.transaction() as c:
        c.execute("INSERT INTO deployments (id, created_at) VALUES ('S1', ?)", (now_iso(),))
        for i, (name, n_days) in enumerate(days.items()):
            c.execute("INSERT INTO individuals (id, name, flank, status, created_at) VALUES (?, ?, 'left', 'confirmed', ?)",
                      (i + 1, name, now_iso()))
            base = coat(300 + i)
            for day in range(n_days + (pending if i == 0 else 0)):
                for shot in range(2):
                    k += 1
                    path = folder / f"{k}.jpg"
                    Image.fromarray(warp(base, 7 * k)).save(path, quality=92)
                    c.execute("INSERT INTO media (id, deployment_id, sha, path, rel_path, kind, size_bytes, timestamp) "
                              "VALUES (?, 'S1', ?, ?, ?, 'image', 1, ?)",
                              (k, f"sha{k}", str(path), path.name, f"2026-03-{day + 1:02d}T1{shot}:00:00+10:00"))
                    c.execute("INSERT INTO detections (id, media_id, detector, category, conf, x, y, w, h) "
                              "VALUES (?, ?, 'd', 1, 0.9, 0, 0, 1, 1)", (k, k))
                    c.execute("INSERT INTO crops (detection_id, crop_path) VALUES (?, ?)", (k, str(path)))
                    status = "confirmed" if day < n_days else "pending"
                    c.execute("INSERT INTO sightings (detection_id, individual_id, flank, status, updated_at) "
                              "VALUES (?, ?, 'left', ?, ?)", (k, i + 1, status, now_iso()))
    return db


@pytest.fixture
def fake_models(monkeypatch):
    import spotid.identify.cli_train as ct

    monkeypatch.setattr(ct, "_models", lambda cfg, catalog=None: (FakeEmbedder(), NoFlank()))
    monkeypatch.setattr(ct, "_calibration", lambda path, descriptor="rootsift": CAL)


def test_catalog_items_are_confirmed_crops_one_encounter_per_camera_day(tmp_path):
    from spotid.identify.evaluate import catalog_items

    items = catalog_items(_catalog(tmp_path, {"L-0001": 2, "L-0002": 1}))
    assert len(items) == 6                                     # 2 + 1 days x 2 crops; the pending day is left out
    assert {it.flank for it in items} == {"left"}
    assert sorted({it.encounter for it in items}) == ["L-0001/S1/2026-03-01", "L-0001/S1/2026-03-02",
                                                      "L-0002/S1/2026-03-01"]


def test_train_fusion_on_review_decisions_alone(tmp_path, fake_models):
    db = _catalog(tmp_path, {f"L-{i:04d}": 2 for i in range(1, 6)} | {"L-0006": 1})
    out = tmp_path / "fusion"
    r = CliRunner().invoke(app, ["train", "fusion", "--db", str(db), "--verifiers", "sift", "--out", str(out), "--json"])
    assert r.exit_code == 0, r.output
    fitted = json.loads((out / "fusion.json").read_text())
    meta = fitted["data"][f"catalog:{db}"]
    assert meta["individuals"] == 6 and meta["images"] == 22 and meta["encounter"] == "camera and day"
    assert 0 < meta["positives"] < meta["pairs"]
    assert set(fitted["calibrations"]) == {"embedding", "sift"}


def test_train_fusion_refuses_a_catalog_with_too_few_review_decisions(tmp_path, fake_models):
    db = _catalog(tmp_path, {"L-0001": 2, "L-0002": 2, "L-0003": 1})
    r = CliRunner().invoke(app, ["train", "fusion", "--db", str(db), "--verifiers", "sift", "--out", str(tmp_path / "x")])
    assert r.exit_code == 2
    text = " ".join(r.output.replace("│", " ").split())
    assert "2 flanks of them confirmed on two or more camera-days" in text and "spotid review" in text
    assert not (tmp_path / "x").exists()
    r = CliRunner().invoke(app, ["train", "fusion", "--db", str(tmp_path / "nowhere.db")])
    assert r.exit_code == 2 and "no catalog" in r.output
    r = CliRunner().invoke(app, ["train", "fusion"])
    assert r.exit_code == 2 and "--db" in r.output
