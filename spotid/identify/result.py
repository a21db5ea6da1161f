"""What one identify run reports (``Identifier(...)(catalog) -> IdentifyResult``): counts for people and the
run record; read by the CLI, ``spotid process`` and the crop store while it fills in failures."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field


@dataclass
class IdentifyResult:
    run_id: int
    detections: int = 0
    crops_computed: int = 0
    crop_failures: int = 0
    matched: int = 0                   # sightings proposed for a known individual (pending)
    auto: int = 0                      # sightings auto-accepted
    new_sightings: int = 0             # sightings of proposed new individuals
    new_individuals: list[str] = field(default_factory=list)
    unusable: int = 0
    unusable_reasons: dict[str, int] = field(default_factory=dict)   # why, for people: reason -> sightings
    paired_merges: int = 0             # new-individual clusters joined through paired-station co-occurrence
    flank_outvoted: int = 0            # left/right frames given their burst's majority flank
    flank_from_match: int = 0          # frames without a left/right flank that matched a known individual
    flank_from_coat: int = 0           # frames of new bursts moved to the other flank: their coat matched its bursts
    retried: int = 0                   # set-aside sightings of earlier runs matched again (--retry-set-aside)
    model_version: str = ""

    def to_json(self) -> dict:
        return asdict(self)

    def unusable_text(self) -> str:
        """``45 (42 no left/right flank, 3 ...)`` for tables."""
        why = ", ".join(f"{n} {k}" for k, n in sorted(self.unusable_reasons.items(), key=lambda kv: -kv[1]))
        return f"{self.unusable} ({why})" if why else str(self.unusable)
