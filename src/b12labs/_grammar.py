"""The one input grammar: how every front-end reads a cell, a value or a yes/no.

``interpret()`` (through :mod:`b12labs.models`), ``score_frame`` / ``score_long`` (vectorised
kernels in :mod:`b12labs.batch._frame` built from the patterns below) and the FHIR reader all
read text with this module, so one spelling means one thing everywhere; a test feeds one table
of spellings through all three (``tests/test_grammar_parity.py``) and ``docs/input.md`` is
generated from the tables here.

Decisions (docs/input.md explains them to users):

- **Numbers** are ASCII digits ``0-9`` with an optional sign, one decimal separator and an
  exponent (``250``, ``0.34``, ``.5``, ``12.``, ``2.5e2``). Digits of other scripts (Arabic-Indic
  ``٢٥٠``, full-width ``２５０``) are refused everywhere (``value-non-ascii-digits``): they are
  a sign of a conversion fault far more often than a laboratory's choice, and Python's ``float``
  would read them while Arrow's cast would not, so accepting them means two readings.
- A **comma** is a decimal separator only when the caller says so (``decimal=","``); then a
  number holding both ``.`` and ``,`` is ambiguous. Thousands separators are never read.
- A number longer than :data:`MAX_NUMBER_CHARS` characters or larger than
  :data:`MAX_MAGNITUDE` is refused before conversion (``value-too-large``).
- A Python ``bool`` is never a number (``age=True`` is an error, not 1 year).
- **Missing markers** (:data:`MISSING_MARKERS`, any case) mean "no result" in panels and cells.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from decimal import Decimal
from typing import Literal

from .errors import ERROR_CODES, InvalidValueError

__all__ = [
    "BOOLEAN_ACCEPTED",
    "CELL_PATTERN",
    "COMPARATORS",
    "COMPARATORS_ACCEPTED",
    "FALSE_WORDS",
    "MAX_MAGNITUDE",
    "MAX_NUMBER_CHARS",
    "MISSING_MARKERS",
    "NUMBER_PATTERN",
    "QUALITATIVE_WORDS",
    "TRUE_WORDS",
    "Cell",
    "check_number",
    "diagnose",
    "is_missing",
    "read_bool",
    "read_cell",
    "read_limit",
    "read_plain_number",
    "read_qualitative",
]

Comparator = Literal["<", "<=", ">", ">="]
Qualitative = Literal["positive", "negative", "equivocal"]

#: Comparator spellings -> the comparator they mean.
COMPARATORS: dict[str, Comparator] = {
    "<": "<",
    "<=": "<=",
    "=<": "<=",
    "≤": "<=",
    ">": ">",
    ">=": ">=",
    "=>": ">=",
    "≥": ">=",
}
COMPARATORS_ACCEPTED = "<, <=, ≤, >, >=, ≥ (also =<, =>)"
#: Characters read as a (possibly malformed) comparator before the number.
COMPARATOR_CHARS = "<>=≤≥~!"

#: Qualitative words (lower case) of a qualitative analyte (the IF antibody) -> meaning.
QUALITATIVE_WORDS: dict[str, Qualitative] = {
    "positive": "positive",
    "pos": "positive",
    "detected": "positive",
    "+": "positive",
    "reactive": "positive",
    "present": "positive",
    "negative": "negative",
    "neg": "negative",
    "not detected": "negative",
    "-": "negative",
    "non-reactive": "negative",
    "nonreactive": "negative",
    "absent": "negative",
    "equivocal": "equivocal",
    "borderline": "equivocal",
    "indeterminate": "equivocal",
    "inconclusive": "equivocal",
}
QUALITATIVE_ACCEPTED = (
    "positive, negative, equivocal, or a number with the laboratory's cut-off (ref_high)"
)

#: Cell texts (compared stripped, in lower case) that mean "no result".
MISSING_MARKERS: tuple[str, ...] = ("", "na", "n/a", "n.a.", "nan", "null", "none", "#n/a")

TRUE_WORDS: tuple[str, ...] = ("true", "yes", "y", "1", "t")
FALSE_WORDS: tuple[str, ...] = ("false", "no", "n", "0", "f")
BOOLEAN_ACCEPTED = "true/false, yes/no, y/n, 1/0"

#: The longest number text read (sign, digits, separator, exponent); longer is refused.
MAX_NUMBER_CHARS = 24
#: The largest magnitude read; no laboratory result or context number comes near it.
MAX_MAGNITUDE = 1e12

#: A number as written (ASCII digits; separators are checked after matching, so that
#: ``1.000,5`` is one ambiguous number, not ``1.000`` followed by a unit ``,5``).
NUMBER_PATTERN = r"[+-]?(?:[0-9]+(?:[.,][0-9]*)*|[.,][0-9]+)(?:[eE][+-]?[0-9]+)?"
#: A result cell: optional comparator, number, optional unit. A cell holding any digit other
#: than ASCII 0-9 does not match (the lookahead), so ``25٠ pmol/L`` is never ``25`` with a unit
#: ``٠ pmol/L`` in the vectorised path either.
CELL_PATTERN = (
    r"^(?!.*(?![0-9])\d)"
    rf"\s*(?P<cmp>[{COMPARATOR_CHARS}]+)?\s*(?P<num>{NUMBER_PATTERN})\s*(?P<unit>\S.*?)?\s*$"
)
_CELL_RE = re.compile(CELL_PATTERN)
_TRUE = frozenset(TRUE_WORDS)
_FALSE = frozenset(FALSE_WORDS)
_MISSING = frozenset(MISSING_MARKERS)

_COMMA_HELP = {
    ".": "pass decimal=',' (CLI --decimal ,) for decimal commas",
    ",": "one decimal separator and no thousands separators",
}


@dataclass(frozen=True, slots=True)
class Cell:
    """A result cell as read: comparator (or ``None``), number and unit text (or ``None``)."""

    comparator: Comparator | None
    value: float
    unit: str | None


def is_missing(raw: object) -> bool:
    """``None``, NaN, or text that is blank or a missing marker (``NA``, ``N/A``, ``null``…)."""
    if raw is None:
        return True
    if isinstance(raw, float):
        return math.isnan(raw)
    if isinstance(raw, str):
        return raw.strip().lower() in _MISSING
    return False


def _has_foreign_digits(text: str) -> bool:
    return any(ch.isdecimal() and not ch.isascii() for ch in text)


def _number(num: str, decimal: str) -> float | tuple[str, str | None]:
    """A matched number text as a float, or ``(code, accepted)`` when it cannot be used."""
    if len(num) > MAX_NUMBER_CHARS:
        return "value-too-large", f"at most {MAX_NUMBER_CHARS} characters"
    if "," in num:
        if decimal != "," or "." in num or num.count(",") > 1:
            return "value-decimal-comma", _COMMA_HELP[decimal]
        num = num.replace(",", ".")
    if num.count(".") > 1:
        return "value-unparseable", None
    value = float(num)
    return check_number(value)


def check_number(value: float) -> float | tuple[str, str | None]:
    """A float that is finite, within :data:`MAX_MAGNITUDE` and non-negative, or the
    ``(code, accepted)`` of why not."""
    if not math.isfinite(value):
        return "value-not-finite", None
    if abs(value) > MAX_MAGNITUDE:
        return "value-too-large", f"at most {MAX_MAGNITUDE:g}"
    if value < 0:
        return "value-negative", None
    return value


def diagnose(text: str, decimal: str = ".") -> Cell | tuple[str, str | None]:
    """Read a (non-missing) result cell: the :class:`Cell`, or ``(code, accepted)``.

    The one reading of a cell: :func:`read_cell` raises from it, and the batch path, which
    reads clean cells with vectorised kernels, asks it why a cell it could not read is bad.
    """
    if _has_foreign_digits(text):
        return "value-non-ascii-digits", "the digits 0-9"
    m = _CELL_RE.match(text)
    if m is None:
        return "value-unparseable", None
    cmp_text = m.group("cmp")
    comparator: Comparator | None = None
    if cmp_text:
        if cmp_text not in COMPARATORS:
            return "comparator-invalid", COMPARATORS_ACCEPTED
        comparator = COMPARATORS[cmp_text]
    value = _number(m.group("num"), decimal)
    if isinstance(value, tuple):
        return value
    return Cell(comparator, value, m.group("unit") or None)


def _raise(code: str, field: str | None, reported: object, accepted: str | None) -> None:
    raise InvalidValueError(
        ERROR_CODES[code].title, code=code, analyte=field, reported=reported, accepted=accepted
    )


def read_cell(text: str, *, decimal: str = ".", field: str | None = None) -> Cell:
    """Read a result cell (``"<50 pmol/L"``); raises :class:`InvalidValueError` with its code."""
    got = diagnose(text, decimal)
    if isinstance(got, tuple):
        _raise(got[0], field, text, got[1])
        raise AssertionError  # pragma: no cover - _raise raises
    return got


def read_plain_number(
    raw: object, *, field: str, decimal: str = ".", upper: float | None = None
) -> float | None:
    """A plain non-negative number (a context number: age, days): no comparator, no unit.

    ``None`` for a missing value; a ``bool`` is an error, never 0 or 1.
    """
    if is_missing(raw):
        return None
    if isinstance(raw, bool):
        _raise("value-type-invalid", field, raw, "a number")
    if isinstance(raw, int):
        if abs(raw) > MAX_MAGNITUDE:
            _raise("value-too-large", field, raw, f"at most {MAX_MAGNITUDE:g}")
        value: float | tuple[str, str | None] = check_number(float(raw))
    elif isinstance(raw, (float, Decimal)):
        value = check_number(float(raw))
    elif isinstance(raw, str):
        got = diagnose(raw, decimal)
        if isinstance(got, Cell):
            if got.comparator is not None:
                value = ("value-censored-invalid", "a plain number")
            elif got.unit is not None:
                value = ("value-unparseable", "a plain number without a unit")
            else:
                value = got.value
        else:
            value = got
    else:
        _raise("value-type-invalid", field, raw, "a number")
        raise AssertionError  # pragma: no cover
    if isinstance(value, tuple):
        _raise(value[0], field, raw, value[1])
        raise AssertionError  # pragma: no cover
    if upper is not None and value > upper:
        _raise("value-out-of-range", field, raw, f"0 to {upper:g}")
    return value


def read_limit(raw: object, *, field: str, decimal: str = ".") -> float | None:
    """A laboratory reference limit (``ref_low`` / ``ref_high``): a plain non-negative number."""
    try:
        return read_plain_number(raw, field=field, decimal=decimal)
    except InvalidValueError as exc:
        raise InvalidValueError(
            ERROR_CODES["reference-invalid"].title,
            code="reference-invalid",
            analyte=field,
            reported=raw,
            accepted=f"a plain non-negative number ({exc.reason})",
        ) from None


def read_qualitative(text: str, *, field: str | None = None) -> Qualitative:
    """A qualitative result word (positive, negative, equivocal and their synonyms).

    An equivocal word is a measured result that counts as neither positive nor negative
    (docs/clinical-logic.md §2). A number (which needs the laboratory's cut-off) and any other
    text are errors with their own codes.
    """
    word = QUALITATIVE_WORDS.get(text.strip().lower())
    if word is not None:
        return word
    if _has_foreign_digits(text):
        code = "value-non-ascii-digits"
    elif isinstance(diagnose(text.strip()), Cell):
        code = "qualitative-needs-cutoff"
    else:
        code = "qualitative-unknown"
    _raise(code, field, text, QUALITATIVE_ACCEPTED)
    raise AssertionError  # pragma: no cover


def qualitative_code(text: str) -> tuple[str, str] | None:
    """``None`` for a positive/negative/equivocal word, else ``(code, title)`` of why it is
    unusable."""
    try:
        read_qualitative(text)
    except InvalidValueError as exc:
        return exc.code, exc.reason
    return None


def read_bool(raw: object, *, field: str) -> bool | None:
    """A yes/no value: a ``bool``, the words of :data:`TRUE_WORDS` / :data:`FALSE_WORDS`, the
    numbers 1/0; ``None`` when missing."""
    if isinstance(raw, bool):
        return raw
    if is_missing(raw):
        return None
    if isinstance(raw, (int, float)) and raw in (0, 1):
        return bool(raw)
    if isinstance(raw, str):
        word = raw.strip().lower()
        if word in _TRUE:
            return True
        if word in _FALSE:
            return False
    raise InvalidValueError(
        ERROR_CODES["boolean-invalid"].title,
        code="boolean-invalid",
        analyte=field,
        reported=raw,
        accepted=BOOLEAN_ACCEPTED,
    )


def reason(code: str, accepted: str | None = None) -> str:
    """The wording of ``code`` as batch error cells show it (the code's title)."""
    title = ERROR_CODES[code].title
    return f"{title} (accepted: {accepted})" if accepted else title
