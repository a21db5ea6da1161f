"""Writing a synthetic SD-card dump: JPEGs with EXIF, deployments.csv (Camtrap DP), truth.json (COCO CT)."""
from __future__ import annotations

import csv
import io
import logging
import math
import struct
import time
import zlib
from dataclasses import asdict, dataclass
from datetime import date, datetime, timedelta
from pathlib import Path

import cv2
import numpy as np

from spotid.synth.config import SynthConfig
from spotid.synth.faults import camera_time, parse_fault
from spotid.synth.render import FrameRenderer
from spotid.synth.rng import rng
from spotid.synth.scene import list_backgrounds, station_habitat, station_scene
from spotid.synth.world import CATEGORIES, CATEGORY_ID, SUNRISE, SUNSET, Trigger, World
from spotid.util import atomic_write_bytes, atomic_write_json, atomic_write_text, format_tz, parse_tz, progress

log = logging.getLogger(__name__)

DEPLOYMENT_COLUMNS = ["deploymentID", "locationID", "locationName", "latitude", "longitude", "coordinateUncertainty",
                      "deploymentStart", "deploymentEnd", "setupBy", "cameraID", "cameraModel", "cameraDelay",
                      "cameraHeight", "cameraDepth", "cameraTilt", "cameraHeading", "detectionDistance",
                      "timestampIssues", "baitUse", "featureType", "habitat", "deploymentGroups", "deploymentTags",
                      "deploymentComments"]


@dataclass(frozen=True)
class CardSummary:
    """What a card run produced (``frames_per_second`` = frames / wall seconds of the run, including
    scene generation and file writing; ``frames_per_cpu_second`` the same per CPU second of this
    process, which is what a single core achieves when it is not shared)."""

    out_dir: str
    truth_path: str
    deployments_path: str
    frames: int
    empty_frames: int
    leopard_boxes: int
    boxes_by_species: dict
    individuals: int
    individuals_photographed: int
    deployments: int
    seconds: float
    frames_per_second: float
    cpu_seconds: float            # CPU time of this process (workers=1: all rendering; shared machines inflate wall time)
    frames_per_cpu_second: float


def exif_bytes(make: str, model: str, serial: str, when: str, offset: str | None) -> bytes:
    """An EXIF APP1 payload: Make/Model/DateTime in IFD0, DateTimeOriginal/Digitized, OffsetTime*
    and BodySerialNumber in the Exif sub-IFD (0x8769). ``when`` = 'YYYY:MM:DD HH:MM:SS'."""
    from PIL import Image

    ex = Image.Exif()
    ex[0x010F] = make
    ex[0x0110] = model
    ex[0x0132] = when
    ifd = ex.get_ifd(0x8769)
    ifd[0x9003] = when
    ifd[0x9004] = when
    if offset:
        ifd[0x9011] = offset
        ifd[0x9012] = offset
    ifd[0xA431] = serial
    return ex.tobytes()


def encode_jpeg(rgb: np.ndarray, quality: int, exif: bytes | None = None) -> bytes:
    """Baseline JPEG via OpenCV (fixed settings, deterministic) with an EXIF APP1 after SOI."""
    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR),
                           [cv2.IMWRITE_JPEG_QUALITY, int(quality), cv2.IMWRITE_JPEG_OPTIMIZE, 0,
                            cv2.IMWRITE_JPEG_PROGRESSIVE, 0])
    if not ok:
        raise RuntimeError("JPEG encoding failed")
    data = buf.tobytes()
    if exif:
        data = data[:2] + b"\xff\xe1" + struct.pack(">H", len(exif) + 2) + exif + data[2:]
    return data


def temperature(seed: int, station: str, day: int, hour: float, habitat: str) -> int:
    r = rng(seed, "temp", station, day)
    t = 4.0 - 0.35 * day + r.normal(0, 2.5) + 5.0 * math.sin(2 * math.pi * (hour - 9.0) / 24)
    return int(round(t - (5 if habitat == "snow" else 0)))


def serial_number(seed: int, deployment: str) -> str:
    return f"H2C{zlib.crc32(f'{seed}:{deployment}'.encode()) % 10**8:08d}"


def frame_path(deployment: str, n: int) -> str:
    """Reconyx layout: 100RECNX holds RCNX0001..RCNX9999, then 101RECNX."""
    folder = 100 + (n - 1) // 9999
    return f"{deployment}/DCIM/{folder}RECNX/RCNX{(n - 1) % 9999 + 1:04d}.JPG"


def _render_deployment(args) -> tuple[list, list]:
    """Render and write all frames of one deployment; returns (images, annotations) records."""
    cfg, dep, station, triggers, out_dir, bg = args
    out_dir = Path(out_dir)
    scene = station_scene(cfg.seed, dep, cfg.width, cfg.height, bg, None if bg else station_habitat(cfg.seed, station))
    renderer = FrameRenderer(cfg.seed, cfg.camera_model)
    offset = cfg.tz
    serial = serial_number(cfg.seed, dep)
    faults = [parse_fault(x) for x in cfg.faults]
    start = datetime.combine(date.fromisoformat(cfg.start_date), datetime.min.time(), tzinfo=parse_tz(cfg.tz))
    images, anns = [], []
    n = 0
    for t in triggers:
        for f in range(cfg.burst):
            n += 1
            true_when = t.start + timedelta(seconds=f)
            when = camera_time(faults, dep, true_when, start)   # what the camera's clock says
            hour = true_when.hour + true_when.minute / 60 + true_when.second / 3600
            night = hour < SUNRISE or hour >= SUNSET
            temp = temperature(cfg.seed, t.station, (true_when.date() - date.fromisoformat(cfg.start_date)).days, hour,
                               scene.habitat)
            stamp = (f"{cfg.camera_make}  {f + 1}/{cfg.burst}",
                     f"{temp}C {round(temp * 9 / 5 + 32)}F   {when.strftime('%Y-%m-%d %H:%M:%S')}", dep)
            fr = renderer(scene, species=t.species, individual=t.individual, view=t.view, distance=t.distance,
                          event=t.event, deployment=dep, frame_num=f, hour=hour, night=night, stamp=stamp,
                          temperature_c=temp)
            rel = frame_path(dep, n)
            ex = exif_bytes(cfg.camera_make, cfg.camera_model, serial, when.strftime("%Y:%m:%d %H:%M:%S"), offset)
            atomic_write_bytes(out_dir / rel, encode_jpeg(fr.image, cfg.jpeg_quality, ex))
            image_id = rel.rsplit(".", 1)[0]
            images.append({"id": image_id, "file_name": rel, "width": cfg.width, "height": cfg.height,
                           "datetime": when.isoformat(), "location": t.station, "deployment_id": dep,
                           "seq_id": t.seq_id, "seq_num_frames": cfg.burst, "frame_num": f,
                           "day_night": "night" if night else "day", "temperature_c": temp,
                           "trigger": "animal" if t.species != "empty" else "false"})
            if when != true_when:
                images[-1]["true_datetime"] = true_when.isoformat()
            if not fr.boxes:
                anns.append({"id": f"{image_id}#0", "image_id": image_id, "category_id": CATEGORY_ID["empty"]})
            for k, b in enumerate(fr.boxes):
                a = {"id": f"{image_id}#{k}", "image_id": image_id, "category_id": CATEGORY_ID[b.species],
                     "bbox": b.bbox, "area": b.bbox[2] * b.bbox[3], "visible_fraction": b.visible_fraction,
                     "distance_m": b.distance}
                if b.species == "leopard":
                    a["individual_id"] = b.individual
                    a["flank"] = b.flank
                anns.append(a)
    return images, anns


class CardWriter:
    """Render a whole survey to an SD-card-like folder.

    >>> summary = CardWriter(SynthConfig(stations=6, days=20, individuals=10, seed=7))("card/")
    """

    def __init__(self, cfg: SynthConfig):
        self.cfg = cfg
        self.world = World.from_config(cfg)

    def __call__(self, out_dir: str | Path) -> CardSummary:
        cfg, world = self.cfg, self.world
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        t0 = time.perf_counter()
        c0 = time.process_time()
        triggers = world.triggers()
        bgs = list_backgrounds(cfg.backgrounds)
        by_dep: dict[str, list[Trigger]] = {d: [] for d, _ in world.deployments}
        for t in triggers:
            by_dep[t.deployment].append(t)
        jobs = []
        st_of = {d: s.id for d, s in world.deployments}
        for dep, trs in by_dep.items():
            bg = str(bgs[zlib.crc32(f"{cfg.seed}:{dep}".encode()) % len(bgs)]) if bgs else None
            jobs.append((cfg, dep, st_of[dep], trs, str(out_dir), bg))
        images, anns = [], []
        if cfg.workers > 1:
            import multiprocessing as mp

            with mp.get_context("spawn").Pool(cfg.workers) as pool:
                results = list(progress(pool.imap(_render_deployment, jobs), total=len(jobs), description="deployments"))
        else:
            results = [_render_deployment(j) for j in progress(jobs, total=len(jobs), description="deployments")]
        for im, an in results:
            images += im
            anns += an
        self._write_deployments(out_dir)
        truth = self._truth(images, anns, triggers)
        truth_path = atomic_write_json(out_dir / "truth.json", truth, indent=1)
        from spotid.config import save_config

        save_config(cfg, out_dir / "synth_config.yaml")
        secs = time.perf_counter() - t0
        cpu = time.process_time() - c0
        leo = [a for a in anns if a["category_id"] == CATEGORY_ID["leopard"]]
        by_sp = {c["name"]: sum(1 for a in anns if a["category_id"] == c["id"]) for c in CATEGORIES if c["name"] != "empty"}
        return CardSummary(
            out_dir=str(out_dir), truth_path=str(truth_path), deployments_path=str(out_dir / "deployments.csv"),
            frames=len(images), empty_frames=sum(1 for a in anns if a["category_id"] == 0), leopard_boxes=len(leo),
            boxes_by_species=by_sp, individuals=len(world.population),
            individuals_photographed=len({a["individual_id"] for a in leo}), deployments=len(jobs),
            seconds=round(secs, 2), frames_per_second=round(len(images) / max(secs, 1e-9), 2),
            cpu_seconds=round(cpu, 2), frames_per_cpu_second=round(len(images) / max(cpu, 1e-9), 2))

    def _write_deployments(self, out_dir: Path) -> None:
        cfg, world = self.cfg, self.world
        tz = format_tz(world.tz)
        start = world.start.strftime("%Y-%m-%dT%H:%M:%S") + tz
        end = (world.start + timedelta(days=cfg.days) - timedelta(seconds=1)).strftime("%Y-%m-%dT%H:%M:%S") + tz
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=DEPLOYMENT_COLUMNS, lineterminator="\n")
        w.writeheader()
        for dep, st in world.deployments:
            heading = 0 if dep.endswith("A") or dep == st.id else 180
            w.writerow({"deploymentID": dep, "locationID": st.id, "locationName": f"Station {st.id}",
                        "latitude": f"{st.latitude:.6f}", "longitude": f"{st.longitude:.6f}", "coordinateUncertainty": 10,
                        "deploymentStart": start, "deploymentEnd": end, "setupBy": "spotid.synth",
                        "cameraID": serial_number(cfg.seed, dep), "cameraModel": f"{cfg.camera_make}-{cfg.camera_model}",
                        "cameraDelay": 0, "cameraHeight": "", "cameraDepth": "", "cameraTilt": "",
                        "cameraHeading": heading, "detectionDistance": "", "timestampIssues": "false",
                        "baitUse": "false", "featureType": "trailGame",
                        "habitat": "" if cfg.backgrounds else f"synthetic {station_habitat(cfg.seed, st.id)}",
                        "deploymentGroups": f"paired:{'true' if len(st.deployments) > 1 else 'false'}",
                        "deploymentTags": "synthetic", "deploymentComments": ""})
        atomic_write_text(out_dir / "deployments.csv", buf.getvalue())

    def _truth(self, images: list, anns: list, triggers: list[Trigger]) -> dict:
        cfg, world = self.cfg, self.world
        seen = {a.get("individual_id") for a in anns if a.get("individual_id")}
        visits = []
        for v in world.visits():
            deps = sorted({t.deployment for t in triggers if t.species == "leopard" and t.individual == v.individual
                           and t.station == v.station and (t.start - world.start).days == v.day})
            visits.append({"individual_id": v.individual, "station_id": v.station, "day": v.day,
                           "datetime": (world.start + timedelta(days=v.day, seconds=int(v.hour * 3600))).isoformat(),
                           "deployments": deps})
        world_params = asdict(cfg)
        world_params.pop("workers")      # how it was rendered, not what: same truth with any worker count
        world_params.update({"area_m": list(world.area), "detection_function": "halfnormal",
                             "sunrise_hour": SUNRISE, "sunset_hour": SUNSET})
        return {
            "info": {"version": "1.0", "description": "spotid synthetic camera-trap card (COCO Camera Traps)",
                     "year": world.start.year, "contributor": "spotid.synth", "date_created": cfg.start_date},
            "categories": CATEGORIES,
            "images": images,
            "annotations": anns,
            "population": [{"individual_id": i.id, "x": i.x, "y": i.y, "photographed": i.id in seen}
                           for i in world.population],
            "stations": [{"station_id": s.id, "x": s.x, "y": s.y, "latitude": s.latitude, "longitude": s.longitude,
                          "habitat": station_habitat(cfg.seed, s.id), "deployments": list(s.deployments)} for s in world.stations],
            "visits": visits,
            "faults": [f.to_dict(world.start, cfg.days) for f in world.faults],
            "world": world_params,
        }
