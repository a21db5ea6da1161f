"""Synthetic camera-trap frames for the ingest tests (small JPEGs with real EXIF sub-IFDs)."""
from __future__ import annotations

import os
import shutil
import zlib
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
from PIL import Image

T0 = datetime(2024, 3, 1, 22, 13, 5)


def exif_time(t: datetime) -> str:
    return t.strftime("%Y:%m:%d %H:%M:%S")


def make_jpeg(path: Path, *, dto: datetime | None = None, dtd: datetime | None = None, dt: datetime | None = None,
              offset: str | None = None, make: str | None = "RECONYX", model: str | None = "HF2X",
              serial: str | None = None, size=(64, 48), seed: int | None = None, quality: int = 85) -> Path:
    """A noise JPEG (unique content per seed/path) with EXIF: IFD0 Make/Model/DateTime and the Exif
    sub-IFD 0x8769 holding DateTimeOriginal/Digitized, OffsetTimeOriginal and BodySerialNumber."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed if seed is not None else zlib.crc32(str(path).encode()))
    im = Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8))
    ex = Image.Exif()
    if make:
        ex[0x010F] = make
    if model:
        ex[0x0110] = model
    if dt:
        ex[0x0132] = exif_time(dt)
    sub = ex.get_ifd(0x8769)
    if dto:
        sub[0x9003] = exif_time(dto)
    if dtd:
        sub[0x9004] = exif_time(dtd)
    if offset:
        sub[0x9011] = offset
    if serial:
        sub[0xA431] = serial
    im.save(path, "JPEG", exif=ex, quality=quality)
    return path


def make_burst_card(root: Path, times: list[datetime], *, prefix: str = "IMG", folder: str = "DCIM/100RECNX",
                    seed0: int = 0, size=(64, 48)) -> list[Path]:
    """One JPEG per time in ``root/folder``, named like a camera does (IMG_0001.JPG...)."""
    return [make_jpeg(root / folder / f"{prefix}_{i + 1:04d}.JPG", dto=t, seed=seed0 + i, size=size)
            for i, t in enumerate(times)]


def burst_times(offsets_s: list[float], t0: datetime = T0) -> list[datetime]:
    return [t0 + timedelta(seconds=s) for s in offsets_s]


def build_done_when_card(shared: Path, root: Path) -> dict:
    """The issue's acceptance card: serengeti-bursts, megadetector-test and southwest in
    DCIM/1xxRECNX folders, plus a duplicate copy of one frame, a JPEG cut to its first 30 kB and a
    text file named .jpg. Returns the paths of the planted files."""
    src = shared / "data" / "camera-traps"
    for sub, name in (("100RECNX", "serengeti-bursts"), ("101RECNX", "megadetector-test"), ("102RECNX", "southwest")):
        shutil.copytree(src / name, root / "DCIM" / sub, copy_function=shutil.copyfile)
    dup = root / "DCIM" / "103RECNX" / "COPY0128.JPG"
    dup.parent.mkdir(parents=True)
    shutil.copyfile(src / "serengeti-bursts" / "S1_D04_R6_PICT0128.JPG", dup)
    cut = root / "DCIM" / "103RECNX" / "CUT30K.JPG"
    cut.write_bytes((src / "megadetector-test" / "ena24_7904.jpg").read_bytes()[:30_000])
    text = root / "DCIM" / "103RECNX" / "NOTES.JPG"
    text.write_text("station AL-012: camera replaced batteries 2024-03-01\n")
    for p in root.rglob("*"):
        os.chmod(p, 0o755 if p.is_dir() else 0o644)
    return {"dup": dup, "cut": cut, "text": text}


def make_clip(path: Path, *, created: datetime | None = None, n: int = 80, fps: float = 10.0,
              size: tuple[int, int] = (64, 48), blob: tuple[int, int] | None = (30, 50)) -> Path:
    """A tiny MPEG-4 clip written with cv2.VideoWriter: grey background, a white disc moving right 3 px per
    frame in frames ``blob[0]`` to ``blob[1] - 1``. ``created``: camera time written into moov/mvhd (as a
    trail camera does); cv2 writes 0 there (no time)."""
    import cv2

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.stem + ".tmp.mp4")   # cv2 picks the container from the name
    w = cv2.VideoWriter(str(tmp), cv2.VideoWriter_fourcc(*"mp4v"), fps, size)
    if not w.isOpened():
        raise RuntimeError("cv2.VideoWriter cannot write mp4v here")
    for i in range(n):
        f = np.full((size[1], size[0], 3), 90, np.uint8)
        if blob and blob[0] <= i < blob[1]:
            cv2.circle(f, (4 + 3 * (i - blob[0]), size[1] // 2), 7, (255, 255, 255), -1)
        w.write(f)
    w.release()
    data = bytearray(tmp.read_bytes())
    tmp.unlink()
    if created is not None:
        i = data.find(b"mvhd")
        if i < 0 or data[i + 4] != 0:
            raise RuntimeError("no version-0 mvhd box in the clip cv2 wrote")
        data[i + 8:i + 12] = int((created - datetime(1904, 1, 1)).total_seconds()).to_bytes(4, "big")
    path.write_bytes(bytes(data))
    return path
