"""A burst the flank classifier put on the wrong side, caught before it founds a second animal.

The classifier is right on ~98% of views, but a whole burst can be called the wrong flank (the same
half-turned pose in three frames). That burst then meets only the other side's coats, matches nobody
and is proposed as a new individual: one animal counted twice. On the 26 synthetic demo surveys,
8 of 29 split identities were such bursts.

A leopard's left and right flanks carry different rosettes, so two bursts whose coats match each
other show the same side of one animal, whatever the classifier said. This module clusters the new-
candidate bursts of both flanks together, with the same decision and inlier floor that join two
new bursts of one flank (:func:`~spotid.identify.proposals.link_bursts`; only the pairs across the
flanks are measured anew, once, the rest is what clustering each flank measured); a cluster holding
bursts of both flanks has its minority side (fewer frames) moved to the majority's. Nothing moves on
a tie, so two equally supported sides stay apart for a reviewer. Only bursts that matched nobody
are considered: they are the ones that would found an individual.
"""
from __future__ import annotations

from collections import defaultdict
from typing import Sequence

from spotid.identify.match import Matcher
from spotid.identify.proposals import ClusterEvidence, link_bursts, measure_bursts

FLANKS = ("left", "right")


def misflanked(new: dict[str, tuple[Sequence, ClusterEvidence]], matcher: Matcher, *, threshold: float,
               min_inliers: int, frames_per_group: int = 4, linkage: str = "decision",
               min_prob: float | None = None) -> dict[int, str]:
    """{detection id: the flank it should have} for the frames of new-candidate bursts whose coat
    matches more frames of the other flank's new bursts than of its own side.

    ``new`` {flank: (bursts, the evidence between them)}: each flank's new-candidate bursts (their frames
    with ``detection_id``, ``quality``, ``embedding``, ``features``, ``place``, ``extra``) and what
    clustering them already measured (:func:`~spotid.identify.proposals.cluster_proposals`); only the
    pairs across the flanks are measured here. ``threshold``, ``min_inliers``, ``min_prob`` and ``linkage``:
    the ones that join two new bursts (``new_cluster_threshold``, ``new_cluster_min_inliers``,
    ``new_cluster_min_pair_prob``, ``cluster_linkage``)."""
    (left, ev_l), (right, ev_r) = (new.get(f, ([], None)) for f in FLANKS)
    if not left or not right:
        return {}
    # one direction only: the other is its transpose (each new pair verified once; both ways doubled the cost)
    lr = measure_bursts(left, matcher, frames_per_group=frames_per_group, against=right)
    across = [[ev_l, lr], [lr.T, ev_r]]
    labels = link_bursts(ClusterEvidence.blocks(across), matcher.decider, threshold=threshold, linkage=linkage,
                         min_inliers=min_inliers, min_prob=min_prob).tolist()
    groups = [(f, list(m)) for f, bursts in zip(FLANKS, (left, right)) for m in bursts]
    frames: dict[int, dict[str, int]] = defaultdict(lambda: dict.fromkeys(FLANKS, 0))
    for lab, (flank, members) in zip(labels, groups):
        frames[lab][flank] += len(members)
    out: dict[int, str] = {}
    for lab, (flank, members) in zip(labels, groups):
        n = frames[lab]
        other = FLANKS[1 - FLANKS.index(flank)]
        if n[other] > n[flank]:        # the minority side of a mixed cluster; a tie moves nothing
            out.update({m.detection_id: other for m in members})
    return out
