"""Deployments (one camera at one station for one period), as in Camtrap DP 1.0.2's deployments table.

Times are ISO 8601 with a UTC offset. A deployment's ``tz`` ("+10:00") is the offset its camera
clock runs in; it is applied to EXIF times, which carry no zone. Without an explicit tz it is
taken from the offset of ``deploymentStart`` (Camtrap DP writes local times with their offset).
"""
from __future__ import annotations

import csv
import json
import logging
import math
from dataclasses import asdict, dataclass, field, fields, replace
from datetime import datetime, time
from pathlib import Path

from spotid.catalog import Catalog
from spotid.catalog.tables import deployments as deployments_table
from spotid.catalog.tables import media as media_table
from spotid.util import format_tz, parse_tz

log = logging.getLogger(__name__)

# Camtrap DP column -> deployments column (catalog schema 0001).
CAMTRAP_COLUMNS = {
    "deploymentID": "id",
    "locationID": "location_id",
    "locationName": "location_name",
    "latitude": "latitude",
    "longitude": "longitude",
    "coordinateUncertainty": "coordinate_uncertainty",
    "deploymentStart": "start",
    "deploymentEnd": "end",
    "setupBy": "setup_by",
    "cameraID": "camera_id",
    "cameraModel": "camera_model",
    "cameraHeight": "camera_height",
    "featureType": "feature_type",
    "habitat": "habitat",
    "deploymentComments": "comments",
}
# Camtrap DP fields kept verbatim in deployments.extra_json.
CAMTRAP_EXTRA = ("cameraDelay", "cameraDepth", "cameraTilt", "cameraHeading", "detectionDistance",
                 "timestampIssues", "baitUse", "deploymentGroups", "deploymentTags")
FEATURE_TYPES = ("roadPaved", "roadDirt", "trailHiking", "trailGame", "roadUnderpass", "roadOverpass",
                 "roadBridge", "culvert", "burrow", "nestSite", "carcass", "waterSource", "fruitingTree")


class DeploymentError(ValueError):
    """Bad deployment input; the message names the fix."""


@dataclass(frozen=True)
class Deployment:
    id: str
    latitude: float | None = None
    longitude: float | None = None
    start: str | None = None          # ISO 8601 with offset
    end: str | None = None
    tz: str | None = None             # "+10:00"
    location_id: str | None = None    # station: two paired cameras share it
    location_name: str | None = None
    camera_id: str | None = None
    camera_model: str | None = None
    coordinate_uncertainty: float | None = None
    camera_height: float | None = None
    setup_by: str | None = None
    feature_type: str | None = None
    habitat: str | None = None
    comments: str | None = None
    extra: dict = field(default_factory=dict)
    auto_created: bool = False

    @property
    def start_dt(self) -> datetime | None:
        return datetime.fromisoformat(self.start) if self.start else None

    @property
    def end_dt(self) -> datetime | None:
        return datetime.fromisoformat(self.end) if self.end else None

    def to_dict(self) -> dict:
        return asdict(self)


_COLS = [f.name for f in fields(Deployment) if f.name not in ("extra", "auto_created")]


# -- parsing and validation ------------------------------------------------------------------------
def parse_when(text: str, *, tz: str | None, what: str, end_of_day: bool = False) -> str:
    """'2024-03-01T08:00:00+10:00', '2024-03-01 08:00' or '2024-03-01' -> ISO with offset.

    A time without offset takes ``tz``; without either it is an error naming the fix. A bare date
    means the start (or, for an end, the last second) of that day.
    """
    s = str(text).strip()
    try:
        if len(s) == 10:  # a bare date
            d = datetime.fromisoformat(s).date()
            dt = datetime.combine(d, time(23, 59, 59) if end_of_day else time(0, 0, 0))
        else:
            dt = datetime.fromisoformat(s.replace(" ", "T", 1))
    except ValueError:
        raise DeploymentError(
            f"{what} {text!r} is not a date/time: write it like 2024-03-01T08:00:00+10:00 or 2024-03-01"
        ) from None
    if dt.tzinfo is None:
        zone = parse_tz(tz) if tz else None
        if zone is None:
            raise DeploymentError(
                f"{what} {text!r} has no UTC offset: write it like {dt.isoformat()}+10:00 or pass --tz +10:00"
            )
        dt = dt.replace(tzinfo=zone)
    return dt.replace(microsecond=0).isoformat()


def _float(v, what: str, lo: float | None = None, hi: float | None = None) -> float | None:
    if v is None or str(v).strip() == "":
        return None
    try:
        x = float(v)
    except (TypeError, ValueError):
        raise DeploymentError(f"{what} {v!r} is not a number: write decimal degrees/metres like 43.12") from None
    if math.isnan(x) or (lo is not None and x < lo) or (hi is not None and x > hi):
        raise DeploymentError(f"{what} {v!r} is out of range: it must lie in [{lo}, {hi}]")
    return x


def make_deployment(
    id: str, *, latitude=None, longitude=None, start=None, end=None, tz: str | None = None,
    require_core: bool = True, **other,
) -> Deployment:
    """Validate user input into a Deployment (errors name the fix). ``tz`` defaults to start's offset."""
    did = str(id or "").strip()
    if not did:
        raise DeploymentError("deployment ID is empty: give each camera deployment an ID, e.g. AL-012-A")
    if tz:
        try:
            tz = format_tz(parse_tz(tz))
        except ValueError as e:
            raise DeploymentError(str(e)) from None
    lat = _float(latitude, "latitude", -90, 90)
    lon = _float(longitude, "longitude", -180, 180)
    s = parse_when(start, tz=tz, what="deploymentStart") if start not in (None, "") else None
    if tz is None and s:  # the camera clock's offset: the one the start was written with
        tz = format_tz(datetime.fromisoformat(s).tzinfo)  # type: ignore[arg-type]
    e = parse_when(end, tz=tz, what="deploymentEnd", end_of_day=True) if end not in (None, "") else None
    if require_core:
        missing = [n for n, v in (("latitude", lat), ("longitude", lon), ("start", s), ("end", e)) if v is None]
        if missing:
            raise DeploymentError(f"deployment {did}: {', '.join(missing)} missing: Camtrap DP requires "
                                  "latitude, longitude, deploymentStart and deploymentEnd")
    if s and e and datetime.fromisoformat(e) < datetime.fromisoformat(s):
        raise DeploymentError(f"deployment {did}: end {e} is before start {s}: swap them or fix the dates")
    ft = other.get("feature_type")
    if ft and ft not in FEATURE_TYPES:
        raise DeploymentError(
            f"featureType {ft!r} is not a Camtrap DP feature type: use one of {', '.join(FEATURE_TYPES)}")
    other["coordinate_uncertainty"] = _float(other.get("coordinate_uncertainty"), "coordinateUncertainty", 0)
    other["camera_height"] = _float(other.get("camera_height"), "cameraHeight", 0)
    clean = {k: (str(v).strip() or None) if isinstance(v, str) else v for k, v in other.items()}
    return Deployment(id=did, latitude=lat, longitude=lon, start=s, end=e, tz=tz, **clean)


# -- catalog ------------------------------------------------------------------------------------------
def _from_row(r) -> Deployment:
    d = {c: r[c] for c in _COLS}
    extra = json.loads(r["extra_json"]) if r["extra_json"] else {}
    return Deployment(**d, extra=extra, auto_created=bool(r["auto_created"]))


def get_deployment(cat: Catalog, deployment_id: str) -> Deployment | None:
    row = deployments_table.get(cat, deployment_id)
    return _from_row(row) if row is not None else None


def list_deployments(cat: Catalog) -> list[tuple[Deployment, int]]:
    """All deployments with their number of media, ordered by id."""
    rows = deployments_table.with_media_counts(cat)
    return [(_from_row(r), int(r["n_media"])) for r in rows]


def upsert_deployment(cat: Catalog, dep: Deployment) -> str:
    """Insert or update (keeping created_at). Returns 'added', 'updated' or 'unchanged'."""
    old = get_deployment(cat, dep.id)
    if old is not None and old == dep:
        return "unchanged"
    values = {c: getattr(dep, c) for c in _COLS}
    values["extra_json"] = json.dumps(dep.extra, sort_keys=True) if dep.extra else None
    values["auto_created"] = int(dep.auto_created)
    with cat.transaction():
        deployments_table.upsert(cat, values)
    return "added" if old is None else "updated"


def add_deployment(cat: Catalog, dep: Deployment, *, replace_existing: bool = False) -> str:
    """``spotid deployments add``: a new deployment, or the details of one an ingest auto-created.
    Refuses to silently overwrite a different existing deployment (``replace_existing`` to force)."""
    old = get_deployment(cat, dep.id)
    if old is not None and not old.auto_created and not replace_existing and old != dep:
        raise DeploymentError(
            f"deployment {dep.id} already exists with other details: pass --replace to overwrite it, "
            "or choose another ID")
    if old is not None and dep.tz != old.tz and old.tz is not None:
        n = media_table.count_of_deployment(cat, dep.id)
        if n:
            log.warning("deployment %s: tz changes %s -> %s; its %d media keep the times they were "
                        "ingested with (re-ingest into a fresh catalog to re-time them)", dep.id, old.tz, dep.tz, n)
    return upsert_deployment(cat, dep)


def ensure_deployment(cat: Catalog, deployment_id: str, *, tz: str | None = None) -> tuple[Deployment, bool]:
    """The deployment, created with ``auto_created`` when unknown. Returns (deployment, created)."""
    dep = get_deployment(cat, deployment_id)
    if dep is not None:
        return dep, False
    dep = make_deployment(deployment_id, tz=tz, require_core=False, auto_created=True)
    upsert_deployment(cat, dep)
    return dep, True


@dataclass
class ImportResult:
    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)


def read_deployments_csv(path: str | Path, *, tz: str | None = None) -> list[Deployment]:
    """Parse and validate a Camtrap DP deployments.csv; every problem is reported at once."""
    path = Path(path)
    if not path.is_file():
        raise DeploymentError(f"{path} does not exist: pass the path of a Camtrap DP deployments.csv")
    with open(path, newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f)
        header = reader.fieldnames or []
        missing = [c for c in ("deploymentID", "latitude", "longitude", "deploymentStart", "deploymentEnd")
                   if c not in header]
        if missing:
            raise DeploymentError(f"{path}: missing Camtrap DP column(s) {', '.join(missing)}; "
                                  f"found {', '.join(header) or 'no header'}")
        unknown = [c for c in header if c not in CAMTRAP_COLUMNS and c not in CAMTRAP_EXTRA]
        if unknown:
            log.warning("%s: ignoring columns that are not Camtrap DP deployment fields: %s", path, ", ".join(unknown))
        deps, errors, seen = [], [], set()
        for i, row in enumerate(reader, start=2):  # line 1 is the header
            kw = {CAMTRAP_COLUMNS[k]: v for k, v in row.items() if k in CAMTRAP_COLUMNS}
            extra = {k: row[k] for k in CAMTRAP_EXTRA if row.get(k) not in (None, "")}
            try:
                dep = make_deployment(kw.pop("id"), tz=tz, extra=extra, **kw)
            except DeploymentError as e:
                errors.append(f"line {i}: {e}")
                continue
            if dep.id in seen:
                errors.append(f"line {i}: deploymentID {dep.id} appears twice: deployment IDs must be unique")
            seen.add(dep.id)
            deps.append(dep)
    if errors:
        shown = "\n  ".join(errors[:20]) + (f"\n  ... and {len(errors) - 20} more" if len(errors) > 20 else "")
        raise DeploymentError(f"{path}: {len(errors)} row(s) need fixing, nothing imported:\n  {shown}")
    return deps


def import_deployments_csv(cat: Catalog, path: str | Path, *, tz: str | None = None) -> ImportResult:
    """Upsert every row of a Camtrap DP deployments.csv, all or nothing. Re-importing is a no-op."""
    deps = read_deployments_csv(path, tz=tz)
    res = ImportResult()
    with cat.transaction():
        for dep in deps:
            getattr(res, upsert_deployment(cat, dep)).append(dep.id)
    return res


def set_deployment_tz(cat: Catalog, dep: Deployment, tz: str) -> Deployment:
    new = replace(dep, tz=tz)
    upsert_deployment(cat, new)
    return new
