"""zamba 2.7.2's MIT-licensed YOLOX-tiny camera-trap detector, taken out of its PyPI wheel (never installed).

``pip download --no-deps zamba==2.7.2`` gives the wheel; :func:`import_zamba` extracts the weights as an
fp16 state dict. Used by the detector recipe (:mod:`spotid.train.detector`) and its fine-tuning
(:mod:`spotid.train.detector_finetune`).
"""
from __future__ import annotations

import zipfile
from pathlib import Path

ZAMBA_MEMBER = "zamba/object_detection/yolox/assets/yolox_tiny_640_20220528.pth"
ZAMBA_PROVENANCE = ("zamba 2.7.2 (PyPI wheel, DrivenData, MIT licence): "
                    "zamba/object_detection/yolox/assets/yolox_tiny_640_20220528.pth, "
                    "'MegadetectorLite' YOLOX-tiny trained on camera-trap video frames, 1 class (animal)")


def import_zamba(source: str | Path, out: str | Path) -> Path:
    """Extract zamba's YOLOX-tiny from the wheel (or a .pth) into ``out/yolox_tiny.pt`` (fp16 state dict)."""
    import io

    import torch

    from spotid.train.common import fp16_state, save_torch

    source, out = Path(source), Path(out)
    if source.suffix == ".whl":
        with zipfile.ZipFile(source) as z:
            raw = z.read(ZAMBA_MEMBER)
        ck = torch.load(io.BytesIO(raw), map_location="cpu", weights_only=False)
    else:
        ck = torch.load(str(source), map_location="cpu", weights_only=False)
    state = ck["model"] if isinstance(ck, dict) and "model" in ck else ck
    return save_torch(fp16_state(state), out / "yolox_tiny.pt")
