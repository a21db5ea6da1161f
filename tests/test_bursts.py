"""Burst flank vote: one pass past a camera shows one side."""
from __future__ import annotations

from dataclasses import dataclass

from spotid.identify.bursts import burst_flank_vote, group_bursts, two_animals_in_a_frame


@dataclass
class R:
    detection_id: int
    sequence_id: int | None
    media_id: int
    flank: str
    box: tuple | None = (0.1, 0.4, 0.3, 0.2)
    time: str | None = None


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


def test_self_inliers_is_the_best_frame_pair_of_a_burst():
    from spotid.identify.bursts import self_inliers
    from spotid.identify.verify import Verification

    @dataclass
    class F:
        features: str
        box: tuple = (0.1, 0.4, 0.2, 0.2)
        place: None = None

    def walk(name, x):  # the animal walked: its box is elsewhere in the frame
        return F(name, (x, 0.4, 0.2, 0.2))

    class Table:  # a verifier stub: inliers of each (query, reference) frame pair, by hand
        counts = {("a", "b"): 3, ("a", "c"): 11, ("b", "c"): 0}

        def __call__(self, q, r, qp=None, rp=None):
            import numpy as np
            k = self.counts.get((q, r), self.counts.get((r, q), 0))
            return Verification(k, k, np.zeros((0, 2)), np.zeros((0, 2)))

    assert self_inliers([walk("a", 0.1), walk("b", 0.2), walk("c", 0.3)], Table()) == 11
    assert self_inliers([walk("b", 0.1), walk("c", 0.3)], Table()) == 0     # frames that match nothing
    assert self_inliers([walk("a", 0.1)], Table()) is None                  # one frame: cannot check
    # an animal standing still is scenery to the static filter: no verdict (a and c moved 0.01 only)
    assert self_inliers([walk("a", 0.1), walk("c", 0.11)], Table()) is None
    assert self_inliers([walk("a", 0.1), walk("c", 0.11), walk("b", 0.3)], Table()) == 3   # a-c not compared


def test_a_burst_of_hidden_coats_does_not_match_itself_but_a_visible_one_does():
    import numpy as np
    from test_identify_helpers import coat, warp

    from spotid.identify.bursts import self_inliers
    from spotid.identify.verify import FeatureExtractor, Verifier

    @dataclass
    class F:
        features: object
        box: tuple
        place: None = None

    fx = FeatureExtractor(max_keypoints=400)
    a = coat(21)
    visible = [F(fx(a), (0.1, 0.3, 0.2, 0.2)), F(fx(warp(a, 3)), (0.2, 0.3, 0.2, 0.2))]
    rng = np.random.default_rng(0)            # every frame a different grey tangle: no coat to follow
    hidden = [F(fx(np.repeat(rng.integers(0, 255, (150, 220, 1)), 3, axis=2).astype(np.uint8)), (0.1 * k, 0.3, 0.2, 0.2))
              for k in range(3)]
    v = Verifier()
    assert self_inliers(visible, v) >= 20
    assert self_inliers(hidden, v) < 8


def test_a_sequence_is_cut_into_passes_where_frames_are_far_apart():
    t = "2024-03-01T22:00:{:02d}+10:00".format
    rows = [R(1, 7, 1, "left", time=t(0)), R(2, 7, 2, "left", time=t(1)), R(3, 7, 3, "left", time=t(12)),
            R(4, 7, 4, "left", time=None),                                    # no time: stays with frame 3
            R(5, 7, 5, "left", time=t(21)), R(6, 8, 6, "left", time=t(40)), R(7, None, 7, "left", time=t(41)),
            R(8, 7, 8, "left", time=t(1))]                                    # listed late, taken early
    whole = group_bursts(rows)
    assert sorted(sorted(r.detection_id for r in g) for g in whole.values()) == [[1, 2, 3, 4, 5, 8], [6], [7]]
    passes = group_bursts(rows, gap_s=10)   # 0, 1, 1 s, then 12 s (cut), then 9 s after frame 3
    assert sorted(sorted(r.detection_id for r in g) for g in passes.values()) == [[1, 2, 8], [3, 4, 5], [6], [7]]
    assert len(group_bursts(rows, gap_s=8)) == 5   # 9 s also cuts
