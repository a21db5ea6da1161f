"""Matching a crop against a gallery of known crops: shortlist, verify, decide, pool bursts, cluster.

- Shortlist that does not lean on the embedder: a small gallery (<= ``verify_all`` crops) is verified
  whole; a larger one is shortlisted by the union of the embedding cosine top-k and HotSpotter-style
  descriptor votes (one approximate kNN of the query's RootSIFT descriptors over every gallery
  descriptor, LNBNN-weighted votes per gallery crop; :class:`DescriptorIndex`).
- The shortlist is re-ranked with the local-feature verifier. Crops are ranked by the pairwise
  calibrated P(same) (:meth:`Calibration.prob`); individuals by their best crop.
- The decision is per individual: P(this individual is the right one) from its best evidence AND the
  best competing individual's (:meth:`Calibration.decide`), so a query that matches everything
  weakly is not accepted.
- All frames of a burst are pooled (:meth:`Matcher.decide` over several frames' evidence).
- Open set: groups below the threshold are new-individual candidates, clustered so one new animal
  photographed five times is proposed once (:func:`cluster_new`).
The ranking and the re-ID metrics live in :mod:`spotid.identify.metrics`.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Hashable, Sequence

import numpy as np

from spotid.identify.calibrate import Calibration
from spotid.identify.metrics import (  # noqa: F401  (re-exported: the ranking is the matcher's, too)
    average_precision,
    best_per_individual,
    open_set_metrics,
    rank_individuals,
    retrieval_metrics,
)
from spotid.identify.verify import Features, Place, Verification, Verifier


# -- open-set clustering -------------------------------------------------------------------------
def cluster_new(prob: np.ndarray, threshold: float, linkage: str = "average") -> np.ndarray:
    """Group new-individual candidates: agglomerative clustering on P(same).

    ``prob`` ``(n, n)`` symmetric pairwise P(same) (diagonal ignored). With ``average`` linkage
    clusters merge while their average pairwise P is >= ``threshold``; with ``single`` linkage any
    one pair >= ``threshold`` joins two clusters (chains: day and night encounters of one animal that
    only match through a third encounter). Returns labels ``(n,)`` 0..k-1 in order of first member.
    """
    if linkage not in ("average", "single", "complete"):
        raise ValueError(f"unknown linkage {linkage!r}: use average, single or complete")
    n = prob.shape[0]
    if n == 0:
        return np.zeros(0, int)
    if n == 1:
        return np.zeros(1, int)
    from scipy.cluster.hierarchy import fcluster
    from scipy.cluster.hierarchy import linkage as _linkage
    from scipy.spatial.distance import squareform

    p = np.clip((np.asarray(prob, np.float64) + np.asarray(prob, np.float64).T) / 2, 0, 1)
    d = 1.0 - p
    np.fill_diagonal(d, 0.0)
    z = _linkage(squareform(d, checks=False), method=linkage)
    raw = fcluster(z, t=1.0 - threshold + 1e-12, criterion="distance")
    remap: dict[int, int] = {}
    return np.array([remap.setdefault(int(c), len(remap)) for c in raw], int)


class CalibrationDecider:
    """The decision of :class:`Calibration` (``kind``): P(an individual is the query's) from the
    (cosine, inliers) of its best evidence and of the best competitor's. Evidence is ranked by
    inliers (``strength``), as the calibration was fitted."""

    def __init__(self, calibration: Calibration, kind: str = "fused"):
        self.calibration, self.kind = calibration, kind

    @staticmethod
    def strength(inliers, prob):
        return inliers

    def __call__(self, cos, inliers, prob, cos_other, inliers_other, prob_other):
        return self.calibration.decide(self.kind, cos, inliers, cos_other, inliers_other)


class FusionDecider:
    """The decision of a :class:`~spotid.identify.fusion.Fusion`: from the fused pairwise P(same) of
    the best evidence and of the best competitor's; evidence is ranked by that P (``strength``)."""

    def __init__(self, fusion):
        self.fusion = fusion

    @staticmethod
    def strength(inliers, prob):
        return prob

    def __call__(self, cos, inliers, prob, cos_other, inliers_other, prob_other):
        return self.fusion.decide(prob, prob_other)


def as_decider(decider):
    """A :class:`Calibration` becomes its :class:`CalibrationDecider`; deciders pass through."""
    return CalibrationDecider(decider) if isinstance(decider, Calibration) else decider


def join_floor(inliers: np.ndarray, prob: np.ndarray, min_inliers: int, min_prob: float | None) -> np.ndarray:
    """Which pairs of new-candidate groups may be joined at all, whatever the decision says: at least
    ``min_inliers`` between them, or (``min_prob`` given) a pairwise P(same) of at least ``min_prob``.
    ``inliers``/``prob`` ``(n, n)``, already taken the way the caller counts them (both directions)."""
    ok = np.asarray(inliers) >= min_inliers
    if min_prob is not None:
        ok |= np.asarray(prob) >= min_prob
    return ok


def cluster_decide(inliers: np.ndarray, cos: np.ndarray, decider, threshold: float,
                   kind: str = "fused", min_inliers: int = 0, prob: np.ndarray | None = None,
                   min_prob: float | None = None) -> np.ndarray:
    """Group new-individual candidates by greedy agglomeration with the decision model.

    ``inliers`` ``(n, n)`` best inlier count between two candidate groups (symmetric; diagonal
    ignored), ``cos`` ``(n, n)`` the cosine of that same pair, ``prob`` ``(n, n)`` its pairwise P(same)
    (the fused P; zeros when None). ``decider``: a :class:`Calibration` (its ``kind`` decision on
    cosine and inliers) or a decider (:class:`CalibrationDecider`, :class:`FusionDecider`), whose
    ``strength`` says which evidence is a cluster's best (inliers, or the fused P).
    For current clusters A, B: P(A ~ B) = the decision on B's evidence for the query A against A's
    best evidence for any OTHER cluster, and the reverse; the SMALLER counts, so both must agree (as
    mutual nearest neighbours). Taking the larger let a weak link through whenever one side had no
    competitor at all: on 26 demo surveys that merged two or three leopards into one identity in 3
    surveys (5 merged identities); with both ways, none, at 84 instead of 77 split (individual, flank)
    identities. The most probable pair is merged while it reaches ``threshold`` and the two share at
    least ``min_inliers`` (or, when ``min_prob`` is given, their pairwise P reaches it); a merged cluster
    keeps its members' best evidence. Recomputing the
    competitors after each merge matters: before two bursts of one animal are merged, each is the
    other's strongest "competitor" and would veto the third burst of that animal.
    Returns labels ``(n,)`` 0..k-1 in order of first member.
    """
    dec = decider if not isinstance(decider, Calibration) else CalibrationDecider(decider, kind)
    n = inliers.shape[0]
    if n <= 1:
        return np.zeros(n, int)
    inl0 = np.asarray(inliers, np.float64)
    pp0 = np.zeros((n, n)) if prob is None else np.asarray(prob, np.float64)
    s0 = np.asarray(dec.strength(inl0, pp0), np.float64)
    fwd = s0 >= s0.T                       # each pair keeps the direction with the stronger evidence
    inl = np.maximum(inl0, inl0.T)         # ... but the inlier floor counts the most inliers either way
    cs = np.where(fwd, np.asarray(cos, np.float64), np.asarray(cos, np.float64).T)
    pp = np.where(fwd, pp0, pp0.T)
    st = np.maximum(s0, s0.T)
    active = np.ones(n, bool)
    parent = np.arange(n)
    while active.sum() > 1:
        ids = np.flatnonzero(active)
        sub_s = st[np.ix_(ids, ids)].copy()
        sub_i, sub_c, sub_p = inl[np.ix_(ids, ids)], cs[np.ix_(ids, ids)], pp[np.ix_(ids, ids)]
        np.fill_diagonal(sub_s, -np.inf)
        m = len(ids)
        order = np.argsort(-sub_s, axis=1, kind="stable")
        best, second = order[:, 0], order[:, 1] if m > 2 else order[:, 0]
        rows = np.arange(m)
        # competitor of (A, B): A's best other cluster, or its second best when B is the best
        comp = np.where(best[:, None] == rows[None, :], second[:, None], best[:, None])
        if m > 2:
            oi, oc, op = (np.maximum(sub_i[rows[:, None], comp], 0.0), sub_c[rows[:, None], comp],
                          sub_p[rows[:, None], comp])
        else:
            oi = oc = op = np.zeros((m, m))
        p = np.asarray(dec(sub_c.ravel(), np.maximum(sub_i, 0).ravel(), sub_p.ravel(), oc.ravel(), oi.ravel(),
                           op.ravel()), np.float64).reshape(m, m)
        p = np.minimum(p, p.T)
        p = np.where(join_floor(sub_i, sub_p, min_inliers, min_prob), p, -1.0)
        np.fill_diagonal(p, -1.0)
        a, b = np.unravel_index(int(np.argmax(p)), p.shape)
        if p[a, b] < threshold:
            break
        a, b = ids[min(a, b)], ids[max(a, b)]
        take = st[b] > st[a]
        for mat in (cs, pp):
            mat[a] = np.where(take, mat[b], mat[a])
            mat[:, a] = mat[a]
        inl[a] = np.maximum(inl[a], inl[b])
        inl[:, a] = inl[a]
        st[a] = np.maximum(st[a], st[b])
        st[:, a] = st[a]
        active[b] = False
        parent[parent == b] = a
    remap: dict[int, int] = {}
    return np.array([remap.setdefault(int(c), len(remap)) for c in parent], int)


# -- the gallery and its descriptor index ----------------------------------------------------------
class DescriptorIndex:
    """One approximate kNN index over every RootSIFT descriptor of a gallery (HotSpotter's LNBNN).

    Each query descriptor finds its ``k + 1`` nearest gallery descriptors; the ``k`` nearest vote for
    their gallery crops with weight ``d(k+1) - d(i)`` (distance to the normaliser minus distance to
    the neighbour: distinctive matches weigh more), at most one vote per (query descriptor, crop).
    Built once per gallery (FLANN randomised KD-trees); a query costs one search, not G matchings.
    """

    def __init__(self, features: Sequence[Features], *, k: int = 4, trees: int = 4, checks: int = 64):
        import cv2

        self.k, self.checks = int(k), int(checks)
        sizes = [len(f) for f in features]
        self.n_items = len(features)
        self.owner = np.repeat(np.arange(self.n_items), sizes).astype(np.int64)
        data = (np.concatenate([f.descriptors for f in features if len(f)]) if sum(sizes)
                else np.zeros((0, 128), np.float32))
        self._data = np.ascontiguousarray(data, np.float32)
        self._index = None
        if len(self._data) > self.k + 1:
            self._index = cv2.flann_Index(self._data, {"algorithm": 1, "trees": int(trees)})

    def votes(self, q: Features, mask: np.ndarray | None = None) -> np.ndarray:
        """LNBNN votes ``(G,)`` float64 per gallery crop for query features ``q``; masked crops get 0
        and their descriptors do not vote (the (k+1)-th neighbour still normalises)."""
        out = np.zeros(self.n_items)
        if self._index is None or len(q) == 0:
            return out
        idx, d2 = self._index.knnSearch(np.ascontiguousarray(q.descriptors, np.float32), self.k + 1,
                                        params={"checks": self.checks})
        d = np.sqrt(np.maximum(d2, 0.0))
        w = np.maximum(d[:, -1:] - d[:, :-1], 0.0)            # (n, k)
        own = self.owner[idx[:, :-1]]                         # (n, k)
        # one vote per (query descriptor, crop): keep the nearest of repeated owners in a row
        first = np.ones_like(own, bool)
        for c in range(1, own.shape[1]):
            first[:, c] = (own[:, :c] != own[:, c:c + 1]).all(axis=1)
        w = np.where(first, w, 0.0)
        np.add.at(out, own.ravel(), w.ravel())
        if mask is not None:
            out = np.where(mask, out, 0.0)
        return out


@dataclass
class Gallery:
    """Reference crops: ``embeddings`` ``(G, D)`` float32 unit rows, ``features`` per crop,
    ``individuals`` (individual key per crop), ``refs`` (e.g. detection ids) and ``places`` (where
    each crop sits in its camera's frame, for the static-scenery filter; None = unknown) per crop."""

    embeddings: np.ndarray
    features: list[Features]
    individuals: list[Hashable]
    refs: list[Hashable] = field(default_factory=list)
    places: list[Place | None] = field(default_factory=list)
    extra: dict[str, list[Features]] = field(default_factory=dict)   # other local matchers' features per crop
    _index: DescriptorIndex | None = field(default=None, init=False, repr=False)

    def __post_init__(self):
        if not self.refs:
            self.refs = list(range(len(self.individuals)))
        if not self.places:
            self.places = [None] * len(self.individuals)
        n = len(self.individuals)
        if (self.embeddings.shape[0] != n or len(self.features) != n or len(self.refs) != n
                or len(self.places) != n):
            raise ValueError("gallery embeddings, features, individuals, refs and places must have one row per crop")
        if any(len(v) != n for v in self.extra.values()):
            raise ValueError("gallery extra features must have one row per crop for every local matcher")

    def __len__(self) -> int:
        return len(self.individuals)

    def index(self) -> DescriptorIndex:
        """The descriptor index, built on first use."""
        if self._index is None:
            self._index = DescriptorIndex(self.features)
        return self._index


@dataclass(frozen=True)
class Evidence:
    """The best evidence one query frame has for one individual: its best gallery crop ``ref``
    (index ``j``), cosine, inliers, pairwise P(same) and the verification (for the review page)."""

    cos: float
    inliers: int
    pair_prob: float
    j: int
    ref: Hashable
    verification: Verification | None = field(default=None, repr=False, compare=False)
    verifier: str = "sift"       # whose matched keypoints ``verification`` holds (see Matcher.evidence)
    scores: dict = field(default_factory=dict, repr=False, compare=False)  # {scorer: calibrated P}, fusion only

    def payload(self) -> dict:
        """The ``match_candidates.evidence_json`` payload: the matched keypoint pairs of ``verifier``
        (none when it found no inliers), that verifier's name and inlier count, and under the fusion each
        scorer's calibrated P(same) for this pair, so a reviewer sees which signal spoke."""
        v = self.verification
        out = v.evidence() if v is not None and v.inliers else {"query_pts": [], "ref_pts": []}
        out["verifier"] = self.verifier
        out["inliers"] = int(v.inliers) if v is not None else 0
        if self.scores:
            out["scores"] = {k: round(float(p), 3) for k, p in self.scores.items()}
        return out


@dataclass(frozen=True)
class Candidate:
    """One candidate individual for a query crop (or burst), with its best reference crop and the
    evidence. ``probability`` = calibrated P(this individual is the right one) (the decision model:
    own best evidence vs the best competing individual's)."""

    individual: Hashable
    probability: float
    embed_score: float
    inliers: int
    ref: Hashable
    evidence: dict = field(repr=False, default_factory=dict)


def pool_burst(frames: Sequence[dict[Hashable, Evidence]]) -> list[tuple[Hashable, Evidence, Evidence | None]]:
    """The decision inputs of one burst: per individual its strongest frame evidence (highest
    pairwise P) and the competitor's (the strongest other individual; None when there is none),
    individuals ordered by that evidence. Shared by :meth:`Matcher.decide` and the calibration rows
    of :mod:`spotid.identify.calibrate_cards`, so both see the same features."""
    pooled: dict[Hashable, Evidence] = {}
    for f in frames:
        for ind, e in f.items():
            if ind not in pooled or e.pair_prob > pooled[ind].pair_prob:
                pooled[ind] = e
    order = sorted(pooled, key=lambda i: -pooled[i].pair_prob)
    if not order:
        return []
    first, second = pooled[order[0]], (pooled[order[1]] if len(order) > 1 else None)
    return [(ind, pooled[ind], second if ind == order[0] else first) for ind in order]


class Matcher:
    """Stage: (query embedding, query features, gallery) -> candidates ranked by calibrated P.

    Shortlist (per query, inside ``mask``): the whole gallery when it holds <= ``verify_all`` crops;
    else the ``shortlist`` best crops by cosine UNION the ``shortlist`` best by descriptor votes.
    Crops outside the shortlist keep their cosine with 0 inliers. ``top_k`` individuals are returned.

    ``fusion`` (:class:`~spotid.identify.fusion.Fusion`, off by default): crops are ranked by the calibrated
    average of the embedding, RootSIFT and every matcher in ``local`` ({name: LocalMatcher}, run on the
    shortlist with the query's ``q_extra`` and the gallery's ``extra`` features), and individuals decided
    by the fusion's own competitor-aware decision instead of ``calibration``'s.
    """

    def __init__(self, verifier: Verifier, calibration: Calibration, *, shortlist: int = 30, top_k: int = 5,
                 verify_all: int = 300, fusion=None, local: dict | None = None):
        self.verifier = verifier
        self.calibration = calibration
        self.shortlist = int(shortlist)
        self.top_k = int(top_k)
        self.verify_all = int(verify_all)
        self.fusion = fusion
        self.local = dict(local or {})
        self.decider = FusionDecider(fusion) if fusion is not None else CalibrationDecider(calibration)

    @property
    def version(self) -> str:
        """What the pairwise P and the decision come from (stored as the identify run's model version)."""
        if self.fusion is None:
            return f"{self.verifier.version}+{self.calibration.version}"
        return "+".join([self.verifier.version, *(m.version for m in self.local.values()), self.fusion.version])

    def candidates(self, q_emb: np.ndarray, q_feat: Features, gallery: Gallery, mask: np.ndarray | None = None
                   ) -> tuple[np.ndarray, np.ndarray]:
        """(cosine ``(G,)`` float64 with NaN where masked, shortlisted gallery indices)."""
        cos = gallery.embeddings @ q_emb.astype(np.float32) if len(gallery) else np.zeros(0, np.float32)
        cos = cos.astype(np.float64)
        if mask is not None:
            cos = np.where(mask, cos, np.nan)
        valid = np.flatnonzero(~np.isnan(cos))
        if len(valid) <= self.verify_all:
            return cos, valid
        by_cos = valid[np.argsort(-cos[valid], kind="stable")[: self.shortlist]]
        votes = gallery.index().votes(q_feat, ~np.isnan(cos))
        by_votes = valid[np.argsort(-votes[valid], kind="stable")[: self.shortlist]]
        return cos, np.union1d(by_cos, by_votes)

    def scores(self, q_emb: np.ndarray, q_feat: Features, gallery: Gallery, mask: np.ndarray | None = None,
               place: Place | None = None) -> tuple[np.ndarray, np.ndarray, dict[int, Verification]]:
        """Per gallery crop: cosine ``(G,)`` (NaN where masked), inliers ``(G,)`` (0 outside the
        shortlist; plus putative matches / 1000 as a tie-break between equal inlier counts) and the
        verifications done {gallery idx: Verification}."""
        cos, short = self.candidates(q_emb, q_feat, gallery, mask)
        inl = np.zeros(len(gallery))
        done = {}
        for j in short:
            v = self.verifier(q_feat, gallery.features[j], place, gallery.places[j])
            inl[j] = v.inliers + min(v.matches, 999) / 1000.0
            done[int(j)] = v
        return cos, inl, done

    def fused_prob(self, cos: np.ndarray, inl: np.ndarray, done: dict, gallery: Gallery,
                   q_extra: dict[str, Features] | None
                   ) -> tuple[np.ndarray, dict[str, np.ndarray], dict[str, dict[int, Verification]]]:
        """(G,) fused P(same) (``fusion``): the other local matchers score the shortlist (``done``), 0
        inliers elsewhere, as RootSIFT. Also {scorer: calibrated P ``(G,)``} and {local matcher: {gallery
        idx: Verification}} (RootSIFT's is ``done``), the evidence behind each pair."""
        raw = {"embedding": np.nan_to_num(cos), "sift": np.floor(inl)}
        checks: dict[str, dict[int, Verification]] = {"sift": done}
        for name, m in self.local.items():
            if q_extra is None or name not in q_extra or name not in gallery.extra:
                raise ValueError(f"fusion with {name!r} needs the query's and the gallery's {name} features")
            r, vs = np.zeros(len(gallery)), {}
            for j in done:
                r[j], v = m.score_verify(q_extra[name], gallery.extra[name][j])
                if v is not None:
                    vs[j] = v
            raw[name], checks[name] = r, vs
        fused = np.where(np.isnan(cos), np.nan, self.fusion.fuse(raw))
        return fused, self.fusion.probs(raw), checks

    def evidence(self, q_emb: np.ndarray, q_feat: Features, gallery: Gallery, mask: np.ndarray | None = None,
                 place: Place | None = None, q_extra: dict[str, Features] | None = None) -> dict[Hashable, Evidence]:
        """{individual: best Evidence} of one query frame (best = highest pairwise P(same); with
        ``fusion``, the fused P, ``q_extra`` the query's features of the other matchers). Under the
        fusion an Evidence carries the matched keypoints of the local verifier with the highest calibrated
        P for that pair (RootSIFT on a tie) and every scorer's P: what decided is what a reviewer is shown."""
        if not len(gallery):
            return {}
        cos, inl, done = self.scores(q_emb, q_feat, gallery, mask, place)
        if self.fusion is None:
            prob = np.where(np.isnan(cos), np.nan, self.calibration.prob(np.nan_to_num(cos), inl, "fused"))
            return {ind: Evidence(float(cos[j]), int(np.floor(inl[j])), float(p), j, gallery.refs[j], done.get(j))
                    for ind, p, j in rank_individuals(prob, gallery.individuals)}
        prob, probs, checks = self.fused_prob(cos, inl, done, gallery, q_extra)
        out = {}
        for ind, p, j in rank_individuals(prob, gallery.individuals):
            scores = {k: float(v[j]) for k, v in probs.items() if not np.isnan(v[j])}
            shown = max(checks, key=lambda k: (scores.get(k, -1.0), k == "sift"))
            out[ind] = Evidence(float(cos[j]), int(np.floor(inl[j])), float(p), j, gallery.refs[j],
                                checks[shown].get(j), shown, scores)
        return out

    def decide(self, frames: Sequence[dict[Hashable, Evidence]]) -> list[Candidate]:
        """Pool the evidence of the frames of one burst and rank individuals by calibrated P
        (:func:`pool_burst`: each individual's strongest frame evidence against the strongest
        evidence for any OTHER individual in the burst, so a burst whose sharp frames point at two
        different animals stays low)."""
        out = []
        for ind, e, other in pool_burst(frames):
            p = float(self.decider(e.cos, e.inliers, e.pair_prob, other.cos if other is not None else 0.0,
                                   other.inliers if other is not None else 0,
                                   other.pair_prob if other is not None else 0.0))
            out.append(Candidate(ind, float(p), e.cos, e.inliers, e.ref, e.payload()))
        out.sort(key=lambda c: -c.probability)
        return out[: self.top_k]

    def __call__(self, q_emb: np.ndarray, q_feat: Features, gallery: Gallery,
                 mask: np.ndarray | None = None, place: Place | None = None,
                 q_extra: dict[str, Features] | None = None) -> list[Candidate]:
        return self.decide([self.evidence(q_emb, q_feat, gallery, mask, place, q_extra)])


def unknown_split(labels: np.ndarray, queries: np.ndarray, fraction: float, seed: int) -> set:
    """A seeded share of the queried individuals, left out of every gallery (open set)."""
    queried = sorted(set(labels[queries].tolist()))
    n_unknown = int(round(fraction * len(queried)))
    rng = np.random.default_rng(seed)
    return set(rng.choice(np.array(queried, dtype=object), size=n_unknown, replace=False).tolist()) if n_unknown else set()
