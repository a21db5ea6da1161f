"""Read side of the review queue: which sighting to show next, and everything shown with it.

Everything here is a plain SQL read of what identify stored. No embeddings, keypoints or descriptors
are read and nothing is recomputed: images come from ``crops.crop_path`` and the matched keypoint
pairs from ``match_candidates.evidence_json`` (``{"query_pts": [[x, y], ...], "ref_pts": [...]}``
in pixel coordinates of the stored crop JPEGs).

Order of the queue (most uncertain first): for a pending sighting with candidate probabilities
``p1 >= p2``, ``uncertainty = |p1 - threshold|``, or ``min(|p1 - threshold|, p1 - p2)`` when the
second candidate is itself at or above the threshold; smaller is more uncertain. A match just above
or below the threshold (known animal or new one?), and two strong candidates nearly tied (which
one?), both come first; two weak candidates tied far below the threshold (a confident new animal)
do not. Sightings this reviewer skipped go last, oldest skip first.
"""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from typing import Iterable

from spotid.catalog import Catalog
from spotid.catalog.tables import crops, detections, individuals, reviews, sightings
from spotid.review.config import ReviewConfig

log = logging.getLogger(__name__)

#: Sighting statuses that count as established identities (the census counts these).
COUNTED = ("auto", "confirmed")


@dataclass(frozen=True)
class CropInfo:
    """One leopard crop with where and when it was taken. ``bbox`` is normalised [x, y, w, h]."""

    detection_id: int
    media_id: int
    quality: float | None
    flank: str | None
    has_image: bool
    timestamp: str | None
    deployment_id: str | None
    station: str | None
    rel_path: str | None
    bbox: tuple[float, float, float, float]


# how the page names identify's scorers (evidence_json "verifier" / "scores" keys)
SCORER_LABELS = {"sift": "RootSIFT", "aliked": "ALIKED", "aliked_lightglue": "ALIKED+LightGlue",
                 "embedding": "embedding"}


@dataclass(frozen=True)
class Evidence:
    """Matched keypoint pairs between the query crop and one reference crop (stored-crop pixels);
    ``chance``: pairs not counted as evidence (a night/night pair's chance agreement), so the
    verifier's inlier count is ``n - chance``. ``verifier``: the local verifier whose pairs these are
    (the page's label; identify draws the one with the highest calibrated P under the fusion);
    ``inliers``: that verifier's count (None from catalogs written before it was stored);
    ``scores``: [(scorer label, calibrated P(same))] of each of the fusion's scorers for this pair."""

    query_pts: tuple[tuple[float, float], ...]
    ref_pts: tuple[tuple[float, float], ...]
    chance: int = 0
    verifier: str = "RootSIFT"
    inliers: int | None = None
    scores: tuple[tuple[str, float], ...] = ()

    @property
    def n(self) -> int:
        return len(self.query_pts)


@dataclass(frozen=True)
class Candidate:
    """A candidate individual for a sighting, as ranked by identify (merged ids resolved)."""

    rank: int
    individual_id: int
    name: str
    status: str
    flank: str
    probability: float | None
    embed_score: float | None
    verify_inliers: int | None
    reference: CropInfo | None          # the crop the verifier matched against (evidence is on it)
    evidence: Evidence | None
    references: tuple[CropInfo, ...]    # the individual's best crops of this flank, best first
    n_sightings: int
    stations: tuple[str, ...]
    last_seen: str | None


@dataclass(frozen=True)
class IndividualRef:
    id: int
    name: str
    flank: str
    status: str
    notes: str | None = None            # e.g. why identify proposed these bursts as one animal


@dataclass(frozen=True)
class QueueEntry:
    sighting_id: int
    p_top: float | None
    margin: float | None
    uncertainty: float
    skipped_at: str | None = None


@dataclass(frozen=True)
class QueueItem:
    """Everything the queue page shows for one sighting."""

    sighting_id: int
    version: int
    status: str
    flank: str | None
    probability: float | None
    model_version: str | None
    proposed: IndividualRef | None      # sightings.individual_id (identify's proposal)
    proposed_rank: int | None           # its rank among the candidates, None for a proposed new one
    query: CropInfo
    candidates: tuple[Candidate, ...] = field(default_factory=tuple)
    set_aside_reason: str | None = None  # why identify set it aside (status 'unusable'), until a person decides
    flank_source: str | None = None      # who gave ``flank``: see :func:`flank_source`
    flank_conf: float | None = None      # the flank classifier's top probability for the crop


def flank_source(sighting_flank: str | None, crop_flank: str | None, status: str) -> str | None:
    """Where a sighting's left/right flank comes from, for the reviewer: ``classifier`` (the flank
    classifier called the crop so), ``burst`` (identify gave it its one-animal burst's majority
    flank, or the flank of the other side's bursts its coat matched: :mod:`spotid.identify.crossflank`), ``match`` (the classifier was unsure or saw front/back; identify placed the view on the
    flank of the individual it matched), ``reviewer`` (a person decided it). None without a flank."""
    if sighting_flank not in ("left", "right"):
        return None
    if crop_flank == sighting_flank:
        return "classifier"
    if status == "confirmed":
        return "reviewer"
    return "burst" if crop_flank in ("left", "right") else "match"


class NotFound(LookupError):
    """A sighting, individual or decision id that is not in the catalog."""


def decision_threshold(cat: Catalog, cfg: ReviewConfig) -> float:
    """The accept threshold identify recorded in the catalog, else the configured one."""
    raw = cat.get_setting(cfg.threshold_setting)
    try:
        return float(raw) if raw is not None else cfg.threshold
    except ValueError:
        log.warning("setting %s=%r is not a number; using threshold %s", cfg.threshold_setting, raw, cfg.threshold)
        return cfg.threshold


def uncertainty(p1: float | None, p2: float | None, threshold: float) -> float:
    """``|p1 - t|``, or ``min(|p1 - t|, p1 - p2)`` when ``p2 >= t``; smaller = more uncertain.
    Unknown p1 sorts mid-queue (0.5)."""
    if p1 is None:
        return 0.5
    if p2 is not None and p2 >= threshold:
        return min(abs(p1 - threshold), p1 - p2)
    return abs(p1 - threshold)


#: Queue groups in order: pending first, then machine-accepted, then set aside by identify.
_GROUP = {"pending": 0, "auto": 1, "unusable": 2}


def queue_order(cat: Catalog, *, threshold: float, reviewer: str | None = None,
                include_auto: bool = False, include_set_aside: bool = False) -> list[QueueEntry]:
    """All pending sightings, most uncertain first; ``reviewer``'s live skips go last.

    ``include_auto``: machine-accepted ('auto') sightings follow the pending ones (confirming one
    makes it 'confirmed' and takes it off the queue). ``include_set_aside``: then the sightings
    identify set aside ('unusable' with a ``set_aside_reason``: no left/right flank, matched nobody
    and not identifiable), so a person can rescue the ones the machine could not read; any decision
    takes one off the queue."""
    rows = sightings.queue_rows(cat, include_auto, include_set_aside)
    skipped: dict[int, str] = reviews.live_skips(cat, reviewer) if reviewer is not None else {}
    entries = []
    for r in rows:
        p1 = r["p1"] if r["p1"] is not None else r["probability"]
        p2 = r["p2"]
        margin = None if p1 is None else p1 - (p2 or 0.0)
        entries.append(((_GROUP[r["status"]], r["timestamp"] or ""),
                        QueueEntry(int(r["id"]), p1, margin, uncertainty(p1, p2, threshold), skipped.get(int(r["id"])))))
    entries.sort(key=lambda te: (te[1].skipped_at is not None, te[1].skipped_at or "", te[0][0],
                                 te[1].uncertainty, te[0][1], te[1].sighting_id))
    return [e for _, e in entries]


def pending_count(cat: Catalog, include_auto: bool = False, include_set_aside: bool = False) -> int:
    """Sightings on the queue (pending, plus 'auto' ones with ``include_auto``, plus set-aside ones
    with ``include_set_aside``)."""
    return sightings.queue_count(cat, include_auto, include_set_aside)


# -- crops -----------------------------------------------------------------------------------------
def crop_from_row(r) -> CropInfo:
    return CropInfo(int(r["detection_id"]), int(r["media_id"]), r["quality"], r["flank"], bool(r["has_image"]),
                    r["timestamp"], r["deployment_id"], r["station"], r["rel_path"],
                    (r["x"], r["y"], r["w"], r["h"]))


def crop_infos(cat: Catalog, detection_ids: Iterable[int]) -> dict[int, CropInfo]:
    ids = sorted({int(i) for i in detection_ids})
    if not ids:
        return {}
    return {int(r["detection_id"]): crop_from_row(r) for r in detections.crop_records(cat, ids)}


def best_references(cat: Catalog, individual_id: int, flank: str | None, n: int) -> list[CropInfo]:
    """The individual's ``n`` best crops (highest ``crops.quality``) among auto/confirmed sightings
    of ``flank`` (any flank when None). As in identify's gallery, a view whose flank identify only
    inferred from a match (the classifier saw none, no person confirmed it) is no reference: a face
    would stand in for a flank."""
    return [crop_from_row(r) for r in detections.best_reference_records(cat, individual_id, flank, n)]


# -- individuals -----------------------------------------------------------------------------------
def resolve(cat: Catalog, individual_id: int) -> int:
    """Follow ``merged_into`` to the individual that now carries the identity."""
    seen = set()
    cur = int(individual_id)
    while cur not in seen:
        seen.add(cur)
        nxt = individuals.merged_into(cat, cur)
        if nxt is None:
            return cur
        cur = int(nxt)
    log.warning("merge cycle through individual %s; using %s", individual_id, cur)
    return cur


def individual_ref(cat: Catalog, individual_id: int | None) -> IndividualRef | None:
    if individual_id is None:
        return None
    r = individuals.brief(cat, individual_id)
    return None if r is None else IndividualRef(int(r.id), r.name, r.flank, r.status, r.notes)


def _individual_stats(cat: Catalog, individual_id: int) -> tuple[int, tuple[str, ...], str | None]:
    r = sightings.counted_stats(cat, individual_id)
    stations = tuple(sorted(set((r["stations"] or "").split(",")) - {""}))
    return int(r["n"]), stations, r["last_seen"]


def parse_evidence(text: str | None) -> Evidence | None:
    """``evidence_json`` -> Evidence; None when absent or malformed (logged, never fatal)."""
    if not text:
        return None
    try:
        data = json.loads(text)
        q = tuple((float(p[0]), float(p[1])) for p in data.get("query_pts", []))
        r = tuple((float(p[0]), float(p[1])) for p in data.get("ref_pts", []))
        chance = int(data.get("chance", 0))
        name = str(data.get("verifier", "sift"))
        inliers = int(data["inliers"]) if data.get("inliers") is not None else None
        scores = tuple((SCORER_LABELS.get(k, k), float(p)) for k, p in (data.get("scores") or {}).items())
    except (ValueError, TypeError, AttributeError, IndexError) as e:
        log.warning("unreadable evidence_json (%s): %.80s", e, text)
        return None
    if len(q) != len(r):
        log.warning("evidence_json with %d query but %d reference points; ignored", len(q), len(r))
        return None
    return Evidence(q, r, chance, SCORER_LABELS.get(name, name), inliers, scores)


def load_item(cat: Catalog, sighting_id: int, cfg: ReviewConfig) -> QueueItem:
    """The sighting with its query crop and ranked candidates (merged candidates resolved, deduped)."""
    s = sightings.get(cat, sighting_id)
    if s is None:
        raise NotFound(f"no sighting {sighting_id} in the catalog")
    query = crop_infos(cat, [s.detection_id])[int(s.detection_id)]
    flank = s.flank or query.flank
    rows = sightings.candidates(cat, sighting_id)
    refs = crop_infos(cat, [r["reference_detection_id"] for r in rows if r["reference_detection_id"] is not None])
    candidates: list[Candidate] = []
    seen: set[int] = set()
    for r in rows:
        iid = resolve(cat, r["individual_id"])
        if iid in seen:  # two candidates merged into one individual since identify ran
            continue
        ind = individual_ref(cat, iid)
        if ind is None or ind.status == "rejected":
            continue
        seen.add(iid)
        n, stations, last_seen = _individual_stats(cat, iid)
        ref = refs.get(r["reference_detection_id"]) if r["reference_detection_id"] is not None else None
        candidates.append(Candidate(
            rank=len(candidates) + 1, individual_id=iid, name=ind.name, status=ind.status, flank=ind.flank,
            probability=r["probability"], embed_score=r["embed_score"], verify_inliers=r["verify_inliers"],
            reference=ref, evidence=parse_evidence(r["evidence_json"]) if ref is not None else None,
            references=tuple(best_references(cat, iid, flank, cfg.n_references)),
            n_sightings=n, stations=stations, last_seen=last_seen))
        if len(candidates) == cfg.max_candidates:
            break
    proposed = individual_ref(cat, resolve(cat, s.individual_id)) if s.individual_id is not None else None
    proposed_rank = next((c.rank for c in candidates if proposed and c.individual_id == proposed.id), None)
    conf = crops.flank_conf(cat, s.detection_id)
    return QueueItem(int(s.id), int(s.version), s.status, flank, s.probability, s.model_version,
                     proposed, proposed_rank, query, tuple(candidates), s.set_aside_reason,
                     flank_source(flank, query.flank, s.status), conf)
