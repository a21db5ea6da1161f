"""Read side of the individual pages and the census dashboard (plain catalog reads, no features)."""
from __future__ import annotations

import logging
from dataclasses import dataclass, field

from spotid.catalog import Catalog, set_aside_sql
from spotid.review.queue import CropInfo, IndividualRef, NotFound, CROP_COLS, CROP_FROM, crop_from_row, best_references, individual_ref

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


_SUMMARY_SQL = """
    SELECT i.id, i.name, i.flank, i.status, i.merged_into,
           COALESCE(SUM(s.status IN ('auto', 'confirmed')), 0) AS n_counted,
           COALESCE(SUM(s.status = 'pending'), 0) AS n_pending,
           MIN(CASE WHEN s.status IN ('auto', 'confirmed') THEN m.timestamp END) AS first_seen,
           MAX(CASE WHEN s.status IN ('auto', 'confirmed') THEN m.timestamp END) AS last_seen,
           GROUP_CONCAT(DISTINCT CASE WHEN s.status IN ('auto', 'confirmed')
                        THEN COALESCE(dep.location_id, m.deployment_id) END) AS stations
    FROM individuals i
    LEFT JOIN sightings s ON s.individual_id = i.id
    LEFT JOIN detections d ON d.id = s.detection_id
    LEFT JOIN media m ON m.id = d.media_id
    LEFT JOIN deployments dep ON dep.id = m.deployment_id
"""


def _summaries(cat: Catalog, where: str = "", params: tuple = ()) -> list[IndividualSummary]:
    rows = cat.query(f"{_SUMMARY_SQL} {where} GROUP BY i.id ORDER BY i.flank, i.name", params)
    best: dict[int, CropInfo] = {}
    ids = [int(r["id"]) for r in rows]
    if ids:
        marks = ",".join("?" * len(ids))
        for r in cat.query(
            f"""SELECT * FROM (
                SELECT s.individual_id, ROW_NUMBER() OVER (PARTITION BY s.individual_id
                       ORDER BY c.quality IS NULL, c.quality DESC, d.id) AS rn, {CROP_COLS} {CROP_FROM}
                JOIN sightings s ON s.detection_id = d.id
                WHERE s.status IN ('auto', 'confirmed') AND c.crop_path IS NOT NULL AND s.individual_id IN ({marks}))
                WHERE rn = 1""", ids):
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
    marks = ",".join("?" * len(individual_ids))
    sql = (f"SELECT s.id AS sid, s.status AS sstatus, s.probability, s.version, {CROP_COLS} {CROP_FROM}"
           f" JOIN sightings s ON s.detection_id = d.id WHERE s.individual_id IN ({marks}) ORDER BY m.timestamp, s.id")
    return [SightingRow(int(r["sid"]), r["sstatus"], r["probability"], int(r["version"]), crop_from_row(r))
            for r in cat.query(sql, individual_ids)]


def individual_detail(cat: Catalog, individual_id: int, *, n_references: int = 6) -> IndividualDetail:
    found = _summaries(cat, "WHERE i.id = ?", (individual_id,))
    if not found:
        raise NotFound(f"no individual {individual_id} in the catalog")
    summary = found[0]
    linked_ids = [int(r[0]) for r in cat.query(
        "SELECT CASE WHEN left_id = ? THEN right_id ELSE left_id END FROM flank_links "
        "WHERE left_id = ? OR right_id = ?", (individual_id,) * 3)]
    linked = tuple(x for x in (individual_ref(cat, i) for i in linked_ids) if x is not None)
    merged_from = tuple(x for x in (individual_ref(cat, int(r[0])) for r in cat.query(
        "SELECT id FROM individuals WHERE merged_into = ? ORDER BY name", (individual_id,))) if x is not None)
    same_flank = tuple(IndividualRef(int(r["id"]), r["name"], r["flank"], r["status"]) for r in cat.query(
        "SELECT id, name, flank, status FROM individuals WHERE flank = ? AND id != ? "
        "AND status IN ('confirmed', 'proposed') ORDER BY name", (summary.flank, individual_id)))
    return IndividualDetail(
        summary=summary,
        references=tuple(best_references(cat, individual_id, summary.flank, n_references)),
        sightings=tuple(_sighting_rows(cat, [individual_id])),
        linked=linked,
        linked_sightings=tuple(_sighting_rows(cat, [x.id for x in linked])),
        merged_from=merged_from,
        merged_into=individual_ref(cat, summary.merged_into),
        same_flank=same_flank,
        notes=cat.scalar("SELECT notes FROM individuals WHERE id = ?", (individual_id,)))


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
    per_flank = {r[0]: int(r[1]) for r in cat.query(
        "SELECT i.flank, COUNT(DISTINCT i.id) FROM individuals i JOIN sightings s ON s.individual_id = i.id "
        "WHERE s.status IN ('auto', 'confirmed') AND i.status IN ('confirmed', 'proposed') GROUP BY i.flank")}
    links = int(cat.scalar(
        """SELECT COUNT(*) FROM flank_links fl
           WHERE EXISTS (SELECT 1 FROM sightings s WHERE s.individual_id = fl.left_id AND s.status IN ('auto','confirmed'))
             AND EXISTS (SELECT 1 FROM sightings s WHERE s.individual_id = fl.right_id AND s.status IN ('auto','confirmed'))""")
        or 0)
    left, right = per_flank.get("left", 0), per_flank.get("right", 0)
    statuses = {r[0]: int(r[1]) for r in cat.query("SELECT status, COUNT(*) FROM sightings GROUP BY status")}
    span = cat.conn.execute(
        "SELECT MIN(m.timestamp), MAX(m.timestamp) FROM sightings s JOIN detections d ON d.id = s.detection_id "
        "JOIN media m ON m.id = d.media_id").fetchone()
    return CatalogSummary(
        individuals=per_flank, mna_left=left, mna_right=right,
        two_flank_lower=max(left, right), two_flank_upper=left + right - links, linked_pairs=links,
        sightings=statuses,
        stations=int(cat.scalar("SELECT COUNT(DISTINCT COALESCE(location_id, id)) FROM deployments") or 0),
        stations_with_leopards=int(cat.scalar(
            "SELECT COUNT(DISTINCT COALESCE(dep.location_id, m.deployment_id)) FROM sightings s "
            "JOIN detections d ON d.id = s.detection_id JOIN media m ON m.id = d.media_id "
            "LEFT JOIN deployments dep ON dep.id = m.deployment_id WHERE s.status IN ('auto', 'confirmed')") or 0),
        first=span[0], last=span[1],
        reviewed=int(cat.scalar("SELECT COUNT(*) FROM review_decisions WHERE undone_by IS NULL "
                                "AND action NOT IN ('skip', 'undo')") or 0),
        reviewers=tuple(r[0] for r in cat.query("SELECT DISTINCT reviewer FROM review_decisions ORDER BY reviewer")),
        set_aside=int(cat.scalar(f"SELECT COUNT(*) FROM sightings s WHERE {set_aside_sql()}") or 0))
