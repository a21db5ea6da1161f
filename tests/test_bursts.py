"""Burst flank vote: one pass past a camera shows one side."""
from __future__ import annotations

from dataclasses import dataclass

from spotid.identify.bursts import burst_flank_vote, two_animals_in_a_frame


@dataclass
class R:
    detection_id: int
    sequence_id: int | None
    media_id: int
    flank: str
    box: tuple | None = (0.1, 0.4, 0.3, 0.2)


def test_odd_frame_out_takes_the_burst_flank():
    rows = [R(1, 7, 1, "right"), R(2, 7, 2, "right"), R(3, 7, 3, "left"),   # 2:1 -> frame 3 is right
            R(4, 8, 4, "left"), R(5, 8, 5, "right"),                        # tie: left as classified
            R(6, None, 6, "left"), R(7, None, 7, "right"),                  # no burst: no vote
            R(8, 9, 8, "left"), R(9, 9, 9, "front"), R(10, 9, 10, "left")]  # front stays front
    assert burst_flank_vote(rows) == {3: "right"}


def test_bursts_with_two_animals_do_not_vote():
    # frame 21 holds two leopards side by side (a female and her cub): their flanks may differ
    rows = [R(1, 5, 20, "left", (0.1, 0.4, 0.2, 0.2)), R(2, 5, 20, "right", (0.6, 0.4, 0.2, 0.2)),
            R(3, 5, 21, "left"), R(4, 5, 22, "left")]
    assert two_animals_in_a_frame(rows)
    assert burst_flank_vote(rows) == {}


def test_a_duplicate_box_on_one_animal_still_votes():
    # the detector boxed the animal twice (the smaller box lies inside the larger): one animal
    rows = [R(1, 5, 20, "right", (0.1, 0.4, 0.4, 0.3)), R(2, 5, 20, "left", (0.15, 0.45, 0.2, 0.2)),
            R(3, 5, 21, "right"), R(4, 5, 22, "right")]
    assert not two_animals_in_a_frame(rows)
    assert burst_flank_vote(rows) == {2: "right"}
