"""Deterministic random streams: every draw is keyed by the world seed and what it is for.

No global RNG state is used anywhere in ``spotid.synth``; the same key always gives the same
stream, whatever was rendered before (so frames can be rendered in any order or in parallel).
"""
from __future__ import annotations

import zlib

import numpy as np


def _key(part: object) -> int:
    if isinstance(part, (int, np.integer)):
        return int(part) & 0xFFFFFFFF
    return zlib.crc32(str(part).encode("utf-8"))


def rng(seed: int, *keys: object) -> np.random.Generator:
    """A numpy Generator for (seed, *keys); strings are hashed with CRC32 (stable across runs)."""
    return np.random.default_rng([int(seed) & 0xFFFFFFFF, *(_key(k) for k in keys)])
