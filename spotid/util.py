"""Small helpers shared by all stages: atomic files, time zones, reduced image decoding, output."""
from __future__ import annotations

import json
import logging
import os
import re
import secrets
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Iterable, Iterator, TypeVar

T = TypeVar("T")

IMAGE_EXTS = {".jpg", ".jpeg", ".png"}
VIDEO_EXTS = {".mp4", ".avi", ".mov"}


# -- atomic files ----------------------------------------------------------------------------------
def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` via a temp file in the same folder and ``os.replace``.

    The file gets the permissions ``open(path, "w")`` gives a new file: 0o666 less the user's umask
    (0644 under the usual umask 022, 0600 under 077), so colleagues can read census tables and exports.
    A replaced file gets those too (a write-then-rename never keeps the old file's mode).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = _new_temp(path)
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


def _new_temp(path: Path) -> tuple[int, str]:
    """Create an empty, unique temp file beside ``path``; returns ``(fd, name)``.

    It is opened with mode 0o666 so the kernel applies the umask (and a default ACL of the folder),
    exactly as for a plain ``open``. Not ``tempfile.mkstemp``: its files are 0600 (private by design),
    and ``os.replace`` would hand that mode on to every output. Nor reading the umask to chmod: the
    only portable read, ``os.umask(0)`` then restoring it, changes the process-wide umask for a moment,
    racing with other threads that create files (detect's decoders, the review server), and a chmod
    would override a folder's default ACL.
    """
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_BINARY", 0)
    for _ in range(100):   # O_EXCL: a name another writer took (or an attacker's symlink) is never reused
        tmp = str(path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp"))
        try:
            return os.open(tmp, flags, 0o666), tmp
        except FileExistsError:
            continue
    raise FileExistsError(f"could not create a temp file beside {path}: remove the stale .{path.name}.*.tmp files")


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


def parse_ts(text: str | None) -> datetime | None:
    """An ISO-8601 timestamp as the catalog stores it (``Z`` allowed) -> datetime; None when empty or unreadable."""
    if not text:
        return None
    try:
        return datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    except ValueError:
        return None


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
