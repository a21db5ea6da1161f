"""`spotid train classifier --db`: review decisions join the recipe's sources, a seeded share is held out by
individual/burst, both heads are measured on it, and too little review data writes nothing (exit 2)."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from spotid.catalog import Catalog
from spotid.cli import app
from spotid.export.training_crops import reviewed_crops
from spotid.review.decisions import Reviewer
from spotid.review.demo import build_demo_catalog
from spotid.train.classifier_review import crop_group, split_review
from test_classifier import _fake_cache  # noqa: E402  (tests/ is on sys.path)


@pytest.fixture(scope="module")
def template(tmp_path_factory):
    root = tmp_path_factory.mktemp("tcr-demo")
    d = build_demo_catalog(root / "demo.db", root / "img", n_individuals=4, n_pending=20, seed=5)
    return root, d


@pytest.fixture
def demo(template, tmp_path):
    root, d = template
    shutil.copy(root / "demo.db", tmp_path / "demo.db")
    cache, shared = tmp_path / "cache", tmp_path / "shared"
    cache.mkdir()
    shared.mkdir()
    _fake_cache(cache)
    return tmp_path / "demo.db", d, ["--shared", str(shared), "--cache", str(cache), "--threads", "1"]


def _review(db: Path, d, n: int) -> None:
    """The first ``n`` pending sightings: every third 'not a leopard', the others confirmed to their truth
    (the new animal: a new individual)."""
    with Catalog(db) as cat:
        rv = Reviewer(cat, "anna")
        for k, sid in enumerate(d.pending[:n]):
            v = int(cat.scalar("SELECT version FROM sightings WHERE id = ?", (sid,)))
            if k % 3 == 2:
                rv.not_leopard(sid, v)
            elif d.truth[sid] in d.individuals:
                rv.confirm(sid, v, d.individuals[d.truth[sid]])
            else:
                rv.new_individual(sid, v)


def test_split_keeps_individuals_and_bursts_whole_and_is_seeded(demo):
    db, d, _ = demo
    _review(db, d, 12)
    with Catalog(db) as cat:
        crops = reviewed_crops(cat)
    s = split_review(crops, 0.3, seed=0)
    assert not {crop_group(c) for c in s.train} & {crop_group(c) for c in s.heldout}
    assert {c.label for c in s.heldout} == {"leopard", "other"}   # each label with 2+ groups gives 1+
    assert split_review(list(reversed(crops)), 0.3, seed=0).groups_heldout == s.groups_heldout
    assert len(s.train) + len(s.heldout) == len(crops) == 12


def test_twenty_decisions_train_and_use_change_the_classifier(demo, tmp_path):
    """Issue 23's done-when, on tiny data: 20 review decisions (the review page's code), `train classifier
    --db`, `models use`: the catalog's classifier changes, measured on the held-out review crops."""
    db, d, base = demo
    _review(db, d, 20)
    out = tmp_path / "season-classifier"
    runner = CliRunner()
    r = runner.invoke(app, ["train", "classifier", "--db", str(db), "--out", str(out), *base])
    assert r.exit_code == 0, r.output
    held = json.loads((out / "card.json").read_text())["review"]["heldout_detections"]
    r = runner.invoke(app, ["models", "use", "classifier", str(out), "--db", str(db), "--force"])
    assert r.exit_code == 0, r.output
    assert f"on {len(held)} reviewed crops of demo.db neither model trained on" in r.output
    assert "active cascade-classifier-lite0@" in r.output and "new    cascade-classifier-lite0@" in r.output
    with Catalog(db) as cat:
        from spotid.detect.run import with_catalog_models
        from spotid.detect.config import DetectConfig

        assert Path(with_catalog_models(cat, DetectConfig()).classifier) == out.resolve()


def test_train_classifier_db_writes_a_measured_model(demo, tmp_path):
    db, d, base = demo
    _review(db, d, 12)
    out = tmp_path / "season-classifier"
    r = CliRunner().invoke(app, ["train", "classifier", "--db", str(db), "--out", str(out), *base])
    assert r.exit_code == 0, r.output
    card = json.loads((out / "card.json").read_text())
    rev, m = card["review"], card["metrics"]
    with Catalog(db) as cat:
        crops = {c.detection_id: c for c in reviewed_crops(cat)}
    held = rev["heldout_detections"]
    assert held and set(held) <= set(crops)
    assert sum(rev["train_crops"].values()) + len(held) == 12
    assert card["training_data"]["per_source_base_crops"]["review"]["leopard"] == rev["train_crops"]["leopard"]
    for key in ("review_heldout", "review_heldout_parent"):
        fig = m[key]
        assert fig["leopard"]["n"] + fig["other"]["n"] == len(held)
        assert 0.0 <= fig["balanced_accuracy"] <= 1.0
        assert 0 <= fig["leopard"]["below_found_floor"] <= fig["leopard"]["n"]
    assert card["parent"].startswith("cascade-classifier-lite0@")     # the shipped head, the catalog's active one
    # the parent's founding floor carries over (identify reads it from this card once it is in use)
    assert card["cascade"]["found_min_leopard_p"] == 0.95
    assert "parent cascade-classifier-lite0@" in r.output and "new head" in r.output
    assert f"spotid models use classifier {out}" in r.output
    assert not list(tmp_path.glob(".season-classifier.tmp-*"))


def test_too_few_review_decisions_write_nothing_and_name_the_fix(demo, tmp_path):
    db, d, base = demo
    _review(db, d, 3)
    out = tmp_path / "m"
    r = CliRunner().invoke(app, ["train", "classifier", "--db", str(db), "--out", str(out), *base])
    assert r.exit_code == 2, r.output
    assert "confirm" in r.output and "spotid review" in r.output and "individuals" in r.output
    assert not out.exists() and not list(tmp_path.glob(".m.tmp-*"))


def _confirm_all(db: Path, d, n: int) -> None:
    with Catalog(db) as cat:
        rv = Reviewer(cat, "anna")
        for sid in d.pending[:n]:
            if d.truth[sid] in d.individuals:
                rv.confirm(sid, int(cat.scalar("SELECT version FROM sightings WHERE id = ?", (sid,))),
                           d.individuals[d.truth[sid]])


def test_models_use_compares_on_the_same_reviewed_crops_and_refuses_a_worse_one(demo, tmp_path):
    """Active: a head that calls every box leopard; candidate: one that calls every box other. On the
    reviewed (all leopard) crops the candidate finds 0 of them: refused without a terminal (exit 2, the
    active model kept), adopted with --force."""
    from test_classifier import _cascade_folder  # noqa: E402

    db, d, _ = demo
    _confirm_all(db, d, 11)
    with Catalog(db) as cat:
        n = len(reviewed_crops(cat))
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    leopard = _cascade_folder(tmp_path / "a", [6.0, 0.0, 0.0])
    other = _cascade_folder(tmp_path / "b", [0.0, 6.0, 0.0])
    runner = CliRunner()
    r = runner.invoke(app, ["models", "use", "classifier", str(leopard), "--db", str(db), "--force"])
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["models", "use", "classifier", str(other), "--db", str(db)])
    assert r.exit_code == 2, r.output
    assert f"on {n} reviewed crops" in r.output
    assert f"leopards labelled leopard {n}/{n}" in r.output and f"leopards labelled leopard 0/{n}" in r.output
    assert "worse" in r.output and "--force" in r.output
    with Catalog(db) as cat:
        assert Path(cat.get_setting("model.classifier")) == leopard.resolve()
    r = runner.invoke(app, ["models", "use", "classifier", str(other), "--db", str(db), "--force"])
    assert r.exit_code == 0, r.output
    with Catalog(db) as cat:
        assert Path(cat.get_setting("model.classifier")) == other.resolve()
    r = runner.invoke(app, ["models", "use", "embedder", str(other), "--db", str(db)])
    assert r.exit_code == 2 and "not a embedder" in r.output.replace("an embedder", "a embedder")


def test_models_use_refuses_a_card_with_nan_metrics(tmp_path):
    """The issue's case: a model whose held-out metrics are NaN was adopted without a word."""
    from spotid.modelstore import load_card, shipped, write_card

    src = shipped("embedder")
    folder = tmp_path / "nan-embedder"
    shutil.copytree(src, folder)
    meta = dict(load_card(folder).meta)
    for k in ("name", "kind", "weights", "sha256"):
        meta.pop(k)
    meta["metrics"] = {"heldout_after": {"top1": float("nan"), "top5": float("nan"), "mAP": float("nan"),
                                         "queries": 0}}
    write_card(folder, name="nan-embedder", kind="embedder", weights=load_card(src).weights, **meta)
    db = tmp_path / "c.db"
    r = CliRunner().invoke(app, ["models", "use", str(folder), "--db", str(db)])
    assert r.exit_code == 2, r.output
    assert "NaN" in r.output and "--force" in r.output
    r = CliRunner().invoke(app, ["models", "use", str(folder), "--db", str(db), "--force"])
    assert r.exit_code == 0, r.output


def test_train_flank_db_cross_validates_the_reviewed_flanks(demo, tmp_path):
    """`train flank --db`: the confirmed sightings' flanks are a real source 'review' with out-of-fold figures
    in the card; with 2 confirmed crops it refuses (exit 2) and writes nothing."""
    db, d, _ = demo
    cfg = tmp_path / "flank.yaml"
    cfg.write_text("input_size: [64, 128]\ncache_size: [72, 144]\naug_views: 1\npools: [avg]\n"
                   "weight_decays: [0.01]\nfolds: 2\nmax_iter: 30\nthreads: 1\n")
    runner = CliRunner()
    _confirm_all(db, d, 2)
    r = runner.invoke(app, ["train", "flank", "--db", str(db), "--config", str(cfg), "--out", str(tmp_path / "f0")])
    assert r.exit_code == 2 and "too little review data" in r.output, r.output
    assert not (tmp_path / "f0").exists()
    _confirm_all(db, d, 11)
    r = runner.invoke(app, ["train", "flank", "--db", str(db), "--config", str(cfg), "--out", str(tmp_path / "f1")])
    assert r.exit_code == 0, r.output
    card = json.loads((tmp_path / "f1/card.json").read_text())
    with Catalog(db) as cat:
        n = sum(1 for c in reviewed_crops(cat) if c.flank)
    assert card["training_data"]["review"]["by_flank"]["left"] == n
    assert "review" in card["metrics"]["cross_validation"]
