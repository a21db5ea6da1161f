"""CLI for the detect stage (see spotid/cli.py for the registration protocol).

``spotid detect (PATH | --db DB)``, ``spotid eval detect``, ``spotid train detector``,
``spotid train classifier``.
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
    import torch

    torch.set_num_threads(n if n > 0 else (os.cpu_count() or 1))


def _make(cfg):
    from spotid.detect.detector import DetectorError, make_detector

    try:
        return make_detector(cfg)
    except DetectorError as e:
        raise typer.BadParameter(str(e), param_hint="--detector") from None


def detect(
    path: Optional[Path] = typer.Argument(None, help="Folder of frames (folder mode: writes MD batch JSON)."),
    db: Optional[Path] = typer.Option(None, "--db", help=DB_HELP),
    detector: Optional[str] = typer.Option(None, "--detector", help="builtin | megadetector | mdjson:FILE.json"),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="MD batch JSON to write (folder mode; default PATH/detections.json)."),
    threshold: Optional[float] = typer.Option(None, "--threshold", help="Keep boxes with conf >= this (default: the model's conservative threshold)."),
    resume: bool = typer.Option(False, "--resume", help="Folder mode: continue from OUTPUT's checkpoint or finished file."),
    batch_size: Optional[int] = typer.Option(None, "--batch-size", help="Frames per network batch."),
    input_size: Optional[int] = typer.Option(None, "--input-size", help="Letterbox size (default: the model card's)."),
    model: Optional[Path] = typer.Option(None, "--model", help="Detector model folder (default: models/detector)."),
    classifier: Optional[Path] = typer.Option(None, "--classifier", help="Leopard/other classifier folder (default: models/classifier)."),
    megadetector_weights: Optional[str] = typer.Option(None, "--megadetector-weights", help="MegaDetector .pt file (megadetector backend)."),
    deployment: Optional[str] = typer.Option(None, "--deployment", help="Catalog mode: only this deployment."),
    threads: Optional[int] = typer.Option(None, "--threads", help="Torch threads (default: all cores)."),
    no_static_fp: bool = typer.Option(False, "--no-static-fp", help="Do not flag repeated static detections."),
    config: Optional[Path] = typer.Option(None, "--config", help="YAML with DetectConfig settings (configs/detect.yaml)."),
    json_out: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
) -> None:
    """Find animals, people and vehicles; label animals leopard/other. Folder -> MD JSON 1.6, or catalog rows."""
    if (path is None) == (db is None):
        raise typer.BadParameter("give either a folder PATH (folder mode) or --db CATALOG (catalog mode)")
    cfg = _config(config, detector=detector, threshold=threshold, batch_size=batch_size, input_size=input_size,
                  model=str(model) if model else None, classifier=str(classifier) if classifier else None,
                  megadetector_weights=megadetector_weights, threads=threads,
                  static_fp=False if no_static_fp else None)
    _threads(cfg.threads)
    det = _make(cfg)
    from spotid.detect.run import detect_catalog, detect_folder

    if path is not None:
        if not path.is_dir():
            raise typer.BadParameter(f"{path} is not a folder: pass the folder holding the frames", param_hint="PATH")
        out = output or (path / "detections.json")
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
    if s.failures:
        c.print(f"[yellow]{len(s.failures)} failures[/]")
        for f in s.failures[:20]:
            c.print(f"  {f['file']}: {f['reason']}")
    if s.output:
        c.print(f"wrote {s.output}")


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
    """Precision, recall, AP50 at the recommended threshold, leopard accuracy, image-level agreement."""
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


def train_detector(
    out: Path = typer.Option(Path("models/detector"), "--out", help="Model folder to write (weights + card)."),
    part: str = typer.Option("all", "--part", help="detector | classifier | all | eval (measure and write metrics into the cards); "
                                                   "classifier = the previous CropNet recipe (the shipped cascade "
                                                   "classifier comes from `spotid train classifier`)"),
    shared: Path = typer.Option(Path("../shared/data"), "--shared", help="Root of the real data (../shared/data)."),
    synth: list[Path] = typer.Option([], "--synth", help="Synthetic card folder(s) with truth.json (COCO CT); repeatable."),
    classifier_out: Path = typer.Option(Path("models/classifier"), "--classifier-out", help="Classifier folder to write."),
    epochs: Optional[int] = typer.Option(None, "--epochs"),
    seed: int = typer.Option(0, "--seed"),
    init: Optional[Path] = typer.Option(None, "--init", help="Initial detector weights (zamba wheel, .pth or model folder)."),
    holdout: list[str] = typer.Option(["southwest"], "--holdout", help="Real sources kept out of classifier training."),
    sprite_frames: Optional[int] = typer.Option(None, "--sprite-frames", help="Detector: real frames with a rendered animal pasted in (default 0)."),
    unfreeze: list[str] = typer.Option([], "--unfreeze", help="Detector: backbone stage(s) to train too (dark5, dark4...)."),
    voc_repeat: Optional[int] = typer.Option(None, "--voc-repeat", help="Detector: oversample amur-leopard-voc train (default 1)."),
    max_synth_frames: Optional[int] = typer.Option(None, "--max-synth-frames", help="Detector: frames taken per synthetic card (default 160)."),
    lr: Optional[float] = typer.Option(None, "--lr", help="Detector: peak learning rate (default 0.004)."),
    wise_alpha: Optional[float] = typer.Option(None, "--wise-alpha", help="Detector: ship alpha*fine-tuned + (1-alpha)*initial weights (WiSE-FT; default 1)."),
    threads: int = typer.Option(1, "--threads", help="Torch threads (1 on a shared machine)."),
    resume: bool = typer.Option(True, "--resume/--no-resume", help="Continue from the checkpoint in OUT."),
    json_out: bool = typer.Option(False, "--json"),
) -> None:
    """Reproducible CPU recipe: fine-tune YOLOX-tiny and/or train the leopard/other crop classifier."""
    import torch

    from spotid.util import print_json

    torch.set_num_threads(threads)
    if part not in {"detector", "classifier", "all", "eval"}:
        raise typer.BadParameter("use detector, classifier, all or eval", param_hint="--part")
    if not shared.is_dir():
        raise typer.BadParameter(f"no data at {shared}: pass --shared /path/to/shared/data", param_hint="--shared")
    summary = {}
    if part in {"classifier", "all"}:
        from spotid.train.detector import export_classifier

        summary["classifier"] = export_classifier(classifier_out, shared=shared, synth=synth, epochs=epochs,
                                                  seed=seed, holdout=tuple(holdout), resume=resume)
    if part in {"detector", "all"}:
        from spotid.train.detector import finetune_detector

        summary["detector"] = finetune_detector(out, shared=shared, synth=synth, epochs=epochs, seed=seed,
                                                init=init, resume=resume, sprite_frames=sprite_frames,
                                                unfreeze=tuple(unfreeze) or None, voc_repeat=voc_repeat,
                                                max_synth_frames=max_synth_frames, lr=lr, wise_alpha=wise_alpha)
    if part in {"eval", "all"}:
        from spotid.train.detector import evaluate_models, update_card_metrics

        m = evaluate_models(out, classifier_out, shared, tuple(synth))
        update_card_metrics(out, m)
        update_card_metrics(classifier_out, {k: {kk: v.get(kk) for kk in ("leopard_boxes_found", "leopard_classified_leopard",
                                                                            "leopard_accuracy", "other_boxes_found",
                                                                            "other_classified_other", "other_accuracy")}
                                             for k, v in m.items() if isinstance(v, dict)})
        summary["eval"] = {"folder": str(out), "version": "metrics written", **m}
    if json_out:
        print_json(summary)
    else:
        for k, v in summary.items():
            typer.echo(f"{k}: wrote {v.get('folder')} ({v.get('version')})")


def train_classifier(
    out: Path = typer.Option(Path("models/classifier"), "--out", help="Model folder to write (head + card)."),
    shared: Path = typer.Option(Path("../shared/data"), "--shared", help="Root of the real data (../shared/data)."),
    synth: list[Path] = typer.Option([], "--synth", help="Synthetic card folder(s) with truth.json; repeatable."),
    holdout: list[str] = typer.Option(["megadetector-test"], "--holdout",
                                      help="Source(s) kept out of training: megadetector-test | southwest | voc | "
                                           "camtrapR | nyala | sprites."),
    cache: Path = typer.Option(Path("/tmp/spotid-classifier-features"), "--cache", help="Feature cache folder."),
    weight_decay: float = typer.Option(1e-2, "--weight-decay", help="L2 on the standardised head weights."),
    no_prior: bool = typer.Option(False, "--no-prior", help="Leave out the ImageNet spotted-cat feature."),
    detector_threshold: float = typer.Option(0.1, "--detector-threshold", help="Cascade: detector boxes kept and classified."),
    drop_below_conf: float = typer.Option(0.25, "--drop-below-conf",
                                          help="Cascade: not_animal boxes are dropped only below this detector conf."),
    typical_threshold: Optional[float] = typer.Option(None, "--typical-threshold",
                                                      help="Cascade: frame-level animal threshold to record in the card."),
    metrics: Optional[Path] = typer.Option(None, "--metrics", help="JSON of held-out figures to record in the card."),
    seed: int = typer.Option(0, "--seed"),
    threads: int = typer.Option(1, "--threads", help="Torch threads (1 on a shared machine)."),
    json_out: bool = typer.Option(False, "--json"),
) -> None:
    """Fit the leopard / other / not_animal head on the frozen ImageNet backbone (cascade after the detector)."""
    import json

    import torch

    from spotid.train.classifier import CascadeTrainConfig, export_cascade
    from spotid.util import print_json

    torch.set_num_threads(threads)
    if not shared.is_dir():
        raise typer.BadParameter(f"no data at {shared}: pass --shared /path/to/shared/data", param_hint="--shared")
    cfg = CascadeTrainConfig(shared=str(shared), cache=str(cache), synth=tuple(str(s) for s in synth),
                             holdout=tuple(holdout), weight_decay=weight_decay, prior=not no_prior,
                             detector_threshold=detector_threshold, drop_below_conf=drop_below_conf, seed=seed)
    m = json.loads(metrics.read_text()) if metrics else None
    try:
        summary = export_cascade(cfg, out, metrics=m, typical_threshold=typical_threshold)
    except (FileNotFoundError, ValueError, RuntimeError) as e:
        raise typer.BadParameter(str(e)) from None
    if json_out:
        print_json(summary)
    else:
        typer.echo(f"wrote {summary['folder']}: trained on {', '.join(summary['sources'])}; crops {summary['counts']}")


commands: dict = {"detect": detect}
groups: dict = {}
eval_commands: dict = {"detect": eval_detect}
train_commands: dict = {"detector": train_detector, "classifier": train_classifier}
