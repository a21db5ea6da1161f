"""File names in exports: unique across the catalog, relative, safe.

A catalog's ``media.rel_path`` is relative to its deployment's media root (catalog migration 0012), so
two cameras both hold ``DCIM/100RECNX/PICT0020.JPG``. Exports name a file ``<deployment>/<rel_path>``:
the deployment folder a Camtrap DP package or a Timelapse root folder holds each camera's files in.
"""
from __future__ import annotations

from pathlib import PurePosixPath


def safe_rel_path(rel: str, fallback: str) -> str:
    """A relative POSIX path with no '..', not starting with '.', '/' or '~' (the schema's pattern)."""
    parts = [p for p in PurePosixPath(str(rel).replace("\\", "/")).parts if p not in ("/", ".", "..", "")]
    parts = [p.lstrip(".~") or "_" for p in parts]
    out = "/".join(parts)
    return out or fallback


def export_path(deployment_id: str, rel_path: str, media_id: int) -> str:
    """``<deployment>/<rel_path>`` made safe: the deployment id is one folder (a '/' or '\\' in it becomes
    '_'); a file without a usable rel_path is ``<deployment>/media/<media id>``."""
    folder = safe_rel_path(str(deployment_id).replace("/", "_").replace("\\", "_"), fallback="_")
    return f"{folder}/{safe_rel_path(rel_path, fallback=f'media/{media_id}')}"
