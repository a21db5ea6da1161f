"""Video frames: a trail-camera clip becomes a few still frames that the rest of spotid treats as photos.

Sampling (:class:`FrameSampler`, one sequential decode of the clip):
- **regular** frames every ``every_s`` seconds from the first frame, spread wider when the clip is longer
  than ``every_s * max_frames`` (so a long clip is still covered from start to end);
- **motion** frames: every ``1 / analysis_fps`` s a frame is reduced to a grey copy (long side
  ``analysis_px``, blurred) and compared with the previous one; the fraction of pixels that changed by
  more than ``DIFF_LEVEL`` grey levels is its motion score. Local peaks of that score at or above
  ``motion`` are the frames where something moves (an animal walking in), at most one per
  ``min_gap`` seconds;
- at most ``max_frames`` per clip: the strongest motion peaks take up to half, regular frames the rest
  (evenly spread), and slots left over go to further motion peaks.

Frames neither analysed nor sampled are only grabbed (``VideoCapture.grab``: decoded, never converted to
BGR or copied). OpenCV's FFmpeg reader has no reduced-size decoding for H.264/MPEG-4, so that, and reducing
analysed frames at once, is the saving available; the clip is decoded once.

Storage: frames are JPEGs (quality ``jpeg_quality``) at the clip's full resolution, because identify cuts
rosette crops from them, in the frame cache beside the catalog (like identify's crop cache
``<stem>_crops``): ``<db folder>/<db stem>_frames/<video sha>/frame<NNNNNN>.jpg``, ``NNNNNN`` the 0-based
frame number in the clip. Keyed by the clip's content hash, so a re-run (or a re-built catalog next to the
same cache) writes the same files. In the catalog each frame is a media row (``kind`` image) with
``parent_id`` = the clip's row and ``frame_offset_s``; see :func:`insert_frames` and docs/catalog.md.
"""
from __future__ import annotations

import hashlib
import heapq
import logging
import os
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from spotid.catalog.tables import media as media_table
from spotid.types import MediaRow
from spotid.util import atomic_write_bytes

log = logging.getLogger(__name__)

# FFmpeg's own log lines ("moov atom not found") would go to stderr, where a user reads them as a crash; the
# failure is recorded and shown instead. OpenCV reads this once, when its FFmpeg backend first starts.
os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")

DIFF_LEVEL = 25          # grey levels (0..255) a reduced pixel must change by to count as moving
DIGEST_BYTES = 20        # BLAKE2b-160, as media.sha


class VideoError(ValueError):
    """Bad sampling settings (the message names the fix)."""


@dataclass(frozen=True)
class SampledFrame:
    """One frame chosen from a clip. ``jpeg``: the encoded frame (full resolution, ``width`` x ``height``)."""

    index: int           # 0-based frame number in the clip
    offset_s: float      # seconds from the clip's first frame
    reason: str          # "regular" | "motion"
    motion: float        # fraction of reduced pixels changed against the previous analysed frame (0..1)
    jpeg: bytes = field(repr=False)
    width: int = 0
    height: int = 0


@dataclass
class VideoSample:
    """What :class:`FrameSampler` got out of one clip. ``failure`` set: no frame could be used."""

    frames: list[SampledFrame]
    fps: float = 0.0
    n_decoded: int = 0          # frames the reader delivered
    n_header: int = 0           # frames the container says it holds (0 = unknown)
    failure: str | None = None
    warning: str | None = None  # e.g. the clip decodes only part of the way


@dataclass(frozen=True)
class SavedFrame:
    """A sampled frame written to the frame cache (what the catalog row is made of)."""

    index: int
    offset_s: float
    reason: str
    path: Path
    sha: str
    size_bytes: int
    width: int
    height: int


def cannot_open(path: Path | str) -> str:
    return (f"video OpenCV cannot read ({Path(path).name}: no decodable video stream): the file is damaged, "
            "cut short or in a codec OpenCV lacks; re-copy it from the card, or convert it "
            "(ffmpeg -i IN -c:v libx264 OUT.mp4) and ingest the copy")


class FrameSampler:
    """``FrameSampler(every_s=1, max_frames=12, motion=0.01)(path) -> VideoSample`` (never raises for a bad
    clip: the result carries ``failure``). ``motion=0`` turns motion sampling off."""

    def __init__(self, *, every_s: float = 1.0, max_frames: int = 12, motion: float = 0.01,
                 analysis_fps: float = 4.0, analysis_px: int = 160, jpeg_quality: int = 92):
        if every_s <= 0:
            raise VideoError(f"video_every_s {every_s} must be > 0 (seconds between regular frames, e.g. 2)")
        if max_frames < 1:
            raise VideoError(f"video_max_frames {max_frames} must be >= 1 (frames kept per video, e.g. 12)")
        if not 0.0 <= motion <= 1.0:
            raise VideoError(f"video_motion {motion} must lie in [0, 1] (fraction of pixels that changed; 0 = off)")
        if analysis_fps <= 0 or analysis_px < 16:
            raise VideoError("analysis_fps must be > 0 and analysis_px >= 16")
        self.every_s, self.max_frames, self.motion = float(every_s), int(max_frames), float(motion)
        self.analysis_fps, self.analysis_px, self.jpeg_quality = float(analysis_fps), int(analysis_px), int(jpeg_quality)

    # -- helpers ---------------------------------------------------------------------------------
    def _small(self, img):
        import cv2

        h, w = img.shape[:2]
        s = self.analysis_px / max(h, w)
        small = cv2.resize(img, (max(1, round(w * s)), max(1, round(h * s))), interpolation=cv2.INTER_AREA) \
            if s < 1 else img
        grey = cv2.cvtColor(small, cv2.COLOR_BGR2GRAY) if small.ndim == 3 else small
        return cv2.GaussianBlur(grey, (5, 5), 0)

    def _frame(self, img, index: int, offset: float, reason: str, motion: float) -> SampledFrame:
        import cv2

        ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, self.jpeg_quality])
        if not ok:  # never seen with 8-bit BGR frames; say so rather than store nothing silently
            raise RuntimeError(f"OpenCV could not encode frame {index} as JPEG")
        return SampledFrame(index, round(offset, 3), reason, round(float(motion), 5), buf.tobytes(),
                            int(img.shape[1]), int(img.shape[0]))

    # -- the stage -------------------------------------------------------------------------------
    def __call__(self, path: str | Path) -> VideoSample:
        import cv2
        import numpy as np

        cap = cv2.VideoCapture(str(path))
        try:
            if not cap.isOpened():
                return VideoSample([], failure=cannot_open(path))
            fps = float(cap.get(cv2.CAP_PROP_FPS) or 0.0)
            fps = fps if 0.0 < fps < 1000.0 else 0.0
            n_header = int(max(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0, 0))
            duration = n_header / fps if fps and n_header else 0.0
            spacing = max(self.every_s, duration / self.max_frames) if duration else self.every_s
            step = max(1, round(fps / self.analysis_fps)) if fps else 1
            min_gap = min(1.0, spacing / 2)
            regular: list[SampledFrame] = []
            peaks: list[tuple[float, int, SampledFrame]] = []   # min-heap of the strongest motion peaks
            next_regular, prev_small, prev_motion = 0.0, None, 0.0
            pending = None   # (motion, index, offset, image) of the last analysed frame, a peak candidate
            i = 0

            def consider(cand, next_motion: float) -> None:
                m, idx, off, img = cand
                if self.motion <= 0 or m < self.motion or m <= next_motion:
                    return
                if len(peaks) >= 2 * self.max_frames and m <= peaks[0][0]:
                    return   # weaker than every kept peak: not worth encoding
                heapq.heappush(peaks, (m, idx, self._frame(img, idx, off, "motion", m)))
                if len(peaks) > 2 * self.max_frames:
                    heapq.heappop(peaks)

            while cap.grab():
                t = i / fps if fps else float(cap.get(cv2.CAP_PROP_POS_MSEC) or 0.0) / 1000.0
                analyse = i % step == 0
                want_regular = t + 1e-6 >= next_regular
                if analyse or want_regular:
                    ok, img = cap.retrieve()
                    if not ok or img is None:
                        break
                    if want_regular:
                        regular.append(self._frame(img, i, t, "regular", 0.0))
                        while next_regular <= t + 1e-6:
                            next_regular += spacing
                        if len(regular) > 2 * self.max_frames:   # length unknown and long: halve the density
                            regular, spacing = regular[::2], spacing * 2
                    if analyse:
                        small = self._small(img)
                        m = 0.0
                        if prev_small is not None and prev_small.shape == small.shape:
                            m = float(np.mean(cv2.absdiff(small, prev_small) > DIFF_LEVEL))
                        if pending is not None and pending[0] >= prev_motion:
                            consider(pending, m)
                        prev_motion = pending[0] if pending is not None else 0.0
                        pending, prev_small = (m, i, t, img), small
                i += 1
            if pending is not None and pending[0] >= prev_motion:
                consider(pending, -1.0)
        except cv2.error as e:
            return VideoSample([], failure=f"video OpenCV cannot decode ({e.msg if hasattr(e, 'msg') else e}); "
                                           "re-copy it from the card or convert it (ffmpeg -i IN -c:v libx264 OUT.mp4)")
        finally:
            cap.release()
        if i == 0 or not regular:
            return VideoSample([], fps, i, n_header, failure=cannot_open(path).replace(
                "no decodable video stream", "it opens but no frame decodes"))
        out = VideoSample(self._choose(regular, peaks, min_gap), fps, i, n_header)
        if n_header and i < 0.9 * n_header:
            got = f"{i / fps:.1f} s of {n_header / fps:.1f} s" if fps else f"{i} of {n_header} frames"
            out.warning = (f"video decodes to {got}: cut short? the rest was not analysed; "
                           "re-copy it from the card if you can")
        return out

    def _choose(self, regular: list[SampledFrame], peaks: list, min_gap: float) -> list[SampledFrame]:
        """Strongest motion peaks (at most one per ``min_gap`` s) take up to half of ``max_frames``, regular
        frames evenly spread fill the rest, slots left over go to further peaks; in clip order."""
        strong: list[SampledFrame] = []
        for _m, _idx, f in sorted(peaks, key=lambda p: (-p[0], p[1])):
            if all(abs(f.offset_s - g.offset_s) >= min_gap for g in strong):
                strong.append(f)
        take = strong[: self.max_frames // 2]
        rest = self.max_frames - len(take)
        taken = {f.index for f in take}
        reg = [f for f in regular if f.index not in taken]
        if len(reg) > rest:   # evenly spread, first and last kept
            reg = [reg[round(k * (len(reg) - 1) / max(rest - 1, 1))] for k in range(rest)] if rest > 1 else reg[:rest]
        chosen = take + reg
        for f in strong[len(take):]:
            if len(chosen) >= self.max_frames:
                break
            if f.index not in {g.index for g in chosen}:
                chosen.append(f)
        return sorted({f.index: f for f in chosen}.values(), key=lambda f: f.index)


def frames_dir(db_path: str | Path) -> Path:
    """The frame cache of the catalog at ``db_path``: ``<folder>/<stem>_frames`` (beside ``<stem>_crops``)."""
    p = Path(db_path).resolve()
    return p.parent / f"{p.stem}_frames"


def frame_key(video_sha: str, index: int) -> str:
    """``media.sha`` of a video frame: BLAKE2b-160 of ``<video sha>/frame<NNNNNN>``, the frame's identity in
    its video. Not the JPEG's content hash: two identical frames (a still scene) stay two frames with their
    own times, and the same clip from a second card still maps onto the frames already there."""
    return hashlib.blake2b(f"{video_sha}/frame{index:06d}".encode(), digest_size=DIGEST_BYTES).hexdigest()


def save_frames(sample: VideoSample, folder: Path, video_sha: str) -> list[SavedFrame]:
    """Write the sampled frames as ``folder/frame<NNNNNN>.jpg`` (atomically), keyed by :func:`frame_key`."""
    out = []
    for f in sample.frames:
        path = atomic_write_bytes(folder / f"frame{f.index:06d}.jpg", f.jpeg)
        sha = frame_key(video_sha, f.index)
        out.append(SavedFrame(f.index, f.offset_s, f.reason, path, sha, len(f.jpeg), f.width, f.height))
    return out


def sample_probe(probe, sampler: FrameSampler, cache: Path) -> None:
    """Sample a probed video (``spotid.ingest.probe.Probe``) into ``cache/<sha>/``: sets ``probe.frames``,
    or ``probe.failure`` when OpenCV cannot read it; a clip that decodes only part-way gets a warning."""
    s = sampler(probe.path)
    if s.failure:
        probe.failure = s.failure
        return
    if s.warning:
        probe.warnings.append(s.warning)
    probe.frames = save_frames(s, cache / str(probe.sha), str(probe.sha))


def sampled_video_shas(cat) -> set[str]:
    """Content hashes of the catalog's videos that already have frames (an ingest re-run skips them)."""
    return media_table.sampled_video_shas(cat)


def frame_rel_path(video_rel: str, index: int) -> str:
    """MegaDetector's name for a video frame (``process_video``): ``<video path>/frame<NNNNNN>.jpg``."""
    return f"{video_rel}/frame{index:06d}.jpg"


def insert_frames(cat, video_sha: str, frames: list[SavedFrame], run_id: int | None) -> int:
    """Add ``frames`` as media children of the video with content hash ``video_sha`` (inside the caller's
    transaction); returns the number added. A video that already has frames gets none (a re-run, or the same
    clip on a second card). Frame time = the video's start + offset, to the second, with its time source."""
    v = media_table.video_by_sha(cat, video_sha)
    if v is None or not frames:
        return 0
    if media_table.has_frames(cat, v.id):
        return 0
    start = datetime.fromisoformat(v.timestamp) if v.timestamp else None
    added = 0
    with cat.transaction():
        for f in frames:
            ts = (start + timedelta(seconds=f.offset_s)).replace(microsecond=0).isoformat() if start else None
            added += media_table.insert_if_new(cat, MediaRow(
                deployment_id=v.deployment_id, sha=f.sha, path=str(f.path), rel_path=frame_rel_path(v.rel_path, f.index),
                kind="image", timestamp=ts, time_source=v.time_source, width=f.width, height=f.height,
                size_bytes=f.size_bytes, make=v.make, model=v.model, serial=v.serial, warning=None, run_id=run_id,
                parent_id=v.id, frame_offset_s=f.offset_s))
    return added
