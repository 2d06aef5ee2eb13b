"""Results over time in the long batch format (docs/clinical-logic.md §8).

Each episode's history is the same patient's earlier results: every result of the earlier
episodes, and the results its own newest values superseded, grouped by collection time into
history entries with the context of their episode. The serial inputs are computed by the one
function ``interpret(history=...)`` uses (:func:`b12labs._serial.serial_inputs`), so a lab's
batch and an EHR's call give the same serial findings; only episodes that have earlier
results or a recorded treatment start do any work here.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd

from .._serial import day_number, serial_inputs
from ..errors import B12LabsError
from ..models import HistoryEntry, Measurement, PatientContext, parse_measurement
from ..profiles import Profile
from ..units import ANALYTES
from ._columns import LIST_CONTEXT_FIELDS, ROW_CONTEXT_FIELDS

__all__ = ["SERIAL_KEYS", "serial_columns"]

#: the serial inputs carried as columns (b12labs.rules.serial reads them by these names)
SERIAL_KEYS: tuple[str, ...] = (
    "now",
    "start",
    *(f"prev_{a}" for a in ("b12", "holotc", "folate", "ferritin", "hb", "mcv", "mma")),
    *(f"prev_{a}_day" for a in ("b12", "holotc", "folate", "ferritin", "hb", "mcv", "mma")),
    *(f"base_{a}" for a in ("hb", "mcv", "mma")),
    *(f"base_{a}_day" for a in ("hb", "mcv", "mma")),
    "bad_day",
    "earlier_neuro",
    "conflict",
    "conflict_current",
)

_LIST_FIELDS = LIST_CONTEXT_FIELDS
_SCALAR_FIELDS = tuple(
    f for f in ROW_CONTEXT_FIELDS if f not in LIST_CONTEXT_FIELDS and f != "date_of_birth"
)


def _context(row: Mapping[str, Any], date_format: str | None) -> PatientContext:
    """An episode's context as interpret() would read it; a field the batch refused (and
    reported on the row) is left out rather than failing the history."""
    fields: dict[str, object] = {}
    for name in _SCALAR_FIELDS:
        v = row.get(name)
        if isinstance(v, str) and v.strip():
            fields[name] = v.strip()
    started = fields.get("b12_treatment_started")
    if date_format and isinstance(started, str):
        try:
            fields["b12_treatment_started"] = datetime.strptime(started, date_format).date()
        except ValueError:
            fields.pop("b12_treatment_started")
    for name in _LIST_FIELDS:
        v = row.get(name)
        if isinstance(v, str) and v.strip():
            fields[name] = [t.strip() for t in v.replace("|", ";").split(";") if t.strip()]
    for _ in range(len(fields) + 1):
        try:
            return PatientContext.parse(fields)
        except B12LabsError as exc:
            bad = getattr(exc, "analyte", None)
            if bad not in fields:
                break
            value = fields[bad]
            if isinstance(value, list) and len(value) > 1:  # keep the terms that are known
                kept = []
                for term in value:
                    try:
                        PatientContext.parse({bad: [term]})
                        kept.append(term)
                    except B12LabsError:
                        pass
                fields[bad] = kept
            else:
                fields.pop(bad)
    return PatientContext()


@functools.lru_cache(maxsize=65536)
def _measurement(
    analyte: str, value: str, unit: str, decimal: str, ref: tuple[str, str]
) -> Measurement | None:
    """One validated long row as a Measurement (None if it cannot be read after all)."""
    raw: object = value
    try:
        m = parse_measurement(analyte, raw, decimal=decimal, unit=unit or None)
        if m.unit is None and not ANALYTES[analyte].unit_required:
            m = m.model_copy(update={"unit": ANALYTES[analyte].default_unit})
        low, high = ref
        update: dict[str, float] = {}
        if low.strip():
            update["ref_low"] = float(low)
        if high.strip():
            update["ref_high"] = float(high)
        return m.model_copy(update=update) if update else m
    except (B12LabsError, ValueError):
        return None


def serial_columns(
    good: pd.DataFrame,
    newest: pd.DataFrame,
    wide: pd.DataFrame,
    roles: Mapping[str, str],
    profile: Profile,
    decimal: str,
    date_format: str | None,
) -> tuple[dict[str, np.ndarray], dict[str, list[Any]]]:
    """The serial input columns of each episode (row of ``wide``, indexed by episode), and the
    current results a same-time conflict voids (analyte -> episode index labels)."""
    n = len(wide)
    out = {k: np.full(n, np.nan) for k in SERIAL_KEYS}
    voided: dict[str, list[Any]] = {}
    if not n:
        return out, voided
    position = {e: i for i, e in enumerate(wide.index)}
    # plain lists, read once: per-patient pandas indexing would cost more than the rules
    episode = good["__episode"].to_numpy()
    pid = good["__pid"].to_numpy()
    times = [t.to_pydatetime() for t in good["__time"]]
    analyte = good["__analyte"].tolist()
    row_no = good["__row"].tolist()

    def column(role: str | None) -> list[str]:
        if role is None:
            return [""] * len(good)
        return [str(v) for v in good[role].astype("string").fillna("").tolist()]

    values, units = column(roles["value"]), column(roles.get("unit"))
    lows, highs = column(roles.get("ref_low")), column(roles.get("ref_high"))
    end_of: dict[Any, datetime] = {}
    for e, t in zip(episode.tolist(), times, strict=True):
        if e not in end_of or t > end_of[e]:
            end_of[e] = t
    out["now"] = np.array([day_number(end_of[e]) for e in wide.index], dtype=float)
    newest_rows = set(newest["__row"].tolist())
    context_cols = [c for c in (*_SCALAR_FIELDS, *_LIST_FIELDS) if c in wide.columns]
    cells_of = {
        c: dict(zip(wide.index, wide[c].astype("string").fillna("").tolist(), strict=True))
        for c in context_cols
    }
    starts = cells_of.get("b12_treatment_started", {})

    # patients are contiguous runs of the sorted rows
    bounds = np.flatnonzero(np.diff(pid)) + 1 if len(pid) else np.array([], dtype=int)
    for lo, hi in zip([0, *bounds.tolist()], [*bounds.tolist(), len(pid)], strict=True):
        episodes = list(dict.fromkeys(episode[lo:hi].tolist()))
        repeated = len(set(analyte[lo:hi])) < hi - lo
        if len(episodes) == 1 and not repeated and not starts.get(episodes[0], "").strip():
            continue
        contexts: dict[Any, PatientContext | None] = {}
        for e in episodes:
            cells = {c: cells_of[c][e] for c in context_cols}
            recorded = any(v.strip() for v in cells.values())
            # an episode with no context recorded is an entry without context, as in interpret()
            contexts[e] = _context(cells, date_format) if recorded else None
        # every result of the patient, read once: (episode, time, analyte, row, measurement)
        results = []
        for i in range(lo, hi):
            m = _measurement(analyte[i], values[i], units[i], decimal, (lows[i], highs[i]))
            if m is not None:
                results.append((episode[i], times[i], analyte[i], row_no[i], m))
        rank = {e: k for k, e in enumerate(episodes)}
        for k, e in enumerate(episodes):
            current = {a: (t, m) for ee, t, a, r, m in results if ee == e and r in newest_rows}
            earlier = [
                (t, a, m, ee)
                for ee, t, a, r, m in results
                if rank[ee] < k or (ee == e and r not in newest_rows)
            ]
            ctx = contexts[e] or PatientContext()
            if not earlier and ctx.b12_treatment_started is None:
                continue
            end = end_of[e]
            entries = _entries(earlier, contexts)
            try:
                ctx_now = ctx.model_copy(update={"collected_at": end.astimezone(UTC)})
                inputs, _, void = serial_inputs(
                    {a: m for a, (_, m) in current.items()},
                    ctx_now,
                    entries,
                    profile,
                    current_times={a: t.astimezone(UTC) for a, (t, _) in current.items()},
                    eager_bad=True,
                )
            except B12LabsError:
                continue
            i = position[e]
            for key, value in inputs.items():
                out[key][i] = value
            for a in void:
                voided.setdefault(a, []).append(e)
    return out, voided


def _entries(
    earlier: list[tuple[datetime, str, Measurement, Any]],
    contexts: Mapping[Any, PatientContext | None],
) -> list[HistoryEntry]:
    """Earlier results grouped into history entries by collection time (and episode, whose
    context they carry). Two results of one analyte at one time become two entries, so the
    conflict is seen, never resolved by row order."""
    groups: dict[tuple[datetime, Any], list[dict[str, Measurement]]] = {}
    for t, a, m, e in earlier:
        slots = groups.setdefault((t, e), [{}])
        for slot in slots:
            if a not in slot:
                slot[a] = m
                break
        else:
            slots.append({a: m})
    out = []
    plain: dict[Any, PatientContext | None] = {}  # each episode's context, without its time
    for (t, e), slots in sorted(groups.items(), key=lambda kv: kv[0][0]):
        if e not in plain:
            known = contexts[e]
            plain[e] = (
                known
                if known is None or known.collected_at is None
                else known.model_copy(update={"collected_at": None})
            )
        ctx = plain[e]
        for slot in slots:
            out.append(
                HistoryEntry.model_construct(
                    None, collected_at=t.astimezone(UTC), results=slot, context=ctx
                )
            )
    return out
