"""Census report: one folder with ``report.html`` (self-contained: plots and crops embedded as data URIs), the
PNG plots as files too (matplotlib Agg) and the census tables.

Plots: stations on a map (longitude/latitude in degrees, aspect true at the stations' latitude, a km scale
bar; marker area ~ events, colour = identities), the capture-history heatmap (identities x occasions),
sightings over time with the discovery curve (cumulative identities), the estimates with their 95% intervals
against the MNA bounds, and the camera health timeline (operating periods, outages and findings per camera,
from spotid/ingest/health.py). One photo per counted identity: its best crop among the sightings the census
counted (:func:`counted_crops`), a small JPEG data URI. A period with nothing counted gets no empty plots but
the reasons and the command to run (:func:`nothing_counted`); the review page's Census tab shares both helpers.
"""
from __future__ import annotations

import base64
import html
import io
import math
from collections import Counter
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import numpy as np

from spotid.catalog import Catalog, missing_step
from spotid.catalog.tables import detections, sightings
from spotid.census.result import CensusResult
from spotid.census.outputs import write_census
from spotid.util import atomic_write_bytes, atomic_write_text, open_image_reduced

THUMB_SIDE = 160          # px, long side of a crop thumbnail in the report (JPEG q70: ~4-8 kB each)
_PLOTS = ("stations.png", "capture_history.png", "sightings_over_time.png", "estimates.png")


def _save(fig, path: Path) -> Path:
    """Lay out, write the figure as PNG atomically (a half-written plot never replaces a good one) and
    close it."""
    import matplotlib.pyplot as plt

    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return atomic_write_bytes(path, buf.getvalue())


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _deg(v: float, pos: str, neg: str) -> str:
    return f"{abs(v):.4f}°{pos if v >= 0 else neg}"   # 0.0001° ~ 11 m: ticks a few hundred m apart stay distinct


def _nice_km(span_km: float) -> float:
    """A round scale-bar length near a quarter of the map's width: 0.1, 0.2, 0.5, 1, 2, 5, 10 ... km."""
    target = max(span_km / 4, 0.1)
    mag = 10 ** math.floor(math.log10(target))
    return max(round(m * mag, 12) for m in (1, 2, 5) if m * mag <= target * (1 + 1e-9))


def plot_stations(res: CensusResult, path: Path) -> Path:
    """Stations at their latitude/longitude (WGS84 degrees; the y/x aspect is 1/cos(latitude), so a km is
    as long north-south as east-west) with a km scale bar."""
    from matplotlib.ticker import FuncFormatter
    from mpl_toolkits.axes_grid1.anchored_artists import AnchoredSizeBar

    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 6), dpi=110)
    sts = [s for s in res.stations.values() if s.latitude is not None and s.longitude is not None]
    if sts:
        lon = np.array([s.longitude for s in sts])
        lat = np.array([s.latitude for s in sts])
        ev = np.array([s.n_events for s in sts])
        ids = np.array([len(s.identities) for s in sts])
        ax.scatter(lon[ev == 0], lat[ev == 0], s=30, facecolors="none", edgecolors="0.5", label="no leopard events")
        m = ev > 0
        if m.any():
            sc = ax.scatter(lon[m], lat[m], s=40 + 60 * ev[m], c=ids[m], cmap="viridis", edgecolors="k",
                            vmin=0, vmax=max(1, ids.max()), label="marker area ~ events")
            fig.colorbar(sc, ax=ax, label="identities detected")
        for s, xi, yi in zip(sts, lon, lat):
            ax.annotate(f"{s.id} ({s.n_events})", (xi, yi), textcoords="offset points", xytext=(5, 5), fontsize=8)
        coslat = max(math.cos(math.radians(float(lat.mean()))), 1e-3)
        km_per_deg_lon = 111.32 * coslat
        span_km = max(float(np.ptp(lon)) * km_per_deg_lon, float(np.ptp(lat)) * 111.32, 0.4)
        if len(sts) == 1:   # one station: a map 0.4 km across rather than a degenerate one
            half = 0.2 / 111.32
            ax.set_xlim(lon[0] - half / coslat, lon[0] + half / coslat)
            ax.set_ylim(lat[0] - half, lat[0] + half)
        else:
            ax.margins(0.15)
        ax.set_aspect(1 / coslat, adjustable="box" if len(sts) == 1 else "datalim")
        km = _nice_km(span_km)
        ax.add_artist(AnchoredSizeBar(ax.transData, km / km_per_deg_lon, f"{km:g} km", "lower right",
                                      pad=0.4, frameon=False, size_vertical=0))
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: _deg(v, "E", "W")))
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: _deg(v, "N", "S")))
        ax.tick_params(axis="x", labelrotation=30, labelsize=8)
        ax.tick_params(axis="y", labelsize=8)
        ax.legend(loc="best", fontsize=8)
    else:
        ax.text(0.5, 0.5, "no station coordinates in the catalog:\n`spotid deployments add ID --lat .. --lon ..`",
                ha="center", va="center", transform=ax.transAxes, fontsize=9)
        ax.set_xticks([])   # 0..1 axes would read as degrees
        ax.set_yticks([])
    ax.set_xlabel("longitude")
    ax.set_ylabel("latitude")
    ax.set_title("Camera stations and leopard events (label: station (events))")
    ax.grid(alpha=0.3)
    return _save(fig, path)


def plot_capture_history(res: CensusResult, path: Path) -> Path:
    plt = _plt()
    order = sorted(res.identities.values(), key=lambda v: (v["animal"], v["flank"]))
    counts = np.zeros((max(1, len(order)), res.n_occasions))
    idx = {v["id"]: k for k, v in enumerate(order)}
    for e in res.events:
        if e.occasion is not None and e.identity in idx:
            counts[idx[e.identity], e.occasion] += 1
    h = max(2.5, 0.28 * len(order) + 1.5)
    fig, ax = plt.subplots(figsize=(max(6, min(16, 0.25 * res.n_occasions + 3)), min(h, 30)), dpi=110)
    im = ax.imshow(counts, aspect="auto", cmap="Greens", interpolation="nearest", vmin=0, vmax=max(1, counts.max()))
    ax.set_yticks(range(len(order)))
    ax.set_yticklabels([f"{v['name']} ({v['flank'][0].upper()})" for v in order], fontsize=7)
    step = max(1, res.n_occasions // 20)
    ax.set_xticks(range(0, res.n_occasions, step))
    ax.set_xticklabels([str(k + 1) for k in range(0, res.n_occasions, step)], fontsize=7)
    ax.set_xlabel(f"occasion ({res.config.occasion_days:g} day each)")
    ax.set_title("Capture histories: independent events per identity and occasion")
    from matplotlib.ticker import MaxNLocator

    cb = fig.colorbar(im, ax=ax, label="independent events")
    cb.locator = MaxNLocator(integer=True)
    cb.update_ticks()
    if not order:
        ax.text(0.5, 0.5, "no identified leopards", ha="center", va="center", transform=ax.transAxes)
    return _save(fig, path)


def plot_over_time(res: CensusResult, path: Path) -> Path:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(8, 4), dpi=110)
    per_occ = Counter(e.occasion for e in res.events if e.occasion is not None)
    occ = np.arange(res.n_occasions)
    ax.bar(occ + 1, [per_occ.get(k, 0) for k in occ], color="#4c72b0", label="independent events")
    first = {}  # animal (linked flanks count once) -> first occasion seen
    for e in res.events:
        if e.occasion is not None and e.identity in res.identities:
            a = res.identities[e.identity]["animal"]
            first[a] = min(first.get(a, e.occasion), e.occasion)
    cum = np.cumsum([sum(1 for v in first.values() if v == k) for k in occ])
    ax2 = ax.twinx()
    ax2.step(occ + 1, cum, where="mid", color="#dd8452", label="cumulative animals (flank-linked count once)")
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax2.yaxis.set_major_locator(MaxNLocator(integer=True))
    # counts start at 0: matplotlib centres an all-zero series on 0, which drew negative event counts
    ax.set_ylim(0, max(1, max(per_occ.values(), default=0)) * 1.1)
    ax2.set_ylim(0, max(1, int(cum[-1]) if len(cum) else 0) * 1.1)
    ax.set_xlabel(f"occasion ({res.config.occasion_days:g} day each, from {res.period_start:%Y-%m-%d})")
    ax.set_ylabel("events")
    ax2.set_ylabel("animals seen so far")
    ax.set_title("Leopard events over time and the discovery curve")
    h1, l1 = ax.get_legend_handles_labels()
    h2, l2 = ax2.get_legend_handles_labels()
    ax.legend(h1 + h2, l1 + l2, loc="upper left", fontsize=8)
    return _save(fig, path)


def plot_estimates(res: CensusResult, path: Path) -> Path:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 4.2), dpi=110)
    ests = res.estimates.estimates if res.estimates else []
    ax.axvspan(res.bounds.mna_min, max(res.bounds.mna_max, res.bounds.mna_min + 0.05), color="0.85",
               label=f"MNA two-flank bounds {res.bounds.mna_min}–{res.bounds.mna_max}")
    for k, e in enumerate(ests):
        if e.N is None:
            ax.text(res.bounds.mna_min, k, f"  {e.status}", va="center", fontsize=8, color="0.4")
            continue
        lo = e.N - (e.lcl if e.lcl is not None else e.N)
        hi = (e.ucl - e.N) if e.ucl is not None else 0
        best = res.estimates.best == e.model
        ax.errorbar(e.N, k, xerr=[[lo], [hi]], fmt="o", color="#c44e52" if best else "#4c72b0", capsize=4)
    ax.set_yticks(range(len(ests)))
    ax.set_yticklabels([e.model + (" (best)" if res.estimates and e.model == res.estimates.best else "") for e in ests])
    ax.invert_yaxis()
    ax.set_xlabel(f"number of leopards ({res.estimate_flank or '—'}-flank histories), N̂ and 95% CI")
    ax.set_title("Population size estimates")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.2), fontsize=8, frameon=False)
    ax.grid(axis="x", alpha=0.3)
    return _save(fig, path)


def plot_camera_health(res: CensusResult, path: Path) -> Path:
    """One row per camera: deployment span (grey), operating periods (green), outages (red: found by the
    camera check, orange: from the outages file), other findings (purple: glare days, infrared)."""
    plt = _plt()
    reps = res.cameras
    fig, ax = plt.subplots(figsize=(9, max(2.2, 0.38 * len(reps) + 1.4)), dpi=110)
    for k, r in enumerate(reps):
        if r.start is not None and r.end is not None:
            ax.barh(k, (r.end - r.start).total_seconds() / 86400, left=_days_since(res, r.start), height=0.7,
                    color="0.88", edgecolor="0.6")
        for a, b in r.operating:
            ax.barh(k, (b - a).total_seconds() / 86400, left=_days_since(res, a), height=0.45, color="#55a868")
        for o in r.outages:
            ax.barh(k, (o.end - o.start).total_seconds() / 86400, left=_days_since(res, o.start), height=0.45,
                    color="#c44e52" if o.source == "camera check" else "#dd8452")
        for f in r.findings:
            if not f.outage and f.start is not None and f.end is not None and f.kind != "file_order_unknown":
                ax.barh(k, (f.end - f.start).total_seconds() / 86400, left=_days_since(res, f.start), height=0.18,
                        color="#8172b3")
    ax.set_yticks(range(len(reps)))
    ax.set_yticklabels([f"{r.deployment} ({', '.join(sorted({f.kind for f in r.findings})) or 'ok'})" for r in reps],
                       fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel(f"days from {res.period_start:%Y-%m-%d} (local camera time)")
    ax.set_title("Camera operation: span (grey), operating (green), outages found (red) / known (orange), "
                 "other findings (purple)", fontsize=9)
    ax.grid(axis="x", alpha=0.3)
    return _save(fig, path)


def _days_since(res: CensusResult, t) -> float:
    return (t.replace(tzinfo=None) - res.period_start).total_seconds() / 86400


def _img(path: Path, alt: str) -> str:
    """The PNG embedded as a data URI (report.html stands alone, e.g. as an e-mail attachment), with a link to the
    file next to it for a full-size copy."""
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return (f'<figure><img src="data:image/png;base64,{data}" alt="{html.escape(alt)}">'
            f'<figcaption><a href="{path.name}">{path.name}</a></figcaption></figure>')


def _health_html(res: CensusResult, out: Path) -> str:
    if not res.cameras:
        return ("<h2>Camera health</h2><p>The camera check did not run (census setting camera_check off); effort "
                "is the deployment dates minus the outages file, if any.</p>")
    png = plot_camera_health(res, out / "camera_health.png")
    rows = [{"camera": r.deployment, "finding": f.kind, "from": f"{f.start:%Y-%m-%d %H:%M}" if f.start else None,
             "to": f"{f.end:%Y-%m-%d %H:%M}" if f.end else None, "out of effort": "yes" if f.outage else "no",
             "evidence": ", ".join(f"{k}={v}" for k, v in f.evidence.items()), "what to do": f.action}
            for r in res.cameras for f in r.findings if f.kind != "file_order_unknown"]
    rows += [{"camera": r.deployment, "finding": "known outage", "from": f"{o.start:%Y-%m-%d %H:%M}",
              "to": f"{o.end:%Y-%m-%d %H:%M}", "out of effort": "yes", "evidence": o.reason, "what to do": ""}
             for r in res.cameras for o in r.outages if o.source == "outages file"]
    ok = sum(1 for r in res.cameras if not rows or all(x["camera"] != r.deployment for x in rows))
    return (f"<h2>Camera health</h2><p>{ok} of {len(res.cameras)} cameras without findings. Outages are taken "
            "out of the effort (trap-nights, the usage matrix and SECR). Details: <code>spotid deployments check"
            "</code>.</p>" + _img(png, "camera health timeline")
            + (_table(rows, ["camera", "finding", "from", "to", "out of effort", "evidence", "what to do"]) if rows else ""))


def _table(rows: list[dict], cols: list[str]) -> str:
    def cell(v):
        if v is None:
            return "—"
        if isinstance(v, float):
            return f"{v:.2f}"
        return html.escape(str(v))

    head = "".join(f"<th>{html.escape(c)}</th>" for c in cols)
    body = "".join("<tr>" + "".join(f"<td>{cell(r.get(c))}</td>" for c in cols) + "</tr>" for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


# -- what the report and the review page's Census tab share --------------------------------------------
@dataclass(frozen=True)
class CropRef:
    """The crop shown for one counted identity. ``stored``: the catalog names a crop file (identify writes one per
    leopard box); ``path``: that file, None when none is stored or it is missing on disk."""

    detection_id: int
    status: str
    quality: float | None
    stored: bool
    path: Path | None


def counted_crops(cat: Catalog, res: CensusResult) -> dict[int, CropRef | None]:
    """Per identity of ``res.identities``, its best crop among the sightings the census counted: one whose file
    exists first, then one with a stored crop path, then a confirmed sighting before a machine-accepted one, then
    the highest ``crops.quality``, then the lowest detection id. None for an identity with no counted sighting."""
    owner = {sid: e.identity for e in res.events for sid in e.sighting_ids}
    ids = sorted(owner)
    best: dict[int, tuple] = {}
    for r in sightings.with_crops(cat, ids):
        path = None
        if r["crop_path"]:
            path = Path(r["crop_path"])
            if not path.is_absolute():   # stages may store paths relative to the catalog's folder
                path = Path(cat.path).parent / path
            path = path if path.is_file() else None
        q = r["quality"]
        key = (path is not None, bool(r["crop_path"]), r["status"] == "confirmed", -math.inf if q is None else q,
               -r["det"])
        ref = CropRef(int(r["det"]), r["status"], q, bool(r["crop_path"]), path)
        i = owner[r["sid"]]
        if i not in best or key > best[i][0]:
            best[i] = (key, ref)
    return {i: best[i][1] if i in best else None for i in res.identities}


def thumbnail_uri(path: Path | None, side: int = THUMB_SIDE) -> str | None:
    """A ``data:image/jpeg;base64,...`` thumbnail (long side ``side`` px, JPEG quality 70) of an image, or None
    when there is no path or the file cannot be decoded."""
    if path is None:
        return None
    try:
        im, _ = open_image_reduced(path, side)
        im.thumbnail((side, side))
        buf = io.BytesIO()
        im.save(buf, "JPEG", quality=70, optimize=True)
    except (OSError, ValueError):
        return None
    return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def n_counted_events(res: CensusResult) -> int:
    return sum(1 for e in res.events if e.occasion is not None)


def nothing_counted(res: CensusResult, cat: Catalog | None = None, *, review: str | None = None) -> list[str]:
    """Why the census of ``res`` counted nothing and what to run, one sentence each; [] when it counted events.
    ``review``: how to reach the review queue (default: the ``spotid review`` command for this catalog)."""
    if n_counted_events(res):
        return []
    out: list[str] = []
    last = max(res.period_start, res.period_end - timedelta(seconds=1))   # period_end is exclusive
    period = f"{res.period_start:%Y-%m-%d} – {last:%Y-%m-%d}"
    if cat is None:
        return [f"no counted sighting in {period}: run `spotid identify`, then confirm sightings in `spotid review`"]
    db = cat.path
    why = missing_step(cat, "census")
    if why:
        return [why]
    review = review or f"`spotid review --db {db}`"
    unidentified = detections.count_leopards(cat, without_sighting=True)
    pending = sightings.count_with_status(cat, "pending")
    unusable = sightings.count_with_status(cat, "unusable")
    statuses = tuple(res.config.statuses)
    counted = sightings.count_assigned(cat, statuses)
    leopards = detections.count_leopards(cat)
    if not sum(st.trap_nights for st in res.stations.values()):
        out.append(f"no camera was operating in {period}: choose a period within the deployments' dates "
                   f"(`spotid deployments list --db {db}`)")
    if unidentified:
        out.append(f"{unidentified} leopard detection(s) have not been through identify: run "
                   f"`spotid identify --db {db}`")
    if pending:
        out.append(f"{pending} sighting(s) wait for review: confirm or correct them in {review} (the census counts "
                   f"{' and '.join(statuses)} sightings)")
    if unusable:
        out.append(f"{unusable} leopard sighting(s) were set aside as not identifiable: look at them with "
                   f"`spotid review --include-set-aside --db {db}`")
    if counted and not res.n_sightings:
        out.append(f"the catalog's {counted} counted sighting(s) all lie outside {period}: widen the period")
    if not leopards:
        out.append("detect found no leopard in this catalog's frames: if the cameras worked, zero is the count")
    return out or [f"no counted sighting in {period}"]


def _individuals_html(res: CensusResult, cat: Catalog | None) -> str:
    """One tile per counted identity: its best crop (embedded) or a placeholder, name, flank, events."""
    from spotid.census.outputs import individual_rows

    rows = individual_rows(res)
    if not rows:
        return "<p>No identity counted in this period.</p>"
    crops = counted_crops(cat, res) if cat is not None else {}
    tiles = []
    for r in rows:
        ref = crops.get(r["id"])
        uri = thumbnail_uri(ref.path) if ref is not None else None
        if uri:
            pic = f'<img src="{uri}" alt="best crop of {html.escape(r["name"])} (detection {ref.detection_id})">'
        else:
            why = ("no crop stored: run spotid identify" if ref is None or not ref.stored else
                   f"crop of detection {ref.detection_id} missing on disk" if ref.path is None else
                   f"crop of detection {ref.detection_id} cannot be decoded")
            pic = f'<div class="nocrop" title="{html.escape(why)}">no photo<br><small>{html.escape(why)}</small></div>'
        tiles.append(f'<div class="tile">{pic}<div><b>{html.escape(r["name"])}</b> ({html.escape(r["flank"])})<br>'
                     f'{r["n_events"]} event(s) · {html.escape(r["stations"])}</div></div>')
    return (f'<div class="tiles">{"".join(tiles)}</div>'
            + _table(rows, ["name", "flank", "animal", "first_seen", "last_seen", "stations", "n_sightings",
                            "n_events"]))


def _estimates_html(res: CensusResult, out: Path) -> str:
    from spotid.census.outputs import estimate_rows

    est = res.estimates
    if est is None or not est.estimates:
        return "<h2>Estimates</h2><p>No population estimate: no identified leopard was counted in this period.</p>"
    notes = "".join(f"<li>{html.escape(e.model)}: {html.escape(e.note)}</li>" for e in est.estimates if e.note)
    best = (f"<p>Best: {html.escape(est.best)} ({html.escape(est.best_reason)}).</p>" if est.best else
            f"<p>No model could be chosen{': ' + html.escape(est.best_reason) if est.best_reason else ''} "
            "(see the status column).</p>")
    return ("<h2>Estimates</h2>" + _img(plot_estimates(res, out / "estimates.png"), "estimates")
            + _table(estimate_rows(res), ["model", "N", "se", "lcl", "ucl", "loglik", "aicc", "daicc", "status"])
            + best + (f"<ul>{notes}</ul>" if notes else ""))


def _stations_table(res: CensusResult) -> str:
    from spotid.census.outputs import station_rows

    rows = station_rows(res)
    for r in rows:   # degrees to 5 decimals (~1 m); _table would round floats to 2
        for k in ("latitude", "longitude"):
            r[k] = None if r[k] is None else f"{r[k]:.5f}"
    return _table(rows, ["station", "latitude", "longitude", "n_cameras", "trap_nights", "outage_days", "n_events",
                         "n_sightings", "n_identities", "effort_source"])


_CSS = """body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:1em 0;font-size:14px}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}
th{background:#f3f3f3}td:first-child,th:first-child{text-align:left}img{max-width:100%;border:1px solid #eee}
figure{margin:1em 0}figcaption{font-size:12px;color:#666}
.head{font-size:1.3em;background:#f6f8fa;padding:.7em 1em;border-left:4px solid #c44e52}
.empty{background:#fff8e6;border-left:4px solid #dd8452;padding:.5em 1em}
.tiles{display:flex;flex-wrap:wrap;gap:10px}.tile{width:170px;font-size:12.5px}
.tile img,.nocrop{width:160px;height:120px;object-fit:contain;background:#2a2f37;display:block}
.nocrop{color:#ccc;text-align:center;padding-top:40px;box-sizing:border-box;font-size:13px}"""


def write_report(res: CensusResult, out: str | Path, *, cat: Catalog | None = None) -> Path:
    """Write report.html, the PNGs and the census tables (``tables/``) into ``out``; returns the HTML path.
    ``cat`` (the catalog the census read) adds a photo per counted identity and, when nothing was counted, what
    to run; without it the tiles show placeholders."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    write_census(res, out / "tables")
    for name in _PLOTS + ("camera_health.png",):   # an earlier report's plots must not pass for this one's
        (out / name).unlink(missing_ok=True)
    stations_img = _img(plot_stations(res, out / "stations.png"), "stations")
    health_html = _health_html(res, out)
    s = res.summary()
    empty = nothing_counted(res, cat)
    best = res.best_estimate()
    headline = (f"MNA <b>{s['mna']}</b> (two-flank bounds {s['mna_min']}–{s['mna_max']})"
                + (f"; N̂ = <b>{best.N:.1f}</b> (95% CI {best.lcl:.1f}–{best.ucl:.1f}, {best.model}, "
                   f"{res.estimate_flank}-flank histories)" if best and best.N is not None and best.lcl is not None
                   and best.ucl is not None else ""))
    if s.get("D_per_100km2") is not None:
        ci = ("" if s.get("D_lcl_per_100km2") is None else
              f" (95% CI {s['D_lcl_per_100km2']:.2f}–{s['D_ucl_per_100km2']:.2f}")
        headline += (f"; density <b>{s['D_per_100km2']:.2f}</b> per 100 km²{ci or ' (no interval: the data do not bound it'}"
                     f", SECR, {s['density_flank']} flank)")
    secr_rows = [{"flank": fl, "D_per_100km2": (e.details or {}).get("D_per_100km2", {}).get("estimate"),
                  "lcl": (e.details or {}).get("D_per_100km2", {}).get("lcl"),
                  "ucl": (e.details or {}).get("D_per_100km2", {}).get("ucl"),
                  "sigma_m": ((e.details or {}).get("params", {}).get("sigma") or {}).get("estimate"),
                  "N_in_mask": e.N, "status": e.status} for fl, e in res.spatial.items()]
    secr_html = ("<h2>Density (SECR)</h2>" + _table(secr_rows, ["flank", "D_per_100km2", "lcl", "ucl", "sigma_m",
                                                               "N_in_mask", "status"])) if secr_rows else ""
    if empty:
        steps = "".join(f"<li>{html.escape(w)}</li>" for w in empty)
        counted_html = (f'<div class="empty"><h2>Nothing counted yet</h2><p>No independent leopard event in this '
                        f"period, so there are no capture histories, discovery curve or estimates. What to do:</p>"
                        f"<ul>{steps}</ul></div>")
    else:
        counted_html = (_estimates_html(res, out) + secr_html
                        + "<h2>Capture histories</h2>"
                        + _img(plot_capture_history(res, out / "capture_history.png"), "capture histories")
                        + "<h2>Sightings over time</h2>"
                        + _img(plot_over_time(res, out / "sightings_over_time.png"), "sightings over time"))
    summary_rows = [{"item": k, "value": v} for k, v in s.items()]
    warn = "".join(f"<li>{html.escape(w)}</li>" for w in res.warnings)
    doc = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>spotid census report</title>
<style>{_CSS}</style></head><body>
<h1>Amur leopard census</h1>
<p>Period {html.escape(s['period_start'])} – {html.escape(s['period_end'])}; {s['n_occasions']} occasions of
{s['occasion_days']:g} day; {s['n_stations']} stations, {s['trap_nights']:.1f} trap-nights.</p>
<p class="head">{headline}</p>
{counted_html}
<h2>Counted individuals</h2>
<p>One photo per counted flank identity: its best crop among the sightings counted in this period.</p>
{_individuals_html(res, cat)}
<h2>Stations and events</h2>{stations_img}
{_stations_table(res)}
{health_html}
<h2>Summary</h2>{_table(summary_rows, ["item", "value"])}
<h2>Warnings</h2><ul>{warn or "<li>none</li>"}</ul>
<p>Tables (CSV/JSON, secr files): <a href="tables/">tables/</a>.</p>
</body></html>
"""
    return atomic_write_text(out / "report.html", doc)
