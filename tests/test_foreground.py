"""Foreground model: shapes, sizing, keypoints kept on the animal, masked synthetic crops, training."""
from __future__ import annotations

import csv
import json

import cv2
import numpy as np
import pytest
import torch
from test_identify_helpers import coat
from typer.testing import CliRunner

from spotid.cli import app
from spotid.identify.foreground import ForegroundSegmenter, build_foreground, input_hw
from spotid.identify.verify import FeatureExtractor

runner = CliRunner()


def test_net_maps_input_to_half_resolution_logits():
    net = build_foreground(width=4)
    with torch.no_grad():
        y = net(torch.zeros(2, 3, 64, 96))
    assert y.shape == (2, 1, 32, 48)


def test_input_size_keeps_aspect_in_multiples_of_16():
    assert input_hw(300, 300, 160) == (160, 160)
    assert input_hw(100, 250, 160) == (64, 160)      # 0.64 x 100 = 64
    assert input_hw(250, 100, 160) == (160, 64)
    assert input_hw(10, 400, 160) == (32, 160)       # never below two strides


class _LeftHalf:
    """Stands in for a ForegroundSegmenter: the animal is the left half of every crop."""

    version = "fake@0123456789ab"
    settings = "0123456789ab-0.5-d0"

    def __init__(self, give_up: bool = False):
        self.give_up = give_up
        self.calls = 0

    def mask(self, image):
        self.calls += 1
        if self.give_up:
            return None
        h, w = np.asarray(image).shape[:2]
        m = np.zeros((h // 2, w // 2), np.uint8)   # any size: the extractor resizes it
        m[:, : w // 4] = 1
        return m


def test_extractor_keeps_keypoints_where_the_model_sees_the_animal():
    img = coat(5, 240, 320)
    plain = FeatureExtractor(max_keypoints=400, motion_blur=0)
    seg = _LeftHalf()
    fx = FeatureExtractor(max_keypoints=400, motion_blur=0, foreground=seg)
    all_kp, fg_kp = plain(img), fx(img)
    assert seg.calls == 1
    assert (all_kp.keypoints[:, 0] >= 170).sum() > 50          # the texture has keypoints on both halves
    assert len(fg_kp) > 50 and fg_kp.keypoints[:, 0].max() < 161
    assert fx.version.startswith(plain.version) and "-fg0123456789ab-0.5-d0" in fx.version
    # an explicit mask wins over the model; a model that finds no animal leaves the whole crop
    right = np.zeros(img.shape[:2], np.uint8)
    right[:, 200:] = 1
    assert fx(img, foreground=right).keypoints[:, 0].min() >= 199
    assert seg.calls == 1
    gave_up = FeatureExtractor(max_keypoints=400, motion_blur=0, foreground=_LeftHalf(give_up=True))(img)
    np.testing.assert_array_equal(gave_up.keypoints, all_kp.keypoints)


def test_foreground_mask_combines_with_the_box():
    img = coat(6, 240, 320)
    fx = FeatureExtractor(max_keypoints=400, motion_blur=0, foreground=_LeftHalf())
    f = fx(img, roi=(80, 0, 320, 240))    # box: x >= 80; animal: x < 160
    assert len(f) > 20
    assert f.keypoints[:, 0].min() >= 79 and f.keypoints[:, 0].max() < 161


def test_shipped_model_loads_and_is_on_by_default():
    from spotid.config import default_yaml, load_config
    from spotid.identify.pipeline import IdentifyConfig

    cfg = load_config(IdentifyConfig, default_yaml(IdentifyConfig))
    assert cfg.foreground
    fx = FeatureExtractor.from_config(cfg)
    assert isinstance(fx.foreground, ForegroundSegmenter)
    assert "-fg" in fx.version
    p = fx.foreground(np.zeros((100, 200, 3), np.uint8))   # input 80 x 160, output half of it
    assert p.shape == (40, 80) and p.dtype == np.float32 and 0 <= p.min() <= p.max() <= 1
    off = FeatureExtractor.from_config(load_config(IdentifyConfig, default_yaml(IdentifyConfig), foreground=False))
    assert off.foreground is None and "-fg" not in off.version


@pytest.mark.slow
def test_masked_crops_then_train_then_load(tmp_path):
    data = tmp_path / "crops"
    r = runner.invoke(app, ["synth", "crops", str(data), "--individuals", "3", "--per-flank", "2", "--views", "all",
                            "--size", "96", "--shape", "box", "--masks", "--seed", "3"])
    assert r.exit_code == 0, r.output
    rows = list(csv.DictReader((data / "crops.csv").open()))
    assert len(rows) == 24 and all(row["mask"].startswith("masks/") for row in rows)
    for row in rows[:6]:
        img, m = cv2.imread(str(data / row["path"])), cv2.imread(str(data / row["mask"]), cv2.IMREAD_GRAYSCALE)
        assert m.shape == img.shape[:2]
        # the crop is the padded visible box: the animal covers a good part of it, never all of it
        assert 0.15 < (m > 76).mean() < 0.98
    out = tmp_path / "fg"
    r = runner.invoke(app, ["train", "foreground", "--data", str(data), "--epochs", "1", "--steps-per-epoch", "2",
                            "--threads", "1", "--out", str(out), "--json"])
    assert r.exit_code == 0, r.output
    summary = json.loads(r.output)
    assert 0 <= summary["heldout"]["iou"] <= 1 and summary["heldout"]["crops"] > 0
    card = json.loads((out / "card.json").read_text())
    assert card["kind"] == "foreground" and card["thresholds"] == {"foreground": 0.5, "min_fraction": 0.05, "dilate": 0.05}
    assert not (out / "checkpoint.pt").exists() and (out / "config.yaml").exists()
    seg = ForegroundSegmenter(out)
    assert seg(np.zeros((96, 200, 3), np.uint8)).shape == (40, 80)


def test_training_without_masks_names_the_fix(tmp_path):
    data = tmp_path / "crops"
    r = runner.invoke(app, ["synth", "crops", str(data), "--individuals", "1", "--per-flank", "1", "--size", "64"])
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["train", "foreground", "--data", str(data), "--out", str(tmp_path / "fg")])
    assert r.exit_code != 0 and "--masks" in r.output
    photos = tmp_path / "photos"    # a folder of real photos: no crops.csv, and nothing is suggested to write into it
    photos.mkdir()
    r = runner.invoke(app, ["train", "foreground", "--data", str(photos), "--out", str(tmp_path / "fg")])
    assert r.exit_code == 2 and "synth crops OUT --masks" in " ".join(r.output.split())


@pytest.mark.slow
def test_ctrl_c_leaves_a_checkpoint_and_resume_finishes(tmp_path, monkeypatch):
    import spotid.train.foreground as tf
    from spotid.train.embedder import Interrupted

    data = tmp_path / "crops"
    r = runner.invoke(app, ["synth", "crops", str(data), "--individuals", "3", "--per-flank", "4", "--views", "flanks",
                            "--size", "64", "--shape", "box", "--masks", "--seed", "4"])
    assert r.exit_code == 0, r.output
    cfg = tf.TrainForegroundConfig(width=4, epochs=3, steps_per_epoch=2, batch_size=2, threads=1)
    real, calls = tf.loss_fn, []

    def interrupt_in_epoch_2(logits, target):
        calls.append(1)
        if len(calls) == 3:        # first step of the second epoch
            raise KeyboardInterrupt
        return real(logits, target)

    monkeypatch.setattr(tf, "loss_fn", interrupt_in_epoch_2)
    out = tmp_path / "fg"
    with pytest.raises(Interrupted, match="--resume"):
        tf.train_foreground(cfg, data=[data], out=out)
    assert torch.load(out / "checkpoint.pt", weights_only=False)["epoch"] == 0
    monkeypatch.setattr(tf, "loss_fn", real)
    res = tf.train_foreground(cfg, data=[data], out=out, resume=True)
    card = json.loads((out / "card.json").read_text())
    assert [h["epoch"] for h in card["history"]] == [1, 2, 3]     # the first epoch's loss survives the resume
    assert res["heldout"]["crops"] > 0 and not (out / "checkpoint.pt").exists()


def test_identify_with_a_missing_foreground_model_is_a_usage_error(tmp_path, db_path):
    from spotid.catalog import Catalog

    Catalog(db_path).close()
    cfg = tmp_path / "identify.yaml"
    cfg.write_text(f"foreground_model: {tmp_path / 'nowhere'}\n")
    r = runner.invoke(app, ["identify", "--db", str(db_path), "--config", str(cfg)])
    assert r.exit_code == 2
    assert "no foreground model" in r.output and "foreground: false" in r.output
