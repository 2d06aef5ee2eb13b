"""Results over time in the wide batch format (docs/clinical-logic.md §8, ``--history``).

With a patient-id and a collection-date column, each row's history is the same patient's
other rows collected at or before it: strictly earlier rows are compared with it, and a row
at the same time with a different value is a conflict (neither is used, whatever the row
order), exactly as ``interpret(panel, context, history=[the earlier rows])`` decides it,
through the one function it uses (:func:`b12labs._serial.serial_inputs`).

The rows must come sorted by patient, then collection date: a patient seen again after
another patient's rows, or a date before the previous one of the same patient, refuses the
run (:func:`check_sorted`). Streaming (:class:`WideHistory`) holds back the last patient's
rows of each chunk until the next chunk shows whether that patient goes on, so memory is
bounded by one patient's rows and a patient's history never stops at a chunk boundary.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from .._dates import parse_dates
from .._serial import serial_inputs
from ..errors import B12LabsError, InputFormatError
from ..models import HistoryEntry, Measurement, PatientContext
from ..profiles import Profile
from ._columns import PATIENT_ID_NAMES, ColumnMap, norm
from ._serial import _LIST_FIELDS, _SCALAR_FIELDS, SERIAL_KEYS, _context, _measurement

__all__ = ["WideHistory", "check_sorted", "history_columns", "wide_serial"]

_SORT_HINT = "Sort it by patient id, then collection date, to score results over time (--history)."


def history_columns(columns: list[str], cmap: ColumnMap) -> tuple[str, str]:
    """The (patient id, collection date) columns ``history=True`` reads, else
    :class:`InputFormatError` (``history-columns-missing``)."""
    taken = {a.value for a in cmap.analytes.values()} | set(cmap.context.values())
    by_norm = {norm(c): c for c in columns if c not in taken}
    pid = cmap.context.get("patient_id") or next(
        (by_norm[norm(n)] for n in PATIENT_ID_NAMES if norm(n) in by_norm), None
    )
    when = cmap.context.get("collected_at")
    missing = [
        what
        for what, col in (("a patient id", pid), ("a collection date (collected_at)", when))
        if col is None
    ]
    if missing:
        raise InputFormatError(
            "results over time (--history / history=True) need "
            + " and ".join(missing)
            + " column; patient ids are read from a column named "
            + ", ".join(PATIENT_ID_NAMES[:4])
            + " … (or --map COLUMN=patient_id / --id-col), collection dates from collected_at, "
            + "collection_date, specimen_date … (or --map COLUMN=collected_at / --time-col)",
            code="history-columns-missing",
        )
    assert pid is not None and when is not None
    return pid, when


def _pids(series: pd.Series) -> np.ndarray:
    return series.astype("string").str.strip().fillna("").to_numpy(dtype=object)


def check_sorted(pids: np.ndarray, times: pd.Series, first_row: int = 1) -> None:
    """Refuse rows not sorted by patient, then collection date (``first_row``: the data row
    number of the first one, for the message). Rows without a patient id or a usable date
    are not placed and never refuse the run."""
    has_pid = pids != ""
    if not has_pid.any():
        return
    idx = np.flatnonzero(has_pid)
    codes, _ = pd.factorize(pids[idx], sort=False)
    starts = np.flatnonzero(np.r_[True, codes[1:] != codes[:-1]])
    run_codes = codes[starts]
    seen: set[int] = set()
    for k, c in zip(starts, run_codes, strict=True):
        if int(c) in seen:
            raise InputFormatError(_unsorted(first_row + int(idx[k])))
        seen.add(int(c))
    ns = times.to_numpy(dtype="datetime64[ns]").astype(np.int64)
    usable = ~times.isna().to_numpy(dtype=bool)
    keep = idx[usable[idx]]
    if len(keep) < 2:
        return
    same = pids[keep][1:] == pids[keep][:-1]
    earlier = ns[keep][1:] < ns[keep][:-1]
    bad = np.flatnonzero(same & earlier)
    if len(bad):
        raise InputFormatError(
            "the input is not sorted by collection date within each patient: data row "
            f"{first_row + int(keep[bad[0] + 1])} was collected before the patient's row "
            f"above it. {_SORT_HINT}"
        )


def _unsorted(row: int) -> str:
    return (
        f"the input is not sorted by patient: data row {row} has the patient id of rows "
        f"above it, with another patient's rows in between. {_SORT_HINT}"
    )


def _text(df: pd.DataFrame, col: str | None) -> list[str]:
    if col is None:
        return [""] * len(df)
    out: list[str] = df[col].astype("string").fillna("").tolist()
    return out


def wide_serial(
    df: pd.DataFrame,
    cmap: ColumnMap,
    pid_col: str,
    time_col: str,
    profile: Profile,
    decimal: str,
    date_format: str | None,
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """The serial input columns of each row (NaN where it has no history) and, per analyte,
    the rows whose current value a same-time conflict voids (a boolean mask)."""
    n = len(df)
    out = {k: np.full(n, np.nan) for k in SERIAL_KEYS}
    voided: dict[str, np.ndarray] = {}
    if not n:
        return out, voided
    pids = _pids(df[pid_col])
    times, _ = parse_dates(df[time_col], date_format)
    check_sorted(pids, times)
    usable = (pids != "") & ~times.isna().to_numpy(dtype=bool)
    if not usable.any():
        return out, voided
    idx = np.flatnonzero(usable)
    # only patients with two or more placed rows have any history; a row without one but
    # with its own b12_treatment_started gets the same day numbers from score_frame itself
    codes, _ = pd.factorize(pids[idx], sort=False)
    counts = np.bincount(codes)
    rows = idx[counts[codes] > 1]
    if not len(rows):
        return out, voided
    sub = df.iloc[rows]
    cells = {
        key: (
            _text(sub, a.value),
            _text(sub, a.unit_column),
            _text(sub, a.ref_low),
            _text(sub, a.ref_high),
            a.fixed_unit or "",
        )
        for key, a in cmap.analytes.items()
    }
    context_cols = {
        f: cmap.context[f] for f in (*_SCALAR_FIELDS, *_LIST_FIELDS) if f in cmap.context
    }
    context_cells = {f: _text(sub, col) for f, col in context_cols.items()}
    placed: list[_Row] = []
    stamps = times.iloc[rows].tolist()  # one conversion, not one lookup per row
    for j, i in enumerate(rows):
        results: dict[str, Measurement] = {}
        for key, (values, units, lows, highs, fixed) in cells.items():
            value = values[j]
            if not value.strip():
                continue
            m = _measurement(key, value, units[j] or fixed, decimal, (lows[j], highs[j]))
            if m is not None:
                results[key] = m
        row_cells = {f: v[j] for f, v in context_cells.items()}
        recorded = any(v.strip() for v in row_cells.values())
        # a row with no context recorded is an entry without context, as in interpret()
        ctx = _context(row_cells, date_format) if recorded else None
        placed.append(_Row(int(i), pids[i], stamps[j].to_pydatetime(), results, ctx))
    for patient in _by_patient(placed):
        for current in patient:
            earlier = [r for r in patient if r is not current and r.at <= current.at]
            if not earlier:
                continue
            entries = [
                HistoryEntry.model_construct(
                    None,
                    collected_at=r.at,
                    results=r.results,
                    context=r.context,
                )
                for r in earlier
                if r.results
            ]
            base = current.context or PatientContext()
            started = base.b12_treatment_started
            if started is not None and started > current.at.date():
                # refused on the row (date-treatment-order), so not a start here either
                base = base.model_copy(update={"b12_treatment_started": None})
            try:
                inputs, _, void = serial_inputs(
                    current.results,
                    base.model_copy(update={"collected_at": current.at}),
                    entries,
                    profile,
                    eager_bad=True,  # no lazy judgement in a column of panels
                )
            except B12LabsError:
                continue  # the row reports its own error
            for name, number in inputs.items():
                out[name][current.position] = number
            for a in void:
                voided.setdefault(a, np.zeros(n, dtype=bool))[current.position] = True
    return out, voided


@dataclass(frozen=True, slots=True)
class _Row:
    position: int
    pid: str
    at: Any  # datetime (UTC)
    results: dict[str, Measurement]
    context: PatientContext | None


def _by_patient(rows: list[_Row]) -> Iterator[list[_Row]]:
    """The rows of each patient (sorted input: contiguous, apart from unplaced rows)."""
    groups: dict[str, list[_Row]] = {}
    for r in rows:
        groups.setdefault(r.pid, []).append(r)
    yield from groups.values()


@dataclass
class WideHistory:
    """Streams a wide export scored with history: feed chunks in file order, get the blocks
    to score, each holding every row of the patients it has.

    The last patient's rows of a chunk (and any rows without a patient id after them) are
    carried into the next block; a patient id seen again after the block it was scored in
    refuses the run, as does any unsorted block (:func:`check_sorted`).
    """

    pid_col: str
    time_col: str
    date_format: str | None = None
    _carry: pd.DataFrame | None = None
    _done: set[str] = field(default_factory=set)

    def feed(self, chunk: pd.DataFrame, *, last: bool = False) -> pd.DataFrame:
        block = chunk if self._carry is None else pd.concat([self._carry, chunk])
        self._carry = None
        pids = _pids(block[self.pid_col])
        if len(block) and not last:
            placed = np.flatnonzero(pids != "")
            if len(placed):
                tail = pids[placed[-1]]
                others = placed[pids[placed] != tail]
                cut = int(others[-1]) + 1 if len(others) else 0
                self._carry = block.iloc[cut:]
                block = block.iloc[:cut]
                pids = pids[:cut]
        self._check(block, pids)
        return block

    def finish(self) -> pd.DataFrame | None:
        """The rows still held back (the last patient's), if any."""
        if self._carry is None:
            return None
        block, self._carry = self._carry, None
        self._check(block, _pids(block[self.pid_col]))
        return block

    def _check(self, block: pd.DataFrame, pids: np.ndarray) -> None:
        if not len(block):
            return
        # the file API labels each row with its 0-based data row number
        first = int(block.index[0]) + 1 if pd.api.types.is_integer_dtype(block.index) else 1
        present = [p for p in pd.unique(pids) if p]
        for k, p in enumerate(pids):
            if p and p in self._done:
                raise InputFormatError(_unsorted(first + k))
        times, _ = parse_dates(block[self.time_col], self.date_format)
        check_sorted(pids, times, first)
        self._done.update(present)


def blank_voided(df: pd.DataFrame, cmap: ColumnMap, voided: Mapping[str, np.ndarray]) -> None:
    """Blank (in ``df``, a working copy) the current values a same-time conflict voids."""
    for key, mask in voided.items():
        a = cmap.analytes.get(key)
        if a is not None and mask.any():
            df[a.value] = df[a.value].mask(pd.Series(mask, index=df.index))
