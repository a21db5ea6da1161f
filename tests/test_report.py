"""The HTML census report (`spotid export report`): empty states instead of blank charts, an events axis that
never goes negative, stations in latitude/longitude, and one embedded crop per counted individual."""
from __future__ import annotations

import base64
import io
import math
import re
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

sys.path.insert(0, str(Path(__file__).parent))
from test_census_fixtures import Builder, simulated_catalog  # noqa: E402

from spotid.catalog import Catalog  # noqa: E402
from spotid.census.census import Census  # noqa: E402
from spotid.census.config import CensusConfig  # noqa: E402
from spotid.cli import app  # noqa: E402
from spotid.export import report  # noqa: E402

CFG = CensusConfig(write_flank_links=False)


@pytest.fixture
def figures(monkeypatch) -> list:
    """The matplotlib figures the report draws, kept open for inspection (their PNGs are still written)."""
    kept = []

    def save(fig, path):
        fig.canvas.draw()
        kept.append(fig)
        buf = io.BytesIO()
        fig.savefig(buf, format="png")
        Path(path).write_bytes(buf.getvalue())
        return Path(path)

    monkeypatch.setattr(report, "_save", save)
    yield kept
    import matplotlib.pyplot as plt

    for f in kept:
        plt.close(f)


def _nothing_counted(path: Path) -> Catalog:
    """Two cameras with coordinates, two sightings of a proposed individual still pending review, one set aside."""
    cat = Catalog(path)
    b = Builder(cat)
    b.deployment("B1", "L1", "2024-03-01T00:00:00+10:00", "2024-03-11T00:00:00+10:00", 43.10, 131.90)
    b.deployment("B2", "L2", "2024-03-01T00:00:00+10:00", "2024-03-11T00:00:00+10:00", 43.20, 131.80)
    b.individual("AL-001-L", "left", status="proposed")
    b.sighting("B1", "2024-03-02T22:00:00+10:00", "AL-001-L", status="pending")
    b.sighting("B2", "2024-03-05T03:00:00+10:00", "AL-001-L", status="pending")
    b.sighting("B2", "2024-03-06T03:00:00+10:00", None, status="unusable")
    return cat


def test_report_of_an_empty_catalog_says_what_to_run_first(tmp_path):
    Catalog(tmp_path / "empty.db").close()
    r = CliRunner().invoke(app, ["export", "report", "--db", str(tmp_path / "empty.db"), "--out", str(tmp_path / "rep")])
    assert r.exit_code == 2
    assert "no media in" in r.output and "spotid ingest" in r.output
    assert not (tmp_path / "rep" / "report.html").exists()
    # called as a library on that catalog, the report still says it rather than drawing an invented period
    with Catalog(tmp_path / "empty.db") as cat:
        html = report.write_report(Census(CFG)(cat), tmp_path / "lib", cat=cat).read_text()
    assert "Nothing counted yet" in html and "spotid ingest" in html
    assert "None" not in html and "Best:" not in html


def test_report_with_nothing_counted_says_what_to_do_instead_of_blank_charts(tmp_path):
    _nothing_counted(tmp_path / "c.db").close()
    out = tmp_path / "rep"
    (out).mkdir()
    (out / "estimates.png").write_bytes(b"an earlier report's plot")
    r = CliRunner().invoke(app, ["export", "report", "--db", str(tmp_path / "c.db"), "--out", str(out)])
    assert r.exit_code == 0, r.output
    html = (out / "report.html").read_text()
    text = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))
    assert "Nothing counted yet" in text
    assert f"2 sighting(s) wait for review: confirm or correct them in `spotid review --db {tmp_path / 'c.db'}`" in text
    assert "1 leopard sighting(s) were set aside as not identifiable" in text
    assert "No identity counted in this period." in text
    assert "None" not in text and "Best:" not in text            # was "Best: None ()"
    for png in ("capture_history.png", "sightings_over_time.png", "estimates.png"):   # no blank charts
        assert png not in html and not (out / png).exists()
    assert (out / "stations.png").is_file() and "data:image/png;base64," in html


def test_the_events_axis_starts_at_zero(tmp_path, figures):
    """matplotlib centres an all-zero series on 0: the events axis of an empty period read -0.04 .. 0.04."""
    cat = _nothing_counted(tmp_path / "c.db")
    res = Census(CFG)(cat)
    report.plot_over_time(res, tmp_path / "t.png")
    events, animals = figures[0].axes
    assert events.get_ylim()[0] == 0 and animals.get_ylim()[0] == 0
    assert min(events.get_yticks()) >= 0 and min(animals.get_yticks()) >= 0
    cat.close()


def test_station_map_and_table_in_latitude_longitude(tmp_path, figures):
    cat, _ = simulated_catalog(tmp_path / "sim.db", n_animals=6, n_stations=4, days=10, p=0.3, seed=1)
    res = Census(CFG)(cat)
    report.plot_stations(res, tmp_path / "s.png")
    ax = figures[0].axes[0]
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("longitude", "latitude")
    xs = [t.get_text() for t in ax.get_xticklabels() if t.get_text()]
    ys = [t.get_text() for t in ax.get_yticklabels() if t.get_text()]
    assert xs and all(re.fullmatch(r"131\.\d{4}°E", t) for t in xs), xs
    assert ys and all(re.fullmatch(r"4[23]\.\d{4}°N", t) for t in ys), ys
    # stations 131.50 .. 131.62 E at 43.0 N: 9.8 km across, a 2 km scale bar 2 / (111.32 cos 43.0°) degrees long
    bars = [a for a in ax.artists if hasattr(a, "size_bar")]
    assert [b.txt_label.get_text() for b in bars] == ["2 km"]
    assert ax.get_aspect() == pytest.approx(1 / math.cos(math.radians(43.0)))
    assert [report._nice_km(k) for k in (0.1, 2.0, 2.2, 9.8, 40.0)] == [0.1, 0.5, 0.5, 2, 10]
    html = report.write_report(res, tmp_path / "rep", cat=cat).read_text()
    assert "<th>latitude</th><th>longitude</th>" in html
    assert "<td>S01</td><td>43.00000</td><td>131.54000</td>" in html
    cat.close()


def _jpeg(path: Path, colour) -> str:
    from PIL import Image

    Image.new("RGB", (400, 300), colour).save(path, "JPEG")
    return str(path)


def test_a_photo_per_counted_individual_embedded_in_the_report(tmp_path):
    """AL-000-L: two confirmed crops, the better one (quality 0.9, blue) shown; AL-001-L: its crop file is gone
    (placeholder, says so); the others: no crop row (placeholder). Every image is inside report.html."""
    from PIL import Image

    cat, _ = simulated_catalog(tmp_path / "sim.db", n_animals=6, n_stations=4, days=10, p=0.3, seed=1)

    def detections(name):
        return [r[0] for r in cat.query("SELECT s.detection_id FROM sightings s JOIN individuals i ON "
                                        "i.id = s.individual_id WHERE i.name = ? ORDER BY s.id", (name,))]

    a, b = detections("AL-000-L"), detections("AL-001-L")
    with cat.transaction():
        cat.execute("UPDATE sightings SET status = 'confirmed' WHERE detection_id IN (?, ?)", (a[0], a[1]))
        cat.execute("INSERT INTO crops (detection_id, quality, crop_path) VALUES (?, 0.2, ?)",
                    (a[0], _jpeg(tmp_path / "red.jpg", (220, 20, 20))))
        cat.execute("INSERT INTO crops (detection_id, quality, crop_path) VALUES (?, 0.9, ?)",
                    (a[1], _jpeg(tmp_path / "blue.jpg", (20, 20, 220))))
        cat.execute("INSERT INTO crops (detection_id, quality, crop_path) VALUES (?, 0.5, ?)",
                    (b[0], str(tmp_path / "gone.jpg")))
    res = Census(CFG)(cat)
    html = report.write_report(res, tmp_path / "rep", cat=cat).read_text()
    tiles = re.findall(r'<div class="tile">(.*?)</div></div>', html)
    assert len(tiles) == len(res.identities) == 12
    by_name = {re.search(r"<b>(.*?)</b>", t).group(1): t for t in tiles}
    uri = re.search(r'src="data:image/jpeg;base64,([^"]+)"', by_name["AL-000-L"]).group(1)
    im = Image.open(io.BytesIO(base64.b64decode(uri)))
    assert im.format == "JPEG" and max(im.size) == report.THUMB_SIDE
    r, g, bl = im.convert("RGB").getpixel((im.size[0] // 2, im.size[1] // 2))
    assert bl > 150 and r < 80                                     # the quality-0.9 crop
    assert f"crop of detection {b[0]} missing on disk" in by_name["AL-001-L"]
    assert "no crop stored: run spotid identify" in by_name["AL-002-L"]
    assert all(src.startswith("data:") for src in re.findall(r'src="([^"]*)"', html))   # one self-contained file
    cat.close()


def test_a_map_without_coordinates_says_how_to_add_them(tmp_path, figures):
    cat = Catalog(tmp_path / "c.db")
    b = Builder(cat)
    b.deployment("A1", None, "2024-03-01T00:00:00+10:00", "2024-03-03T00:00:00+10:00")   # auto-created: no lat/lon
    b.media("A1", "2024-03-02T10:00:00+10:00")
    report.plot_stations(Census(CFG)(cat), tmp_path / "s.png")
    ax = figures[0].axes[0]
    assert list(ax.get_xticks()) == [] and list(ax.get_yticks()) == []   # no 0..1 axes posing as degrees
    assert "`spotid deployments add ID --lat .. --lon ..`" in [t.get_text() for t in ax.texts][0]
    cat.close()
