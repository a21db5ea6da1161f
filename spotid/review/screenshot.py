"""Render the README screenshot of the review queue: ``python -m spotid.review.screenshot OUT.png``.

Builds the demo catalog with rendered leopards (synth stage) and real RootSIFT evidence (identify
stage), makes a few decisions as a reviewer would, opens an uncertain item whose evidence is worth
showing in Debian's chromium (Playwright) at 1400x900, and writes a palette PNG (README-sized).
"""
from __future__ import annotations

import argparse
import shutil
import tempfile
from pathlib import Path

CHROMIUM_ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def screenshot(out: Path, *, chromium: str = "/usr/bin/chromium", seed: int = 3, width: int = 1400,
               height: int = 900, colors: int = 256) -> Path:
    import httpx
    from PIL import Image
    from playwright.sync_api import sync_playwright

    from spotid.review.app import create_app, serve_in_thread
    from spotid.review.demo import build_demo_catalog

    work = Path(tempfile.mkdtemp(prefix="spotid-review-shot-"))
    try:
        d = build_demo_catalog(work / "demo.db", work / "img", texture="animal", n_individuals=7, n_pending=26, seed=seed)
        server, url = serve_in_thread(create_app(d.db_path, reviewer="A. Petrov"))
        try:
            with httpx.Client(base_url=url) as c:
                for e in c.get("/api/queue").json()["items"][:3]:  # an hour's work already done
                    sid = e["sighting_id"]
                    it = c.get(f"/api/sightings/{sid}").json()
                    top = it["candidates"][0]
                    if d.truth[sid] == top["name"]:
                        c.post(f"/api/sightings/{sid}/confirm", json={"version": it["version"], "individual_id": top["individual_id"]})
                    elif d.truth[sid] == "new":
                        c.post(f"/api/sightings/{sid}/new", json={"version": it["version"]})
                    else:
                        c.post(f"/api/sightings/{sid}/reject", json={"version": it["version"]})
                show = None
                for e in c.get("/api/queue").json()["items"][:12]:
                    it = c.get(f"/api/sightings/{e['sighting_id']}").json()
                    top = it["candidates"][0] if it["candidates"] else None
                    n = len(top["evidence"]["query_pts"]) if top and top["evidence"] else 0
                    if top and d.truth[it["sighting_id"]] == top["name"] and n >= 10 and len(it["candidates"]) >= 3:
                        show = it["sighting_id"]
                        break
            with sync_playwright() as p:
                b = p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
                page = b.new_page(viewport={"width": width, "height": height})
                page.goto(f"{url}/queue" + (f"?sighting={show}" if show else ""))
                page.wait_for_selector("body[data-ready='1']")
                page.wait_for_timeout(700)  # images decoded, lines drawn
                raw = work / "raw.png"
                page.screenshot(path=str(raw))
                b.close()
        finally:
            server.should_exit = True
        out.parent.mkdir(parents=True, exist_ok=True)
        im = Image.open(raw).convert("RGB").quantize(colors=colors, method=Image.Quantize.MEDIANCUT,
                                                      dither=Image.Dither.NONE)
        im.save(out, optimize=True)
        return out
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", type=Path)
    ap.add_argument("--chromium", default="/usr/bin/chromium")
    ap.add_argument("--seed", type=int, default=3)
    a = ap.parse_args()
    path = screenshot(a.out, chromium=a.chromium, seed=a.seed)
    print(f"{path} ({path.stat().st_size // 1024} kB)")


if __name__ == "__main__":
    main()
