"""Re-identification metrics, one module for every figure spotid reports: ``spotid eval reid``, the
embedder's training (:func:`spotid.train.common.reid_metrics`), the fusion's fit and the benchmarks.

Conventions: a score matrix ``(Q, G)`` with NaN where a gallery item is not in that query's gallery
(its own encounter, the other flank, the query itself); individuals are ranked by their best item;
ties count against the query (an individual scoring the same as the right one is ahead of it), so
a constant score earns nothing.
"""
from __future__ import annotations

from typing import Hashable, Sequence

import numpy as np


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


