"""``spotid train detector``: the reproducible recipes behind ``models/detector`` and ``models/classifier``.

- Detector weights: zamba 2.7.2's MIT-licensed YOLOX-tiny ("MegadetectorLite",
  ``zamba/object_detection/yolox/assets/yolox_tiny_640_20220528.pth``), extracted from the PyPI wheel
  (``pip download --no-deps zamba==2.7.2``) and stored as fp16 (:func:`import_zamba`); optionally
  fine-tuned (:mod:`spotid.train.detector_finetune`), shipped only if it beats the original on the
  evaluation.
- Crop classifier (leopard vs other): :mod:`spotid.train.detector_classifier`.
"""
from __future__ import annotations

import logging
from pathlib import Path

log = logging.getLogger(__name__)

from spotid.train.zamba import ZAMBA_PROVENANCE


def export_classifier(out: str | Path, *, shared: str | Path, synth=(), epochs: int | None = None, seed: int = 0,
                      holdout: tuple[str, ...] = ("southwest",), resume: bool = True, metrics: dict | None = None):
    """Train the crop classifier into ``out`` and write its model card."""
    from spotid.modelstore import write_card
    from spotid.train.detector_classifier import ClassifierTrainConfig, train_classifier

    kw = {"shared": str(shared), "synth": tuple(str(s) for s in synth), "seed": seed, "holdout": tuple(holdout)}
    if epochs:
        kw["epochs"] = epochs
    cfg = ClassifierTrainConfig(**kw)
    summary = train_classifier(cfg, Path(out), resume=resume)
    card = write_card(
        out, name="crop-classifier-leopard-other", kind="classifier", weights="crop_classifier.pt",
        architecture="CropNet: 5 stride-2 conv stages (16-32-64-96-128), BN+ReLU, GAP, linear; ~0.3 M params",
        classes=["leopard", "other"], input_size=cfg.input_size, context=cfg.context,
        preprocessing="square crop of side max(w,h)*(1+2*context) centred on the box, resized to input_size, "
                      "RGB/255, mean 0.5 std 0.5",
        thresholds={"leopard": 0.5},
        training_data=summary["counts"], holdout=list(cfg.holdout),
        recipe=f"spotid train detector --part classifier --seed {seed} --epochs {cfg.epochs} "
               + " ".join(f"--holdout {h}" for h in cfg.holdout),
        licence="MIT (trained by spotid)", metrics=metrics or {},
    )
    return {"folder": str(out), "version": card.version, **summary}


DETECTOR_README_NOTE = "see models/detector/README.md"


def finetune_detector(out: str | Path, *, seed: int = 0, **kwargs):
    """Fine-tune YOLOX-tiny into ``out`` and write its card (metrics come from ``--part eval``)."""
    from spotid.modelstore import write_card
    from spotid.train.detector_finetune import finetune

    summary = finetune(out, seed=seed, **kwargs)
    cfg = summary.pop("config")
    recipe = (f"spotid train detector --part detector --seed {seed} --epochs {cfg.epochs} --init {cfg.init or 'models/detector'}"
              + "".join(f" --synth {s}" for s in cfg.synth)
              + "".join(f" --unfreeze {u}" for u in cfg.unfreeze)
              + f" --voc-repeat {cfg.voc_repeat} --max-synth-frames {cfg.max_synth_frames} --lr {cfg.lr}"
              + (f" --sprite-frames {cfg.sprite_frames}" if cfg.sprite_frames else "")
              + (f" --wise-alpha {cfg.wise_alpha}" if cfg.wise_alpha < 1 else ""))
    frozen = "backbone (CSPDarknet incl. BN)" + (f" except {', '.join(cfg.unfreeze)} (BN statistics still frozen)"
                                                  if cfg.unfreeze else "")
    card = write_card(
        out, name="detector-yolox-tiny-spotid", kind="detector", weights="yolox_tiny.pt",
        architecture="YOLOX-tiny (pixeltable-yolox YoloxModule, depth 0.33, width 0.375, SiLU)",
        classes=["animal"], category_ids=[1], input_size=cfg.input_size,
        preprocessing="RGB 0..255 float, no normalisation; letterbox at the top-left, grey 114 padding",
        thresholds={"typical": 0.25, "conservative": 0.1}, nms_iou=0.45,
        parent=ZAMBA_PROVENANCE, training_data=summary["counts"],
        training={"epochs": cfg.epochs, "batch_size": cfg.batch_size, "lr": cfg.lr, "frozen": frozen,
                  "input_size": cfg.input_size, "seed": seed, "voc_repeat": cfg.voc_repeat,
                  "max_synth_frames_per_card": cfg.max_synth_frames, "wise_alpha": cfg.wise_alpha,
                  "loss_history": summary["loss_history"]},
        recipe=recipe,
        licence="MIT (weights derived from zamba 2.7.2's MIT-licensed MegadetectorLite)",
    )
    return {**summary, "version": card.version}


# -- evaluation written into the model cards ----------------------------------------------------------
def evaluate_models(det_folder: str | Path, clf_folder: str | Path | None, shared: str | Path,
                    synth: tuple = (), input_size: int | None = None, n_sprites: int = 80) -> dict:
    """The issue's four targets, measured with the given models: AP50 on amur-leopard-voc/test-images,
    image-level agreement with MDv5a on megadetector-test, leopard boxes labelled leopard, recall on
    held-out synthetic cards; plus "other" accuracy on southwest (cougar, bobcat, ...)."""

    from spotid.detect.config import DetectConfig
    from spotid.detect.detector import make_detector
    from spotid.detect.evaluate import evaluate
    from spotid.detect.run import list_frames
    from spotid.detect.truth import TruthBox, read_animl_csv, read_coco_ct, read_md_truth, read_voc

    shared = Path(shared)
    cfg = DetectConfig(model=str(det_folder), classifier=str(clf_folder) if clf_folder else None,
                       use_classifier=clf_folder is not None, threshold=0.01, static_fp=False,
                       input_size=input_size)
    det = make_detector(cfg)
    thr = det.typical_threshold
    out: dict = {"threshold": thr, "input_size": det.input_size}

    def run(folder: Path, truth: dict) -> dict:
        frames = [p for p in list_frames(folder) if p.relative_to(folder).as_posix() in truth]
        res = {r.file: r for r in det(frames, folder)}
        ev = evaluate(res, truth, threshold=thr).to_json()
        ev.pop("disagreements")
        return ev

    voc = shared / "detection/amur-leopard-voc"
    out["amur_leopard_voc_test"] = run(voc / "test-images", read_voc(voc / "annotations", voc / "test-images"))
    md = shared / "camera-traps/megadetector-test"
    out["megadetector_test_vs_mdv5a"] = run(md, read_md_truth(md / "mdv5a-results.json", 0.2))
    sw = shared / "camera-traps/southwest"
    rows: dict[str, list] = {p.name: [] for p in list_frames(sw) if p.suffix.lower() in {".jpg", ".jpeg"}
                             and p.stat().st_size > 0}
    for name, boxes in read_animl_csv(sw / "animl-ground-truth/main/Detections.csv", 0.2).items():
        rows.setdefault(name, []).extend(boxes)
    out["southwest_vs_mdv5a"] = run(sw, rows)
    for folder in synth:
        folder = Path(folder)
        out[f"synthetic:{folder.name}"] = run(folder, read_coco_ct(folder / "truth.json"))
    # held-out synthetic animals: spotid.synth sprites pasted (seed 1000) into megadetector-test frames,
    # which no training recipe uses; only the pasted animal is truth, so read recall, not precision.
    from spotid.train.detector_finetune import sprite_frames, sprite_meta

    sp = sprite_frames([(p, []) for p in list_frames(md) if p.suffix.lower() in {".jpg", ".jpeg"}], n_sprites, 1000)
    if sp:
        folder = sp[0][0].parent
        truth = {}
        for p, boxes in sp:
            m = sprite_meta(p)
            truth[p.name] = [TruthBox(1, tuple(boxes[-1]), m.get("label") or "other")]
        ev = run(folder, truth)
        ev["note"] = ("recall of rendered animals pasted into unseen real frames; real animals in the frames "
                      "are not truth here, so precision is not meaningful")
        out["synthetic_sprites_heldout"] = ev
    return out


def update_card_metrics(folder: str | Path, metrics: dict, **extra) -> None:
    """Merge ``metrics`` (and any other card fields) into ``folder/card.json``, keeping sha256 current."""
    import json

    from spotid.modelstore import load_card, write_card

    card = load_card(folder)
    meta = {k: v for k, v in card.meta.items() if k not in {"name", "kind", "weights", "sha256"}}
    meta["metrics"] = {**meta.get("metrics", {}), **metrics}
    meta.update(extra)
    write_card(folder, name=card.name, kind=card.kind, weights=card.weights, **json.loads(json.dumps(meta)))
