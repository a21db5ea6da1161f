"""Where ingest takes a frame's time from: ``--time-from exif`` (the default) or
``--time-from filename:PATTERN`` for cameras that write the time into the file name.

PATTERN is strftime-like and is searched anywhere in the file name (not the folders), e.g.
``filename:%Y%m%d_%H%M%S`` finds 2024-03-01 22:13:05 in ``Front_00_20240301_221305.JPG``.
Directives: ``%Y`` (4-digit year), ``%y`` (2-digit year, 20xx), ``%m``, ``%d``, ``%H``, ``%M``,
``%S`` (2 digits each) and ``%%`` (a literal %); any other character stands for itself. A pattern
needs a year, month, day, hour and minute (seconds default to 0), and the match may not start
right after a digit (so a year is never read from the middle of a frame counter).

The time read is the camera's wall clock, like an EXIF time: the deployment's time zone (or
``--tz``) applies. A name that does not match, or holds an impossible date, falls back to EXIF and
then to the file's modification time; ingest counts those frames.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

EXAMPLE = "--time-from filename:%Y%m%d_%H%M%S"
_DIRECTIVES = {"Y": r"\d{4}", "y": r"\d{2}", "m": r"\d{2}", "d": r"\d{2}", "H": r"\d{2}", "M": r"\d{2}",
               "S": r"\d{2}"}
_NEEDED = ("year (%Y or %y)", "month (%m)", "day (%d)", "hour (%H)", "minute (%M)")


class TimeFromError(ValueError):
    """A ``--time-from`` value that cannot be used; the message names the fix."""


@dataclass(frozen=True)
class TimeFrom:
    """A parsed ``--time-from`` value. ``pattern`` None means EXIF (then mtime) only."""

    spec: str
    pattern: re.Pattern | None = None

    @property
    def from_filename(self) -> bool:
        return self.pattern is not None

    def parse(self, name: str) -> datetime | None:
        """The naive wall-clock time in file name ``name``; None when the pattern does not match or
        the matched digits are no valid date (month 13, 31 April, ...)."""
        if self.pattern is None:
            return None
        m = self.pattern.search(name)
        if m is None:
            return None
        g = m.groupdict()
        year = int(g["Y"]) if g.get("Y") else 2000 + int(g["y"])
        try:
            return datetime(year, int(g["m"]), int(g["d"]), int(g["H"]), int(g["M"]), int(g.get("S") or 0))
        except ValueError:
            return None


def parse_time_from(spec: str | None) -> TimeFrom:
    """``'exif'`` / None -> EXIF; ``'filename:PATTERN'`` -> PATTERN compiled (see the module docstring).
    Raises :class:`TimeFromError` naming the fix."""
    s = "exif" if spec is None else str(spec).strip()
    if s.lower() == "exif":
        return TimeFrom("exif")
    kind, sep, fmt = s.partition(":")
    if kind.lower() != "filename" or not sep:
        raise TimeFromError(f"--time-from {spec!r}: use 'exif' (the default) or 'filename:PATTERN', "
                            f"e.g. {EXAMPLE}")
    return TimeFrom(f"filename:{fmt}", _compile(fmt))


def _compile(fmt: str) -> re.Pattern:
    parts, seen, i = [], [], 0
    while i < len(fmt):
        c = fmt[i]
        if c != "%":
            parts.append(re.escape(c))
            i += 1
            continue
        d = fmt[i + 1] if i + 1 < len(fmt) else ""
        if d == "%":
            parts.append("%")
        elif d in _DIRECTIVES:
            if d in seen or (d in "Yy" and ({"Y", "y"} & set(seen))):
                raise TimeFromError(f"--time-from filename:{fmt}: %{d} appears twice; give each part of the "
                                    f"time once, e.g. {EXAMPLE}")
            seen.append(d)
            parts.append(f"(?P<{d}>{_DIRECTIVES[d]})")
        else:
            raise TimeFromError(f"--time-from filename:{fmt}: unknown directive %{d} (known: %Y %y %m %d %H %M %S "
                                f"and %% for a literal %), e.g. {EXAMPLE}")
        i += 2
    have = {"year (%Y or %y)": bool({"Y", "y"} & set(seen)), "month (%m)": "m" in seen, "day (%d)": "d" in seen,
            "hour (%H)": "H" in seen, "minute (%M)": "M" in seen}
    missing = [k for k in _NEEDED if not have[k]]
    if missing:
        listed = ", ".join(missing[:-1]) + (" or " if len(missing) > 1 else "") + missing[-1]
        raise TimeFromError(f"--time-from filename:{fmt}: the pattern has no {listed}; a name must give "
                            f"the date and time to the minute, e.g. {EXAMPLE}")
    return re.compile(r"(?<!\d)" + "".join(parts))
