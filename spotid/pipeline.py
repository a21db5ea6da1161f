"""End-to-end orchestration: ``spotid process`` (one card) and ``spotid demo`` (synthetic survey).

Each stage is called through its Python API (no subprocesses), in the order a field team works:

    card  --ingest-->  media  --detect-->  detections  --identify-->  sightings  --census-->  counts

``process_card`` runs ingest + detect + identify for one SD card of one deployment. ``Demo`` renders
a small synthetic survey with the synth stage (whose truth file knows every leopard, including those
never photographed), processes every card with the shipped models, auto-accepts matches at the
re-ID model's threshold, runs the census, and compares the result with the truth.
"""
from __future__ import annotations

import contextlib
import json
import logging
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from spotid.catalog import Catalog
from spotid.types import iou as _iou

log = logging.getLogger(__name__)


class PipelineError(RuntimeError):
    """A stage needed by the pipeline is missing or failed; the message names the stage and the fix."""


# -- stage adapters ------------------------------------------------------------------------------------
def run_ingest(cat: Catalog, card: Path, deployment: str, tz: str | None = None) -> dict:
    from spotid.ingest.ingester import IngestConfig, Ingester

    summary = Ingester(cat, IngestConfig(tz=tz))(card, deployment)
    return summary.to_json()


def ingest_synth_card(cat: Catalog, card_root: Path) -> None:
    """Ingest a card written by the synth stage: its ``deployments.csv``, then each deployment's folder."""
    from spotid.ingest.deployments import import_deployments_csv

    import_deployments_csv(cat, Path(card_root) / "deployments.csv")
    for (dep,) in cat.query("SELECT id FROM deployments ORDER BY id"):
        if (Path(card_root) / dep).is_dir():
            run_ingest(cat, Path(card_root) / dep, dep)


def run_detect(cat: Catalog, deployment: str | None = None) -> dict:
    from spotid.config import default_yaml, load_config
    from spotid.detect.config import DetectConfig
    from spotid.detect.detector import make_detector
    from spotid.detect.run import detect_catalog

    y = default_yaml(DetectConfig)
    cfg = load_config(DetectConfig, y if y.is_file() else None)
    det = make_detector(cfg)
    return detect_catalog(det, cat, cfg, deployment=deployment).to_json()


def run_identify(cat: Catalog, *, auto_accept: bool, deployment: str | None = None) -> dict:
    """The identify stage's catalog entry point (``spotid identify --db``), auto-accepting when asked."""
    from spotid.identify.pipeline import identify_catalog

    return identify_catalog(cat, auto_accept=auto_accept, deployment=deployment).to_json()


@dataclass
class ProcessResult:
    deployment: str
    ingest: dict
    detect: dict
    identify: dict | None
    seconds: dict = field(default_factory=dict)

    def to_json(self) -> dict:
        return asdict(self)


def process_card(cat: Catalog, card: str | Path, deployment: str, *, tz: str | None = None,
                 auto_accept: bool = False, identify: bool = True) -> ProcessResult:
    """Ingest + detect + identify one card of one deployment (what a field team runs per card)."""
    card = Path(card)
    if not card.is_dir():
        raise PipelineError(f"{card} is not a folder: pass the SD card's root (the folder holding DCIM)")
    t = {}
    t0 = time.perf_counter()
    ing = run_ingest(cat, card, deployment, tz)
    t["ingest"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    det = run_detect(cat, deployment)
    t["detect"] = time.perf_counter() - t0
    ide = None
    if identify:
        t0 = time.perf_counter()
        ide = run_identify(cat, auto_accept=auto_accept, deployment=deployment)
        t["identify"] = time.perf_counter() - t0
    return ProcessResult(deployment, ing, det, ide, {k: round(v, 2) for k, v in t.items()})


# -- the demo ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class DemoConfig:
    """A small synthetic survey that renders and runs in under three minutes on 2 CPU cores.

    Synth settings left at None keep the synth stage's defaults (configs/synth.yaml).
    ``empty_fraction`` is lowered from the field-like 0.7: empty frames cost detector time and
    teach nothing about counting.
    """

    seed: int = 0
    individuals: int | None = None
    stations: int | None = None
    days: int | None = None
    g0: float | None = None
    buffer_m: float | None = None
    empty_fraction: float | None = 0.4
    workers: int | None = 2
    occasion_days: float = 1.0


SYNTH_FIELDS = ("seed", "individuals", "stations", "days", "g0", "buffer_m", "empty_fraction", "workers")


@dataclass
class DemoResult:
    true_individuals: int
    true_detected_individuals: int
    census: dict
    summary: dict
    truth_check: dict
    seconds: dict
    db: str
    out: str
    card: dict = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    cpu_seconds: dict = field(default_factory=dict)

    def to_json(self) -> dict:
        return asdict(self)


def _truth(card_root: Path) -> tuple[int, int, dict]:
    """(population size, individuals photographed, truth json) from the synth card's truth.json."""
    truth = json.loads((card_root / "truth.json").read_text(encoding="utf-8"))
    pop = truth.get("population") or []
    photographed = {a.get("individual_id") for a in truth.get("annotations", []) if a.get("individual_id")}
    if pop and all("photographed" in p for p in pop):
        photographed = {p["individual_id"] for p in pop if p["photographed"]}
    return len(pop), len(photographed), truth


def truth_boxes(cat: Catalog, truth: dict, card_root: Path, min_iou: float = 0.3) -> dict[int, dict]:
    """{detection id: the synth truth annotation it finds} for the catalog's detections of a synth card.

    A detection is matched to the truth leopard box in the same file with the highest IoU (>= ``min_iou``);
    detections matching none (false positives, other species) are absent.
    """
    images = {im["id"]: im for im in truth.get("images", [])}
    by_file: dict[str, list] = {}
    for a in truth.get("annotations", []):
        if a.get("individual_id"):
            im = images.get(a["image_id"])
            if im is not None:
                by_file.setdefault(str(Path(im["file_name"]).as_posix()), []).append((a, im))
    root = card_root.resolve()
    out: dict[int, dict] = {}
    for r in cat.query("SELECT d.id, d.x, d.y, d.w, d.h, m.path, m.width, m.height FROM detections d "
                       "JOIN media m ON m.id = d.media_id"):
        try:
            rel = Path(r["path"]).resolve().relative_to(root).as_posix()
        except ValueError:
            continue
        best, best_iou = None, min_iou
        for a, im in by_file.get(rel, []):
            W, H = im.get("width") or r["width"], im.get("height") or r["height"]
            if not W or not H:
                continue
            iou = _iou((r["x"] * W, r["y"] * H, r["w"] * W, r["h"] * H), tuple(a["bbox"]))
            if iou >= best_iou:
                best, best_iou = a, iou
        if best is not None:
            out[int(r["id"])] = best
    return out


def check_against_truth(cat: Catalog, truth: dict, card_root: Path,
                        statuses: tuple[str, ...] = ("auto", "confirmed")) -> dict:
    """Split/merge audit of the counted identities against the synthetic truth.

    Detections are matched to truth boxes by :func:`truth_boxes` at IoU >= 0.1: a box cut through a
    leopard (half the animal, or two boxes on one animal) still counts as that leopard, so an identity
    founded on it shows up as a split instead of vanishing from the audit. Per identity: the majority true
    individual (purity); a *merge* is an identity holding sightings of two or more true individuals,
    a *split* a true individual (per flank) spread over two or more identities. ``statuses``: the
    sightings audited (default: those the census counts; add ``pending`` to audit what identify
    proposed before anybody reviewed it).
    """
    boxes = truth_boxes(cat, truth, card_root, min_iou=0.1)
    rows = cat.query(
        "SELECT s.individual_id, s.detection_id, i.flank FROM sightings s JOIN individuals i ON i.id = s.individual_id "
        f"WHERE s.status IN ({','.join('?' * len(statuses))})", tuple(statuses))
    ident_truth: dict[int, dict] = {}
    unmatched = 0
    for r in rows:
        best = boxes.get(int(r["detection_id"]))
        if best is None:
            unmatched += 1
            continue
        ident_truth.setdefault(r["individual_id"], {}).setdefault(best["individual_id"], 0)
        ident_truth[r["individual_id"]][best["individual_id"]] += 1
    merges = sum(1 for c in ident_truth.values() if len(c) > 1)
    per_true: dict[tuple, set] = {}
    flank = {r["individual_id"]: r["flank"] for r in rows}
    for iid, c in ident_truth.items():
        major = max(c, key=c.get)
        per_true.setdefault((major, flank[iid]), set()).add(iid)
    splits = sum(1 for s in per_true.values() if len(s) > 1)
    total = sum(sum(c.values()) for c in ident_truth.values())
    correct = sum(max(c.values()) for c in ident_truth.values())
    return {"identities": len(ident_truth), "merged_identities": merges, "split_individual_flanks": splits,
            "sighting_purity": round(correct / total, 4) if total else None,
            "sightings_not_matched_to_truth": unmatched}


def accept_new_individuals(cat: Catalog) -> int:
    """Demo only (nobody reviews): accept the sightings that found machine-proposed new individuals.

    Identify leaves them 'pending' for a biologist; matches to known individuals were already
    auto-accepted at the re-ID model's threshold, and the rest stay pending (not counted).
    """
    from spotid.catalog import now_iso

    with cat.transaction():
        cur = cat.execute(
            "UPDATE sightings SET status = 'auto', updated_at = ? WHERE status = 'pending' AND probability IS NULL "
            "AND individual_id IN (SELECT id FROM individuals WHERE status = 'proposed')", (now_iso(),))
    return int(cur.rowcount)


def render_card(out: Path, cfg: DemoConfig) -> dict:
    """Render the synthetic survey with the synth stage's card writer; returns its summary."""
    from spotid.synth.card import CardWriter
    from spotid.synth.config import SynthConfig

    over = {k: v for k, v in asdict(cfg).items() if k in SYNTH_FIELDS and v is not None}
    return asdict(CardWriter(SynthConfig(**over))(out))


class Demo:
    """``Demo(config)(db, out) -> DemoResult``: synthetic card -> ingest -> detect -> identify -> census."""

    def __init__(self, config: DemoConfig | None = None):
        self.config = config or DemoConfig()

    def __call__(self, db: str | Path, out: str | Path) -> DemoResult:
        from spotid.census.census import Census
        from spotid.census.config import CensusConfig
        from spotid.census.outputs import write_census

        cfg = self.config
        out = Path(out)
        card_root = out / "card"
        clock = _Clock()
        if card_root.exists() and (card_root / "truth.json").is_file():
            import shutil

            shutil.rmtree(card_root)  # our own synthetic card from an earlier run
        elif card_root.exists() and any(card_root.iterdir()):
            raise PipelineError(f"{card_root} exists and is not a spotid demo card: choose another --out")
        with clock("synth"):
            card_summary = render_card(card_root, cfg)
        n_pop, n_photo, truth = _truth(card_root)
        notes: list[str] = []
        with Catalog(db) as cat:
            with clock("ingest"):
                ingest_synth_card(cat, card_root)
            with clock("detect"):
                detect = run_detect(cat)
            with clock("identify"):
                ident = run_identify(cat, auto_accept=True)
                accepted = accept_new_individuals(cat)
            notes.append(f"no reviewer in the demo: {accepted} sighting(s) founding machine-proposed new individuals "
                         "were accepted as they are; matches below the auto-accept threshold stay pending and "
                         "are not counted")
            with clock("census"):
                ccfg = CensusConfig(occasion_days=cfg.occasion_days)
                with cat.run("census", ccfg):
                    res = Census(ccfg)(cat)
                write_census(res, out / "census")
            check = check_against_truth(cat, truth, card_root)
            check["sightings_by_status"] = {r["status"]: r["n"] for r in cat.query(
                "SELECT status, COUNT(*) n FROM sightings GROUP BY status")}
        best = res.best_estimate()
        census = {"mna": res.mna, "mna_min": res.bounds.mna_min, "mna_max": res.bounds.mna_max,
                  "N": best.N if best else None, "lcl": best.lcl if best else None,
                  "ucl": best.ucl if best else None, "model": best.model if best else None,
                  "flank": res.estimate_flank}
        check["counted_within_10pct_of_photographed"] = (abs(res.mna - n_photo) <= 0.1 * n_photo) if n_photo else None
        check["ci_contains_true_N"] = (best.lcl <= n_pop <= best.ucl) if best and best.lcl is not None and \
            best.ucl is not None else None
        check["detect"] = {k: detect.get(k) for k in ("frames", "detections", "leopard_detections", "static_fp",
                                                      "frames_per_second")}
        check["identify"] = ident
        return DemoResult(true_individuals=n_pop, true_detected_individuals=n_photo, census=census,
                          summary=res.summary(), truth_check=check, seconds=clock.wall(), db=str(db), out=str(out),
                          card={k: card_summary.get(k) for k in ("frames", "empty_frames", "leopard_boxes",
                                                                  "deployments", "frames_per_second")},
                          notes=notes, cpu_seconds=clock.cpu())


class _Clock:
    """Wall and CPU seconds per stage. The machine may be shared: CPU time (this process only; the
    synth render workers are separate processes) says what a stage costs regardless of load."""

    def __init__(self):
        self._wall: dict[str, float] = {}
        self._cpu: dict[str, float] = {}

    @contextlib.contextmanager
    def __call__(self, name: str):
        w, c = time.perf_counter(), time.process_time()
        try:
            yield
        finally:
            self._wall[name] = time.perf_counter() - w
            self._cpu[name] = time.process_time() - c

    def wall(self) -> dict:
        return {**{k: round(v, 1) for k, v in self._wall.items()}, "total": round(sum(self._wall.values()), 1)}

    def cpu(self) -> dict:
        return {**{k: round(v, 1) for k, v in self._cpu.items()}, "total": round(sum(self._cpu.values()), 1)}
