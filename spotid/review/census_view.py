"""Census dashboard data: the census stage's figures for a period, computed read-only on the current catalog.

Calls ``spotid.census.Census`` with ``write_flank_links=False`` (a page view must not write to the
catalog). The period comes from the page's form (start/end dates, occasion length in days; empty fields mean
the census defaults of configs/census.yaml). Whatever the period, the page renders: a catalog without media
says what to run first; a period the census cannot cut (too many occasions, end before start, a bad number)
gets a message naming the fix and the years that hold photos; a period with nothing counted says why. When the
census stage is missing or fails, the dashboard shows the plain catalog summary
(:func:`spotid.review.browse.catalog_summary`) and the reason. Plots are inline SVG drawn by the template from
the numbers here (no image files, no network).
"""
from __future__ import annotations

import dataclasses
import logging
import math
from dataclasses import dataclass, field
from datetime import timedelta

from spotid.catalog import Catalog, missing_step
from spotid.catalog.tables import media

log = logging.getLogger(__name__)

#: The longest occasion the form accepts (days): longer ones leave fewer than two occasions in any season.
MAX_OCCASION_DAYS = 366.0


@dataclass(frozen=True)
class PeriodForm:
    """What the period form shows: the user's entries (empty = the census default) and the default length."""

    start: str = ""
    end: str = ""
    occasion_days: str = ""
    default_occasion_days: float = 1.0
    counted: tuple[str, str] | None = None   # the period the census used, first and last day (local)

    @property
    def is_default(self) -> bool:
        return not (self.start or self.end or self.occasion_days)


@dataclass(frozen=True)
class CensusFigures:
    ok: bool
    error: str | None = None
    kind: str = "ok"     # ok | no_data (run a stage first) | period (the period cannot be counted) | failed
    period: PeriodForm = field(default_factory=PeriodForm)
    summary: dict = field(default_factory=dict)
    estimates: list[dict] = field(default_factory=list)
    best: str | None = None
    best_reason: str = ""
    discovery: list[tuple[int, int]] = field(default_factory=list)   # (occasion, cumulative identities)
    per_occasion: list[int] = field(default_factory=list)            # identities detected per occasion
    stations: list[dict] = field(default_factory=list)   # station, lat, lon, events, identities, trap_nights
    warnings: list[str] = field(default_factory=list)
    unusable_reasons: dict = field(default_factory=dict)   # why sightings were not identifiable -> count
    nothing_counted: list[str] = field(default_factory=list)   # why nothing was counted and what to do
    individuals: list[dict] = field(default_factory=list)  # counted identity: id, name, flank, events, crop
    years: list[dict] = field(default_factory=list)        # year, first, last, frames: quick periods
    longer: float | None = None   # a too-long period: the shortest usual occasion length that fits it


def _occasion_days(text: str) -> float | None:
    if not text.strip():
        return None
    try:
        v = float(text)
    except ValueError:
        raise ValueError(f"occasion length {text!r} is not a number of days: e.g. 1 for daily occasions, "
                         "7 for weekly") from None
    if not (math.isfinite(v) and 0 < v <= MAX_OCCASION_DAYS):
        raise ValueError(f"occasion length {text} days: give more than 0 and at most {MAX_OCCASION_DAYS:g} days "
                         "(1 for daily occasions, 7 for weekly)")
    return v


def _check_period(start: str, end: str) -> None:
    """The census's own checks, worded for the form's fields rather than the command's options."""
    from spotid.census.result import parse_bound

    bounds = []
    for name, text in (("start", start), ("end", end)):
        try:
            bounds.append(parse_bound(text or None, end=name == "end"))
        except OverflowError:
            raise ValueError(f"{name} {text} is out of range: give a date of the survey, e.g. 2024-03-01") from None
    if bounds[0] and bounds[1] and bounds[1] <= bounds[0]:
        raise ValueError(f"end {end} is not after start {start}: the period is empty; give an end after the start")


def media_years(cat: Catalog) -> list[dict]:
    """Per calendar year of the frames' local camera time: first and last day, frames and counted sightings;
    links to census one year at a time when the whole catalog is too long a period."""
    return [{"year": r["yr"], "first": r["day0"], "last": r["day1"], "frames": int(r["n_media"]),
             "sightings": int(r["n_counted"])} for r in media.per_year(cat)]


def census_figures(cat: Catalog, *, start: str = "", end: str = "", occasion_days: str = "") -> CensusFigures:
    """The census of the period given by the form's fields (empty: the census defaults), as page figures."""
    try:
        from spotid.census.census import Census
        from spotid.census.config import CensusConfig
        from spotid.census.result import MAX_OCCASIONS, PeriodTooLong
        from spotid.config import default_yaml, load_config
        from spotid.export.report import counted_crops, nothing_counted
    except ImportError as e:
        return CensusFigures(False, f"the census stage is not available ({e})", "failed")
    start, end, occasion_days = (str(x or "").strip() for x in (start, end, occasion_days))
    yaml_path = default_yaml(CensusConfig)
    yaml_path = yaml_path if yaml_path.is_file() else None
    form = PeriodForm(start, end, occasion_days, load_config(CensusConfig, yaml_path).occasion_days)
    why = missing_step(cat, "census")
    if why:   # nothing to count yet: no media, or nothing through detect / identify
        return CensusFigures(False, why, "no_data", form)
    try:
        _check_period(start, end)
        cfg = load_config(CensusConfig, yaml_path, write_flank_links=False, start=start or None, end=end or None,
                          occasion_days=_occasion_days(occasion_days))
        res = Census(cfg)(cat)
    except PeriodTooLong as e:
        msg = (f"The period {e.origin:%Y-%m-%d} – {e.stop:%Y-%m-%d} makes {e.n:,} occasions of {e.occasion_days:g} "
               f"day(s); a census takes at most {MAX_OCCASIONS:,}. Choose a shorter period (one season is usual) "
               "or longer occasions.")
        days = (e.stop - e.origin).total_seconds() / 86400
        longer = next((d for d in (2, 3, 7, 14, 30, 61, 91) if math.ceil(days / d) <= MAX_OCCASIONS), None)
        return CensusFigures(False, msg, "period", form, years=media_years(cat), longer=longer)
    except (ValueError, OverflowError) as e:   # the period or a setting: the user's to fix, no traceback
        log.info("census period refused: %s", e)
        hint = ": give dates of the survey" if isinstance(e, OverflowError) else ""
        return CensusFigures(False, f"This period cannot be counted: {e}{hint}", "period", form,
                             years=media_years(cat))
    except Exception as e:  # the dashboard must render whatever state the catalog is in
        log.warning("census failed on this catalog: %s", e, exc_info=True)
        return CensusFigures(False, f"census could not run on this catalog: {e}", "failed", form)
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
        stations = sorted(({"id": sid, "latitude": st.latitude, "longitude": st.longitude,
                            "events": by_station.get(sid, (0, set()))[0],
                            "identities": len(by_station.get(sid, (0, set()))[1]),
                            "trap_nights": float(st.trap_nights)} for sid, st in res.stations.items()),
                          key=lambda r: (-r["events"], str(r["id"])))
        crops = counted_crops(cat, res)
        individuals = [{"id": i, "name": v["name"], "flank": v["flank"], "events": v["n_events"],
                        "stations": v["stations"], "crop": crops.get(i)}
                       for i, v in sorted(res.identities.items(), key=lambda kv: (kv[1]["animal"], kv[1]["flank"]))]
        last = max(res.period_start, res.period_end - timedelta(seconds=1))   # the period ends before period_end
        form = dataclasses.replace(form, counted=(f"{res.period_start:%Y-%m-%d}", f"{last:%Y-%m-%d}"))
        return CensusFigures(True, None, "ok", form, summary, estimates, est.best if est else None,
                             est.best_reason if est else "", discovery, per_occasion, stations, list(res.warnings),
                             dict(getattr(res, "unusable_reasons", {}) or {}),
                             nothing_counted(res, cat, review="the Queue tab"), individuals)
    except (AttributeError, TypeError, KeyError) as e:  # census API changed under us: say so, don't crash
        log.warning("unexpected census result shape: %s", e, exc_info=True)
        return CensusFigures(False, f"unexpected census result ({e}); showing the catalog summary", "failed", form)
