"""The review web app: FastAPI + Jinja2, served on 127.0.0.1 by ``spotid review``.

Pages (server-rendered, CSS and JS inlined, no network): ``/queue`` (one sighting at a time, most
uncertain first), ``/individuals``, ``/individuals/{id}``, ``/census`` (``?start=&end=&occasion_days=``:
the period form), ``/history``.
JSON API used by the page's keyboard shortcuts: ``POST /api/sightings/{id}/{confirm|reject|new|
unusable|not_leopard|skip}``, ``POST /api/merge``, ``POST /api/undo``; a stale ``version`` gives HTTP 409.
Images: ``/img/crop/{detection_id}`` serves only the file named by that detection's
``crops.crop_path``; ``/img/frame/{media_id}`` a reduced copy of the frame named by ``media.path`` with its animal boxes.
No request reads embeddings, keypoints or descriptors.
"""
from __future__ import annotations

import dataclasses
import hashlib
import io
import logging
import threading
from collections import OrderedDict
from datetime import datetime, timezone
from importlib import resources
from pathlib import Path
from typing import Any, Callable
from urllib.parse import urlsplit

import jinja2
from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse, Response
from pydantic import BaseModel

from spotid.catalog import Catalog, flank_seen
from spotid.catalog.tables import crops, detections, individuals, media, reviews
from spotid.review import browse, census_view
from spotid.review.config import ReviewConfig
from spotid.review.decisions import (Conflict, Decision, InvalidDecision, Reviewer, describe_change,
                                     recent_decisions)
from spotid.review.queue import NotFound, decision_threshold, load_item, pending_count, queue_order

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png"}
FRAME_MAX_SIDE = 1600


class VersionBody(BaseModel):
    version: int


class ConfirmBody(VersionBody):
    individual_id: int


class NewBody(VersionBody):
    name: str | None = None
    flank: str | None = None


class SkipBody(BaseModel):
    version: int | None = None


class MergeBody(BaseModel):
    keep_id: int
    absorb_id: int
    sighting_id: int | None = None


class UndoBody(BaseModel):
    decision_id: int | None = None


def _static(name: str) -> str:
    return (resources.files("spotid.review") / "static" / name).read_text(encoding="utf-8")


def _fmt_time(ts: str | None) -> str:
    """'2026-01-14T22:13:05+10:00' -> '2026-01-14 22:13 +10:00' (local camera time, offset kept)."""
    if not ts:
        return "—"
    try:
        dt = datetime.fromisoformat(ts)
    except ValueError:
        return ts
    off = dt.strftime("%z")
    off = f" {off[:3]}:{off[3:]}" if off else ""
    return dt.strftime("%Y-%m-%d %H:%M") + off


def _fmt_date(ts: str | None) -> str:
    return ts[:10] if ts else "—"


def _jsonable(obj: Any) -> Any:
    if dataclasses.is_dataclass(obj):
        return dataclasses.asdict(obj)
    return obj


def create_app(db_path: str | Path, *, reviewer: str, config: ReviewConfig | None = None,
               allowed_hosts: tuple[str, ...] = ("127.0.0.1", "localhost"),
               open_catalog: Callable[[Path], Catalog] | None = None) -> FastAPI:
    """Build the app for one catalog. ``open_catalog`` (default :class:`Catalog`) opens one
    connection per request (sqlite connections are per thread). Requests whose Host is not in
    ``allowed_hosts``, or cross-origin writes, are refused (a page on another site must not be able
    to post decisions to a reviewer's local server)."""
    cfg = config or ReviewConfig()
    db_path = Path(db_path).resolve()
    opener = open_catalog or Catalog
    with opener(db_path):  # migrate once at start-up, not in the first request
        pass
    env = jinja2.Environment(loader=jinja2.PackageLoader("spotid.review", "templates"),
                             autoescape=jinja2.select_autoescape(["html"]), undefined=jinja2.StrictUndefined)
    env.filters.update(time=_fmt_time, date=_fmt_date,
                       pct=lambda p: "—" if p is None else f"{100 * p:.0f}%",
                       num=lambda x, nd=2: "—" if x is None else f"{x:.{nd}f}")
    # The page keeps its undo stack per catalog: decision ids of one catalog mean nothing in another.
    catalog_key = hashlib.sha1(str(db_path).encode()).hexdigest()[:12]
    env.globals.update(css=_static("review.css"), js=_static("review.js"), reviewer=reviewer, db_name=db_path.name,
                       catalog_key=catalog_key)
    frames: OrderedDict[int, bytes] = OrderedDict()
    frames_lock = threading.Lock()

    app = FastAPI(title="spotid review", docs_url=None, redoc_url=None, openapi_url=None)

    @app.middleware("http")
    async def _guard(request: Request, call_next):
        host = (request.headers.get("host") or "").rsplit(":", 1)[0].strip("[]")
        if host not in allowed_hosts:
            return JSONResponse({"detail": f"host {host!r} refused: open http://127.0.0.1:<port>/"}, status_code=403)
        origin = request.headers.get("origin")
        if request.method not in ("GET", "HEAD") and origin and urlsplit(origin).hostname not in allowed_hosts:
            return JSONResponse({"detail": f"cross-origin request from {origin} refused"}, status_code=403)
        return await call_next(request)

    local = threading.local()

    def get_cat() -> Catalog:
        """This thread's connection (sqlite objects are per thread; FastAPI runs sync endpoints in a
        thread pool, so each pool thread opens one connection and keeps it)."""
        cat = getattr(local, "cat", None)
        if cat is None:
            cat = local.cat = opener(db_path)
        return cat

    def render(name: str, cat: Catalog, **ctx: Any) -> HTMLResponse:
        ctx.setdefault("pending", pending_count(cat, cfg.include_auto, cfg.include_set_aside))
        return HTMLResponse(env.get_template(name).render(**ctx))

    def handle(fn: Callable[[], Decision], cat: Catalog, after: int | None = None) -> dict:
        try:
            d = fn()
        except Conflict as e:
            raise HTTPException(409, str(e)) from None
        except InvalidDecision as e:
            raise HTTPException(400, str(e)) from None
        except NotFound as e:
            raise HTTPException(404, str(e)) from None
        order = queue_order(cat, threshold=decision_threshold(cat, cfg), reviewer=reviewer,
                            include_auto=cfg.include_auto, include_set_aside=cfg.include_set_aside)
        return {"decision": _jsonable(d), "next": order[0].sighting_id if order else None,
                "pending": len(order)}

    def session_stats(cat: Catalog) -> dict:
        today = datetime.now(timezone.utc).date().isoformat()
        return {"decided_today": reviews.count_live_since(cat, reviewer, today)}

    # -- pages -----------------------------------------------------------------------------------
    @app.get("/", include_in_schema=False)
    def index() -> RedirectResponse:
        return RedirectResponse("/queue", status_code=303)

    @app.get("/favicon.ico", include_in_schema=False)
    def favicon() -> Response:
        return Response(status_code=204)

    @app.get("/queue", response_class=HTMLResponse)
    def queue_page(sighting: int | None = None) -> HTMLResponse:
        cat = get_cat()
        threshold = decision_threshold(cat, cfg)
        order = queue_order(cat, threshold=threshold, reviewer=reviewer, include_auto=cfg.include_auto,
                            include_set_aside=cfg.include_set_aside)
        ids = [e.sighting_id for e in order]
        sid = sighting if sighting is not None else (ids[0] if ids else None)
        stats = session_stats(cat)
        if sid is None:
            return render("queue_empty.html", cat, page="queue", stats=stats, summary=browse.catalog_summary(cat),
                          include_set_aside=cfg.include_set_aside)
        try:
            item = load_item(cat, sid, cfg)
        except NotFound as e:
            raise HTTPException(404, str(e)) from None
        pos = ids.index(sid) if sid in ids else None
        nav = {"position": None if pos is None else pos + 1, "total": len(ids),
               "prev": ids[pos - 1] if pos else None,
               "next": (ids[pos + 1] if pos is not None and pos + 1 < len(ids) else None) if pos is not None
               else (ids[0] if ids else None)}
        entry = order[pos] if pos is not None else None
        last = reviews.last_for_sighting(cat, sid, live_only=True)
        # a flank identify only inferred from a match is not fixed: either flank's individuals
        fixed = item.flank in ("left", "right") and flank_seen(item.query.flank, item.status)
        assignable = [{"id": int(r.id), "name": r.name, "status": r.status, "flank": r.flank}
                      for r in individuals.assignable(cat, (item.flank,) if fixed else ("left", "right"))]
        return render("queue.html", cat, page="queue", item=item, item_json=_jsonable(item), nav=nav, entry=entry,
                      assignable=assignable,
                      threshold=threshold, stats=stats, last=dict(last) if last else None,
                      recent=recent_decisions(cat, 6, reviewer))

    @app.get("/individuals", response_class=HTMLResponse)
    def individuals_page(all: bool = False) -> HTMLResponse:
        cat = get_cat()
        rows = browse.list_individuals(cat, include_inactive=all)
        return render("individuals.html", cat, page="individuals", rows=rows, show_all=all)

    @app.get("/individuals/{individual_id}", response_class=HTMLResponse)
    def individual_page(individual_id: int) -> HTMLResponse:
        cat = get_cat()
        try:
            detail = browse.individual_detail(cat, individual_id, n_references=cfg.n_references)
        except NotFound as e:
            raise HTTPException(404, str(e)) from None
        return render("individual.html", cat, page="individuals", d=detail)

    @app.get("/census", response_class=HTMLResponse)
    def census_page(start: str = "", end: str = "", occasion_days: str = "") -> HTMLResponse:
        """The census of a period (the form's fields; empty = the census defaults). Any entry renders the page:
        fields are parsed by the census view, not by FastAPI (which would answer a typo with JSON 422)."""
        cat = get_cat()
        return render("census.html", cat, page="census", summary=browse.catalog_summary(cat),
                      census=census_view.census_figures(cat, start=start, end=end, occasion_days=occasion_days))

    @app.get("/history", response_class=HTMLResponse)
    def history_page() -> HTMLResponse:
        cat = get_cat()
        decisions = recent_decisions(cat, 200)
        names = individuals.names(cat)
        for d in decisions:  # individuals deleted by an undo keep their name in the audit record
            for state in (d.previous, d.new):
                for key, ind in state.get("individuals", {}).items():
                    if ind:
                        names.setdefault(int(key), ind["name"])
        return render("history.html", cat, page="history", decisions=decisions,
                      changes={d.id: describe_change(d, names) for d in decisions})

    # -- images ----------------------------------------------------------------------------------
    def _catalog_file(raw: str | None, what: str, fix: str = "re-run spotid identify to rebuild crops") -> Path:
        if not raw:
            raise HTTPException(404, f"{what} has no stored image")
        p = Path(raw)
        if not p.is_absolute():  # stages may store paths relative to the catalog's folder
            p = db_path.parent / p
        if p.suffix.lower() not in IMAGE_SUFFIXES or not p.is_file():
            raise HTTPException(404, f"the image of {what} is missing on disk: {fix}")
        return p

    @app.get("/img/crop/{detection_id}")
    def crop_image(detection_id: int) -> FileResponse:
        cat = get_cat()
        raw = crops.crop_path(cat, detection_id)
        return FileResponse(_catalog_file(raw, f"detection {detection_id}"),
                            headers={"Cache-Control": "private, max-age=600"})

    @app.get("/img/frame/{media_id}")
    def frame_image(media_id: int) -> Response:
        cat = get_cat()
        with frames_lock:
            data = frames.get(media_id)
        if data is None:
            row = media.image(cat, media_id)
            if row is None:
                raise HTTPException(404, f"media {media_id} has no stored image")
            # a frame goes missing when its card folder moves: identify cannot bring it back, relocate can
            path = _catalog_file(row.path, f"media {media_id}",
                                 f"expected at {row.path}. If the card folder moved, run `spotid media relocate "
                                 f"--deployment {row.deployment_id} NEW_FOLDER --db {db_path}`")
            from spotid.util import open_image_reduced
            from PIL import ImageDraw
            boxes = detections.animal_boxes(cat, media_id)
            try:
                im, _ = open_image_reduced(path, FRAME_MAX_SIDE)
                im.thumbnail((FRAME_MAX_SIDE, FRAME_MAX_SIDE))
                draw = ImageDraw.Draw(im)
                W, H = im.size  # boxes are normalised, so the reduced size is all we need
                for b in boxes:
                    draw.rectangle([b.x * W, b.y * H, (b.x + b.w) * W, (b.y + b.h) * H],
                                   outline=(255, 208, 0), width=max(2, W // 400))
                buf = io.BytesIO()
                im.save(buf, "JPEG", quality=85)
            except OSError as e:
                raise HTTPException(404, f"media {media_id} cannot be decoded: {e}") from None
            data = buf.getvalue()
            with frames_lock:
                frames[media_id] = data
                while len(frames) > 32:
                    frames.popitem(last=False)
        return Response(data, media_type="image/jpeg", headers={"Cache-Control": "private, max-age=600"})

    # -- JSON API --------------------------------------------------------------------------------
    def rv(cat: Catalog) -> Reviewer:
        return Reviewer(cat, reviewer)

    @app.get("/api/queue")
    def api_queue() -> dict:
        cat = get_cat()
        order = queue_order(cat, threshold=decision_threshold(cat, cfg), reviewer=reviewer,
                            include_auto=cfg.include_auto, include_set_aside=cfg.include_set_aside)
        return {"pending": len(order), "items": [_jsonable(e) for e in order]}

    @app.get("/api/sightings/{sighting_id}")
    def api_item(sighting_id: int) -> dict:
        cat = get_cat()
        try:
            return _jsonable(load_item(cat, sighting_id, cfg))
        except NotFound as e:
            raise HTTPException(404, str(e)) from None

    @app.post("/api/sightings/{sighting_id}/confirm")
    def api_confirm(sighting_id: int, body: ConfirmBody) -> dict:
        cat = get_cat()
        return handle(lambda: rv(cat).confirm(sighting_id, body.version, body.individual_id), cat)

    @app.post("/api/sightings/{sighting_id}/reject")
    def api_reject(sighting_id: int, body: VersionBody) -> dict:
        cat = get_cat()
        return handle(lambda: rv(cat).reject(sighting_id, body.version), cat)

    @app.post("/api/sightings/{sighting_id}/unusable")
    def api_unusable(sighting_id: int, body: VersionBody) -> dict:
        cat = get_cat()
        return handle(lambda: rv(cat).unusable(sighting_id, body.version), cat)

    @app.post("/api/sightings/{sighting_id}/not_leopard")
    def api_not_leopard(sighting_id: int, body: VersionBody) -> dict:
        cat = get_cat()
        return handle(lambda: rv(cat).not_leopard(sighting_id, body.version), cat)

    @app.post("/api/sightings/{sighting_id}/new")
    def api_new(sighting_id: int, body: NewBody) -> dict:
        cat = get_cat()
        return handle(lambda: rv(cat).new_individual(sighting_id, body.version, body.name, body.flank), cat)

    @app.post("/api/sightings/{sighting_id}/skip")
    def api_skip(sighting_id: int, body: SkipBody) -> dict:
        cat = get_cat()
        return handle(lambda: rv(cat).skip(sighting_id, body.version), cat)

    @app.post("/api/merge")
    def api_merge(body: MergeBody) -> dict:
        cat = get_cat()
        return handle(lambda: rv(cat).merge(body.keep_id, body.absorb_id, sighting_id=body.sighting_id), cat)

    @app.post("/api/undo")
    def api_undo(body: UndoBody) -> dict:
        cat = get_cat()
        return handle(lambda: rv(cat).undo(body.decision_id), cat)

    @app.get("/api/decisions")
    def api_decisions(limit: int = 50) -> dict:
        cat = get_cat()
        return {"decisions": [_jsonable(d) for d in recent_decisions(cat, min(max(limit, 1), 1000))]}

    return app


def serve_in_thread(app: FastAPI, port: int = 0, *, timeout: float = 20.0):
    """Start ``app`` with uvicorn on 127.0.0.1 in a daemon thread (tests, screenshots).

    ``port=0`` picks a free port. Returns ``(server, url)``; stop with ``server.should_exit = True``.
    """
    import socket
    import time

    import uvicorn

    from spotid.review.config import HOST

    if port == 0:
        with socket.socket() as s:
            s.bind((HOST, 0))
            port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host=HOST, port=port, log_level="warning", access_log=False))
    thread = threading.Thread(target=server.run, name=f"spotid-review-{port}", daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError(f"the review server did not start on {HOST}:{port}")
        time.sleep(0.02)
    return server, f"http://{HOST}:{port}"
