"""Detect stage: geometry, NMS, decoding, the builtin pipeline with tiny random weights, backends, CLI."""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from spotid.detect import mdjson
from spotid.detect.config import DetectConfig
from spotid.types import Detection, ImageResult


# -- fixtures ----------------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory) -> dict[str, Path]:
    """Random-weight YOLOX-tiny and crop classifier folders with model cards (input 64 px: fast)."""
    from spotid.detect.classifier import build_crop_classifier
    from spotid.detect.model import build_yolox_tiny
    from spotid.modelstore import write_card

    root = tmp_path_factory.mktemp("models")
    torch.manual_seed(0)
    det, clf = root / "detector", root / "classifier"
    det.mkdir()
    clf.mkdir()
    m = build_yolox_tiny()
    torch.save({k: v.half() if v.is_floating_point() else v for k, v in m.state_dict().items()}, det / "w.pt")
    write_card(det, name="tiny-det", kind="detector", weights="w.pt", input_size=64, category_ids=[1],
               thresholds={"typical": 0.3, "conservative": 0.0})
    torch.save(build_crop_classifier().state_dict(), clf / "c.pt")
    write_card(clf, name="tiny-clf", kind="classifier", weights="c.pt", input_size=32, classes=["leopard", "other"])
    return {"detector": det, "classifier": clf}


def _jpeg(path: Path, w: int = 160, h: int = 120, seed: int = 0) -> Path:
    from PIL import Image

    r = np.random.default_rng(seed)
    arr = (r.random((h, w, 3)) * 255).astype(np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).save(path, quality=80)
    return path


def _card(folder: Path, n: int = 6) -> list[Path]:
    paths = [_jpeg(folder / "DCIM/100RECNX" / f"IMG_{i:04d}.JPG", seed=i) for i in range(n)]
    (folder / "DCIM/100RECNX/broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    (folder / "DCIM/100RECNX/empty.JPG").write_bytes(b"")
    (folder / "DCIM/100RECNX/clip.mp4").write_bytes(b"\x00" * 10)
    (folder / "notes.txt").write_text("ignored")
    return paths


def _cfg(tiny_models, **kw) -> DetectConfig:
    base = dict(model=str(tiny_models["detector"]), classifier=str(tiny_models["classifier"]), threshold=0.0,
                batch_size=3, decode_workers=1, threads=1)
    base.update(kw)
    return DetectConfig(**base)


# -- geometry ----------------------------------------------------------------------------------------
def test_letterbox_hand_computed():
    from spotid.detect.model import letterbox_array, letterbox_size

    assert letterbox_size(200, 100, 64) == (64, 32, 0.32)
    img = np.zeros((100, 200, 3), np.uint8)
    canvas, lb = letterbox_array(img, 64)
    assert canvas.shape == (64, 64, 3) and lb.ratio == pytest.approx(0.32) and lb.orig_size == (200, 100)
    assert (canvas[:32] == 0).all() and (canvas[32:] == 114).all()  # top-left placement, grey padding
    rect, _ = letterbox_array(img, 64, rect=True)
    assert rect.shape == (32, 64, 3)
    # an image already decoded at 1/4 scale keeps the ratio of the ORIGINAL frame
    small = np.zeros((25, 50, 3), np.uint8)
    _, lb2 = letterbox_array(small, 64, (200, 100))
    assert lb2.ratio == pytest.approx(0.32) and lb2.orig_size == (200, 100)


def test_box_conversion_hand_computed():
    from spotid.detect.model import Letterbox, cxcywh_to_xyxy, xyxy_px_to_norm_xywh

    assert cxcywh_to_xyxy(torch.tensor([[10.0, 20.0, 4.0, 6.0]])).tolist() == [[8.0, 17.0, 12.0, 23.0]]
    lb = Letterbox((200, 100), 0.32)
    # canvas box (16, 8)-(32, 16) -> original (50, 25)-(100, 50) -> normalised (0.25, 0.25, 0.25, 0.25)
    out = xyxy_px_to_norm_xywh(np.array([[16.0, 8.0, 32.0, 16.0]]), lb)
    assert out[0].tolist() == pytest.approx([0.25, 0.25, 0.25, 0.25])
    # boxes leaving the frame are clipped to it
    out = xyxy_px_to_norm_xywh(np.array([[-10.0, 0.0, 80.0, 40.0]]), lb)
    assert out[0].tolist() == pytest.approx([0.0, 0.0, 1.0, 1.0])


def test_postprocess_nms_hand_computed():
    from spotid.detect.model import postprocess

    # rows: cx, cy, w, h, objectness, class score  (score = obj * cls)
    pred = torch.tensor([[
        [50.0, 50.0, 20.0, 20.0, 0.9, 1.0],   # 0.90 kept
        [52.0, 50.0, 20.0, 20.0, 0.8, 1.0],   # 0.80 IoU 0.818 with the first -> suppressed
        [10.0, 10.0, 8.0, 8.0, 0.5, 0.8],     # 0.40 kept
        [90.0, 90.0, 8.0, 8.0, 0.5, 0.4],     # 0.20 below 0.25
    ]])
    (boxes, scores, cls), = postprocess(pred, conf_thresh=0.25, nms_thresh=0.45)
    assert scores.tolist() == pytest.approx([0.9, 0.4])
    assert boxes.flatten().tolist() == pytest.approx([40, 40, 60, 60, 6, 6, 14, 14])
    assert cls.tolist() == [0, 0]
    (b2, s2, _), = postprocess(pred, conf_thresh=0.95, nms_thresh=0.45)
    assert len(s2) == 0 and b2.shape == (0, 4)


def test_reduction_choice():
    from spotid.detect.builtin import reduction_for

    assert reduction_for(4000, 3000, 416) == 8
    assert reduction_for(2048, 1536, 416) == 4
    assert reduction_for(1920, 1080, 416) == 4
    assert reduction_for(1920, 1080, 640) == 2
    assert reduction_for(800, 600, 416) == 1


def test_decode_failures_are_data(tmp_path: Path):
    from spotid.detect.builtin import decode_reduced

    good = _jpeg(tmp_path / "a.jpg", 1600, 1200)
    d = decode_reduced(good, 416)
    assert d.failure is None and d.orig_size == (1600, 1200) and d.image.shape == (600, 800, 3)  # 1/2 scale: 1/4 would be < 416
    (tmp_path / "zero.jpg").write_bytes(b"")
    assert "empty" in decode_reduced(tmp_path / "zero.jpg", 416).failure
    (tmp_path / "junk.jpg").write_bytes(b"hello")
    assert "could not" in decode_reduced(tmp_path / "junk.jpg", 416).failure


def test_config_yaml_matches_dataclass():
    from spotid.config import default_yaml

    data = yaml.safe_load(default_yaml(DetectConfig).read_text())
    defaults = {f.name: f.default for f in dataclasses.fields(DetectConfig)}
    assert data == defaults


# -- pipeline with tiny random weights ---------------------------------------------------------------
def test_builtin_pipeline_tiny(tmp_path: Path, tiny_models):
    from spotid.detect.detector import VIDEO_FAILURE, make_detector
    from spotid.detect.run import list_frames

    _card(tmp_path)
    det = make_detector(_cfg(tiny_models))
    frames = list_frames(tmp_path)
    res = list(det(frames, tmp_path))
    assert [r.file for r in res] == [p.relative_to(tmp_path).as_posix() for p in frames]
    by = {r.file: r for r in res}
    assert by["DCIM/100RECNX/empty.JPG"].failure.startswith("image file is empty")
    assert "could not" in by["DCIM/100RECNX/broken.jpg"].failure
    assert by["DCIM/100RECNX/clip.mp4"].failure == VIDEO_FAILURE
    ok = [r for r in res if not r.failure]
    assert len(ok) == 6 and all(r.detections for r in ok)  # threshold 0 keeps boxes of a random net
    for r in ok:
        for d in r.detections:
            x, y, w, h = d.bbox
            assert 0 <= x <= 1 and 0 <= y <= 1 and 0 < w <= 1 and 0 < h <= 1 and x + w <= 1 + 1e-6
            assert d.category == 1
            names = [c[0] for c in d.classifications]
            assert sorted(names) == ["leopard", "other"]
            assert d.classifications[0][1] >= d.classifications[1][1]
            assert sum(c[1] for c in d.classifications) == pytest.approx(1.0, abs=1e-5)
    assert "tiny-det@" in det.version and "tiny-clf@" in det.version


def test_batching_does_not_change_results(tmp_path: Path, tiny_models):
    from spotid.detect.detector import make_detector

    paths = _card(tmp_path, 5)
    a = list(make_detector(_cfg(tiny_models, batch_size=1, use_classifier=False))(paths, tmp_path))
    b = list(make_detector(_cfg(tiny_models, batch_size=4, use_classifier=False))(paths, tmp_path))
    from spotid.detect.static_fp import iou

    for ra, rb in zip(a, b):
        assert len(ra.detections) == len(rb.detections)
        # a random net gives near-tied scores: compare as sets, not by rank
        assert sorted(d.conf for d in ra.detections) == pytest.approx(sorted(d.conf for d in rb.detections), abs=1e-4)
        for da in ra.detections:
            assert max(iou(da.bbox, db.bbox) for db in rb.detections) > 0.99


# -- backends ----------------------------------------------------------------------------------------
def test_mdjson_backend_matches_by_path_then_name(tmp_path: Path):
    from spotid.detect.detector import make_detector

    paths = _card(tmp_path, 3)
    md = tmp_path / "md.json"
    dets = (Detection(1, 0.8, (0.1, 0.1, 0.2, 0.2)), Detection(1, 0.05, (0.5, 0.5, 0.1, 0.1)))
    mdjson.write_batch(md, [
        ImageResult("DCIM/100RECNX/IMG_0000.JPG", dets),                      # same relative path
        ImageResult("D:\\cards\\x\\IMG_0001.JPG", ()),                         # another machine: by name
        ImageResult("broken.jpg", (), failure="corrupt"),
    ], detector="MDv5a", typical_threshold=0.2, conservative_threshold=0.05)
    det = make_detector(DetectConfig(detector=f"mdjson:{md}", threshold=0.1))
    res = list(det(paths, tmp_path))
    assert res[0].detections == (dets[0],)             # below --threshold dropped
    assert res[1].detections == () and res[1].failure is None
    assert res[2].failure == "not in md.json"
    assert det.version == "mdjson:MDv5a" and det.typical_threshold == 0.2


def test_megadetector_backend_errors_name_the_fix(tmp_path: Path):
    from spotid.detect.detector import DetectorError, make_detector

    with pytest.raises(DetectorError, match="--megadetector-weights"):
        make_detector(DetectConfig(detector="megadetector"))
    with pytest.raises(DetectorError, match="do not exist"):
        make_detector(DetectConfig(detector="megadetector", megadetector_weights=str(tmp_path / "md_v5a.0.0.pt")))
    with pytest.raises(DetectorError, match="builtin, megadetector or mdjson"):
        make_detector(DetectConfig(detector="yolo9000"))


def test_megadetector_backend_missing_package(tmp_path: Path, monkeypatch):
    import builtins

    from spotid.detect.detector import DetectorError, make_detector

    w = tmp_path / "md_v5a.0.0.pt"
    w.write_bytes(b"x")
    real_import = builtins.__import__

    def fake_import(name, *a, **k):
        if name.startswith("megadetector"):
            raise ImportError("No module named 'megadetector'")
        return real_import(name, *a, **k)

    monkeypatch.setattr(builtins, "__import__", fake_import)
    with pytest.raises(DetectorError, match=r"pip install 'spotid\[megadetector\]'"):
        make_detector(DetectConfig(detector="megadetector", megadetector_weights=str(w)))


# -- static false positives ----------------------------------------------------------------------------
def test_static_fp_hand_computed():
    from datetime import datetime, timedelta

    from spotid.detect.static_fp import Box, find_static, iou

    assert iou((0, 0, 2, 2), (1, 0, 2, 2)) == pytest.approx(2 / 6)
    t0 = datetime(2024, 1, 1)
    stump = (0.10, 0.60, 0.10, 0.10)
    boxes = []
    # the stump: 6 frames in 3 bursts over 10 hours, jittering by less than IoU 0.85
    for i in range(6):
        jitter = 0.002 * (i % 2)
        boxes.append(Box(f"s{i}", f"f{i}", (stump[0] + jitter, stump[1], stump[2], stump[3]), 0.4,
                         sequence=i // 2, time=t0 + timedelta(hours=2 * i)))
    # a leopard walking through 6 frames of one burst: moves every frame
    for i in range(6):
        boxes.append(Box(f"l{i}", f"f{i}", (0.3 + 0.05 * i, 0.4, 0.2, 0.15), 0.9, sequence=0,
                         time=t0 + timedelta(seconds=i)))
    # a deer standing still for one 5-frame burst (same place, one sequence, seconds): not static
    for i in range(5):
        boxes.append(Box(f"d{i}", f"g{i}", (0.6, 0.3, 0.2, 0.3), 0.8, sequence=9, time=t0 + timedelta(seconds=i)))
    # a weak box below min_conf at the stump's place never counts
    boxes.append(Box("weak", "f9", stump, 0.05, sequence=7, time=t0))
    flagged = find_static(boxes, iou_thresh=0.85, min_frames=5, min_sequences=3, min_hours=2.0, min_conf=0.1)
    assert flagged == {f"s{i}" for i in range(6)}
    # only 4 frames of the stump: below min_frames
    assert find_static(boxes[:4], min_frames=5) == set()
    # unknown bursts: the time span decides (10 h >= 2 h)
    nos = [dataclasses.replace(b, sequence=None) for b in boxes[:6]]
    assert find_static(nos, min_frames=5) == {f"s{i}" for i in range(6)}
    assert find_static(nos, min_frames=5, min_hours=24) == set()


def test_folder_static_fp_moves_boxes_to_extension(tmp_path: Path):
    from spotid.detect.run import _suppress_folder

    ims, cfg = [], DetectConfig(static_fp_min_frames=3, static_fp_min_sequences=2, static_fp_min_hours=100)
    import os
    import time as _t
    for i in range(4):
        p = _jpeg(tmp_path / "cam1" / f"{i}.jpg", 32, 32, i)
        os.utime(p, (_t.time() + 3600 * i, _t.time() + 3600 * i))   # one hour apart: 4 bursts
        ims.append(ImageResult(f"cam1/{i}.jpg", (Detection(1, 0.5, (0.1, 0.1, 0.2, 0.2)),
                                                 Detection(1, 0.9, (0.2 + 0.15 * i, 0.5, 0.2, 0.2)))))
    out, n = _suppress_folder(ims, tmp_path, cfg)
    assert n == 4
    for im in out:
        assert len(im.detections) == 1 and im.detections[0].conf == 0.9
        assert im.extra[mdjson.STATIC_FP_KEY][0].bbox == (0.1, 0.1, 0.2, 0.2)
        assert im.max_detection_conf == 0.9


# -- evaluation ----------------------------------------------------------------------------------------
def test_average_precision_hand_computed():
    from spotid.detect.evaluate import average_precision

    # 3 truths; predictions by score: TP, FP, TP  -> precision 1, 1/2, 2/3 at recall 1/3, 1/3, 2/3
    # interpolated: recall 0->1/3 at 1.0, 1/3->2/3 at 2/3 => AP = 1/3 + 2/9
    ap = average_precision(np.array([0.9, 0.8, 0.7]), np.array([True, False, True]), 3)
    assert ap == pytest.approx(1 / 3 + 2 / 9)
    assert average_precision(np.array([]), np.array([], bool), 2) == 0.0


def test_evaluate_counts():
    from spotid.detect.evaluate import evaluate
    from spotid.detect.truth import TruthBox

    L = (("leopard", 0.9), ("other", 0.1))
    O = (("other", 0.7), ("leopard", 0.3))
    truth = {"a.jpg": [TruthBox(1, (0.1, 0.1, 0.2, 0.2), "leopard")],
             "b.jpg": [TruthBox(1, (0.5, 0.5, 0.2, 0.2), "leopard")],
             "c.jpg": [],
             "d.jpg": [TruthBox(1, (0.0, 0.0, 0.5, 0.5), "other")]}
    res = {"a.jpg": ImageResult("a.jpg", (Detection(1, 0.9, (0.1, 0.1, 0.2, 0.2), L),)),
           "b.jpg": ImageResult("b.jpg", (Detection(1, 0.8, (0.5, 0.5, 0.2, 0.2), O),)),
           "c.jpg": ImageResult("c.jpg", (Detection(1, 0.6, (0.7, 0.7, 0.1, 0.1), O),)),
           "d.jpg": ImageResult("d.jpg", (Detection(1, 0.1, (0.0, 0.0, 0.5, 0.5), O),))}
    ev = evaluate(res, truth, threshold=0.5)
    assert (ev.tp, ev.fp, ev.fn) == (2, 1, 1)
    assert ev.precision == pytest.approx(2 / 3) and ev.recall == pytest.approx(2 / 3)
    assert (ev.leopard_classified_leopard, ev.leopard_boxes_found) == (1, 2)
    assert ev.image_agreement == 2  # a, b agree; c (empty, predicted animal) and d (missed) do not
    # AP over all boxes: scores .9 TP, .8 TP, .6 FP, .1 TP with 3 truths = 2/3 + 1/3 * 3/4
    assert ev.ap50 == pytest.approx(2 / 3 + 0.25)


def test_truth_readers(tmp_path: Path):
    from spotid.detect.truth import name_to_category, read_truth

    assert name_to_category("amur_leopard") == (1, "leopard")
    assert name_to_category("Leopard Cat") == (1, "other")
    assert name_to_category("human") == (2, None)
    assert name_to_category("empty") == (None, None)
    (tmp_path / "voc").mkdir()
    _jpeg(tmp_path / "imgs" / "x.jpg", 200, 100)
    (tmp_path / "voc" / "x.xml").write_text(
        "<annotation><filename>x.jpg</filename><size><width>0</width><height>0</height></size>"
        "<object><name>amur_leopard</name><bndbox><xmin>20</xmin><ymin>10</ymin><xmax>120</xmax>"
        "<ymax>60</ymax></bndbox></object></annotation>")
    fmt, boxes = read_truth(tmp_path / "voc", tmp_path / "imgs")
    assert fmt == "voc" and boxes["x.jpg"][0].bbox == pytest.approx((0.1, 0.1, 0.5, 0.5))
    coco = {"images": [{"id": 1, "file_name": "s/a.jpg", "width": 100, "height": 50},
                       {"id": 2, "file_name": "s/b.jpg", "width": 100, "height": 50}],
            "annotations": [{"id": 1, "image_id": 1, "category_id": 3, "bbox": [10, 5, 50, 25]},
                            {"id": 2, "image_id": 2, "category_id": 0}],
            "categories": [{"id": 0, "name": "empty"}, {"id": 3, "name": "leopard"}]}
    (tmp_path / "truth.json").write_text(json.dumps(coco))
    fmt, boxes = read_truth(tmp_path / "truth.json")
    assert fmt == "coco" and boxes["s/a.jpg"][0].bbox == pytest.approx((0.1, 0.1, 0.5, 0.5))
    assert boxes["s/a.jpg"][0].label == "leopard" and boxes["s/b.jpg"] == []


# -- training recipe (tiny) ----------------------------------------------------------------------------
def _fake_voc(root: Path, n: int = 2) -> Path:
    voc = root / "detection/amur-leopard-voc"
    (voc / "annotations").mkdir(parents=True)
    for i in range(n):
        _jpeg(voc / "train-images" / f"amur_leopard{i}.jpg", 96, 64, i)
        (voc / "annotations" / f"amur_leopard{i}.xml").write_text(
            f"<annotation><filename>amur_leopard{i}.jpg</filename><size><width>96</width><height>64</height></size>"
            "<object><name>amur_leopard</name><bndbox><xmin>10</xmin><ymin>8</ymin><xmax>70</xmax><ymax>50</ymax>"
            "</bndbox></object></annotation>")
    return root


def test_import_zamba_from_wheel(tmp_path: Path):
    import zipfile

    from spotid.detect.model import build_yolox_tiny
    from spotid.train.zamba import ZAMBA_MEMBER, import_zamba

    m = build_yolox_tiny()
    torch.save({"start_epoch": 1, "model": m.state_dict()}, tmp_path / "ck.pth")
    whl = tmp_path / "zamba-2.7.2-py3-none-any.whl"
    with zipfile.ZipFile(whl, "w") as z:
        z.write(tmp_path / "ck.pth", ZAMBA_MEMBER)
    out = import_zamba(whl, tmp_path / "out")
    state = torch.load(out, weights_only=True)
    assert all(v.dtype == torch.float16 for v in state.values() if v.is_floating_point())
    m2 = build_yolox_tiny(weights=out)  # fp16 on disk, fp32 in memory
    k = "head.cls_preds.0.weight"
    assert m2.state_dict()[k].dtype == torch.float32
    assert torch.allclose(m2.state_dict()[k], m.state_dict()[k], atol=1e-3)


@pytest.mark.slow
def test_finetune_recipe_runs_and_resumes(tmp_path: Path, tiny_models):
    from spotid.train.detector_finetune import finetune

    shared = _fake_voc(tmp_path / "shared")
    out = tmp_path / "ft"
    s = finetune(out, shared=shared, epochs=1, init=tiny_models["detector"], sprite_frames=0)
    assert s["counts"] == {"amur-leopard-voc train": 2} and len(s["loss_history"]) == 1
    assert (out / "yolox_tiny.pt").exists() and (out / "train_config.yaml").exists()
    assert not (out / "checkpoint.pt").exists()  # removed once finished: never shipped
    cfg = yaml.safe_load((out / "train_config.yaml").read_text())
    assert cfg["epochs"] == 1 and cfg["seed"] == 0 and cfg["freeze_backbone"] is True


def test_trainable_parameters_follow_freeze_and_unfreeze():
    from spotid.train.detector_finetune import DetectorTrainConfig, _trainable

    frozen = DetectorTrainConfig()
    last = DetectorTrainConfig(unfreeze=("dark5",))
    names = {"backbone.backbone.stem.conv.conv.weight": (False, False),
             "backbone.backbone.dark4.0.conv.weight": (False, False),
             "backbone.backbone.dark5.1.conv1.conv.weight": (False, True),
             "backbone.backbone.dark5.0.bn.weight": (False, True),   # BN affine trains; its statistics stay
             "backbone.C3_p4.conv1.conv.weight": (True, True),       # neck (PAFPN) always trains
             "head.cls_preds.0.weight": (True, True)}
    for name, (want_frozen, want_last) in names.items():
        assert _trainable(name, frozen) is want_frozen, name
        assert _trainable(name, last) is want_last, name
    assert _trainable("backbone.backbone.dark3.0.conv.weight", DetectorTrainConfig(freeze_backbone=False))


def test_collect_oversamples_voc(tmp_path: Path):
    from spotid.train.detector_finetune import DetectorTrainConfig, collect

    shared = _fake_voc(tmp_path / "shared")
    items, counts = collect(DetectorTrainConfig(shared=str(shared), voc_repeat=3))
    assert counts == {"amur-leopard-voc train": 2}      # counts are distinct frames...
    assert len(items) == 6                               # ...each seen 3 times per epoch


def test_wise_interpolate_hand_computed():
    from spotid.train.detector_finetune import wise_interpolate

    init = {"w": torch.tensor([0.0, 2.0, -4.0]), "bn.num_batches_tracked": torch.tensor(3)}
    tuned = {"w": torch.tensor([1.0, 4.0, 4.0]), "bn.num_batches_tracked": torch.tensor(9)}
    out = wise_interpolate(init, tuned, 0.25)  # 0.25 * tuned + 0.75 * init
    assert out["w"].dtype == torch.float16
    assert out["w"].float().tolist() == [0.25, 2.5, -2.0]
    assert out["bn.num_batches_tracked"].item() == 9  # integer buffers come from the fine-tuned model
    assert wise_interpolate(init, tuned, 1.0)["w"].float().tolist() == [1.0, 4.0, 4.0]
    with pytest.raises(ValueError):
        wise_interpolate(init, {"w": tuned["w"]}, 0.5)


def test_checkpoint_round_trip_resumes_the_next_epoch(tmp_path: Path):
    import torch

    from spotid.train.common import resume_epoch, save_torch

    model = torch.nn.Linear(3, 2)
    opt = torch.optim.AdamW(model.parameters(), lr=0.1)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=1)
    model(torch.ones(1, 3)).sum().backward()
    opt.step()
    sched.step()
    ck = save_torch({"model": model.state_dict(), "opt": opt.state_dict(), "sched": sched.state_dict(),
                     "epoch": 2}, tmp_path / "checkpoint.pt")
    assert not list(tmp_path.glob("*.tmp"))  # written via a temp file, then renamed
    fresh = torch.nn.Linear(3, 2)
    opt2 = torch.optim.AdamW(fresh.parameters(), lr=0.1)
    sched2 = torch.optim.lr_scheduler.StepLR(opt2, step_size=1)
    assert resume_epoch(ck, fresh, opt2, sched2) == 3
    assert torch.equal(fresh.weight, model.weight) and sched2.last_epoch == 1
    assert resume_epoch(tmp_path / "none.pt", fresh, opt2) == 0
