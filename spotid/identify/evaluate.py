"""``spotid eval reid``: leave-one-out re-identification on a folder of labelled images.

DIR holds one folder per individual; images may be nested below it. Flank is NEVER read from file
names: the flank classifier decides it, and a left flank is only compared with left flanks. Views it
cannot place (unknown/front/back) are compared with every image, as ``identify`` matches them against
both flanks' individuals (``unknown_flank="both"``), or left out (``"skip"``, the protocol before
2026-12-01).

Protocol (issue 5): every image whose individual has another image in its gallery is a query; the
gallery is every other image of the same flank (see above) EXCEPT those of the query's own encounter
(``--encounter REGEX`` on the file name; group 1, or the whole match, is the encounter key; without
it each file is its own encounter). Queries with no other-encounter image of their individual are not
counted. Individuals are ranked by their best gallery image.

Three scorers are reported: ``embedding`` (cosine), ``verifier`` (RootSIFT inliers against every
gallery image, brute force), ``fused`` (the :class:`~spotid.identify.match.Matcher`'s shortlist —
whole gallery when small, else cosine top-k + descriptor votes — verifier re-rank, calibrated
P(same)), the last exactly as ``spotid identify`` matches. Open set: a fixed share of individuals
(seeded) is left out of the gallery; BAKS/BAUS are the balanced accuracies on known/unknown queries
at the operating probability threshold, with each scorer's decision model (own best evidence vs the
best other individual's, :meth:`Calibration.decide`).

With ``--verifiers sift,aliked`` (:mod:`spotid.identify.multiscore`) each local verifier is also
scored alone, and ``calibrated`` -- the average of each scorer's calibrated P(same)
(:mod:`spotid.identify.fusion`, ``models/matcher/fusion``) -- heads the report.
"""
from __future__ import annotations

import json
import logging
import re
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from spotid.identify.calibrate import Calibration
from spotid.identify.match import (Gallery, Matcher, open_set_metrics, rank_individuals, retrieval_metrics,
                                   unknown_split)
from spotid.identify.verify import FeatureExtractor, Features, Verifier
from spotid.util import IMAGE_EXTS, open_image_reduced, progress

log = logging.getLogger(__name__)

SCORERS = ("embedding", "verifier", "fused")


@dataclass
class Item:
    path: Path
    individual: str
    encounter: str
    flank: str | None = None     # given (a catalog's confirmed sighting); None = the flank classifier's


def encounter_regex(encounter: str | None) -> re.Pattern | None:
    """``--encounter`` compiled; ValueError naming the fix when it is not a regular expression."""
    if not encounter:
        return None
    try:
        return re.compile(encounter)
    except re.error as e:
        raise ValueError(f"--encounter {encounter!r} is not a regular expression ({e}): give one whose group 1 is "
                         r"the encounter, e.g. '^(\d+)_' for 123_left.jpg or '^([^/]+)/' for a folder per encounter")


def encounter_of(rx: re.Pattern, name: str, rel: str) -> str | None:
    """The encounter key of an image: the regex searched in its file ``name``, else in its path below the
    individual's folder (``rel``, e.g. ``clip07/0001.jpg``, for sets with a folder per encounter); group 1,
    or the whole match without a group. None when neither matches."""
    for text in (name, rel):
        m = rx.search(text)
        if m is not None:
            return m.group(1) if m.groups() else m.group(0)
    return None


def list_items(root: str | Path, encounter: str | None = None) -> list[Item]:
    """Images under ``root/<individual>/**``. ``encounter``: regex searched in the file name, else in the
    path below the individual's folder (:func:`encounter_of`)."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"{root} is not a folder: pass DIR with one sub-folder per individual")
    rx = encounter_regex(encounter)
    items = []
    for ind in sorted(p for p in root.iterdir() if p.is_dir()):
        for f in sorted(ind.rglob("*")):
            if f.suffix.lower() not in IMAGE_EXTS or not f.is_file():
                continue
            rel = f.relative_to(root).as_posix()
            if rx is None:
                enc = rel
            else:
                below = f.relative_to(ind).as_posix()
                enc = encounter_of(rx, f.name, below)
                if enc is None:
                    raise ValueError(f"--encounter {encounter!r} matches neither the file name {f.name} nor its path "
                                     f"{below} below {ind.name}/: fix the regex (group 1 = encounter key)")
            # encounters are per individual: the same number in two folders is two encounters
            items.append(Item(f, ind.name, f"{ind.name}/{enc}"))
    if not items:
        raise ValueError(f"no images under {root}/<individual>/: expected one folder per individual")
    return items


def catalog_items(db: str | Path) -> list[Item]:
    """A spotid catalog's confirmed sightings as labelled crops: individual = the confirmed individual, flank =
    the sighting's (what a person confirmed, not re-asked of the classifier), encounter = its camera and
    calendar day (the same station on the same day shares light and background, so such pairs are never
    query and gallery; the burst, else the frame, when the time is unknown). Sightings identify accepted on its
    own ('auto') are not used: training on them would feed the matcher's mistakes back into it."""
    from spotid.catalog import Catalog
    from spotid.catalog.tables import sightings

    with Catalog(Path(db), create=False) as cat:   # CatalogError naming the fix when it is none
        rows = sightings.confirmed_with_crops(cat)
    items = []
    for r in rows:
        if not Path(r["crop_path"]).is_file():
            continue
        when = (f"{r['deployment_id']}/{str(r['timestamp'])[:10]}" if r["timestamp"]
                else f"seq{r['sequence_id']}" if r["sequence_id"] is not None else f"media{r['media_id']}")
        items.append(Item(Path(r["crop_path"]), str(r["name"]), f"{r['name']}/{when}", r["flank"] or "unknown"))
    return items


@dataclass
class EvalData:
    """Per image: flank (classifier), embedding ``(N, D)``, RootSIFT features (with their infrared
    flag, so night/night pairs are discounted as in ``identify``); timings in seconds."""

    items: list[Item]
    flanks: list[str]
    embeddings: np.ndarray
    features: list[Features]
    embed_seconds: float = 0.0
    feature_seconds: float = 0.0
    embedder_version: str = ""
    unreadable: list = field(default_factory=list)   # [(path, reason)] of images that could not be decoded


def prepare(items: list[Item], *, embedder, flank, extractor: FeatureExtractor, max_side: int = 512,
            batch_size: int = 32, cache: str | Path | None = None, flank_from_path: str | None = None) -> EvalData:
    """Load every image (reduced decode to ``max_side``) and compute flank, embedding and features.

    ``cache``: a folder where the result is pickled, keyed by the images, the model versions and
    the feature settings (repeated evaluations of the matcher skip the expensive part).
    ``flank_from_path``: TRAINING ONLY (``spotid train matcher``): a regex whose group 1 (left|right)
    is searched in the image's path instead of asking the classifier. Evaluation never uses it."""
    import hashlib
    import pickle

    from PIL import Image

    cache_file = None
    if cache is not None:
        key = hashlib.sha256(json.dumps([[str(it.path), it.individual, it.encounter, *([it.flank] if it.flank else [])]
                                         for it in items] + [
            getattr(embedder, "version", ""), getattr(flank, "version", ""), extractor.version,
            extractor.max_keypoints, max_side, flank_from_path, "features+infrared"]).encode()).hexdigest()[:20]
        cache_file = Path(cache) / f"reid-eval-{key}.pkl"
        if cache_file.exists():
            with open(cache_file, "rb") as f:
                return pickle.load(f)

    flanks, embs, feats, kept, unreadable = [], [], [], [], []
    t_emb = t_feat = 0.0
    for start in progress(range(0, len(items), batch_size), total=(len(items) + batch_size - 1) // batch_size,
                          description="embed"):
        ims, batch = [], []
        for it in items[start:start + batch_size]:
            try:  # a broken file in a folder of photos is reported, not a crash
                im, _ = open_image_reduced(it.path, max_side)
                im.load()
            except (OSError, ValueError, Image.DecompressionBombError) as e:
                log.warning("skipping %s: cannot decode it (%s); re-copy or remove the file", it.path, e)
                unreadable.append((str(it.path), str(e)))
                continue
            if max(im.size) > max_side:
                s = max_side / max(im.size)
                im = im.resize((max(1, round(im.width * s)), max(1, round(im.height * s))), Image.BILINEAR)
            ims.append(im)
            batch.append(it)
        kept += batch
        if not ims:
            continue
        if flank_from_path:
            for it in batch:
                m = re.search(flank_from_path, it.path.as_posix())
                flanks.append(m.group(1).lower() if m else "unknown")
        elif all(it.flank for it in batch):   # given flanks: the classifier is not asked
            flanks += [it.flank for it in batch]
        else:
            flanks += [it.flank or p.flank for it, p in zip(batch, flank(ims))]
        t0 = time.perf_counter()
        embs.append(np.asarray(embedder(ims), np.float32))
        t_emb += time.perf_counter() - t0
        t0 = time.perf_counter()
        feats += [extractor(im) for im in ims]
        t_feat += time.perf_counter() - t0
    if not kept:
        raise ValueError(f"none of the {len(items)} images could be decoded: check the folder")
    data = EvalData(kept, flanks, np.concatenate(embs), feats, t_emb, t_feat, getattr(embedder, "version", ""),
                    unreadable)
    if cache_file is not None:
        from spotid.util import atomic_write_bytes
        atomic_write_bytes(cache_file, pickle.dumps(data))
    return data


@dataclass
class Scores:
    """Query x gallery matrices over the usable images (NaN = not in that query's gallery)."""

    queries: np.ndarray          # indices into items of counted queries
    valid: np.ndarray            # (Q, N) bool: gallery mask per query
    cos: np.ndarray              # (Q, N)
    inliers: np.ndarray          # (Q, N) verifier inliers (+ matches/1000 tie-break) where computed, else NaN
    fused_inliers: np.ndarray    # (Q, N) inliers (+ matches/1000) inside the matcher's shortlist, 0 elsewhere
    seconds_per_query: float = 0.0
    meta: dict = field(default_factory=dict)
    shortlists: list = field(default_factory=list)  # per query: the gallery indices the Matcher verified


UNKNOWN_FLANK = ("both", "skip")


def _check_unknown_flank(unknown_flank: str) -> None:
    if unknown_flank not in UNKNOWN_FLANK:
        raise ValueError(f"--unknown-flank {unknown_flank!r}: use both or skip")


def _placed(flanks) -> np.ndarray:
    """bool per image: the flank classifier put it on a flank (left/right)."""
    return np.isin(np.array(flanks, dtype=object), ["left", "right"])


def query_flanks(data: EvalData, s: Scores) -> dict[str, int]:
    """How many counted queries the flank classifier put on each flank (or left unplaced)."""
    qf = [data.flanks[int(i)] for i in s.queries]
    return {f: qf.count(f) for f in sorted(set(qf))}


def gallery_mask(data: EvalData, unknown_flank: str = "both") -> np.ndarray:
    """(N, N) bool: j is in i's gallery: another encounter, not itself, and the same flank when the
    classifier placed both images on a flank (left/right).

    ``unknown_flank``: what happens to images it could not place (unknown, front, back). ``"both"``
    (as ``identify`` treats such views): they are compared with every image, of either flank, and every
    image with them. ``"skip"``: they are left out, as queries and from every gallery (the protocol
    before 2026-12-01; on real leopards, where the classifier places few crops, it evaluates little).
    """
    _check_unknown_flank(unknown_flank)
    fl = np.array(data.flanks, dtype=object)
    enc = np.array([it.encounter for it in data.items], dtype=object)
    placed = _placed(fl)
    m = (fl[:, None] == fl[None, :]) & placed[:, None] & placed[None, :]
    if unknown_flank == "both":
        m |= ~placed[:, None] | ~placed[None, :]
    m &= enc[:, None] != enc[None, :]
    np.fill_diagonal(m, False)
    return m


def select_queries(data: EvalData, mask: np.ndarray, limit: int | None = None, seed: int = 0) -> np.ndarray:
    """Counted queries: images with an image of their individual in their gallery (``gallery_mask``)."""
    ind = np.array([it.individual for it in data.items], dtype=object)
    ok = [i for i in range(len(ind)) if (mask[i] & (ind == ind[i])).any()]
    q = np.array(ok, int)
    if limit is not None and limit < len(q):
        q = np.sort(np.random.default_rng(seed).choice(q, size=limit, replace=False))
    return q


def compute_scores(data: EvalData, verifier: Verifier, calibration: Calibration, *, shortlist: int = 30,
                   limit: int | None = None, full_verifier: bool = True, seed: int = 0,
                   verify_all: int = 300, unknown_flank: str = "both") -> Scores:
    """Embedding, verifier and fused score matrices for the counted queries.

    Verifier-only compares each query with every gallery image (brute force), query against gallery
    image as ``identify`` does: matching is not symmetric (the ratio test runs from the query's side,
    and MAGSAC++ samples in that order), so a pair's count differs by a few inliers between the two
    directions, and reusing one direction for both once made verifier-only read 0.909 instead of
    0.932 on the synthetic benchmark. The fused path is the :class:`Matcher` as ``identify`` runs
    it (shortlist + verification, features precomputed, descriptor index built once per gallery);
    ``seconds_per_query`` times it.
    """
    mask = gallery_mask(data, unknown_flank)
    q = select_queries(data, mask, limit, seed)
    n = len(data.items)
    cos = np.full((len(q), n), np.nan)
    inl = np.full((len(q), n), np.nan)
    finl = np.zeros((len(q), n))
    cache: dict[tuple[int, int], float] = {}
    gallery = Gallery(data.embeddings, data.features, [it.individual for it in data.items])
    matcher = Matcher(verifier, calibration, shortlist=shortlist, verify_all=verify_all)
    t_index = 0.0
    if n > verify_all:
        t0 = time.perf_counter()
        gallery.index()
        t_index = time.perf_counter() - t0

    def pair(i: int, j: int) -> float:
        if (i, j) not in cache:
            v = verifier(data.features[i], data.features[j])
            cache[(i, j)] = v.inliers + min(v.matches, 999) / 1000.0
        return cache[(i, j)]

    t_fused = c_fused = 0.0
    shortlists = []
    for row, i in enumerate(progress(q, total=len(q), description="queries")):
        g = np.flatnonzero(mask[i])
        t0, c0 = time.perf_counter(), time.process_time()
        c, finl[row], done = matcher.scores(data.embeddings[i], data.features[i], gallery, mask[i])
        t_fused += time.perf_counter() - t0
        c_fused += time.process_time() - c0
        shortlists.append(np.array(sorted(done), int))
        for j, v in done.items():  # same verifier, same ordered pair: reuse for the brute-force scorer
            cache.setdefault((int(i), j), v.inliers + min(v.matches, 999) / 1000.0)
        cos[row, g] = c[g]
        if full_verifier:
            for j in g:
                inl[row, j] = pair(int(i), int(j))
    return Scores(q, mask[q], cos, inl, finl, t_fused / max(len(q), 1),
                  {"shortlist": shortlist, "verify_all": verify_all, "index_seconds": t_index,
                   # CPU time of this process: on a shared machine wall time mostly measures the neighbours
                   "cpu_seconds_per_query": c_fused / max(len(q), 1)}, shortlists)


def score_matrix(s: Scores, kind: str, calibration: Calibration) -> np.ndarray:
    """(Q, N) ranking scores of one scorer (NaN outside the gallery)."""
    if kind == "embedding":
        return s.cos
    if kind == "verifier":
        return s.inliers
    p = calibration.prob(np.nan_to_num(s.cos).ravel(), s.fused_inliers.ravel(), "fused").reshape(s.cos.shape)
    return np.where(s.valid, p, np.nan)


def _evidence(s: Scores, kind: str, row: int, j: int) -> tuple[float, float]:
    """(cos, inliers) of gallery item ``j`` for query ``row`` as scorer ``kind`` sees it."""
    c = float(np.nan_to_num(s.cos[row, j]))
    if kind == "embedding":
        return c, 0.0
    if kind == "verifier":
        return 0.0, float(np.floor(np.nan_to_num(s.inliers[row, j])))
    return c, float(np.floor(s.fused_inliers[row, j]))


def decision_rows(s: Scores, kind: str, scores: np.ndarray, labels: np.ndarray, row: int,
                  in_gallery: np.ndarray, top: int = 1) -> list[tuple[object, tuple[float, float, float, float]]]:
    """The ``top`` individuals of one query as scorer ``kind`` ranks them (``scores`` = its
    :func:`score_matrix`, computed once per scorer; gallery limited to ``in_gallery``), each with its
    decision inputs (cos, inliers, cos_other, inliers_other): the other = the best other individual."""
    sc = np.where(in_gallery, scores[row], np.nan)
    ranked = rank_individuals(sc, labels)
    out = []
    for k, (lab, _, j) in enumerate(ranked[:top]):
        # the best other individual; none when the gallery holds only this one (no competing evidence)
        oc, oi = _evidence(s, kind, row, ranked[1 if k == 0 else 0][2]) if len(ranked) > 1 else (0.0, 0.0)
        out.append((lab, (*_evidence(s, kind, row, j), oc, oi)))
    return out


def evaluate(data: EvalData, s: Scores, calibration: Calibration, *, threshold: float = 0.5,
             unknown_fraction: float = 0.25, seed: int = 0) -> dict:
    """Closed-set metrics and open-set BAKS/BAUS per scorer, and top-1 of the queries the flank
    classifier placed (left/right) apart from the views it could not place (``top1_by_query_flank``)."""
    ind = np.array([it.individual for it in data.items], dtype=object)
    q_labels = ind[s.queries]
    placed = _placed(data.flanks)[s.queries]
    unknown = unknown_split(ind, s.queries, unknown_fraction, seed)
    in_gallery = ~np.isin(ind, list(unknown))
    out = {}
    for kind in SCORERS:
        if kind == "verifier" and np.isnan(s.inliers).all():
            continue
        sm = score_matrix(s, kind, calibration)
        m = retrieval_metrics(sm, q_labels, ind)
        m["top1_by_query_flank"] = {name: retrieval_metrics(sm[sel], q_labels[sel], ind)["top1"]
                                    for name, sel in (("left/right", placed), ("unplaced", ~placed)) if sel.any()}
        best_p, pred, truth, known = [], [], [], []
        for row, qi in enumerate(s.queries):
            top = decision_rows(s, kind, sm, ind, row, in_gallery)
            best_p.append(float(calibration.decide(kind, *top[0][1])) if top else 0.0)
            pred.append(top[0][0] if top else None)
            truth.append(ind[qi])
            known.append(ind[qi] not in unknown)
        m.update(open_set_metrics(best_p, pred, truth, known, threshold))
        out[kind] = m
    return out


def run_eval(root: str | Path, *, embedder, flank, calibration: Calibration, extractor: FeatureExtractor,
             verifier: Verifier, encounter: str | None = None, limit: int | None = None, shortlist: int = 30,
             threshold: float = 0.5, full_verifier: bool = True, max_side: int = 512, seed: int = 0,
             cache: str | Path | None = None, verify_all: int = 300, unknown_flank: str = "both",
             verifiers: list[str] | None = None, fusion=None, matchers: dict | None = None) -> dict:
    """The whole of ``spotid eval reid``: returns the JSON-able report.

    ``verifiers`` (e.g. ["sift", "aliked"]) with ``fusion`` (:class:`~spotid.identify.fusion.Fusion`) and
    ``matchers`` {name: LocalMatcher} for the ones other than sift: each local matcher is scored
    alone (brute force) and the calibrated fusion of the embedding and them is the ``calibrated``
    scorer, which then heads the report (:mod:`spotid.identify.multiscore`)."""
    _check_unknown_flank(unknown_flank)  # before the slow part
    t0 = time.perf_counter()
    items = list_items(root, encounter)
    data = prepare(items, embedder=embedder, flank=flank, extractor=extractor, max_side=max_side, cache=cache)
    s = compute_scores(data, verifier, calibration, shortlist=shortlist, limit=limit,
                       full_verifier=full_verifier, seed=seed, verify_all=verify_all, unknown_flank=unknown_flank)
    res = evaluate(data, s, calibration, threshold=threshold, seed=seed)
    extra = {}
    if verifiers:
        from spotid.identify.multiscore import calibrated_report, raw_scores

        if fusion is None:
            raise ValueError("--verifiers needs a fusion calibration (models/matcher/fusion, or --fusion FOLDER)")
        brute, short, timing = raw_scores(data, s, list(verifiers), matchers=matchers or {}, max_side=max_side,
                                          cache=cache, full_verifier=full_verifier)
        for k, m in calibrated_report(data, s, fusion, list(verifiers), brute, short, threshold=threshold,
                                      seed=seed).items():
            res.setdefault(k, m)   # 'embedding' keeps its open-set figures from evaluate()
        # a query in use: cosine + shortlist + SIFT (the Matcher) and each other matcher on the shortlist
        extra = {"verifiers": list(verifiers), "fusion": fusion.version, "timing": timing,
                 "seconds_per_query_calibrated": float(sum(timing["seconds_per_query"].values())),
                 "cpu_seconds_per_query_calibrated": float(sum(v or 0.0 for v in timing["cpu_seconds_per_query"].values()))}
    fl = {f: data.flanks.count(f) for f in sorted(set(data.flanks))}
    n = len(data.items)
    fused = res.get("calibrated") or res.get("fused", {})
    return {
        "dir": str(root), "images": n, "individuals": len({it.individual for it in data.items}),
        "unreadable": [{"path": p, "reason": r} for p, r in getattr(data, "unreadable", [])],
        "encounter_regex": encounter, "flanks": fl, "unknown_flank": unknown_flank,
        "queries_by_flank": query_flanks(data, s),
        "top1": fused.get("top1"), "top5": fused.get("top5"), "mAP": fused.get("mAP"),
        "queries": fused.get("queries"), "seconds_per_query": extra.get("seconds_per_query_calibrated", s.seconds_per_query),
        "cpu_seconds_per_query": extra.get("cpu_seconds_per_query_calibrated", s.meta.get("cpu_seconds_per_query")),
        "BAKS": fused.get("BAKS"), "BAUS": fused.get("BAUS"), "threshold": threshold,
        "scorers": res,
        "ms_per_embedding": 1000 * data.embed_seconds / max(n, 1),
        "ms_per_features": 1000 * data.feature_seconds / max(n, 1),
        "gallery_mean_size": float(s.valid.sum(1).mean()) if len(s.queries) else 0.0,
        "embedder": data.embedder_version, "verifier": verifier.version, "calibration": calibration.version,
        "features": extractor.version, "calibration_fits_features": calibration.check_features(extractor.version),
        "shortlist": shortlist, "verify_all": verify_all, "total_seconds": time.perf_counter() - t0,
        "headline": "calibrated" if "calibrated" in res else "fused", **extra,
    }


def calibration_pairs(data: EvalData, s: Scores) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Training pairs for :func:`spotid.identify.calibrate.fit_calibration`: every (query, gallery)
    pair the matcher verified (its shortlist), as (cos, inliers, same)."""
    ind = np.array([it.individual for it in data.items], dtype=object)
    cos_l, inl_l, same_l = [], [], []
    for row, qi in enumerate(s.queries):
        g = np.flatnonzero(s.valid[row])
        cos_l += s.cos[row, g].tolist()
        inl_l += np.floor(s.fused_inliers[row, g]).tolist()
        same_l += (ind[g] == ind[qi]).tolist()
    return np.array(cos_l), np.array(inl_l), np.array(same_l, bool)


def decision_training(data: EvalData, s: Scores, calibration: Calibration, *, unknown_fraction: float = 0.25,
                      splits: int = 4, top: int = 3, seed: int = 1000) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Training rows for :func:`spotid.identify.calibrate.fit_decisions`, per scorer: for ``splits``
    seeded open-set splits (``unknown_fraction`` of the individuals out of the gallery), each query's
    ``top`` ranked individuals with (cos, inliers, cos_other, inliers_other) and whether it is the
    query's individual. ``calibration`` supplies the pairwise fused P that ranks crops."""
    ind = np.array([it.individual for it in data.items], dtype=object)
    out = {}
    for kind in SCORERS:
        if kind == "verifier" and np.isnan(s.inliers).all():
            continue
        rows, ys = [], []
        sm = score_matrix(s, kind, calibration)
        for k in range(splits):
            unknown = unknown_split(ind, s.queries, unknown_fraction, seed + k)
            in_gallery = ~np.isin(ind, list(unknown))
            for row, qi in enumerate(s.queries):
                for lab, x in decision_rows(s, kind, sm, ind, row, in_gallery, top):
                    rows.append(x)
                    ys.append(lab == ind[qi])
        out[kind] = (np.array(rows, np.float64).reshape(-1, 4), np.array(ys, bool))
    return out
