"""The simulated survey, without any rendering: population, stations, visits and triggers.

Visits follow the SECR half-normal detection model: on each day, individual i passes station j
with probability ``g0 * exp(-d_ij^2 / (2 sigma^2))``. Every pass becomes a trigger on each camera
of the station (both cameras of a pair see it, on opposite flanks, in the same seconds). Wind and
light false triggers are added until they make up ``empty_fraction`` of all triggers.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, datetime, timedelta

import numpy as np

from spotid.synth.config import SynthConfig
from spotid.synth.faults import drops, parse_faults
from spotid.synth.rng import rng
from spotid.util import parse_tz

SPECIES = ("leopard", "deer", "boar", "badger", "tiger", "person")
CATEGORIES = [{"id": 0, "name": "empty"}, {"id": 1, "name": "leopard"}, {"id": 2, "name": "deer"},
              {"id": 3, "name": "boar"}, {"id": 4, "name": "badger"}, {"id": 5, "name": "tiger"},
              {"id": 6, "name": "person"}]
CATEGORY_ID = {c["name"]: c["id"] for c in CATEGORIES}
SUNRISE, SUNSET = 7.0, 17.75
# distance of a passing animal from the camera (metres); with the 48 deg lens a leopard is
# 0.8 m * focal / d tall: 400 px at 4.3 m and 30 px at 57 m in 1920x1080
DIST_MEDIAN_M, DIST_MIN_M, DIST_MAX_M = 10.0, 4.4, 50.0     # local hours, late autumn in Primorye: infrared outside these


@dataclass(frozen=True)
class Individual:
    """A leopard: ``num`` seeds its coats; (x, y) is its home-range centre in metres."""

    id: str
    num: int
    x: float
    y: float


@dataclass(frozen=True)
class Station:
    id: str
    x: float
    y: float
    latitude: float
    longitude: float
    deployments: tuple


@dataclass(frozen=True)
class Visit:
    """One pass of an individual at a station on survey day ``day`` at local ``hour``."""

    individual: str
    station: str
    day: int
    hour: float


@dataclass(frozen=True)
class Trigger:
    """One burst on one camera. ``view``: flank seen ('left'/'right') or 'front'/'back' (None for
    empty); ``distance`` metres from the camera; ``event`` ties the triggers of one pass together."""

    deployment: str
    station: str
    start: datetime
    species: str          # 'empty' for a wind/light false trigger
    individual: str | None
    view: str | None
    distance: float
    event: int
    night: bool

    @property
    def seq_id(self) -> str:
        return f"{self.deployment}_{self.start.strftime('%Y%m%dT%H%M%S')}"


def is_night(hour: float) -> bool:
    return hour < SUNRISE or hour >= SUNSET


def _draw_hour(r: np.random.Generator, night: bool) -> float:
    if night:
        x = r.uniform(0, 24 - (SUNSET - SUNRISE))
        return float((SUNSET + x) % 24)
    return float(r.uniform(SUNRISE + 0.05, SUNSET - 0.05))


class World:
    """Population, stations and the sampling process of one synthetic survey."""

    def __init__(self, cfg: SynthConfig):
        if cfg.individuals < 1 or cfg.stations < 1 or cfg.days < 1:
            raise ValueError("need at least 1 individual, 1 station and 1 day")
        self.cfg = cfg
        self.tz = parse_tz(cfg.tz)
        n = cfg.stations
        cols = math.ceil(math.sqrt(n))
        sp = cfg.station_spacing_m
        stations = []
        lat_m = 111_320.0
        lon_m = 111_320.0 * math.cos(math.radians(cfg.origin_lat))
        for i in range(n):
            x, y = (i % cols) * sp, (i // cols) * sp
            sid = f"S{i + 1:02d}"
            deps = (f"{sid}A", f"{sid}B") if cfg.paired else (sid,)
            stations.append(Station(sid, float(x), float(y), round(cfg.origin_lat + y / lat_m, 6),
                                    round(cfg.origin_lon + x / lon_m, 6), deps))
        self.stations = stations
        xs = [s.x for s in stations]
        ys = [s.y for s in stations]
        b = cfg.buffer_m
        self.area = (min(xs) - b, min(ys) - b, max(xs) + b, max(ys) + b)
        r = rng(cfg.seed, "population")
        pop = []
        for k in range(cfg.individuals):
            num = cfg.first_id + k
            pop.append(Individual(f"ind{num:03d}", num, float(round(r.uniform(self.area[0], self.area[2]), 1)),
                                  float(round(r.uniform(self.area[1], self.area[3]), 1))))
        self.population = pop
        self.start = datetime.combine(date.fromisoformat(cfg.start_date), datetime.min.time(), tzinfo=self.tz)
        self.faults = parse_faults(cfg.faults, [d for s in stations for d in s.deployments], cfg.days)

    @classmethod
    def from_config(cls, cfg: SynthConfig) -> "World":
        return cls(cfg)

    @property
    def deployments(self) -> list[tuple[str, Station]]:
        return [(d, s) for s in self.stations for d in s.deployments]

    def detection_prob(self) -> np.ndarray:
        """(individuals, stations) daily detection probabilities g0 * exp(-d^2 / 2 sigma^2)."""
        px = np.array([[i.x, i.y] for i in self.population])
        sx = np.array([[s.x, s.y] for s in self.stations])
        d2 = ((px[:, None, :] - sx[None, :, :]) ** 2).sum(-1)
        return self.cfg.g0 * np.exp(-d2 / (2 * self.cfg.sigma_m ** 2))

    def visits(self) -> list[Visit]:
        """Simulate the daily passes (no rendering): one Bernoulli draw per individual, station, day."""
        p = self.detection_prob()
        out = []
        for day in range(self.cfg.days):
            r = rng(self.cfg.seed, "visits", day)
            hit = r.random(p.shape) < p
            nights = r.random(p.shape) < self.cfg.night_fraction
            for i, j in zip(*np.nonzero(hit)):
                hr = _draw_hour(rng(self.cfg.seed, "visit-hour", day, int(i), int(j)), bool(nights[i, j]))
                out.append(Visit(self.population[i].id, self.stations[j].id, day, hr))
        return out

    def _time(self, day: int, hour: float) -> datetime:
        return self.start + timedelta(days=day, seconds=int(hour * 3600))

    def triggers(self) -> list[Trigger]:
        """All bursts on all cameras, sorted by (deployment, time); no two bursts of a camera overlap."""
        cfg = self.cfg
        events = []   # (station, day, hour, species, individual)
        for v in self.visits():
            events.append((v.station, v.day, v.hour, "leopard", v.individual))
        rates = {"deer": cfg.rate_deer, "boar": cfg.rate_boar, "badger": cfg.rate_badger, "tiger": cfg.rate_tiger,
                 "person": cfg.rate_person}
        night_pref = {"deer": 0.5, "boar": 0.6, "badger": 0.9, "tiger": 0.7, "person": 0.05}
        for st in self.stations:
            for day in range(cfg.days):
                r = rng(cfg.seed, "distractors", st.id, day)
                for sp in SPECIES[1:]:
                    for _ in range(int(r.poisson(rates[sp]))):
                        events.append((st.id, day, _draw_hour(r, bool(r.random() < night_pref[sp])), sp, None))
        events.sort(key=lambda e: (e[1], e[2], e[0], e[3], e[4] or ""))
        st_by_id = {s.id: s for s in self.stations}
        trig: list[Trigger] = []
        for k, (sid, day, hour, sp, ind) in enumerate(events):
            r = rng(cfg.seed, "event", k)
            st = st_by_id[sid]
            t0 = self._time(day, hour)
            heading = int(r.choice([-1, 1]))
            fb = sp in ("leopard", "tiger") and r.random() < cfg.front_back_fraction
            # distance from each camera: a leopard is 30-400 px tall in a 1080p frame (median ~170 px);
            # the two cameras of a pair are offset along the trail, so their distances are independent
            dists = [float(np.clip(r.lognormal(math.log(DIST_MEDIAN_M), 0.5), DIST_MIN_M, DIST_MAX_M)) for _ in range(2)]
            for c, dep in enumerate(st.deployments):
                if len(st.deployments) > 1 and r.random() >= cfg.paired_capture_prob:
                    continue
                if fb:
                    view = ("front", "back")[c] if heading > 0 else ("back", "front")[c]
                else:
                    view = ("right" if heading > 0 else "left") if c == 0 else ("left" if heading > 0 else "right")
                dist = dists[c]
                start = t0 + timedelta(seconds=int(c > 0 and r.random() < 0.5))
                trig.append(Trigger(dep, sid, start, sp, ind, view, round(dist, 2), k, is_night(hour)))
        # wind and light false triggers, mostly by day
        n_empty = int(round(len(trig) * cfg.empty_fraction / max(1e-9, 1 - cfg.empty_fraction)))
        deps = self.deployments
        r = rng(cfg.seed, "empties")
        for k in range(n_empty):
            dep, st = deps[int(r.integers(len(deps)))]
            day = int(r.integers(cfg.days))
            hour = _draw_hour(r, bool(r.random() < 0.2))
            trig.append(Trigger(dep, st.id, self._time(day, hour), "empty", None, None, 0.0, -1 - k, is_night(hour)))
        trig.sort(key=lambda t: (t.deployment, t.start, t.event))
        # a camera re-arms only after its burst: push colliding bursts later
        out: list[Trigger] = []
        for t in trig:
            if out and out[-1].deployment == t.deployment:
                earliest = out[-1].start + timedelta(seconds=cfg.burst + 1)
                if t.start < earliest:
                    t = Trigger(**{**t.__dict__, "start": earliest})
            out.append(t)
        # camera faults: pictures a broken or knocked-over camera did not take
        return [t for t in out if not any(drops(f, t, self.start, cfg.days) for f in self.faults)]

    def summary(self) -> dict:
        return {"individuals": len(self.population), "stations": len(self.stations),
                "deployments": len(self.deployments), "area_m": list(self.area)}
