"""Matching a crop against a gallery of known crops: shortlist, verify, fuse, vote, cluster.

- Shortlist by exact cosine in numpy (embeddings are unit vectors, so cosine = dot product).
- Re-rank the shortlist with the local-feature verifier; fuse cosine and inliers into a calibrated
  P(same) (:mod:`spotid.identify.calibrate`).
- Individuals are ranked by their best reference (max over that individual's gallery crops).
- All frames of a burst vote together (:func:`burst_vote`).
- Open set: groups below the threshold are new-individual candidates, clustered so one new animal
  photographed five times is proposed once (:func:`cluster_new`).
Also the retrieval metrics shared by ``spotid eval reid`` and the tests (:func:`retrieval_metrics`).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Hashable, Sequence

import numpy as np

from spotid.identify.calibrate import Calibration
from spotid.identify.verify import Features, Verifier


# -- ranking and metrics ---------------------------------------------------------------------------
def best_per_individual(scores: np.ndarray, labels: Sequence[Hashable]) -> dict[Hashable, tuple[float, int]]:
    """``scores`` ``(G,)`` over gallery items with ``labels``; -> {label: (best score, gallery index)}.
    NaN scores (excluded items) are ignored."""
    out: dict[Hashable, tuple[float, int]] = {}
    for j, (s, lab) in enumerate(zip(scores, labels)):
        if np.isnan(s):
            continue
        if lab not in out or s > out[lab][0]:
            out[lab] = (float(s), j)
    return out


def rank_individuals(scores: np.ndarray, labels: Sequence[Hashable]) -> list[tuple[Hashable, float, int]]:
    """Individuals ranked by their best gallery score, highest first: [(label, score, gallery idx)].
    Ties keep the order of first appearance in the gallery (deterministic)."""
    best = best_per_individual(scores, labels)
    return sorted(((lab, s, j) for lab, (s, j) in best.items()), key=lambda t: -t[1])


def average_precision(scores: np.ndarray, relevant: np.ndarray) -> float:
    """AP of one ranked list: ``scores`` ``(G,)`` (NaN = not in the gallery), ``relevant`` bool ``(G,)``.
    Ties are broken pessimistically (irrelevant items first) so a constant score earns nothing."""
    ok = ~np.isnan(scores)
    s, r = scores[ok], relevant[ok].astype(bool)
    if r.sum() == 0:
        return float("nan")
    order = np.lexsort((r, -s))  # by score desc; among ties irrelevant (False) first
    r = r[order]
    hits = np.cumsum(r)
    prec = hits / np.arange(1, len(r) + 1)
    return float((prec * r).sum() / r.sum())


def retrieval_metrics(scores: np.ndarray, query_labels: Sequence[Hashable],
                      gallery_labels: Sequence[Hashable], ks: tuple[int, ...] = (1, 5)) -> dict:
    """Closed-set re-ID metrics of a query x gallery score matrix.

    ``scores`` ``(Q, G)``; NaN marks gallery items excluded for that query (own encounter, other
    flank, the query itself). Individuals are ranked by their best item; top-k = the query's
    individual is among the first k individuals (ties counted pessimistically); mAP is the mean
    average precision over the ranked gallery items. Queries with no relevant item are skipped.
    """
    gl = np.asarray(gallery_labels, dtype=object)
    topk = {k: 0 for k in ks}
    aps, n = [], 0
    for qi, lab in enumerate(query_labels):
        row = np.asarray(scores[qi], np.float64)
        rel = (gl == lab) & ~np.isnan(row)
        if not rel.any():
            continue
        n += 1
        best = best_per_individual(row, gl)
        mine = best[lab][0]
        # pessimistic rank: every other individual scoring >= mine is ahead
        rank = 1 + sum(1 for other, (s, _) in best.items() if other != lab and s >= mine)
        for k in ks:
            topk[k] += rank <= k
        aps.append(average_precision(row, rel))
    out = {f"top{k}": (topk[k] / n if n else float("nan")) for k in ks}
    out["mAP"] = float(np.mean(aps)) if aps else float("nan")
    out["queries"] = n
    return out


def open_set_metrics(best_scores: Sequence[float], predicted: Sequence[Hashable], truth: Sequence[Hashable],
                     known: Sequence[bool], threshold: float) -> dict:
    """BAKS / BAUS at ``threshold`` (balanced accuracy on known / unknown samples).

    Per query: ``best_scores`` of its top individual ``predicted``; ``truth`` its individual;
    ``known`` whether that individual is in the gallery. A known query is right when the score
    passes the threshold AND the top individual is the true one; an unknown query is right when the
    score stays below it. Accuracies are averaged per individual first (balanced), then over
    individuals, so individuals with many photos do not dominate.
    """
    per_k: dict[Hashable, list[bool]] = {}
    per_u: dict[Hashable, list[bool]] = {}
    for s, p, t, kn in zip(best_scores, predicted, truth, known):
        if kn:
            per_k.setdefault(t, []).append(bool(s >= threshold and p == t))
        else:
            per_u.setdefault(t, []).append(bool(s < threshold))
    baks = float(np.mean([np.mean(v) for v in per_k.values()])) if per_k else float("nan")
    baus = float(np.mean([np.mean(v) for v in per_u.values()])) if per_u else float("nan")
    return {"BAKS": baks, "BAUS": baus, "threshold": float(threshold),
            "known_queries": sum(map(len, per_k.values())), "unknown_queries": sum(map(len, per_u.values()))}


# -- burst voting and open-set clustering --------------------------------------------------------
def burst_vote(frames: Sequence[dict[Hashable, float]], weights: Sequence[float] | None = None) -> dict[Hashable, float]:
    """Combine per-frame P(same) of the frames of one burst (same sequence, same flank).

    Each frame gives {individual: P}; an individual a frame did not shortlist counts as P=0 for that
    frame. The burst's P for an individual is the weighted mean over frames (weights = crop quality),
    so one sharp frame outweighs a blurred one but a single lucky frame cannot carry a burst whose
    other sharp frames disagree.
    """
    if not frames:
        return {}
    w = np.ones(len(frames)) if weights is None else np.maximum(np.asarray(weights, np.float64), 1e-6)
    w = w / w.sum()
    out: dict[Hashable, float] = {}
    for wi, f in zip(w, frames):
        for ind, p in f.items():
            out[ind] = out.get(ind, 0.0) + wi * float(p)
    return dict(sorted(out.items(), key=lambda kv: -kv[1]))


def cluster_new(prob: np.ndarray, threshold: float) -> np.ndarray:
    """Group new-individual candidates: average-linkage agglomerative clustering on P(same).

    ``prob`` ``(n, n)`` symmetric pairwise P(same) (diagonal ignored). Clusters merge while their
    average pairwise P is >= ``threshold``. Returns labels ``(n,)`` 0..k-1 in order of first member.
    """
    n = prob.shape[0]
    if n == 0:
        return np.zeros(0, int)
    if n == 1:
        return np.zeros(1, int)
    from scipy.cluster.hierarchy import fcluster, linkage
    from scipy.spatial.distance import squareform

    p = np.clip((np.asarray(prob, np.float64) + np.asarray(prob, np.float64).T) / 2, 0, 1)
    d = 1.0 - p
    np.fill_diagonal(d, 0.0)
    z = linkage(squareform(d, checks=False), method="average")
    raw = fcluster(z, t=1.0 - threshold + 1e-12, criterion="distance")
    remap: dict[int, int] = {}
    return np.array([remap.setdefault(int(c), len(remap)) for c in raw], int)


# -- the matcher stage -----------------------------------------------------------------------------
@dataclass
class Gallery:
    """Reference crops: ``embeddings`` ``(G, D)`` float32 unit rows, ``features`` per crop,
    ``individuals`` (individual key per crop) and ``refs`` (e.g. detection ids) per crop."""

    embeddings: np.ndarray
    features: list[Features]
    individuals: list[Hashable]
    refs: list[Hashable] = field(default_factory=list)

    def __post_init__(self):
        if not self.refs:
            self.refs = list(range(len(self.individuals)))
        n = len(self.individuals)
        if self.embeddings.shape[0] != n or len(self.features) != n or len(self.refs) != n:
            raise ValueError("gallery embeddings, features, individuals and refs must have one row per crop")

    def __len__(self) -> int:
        return len(self.individuals)


@dataclass(frozen=True)
class Candidate:
    """One candidate individual for a query crop, with its best reference crop and the evidence."""

    individual: Hashable
    probability: float
    embed_score: float
    inliers: int
    ref: Hashable
    evidence: dict = field(repr=False, default_factory=dict)


class Matcher:
    """Stage: (query embedding, query features, gallery) -> candidates ranked by calibrated P(same).

    ``shortlist`` gallery crops with the highest cosine are verified; crops outside it keep their
    cosine with 0 inliers (they can still appear, low, in the ranking). ``top_k`` individuals are
    returned. ``mask`` (bool, G) restricts the gallery per query (same flank, other encounters).
    """

    def __init__(self, verifier: Verifier, calibration: Calibration, *, shortlist: int = 30, top_k: int = 5,
                 max_refs_per_individual: int = 0):
        self.verifier = verifier
        self.calibration = calibration
        self.shortlist = int(shortlist)
        self.top_k = int(top_k)
        self.max_refs_per_individual = int(max_refs_per_individual)

    def scores(self, q_emb: np.ndarray, q_feat: Features, gallery: Gallery, mask: np.ndarray | None = None
               ) -> tuple[np.ndarray, np.ndarray, dict[int, object]]:
        """Per gallery crop: cosine ``(G,)``, inliers ``(G,)`` (0 outside the shortlist, NaN cosine
        where masked) and the verifications done {gallery idx: Verification}."""
        cos = gallery.embeddings @ q_emb.astype(np.float32) if len(gallery) else np.zeros(0, np.float32)
        cos = cos.astype(np.float64)
        if mask is not None:
            cos = np.where(mask, cos, np.nan)
        valid = np.flatnonzero(~np.isnan(cos))
        order = valid[np.argsort(-cos[valid], kind="stable")]
        inl = np.zeros(len(gallery))
        done = {}
        for j in order[: self.shortlist]:
            v = self.verifier(q_feat, gallery.features[j])
            inl[j] = v.inliers
            done[int(j)] = v
        return cos, inl, done

    def __call__(self, q_emb: np.ndarray, q_feat: Features, gallery: Gallery,
                 mask: np.ndarray | None = None) -> list[Candidate]:
        cos, inl, done = self.scores(q_emb, q_feat, gallery, mask)
        prob = np.where(np.isnan(cos), np.nan, self.calibration.prob(np.nan_to_num(cos), inl, "fused"))
        ranked = rank_individuals(prob, gallery.individuals)[: self.top_k]
        out = []
        for ind, p, j in ranked:
            v = done.get(j)
            out.append(Candidate(ind, float(p), float(cos[j]), int(inl[j]), gallery.refs[j],
                                 v.evidence() if v is not None and v.inliers else {"query_pts": [], "ref_pts": []}))
        return out
