"""Dates in batch input: one reading for every column and front-end.

Day/month order is never guessed: ``01/02/1959`` could be 1 February or 2 January, and a
guess that depends on another row (``13/01/1959`` forcing day-first) would read the same cell
differently in two files. By default only ISO 8601 is read (``1959-02-01``,
``2026-03-01T08:30``, with or without a zone; times without one are taken as UTC). Any other
layout needs an explicit ``date_format`` (a ``strftime`` pattern such as ``%d/%m/%Y``), which
then applies to every cell of the column.

An unreadable date or one in the future is an error for that row, with the reason: it is
never turned silently into "age unknown" or a missing collection time.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .errors import InputFormatError

__all__ = ["DATE_HELP", "day_numbers", "parse_dates"]

#: What the errors say is accepted.
DATE_HELP = (
    "ISO 8601 (YYYY-MM-DD, optionally THH:MM); other layouts need --date-format / date_format="
)

#: A date this far after the moment of scoring is "in the future" (time zones, clock skew).
_FUTURE_SLACK = pd.Timedelta(days=1)


def parse_dates(
    cells: pd.Series, date_format: str | None = None, *, now: pd.Timestamp | None = None
) -> tuple[pd.Series, np.ndarray]:
    """``(timestamps (UTC, NaT where unusable), reason per row ('' when fine or blank))``."""
    text = cells.astype("string").str.strip()
    blank = (text.isna() | (text == "")).to_numpy(dtype=bool)
    fmt = date_format or "ISO8601"
    try:
        parsed = pd.to_datetime(text.where(~blank), errors="coerce", utc=True, format=fmt)
    except (ValueError, TypeError) as exc:  # a pattern pandas cannot use at all
        raise InputFormatError(
            f"date format {date_format!r} cannot be used: {exc}", code="option-invalid"
        ) from None
    unreadable = parsed.isna().to_numpy(dtype=bool) & ~blank
    reasons = np.full(len(text), "", dtype=object)
    if date_format:
        reasons[unreadable] = f"not a date in the format {date_format!r}"
    else:
        reasons[unreadable] = f"not a date in {DATE_HELP}"
    limit = (now if now is not None else pd.Timestamp.now(tz="UTC")) + _FUTURE_SLACK
    future = (parsed > limit).fillna(False).to_numpy(dtype=bool)
    reasons[future] = "a date in the future"
    parsed = parsed.where(~future)
    return parsed.reset_index(drop=True), reasons


def day_numbers(timestamps: pd.Series) -> np.ndarray:
    """Days since 1970-01-01 UTC of UTC timestamps (NaN where NaT), as
    :func:`b12labs._serial.day_number` counts them."""
    values = timestamps.dt.tz_convert("UTC").dt.tz_localize(None).to_numpy(dtype="datetime64[ns]")
    out: np.ndarray = values.astype("int64").astype(float) / 86400e9
    out[np.isnat(values)] = np.nan
    return out
