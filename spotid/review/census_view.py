"""Census dashboard data: the census stage's figures, computed read-only on the current catalog.

Calls ``spotid.census.Census`` with ``write_flank_links=False`` (a page view must not write to the
catalog). When the census stage is missing or fails on this catalog, the dashboard shows the
plain catalog summary (:func:`spotid.review.browse.catalog_summary`) and the reason.
Plots are inline SVG drawn by the template from the numbers here (no image files, no network).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field

from spotid.catalog import Catalog

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CensusFigures:
    ok: bool
    error: str | None = None
    summary: dict = field(default_factory=dict)
    estimates: list[dict] = field(default_factory=list)
    best: str | None = None
    best_reason: str = ""
    discovery: list[tuple[int, int]] = field(default_factory=list)   # (occasion, cumulative identities)
    per_occasion: list[int] = field(default_factory=list)            # identities detected per occasion
    stations: list[tuple[str, int, int, float]] = field(default_factory=list)  # (station, events, identities, trap nights)
    warnings: list[str] = field(default_factory=list)
    unusable_reasons: dict = field(default_factory=dict)   # why sightings were not identifiable -> count


def census_figures(cat: Catalog) -> CensusFigures:
    try:
        from spotid.census.census import Census
        from spotid.census.config import CensusConfig
        from spotid.config import default_yaml, load_config
    except ImportError as e:
        return CensusFigures(False, f"the census stage is not available ({e})")
    try:
        yaml_path = default_yaml(CensusConfig)
        cfg = load_config(CensusConfig, yaml_path if yaml_path.is_file() else None, write_flank_links=False)
        res = Census(cfg)(cat)
    except Exception as e:  # the dashboard must render whatever state the catalog is in
        log.warning("census failed on this catalog: %s", e, exc_info=True)
        return CensusFigures(False, f"census could not run on this catalog: {e}")
    try:
        summary = res.summary()
        est = res.estimates
        estimates = [e.to_dict() for e in est.estimates] if est is not None else []
        hist = list(res.histories.values())
        T = int(res.n_occasions)
        first = [next((j for j, v in enumerate(h) if v), None) for h in hist]
        discovery, total = [], 0
        for j in range(T):
            total += sum(1 for f in first if f == j)
            discovery.append((j + 1, total))
        per_occasion = [int(sum(int(h[j]) for h in hist)) for j in range(T)]
        by_station: dict[str, tuple[int, set]] = {}
        for ev in res.events:
            if ev.occasion is None:
                continue
            n, ids = by_station.get(ev.station, (0, set()))
            ids.add(ev.identity)
            by_station[ev.station] = (n + 1, ids)
        stations = sorted(((sid, by_station.get(sid, (0, set()))[0], len(by_station.get(sid, (0, set()))[1]),
                            float(st.trap_nights)) for sid, st in res.stations.items()),
                          key=lambda r: (-r[1], r[0]))
        return CensusFigures(True, None, summary, estimates, est.best if est else None,
                             est.best_reason if est else "", discovery, per_occasion, stations, list(res.warnings),
                             dict(getattr(res, "unusable_reasons", {}) or {}))
    except (AttributeError, TypeError, KeyError) as e:  # census API changed under us: say so, don't crash
        log.warning("unexpected census result shape: %s", e, exc_info=True)
        return CensusFigures(False, f"unexpected census result ({e}); showing the catalog summary")
