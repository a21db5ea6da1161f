"""Shared fixtures. Real data lives in ../shared beside the checkout; tests using it skip without it."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

SHARED = Path(__file__).resolve().parent.parent.parent / "shared"


@pytest.fixture(scope="session")
def shared() -> Path:
    """Root of ../shared (real camera-trap frames, re-ID set, census fixtures); skips when absent."""
    if not (SHARED / "data").is_dir():
        pytest.skip("../shared is absent (a user's fresh clone): real-data test skipped")
    return SHARED


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "catalog.db"


@pytest.fixture(scope="session")
def spots():
    """``spots(seed, h=200, w=260)``: an (h, w, 3) uint8 'coat', dark blobs of random size on a lighter
    ground, slightly blurred; local-feature tests (SIFT, ALIKED, LightGlue) match it against itself."""
    import cv2

    def make(seed: int, h: int = 200, w: int = 260) -> np.ndarray:
        rng = np.random.default_rng(seed)
        im = np.full((h, w), 190, np.uint8)
        for _ in range(140):
            c = (int(rng.integers(0, w)), int(rng.integers(0, h)))
            ax = (int(rng.integers(3, 10)), int(rng.integers(3, 10)))
            cv2.ellipse(im, c, ax, float(rng.uniform(0, 180)), 0, 360, int(rng.integers(20, 90)), -1)
        im = cv2.GaussianBlur(im, (0, 0), 1.0)
        return np.dstack([im, (im * 0.8).astype(np.uint8), (im * 0.6).astype(np.uint8)])

    return make
