"""Shared fixtures. Real data lives in ../shared beside the checkout; tests using it skip without it."""
from __future__ import annotations

from pathlib import Path

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
