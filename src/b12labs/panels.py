"""Panel assembly: turning a stream of dated results into panels (episodes).

One core function, shared by the long-format batch scorer and the FHIR adapter: per patient,
in time order, an episode starts at a result and takes every result within ``window`` of that
start; the next result after the window starts the next episode. A panel is the newest value
per analyte within its episode.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

import numpy as np

from .errors import InvalidValueError

__all__ = ["DEFAULT_WINDOW_DAYS", "Episode", "assemble", "episode_ids"]

DEFAULT_WINDOW_DAYS = 90
T = TypeVar("T")


def episode_ids(patient: np.ndarray, time_ns: np.ndarray, window_ns: int) -> np.ndarray:
    """Episode number of each result, for results sorted by (patient, time).

    ``patient`` holds integer patient codes and ``time_ns`` int64 nanoseconds, both already
    sorted. Episode numbers are global and increase along the input.
    """
    n = len(patient)
    out = np.empty(n, dtype=np.int64)
    if n == 0:
        return out
    pat = patient.tolist()
    times = time_ns.tolist()
    episode = 0
    start = times[0]
    current = pat[0]
    for i in range(n):
        p, t = pat[i], times[i]
        if p != current or t - start > window_ns:
            if i:
                episode += 1
            current, start = p, t
        out[i] = episode
    return out


@dataclass
class Episode(Generic[T]):
    """One episode: its time span, the newest item per analyte, and the items it superseded."""

    start: dt.datetime
    end: dt.datetime
    newest: dict[str, T] = field(default_factory=dict)
    newest_time: dict[str, dt.datetime] = field(default_factory=dict)
    superseded: list[T] = field(default_factory=list)


def assemble(
    results: Sequence[tuple[str, dt.datetime, T]],
    *,
    window_days: float = DEFAULT_WINDOW_DAYS,
    patient: Hashable = None,
) -> list[Episode[T]]:
    """Group one patient's ``(analyte, collected_at, item)`` results into episodes.

    Times must be timezone-aware or all naive. Episodes come oldest first.
    """
    if window_days <= 0:
        raise InvalidValueError("window_days must be positive", code="option-invalid")
    order = sorted(range(len(results)), key=lambda i: results[i][1])
    ordered = [results[i] for i in order]
    if not ordered:
        return []
    epoch = ordered[0][1]
    offsets = np.array(
        [int((t - epoch).total_seconds() * 1e9) for _, t, _ in ordered], dtype=np.int64
    )
    ids = episode_ids(np.zeros(len(ordered), dtype=np.int64), offsets, int(window_days * 86400e9))
    episodes: list[Episode[T]] = []
    for eid, (analyte, when, item) in zip(ids.tolist(), ordered, strict=True):
        if eid >= len(episodes):
            episodes.append(Episode(start=when, end=when))
        ep = episodes[eid]
        ep.end = when
        if analyte in ep.newest:
            ep.superseded.append(ep.newest[analyte])
        ep.newest[analyte] = item
        ep.newest_time[analyte] = when
    return episodes
