"""CLI for the review stage (see spotid/cli.py for the registration protocol)."""
from __future__ import annotations

import getpass
import logging
import socket
import threading
import time
import webbrowser
from pathlib import Path
from typing import Optional

import typer

from spotid.catalog import DEFAULT_DB

log = logging.getLogger(__name__)


def _default_reviewer() -> str:
    try:
        return getpass.getuser()
    except Exception:  # no login name in some containers
        return "reviewer"


def review(
    db: Path = typer.Option(Path(DEFAULT_DB), "--db", help="Catalog file (SQLite)."),
    port: Optional[int] = typer.Option(None, "--port", help="TCP port on 127.0.0.1 (default 8765)."),
    no_browser: bool = typer.Option(False, "--no-browser", help="Do not open a browser window."),
    reviewer: Optional[str] = typer.Option(None, "--reviewer", help="Name recorded with every decision (default: login name)."),
    config: Optional[Path] = typer.Option(None, "--config", help="YAML with review settings (see configs/review.yaml)."),
    include_auto: Optional[bool] = typer.Option(None, "--include-auto/--pending-only",
                                                help="Also queue machine-accepted sightings, after the pending ones."),
    include_set_aside: Optional[bool] = typer.Option(
        None, "--include-set-aside/--no-set-aside",
        help="Then queue the sightings identify set aside (no left/right flank, not identifiable), with its reason."),
    demo: Optional[Path] = typer.Option(None, "--demo", help="Build a small demo catalog with rendered crops in this "
                                                            "new folder and review it (try the page without data)."),
) -> None:
    """Review matches in the browser: confirm, reject, create or merge individuals, with the evidence.

    Serves on 127.0.0.1 only. Every decision is audited in the catalog (review_decisions) and undoable.

    \b
    Example:
      spotid review --db season.db --reviewer "A. Petrov"
    """
    from spotid.config import default_yaml, load_config
    from spotid.review.config import HOST, ReviewConfig

    try:
        cfg = load_config(ReviewConfig, config or default_yaml(ReviewConfig), port=port,
                          include_auto=include_auto, include_set_aside=include_set_aside)
    except (ValueError, OSError) as e:
        raise typer.BadParameter(str(e), param_hint="--config/--port") from None
    if demo is not None:
        from spotid.review.demo import build_demo_catalog
        if demo.exists() and any(demo.iterdir()):
            raise typer.BadParameter(f"{demo} is not empty: pass a new folder for the demo catalog", param_hint="--demo")
        built = build_demo_catalog(demo / "demo.db", demo / "images", texture="animal")
        db = built.db_path
        typer.echo(f"demo catalog: {db}", err=True)
    from spotid.cliutil import existing_catalog

    existing_catalog(db).close()   # missing, empty or not a spotid catalog: the usage error that names the fix
    who = (reviewer or _default_reviewer()).strip()
    if not who:
        raise typer.BadParameter("empty reviewer name: pass --reviewer NAME", param_hint="--reviewer")
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind((HOST, cfg.port))
        except OSError:
            raise typer.BadParameter(f"port {cfg.port} on {HOST} is in use (another spotid review?): pass --port N",
                                     param_hint="--port") from None

    import uvicorn

    from spotid.review.app import create_app

    app = create_app(db, reviewer=who, config=cfg)
    url = f"http://{HOST}:{cfg.port}/queue"
    server = uvicorn.Server(uvicorn.Config(app, host=HOST, port=cfg.port, log_level="warning", access_log=False))
    if not no_browser:
        def _open() -> None:
            for _ in range(100):  # wait until the socket listens, then open the page once
                if server.started:
                    webbrowser.open(url)
                    return
                time.sleep(0.05)
        threading.Thread(target=_open, daemon=True).start()
    typer.echo(f"spotid review: {url} (catalog {db}, reviewer {who}); Ctrl+C stops", err=True)
    server.run()


commands: dict = {"review": review}
groups: dict = {}
