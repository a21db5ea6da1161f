"""Camtrap DP 1.0.2 export of a spotid catalog (https://camtrap-dp.tdwg.org).

Files: ``datapackage.json``, ``deployments.csv``, ``media.csv``, ``observations.csv``.

Choices a reader should know:
- observations are media-level (``observationLevel = media``), one per detection kept (category
  animal/person/vehicle, not flagged as a static false positive, confidence >= ``min_conf`` or with
  a leopard sighting) plus one ``blank`` observation per processed frame without any;
- leopards get ``scientificName = Panthera pardus orientalis`` and, when their sighting is counted
  (auto or confirmed), ``individualID``: the animal (flank identities joined by flank links share
  one id, e.g. ``AL-001-L|AL-007-R``);
- ``classificationMethod`` is ``human`` for sightings a reviewer confirmed, else ``machine`` with
  ``classifiedBy`` = the model version and ``classificationProbability`` = the calibrated match
  probability (identity) or the classifier confidence (species);
- boxes are the catalog's normalised ``[x_min, y_min, w, h]`` clipped to the frame;
- a video is one media row (its own file); the still frames spotid sampled from it are not media of the
  package: an observation on a frame has the video's ``mediaID``, ``eventStart`` = ``eventEnd`` = the
  frame's time (video start + the frame's offset, to the second) and says "video frame at 12.50 s" in
  ``observationComments``; a video whose frames show nothing gets one ``blank`` observation;
- media ``filePath`` is ``<deploymentID>/<path under the deployment's media root>`` (never absolute, never
  ``..``): unique across the package, as two cameras write the same file names; the package's media
  would sit in one folder per deployment.
"""
from __future__ import annotations

import csv
import io
import json
import logging
import mimetypes
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path, PurePosixPath

from spotid.catalog import Catalog, now_iso
from spotid.catalog.tables import deployments, detections, individuals, media, reviews
from spotid.export.paths import export_path
from spotid.util import atomic_write_json, atomic_write_text

log = logging.getLogger(__name__)

VERSION = "1.0.2"
BASE = f"https://raw.githubusercontent.com/tdwg/camtrap-dp/{VERSION}"
PROFILE_URL = f"{BASE}/camtrap-dp-profile.json"
SCHEMA_URLS = {n: f"{BASE}/{n}-table-schema.json" for n in ("deployments", "media", "observations")}
LEOPARD = "Panthera pardus orientalis"
OBS_TYPE = {1: "animal", 2: "human", 3: "vehicle"}
FEATURE_TYPES = {"roadPaved", "roadDirt", "trailHiking", "trailGame", "roadUnderpass", "roadOverpass", "roadBridge",
                 "culvert", "burrow", "nestSite", "carcass", "waterSource", "fruitingTree"}

DEPLOYMENT_FIELDS = ["deploymentID", "locationID", "locationName", "latitude", "longitude", "coordinateUncertainty",
                     "deploymentStart", "deploymentEnd", "setupBy", "cameraID", "cameraModel", "cameraDelay",
                     "cameraHeight", "cameraDepth", "cameraTilt", "cameraHeading", "detectionDistance",
                     "timestampIssues", "baitUse", "featureType", "habitat", "deploymentGroups", "deploymentTags",
                     "deploymentComments"]
MEDIA_FIELDS = ["mediaID", "deploymentID", "captureMethod", "timestamp", "filePath", "filePublic", "fileName",
                "fileMediatype", "exifData", "favorite", "mediaComments"]
OBSERVATION_FIELDS = ["observationID", "deploymentID", "mediaID", "eventID", "eventStart", "eventEnd",
                      "observationLevel", "observationType", "cameraSetupType", "scientificName", "count",
                      "lifeStage", "sex", "behavior", "individualID", "individualPositionRadius",
                      "individualPositionAngle", "individualSpeed", "bboxX", "bboxY", "bboxWidth", "bboxHeight",
                      "classificationMethod", "classifiedBy", "classificationTimestamp",
                      "classificationProbability", "observationTags", "observationComments"]


class ExportError(ValueError):
    """The catalog cannot be exported as asked (the message names the fix)."""


@dataclass(frozen=True)
class CamtrapDPConfig:
    """Package metadata and filters (defaults mirrored in configs/export.yaml)."""

    yaml_name = "export"

    title: str = "spotid camera-trap census"
    project_title: str = "Amur leopard camera-trap survey"
    project_description: str = "Camera-trap survey of Amur leopards; individuals identified by rosette pattern with spotid."
    sampling_design: str = "systematicRandom"
    contributor: str = "spotid user"
    contributor_role: str = "contact"
    data_license: str = "CC-BY-4.0"
    media_license: str = "CC-BY-NC-4.0"
    min_conf: float = 0.2
    identity_statuses: tuple[str, ...] = ("auto", "confirmed")
    include_blanks: bool = True

    def __post_init__(self):
        designs = ("simpleRandom", "systematicRandom", "clusteredRandom", "experimental", "targeted", "opportunistic")
        roles = ("contact", "principalInvestigator", "rightsHolder", "publisher", "contributor")
        if self.sampling_design not in designs:
            raise ValueError(f"sampling_design {self.sampling_design!r}: Camtrap DP allows {', '.join(designs)}")
        if self.contributor_role not in roles:
            raise ValueError(f"contributor_role {self.contributor_role!r}: Camtrap DP allows {', '.join(roles)}")


@dataclass
class ExportResult:
    out: Path
    n_deployments: int
    n_media: int
    n_observations: int
    n_leopard_observations: int
    n_individual_observations: int
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"out": str(self.out), "deployments": self.n_deployments, "media": self.n_media,
                "observations": self.n_observations, "leopard_observations": self.n_leopard_observations,
                "observations_with_individual": self.n_individual_observations, "warnings": self.warnings}


def _csv(rows: list[dict], fields: list[str]) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=fields, extrasaction="ignore", lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({k: _fmt(r.get(k)) for k in fields})
    return buf.getvalue()


def _fmt(v):
    if v is None:
        return ""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return f"{v:.6g}" if abs(v) < 1e6 else f"{v:.1f}"
    return v


def _iso(ts: str | None) -> str | None:
    """Camtrap DP wants %Y-%m-%dT%H:%M:%S%z: seconds precision, an explicit offset."""
    if not ts:
        return None
    try:
        t = datetime.fromisoformat(str(ts).replace("Z", "+00:00"))
    except ValueError:
        return None
    if t.tzinfo is None:
        return None
    return t.replace(microsecond=0).isoformat()


def _animal_ids(cat: Catalog) -> dict[int, str]:
    """individual id -> animal id (resolved merges; flank-linked identities share one id)."""
    rows = individuals.brief_rows(cat)
    parent = {r.id: r.merged_into for r in rows}
    names = {r.id: r.name for r in rows}
    flanks = {r.id: r.flank for r in rows}

    def resolve(i):
        seen = set()
        while parent.get(i) is not None and i not in seen:
            seen.add(i)
            i = parent[i]
        return i

    uf = {i: i for i in names}

    def find(a):
        while uf[a] != a:
            uf[a] = uf[uf[a]]
            a = uf[a]
        return a

    for r in individuals.flank_links(cat):
        a, b = resolve(r["left_id"]), resolve(r["right_id"])
        if a in uf and b in uf:
            uf[find(a)] = find(b)
    groups: dict[int, list[int]] = {}
    for i in names:
        r = resolve(i)
        groups.setdefault(find(r), [])
        if r not in groups[find(r)]:
            groups[find(r)].append(r)
    label = {root: "|".join(names[j] for j in sorted(g, key=lambda j: (flanks[j], names[j])))
             for root, g in groups.items()}
    return {i: label[find(resolve(i))] for i in names}


def export_camtrapdp(cat: Catalog, out: str | Path, cfg: CamtrapDPConfig | None = None,
                     census: dict | None = None) -> ExportResult:
    """Write a Camtrap DP 1.0.2 package of the catalog into ``out``.

    ``census``: a census summary (``CensusResult.summary()``: period, effort, MNA and its two-flank
    bounds, the chosen N̂ and, with SECR, the density per 100 km²) stored in ``datapackage.json`` under
    the custom property ``spotid:census`` (Data Package descriptors allow extra properties), so the
    package carries the figures a report cites.
    """
    cfg = cfg or CamtrapDPConfig()
    out = Path(out)
    warnings: list[str] = []
    deps = [dict(r) for r in deployments.rows(cat, by_id=True)]
    if not deps:
        raise ExportError("the catalog has no deployments: ingest a card first (`spotid ingest`)")
    span = media.time_span_by_deployment(cat)
    missing_xy = [d["id"] for d in deps if d.get("latitude") is None or d.get("longitude") is None]
    if missing_xy:
        raise ExportError(f"deployment(s) {', '.join(missing_xy)} have no latitude/longitude, which Camtrap DP "
                          "requires: add them to the deployments table (spotid deployments import/add) and export again")

    dep_rows = []
    for d in deps:
        start = _iso(d.get("start")) or _iso(span.get(d["id"], (None, None))[0])
        end = _iso(d.get("end")) or _iso(span.get(d["id"], (None, None))[1])
        if not start or not end:
            warnings.append(f"deployment {d['id']}: no start/end and no timestamped media; skipped")
            continue
        if not _iso(d.get("start")) or not _iso(d.get("end")):
            warnings.append(f"deployment {d['id']}: start/end taken from its first/last media")
        extra = json.loads(d.get("extra_json") or "{}") if "extra_json" in d else {}
        row = {k: extra.get(k) for k in DEPLOYMENT_FIELDS}
        unc = d.get("coordinate_uncertainty")
        row.update({
            "deploymentID": d["id"], "locationID": d.get("location_id"), "locationName": d.get("location_name"),
            "latitude": d["latitude"], "longitude": d["longitude"],
            "coordinateUncertainty": max(1, int(round(unc))) if unc is not None else None,
            "deploymentStart": start, "deploymentEnd": end, "setupBy": d.get("setup_by"),
            "cameraID": d.get("camera_id"), "cameraModel": d.get("camera_model"),
            "cameraHeight": d.get("camera_height"),
            "featureType": d.get("feature_type") if d.get("feature_type") in FEATURE_TYPES else None,
            "habitat": d.get("habitat"), "deploymentComments": d.get("comments"),
        })
        if d.get("feature_type") and d.get("feature_type") not in FEATURE_TYPES:
            row["deploymentComments"] = "; ".join(x for x in (d.get("comments"), f"featureType: {d['feature_type']}") if x)
        dep_rows.append(row)
    dep_ids = {r["deploymentID"] for r in dep_rows}

    media_rows, media_ts = [], {}
    no_ts = 0
    video_of: dict[int, int] = {}   # sampled frame's media id -> its video's (frames are no media of the package)
    for m in media.for_export(cat):
        if m.parent_id is not None:
            video_of[m.id] = m.parent_id
            continue
        ts = _iso(m.timestamp)
        if ts is None or m.deployment_id not in dep_ids:
            no_ts += 1
            continue
        path = export_path(m.deployment_id, m.rel_path, m.id)
        mt = mimetypes.guess_type(path)[0] or ("image/jpeg" if m.kind == "image" else "video/mp4")
        if not mt.startswith(("image/", "video/")):
            mt = "image/jpeg" if m.kind == "image" else "video/mp4"
        media_rows.append({"mediaID": str(m.id), "deploymentID": m.deployment_id,
                           "captureMethod": "activityDetection", "timestamp": ts, "filePath": path,
                           "filePublic": False, "fileName": PurePosixPath(path).name, "fileMediatype": mt,
                           "mediaComments": m.warning})
        media_ts[m.id] = ts
    if no_ts:
        warnings.append(f"{no_ts} media without a timestamp (or deployment) were left out: Camtrap DP requires one")

    animal = _animal_ids(cat)
    obs_rows = []
    with_obs = set()
    reviewers = reviews.reviewer_by_sighting(cat)
    from spotid.export.training_crops import reviewed_crops

    # a reviewer said "not a leopard": the box is an animal of unknown species, classified by a person
    not_leopard = {c.detection_id: c.reviewer for c in reviewed_crops(cat) if c.decision == "not_leopard"}
    n_leo = n_ind = 0
    for r in detections.with_media_and_sighting(cat):
        media_id = video_of.get(r["media_id"], r["media_id"])
        if media_id not in media_ts or r["static_fp"]:
            continue
        is_leopard = (r["label"] == "leopard" or r["sid"] is not None) and r["id"] not in not_leopard
        if r["conf"] < cfg.min_conf and not is_leopard:
            continue
        ts = _iso(r["mts"]) if media_id != r["media_id"] else media_ts[media_id]
        if ts is None:
            continue
        x, y = min(max(r["x"], 0.0), 1.0), min(max(r["y"], 0.0), 1.0)
        w, h = min(max(r["w"], 1e-6), 1.0 - x), min(max(r["h"], 1e-6), 1.0 - y)
        row = {"observationID": f"det{r['id']}", "deploymentID": r["deployment_id"], "mediaID": str(media_id),
               "eventID": f"seq{r['sequence_id']}" if r["sequence_id"] is not None else None,
               "eventStart": ts, "eventEnd": ts, "observationLevel": "media",
               "observationType": OBS_TYPE.get(r["category"], "unknown"), "count": 1,
               "bboxX": round(x, 6), "bboxY": round(y, 6), "bboxWidth": round(max(w, 1e-6), 6),
               "bboxHeight": round(max(h, 1e-6), 6), "classificationMethod": "machine",
               "classifiedBy": r["detector"], "classificationProbability": round(min(max(r["conf"], 0), 1), 6)}
        comments = [f"video frame at {r['frame_offset_s']:.2f} s"] if media_id != r["media_id"] else []
        if is_leopard and r["category"] == 1:
            n_leo += 1
            row["scientificName"] = LEOPARD
            if r["label_conf"] is not None:
                row["classificationProbability"] = round(min(max(r["label_conf"], 0), 1), 6)
            if r["sid"] is not None:
                comments.append(f"spotid sighting {r['sid']} ({r['sstatus']})")
                if r["sflank"]:
                    comments.append(f"flank: {r['sflank']}")
                if r["sstatus"] in cfg.identity_statuses and r["individual_id"] is not None:
                    row["individualID"] = animal.get(r["individual_id"])
                    n_ind += 1
                    if r["sstatus"] == "confirmed":
                        row["classificationMethod"] = "human"
                        row["classifiedBy"] = reviewers.get(r["sid"], "reviewer")
                        row["classificationProbability"] = None
                    else:
                        row["classifiedBy"] = r["model_version"] or r["detector"]
                        if r["probability"] is not None:
                            row["classificationProbability"] = round(min(max(r["probability"], 0), 1), 6)
                    row["classificationTimestamp"] = _iso(r["updated_at"])
        elif r["id"] in not_leopard:
            row.update(classificationMethod="human", classifiedBy=not_leopard[r["id"]], classificationProbability=None)
            comments.append(f"spotid sighting {r['sid']}: not a leopard (review)")
        elif r["label"] and r["category"] == 1:
            comments.append(f"classifier label: {r['label']}")
        row["observationComments"] = "; ".join(comments) or None
        obs_rows.append(row)
        with_obs.add(media_id)
    if cfg.include_blanks:
        processed = {video_of.get(i, i) for i in detections.processed_media_ids(cat)}
        for mid in sorted(processed - with_obs):
            if mid in media_ts:
                dep = next(m["deploymentID"] for m in media_rows if m["mediaID"] == str(mid))
                obs_rows.append({"observationID": f"blank{mid}", "deploymentID": dep, "mediaID": str(mid),
                                 "eventStart": media_ts[mid], "eventEnd": media_ts[mid], "observationLevel": "media",
                                 "observationType": "blank", "classificationMethod": "machine"})

    atomic_write_text(out / "deployments.csv", _csv(dep_rows, DEPLOYMENT_FIELDS))
    atomic_write_text(out / "media.csv", _csv(media_rows, MEDIA_FIELDS))
    atomic_write_text(out / "observations.csv", _csv(obs_rows, OBSERVATION_FIELDS))
    package = _package(cfg, dep_rows, n_leo > 0)
    if census is not None:
        package["spotid:census"] = census
    atomic_write_json(out / "datapackage.json", package, indent=2)
    return ExportResult(out, len(dep_rows), len(media_rows), len(obs_rows), n_leo, n_ind, warnings)


def _package(cfg: CamtrapDPConfig, deps: list[dict], has_leopards: bool) -> dict:
    lats = [d["latitude"] for d in deps]
    lons = [d["longitude"] for d in deps]
    x0, x1, y0, y1 = min(lons), max(lons), min(lats), max(lats)
    if x0 == x1 and y0 == y1:
        spatial = {"type": "Point", "coordinates": [x0, y0]}
    else:
        spatial = {"type": "Polygon", "coordinates": [[[x0, y0], [x1, y0], [x1, y1], [x0, y1], [x0, y0]]]}
    starts = sorted(d["deploymentStart"] for d in deps)
    ends = sorted(d["deploymentEnd"] for d in deps)
    taxonomic = [{"scientificName": LEOPARD, "taxonRank": "subspecies",
                  "vernacularNames": {"eng": "Amur leopard", "rus": "дальневосточный леопард"}}] if has_leopards else []
    return {
        "profile": PROFILE_URL,
        "name": "spotid-census",
        "id": str(uuid.uuid4()),
        "created": now_iso(),
        "title": cfg.title,
        "contributors": [{"title": cfg.contributor, "role": cfg.contributor_role}],
        "version": "1.0",
        "licenses": [{"name": cfg.data_license, "scope": "data"}, {"name": cfg.media_license, "scope": "media"}],
        "sources": [{"title": "spotid", "version": _spotid_version()}],
        "project": {"title": cfg.project_title, "description": cfg.project_description,
                    "samplingDesign": cfg.sampling_design, "captureMethod": ["activityDetection"],
                    "individualAnimals": True, "observationLevel": ["media"]},
        "spatial": spatial,
        "temporal": {"start": starts[0][:10], "end": ends[-1][:10]},
        "taxonomic": taxonomic,
        "resources": [{"name": n, "path": f"{n}.csv", "profile": "tabular-data-resource", "format": "csv",
                       "mediatype": "text/csv", "encoding": "utf-8", "schema": SCHEMA_URLS[n]}
                      for n in ("deployments", "media", "observations")],
    }


def _spotid_version() -> str:
    from spotid import __version__

    return __version__
