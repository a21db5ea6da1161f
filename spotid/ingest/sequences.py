"""Sequences (bursts): a deployment's frames ordered by time, split where the gap between two
consecutive frames exceeds ``gap_s`` (MegaDetector's default is 60 s).

Sequences are recomputed for the whole deployment whenever frames arrive, because a second card
of the same deployment may interleave with the first. Detections and sightings reference media,
not sequences, so recomputing is safe; still, ids are kept where a new sequence continues an old
one, so links and notes people made to a sequence survive a re-ingest.

A frame timed by the file's modification time (``media.time_source`` 'mtime': no EXIF time) is a
sequence of its own: copy times say nothing about when the camera fired, and unrelated photos
copied in one second would otherwise become one "burst" of different animals, whose frames
identify pools as one animal.
"""
from __future__ import annotations

from collections import Counter
from datetime import datetime

from spotid.catalog import Catalog
from spotid.catalog.tables import media as media_table


def group_by_gap(times: list[float], gap_s: float, alone: list[bool] | None = None) -> list[list[int]]:
    """Indices of ``times`` (sorted ascending, epoch seconds) grouped into runs whose consecutive
    gaps are <= ``gap_s``. ``group_by_gap([0, 5, 100, 101], 60) == [[0, 1], [2, 3]]``.

    ``alone[i]`` True puts frame i in a group of its own; it neither joins nor splits the others:
    ``group_by_gap([0, 1, 2], 60, [False, True, False]) == [[0, 2], [1]]``. Groups are ordered by
    their first index."""
    groups: list[list[int]] = []
    current: list[int] = []  # the group of the last frame that may group
    for i, t in enumerate(times):
        if alone is not None and alone[i]:
            groups.append([i])
        elif current and t - times[current[-1]] <= gap_s:
            current.append(i)
        else:
            current = [i]
            groups.append(current)
    return groups


def recompute_sequences(cat: Catalog, deployment_id: str, gap_s: float) -> int:
    """Rebuild the sequences of one deployment in one transaction; returns how many it has.

    Frames are ordered by their instant (timestamps may carry different offsets), ties broken by
    path so a burst keeps its file order. ``media.frame_num`` is 0-based within the sequence (as in
    COCO Camera Traps). A new group reuses the old sequence id most of its frames had. Frames with
    ``time_source`` 'mtime' are sequences of one (see the module docstring).
    """
    with cat.transaction():
        rows = media_table.timed_of_deployment(cat, deployment_id)
        old_ids = media_table.sequence_ids_of_deployment(cat, deployment_id)
        media = sorted(
            ((datetime.fromisoformat(r.timestamp), r.path, r.id, r.sequence_id, r.frame_num,
              r.time_source == "mtime") for r in rows),
            key=lambda m: (m[0].timestamp(), m[1]),
        )
        groups = group_by_gap([m[0].timestamp() for m in media], gap_s, [m[5] for m in media])
        claimed: set[int] = set()
        media_updates, seq_updates = [], []
        for g in groups:
            frames = [media[i] for i in g]
            votes = Counter(m[3] for m in frames if m[3] in old_ids and m[3] not in claimed)
            start, end = frames[0][0].isoformat(), frames[-1][0].isoformat()
            if votes:
                best = max(votes.items(), key=lambda kv: (kv[1], -kv[0]))[0]
                seq_updates.append((start, end, len(frames), best))
            else:
                best = media_table.insert_sequence(cat, deployment_id, start, end, len(frames))
            claimed.add(best)
            for k, m in enumerate(frames):
                if (m[3], m[4]) != (best, k):
                    media_updates.append((best, k, m[2]))
        media_table.update_sequences(cat, seq_updates)
        media_table.set_sequence_frames(cat, media_updates)
        media_table.delete_sequences(cat, old_ids - claimed)
    return len(groups)
