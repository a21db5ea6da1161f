"""What a census produces: the records of one census (sightings, events, stations) and its result, plus
the time helpers the census and its readers share. Written by :class:`spotid.census.census.Census`, read
by the outputs, the report, the review page's Census tab and the exports.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import numpy as np

from spotid.census.config import CensusConfig
from spotid.census.estimators import EstimationResult
from spotid.census.history import FlankBounds
from spotid.census.linking import FlankLink
from spotid.util import parse_ts


@dataclass
class Sighting:
    id: int
    identity: int          # resolved individual id
    flank: str             # the identity's flank
    t: datetime            # aware
    local: datetime        # naive local camera time
    deployment: str
    station: str
    media_id: int
    detection_id: int


@dataclass
class Event:
    """Independent detection event of one identity at one station."""

    id: int
    identity: int
    station: str
    start: datetime
    end: datetime
    occasion: int | None   # 0-based; None outside the period
    sighting_ids: list[int]


@dataclass
class Station:
    id: str
    deployments: list[str]
    latitude: float | None
    longitude: float | None
    x_m: float | None = None
    y_m: float | None = None
    start: datetime | None = None   # local
    end: datetime | None = None
    trap_nights: float = 0.0        # union of the cameras' operating time within the period, days
    camera_nights: float = 0.0      # sum over cameras, days
    usage: list[float] = field(default_factory=list)  # days operated per occasion
    effort_source: str = "deployment dates"   # + " minus outages: ..." when outages were taken out
    outage_days: float = 0.0        # camera-days taken out of the cameras' spans (camera check, outages file)
    effort_notes: list = field(default_factory=list)  # per deployment: days out and why
    n_events: int = 0
    n_sightings: int = 0
    identities: set = field(default_factory=set)


@dataclass
class CensusResult:
    config: CensusConfig
    period_start: datetime
    period_end: datetime
    n_occasions: int
    identities: dict[int, dict]            # identity id -> info
    animals: list[list[int]]               # groups of identity ids
    events: list[Event]
    stations: dict[str, Station]
    links: list[FlankLink]
    link_conflicts: list[dict]
    bounds: FlankBounds
    histories: dict[int, np.ndarray]       # identity -> 0/1 per occasion
    estimate_flank: str | None
    estimates: EstimationResult | None
    new_animals: int
    resighted_animals: int
    n_sightings: int
    warnings: list[str]
    tz: object = None                      # the single UTC offset of the data, when there is one
    n_unusable_sightings: int = 0          # leopard sightings in the period identify could not use (not counted)
    unusable_reasons: dict = field(default_factory=dict)   # why they could not be used -> sightings
    spatial: dict = field(default_factory=dict)   # flank -> SECR Estimate (CensusConfig.secr), each flank fitted alone
    cameras: list = field(default_factory=list)   # CameraReport per deployment (spotid.ingest.health), when checked

    def _iso(self, t: datetime) -> str:
        return (t.replace(tzinfo=self.tz) if self.tz is not None else t).isoformat()

    @property
    def mna(self) -> int:
        return self.bounds.mna_min

    def best_estimate(self):
        if self.estimates is None or self.estimates.best is None:
            return None
        return self.estimates.get(self.estimates.best)

    def animal_label(self, group: list[int]) -> str:
        return self.identities[group[0]]["animal"]

    def summary(self) -> dict:
        best = self.best_estimate()
        return {
            "period_start": self._iso(self.period_start), "period_end": self._iso(self.period_end),
            "occasion_days": self.config.occasion_days, "n_occasions": self.n_occasions,
            "independence_minutes": self.config.independence_minutes,
            "n_stations": len(self.stations),
            "trap_nights": round(sum(s.trap_nights for s in self.stations.values()), 3),
            "n_sightings": self.n_sightings, "n_events": sum(1 for e in self.events if e.occasion is not None),
            "n_unusable_sightings": self.n_unusable_sightings,
            "identities_left": sum(1 for v in self.identities.values() if v["flank"] == "left"),
            "identities_right": sum(1 for v in self.identities.values() if v["flank"] == "right"),
            "linked": self.bounds.linked, "left_only": self.bounds.left_only, "right_only": self.bounds.right_only,
            "mna_min": self.bounds.mna_min, "mna_max": self.bounds.mna_max, "mna": self.mna,
            "new_animals": self.new_animals, "resighted_animals": self.resighted_animals,
            "estimate_flank": self.estimate_flank,
            "best_model": best.model if best else None,
            "N": best.N if best else None, "se": best.se if best else None,
            "lcl": best.lcl if best else None, "ucl": best.ucl if best else None,
            **self._density_summary(),
        }

    def density(self):
        """The SECR estimate reported: the estimate flank's when it could be fitted, else the other flank's
        (each flank is fitted on its own; ``density_flank`` in the summary says which), else None."""
        fitted = {fl: e for fl, e in self.spatial.items() if e.N is not None and e.details}
        if not fitted:
            return None
        return fitted.get(self.estimate_flank) or next(iter(fitted.values()))

    def _density_summary(self) -> dict:
        e = self.density()
        if e is None or not e.details:
            return {}
        d = e.details.get("D_per_100km2") or {}
        return {"density_flank": next(f for f, v in self.spatial.items() if v is e),
                "D_per_100km2": d.get("estimate"), "D_lcl_per_100km2": d.get("lcl"),
                "D_ucl_per_100km2": d.get("ucl"), "D_se_per_100km2": d.get("se"), "N_in_mask": e.N}

    def to_dict(self) -> dict:
        return {
            "summary": self.summary(),
            "unusable_reasons": dict(self.unusable_reasons),
            "estimates": self.estimates.to_dict() if self.estimates else None,
            "secr": {fl: e.to_dict() for fl, e in self.spatial.items()},
            "flank_links": [{"left_id": lk.left_id, "right_id": lk.right_id,
                             "left": self.identities.get(lk.left_id, {}).get("name"),
                             "right": self.identities.get(lk.right_id, {}).get("name"),
                             "reason": lk.reason, "source": lk.source, "evidence": lk.evidence} for lk in self.links],
            "flank_link_conflicts": self.link_conflicts,
            "warnings": self.warnings,
        }


#: More occasions than a capture history, the estimators or a page can use (13 years of daily occasions).
MAX_OCCASIONS = 5000


class PeriodTooLong(ValueError):
    """The census period cuts into more than :data:`MAX_OCCASIONS` occasions (a card mixing 2009 photos and 2025
    clips does). ``origin``/``stop``: the period asked for or found in the catalog (naive local time)."""

    def __init__(self, n: int, occasion_days: float, origin: datetime, stop: datetime):
        super().__init__(f"{n} occasions of {occasion_days} day(s): give --start/--end or a longer --occasion-days")
        self.n, self.occasion_days, self.origin, self.stop = n, occasion_days, origin, stop


# -- time helpers ---------------------------------------------------------------------------------------
def _local(t: datetime) -> datetime:
    return t.replace(tzinfo=None)


def parse_bound(text: str | None, *, end: bool) -> datetime | None:
    """--start/--end: ISO date (end inclusive) or datetime; returned as naive local time."""
    if text is None or str(text).strip() == "":
        return None
    s = str(text).strip()
    t = parse_ts(s)
    if t is None:
        raise ValueError(f"bad date {text!r}: use ISO 8601, e.g. 2024-03-01 or 2024-03-01T18:00")
    if end and len(s) == 10:  # a date: the whole day is included
        t = t + timedelta(days=1)
    if t.tzinfo is not None:
        t = _local(t)  # period bounds are compared in local camera time
    return t


def project_stations(stations: dict[str, Station]) -> None:
    """Local equirectangular projection to metres around the stations' centroid (for secr traps).

    Good to well under 1% over a park-sized area (tens of km), which is what secr's detector
    spacing needs; stations without coordinates keep x/y None.
    """
    pts = [(s.latitude, s.longitude) for s in stations.values() if s.latitude is not None and s.longitude is not None]
    if not pts:
        return
    lat0 = float(np.mean([p[0] for p in pts]))
    lon0 = float(np.mean([p[1] for p in pts]))
    R = 6371008.8
    for s in stations.values():
        if s.latitude is None or s.longitude is None:
            continue
        s.x_m = math.radians(s.longitude - lon0) * R * math.cos(math.radians(lat0))
        s.y_m = math.radians(s.latitude - lat0) * R
