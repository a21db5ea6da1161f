"""Read side of the individual pages and the census dashboard (plain catalog reads, no features)."""
from __future__ import annotations

import logging
from dataclasses import dataclass, field

from spotid.catalog import Catalog
from spotid.catalog.tables import deployments, detections, individuals, reviews, sightings
from spotid.review.queue import CropInfo, IndividualRef, NotFound, best_references, crop_from_row, individual_ref

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class IndividualSummary:
    id: int
    name: str
    flank: str
    status: str
    merged_into: int | None
    n_counted: int                  # auto + confirmed sightings
    n_pending: int
    stations: tuple[str, ...]
    first_seen: str | None
    last_seen: str | None
    best: CropInfo | None


@dataclass(frozen=True)
class SightingRow:
    sighting_id: int
    status: str
    probability: float | None
    version: int
    crop: CropInfo


@dataclass(frozen=True)
class IndividualDetail:
    summary: IndividualSummary
    references: tuple[CropInfo, ...]
    sightings: tuple[SightingRow, ...]
    linked: tuple[IndividualRef, ...]            # the other flank of the same animal (flank_links)
    linked_sightings: tuple[SightingRow, ...]
    merged_from: tuple[IndividualRef, ...]
    merged_into: IndividualRef | None
    same_flank: tuple[IndividualRef, ...] = field(default_factory=tuple)  # merge targets
    notes: str | None = None                     # identify's (or a reviewer's) note on the individual


def _summaries(cat: Catalog, individual_id: int | None = None) -> list[IndividualSummary]:
    rows = individuals.summaries(cat, individual_id)
    best: dict[int, CropInfo] = {}
    ids = [int(r["id"]) for r in rows]
    if ids:
        for r in detections.best_crop_records(cat, ids):
            best[int(r["individual_id"])] = crop_from_row(r)
    return [IndividualSummary(int(r["id"]), r["name"], r["flank"], r["status"], r["merged_into"], int(r["n_counted"]),
                              int(r["n_pending"]), tuple(sorted(set((r["stations"] or "").split(",")) - {""})),
                              r["first_seen"], r["last_seen"], best.get(int(r["id"])))
            for r in rows]


def list_individuals(cat: Catalog, *, include_inactive: bool = False) -> list[IndividualSummary]:
    """Individuals by flank then name; merged/rejected ones and proposals without sightings hidden
    unless ``include_inactive``."""
    out = _summaries(cat)
    if include_inactive:
        return out
    return [s for s in out if s.status in ("confirmed", "proposed") and (s.n_counted or s.n_pending
                                                                         or s.status == "confirmed")]


def _sighting_rows(cat: Catalog, individual_ids: list[int]) -> list[SightingRow]:
    if not individual_ids:
        return []
    return [SightingRow(int(r["sid"]), r["sstatus"], r["probability"], int(r["version"]), crop_from_row(r))
            for r in detections.sighting_crop_records(cat, individual_ids)]


def individual_detail(cat: Catalog, individual_id: int, *, n_references: int = 6) -> IndividualDetail:
    found = _summaries(cat, individual_id)
    if not found:
        raise NotFound(f"no individual {individual_id} in the catalog")
    summary = found[0]
    linked = tuple(x for x in (individual_ref(cat, i) for i in individuals.linked_ids(cat, individual_id))
                   if x is not None)
    merged_from = tuple(x for x in (individual_ref(cat, i) for i in individuals.merged_from_ids(cat, individual_id))
                        if x is not None)
    same_flank = tuple(IndividualRef(int(r.id), r.name, r.flank, r.status)
                       for r in individuals.same_flank(cat, summary.flank, individual_id))
    return IndividualDetail(
        summary=summary,
        references=tuple(best_references(cat, individual_id, summary.flank, n_references)),
        sightings=tuple(_sighting_rows(cat, [individual_id])),
        linked=linked,
        linked_sightings=tuple(_sighting_rows(cat, [x.id for x in linked])),
        merged_from=merged_from,
        merged_into=individual_ref(cat, summary.merged_into),
        same_flank=same_flank,
        notes=individuals.notes(cat, individual_id))


@dataclass(frozen=True)
class CatalogSummary:
    """Minimal census figures straight from the catalog (used when the census stage is absent)."""

    individuals: dict[str, int]              # flank -> confirmed/proposed individuals with counted sightings
    mna_left: int
    mna_right: int
    two_flank_lower: int                     # max(left, right): no animal is counted twice
    two_flank_upper: int                     # left + right - linked pairs
    linked_pairs: int
    sightings: dict[str, int]                # status -> n
    stations: int
    stations_with_leopards: int
    first: str | None
    last: str | None
    reviewed: int                            # live decisions (not undone), excluding skips
    reviewers: tuple[str, ...]
    set_aside: int = 0                       # 'unusable' sightings identify set aside that no person has decided


def catalog_summary(cat: Catalog) -> CatalogSummary:
    per_flank = individuals.counted_per_flank(cat)
    links = individuals.count_counted_links(cat)
    left, right = per_flank.get("left", 0), per_flank.get("right", 0)
    statuses = {k: int(v) for k, v in sightings.count_by_status(cat).items()}
    span = sightings.time_span(cat)
    return CatalogSummary(
        individuals=per_flank, mna_left=left, mna_right=right,
        two_flank_lower=max(left, right), two_flank_upper=left + right - links, linked_pairs=links,
        sightings=statuses,
        stations=deployments.count_stations(cat),
        stations_with_leopards=sightings.count_stations_with_counted(cat),
        first=span[0], last=span[1],
        reviewed=reviews.count_live_decisions(cat),
        reviewers=reviews.reviewers(cat),
        set_aside=sightings.count_set_aside(cat))
