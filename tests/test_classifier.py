"""The leopard / other / not_animal cascade classifier: prior feature, head fitting, card dispatch,
the cascade's not_animal split, MD JSON round trip; plus held-out figures on real photos (../shared)."""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from spotid.detect.classifier import (
    ARCH_BACKBONE,
    CASCADE_CLASSES,
    CropClassifier,
    build_crop_classifier,
    build_leopard_classifier,
)
from spotid.modelstore import ModelError, write_card
from spotid.types import Detection, ImageResult


@pytest.fixture(scope="module")
def random_net():
    torch.manual_seed(0)
    return build_leopard_classifier(backbone=None)


def test_features_shape_and_prior_hand_computed(random_net):
    """With the ImageNet head zeroed every class has P = 1/1000, so the spotted-cat mass is 4/1000 and
    the prior feature is log(4/996)."""
    net = random_net
    with torch.no_grad():
        net.backbone.get_classifier().weight.zero_()
        net.backbone.get_classifier().bias.zero_()
        f = net.features(torch.zeros(2, 3, 64, 64))
    assert f.shape == (2, 1281)
    assert f[:, -1].tolist() == pytest.approx([math.log(4 / 996)] * 2, abs=1e-4)
    assert net(torch.zeros(1, 3, 64, 64)).shape == (1, 3)


def test_prior_is_clamped_when_imagenet_is_certain(random_net):
    net = random_net
    with torch.no_grad():
        net.backbone.get_classifier().weight.zero_()
        b = net.backbone.get_classifier().bias
        b.zero_()
        b[288] = 100.0     # leopard certain: log-odds would be ~ +93
        f = net.features(torch.zeros(1, 3, 64, 64))
    assert f[0, -1].item() == pytest.approx(12.0)


def test_sample_weights_hand_computed():
    from spotid.train.classifier import sample_weights

    y = np.array([0, 0, 0, 0, 1])
    src = np.array(["a", "a", "a", "b", "c"])
    w = sample_weights(y, src)
    s3 = math.sqrt(3)
    # class 0: source a (3 crops) gets sqrt3/(sqrt3+1) of the class, b gets 1/(sqrt3+1); 2 classes -> /2
    assert w[:3].tolist() == pytest.approx([s3 / (s3 + 1) / 3 / 2] * 3)
    assert w[3] == pytest.approx(1 / (s3 + 1) / 2)
    assert w[4] == pytest.approx(0.5)
    assert w.sum() == pytest.approx(1.0)


def test_fit_head_separates_three_clusters():
    from spotid.train.classifier import fit_head, predict_features

    rng = np.random.default_rng(0)
    centres = np.array([[3.0, 0, 0, 0], [0, 3.0, 0, 0], [0, 0, 3.0, 0]])
    y = np.repeat([0, 1, 2], 30)
    x = (centres[y] + rng.normal(0, 0.5, (90, 4))).astype(np.float32)
    mean, std, weight, bias = fit_head(x, y, np.ones(90), weight_decay=1e-3)
    state = {"mean": mean, "std": std, "head.weight": weight, "head.bias": bias}
    p = predict_features(state, centres.astype(np.float32))
    assert p.argmax(1).tolist() == [0, 1, 2]
    assert p.max(1).min() > 0.9


def _cascade_folder(tmp_path: Path, bias, **cascade) -> Path:
    """A backbone-classifier folder whose head ignores the image: logits = bias; ``cascade``: more card keys."""
    net = build_leopard_classifier(backbone=None)
    state = {"head.weight": torch.zeros_like(net.head.weight), "head.bias": torch.tensor(bias, dtype=torch.float32),
             "mean": torch.zeros(1281), "std": torch.ones(1281)}
    folder = tmp_path / "cascade"
    folder.mkdir(exist_ok=True)
    torch.save({k: v.half() for k, v in state.items()}, folder / "head.pt")
    write_card(folder, name="tiny-cascade", kind="classifier", weights="head.pt", arch=ARCH_BACKBONE,
               classes=list(CASCADE_CLASSES), input_size=32, context=0.15,
               thresholds={"not_animal": 0.5}, cascade={"detector_threshold": 0.02, "typical_threshold": 0.08, **cascade})
    return folder


def test_card_dispatch_and_not_animal_split(tmp_path: Path):
    folder = _cascade_folder(tmp_path, [0.0, 0.0, math.log(8.0)])    # P = 0.1, 0.1, 0.8
    clf = CropClassifier(model_dir=folder)
    assert clf.classes == CASCADE_CLASSES and clf.cascade_threshold == 0.02
    assert clf.found_min_leopard_p is None       # no founding floor in this card
    img = tmp_path / "f.jpg"
    from PIL import Image

    Image.fromarray(np.full((48, 64, 3), 90, np.uint8)).save(img)
    dets = [Detection(1, 0.5, (0.1, 0.1, 0.3, 0.3)), Detection(2, 0.9, (0.5, 0.5, 0.2, 0.2))]
    out = clf.classify_file(img, dets)
    assert out[0].label == "not_animal" and out[0].label_conf == pytest.approx(0.8, abs=1e-3)
    assert sum(c for _, c in out[0].classifications) == pytest.approx(1.0, abs=1e-5)
    assert out[1].classifications == ()            # people are not classified
    kept, gone = clf.split(out)
    assert kept == [out[1]] and gone == [out[0]]
    # below the not_animal threshold a box stays, labelled by its top class
    clf.not_animal_threshold = 0.9
    assert clf.split(out) == (out, [])
    # a box the detector is sure of (conf >= drop_below_conf) is never dropped: P(class | animal) over
    # leopard/other, here 0.1/0.2 and 0.1/0.2 -> 0.5 each
    clf.not_animal_threshold, clf.drop_below_conf = 0.5, 0.4
    sure = clf.classify_file(img, [Detection(1, 0.5, (0.1, 0.1, 0.3, 0.3))])[0]
    assert {n for n, _ in sure.classifications} == {"leopard", "other"}
    assert [c for _, c in sure.classifications] == pytest.approx([0.5, 0.5], abs=1e-3)
    assert clf.split([sure]) == ([sure], [])
    weak = clf.classify_file(img, [Detection(1, 0.3, (0.1, 0.1, 0.3, 0.3))])[0]
    assert weak.label == "not_animal" and clf.split([weak]) == ([], [weak])


def test_card_founding_floor_is_read_and_checked(tmp_path: Path):
    """``cascade.found_min_leopard_p``: the P(leopard) identify needs to found an individual, on this
    head's scale, so it lives in the card; a value that is no probability is refused naming the card."""
    assert CropClassifier(model_dir=_cascade_folder(tmp_path, [0, 0, 0], found_min_leopard_p=0.95)).found_min_leopard_p == 0.95
    with pytest.raises(ModelError, match="found_min_leopard_p=95.*fix the card"):
        CropClassifier(model_dir=_cascade_folder(tmp_path, [0, 0, 0], found_min_leopard_p=95))


def test_imagenet_veto_moves_leopard_to_other(tmp_path: Path, monkeypatch):
    """A card's imagenet_veto: when ImageNet puts P >= min_p on the non-leopard cats and more than on the
    spotted big cats, P(leopard) moves to P(other) (head P = 0.8 / 0.1 / 0.1 here)."""
    from spotid.detect.classifier import IMAGENET_OTHER_CATS

    folder = _cascade_folder(tmp_path, [math.log(8.0), 0.0, 0.0])
    card = json.loads((folder / "card.json").read_text())
    card["imagenet_veto"] = {"classes": list(IMAGENET_OTHER_CATS), "min_p": 0.5}
    (folder / "card.json").write_text(json.dumps(card))
    clf = CropClassifier(model_dir=folder)
    assert clf.veto_classes == IMAGENET_OTHER_CATS and clf.veto_min_p == 0.5

    def imagenet(lynx: float, leopard: float):
        p = torch.full((1, 1000), (1 - lynx - leopard) / 998)
        p[0, 287], p[0, 288] = lynx, leopard
        return lambda f: p.expand(len(f), -1)

    crop = [np.full((32, 32, 3), 90, np.uint8)]
    monkeypatch.setattr(clf.model, "imagenet_probs", imagenet(0.6, 0.1))      # a lynx: vetoed
    assert clf.predict(crop)[0].tolist() == pytest.approx([0.0, 0.9, 0.1], abs=1e-3)
    monkeypatch.setattr(clf.model, "imagenet_probs", imagenet(0.4, 0.1))      # under min_p: kept
    assert clf.predict(crop)[0].tolist() == pytest.approx([0.8, 0.1, 0.1], abs=1e-3)
    monkeypatch.setattr(clf.model, "imagenet_probs", imagenet(0.6, 0.0))
    img = tmp_path / "f.jpg"
    from PIL import Image

    Image.fromarray(np.full((48, 64, 3), 90, np.uint8)).save(img)
    sure = clf.classify_file(img, [Detection(1, 0.9, (0.1, 0.1, 0.3, 0.3))])[0]
    assert sure.label == "other"
    # without the card key nothing is vetoed
    card.pop("imagenet_veto")
    (folder / "card.json").write_text(json.dumps(card))
    plain = CropClassifier(model_dir=folder)
    monkeypatch.setattr(plain.model, "imagenet_probs", imagenet(0.6, 0.0))
    assert plain.predict(crop)[0].tolist() == pytest.approx([0.8, 0.1, 0.1], abs=1e-3)


def test_imagenet_probabilities_and_file_crops(tmp_path: Path, monkeypatch):
    """``imagenet(crops)``: the backbone's own ImageNet head, (N, 1000) in batches; ``file_crops``: the crops
    classify_file labels, [] for a file that cannot be decoded; a CropNet card has no ImageNet head."""
    from PIL import Image

    clf = CropClassifier(model_dir=_cascade_folder(tmp_path, [0.0, 0.0, 0.0]))
    monkeypatch.setattr(clf.model, "imagenet_probs", lambda f: torch.full((len(f), 1000), 1e-3))
    img = tmp_path / "f.jpg"
    Image.fromarray(np.full((48, 64, 3), 90, np.uint8)).save(img)
    crops = clf.file_crops(img, [Detection(1, 0.5, (0.1, 0.1, 0.3, 0.3))] * 3)
    assert len(crops) == 3 and crops[0].shape == (clf.crop_size, clf.crop_size, 3) and crops[0].dtype == np.uint8
    p = clf.imagenet(crops, batch=2)
    assert p.shape == (3, 1000) and np.allclose(p, 1e-3)
    assert clf.imagenet([]).shape == (0, 1000)
    (tmp_path / "cut.jpg").write_bytes(img.read_bytes()[:20])
    assert clf.file_crops(tmp_path / "cut.jpg", [Detection(1, 0.5, (0.1, 0.1, 0.3, 0.3))]) == []
    old = tmp_path / "old"
    old.mkdir()
    torch.save(build_crop_classifier().state_dict(), old / "c.pt")
    write_card(old, name="old", kind="classifier", weights="c.pt", input_size=32, classes=["leopard", "other"])
    with pytest.raises(ModelError, match="no ImageNet head"):
        CropClassifier(model_dir=old).imagenet(crops)

def test_train_sources_keep_southwest_frames_out_of_its_fold():
    """The sprites are pasted on southwest frames: a fold holding southwest out must not train on them."""
    from spotid.train.classifier import CascadeTrainConfig, train_sources

    assert "sprites" not in train_sources(CascadeTrainConfig(holdout=("southwest",), sprites=600))
    assert "sprites" in train_sources(CascadeTrainConfig(holdout=("megadetector-test",), sprites=600))
    assert "sprites" not in train_sources(CascadeTrainConfig())       # off by default
    assert "atrw" in train_sources(CascadeTrainConfig())
    assert "atrw" not in train_sources(CascadeTrainConfig(holdout=("atrw",)))


def test_old_cropnet_card_still_loads(tmp_path: Path):
    folder = tmp_path / "old"
    folder.mkdir()
    torch.save(build_crop_classifier().state_dict(), folder / "c.pt")
    write_card(folder, name="old", kind="classifier", weights="c.pt", input_size=32, classes=["leopard", "other"])
    clf = CropClassifier(model_dir=folder)
    assert clf.arch == "cropnet" and clf.cascade_threshold is None
    p = clf.predict([np.zeros((32, 32, 3), np.uint8)])
    assert p.shape == (1, 2) and p.sum() == pytest.approx(1.0, abs=1e-5)


def test_unknown_arch_names_the_fix(tmp_path: Path):
    folder = tmp_path / "x"
    folder.mkdir()
    (folder / "w.pt").write_bytes(b"0")
    write_card(folder, name="x", kind="classifier", weights="w.pt", arch="resnet9000")
    with pytest.raises(ModelError, match="unknown classifier arch"):
        CropClassifier(model_dir=folder)


def test_mdjson_keeps_not_animal_boxes_beside_detections():
    from spotid.detect.mdjson import NOT_ANIMAL_KEY, parse_batch, to_dict

    gone = Detection(1, 0.04, (0.1, 0.2, 0.3, 0.4), (("not_animal", 0.9), ("other", 0.07), ("leopard", 0.03)))
    kept = Detection(1, 0.7, (0.5, 0.5, 0.2, 0.2), (("leopard", 0.95), ("other", 0.04), ("not_animal", 0.01)))
    d = to_dict([ImageResult("a.jpg", (kept,), None, 0.7, {NOT_ANIMAL_KEY: [gone]})], detector="t",
                typical_threshold=0.2, conservative_threshold=0.02)
    json.dumps(d)
    assert d["classification_categories"] == {"1": "leopard", "2": "other", "3": "not_animal"}
    assert d["images"][0]["detections"][0]["classifications"][0] == ["1", 0.95]
    assert d["images"][0][NOT_ANIMAL_KEY][0]["classifications"][0] == ["3", 0.9]
    back = parse_batch(d).images[0]
    assert back.detections == (kept,) and back.extra[NOT_ANIMAL_KEY] == [gone]


def test_cascade_through_builtin_detector(tmp_path: Path):
    """The builtin detector with a cascade card runs at the card's low threshold and moves boxes the
    classifier calls not_animal out of the detections (random detector weights: whatever it finds)."""
    from spotid.detect.config import DetectConfig
    from spotid.detect.detector import make_detector
    from spotid.detect.model import build_yolox_tiny

    det_dir = tmp_path / "det"
    det_dir.mkdir()
    torch.manual_seed(0)
    torch.save(build_yolox_tiny(num_classes=1).state_dict(), det_dir / "d.pt")
    write_card(det_dir, name="tiny-det", kind="detector", weights="d.pt", input_size=64, category_ids=[1],
               thresholds={"typical": 0.25, "conservative": 0.1})
    folder = _cascade_folder(tmp_path, [0.0, 0.0, math.log(8.0)])
    from PIL import Image

    rng = np.random.default_rng(0)
    for i in range(2):
        Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(tmp_path / f"{i}.jpg")
    det = make_detector(DetectConfig(model=str(det_dir), classifier=str(folder), decode_workers=1))
    assert det.threshold == pytest.approx(0.02) and det.typical_threshold == pytest.approx(0.08)
    assert det.found_threshold == pytest.approx(0.25)
    res = list(det(sorted(tmp_path.glob("*.jpg")), tmp_path))
    for r in res:
        assert all(d.label != "not_animal" for d in r.detections if d.category == 1 and d.conf >= 0.02)
        for d in r.extra.get("not_animal_detections", []):
            assert d.label == "not_animal"


@pytest.mark.shared
@pytest.mark.slow
def test_shipped_classifier_on_held_out_real_photos(shared: Path):
    """The shipped card never trained on amur-leopard-voc test-images nor on megadetector-test.
    Leopards: >= 97% of the VOC test hand boxes labelled leopard (issue target; measured 41/42).
    Other animals: through the detector, no megadetector-test frame gets a leopard box (issue target,
    met on this held-out set); on the MDv5a reference boxes alone (conf >= 0.2) at most 2 of 30 are
    called leopard (the measured held-out level, a regression guard: the target 0 is not met there)."""
    from spotid.detect.config import DetectConfig
    from spotid.detect.detector import make_detector
    from spotid.detect.run import list_frames
    from spotid.detect.truth import read_md_truth, read_voc

    clf = CropClassifier()
    assert clf.arch == ARCH_BACKBONE
    assert "megadetector-test" in clf.card.get("holdout")
    voc = shared / "data/detection/amur-leopard-voc"
    leo = total = 0
    leo_p = []
    for f, boxes in read_voc(voc / "annotations", voc / "test-images").items():
        out = clf.classify_file(voc / "test-images" / f, [Detection(1, 1.0, b.bbox) for b in boxes])
        leo += sum(d.label == "leopard" for d in out)
        leo_p += [d.label_conf for d in out if d.label == "leopard"]
        total += len(out)
    assert total >= 40 and leo / total >= 0.97, f"{leo}/{total} test leopards called leopard"
    # identify's founding floor (card cascade.found_min_leopard_p) sets no real leopard aside: the lowest
    # of these was 0.97 against the floor 0.95
    assert min(leo_p) >= clf.found_min_leopard_p, f"a real leopard at P {min(leo_p):.3f} < the card's founding floor"
    md = shared / "data/camera-traps/megadetector-test"
    called = n = 0
    for f, boxes in read_md_truth(md / "mdv5a-results.json", 0.2).items():
        animals = [Detection(1, 1.0, b.bbox) for b in boxes if b.category == 1]
        if animals:
            out = clf.classify_file(md / f, animals)
            n += len(out)
            called += sum(d.label == "leopard" for d in out)
    assert n >= 25 and called <= 2, f"{called}/{n} MDv5a animal boxes called leopard"
    det = make_detector(DetectConfig(static_fp=False, decode_workers=1))
    frames = list_frames(md)
    leopard_frames = [r.file for r in det(frames, md) if any(d.label == "leopard" for d in r.detections)]
    assert leopard_frames == []


def _fake_cache(cache: Path) -> None:
    """Feature files for every real source, so ``train classifier`` fits without ../shared images."""
    rng = np.random.default_rng(0)
    for name, labels in {"voc": [0, 2], "southwest": [1, 2], "camtrapR": [1], "nyala": [1], "atrw": [1]}.items():
        y = np.repeat(labels, 6)
        x = rng.normal(0, 1, (len(y), 1281)).astype(np.float16)
        n = len(y)
        np.savez(cache / f"{name}.npz", feats=x, labels=y, groups=np.array(["g"] * n), items=np.arange(n),
                 views=np.zeros(n, int), kinds=np.array(["truth"] * n))


def test_train_classifier_cli_writes_the_veto_and_the_licence(tmp_path: Path):
    """--veto goes into the card (0: none); a head trained on ATRW says it inherits CC BY-NC-SA, one
    trained with --holdout atrw is MIT; a veto outside 0..1 is a user mistake (exit 2)."""
    from typer.testing import CliRunner

    from spotid.cli import app

    cache, shared = tmp_path / "cache", tmp_path / "shared"
    cache.mkdir()
    shared.mkdir()
    _fake_cache(cache)
    runner = CliRunner()
    base = ["train", "classifier", "--shared", str(shared), "--cache", str(cache)]
    r = runner.invoke(app, [*base, "--out", str(tmp_path / "a")])
    assert r.exit_code == 0, r.output
    card = json.loads((tmp_path / "a/card.json").read_text())
    assert card["imagenet_veto"]["min_p"] == 0.5 and 287 in card["imagenet_veto"]["classes"]
    assert "CC BY-NC-SA" in card["licence"] and "atrw" in card["training_data"]["per_source_base_crops"]
    r = runner.invoke(app, [*base, "--out", str(tmp_path / "b"), "--veto", "0", "--holdout", "megadetector-test",
                                "--holdout", "atrw"])
    assert r.exit_code == 0, r.output
    card = json.loads((tmp_path / "b/card.json").read_text())
    assert "imagenet_veto" not in card and card["licence"].startswith("head: MIT")
    assert CropClassifier(model_dir=tmp_path / "b").veto_classes == ()
    r = runner.invoke(app, [*base, "--out", str(tmp_path / "c"), "--veto", "1.5"])
    assert r.exit_code == 2 and "--veto" in r.output


def test_train_detector_never_writes_the_old_cropnet_over_the_backbone_classifier(tmp_path):
    """`spotid train detector` (default --part all) fine-tunes and measures the detector; the from-scratch
    CropNet recipe runs only with --part classifier, and never over a folder holding the backbone classifier."""
    import json

    from typer.testing import CliRunner

    from spotid.cli import app

    cls = tmp_path / "classifier"
    cls.mkdir()
    card = {"name": "c", "kind": "classifier", "arch": "efficientnet_lite0-linear", "weights": "head.pt"}
    (cls / "card.json").write_text(json.dumps(card))
    before = (cls / "card.json").read_bytes()
    r = CliRunner().invoke(app, ["train", "detector", "--part", "classifier", "--shared", str(tmp_path),
                                 "--classifier-out", str(cls)])
    assert r.exit_code == 2, r.output
    assert "spotid train classifier" in r.output and "--classifier-out" in r.output
    assert (cls / "card.json").read_bytes() == before and sorted(p.name for p in cls.iterdir()) == ["card.json"]
