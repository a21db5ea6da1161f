"""Which new bursts take the other flank (spotid.identify.crossflank), hand-computed on given clusters."""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np

import spotid.identify.crossflank as cf


def _burst(first: int, n: int) -> list:
    return [SimpleNamespace(detection_id=first + k) for k in range(n)]


def test_the_minority_side_of_a_mixed_cluster_moves_and_a_tie_moves_nothing(monkeypatch):
    # left bursts: 10-12 (3 frames), 20-21 (2); right bursts: 30-31 (2), 40-41 (2), 50 (1)
    groups = {"left": [_burst(10, 3), _burst(20, 2)], "right": [_burst(30, 2), _burst(40, 2), _burst(50, 1)]}
    seen = {}

    def clusters(gs, matcher, **kw):
        seen.update(kw, n=len(gs))
        # cluster 0: left 10-12 + right 30-31 (3 left frames vs 2 right: the right burst moves);
        # cluster 1: left 20-21 + right 40-41 (2 vs 2: a tie, nothing moves); cluster 2: right 50 alone
        return np.array([0, 1, 0, 1, 2]), None

    monkeypatch.setattr(cf, "cluster_proposals", clusters)
    moved = cf.misflanked(groups, matcher=None, threshold=0.5, min_inliers=12)
    assert moved == {30: "left", 31: "left"}
    assert seen == {"threshold": 0.5, "linkage": "decision", "frames_per_group": 4, "min_inliers": 12, "n": 5}


def test_one_flank_alone_is_never_clustered(monkeypatch):
    monkeypatch.setattr(cf, "cluster_proposals", lambda *a, **k: (_ for _ in ()).throw(AssertionError("called")))
    assert cf.misflanked({"left": [_burst(1, 2)], "right": []}, matcher=None, threshold=0.5, min_inliers=12) == {}
