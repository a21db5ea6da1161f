"""The camera check on a rendered synthetic card with known faults (issue 22's done-when): one camera down for
10 days and one clock reset are both found, the census's usage matrix shows them, and the SECR input uses it;
a camera with a broken infrared flash is named but keeps its (day) effort."""
from __future__ import annotations

import json
from datetime import datetime

import numpy as np
import pytest

from spotid.catalog import Catalog, now_iso
from spotid.census.census import Census
from spotid.census.config import CensusConfig
from spotid.census.secr_io import capture_data_from_census
from spotid.ingest.deployments import import_deployments_csv
from spotid.ingest.health import CameraCheck
from spotid.ingest.ingester import IngestConfig, Ingester
from spotid.synth.card import CardWriter
from spotid.synth.config import SynthConfig

pytestmark = pytest.mark.slow     # renders ~400 small frames and ingests them (~15 s on a shared core)

FAULTS = ("down:S02:5:10", "clock:S03:8", "noir:S01")


@pytest.fixture(scope="module")
def survey(tmp_path_factory):
    root = tmp_path_factory.mktemp("faulty")
    cfg = SynthConfig(stations=3, days=20, individuals=4, seed=3, paired=False, empty_fraction=0.9, g0=0.5,
                      sigma_m=3000.0, width=320, height=180, faults=FAULTS)
    CardWriter(cfg)(root / "card")
    truth = json.loads((root / "card" / "truth.json").read_text())
    cat = Catalog(root / "c.db")
    import_deployments_csv(cat, root / "card" / "deployments.csv")
    for d in ("S01", "S02", "S03"):
        Ingester(cat, IngestConfig())(root / "card" / d, d)
    _sightings_from_truth(cat, truth)
    yield cat, truth
    cat.close()


def _sightings_from_truth(cat: Catalog, truth: dict) -> None:
    """Leopard boxes of the truth as confirmed sightings of per-flank individuals (what review would give)."""
    img = {i["id"]: i for i in truth["images"]}
    media = {(r["deployment_id"], r["rel_path"]): r["id"] for r in cat.query("SELECT id, deployment_id, rel_path FROM media")}
    ids: dict[str, int] = {}
    with cat.transaction():
        for a in truth["annotations"]:
            if a.get("individual_id") is None or a.get("flank") not in ("left", "right"):
                continue
            im = img[a["image_id"]]
            mid = media[(im["deployment_id"], im["file_name"].split("/", 1)[1])]
            name = f"{a['individual_id']}-{a['flank'][0].upper()}"
            if name not in ids:
                ids[name] = cat.execute("INSERT INTO individuals (name, flank, status, created_at) VALUES (?,?,?,?)",
                                        (name, a["flank"], "confirmed", now_iso())).lastrowid
            x, y, w, h = a["bbox"]
            d = cat.execute("INSERT INTO detections (media_id, detector, category, conf, x, y, w, h, label) "
                            "VALUES (?,?,?,?,?,?,?,?,?)", (mid, "truth", 1, 1.0, x, y, w, h, "leopard")).lastrowid
            cat.execute("INSERT INTO sightings (detection_id, individual_id, flank, status, updated_at) "
                        "VALUES (?,?,?,?,?)", (d, ids[name], a["flank"], "confirmed", now_iso()))


def test_truth_records_the_faults(survey):
    _, truth = survey
    assert [(f["kind"], f["deployment"]) for f in truth["faults"]] == [("down", "S02"), ("clock", "S03"),
                                                                       ("noir", "S01")]
    assert not any(i["day_night"] == "night" for i in truth["images"] if i["deployment_id"] == "S01")
    s02 = [datetime.fromisoformat(i["datetime"]) for i in truth["images"] if i["deployment_id"] == "S02"]
    assert not any(datetime(2025, 10, 25).date() <= t.date() < datetime(2025, 11, 4).date() for t in s02)
    shifted = [i for i in truth["images"] if "true_datetime" in i]
    assert shifted and {i["deployment_id"] for i in shifted} == {"S03"}
    assert all((datetime.fromisoformat(i["true_datetime"]) - datetime.fromisoformat(i["datetime"])).days == 8
               for i in shifted)


def test_check_finds_both_faults_and_the_census_effort_follows(survey):
    cat, truth = survey
    reps = {r.deployment: r for r in CameraCheck()(cat)}
    assert [f.kind for f in reps["S01"].findings] == ["no_night_images"]
    assert reps["S01"].findings[0].evidence["chance_if_working"] < 0.01 and not reps["S01"].outages
    assert [f.kind for f in reps["S02"].findings] == ["camera_down"]
    down = reps["S02"].findings[0]
    # the true outage is 2025-10-25 00:00 to 2025-11-04 00:00; the gap found runs from the last image before
    # it to the first after: it holds the 10 days and overshoots by the waits for those triggers
    assert down.start <= datetime.fromisoformat("2025-10-25T00:00:00+10:00")
    assert down.end >= datetime.fromisoformat("2025-11-04T00:00:00+10:00")
    assert 10 <= down.evidence["gap_days"] < 11.5
    assert [f.kind for f in reps["S03"].findings] == ["clock_reset"]
    reset = reps["S03"].findings[0]
    n_shifted = sum(1 for i in truth["images"] if "true_datetime" in i)
    assert reset.evidence["images_after"] == n_shifted == len(reps["S03"].untrusted_media)
    assert reset.start < datetime.fromisoformat("2025-10-28T00:00:00+10:00")

    res = Census(CensusConfig(write_flank_links=False))(cat)
    u = {k: np.array(st.usage) for k, st in res.stations.items()}
    assert u["S01"] == pytest.approx(np.ones(20), abs=1e-4)        # the deployment ends at 23:59:59
    assert (u["S02"][5:15] == 0).all() and u["S02"][:4].min() == 1 and u["S02"][16:].min() > 0.99
    assert (u["S03"][8:] == 0).all() and u["S03"][:7].min() == 1
    assert res.stations["S02"].outage_days == pytest.approx(down.evidence["gap_days"], abs=1e-3)
    # leopard sightings photographed after the reset are not counted (their times are 8 days off)
    after = {i["id"] for i in truth["images"] if "true_datetime" in i}
    n_after = sum(1 for a in truth["annotations"] if a["image_id"] in after and a.get("flank") in ("left", "right"))
    n_all = sum(1 for a in truth["annotations"] if a.get("flank") in ("left", "right"))
    assert res.n_sightings == n_all - n_after
    # the SECR input carries the same usage (days per occasion / occasion length)
    cd = capture_data_from_census(res, res.estimate_flank)
    k = {t: j for j, t in enumerate(cd.trap_ids)}
    assert cd.usage[k["S02"]] == pytest.approx(u["S02"]) and cd.usage[k["S03"]] == pytest.approx(u["S03"])
    # without the check every camera counts 20 days
    off = Census(CensusConfig(camera_check=False, write_flank_links=False))(cat)
    assert all(st.trap_nights == pytest.approx(20) for st in off.stations.values())
