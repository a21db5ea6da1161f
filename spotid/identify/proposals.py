"""New-individual proposals: clustering the bursts that matched nobody, and the candidates among
the run's own proposals, so a reviewer can catch a split.

When identify proposes several new individuals in one run, the clustering has already verified every
new burst against every other; the pairs that stayed below ``new_cluster_threshold`` are exactly the
places where one leopard may have become two proposals. Their evidence is stored as ranked match
candidates of each new sighting (with the matched keypoints where the frame was one of its burst's
compared frames), so the review page shows "new individual R-0004; next best R-0007, 9 inliers,
P 0.31" and the reviewer can merge them with one key instead of searching the whole catalog.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Hashable

import numpy as np

from spotid.identify.match import Candidate, Evidence, Gallery, Matcher, as_decider, cluster_decide, cluster_new, join_floor
from spotid.util import progress


@dataclass
class ClusterEvidence:
    """What clustering the new bursts measured. ``inliers``/``prob`` ``(n, n)``: for bursts g, h the
    most inliers and the highest pairwise P(same) of g's compared frames against h's; ``cos``/``ref``
    the cosine and h's detection id of the strongest of those evidences (by the decider's strength:
    inliers, or the fused P; -1 = none); ``frames`` {detection id of a compared frame: {burst h:
    Evidence}}."""

    inliers: np.ndarray
    cos: np.ndarray
    ref: np.ndarray
    frames: dict[int, dict[int, Evidence]] = field(default_factory=dict)
    prob: np.ndarray | None = None

    def __post_init__(self):
        if self.prob is None:
            self.prob = np.zeros_like(self.inliers, dtype=np.float64)

    @classmethod
    def empty(cls, n: int, m: int | None = None) -> "ClusterEvidence":
        """No evidence between ``n`` bursts and ``m`` (default ``n``) others."""
        shape = (n, n if m is None else m)
        return cls(np.zeros(shape), np.zeros(shape), np.full(shape, -1, dtype=np.int64))

    def subset(self, idx) -> "ClusterEvidence":
        """The evidence among the bursts ``idx`` only (compared frames not carried over)."""
        ix = np.ix_(np.asarray(idx, int), np.asarray(idx, int))
        return ClusterEvidence(self.inliers[ix], self.cos[ix], self.ref[ix], prob=self.prob[ix])

    @property
    def T(self) -> "ClusterEvidence":
        """The other direction, read off this one (matching is nearly symmetric; ``ref`` then names the
        querying burst's frame)."""
        return ClusterEvidence(self.inliers.T, self.cos.T, self.ref.T, prob=self.prob.T)

    @classmethod
    def blocks(cls, rows: list[list["ClusterEvidence"]]) -> "ClusterEvidence":
        """One evidence matrix from a block matrix of them (e.g. two flanks' bursts, each against
        each); the compared frames' evidence is not carried over."""
        def cat(attr):
            return np.block([[getattr(e, attr) for e in row] for row in rows])
        return cls(cat("inliers"), cat("cos"), cat("ref"), prob=cat("prob"))


@dataclass(frozen=True)
class Sibling:
    """Another new cluster as a burst's candidate: its label, the burst's best evidence for it
    (inliers, cosine, the matched detection) and P(this is that animal) from the decision model."""

    label: int
    inliers: float
    cos: float
    ref: int
    probability: float


def sibling_ranking(g: int, labels: np.ndarray, ev: ClusterEvidence, decider,
                    top_k: int, among: set[int] | None = None) -> list[Sibling]:
    """For new burst ``g`` (final cluster ``labels[g]``): the ``top_k`` other new clusters by the
    burst's best evidence, each with P from that evidence against the best evidence for any other
    cluster (the decision model, as for known individuals). ``decider``: the Matcher's decider (or a
    Calibration); ``among``: only these cluster labels (the ones that became proposals), None = all."""
    dec = as_decider(decider)
    own = int(labels[g])
    lab = np.asarray(labels)
    ok = (ev.ref[g] >= 0) & (lab != own)
    if among is not None:
        ok &= np.isin(lab, list(among))
    idx = np.flatnonzero(ok)
    best: dict[int, int] = {}  # label -> the burst h with the strongest evidence, best first
    strength = np.asarray(dec.strength(ev.inliers[g, idx], ev.prob[g, idx]), np.float64)
    for h in idx[np.argsort(-strength, kind="stable")]:  # stop once top_k labels are known
        best.setdefault(int(labels[h]), int(h))
        if len(best) >= top_k:
            break
    hs = list(best.values())
    out = []
    for k, h in enumerate(hs):
        o = hs[1] if k == 0 and len(hs) > 1 else (hs[0] if k else None)
        oc, oi, op = ((float(ev.cos[g, o]), float(ev.inliers[g, o]), float(ev.prob[g, o])) if o is not None
                      else (0.0, 0.0, 0.0))
        p = float(dec(float(ev.cos[g, h]), float(ev.inliers[g, h]), float(ev.prob[g, h]), oc, oi, op))
        out.append(Sibling(int(labels[h]), float(ev.inliers[g, h]), float(ev.cos[g, h]), int(ev.ref[g, h]), p))
    return out


def sibling_candidates(ranking: list[Sibling], detection_id: int, labels: np.ndarray, ev: ClusterEvidence,
                       ids: dict[int, Hashable]) -> tuple[dict[Hashable, float], list[Candidate]]:
    """The burst's :func:`sibling_ranking` as one frame's candidates ({individual: P}, [Candidate]),
    ``ids`` {cluster label: individual id}; the frame's own matched keypoints are attached when it was
    one of the compared frames (else the burst's numbers, without keypoints)."""
    frame = ev.frames.get(detection_id, {})
    probs: dict[Hashable, float] = {}
    cands: list[Candidate] = []
    for s in ranking:
        e = max((e for h, e in frame.items() if int(labels[h]) == s.label),
                key=lambda e: (e.pair_prob, e.inliers), default=None)
        pts = e.payload() if e is not None else {"query_pts": [], "ref_pts": []}
        probs[ids[s.label]] = s.probability
        cands.append(Candidate(ids[s.label], s.probability, e.cos if e else s.cos,
                               e.inliers if e else int(s.inliers), e.ref if e else s.ref, pts))
    return probs, cands


def measure_bursts(groups: list, matcher: Matcher, *, frames_per_group: int = 4,
                   against: list | None = None) -> ClusterEvidence:
    """Evidence between bursts, ``(n, m)``: every burst of ``groups`` against every burst of ``against``
    (default: ``groups`` against each other, a burst never against itself).

    ``groups``/``against``: per burst its frames (objects with ``detection_id``, ``quality``,
    ``embedding``, ``features``, ``place``, and ``extra`` {matcher: Features} when the matcher fuses
    other local matchers). The sharpest ``frames_per_group`` frames of every burst of ``against`` form a
    temporary gallery (individual = burst); each of the sharpest frames of a burst of ``groups`` is
    matched against it through the same shortlist as known individuals (whole when small, votes +
    cosine when large), giving the best inliers (and P) between every two bursts."""
    same = against is None
    against = groups if same else against
    ev = ClusterEvidence.empty(len(groups), len(against))
    if not groups or not against or (same and len(groups) <= 1):
        return ev
    reps = [sorted(m, key=lambda r: -r.quality)[:frames_per_group] for m in groups]
    refs = reps if same else [sorted(m, key=lambda r: -r.quality)[:frames_per_group] for m in against]
    frames = [(g, r) for g, rep in enumerate(refs) for r in rep]
    owner = np.array([g for g, _ in frames])
    extra = {name: [r.extra[name] for _, r in frames] for name in matcher.local}
    gal = Gallery(np.stack([r.embedding for _, r in frames]), [r.features for _, r in frames],
                  owner.tolist(), [r.detection_id for _, r in frames], [r.place for _, r in frames], extra)
    dec = matcher.decider
    inl, cos, pp = ev.inliers, ev.cos, ev.prob
    queries = [(g, r) for g, rep in enumerate(reps) for r in rep]
    everyone = np.ones(len(owner), bool)
    for g, r in progress(queries, total=len(queries), description="cluster new"):
        ev.frames[r.detection_id] = matcher.evidence(r.embedding, r.features, gal, owner != g if same else everyone,
                                                     r.place, getattr(r, "extra", None))
        for h, e in ev.frames[r.detection_id].items():
            # the strongest evidence (most inliers, or the highest fused P) gives the cosine and the
            # reference; inliers and P keep their maxima (the inlier floor counts the most inliers)
            if dec.strength(e.inliers, e.pair_prob) > dec.strength(inl[g, h], pp[g, h]) or ev.ref[g, h] < 0:
                cos[g, h], ev.ref[g, h] = e.cos, e.ref
            inl[g, h], pp[g, h] = max(inl[g, h], e.inliers), max(pp[g, h], e.pair_prob)
    return ev


def link_bursts(ev: ClusterEvidence, decider, *, threshold: float, linkage: str = "decision",
                min_inliers: int = 0, min_prob: float | None = None) -> np.ndarray:
    """Cluster labels ``(n,)`` 0..k-1 from the square evidence between ``n`` bursts
    (:func:`measure_bursts`). ``linkage='decision'`` merges bursts greedily with the decision model
    (:func:`cluster_decide`); the hierarchical linkages run on the decision P computed once from that
    matrix (:func:`cluster_new`). Either way two bursts count as linked only as far as P holds in both
    directions, and never on fewer than ``min_inliers`` between them unless their pairwise P reaches
    ``min_prob`` (None = inliers only)."""
    inl, cos, pp = ev.inliers, ev.cos, ev.prob
    n = inl.shape[0]
    if n <= 1:
        return np.zeros(n, int)
    if linkage == "decision":
        return cluster_decide(inl, cos, decider, threshold, min_inliers=min_inliers, prob=pp, min_prob=min_prob)
    prob = np.zeros((n, n))
    strength = np.asarray(decider.strength(inl, pp), np.float64)
    for g in range(n):
        row = np.where(np.arange(n) == g, -np.inf, np.maximum(strength[g], strength[:, g]))
        ri, rp = np.maximum(inl[g], inl[:, g]), np.maximum(pp[g], pp[:, g])
        top = np.argsort(-row, kind="stable")
        for h in range(n):
            if h != g:
                o = top[0] if top[0] != h else (top[1] if n > 2 else g)
                oi, op = (ri[o], rp[o]) if o != g else (0.0, 0.0)
                prob[g, h] = decider(cos[g, h], ri[h], rp[h], cos[g, o], oi, op)
    prob = np.where(join_floor(np.maximum(inl, inl.T), np.maximum(pp, pp.T), min_inliers, min_prob), prob, 0.0)
    return cluster_new(np.minimum(prob, prob.T), threshold, linkage)  # both ways, as cluster_decide


def cluster_proposals(groups: list, matcher: Matcher, *, threshold: float,
                      linkage: str = "decision", frames_per_group: int = 4,
                      min_inliers: int = 0, min_prob: float | None = None) -> tuple[np.ndarray, ClusterEvidence]:
    """Cluster new-candidate bursts; returns labels ``(n,)`` 0..k-1 and the evidence measured: every
    burst against every other (:func:`measure_bursts`), then linked with the matcher's decisions
    (:attr:`Matcher.decider`, :func:`link_bursts`)."""
    ev = measure_bursts(groups, matcher, frames_per_group=frames_per_group)
    return link_bursts(ev, matcher.decider, threshold=threshold, linkage=linkage, min_inliers=min_inliers,
                       min_prob=min_prob), ev
