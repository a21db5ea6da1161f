"""``spotid demo``: render a small synthetic survey, process every card with the shipped models, accept
what the machine proposes (nobody reviews), run the census and compare it with the simulated truth.
"""
from __future__ import annotations

import contextlib
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from spotid.catalog import Catalog
from spotid.catalog.tables import sightings
from spotid.ingest.cardset import ingest_card_set
from spotid.workflow.process import PipelineError, run_detect, run_identify
from spotid.workflow.truth import accept_new_individuals, check_against_truth, read_truth, true_density, within_10pct


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
    result: object = field(default=None, repr=False, compare=False)   # the CensusResult, for printing

    def to_json(self) -> dict:
        return {k: v for k, v in asdict(self).items() if k != "result"}


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
        n_pop, n_photo, truth = read_truth(card_root)
        notes: list[str] = []
        with Catalog(db) as cat:
            with clock("ingest"):
                ingest_card_set(cat, card_root)
            with clock("detect"):
                detect = run_detect(cat)
            with clock("identify"):
                ident = run_identify(cat, auto_accept=True)
                accepted = accept_new_individuals(cat)
            notes.append(f"no reviewer in the demo: {accepted} sighting(s) founding machine-proposed new individuals "
                         "were accepted as they are; matches below the auto-accept threshold stay pending and "
                         "are not counted")
            with clock("census"):
                ccfg = CensusConfig(occasion_days=cfg.occasion_days, secr=True)
                with cat.run("census", ccfg):
                    res = Census(ccfg)(cat)
                write_census(res, out / "census")
            check = check_against_truth(cat, truth, card_root)
            check["sightings_by_status"] = sightings.count_by_status(cat)
        best = res.best_estimate()
        census = {"mna": res.mna, "mna_min": res.bounds.mna_min, "mna_max": res.bounds.mna_max,
                  "N": best.N if best else None, "lcl": best.lcl if best else None,
                  "ucl": best.ucl if best else None, "model": best.model if best else None,
                  "flank": res.estimate_flank, **{k: res.summary().get(k) for k in (
                      "D_per_100km2", "D_lcl_per_100km2", "D_ucl_per_100km2", "density_flank", "N_in_mask")}}
        census["true_D_per_100km2"] = true_density(truth)
        check["counted_within_10pct_of_photographed"] = within_10pct(res.mna, n_photo)
        check["ci_contains_true_N"] = (best.lcl <= n_pop <= best.ucl) if best and best.lcl is not None and \
            best.ucl is not None else None
        d_true, d_lo, d_hi = census["true_D_per_100km2"], census["D_lcl_per_100km2"], census["D_ucl_per_100km2"]
        check["ci_contains_true_D"] = (d_lo <= d_true <= d_hi) if None not in (d_true, d_lo, d_hi) else None
        check["detect"] = {k: detect.get(k) for k in ("frames", "detections", "leopard_detections", "static_fp",
                                                      "frames_per_second")}
        check["identify"] = ident
        return DemoResult(true_individuals=n_pop, true_detected_individuals=n_photo, census=census,
                          summary=res.summary(), truth_check=check, seconds=clock.wall(), db=str(db), out=str(out),
                          card={k: card_summary.get(k) for k in ("frames", "empty_frames", "leopard_boxes",
                                                                  "deployments", "frames_per_second")},
                          notes=notes, cpu_seconds=clock.cpu(), result=res)


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
