"""Camera operation from the images themselves: ``CameraCheck(config)(catalog) -> list[CameraReport]``.

The checks a field team runs on every card (CamTrapTools' ``check`` and camtrapR's camera-operation
matrix are the references), from each deployment's media timestamps and file order alone:

- ``clock_wrong``: images dated before the deployment start, after its end or in the future (more than
  ``date_tolerance_hours`` out). Their times cannot be placed: they are left out of the census.
- ``clock_reset``: in file order (card folder, then file name, numbers compared as numbers) the time
  jumps back by more than ``reset_tolerance_minutes`` and the next ``reset_min_images`` images stay dated
  before the last good one (stray files copied back in do not):
  file numbers only grow, so the clock was reset (battery swap, factory default). Every later image of that
  card has an untrusted time; the camera's operating period ends at the last image before the jump (its
  later photos cannot be put on occasions). A card with more than ``reset_max_jumps`` jumps has file names
  that do not follow capture order (renamed or merged files): ``file_order_unknown``, and no reset is read.
- ``late_start`` / ``camera_down`` / ``stopped_early``: a gap without images after setup, mid-deployment
  (knocked over, covered, failed) or before pickup (dead battery, full card).
  Rule: triggers (images ``burst_gap_s`` apart or less are one trigger) are taken as a Poisson process at
  the camera's own rate ``r`` = triggers / operating days. Among ``n`` intervals (setup -> first image,
  between images, last image -> pickup) the longest exceeds ``g`` by chance with probability at most
  ``n exp(-r g)``; a gap is an outage when it is longer than ``g* = max(min_gap_days, ln(n / gap_alpha) / r)``.
  The rate is re-estimated without the outages found until nothing changes (an outage must not dilute the
  rate that judges it). Overdispersed triggers (weather, animal movement) make long gaps likelier than
  Poisson says; ``min_gap_days`` keeps quiet spells of busy cameras from being called outages.
  The outage runs from the last image before the gap to the first after it (or the deployment start/end).
- ``glare``: a day with at least ``glare_min_images`` images and ``glare_factor`` x the camera's median
  images per day (vegetation in front of the lens, sun glare). Not an outage: the camera worked.
- ``no_night_images``: at least ``ir_min_triggers`` triggers and none between ``night_start_hour`` and
  ``night_end_hour`` (local), when the other cameras' night share makes that unlikely by chance
  (probability below 1%): a broken infrared flash. Not an outage (day effort stands); said in the action.
- ``no_images``: a deployment without any media (its card not ingested, or the camera never fired).
  Not an outage: an empty card looks the same as a card not yet ingested.

Known outages from a CSV (``deployment_id,start,end[,reason]``, :func:`read_outages`) are added to the
detected ones; a deployment's operating periods are its span minus all its outages.
All datetimes here are aware (the camera clock's offset); the census compares them in local camera time.
"""
from __future__ import annotations

import csv
import logging
import math
import re
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

from spotid.catalog.tables import deployments as deployments_table
from spotid.catalog.tables import media as media_table
from spotid.util import parse_tz

log = logging.getLogger(__name__)

OUTAGE_KINDS = ("clock_reset", "late_start", "camera_down", "stopped_early", "no_usable_time")


@dataclass(frozen=True)
class HealthConfig:
    """Thresholds of the camera check (defaults mirrored in configs/health.yaml); see the module docstring."""

    yaml_name = "health"

    burst_gap_s: float = 60.0               # images this close are one trigger
    min_gap_days: float = 3.0               # never call a shorter gap an outage
    gap_alpha: float = 0.001                # chance that the longest gap of a working camera exceeds g*
    reset_tolerance_minutes: float = 60.0   # a backward jump in file order larger than this is a clock reset ...
    reset_min_images: int = 10              # ... when this many images after it stay behind (stray files do not)
    reset_max_jumps: int = 3                # more jumps than this on one card: file order is not capture order
    date_tolerance_hours: float = 24.0      # images this far before the start / after the end are misdated
    glare_min_images: int = 200             # images in one day before glare/vegetation is considered
    glare_factor: float = 10.0              # ... and this many times the camera's median images per day
    ir_min_triggers: int = 30               # triggers needed before "no night image" means anything
    night_start_hour: float = 20.0          # local hours surely dark (summer included, mid latitudes)
    night_end_hour: float = 4.0

    def __post_init__(self):
        if not 0 < self.gap_alpha < 1:
            raise ValueError("gap_alpha must be between 0 and 1, e.g. 0.001")
        if self.min_gap_days <= 0 or self.burst_gap_s < 0 or self.reset_tolerance_minutes < 0:
            raise ValueError("min_gap_days must be > 0, burst_gap_s and reset_tolerance_minutes >= 0")
        if self.glare_min_images < 1 or self.glare_factor <= 1 or self.ir_min_triggers < 1:
            raise ValueError("glare_min_images >= 1, glare_factor > 1 and ir_min_triggers >= 1")
        if not (0 <= self.night_start_hour < 24 and 0 <= self.night_end_hour < 24):
            raise ValueError("night_start_hour and night_end_hour are local hours 0-24")


@dataclass(frozen=True)
class MediaTime:
    """One image as the check sees it: its catalog id, camera time (aware) and file-order key."""

    id: int
    t: datetime | None
    order: tuple = ()


@dataclass(frozen=True)
class Finding:
    kind: str
    deployment: str
    start: datetime | None
    end: datetime | None
    evidence: dict
    action: str
    outage: bool = False          # True: [start, end] is taken out of the camera's effort

    def to_dict(self) -> dict:
        return {"kind": self.kind, "deployment": self.deployment, "start": _iso(self.start), "end": _iso(self.end),
                "days": _days(self.start, self.end), "evidence": self.evidence, "action": self.action,
                "outage": self.outage}


@dataclass(frozen=True)
class Outage:
    deployment: str
    start: datetime
    end: datetime
    reason: str
    source: str                   # 'camera check' | 'outages file'

    def to_dict(self) -> dict:
        return {"deployment": self.deployment, "start": _iso(self.start), "end": _iso(self.end),
                "days": _days(self.start, self.end), "reason": self.reason, "source": self.source}


@dataclass
class CameraReport:
    """One deployment: its span, what the check found, its outages and operating periods."""

    deployment: str
    station: str
    start: datetime | None
    end: datetime | None
    n_media: int = 0
    n_triggers: int = 0
    n_night_triggers: int = 0
    findings: list[Finding] = field(default_factory=list)
    outages: list[Outage] = field(default_factory=list)
    operating: list[tuple[datetime, datetime]] = field(default_factory=list)
    untrusted_media: list[int] = field(default_factory=list)   # media ids whose time cannot be used

    @property
    def operating_days(self) -> float:
        return sum((b - a).total_seconds() for a, b in self.operating) / 86400

    @property
    def ok(self) -> bool:
        return not self.findings

    def to_dict(self) -> dict:
        return {"deployment": self.deployment, "station": self.station, "start": _iso(self.start),
                "end": _iso(self.end), "span_days": _days(self.start, self.end), "n_media": self.n_media,
                "n_triggers": self.n_triggers, "n_night_triggers": self.n_night_triggers,
                "operating_days": round(self.operating_days, 3), "ok": self.ok,
                "findings": [f.to_dict() for f in self.findings], "outages": [o.to_dict() for o in self.outages],
                "operating": [[_iso(a), _iso(b)] for a, b in self.operating],
                "n_untrusted_media": len(self.untrusted_media)}


def _iso(t: datetime | None) -> str | None:
    return t.isoformat() if t is not None else None


def _days(a: datetime | None, b: datetime | None) -> float | None:
    return round((b - a).total_seconds() / 86400, 3) if a is not None and b is not None else None


def natural_key(text: str) -> tuple:
    """File-order key: digit runs compare as numbers (RCNX9999 < RCNX10000, 100RECNX < 101RECNX)."""
    return tuple(int(p) if p.isdigit() else p.lower() for p in re.split(r"(\d+)", text))


def subtract(span: tuple[datetime, datetime], cuts: list[tuple[datetime, datetime]]) -> list[tuple[datetime, datetime]]:
    """``span`` minus the union of ``cuts``: the operating periods, in time order."""
    out = [span]
    for c0, c1 in sorted(cuts):
        nxt = []
        for a, b in out:
            if c1 <= a or c0 >= b:
                nxt.append((a, b))
                continue
            if c0 > a:
                nxt.append((a, c0))
            if c1 < b:
                nxt.append((c1, b))
        out = nxt
    return [(a, b) for a, b in out if b > a]


def _is_night(t: datetime, cfg: HealthConfig) -> bool:
    h = t.hour + t.minute / 60
    if cfg.night_start_hour > cfg.night_end_hour:
        return h >= cfg.night_start_hour or h < cfg.night_end_hour
    return cfg.night_start_hour <= h < cfg.night_end_hour


def _triggers(times: list[datetime], gap_s: float) -> list[datetime]:
    out: list[datetime] = []
    last = None
    for t in times:
        if last is None or (t - last).total_seconds() > gap_s:
            out.append(t)
        last = t
    return out


def check_series(deployment: str, media: list[MediaTime], *, start: datetime | None, end: datetime | None,
                 station: str | None = None, config: HealthConfig | None = None, now: datetime | None = None,
                 night_share: float | None = None) -> CameraReport:
    """Check one deployment. ``media`` in file order (``MediaTime.order`` groups cards: a backward jump is
    only looked for within one card); ``start``/``end`` the deployment span (aware, or None: the first/last
    trusted image); ``night_share``: the share of night triggers at the other cameras (for the IR check)."""
    cfg = config or HealthConfig()
    now = now or datetime.now(timezone.utc)
    rep = CameraReport(deployment, station or deployment, start, end, n_media=len(media))
    if not media:
        rep.findings.append(Finding("no_images", deployment, start, end, {"n_media": 0},
                                    "no media: ingest this camera's card (`spotid ingest CARD --deployment "
                                    f"{deployment}`); if the camera never fired, give its span in an outages CSV"))
        if start is not None and end is not None and end > start:
            rep.operating = [(start, end)]
        return rep
    tol = timedelta(hours=cfg.date_tolerance_hours)
    untrusted: set[int] = {m.id for m in media if m.t is None}

    # -- clock reset: within each card, in file order, time must not run backwards
    cards: dict[tuple, list[MediaTime]] = {}
    for m in media:
        cards.setdefault(m.order[:1], []).append(m)
    reset_at: datetime | None = None
    for card, ms in cards.items():
        ms = [m for m in sorted(ms, key=lambda m: m.order) if m.t is not None]
        jumps = [k for k in range(1, len(ms)) if (ms[k - 1].t - ms[k].t).total_seconds() > cfg.reset_tolerance_minutes * 60]
        if len(jumps) > cfg.reset_max_jumps:
            # file names do not follow capture order (renamed, merged or hand-built): no reset can be read
            rep.findings.append(Finding(
                "file_order_unknown", deployment, None, None,
                {"card": card[0] if card else "", "backward_jumps": len(jumps), "images": len(ms)},
                "file order does not follow capture time, so a clock reset cannot be seen; keep the camera's "
                "original file names"))
            continue
        for k in jumps:
            back = (ms[k - 1].t - ms[k].t).total_seconds()
            behind = 0      # images after the jump still dated before the last good one: a reset keeps them behind
            while k + behind < len(ms) and ms[k + behind].t < ms[k - 1].t:
                behind += 1
            if behind >= cfg.reset_min_images:
                after = [m.id for m in ms[k:]]
                untrusted.update(after)
                good = ms[k - 1].t
                reset_at = good if reset_at is None else min(reset_at, good)
                rep.findings.append(Finding(
                    "clock_reset", deployment, good, end,
                    {"last_good_time": good.isoformat(), "next_time": ms[k].t.isoformat(),
                     "jump_back_days": round(back / 86400, 3), "images_after": len(after),
                     "first_file_after": k},
                    "the camera clock was reset (time ran backwards while file numbers grew): its images after "
                    f"{good:%Y-%m-%d %H:%M} have no usable time and are left out of the census, and so is its "
                    "effort from then on; set the clock, and if the true times are known re-time those files "
                    "(exiftool -AllDates+=...) and re-ingest", outage=True))
                break   # later jumps of this card are in untrusted time anyway

    # -- dates outside the deployment or in the future
    lo = start - tol if start is not None else None
    hi = min(end + tol, now + tol) if end is not None else now + tol
    before = [m for m in media if m.t is not None and m.id not in untrusted and lo is not None and m.t < lo]
    after = [m for m in media if m.t is not None and m.id not in untrusted and m.t > hi]
    if before or after:
        bad = before + after
        untrusted.update(m.id for m in bad)
        ts = sorted(m.t for m in bad)
        rep.findings.append(Finding(
            "clock_wrong", deployment, ts[0], ts[-1],
            {"n_before_start": len(before), "n_after_end_or_future": len(after),
             "earliest": ts[0].isoformat(), "latest": ts[-1].isoformat()},
            "images are dated outside the deployment (wrong date or time zone set on the camera): they are left "
            "out of the census; fix the deployment dates (`spotid deployments add ... --replace`) or re-time the "
            "files and re-ingest"))
    rep.untrusted_media = sorted(untrusted)

    times = sorted(m.t for m in media if m.id not in untrusted)
    if not times:
        a, b = start, end
        if a is not None and b is not None and b > a:
            rep.findings.append(Finding("no_usable_time", deployment, a, b, {"n_media": len(media)},
                                        "no image has a usable time: the camera's whole span is taken out of the "
                                        "effort; fix the clock settings and re-ingest", outage=True))
        return _finish(rep, start, end)

    # -- gaps: setup -> first, between images, last -> pickup (or the reset)
    s0 = start if start is not None and start < times[0] else times[0]
    s1 = reset_at if reset_at is not None else (end if end is not None and end > times[-1] else times[-1])
    trig = _triggers(times, cfg.burst_gap_s)
    rep.n_triggers = len(trig)
    rep.n_night_triggers = sum(1 for t in trig if _is_night(t, cfg))
    ivs = [("late_start", s0, times[0])] + [("camera_down", a, b) for a, b in zip(times, times[1:])]
    ivs.append(("stopped_early", times[-1], s1))
    ivs = [(k, a, b) for k, a, b in ivs if b > a]
    span_days = (s1 - s0).total_seconds() / 86400
    flagged: list[tuple[str, datetime, datetime]] = []
    for _ in range(20):
        down = sum((b - a).total_seconds() for _, a, b in flagged) / 86400
        rate = len(trig) / max(span_days - down, 1e-9)
        g = max(cfg.min_gap_days, math.log(max(len(ivs), 1) / cfg.gap_alpha) / rate)
        new = [iv for iv in ivs if (iv[2] - iv[1]).total_seconds() / 86400 > g]
        if new == flagged:
            break
        flagged = new
    what = {"late_start": "no images after setup: the camera was not armed, pointed wrong or failed at once; "
                          "check the setup routine",
            "camera_down": "no images mid-deployment: the camera was knocked over, covered or failed; check it and "
                           "its mount",
            "stopped_early": "no images before pickup: dead battery or full card; check the batteries' level and "
                             "the card's free space, shorten the service interval"}
    for kind, a, b in flagged:
        rep.findings.append(Finding(kind, deployment, a, b,
                                    {"gap_days": round((b - a).total_seconds() / 86400, 3),
                                     "threshold_days": round(g, 3), "triggers_per_day": round(rate, 3),
                                     "n_intervals": len(ivs)},
                                    what[kind] + "; the gap is taken out of the effort", outage=True))

    # -- glare / vegetation: a day with hundreds of images, many times the camera's median
    per_day: dict = {}
    for t in times:
        per_day[t.date()] = per_day.get(t.date(), 0) + 1
    d0, d1 = s0.date(), (s1 - timedelta(microseconds=1)).date()
    counts = [per_day.get(d0 + timedelta(days=k), 0) for k in range((d1 - d0).days + 1)]
    med = float(sorted(counts)[len(counts) // 2]) if counts else 0.0
    bad_days = sorted(d for d, n in per_day.items() if n >= cfg.glare_min_images and n >= cfg.glare_factor * max(med, 1))
    runs: list[list] = []
    for d in bad_days:
        if runs and (d - runs[-1][-1]).days == 1:
            runs[-1].append(d)
        else:
            runs.append([d])
    for r in runs:
        tz = times[0].tzinfo
        a = datetime.combine(r[0], datetime.min.time(), tzinfo=tz)
        rep.findings.append(Finding(
            "glare", deployment, a, a + timedelta(days=len(r)),
            {"days": len(r), "max_images_per_day": max(per_day[d] for d in r), "median_images_per_day": med},
            "hundreds of triggers in a day (vegetation moving in front of the lens, or sun glare): cut the "
            "vegetation or turn the camera away from the sun; the card may fill early"))

    # -- infrared flash: many triggers, none at night, where others see nights
    if rep.n_triggers >= cfg.ir_min_triggers and rep.n_night_triggers == 0:
        chance = (1 - night_share) ** rep.n_triggers if night_share is not None else None
        if chance is None or chance < 0.01:
            rep.findings.append(Finding(
                "no_night_images", deployment, s0, s1,
                {"n_triggers": rep.n_triggers, "n_night_triggers": 0,
                 "night_hours": f"{cfg.night_start_hour:g}-{cfg.night_end_hour:g}",
                 "night_share_other_cameras": None if night_share is None else round(night_share, 3),
                 "chance_if_working": None if chance is None else float(f"{chance:.3g}")},
                "no night image out of many: the infrared flash (or the night mode) is broken; test it in the dark. "
                "Night passes at this camera were missed, so its effort is day-only"))
    return _finish(rep, start if start is not None else times[0], end if end is not None else times[-1])


def _finish(rep: CameraReport, a: datetime | None, b: datetime | None) -> CameraReport:
    rep.outages = [Outage(rep.deployment, f.start, f.end if f.end is not None else b, f.kind, "camera check")
                   for f in rep.findings if f.outage and f.start is not None and (f.end or b) is not None]
    rep.operating = subtract((a, b), [(o.start, o.end) for o in rep.outages]) if a is not None and b is not None else []
    return rep


def add_outages(rep: CameraReport, known: list[Outage]) -> CameraReport:
    """Add the user's known outages of this deployment and recompute its operating periods."""
    mine = [o for o in known if o.deployment == rep.deployment]
    if not mine:
        return rep
    rep.outages = rep.outages + mine
    a = rep.start or (rep.operating[0][0] if rep.operating else None)
    b = rep.end or (rep.operating[-1][1] if rep.operating else None)
    if a is not None and b is not None:
        rep.operating = subtract((a, b), [(o.start, o.end) for o in rep.outages])
    return rep


class OutagesError(ValueError):
    """A bad outages CSV; the message names the file, the line and the fix."""


def read_outages(path: str | Path, deployments: dict[str, dict]) -> list[Outage]:
    """Known outages ``deployment_id,start,end[,reason]`` (header row required). Times are ISO 8601; without
    an offset they are the camera's local time (the deployment's ``tz``); a bare-date end is inclusive."""
    from spotid.util import parse_ts

    path = Path(path)
    fix = "expected a header deployment_id,start,end[,reason] and ISO times, e.g. S02A,2024-03-05,2024-03-14,knocked over"
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as e:
        raise OutagesError(f"cannot read outages file {path}: {e}") from None
    rows = list(csv.DictReader(text.splitlines()))
    cols = set((rows[0].keys() if rows else next(csv.reader(text.splitlines()), [])) or [])
    missing = {"deployment_id", "start", "end"} - {c.strip() for c in cols if c}
    if missing:
        raise OutagesError(f"{path}: missing column(s) {sorted(missing)}; {fix}")
    out = []
    for n, r in enumerate(rows, start=2):
        r = {(k or "").strip(): (v or "").strip() for k, v in r.items()}
        did = r["deployment_id"]
        if did not in deployments:
            known = ", ".join(sorted(deployments)[:10])
            raise OutagesError(f"{path} line {n}: unknown deployment {did!r} (known: {known}); use a deploymentID "
                               "from `spotid deployments list`")
        d = deployments[did]
        tz = parse_tz(d.get("tz")) or (parse_ts(d.get("start")).tzinfo if parse_ts(d.get("start")) else None)
        ts = []
        for col in ("start", "end"):
            t = parse_ts(r[col])
            if t is None:
                raise OutagesError(f"{path} line {n}: bad {col} {r[col]!r}; {fix}")
            if len(r[col]) == 10 and col == "end":
                t = t + timedelta(days=1)
            if t.tzinfo is None:
                if tz is None:
                    raise OutagesError(f"{path} line {n}: {r[col]!r} has no UTC offset and deployment {did} no tz: "
                                       "write the offset, e.g. 2024-03-05T00:00+10:00")
                t = t.replace(tzinfo=tz)
            elif tz is not None:
                t = t.astimezone(tz)      # the census compares in the camera's local time
            ts.append(t)
        if ts[1] <= ts[0]:
            raise OutagesError(f"{path} line {n}: end {r['end']} is not after start {r['start']}")
        out.append(Outage(did, ts[0], ts[1], r.get("reason") or "known outage", "outages file"))
    return out


class CameraCheck:
    """``CameraCheck(config)(catalog, known=[]) -> list[CameraReport]``, one per deployment (id order)."""

    def __init__(self, config: HealthConfig | None = None, *, now: datetime | None = None):
        self.config = config or HealthConfig()
        self.now = now

    def __call__(self, cat, known: list[Outage] | tuple = ()) -> list[CameraReport]:
        from spotid.util import parse_ts

        deps = {r["id"]: {k: r[k] for k in ("id", "location_id", "start", "end", "tz")}
                for r in deployments_table.rows(cat)}
        media: dict[str, list[MediaTime]] = {d: [] for d in deps}
        # a video's sampled frames (parent_id) are no triggers of their own
        for r in media_table.camera_photos(cat):
            path, rel = r.path or "", r.rel_path or ""
            root = path[: len(path) - len(rel)] if rel and path.endswith(rel) else str(Path(path).parent)
            media.setdefault(r.deployment_id, []).append(
                MediaTime(r.id, parse_ts(r.timestamp), (root,) + natural_key(rel or path)))
        first = {d: check_series(d, ms, start=parse_ts(deps.get(d, {}).get("start")),
                                 end=parse_ts(deps.get(d, {}).get("end")),
                                 station=deps.get(d, {}).get("location_id") or d, config=self.config, now=self.now)
                 for d, ms in media.items()}
        # the IR check needs what a working camera sees at night here: the other cameras' night share
        out = []
        for d in sorted(media):
            rep = first[d]
            if rep.n_triggers >= self.config.ir_min_triggers and rep.n_night_triggers == 0:
                others = [r for k, r in first.items() if k != d]
                n = sum(r.n_triggers for r in others)
                share = sum(r.n_night_triggers for r in others) / n if n else None
                ms = media[d]
                rep = check_series(d, ms, start=rep.start, end=rep.end, station=rep.station, config=self.config,
                                   now=self.now, night_share=share)
            out.append(add_outages(rep, list(known)))
        return out


def reports_to_json(reports: list[CameraReport], config: HealthConfig) -> dict:
    return {"config": asdict(config), "cameras": [r.to_dict() for r in reports],
            "n_findings": sum(len(r.findings) for r in reports),
            "findings_by_kind": _by_kind(reports)}


def _by_kind(reports: list[CameraReport]) -> dict:
    out: dict = {}
    for r in reports:
        for f in r.findings:
            out[f.kind] = out.get(f.kind, 0) + 1
    return out
