"""Configuration: frozen dataclasses whose defaults are mirrored in ``configs/<name>.yaml``.

One rule for every command (:func:`resolve_config`), later wins: the package defaults (the dataclass,
mirrored by the shipped ``configs/<name>.yaml``) -> the user's ``--config FILE`` -> command-line options.
A ``--config`` file is either flat (the settings of that one command) or has one section per stage
(``detect:``, ``identify:``, ``census:`` ...), so a single file can drive ``spotid process`` and each
single stage alike. The resolved configuration is saved next to every output with :func:`save_config`.
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
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    values: dict[str, Any] = {}
    if path is not None:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
        if not isinstance(data, dict):
            raise ValueError(f"{path}: expected a mapping of settings, got {type(data).__name__}")
        values.update(data)
    values.update({k: v for k, v in overrides.items() if v is not None})
    unknown = set(values) - set(fields)
    if unknown:
        raise ValueError(f"unknown setting(s) {sorted(unknown)} for {cls.__name__}; valid: {sorted(fields)}")
    # YAML gives lists where dataclasses hold tuples (tuples keep them hashable/frozen).
    values = {k: tuple(v) if isinstance(v, list) else v for k, v in values.items()}
    return cls(**{k: _checked(fields[k], v) for k, v in values.items()})


_SCALARS = {"float": float, "int": int, "bool": bool, "str": str}
_TAKES = {float: "a number", int: "a whole number", bool: "true or false", str: "text"}


def _checked(f: dataclasses.Field, value: Any) -> Any:
    """``value`` for the setting ``f`` when ``f`` is a scalar (annotated ``float``, ``int``, ``bool`` or
    ``str``, optionally ``| None``), else a ``ValueError`` naming the setting and what it takes: without
    this a word where a number belongs failed deep inside as "'<' not supported between 'str' and 'int'".
    An int is a float; YAML reads ``1e-3`` as text, so a float setting also takes text that is a number.
    Settings of other types pass unchecked."""
    ann = f.type if isinstance(f.type, str) else getattr(f.type, "__name__", str(f.type))
    parts = [p.strip().replace("NoneType", "None") for p in ann.split("|")]
    kinds = [_SCALARS[p] for p in parts if p in _SCALARS]
    if len(kinds) + parts.count("None") != len(parts) or (value is None and "None" in parts):
        return value
    for kind in kinds:
        if isinstance(value, bool):   # bool is an int to Python, never to a setting
            if kind is bool:
                return value
        elif kind is float and isinstance(value, (int, float)) or isinstance(value, kind):
            return value
        elif kind is float and isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                pass
    default = None if f.default is dataclasses.MISSING else f.default
    takes = " or ".join([_TAKES[k] for k in kinds] + (["null"] if "None" in parts else []))
    raise ValueError(f"{f.name}={value!r}: use {takes} (default: {'null' if default is None else repr(default)})")


def section_name(cls: type) -> str:
    """The stage name of a config class: its ``yaml_name`` (``detect``, ``identify``, ``census`` ...)."""
    return getattr(cls, "yaml_name", cls.__name__.lower().removesuffix("config"))


def _read_yaml(path: str | Path) -> dict[str, Any]:
    p = Path(path)
    if not p.is_file():
        raise ValueError(f"{p} is not a file: pass a YAML file like the shipped configs/*.yaml")
    data = yaml.safe_load(p.read_text(encoding="utf-8")) or {}
    if not isinstance(data, dict):
        raise ValueError(f"{p}: expected a mapping of settings, got {type(data).__name__}")
    return data


def resolve_config(cls: type[T], config: str | Path | None = None, **overrides: Any) -> T:
    """The configuration of one command: package defaults, then ``config``, then ``overrides``.

    ``config`` may hold the settings of ``cls`` directly, or a section named after the stage
    (:func:`section_name`); the other stages' sections of a shared file are ignored. ``None`` overrides
    are ignored (unset CLI options). Raises ``ValueError`` naming the file and the valid keys.
    """
    values: dict[str, Any] = {}
    shipped = default_yaml(cls)
    if shipped.is_file():
        values.update(_read_yaml(shipped))
    if config is not None:
        data = _read_yaml(config)
        names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
        stages = {p.stem for p in CONFIG_DIR.glob("*.yaml")} | {section_name(cls)}
        if any(k in stages and k not in names for k in data):
            # a file with one section per stage: every top-level key must be a known stage
            wrong = sorted(k for k, v in data.items() if k not in stages or not isinstance(v, (dict, type(None))))
            if wrong:
                raise ValueError(f"{config}: {wrong} are not stage sections; a file with sections holds only "
                                 f"stage names ({sorted(stages)}), each a mapping of settings")
            data = data.get(section_name(cls)) or {}
        values.update(data)
    values.update({k: v for k, v in overrides.items() if v is not None})
    try:
        return load_config(cls, None, **values)
    except (TypeError, ValueError) as e:
        raise ValueError(f"{config}: {e}" if config is not None else str(e)) from None


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
    return CONFIG_DIR / f"{section_name(cls)}.yaml"
