"""Settings of the detect stage (defaults mirrored in configs/detect.yaml)."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class DetectConfig:
    yaml_name = "detect"

    detector: str = "builtin"            # builtin | megadetector | mdjson:FILE
    model: str | None = None             # detector model folder (default: models/detector or `spotid models use`)
    classifier: str | None = None        # leopard/other crop classifier folder (default: models/classifier)
    use_classifier: bool = True          # classify animal boxes (leopard / other / not_animal with the cascade card)
    input_size: int | None = None        # letterbox size; None = the model card's input_size
    batch_size: int = 8
    threshold: float | None = None       # keep boxes with conf >= this; None = the card's conservative threshold
    nms_threshold: float = 0.45
    decode_workers: int = 2              # threads decoding JPEGs while the network runs
    threads: int = 0                     # torch threads; 0 = all CPU cores
    checkpoint_every: int = 64           # folder mode: frames between checkpoint writes
    commit_every: int = 32               # catalog mode: frames per transaction
    megadetector_weights: str | None = None  # megadetector backend: a .pt file (or a name the package downloads)
    static_fp: bool = True               # flag repeated static detections (repeat-detection suppression)
    static_fp_iou: float = 0.85
    static_fp_min_frames: int = 5
    static_fp_min_sequences: int = 3
    static_fp_min_hours: float = 2.0
    static_fp_min_conf: float = 0.1      # only boxes at least this confident take part
