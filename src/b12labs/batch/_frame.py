"""``score_frame``: the rule catalogue over whole columns (numpy), never row by row.

Cells are parsed column-wise: clean numbers through ``pandas.to_numeric``, the rest (censored
values, values with units, bad cells) through one vectorised regular expression. Units are
resolved once per distinct spelling. The result of every rule for every row comes from the
same rule definitions ``interpret()`` uses, evaluated with the numpy namespace.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .. import _grammar as grammar
from .._comment import check_comment_limit, reason_name, resolve_comment_limit
from .._comment import comment as build_comment
from .._dates import day_numbers, parse_dates
from .._engine import BAND_KEYS, CMP_CODES, SEX_CODES, TREATMENT_CODES, VECTOR, RawInputs
from .._evaluate import evaluate, severity_rank
from .._serial import day_number
from .._version import __version__
from ..errors import B12LabsError, InputFormatError
from ..models import PatientContext, parse_bool
from ..profiles import DEFAULT_PROFILE, Profile, load_profile
from ..rules import CATALOGUE, ActionSpec, Rule
from ..units import ANALYTES, column_name, resolve_unit, unit_hint
from ..vocabulary import (
    MEDICATION_CLASSES,
    NEUROLOGICAL_SYMPTOMS,
    match_medication,
    normalise_condition,
    normalise_symptom,
)
from ._columns import AnalyteColumns, ColumnMap, detect_columns

__all__ = ["OUTPUT_COLUMNS", "output_columns", "prepare", "score_frame", "score_prepared"]

#: The b12labs output columns, in order, before the canonical value columns.
OUTPUT_COLUMNS = (
    "b12labs_status",
    "b12labs_codes",
    "b12labs_max_severity",
    "b12labs_actions",
    "b12labs_comment",
    "b12labs_error",
    "b12labs_error_code",
    "b12labs_profile",
    "b12labs_version",
)
VALUE_COLUMNS = tuple(column_name(k) for k in ANALYTES)


def output_columns(
    columns_out: str | Sequence[str] | None = None, *, canonical: bool = True
) -> tuple[str, ...]:
    """The b12labs output columns a run writes, in order (``columns_out`` / ``--columns``).

    ``None`` is the complete output: :data:`OUTPUT_COLUMNS`, then :data:`VALUE_COLUMNS` unless
    ``canonical`` is false. Otherwise a comma-separated string or a sequence of names, kept in
    the order given (a repeated name once): full names (``b12labs_status``, ``b12_pmol_l``) or
    the short names of the ``b12labs_*`` columns (``status``). Raises a coded
    :class:`~b12labs.errors.InputFormatError` (``option-invalid``) for an unknown name, an
    empty selection, or a canonical value column named while ``canonical`` is false.
    """
    if columns_out is None:
        return OUTPUT_COLUMNS + (VALUE_COLUMNS if canonical else ())
    names = columns_out.split(",") if isinstance(columns_out, str) else list(columns_out)
    chosen: dict[str, None] = {}
    for raw in names:
        name = str(raw).strip()
        if not name:  # "status," or "status,,codes"
            continue
        full = name if name in _ACCEPTED else f"b12labs_{name}"
        if full not in _ACCEPTED:
            short = ", ".join(c.removeprefix("b12labs_") for c in OUTPUT_COLUMNS)
            raise InputFormatError(
                f"unknown output column {name!r} in --columns/columns_out; accepted: {short} "
                f"(or their full b12labs_* names), {', '.join(VALUE_COLUMNS)}",
                code="option-invalid",
            )
        if not canonical and full in VALUE_COLUMNS:
            raise InputFormatError(
                f"--columns/columns_out names the canonical value column {full!r} but "
                "--no-canonical (canonical=False) drops them; choose one",
                code="option-invalid",
            )
        chosen.setdefault(full, None)
    if not chosen:
        raise InputFormatError(
            "--columns/columns_out selects no column; name at least one (e.g. status)",
            code="option-invalid",
        )
    return tuple(chosen)


_ACCEPTED = frozenset(OUTPUT_COLUMNS + VALUE_COLUMNS)

# the vectorised kernels read the one input grammar (b12labs._grammar): its cell pattern,
# comparators, qualitative words and missing markers; a cell they cannot read is explained by
# the grammar's own scalar reading (grammar.diagnose), so both paths give one code and wording
_CMP = {text: CMP_CODES[cmp] for text, cmp in grammar.COMPARATORS.items()}
_CELL = grammar.CELL_PATTERN
_SEVERITY_NAMES = np.array(["", "info", "warning", "critical"], dtype=object)
_STATUS_NAMES = np.array(
    ["not_assessed", "deficient", "uninterpretable", "probable", "indeterminate", "unlikely"],
    dtype=object,
)
_QUAL_POS = [w for w, q in grammar.QUALITATIVE_WORDS.items() if q == "positive"]
_QUAL_NEG = [w for w, q in grammar.QUALITATIVE_WORDS.items() if q == "negative"]
_QUAL_EQUIVOCAL = [w for w, q in grammar.QUALITATIVE_WORDS.items() if q == "equivocal"]


class _Errors:
    """Per-row error messages and their codes, built only for the rows that have one."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []

    def add(self, mask: np.ndarray, message: Any, code: Any) -> None:
        """``message``: a string, or a function of the row indices giving one string each;
        ``code``: an error code (a key of ``ERROR_CODES``), or an array of one per row."""
        if not mask.any():
            return
        idx = np.flatnonzero(mask)
        if isinstance(message, np.ndarray):
            msgs = message[idx]
        elif callable(message):
            msgs = np.asarray(message(idx), dtype=object)
        else:
            msgs = np.full(len(idx), message, dtype=object)
        codes = code[idx] if isinstance(code, np.ndarray) else np.full(len(idx), code, dtype=object)
        self.parts.append((idx, msgs, codes))

    def cell(self, mask: np.ndarray, column: str, cells: Any, reason: Any, code: Any) -> None:
        """``column='cell text': reason`` for the masked rows (``reason`` may be per row)."""
        if isinstance(reason, np.ndarray):
            self.add(
                mask,
                lambda idx: [
                    f"{column}={t!r}: {r}"
                    for t, r in zip(_take(cells, idx), reason[idx], strict=True)
                ],
                code,
            )
        else:
            self.add(
                mask, lambda idx: [f"{column}={t!r}: {reason}" for t in _take(cells, idx)], code
            )

    def coded(self, mask: np.ndarray, column: str, cells: Any, code: str) -> None:
        """The rows of ``mask`` fail with ``code``, worded as the registry words it."""
        self.cell(mask, column, cells, grammar.reason(code), code)

    def columns(self) -> tuple[np.ndarray, np.ndarray]:
        """(messages joined by '; ', codes joined by ';' without repeats) per row."""
        out = np.full(self.n, "", dtype=object)
        codes = np.full(self.n, "", dtype=object)
        for idx, msgs, cs in self.parts:
            current = out[idx]
            out[idx] = np.where(current == "", msgs, current + "; " + msgs)
            now = codes[idx]
            repeat = np.array([c in n.split(";") for n, c in zip(now, cs, strict=True)], dtype=bool)
            codes[idx] = np.where(now == "", cs, np.where(repeat, now, now + ";" + cs))
        return out, codes

    def column(self) -> np.ndarray:
        return self.columns()[0]


def _nonblank(text: np.ndarray) -> np.ndarray:
    """Cells with any non-space content (vectorised)."""
    if not len(text):
        return np.zeros(0, dtype=bool)
    return pd.Series(text, dtype="string").str.strip().ne("").to_numpy(dtype=bool, na_value=False)


_MISSING = grammar.MISSING_MARKERS


def _cells(series: pd.Series) -> pd.Series:
    """Cells as a stripped string Series; cells that only say 'missing' (NA, N/A…) are ''."""
    s = series if isinstance(series.dtype, pd.StringDtype) else series.astype("string")
    s = s.fillna("").str.strip()
    marked = s.str.lower().isin(_MISSING[1:])
    if marked.any():
        s = s.mask(marked, "")
    return s


def _text(series: pd.Series) -> np.ndarray:
    """Cell text as an object array (for the few places that loop over cells)."""
    return _cells(series).to_numpy(dtype=object)


def _take(cells: pd.Series | np.ndarray, idx: np.ndarray) -> list[Any]:
    if isinstance(cells, pd.Series):
        return cells.iloc[idx].tolist()
    return [cells[i] for i in idx]


def _to_float(cells: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """(clean numbers as floats with NaN elsewhere, cells with any text) (pyarrow compute).

    A clean number is ASCII digits with at most one decimal point (``250``, ``0.34``,
    ``.5``): one vectorised cast. Anything else (signs, exponents, units, comparators,
    padding) is left NaN for the regular expression of :func:`_parse_numbers`.
    """
    try:
        import pyarrow as pa
        import pyarrow.compute as pc
    except ImportError:  # pragma: no cover - pyarrow is optional
        number = pd.to_numeric(cells, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
        filled = cells.notna().to_numpy(dtype=bool) & cells.ne("").to_numpy(
            dtype=bool, na_value=False
        )
        return np.where(np.isfinite(number), number, np.nan), filled
    arr = pa.array(cells, type=pa.string(), from_pandas=True)
    clean = pc.ascii_is_decimal(pc.replace_substring(arr, ".", "", max_replacements=1))
    values = pc.cast(pc.if_else(clean, arr, pa.scalar(None, pa.string())), pa.float64())
    number = np.asarray(values.to_numpy(zero_copy_only=False), dtype=float)
    filled = pc.fill_null(pc.greater(pc.binary_length(arr), 0), False)
    return number, np.asarray(filled.to_numpy(zero_copy_only=False), dtype=bool)


@dataclass
class _Parsed:
    value: np.ndarray  # canonical, NaN when missing/unusable/implausible
    cmp: np.ndarray
    ref_low: np.ndarray
    ref_high: np.ndarray
    implausible: np.ndarray
    band: dict[str, np.ndarray]


@dataclass(frozen=True)
class _CellUnits:
    """Units written in the cells themselves (``250 pg/mL``): the rows that have one, in
    order, and the unit as written. Most cells carry none, so no per-row array is built."""

    rows: np.ndarray  # int64 row indices, ascending
    text: np.ndarray  # object array: the unit text of each of those rows

    def mask(self, n: int) -> np.ndarray:
        out = np.zeros(n, dtype=bool)
        out[self.rows] = True
        return out

    def by_row(self) -> dict[int, str]:
        return dict(zip(self.rows.tolist(), self.text.tolist(), strict=True))


def _parse_numbers(
    cells: pd.Series | np.ndarray, decimal: str
) -> tuple[np.ndarray, np.ndarray, _CellUnits, np.ndarray, np.ndarray]:
    """(number, comparator code, units in cells, ok, present) for every cell; vectorised.

    Clean numbers go through one vectorised cast; only the rest (censored values, values with
    units, padded or bad cells, 'NA' markers) are stripped and read with the regular
    expression. A comma is a decimal point only with ``decimal=","``. ``present`` is false for
    blank and missing cells and cells that only say 'missing'.
    """
    if not isinstance(cells, pd.Series):
        cells = pd.Series(cells, dtype="string")
    elif not isinstance(cells.dtype, pd.StringDtype):
        cells = cells.astype("string")
    # missing cells stay NA (no fillna copy): they read as NaN and count as not present
    n = len(cells)
    candidate = cells.str.replace(",", ".", regex=False) if decimal == "," else cells
    if n:
        number, filled = _to_float(candidate)
    else:
        number, filled = np.zeros(0), np.zeros(0, dtype=bool)
    # inf (a 400-digit cell) and absurd magnitudes are read by the regular expression below,
    # which leaves them unreadable for the grammar to explain (value-too-large)
    number = np.where(np.abs(number) <= grammar.MAX_MAGNITUDE, number, np.nan)
    if n:
        # a clean number longer than the grammar allows ('0' x 25) is refused there too
        too_long = cells.str.len().to_numpy(dtype=float, na_value=0.0) > grammar.MAX_NUMBER_CHARS
        number = np.where(too_long, np.nan, number)
    cmp = np.zeros(n, dtype=np.int64)
    units = _CellUnits(np.zeros(0, dtype=np.int64), np.zeros(0, dtype=object))
    ok = ~np.isnan(number)
    present = ok.copy()
    rest = ~ok & filled
    if rest.any():
        idx = np.flatnonzero(rest)
        sub = cells.iloc[idx].str.strip()
        blank = (sub.eq("") | sub.str.lower().isin(_MISSING[1:])).to_numpy(dtype=bool)
        idx, sub = idx[~blank], sub[~blank]
        present[idx] = True
        parts = sub.str.extract(_CELL)
        num_text = parts["num"]
        if decimal == ",":
            num_text = num_text.str.replace(",", ".", regex=False)
        else:
            num_text = num_text.where(~num_text.fillna("").str.contains(",", regex=False))
        long_ = num_text.str.len().to_numpy(dtype=float, na_value=0.0) > grammar.MAX_NUMBER_CHARS
        num_text = num_text.where(~long_)
        nums = pd.to_numeric(num_text, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
        nums = np.where(np.abs(nums) <= grammar.MAX_MAGNITUDE, nums, np.nan)
        cmps = parts["cmp"].fillna("").to_numpy(dtype=object)
        cmp_codes = np.array([_CMP.get(c, -1) if c else 0 for c in cmps], dtype=np.int64)
        good = ~np.isnan(nums) & (cmp_codes >= 0)
        number[idx[good]] = nums[good]
        cmp[idx] = np.where(cmp_codes >= 0, cmp_codes, -1)
        unit_text = parts["unit"].fillna("").to_numpy(dtype=object)
        has_unit = unit_text != ""
        units = _CellUnits(idx[has_unit], unit_text[has_unit])
        ok[idx[good]] = True
    return number, cmp, units, ok, present


def _explain(bad: np.ndarray, cells: Any, decimal: str) -> tuple[np.ndarray, np.ndarray]:
    """(reason, code) per row of the cells the kernels could not read, from the grammar's
    scalar reading (only these rare cells are looked at one by one, once per distinct text)."""

    def why(text: str) -> tuple[str, str]:
        got = grammar.diagnose(text, decimal)
        code, accepted = got if isinstance(got, tuple) else ("value-unparseable", None)
        return grammar.reason(code, accepted), code

    return _explain_each(bad, cells, why)


def _canonical(number: np.ndarray, factor: np.ndarray) -> np.ndarray:
    """``number x factor``, rounded as the scalar path rounds (only when a factor applies)."""
    out: np.ndarray = number * factor
    convert = factor != 1.0
    if convert.any():
        out[convert] = _round12(out[convert])
    return out


def _parse_analyte(
    df: pd.DataFrame, a: AnalyteColumns, profile: Profile, decimal: str, errors: _Errors
) -> _Parsed:
    n = len(df)
    key = a.analyte
    spec = ANALYTES[key]
    cells = df[a.value]
    number, cmp, cell_unit, ok, present = _parse_numbers(cells, decimal)

    bad = present & ~ok
    if bad.any():
        reasons, codes = _explain(bad, cells, decimal)
        errors.cell(bad, a.value, cells, reasons, codes)
    cmp = np.where(cmp < 0, 0, cmp)
    number = np.where(ok, number, np.nan)
    neg = ok & (number < 0)
    if neg.any():
        errors.coded(neg, a.value, cells, "value-negative")
        number = np.where(neg, np.nan, number)
        ok &= ~neg

    # The unit of each cell, as an index into `names`: the cell's own unit, else the unit
    # column, else the header / units= / the analyte's single common unit.
    names: list[str] = [a.fixed_unit or ""]
    unit_idx = np.zeros(n, dtype=np.int64)
    col_cells: pd.Series | None = None
    if a.unit_column is not None:
        col_cells = df[a.unit_column]
        codes, uniques = pd.factorize(col_cells, sort=False, use_na_sentinel=True)
        offset = len(names)
        cleaned = [str(u).strip() for u in uniques]
        names.extend(cleaned)
        filled_u = np.array(
            [bool(u) and u.lower() not in _MISSING for u in cleaned] + [False], dtype=bool
        )
        filled = filled_u[codes]  # code -1 (missing) picks the final False
        unit_idx = np.where(filled, codes + offset, unit_idx)
        if a.header_unit:
            # a unit column that contradicts the unit in the header: never pick one silently
            column_header_code = resolve_unit(key, a.header_unit).code
            against = [
                k + offset
                for k, u in enumerate(cleaned)
                if filled_u[k] and not _same_code(key, u, column_header_code)
            ]
            clash = np.isin(unit_idx, against) & present
            if clash.any():
                errors.cell(
                    clash,
                    a.value,
                    cells,
                    f"{grammar.reason('unit-conflict')}: {a.unit_column} contradicts the "
                    f"header unit {a.header_unit}",
                    "unit-conflict",
                )
                ok &= ~clash
    if len(cell_unit.rows):
        header_code = resolve_unit(key, a.header_unit).code if a.header_unit else None
        clash = np.zeros(n, dtype=bool)
        clash_reason = np.full(n, "", dtype=object)
        position = {u: i for i, u in enumerate(names)}
        for i, u in zip(cell_unit.rows.tolist(), cell_unit.text.tolist(), strict=True):
            if col_cells is not None and unit_idx[i] != 0 and ok[i]:
                other = names[unit_idx[i]]
                if other and not _same_unit(key, u, other):
                    clash[i] = True
                    clash_reason[i] = (
                        f"{grammar.reason('unit-conflict')}: unit contradicts {a.unit_column}"
                    )
            if header_code is not None and ok[i]:
                try:
                    differs = resolve_unit(key, u).code != header_code
                except B12LabsError:
                    differs = True
                if differs:
                    clash[i] = True
                    clash_reason[i] = (
                        f"{grammar.reason('unit-conflict')}: unit contradicts the header unit "
                        f"{a.header_unit}"
                    )
            if u not in position:
                position[u] = len(names)
                names.append(u)
            unit_idx[i] = position[u]
        if clash.any():
            errors.cell(clash, a.value, cells, clash_reason, "unit-conflict")
            ok &= ~clash

    factor = np.full(n, np.nan)
    factor_by_name = np.full(len(names), np.nan)
    if not spec.qualitative:
        usable = ok & present
        missing_unit = usable & np.array([not u for u in names], dtype=bool)[unit_idx]
        if missing_unit.any():
            errors.cell(
                missing_unit,
                a.value,
                cells,
                f"{grammar.reason('unit-missing')} (it is never guessed: {unit_hint(key)}; "
                f"pass --unit {key}=UNIT)",
                "unit-missing",
            )
            ok &= ~missing_unit
        for k in _used_codes(unit_idx[ok & present], len(names)):
            u = names[k]
            try:
                factor_by_name[k] = resolve_unit(key, u).factor
            except B12LabsError as exc:
                rows = ok & present & (unit_idx == k)
                errors.cell(
                    rows, a.value, cells, f"unit {u!r}: {getattr(exc, 'reason', exc)}", exc.code
                )
                ok &= ~rows
        factor = factor_by_name[unit_idx]
    value = np.where(ok & present, _canonical(number, factor), np.nan)

    ref_low = np.full(n, np.nan)
    ref_high = np.full(n, np.nan)
    for col, target in ((a.ref_low, ref_low), (a.ref_high, ref_high)):
        if col is None:
            continue
        rcells = df[col]
        rnum, rcmp, runit, rok, rpresent = _parse_numbers(rcells, decimal)
        # a reference limit is a plain non-negative number, as in interpret()
        rok = rok & (rcmp == 0) & ~runit.mask(n) & ~(rnum < 0)
        errors.cell(
            rpresent & ~rok, col, rcells, grammar.reason("reference-invalid"), "reference-invalid"
        )
        target[:] = np.where(rok & ~np.isnan(factor), _canonical(rnum, factor), np.nan)
    inverted = ref_low > ref_high
    if inverted.any():
        errors.coded(inverted, a.value, cells, "reference-inverted")
        value = np.where(inverted, np.nan, value)
        ref_low = np.where(inverted, np.nan, ref_low)
        ref_high = np.where(inverted, np.nan, ref_high)

    implausible = np.zeros(n, dtype=bool)
    if spec.plausible is not None:
        lo, hi = spec.plausible
        implausible = ~np.isnan(value) & ((value < lo) | (value > hi))
        value = np.where(implausible, np.nan, value)

    band: dict[str, np.ndarray] = {}
    used = _used_codes(unit_idx[~np.isnan(value)], len(names))
    for tkey in BAND_KEYS.get(key, ()):
        by_name = np.full(len(names), profile[tkey])
        for k in used:
            by_name[k] = profile.band(tkey, names[k])[0]
        band[tkey] = by_name[unit_idx]
    return _Parsed(
        value=value, cmp=cmp, ref_low=ref_low, ref_high=ref_high, implausible=implausible, band=band
    )


def _used_codes(codes: np.ndarray, size: int) -> list[int]:
    """The distinct values of ``codes`` (small integers below ``size``), in O(n)."""
    return np.flatnonzero(np.bincount(codes, minlength=size)).tolist()


def _same_code(key: str, unit: str, code: str) -> bool:
    try:
        return resolve_unit(key, unit).code == code
    except B12LabsError:
        return False


def _same_unit(key: str, a: str, b: str) -> bool:
    try:
        return resolve_unit(key, a).code == resolve_unit(key, b).code
    except B12LabsError:
        return False


def _round12(x: np.ndarray) -> np.ndarray:
    """Round to 12 significant digits (as scalar normalisation does), vectorised."""
    with np.errstate(divide="ignore", invalid="ignore"):
        mag = np.floor(np.log10(np.abs(x)))
    out = x.copy()
    finite = np.isfinite(mag)
    if finite.any():
        digits = (11 - mag[finite]).astype(np.int64)
        vals = x[finite]
        res = np.empty_like(vals)
        with np.errstate(all="ignore"):  # subnormal values: rounding far past 300 digits
            for d in np.unique(digits):
                sel = digits == d
                res[sel] = np.round(vals[sel], int(d))
        out[finite] = res
    return out


def _explain_each(bad: np.ndarray, cells: Any, why: Any) -> tuple[np.ndarray, np.ndarray]:
    """(reason, code) per bad row: ``why(text)`` gives them, once per distinct text."""
    n = len(bad)
    reasons = np.full(n, "", dtype=object)
    codes = np.full(n, "", dtype=object)
    idx = np.flatnonzero(bad)
    seen: dict[str, tuple[str, str]] = {}
    for i, text in zip(idx.tolist(), _take(cells, idx), strict=True):
        key = str(text).strip()
        found = seen.get(key)
        if found is None:
            found = seen[key] = why(key)
        reasons[i], codes[i] = found
    return reasons, codes


def _qualitative_why(text: str) -> tuple[str, str]:
    try:
        grammar.read_qualitative(text)
    except B12LabsError as exc:
        accepted = getattr(exc, "accepted", None)
        return grammar.reason(exc.code, accepted), exc.code
    return grammar.reason("qualitative-unknown"), "qualitative-unknown"  # pragma: no cover


def _qualitative(
    df: pd.DataFrame, a: AnalyteColumns, errors: _Errors
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Positive, negative and equivocal cells of a qualitative column (the IF antibody).

    An equivocal word is a measured result that is neither positive nor negative (§2).
    """
    text = _text(df[a.value])
    low = pd.Series(text, dtype="string").str.strip().str.lower().to_numpy(dtype=object)
    pos = np.isin(low, _QUAL_POS)
    neg = np.isin(low, _QUAL_NEG)
    equivocal = np.isin(low, _QUAL_EQUIVOCAL)
    if a.ref_high is not None:
        # a number with the laboratory's cut-off: positive above it, negative at or below it;
        # a censored number decides only when its whole interval lies on one side
        # (interpret() reads it the same way: models._qualitative_from_number)
        words = pos | neg | equivocal
        number, cmp, _units, ok, _ = _parse_numbers(pd.Series(text, dtype="string"), ".")
        cut, cut_bad, cut_reasons, cut_codes = _plain_numbers(df[a.ref_high], a.ref_high)
        errors.cell(cut_bad, a.ref_high, df[a.ref_high], cut_reasons, cut_codes)
        with np.errstate(invalid="ignore"):
            above = np.where(
                cmp == CMP_CODES[">"],
                number >= cut,
                (number > cut) & ((cmp == 0) | (cmp == CMP_CODES[">="])),
            )
            below = (number <= cut) & np.isin(cmp, [0, CMP_CODES["<"], CMP_CODES["<="]])
        usable = ok & ~words & ~np.isnan(cut)
        both = usable & (above == below)
        if both.any():
            errors.cell(
                both,
                a.value,
                text,
                grammar.reason("value-censored-invalid")
                + " (it lies on both sides of the laboratory's cut-off)",
                "value-censored-invalid",
            )
        pos = pos | (usable & above & ~below)
        neg = neg | (usable & below & ~above)
        decided = usable  # decided, or explained as censored on both sides
    else:
        decided = np.zeros(len(low), dtype=bool)
    # a number is never read as negative: without the laboratory's cut-off it cannot be read
    # (the grammar says why, for the rare bad cells)
    bad = (low != "") & ~pos & ~neg & ~equivocal & ~decided
    if bad.any():
        reasons, codes = _explain_each(bad, text, _qualitative_why)
        errors.cell(bad, a.value, text, reasons, codes)
    return pos, neg, equivocal


def _plain_numbers(
    series: pd.Series, field: str, upper: float | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """A plain, non-negative number per cell (no comparator, no unit): (values, bad cells,
    reason and code per bad cell, from the grammar's reading of a context number)."""
    number, cmp, units, ok, present = _parse_numbers(series, ".")
    good = ok & (cmp == 0) & ~units.mask(len(number)) & (number >= 0)
    if upper is not None:
        good &= number <= upper
    bad = present & ~good

    def why(text: str) -> tuple[str, str]:
        try:
            grammar.read_plain_number(text, field=field, upper=upper)
        except B12LabsError as exc:
            return grammar.reason(exc.code, getattr(exc, "accepted", None)), exc.code
        return grammar.reason("value-unparseable"), "value-unparseable"  # pragma: no cover

    reasons, codes = _explain_each(bad, series, why)
    return np.where(good, number, np.nan), bad, reasons, codes


def _why(exc: Exception) -> str:
    """An error's wording in a batch cell: its code's title and what is accepted."""
    code = getattr(exc, "code", "context-value-invalid")
    return grammar.reason(code, getattr(exc, "accepted", None))


def _map_unique(series: pd.Series, fn: Any) -> tuple[list[Any], np.ndarray]:
    """Apply ``fn`` once per distinct cell: (results per distinct value, index per row)."""
    codes, uniques = pd.factorize(series.astype("string").fillna(""), sort=False)
    return [fn(u) for u in uniques], codes


def _context(
    df: pd.DataFrame,
    cmap: ColumnMap,
    errors: _Errors,
    date_format: str | None = None,
    report_collected: bool = False,
) -> dict[str, Any]:
    n = len(df)
    ctx: dict[str, Any] = {}
    c = cmap.context

    def bad_cells(col: str, results: list[Any], codes: np.ndarray, reason_of: Any) -> np.ndarray:
        bad_u = np.array([isinstance(r, Exception) for r in results], dtype=bool)
        mask = bad_u[codes] if len(results) else np.zeros(n, dtype=bool)
        if mask.any():
            msgs = np.array(
                [f"{col}: {reason_of(r)}" if isinstance(r, Exception) else "" for r in results],
                dtype=object,
            )
            error_codes = np.array(
                [getattr(r, "code", "context-value-invalid") for r in results], dtype=object
            )
            errors.add(mask, msgs[codes], error_codes[codes])
        return mask

    def safe(fn: Any) -> Any:
        def inner(v: str) -> Any:
            try:
                return fn(v)
            except (B12LabsError, ValueError) as exc:
                return exc

        return inner

    def coded(col: str, parse: Any, codes_of: Mapping[str, int]) -> np.ndarray:
        """A vocabulary column as integer codes (0 for unknown/blank); bad cells reported."""
        results, codes = _map_unique(df[col], safe(parse))
        if not len(results):
            return np.zeros(n, dtype=np.int64)
        bad = bad_cells(col, results, codes, _why)
        code_of = np.array(
            [0 if isinstance(r, Exception) else codes_of.get(str(r), 0) for r in results],
            dtype=np.int64,
        )
        return np.where(bad, 0, code_of[codes])

    age = np.full(n, np.nan)
    if "age" in c:
        age, bad, reasons, codes = _plain_numbers(df[c["age"]], "age", upper=130.0)
        errors.cell(bad, c["age"], df[c["age"]], reasons, codes)
    elif "date_of_birth" in c and "collected_at" in c:
        # day/month order is never guessed (b12labs._dates); every unusable date says why
        dob, dob_why = parse_dates(df[c["date_of_birth"]], date_format)
        when, when_why = parse_dates(df[c["collected_at"]], date_format)
        for col, why in ((c["date_of_birth"], dob_why), (c["collected_at"], when_why)):
            bad = why != ""
            future = why == grammar.reason("date-future")
            errors.cell(bad, col, df[col], why, np.where(future, "date-future", "date-invalid"))
        years = ((when - dob).dt.days / 365.2425).to_numpy(dtype=float, na_value=np.nan)
        after = years < 0
        errors.cell(
            after,
            c["date_of_birth"],
            df[c["date_of_birth"]],
            grammar.reason("date-order"),
            "date-order",
        )
        age = np.where(years >= 0, np.floor(years), np.nan)
    elif report_collected and "collected_at" in c:
        # results over time: an unusable collection date leaves the row without history
        _, why = parse_dates(df[c["collected_at"]], date_format)
        future = why == grammar.reason("date-future")
        col = c["collected_at"]
        errors.cell(why != "", col, df[col], why, np.where(future, "date-future", "date-invalid"))
    ctx["age"] = age

    sex = np.zeros(n, dtype=np.int64)
    if "sex" in c:
        sex = coded(
            c["sex"],
            lambda v: PatientContext.parse({"sex": v or None}).sex,
            SEX_CODES,
        )
    ctx["sex"] = sex

    for name in ("pregnant", "nitrous_oxide_exposure", "breastfeeding"):
        flag = np.zeros(n, dtype=bool)
        if name in c:
            results, codes = _map_unique(
                df[c[name]], safe(lambda v, f=name: parse_bool(v or None, f))
            )
            bad_cells(
                c[name],
                results,
                codes,
                _why,
            )
            flag = (
                np.array([r is True for r in results], dtype=bool)[codes] if len(results) else flag
            )
        ctx[name] = flag

    treatment = np.zeros(n, dtype=np.int64)
    if "b12_treatment" in c:
        treatment = coded(
            c["b12_treatment"],
            lambda v: PatientContext.parse({"b12_treatment": v or None}).b12_treatment,
            TREATMENT_CODES,
        )
    ctx["treatment"] = treatment

    days = np.full(n, np.nan)
    if "days_since_b12_injection" in c:
        col = c["days_since_b12_injection"]
        days, bad, reasons, codes = _plain_numbers(df[col], "days_since_b12_injection")
        errors.cell(bad, col, df[col], reasons, codes)
    ctx["days"] = days

    weeks = np.full(n, np.nan)
    if "gestational_weeks" in c:
        col = c["gestational_weeks"]
        weeks, bad, reasons, codes = _plain_numbers(df[col], "gestational_weeks", upper=45.0)
        errors.cell(bad, col, df[col], reasons, codes)
    ctx["gestational_weeks"] = weeks

    started = np.zeros(n, dtype=bool)
    if "b12_treatment_started" in c:
        col = c["b12_treatment_started"]
        start, why = parse_dates(df[col], date_format)
        bad = why != ""
        future = why == grammar.reason("date-future")
        errors.cell(bad, col, df[col], why, np.where(future, "date-future", "date-invalid"))
        started = start.notna().to_numpy(dtype=bool)
        if "collected_at" in c:
            when, _ = parse_dates(df[c["collected_at"]], date_format)
            after = (start.dt.normalize() > when.dt.normalize()).fillna(False).to_numpy(dtype=bool)
            errors.cell(
                after,
                col,
                df[col],
                grammar.reason("date-treatment-order"),
                "date-treatment-order",
            )
            started = started & ~after
        # results over time (docs/clinical-logic.md §8): the day numbers REVIEW_DUE and the
        # myoclonus note compare, as interpret() computes them (b12labs._serial.day_number)
        start_days = day_numbers(start)
        start_days[~started] = np.nan
        if "collected_at" in c:
            now_days = day_numbers(parse_dates(df[c["collected_at"]], date_format)[0])
            now_days[np.isnan(now_days)] = day_number(dt.datetime.now(dt.UTC))
        else:
            now_days = np.full(n, day_number(dt.datetime.now(dt.UTC)))
        ctx["serial"] = {"now": now_days, "start": start_days}
    ctx["treatment_started"] = started

    ctx["conditions"] = {}
    ctx["symptoms"] = {}
    ctx["medications"] = {}
    ctx["neurological"] = np.zeros(n, dtype=bool)
    ctx["any_symptom"] = np.zeros(n, dtype=bool)
    for field_, normaliser, target in (
        ("conditions", normalise_condition, "conditions"),
        ("symptoms", normalise_symptom, "symptoms"),
    ):
        if field_ not in c:
            continue
        col = c[field_]

        def parse_terms(v: str, fn: Any = normaliser) -> Any:
            terms = [t.strip() for t in v.replace("|", ";").split(";") if t.strip()]
            good, unknown = [], []
            for t in terms:
                try:
                    good.append(fn(t))
                except B12LabsError:
                    unknown.append(t)
            return frozenset(good), unknown

        results, codes = _map_unique(df[col], parse_terms)
        if len(results):
            unknown_msgs = np.array(
                [
                    f"{col}: unknown term(s) {', '.join(repr(u) for u in r[1])} (ignored; the accepted terms are listed in docs/clinical-logic.md §3)"
                    if r[1]
                    else ""
                    for r in results
                ],
                dtype=object,
            )
            has_unknown = np.array([bool(r[1]) for r in results], dtype=bool)[codes]
            errors.add(has_unknown, unknown_msgs[codes], "vocabulary-unknown")
            terms_all = sorted({t for r in results for t in r[0]})
            for term in terms_all:
                ctx[target][term] = np.array([term in r[0] for r in results], dtype=bool)[codes]
            if field_ == "symptoms":
                ctx["neurological"] = np.array(
                    [any(t in NEUROLOGICAL_SYMPTOMS for t in r[0]) for r in results], dtype=bool
                )[codes]
                ctx["any_symptom"] = np.array([bool(r[0]) for r in results], dtype=bool)[codes]
    if "medications" in c:

        def classes(v: str) -> frozenset[str]:
            found: set[str] = set()
            for entry in v.replace("|", ";").split(";"):
                if entry.strip():
                    found |= match_medication(entry.strip()).classes
            return frozenset(found)

        results, codes = _map_unique(df[c["medications"]], classes)
        for cls in MEDICATION_CLASSES:
            flags = np.array([cls in r for r in results], dtype=bool)
            if flags.any():
                ctx["medications"][cls] = flags[codes]
    return ctx


@dataclass
class Prepared:
    """A chunk turned into engine inputs (kept for the equality and dry-run tools)."""

    raw: RawInputs
    values: dict[str, np.ndarray]
    errors: np.ndarray
    n: int
    #: the codes of each row's errors (``;``-separated, '' when none), next to ``errors``
    error_codes: np.ndarray | None = None


def _parse_columns(
    df: pd.DataFrame,
    cmap: ColumnMap,
    keys: list[str],
    profile: Profile,
    decimal: str,
    threads: int | None,
) -> dict[str, tuple[_Parsed, _Errors]]:
    """Parse each analyte column, in parallel threads (Arrow and numpy release the GIL).

    Each column collects its own errors; the caller adds them in column order, so the
    output never depends on the number of threads.
    """
    n = len(df)

    def one(key: str) -> tuple[_Parsed, _Errors]:
        errs = _Errors(n)
        return _parse_analyte(df, cmap.analytes[key], profile, decimal, errs), errs

    workers = min(len(keys), default_threads() if threads is None else threads)
    if workers <= 1 or n < _PARALLEL_ROWS:
        return {k: one(k) for k in keys}
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="b12labs-parse") as pool:
        return dict(zip(keys, pool.map(one, keys), strict=True))


_PARALLEL_ROWS = 20_000  # below this, starting threads costs more than it saves


def default_threads() -> int:
    """Threads ``score_frame`` parses columns with by default: one per core, at most 8."""
    return max(1, min(8, os.cpu_count() or 1))


def prepare(
    df: pd.DataFrame,
    cmap: ColumnMap,
    profile: Profile,
    decimal: str = ".",
    threads: int | None = None,
    date_format: str | None = None,
    history: bool = False,
) -> Prepared:
    """Parse and normalise a frame's cells into the engine's column inputs (``history``: an
    unusable collection date is an error of its row, which then has no history)."""
    n = len(df)
    errors = _Errors(n)
    values: dict[str, np.ndarray] = {}
    cmp: dict[str, np.ndarray] = {}
    ref_low: dict[str, np.ndarray] = {}
    ref_high: dict[str, np.ndarray] = {}
    band: dict[str, np.ndarray] = {}
    implausible: dict[str, np.ndarray] = {}
    if_pos = np.zeros(n, dtype=bool)
    if_neg = np.zeros(n, dtype=bool)
    if_eq = np.zeros(n, dtype=bool)
    numeric = [k for k in cmap.analytes if not ANALYTES[k].qualitative]
    parsed_by_key = _parse_columns(df, cmap, numeric, profile, decimal, threads)
    for key, a in cmap.analytes.items():
        if ANALYTES[key].qualitative:
            if_pos, if_neg, if_eq = _qualitative(df, a, errors)
            # an equivocal cell has no canonical value (NaN), as interpret() leaves it out
            values[key] = np.where(if_pos, 1.0, np.where(if_neg, 0.0, np.nan))
            continue
        parsed, column_errors = parsed_by_key[key]
        errors.parts.extend(column_errors.parts)  # in column order, as if parsed in turn
        values[key] = parsed.value
        cmp[key] = parsed.cmp
        ref_low[key] = parsed.ref_low
        ref_high[key] = parsed.ref_high
        band.update(parsed.band)
        if parsed.implausible.any():
            implausible[key] = parsed.implausible
            errors.cell(
                parsed.implausible,
                a.value,
                df[a.value],
                grammar.reason("value-implausible") + " (check the value and its unit)",
                "value-implausible",
            )
    ctx = _context(df, cmap, errors, date_format, report_collected=history)
    # results over time computed by the long format (b12labs.batch._serial): hidden columns
    hidden = [c for c in df.columns if isinstance(c, str) and c.startswith(SERIAL_PREFIX)]
    if hidden:
        own = ctx.get("serial", {})
        serial = dict(own)
        for c in hidden:
            key = c[len(SERIAL_PREFIX) :]
            given = df[c].to_numpy(dtype=float, na_value=np.nan)
            # a row without computed inputs keeps the day numbers its own context gives
            serial[key] = np.where(np.isnan(given), own[key], given) if key in own else given
        ctx["serial"] = serial
    raw = RawInputs(
        values={k: v for k, v in values.items() if k != "if_antibody"},
        cmp=cmp,
        ref_low=ref_low,
        ref_high=ref_high,
        band=band,
        implausible=implausible,
        if_positive=if_pos,
        if_negative=if_neg,
        if_equivocal=if_eq,
        age=ctx["age"],
        sex=ctx["sex"],
        pregnant=ctx["pregnant"],
        nitrous_oxide=ctx["nitrous_oxide_exposure"],
        treatment=ctx["treatment"],
        days_since_injection=ctx["days"],
        treatment_started=ctx["treatment_started"],
        gestational_weeks=ctx["gestational_weeks"],
        breastfeeding=ctx["breastfeeding"],
        conditions=ctx["conditions"],
        symptoms=ctx["symptoms"],
        medications=ctx["medications"],
        neurological=ctx["neurological"],
        any_symptom=ctx["any_symptom"],
        serial=ctx.get("serial", {}),
    )
    messages, codes = errors.columns()
    return Prepared(raw=raw, values=values, errors=messages, n=n, error_codes=codes)


def _string_column(uniques: Sequence[str], codes: np.ndarray) -> Any:
    """A text column from its distinct values and per-row codes: a pandas Categorical.

    The output columns repeat a few thousand distinct texts over millions of rows (a
    comment is ~150 characters): as categories they cost one small integer per row instead
    of one string each, and building them does not copy any text (materialising the
    strings was a fifth of ``score_frame``'s time). Writers pass them to Arrow as
    dictionary arrays; ``astype(str)`` gives plain strings.
    """
    texts = list(uniques)
    position: dict[str, int] = {}
    remap = [position.setdefault(t, len(position)) for t in texts]
    if len(position) != len(texts):  # two codes with the same text: one category
        codes = np.asarray(remap, dtype=np.int64)[codes]
    return pd.Categorical.from_codes(codes, categories=pd.Index(list(position), dtype=object))


def _codes_of(values: np.ndarray) -> tuple[list[str], np.ndarray]:
    codes, uniques = pd.factorize(values, sort=False)
    return [str(u) for u in uniques], codes


def _bits(mask: int) -> list[int]:
    """The positions of the set bits of ``mask``, lowest first."""
    out = []
    while mask:
        low = mask & -mask
        out.append(low.bit_length() - 1)
        mask ^= low
    return out


def _mask_strings(masks: np.ndarray, labels: list[str], sep: str = ";") -> Any:
    """Join the labels whose bits are set, once per distinct mask (hash-based, no sort)."""
    codes, uniques = pd.factorize(masks, sort=False)
    strings = [sep.join([labels[i] for i in _bits(int(m))]) for m in uniques]
    return _string_column(strings, codes)


_ACTION_SPECS: list[ActionSpec] = []
_ACTION_INDEX: dict[str, int] = {}
for _r in CATALOGUE:
    for _a in _r.actions:
        if _a.label() not in _ACTION_INDEX:
            _ACTION_INDEX[_a.label()] = len(_ACTION_SPECS)
            _ACTION_SPECS.append(_a)
_ACTION_LABELS = [a.label() for a in _ACTION_SPECS]
assert len(CATALOGUE) < 64 and len(_ACTION_SPECS) < 64


def score_prepared(
    prep: Prepared,
    profile: Profile,
    comment_limit: int | None = None,
    wanted: Collection[str] | None = None,
) -> dict[str, np.ndarray]:
    """Evaluate the catalogue on prepared columns; returns the b12labs output columns.

    ``wanted`` (default all) names the columns to build: the others are not computed, and
    those built are the same as in a complete run.
    """
    wanted = frozenset(OUTPUT_COLUMNS + VALUE_COLUMNS if wanted is None else wanted)
    n = prep.n
    limit = resolve_comment_limit(comment_limit, profile)
    f = evaluate(prep.raw, profile, VECTOR)
    status = np.broadcast_to(np.asarray(f.status, dtype=np.int64), (n,))
    code_mask = np.zeros(n, dtype=np.uint64)
    crit_mask = np.zeros(n, dtype=np.uint64)
    warn_mask = np.zeros(n, dtype=np.uint64)
    action_mask = np.zeros(n, dtype=np.uint64)
    # which conditional actions applied, per (rule, action): an action two rules share is
    # suggested in the order of the rule that actually gave it (as interpret() lists it)
    given_mask = np.zeros(n, dtype=np.uint64)
    max_sev = np.zeros(n, dtype=np.int64)
    branch_of: dict[int, np.ndarray] = {}  # rule index -> fired branch (1-based; 0 none)
    # findings in interpret() order: severity desc, then catalogue
    for i, r in enumerate(CATALOGUE):
        fired = np.broadcast_to(np.asarray(f.fired[r.code], dtype=bool), (n,))
        if not fired.any():
            continue
        bit = np.uint64(1 << i)
        code_mask |= np.where(fired, bit, np.uint64(0))
        sev = np.broadcast_to(np.asarray(severity_rank(r, f, VECTOR), dtype=np.int64), (n,))
        sev = np.where(fired, sev, 0)
        max_sev = np.maximum(max_sev, sev)
        crit_mask |= np.where(sev == 3, bit, np.uint64(0))
        warn_mask |= np.where(sev == 2, bit, np.uint64(0))
        if i in _CLAUSE_BRANCHES:
            branch_of[i] = _fired_branch(r, f, fired)
        for a in r.actions:
            applies = (
                fired
                if a.when is None
                else fired & np.broadcast_to(np.asarray(a.when(f, VECTOR), dtype=bool), (n,))
            )
            action_mask |= np.where(applies, np.uint64(1 << _ACTION_INDEX[a.label()]), np.uint64(0))
            if a.when is not None:
                given_mask |= np.where(
                    applies, np.uint64(1 << _CONDITIONAL[i, a.label()]), np.uint64(0)
                )
    out: dict[str, np.ndarray] = {}
    if "b12labs_status" in wanted:
        out["b12labs_status"] = _string_column(list(_STATUS_NAMES), status)
    if "b12labs_codes" in wanted:
        out["b12labs_codes"] = _mask_strings(code_mask, [r.code for r in CATALOGUE])
    if "b12labs_max_severity" in wanted:
        out["b12labs_max_severity"] = _string_column(list(_SEVERITY_NAMES), max_sev)
    if "b12labs_actions" in wanted:
        out["b12labs_actions"] = _mask_strings(action_mask, _ACTION_LABELS)
    # comment: once per distinct (status, reason, findings by severity and branch, actions);
    # the costliest column, so built only when asked for
    build = "b12labs_comment" in wanted
    if build and n:
        reason_given = getattr(f, "status_reason", None)
        reason = (
            np.zeros(n, dtype=np.int64)
            if reason_given is None
            else np.broadcast_to(np.asarray(reason_given), (n,))
        )
        # the comment reads the info findings only for the order of their actions: info rules
        # without actions do not split the combinations
        info_order = code_mask & ~(crit_mask | warn_mask) & np.uint64(_WITH_ACTIONS)
        key = status.astype(np.int64)
        bound = len(_STATUS_NAMES)  # key < bound: combined without overflow, refactorised rarely
        parts = [crit_mask, warn_mask, info_order, action_mask, given_mask, *branch_of.values()]
        if reason_given is not None:
            parts.append(reason)
        for part in parts:
            part_codes, part_uniques = pd.factorize(part, sort=False)
            key = key * (len(part_uniques) + 1) + part_codes
            bound *= len(part_uniques) + 1
            if bound > 1 << 40:
                key, uniques_ = pd.factorize(key, sort=False)
                bound = len(uniques_)
        key_codes, key_uniques = pd.factorize(key, sort=False)
        first = np.zeros(len(key_uniques), dtype=np.int64)
        first[key_codes[::-1]] = np.arange(n - 1, -1, -1)
        comments = []
        for row in first.tolist():
            branches = {i: int(b[row]) for i, b in branch_of.items()}
            clauses, suggestions = _comment_parts(
                int(crit_mask[row]),
                int(warn_mask[row]),
                int(info_order[row]),
                int(action_mask[row]),
                int(given_mask[row]),
                branches,
            )
            comments.append(
                build_comment(
                    str(_STATUS_NAMES[int(status[row])]),
                    reason_name(reason[row].item()),
                    clauses,
                    suggestions,
                    limit,
                )
            )
        out["b12labs_comment"] = _string_column(comments, key_codes)
    elif build:
        out["b12labs_comment"] = _string_column([], np.zeros(0, dtype=np.int64))
    if "b12labs_error" in wanted:
        out["b12labs_error"] = _string_column(*_codes_of(prep.errors))
    if "b12labs_error_code" in wanted:
        out["b12labs_error_code"] = _string_column(
            *_codes_of(
                prep.error_codes if prep.error_codes is not None else np.full(n, "", dtype=object)
            )
        )
    if "b12labs_profile" in wanted:
        out["b12labs_profile"] = _string_column([profile.id], np.zeros(n, dtype=np.int64))
    if "b12labs_version" in wanted:
        out["b12labs_version"] = _string_column([__version__], np.zeros(n, dtype=np.int64))
    values = dict(prep.values)
    tsat = np.asarray(f.tsat.value, dtype=float)
    if tsat.shape == (n,):
        values["tsat"] = tsat
    for key_ in ANALYTES:
        if column_name(key_) in wanted:
            out[column_name(key_)] = values.get(key_, np.full(n, np.nan))
    return out


# per rule: (action index, (kind, name) as the comment suggests it) of each of its actions
#: (rule index, action label) -> bit of a conditional action in ``given_mask``
_CONDITIONAL = {
    key: bit
    for bit, key in enumerate(
        (i, a.label()) for i, r in enumerate(CATALOGUE) for a in r.actions if a.when is not None
    )
}
assert len(_CONDITIONAL) <= 64, "conditional actions no longer fit one uint64 mask"
_RULE_ACTIONS = [
    [
        (_ACTION_INDEX[a.label()], (a.kind, a.test), _CONDITIONAL.get((i, a.label()), -1))
        for a in r.actions
    ]
    for i, r in enumerate(CATALOGUE)
]
_WITH_ACTIONS = sum(1 << i for i, r in enumerate(CATALOGUE) if r.actions)
# rules whose branches have clauses of their own: only for these does the branch change the comment
_CLAUSE_BRANCHES = frozenset(
    i for i, r in enumerate(CATALOGUE) if any(b.comment for b in r.branches)
)


def clause_table() -> list[tuple[str, ...]]:
    """Per rule, its comment clause with no branch and then with each branch (1-based)."""
    return [(r.clause(None), *(r.clause(b.name) for b in r.branches)) for r in CATALOGUE]


_CLAUSES = clause_table()


def _fired_branch(r: Rule, f: Any, fired: np.ndarray) -> np.ndarray:
    """Per row, 1 + the index of the first branch that holds where the rule fired (else 0)."""
    n = len(fired)
    out = np.zeros(n, dtype=np.int64)
    open_ = fired.copy()
    for j, b in enumerate(r.branches):
        holds = open_ & np.broadcast_to(np.asarray(b.when(f, VECTOR), dtype=bool), (n,))
        out[holds] = j + 1
        open_ &= ~holds
    return out


def _comment_parts(
    crit: int, warn: int, info: int, act: int, given: int, branches: Mapping[int, int]
) -> tuple[tuple[tuple[int, str], ...], tuple[tuple[str, str], ...]]:
    """Clauses and suggestions in interpret()'s finding order (severity, then catalogue)."""
    clauses: list[tuple[int, str]] = []
    seen: dict[tuple[str, str], None] = {}
    for rank, mask in ((3, crit), (2, warn), (1, info)):
        for i in _bits(mask):
            if rank > 1:
                clauses.append((rank, _CLAUSES[i][branches.get(i, 0)]))
            for j, suggestion, conditional in _RULE_ACTIONS[i]:
                applied = (given >> conditional) & 1 if conditional >= 0 else (act >> j) & 1
                if applied:
                    seen.setdefault(suggestion, None)
    return tuple(clauses), tuple(seen)


#: prefix of the hidden columns that carry the long format's serial inputs into score_frame
SERIAL_PREFIX = "__b12labs_serial_"


def score_frame(
    df: pd.DataFrame,
    *,
    columns: Mapping[str, str] | None = None,
    units: Mapping[str, str] | None = None,
    profile: str | Path | Profile = DEFAULT_PROFILE,
    decimal: str = ".",
    column_map: ColumnMap | None = None,
    threads: int | None = None,
    date_format: str | None = None,
    comment_limit: int | None = None,
    columns_out: str | Sequence[str] | None = None,
    canonical: bool = True,
    history: bool = False,
) -> pd.DataFrame:
    """Score a wide frame (one row per patient/specimen) with the whole rule catalogue.

    Analyte columns are found by name (analyte keys, common names, LOINC codes as headers);
    ``columns`` maps others (``{"B12 result": "b12"}``); ``units`` gives the unit of an analyte
    whose cells, unit column and header carry none. Returns the input columns untouched, then
    the ``b12labs_*`` columns (text as pandas categoricals) and the canonical value columns
    (``b12_pmol_l`` …): exactly one output row per input row, in order. A bad cell does not
    stop the row: it is scored on its valid values and ``b12labs_error`` says which column,
    value and why.

    Dates (date of birth, collection date) are ISO 8601 unless ``date_format`` (a ``strftime``
    pattern such as ``"%d/%m/%Y"``) says otherwise: day/month order is never guessed, and an
    unreadable, future or impossible date is an error for its row.

    ``comment_limit`` caps ``b12labs_comment`` as in :func:`~b12labs.interpret` (default the
    profile's, else 400 characters); each row's comment is the one ``interpret()`` gives.

    Analyte columns of frames of 20 000 rows or more are parsed in ``threads`` parallel
    threads (default: one per core, at most 8; ``1`` for none); the result is the same.

    ``columns_out`` chooses the b12labs columns, in order (default all of them): a list or a
    comma-separated string of full names (``b12labs_status``, ``b12_pmol_l``) or short ones
    (``status``, ``codes``, ``max_severity``, ``actions``, ``error`` …); ``canonical=False``
    leaves out the canonical value columns. The input columns and rows are always kept; columns
    not asked for are not computed, and those kept equal a complete run's.

    ``history=True`` scores results over time (docs/clinical-logic.md §8): the frame needs a
    patient-id column (``patient_id``, ``patient``, ``mrn`` …) and a collection-date column
    (``collected_at`` …), sorted by patient then collection date, and each row's history is
    the same patient's earlier rows (with their own context), as
    ``interpret(panel, context, history=[those rows])`` reads them; a row at the same time
    with a different value is a conflict. Rows without a patient id or a usable date have no
    history. An unsorted frame, or one without those columns, raises
    :class:`~b12labs.errors.InputFormatError`.

    Raises :class:`~b12labs.errors.InputFormatError` before scoring when the frame cannot be
    scored as given (duplicated columns, no analyte column, an analyte with no unit anywhere).
    """
    if not isinstance(df, pd.DataFrame):
        raise InputFormatError(
            f"score_frame needs a pandas DataFrame, not {type(df).__name__}",
            code="input-type-invalid",
        )
    if threads is not None and (
        isinstance(threads, bool) or not isinstance(threads, int) or threads < 1
    ):
        raise InputFormatError("threads must be a whole number, at least 1", code="option-invalid")
    if comment_limit is not None:
        check_comment_limit(comment_limit)  # before any work
    if decimal not in (".", ","):
        raise InputFormatError("decimal must be '.' or ','", code="option-invalid")
    selected = output_columns(columns_out, canonical=canonical)  # before any work
    prof = load_profile(profile)
    cmap = column_map or detect_columns([str(c) for c in df.columns], mapping=columns, units=units)
    check_units(df, cmap)
    work = _with_history(df, cmap, prof, decimal, date_format) if history else df
    prep = prepare(work, cmap, prof, decimal, threads, date_format, history=history)
    out = score_prepared(prep, prof, comment_limit, selected)
    out = {name: out[name] for name in selected}
    result = df.copy(deep=False)
    for name in out:
        if name in result.columns:
            raise InputFormatError(
                f"the input already has a column named {name!r}; rename it before scoring"
            )
    new = pd.DataFrame(out, index=df.index)
    return pd.concat([result, new], axis=1)


def _with_history(
    df: pd.DataFrame, cmap: ColumnMap, profile: Profile, decimal: str, date_format: str | None
) -> pd.DataFrame:
    """A working copy of ``df`` with each row's serial inputs as hidden columns, and the
    current values a same-time conflict voids blanked (the output keeps the input's cells)."""
    from ._history import blank_voided, history_columns, wide_serial

    pid_col, time_col = history_columns([str(c) for c in df.columns], cmap)
    serial, voided = wide_serial(df, cmap, pid_col, time_col, profile, decimal, date_format)
    work = df.copy(deep=False)
    blank_voided(work, cmap, voided)
    for key, values in serial.items():
        work[SERIAL_PREFIX + key] = values
    return work


def check_units(df: pd.DataFrame, cmap: ColumnMap) -> None:
    """Fail before scoring when an analyte that needs a unit has none anywhere."""
    if not cmap.analytes:
        raise InputFormatError(
            "no analyte column found (expected names such as b12, vitamin_b12, mma, hb, mcv, or LOINC "
            "codes; map others with --map COLUMN=ANALYTE / columns={...})"
        )
    for key, a in cmap.analytes.items():
        spec = ANALYTES[key]
        if spec.qualitative or a.fixed_unit or a.unit_column:
            continue
        text = _text(df[a.value])
        filled = [t for t in text if t.strip()]
        if not filled:
            continue
        _, _, cell_units, _ok, _present = _parse_numbers(np.array(filled, dtype=object), ".")
        if not len(cell_units.rows):
            raise InputFormatError(
                f"column {a.value!r} ({spec.short}) has no unit: not in its cells, header, a unit "
                f"column or the units given. Units are never guessed for {spec.short} "
                f"(e.g. pg/mL and pmol/L differ by 1.36x): pass --unit {key}=UNIT "
                f"(units={{'{key}': ...}}) or name the column like '{a.value} (UNIT)'"
            )
