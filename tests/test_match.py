"""Matcher pieces with hand-computed expectations: ranking, metrics, burst voting, open set, clustering,
calibration."""
from __future__ import annotations

import math

import numpy as np
import pytest

from spotid.identify.calibrate import Calibration, Logistic, fit_calibration, load_calibration, save_calibration
from spotid.identify.match import (average_precision, burst_vote, cluster_new, open_set_metrics,
                                   rank_individuals, retrieval_metrics)

# 4 queries x 5 gallery images; gallery individuals:
GAL = ["a", "a", "b", "c", "d"]
S = np.array([
    [0.9, 0.1, 0.8, 0.2, 0.3],   # q0 = a: best a (0.9)                      -> rank 1; AP: a at 1 and 5
    [0.2, 0.7, 0.9, 0.1, 0.0],   # q1 = a: b 0.9 > a 0.7                      -> rank 2; AP: a at 2, 3
    [0.1, 0.2, 0.3, 0.4, 0.5],   # q2 = b: d .5, c .4, b .3                   -> rank 3; AP: b at 3
    [0.5, 0.5, np.nan, 0.6, 0.9],  # q3 = c: b excluded, d .9, c .6            -> rank 2; AP: c at 2
])
Q = ["a", "a", "b", "c"]


def test_rank_individuals_takes_best_image_per_individual():
    ranked = rank_individuals(S[1], GAL)
    assert [r[0] for r in ranked] == ["b", "a", "c", "d"]
    assert ranked[1] == ("a", pytest.approx(0.7), 1)


def test_retrieval_metrics_on_a_4x5_matrix():
    m = retrieval_metrics(S, Q, GAL)
    assert m["queries"] == 4
    assert m["top1"] == pytest.approx(1 / 4)           # only q0
    assert m["top5"] == pytest.approx(1.0)
    ap = [(1 / 1 + 2 / 5) / 2, (1 / 2 + 2 / 3) / 2, 1 / 3, 1 / 2]
    assert m["mAP"] == pytest.approx(np.mean(ap))


def test_query_without_relevant_gallery_item_is_not_counted():
    s = np.array([[0.9, np.nan, 0.1, 0.2, 0.3]])
    s[0, 0] = np.nan  # both 'a' images excluded (own encounter)
    assert retrieval_metrics(s, ["a"], GAL)["queries"] == 0


def test_ties_are_counted_against_the_query():
    s = np.array([[0.5, 0.5, 0.5, 0.5, 0.5]])
    m = retrieval_metrics(s, ["a"], GAL)
    assert m["top1"] == 0.0 and m["top5"] == 1.0
    assert average_precision(np.array([0.5, 0.5]), np.array([True, False])) == pytest.approx(0.5)


def test_burst_vote_is_a_quality_weighted_mean_with_missing_as_zero():
    frames = [{"A": 0.9, "B": 0.2}, {"A": 0.6}, {"B": 0.9}]
    v = burst_vote(frames, [2.0, 1.0, 1.0])
    assert v["A"] == pytest.approx((2 * 0.9 + 0.6) / 4)
    assert v["B"] == pytest.approx((2 * 0.2 + 0.9) / 4)
    assert list(v) == ["A", "B"]  # highest first
    assert burst_vote([]) == {}


def test_one_lucky_frame_does_not_carry_a_burst():
    v = burst_vote([{"A": 0.99}, {}, {}, {}])
    assert v["A"] < 0.5


def test_open_set_metrics_hand_computed():
    # known individual x: 2 queries (one right above threshold, one below) -> 0.5; known y: right -> 1
    # unknown z: 1 of 2 below threshold -> 0.5; unknown w: below -> 1
    m = open_set_metrics(best_scores=[0.9, 0.3, 0.8, 0.7, 0.2, 0.1],
                         predicted=["x", "x", "y", "q", "q", "q"],
                         truth=["x", "x", "y", "z", "z", "w"],
                         known=[True, True, True, False, False, False], threshold=0.5)
    assert m["BAKS"] == pytest.approx((0.5 + 1.0) / 2)
    assert m["BAUS"] == pytest.approx((0.5 + 1.0) / 2)
    # a wrong top individual above threshold is wrong for a known query
    assert open_set_metrics([0.9], ["y"], ["x"], [True], 0.5)["BAKS"] == 0.0


def test_five_sightings_of_one_new_animal_make_one_cluster():
    # 5 frames of animal N (pairwise P high, one weak pair), 2 of animal M; cross pairs low
    n = 7
    p = np.full((n, n), 0.05)
    p[:5, :5] = 0.9
    p[0, 4] = p[4, 0] = 0.3   # a weak pair inside N: average linkage keeps N together
    p[5:, 5:] = 0.8
    labels = cluster_new(p, 0.5)
    assert labels.tolist() == [0, 0, 0, 0, 0, 1, 1]
    assert cluster_new(np.zeros((0, 0)), 0.5).tolist() == []
    assert cluster_new(np.ones((1, 1)), 0.5).tolist() == [0]
    assert len(set(cluster_new(np.full((3, 3), 0.1), 0.5).tolist())) == 3


def test_calibration_is_monotone_and_separates():
    rng = np.random.default_rng(0)
    n = 400
    same = rng.random(n) < 0.2
    cos = np.where(same, rng.normal(0.7, 0.1, n), rng.normal(0.3, 0.1, n))
    inl = np.where(same, rng.poisson(30, n), rng.poisson(3, n))
    cal = fit_calibration(cos, inl, same)
    for kind in ("fused", "embedding", "verifier"):
        m = cal.models[kind]
        assert m.w_cos >= 0 and m.w_inl >= 0
    grid = np.linspace(-1, 1, 21)
    assert np.all(np.diff(cal.prob(grid, 10)) >= 0)
    assert np.all(np.diff(cal.prob(0.5, np.arange(0, 100))) >= 0)
    p = cal.prob(cos, inl)
    assert p[same].mean() > 0.8 and p[~same].mean() < 0.2
    # calibrated: mean P over the data close to the base rate
    assert abs(p.mean() - same.mean()) < 0.05


def test_calibration_constrains_a_negative_relation_to_zero():
    rng = np.random.default_rng(1)
    cos = rng.random(300)
    same = cos < 0.3  # perversely, low cosine = same: the monotone fit refuses a negative weight
    cal = fit_calibration(cos, np.zeros(300), same)
    assert cal.models["embedding"].w_cos == 0.0


def test_calibration_round_trip(tmp_path):
    cal = Calibration({"fused": Logistic(1.0, 2.0, -3.0), "embedding": Logistic(4.0, 0.0, -2.0),
                       "verifier": Logistic(0.0, 1.5, -4.0)}, {"data": {"x": 1}})
    path = save_calibration(cal, tmp_path)
    back = load_calibration(tmp_path)
    assert back.version.startswith("matcher-calibration@") and back.version == load_calibration(path).version
    assert back.prob(0.5, 10) == pytest.approx(1 / (1 + math.exp(-(0.5 + 2 * math.log(11) - 3))))
    assert (tmp_path / "README.md").read_text().startswith("# Matcher calibration")
    with pytest.raises(FileNotFoundError):
        load_calibration(tmp_path / "nope")
