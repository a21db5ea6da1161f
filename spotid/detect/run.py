"""Running a detector over a folder (MD batch JSON out) or over the catalog (rows out), resumably.

Folder mode: every image/video under the folder, in sorted order. A video is sampled into still frames
(spotid.ingest.video.FrameSampler with its default settings) in a temporary folder; each frame is one
``images`` entry named ``<video path>/frame<NNNNNN>.jpg``, MegaDetector's own name for video frames, and a
video OpenCV cannot read is one entry with its ``failure``. Results are checkpointed to
``<output>.checkpoint.json`` (an MD batch file of the frames done so far) every
``checkpoint_every`` frames; ``resume=True`` reuses the checkpoint, or a finished ``<output>``, and
runs only the frames missing from it. The output is written atomically at the end, with the
resolved configuration in ``<output>.config.yaml``.

Catalog mode: media without a ``detection_status`` row, in id order; each chunk of ``commit_every``
frames is written (detections + detection_status) in ONE transaction, so a killed run loses at most
the chunk in flight and a re-run does each frame exactly once. A video is analysed through the still
frames ingest sampled from it (media rows with ``parent_id``), never as a file of its own; a video
without frames (ingested by a spotid that did not sample videos) is reported as a failure with the fix.
"""
from __future__ import annotations

import json
import logging
import tempfile
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime
from itertools import chain
from pathlib import Path
from typing import Iterator

from spotid.catalog.tables import detections, media
from spotid.config import save_config
from spotid.detect.config import DetectConfig
from spotid.detect.detector import Detector
from spotid.detect.mdjson import STATIC_FP_KEY, MDJsonError, parse_batch, to_dict
from spotid.detect.static_fp import Box, find_static
from spotid.types import ImageResult
from spotid.util import IMAGE_EXTS, VIDEO_EXTS, atomic_write_json, atomic_write_text, batched, progress

log = logging.getLogger(__name__)


@dataclass
class DetectSummary:
    frames: int = 0                 # frames processed in this run
    skipped_done: int = 0           # frames already done (resume / catalog status)
    failures: list = field(default_factory=list)   # [{"file", "reason"}]
    detections: int = 0             # boxes >= threshold written
    animal_frames: int = 0          # frames with an animal box >= the typical threshold
    leopard_detections: int = 0     # animal boxes >= typical threshold labelled leopard
    static_fp: int = 0              # boxes flagged as repeated static detections
    video_frames: int = 0           # frames processed that were sampled from videos (catalog mode)
    ingest_failures: int = 0        # files of these deployments that ingest could not read (never analysed)
    seconds: float = 0.0
    output: str | None = None
    detector: str = ""

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0

    def to_json(self) -> dict:
        d = asdict(self)
        d["frames_per_second"] = round(self.fps, 3)
        d["seconds"] = round(self.seconds, 3)
        return d


def list_frames(folder: Path) -> list[Path]:
    exts = IMAGE_EXTS | VIDEO_EXTS
    return sorted((p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in exts
                   and not p.name.startswith(".")), key=lambda p: p.relative_to(folder).as_posix())


def _video_results(det: Detector, videos: list[Path], folder: Path, tmp: Path) -> Iterator[ImageResult]:
    """Folder mode: each video sampled into ``tmp/<its relative path>/frame<NNNNNN>.jpg`` and run through
    ``det`` (files relative to ``tmp``: MegaDetector's frame names), or one failure when unreadable."""
    from spotid.ingest.video import FrameSampler, save_frames

    sampler = FrameSampler()
    for v in videos:
        rel = v.relative_to(folder).as_posix()
        sample = sampler(v)
        if sample.failure:
            yield ImageResult(rel, (), sample.failure)
            continue
        saved = save_frames(sample, tmp / rel, rel)
        yield from det([f.path for f in saved], tmp)


def _is_video_frame(file: str) -> bool:
    head, _, name = file.rpartition("/")
    return name.startswith("frame") and Path(head).suffix.lower() in VIDEO_EXTS


def _count(s: DetectSummary, r: ImageResult, typical: float) -> None:
    s.frames += 1
    if r.failure:
        s.failures.append({"file": r.file, "reason": r.failure})
        return
    s.detections += len(r.detections)
    animals = [d for d in r.detections if d.category == 1 and d.conf >= typical]
    s.animal_frames += bool(animals)
    s.leopard_detections += sum(d.label == "leopard" for d in animals)


def _md_kwargs(det: Detector, cfg: DetectConfig) -> dict:
    return {"detector": det.version, "typical_threshold": det.typical_threshold,
            "conservative_threshold": det.conservative_threshold,
            "info_extra": {"spotid_detector_backend": cfg.detector}}


def detect_folder(det: Detector, folder: str | Path, output: str | Path, cfg: DetectConfig, *,
                  resume: bool = False) -> DetectSummary:
    folder, output = Path(folder), Path(output)
    if not folder.is_dir():
        raise FileNotFoundError(f"no folder {folder}: pass the SD-card folder to scan, or --db for catalog mode")
    ckpt = output.with_name(output.name + ".checkpoint.json")
    done: dict[str, ImageResult] = {}
    if resume:
        for src in (ckpt, output):
            if src.exists():
                try:
                    done = {im.file: im for im in parse_batch(json.loads(src.read_text()), source=str(src)).images}
                    log.info("resuming from %s: %d frames already done", src, len(done))
                    break
                except (MDJsonError, json.JSONDecodeError) as e:
                    log.warning("cannot resume from %s (%s): starting over", src, e)
    elif ckpt.exists():
        log.warning("%s exists from an interrupted run; starting over (pass --resume to continue it)", ckpt)
    save_config(cfg, output.with_name(output.name + ".config.yaml"))
    frames = list_frames(folder)
    keys = {p.relative_to(folder).as_posix() for p in frames}
    done_videos = {f.rpartition("/")[0] for f in done if _is_video_frame(f)}
    todo = [p for p in frames if p.relative_to(folder).as_posix() not in done.keys() | done_videos]
    s = DetectSummary(skipped_done=len(frames) - len(todo), output=str(output), detector=det.version)
    results: dict[str, ImageResult] = dict(done)
    t0 = time.perf_counter()
    since = 0
    videos = [p for p in todo if p.suffix.lower() in VIDEO_EXTS]
    with tempfile.TemporaryDirectory(prefix="spotid-frames-") as tmp:
        stream = chain(det([p for p in todo if p.suffix.lower() not in VIDEO_EXTS], folder),
                       _video_results(det, videos, folder, Path(tmp)))
        for r in progress(stream, total=len(todo), description="detect"):
            results[r.file] = r
            _count(s, r, det.typical_threshold)
            s.video_frames += _is_video_frame(r.file)
            since += 1
            if since >= cfg.checkpoint_every:
                atomic_write_json(ckpt, to_dict(results.values(), **_md_kwargs(det, cfg)), indent=None)
                since = 0
    s.seconds = time.perf_counter() - t0
    # sorted by path, as list_frames: a video's frames follow the video's place
    ordered = sorted((r for f, r in results.items() if f in keys or (_is_video_frame(f) and f.rpartition("/")[0] in keys)),
                     key=lambda r: r.file)
    if cfg.static_fp:
        ordered, s.static_fp = _suppress_folder(ordered, folder, cfg)
    atomic_write_text(output, json.dumps(to_dict(ordered, **_md_kwargs(det, cfg)), indent=1) + "\n")
    if ckpt.exists():
        ckpt.unlink()
    return s


def _frame_time(path: Path) -> datetime | None:
    """EXIF DateTimeOriginal (Exif sub-IFD), else None."""
    from PIL import Image

    try:
        with Image.open(path) as im:
            exif = im.getexif()
            sub = exif.get_ifd(0x8769)
            v = sub.get(0x9003) or sub.get(0x9004) or exif.get(0x0132)
        return datetime.strptime(str(v).strip("\x00 "), "%Y:%m:%d %H:%M:%S") if v else None
    except Exception:  # noqa: BLE001 -- no usable time is fine here
        return None


def _suppress_folder(images: list[ImageResult], folder: Path, cfg: DetectConfig) -> tuple[list[ImageResult], int]:
    """Folder mode: each sub-folder is one camera; bursts from EXIF time (60 s gap) or file mtime."""
    by_dir: dict[str, list[int]] = {}
    for i, im in enumerate(images):
        if not im.failure and im.detections and not _is_video_frame(im.file):  # a frame has no file here
            by_dir.setdefault(im.file.rsplit("/", 1)[0] if "/" in im.file else "", []).append(i)
    flagged: set = set()
    for idx in by_dir.values():
        if len(idx) < cfg.static_fp_min_frames:
            continue
        times = {}
        for i in idx:
            p = folder / images[i].file
            times[i] = _frame_time(p) or datetime.fromtimestamp(p.stat().st_mtime)
        order = sorted(idx, key=lambda i: times[i])
        seq, last, seq_of = 0, None, {}
        for i in order:
            if last is not None and (times[i] - last).total_seconds() > 60:
                seq += 1
            seq_of[i], last = seq, times[i]
        boxes = [Box((i, j), i, d.bbox, d.conf, seq_of[i], times[i])
                 for i in idx for j, d in enumerate(images[i].detections)]
        flagged |= find_static(boxes, iou_thresh=cfg.static_fp_iou, min_frames=cfg.static_fp_min_frames,
                               min_sequences=cfg.static_fp_min_sequences, min_hours=cfg.static_fp_min_hours,
                               min_conf=cfg.static_fp_min_conf)
    if not flagged:
        return images, 0
    out = []
    for i, im in enumerate(images):
        keep = [d for j, d in enumerate(im.detections) if (i, j) not in flagged]
        gone = [d for j, d in enumerate(im.detections) if (i, j) in flagged]
        if gone:
            extra = dict(im.extra)
            extra[STATIC_FP_KEY] = list(extra.get(STATIC_FP_KEY, [])) + gone
            im = ImageResult(im.file, tuple(keep), im.failure, max((d.conf for d in keep), default=0.0), extra)
        out.append(im)
    return out, len(flagged)


# -- catalog mode ----------------------------------------------------------------------------------
def with_catalog_models(cat, cfg: DetectConfig) -> DetectConfig:
    """``cfg`` with the catalog's chosen classifier (setting ``model.classifier``, ``spotid models use``)
    when ``cfg`` names none: a classifier retrained from this catalog's reviews then labels its new frames."""
    import dataclasses

    chosen = cat.get_setting("model.classifier")
    if cfg.classifier is None and cfg.use_classifier and chosen:
        log.info("leopard/other classifier chosen for this catalog: %s", chosen)
        return dataclasses.replace(cfg, classifier=chosen)
    return cfg


def pending_media(cat, deployment: str | None = None) -> list:
    """Media rows detect still has to process: photos and video frames (videos go through their frames),
    by id (:func:`spotid.catalog.tables.media.awaiting_detection`)."""
    return media.awaiting_detection(cat, deployment)


def detect_catalog(det: Detector, cat, cfg: DetectConfig, *, deployment: str | None = None) -> DetectSummary:
    from spotid.catalog import now_iso

    rows = pending_media(cat, deployment)
    total = media.count_frames(cat, deployment)
    s = DetectSummary(skipped_done=total - len(rows), detector=det.version,
                      video_frames=sum(r["parent_id"] is not None for r in rows),
                      ingest_failures=media.count_ingest_failures(cat, deployment))
    for rel_path in media.videos_without_frames(cat, deployment):
        s.failures.append({"file": rel_path, "reason": "video without sampled frames (ingested by an older "
                           "spotid): re-run `spotid ingest` on its card to sample it, then detect again"})
    t0 = time.perf_counter()
    with cat.run("detect", cfg, det.version) as run_id:
        # identify founds new individuals only on boxes the detector calls confident
        # (the detector's own typical threshold, not a cascade's lower frame-level one)
        cat.set_setting("detect.typical_threshold", str(getattr(det, "found_threshold", det.typical_threshold)))
        # ... and, where spotid's classifier labelled the boxes, that its card's P(leopard) floor is reached
        detections.record_leopard_floor(cat, det.version, getattr(det, "found_min_leopard_p", None))
        by_path = {Path(r["path"]).as_posix(): r for r in rows}
        missing = [r for r in rows if not Path(r["path"]).exists()]
        present = [r for r in rows if Path(r["path"]).exists()]
        stream = det([Path(r["path"]) for r in present], None)
        bar = progress(stream, total=len(present), description="detect")
        if missing:
            _commit(cat, [(r["id"], ImageResult(r["rel_path"], (), f"file not found: {r['path']}"))
                          for r in missing], det.version, run_id, now_iso(), s, det.typical_threshold)
        for chunk in batched(bar, cfg.commit_every):
            pairs = [(by_path[Path(r.file).as_posix()]["id"], r) for r in chunk]
            _commit(cat, pairs, det.version, run_id, now_iso(), s, det.typical_threshold)
        s.seconds = time.perf_counter() - t0
        if cfg.static_fp:
            s.static_fp = flag_static_catalog(cat, cfg, deployment)
    return s


def _commit(cat, pairs, version: str, run_id: int, when: str, s: DetectSummary, typical: float) -> None:
    with cat.transaction() as conn:
        for media_id, r in pairs:
            if not detections.insert_status(conn, media_id, run_id=run_id, detector=version, failure=r.failure,
                                            processed_at=when):
                continue  # another run got there first: never duplicate detections
            for d in r.detections:
                x, y, w, h = d.bbox
                detections.insert(conn, media_id, run_id=run_id, detector=version, category=d.category, conf=d.conf,
                                  x=x, y=y, w=w, h=h, label=d.label, label_conf=d.label_conf,
                                  classifications_json=json.dumps([list(c) for c in d.classifications])
                                  if d.classifications else None)
            _count(s, r, typical)


def flag_static_catalog(cat, cfg: DetectConfig, deployment: str | None = None) -> int:
    """Re-evaluate repeat-detection flags for every deployment touched (all its detections, all runs).

    Frames whose time is the file's copy time (``media.time_source`` 'mtime': no EXIF time) are left out: their times and bursts say nothing about the camera, and unrelated photos dumped on one card
    would otherwise look like one box repeated for hours.
    """
    deps = [deployment] if deployment else media.deployment_ids(cat)
    n = 0
    for dep in deps:
        rows = detections.boxes_of_deployment(cat, dep)
        boxes = []
        for r in rows:
            if r["time_source"] == "mtime":
                continue
            t = None
            if r["timestamp"]:
                try:
                    t = datetime.fromisoformat(r["timestamp"])
                except ValueError:
                    t = None
            boxes.append(Box(r["id"], r["media_id"], (r["x"], r["y"], r["w"], r["h"]), r["conf"], r["sequence_id"], t))
        flagged = find_static(boxes, iou_thresh=cfg.static_fp_iou, min_frames=cfg.static_fp_min_frames,
                              min_sequences=cfg.static_fp_min_sequences, min_hours=cfg.static_fp_min_hours,
                              min_conf=cfg.static_fp_min_conf)
        with cat.transaction() as conn:
            detections.set_static_fp(conn, [r["id"] for r in rows], False)
            detections.set_static_fp(conn, sorted(flagged), True)
        n += len(flagged)
    return n
