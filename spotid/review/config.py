"""Settings of the review web app (defaults mirrored in ``configs/review.yaml``)."""
from __future__ import annotations

from dataclasses import dataclass

#: The review app serves a catalog with people's decisions in it: never on a network interface.
HOST = "127.0.0.1"


@dataclass(frozen=True)
class ReviewConfig:
    """Queue ordering and display settings of ``spotid review``."""

    yaml_name = "review"

    port: int = 8765
    #: Calibrated P(same) at which identify auto-accepts. The queue puts first the sightings whose
    #: top probability is closest to it or whose two best candidates are closest to each other.
    threshold: float = 0.5
    #: Catalog ``settings`` key that, when present, overrides ``threshold`` (identify records it).
    threshold_setting: str = "identify.match_threshold"
    max_candidates: int = 5
    n_references: int = 6
    #: Also queue the sightings the machine accepted on its own ('auto': ``--auto-accept``, ``spotid
    #: demo``), after the pending ones. The census counts them, so a person may want to vouch for each.
    include_auto: bool = False
    #: Then queue the sightings identify set aside (no left/right flank; matched nobody and too weak,
    #: small or unreadable to found an individual), each with identify's reason, so a person can
    #: rescue those the machine could not read. The census does not count them until a person does.
    include_set_aside: bool = False

    def __post_init__(self) -> None:
        if not 0.0 <= self.threshold <= 1.0:
            raise ValueError(f"threshold {self.threshold} must be a probability in [0, 1]")
        if not 1 <= self.max_candidates <= 9:
            raise ValueError(f"max_candidates {self.max_candidates} must be 1..9 (one key per candidate)")
        if not 0 < self.port < 65536:
            raise ValueError(f"port {self.port} is not a TCP port: pass --port 1024..65535")
