"""Hand-labelled boxes on whole photos -> flank-folder crops (spotid train cut-boxes)."""
from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from PIL import Image
from typer.testing import CliRunner

from spotid.cli import app
from spotid.train.boxes import cut_labelled_boxes

HEADER = ["file", "split", "box", "xmin", "ymin", "xmax", "ymax", "flank", "note"]


def _labels(path: Path, rows: list[list]) -> Path:
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(HEADER)
        w.writerows(rows)
    return path


@pytest.fixture
def photos(tmp_path: Path) -> Path:
    root = tmp_path / "voc"
    (root / "train-images").mkdir(parents=True)
    Image.new("RGB", (400, 200), (90, 120, 60)).save(root / "train-images" / "a.jpg")
    (root / "train-images" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not a jpeg")
    return root


def test_cut_boxes_layout_padding_and_failures(photos: Path, tmp_path: Path):
    labels = _labels(tmp_path / "l.csv", [
        ["a.jpg", "train", 0, 100, 50, 300, 150, "left", ""],     # 200 x 100 box, padded 10% each side
        ["a.jpg", "train", 1, 10, 10, 60, 60, "front", ""],
        ["a.jpg", "train", 2, 10, 10, 60, 60, "unknown", "cub rolling"],
        ["a.jpg", "test", 3, 10, 10, 60, 60, "right", ""],        # other split: not cut with split=train
        ["missing.jpg", "train", 0, 1, 1, 50, 50, "left", ""],
        ["broken.jpg", "train", 0, 1, 1, 50, 50, "left", ""],
        ["a.jpg", "train", 4, 374, 152, 374, 190, "right", "zero-width box"],
    ])
    res = cut_labelled_boxes(labels, photos, tmp_path / "out", split="train")
    assert res.written == 2 and res.by_flank == {"left": 1, "front": 1}
    assert res.skipped_unknown == 1
    assert sorted(f for f, _ in res.failures) == ["a.jpg", "broken.jpg", "missing.jpg"]
    left = tmp_path / "out" / "a" / "left" / "a_b0.jpg"
    assert left.exists() and (tmp_path / "out" / "a" / "front" / "a_b1.jpg").exists()
    # identify's padding: 10% of the box on each side -> 240 x 120
    assert Image.open(left).size == (240, 120)


def test_cut_boxes_rejects_bad_flank_and_header(photos: Path, tmp_path: Path):
    with pytest.raises(ValueError, match="flank 'side'"):
        cut_labelled_boxes(_labels(tmp_path / "bad.csv", [["a.jpg", "train", 0, 1, 1, 50, 50, "side", ""]]),
                           photos, tmp_path / "o")
    (tmp_path / "h.csv").write_text("file,flank\na.jpg,left\n")
    with pytest.raises(ValueError, match="lacks column"):
        cut_labelled_boxes(tmp_path / "h.csv", photos, tmp_path / "o")


def test_cut_boxes_cli(photos: Path, tmp_path: Path):
    labels = _labels(tmp_path / "l.csv", [["a.jpg", "train", 0, 100, 50, 300, 150, "right", ""]])
    r = CliRunner().invoke(app, ["train", "cut-boxes", str(labels), "--images-root", str(photos),
                                 "--out", str(tmp_path / "out"), "--json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["by_flank"] == {"right": 1}
    r = CliRunner().invoke(app, ["train", "cut-boxes", str(labels), "--images-root", str(tmp_path / "nope"),
                                 "--out", str(tmp_path / "out")])
    assert r.exit_code == 2 and "pass the folder" in r.output


def test_voc_flank_labels_cut_on_real_photos(shared: Path, tmp_path: Path):
    """The shipped hand labels (models/flank/amur_leopard_voc_flanks.csv) fit the real VOC photos."""
    labels = Path(__file__).resolve().parent.parent / "models" / "flank" / "amur_leopard_voc_flanks.csv"
    res = cut_labelled_boxes(labels, shared / "data" / "detection" / "amur-leopard-voc", tmp_path / "test",
                             split="test")
    assert res.failures == [] and res.skipped_unknown == 1
    assert res.by_flank == {"front": 30, "left": 7, "right": 4}


def test_cut_boxes_cli_says_when_nothing_was_cut(photos: Path, tmp_path: Path):
    labels = _labels(tmp_path / "l.csv", [["missing.jpg", "train", 0, 1, 1, 50, 50, "left", ""],
                                          ["broken.jpg", "train", 0, 1, 1, 50, 50, "left", ""]])
    r = CliRunner().invoke(app, ["train", "cut-boxes", str(labels), "--images-root", str(photos),
                                 "--out", str(tmp_path / "out")])
    assert r.exit_code == 1
    assert "nothing was cut" in r.output and "not found under" in r.output
    # the broken photo is described as ingest describes it, naming the fix
    assert "broken.jpg:" in r.output and "re-copy" in r.output
