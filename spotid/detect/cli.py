"""CLI for the detect stage (see spotid/cli.py for the registration protocol).

``spotid detect (PATH | --db DB)``, ``spotid eval detect`` (the detector's and classifier's training
commands are in spotid/train/cli.py).
"""
from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Optional

import typer

log = logging.getLogger(__name__)

DB_HELP = "Catalog file (catalog mode: process media without detections)."


def _config(config: Optional[Path], **overrides):
    from spotid.config import resolve_config
    from spotid.detect.config import DetectConfig

    try:
        return resolve_config(DetectConfig, config or None, **overrides)
    except (ValueError, OSError) as e:
        raise typer.BadParameter(str(e)) from None


def _threads(n: int) -> None:
    from spotid.cliutil import set_threads

    set_threads(n)


def _make(cfg):
    from spotid.detect.detector import DetectorError, make_detector

    try:
        return make_detector(cfg)
    except DetectorError as e:
        raise typer.BadParameter(str(e), param_hint=e.option) from None


def detect(
    path: Optional[Path] = typer.Argument(None, help="Folder of frames (folder mode: writes MD batch JSON)."),
    db: Optional[Path] = typer.Option(None, "--db", help=DB_HELP),
    detector: Optional[str] = typer.Option(None, "--detector", help="builtin | megadetector | mdjson:FILE.json"),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="MD batch JSON to write (folder mode; default "
                                                                      "detections.json in the current folder, never in PATH)."),
    threshold: Optional[float] = typer.Option(None, "--threshold", help="Keep boxes with conf >= this (default: the model's conservative threshold)."),
    resume: bool = typer.Option(False, "--resume", help="Folder mode: continue from OUTPUT's checkpoint or finished file."),
    batch_size: Optional[int] = typer.Option(None, "--batch-size", help="Frames per network batch."),
    input_size: Optional[int] = typer.Option(None, "--input-size", help="Letterbox size (default: the model card's)."),
    model: Optional[Path] = typer.Option(None, "--model", help="Detector model folder (default: models/detector)."),
    classifier: Optional[Path] = typer.Option(None, "--classifier", help="Leopard/other classifier folder (default: models/classifier)."),
    megadetector_weights: Optional[str] = typer.Option(None, "--megadetector-weights", help="MegaDetector .pt file (megadetector backend)."),
    deployment: Optional[str] = typer.Option(None, "--deployment", help="Catalog mode: only this deployment."),
    threads: Optional[int] = typer.Option(None, "--threads", help="CPU threads (default: all cores; N to leave cores free)."),
    no_static_fp: bool = typer.Option(False, "--no-static-fp", help="Do not flag repeated static detections."),
    config: Optional[Path] = typer.Option(None, "--config", help="YAML with DetectConfig settings (configs/detect.yaml)."),
    json_out: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
) -> None:
    """Find animals, people and vehicles; label animals leopard/other. Folder -> MD JSON 1.6, or catalog rows.

    \b
    Examples:
      spotid detect --db season.db     # catalog mode, resumable
      spotid detect /media/card02      # writes ./detections.json (MD JSON 1.6)
    """
    if (path is None) == (db is None):
        raise typer.BadParameter("give either a folder PATH (folder mode) or --db CATALOG (catalog mode)")
    cfg = _config(config, detector=detector, threshold=threshold, batch_size=batch_size, input_size=input_size,
                  model=str(model) if model else None, classifier=str(classifier) if classifier else None,
                  megadetector_weights=megadetector_weights, threads=threads,
                  static_fp=False if no_static_fp else None)
    _threads(cfg.threads)
    if db is not None:   # a wrong --db or a catalog without media fails before the detector loads
        from spotid.cliutil import existing_catalog, require

        from spotid.detect.run import with_catalog_models

        with existing_catalog(db) as cat:
            require(cat, "detect", deployment)
            cfg = with_catalog_models(cat, cfg)   # `spotid models use classifier PATH --db` applies here
    det = _make(cfg)
    from spotid.detect.run import detect_catalog, detect_folder

    if path is not None:
        if not path.is_dir():
            raise typer.BadParameter(f"{path} is not a folder: pass the folder holding the frames", param_hint="PATH")
        out = output or Path.cwd() / "detections.json"   # not PATH: a card copy or archive, often read-only
        if not os.access(next(p for p in out.resolve().parents if p.exists()), os.W_OK):
            raise typer.BadParameter(f"cannot write {out.resolve()}: pass --output FILE in a folder you can write",
                                     param_hint="--output")
        s = detect_folder(det, path, out, cfg, resume=resume)
    else:
        from spotid.cliutil import existing_catalog

        if output is not None:
            log.warning("--output is ignored in catalog mode (results go to the catalog)")
        with existing_catalog(db) as cat:
            s = detect_catalog(det, cat, cfg, deployment=deployment)
    _report(s, json_out)


def _report(s, json_out: bool) -> None:
    from spotid.util import print_json

    if json_out:
        print_json(s.to_json())
        return
    from rich.console import Console

    c = Console()
    c.print(f"[bold]{s.frames}[/] frames in {s.seconds:.1f} s ({s.fps:.2f} frames/s) with {s.detector}"
            + (f", {s.skipped_done} already done" if s.skipped_done else ""))
    c.print(f"{s.animal_frames} frames with animals, {s.leopard_detections} leopard boxes, "
            f"{s.detections} boxes kept, {s.static_fp} flagged static")
    if s.video_frames:
        c.print(f"{s.video_frames} of the frames were sampled from videos")
    if s.ingest_failures:
        c.print(f"[yellow]{s.ingest_failures} files could not be ingested (broken photos, videos OpenCV cannot read) "
                "and were not analysed[/]: see `spotid media list --failures`")
    if s.failures:
        c.print(f"[yellow]{len(s.failures)} failures[/]")
        for f in s.failures[:20]:
            c.print(f"  {f['file']}: {f['reason']}")
    if s.output:
        c.print(f"wrote {Path(s.output).resolve()}", highlight=False, soft_wrap=True)   # a path to copy: unfolded


def eval_detect(
    images: Path = typer.Argument(..., help="Folder of the evaluation frames."),
    truth: Path = typer.Option(..., "--truth", help="VOC annotation folder | COCO Camera Traps JSON | MD batch JSON."),
    detector: Optional[str] = typer.Option(None, "--detector", help="builtin | megadetector | mdjson:FILE.json"),
    model: Optional[Path] = typer.Option(None, "--model", help="Detector model folder."),
    classifier: Optional[Path] = typer.Option(None, "--classifier", help="Leopard/other classifier folder."),
    threshold: Optional[float] = typer.Option(None, "--threshold", help="Operating threshold (default: the model's typical threshold)."),
    truth_threshold: float = typer.Option(0.2, "--truth-threshold", help="MD JSON truth: boxes >= this count."),
    input_size: Optional[int] = typer.Option(None, "--input-size"),
    threads: Optional[int] = typer.Option(None, "--threads"),
    json_out: bool = typer.Option(False, "--json", help="Print the metrics as JSON."),
) -> None:
    """Precision, recall, AP50 at the recommended threshold, leopard accuracy, image-level agreement.

    \b
    Example:
      spotid eval detect voc/test-images --truth voc/test-annotations
    """
    from dataclasses import replace

    from spotid.detect.evaluate import evaluate
    from spotid.detect.run import list_frames
    from spotid.detect.truth import read_truth
    from spotid.util import print_json

    if not images.is_dir():
        raise typer.BadParameter(f"{images} is not a folder of frames", param_hint="IMAGES")
    try:
        fmt, boxes = read_truth(truth, images, truth_threshold)
    except ValueError as e:
        raise typer.BadParameter(str(e), param_hint="--truth") from None
    cfg = _config(None, detector=detector, model=str(model) if model else None,
                  classifier=str(classifier) if classifier else None, input_size=input_size, threads=threads)
    cfg = replace(cfg, threshold=0.01, static_fp=False)  # keep low-confidence boxes for the PR curve
    _threads(cfg.threads)
    det = _make(cfg)
    frames = [p for p in list_frames(images) if p.relative_to(images).as_posix() in boxes
              or p.name in boxes]
    if not frames:
        raise typer.BadParameter(f"no frame of {images} is listed in {truth}: check the paths", param_hint="--truth")
    res = {}
    for r in det(frames, images):
        res[r.file if r.file in boxes else Path(r.file).name] = r
    thr = threshold if threshold is not None else det.typical_threshold
    ev = evaluate(res, boxes, threshold=thr)
    out = {"truth_format": fmt, "detector": det.version, **ev.to_json()}
    if json_out:
        print_json(out)
        return
    from rich.console import Console

    c = Console()
    c.print(f"{ev.images} frames, {ev.truth_boxes} truth boxes ({fmt}); {det.version} at threshold {thr:g}")
    c.print(f"precision {ev.precision:.3f}  recall {ev.recall:.3f}  AP50 {ev.ap50:.3f}  (TP {ev.tp} FP {ev.fp} FN {ev.fn})")
    if ev.leopard_accuracy is not None:
        c.print(f"leopard boxes labelled leopard: {ev.leopard_classified_leopard}/{ev.leopard_boxes_found} "
                f"= {ev.leopard_accuracy:.3f}")
    if ev.other_accuracy is not None:
        c.print(f"other animal boxes labelled other: {ev.other_classified_other}/{ev.other_boxes_found} "
                f"= {ev.other_accuracy:.3f}")
    c.print(f"image-level animal/empty agreement: {ev.image_agreement}/{ev.images}")


commands: dict = {"detect": detect}
groups: dict = {}
eval_commands: dict = {"detect": eval_detect}
