"""Camera operation from the images themselves (issue 22, item 2): each check on hand-made timestamp series
with known answers, known outages from a CSV, and the effort the census takes from them."""
from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta, timezone

import pytest
import yaml

from spotid.config import default_yaml, load_config
from spotid.ingest.health import (CameraCheck, HealthConfig, MediaTime, OutagesError, check_series, natural_key,
                                  read_outages, subtract)

TZ = timezone(timedelta(hours=10))
T0 = datetime(2025, 3, 1, tzinfo=TZ)
NOW = datetime(2026, 1, 1, tzinfo=TZ)


def series(hours: list[float]) -> list[MediaTime]:
    """One image per entry, in file order, at T0 + hours."""
    return [MediaTime(i + 1, T0 + timedelta(hours=h), ("card", i)) for i, h in enumerate(hours)]


def every(step_h: float, start_h: float, stop_h: float) -> list[float]:
    out, h = [], start_h
    while h < stop_h:
        out.append(h)
        h += step_h
    return out


def kinds(rep) -> list[str]:
    return sorted(f.kind for f in rep.findings)


def test_config_yaml_matches_dataclass():
    path = default_yaml(HealthConfig)
    assert path.name == "health.yaml"
    assert load_config(HealthConfig, path) == HealthConfig()
    assert set(yaml.safe_load(path.read_text())) == {f.name for f in dataclasses.fields(HealthConfig)}


def test_regular_camera_has_no_finding():
    # one trigger every 5 h (at 1, 6, 11, ... so some at night) for 20 days: nothing to say
    rep = check_series("C", series(every(5, 1, 480)), start=T0, end=T0 + timedelta(days=20), now=NOW)
    assert rep.findings == [] and rep.outages == []
    assert rep.operating == [(T0, T0 + timedelta(days=20))] and rep.operating_days == pytest.approx(20)


def test_camera_down_mid_deployment_is_an_outage():
    # triggers every 3 h, none from hour 120 (day 5) to hour 360 (day 15)
    hours = every(3, 1, 120) + every(3, 360, 480)
    rep = check_series("C", series(hours), start=T0, end=T0 + timedelta(days=20), now=NOW)
    assert kinds(rep) == ["camera_down"]
    f = rep.findings[0]
    # the gap runs from the last image before (hour 118) to the first after (hour 360): 242 h
    assert f.start == T0 + timedelta(hours=118) and f.end == T0 + timedelta(hours=360)
    assert f.evidence["gap_days"] == pytest.approx(242 / 24, abs=1e-3)
    # rate without the outage: 80 triggers over 20 - 242/24 days; threshold = max(3, ln(n/alpha)/rate)
    assert f.evidence["triggers_per_day"] == pytest.approx(len(hours) / (20 - 242 / 24), abs=1e-3)
    assert rep.operating_days == pytest.approx(20 - 242 / 24)


def test_dead_battery_tail_and_late_start():
    hours = every(2, 50, 300)    # first image on day 2.08, last on day 12.4; deployment 20 days
    rep = check_series("C", series(hours), start=T0, end=T0 + timedelta(days=20), now=NOW)
    assert kinds(rep) == ["stopped_early"]          # 50 h = 2.08 days < min_gap_days: no late start
    f = rep.findings[0]
    assert f.start == T0 + timedelta(hours=298) and f.end == T0 + timedelta(days=20)
    rep = check_series("C", series(every(2, 100, 480)), start=T0, end=T0 + timedelta(days=20), now=NOW)
    assert kinds(rep) == ["late_start"] and rep.operating[0][0] == T0 + timedelta(hours=100)


def test_quiet_camera_gap_is_not_an_outage():
    # one trigger a day with a 4-day gap: at 1/day a 4-day gap among 20 intervals is likely (threshold ~10 days)
    hours = [24 * d + 12 for d in range(20) if d not in (8, 9, 10)]
    rep = check_series("C", series(hours), start=T0, end=T0 + timedelta(days=20), now=NOW)
    assert [f.kind for f in rep.findings if f.outage] == []


def test_clock_reset_cuts_effort_and_distrusts_later_images():
    # file order: days 0..8 every 3 h, then the clock restarts at the deployment start and runs on
    before = every(3, 1, 192)
    after = every(3, 1, 100)
    rep = check_series("C", series(before + after), start=T0, end=T0 + timedelta(days=20), now=NOW)
    assert "clock_reset" in kinds(rep)
    f = next(f for f in rep.findings if f.kind == "clock_reset")
    assert f.start == T0 + timedelta(hours=190) and f.evidence["images_after"] == len(after)
    assert f.evidence["jump_back_days"] == pytest.approx(189 / 24, abs=1e-3)
    assert rep.untrusted_media == list(range(len(before) + 1, len(before) + len(after) + 1))
    assert rep.operating == [(T0, T0 + timedelta(hours=190))]
    assert [o.reason for o in rep.outages] == ["clock_reset"]


def test_clock_reset_only_within_one_card():
    # two cards of one deployment: the second restarts its file numbers, not its clock
    a = [MediaTime(i + 1, T0 + timedelta(hours=h), ("/card1/",) + natural_key(f"RCNX{i + 1:04d}.JPG"))
         for i, h in enumerate(every(3, 1, 240))]
    b = [MediaTime(1000 + i, T0 + timedelta(hours=h), ("/card2/",) + natural_key(f"RCNX{i + 1:04d}.JPG"))
         for i, h in enumerate(every(3, 241, 480))]
    rep = check_series("C", b + a, start=T0, end=T0 + timedelta(days=20), now=NOW)
    assert rep.findings == []


def test_stray_files_and_shuffled_names_are_not_a_reset():
    # a few files out of order (copied back in by hand) are fewer than reset_min_images: no reset
    hours = every(3, 1, 240) + [5, 6, 7] + every(3, 241, 480)
    rep = check_series("C", series(hours), start=T0, end=T0 + timedelta(days=20), now=NOW)
    assert "clock_reset" not in kinds(rep)
    # names that do not follow capture time at all (more than reset_max_jumps jumps): said, no reset read
    import random

    hours = every(3, 1, 480)
    random.Random(0).shuffle(hours)
    rep = check_series("C", series(hours), start=T0, end=T0 + timedelta(days=20), now=NOW)
    assert kinds(rep) == ["file_order_unknown"] and rep.outages == [] and rep.untrusted_media == []


def test_synth_fault_specs():
    from spotid.synth.faults import Fault, parse_fault, parse_faults

    assert parse_fault("down:S02A:5:10") == Fault("down", "S02A", 5, 10)
    assert parse_fault("clock:S03B:8") == Fault("clock", "S03B", 8) and parse_fault("noir:S01A").kind == "noir"
    for bad in ("down:S02A:5", "clock:S03B:x", "melt:S01A", "down:S02A:5:0"):
        with pytest.raises(ValueError, match="bad fault"):
            parse_fault(bad)
    with pytest.raises(ValueError, match="no such camera; cameras: S01A, S01B"):
        parse_faults(["down:S09A:1:2"], ["S01A", "S01B"], 10)


def test_dates_outside_the_deployment_and_future():
    # in file order: one image a year before the start, the survey, one 10 days after the end, one in the future
    hours = [-24 * 400] + every(3, 1, 480) + [24 * 30]
    ms = series(hours) + [MediaTime(999, NOW + timedelta(days=300), ("card", 999))]
    rep = check_series("C", ms, start=T0, end=T0 + timedelta(days=20), now=NOW)
    assert kinds(rep) == ["clock_wrong"]
    f = rep.findings[0]
    assert f.evidence["n_before_start"] == 1 and f.evidence["n_after_end_or_future"] == 2
    assert set(rep.untrusted_media) == {1, len(hours), 999}
    assert rep.outages == []


def test_glare_day():
    hours = every(4, 1, 480) + [24 * 7 + 8 + k * 0.02 for k in range(300)]   # 300 images on day 7
    rep = check_series("C", series(sorted(hours)), start=T0, end=T0 + timedelta(days=20), now=NOW)
    assert kinds(rep) == ["glare"]
    f = rep.findings[0]
    assert f.start == datetime(2025, 3, 8, tzinfo=TZ) and f.evidence["max_images_per_day"] == 306
    assert f.evidence["median_images_per_day"] == 6


def test_no_night_images():
    day_only = [24 * d + h for d in range(20) for h in (9, 12, 15)]          # 60 triggers, all by day
    rep = check_series("C", series(day_only), start=T0, end=T0 + timedelta(days=20), now=NOW, night_share=0.3)
    f = next(f for f in rep.findings if f.kind == "no_night_images")
    assert f.evidence["n_triggers"] == 60 and f.evidence["chance_if_working"] == pytest.approx(0.7 ** 60, rel=1e-2)
    # where other cameras see almost no nights either, 0 of 60 is no evidence
    rep = check_series("C", series(day_only), start=T0, end=T0 + timedelta(days=20), now=NOW, night_share=0.02)
    assert "no_night_images" not in kinds(rep)


def test_no_media():
    rep = check_series("C", [], start=T0, end=T0 + timedelta(days=20), now=NOW)
    assert kinds(rep) == ["no_images"] and rep.outages == [] and rep.operating_days == pytest.approx(20)


def test_subtract():
    a, b = T0, T0 + timedelta(days=10)
    d = lambda k: T0 + timedelta(days=k)   # noqa: E731
    assert subtract((a, b), [(d(2), d(3)), (d(2.5), d(4)), (d(9), d(12))]) == [(d(0), d(2)), (d(4), d(9))]
    assert subtract((a, b), [(d(-1), d(11))]) == []


def test_read_outages(tmp_path):
    deps = {"S01A": {"tz": "+10:00", "start": "2025-03-01T00:00:00+10:00"}}
    f = tmp_path / "out.csv"
    f.write_text("deployment_id,start,end,reason\nS01A,2025-03-05,2025-03-07,knocked over\n"
                 "S01A,2025-03-09T20:00:00+00:00,2025-03-10T18:00:00+10:00,\n")
    o = read_outages(f, deps)
    assert o[1].start.isoformat() == "2025-03-10T06:00:00+10:00"          # UTC given: read in camera time
    assert o[0].start == datetime(2025, 3, 5, tzinfo=TZ) and o[0].end == datetime(2025, 3, 8, tzinfo=TZ)
    assert o[0].reason == "knocked over" and o[1].reason == "known outage" and o[1].source == "outages file"
    for text, msg in [("deployment_id,start\nS01A,2025-03-05\n", "missing column"),
                      ("deployment_id,start,end\nS09,2025-03-05,2025-03-06\n", "unknown deployment 'S09'"),
                      ("deployment_id,start,end\nS01A,soon,2025-03-06\n", "bad start"),
                      ("deployment_id,start,end\nS01A,2025-03-06,2025-03-05\n", "not after")]:
        f.write_text(text)
        with pytest.raises(OutagesError, match=msg):
            read_outages(f, deps)


# -- the census takes its effort from the check ---------------------------------------------------------
import json  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

from typer.testing import CliRunner  # noqa: E402

from spotid.catalog import Catalog  # noqa: E402
from spotid.census.census import Census  # noqa: E402
from spotid.census.config import CensusConfig  # noqa: E402
from spotid.cli import app  # noqa: E402

sys.path.insert(0, str(Path(__file__).parent))
from test_census_fixtures import Builder  # noqa: E402


def _ts(h: float) -> str:
    return (datetime(2024, 3, 1, tzinfo=TZ) + timedelta(hours=h)).isoformat()


@pytest.fixture
def faulty(db_path):
    """Three single-camera stations, 10 days from 2024-03-01: C1 works, C2 has no image on days 3-7 (mid-deployment),
    C3's clock is reset on day 6 (its later files say day 0..). A leopard L1 at C3 after the reset."""
    cat = Catalog(db_path)
    b = Builder(cat)
    for d in ("C1", "C2", "C3"):
        b.deployment(d, f"S{d[1]}", _ts(0), _ts(240), 43.1, 131.5 + 0.02 * int(d[1]))
    b.individual("L1", "left")
    for h in every(3, 1, 240):
        b.media("C1", _ts(h))
    for h in every(3, 1, 72) + every(3, 168, 240):
        b.media("C2", _ts(h))
    for h in every(3, 1, 144):
        if h == 10:
            b.sighting("C3", _ts(h), "L1")               # before the reset: counted
        else:
            b.media("C3", _ts(h))
    for h in every(3, 2, 90):                            # after the reset, written as day 0..3.7
        b.media("C3", _ts(h))
    b.sighting("C3", _ts(93), "L1")                      # its true time is day ~9.9: not counted
    yield cat
    cat.close()


def test_census_effort_from_the_camera_check(faulty):
    rep = {r.deployment: r for r in CameraCheck(now=NOW)(faulty)}
    assert [f.kind for f in rep["C1"].findings] == []
    assert [f.kind for f in rep["C2"].findings] == ["camera_down"]
    assert rep["C2"].outages[0].start == datetime(2024, 3, 3, 22, tzinfo=TZ)      # last image before: hour 70
    assert rep["C2"].outages[0].end == datetime(2024, 3, 8, tzinfo=TZ)            # first after: hour 168
    assert [f.kind for f in rep["C3"].findings] == ["clock_reset"]
    res = Census(CensusConfig())(faulty)
    s1, s2, s3 = (res.stations[k] for k in ("S1", "S2", "S3"))
    assert s1.usage == pytest.approx([1.0] * 10) and s1.outage_days == 0
    # C2: hour 70 -> 168 out: day 2 keeps 22 h, days 3..6 nothing, day 7 all (168 h = day 7 00:00)
    assert s2.usage == pytest.approx([1, 1, 22 / 24, 0, 0, 0, 0, 1, 1, 1])
    assert s2.trap_nights == pytest.approx(10 - 98 / 24) and "camera_down" in s2.effort_source
    # C3: effort ends at its last good image (hour 142); the sighting after the reset is left out
    assert s3.usage == pytest.approx([1] * 5 + [22 / 24, 0, 0, 0, 0])
    assert res.n_sightings == 1 and any("clock cannot be trusted" in w for w in res.warnings)
    assert any(w.startswith("camera C2: camera_down") for w in res.warnings)
    # without the check the effort is the deployment dates, as before
    off = Census(CensusConfig(camera_check=False))(faulty)
    assert off.stations["S2"].usage == pytest.approx([1.0] * 10) and off.n_sightings == 2


def test_outages_file_and_cli(faulty, tmp_path):
    f = tmp_path / "outages.csv"
    f.write_text("deployment_id,start,end,reason\nC1,2024-03-02,2024-03-02,flooded\n")
    res = Census(CensusConfig(outages=str(f), write_flank_links=False))(faulty)
    assert res.stations["S1"].usage == pytest.approx([1, 0] + [1] * 8)
    assert "flooded (outages file)" in res.stations["S1"].effort_source
    runner = CliRunner()
    r = runner.invoke(app, ["deployments", "check", "--db", str(faulty.path), "--outages", str(f), "--json"])
    assert r.exit_code == 0, r.output
    doc = json.loads(r.output)
    by = {c["deployment"]: c for c in doc["cameras"]}
    assert doc["findings_by_kind"] == {"camera_down": 1, "clock_reset": 1}
    assert by["C1"]["operating_days"] == pytest.approx(9) and by["C1"]["outages"][0]["reason"] == "flooded"
    r = runner.invoke(app, ["deployments", "check", "--db", str(faulty.path)])
    assert r.exit_code == 0 and "camera_down" in r.output and "clock_reset" in r.output
    r = runner.invoke(app, ["census", "--db", str(faulty.path), "--outages", str(f), "--json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.output)["summary"]["trap_nights"] == pytest.approx(
        sum(st.trap_nights for st in res.stations.values()), abs=1e-3)
    bad = tmp_path / "bad.csv"
    bad.write_text("deployment_id,start,end\nC9,2024-03-02,2024-03-03\n")
    for cmd in (["census"], ["deployments", "check"]):
        r = runner.invoke(app, cmd + ["--db", str(faulty.path), "--outages", str(bad)])
        assert r.exit_code == 2 and "unknown deployment 'C9'" in r.output and "Traceback" not in r.output
