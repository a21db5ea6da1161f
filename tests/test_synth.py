"""Tests of the synthetic camera-trap world (small frames, few days: fast)."""
from __future__ import annotations

import csv
import dataclasses
import hashlib
import json
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest
import yaml

from spotid.synth import CardWriter, SynthConfig, World
from spotid.synth.config import SynthConfig as _SC

SMALL = dict(stations=2, days=3, individuals=3, seed=11, g0=0.9, sigma_m=4000.0, width=640, height=360,
             empty_fraction=0.6)


@pytest.fixture(scope="module")
def card(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("card")
    CardWriter(SynthConfig(**SMALL))(out)
    return out


@pytest.fixture(scope="module")
def truth(card) -> dict:
    return json.loads((card / "truth.json").read_text())


def test_yaml_mirrors_dataclass_defaults():
    data = yaml.safe_load((Path(__file__).parent.parent / "configs" / "synth.yaml").read_text())
    defaults = {f.name: f.default for f in dataclasses.fields(_SC)}
    assert {k: tuple(v) if isinstance(v, list) else v for k, v in data.items()} == defaults   # YAML lists = tuples


def test_card_layout_and_categories(card, truth):
    names = {c["name"] for c in truth["categories"]}
    assert {"empty", "leopard", "deer", "boar", "badger", "tiger", "person"} <= names
    for im in truth["images"]:
        assert (card / im["file_name"]).is_file()
        assert im["file_name"].split("/")[1:3] == ["DCIM", "100RECNX"]
        assert set(im) >= {"id", "file_name", "width", "height", "datetime", "location", "seq_id",
                           "seq_num_frames", "frame_num"}
    first = sorted(im["file_name"] for im in truth["images"] if im["deployment_id"] == "S01A")[0]
    assert first == "S01A/DCIM/100RECNX/RCNX0001.JPG"
    # population includes everyone, stations carry their two deployments
    assert [p["individual_id"] for p in truth["population"]] == ["ind001", "ind002", "ind003"]
    assert truth["stations"][0]["deployments"] == ["S01A", "S01B"]
    assert truth["world"]["g0"] == SMALL["g0"] and truth["world"]["seed"] == SMALL["seed"]


def test_done_when_properties(truth):
    cats = {c["name"]: c["id"] for c in truth["categories"]}
    leo = [a for a in truth["annotations"] if a["category_id"] == cats["leopard"]]
    assert leo, "the small world must photograph leopards"
    assert all(a.get("individual_id") and a["flank"] in {"left", "right", "front", "back"} for a in leo)
    assert {"left", "right"} <= {a["flank"] for a in leo}
    empties = [a for a in truth["annotations"] if a["category_id"] == cats["empty"]]
    assert 0.3 < len(empties) / len(truth["images"]) < 0.95
    # every image has at least one annotation (empty images carry the 'empty' category)
    assert {a["image_id"] for a in truth["annotations"]} == {im["id"] for im in truth["images"]}
    for a in truth["annotations"]:
        if "bbox" in a:
            x, y, w, h = a["bbox"]
            assert w > 0 and h > 0 and x >= 0 and y >= 0 and x + w <= 640 and y + h <= 360


def test_exif_time_equals_truth(card, truth):
    from PIL import Image

    for im in truth["images"][::7]:
        ex = Image.open(card / im["file_name"]).getexif()
        sub = ex.get_ifd(0x8769)
        t = datetime.fromisoformat(im["datetime"])
        assert sub[0x9003] == t.strftime("%Y:%m:%d %H:%M:%S")
        assert sub[0x9011] == "+10:00" == t.strftime("%z")[:3] + ":" + t.strftime("%z")[3:]
        assert ex[0x010F] == "RECONYX" and sub[0xA431].startswith("H2C")


def test_deployments_csv(card, truth):
    rows = list(csv.DictReader((card / "deployments.csv").open()))
    assert [r["deploymentID"] for r in rows] == ["S01A", "S01B", "S02A", "S02B"]
    assert rows[0]["locationID"] == rows[1]["locationID"] == "S01"
    for r in rows:
        assert 42.9 < float(r["latitude"]) < 43.4 and 131.3 < float(r["longitude"]) < 131.8
        assert r["deploymentStart"].endswith("+10:00") and r["deploymentEnd"].endswith("+10:00")
        assert datetime.fromisoformat(r["deploymentStart"]) < datetime.fromisoformat(r["deploymentEnd"])


def test_bursts_of_three_one_second_apart(truth):
    seqs: dict[str, list] = {}
    for im in truth["images"]:
        seqs.setdefault(im["seq_id"], []).append(im)
    for frames in seqs.values():
        frames.sort(key=lambda i: i["frame_num"])
        assert [f["frame_num"] for f in frames] == [0, 1, 2]
        ts = [datetime.fromisoformat(f["datetime"]) for f in frames]
        assert [(b - a).total_seconds() for a, b in zip(ts, ts[1:])] == [1.0, 1.0]


def test_paired_cameras_see_opposite_flanks_in_the_same_seconds():
    w = World.from_config(SynthConfig(**{**SMALL, "paired_capture_prob": 1.0}))
    trig = [t for t in w.triggers() if t.species == "leopard"]
    by_event: dict[int, list] = {}
    for t in trig:
        by_event.setdefault(t.event, []).append(t)
    pairs = [v for v in by_event.values() if len(v) == 2]
    assert pairs
    opposite = {"left": "right", "right": "left", "front": "back", "back": "front"}
    for a, b in pairs:
        assert a.station == b.station and a.deployment != b.deployment
        assert opposite[a.view] == b.view
        assert abs((a.start - b.start).total_seconds()) <= 1 or a.start != b.start  # re-arm may push one later
    close = sum(abs((a.start - b.start).total_seconds()) <= 1 for a, b in pairs)
    assert close >= 0.8 * len(pairs)


def test_card_is_deterministic(card, tmp_path):
    CardWriter(SynthConfig(**SMALL))(tmp_path)
    assert (card / "truth.json").read_bytes() == (tmp_path / "truth.json").read_bytes()
    files = sorted(p.relative_to(card) for p in card.rglob("*.JPG"))
    assert files == sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*.JPG"))
    for f in files:
        assert hashlib.sha256((card / f).read_bytes()).digest() == hashlib.sha256((tmp_path / f).read_bytes()).digest()


def test_visit_rates_follow_halfnormal_detection_function():
    """Simulate many days (no rendering): observed pass frequencies per (individual, station)
    match g0*exp(-d^2/2 sigma^2) within binomial error, pooled over distance bins."""
    cfg = SynthConfig(stations=9, days=600, individuals=12, seed=3, g0=0.3, sigma_m=1800.0)
    w = World.from_config(cfg)
    p = w.detection_prob()
    counts = np.zeros_like(p)
    ind = {i.id: k for k, i in enumerate(w.population)}
    st = {s.id: k for k, s in enumerate(w.stations)}
    for v in w.visits():
        counts[ind[v.individual], st[v.station]] += 1
    # expected from the formula, computed independently here
    px = np.array([[i.x, i.y] for i in w.population])
    sx = np.array([[s.x, s.y] for s in w.stations])
    d = np.sqrt(((px[:, None] - sx[None]) ** 2).sum(-1))
    expect = cfg.g0 * np.exp(-d ** 2 / (2 * cfg.sigma_m ** 2))
    assert np.allclose(p, expect)
    bins = np.quantile(d, [0, 0.2, 0.4, 0.6, 0.8, 1.0])
    for lo, hi in zip(bins, bins[1:]):
        sel = (d >= lo) & (d <= hi)
        n = sel.sum() * cfg.days
        obs = counts[sel].sum()
        exp_ = (expect[sel] * cfg.days).sum()
        var = (expect[sel] * (1 - expect[sel]) * cfg.days).sum()
        assert abs(obs - exp_) < 4 * np.sqrt(var) + 1, (lo, hi, obs, exp_, n)
    # the half-normal shape: near pairs are seen far more often than distant ones
    assert counts[d < 1000].mean() > 5 * counts[d > 4000].mean()


def test_default_world_leaves_some_unseen_and_some_at_several_stations():
    w = World.from_config(SynthConfig())
    v = w.visits()
    seen = {x.individual for x in v}
    assert len(seen) < len(w.population)
    assert max(len({x.station for x in v if x.individual == i}) for i in seen) >= 2


@pytest.mark.slow
def test_workers_give_the_same_card(card, tmp_path):
    CardWriter(SynthConfig(**SMALL, workers=2))(tmp_path)
    assert (card / "truth.json").read_bytes() == (tmp_path / "truth.json").read_bytes()
    f = "S01B/DCIM/100RECNX/RCNX0002.JPG"
    assert (card / f).read_bytes() == (tmp_path / f).read_bytes()
