"""Rendering tests: truth boxes against the rendering mask, coats, crops, the CLI."""
from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from typer.testing import CliRunner

from spotid.synth.coat import leopard_coat
from spotid.synth.render import FrameRenderer
from spotid.synth.scene import station_scene

SPECIES_VIEWS = [("leopard", "left"), ("leopard", "right"), ("leopard", "front"), ("leopard", "back"),
                 ("deer", "left"), ("boar", "right"), ("badger", "left"), ("tiger", "right"), ("person", "left")]


@pytest.mark.parametrize("night", [False, True])
def test_truth_boxes_cover_the_rendered_animal(night):
    scene = station_scene(5, "T01A", 640, 360, None)
    ren = FrameRenderer(5)
    n_boxes = 0
    for k in range(24):
        species, view = SPECIES_VIEWS[k % len(SPECIES_VIEWS)]
        d = [3.0, 5.0, 8.0, 15.0][k % 4]
        fr = ren(scene, species=species, individual="ind001" if species == "leopard" else None, view=view,
                 distance=d, event=k, deployment="T01A", frame_num=k % 3, hour=22.0 if night else 12.0,
                 night=night, stamp=("RECONYX", "x", "T01A"), temperature_c=0, masks=True)
        for b in fr.boxes:
            n_boxes += 1
            x, y, w, h = b.bbox
            ys, xs = np.nonzero(b.mask > 0.3)
            assert len(xs), "a box without visible pixels"
            # every visible animal pixel lies in the box, and the box is tight
            assert xs.min() >= x and xs.max() < x + w and ys.min() >= y and ys.max() < y + h
            assert xs.min() - x <= 1 and x + w - 1 - xs.max() <= 1 and ys.min() - y <= 1
            inside = b.mask[y:y + h, x:x + w].sum()
            assert inside >= 0.97 * b.mask.sum()     # faint blur/antialias fringes may fall outside
            assert b.species == species
            if species == "leopard":
                assert b.individual == "ind001" and b.flank == view
            # the info bar (bottom 3.8 %) hides the animal there
            assert y + h <= 360 - int(round(360 * 0.038)) + 1
    assert n_boxes >= 12


def test_coats_differ_between_flanks_individuals_and_seeds():
    a, b, c = leopard_coat(1, 1), leopard_coat(1, 2), leopard_coat(2, 1)
    pa = a.pattern["left"]
    assert 0.12 < pa.mean() < 0.45, "spot coverage of a leopard flank"
    for other in (a.pattern["right"], b.pattern["left"], c.pattern["left"]):
        corr = np.corrcoef(pa.ravel(), other.ravel())[0, 1]
        assert abs(corr) < 0.3
    assert np.array_equal(leopard_coat.__wrapped__(1, 1).left, a.left)      # deterministic
    # same colour distribution: base colours differ only by pattern
    assert abs(a.left.mean() - b.left.mean()) < 15


def test_crops_layout(tmp_path):
    from spotid.synth.crops import CropConfig, CropWriter

    s = CropWriter(CropConfig(individuals=2, per_flank=2, frames=2, size=64, views="all", seed=3, first_id=7,
                              width=480, height=270, scenes=3))(tmp_path)
    rows = list(csv.DictReader((tmp_path / "crops.csv").open()))
    assert s.crops == len(rows) == 2 * 4 * 2 * 2
    assert {r["individual_id"] for r in rows} == {"ind007", "ind008"}
    assert {r["flank"] for r in rows} == {"left", "right", "front", "back"}
    assert (tmp_path / "ind007" / "left" / "e01_2.jpg").is_file()
    from PIL import Image

    assert Image.open(tmp_path / rows[0]["path"]).size == (64, 64)


def test_crop_masks_do_not_change_the_crops_and_real_backgrounds_are_scenes(tmp_path):
    from spotid.synth.crops import CropConfig, CropWriter

    kw = dict(individuals=1, per_flank=2, size=64, seed=3, width=480, height=270, scenes=2, shape="box")
    CropWriter(CropConfig(**kw))(tmp_path / "plain")
    CropWriter(CropConfig(**kw, masks=True))(tmp_path / "masked")
    rows = list(csv.DictReader((tmp_path / "masked" / "crops.csv").open()))
    assert rows and all(r["mask"] == "masks/" + r["path"][:-4] + ".png" for r in rows)
    for r in rows:   # the masked set is the same renders (training sees the benchmark's distribution)
        assert (tmp_path / "plain" / r["path"]).read_bytes() == (tmp_path / "masked" / r["path"]).read_bytes()
    # a grey "empty frame" as the only extra scene: with scenes=0 every encounter is rendered on it
    bg = tmp_path / "bg"
    bg.mkdir()
    import cv2
    cv2.imwrite(str(bg / "empty.jpg"), np.full((270, 480, 3), 90, np.uint8))
    CropWriter(CropConfig(**{**kw, "scenes": 0}, masks=True, backgrounds=str(bg)))(tmp_path / "real")
    rows = list(csv.DictReader((tmp_path / "real" / "crops.csv").open()))
    m = cv2.imread(str(tmp_path / "real" / rows[0]["mask"]), cv2.IMREAD_GRAYSCALE)
    img = cv2.imread(str(tmp_path / "real" / rows[0]["path"]), cv2.IMREAD_GRAYSCALE).astype(int)
    assert m.shape == img.shape
    # where the mask says background the pixels are the flat grey frame (lit or not), not a procedural scene
    assert img[m == 0].std() < 12 and (m > 127).mean() > 0.2


def test_box_crop_cuts_like_identify_stage():
    from spotid.synth.crops import box_crop

    img = np.zeros((100, 200, 3), np.uint8)
    img[40:60, 50:130] = 255                       # the animal: box [50, 40, 80, 20]
    out = box_crop(img, (50, 40, 80, 20), size=96, pad=0.1)
    # padded by 10 % per side: 96 x 24 px -> longer side 96, aspect kept (4:1)
    assert out.shape == (24, 96, 3)
    assert out[12, 48].min() == 255 and out[0, 0].max() == 0
    clipped = box_crop(img, (0, 0, 100, 50), size=50)   # padding clipped at the frame edge
    assert clipped.shape == (25, 50, 3)


def test_crops_box_shape_keeps_aspect(tmp_path):
    from spotid.synth.crops import CropConfig, CropWriter

    CropWriter(CropConfig(individuals=1, per_flank=1, size=64, seed=3, width=480, height=270, scenes=2,
                          shape="box"))(tmp_path)
    from PIL import Image

    w, h = Image.open(tmp_path / "ind001" / "left" / "e00_1.jpg").size
    assert max(w, h) == 64 and w != h           # a side view is wider than tall
    with pytest.raises(ValueError, match="shape"):
        CropWriter(CropConfig(shape="circle"))
    with pytest.raises(ValueError, match="species"):
        CropWriter(CropConfig(species="unicorn"))


def test_crops_of_other_species_for_the_foreground_model(tmp_path):
    from spotid.synth.crops import CropConfig, CropWriter

    s = CropWriter(CropConfig(individuals=1, per_flank=1, size=64, seed=3, width=480, height=270, scenes=2,
                              shape="box", species="tiger", masks=True))(tmp_path)
    rows = list(csv.DictReader((tmp_path / "crops.csv").open()))
    assert s.crops == len(rows) == 2 and all(r["mask"] for r in rows)


def test_cli_card_json(tmp_path):
    from spotid.cli import app

    out = tmp_path / "c"
    res = CliRunner().invoke(app, ["synth", "card", str(out), "--stations", "1", "--days", "1", "--individuals", "2",
                                   "--width", "320", "--height", "180", "--g0", "0.9", "--sigma", "8000", "--json"])
    assert res.exit_code == 0, res.output
    summary = json.loads(res.output)
    truth = json.loads((out / "truth.json").read_text())
    assert summary["frames"] == len(truth["images"]) > 0
    bad = CliRunner().invoke(app, ["synth", "card", str(out), "--backgrounds", str(tmp_path / "missing")])
    assert bad.exit_code == 2


def test_real_backgrounds_are_used(tmp_path):
    """--backgrounds DIR: empty real frames replace the procedural scenes (here two made-up frames)."""
    import cv2

    from spotid.synth import CardWriter, SynthConfig

    bgs = tmp_path / "bgs"
    bgs.mkdir()
    r = np.random.default_rng(0)
    for k in range(2):
        img = (r.random((90, 160, 3)) * 40 + np.array([40, 90, 60]) * (k + 1) / 2).astype(np.uint8)
        cv2.imwrite(str(bgs / f"empty{k}.jpg"), cv2.resize(img, (640, 360)))
    out = tmp_path / "card"
    CardWriter(SynthConfig(stations=1, days=2, individuals=2, seed=1, g0=0.9, sigma_m=8000.0, width=320, height=180,
                           backgrounds=str(bgs)))(out)
    truth = json.loads((out / "truth.json").read_text())
    empty = [im for im in truth["images"] if im["trigger"] == "false" and im["day_night"] == "day"]
    assert empty
    frame = cv2.imread(str(out / empty[0]["file_name"]))
    # the procedural scene has a bright canopy/ground structure; a made-up flat background stays dark and flat
    assert frame[:160].std() < 40
