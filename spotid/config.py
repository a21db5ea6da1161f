"""Configuration: frozen dataclasses whose defaults are mirrored in ``configs/<name>.yaml``.

Resolution order (later wins): dataclass defaults -> a YAML file (``--config``) -> CLI overrides.
The resolved configuration is saved next to every output and checkpoint with :func:`save_config`.
"""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any, TypeVar

import yaml

from spotid.util import atomic_write_text, data_dir

T = TypeVar("T")

CONFIG_DIR = data_dir("configs")   # shipped defaults: packaged copy, or the checkout's configs/


def parse_setting(text: str) -> tuple[str, Any]:
    """``"KEY=VALUE"`` (a command-line override) -> ``(key, value)``, the value read as YAML, as in the
    config files (``null``, ``0.5``, ``true``, ``rootsift+vgg``)."""
    if "=" not in text:
        raise ValueError(f"{text!r}: use KEY=VALUE")
    key, value = text.split("=", 1)
    return key.strip(), yaml.safe_load(value)


def load_config(cls: type[T], path: str | Path | None = None, **overrides: Any) -> T:
    """Build a frozen config dataclass ``cls`` from its defaults, an optional YAML file and overrides.

    ``None`` overrides are ignored so CLI options can pass through unset values. Unknown keys raise
    ``ValueError`` naming the valid ones (a typo in a config file must not be silently ignored).
    """
    names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    values: dict[str, Any] = {}
    if path is not None:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
        if not isinstance(data, dict):
            raise ValueError(f"{path}: expected a mapping of settings, got {type(data).__name__}")
        values.update(data)
    values.update({k: v for k, v in overrides.items() if v is not None})
    unknown = set(values) - names
    if unknown:
        raise ValueError(f"unknown setting(s) {sorted(unknown)} for {cls.__name__}; valid: {sorted(names)}")
    for f in dataclasses.fields(cls):  # type: ignore[arg-type]
        # YAML gives lists where dataclasses hold tuples (tuples keep them hashable/frozen).
        if f.name in values and isinstance(values[f.name], list):
            values[f.name] = tuple(values[f.name])
    return cls(**values)


def config_dict(cfg: Any) -> dict[str, Any]:
    return dataclasses.asdict(cfg)


def save_config(cfg: Any, path: str | Path) -> Path:
    """Write the resolved configuration as YAML (atomically) and return the path."""
    path = Path(path)
    text = yaml.safe_dump(json.loads(json.dumps(config_dict(cfg), default=str)), sort_keys=True)
    atomic_write_text(path, text)
    return path


def default_yaml(cls: type) -> Path:
    """Path of the shipped YAML mirror of ``cls``'s defaults (configs/<name>.yaml)."""
    name = getattr(cls, "yaml_name", cls.__name__.lower().removesuffix("config"))
    return CONFIG_DIR / f"{name}.yaml"
