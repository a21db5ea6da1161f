"""Census report: one self-contained folder with ``report.html`` and PNG plots (matplotlib Agg).

Plots: stations on a map-like scatter (projected metres, marker area ~ events, colour = identities),
the capture-history heatmap (identities x occasions), sightings over time with the discovery curve
(cumulative identities), the estimates with their 95% intervals against the MNA bounds, and the camera
health timeline (operating periods, outages and findings per camera, from spotid/ingest/health.py).
"""
from __future__ import annotations

import html
from collections import Counter
from pathlib import Path

import numpy as np

from spotid.census.result import CensusResult
from spotid.census.outputs import write_census
from spotid.util import atomic_write_bytes, atomic_write_text


def _save(fig, path: Path) -> Path:
    """Lay out, write the figure as PNG atomically (a half-written plot never replaces a good one) and
    close it."""
    import io

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


def plot_stations(res: CensusResult, path: Path) -> Path:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 6), dpi=110)
    sts = [s for s in res.stations.values() if s.x_m is not None]
    if sts:
        x = np.array([s.x_m for s in sts]) / 1000
        y = np.array([s.y_m for s in sts]) / 1000
        ev = np.array([s.n_events for s in sts])
        ids = np.array([len(s.identities) for s in sts])
        ax.scatter(x[ev == 0], y[ev == 0], s=30, facecolors="none", edgecolors="0.5", label="no leopard events")
        m = ev > 0
        if m.any():
            sc = ax.scatter(x[m], y[m], s=40 + 60 * ev[m], c=ids[m], cmap="viridis", edgecolors="k",
                            vmin=0, vmax=max(1, ids.max()), label="marker area ~ events")
            fig.colorbar(sc, ax=ax, label="identities detected")
        for s, xi, yi in zip(sts, x, y):
            ax.annotate(f"{s.id} ({s.n_events})", (xi, yi), textcoords="offset points", xytext=(5, 5), fontsize=8)
        ax.set_aspect("equal", adjustable="datalim")
        ax.legend(loc="best", fontsize=8)
    else:
        ax.text(0.5, 0.5, "no station coordinates in the catalog", ha="center", va="center", transform=ax.transAxes)
    ax.set_xlabel("easting from centroid (km)")
    ax.set_ylabel("northing from centroid (km)")
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
    ax2.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax2.set_ylim(bottom=0)
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


def _health_html(res: CensusResult, out: Path) -> str:
    if not res.cameras:
        return ("<h2>Camera health</h2><p>The camera check did not run (census setting camera_check off); effort "
                "is the deployment dates minus the outages file, if any.</p>")
    plot_camera_health(res, out / "camera_health.png")
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
            "</code>.</p><img src=\"camera_health.png\" alt=\"camera health timeline\">"
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


def write_report(res: CensusResult, out: str | Path) -> Path:
    """Write report.html, the PNGs and the census tables (``tables/``) into ``out``; returns the HTML path."""
    from spotid.census.outputs import estimate_rows, individual_rows, station_rows

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    plot_stations(res, out / "stations.png")
    plot_capture_history(res, out / "capture_history.png")
    plot_over_time(res, out / "sightings_over_time.png")
    plot_estimates(res, out / "estimates.png")
    write_census(res, out / "tables")
    health_html = _health_html(res, out)
    s = res.summary()
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
    summary_rows = [{"item": k, "value": v} for k, v in s.items()]
    notes = "".join(f"<li>{html.escape(e.model)}: {html.escape(e.note)}</li>"
                    for e in (res.estimates.estimates if res.estimates else []) if e.note)
    warn = "".join(f"<li>{html.escape(w)}</li>" for w in res.warnings)
    doc = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>spotid census report</title>
<style>body{{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}}
table{{border-collapse:collapse;margin:1em 0;font-size:14px}}td,th{{border:1px solid #ccc;padding:3px 8px;text-align:right}}
th{{background:#f3f3f3}}td:first-child,th:first-child{{text-align:left}}img{{max-width:100%;border:1px solid #eee}}
.head{{font-size:1.3em;background:#f6f8fa;padding:.7em 1em;border-left:4px solid #c44e52}}</style></head><body>
<h1>Amur leopard census</h1>
<p>Period {html.escape(s['period_start'])} – {html.escape(s['period_end'])}; {s['n_occasions']} occasions of
{s['occasion_days']:g} day; {s['n_stations']} stations, {s['trap_nights']:.1f} trap-nights.</p>
<p class="head">{headline}</p>
<h2>Estimates</h2><img src="estimates.png" alt="estimates">
{_table(estimate_rows(res), ["model", "N", "se", "lcl", "ucl", "loglik", "aicc", "daicc", "status"])}
<p>Best: {html.escape(str(res.estimates.best if res.estimates else None))}
({html.escape(res.estimates.best_reason if res.estimates else "")}).</p><ul>{notes}</ul>
{secr_html}
<h2>Stations and events</h2><img src="stations.png" alt="stations">
{_table(station_rows(res), ["station", "n_cameras", "trap_nights", "outage_days", "n_events", "n_sightings", "n_identities",
                            "effort_source"])}
{health_html}
<h2>Capture histories</h2><img src="capture_history.png" alt="capture histories">
<h2>Sightings over time</h2><img src="sightings_over_time.png" alt="sightings over time">
<h2>Individuals</h2>
{_table(individual_rows(res), ["name", "flank", "animal", "first_seen", "last_seen", "stations", "n_sightings", "n_events"])}
<h2>Summary</h2>{_table(summary_rows, ["item", "value"])}
<h2>Warnings</h2><ul>{warn or "<li>none</li>"}</ul>
<p>Tables (CSV/JSON, secr files): <a href="tables/">tables/</a>.</p>
</body></html>
"""
    return atomic_write_text(out / "report.html", doc)
