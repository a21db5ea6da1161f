"""``spotid process``: ingest + detect + identify one SD card, the way a field team runs a new card.

Each stage is called through its Python API (no subprocesses), with its own resolved configuration:

    card  --ingest-->  media  --detect-->  detections  --identify-->  sightings
"""
from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from spotid.catalog import Catalog

log = logging.getLogger(__name__)


class PipelineError(RuntimeError):
    """A stage needed by the pipeline is missing or failed; the message names the stage and the fix."""


def check_models(identify_cfg) -> None:
    """Read the card of every model identify's config names by path (the embedder, the flank and foreground
    models), before anything is written: a wrong path or a broken card raises
    :class:`~spotid.modelstore.ModelError` naming it, not after ingest and detect have run over the card
    (:func:`~spotid.detect.detector.check_detector` does the same for detect's). Models left to the catalog's
    choice or the shipped ones are checked where they are loaded."""
    from spotid.modelstore import resolve

    named = (("embedder", identify_cfg.embedder_model), ("flank", identify_cfg.flank_model),
             ("foreground", identify_cfg.foreground_model if identify_cfg.foreground else None))
    for kind, path in named:
        if path:
            resolve(kind, path)


# -- stage adapters ------------------------------------------------------------------------------------
def run_ingest(cat: Catalog, card: Path, deployment: str, tz: str | None = None, cfg=None) -> dict:
    """Ingest one card (``cfg``: an IngestConfig; default: the package defaults, with ``tz``)."""
    import dataclasses

    from spotid.config import resolve_config
    from spotid.ingest.ingester import IngestConfig, Ingester

    cfg = cfg or resolve_config(IngestConfig)
    if tz is not None:
        cfg = dataclasses.replace(cfg, tz=tz)
    return Ingester(cat, cfg)(card, deployment).to_json()


def run_detect(cat: Catalog, deployment: str | None = None, cfg=None) -> dict:
    """Detect on the catalog's pending frames (``cfg``: a DetectConfig; default: the package defaults)."""
    from spotid.config import resolve_config
    from spotid.detect.config import DetectConfig
    from spotid.detect.detector import make_detector
    from spotid.detect.run import detect_catalog, with_catalog_models

    cfg = with_catalog_models(cat, cfg or resolve_config(DetectConfig))
    return detect_catalog(make_detector(cfg), cat, cfg, deployment=deployment).to_json()


def run_identify(cat: Catalog, *, deployment: str | None = None, cfg=None, auto_accept: bool = False) -> dict:
    """Identify the catalog's new leopard detections (``cfg``: an IdentifyConfig; default: the package
    defaults, auto-accepting when asked)."""
    from spotid.identify.pipeline import identify_catalog

    return identify_catalog(cat, cfg=cfg, auto_accept=auto_accept, deployment=deployment).to_json()


@dataclass
class ProcessResult:
    deployment: str
    ingest: dict
    detect: dict
    identify: dict | None
    seconds: dict = field(default_factory=dict)

    def to_json(self) -> dict:
        return asdict(self)


def process_card(cat: Catalog, card: str | Path, deployment: str, *, tz: str | None = None,
                 identify: bool = True, ingest_cfg=None, detect_cfg=None, identify_cfg=None) -> ProcessResult:
    """Ingest + detect + identify one card of one deployment (what a field team runs per card).

    ``ingest_cfg``/``detect_cfg``/``identify_cfg``: resolved stage configs (default: the package defaults,
    which do not auto-accept).
    """
    card = Path(card)
    if not card.is_dir():
        raise PipelineError(f"{card} is not a folder: pass the SD card's root (the folder holding DCIM)")
    t = {}
    t0 = time.perf_counter()
    ing = run_ingest(cat, card, deployment, tz, ingest_cfg)
    t["ingest"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    det = run_detect(cat, deployment, detect_cfg)
    t["detect"] = time.perf_counter() - t0
    ide = None
    if identify:
        t0 = time.perf_counter()
        ide = run_identify(cat, deployment=deployment, cfg=identify_cfg)
        t["identify"] = time.perf_counter() - t0
    return ProcessResult(deployment, ing, det, ide, {k: round(v, 2) for k, v in t.items()})
