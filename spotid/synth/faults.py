"""Camera faults in the synthetic world, so the camera check (spotid/ingest/health.py) can be tested against
a known truth.

Specs (``SynthConfig.faults``, ``spotid synth card --fault SPEC``, repeatable):

- ``down:DEP:DAY:DAYS``  camera ``DEP`` takes no picture from survey day ``DAY`` (0-based, midnight local)
  for ``DAYS`` days (knocked over, covered); ``DAY + DAYS`` past the survey end = dead battery / full card.
- ``clock:DEP:DAY``      camera ``DEP``'s clock is reset at midnight starting day ``DAY``: from then on it writes
  times that restart from the deployment start (true time minus ``DAY`` days); file numbers keep growing.
- ``noir:DEP``           camera ``DEP``'s infrared flash is broken: it takes no picture at night.

The truth file lists them (``truth.json`` ``faults``); images whose written time is not the true time carry
``true_datetime`` beside ``datetime`` (the camera's EXIF time).
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

KINDS = {"down": 4, "clock": 3, "noir": 2}


@dataclass(frozen=True)
class Fault:
    kind: str              # down | clock | noir
    deployment: str
    day: int = 0           # first day affected (0-based survey day)
    days: int = 0          # down: how many days

    def window(self, start: datetime, survey_days: int) -> tuple[datetime, datetime]:
        """True-time window affected: [start, end)."""
        a = start + timedelta(days=self.day)
        if self.kind == "down":
            return a, start + timedelta(days=min(self.day + self.days, survey_days))
        return a, start + timedelta(days=survey_days)

    def to_dict(self, start: datetime, survey_days: int) -> dict:
        a, b = self.window(start, survey_days)
        d = {"kind": self.kind, "deployment": self.deployment, "start": a.isoformat(), "end": b.isoformat()}
        if self.kind == "down":
            d["days"] = (b - a).days
            d["what"] = "no pictures (camera down)" if b < start + timedelta(days=survey_days) else \
                "no pictures until pickup (dead battery / full card)"
        elif self.kind == "clock":
            d["clock_shift_days"] = -self.day
            d["what"] = "clock reset: written times restart from the deployment start"
        else:
            d["what"] = "no night pictures (broken infrared flash)"
        return d


def parse_fault(text: str) -> Fault:
    """``down:S02A:5:10`` | ``clock:S03B:8`` | ``noir:S01A`` -> Fault (ValueError names the forms)."""
    forms = "down:DEPLOYMENT:DAY:DAYS, clock:DEPLOYMENT:DAY or noir:DEPLOYMENT (e.g. down:S02A:5:10)"
    parts = str(text).strip().split(":")
    if not parts or parts[0] not in KINDS or len(parts) != KINDS[parts[0]]:
        raise ValueError(f"bad fault {text!r}: use {forms}")
    try:
        nums = [int(p) for p in parts[2:]]
    except ValueError:
        raise ValueError(f"bad fault {text!r}: DAY and DAYS are whole numbers; use {forms}") from None
    if any(n < 0 for n in nums) or (parts[0] == "down" and nums[1] < 1):
        raise ValueError(f"bad fault {text!r}: DAY >= 0 and DAYS >= 1")
    return Fault(parts[0], parts[1], *nums)


def parse_faults(specs, deployments: list[str], survey_days: int) -> list[Fault]:
    out = [parse_fault(s) for s in specs or ()]
    for f in out:
        if f.deployment not in deployments:
            raise ValueError(f"fault {f.kind}:{f.deployment}: no such camera; cameras: {', '.join(deployments)}")
        if f.day >= survey_days:
            raise ValueError(f"fault {f.kind}:{f.deployment}: day {f.day} is after the survey ({survey_days} days)")
    return out


def drops(fault: Fault, trigger, start: datetime, survey_days: int) -> bool:
    """Does this fault remove the trigger (a picture the camera did not take)?"""
    if trigger.deployment != fault.deployment:
        return False
    if fault.kind == "down":
        a, b = fault.window(start, survey_days)
        return a <= trigger.start < b
    if fault.kind == "noir":
        return trigger.night
    return False


def camera_time(faults: list[Fault], deployment: str, when: datetime, start: datetime) -> datetime:
    """The time the camera writes for a picture taken at true time ``when``."""
    for f in faults:
        if f.kind == "clock" and f.deployment == deployment and when >= start + timedelta(days=f.day):
            return when - timedelta(days=f.day)
    return when
