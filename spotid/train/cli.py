"""CLI for the train stage (see spotid/cli.py for the registration protocol).

``spotid train embedder``, ``spotid train flank`` and ``spotid train foreground``. Heavy imports stay inside the functions.
"""
from __future__ import annotations

import dataclasses
import logging
import shlex
import sys
from pathlib import Path
from typing import List, Optional

import typer

log = logging.getLogger(__name__)

commands: dict = {}
groups: dict = {}


def _command_line() -> str:
    return "spotid " + " ".join(shlex.quote(a) for a in sys.argv[1:]) if sys.argv[1:2] == ["train"] else ""


def _print_summary(summary: dict, as_json: bool) -> None:
    from spotid.train.common import format_metrics   # here: torch stays out of `spotid --help`
    from spotid.util import print_json

    if as_json:
        print_json(summary)
        return

    typer.echo(f"model written: {summary['model']}  ({summary['version']})")
    for key, label in (("before", "held-out before"), ("after", "held-out after "),
                       ("full", "full set (partly trained on)")):
        if key in summary:
            typer.echo(f"  {label}: {format_metrics(summary[key])}")
    if "accuracy" in summary:
        typer.echo(f"  held-out accuracy: {summary['accuracy']}")
    if "iou" in (summary.get("heldout") or {}):
        h = summary["heldout"]
        typer.echo(f"  held-out individuals: IoU {h['iou']:.3f}, pixel accuracy {h['pixel_accuracy']:.3f}, "
                   f"fallback {h['fallback_rate']:.3f} ({h['crops']} crops)")


def _run(train, as_json: bool) -> None:
    """Run a training function and print its summary; Ctrl-C leaves a resumable checkpoint (exit 130),
    missing or bad data is a usage error naming the fix."""
    from spotid.train.embedder import Interrupted

    try:
        summary = train()
    except Interrupted as e:
        typer.echo(str(e), err=True)
        raise typer.Exit(130)
    except (FileNotFoundError, ValueError) as e:
        raise typer.BadParameter(str(e))
    _print_summary(summary, as_json)


def _train_config(cls, config: Optional[Path], **overrides):
    """``cls`` from ``--config`` (else its ``configs/<name>.yaml``, else the dataclass defaults) with the
    CLI options that were given; a bad value is a usage error."""
    from spotid.config import default_yaml, load_config

    cfg_path = config or default_yaml(cls)
    try:
        return load_config(cls, cfg_path if Path(cfg_path).exists() else None, **overrides)
    except ValueError as e:
        raise typer.BadParameter(str(e)) from None


def train_embedder_cmd(
    data: Optional[List[Path]] = typer.Option(None, "--data", help="Folder-per-individual directory (repeatable). "
                                              "Flank from a left/right sub-folder, the file name, or the flank model."),
    db: Optional[Path] = typer.Option(None, "--db", help="Also train on this catalog's confirmed sightings."),
    epochs: Optional[int] = typer.Option(None, "--epochs", min=1),
    out: Path = typer.Option(Path("models/embedder-finetuned"), "--out", help="Model folder to write."),
    resume: bool = typer.Option(False, "--resume", help="Continue from OUT/checkpoints/last.pt."),
    seed: Optional[int] = typer.Option(None, "--seed"),
    model: Optional[Path] = typer.Option(None, "--model", help="Parent embedder to fine-tune (default: active)."),
    from_scratch: bool = typer.Option(False, "--from-scratch", help="Random init instead of fine-tuning."),
    arch: Optional[str] = typer.Option(None, "--arch", help="Backbone for --from-scratch (resnet18, mobilenet_v3_small, ...)."),
    loss: Optional[str] = typer.Option(None, "--loss", help="supcon (default) or subcenter_arcface; efficientnet_lite0 also arcface, triplet, ms."),
    batch_size: Optional[int] = typer.Option(None, "--batch-size", min=2),
    lr: Optional[float] = typer.Option(None, "--lr"),
    max_steps: Optional[int] = typer.Option(None, "--max-steps", help="Cap steps per epoch (quick runs)."),
    val_fraction: Optional[float] = typer.Option(None, "--val-fraction", min=0.0, max=0.9),
    threads: Optional[int] = typer.Option(None, "--threads", min=1),
    config: Optional[Path] = typer.Option(None, "--config", help="YAML with TrainEmbedderConfig settings."),
    keep_checkpoints: bool = typer.Option(False, "--keep-checkpoints"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Train or fine-tune the rosette embedder (metric learning), holding out individuals for before/after
    top-1 and mAP. Fine-tunes the active embedder unless --from-scratch.

    \b
    Examples:
      spotid train embedder --db season.db --out my-embedder
      spotid train embedder --data reid/nyala-train --out my-embedder --resume
    """
    from spotid.train.embedder import TrainEmbedderConfig, train_embedder

    if not data and db is None:
        raise typer.BadParameter("nothing to train on: pass --data DIR (one folder per individual) and/or --db DB")
    if db is not None:
        from spotid.cliutil import existing_catalog

        existing_catalog(db).close()   # missing or not a spotid catalog: the usage error that names the fix
    cfg = _train_config(TrainEmbedderConfig, config, epochs=epochs, seed=seed, arch=arch, loss=loss,
                        batch_size=batch_size, lr=lr, max_steps_per_epoch=max_steps, val_fraction=val_fraction,
                        threads=threads, keep_checkpoints=keep_checkpoints or None)
    _run(lambda: train_embedder(cfg, data=data or [], out=out, db=db, parent=model, from_scratch=from_scratch,
                                resume=resume, command=_command_line()), as_json)


def train_flank_cmd(
    data: Optional[List[Path]] = typer.Option(None, "--data", help="Folder-per-individual directory with flank "
                                              "sub-folders (left/right/front/back) or left/right in file names; "
                                              "hand-labelled boxes cut by `spotid train cut-boxes` (train split only)."),
    out: Path = typer.Option(Path("models/flank-trained"), "--out"),
    real: Optional[List[str]] = typer.Option(None, "--real", help="Name of a --data folder of real photos "
                                             "(repeatable): their cross-validated figures choose the model."),
    cache_dir: Optional[Path] = typer.Option(None, "--cache-dir", help="Cache backbone features here."),
    db: Optional[Path] = typer.Option(None, "--db", help="Also train on this catalog's reviewed flanks (confirmed "
                                      "sightings), a real source named 'review' whose cross-validated figures count."),
    seed: Optional[int] = typer.Option(None, "--seed"),
    threads: Optional[int] = typer.Option(None, "--threads", min=1),
    config: Optional[Path] = typer.Option(None, "--config"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Train the flank/viewpoint classifier (left/right/front/back; mirrored left = right): a head on the
    frozen ImageNet backbone, chosen by cross-validation on the real sources.

    \b
    Examples:
      spotid train flank --data crops/ --real crops --out my-flank
      spotid train flank --db season.db --out season-flank
    """
    import tempfile

    from spotid.train.boxes import review_source
    from spotid.train.flank import TrainFlankConfig, train_flank

    if not data and db is None:
        raise typer.BadParameter("pass --data DIR (one folder per individual, flank sub-folders or names) and/or --db")
    cfg = _train_config(TrainFlankConfig, config, seed=seed, threads=threads,
                        real_sources=tuple(real) if real else None,
                        cache_dir=str(cache_dir) if cache_dir else None)
    data = list(data or [])
    with tempfile.TemporaryDirectory(prefix="spotid-review-flank-") as work:
        if db is not None:
            from spotid.cliutil import existing_catalog

            existing_catalog(db).close()
            try:
                data.append(review_source(db, work))
            except ValueError as e:
                raise typer.BadParameter(str(e), param_hint="--db") from None
            cfg = dataclasses.replace(cfg, real_sources=tuple(dict.fromkeys((*cfg.real_sources, "review"))))
        _run(lambda: train_flank(cfg, data=data, out=out, command=_command_line()), as_json)


def cut_boxes_cmd(
    labels: Path = typer.Argument(..., help="CSV: file,split,box,xmin,ymin,xmax,ymax,flank[,individual][,note] "
                                  "(pixel boxes on whole photos), e.g. models/flank/amur_leopard_voc_flanks.csv."),
    images_root: Path = typer.Option(..., "--images-root", help="Folder holding the photos (or <split>-images/ "
                                     "sub-folders, as in Pascal VOC sets)."),
    out: Path = typer.Option(..., "--out", help="Folder to write OUT/<individual>/<flank>/*.jpg into."),
    split: Optional[str] = typer.Option(None, "--split", help="Only the rows of this split (train, test, ...)."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Cut hand-labelled boxes into flank-folder crops, padded as identify pads detections, for
    `spotid train flank --data OUT` and its evaluation.

    \b
    Example:
      spotid train cut-boxes models/flank/amur_leopard_voc_flanks.csv \\
          --images-root voc/ --split train --out voc_train/
    """
    from spotid.train.boxes import cut_labelled_boxes
    from spotid.util import print_json

    if not labels.exists():
        raise typer.BadParameter(f"no labels file {labels}")
    if not images_root.is_dir():
        raise typer.BadParameter(f"no folder {images_root}: pass the folder that holds the labelled photos")
    try:
        res = cut_labelled_boxes(labels, images_root, out, split=split)
    except ValueError as e:
        raise typer.BadParameter(str(e))
    summary = {"written": res.written, "by_flank": res.by_flank, "skipped_unknown": res.skipped_unknown,
               "failures": [{"file": f, "reason": r} for f, r in res.failures], "out": str(out)}
    if as_json:
        print_json(summary)
    else:
        flanks = ", ".join(f"{k} {v}" for k, v in sorted(res.by_flank.items()))
        typer.echo(f"{res.written} crops written to {out}" + (f" ({flanks})" if flanks else "")
                   + f"; {res.skipped_unknown} 'unknown' rows skipped; {len(res.failures)} not cut")
        for f, r in res.failures[:10]:
            typer.echo(f"  not cut: {f}: {r}")
        if len(res.failures) > 10:
            typer.echo(f"  ... and {len(res.failures) - 10} more (--json lists them all)")
    if res.failures and res.written == 0:
        typer.echo(f"nothing was cut: check that --images-root {images_root} holds the labelled photos "
                   "(directly or in <split>-images/ folders)", err=True)
        raise typer.Exit(1)


def train_foreground_cmd(
    data: Optional[List[Path]] = typer.Option(None, "--data", help="Folder made by `spotid synth crops DIR --masks` "
                                              "(crops.csv with a mask column); repeat for several."),
    epochs: Optional[int] = typer.Option(None, "--epochs", min=1),
    steps: Optional[int] = typer.Option(None, "--steps-per-epoch", min=1),
    out: Path = typer.Option(Path("models/foreground-trained"), "--out"),
    resume: bool = typer.Option(False, "--resume", help="Continue from OUT/checkpoint.pt."),
    seed: Optional[int] = typer.Option(None, "--seed"),
    threads: Optional[int] = typer.Option(None, "--threads", min=1),
    config: Optional[Path] = typer.Option(None, "--config"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Train the foreground model (animal vs background pixels) that keeps keypoints on the coat.

    \b
    Example:
      spotid synth crops masked/ --masks --views all
      spotid train foreground --data masked/ --out my-foreground
    """
    from spotid.train.foreground import TrainForegroundConfig, train_foreground

    if not data:
        raise typer.BadParameter("pass --data DIR, made by `spotid synth crops DIR --masks`")
    cfg = _train_config(TrainForegroundConfig, config, epochs=epochs, steps_per_epoch=steps, seed=seed,
                        threads=threads)
    _run(lambda: train_foreground(cfg, data=data, out=out, resume=resume, command=_command_line()), as_json)


def _refuse_to_replace_a_backbone_classifier(folder: Path) -> None:
    """``--part classifier`` trains the old from-scratch CropNet; writing it over the shipped backbone cascade
    classifier (its card's ``arch`` is not ``cropnet``) would silently swap in a model that fails on real photos."""
    import json

    card = folder / "card.json"
    if not card.is_file():
        return
    try:
        arch = str(json.loads(card.read_text(encoding="utf-8")).get("arch", "cropnet"))
    except (OSError, ValueError):
        return
    if arch != "cropnet":
        raise typer.BadParameter(f"{folder} holds a {arch} classifier; --part classifier would replace it with the old "
                                 "CropNet. Pass --classifier-out NEW_FOLDER, or train the backbone classifier with "
                                 "`spotid train classifier`", param_hint="--classifier-out")

def train_detector(
    out: Path = typer.Option(Path("models/detector"), "--out", help="Model folder to write (weights + card)."),
    part: str = typer.Option("all", "--part", help="detector | eval (measure and write metrics into the cards) | all "
                                                   "(detector, then eval) | classifier (the previous from-scratch "
                                                   "CropNet recipe, only when asked: the shipped cascade classifier "
                                                   "comes from `spotid train classifier`)"),
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
    """Reproducible CPU recipe: fine-tune YOLOX-tiny, then measure it with the cascade classifier and write the metrics
    into both cards (--part all). The cascade classifier itself comes from `spotid train classifier`.

    \b
    Example:
      spotid train detector --part all --shared ../shared/data --synth syn11/
    """
    import torch

    from spotid.util import print_json

    torch.set_num_threads(threads)
    if part not in {"detector", "classifier", "all", "eval"}:
        raise typer.BadParameter("use detector, classifier, all or eval", param_hint="--part")
    if not shared.is_dir():
        raise typer.BadParameter(f"no data at {shared}: pass --shared /path/to/shared/data", param_hint="--shared")
    if part == "classifier":
        _refuse_to_replace_a_backbone_classifier(classifier_out)
    summary = {}
    if part == "classifier":
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
    out: Optional[Path] = typer.Option(None, "--out", help="Model folder to write (head + card); default "
                                       "models/classifier, with --db <catalog stem>-classifier beside the catalog."),
    db: Optional[Path] = typer.Option(None, "--db", help="Also train on this catalog's review decisions (confirmed "
                                      "and unusable = leopard, 'not a leopard' = other); a share is held out."),
    review_weight: float = typer.Option(3.0, "--review-weight", min=0.0,
                                        help="With --db: weight of the review crops relative to their sqrt share."),
    heldout_fraction: float = typer.Option(0.3, "--heldout-fraction", min=0.05, max=0.9,
                                           help="With --db: share of the review crops held out (whole individuals/bursts)."),
    parent: Optional[Path] = typer.Option(None, "--parent", help="With --db: the classifier to compare with "
                                          "(default: the catalog's active one)."),
    shared: Path = typer.Option(Path("../shared/data"), "--shared", help="Root of the real data (../shared/data)."),
    synth: list[Path] = typer.Option([], "--synth", help="Synthetic card folder(s) with truth.json; repeatable."),
    holdout: list[str] = typer.Option(["megadetector-test"], "--holdout",
                                      help="Source(s) kept out of training: megadetector-test | southwest | voc | "
                                           "camtrapR | nyala | atrw | sprites (atrw: the head inherits ATRW's "
                                           "CC BY-NC-SA licence unless held out)."),
    cache: Path = typer.Option(Path("/tmp/spotid-classifier-features"), "--cache", help="Feature cache folder."),
    weight_decay: float = typer.Option(1e-2, "--weight-decay", help="L2 on the standardised head weights."),
    no_prior: bool = typer.Option(False, "--no-prior", help="Leave out the ImageNet spotted-cat feature."),
    veto: float = typer.Option(0.5, "--veto", min=0.0, max=1.0,
                               help="ImageNet P(non-leopard cats: lynx, cougar, tiger, ...) that vetoes a leopard "
                                    "label (0: no veto)."),
    sprites: int = typer.Option(0, "--sprites", min=0, help="Synthetic sprites pasted on southwest frames (0: none)."),
    detector_threshold: float = typer.Option(0.1, "--detector-threshold", help="Cascade: detector boxes kept and classified."),
    drop_below_conf: float = typer.Option(0.25, "--drop-below-conf",
                                          help="Cascade: not_animal boxes are dropped only below this detector conf."),
    typical_threshold: Optional[float] = typer.Option(None, "--typical-threshold",
                                                      help="Cascade: frame-level animal threshold to record in the card."),
    found_min_leopard_p: Optional[float] = typer.Option(
        None, "--found-min-leopard-p", min=0.0, max=1.0,
        help="Cascade: the P(leopard) identify needs to found a new individual, on this head's scale; measure it "
             "(the lowest held-out real leopard; shipped head 0.95). Default: none, or with --db the parent's."),
    metrics: Optional[Path] = typer.Option(None, "--metrics", help="JSON of held-out figures to record in the card."),
    seed: int = typer.Option(0, "--seed"),
    threads: int = typer.Option(1, "--threads", help="Torch threads (1 on a shared machine)."),
    json_out: bool = typer.Option(False, "--json"),
) -> None:
    """Fit the leopard / other / not_animal head on the frozen ImageNet backbone (cascade after the detector).
    With --db, the review decisions join the recipe's sources; the new head and the active one are measured
    on the held-out review crops, and nothing is written when that set is too small.

    \b
    Examples:
      spotid train classifier --out my-classifier --holdout megadetector-test
      spotid train classifier --db season.db --out season-classifier
    """
    import json

    import torch

    from spotid.train.classifier import CascadeTrainConfig, export_cascade
    from spotid.util import print_json

    torch.set_num_threads(threads)
    if db is not None:
        from spotid.cliutil import existing_catalog

        existing_catalog(db).close()   # missing or not a spotid catalog: the usage error that names the fix
    if not shared.is_dir():
        raise typer.BadParameter(f"no data at {shared}: pass --shared /path/to/shared/data", param_hint="--shared")
    if out is None:
        out = db.resolve().with_name(f"{db.stem}-classifier") if db is not None else Path("models/classifier")
    cfg = CascadeTrainConfig(shared=str(shared), cache=str(cache), synth=tuple(str(s) for s in synth),
                             holdout=tuple(holdout), weight_decay=weight_decay, prior=not no_prior,
                             veto_min_p=veto, sprites=sprites,
                             detector_threshold=detector_threshold, drop_below_conf=drop_below_conf, seed=seed)
    m = json.loads(metrics.read_text()) if metrics else None
    try:
        if db is not None:
            from spotid.train.classifier_review import TooLittleData, train_classifier_from_review

            try:
                summary = train_classifier_from_review(cfg, db, out, review_weight=review_weight,
                                                       heldout_fraction=heldout_fraction, parent=parent,
                                                       found_min_leopard_p=found_min_leopard_p)
            except TooLittleData as e:
                raise typer.BadParameter(str(e), param_hint="--db") from None
        else:
            summary = export_cascade(cfg, out, metrics=m, typical_threshold=typical_threshold,
                                     found_min_leopard_p=found_min_leopard_p)
    except (FileNotFoundError, ValueError, RuntimeError) as e:
        raise typer.BadParameter(str(e)) from None
    if json_out:
        print_json(summary)
        return
    typer.echo(f"wrote {summary['folder']}: trained on {', '.join(summary['sources'])}; crops {summary['counts']}")
    if db is not None:
        typer.echo(f"held out {summary['heldout']['crops']} review crops of {summary['heldout']['groups']} "
                   "individuals/bursts (never trained on):")
        for key, name in (("before", f"parent {summary['parent']}"), ("new", "new head")):
            typer.echo(f"  {name}: {_review_line(summary[key])}")
        typer.echo(f"adopt it with: spotid models use classifier {summary['folder']} --db {db}")


def _review_line(m: dict) -> str:
    """Held-out review figures of one classifier, for people."""
    def pct(v):
        return "n/a" if v is None else f"{v:.3f}"
    below = m["leopard"].get("below_found_floor")
    return (f"leopards labelled leopard {m['leopard']['labelled_leopard']}/{m['leopard']['n']}"
            + (f" ({below} below the founding floor)" if below else "") + ", "
            f"'not a leopard' labelled leopard {m['other']['labelled_leopard']}/{m['other']['n']}, "
            f"balanced accuracy {pct(m['balanced_accuracy'])}")


train_commands = {"detector": train_detector, "classifier": train_classifier, "embedder": train_embedder_cmd,
                  "flank": train_flank_cmd, "foreground": train_foreground_cmd, "cut-boxes": cut_boxes_cmd}
