"""Offline validation of a Camtrap DP package against local copies of the 1.0.2 profile and schemas.

Two checks, both without the network:
1. each CSV against its local table schema with ``frictionless`` (types, formats, constraints,
   enums, patterns, unique and primary keys, and the foreign keys between the three tables);
2. ``datapackage.json`` against the local ``camtrap-dp-profile.json`` with ``jsonschema``. The
   profile extends two remote schemas (the Frictionless data-package schema and GeoJSON); offline
   they resolve to permissive ``{}`` schemas, so only Camtrap DP's own requirements are checked.
"""
from __future__ import annotations

import json
from pathlib import Path

TABLES = ("deployments", "media", "observations")


def validate_package(package_dir: str | Path, schema_dir: str | Path) -> list[str]:
    """Return a list of human-readable errors (empty = valid). Needs ``frictionless`` and ``jsonschema``."""
    package_dir, schema_dir = Path(package_dir), Path(schema_dir)
    errors: list[str] = []
    descriptor = json.loads((package_dir / "datapackage.json").read_text(encoding="utf-8"))
    errors += _validate_profile(descriptor, schema_dir / "camtrap-dp-profile.json")
    errors += _validate_tables(package_dir, schema_dir, descriptor)
    return errors


def _validate_profile(descriptor: dict, profile_path: Path) -> list[str]:
    import jsonschema
    from referencing import Registry, Resource
    from referencing.jsonschema import DRAFT4

    profile = json.loads(profile_path.read_text(encoding="utf-8"))
    remote = {}
    for ref in _refs(profile):
        if ref.startswith("http"):
            remote[ref.split("#")[0]] = Resource.from_contents({}, default_specification=DRAFT4)
    registry = Registry().with_resources(remote.items())
    v = jsonschema.Draft4Validator(profile, registry=registry, format_checker=jsonschema.FormatChecker())
    return [f"datapackage.json: {'/'.join(map(str, e.absolute_path)) or '(root)'}: {e.message}"
            for e in v.iter_errors(descriptor)]


def _refs(obj) -> list[str]:
    out = []
    if isinstance(obj, dict):
        for k, v in obj.items():
            if k == "$ref" and isinstance(v, str):
                out.append(v)
            else:
                out += _refs(v)
    elif isinstance(obj, list):
        for v in obj:
            out += _refs(v)
    return out


def _validate_tables(package_dir: Path, schema_dir: Path, descriptor: dict) -> list[str]:
    from frictionless import Package, Resource, Schema

    errors = []
    names = {r["name"] for r in descriptor.get("resources", [])}
    missing = [t for t in TABLES if t not in names]
    if missing:
        errors.append(f"datapackage.json: resources {missing} are missing")
    resources = []
    for t in TABLES:
        schema = Schema.from_descriptor(json.loads((schema_dir / f"{t}-table-schema.json").read_text(encoding="utf-8")))
        resources.append(Resource(path=f"{t}.csv", name=t, schema=schema, basepath=str(package_dir)))
    pkg = Package(resources=resources, basepath=str(package_dir))
    report = pkg.validate()
    for task in report.tasks:
        for err in task.errors:
            errors.append(f"{task.name}: {err.message}")
    return errors
