"""Issue 23, point 13: what a clean machine installs. pytest is a test tool, not a runtime dependency;
exactly one OpenCV distribution provides cv2 (two side by side overwrite each other's files); the README
says what the browser test and the optional extras need."""
from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _project() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]


def _names(reqs: list[str]) -> list[str]:
    return [re.split(r"[<>=!~\[ ;]", r.strip(), maxsplit=1)[0].lower() for r in reqs]


def test_pytest_is_only_a_test_extra():
    p = _project()
    assert "pytest" not in _names(p["dependencies"])
    assert "pytest" in _names(p["optional-dependencies"]["test"])


def test_one_opencv_distribution():
    p = _project()
    every = _names(p["dependencies"]) + [n for extra in p["optional-dependencies"].values() for n in _names(extra)]
    cv = [n for n in every if n.startswith("opencv")]
    assert cv == ["opencv-python"], cv


def test_readme_names_chromium_and_the_extras():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "chromium" in text and ".ci/run" in text
    assert "megadetector" in text


def test_readme_is_short_and_starts_with_the_two_commands():
    """Issue 21: the README stays under about 1,200 words (detail lives in docs/ and the model cards), and its
    first two code blocks are the install-and-demo and the test commands."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    assert len(text.split()) <= 1200, f"README.md has {len(text.split())} words: move detail to docs/"
    blocks = text.split("```")[1::2]
    assert "spotid demo" in blocks[0] and "pytest" in blocks[1]
