"""Helpers the identify CLI modules share: config resolution, model loading and the errors that name
the fix (each turns a library error into ``typer.BadParameter``). Loading is lazy so ``--help`` stays fast."""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Optional

import typer

log = logging.getLogger(__name__)


def _threads(threads: Optional[int]) -> int:
    """Set torch/OpenCV threads (None or 0: all cores); the number used."""
    from spotid.cliutil import set_threads

    return set_threads(threads)


def _cfg(config: Optional[Path], **overrides):
    from spotid.config import resolve_config
    from spotid.identify.pipeline import IdentifyConfig

    if config is not None and not Path(config).is_file():
        raise typer.BadParameter(f"{config} is not a file: pass a copy of configs/identify.yaml", param_hint="--config")
    try:
        return resolve_config(IdentifyConfig, config, **overrides)
    except (ValueError, OSError) as e:
        raise typer.BadParameter(str(e)) from None


def _models(cfg, catalog=None):
    from spotid.identify.embedder import Embedder
    from spotid.identify.flank import FlankClassifier
    from spotid.modelstore import ModelError

    try:
        return (Embedder(cfg.embedder_model, catalog=catalog),
                FlankClassifier(cfg.flank_model, catalog=catalog, threshold=cfg.flank_threshold))
    except (ModelError, ValueError, OSError) as e:
        raise typer.BadParameter(f"{e} (pass --model/--flank-model or train one with `spotid train embedder`)") from None


def _calibration(path: Optional[str], descriptor: str = "rootsift"):
    from spotid.identify.calibrate import load_calibration

    try:
        return load_calibration(path, descriptor=descriptor)
    except (OSError, ValueError, KeyError) as e:
        raise typer.BadParameter(str(e), param_hint="--calibration") from None


def _extractor(cfg, catalog=None):
    from spotid.identify.verify import FeatureExtractor
    from spotid.modelstore import ModelError

    try:
        return FeatureExtractor.from_config(cfg, catalog)
    except ImportError as e:  # rootsift+vgg without OpenCV's contrib modules: the message names the fix
        raise typer.BadParameter(str(e)) from None
    except (ModelError, ValueError, OSError) as e:
        raise typer.BadParameter(f"{e} (or match on whole crops: `foreground: false` in a --config YAML for "
                                 "identify, --no-foreground for eval reid)") from None


def _verifier(cfg):
    from spotid.identify.verify import Verifier

    return Verifier.from_config(cfg)


def _locals(text: Optional[str], cfg) -> tuple[list, dict]:
    """``--verifiers sift,aliked`` -> (names, {name: LocalMatcher} for those other than sift, which
    the evaluation already runs with identify's settings)."""
    from spotid.identify.local import build_local, parse_verifiers

    try:
        names = parse_verifiers(text)
        return names, {n: build_local(n, cfg) for n in names if n != "sift"}
    except (ValueError, ImportError, FileNotFoundError) as e:
        raise typer.BadParameter(str(e), param_hint="--verifiers") from None


def _fusion(path: Optional[Path]):
    from spotid.identify.fusion import load_fusion

    try:
        return load_fusion(path)
    except (OSError, ValueError, KeyError) as e:
        raise typer.BadParameter(str(e), param_hint="--fusion") from None


def _check_encounters(*regexes: Optional[str], hint: str = "--encounter") -> None:
    """Each ``--encounter`` regex compiles, else exit 2 naming the fix (before any model loads)."""
    from spotid.identify.evaluate import encounter_regex

    for rx in regexes:
        try:
            encounter_regex(rx)
        except ValueError as e:
            raise typer.BadParameter(str(e), param_hint=hint) from None
