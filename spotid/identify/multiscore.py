"""Several local verifiers beside the embedding in ``spotid eval reid``: their features (cached per
image), their query x gallery score matrices, and the calibrated-fusion scorer built from them.

Every scorer's raw score is a (Q, N) matrix over the counted queries (NaN outside a query's gallery):
``embedding`` the cosine, each local matcher (``sift``, ``aliked``, ...) its inlier count. Local
matchers are scored by brute force over the whole gallery (as verifier-only always was) for their
own row of the report; the ``calibrated`` scorer is what a query costs in use: the
:class:`~spotid.identify.match.Matcher` shortlist (cosine top-k + descriptor votes, or the whole
gallery when small), every local matcher run on the shortlist only, the scores turned into
P(same) by each scorer's calibration and averaged (:class:`~spotid.identify.fusion.Fusion`).
"""
from __future__ import annotations

import hashlib
import logging
import pickle
import time
from pathlib import Path

import numpy as np

from spotid.util import open_image_reduced, progress

log = logging.getLogger(__name__)


def load_image(path, max_side: int):
    """RGB PIL image at most ``max_side`` on its long side, decoded as :func:`evaluate.prepare` does."""
    from PIL import Image

    im, _ = open_image_reduced(path, max_side)
    im.load()
    if max(im.size) > max_side:
        s = max_side / max(im.size)
        im = im.resize((max(1, round(im.width * s)), max(1, round(im.height * s))), Image.BILINEAR)
    return im


def local_features(paths: list, matcher, *, max_side: int = 512, cache: str | Path | None = None) -> tuple[list, float]:
    """Features of every image for one local matcher, and seconds per image spent computing the new
    ones. ``cache``: a folder holding one pickle per (matcher version, max_side), {path: Features};
    images already in it are not recomputed (the file is rewritten every 50 new images)."""
    store: dict = {}
    cache_file = None
    if cache is not None:
        key = hashlib.sha256(f"{matcher.version}|{max_side}".encode()).hexdigest()[:16]
        cache_file = Path(cache) / f"local-{matcher.name}-{key}.pkl"
        if cache_file.exists():
            with open(cache_file, "rb") as f:
                store = pickle.load(f)
    # keyed by the resolved path: a folder of symlinks (a subset of individuals) reuses the features
    keys = [str(Path(p).resolve()) for p in paths]
    todo = [k for k in dict.fromkeys(keys) if k not in store]
    t = 0.0

    def save():
        if cache_file is not None:
            from spotid.util import atomic_write_bytes
            atomic_write_bytes(cache_file, pickle.dumps(store))

    for k, p in enumerate(progress(todo, total=len(todo), description=f"{matcher.name} features")):
        im = load_image(p, max_side)
        t0 = time.perf_counter()
        store[p] = matcher.features(im)
        t += time.perf_counter() - t0
        if cache_file is not None and (k + 1) % 50 == 0:
            save()
    if todo:
        save()
    return [store[k] for k in keys], t / max(len(todo), 1)


def brute_force(queries: np.ndarray, valid: np.ndarray, feats: list, matcher) -> tuple[np.ndarray, float]:
    """(Q, N) raw scores of ``matcher`` for every query against every image of its gallery (``valid``
    (Q, N) bool; NaN elsewhere, and where the matcher gives no score), and seconds per pair."""
    out = np.full(valid.shape, np.nan)
    t0, n = time.perf_counter(), 0
    for row, i in enumerate(progress(queries, total=len(queries), description=f"{matcher.name} pairs")):
        for j in np.flatnonzero(valid[row]):
            out[row, j] = matcher.scores(feats[int(i)], feats[int(j)])
            n += 1
    return out, (time.perf_counter() - t0) / max(n, 1)


def shortlisted(queries: np.ndarray, valid: np.ndarray, shortlists: list, feats: list, matcher
                ) -> tuple[np.ndarray, float, float]:
    """(Q, N) raw scores of ``matcher`` on each query's shortlist (``shortlists[row]``: gallery
    indices), 0 inliers elsewhere in the gallery (as the SIFT path of the Matcher), NaN outside it;
    and wall and CPU seconds per query spent (on a shared machine the wall time mostly measures the
    neighbours)."""
    out = np.where(valid, 0.0, np.nan)
    t0, c0 = time.perf_counter(), time.process_time()
    for row, i in enumerate(queries):
        for j in shortlists[row]:
            out[row, j] = matcher.scores(feats[int(i)], feats[int(j)])
    n = max(len(queries), 1)
    return out, (time.perf_counter() - t0) / n, (time.process_time() - c0) / n


def raw_scores(data, s, names: list[str], *, matchers: dict, max_side: int = 512, cache=None,
               full_verifier: bool = True) -> tuple[dict, dict, dict]:
    """Raw score matrices of the embedding and of each local matcher in ``names`` for the queries of
    ``s`` (:class:`~spotid.identify.evaluate.Scores`): (brute force over the gallery {scorer: (Q, N)},
    on the Matcher's shortlist {scorer: (Q, N)}, timings). ``sift`` reuses the evaluation's own RootSIFT
    scores (``s.inliers``, ``s.fused_inliers``, whole inliers); other matchers come from ``matchers``
    {name: LocalMatcher}, their features computed once per image (``cache``)."""
    valid = s.valid
    brute = {"embedding": np.where(valid, s.cos, np.nan)}
    short = {"embedding": brute["embedding"]}
    timing = {"seconds_per_query": {"embedding+sift": s.seconds_per_query},
              "cpu_seconds_per_query": {"embedding+sift": s.meta.get("cpu_seconds_per_query")},
              "verifiers_scored_on": "whole gallery" if full_verifier else "the Matcher's shortlist"}
    for name in names:
        if name == "sift":
            if full_verifier:
                brute["sift"] = np.where(valid, s.inliers, np.nan)
            short["sift"] = np.where(valid, s.fused_inliers, np.nan)
            continue
        m = matchers[name]
        feats, t_feat = local_features([it.path for it in data.items], m, max_side=max_side, cache=cache)
        timing.setdefault("ms_per_features", {})[name] = 1000 * t_feat
        if full_verifier:
            brute[name], t_pair = brute_force(s.queries, valid, feats, m)
            timing.setdefault("ms_per_pair", {})[name] = 1000 * t_pair
        short[name], t_q, c_q = shortlisted(s.queries, valid, s.shortlists, feats, m)
        timing["seconds_per_query"][name] = t_q
        timing["cpu_seconds_per_query"][name] = c_q
    if not full_verifier:  # each verifier alone re-ranks the shortlist (0 inliers elsewhere), as in use
        for name in names:
            brute[name] = short[name]
    return brute, short, timing


def calibrated_report(data, s, fusion, names: list[str], brute: dict, short: dict, *, threshold: float = 0.5,
                      unknown_fraction: float = 0.25, seed: int = 0) -> dict:
    """Per scorer (embedding, each local matcher: brute force, ranked by its calibrated P, i.e. its raw
    score) top-1/top-5/mAP; and ``calibrated``: the fused P of the shortlist scores, with open-set
    BAKS/BAUS from the fusion's decision (own best P against the best other individual's)."""
    from spotid.identify.match import unknown_split
    from spotid.identify.match import open_set_metrics, rank_individuals, retrieval_metrics

    ind = np.array([it.individual for it in data.items], dtype=object)
    ql = ind[s.queries]
    out = {}
    for k in ["embedding", *names]:
        if k in brute:
            out[k] = retrieval_metrics(brute[k], ql, ind)
    use = ["embedding", *names]
    p = fusion.fuse({k: short[k] for k in use})
    p = np.where(s.valid, p, np.nan)
    m = retrieval_metrics(p, ql, ind)
    unknown = unknown_split(ind, s.queries, unknown_fraction, seed)
    in_gallery = ~np.isin(ind, list(unknown))
    best_p, pred, truth, known = [], [], [], []
    for row, qi in enumerate(s.queries):
        ranked = rank_individuals(np.where(in_gallery, p[row], np.nan), ind)
        if ranked:
            other = ranked[1][1] if len(ranked) > 1 else 0.0
            best_p.append(float(fusion.decide(ranked[0][1], other)))
            pred.append(ranked[0][0])
        else:
            best_p.append(0.0)
            pred.append(None)
        truth.append(ind[qi])
        known.append(ind[qi] not in unknown)
    m.update(open_set_metrics(best_p, pred, truth, known, threshold))
    m["scorers"] = use
    m["weights"] = {k: fusion.weights.get(k, 1.0) for k in use}
    m["combine"] = fusion.combine
    out["calibrated"] = m
    # with each scorer alone through its calibration on the shortlist scores (what fusion adds)
    return out


def shortlist_mask(s) -> np.ndarray:
    """(Q, N) bool: the pairs the Matcher verified (each query's shortlist)."""
    m = np.zeros(s.valid.shape, bool)
    for row, short in enumerate(s.shortlists):
        m[row, np.asarray(short, int)] = True
    return m & s.valid


def fusion_pairs(s, data, brute: dict, shortlist_only: bool = False) -> tuple[dict, np.ndarray]:
    """Training pairs for :func:`spotid.identify.fusion.fit_fusion`: every (query, gallery image) pair
    (``shortlist_only``: the pairs the Matcher verified), each scorer's raw score and whether the two
    are one individual."""
    ind = np.array([it.individual for it in data.items], dtype=object)
    rows, cols = np.nonzero(shortlist_mask(s) if shortlist_only else s.valid)
    same = ind[s.queries[rows]] == ind[cols]
    return {k: v[rows, cols] for k, v in brute.items()}, same.astype(bool)


def fusion_decision_rows(s, data, fusion, short: dict, names: list[str], *, unknown_fraction: float = 0.25,
                         splits: int = 4, top: int = 3, seed: int = 1000) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(p_own, p_other, correct) rows for :func:`spotid.identify.fusion.fit_decision`: each query's
    ``top`` individuals by fused P (shortlist scores, as in use) over ``splits`` seeded open-set splits."""
    from spotid.identify.match import unknown_split
    from spotid.identify.fusion import decision_rows

    ind = np.array([it.individual for it in data.items], dtype=object)
    p = np.where(s.valid, fusion.fuse({k: short[k] for k in ["embedding", *names]}), np.nan)
    rows = []
    for k in range(splits):
        unknown = unknown_split(ind, s.queries, unknown_fraction, seed + k)
        rows += decision_rows(p, ind[s.queries], ind, ~np.isin(ind, list(unknown)), top)
    a = np.array(rows, dtype=object).reshape(-1, 3)
    return a[:, 0].astype(float), a[:, 1].astype(float), a[:, 2].astype(bool)


def _fused_metrics(fusion, runs: list, use: list[str]) -> tuple[float, float]:
    """Mean top-1 and mean mAP of ``fusion`` over ``runs`` [(data, scores, shortlist raw scores)]."""
    from spotid.identify.match import retrieval_metrics

    top1, maps = [], []
    for data, s, short in runs:
        ind = np.array([it.individual for it in data.items], dtype=object)
        p = np.where(s.valid, fusion.fuse({k: short[k] for k in use}), np.nan)
        m = retrieval_metrics(p, ind[s.queries], ind)
        top1.append(m["top1"])
        maps.append(m["mAP"])
    return float(np.mean(top1)), float(np.mean(maps))


def fusion_candidates(use: list[str], *, combines=("mean",), step: float = 0.25, drop: bool = False):
    """(combine, {scorer: weight}) to try, in order: per combine rule, equal weights first, then a simplex
    grid of ``step`` over ``use`` (every scorer > 0, or with ``drop`` any may be 0, at least one > 0);
    the weights sum to 1."""
    import itertools

    n = int(round(1 / step))
    lo = 0 if drop else 1
    grid = [c for c in itertools.product(range(lo, n + 1), repeat=len(use)) if sum(c) == n]
    for how in combines:
        for c in [tuple([1] * len(use))] + grid:
            yield how, {k: float(v) / max(sum(c), 1) for k, v in zip(use, c)}


def select_fusion(fusion, runs: list, names: list[str], *, combines=("mean",), step: float = 0.25,
                  drop: bool = False):
    """The fusion with the combine rule (of ``combines``) and averaging weights (a simplex grid of
    ``step``; every scorer > 0, or ``drop``: a scorer may get 0, at least one > 0) that score best on
    ``runs`` [(data, scores, shortlist raw scores)]: the mean over runs of (top-1 + mAP) / 2, top-1
    alone being too coarse on a few hundred queries. Pass validation individuals' runs, never the
    evaluation's. The first candidate wins ties: equal weights and the first combine first.
    ``meta['selection']`` records the choice and the best candidates."""
    from spotid.identify.fusion import Fusion

    use = ["embedding", *names]
    table = []
    for how, w in fusion_candidates(use, combines=combines, step=step, drop=drop):
        f = Fusion(fusion.calibrations, w, fusion.decision, fusion.floor, fusion.meta, how)
        top1, m = _fused_metrics(f, runs, use)
        table.append(((top1 + m) / 2, top1, m, how, w))
    best = max(table, key=lambda r: r[0])       # max keeps the first of equal scores
    ranked = sorted(table, key=lambda r: -r[0])
    meta = dict(fusion.meta)
    meta["selection"] = {"criterion": "mean over the selection folders of (top-1 + mAP) / 2",
                         "combines": list(combines), "step": step, "drop": drop, "candidates": len(table),
                         "best": [{"score": round(r[0], 4), "top1": round(r[1], 4), "mAP": round(r[2], 4),
                                   "combine": r[3], "weights": {k: round(v, 3) for k, v in r[4].items()}}
                                  for r in ranked[:5]]}
    return Fusion(fusion.calibrations, best[4], fusion.decision, fusion.floor, meta, best[3])


def weight_grid(fusion, runs: list, names: list[str], step: float = 0.25):
    """The fusion with the averaging weights (a simplex grid of ``step``, every scorer > 0) that give
    the best mean mAP over ``runs`` [(data, scores, shortlist raw scores)], the calibration folders'
    own queries (never the evaluation's); equal weights win ties."""
    import itertools

    from spotid.identify.fusion import Fusion
    from spotid.identify.match import retrieval_metrics

    use = ["embedding", *names]
    n = int(round(1 / step))
    grid = [c for c in itertools.product(range(1, n + 1), repeat=len(use)) if sum(c) == n] or [(1,) * len(use)]
    equal = {k: 1.0 for k in use}
    best = None
    for c in [tuple([1] * len(use))] + grid:
        w = {k: float(v) for k, v in zip(use, c)}
        f = Fusion(fusion.calibrations, w, fusion.decision, fusion.floor, fusion.meta)
        maps = []
        for data, s, short in runs:
            ind = np.array([it.individual for it in data.items], dtype=object)
            p = np.where(s.valid, f.fuse({k: short[k] for k in use}), np.nan)
            maps.append(retrieval_metrics(p, ind[s.queries], ind)["mAP"])
        score = float(np.mean(maps))
        if best is None or score > best[0] + 1e-9:
            best = (score, w)
    w = best[1] if best else equal
    fusion.meta["weights_grid_mAP"] = best[0] if best else None
    return Fusion(fusion.calibrations, w, fusion.decision, fusion.floor, fusion.meta)
