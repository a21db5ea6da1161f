"""Matcher pieces with hand-computed expectations: ranking, metrics, burst pooling, descriptor-vote
shortlist, open set, clustering, calibration."""
from __future__ import annotations

import math

import numpy as np
import pytest

from spotid.identify.calibrate import (Calibration, Decision, Logistic, fit_calibration, fit_decisions,
                                      load_calibration, save_calibration)
from spotid.identify.match import (DescriptorIndex, Evidence, Gallery, Matcher, average_precision, cluster_new,
                                   open_set_metrics, rank_individuals, retrieval_metrics)
from spotid.identify.verify import Features, Verification, vgg_available


requires_vgg = pytest.mark.skipif(not vgg_available(), reason="descriptor rootsift+vgg needs OpenCV's contrib build "
                                  "(optional; spotid installs plain opencv-python)")


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


# decision: P = sigmoid(log1p(inl) - log1p(inl_other)) = (1 + inl) / (2 + inl + inl_other)
MARGIN = Calibration({"fused": Logistic(0.0, 1.0, 0.0), "embedding": Logistic(1.0, 0.0, 0.0),
                      "verifier": Logistic(0.0, 1.0, 0.0)}, {},
                     {"fused": Decision((0.0, 1.0, 0.0, -1.0), 0.0)})


def _ev(inl: int, ref="r") -> Evidence:
    return Evidence(0.0, inl, inl / 100, 0, ref)


def test_burst_pools_frames_and_decides_against_the_best_other_individual():
    m = Matcher(None, MARGIN)
    frames = [{"A": _ev(20), "B": _ev(3)}, {"B": _ev(5)}, {}]
    c = m.decide(frames)
    assert [x.individual for x in c] == ["A", "B"]
    assert c[0].probability == pytest.approx(21 / 27)   # A 20 vs B's best frame 5
    assert c[0].inliers == 20
    assert c[1].probability == pytest.approx(6 / 27)    # B 5 vs A 20
    assert m.decide([{}, {}]) == []


def test_blurred_frames_do_not_dilute_a_burst_but_a_disagreeing_frame_does():
    m = Matcher(None, MARGIN)
    alone = m.decide([{"A": _ev(30)}, {}, {}, {}])[0].probability
    assert alone == pytest.approx(31 / 32)
    torn = m.decide([{"A": _ev(30)}, {"B": _ev(25)}])[0].probability
    assert torn == pytest.approx(31 / 57)


def _basis(*rows: int) -> Features:
    d = np.zeros((len(rows), 128), np.float32)
    d[np.arange(len(rows)), list(rows)] = 1.0
    return Features(np.zeros((len(rows), 2), np.float32), d)


def test_descriptor_votes_are_lnbnn_weighted_and_respect_the_mask():
    gal = [_basis(0, 1, 2), _basis(3, 4, 5), _basis(6, 7)]
    idx = DescriptorIndex(gal, k=1)
    v = idx.votes(_basis(0, 1))
    # each query descriptor: nearest = itself in crop 0 (d = 0), normaliser at sqrt(2) -> weight sqrt(2)
    assert v.tolist() == pytest.approx([2 * math.sqrt(2), 0.0, 0.0])
    assert idx.votes(_basis(0, 1), np.array([False, True, True])).tolist() == pytest.approx([0, 0, 0])
    assert idx.votes(Features.empty()).tolist() == [0, 0, 0]


class CountingVerifier:
    def __init__(self):
        self.calls = []

    def __call__(self, q, r, qp=None, rp=None):
        self.calls.append(int(r.descriptors.argmax()))  # each test crop is one basis descriptor
        return Verification(0, 0, np.zeros((0, 2)), np.zeros((0, 2)))


def test_shortlist_is_whole_gallery_when_small_else_cosine_union_votes():
    n = 8
    emb = np.eye(n, dtype=np.float32)
    feats = [_basis(i) for i in range(n)]
    gal = Gallery(emb, feats, list("aabbccdd"))
    q_emb = np.zeros(n, np.float32)
    q_emb[[1, 2]] = [0.9, 0.8]                 # cosine top-2: crops 1, 2
    q_feat = _basis(6)                          # descriptor votes: crop 6
    ver = CountingVerifier()
    Matcher(ver, MARGIN, verify_all=8)(q_emb, q_feat, gal)
    assert sorted(ver.calls) == list(range(8))  # small gallery: all verified
    ver.calls.clear()
    Matcher(ver, MARGIN, verify_all=4, shortlist=2)(q_emb, q_feat, gal)
    assert 1 in ver.calls and 2 in ver.calls and 6 in ver.calls and len(ver.calls) <= 4
    ver.calls.clear()
    mask = np.ones(n, bool)
    mask[2] = False
    Matcher(ver, MARGIN, verify_all=4, shortlist=2)(q_emb, q_feat, gal, mask)
    assert 2 not in ver.calls


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
    assert cluster_new(p, 0.5, "single").tolist() == [0, 0, 0, 0, 0, 1, 1]
    assert cluster_new(np.zeros((0, 0)), 0.5).tolist() == []
    assert cluster_new(np.ones((1, 1)), 0.5).tolist() == [0]
    assert len(set(cluster_new(np.full((3, 3), 0.1), 0.5).tolist())) == 3


def test_single_linkage_chains_day_and_night_encounters_average_does_not():
    # 0 ~ 1 (0.9), 1 ~ 2 (0.8), 0 vs 2 weak (0.1): average (0.1 + 0.8) / 2 = 0.45 < 0.5
    p = np.array([[1, 0.9, 0.1, 0.0], [0.9, 1, 0.8, 0.0], [0.1, 0.8, 1, 0.0], [0.0, 0.0, 0.0, 1]])
    assert cluster_new(p, 0.5, "average").tolist() == [0, 0, 1, 2]
    assert cluster_new(p, 0.5, "single").tolist() == [0, 0, 0, 1]
    with pytest.raises(ValueError):
        cluster_new(p, 0.5, "ward")


def test_decision_fit_is_monotone_in_own_and_competing_evidence():
    rng = np.random.default_rng(2)
    n = 600
    correct = rng.random(n) < 0.4
    inl = np.where(correct, rng.poisson(25, n), rng.poisson(4, n))
    other = rng.poisson(4, n)
    rows = np.stack([np.zeros(n), inl, np.zeros(n), other], axis=1)
    d = fit_decisions({"verifier": (rows, correct)})["verifier"]
    assert d.w[1] > 0 and d.w[3] <= 0 and d.w[0] == 0 and d.w[2] == 0
    cal = Calibration(MARGIN.models, {}, {"verifier": d})
    assert np.all(np.diff(cal.decide("verifier", 0.0, np.arange(60), 0.0, 5)) >= 0)
    assert np.all(np.diff(cal.decide("verifier", 0.0, 20, 0.0, np.arange(60))) <= 0)
    p = cal.decide("verifier", 0.0, inl, 0.0, other)
    assert p[correct].mean() > 0.8 and p[~correct].mean() < 0.2
    assert abs(p.mean() - correct.mean()) < 0.05
    # no decision model for a kind: the pairwise P of the own evidence
    assert cal.decide("fused", 0.0, 10, 0.0, 50) == pytest.approx(11 / 12)  # sigmoid(log 11)


def test_decision_competitor_floor_hand_computed_and_fitted():
    """The floor stands in for a missing competitor: sigmoid(log 5 - log(1 + max(0, 4))) = 0.5 where
    the unfloored model says 5/6; the fit finds the floor that generated the data."""
    plain = Decision((0.0, 1.0, 0.0, -1.0), 0.0)
    floored = Decision((0.0, 1.0, 0.0, -1.0), 0.0, other_floor=4.0)
    assert plain("verifier", 0.0, 4, 0.0, 0)[0] == pytest.approx(5 / 6)
    assert floored("verifier", 0.0, 4, 0.0, 0)[0] == pytest.approx(0.5)
    assert floored("verifier", 0.0, 4, 0.0, 9)[0] == pytest.approx(5 / 15)   # a real competitor above it counts
    cal = Calibration(MARGIN.models, {}, {"verifier": floored})
    back = Calibration.from_json(cal.to_json())
    assert back.decisions["verifier"].other_floor == 4.0
    old = cal.to_json()
    del old["decisions"]["verifier"]["other_floor"]          # a file from before the floor
    assert Calibration.from_json(old).decisions["verifier"].other_floor == 0.0
    rng = np.random.default_rng(5)
    n = 20000
    inl, other = rng.integers(0, 21, n), rng.integers(0, 11, n)
    z = 2.0 * np.log1p(inl) - 2.0 * np.log1p(np.maximum(other, 4))
    y = rng.random(n) < 1 / (1 + np.exp(-z))
    rows = np.stack([np.zeros(n), inl, np.zeros(n), other], axis=1)
    assert fit_decisions({"verifier": (rows, y)}, other_floors=(0, 2, 4, 6))["verifier"].other_floor == 4
    assert fit_decisions({"verifier": (rows, y)})["verifier"].other_floor == 0


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
                       "verifier": Logistic(0.0, 1.5, -4.0)}, {"data": {"x": 1}},
                      {"fused": Decision((0.5, 1.0, -0.5, -1.0), 0.25)})
    path = save_calibration(cal, tmp_path)
    back = load_calibration(tmp_path)
    assert back.version.startswith("matcher-calibration@") and back.version == load_calibration(path).version
    assert back.prob(0.5, 10) == pytest.approx(1 / (1 + math.exp(-(0.5 + 2 * math.log(11) - 3))))
    assert back.decisions == cal.decisions
    # sigmoid(0.5*0.5 + log(11) - 0.5*0.2 - log(3) + 0.25)
    z = 0.25 + math.log(11) - 0.1 - math.log(3) + 0.25
    assert back.decide("fused", 0.5, 10, 0.2, 2) == pytest.approx(1 / (1 + math.exp(-z)))
    assert (tmp_path / "README.md").read_text().startswith("# Matcher calibration")
    with pytest.raises(FileNotFoundError):
        load_calibration(tmp_path / "nope")
    assert back.features_version is None  # fitted on unrecorded features
    save_calibration(Calibration(cal.models, {"features": "rootsift-x-vgg120"}, cal.decisions), tmp_path)
    assert load_calibration(tmp_path).features_version == "rootsift-x-vgg120"


def test_decision_clustering_re_evaluates_competitors_after_each_merge():
    from spotid.identify.match import cluster_decide

    # MARGIN: P(A ~ B) = (1 + inl_AB) / (2 + inl_AB + inl_A,best other)
    inl = np.array([[0, 20, 15, 0], [20, 0, 18, 0], [15, 18, 0, 0], [0, 0, 0, 0]], float)
    cos = np.zeros((4, 4))
    # both ways must agree: first round 0~1 = min(21/37, 21/40) = 0.525 is the best pair
    # (1~2: min(19/40, 19/35) = 0.475; 0~2: min(16/37, 16/35) = 0.432; 3~0: min(1/2, 1/22));
    # merged {0,1} has no competitor for 2 any more: 19/20 = 0.95 both ways; 3 matches nothing: 1/2
    assert cluster_decide(inl, cos, MARGIN, 0.52).tolist() == [0, 0, 0, 1]
    assert cluster_decide(inl, cos, MARGIN, 0.55).tolist() == [0, 1, 2, 3]  # one way 0.568 is not enough
    assert cluster_decide(inl, cos, MARGIN, 0.6).tolist() == [0, 1, 2, 3]
    assert cluster_decide(inl, cos, MARGIN, 0.5).tolist() == [0, 0, 0, 0]  # 1/2 reaches 0.5
    assert cluster_decide(np.zeros((1, 1)), np.zeros((1, 1)), MARGIN, 0.5).tolist() == [0]
    assert cluster_decide(np.array([[0, 9.0], [9, 0]]), np.zeros((2, 2)), MARGIN, 0.9).tolist() == [0, 0]  # 10/11
    # a join also needs min_inliers between the two: 0~1 (20) joins, then {0,1}~2 has 18 and 3 has none
    assert cluster_decide(inl, cos, MARGIN, 0.52, min_inliers=19).tolist() == [0, 0, 1, 2]
    assert cluster_decide(inl, cos, MARGIN, 0.5, min_inliers=21).tolist() == [0, 1, 2, 3]
    assert cluster_decide(inl, cos, MARGIN, 0.5, min_inliers=18).tolist() == [0, 0, 0, 1]


@pytest.mark.parametrize("descriptor", ["rootsift", pytest.param("rootsift+vgg", marks=requires_vgg)])
def test_shipped_calibration_fits_the_configured_features(descriptor):
    """Each descriptor's shipped calibration was fitted on exactly the features identify computes with the
    shipped settings (configs/identify.yaml + that descriptor): a drift here means refit it
    (models/matcher/reproduce.sh, DESCRIPTOR=... for the VGG one)."""
    from spotid.config import default_yaml, load_config
    from spotid.identify.calibrate import default_path
    from spotid.identify.pipeline import IdentifyConfig
    from spotid.identify.verify import FeatureExtractor

    cfg = load_config(IdentifyConfig, default_yaml(IdentifyConfig), descriptor=descriptor)
    cal = load_calibration(descriptor=descriptor)
    assert default_path(descriptor).is_file()
    assert cal.features_version == FeatureExtractor.from_config(cfg).version


def test_matcher_with_calibrated_fusion_ranks_by_the_average_and_decides_with_the_competitor():
    """Hand-made scorers: the gallery's crop 'inliers' are written in its keypoints, so RootSIFT says
    A (2 inliers: P 0.75 with w 1, b 0) over B (0: 0.5), ALIKED says B (8: 0.9) over A (0: 0.5), the
    embedding is neutral (cos 0: 0.5). Fused: A (0.5+0.75+0.5)/3 = 0.583, B (0.5+0.5+0.9)/3 = 0.633."""
    from spotid.identify.fusion import Fusion, ScoreCalibration
    from spotid.identify.local import PairedMatcher
    from spotid.identify.match import Gallery, Matcher
    from spotid.identify.verify import Features, Verification

    def feats(v):
        return Features(np.full((1, 2), v, np.float32), np.ones((1, 4), np.float32) / 2)

    def fake_verify(q, r, *_):
        k = int(r.keypoints[0, 0])
        return Verification(k, k, np.zeros((k, 2), np.float32), np.zeros((k, 2), np.float32))

    fusion = Fusion({"embedding": ScoreCalibration("cos", 1.0, 0.0), "sift": ScoreCalibration("log1p", 1.0, 0.0),
                     "aliked": ScoreCalibration("log1p", 1.0, 0.0)},
                    {"embedding": 1.0, "sift": 1.0, "aliked": 1.0}, (1.0, -1.0, 0.0), 0.0)
    fake = PairedMatcher("aliked", None, type("V", (), {"__call__": lambda self, q, r, *a: fake_verify(q, r)})())
    emb = np.zeros((2, 4), np.float32)   # cosine 0 with any query
    g = Gallery(emb, [feats(2), feats(0)], ["A", "B"], extra={"aliked": [feats(0), feats(8)]})
    m = Matcher(fake_verify, None, fusion=fusion, local={"aliked": fake})
    ev = m.evidence(np.ones(4, np.float32) / 2, feats(0), g, q_extra={"aliked": feats(0)})
    # (a local matcher's raw score is inliers + matches/1000, RootSIFT's tie-break: 8 -> 8.008, so ~1e-4 off)
    assert ev["A"].pair_prob == pytest.approx((0.5 + 0.75 + 0.5) / 3, abs=1e-3)
    assert ev["B"].pair_prob == pytest.approx((0.5 + 0.5 + 0.9) / 3, abs=1e-3)
    cands = m.decide([ev])
    assert [c.individual for c in cands] == ["B", "A"]
    # decision = sigmoid(logit(P_own) - logit(P_other)): the odds ratio of the two fused P
    po, pa = (0.5 + 0.5 + 0.9) / 3, (0.5 + 0.75 + 0.5) / 3
    want = 1 / (1 + (pa / (1 - pa)) / (po / (1 - po)))
    assert cands[0].probability == pytest.approx(want, abs=1e-3)
    # the evidence a reviewer is shown is the surest local verifier's: ALIKED's 8 pairs for B (P 0.9 over
    # RootSIFT's 0.5), RootSIFT's 2 for A (0.75 over 0.5), with every scorer's calibrated P
    b, a = cands[0].evidence, cands[1].evidence
    assert (b["verifier"], b["inliers"], len(b["query_pts"])) == ("aliked", 8, 8)
    assert (a["verifier"], a["inliers"], len(a["query_pts"])) == ("sift", 2, 2)
    assert b["scores"] == pytest.approx({"embedding": 0.5, "sift": 0.5, "aliked": 0.9}, abs=1e-3)
    assert a["scores"] == pytest.approx({"embedding": 0.5, "sift": 0.75, "aliked": 0.5}, abs=1e-3)
    assert cands[1].inliers == 2 and cands[0].inliers == 0   # verify_inliers stays RootSIFT's (the floors read it)
    with pytest.raises(ValueError, match="aliked features"):
        m.evidence(np.ones(4, np.float32) / 2, feats(0), g)


def test_cluster_decide_with_the_fusion_decider_hand_computed():
    """With the fusion, clusters merge on the fused pairwise P (decision (1, 0, 0): P = P_own), and the
    inlier floor counts the most inliers either way, whichever direction had the higher P."""
    from spotid.identify.fusion import Fusion, ScoreCalibration
    from spotid.identify.match import FusionDecider, cluster_decide

    dec = FusionDecider(Fusion({"sift": ScoreCalibration("log1p", 1.0, 0.0)}, {"sift": 1.0}, (1.0, 0.0, 0.0)))
    prob = np.array([[0, 0.9, 0.2], [0.7, 0, 0.3], [0.2, 0.3, 0]])
    inl = np.array([[0, 5.0, 2], [30, 0, 2], [2, 2, 0]])       # 0->1 has the higher P but only 5 inliers
    cos = np.zeros((3, 3))
    assert cluster_decide(inl, cos, dec, 0.5, prob=prob).tolist() == [0, 0, 1]
    assert cluster_decide(inl, cos, dec, 0.5, prob=prob, min_inliers=12).tolist() == [0, 0, 1]   # 30 either way
    assert cluster_decide(inl, cos, dec, 0.5, prob=prob, min_inliers=31).tolist() == [0, 1, 2]
    assert cluster_decide(inl, cos, dec, 0.95, prob=prob).tolist() == [0, 1, 2]                  # 0.9 < 0.95


def test_a_sure_pair_probability_passes_the_inlier_floor_when_asked():
    """``min_prob``: two groups short of the inlier floor still join when their pairwise P reaches it.
    Decision (1, 0, 2): P = sigmoid(logit(P_own) + 2), so a pair P of 0.4 decides 0.83 and 0.05 decides
    0.28 (hand-computed); the floor (12 inliers, none here has more than 3) blocks the 0.83 unless the
    pair P 0.4 >= ``min_prob``. The hierarchical linkages take the same rule (link_bursts)."""
    from spotid.identify.config import IdentifyConfig
    from spotid.identify.fusion import Fusion, ScoreCalibration
    from spotid.identify.match import FusionDecider, cluster_decide
    from spotid.identify.proposals import ClusterEvidence, link_bursts

    dec = FusionDecider(Fusion({"sift": ScoreCalibration("log1p", 1.0, 0.0)}, {"sift": 1.0}, (1.0, 0.0, 2.0)))
    prob = np.array([[0, 0.4, 0.05], [0.4, 0, 0.05], [0.05, 0.05, 0]])
    inl = np.array([[0, 3.0, 1], [3, 0, 1], [1, 1, 0]])
    cos = np.zeros((3, 3))
    assert cluster_decide(inl, cos, dec, 0.5, prob=prob).tolist() == [0, 0, 1]                   # no floor
    assert cluster_decide(inl, cos, dec, 0.5, prob=prob, min_inliers=12).tolist() == [0, 1, 2]
    assert cluster_decide(inl, cos, dec, 0.5, prob=prob, min_inliers=12, min_prob=0.3).tolist() == [0, 0, 1]
    assert cluster_decide(inl, cos, dec, 0.5, prob=prob, min_inliers=12, min_prob=0.5).tolist() == [0, 1, 2]
    ev = ClusterEvidence.empty(3, 3)
    ev.inliers[:], ev.prob[:], ev.cos[:] = inl, prob, cos
    for linkage in ("decision", "average"):
        assert link_bursts(ev, dec, threshold=0.5, linkage=linkage, min_inliers=12).tolist() == [0, 1, 2]
        assert link_bursts(ev, dec, threshold=0.5, linkage=linkage, min_inliers=12,
                           min_prob=0.3).tolist() == [0, 0, 1]
    assert IdentifyConfig().new_cluster_min_pair_prob is None                 # off unless asked
    with pytest.raises(ValueError, match="new_cluster_min_pair_prob"):
        IdentifyConfig(new_cluster_min_pair_prob=1.5)
