"""Long-format exports (one result per row): results -> episodes -> panels -> scores.

Per patient, in time order, an episode starts at a result and takes every result within
``window`` days of that start (:func:`b12labs.panels.episode_ids`, the function the FHIR
adapter shares); the panel is the newest value per analyte. Rows with an unknown test or an
unusable value go to the rejects, with the original row and the reason: never silently away.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from .. import _grammar as grammar
from .._dates import parse_dates
from .._grammar import QUALITATIVE_ACCEPTED, qualitative_code
from ..errors import B12LabsError, InputFormatError
from ..panels import DEFAULT_WINDOW_DAYS, episode_ids
from ..profiles import DEFAULT_PROFILE, Profile, load_profile
from ..units import ANALYTES, resolve_unit, unit_hint
from ._columns import (
    CONTEXT_NAMES,
    PATIENT_ID_NAMES,
    ROW_CONTEXT_FIELDS,
    AnalyteColumns,
    ColumnMap,
    norm,
)
from ._frame import SERIAL_PREFIX, _parse_numbers, _text, output_columns, score_frame
from ._serial import serial_columns

__all__ = ["LONG_COLUMNS", "LongScorer", "detect_long_columns", "score_long"]

LONG_COLUMNS: dict[str, tuple[str, ...]] = {
    "patient_id": PATIENT_ID_NAMES,
    "collected_at": (
        *CONTEXT_NAMES["collected_at"],
        "effective",
        "effective_date",
        "result_date",
        "date",
        "datetime",
        "observation_date",
    ),
    "test": (
        "test",
        "loinc",
        "loinc_code",
        "test_code",
        "code",
        "analyte",
        "test_name",
        "observation",
        "component",
    ),
    "value": ("value", "result", "result_value", "value_text", "observation_value"),
    "unit": ("unit", "units", "result_unit", "uom"),
    "ref_low": ("ref_low", "reference_low", "low", "normal_low", "ref_range_low"),
    "ref_high": ("ref_high", "reference_high", "high", "normal_high", "ref_range_high"),
}
_CONTEXT_FIELDS = ROW_CONTEXT_FIELDS
_TEST_TO_ANALYTE: dict[str, str] = {}
for _key, _spec in ANALYTES.items():
    for _n in (_key, *_spec.names, _spec.name, _spec.short):
        _TEST_TO_ANALYTE[norm(_n)] = _key
    for _code in _spec.loinc:
        _TEST_TO_ANALYTE[_code] = _key


def detect_long_columns(
    columns: list[str], overrides: Mapping[str, str | None] | None = None
) -> dict[str, str]:
    """Map the long-format roles (patient_id, collected_at, test, value, unit, ref_low, ref_high)."""
    overrides = {k: v for k, v in (overrides or {}).items() if v}
    by_norm = {norm(c): c for c in columns}
    roles: dict[str, str] = {}
    for role, col in overrides.items():
        if col not in columns:
            raise InputFormatError(
                f"--{role.replace('_', '-')}-col {col!r} is not a column (columns: {', '.join(columns)})"
            )
        roles[role] = col
    for role, names in LONG_COLUMNS.items():
        if role in roles:
            continue
        for name in names:
            col = by_norm.get(norm(name))
            if col is not None and col not in roles.values():
                roles[role] = col
                break
    missing = [r for r in ("patient_id", "collected_at", "test", "value") if r not in roles]
    if missing:
        raise InputFormatError(
            "long format needs columns for "
            + ", ".join(missing)
            + " (use --id-col, --time-col, --test-col, --value-col to name them)"
        )
    return roles


def _context_columns(columns: list[str], roles: Mapping[str, str]) -> dict[str, str]:
    taken = set(roles.values())
    by_norm = {norm(c): c for c in columns if c not in taken}
    out = {}
    for field_ in _CONTEXT_FIELDS:
        for name in CONTEXT_NAMES.get(field_, (field_,)):
            col = by_norm.get(norm(name))
            if col is not None:
                out[field_] = col
                break
    return out


def _analyte_of(test: str) -> str | None:
    t = test.strip()
    return _TEST_TO_ANALYTE.get(t) or _TEST_TO_ANALYTE.get(norm(t))


@dataclass
class LongScorer:
    """Streams a long export: feed chunks in file order, get scored episodes and rejects.

    A patient's rows may span chunks; a patient seen again after another patient's rows in an
    earlier chunk means the file is not sorted by patient, which a larger-than-memory stream
    cannot handle: :class:`InputFormatError` then says to sort it.
    """

    roles: dict[str, str]
    profile: Profile
    window_days: float = DEFAULT_WINDOW_DAYS
    decimal: str = "."
    date_format: str | None = None
    columns: list[str] = field(default_factory=list)
    columns_out: tuple[str, ...] | None = None  # the b12labs columns (output_columns())
    #: earlier episodes are the history of later ones (docs/clinical-logic.md §8)
    history: bool = True
    _carry: pd.DataFrame | None = None
    _done: set[str] = field(default_factory=set)
    rows_in: int = 0

    def feed(self, chunk: pd.DataFrame, *, last: bool = False) -> tuple[pd.DataFrame, pd.DataFrame]:
        if not self.columns:
            self.columns = [str(c) for c in chunk.columns]
        self.rows_in += len(chunk)
        pid_col = self.roles["patient_id"]
        chunk = chunk.copy()
        chunk["__row"] = np.arange(self.rows_in - len(chunk), self.rows_in) + 1
        if self._carry is not None:
            chunk = pd.concat([self._carry, chunk], ignore_index=True)
            self._carry = None
        pids = chunk[pid_col].astype("string").fillna("").to_numpy(dtype=object)
        if len(chunk) and not last:
            tail = pids[-1]
            keep = pids == tail
            self._carry = chunk[keep]
            chunk = chunk[~keep]
            pids = pids[~keep]
        self._check_sorted(pids)
        return self._score(chunk)

    def _check_sorted(self, pids: np.ndarray) -> None:
        """Refuse a patient seen again after other patients' rows (blank ids are rejected rows)."""
        seen_here = [p for p in pd.unique(pids) if str(p).strip()]
        again = [p for p in seen_here if p in self._done]
        if again:
            raise InputFormatError(
                f"the long export is not sorted by patient (patient {again[0]!r} appears again after other "
                "patients' rows in an earlier chunk). Sort it by patient id, or raise --chunksize above "
                "the file's row count to load it whole."
            )
        self._done.update(seen_here)

    def _score(self, block: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
        return _score_long_block(
            block,
            self.roles,
            self.profile,
            self.window_days,
            self.decimal,
            self.date_format,
            self.columns_out,
            self.history,
        )

    def finish(self) -> tuple[pd.DataFrame, pd.DataFrame]:
        if self._carry is None:
            return self._score(pd.DataFrame(columns=[*self.columns, "__row"]))
        block, self._carry = self._carry, None
        # the last patient's rows, carried from the previous chunk, are checked like any other
        self._check_sorted(
            block[self.roles["patient_id"]].astype("string").fillna("").to_numpy(dtype=object)
        )
        return self._score(block)


def _reject(
    block: pd.DataFrame, mask: np.ndarray, reasons: np.ndarray | str, codes: np.ndarray | str
) -> pd.DataFrame:
    """The rejected rows with their reason and error code (docs/errors.md)."""
    out = block.loc[mask].drop(columns=["__row"]).copy()
    out.insert(0, "b12labs_row", block.loc[mask, "__row"].to_numpy())
    out["b12labs_reject_reason"] = reasons[mask] if isinstance(reasons, np.ndarray) else reasons
    out["b12labs_reject_code"] = codes[mask] if isinstance(codes, np.ndarray) else codes
    return out


def _score_long_block(
    block: pd.DataFrame,
    roles: Mapping[str, str],
    profile: Profile,
    window_days: float,
    decimal: str,
    date_format: str | None = None,
    columns_out: tuple[str, ...] | None = None,
    history: bool = True,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    n = len(block)
    rejects: list[pd.DataFrame] = []
    tests = _text(block[roles["test"]])
    analytes = (
        np.array([_analyte_of(t) or "" for t in tests], dtype=object)
        if n
        else np.array([], dtype=object)
    )
    unknown = analytes == ""
    if unknown.any():
        rejects.append(
            _reject(
                block,
                unknown,
                np.array(
                    [
                        f"unknown test {t!r} (not an analyte of docs/clinical-logic.md §2)"
                        if t
                        else "no test code"
                        for t in tests
                    ],
                    dtype=object,
                ),
                np.where(tests == "", "field-missing", "analyte-unknown"),
            )
        )
    times, time_reasons = parse_dates(block[roles["collected_at"]], date_format)
    times.index = block.index
    no_time = times.isna().to_numpy() & ~unknown
    if no_time.any():
        time_why = np.where(
            time_reasons != "",
            np.array([f"collection time {r}" for r in time_reasons], dtype=object),
            "no collection time",
        )
        time_code = np.where(
            time_reasons == "",
            "field-missing",
            np.where(time_reasons == grammar.reason("date-future"), "date-future", "date-invalid"),
        )
        rejects.append(_reject(block, no_time, time_why, time_code))
    # a row without a patient id is never pooled with other such rows into one patient
    no_pid = (
        (block[roles["patient_id"]].astype("string").str.strip().fillna("") == "").to_numpy(
            dtype=bool
        )
        & ~unknown
        & ~no_time
    )
    if no_pid.any():
        rejects.append(
            _reject(
                block, no_pid, "no patient id (rows without one are not pooled)", "field-missing"
            )
        )
    values = _text(block[roles["value"]])
    units = _text(block[roles["unit"]]) if "unit" in roles else np.full(n, "", dtype=object)
    ok = ~unknown & ~no_time & ~no_pid
    empty = ok & (
        np.array([v.strip() == "" for v in values], dtype=bool) if n else np.zeros(0, bool)
    )
    if empty.any():
        rejects.append(_reject(block, empty, "no result value", "field-missing"))
    ok &= ~empty
    # check each result's value and unit, so unusable ones are rejected, not carried into a panel
    reasons = np.full(n, "", dtype=object)
    codes = np.full(n, "", dtype=object)
    for key in pd.unique(analytes[ok]):
        rows = ok & (analytes == key)
        idx = np.flatnonzero(rows)
        spec = ANALYTES[key]
        if spec.qualitative:
            # the one reading of qualitative words (a number is never read as negative: the
            # cut-off is not applied in batch)
            for i in idx:
                why = qualitative_code(values[i])
                if why is not None:
                    codes[i] = why[0]
                    reasons[i] = (
                        f"{key}: {values[i]!r}: {grammar.reason(why[0], QUALITATIVE_ACCEPTED)}"
                    )
            continue
        number, cmp, cell_units, parsed, _present = _parse_numbers(values[idx], decimal)
        cell_unit = cell_units.by_row()
        for j, i in enumerate(idx):
            if not parsed[j] or cmp[j] < 0 or number[j] < 0:
                got = grammar.diagnose(values[i].strip(), decimal)
                code, accepted = got if isinstance(got, tuple) else ("value-unparseable", None)
                reasons[i] = f"{key}: {values[i]!r}: {grammar.reason(code, accepted)}"
                codes[i] = code
                continue
            unit = (
                cell_unit.get(j, "")
                or units[i]
                or (spec.default_unit if not spec.unit_required else "")
            )
            if not unit:
                codes[i] = "unit-missing"
                reasons[i] = (
                    f"{key}: {values[i]!r}: {grammar.reason('unit-missing')} "
                    f"(it is never guessed: {unit_hint(key)})"
                )
                continue
            try:
                resolve_unit(key, unit)
            except B12LabsError as exc:
                reasons[i] = f"{key}: unit {unit!r}: {getattr(exc, 'reason', exc)}"
                codes[i] = exc.code
    bad = ok & (reasons != "")
    if bad.any():
        rejects.append(_reject(block, bad, reasons, codes))
    ok &= ~bad
    reject_frame = pd.concat(rejects) if rejects else _empty_rejects(block)
    if rejects:
        reject_frame = reject_frame.sort_values("b12labs_row", kind="stable")

    good = block.loc[ok].copy()
    good["__analyte"] = analytes[ok]
    good["__time"] = times[ok].to_numpy() if len(good) else pd.Series(dtype="datetime64[ns, UTC]")
    pid_codes, _ = pd.factorize(good[roles["patient_id"]].astype("string").fillna(""), sort=False)
    good["__pid"] = pid_codes
    time_ns = good["__time"].to_numpy(dtype="datetime64[ns]").astype(np.int64)
    order = np.lexsort((good["__row"].to_numpy(), time_ns, pid_codes))
    good = good.iloc[order]
    good["__episode"] = episode_ids(
        good["__pid"].to_numpy(), time_ns[order], int(window_days * 86400 * 1e9)
    )
    newest = good.groupby(["__episode", "__analyte"], sort=False).tail(1)
    grouped = good.groupby("__episode", sort=True)
    wide = pd.DataFrame(
        {
            roles["patient_id"]: grouped[roles["patient_id"]].first(),
            "episode_start": grouped["__time"].min().dt.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "episode_end": grouped["__time"].max().dt.strftime("%Y-%m-%dT%H:%M:%SZ"),
        }
    )
    # a fixed set of columns for every chunk (every analyte), so streamed output lines up
    cmap = ColumnMap()
    for key in ANALYTES:
        sub = newest[newest["__analyte"] == key].set_index("__episode")
        wide[key] = sub[roles["value"]].reindex(wide.index).fillna("").astype("string")
        a = AnalyteColumns(analyte=key, value=key)
        if "unit" in roles:
            wide[f"{key}_unit"] = sub[roles["unit"]].reindex(wide.index).fillna("").astype("string")
            a.unit_column = f"{key}_unit"
        if not ANALYTES[key].unit_required:
            a.default_unit = ANALYTES[key].default_unit
        for ref in ("ref_low", "ref_high"):
            if ref in roles:
                wide[f"{key}_{ref}"] = (
                    sub[roles[ref]].reindex(wide.index).fillna("").astype("string")
                )
                setattr(a, ref, f"{key}_{ref}")
        cmap.analytes[key] = a
    for field_, col in _context_columns(
        [c for c in block.columns if not c.startswith("__")], roles
    ).items():
        nonempty = good[good[col].astype("string").fillna("").str.strip() != ""]
        wide[field_] = (
            nonempty.groupby("__episode")[col]
            .last()
            .reindex(wide.index)
            .fillna("")
            .astype("string")
        )
        cmap.context[field_] = field_
    if "date_of_birth" in cmap.context:
        # the age is computed against the episode's newest result, written in the layout the
        # date of birth is read in
        end = grouped["__time"].max()
        wide["collected_at"] = (
            end.dt.strftime(date_format) if date_format else wide["episode_end"]
        ).astype("string")
        cmap.context["collected_at"] = "collected_at"
    # results over time (docs/clinical-logic.md §8): each episode's history is the patient's
    # earlier results (earlier episodes, and results its newest ones superseded)
    if history:
        serial, voided = serial_columns(good, newest, wide, roles, profile, decimal, date_format)
        for key, rows in voided.items():
            wide.loc[rows, key] = ""
        for key, values in serial.items():
            wide[SERIAL_PREFIX + key] = values
    wide = wide.reset_index(drop=True)
    scored = score_frame(
        wide,
        profile=profile,
        decimal=decimal,
        column_map=cmap,
        date_format=date_format,
        columns_out=columns_out,
    )
    if "collected_at" in scored.columns and "date_of_birth" in cmap.context:
        scored = scored.drop(columns=["collected_at"])
    scored = scored.drop(columns=[c for c in scored.columns if str(c).startswith(SERIAL_PREFIX)])
    return scored, reject_frame


def _empty_rejects(block: pd.DataFrame) -> pd.DataFrame:
    cols = [
        "b12labs_row",
        *[c for c in block.columns if c != "__row"],
        "b12labs_reject_reason",
        "b12labs_reject_code",
    ]
    return pd.DataFrame(columns=cols)


def score_long(
    df: pd.DataFrame,
    *,
    window_days: float = DEFAULT_WINDOW_DAYS,
    profile: str | Path | Profile = DEFAULT_PROFILE,
    decimal: str = ".",
    date_format: str | None = None,
    id_col: str | None = None,
    time_col: str | None = None,
    test_col: str | None = None,
    value_col: str | None = None,
    unit_col: str | None = None,
    columns_out: str | Sequence[str] | None = None,
    canonical: bool = True,
    history: bool = True,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Score a long export (one result per row); returns ``(episodes, rejects)``.

    ``episodes`` has one row per episode: ``patient_id``, ``episode_start``, ``episode_end``,
    the panel's result columns, then the ``b12labs_*`` and canonical value columns.
    ``rejects`` keeps every row that could not be used: ``b12labs_row`` (1-based input row),
    the original columns, ``b12labs_reject_reason`` and ``b12labs_reject_code`` (its error
    code, docs/errors.md). Collection times are ISO 8601 unless
    ``date_format`` (a ``strftime`` pattern, e.g. ``"%d/%m/%Y"``) says otherwise: day/month
    order is never guessed. ``columns_out`` / ``canonical`` choose the b12labs columns as in
    :func:`~b12labs.batch.score_frame`; the episode columns are always kept.
    With ``history`` (the default) a patient's earlier results are the history of each later
    episode (docs/clinical-logic.md §8: serial findings such as ``B12_SIGNIFICANT_FALL``,
    within 730 days); ``history=False`` scores each episode alone.
    """
    selected = output_columns(columns_out, canonical=canonical)  # before any work
    if window_days <= 0:
        raise InputFormatError("the episode window must be a positive number of days")
    roles = detect_long_columns(
        [str(c) for c in df.columns],
        {
            "patient_id": id_col,
            "collected_at": time_col,
            "test": test_col,
            "value": value_col,
            "unit": unit_col,
        },
    )
    scorer = LongScorer(
        roles=roles,
        profile=load_profile(profile),
        window_days=window_days,
        decimal=decimal,
        date_format=date_format,
        columns_out=selected,
        history=history,
    )
    scored, rejects = scorer.feed(df.astype("string"), last=True)
    return scored, rejects


def iter_long(
    chunks: Iterable[pd.DataFrame], scorer: LongScorer
) -> Iterator[tuple[pd.DataFrame, pd.DataFrame]]:
    """Stream a long export chunk by chunk through one :class:`LongScorer`."""
    for chunk in chunks:
        yield scorer.feed(chunk)
    yield scorer.finish()
