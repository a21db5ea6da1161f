"""Settings of the synthetic camera-trap world (defaults mirrored in ``configs/synth.yaml``)."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SynthConfig:
    """One synthetic survey: the population, the station grid, the cameras and the rendering.

    Distances are metres in a local east/north frame whose origin maps to (``origin_lat``,
    ``origin_lon``). ``g0``/``sigma`` are the SECR half-normal detection parameters per
    individual, station and day: p = g0 * exp(-d^2 / (2 sigma^2)).
    """

    yaml_name = "synth"

    seed: int = 0
    individuals: int = 8
    first_id: int = 1                 # individual ids are ind{first_id:03d}...
    stations: int = 4
    days: int = 8
    start_date: str = "2025-10-20"    # first survey day (local time)
    tz: str = "+10:00"                # Vladivostok time, written in deploymentStart/End and EXIF OffsetTime
    station_spacing_m: float = 2000.0
    buffer_m: float = 3000.0          # home-range centres fall up to this far outside the station grid
    g0: float = 0.25
    sigma_m: float = 1500.0
    paired: bool = True               # two facing cameras per station (deployments S01A, S01B)
    paired_capture_prob: float = 0.95  # chance that each camera of a pair fires on a passing animal
    night_fraction: float = 0.6       # share of animal passes that happen at night (IR frames)
    empty_fraction: float = 0.7       # share of triggers that are wind/light false triggers
    front_back_fraction: float = 0.12  # leopard passes seen head-on or from behind (no usable flank)
    burst: int = 3                    # frames per trigger, 1 s apart
    # expected distractor passes per station and day
    rate_deer: float = 0.12
    rate_boar: float = 0.06
    rate_badger: float = 0.04
    rate_tiger: float = 0.01
    rate_person: float = 0.03
    width: int = 1920
    height: int = 1080
    jpeg_quality: int = 85
    backgrounds: str | None = None    # folder of real empty frames to use instead of procedural scenes
    origin_lat: float = 43.10         # Land of the Leopard National Park, Primorye
    origin_lon: float = 131.50
    camera_make: str = "RECONYX"
    camera_model: str = "HyperFire 2 Cover"
    workers: int = 1
    faults: tuple[str, ...] = ()      # camera faults, e.g. down:S02A:5:10, clock:S03B:8, noir:S01A (synth/faults.py)
