"""MegaDetector batch JSON reader/writer."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from spotid.detect import mdjson
from spotid.types import Detection, ImageResult


def _images() -> list[ImageResult]:
    leo = Detection(1, 0.91, (0.1, 0.2, 0.3, 0.4), (("other", 0.1), ("leopard", 0.9)))
    person = Detection(2, 0.5, (0.5, 0.5, 0.25, 0.25))
    return [
        ImageResult("a/IMG_0001.JPG", (leo, person)),
        ImageResult("a/IMG_0002.JPG", ()),
        ImageResult("broken.jpg", (), failure="image could not be decoded"),
    ]


def _validate(d: dict) -> None:
    v = pytest.importorskip("megadetector.postprocessing.validate_batch_results")
    res = v.validate_batch_results(d)["validation_results"]
    assert res["errors"] == []
    assert res["warnings"] == []


def test_writer_format_16(tmp_path: Path):
    out = mdjson.write_batch(tmp_path / "md.json", _images(), detector="spotid-test@abc",
                             typical_threshold=0.3, conservative_threshold=0.15)
    d = json.loads(out.read_text())
    assert d["info"]["format_version"] == "1.6"
    assert d["info"]["detector"] == "spotid-test@abc"
    assert d["info"]["detector_metadata"] == {"typical_detection_threshold": 0.3,
                                              "conservative_detection_threshold": 0.15}
    assert d["detection_categories"] == {"1": "animal", "2": "person", "3": "vehicle"}
    assert d["classification_categories"] == {"1": "leopard", "2": "other"}
    first = d["images"][0]["detections"][0]
    assert first == {"category": "1", "conf": 0.91, "bbox": [0.1, 0.2, 0.3, 0.4],
                     "classifications": [["1", 0.9], ["2", 0.1]]}  # highest first, ids as strings
    assert "classifications" not in d["images"][0]["detections"][1]
    assert d["images"][1]["detections"] == []
    assert d["images"][2] == {"file": "broken.jpg", "failure": "image could not be decoded", "detections": None}
    _validate(d)


def test_round_trip_types(tmp_path: Path):
    ims = _images()
    path = mdjson.write_batch(tmp_path / "md.json", ims, detector="x", typical_threshold=0.2,
                              conservative_threshold=0.1)
    back = mdjson.read_batch(path)
    assert back.format_version == "1.6"
    assert back.thresholds() == (0.2, 0.1)
    assert [im.file for im in back.images] == [im.file for im in ims]
    d0 = back.images[0].detections[0]
    assert d0.category == 1 and d0.label == "leopard" and d0.label_conf == 0.9
    assert back.images[0].detections[1].classifications == ()
    assert back.images[2].failure == "image could not be decoded" and back.images[2].detections == ()
    assert back.images[0].max_detection_conf == 0.91


def test_static_fp_extension_round_trip(tmp_path: Path):
    fp = Detection(1, 0.4, (0.0, 0.5, 0.1, 0.1), (("other", 0.8), ("leopard", 0.2)))
    ims = [ImageResult("x.jpg", (), extra={mdjson.STATIC_FP_KEY: [fp]})]
    d = mdjson.to_dict(ims, detector="x", typical_threshold=0.2, conservative_threshold=0.1)
    assert d["images"][0]["detections"] == []
    assert d["images"][0][mdjson.STATIC_FP_KEY][0]["bbox"] == [0.0, 0.5, 0.1, 0.1]
    back = mdjson.parse_batch(d)
    assert back.images[0].extra[mdjson.STATIC_FP_KEY] == [fp]
    _validate(d)


def test_reader_rejects_non_md(tmp_path: Path):
    p = tmp_path / "x.json"
    p.write_text('{"annotations": []}')
    with pytest.raises(mdjson.MDJsonError, match="no 'images'"):
        mdjson.read_batch(p)
    p.write_text("not json")
    with pytest.raises(mdjson.MDJsonError, match="not valid JSON"):
        mdjson.read_batch(p)
    with pytest.raises(mdjson.MDJsonError, match="no such"):
        mdjson.read_batch(tmp_path / "missing.json")


def test_reader_old_int_categories():
    d = {"info": {"format_version": 1.0}, "images": [
        {"file": "a.jpg", "max_detection_conf": 0.5,
         "detections": [{"category": 1, "conf": 0.5, "bbox": [0, 0, 1, 1]}]}]}
    b = mdjson.parse_batch(d)
    assert b.images[0].detections[0].category == 1
    assert b.thresholds() == (None, None)


@pytest.mark.shared
def test_round_trip_real_mdv5a(shared: Path, tmp_path: Path):
    src = shared / "data/camera-traps/megadetector-test/mdv5a-results.json"
    orig = json.loads(src.read_text())
    batch = mdjson.read_batch(src)
    assert batch.format_version == "1.1"
    assert len(batch.images) == len(orig["images"]) == 31
    out = tmp_path / "md16.json"
    from spotid.util import atomic_write_json
    atomic_write_json(out, mdjson.batch_to_dict(batch))
    again = mdjson.read_batch(out)
    assert again.format_version == "1.6"
    assert again.detector == orig["info"]["detector"]
    for a, o in zip(again.images, orig["images"]):
        assert a.file == o["file"]
        assert len(a.detections) == len(o.get("detections") or [])
        for d, od in zip(a.detections, o["detections"]):
            assert d.category == int(od["category"])
            assert d.conf == pytest.approx(od["conf"], abs=1e-4)
            assert d.bbox == pytest.approx(tuple(od["bbox"]), abs=1e-4)
        assert a.max_detection_conf == pytest.approx(o.get("max_detection_conf", 0.0), abs=1e-6)
        assert a.failure == o.get("failure")
    _validate(json.loads(out.read_text()))
