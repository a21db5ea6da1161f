"""`spotid identify` on a small catalog built here: sightings, candidates, proposals, burst voting,
open-set clustering, idempotent re-runs, the CLI, and the config mirror."""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from spotid.catalog import Catalog, now_iso
from spotid.identify.calibrate import Calibration, Logistic
from spotid.identify.pipeline import IdentifyConfig, Identifier
from test_identify_helpers import FakeEmbedder, FakeFlank, FakeFlankPrediction, coat, tint_right, warp

# P(same) driven by the verifier in these tests: > 0.5 from ~20 inliers up
CAL = Calibration({"fused": Logistic(1.0, 3.0, -9.5), "embedding": Logistic(8.0, 0.0, -6.0),
                   "verifier": Logistic(0.0, 3.0, -9.0)}, {"version": "test-calibration@0"})


def _frame(path: Path, animal: np.ndarray | None, seed: int) -> tuple[float, float, float, float]:
    """A 640x480 JPEG with ``animal`` pasted at a seeded place; returns its normalised box."""
    import cv2
    from PIL import Image

    r = np.random.default_rng(seed)
    bg = cv2.GaussianBlur(r.random((480, 640)).astype(np.float32), (0, 0), 8)
    bg = (60 + 80 * (bg - bg.min()) / (np.ptp(bg) + 1e-9))
    img = np.repeat(bg[:, :, None], 3, axis=2)
    box = (0.0, 0.0, 0.0, 0.0)
    if animal is not None:
        h, w = animal.shape[:2]
        x, y = int(r.integers(40, 640 - w - 40)), int(r.integers(40, 480 - h - 40))
        img[y:y + h, x:x + w] = animal
        box = (x / 640, y / 480, w / 640, h / 480)
    Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).save(path, quality=92)
    return box


class Card:
    """Builds deployments/sequences/media/detections rows like ingest + detect would."""

    def __init__(self, cat: Catalog, folder: Path):
        self.cat, self.folder, self.n = cat, folder, 0
        with cat.transaction():
            cat.execute("INSERT INTO deployments (id, location_id, created_at) VALUES ('d1', 'S1', ?)", (now_iso(),))

    def burst(self, animals: list[np.ndarray | None], *, label: str = "leopard", static_fp: int = 0,
              blur: bool = False, seconds: list[int] | None = None, label_conf: list[float] | None = None,
              detector: str = "test") -> list[int]:
        """One sequence; ``seconds``: each frame's time after the first (default: all at once);
        ``label_conf``: each box's classifier probability for ``label`` (default 0.9); ``detector``: the
        boxes' ``detections.detector`` version."""
        import cv2

        with self.cat.transaction():
            t = f"2024-03-01T22:{self.n:02d}:00+10:00"
            seq = self.cat.execute("INSERT INTO sequences (deployment_id, start, end, n_media) VALUES ('d1', ?, ?, ?)",
                                   (t, t, len(animals))).lastrowid
            dets = []
            for k, a in enumerate(animals):
                self.n += 1
                p = self.folder / f"f{self.n:04d}.jpg"
                if a is not None and blur:
                    a = cv2.GaussianBlur(a, (0, 0), 5)
                box = _frame(p, a, self.n)
                mid = self.cat.execute(
                    "INSERT INTO media (deployment_id, sha, path, rel_path, kind, timestamp, width, height, size_bytes, "
                    "sequence_id, frame_num) VALUES ('d1', ?, ?, ?, 'image', ?, 640, 480, ?, ?, ?)",
                    (f"sha{self.n}", str(p), p.name, t[:17] + f"{(seconds or [0] * len(animals))[k]:02d}" + t[19:],
                     p.stat().st_size, seq, k)).lastrowid
                if a is not None:
                    dets.append(self.cat.execute(
                        "INSERT INTO detections (media_id, detector, category, conf, x, y, w, h, label, label_conf, static_fp) "
                        "VALUES (?, ?, 1, 0.9, ?, ?, ?, ?, ?, ?, ?)",
                        (mid, detector, *box, label, (label_conf or [0.9] * len(animals))[k], static_fp)).lastrowid)
        return dets


def test_calibration_fitted_on_other_features_is_named(caplog):
    """The calibration's inlier scale belongs to one feature set: identify says when they differ."""
    other = Calibration(CAL.models, {"features": "rootsift-clahe-v2-something-else"}, CAL.decisions)
    with caplog.at_level("WARNING"):
        ident = Identifier(_cfg(max_keypoints=400), embedder=FakeEmbedder(), flank=FakeFlank(),
                           calibration=other)
    assert "fitted on features rootsift-clahe-v2-something-else" in caplog.text and ident.extractor.version in caplog.text
    caplog.clear()
    same = Calibration(CAL.models, {"features": ident.extractor.version}, CAL.decisions)
    with caplog.at_level("WARNING"):
        Identifier(_cfg(max_keypoints=400), embedder=FakeEmbedder(), flank=FakeFlank(), calibration=same)
    assert "fitted on features" not in caplog.text


def _cfg(**kw) -> IdentifyConfig:
    """Settings for these tests of identify's logic: the hand calibration ``CAL`` they pass in scores
    (``scorer: calibration``), not the shipped fusion, which needs the real embedder and ALIKED features
    (its own tests below pass ``scorer="fusion"``)."""
    return IdentifyConfig(**{"scorer": "calibration", **kw})


def _ident(**kw) -> Identifier:
    cfg = _cfg(**{"shortlist": 10, "max_keypoints": 400, **kw})
    return Identifier(cfg, embedder=FakeEmbedder(), flank=FakeFlank(), calibration=CAL)


def _sightings(cat):
    return {r["detection_id"]: dict(r) for r in cat.query(
        "SELECT s.*, i.name FROM sightings s LEFT JOIN individuals i ON i.id = s.individual_id")}


@pytest.fixture
def world(tmp_path):
    cat = Catalog(tmp_path / "cat.db")
    card = Card(cat, tmp_path)
    A, B, C = coat(11), coat(12), tint_right(coat(13))
    ids = {
        "A1": card.burst([warp(A, 1), warp(A, 2), warp(A, 3)]),   # new animal A, burst 1
        "A2": card.burst([warp(A, 4), warp(A, 5)]),               # A again, another encounter
        "B": card.burst([warp(B, 6), warp(B, 7)]),
        "C": card.burst([warp(C, 8)]),                            # right flank
        "other": card.burst([warp(coat(14), 9)], label="other"),
        "static": card.burst([warp(coat(15), 10)], static_fp=1),
    }
    yield cat, card, ids, (A, B, C)
    cat.close()


def test_first_run_proposes_each_new_animal_once(world):
    cat, card, ids, _ = world
    res = _ident()(cat)
    assert res.detections == 8 and res.crop_failures == 0
    s = _sightings(cat)
    assert set(s) == set(ids["A1"] + ids["A2"] + ids["B"] + ids["C"])   # 'other' and static FP skipped
    names = {k: {s[d]["name"] for d in ids[k]} for k in ("A1", "A2", "B", "C")}
    assert names["A1"] == names["A2"] and len(names["A1"]) == 1          # 5 photos -> one proposal
    assert len(names["B"]) == 1 and names["B"] != names["A1"]
    assert names["C"] == {"R-0001"}
    assert sorted(res.new_individuals) == ["L-0001", "L-0002", "R-0001"]
    assert all(r["status"] == "pending" for r in s.values())
    assert cat.scalar("SELECT COUNT(*) FROM individuals WHERE status = 'proposed'") == 3
    # crops cached on disk next to the catalog, with features and embeddings
    for r in cat.query("SELECT * FROM crops"):
        assert Path(r["crop_path"]).exists() and r["crop_path"].startswith(str(cat.path.parent / "cat_crops"))
        assert r["embedding"] and r["keypoints"] and r["descriptors"] and r["flank"] in ("left", "right")
        assert r["infrared"] == 0                                      # colour photos, decided once and stored
        assert r["motion_keypoints"] and r["motion_descriptors"]      # their set for night matches, stored too
    assert cat.get_setting("identify.match_threshold") == "0.5"
    run = cat.query("SELECT * FROM runs WHERE stage = 'identify'")[0]
    assert run["status"] == "done" and "fake-embedder" in run["model_version"] and "rootsift" in run["model_version"]


def test_rerun_is_idempotent_and_later_photos_match_the_proposal(world):
    cat, card, ids, (A, B, C) = world
    _ident()(cat)
    before = [cat.scalar(f"SELECT COUNT(*) FROM {t}") for t in ("sightings", "individuals", "match_candidates", "crops")]
    res = _ident()(cat)
    assert res.detections == 0 and res.new_individuals == []
    assert [cat.scalar(f"SELECT COUNT(*) FROM {t}") for t in ("sightings", "individuals", "match_candidates", "crops")] == before
    # a new card: A again, and a brand-new animal D
    a3 = card.burst([warp(A, 20), warp(A, 21)])
    d = card.burst([warp(coat(16), 22)])
    res = _ident()(cat)
    s = _sightings(cat)
    name_a = s[ids["A1"][0]]["name"]
    assert {s[x]["name"] for x in a3} == {name_a}
    assert all(s[x]["status"] == "pending" and s[x]["probability"] > 0.5 for x in a3)
    assert res.matched == 2 and res.new_individuals == ["L-0003"] and s[d[0]]["name"] == "L-0003"
    # ranked candidates with evidence in stored-crop pixel coordinates
    cands = cat.query("SELECT * FROM match_candidates WHERE sighting_id = ? ORDER BY rank", (s[a3[0]]["id"],))
    assert cands[0]["rank"] == 1 and cands[0]["verify_inliers"] >= 20
    ev = json.loads(cands[0]["evidence_json"])
    assert len(ev["query_pts"]) == len(ev["ref_pts"]) > 0
    from PIL import Image
    crop = cat.query("SELECT crop_path FROM crops WHERE detection_id = ?", (a3[0],))[0]["crop_path"]
    w, h = Image.open(crop).size
    assert all(0 <= x <= w and 0 <= y <= h for x, y in ev["query_pts"])
    assert cands[0]["reference_detection_id"] in ids["A1"] + ids["A2"]


def test_auto_accept_only_when_asked(world):
    cat, card, ids, (A, _, _) = world
    _ident()(cat)
    a3 = card.burst([warp(A, 30)])
    _ident(auto_accept=True, auto_accept_threshold=0.6)(cat)
    assert _sightings(cat)[a3[0]]["status"] == "auto"
    a4 = card.burst([warp(A, 31)])
    _ident()(cat)
    assert _sightings(cat)[a4[0]]["status"] == "pending"


def test_burst_votes_together_and_low_quality_never_founds_individual(tmp_path):
    cat = Catalog(tmp_path / "c.db")
    card = Card(cat, tmp_path)
    A = coat(21)
    card.burst([warp(A, 1), warp(A, 2)])
    _ident()(cat)
    # burst: one sharp frame of A and one useless frame (no texture): the burst follows A
    flat = np.full_like(A, 128)
    burst = card.burst([warp(A, 3), flat])
    # a blurred lone frame of an unknown animal is below the quality floor: unusable, not a new individual
    blurry = card.burst([coat(22)], blur=True)
    res = _ident(quality_floor=0.3)(cat)
    s = _sightings(cat)
    assert s[burst[0]]["name"] == s[burst[1]]["name"] == "L-0001"
    assert s[blurry[0]]["status"] == "unusable" and s[blurry[0]]["individual_id"] is None
    # the reason is kept with the sighting for the review page; a set-aside sighting keeps whom it
    # matched below the threshold, so a person going through set-aside sightings sees who it might be
    assert s[blurry[0]]["set_aside_reason"] == "matched nobody, too small or blurred to found one"
    assert s[burst[0]]["set_aside_reason"] is None and s[burst[1]]["set_aside_reason"] is None
    cands = cat.query("SELECT individual_id, probability FROM match_candidates WHERE sighting_id = ?",
                      (s[blurry[0]]["id"],))
    assert [c["individual_id"] for c in cands] == [s[burst[0]]["individual_id"]]
    assert cands[0]["probability"] < 0.5
    assert res.new_individuals == []
    assert res.unusable_reasons == {"matched nobody, too small or blurred to found one": 1}
    assert res.unusable_text() == "1 (1 matched nobody, too small or blurred to found one)"
    cat.close()


def test_two_animals_passing_one_after_the_other_in_one_sequence_are_two(tmp_path):
    """Ingest joins frames up to 60 s apart into one sequence: a female and her cub 26 s behind her
    are one sequence. Cut into passes (``pass_gap_s``, off by default) they found two animals; as one
    burst, one."""
    cat = Catalog(tmp_path / "c.db")
    card = Card(cat, tmp_path)
    A, B = coat(31), coat(32)
    ids = card.burst([warp(A, 1), warp(A, 2), warp(B, 3), warp(B, 4)], seconds=[0, 1, 26, 27])
    res = _ident(pass_gap_s=10)(cat)
    s = _sightings(cat)
    assert s[ids[0]]["name"] == s[ids[1]]["name"] != s[ids[2]]["name"] == s[ids[3]]["name"]
    assert len(res.new_individuals) == 2
    with cat.transaction():
        cat.execute("DELETE FROM match_candidates")
        cat.execute("DELETE FROM sightings")
        cat.execute("DELETE FROM individuals")
    _ident()(cat)   # the default: whole sequences
    assert len({_sightings(cat)[d]["individual_id"] for d in ids}) == 1   # the whole sequence: one animal
    with pytest.raises(ValueError, match="pass_gap_s"):
        IdentifyConfig(pass_gap_s=0)
    cat.close()


def test_missing_frame_is_recorded_not_fatal(world):
    cat, card, ids, _ = world
    p = cat.query("SELECT m.path FROM media m JOIN detections d ON d.media_id = m.id WHERE d.id = ?", (ids["B"][0],))[0][0]
    Path(p).unlink()
    res = _ident()(cat)
    assert res.crop_failures == 1
    assert _sightings(cat)[ids["B"][0]]["status"] == "unusable"
    assert _sightings(cat)[ids["B"][0]]["set_aside_reason"] == "crop failed"
    assert res.unusable_reasons["crop failed"] == 1


def test_config_yaml_mirrors_dataclass():
    from spotid.config import default_yaml

    data = yaml.safe_load(default_yaml(IdentifyConfig).read_text())
    assert data == dataclasses.asdict(IdentifyConfig())
    with pytest.raises(ValueError):
        IdentifyConfig(threshold=1.5)


def test_cli_identify_and_errors(world, monkeypatch):
    from typer.testing import CliRunner

    from spotid.cli import app
    import spotid.identify.cli as icli

    cat, card, ids, _ = world
    monkeypatch.setattr(icli, "_models", lambda cfg, catalog=None: (FakeEmbedder(), FakeFlank()))
    monkeypatch.setattr(icli, "_calibration", lambda path, descriptor="rootsift": CAL)
    # the hand calibration CAL scores here (scorer: calibration); the shipped default is the fusion
    r = CliRunner().invoke(app, ["identify", "--db", str(cat.path), "--scorer", "magic"])
    assert r.exit_code == 2 and "use calibration or fusion" in r.output
    r = CliRunner().invoke(app, ["identify", "--db", str(cat.path), "--scorer", "calibration", "--json", "--deployment", "elsewhere"])
    assert r.exit_code == 2 and "no deployment elsewhere" in r.output   # a mistyped deployment: nothing run
    r = CliRunner().invoke(app, ["identify", "--db", str(cat.path), "--scorer", "calibration", "--json", "--threshold", "0.5"])
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert out["detections"] == 8 and len(out["new_individuals"]) == 3
    r = CliRunner().invoke(app, ["identify", "--db", str(cat.path), "--scorer", "calibration", "--json"])
    assert json.loads(r.stdout)["detections"] == 0
    # for people: a table, and the next step names the set-aside sightings when there are some
    lost = card.burst([coat(40)])
    Path(cat.query("SELECT m.path FROM media m JOIN detections d ON d.media_id = m.id WHERE d.id = ?",
                   (lost[0],))[0][0]).unlink()
    r = CliRunner().invoke(app, ["identify", "--db", str(cat.path), "--scorer", "calibration"])
    assert r.exit_code == 0, r.output
    assert "crop failed" in r.stdout and f"next: spotid review --db {cat.path} --include-set-aside" in r.stdout
    # tried again on request: the frame is still missing, so it is set aside again
    r = CliRunner().invoke(app, ["identify", "--db", str(cat.path), "--scorer", "calibration", "--retry-set-aside", "--json"])
    out = json.loads(r.stdout)
    assert (out["retried"], out["crop_failures"], out["unusable"]) == (1, 1, 1)
    r = CliRunner().invoke(app, ["identify", "--db", str(cat.path.parent / "nope.db")])
    assert r.exit_code == 2 and "spotid ingest" in r.output
    r = CliRunner().invoke(app, ["identify", "--db", str(cat.path), "--scorer", "calibration", "--threshold", "3"])
    assert r.exit_code == 2


def test_new_flank_model_reclassifies_cached_crops(world):
    cat, card, ids, _ = world
    _ident()(cat)
    assert cat.scalar("SELECT COUNT(*) FROM crops WHERE flank = 'left'") == 7

    class AllRight(FakeFlank):
        version = "fake-flank@111111111111"

        def __call__(self, images):
            return [dataclasses.replace(p, flank="right") for p in super().__call__(images)]

    with cat.transaction():
        cat.execute("DELETE FROM match_candidates")
        cat.execute("DELETE FROM sightings")
    cfg = _cfg(shortlist=10, max_keypoints=400)
    Identifier(cfg, embedder=FakeEmbedder(), flank=AllRight(), calibration=CAL)(cat)
    assert cat.scalar("SELECT COUNT(*) FROM crops WHERE flank = 'right'") == 8
    assert {r[0] for r in cat.query("SELECT flank_model FROM crops")} == {"fake-flank@111111111111@"}


def test_new_proposals_list_the_runs_other_proposals_as_candidates(world):
    """A split shows in review: each new sighting carries the run's other same-flank proposals as
    ranked candidates (below the clustering threshold, else they would have been joined)."""
    cat, card, ids, _ = world
    _ident()(cat)
    s = _sightings(cat)
    name = {d: s[d]["name"] for k in ("A1", "B", "C") for d in ids[k]}
    by_name = {r["name"]: r["id"] for r in cat.query("SELECT id, name FROM individuals")}
    for d in ids["B"]:
        cands = cat.query("SELECT individual_id, rank, probability, verify_inliers, reference_detection_id "
                          "FROM match_candidates WHERE sighting_id = ? ORDER BY rank", (s[d]["id"],))
        assert [c["individual_id"] for c in cands] == [by_name[name[ids["A1"][0]]]]   # the other left proposal
        assert cands[0]["probability"] < 0.5 and cands[0]["reference_detection_id"] in ids["A1"] + ids["A2"]
    for d in ids["C"]:  # the only right-flank proposal: nobody to compare with
        assert cat.scalar("SELECT COUNT(*) FROM match_candidates WHERE sighting_id = ?", (s[d]["id"],)) == 0


def test_a_burst_whose_own_frames_do_not_match_founds_nobody(world):
    cat, card, ids, _ = world
    rng = np.random.default_rng(5)
    # two frames of "something spotted" whose pattern changes completely between frames a second
    # apart: the coat cannot be followed even within the burst (grass, smear, darkness)
    tangles = [np.clip(coat(30 + k) * 0.5 + rng.integers(0, 120, (150, 220, 1)), 0, 255).astype(np.uint8)
               for k in range(2)]
    hidden = card.burst(tangles)
    res = _ident()(cat)
    s = _sightings(cat)
    assert all(s[d]["status"] == "unusable" and s[d]["individual_id"] is None for d in hidden)
    assert {s[d]["set_aside_reason"] for d in hidden} == {
        "matched nobody, and its own frames do not match each other: the coat is not identifiable in this burst"}
    assert res.unusable_reasons.get("matched nobody, and its own frames do not match each other: the coat is "
                                    "not identifiable in this burst") == 2
    assert sorted(res.new_individuals) == ["L-0001", "L-0002", "R-0001"]  # A, B and C as without it
    # one-frame bursts cannot be checked and still found (C), and the check can be switched off
    cat2 = Catalog(cat.path.parent / "cat2.db")
    card2 = Card(cat2, cat.path.parent / "two")
    (cat.path.parent / "two").mkdir()
    hidden2 = card2.burst(tangles)
    _ident(found_min_self_inliers=0)(cat2)
    assert all(r["status"] == "pending" for d, r in _sightings(cat2).items() if d in hidden2)
    cat2.close()


def test_a_burst_not_clearly_a_leopard_founds_nobody_but_still_matches_a_known_one(tmp_path, caplog):
    """``found_min_leopard_p``: the classifier's P(leopard) of a burst's best frame must reach the floor
    for the burst to found an individual (a spotted boar behind leaves at 0.9 must not become a
    leopard); matching a known individual is not held to it. Unset, the floor is the one detect recorded
    from the card of the classifier that labelled the boxes: none for boxes of an MD JSON import."""
    from spotid.catalog.tables.detections import record_leopard_floor

    cat = Catalog(tmp_path / "c.db")
    card = Card(cat, tmp_path)
    record_leopard_floor(cat, "yolox@1+cascade@2", 0.95)     # as detect does from the classifier card
    record_leopard_floor(cat, "mdjson:MDV5A", None)
    A, B, C, D = coat(51), coat(52), coat(53), coat(54)
    a1 = card.burst([warp(A, 1), warp(A, 2)], label_conf=[0.999, 0.9], detector="yolox@1+cascade@2")
    doubtful = card.burst([warp(B, 3), warp(B, 4)], label_conf=[0.94, 0.9], detector="yolox@1+cascade@2")
    imported = card.burst([warp(D, 9), warp(D, 10)], label_conf=[0.6, 0.6], detector="mdjson:MDV5A")
    older = card.burst([warp(coat(55), 11), warp(coat(55), 12)], detector="test")   # detected by an older spotid
    res = _ident(found_min_leopard_p=None)(cat)
    s = _sightings(cat)
    assert s[a1[0]]["name"] == s[a1[1]]["name"] == "L-0001"     # one frame at 0.999 is enough
    why = "matched nobody, and no frame is clearly a leopard (P(leopard) 0.940 < 0.95) to found one"
    assert {s[d]["set_aside_reason"] for d in doubtful} == {why}
    assert all(s[d]["status"] == "unusable" and s[d]["individual_id"] is None for d in doubtful)
    # another model's probabilities are on another scale: no floor for the imported boxes
    assert s[imported[0]]["name"] == s[imported[1]]["name"] not in (None, "L-0001")
    assert len(res.new_individuals) == 3 and res.unusable_reasons == {why: 2}
    # boxes detected before detect recorded floors ('test' here): none applies, and the log names the fix
    assert s[older[0]]["name"] == s[older[1]]["name"] not in (None, "L-0001", s[imported[0]]["name"])
    assert "no founding floor was recorded for boxes of test" in caplog.text and "found_min_leopard_p" in caplog.text
    # a floor set in the config holds for every box: A again, classified no better than the doubtful
    # burst, matches A; C as doubtful founds nobody
    a2 = card.burst([warp(A, 5), warp(A, 6)], label_conf=[0.9, 0.9])
    c = card.burst([warp(C, 7), warp(C, 8)], label_conf=[0.9, 0.9])
    _ident(found_min_leopard_p=0.95)(cat)
    s = _sightings(cat)
    assert s[a2[0]]["name"] == s[a2[1]]["name"] == "L-0001"
    assert all(s[d]["individual_id"] is None for d in c)
    # 0 = off: the doubtful bursts found as they did before the rule
    _ident(found_min_leopard_p=0)(cat, retry_set_aside=True)
    s = _sightings(cat)
    assert s[doubtful[0]]["name"] == s[doubtful[1]]["name"] not in (None, "L-0001", s[imported[0]]["name"])
    for bad in (-0.1, 1.5):
        with pytest.raises(ValueError, match="found_min_leopard_p"):
            IdentifyConfig(found_min_leopard_p=bad)
    cat.close()


@pytest.mark.parametrize("linkage", ["decision", "average"])
def test_new_candidates_join_only_on_enough_inliers(world, linkage):
    cat, _, ids, _ = world
    # A's two encounters share far fewer inliers than asked: two proposals, whatever P says
    _ident(cluster_linkage=linkage, new_cluster_min_inliers=100_000)(cat)
    s = _sightings(cat)
    assert {s[d]["name"] for d in ids["A1"]}.isdisjoint({s[d]["name"] for d in ids["A2"]})
    with pytest.raises(ValueError, match="new_cluster_min_inliers"):
        IdentifyConfig(new_cluster_min_inliers=-1)


def test_thin_clusters_hand_computed():
    from types import SimpleNamespace as R

    from spotid.identify.bursts import thin_clusters

    def bursts(f1, f2, f3, f4):
        """Five new bursts; ``fN``: the frames the camera took in burst N (the fifth has no sequence)."""
        return [[R(burst_frames=f1)], [R(burst_frames=f2)], [R(burst_frames=f3), R(burst_frames=f3)],
                [R(burst_frames=f4)], [R(burst_frames=1)]]

    labels = [0, 0, 1, 2, 3]
    three = bursts(3, 3, 3, 3)
    # 0: two one-frame bursts clustered (2 frames); 1: two frames of one burst; 2: one frame out of a
    # three-frame burst (thin); 3: a photo outside any sequence is never held to more
    assert thin_clusters(three, labels, 2) == {2}
    assert thin_clusters(three, labels, 3) == {0, 1, 2}
    # a cluster with a burst from a camera that took fewer frames than asked is not thin
    assert thin_clusters(bursts(1, 3, 3, 2), labels, 3) == {1}
    assert thin_clusters(three, labels, 1) == set()


def test_one_frame_out_of_a_burst_founds_nobody_but_two_encounters_do(world):
    cat, card, _, _ = world
    D, E = coat(41), coat(42)
    lone = card.burst([warp(D, 1), None, None])                   # one frame of three shows D
    twice = card.burst([warp(E, 1), None, None]) + card.burst([None, warp(E, 2), None])
    res = _ident()(cat)
    s = _sightings(cat)
    reason = "matched nobody, and fewer than 2 frames of this flank in its burst(s) to found a new individual"
    assert s[lone[0]]["status"] == "unusable" and s[lone[0]]["individual_id"] is None
    assert s[lone[0]]["set_aside_reason"] == reason and res.unusable_reasons == {reason: 1}
    # ... keeping this run's proposals as its candidates, for the reviewer who rescues it
    cands = {r["individual_id"] for r in cat.query("SELECT individual_id FROM match_candidates WHERE sighting_id = ?",
                                                   (s[lone[0]]["id"],))}
    assert cands and cands <= {r["id"] for r in cat.query("SELECT id FROM individuals WHERE flank = 'left'")}
    # E seen once in each of two bursts: the bursts match each other, two frames, one proposal
    assert s[twice[0]]["status"] == s[twice[1]]["status"] == "pending"
    assert s[twice[0]]["name"] == s[twice[1]]["name"]
    assert sorted(res.new_individuals) == ["L-0001", "L-0002", "L-0003", "R-0001"]   # A, B, E; C (its camera took one frame)
    # switched off, the set-aside frame founds its own individual when it is matched again
    res = _ident(found_min_frames=1)(cat, retry_set_aside=True)
    s = _sightings(cat)
    assert res.retried == 1 and res.new_individuals == ["L-0004"] and s[lone[0]]["name"] == "L-0004"
    with pytest.raises(ValueError, match="found_min_frames"):
        IdentifyConfig(found_min_frames=0)


class UnsureFlank(FakeFlank):
    """As FakeFlank, but 'unknown' for green-tinted crops (a classifier unsure of the side)."""

    def __call__(self, images):
        out = super().__call__(images)
        for k, im in enumerate(images):
            a = np.asarray(im).astype(np.float32)
            if a[..., 1].mean() > 1.3 * (a[..., 0].mean() + a[..., 2].mean()) / 2:
                out[k] = FakeFlankPrediction("unknown", 0.4, {"unknown": 0.4})
        return out


def tint_unsure(img: np.ndarray) -> np.ndarray:
    out = img.astype(np.float32)
    out[..., 0] *= 0.6
    out[..., 2] *= 0.6
    return np.clip(out, 0, 255).astype(np.uint8)


def test_a_burst_without_a_flank_joins_the_individual_it_matches_and_founds_nobody(world, monkeypatch):
    import collections

    import spotid.identify.pipeline as pipeline

    cat, card, ids, (A, _, _) = world
    reads = collections.Counter()
    real_size = pipeline.stored_crop_size
    monkeypatch.setattr(pipeline, "stored_crop_size", lambda p: reads.update([str(p)]) or real_size(p))
    # the third frame of A's burst is a box on something else: its burst mates do not vouch for it
    *unsure_a, other = card.burst([tint_unsure(warp(A, 21)), tint_unsure(warp(A, 22)), tint_unsure(warp(coat(32), 24))])
    unsure_new = card.burst([tint_unsure(warp(coat(31), 23))])
    ident = Identifier(_cfg(shortlist=10, max_keypoints=400), embedder=FakeEmbedder(), flank=UnsureFlank(),
                       calibration=CAL)
    res = ident(cat)
    s = _sightings(cat)
    # the gallery is loaded again for them, but each crop JPEG header is read once per run
    assert reads and max(reads.values()) == 1
    # matched against both flanks, this run's new individuals included: joins A, with A's flank
    assert {s[d]["name"] for d in unsure_a} == {s[ids["A1"][0]]["name"]}
    assert all((s[d]["flank"], s[d]["status"], s[d]["set_aside_reason"]) == ("left", "pending", None) for d in unsure_a)
    assert s[unsure_a[0]]["probability"] >= 0.5
    # an unknown coat without a flank founds nobody, alone or in A's burst: set aside, with the reason
    for d in (unsure_new[0], other):
        assert (s[d]["status"], s[d]["set_aside_reason"]) == ("unusable", "no left/right flank (front, back or unsure)")
        # with whom it was compared, below the threshold, for the review page
        probs = [r[0] for r in cat.query("SELECT probability FROM match_candidates WHERE sighting_id = ? ORDER BY rank",
                                         (s[d]["id"],))]
        assert probs and max(probs) < 0.5 and probs == sorted(probs, reverse=True)
    assert res.flank_from_match == 2 and sorted(res.new_individuals) == ["L-0001", "L-0002", "R-0001"]
    # never a reference: a front view must not carry a match from one flank to the other
    gallery, _ = ident._gallery(cat, "left")
    assert set(unsure_a).isdisjoint(gallery.refs) and set(ids["A1"]) <= set(gallery.refs)

    # switched off, the same burst is set aside like any view without a flank
    (cat.path.parent / "two").mkdir()
    cat2 = Catalog(cat.path.parent / "cat2.db")
    card2 = Card(cat2, cat.path.parent / "two")
    card2.burst([warp(A, 1), warp(A, 2)])
    unsure2 = card2.burst([tint_unsure(warp(A, 21)), tint_unsure(warp(A, 22))])
    res2 = Identifier(_cfg(shortlist=10, max_keypoints=400, match_unknown_flank=False),
                      embedder=FakeEmbedder(), flank=UnsureFlank(), calibration=CAL)(cat2)
    assert all(_sightings(cat2)[d]["status"] == "unusable" for d in unsure2) and res2.flank_from_match == 0
    # on, but asking for more inliers than the match has: P alone is not enough for a view without a flank
    strict = Identifier(_cfg(shortlist=10, max_keypoints=400, unknown_flank_min_inliers=10_000),
                        embedder=FakeEmbedder(), flank=UnsureFlank(), calibration=CAL)(cat2, retry_set_aside=True)
    assert strict.retried == 2 and strict.flank_from_match == 0
    assert all(_sightings(cat2)[d]["status"] == "unusable" for d in unsure2)
    cat2.close()


def test_retry_set_aside_matches_earlier_views_against_individuals_founded_since(tmp_path):
    cat = Catalog(tmp_path / "c.db")
    card = Card(cat, tmp_path)
    A = coat(11)
    ident = Identifier(_cfg(shortlist=10, max_keypoints=400), embedder=FakeEmbedder(), flank=UnsureFlank(),
                       calibration=CAL)
    unsure = card.burst([tint_unsure(warp(A, 21)), tint_unsure(warp(A, 22))])
    decided = card.burst([tint_unsure(warp(A, 23))])
    assert ident(cat).unusable == 3  # nobody is known yet: set aside
    cat.execute("UPDATE sightings SET set_aside_reason = NULL WHERE detection_id = ?", (decided[0],))  # a person's
    kept = _sightings(cat)[decided[0]]["id"]
    a = card.burst([warp(A, 1), warp(A, 2)])
    ident(cat)  # A is founded; earlier sightings are not looked at again
    assert all(_sightings(cat)[d]["status"] == "unusable" for d in unsure)
    res = ident(cat, retry_set_aside=True)
    s = _sightings(cat)
    assert (res.retried, res.flank_from_match) == (2, 2)
    assert {s[d]["name"] for d in unsure} == {s[a[0]]["name"]} and {s[d]["flank"] for d in unsure} == {"left"}
    assert s[decided[0]]["id"] == kept and s[decided[0]]["status"] == "unusable"   # a person's decision stays
    cat.close()


def test_gallery_made_by_an_older_version_is_brought_up_to_date(world):
    cat, card, ids, (A, _, _) = world
    _ident()(cat)
    # as an older spotid left it: other feature version, no infrared flag, no motion set
    with cat.transaction():
        cat.execute("UPDATE crops SET features_version = 'rootsift-old', infrared = NULL, motion_keypoints = NULL, "
                    "motion_descriptors = NULL")
    again = card.burst([warp(A, 11), warp(A, 12)])
    _ident()(cat)
    s = _sightings(cat)
    assert {s[d]["name"] for d in again} == {s[ids["A1"][0]]["name"]}       # still matched to A
    ident = _ident()
    gallery = {fl: cat.query("SELECT c.* FROM crops c JOIN sightings s ON s.detection_id = c.detection_id "
                             "JOIN individuals i ON i.id = s.individual_id WHERE i.flank = ?", (fl,))
               for fl in ("left", "right")}
    assert len(gallery["left"]) == 9                              # A 5, B 2, and the two new frames of A
    for r in gallery["left"]:
        assert r["features_version"] == ident.features_version and r["infrared"] == 0 and r["motion_keypoints"]
    # a flank's gallery is brought up to date when it is next used: no right flank was matched this run
    assert [r["features_version"] for r in gallery["right"]] == ["rootsift-old"]
    # a crop whose JPEG is gone cannot be updated: logged, matched with what it has, and an embedding
    # of another model and size does not break the gallery
    lost = gallery["left"][0]
    with cat.transaction():
        cat.execute("UPDATE crops SET features_version = 'rootsift-old', embedder = 'old-embedder@0', "
                    "embedding = ? WHERE detection_id = ?", (np.zeros(7, "<f4").tobytes(), lost["detection_id"]))
    Path(lost["crop_path"]).unlink()
    third = card.burst([warp(A, 13), warp(A, 14)])
    _ident()(cat)
    s = _sightings(cat)
    assert {s[d]["name"] for d in third} == {s[ids["A1"][0]]["name"]}


def _fusion_dir(tmp_path, versions: dict | None = None) -> Path:
    """A hand-set fusion of RootSIFT and ALIKED inliers (the fake embedder's cosine gets weight 0):
    P(same) = sigmoid(3 log1p(inliers) - 9.5) for each, about 0.5 from 22 inliers up."""
    from spotid.identify.fusion import Fusion, ScoreCalibration, save_fusion

    f = Fusion({"embedding": ScoreCalibration("cos", 0.0, -2.0), "sift": ScoreCalibration("log1p", 3.0, -9.5),
                "aliked": ScoreCalibration("log1p", 3.0, -9.5)}, {"embedding": 0.0, "sift": 1.0, "aliked": 1.0},
               (1.0, -0.5, 0.0), 0.0, {"versions": versions or {}})
    save_fusion(f, tmp_path / "fusion")
    return tmp_path / "fusion"


def test_identify_with_calibrated_fusion_stores_aliked_features_and_proposes_each_animal_once(world, tmp_path):
    """scorer: fusion ranks and decides with the fused P of RootSIFT and ALIKED; ALIKED features are
    stored once per crop (crop_local_features) and reused by the next run."""
    cat, card, ids, (A, _, _) = world
    ident = _ident(scorer="fusion", fusion=str(_fusion_dir(tmp_path)))
    assert list(ident.matcher.local) == ["aliked"]
    res = ident(cat)
    s = _sightings(cat)
    names = {k: {s[d]["name"] for d in ids[k]} for k in ("A1", "A2", "B", "C")}
    assert names["A1"] == names["A2"] and len(names["A1"]) == 1
    assert len(names["B"]) == 1 and names["B"] != names["A1"] and names["C"] == {"R-0001"}
    assert sorted(res.new_individuals) == ["L-0001", "L-0002", "R-0001"]
    rows = cat.query("SELECT * FROM crop_local_features")
    assert len(rows) == 8 and {r["matcher"] for r in rows} == {"aliked"}
    assert {r["version"] for r in rows} == {ident.matcher.local["aliked"].version}
    assert all(len(r["keypoints"]) > 0 for r in rows)
    assert "matcher-fusion@" in cat.query("SELECT model_version FROM runs WHERE stage = 'identify'")[0]["model_version"]
    # each candidate's evidence is the surest verifier's pairs, named, with every scorer's calibrated P
    evs = [json.loads(r["evidence_json"]) for r in cat.query("SELECT evidence_json FROM match_candidates")]
    assert evs and all(e["verifier"] in ("sift", "aliked") and set(e["scores"]) == {"embedding", "sift", "aliked"}
                       for e in evs)
    assert all(e["scores"][e["verifier"]] >= e["scores"][o] for e in evs for o in ("sift", "aliked"))
    assert all(len(e["query_pts"]) == min(200, e["inliers"] + e.get("chance", 0)) for e in evs if e["inliers"])
    # a new photo of A matches its proposal; the stored ALIKED features are read, not recomputed
    before = {r["detection_id"]: r["descriptors"] for r in rows}
    new = card.burst([warp(A, 21), warp(A, 22)])
    _ident(scorer="fusion", fusion=str(_fusion_dir(tmp_path)))(cat)
    s = _sightings(cat)
    assert {s[d]["name"] for d in new} == names["A1"]
    assert all(s[d]["probability"] >= 0.5 for d in new)
    after = {r["detection_id"]: r["descriptors"] for r in cat.query("SELECT * FROM crop_local_features")}
    assert all(after[d] == before[d] for d in before) and len(after) == 10


def test_fusion_fitted_on_another_aliked_version_is_refused(tmp_path):
    with pytest.raises(ValueError, match="refit the fusion"):
        _ident(scorer="fusion", fusion=str(_fusion_dir(tmp_path, {"aliked": "aliked-n16-v0-something-else"})))
    with pytest.raises(ValueError, match="scorer="):
        IdentifyConfig(scorer="magic")


def test_each_collaborator_gets_its_own_settings():
    """IdentifyConfig stays one flat YAML, but the crop store, extractor, verifier and writer each get
    only the fields they read."""
    from spotid.identify.config import CropSettings, VerifierSettings, WriterSettings

    cfg = _cfg(pad=0.2, batch_size=8, top_k=3, reproj_threshold=9.0, max_keypoints=400)
    assert cfg.crops == CropSettings(pad=0.2, box_only=True, batch_size=8)
    assert cfg.writer == WriterSettings(auto_accept=False, auto_accept_threshold=0.95, top_k=3)
    assert cfg.features.max_keypoints == 400 and not hasattr(cfg.features, "threshold")
    ident = Identifier(cfg, embedder=FakeEmbedder(), flank=FakeFlank(), calibration=CAL)
    assert ident.store.cfg == cfg.crops and ident.writer.cfg == cfg.writer
    assert isinstance(cfg.verifier, VerifierSettings) and ident.verifier.reproj_threshold == 9.0


def test_cli_identify_with_a_missing_fusion_names_the_fix(world, monkeypatch, tmp_path):
    from typer.testing import CliRunner

    from spotid.cli import app
    import spotid.identify.cli as icli

    cat, _, _, _ = world
    monkeypatch.setattr(icli, "_models", lambda cfg, catalog=None: (FakeEmbedder(), FakeFlank()))
    monkeypatch.setattr(icli, "_calibration", lambda path, descriptor="rootsift": CAL)
    bad = tmp_path / "bad.yaml"
    bad.write_text(f"identify:\n  scorer: fusion\n  fusion: {tmp_path / 'nowhere'}\n")
    r = CliRunner().invoke(app, ["identify", "--db", str(cat.path), "--config", str(bad)])
    assert r.exit_code == 2 and "no fusion calibration" in r.output and "spotid train fusion" in r.output
    assert cat.scalar("SELECT COUNT(*) FROM sightings") == 0


def test_a_burst_called_the_wrong_flank_joins_the_side_its_coat_matches(world):
    """A's left-flank coat, tinted so the classifier calls a whole 2-frame burst 'right': it matches no
    right flank and would found R-0002; its coat matches A's 5 left frames, so it takes the left flank
    and joins A. Off (reflank_new_bursts: false), the same catalog proposes a second animal."""
    import sqlite3

    cat, card, ids, (A, _, _) = world
    wrong = card.burst([tint_right(warp(A, 31)), tint_right(warp(A, 32))])
    with sqlite3.connect(cat.path.parent / "off.db") as dst:   # before any run: the same detections, no sightings
        cat.conn.backup(dst)
    res = _ident()(cat)
    s = _sightings(cat)
    a = s[ids["A1"][0]]["name"]
    assert {s[d]["name"] for d in wrong} == {a} and all(s[d]["flank"] == "left" for d in wrong)
    assert res.flank_from_coat == 2 and sorted(res.new_individuals) == ["L-0001", "L-0002", "R-0001"]
    assert {s[d]["name"] for d in ids["C"]} == {"R-0001"}     # a right flank that matches nobody keeps its side
    # the review page says the flank is not the classifier's
    assert {r["flank"] for r in cat.query("SELECT flank FROM crops WHERE detection_id IN (?, ?)", tuple(wrong))} == {"right"}
    # a later card: the same mistake meets A as a known individual of the other flank, and joins it
    later = card.burst([tint_right(warp(A, 33)), tint_right(warp(A, 34))])
    res2 = _ident()(cat)
    s = _sightings(cat)
    assert {s[d]["name"] for d in later} == {a} and all(s[d]["flank"] == "left" for d in later)
    assert res2.flank_from_coat == 2 and res2.new_individuals == [] and res2.matched == 2
    with Catalog(cat.path.parent / "off.db", create=False) as off:
        res_off = _ident(reflank_new_bursts=False)(off)
        s_off = _sightings(off)
        assert res_off.flank_from_coat == 0 and "R-0002" in res_off.new_individuals
        assert {s_off[d]["flank"] for d in wrong} == {"right"}


def test_card_decision_rows_refuse_an_identifier_scoring_with_the_fusion(tmp_path):
    """The rows fit the calibration scorer: an Identifier on the fusion is refused with the fix before any
    crop is read (its ALIKED features would cost seconds per crop and never be used)."""
    from types import SimpleNamespace

    from spotid.identify.calibrate_cards import card_decision_rows

    fused = SimpleNamespace(matcher=SimpleNamespace(fusion=object()),
                            crop_rows=lambda cat: pytest.fail("crops were read"))
    with pytest.raises(ValueError, match="scorer='calibration'"):
        card_decision_rows(fused, None, tmp_path)
