"""One configuration rule for every command: package defaults, then --config FILE, then options.

A single YAML file with one section per stage changes `spotid detect`, `identify`, `census` and
`process` alike; each run records the configuration it resolved (catalog table ``runs``).
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from spotid.catalog import Catalog
from spotid.cli import app
from spotid.config import resolve_config
from spotid.census.config import CensusConfig
from spotid.detect.config import DetectConfig

from test_detect import _card, tiny_models  # noqa: F401 -- shared fixture

runner = CliRunner()


def _runs(db: Path) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    with Catalog(db) as cat:
        for r in cat.query("SELECT stage, config_json FROM runs ORDER BY id"):
            out.setdefault(r["stage"], []).append(json.loads(r["config_json"]))
    return out


def test_resolve_layers_flat_and_sectioned_files(tmp_path):
    flat = tmp_path / "flat.yaml"
    flat.write_text("occasion_days: 3\n")
    both = tmp_path / "both.yaml"
    both.write_text("census:\n  occasion_days: 2\ndetect:\n  batch_size: 5\n")
    assert resolve_config(CensusConfig) == CensusConfig()                     # shipped yaml = defaults
    assert resolve_config(CensusConfig, flat).occasion_days == 3
    assert resolve_config(CensusConfig, flat, occasion_days=7).occasion_days == 7   # an option wins
    assert resolve_config(CensusConfig, both).occasion_days == 2
    assert resolve_config(DetectConfig, both).batch_size == 5
    assert resolve_config(DetectConfig, both).nms_threshold == DetectConfig().nms_threshold
    typo = tmp_path / "typo.yaml"
    typo.write_text("census:\n  occasion_days: 2\nbatchsize: 3\n")
    with pytest.raises(ValueError, match="not stage sections"):
        resolve_config(CensusConfig, typo)
    with pytest.raises(ValueError, match="flat.yaml.*unknown setting.*bogus"):
        resolve_config(CensusConfig, flat, bogus=1)


@pytest.mark.slow
def test_one_config_file_changes_detect_identify_census_and_process(tmp_path, tiny_models):
    cfg = tmp_path / "season.yaml"
    cfg.write_text(yaml.safe_dump({
        "detect": {"model": str(tiny_models["detector"]), "classifier": str(tiny_models["classifier"]),
                   "threshold": 0.0, "batch_size": 3, "decode_workers": 1, "threads": 1},
        # scorer: calibration keeps ALIKED off the untrained detector's many boxes (and travels like the rest)
        "identify": {"new_cluster_min_inliers": 13, "scorer": "calibration"},
        "census": {"occasion_days": 2.0},
    }))
    db = tmp_path / "c.db"
    card = tmp_path / "card"
    _card(card, 3)
    assert runner.invoke(app, ["deployments", "add", "D1", "--db", str(db), "--lat", "43.1", "--lon", "131.5",
                               "--start", "2020-01-01",
                               "--end", "2030-01-01", "--tz", "+10:00"]).exit_code == 0
    assert runner.invoke(app, ["ingest", str(card), "--deployment", "D1", "--db", str(db)]).exit_code == 0
    for cmd in (["detect", "--db", str(db)], ["identify", "--db", str(db)], ["census", "--db", str(db)]):
        r = runner.invoke(app, [*cmd, "--config", str(cfg)])
        assert r.exit_code == 0, (cmd, r.output)
    runs = _runs(db)
    assert runs["detect"][-1]["batch_size"] == 3 and runs["detect"][-1]["model"] == str(tiny_models["detector"])
    assert runs["identify"][-1]["new_cluster_min_inliers"] == 13 and runs["identify"][-1]["scorer"] == "calibration"
    assert runs["census"][-1]["occasion_days"] == 2.0
    # spotid process reads the same file: its detect and identify runs carry the same settings
    card2 = tmp_path / "card2"
    _card(card2, 2)
    r = runner.invoke(app, ["process", str(card2), "--deployment", "D1", "--db", str(db), "--config", str(cfg)])
    assert r.exit_code == 0, r.output
    runs = _runs(db)
    assert len(runs["detect"]) == 2 and runs["detect"][-1]["batch_size"] == 3
    assert len(runs["identify"]) == 2 and runs["identify"][-1]["new_cluster_min_inliers"] == 13
