"""What the frames of one burst say together: which frames form it, how many animals they show, and
which flank.

A burst is one pass of one animal past one camera, a second or two long. An animal walking past
shows one side all the way, so when the flank classifier calls two frames "right" and the third
"left" (a half-visible body at the frame edge, say), the odd frame is a classifier error. Left
alone, that one frame would go to the other flank's gallery, match nobody, and found a new animal.
"""
from __future__ import annotations

from collections import Counter, defaultdict
from typing import Hashable, Sequence

from spotid.util import parse_ts

FLANKS = ("left", "right")


def group_bursts(rows: Sequence, gap_s: float | None = None) -> dict[tuple, list]:
    """Bursts of one flank's rows: one group per sequence; frames without a sequence stand alone.
    The frames of a burst vote together (identify) and are one query (calibration rows).

    ``gap_s``: a sequence is cut into passes where two consecutive frames (by ``.time``, ISO) are more
    than this many seconds apart; None = whole sequences. Ingest joins frames up to 60 s apart, so one
    sequence can hold two animals passing one after the other (a female and her cub 26 s behind), and
    as one burst they would vote, match and found as one animal. Frames without a time stay in the pass
    of the frame before them. Keys: ``("seq", sequence_id, pass)`` with ``gap_s``, else ``("seq", id)``."""
    groups: dict[tuple, list] = {}
    for r in rows:
        key = ("seq", r.sequence_id) if r.sequence_id is not None else ("media", r.media_id, r.detection_id)
        groups.setdefault(key, []).append(r)
    if gap_s is None:
        return groups
    out: dict[tuple, list] = {}
    for key, members in groups.items():
        if key[0] != "seq":
            out[key] = members
            continue
        times, prev = [], None
        for m in members:   # a frame without a time takes the time of the frame before it
            prev = t.timestamp() if (t := parse_ts(getattr(m, "time", None))) is not None else prev
            times.append(prev)
        order = sorted(range(len(members)), key=lambda i: (times[i] is not None, times[i] or 0.0))
        k, last = 0, None
        for i in order:
            if times[i] is not None:
                if last is not None and times[i] - last > gap_s:
                    k += 1
                last = times[i]
            out.setdefault(key + (k,), []).append(members[i])
    return out


def two_animals_in_a_frame(members: Sequence) -> bool:
    """Whether one frame holds two boxes of different animals. Two boxes of one frame where the
    smaller lies mostly (>= 50%) inside the larger are one animal boxed twice (a detector duplicate or
    a part box), not two leopards. Boxes: ``.box`` normalised (x, y, w, h); None counts as distinct."""
    by_frame: dict = defaultdict(list)
    for m in members:
        by_frame[m.media_id].append(getattr(m, "box", None))
    for boxes in by_frame.values():
        for i in range(len(boxes)):
            for j in range(i + 1, len(boxes)):
                a, b = boxes[i], boxes[j]
                if a is None or b is None:
                    return True
                iw = max(0.0, min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0]))
                ih = max(0.0, min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1]))
                if iw * ih < 0.5 * min(a[2] * a[3], b[2] * b[3]):
                    return True
    return False


def burst_flank_vote(rows: Sequence) -> dict[Hashable, str]:
    """``{detection_id: flank}`` for the left/right frames whose burst outvotes them.

    ``rows``: objects with ``.detection_id``, ``.sequence_id`` (None = no burst), ``.media_id``,
    ``.box`` and ``.flank``. Only bursts with one animal per frame (:func:`two_animals_in_a_frame`)
    vote, and only a strict majority of the left/right frames wins; a tie is left as classified.
    Front/back/unknown frames keep their answer: an animal turning to the camera is plausible, and
    those frames are not matched anyway.
    """
    out: dict[Hashable, str] = {}
    for members in group_bursts([r for r in rows if r.flank in FLANKS]).values():
        votes = Counter(r.flank for r in members)
        if len(votes) < 2 or two_animals_in_a_frame(members):
            continue
        (top, n_top), (_, n_other) = votes.most_common(2)
        if n_top > n_other:
            out.update({r.detection_id: top for r in members if r.flank != top})
    return out


def below_leopard_floor(members: Sequence) -> tuple[float, float] | None:
    """``(best P(leopard), floor)`` when no frame of the burst reaches its own ``leopard_floor`` (the P(leopard)
    it needs to found a new individual), else None (a frame does, or no floor applies to one of them)."""
    floors = [m.leopard_floor for m in members]
    if any(f is None or m.leopard_p >= f for m, f in zip(members, floors)):
        return None
    return max(m.leopard_p for m in members), min(floors)


def self_inliers(members: Sequence, verifier, min_move: float = 0.02) -> int | None:
    """Most inliers two frames of one burst share (``members``: rows with ``.features``, ``.place`` and
    ``.box`` normalised (x, y, w, h)), over the frame pairs whose boxes moved at least ``min_move`` of
    the frame between them; None when no pair did (one frame, or an animal standing still), which
    cannot be checked.

    The frames of a burst are one animal a second apart, seen by one camera. The static-scenery filter
    of the verifier drops what does not move in the frame (grass, trunks), so what is left is the coat
    moving with the animal. When even these frames do not match each other, the coat is not
    identifiable in the burst (hidden in grass, smeared, under-exposed) and matching it to any other
    visit is hopeless; a burst like that should not found a new individual. An animal that did not
    move cannot be told from scenery that way, hence ``min_move`` (twice the verifier's static
    tolerance).
    """
    best = None
    for i in range(len(members)):
        for j in range(i + 1, len(members)):
            a, b = members[i], members[j]
            if a.box is None or b.box is None:
                continue
            moved = max(abs((a.box[0] + a.box[2] / 2) - (b.box[0] + b.box[2] / 2)),
                        abs((a.box[1] + a.box[3] / 2) - (b.box[1] + b.box[3] / 2)))
            if moved < min_move:
                continue
            best = max(best or 0, verifier(a.features, b.features, a.place, b.place).inliers)
    return best


def thin_clusters(groups: Sequence[Sequence], labels: Sequence[int], min_frames: int) -> set[int]:
    """Cluster labels too thinly photographed to found a new individual.

    ``groups``: the new-candidate bursts (each a list of rows with ``.burst_frames``, the frames the
    camera took in that burst: the frames of its sequence within ``found_burst_s`` seconds of it, so
    two triggers 49 s apart, which ingest joins into one sequence, are two bursts), ``labels`` their
    cluster ``(n,)``. A cluster is thin when its bursts
    hold fewer than ``min_frames`` leopard frames of this flank in all, although every one of its
    bursts had that many frames to show them in. A leopard that crossed a burst of three frames but
    shows this flank in only one of them was at the frame edge, in grass, or turning.
    On 26 demo surveys, lone frames like that founded 34 identities that were a second identity of a
    counted leopard, or a deer, tiger or person the classifier called leopard, against 19 that were
    a leopard's only identity on that flank. Requiring two frames took the count from 173 to 143
    (145 leopards photographed; 9 of them no longer counted) and splits from 38 to 23; on six 12-day
    surveys from 68 to 51 (51 photographed). A camera that takes one frame per trigger (bursts of
    one) is never held to more.
    """
    need = int(min_frames)
    if need <= 1:
        return set()
    frames: dict[int, int] = defaultdict(int)
    room: dict[int, bool] = defaultdict(lambda: True)
    for members, lab in zip(groups, labels):
        lab = int(lab)
        frames[lab] += len(members)
        room[lab] = room[lab] and all(m.burst_frames >= need for m in members)
    return {lab for lab, n in frames.items() if n < need and room[lab]}
