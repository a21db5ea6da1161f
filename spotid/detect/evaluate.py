"""Detector evaluation against truth boxes: precision/recall/AP50, leopard accuracy, empty agreement.

Matching is class-agnostic over the MD categories (the builtin detector only has "animal"), greedy by
descending confidence, a prediction matching the unmatched truth box of highest IoU >= ``iou``.
AP50 is the all-point interpolated area under the precision-recall curve (VOC 2010+ / COCO style at
IoU 0.5) over every prediction kept by the detector. Precision and recall are at ``threshold``.
Leopard accuracy: among truth leopard boxes found at ``threshold``, the share whose matched
prediction is labelled "leopard"; other accuracy likewise for truth "other" animal boxes.
Image agreement: a frame is "animal" when it has a truth box / a prediction >= ``threshold``.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from spotid.detect.static_fp import iou as iou_xywh
from spotid.detect.truth import TruthBox
from spotid.types import ImageResult


@dataclass
class DetectEval:
    images: int
    truth_boxes: int
    threshold: float
    precision: float
    recall: float
    ap50: float
    tp: int
    fp: int
    fn: int
    leopard_boxes_found: int
    leopard_classified_leopard: int
    leopard_accuracy: float | None
    other_boxes_found: int
    other_classified_other: int
    other_accuracy: float | None
    image_agreement: int
    image_agreement_rate: float
    empty_truth_images: int
    disagreements: list

    def to_json(self) -> dict:
        return asdict(self)


def _match(preds, truths, iou_thr):
    """preds: [(conf, bbox, label)] sorted by conf desc; returns list of matched truth index or -1."""
    used = set()
    out = []
    for _, pb, _ in preds:
        best, bi = iou_thr, -1
        for ti, t in enumerate(truths):
            if ti in used:
                continue
            v = iou_xywh(pb, t.bbox)
            if v >= best:
                best, bi = v, ti
        if bi >= 0:
            used.add(bi)
        out.append(bi)
    return out


def average_precision(scores: np.ndarray, is_tp: np.ndarray, n_truth: int) -> float:
    """All-point interpolated AP from per-prediction scores and TP flags (hand-checkable)."""
    if n_truth == 0:
        return float("nan")
    if len(scores) == 0:
        return 0.0
    order = np.argsort(-scores, kind="stable")
    tp = np.cumsum(is_tp[order])
    fp = np.cumsum(~is_tp[order])
    rec = tp / n_truth
    prec = tp / np.maximum(tp + fp, 1e-12)
    mrec = np.concatenate([[0.0], rec, [1.0]])
    mpre = np.concatenate([[1.0], prec, [0.0]])
    for i in range(len(mpre) - 2, -1, -1):
        mpre[i] = max(mpre[i], mpre[i + 1])
    idx = np.where(mrec[1:] != mrec[:-1])[0]
    return float(np.sum((mrec[idx + 1] - mrec[idx]) * mpre[idx + 1]))


def evaluate(results: dict[str, ImageResult], truth: dict[str, list[TruthBox]], *, threshold: float,
             iou: float = 0.5) -> DetectEval:
    """``results`` and ``truth`` keyed by the same file keys; only files in both are scored."""
    keys = [k for k in truth if k in results and not results[k].failure]
    all_scores, all_tp = [], []
    tp = fp = fn = 0
    leo_found = leo_ok = oth_found = oth_ok = 0
    agree = empties = 0
    disagreements = []
    n_truth = 0
    for k in keys:
        tboxes = truth[k]
        n_truth += len(tboxes)
        preds = sorted(((d.conf, d.bbox, d.label) for d in results[k].detections), key=lambda t: -t[0])
        m = _match(preds, tboxes, iou)
        all_scores += [p[0] for p in preds]
        all_tp += [mi >= 0 for mi in m]
        keep = [(p, mi) for p, mi in zip(preds, m) if p[0] >= threshold]
        # at the operating threshold, re-match only the kept predictions
        kept_preds = [p for p, _ in keep]
        m2 = _match(kept_preds, tboxes, iou)
        tp_i = sum(mi >= 0 for mi in m2)
        tp += tp_i
        fp += len(kept_preds) - tp_i
        fn += len(tboxes) - tp_i
        for p, mi in zip(kept_preds, m2):
            if mi < 0 or tboxes[mi].category != 1:
                continue
            if tboxes[mi].label == "leopard":
                leo_found += 1
                leo_ok += p[2] == "leopard"
            else:
                oth_found += 1
                oth_ok += p[2] != "leopard"
        t_animal = bool(tboxes)
        p_animal = bool(kept_preds)
        empties += not t_animal
        if t_animal == p_animal:
            agree += 1
        else:
            disagreements.append({"file": k, "truth": "animal" if t_animal else "empty",
                                  "predicted": "animal" if p_animal else "empty",
                                  "max_conf": round(max((p[0] for p in preds), default=0.0), 4)})
    ap = average_precision(np.array(all_scores, dtype=float), np.array(all_tp, dtype=bool), n_truth)
    return DetectEval(
        images=len(keys), truth_boxes=n_truth, threshold=threshold,
        precision=tp / (tp + fp) if tp + fp else 0.0, recall=tp / n_truth if n_truth else 0.0,
        ap50=ap, tp=tp, fp=fp, fn=fn,
        leopard_boxes_found=leo_found, leopard_classified_leopard=leo_ok,
        leopard_accuracy=leo_ok / leo_found if leo_found else None,
        other_boxes_found=oth_found, other_classified_other=oth_ok,
        other_accuracy=oth_ok / oth_found if oth_found else None,
        image_agreement=agree, image_agreement_rate=agree / len(keys) if keys else 0.0,
        empty_truth_images=empties, disagreements=disagreements)
