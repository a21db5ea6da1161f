"""End to end on a rendered synthetic card: synth card -> ingest -> detect -> identify (shipped models).

Slow (renders and detects ~100 frames). Checks what identify promises whatever the models' quality:
every leopard detection gets exactly one sighting, pending ones carry ranked candidates or a
proposed individual, proposals are flank-consistent, a re-run adds nothing; and it reports (in the
assertion messages) the purity of the proposed identities against the card's truth.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from spotid.types import iou as _iou


@pytest.mark.slow
def test_identify_on_synthetic_card(tmp_path):
    from typer.testing import CliRunner

    from spotid.catalog import Catalog
    from spotid.cli import app
    from spotid.modelstore import ModelError, resolve

    for kind in ("detector", "embedder", "flank"):
        try:
            resolve(kind)
        except ModelError as e:
            pytest.fail(f"shipped {kind} model missing: {e}")
    run = CliRunner()
    card, db = tmp_path / "card", tmp_path / "cat.db"
    r = run.invoke(app, ["synth", "card", str(card), "--stations", "3", "--days", "6", "--individuals", "4",
                         "--seed", "11", "--json"])
    assert r.exit_code == 0, r.output
    for dep in sorted(p for p in card.iterdir() if (p / "DCIM").is_dir()):
        r = run.invoke(app, ["ingest", str(dep), "-d", dep.name, "--db", str(db), "--json"])
        assert r.exit_code == 0, r.output
    r = run.invoke(app, ["detect", "--db", str(db), "--json"])
    assert r.exit_code == 0, r.output
    r = run.invoke(app, ["identify", "--db", str(db), "--json"])
    assert r.exit_code == 0, r.output
    first = json.loads(r.stdout)
    r = run.invoke(app, ["identify", "--db", str(db), "--json"])
    assert json.loads(r.stdout)["detections"] == 0  # idempotent

    truth = json.loads((card / "truth.json").read_text())
    boxes = {}
    for a in truth["annotations"]:
        if a.get("individual_id"):
            boxes.setdefault(a["image_id"], []).append(a)
    with Catalog(db) as cat:
        n_leo = cat.scalar("SELECT COUNT(*) FROM detections WHERE label = 'leopard' AND static_fp = 0")
        assert cat.scalar("SELECT COUNT(*) FROM sightings") == n_leo == first["detections"]
        rows = cat.query(
            "SELECT s.status, s.individual_id, s.flank, i.flank AS ind_flank, d.x, d.y, d.w, d.h, m.rel_path, "
            "m.width, m.height, m.deployment_id FROM sightings s JOIN detections d ON d.id = s.detection_id "
            "JOIN media m ON m.id = d.media_id LEFT JOIN individuals i ON i.id = s.individual_id")
        per_ident: dict[int, dict] = {}
        for row in rows:
            if row["status"] == "unusable":
                assert row["individual_id"] is None
                continue
            assert row["status"] == "pending" and row["individual_id"] is not None
            assert row["flank"] == row["ind_flank"]  # left only ever with left
            image_id = f"{row['deployment_id']}/{row['rel_path']}".rsplit(".", 1)[0]
            W, H = row["width"], row["height"]
            best = max(boxes.get(image_id, []), default=None,
                       key=lambda a: _iou((row["x"] * W, row["y"] * H, row["w"] * W, row["h"] * H), a["bbox"]))
            if best is not None:
                c = per_ident.setdefault(row["individual_id"], {})
                c[best["individual_id"]] = c.get(best["individual_id"], 0) + 1
        for crop in cat.query("SELECT crop_path FROM crops"):
            assert Path(crop["crop_path"]).is_file()
    total = sum(sum(c.values()) for c in per_ident.values())
    purity = sum(max(c.values()) for c in per_ident.values()) / total if total else None
    print(f"identify on a synthetic card: {first}; proposed identities {len(per_ident)}, purity {purity}")


@pytest.mark.slow
def test_card_decision_rows_label_bursts_by_truth(tmp_path):
    """Calibration rows from a synthetic card (spotid.identify.calibrate_cards): with every
    individual ranked and no open-set split, a burst has exactly one correct row when its animal was
    photographed in another burst of the same (classified) flank, and none otherwise."""
    from spotid.catalog import Catalog
    from spotid.identify.calibrate_cards import card_catalog, card_decision_rows
    from spotid.identify.pipeline import Identifier, IdentifyConfig
    from spotid.identify.embedder import Embedder
    from spotid.identify.flank import FlankClassifier
    from spotid.synth.truth import truth_boxes
    from spotid.synth.card import CardWriter
    from spotid.synth.config import SynthConfig

    card = tmp_path / "card"
    CardWriter(SynthConfig(stations=2, days=10, individuals=3, seed=5, workers=1))(card)  # ind001: 3 visits
    with pytest.raises(FileNotFoundError, match="spotid synth card"):
        card_catalog(tmp_path, tmp_path / "work")
    db = card_catalog(card, tmp_path / "work")
    assert card_catalog(card, tmp_path / "work") == db  # reused, not detected again
    with Catalog(db, create=False) as cat:
        assert cat.scalar("SELECT COUNT(*) FROM runs WHERE stage = 'detect'") == 1
        # rows for the calibration scorer (spotid train matcher --card), matched as that scorer matches
        ident = Identifier(IdentifyConfig(scorer="calibration"), embedder=Embedder(None), flank=FlankClassifier(None))
        rows = card_decision_rows(ident, cat, card, splits=0, top=1000)
        boxes = truth_boxes(cat, json.loads((card / "truth.json").read_text()), card, min_iou=0.1)
        bursts: dict = {}
        # the flank identify uses: the classifier's, outvoted by its one-animal burst where they disagree
        for r in ident.crop_rows(cat):
            if not r.failed and r.flank in ("left", "right"):
                b = boxes.get(r.detection_id)
                bursts.setdefault((r.flank, r.sequence_id), []).append(b["individual_id"] if b else None)
    crops = {fl: sum(len(v) for (f, _), v in bursts.items() if f == fl) for fl in ("left", "right")}
    animal = {k: v[0] for k, v in bursts.items() if crops[k[0]] >= 2}  # a lone crop has no gallery
    expected = sum(1 for (fl, seq), a in animal.items() if a is not None and any(
        a2 == a and fl2 == fl and seq2 != seq for (fl2, seq2), a2 in animal.items()))
    assert rows.bursts == len(animal) and rows.x.shape == (len(rows.y), 4)
    assert int(rows.y.sum()) == expected > 0
    assert 0 < rows.y.mean() < 1
