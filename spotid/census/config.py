"""Census settings (defaults mirrored in configs/census.yaml)."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class CensusConfig:
    """How sightings become events, occasions and counts.

    start/end: the census period (ISO date or datetime; a date-only end is inclusive; a time without
    an offset is read as local camera time). occasion_days: length of one capture occasion.
    independence_minutes: sightings of one identity at one station closer than this (to the previous
    sighting) belong to one event. flank_link_seconds: a left and a right identity seen at the two
    cameras of a paired station within this many seconds are one animal. statuses: which sighting
    statuses count. estimate_flank: 'auto' (the flank with more identities, left on ties), 'left' or
    'right'. write_flank_links: store the links found in the catalog's flank_links table.
    camera_check: run the camera check (spotid/ingest/health.py, default thresholds) and take the outages it
    finds (clock reset, no images after setup / mid-deployment / before pickup) out of the stations' effort,
    leaving out sightings whose time cannot be trusted; on a card without faults nothing changes.
    outages: CSV of known outages ``deployment_id,start,end[,reason]``, also taken out of the effort.
    """

    yaml_name = "census"

    start: str | None = None
    end: str | None = None
    occasion_days: float = 1.0
    independence_minutes: float = 30.0
    flank_link_seconds: float = 10.0
    statuses: tuple[str, ...] = ("auto", "confirmed")
    estimate_flank: str = "auto"
    models: tuple[str, ...] = ("M0", "Mt", "Mb", "Mh-chao", "Mh-jackknife", "Mh-2point", "Mh-betabinomial")
    write_flank_links: bool = True
    # SECR density from the stations' layout (``spotid census --model secr``): one fit per flank
    secr: bool = False
    secr_detector: str = "count"        # count | proximity | multi (camera stations: count or proximity)
    secr_detectfn: str = "HN"           # HN | HR | HHN | HHR
    secr_buffer_m: float = 12000.0      # habitat mask buffer around the stations (~4 sigma of a leopard)
    secr_nx: int = 64                   # mask points across the buffered layout (as R's secr make.mask)
    # camera operation (effort from the images themselves)
    camera_check: bool = True           # take detected outages out of the effort (nothing changes without faults)
    outages: str | None = None          # CSV deployment_id,start,end[,reason] of known outages

    def __post_init__(self):
        if not self.occasion_days > 0:
            raise ValueError("occasion_days must be > 0 (e.g. 1 for daily occasions, 7 for weekly)")
        if self.independence_minutes < 0:
            raise ValueError("independence_minutes must be >= 0")
        if self.flank_link_seconds < 0:
            raise ValueError("flank_link_seconds must be >= 0")
        if self.estimate_flank not in ("auto", "left", "right"):
            raise ValueError("estimate_flank must be auto, left or right")
        if self.secr_detector not in ("count", "proximity", "multi"):
            raise ValueError("secr_detector must be count, proximity or multi")
        if self.secr_detectfn not in ("HN", "HR", "HHN", "HHR"):
            raise ValueError("secr_detectfn must be HN, HR, HHN or HHR")
        if not self.secr_buffer_m > 0 or self.secr_nx < 8:
            raise ValueError("secr_buffer_m must be > 0 (metres) and secr_nx >= 8")
        bad = set(self.statuses) - {"pending", "auto", "confirmed"}
        if bad:
            raise ValueError(f"statuses {sorted(bad)} carry no identity; use pending, auto, confirmed")
