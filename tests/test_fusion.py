"""Calibrated fusion (spotid/identify/fusion.py): hand-computed averages of calibrated probabilities.

With w = 1, b = 0 an inlier calibration is P = sigmoid(log(1 + n)) = (1 + n) / (2 + n), and a cosine
calibration is P = sigmoid(cos): both easy to compute by hand.
"""
from __future__ import annotations

import math

import numpy as np
import pytest

from spotid.identify.fusion import (Fusion, ScoreCalibration, decision_rows, fit_decision, fit_fusion,
                                    fit_score_calibration, load_fusion, save_fusion)
from spotid.identify.match import retrieval_metrics

L3 = math.log(3.0)   # sigmoid(ln 3) = 0.75, sigmoid(-ln 3) = 0.25


def hand_fusion(weights=None) -> Fusion:
    cals = {"embedding": ScoreCalibration("cos", 1.0, 0.0), "sift": ScoreCalibration("log1p", 1.0, 0.0),
            "aliked": ScoreCalibration("log1p", 1.0, 0.0)}
    return Fusion(cals, weights or {"embedding": 1.0, "sift": 1.0, "aliked": 1.0})


def test_calibrations_by_hand():
    f = hand_fusion()
    p = f.probs({"embedding": np.array([0.0, L3, -L3]), "sift": np.array([0, 2, 8]), "aliked": np.array([np.nan, 0, 2])})
    np.testing.assert_allclose(p["embedding"], [0.5, 0.75, 0.25])
    np.testing.assert_allclose(p["sift"], [0.5, 0.75, 0.9])
    assert np.isnan(p["aliked"][0]) and p["aliked"][1] == pytest.approx(0.5)


def test_four_by_five_fusion_with_known_answers():
    """4 queries x 5 gallery images of individuals A A B C D; per-scorer P by hand, fused = mean."""
    gallery = ["A", "A", "B", "C", "D"]
    queries = ["A", "B", "C", "D"]
    cos = np.array([[0, L3, 0, -L3, 0],          # P 0.5 .75 .5 .25 .5
                    [0, 0, 0, 0, L3],            # embedding alone would pick D for the B query
                    [-L3, -L3, 0, 0, 0],
                    [0, 0, 0, 0, 0]], float)
    sift = np.array([[0, 0, 0, 0, 0],             # P .5 everywhere
                     [0, 0, 8, 0, 0],             # B: 0.9
                     [0, 0, 0, 2, 0],             # C: 0.75
                     [2, 0, 0, 0, 0]], float)     # D query: SIFT points at A (wrong)
    aliked = np.array([[2, 0, 0, 0, 0],           # A: .75 at image 0
                       [0, 0, 2, np.nan, 0],      # a crop too small for ALIKED: left out
                       [0, 0, 0, 8, 0],
                       [0, 0, 0, 0, 8]], float)   # D: 0.9
    f = hand_fusion()
    p = f.fuse({"embedding": cos, "sift": sift, "aliked": aliked})
    want = np.array([
        [(0.5 + 0.5 + 0.75) / 3, (0.75 + 0.5 + 0.5) / 3, 0.5, (0.25 + 0.5 + 0.5) / 3, 0.5],
        [0.5, 0.5, (0.5 + 0.9 + 0.75) / 3, 0.5, (0.75 + 0.5 + 0.5) / 3],
        [(0.25 + 0.5 + 0.5) / 3, (0.25 + 0.5 + 0.5) / 3, 0.5, (0.5 + 0.75 + 0.9) / 3, 0.5],
        [(0.5 + 0.75 + 0.5) / 3, 0.5, 0.5, 0.5, (0.5 + 0.5 + 0.9) / 3],
    ])
    want[1, 3] = (0.5 + 0.5) / 2   # ALIKED had no score: the mean of the two others
    np.testing.assert_allclose(p, want)
    m = retrieval_metrics(p, queries, gallery)
    assert m["top1"] == 1.0        # each query's own individual is first
    # each scorer alone gets some wrong: embedding B -> D, SIFT D -> A
    assert retrieval_metrics(cos, queries, gallery)["top1"] < 1.0
    assert retrieval_metrics(sift, queries, gallery)["top1"] < 1.0
    # weighting ALIKED 0 and SIFT 1: the D query follows SIFT's wrong answer again (tie-free by hand)
    p2 = hand_fusion({"embedding": 1.0, "sift": 1.0, "aliked": 0.0}).fuse({"embedding": cos, "sift": sift, "aliked": aliked})
    assert p2[3, 0] == pytest.approx((0.5 + 0.75) / 2) and p2[3, 4] == pytest.approx(0.5)


def test_calibrated_average_properties():
    rng = np.random.default_rng(0)
    f = Fusion({"embedding": ScoreCalibration("cos", 6.0, -3.0), "sift": ScoreCalibration("log1p", 2.0, -5.0)},
               {"embedding": 1.0, "sift": 3.0})
    cos, inl = rng.uniform(-1, 1, 200), rng.integers(0, 60, 200).astype(float)
    p = f.probs({"embedding": cos, "sift": inl})
    fused = f.fuse({"embedding": cos, "sift": inl})
    # between the scorers' own probabilities, and the weighted mean of them
    assert np.all(fused >= np.minimum(p["embedding"], p["sift"]) - 1e-12)
    assert np.all(fused <= np.maximum(p["embedding"], p["sift"]) + 1e-12)
    np.testing.assert_allclose(fused, (p["embedding"] + 3 * p["sift"]) / 4)
    # monotone in every raw score
    assert np.all(f.fuse({"embedding": cos, "sift": inl + 1}) >= fused)
    assert np.all(f.fuse({"embedding": cos + 0.1, "sift": inl}) >= fused)
    # one scorer missing: the other's P alone; all missing: NaN
    only = f.fuse({"embedding": cos[:3], "sift": np.full(3, np.nan)})
    np.testing.assert_allclose(only, p["embedding"][:3])
    assert np.isnan(f.fuse({"embedding": np.array([np.nan]), "sift": np.array([np.nan])})).all()
    # a scorer the fusion was not fitted on names the refit
    with pytest.raises(ValueError, match="spotid train fusion"):
        f.fuse({"embedding": cos, "disk": inl})


def test_off_fit_names_each_scorer_whose_features_changed():
    cal = ScoreCalibration("log1p", 1.0, -2.0)
    f = Fusion({"sift": cal, "aliked": cal}, {"sift": 1.0, "aliked": 1.0},
               meta={"versions": {"sift": "s-v1", "aliked": "a-k512-r384"}})
    assert f.off_fit({"sift": "s-v1", "aliked": "a-k512-r384"}) == []
    assert f.off_fit({"sift": "s-v1", "aliked": "a-k1024-r640"}) == [
        "aliked: fitted on a-k512-r384, this run builds a-k1024-r640"]
    # a scorer the fusion recorded no version for counts as fitting
    assert f.off_fit({"disk": "d-v1"}) == [] and Fusion({}, {}).off_fit({"aliked": "x"}) == []


def test_fit_recovers_a_known_calibration_and_is_monotone():
    rng = np.random.default_rng(1)
    n = rng.integers(0, 80, 20000).astype(float)
    true = 1.0 / (1.0 + np.exp(-(2.0 * np.log1p(n) - 6.0)))
    same = rng.random(len(n)) < true
    c = fit_score_calibration(n, same, "log1p")
    assert c.w == pytest.approx(2.0, abs=0.25) and c.b == pytest.approx(-6.0, abs=0.8)
    # a score that says the opposite gets weight 0, never a negative one (monotone)
    anti = fit_score_calibration(-n, same, "cos")
    assert anti.w == 0.0
    # NaN pairs are ignored
    with_nan = fit_score_calibration(np.concatenate([n, [np.nan] * 50]), np.concatenate([same, [True] * 50]), "log1p")
    assert with_nan.w == pytest.approx(c.w, rel=1e-6)


def test_decision_keeps_the_competitor_logic(tmp_path):
    rng = np.random.default_rng(2)
    k = 4000
    own = rng.uniform(0.01, 0.99, k)
    other = rng.uniform(0.01, 0.99, k)
    correct = rng.random(k) < 1 / (1 + np.exp(-(3 * np.log(own / (1 - own)) - 2 * np.log(other / (1 - other)))))
    f = fit_decision(hand_fusion(), own, other, correct, floors=(0.0, 0.05))
    a, c, _ = f.decision
    assert a > 0 and c < 0
    # a strong competitor lowers P; no competitor counts as the floor
    assert f.decide(0.9, 0.8) < f.decide(0.9, 0.1)
    assert f.decide(0.9, 0.0) == pytest.approx(float(f.decide(0.9, f.floor)))
    # round trip through the artefact
    path = save_fusion(f, tmp_path / "fusion")
    g = load_fusion(path.parent)
    assert g.decision == pytest.approx(f.decision) and g.floor == f.floor
    assert g.version.startswith("matcher-fusion@") and g.calibrations == f.calibrations
    with pytest.raises(FileNotFoundError, match="spotid train fusion"):
        load_fusion(tmp_path / "nowhere")


def test_decision_rows_rank_individuals_and_name_the_competitor():
    p = np.array([[0.9, 0.2, 0.6, np.nan], [0.1, 0.3, 0.2, 0.8]])
    labels = ["A", "B", "C", "A"]
    rows = decision_rows(p, ["A", "C"], labels, np.ones(4, bool), top=2)
    assert rows[:2] == [(0.9, 0.6, True), (0.6, 0.9, False)]
    assert rows[2:] == [(0.8, 0.3, False), (0.3, 0.8, False)]
    # open set: A out of the gallery -> C first, against B
    rows = decision_rows(p, ["A"], labels, np.array([False, True, True, False]), top=1)
    assert rows == [(0.6, 0.2, False)]


def test_fit_fusion_on_pairs_orders_weights_and_equal_defaults():
    rng = np.random.default_rng(3)
    same = rng.random(3000) < 0.1
    cos = np.where(same, rng.normal(0.6, 0.1, 3000), rng.normal(0.3, 0.1, 3000))
    inl = np.where(same, rng.poisson(20, 3000), rng.poisson(3, 3000)).astype(float)
    f = fit_fusion({"embedding": cos, "sift": inl}, same)
    assert f.weights == {"embedding": 1.0, "sift": 1.0}
    assert f.calibrations["embedding"].w > 0 and f.calibrations["sift"].w > 0
    p = f.fuse({"embedding": cos, "sift": inl})
    assert p[same].mean() > 0.5 > p[~same].mean()


def _toy_eval():
    """4 images of individuals A A B B, queries 0 and 2, each with the other three in its gallery."""
    from pathlib import Path

    from spotid.identify.evaluate import EvalData, Item, Scores

    items = [Item(Path(f"/x/{i}.jpg"), ind, f"{ind}/{i}") for i, ind in enumerate("AABB")]
    data = EvalData(items, ["left"] * 4, np.zeros((4, 2), np.float32), [])
    valid = np.array([[False, True, True, True], [True, True, False, True]])
    cos = np.where(valid, 0.0, np.nan)
    s = Scores(np.array([0, 2]), valid, cos, np.full(valid.shape, np.nan), np.zeros(valid.shape),
               shortlists=[np.array([1, 2]), np.array([3])])
    return data, s


def test_fusion_pairs_and_shortlist_mask_by_hand():
    from spotid.identify.multiscore import fusion_pairs, shortlist_mask

    data, s = _toy_eval()
    np.testing.assert_array_equal(shortlist_mask(s), [[False, True, True, False], [False, False, False, True]])
    raw = {"embedding": np.arange(8.0).reshape(2, 4)}
    r, same = fusion_pairs(s, data, raw, shortlist_only=True)
    np.testing.assert_array_equal(r["embedding"], [1, 2, 7])          # (q0, 1), (q0, 2), (q2, 3)
    np.testing.assert_array_equal(same, [True, False, True])
    r, same = fusion_pairs(s, data, raw)
    np.testing.assert_array_equal(r["embedding"], [1, 2, 3, 4, 5, 7])
    np.testing.assert_array_equal(same, [True, False, False, False, False, True])


def test_weight_grid_prefers_the_scorer_that_ranks_right():
    """SIFT ranks both queries right, ALIKED both wrong: the grid gives SIFT the larger weight; with the
    two calibrations identical and equal weights, ties would leave the query wrong."""
    from spotid.identify.multiscore import weight_grid

    data, s = _toy_eval()
    sift = np.where(s.valid, [[0, 20, 0, 0], [0, 0, 0, 20]], np.nan)
    aliked = np.where(s.valid, [[0, 0, 30, 0], [30, 0, 0, 0]], np.nan)
    emb = np.where(s.valid, 0.0, np.nan)
    f = hand_fusion()
    g = weight_grid(f, [(data, s, {"embedding": emb, "sift": sift, "aliked": aliked})], ["sift", "aliked"])
    assert g.weights["sift"] > g.weights["aliked"] and g.meta["weights_grid_mAP"] == pytest.approx(1.0)
    assert g.calibrations == f.calibrations


def test_noisy_or_and_max_combine_by_hand(tmp_path):
    """Embedding P 0.5 (cos 0) and SIFT P 0.75 (2 inliers): mean 0.625; noisy-or 1 - sqrt(0.5 * 0.25)
    = 1 - 2**-1.5; weighted 1:3 toward SIFT, 1 - 0.5**0.25 * 0.25**0.75 = 1 - 2**-1.75; max 0.75.
    A scorer of weight 0 or NaN is left out; an old fusion.json without 'combine' means mean."""
    cals = {"embedding": ScoreCalibration("cos", 1.0, 0.0), "sift": ScoreCalibration("log1p", 1.0, 0.0)}
    raw = {"embedding": np.array([0.0, 0.0, 0.0]), "sift": np.array([2.0, np.nan, 8.0])}
    eq = {"embedding": 1.0, "sift": 1.0}
    np.testing.assert_allclose(Fusion(cals, eq).fuse(raw), [0.625, 0.5, 0.7])
    np.testing.assert_allclose(Fusion(cals, eq, combine="noisy_or").fuse(raw),
                               [1 - 2 ** -1.5, 0.5, 1 - math.sqrt(0.5 * 0.1)])
    np.testing.assert_allclose(Fusion(cals, {"embedding": 1.0, "sift": 3.0}, combine="noisy_or").fuse(raw)[0], 1 - 2 ** -1.75)
    np.testing.assert_allclose(Fusion(cals, eq, combine="max").fuse(raw), [0.75, 0.5, 0.9])
    for how in ("mean", "noisy_or", "max"):   # weight 0: SIFT left out, the embedding's P alone
        np.testing.assert_allclose(Fusion(cals, {"embedding": 1.0, "sift": 0.0}, combine=how).fuse(raw), [0.5] * 3)
    f = Fusion(cals, eq, combine="noisy_or")
    g = load_fusion(save_fusion(f, tmp_path / "n"))
    assert g.combine == "noisy_or" and g.to_json()["combine"] == "noisy_or"
    old = Fusion(cals, eq).to_json()
    old.pop("combine")
    assert Fusion.from_json(old).combine == "mean"
    with pytest.raises(ValueError, match="noisy_or"):
        Fusion(cals, eq, combine="median")


def test_select_fusion_chooses_combine_and_weights_on_validation_runs():
    """Query 0 (A): gallery image 1 is A (embedding P 0.5, SIFT P 0.9), image 2 is B (0.75 and 0.75).
    Mean: 0.70 < 0.75, wrong; noisy-or: 1 - sqrt(0.5 * 0.1) = 0.776 > 0.75, right (max too, but
    noisy-or comes first). Query 2 (B) is right under every rule. With the mean only, the grid's first
    weighting that ranks query 0 right is 1:3 (0.8 > 0.75), or SIFT alone when a scorer may be dropped."""
    from spotid.identify.multiscore import select_fusion

    data, s = _toy_eval()
    s.valid[0] = [False, True, True, False]
    emb = np.where(s.valid, [[0, 0, L3, 0], [0, 0, 0, L3]], np.nan)
    sift = np.where(s.valid, [[0, 8, 2, 0], [0, 0, 0, 8]], np.nan)
    cals = {"embedding": ScoreCalibration("cos", 1.0, 0.0), "sift": ScoreCalibration("log1p", 1.0, 0.0)}
    f = Fusion(cals, {"embedding": 1.0, "sift": 1.0})
    runs = [(data, s, {"embedding": emb, "sift": sift})]
    g = select_fusion(f, runs, ["sift"], combines=("mean", "noisy_or", "max"), step=1.0)
    assert g.combine == "noisy_or" and g.weights == {"embedding": 0.5, "sift": 0.5}
    best = g.meta["selection"]["best"]
    assert best[0]["score"] == pytest.approx(1.0) and g.calibrations == cals
    # the equal-weight mean: query 0 wrong (top-1 0.5), its AP 0.5 -> (0.5 + 0.75) / 2
    assert {(b["combine"], b["score"]) for b in best} >= {("mean", 0.625)}
    g = select_fusion(f, runs, ["sift"], combines=("mean",), step=0.25)
    assert g.combine == "mean" and g.weights == {"embedding": 0.25, "sift": 0.75}
    g = select_fusion(f, runs, ["sift"], combines=("mean",), step=0.25, drop=True)
    assert g.weights == {"embedding": 0.0, "sift": 1.0}


def test_cli_train_fusion_refuses_bad_combine():
    from typer.testing import CliRunner

    from spotid.cli import app

    r = CliRunner().invoke(app, ["train", "fusion", "/nonexistent", "--combine", "median"])
    assert r.exit_code == 2 and "noisy_or" in r.output
    r = CliRunner().invoke(app, ["train", "fusion", "/nonexistent", "--combine", "mean,max"])
    assert r.exit_code == 2 and "--select" in r.output
    for bad in ("embedding=two", "embedding=-1,sift=1", "sift=0"):
        r = CliRunner().invoke(app, ["train", "fusion", "/nonexistent", "--weights", bad])
        assert r.exit_code == 2 and "embedding=2,sift=1,aliked=1" in r.output, bad
