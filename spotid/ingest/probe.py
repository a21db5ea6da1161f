"""Read one file off a card without decoding its pixels: content hash, kind, header size, EXIF
time and camera, and a structural integrity check.

Cost per frame: one sequential read, one BLAKE2b pass (hashlib releases the GIL, so a thread pool
hashes on several cores), a PIL header parse and a walk over the JPEG's marker segments. Pixels
are decoded only for a JPEG whose scan has no end marker (at 1/8 scale, to see how much survives).
"""
from __future__ import annotations

import hashlib
import io
import logging
import os
import re
import threading
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from spotid.util import IMAGE_EXTS, VIDEO_EXTS

log = logging.getLogger(__name__)

DIGEST_BYTES = 20            # blake2b-160, the catalog's media.sha
CHUNK = 1 << 20              # streaming read size for videos and very large files
MAX_IN_MEMORY = 64 << 20     # images up to this size are read in one go (hash + header from one read)

# EXIF tags (Exif 2.32). Times live in the Exif sub-IFD, which PIL's top-level getexif() omits.
EXIF_IFD = 0x8769
TAG_MAKE, TAG_MODEL, TAG_DATETIME = 0x010F, 0x0110, 0x0132
TAG_DTO, TAG_DTD = 0x9003, 0x9004
TAG_OFFSET, TAG_OFFSET_DTO, TAG_OFFSET_DTD = 0x9010, 0x9011, 0x9012
TAG_BODY_SERIAL, TAG_CAMERA_SERIAL, TAG_MAKERNOTE = 0xA431, 0xC62F, 0x927C

_EXIF_TIME = re.compile(r"^\s*(\d{4})[:\-/](\d{2})[:\-/](\d{2})[ T](\d{2}):(\d{2}):(\d{2})")
_OFFSET = re.compile(r"^\s*([+-])(\d{2}):(\d{2})\s*$")
_VIDEO_BOXES = {b"ftyp", b"moov", b"mdat", b"free", b"wide", b"skip", b"pnot"}
_truncated_lock = threading.Lock()  # PIL's LOAD_TRUNCATED_IMAGES is a module global


def file_kind(name: str) -> str | None:
    """'image', 'video' or None (ignored) from the extension, any case. Hidden files are None."""
    if name.startswith("."):
        return None  # .DS_Store, AppleDouble ._IMG_0001.JPG, ...
    ext = os.path.splitext(name)[1].lower()
    if ext in IMAGE_EXTS:
        return "image"
    if ext in VIDEO_EXTS:
        return "video"
    return None


@dataclass
class Probe:
    """What one file holds, before any deployment or time-zone logic.

    ``naive_time`` is the camera's wall-clock time (EXIF carries no zone unless ``exif_offset``);
    ``failure`` set means the file must not become media.
    """

    path: Path
    kind: str
    size: int = 0
    mtime: float = 0.0
    sha: str | None = None
    format: str | None = None
    width: int | None = None
    height: int | None = None
    naive_time: datetime | None = None
    time_source: str | None = None  # DateTimeOriginal | DateTimeDigitized | DateTime | None (-> mtime)
    exif_offset: str | None = None  # "+10:00" from OffsetTimeOriginal & co.
    make: str | None = None
    model: str | None = None
    serial: str | None = None
    warnings: list[str] = field(default_factory=list)
    failure: str | None = None
    frames: list = field(default_factory=list)  # a video's sampled frames (spotid.ingest.video.SavedFrame)


def probe_file(path: str | Path, kind: str, *, min_decoded_fraction: float = 0.5) -> Probe:
    """Probe one image or video. Never raises for a bad file: problems land in ``failure``/``warnings``."""
    path = Path(path)
    p = Probe(path=path, kind=kind)
    try:
        st = path.stat()
        p.size, p.mtime = st.st_size, st.st_mtime
        if p.size == 0:
            p.failure = "empty file (0 bytes): the camera or the copy failed; re-copy it from the card"
            return p
        tail = None
        if kind == "image" and p.size <= MAX_IN_MEMORY:
            with open(path, "rb") as f:
                data = f.read()
            p.sha = hashlib.blake2b(data, digest_size=DIGEST_BYTES).hexdigest()
        else:
            p.sha, data, tail = _stream_hash(path)
    except OSError as e:
        p.failure = f"unreadable: {e.strerror or e}; check the card copy and file permissions"
        return p
    if kind == "video":
        _check_video(p, data)
        if p.format == "MP4":
            p.naive_time = _mp4_created(path)
            p.time_source = "QuickTimeCreateDate" if p.naive_time else None
    else:
        _probe_image(p, data, min_decoded_fraction, tail)
    return p


def _stream_hash(path: Path) -> tuple[str, bytes, bytes]:
    """Streaming BLAKE2b; returns (hex, first chunk, last chunk) so headers and the end marker
    can still be checked without holding the file in memory."""
    h = hashlib.blake2b(digest_size=DIGEST_BYTES)
    head = tail = b""
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            if not head:
                head = chunk
            tail = chunk
            h.update(chunk)
    return h.hexdigest(), head, tail


def _check_video(p: Probe, head: bytes) -> None:
    is_mp4 = head[4:8] in _VIDEO_BOXES
    is_avi = head[:4] == b"RIFF" and head[8:12] == b"AVI "
    if not (is_mp4 or is_avi):
        p.failure = "not a video: no MP4/QuickTime or AVI header; the file is damaged or misnamed"
        return
    p.format = "AVI" if is_avi else "MP4"


_MP4_EPOCH = datetime(1904, 1, 1)


def _mp4_created(path: Path) -> datetime | None:
    """Creation time from an MP4/QuickTime ``moov/mvhd`` box, read by seeking over the top-level
    boxes (the movie data is never read). Trail cameras write their local clock there although
    the format says UTC, so it is treated like an EXIF time: naive, the deployment's tz applies."""
    try:
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            pos = 0
            while pos + 8 <= size:
                f.seek(pos)
                head = f.read(16)
                n, typ, hdr = int.from_bytes(head[:4], "big"), head[4:8], 8
                if n == 1:
                    n, hdr = int.from_bytes(head[8:16], "big"), 16
                elif n == 0:
                    n = size - pos
                if n < hdr:
                    return None
                if typ == b"moov":
                    f.seek(pos + hdr)
                    moov = f.read(min(n - hdr, 1 << 22))
                    i = moov.find(b"mvhd")
                    if i < 4:
                        return None
                    body = moov[i + 4:]
                    secs = int.from_bytes(body[4:12] if body[0] == 1 else body[4:8], "big")
                    if secs == 0:
                        return None
                    return _MP4_EPOCH + timedelta(seconds=secs)
                pos += n
    except (OSError, OverflowError, IndexError):
        return None
    return None


def _probe_image(p: Probe, data: bytes, min_decoded_fraction: float, tail: bytes | None = None) -> None:
    """``data`` is the whole file, or only its first chunk when ``tail`` (its last chunk) is given."""
    from PIL import Image

    try:
        im = Image.open(io.BytesIO(data))
    except Exception as e:  # UnidentifiedImageError, OSError, DecompressionBombError, ...
        if data[:2] == b"\xff\xd8" and jpeg_structure(data)[0] < 0:
            p.failure = _header_cut(data)
            return
        what = "looks like text" if _looks_like_text(data) else f"{type(e).__name__}"
        p.failure = f"not an image ({what}): the file is damaged or misnamed"
        return
    p.format, (p.width, p.height) = im.format, im.size
    try:
        _read_exif(p, im)
    except Exception as e:  # corrupt EXIF must not lose the frame; time falls back to mtime
        p.warnings.append(f"unreadable EXIF ({type(e).__name__}: {e}); time taken from the file's mtime")
    if tail is not None:  # too large to hold: check the structure from its ends, decode nothing
        ends_ok = b"\xff\xd9" in tail[-64 << 10:] if p.format in ("JPEG", "MPO") else b"IEND" in tail[-12:]
        if p.format in ("JPEG", "MPO", "PNG") and not ends_ok:
            p.failure = f"truncated {p.format} ({p.size} bytes, no end marker); re-copy it from the card"
    elif p.format in ("JPEG", "MPO"):
        _check_jpeg(p, data, min_decoded_fraction)
    elif p.format == "PNG" and b"IEND" not in data[-12:]:
        _check_truncated_other(p, data)


def _looks_like_text(data: bytes) -> bool:
    head = data[:512]
    return bool(head) and all(b in b"\t\n\r" or 32 <= b < 127 or b >= 128 for b in head) and b"\x00" not in head


# -- EXIF --------------------------------------------------------------------------------------------
def _clean(v) -> str | None:
    if v is None:
        return None
    if isinstance(v, bytes):
        v = v.decode("latin-1", "replace")
    s = str(v).replace("\x00", " ").strip()
    return s or None


def parse_exif_time(v) -> datetime | None:
    """'2024:03:01 22:13:05' (also with '-' or 'T') -> naive datetime; None for blank/invalid."""
    s = _clean(v)
    if not s:
        return None
    m = _EXIF_TIME.match(s)
    if not m:
        return None
    try:
        return datetime(*map(int, m.groups()))
    except ValueError:  # 0000:00:00 00:00:00, month 13, ...
        return None


def _read_exif(p: Probe, im) -> None:
    exif = im.getexif()
    if not exif:
        return
    sub = exif.get_ifd(EXIF_IFD)
    p.make, p.model = _clean(exif.get(TAG_MAKE)), _clean(exif.get(TAG_MODEL))
    for name, value, offset in (
        ("DateTimeOriginal", sub.get(TAG_DTO), sub.get(TAG_OFFSET_DTO)),
        ("DateTimeDigitized", sub.get(TAG_DTD), sub.get(TAG_OFFSET_DTD)),
        ("DateTime", exif.get(TAG_DATETIME), sub.get(TAG_OFFSET)),
    ):
        t = parse_exif_time(value)
        if t is None:
            if _clean(value):
                p.warnings.append(f"invalid EXIF {name} {_clean(value)!r} ignored")
            continue
        p.naive_time, p.time_source = t, name
        off = _clean(offset)
        if off and _OFFSET.match(off):
            p.exif_offset = off
        break
    p.serial = (
        _clean(sub.get(TAG_BODY_SERIAL))
        or _clean(exif.get(TAG_CAMERA_SERIAL))
        or _maker_serial(p.make, sub.get(TAG_MAKERNOTE))
    )


def _maker_serial(make: str | None, note) -> str | None:
    """Serial number from maker notes we know (Reconyx HyperFire and HF2; layouts as documented
    for ExifTool's Reconyx module). Other makers: None."""
    if not make or "RECONYX" not in make.upper() or not isinstance(note, bytes):
        return None
    if note[:2] == b"\x01\xf1" and len(note) >= 0x2A + 30:  # HyperFire: UCS-2 at int16u index 0x15
        raw = note[0x2A:0x2A + 30]
    elif note[:9] == b"RECONYXH2" and len(note) >= 0x7E + 30:  # HF2 PRO: UTF-16 at byte 0x7E
        raw = note[0x7E:0x7E + 30]
    else:
        return None
    s = raw.decode("utf-16-le", "replace").split("\x00")[0].strip()
    return s if s.isprintable() and s.isascii() and s else None


# -- integrity ---------------------------------------------------------------------------------------
def jpeg_structure(data: bytes) -> tuple[int, int]:
    """Walk a JPEG's marker segments to the first scan. Returns ``(sos, eoi)`` byte offsets:
    ``sos`` -1 when the file ends (or breaks) inside the header, ``eoi`` -1 when no end-of-image
    marker follows the scan, i.e. the file was cut. The walk skips APP segments by their length, so
    an EXIF thumbnail's own EOI is not mistaken for the image's; entropy-coded data cannot contain
    FF D9 (0xFF bytes there are stuffed), so any FF D9 after the scan start is an EOI.
    """
    n = len(data)
    if data[:2] != b"\xff\xd8":
        return -1, -1
    pos = 2
    while pos + 4 <= n:
        if data[pos] != 0xFF:
            return -1, -1
        m = data[pos + 1]
        if m == 0xFF:  # fill byte
            pos += 1
            continue
        if m in (0xD8, 0x01) or 0xD0 <= m <= 0xD7:
            pos += 2
            continue
        if m == 0xD9:
            return -1, -1
        if m == 0xDA:
            # rfind from the end is fast; any FF D9 after the scan start means the scan ended.
            eoi = data.rfind(b"\xff\xd9", pos + 2)
            return pos, eoi
        pos += 2 + int.from_bytes(data[pos + 2:pos + 4], "big")
    return -1, -1


def _check_jpeg(p: Probe, data: bytes, min_decoded_fraction: float) -> None:
    sos, eoi = jpeg_structure(data)
    if sos < 0:
        p.failure = _header_cut(data)
        return
    if eoi >= 0:
        return
    frac = decoded_fraction(data)
    if frac is None or frac <= 0 or frac < min_decoded_fraction:
        shown = "nothing decodes" if not frac else f"only {frac:.0%} of the rows decode"
        p.failure = f"truncated JPEG ({len(data)} bytes): {shown}; re-copy it from the card"
    else:
        rest = "the rest is grey" if frac < 0.995 else "no end marker"
        p.warnings.append(
            f"truncated JPEG ({len(data)} bytes): about {frac:.0%} of the rows decode, {rest}; kept "
            "(readers need PIL ImageFile.LOAD_TRUNCATED_IMAGES); re-copy it from the card if you can")


def _header_cut(data: bytes) -> str:
    return (f"truncated or corrupt JPEG: the file ends or breaks inside its header ({len(data)} bytes), "
            "nothing decodes; re-copy it from the card")


def decoded_fraction(data: bytes) -> float | None:
    """Decode a JPEG without end marker at 1/8 scale and return the fraction of rows that hold
    image data (libjpeg fills what is missing with flat grey 128). None when it does not decode."""
    import numpy as np
    from PIL import Image, ImageFile

    with _truncated_lock:
        old = ImageFile.LOAD_TRUNCATED_IMAGES
        try:
            ImageFile.LOAD_TRUNCATED_IMAGES = True
            im = Image.open(io.BytesIO(data))
            im.draft("RGB", (max(1, im.size[0] // 8), max(1, im.size[1] // 8)))
            im.load()
            a = np.asarray(im.convert("RGB"))
        except Exception:
            return None
        finally:
            ImageFile.LOAD_TRUNCATED_IMAGES = old
    grey = (a == 128).all(axis=(1, 2))
    h = len(grey)
    missing = h if grey.all() else int(np.argmax(~grey[::-1]))  # trailing grey rows
    return (h - missing) / h if h else None


def _check_truncated_other(p: Probe, data: bytes) -> None:
    from PIL import Image, ImageFile

    with _truncated_lock:
        old = ImageFile.LOAD_TRUNCATED_IMAGES
        try:
            ImageFile.LOAD_TRUNCATED_IMAGES = True
            Image.open(io.BytesIO(data)).load()
        except Exception:
            p.failure = f"truncated {p.format} ({len(data)} bytes) that does not decode; re-copy it from the card"
            return
        finally:
            ImageFile.LOAD_TRUNCATED_IMAGES = old
    p.warnings.append(f"truncated {p.format} ({len(data)} bytes): decodes partially; kept")
