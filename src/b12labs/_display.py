"""How numbers are printed in messages (docs/clinical-logic.md §1 principle 7).

A reported value is shown as the lab wrote it; a threshold as published (133 pmol/L,
0.40 µmol/L); a converted value to 3 significant figures (376 pmol/L, 6.80 nmol/L); a value and
its threshold in one sentence in the unit the lab reported, with the published figure in
brackets when it is in another unit ("MMA 180 nmol/L is below 400 nmol/L (0.40 µmol/L)").
These are texts only: evidence keeps the exact numbers.
"""

from __future__ import annotations

import functools
import math
import re

__all__ = ["published", "sig3", "unit_shown", "writes_micro_as_u"]

#: units as printed where the canonical (UCUM) spelling is not what a clinician reads
_UNIT_SHOWN = {"mL/min/{1.73_m2}": "mL/min/1.73m2"}
_ASCII_MICRO = re.compile(r"(?:^|(?<=/))u(?=[a-zA-Z])")


def sig3(x: float) -> str:
    """A converted or derived value to 3 significant figures, trailing zeros kept.

    ``376.281`` -> ``"376"``, ``6.8`` -> ``"6.80"``, ``7.16268`` -> ``"7.16"``,
    ``1234.5`` -> ``"1230"``, ``0.0451`` -> ``"0.0451"``.
    """
    if x == 0 or not math.isfinite(x):
        return f"{x:g}"
    decimals = 2 - math.floor(math.log10(abs(x)))
    rounded = round(x, decimals)
    if rounded != 0:  # 9.996 rounds to 10.0: one decimal fewer
        decimals = 2 - math.floor(math.log10(abs(rounded)))
        rounded = round(x, decimals)
    return f"{rounded:.{max(decimals, 0)}f}"


def published(x: float) -> str:
    """A threshold figure as laboratories publish it: ``133``, ``14.5``, ``0.40``, ``0.378``.

    TOML keeps no trailing zeros, so a figure below 1 is shown with at least two decimals,
    the way MMA limits are written (0.40, 0.30 µmol/L).
    """
    text = f"{x:g}"
    if 0 < abs(x) < 1 and len(text.split(".")[-1]) < 2:
        return f"{x:.2f}"
    return text


def writes_micro_as_u(unit: str | None) -> bool:
    """Whether a lab's unit spells micro as ``u`` (``ug/dL``, ``umol/L``)."""
    return bool(unit) and _ASCII_MICRO.search(unit or "") is not None


@functools.lru_cache(maxsize=256)
def unit_shown(unit: str, ascii_micro: bool = False) -> str:
    """A profile or canonical unit as printed: ``µmol/L`` (``umol/L`` beside a lab that writes
    micro as ``u``), ``mL/min/1.73m2``."""
    shown = _UNIT_SHOWN.get(unit, unit)
    return shown if ascii_micro else _ASCII_MICRO.sub("µ", shown)
