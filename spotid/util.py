"""Small helpers shared by all stages: atomic files, time zones, reduced image decoding, output."""
from __future__ import annotations

import json
import logging
import os
import re
import sys
import tempfile
from datetime import timedelta, timezone
from pathlib import Path
from typing import Any, Iterable, Iterator, TypeVar

T = TypeVar("T")

IMAGE_EXTS = {".jpg", ".jpeg", ".png"}
VIDEO_EXTS = {".mp4", ".avi", ".mov"}


# -- atomic files ----------------------------------------------------------------------------------
def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` via a temp file in the same folder and ``os.replace``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with _suppress():
            os.unlink(tmp)
        raise
    return path


def atomic_write_text(path: str | Path, text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | Path, obj: Any, *, indent: int | None = 1) -> Path:
    return atomic_write_text(path, json.dumps(obj, indent=indent, default=str) + "\n")


class _suppress:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return True


# -- time zones ------------------------------------------------------------------------------------
_TZ_RE = re.compile(r"^(?:UTC|GMT)?\s*([+-])(\d{1,2})(?::?(\d{2}))?$", re.IGNORECASE)


def parse_tz(text: str | None) -> timezone | None:
    """Parse ``+10:00``, ``-0530``, ``+3``, ``UTC+10`` or ``Z``/``UTC`` into a fixed-offset timezone.

    Raises ValueError naming the accepted forms; ``None``/empty gives ``None``.
    """
    if text is None or str(text).strip() == "":
        return None
    s = str(text).strip()
    if s.upper() in {"Z", "UTC", "GMT"}:
        return timezone.utc
    m = _TZ_RE.match(s)
    if not m:
        raise ValueError(f"bad time zone {text!r}: use an offset like +10:00, -05:30 or UTC")
    sign = 1 if m.group(1) == "+" else -1
    hours, minutes = int(m.group(2)), int(m.group(3) or 0)
    if hours > 14 or minutes >= 60:
        raise ValueError(f"bad time zone {text!r}: offsets run from -12:00 to +14:00")
    return timezone(sign * timedelta(hours=hours, minutes=minutes))


def format_tz(tz: timezone | None) -> str | None:
    if tz is None:
        return None
    off = tz.utcoffset(None)
    total = int(off.total_seconds() // 60)
    sign = "+" if total >= 0 else "-"
    total = abs(total)
    return f"{sign}{total // 60:02d}:{total % 60:02d}"


# -- images ----------------------------------------------------------------------------------------
def open_image_reduced(path: str | Path, max_side: int):
    """Open an image as RGB PIL, letting libjpeg decode at 1/2, 1/4 or 1/8 scale when the target
    ``max_side`` allows it (PIL ``draft``). Returns ``(image, (orig_w, orig_h))``.

    The returned image is at least ``max_side`` on its long side when the original is, so callers
    resize down once. Boxes computed on it are converted with the original size.
    """
    from PIL import Image

    im = Image.open(path)
    orig = im.size
    if im.format == "JPEG":
        scale = max(orig) / max_side
        if scale >= 2:
            im.draft("RGB", (max(1, orig[0] // int(scale)), max(1, orig[1] // int(scale))))
    im = im.convert("RGB")
    return im, orig


# -- output ----------------------------------------------------------------------------------------
def setup_logging(verbose: bool = False) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )


def print_json(obj: Any) -> None:
    """Machine output: one JSON document on stdout."""
    sys.stdout.write(json.dumps(obj, indent=1, default=str) + "\n")
    sys.stdout.flush()


def progress(items: Iterable[T], total: int | None = None, description: str = "") -> Iterator[T]:
    """A rich progress bar on stderr; silent when stderr is not a terminal (CI, tests, pipes)."""
    if not sys.stderr.isatty():
        yield from items
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn
    from rich.console import Console

    with Progress(
        "[progress.description]{task.description}", BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
        console=Console(stderr=True), transient=False,
    ) as bar:
        task = bar.add_task(description, total=total)
        for it in items:
            yield it
            bar.advance(task)


def batched(items: Iterable[T], n: int) -> Iterator[list[T]]:
    batch: list[T] = []
    for it in items:
        batch.append(it)
        if len(batch) >= n:
            yield batch
            batch = []
    if batch:
        yield batch


def repo_root() -> Path:
    """The source checkout (in an editable install models/ and configs/ live beside the package)."""
    return Path(__file__).resolve().parent.parent


def data_dir(name: str) -> Path:
    """A shipped data folder (``models`` or ``configs``): the copy packaged into ``spotid/_data`` by a
    regular ``pip install .`` (see setup.py), else the checkout's top-level folder (editable install)."""
    packaged = Path(__file__).resolve().parent / "_data" / name
    return packaged if packaged.is_dir() else repo_root() / name


def models_dir() -> Path:
    """Where shipped weights live: ``$SPOTID_MODELS``, else the shipped ``models`` (:func:`data_dir`)."""
    return Path(os.environ.get("SPOTID_MODELS", data_dir("models")))
