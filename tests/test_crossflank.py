"""Which new bursts take the other flank (spotid.identify.crossflank), hand-computed on given clusters."""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np

import spotid.identify.crossflank as cf
from spotid.identify.proposals import ClusterEvidence


def _burst(first: int, n: int) -> list:
    return [SimpleNamespace(detection_id=first + k) for k in range(n)]


def _raise(*a, **k):
    raise AssertionError("called")


def test_the_minority_side_of_a_mixed_cluster_moves_and_a_tie_moves_nothing(monkeypatch):
    # left bursts: 10-12 (3 frames), 20-21 (2); right bursts: 30-31 (2), 40-41 (2), 50 (1)
    groups = {"left": [_burst(10, 3), _burst(20, 2)], "right": [_burst(30, 2), _burst(40, 2), _burst(50, 1)]}
    new = {f: (g, ClusterEvidence.empty(len(g))) for f, g in groups.items()}   # what clustering each flank measured
    seen, measured = {}, []

    def measure(gs, matcher, *, frames_per_group, against):
        seen["frames_per_group"] = frames_per_group
        measured.append((len(gs), len(against)))
        return ClusterEvidence.empty(len(gs), len(against))

    def link(ev, decider, **kw):
        seen.update(kw, n=ev.inliers.shape[0])
        # cluster 0: left 10-12 + right 30-31 (3 left frames vs 2 right: the right burst moves);
        # cluster 1: left 20-21 + right 40-41 (2 vs 2: a tie, nothing moves); cluster 2: right 50 alone
        return np.array([0, 1, 0, 1, 2])

    monkeypatch.setattr(cf, "measure_bursts", measure)
    monkeypatch.setattr(cf, "link_bursts", link)
    moved = cf.misflanked(new, matcher=SimpleNamespace(decider=None), threshold=0.5, min_inliers=12)
    assert moved == {30: "left", 31: "left"}
    assert seen == {"threshold": 0.5, "linkage": "decision", "frames_per_group": 4, "min_inliers": 12, "min_prob": None,
                    "n": 5}
    assert measured == [(2, 3)]   # only the pairs across the flanks are measured again, in one direction


def test_one_flank_alone_is_never_clustered(monkeypatch):
    monkeypatch.setattr(cf, "measure_bursts", _raise)
    monkeypatch.setattr(cf, "link_bursts", _raise)
    new = {"left": ([_burst(1, 2)], ClusterEvidence.empty(1)), "right": ([], ClusterEvidence.empty(0))}
    assert cf.misflanked(new, matcher=None, threshold=0.5, min_inliers=12) == {}


def test_block_evidence_keeps_each_block_in_place():
    a, b = ClusterEvidence.empty(2), ClusterEvidence.empty(1)
    ab, ba = ClusterEvidence.empty(2, 1), ClusterEvidence.empty(1, 2)
    ab.inliers[1, 0], ba.inliers[0, 1] = 14, 9
    full = ClusterEvidence.blocks([[a, ab], [ba, b]])
    assert full.inliers.shape == (3, 3) and full.inliers[1, 2] == 14 and full.inliers[2, 1] == 9
    assert full.subset([1, 2]).inliers.tolist() == [[0, 14], [9, 0]]
