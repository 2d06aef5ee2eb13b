"""The b12labs exception tree and the registry of stable error codes.

Every error the library raises derives from :class:`B12LabsError`; errors about a bad value
or unit are also :class:`ValueError`, so callers that already catch ``ValueError`` keep
working::

    B12LabsError
    ├── InputError (ValueError)              a value the library cannot use
    │   ├── UnitError                        unknown unit, wrong dimension, unit missing
    │   ├── InvalidValueError                non-numeric, NaN/inf, negative, bad comparator
    │   ├── UnknownAnalyteError              a panel key that is not an analyte of docs/clinical-logic.md §2
    │   └── VocabularyError                  an unknown symptom or condition term
    ├── ProfileError (ValueError)            a threshold profile file that fails its schema
    ├── InputFormatError (ValueError)        a batch file or frame that cannot be scored
    ├── MissingExtraError (ImportError)      an optional feature whose extra is not installed
    └── ServiceError                         b12labs.service: configuration, auth, hook context
        ├── ConfigError (ValueError)         service configuration (b12labs.service._config)
        ├── AuthError                        a CDS Hooks call that fails authentication
        ├── HookContextError (ValueError)    a CDS Hooks request whose context is unusable
        └── ...                              HTTP-layer errors (b12labs.service)

Every error carries a stable ``code`` (``unit-unknown``, ``value-unparseable``…): the keys of
:data:`ERROR_CODES`, each documented with an anchor in ``docs/errors.md`` (generated from
this registry by ``b12labs docs``). A code is never reused for another meaning; batch output
carries the codes of a row's errors in ``b12labs_error_code``.

Errors carry structured attributes (``analyte``, ``reported``, ``reason``, ``accepted``) and a
message that says what would be accepted. They are raised to the caller; the library never
writes patient values to a log.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

__all__ = [
    "ERROR_CODES",
    "B12LabsError",
    "ErrorCode",
    "InputError",
    "InputFormatError",
    "InvalidValueError",
    "MissingExtraError",
    "ProfileError",
    "ServiceError",
    "UnitError",
    "UnknownAnalyteError",
    "VocabularyError",
]


@dataclass(frozen=True, slots=True)
class ErrorCode:
    """One stable error code: a short title (the wording every message uses), what it means
    and how to fix it."""

    code: str
    title: str
    explanation: str
    fix: str


def _codes(*entries: tuple[str, str, str, str]) -> dict[str, ErrorCode]:
    return {c: ErrorCode(c, t, e, f) for c, t, e, f in entries}


#: code -> title, explanation and fix. Codes are stable: retired codes are never reused.
ERROR_CODES: dict[str, ErrorCode] = _codes(
    (
        "value-unparseable",
        "not a number",
        "The cell or value is not a number b12labs can read: text, a stray character, or a "
        "number written in a way the input grammar (docs/input.md) does not accept.",
        "Send the number with an optional comparator and its unit, e.g. `250 pg/mL` or "
        "`<50 pmol/L`.",
    ),
    (
        "value-decimal-comma",
        "a comma in the number: is it a decimal comma?",
        "A comma is read as a decimal separator only when the caller says so; otherwise "
        "`1,5` could be one and a half or fifteen (a thousands separator). With decimal commas "
        "on, a number holding both `.` and `,` is ambiguous and refused.",
        'Pass `decimal=","` (CLI `--decimal ,`) for decimal commas; never use thousands '
        "separators.",
    ),
    (
        "value-non-ascii-digits",
        "digits other than 0-9",
        "Digits of other scripts (Arabic-Indic `٢٥٠`, full-width `２５０`, …) are refused in "
        "every front-end: they are rare in laboratory exports and usually a sign of a "
        "conversion fault, and reading them in one front-end but not another would score the "
        "same file differently.",
        "Convert the digits to ASCII 0-9 before scoring.",
    ),
    (
        "value-too-large",
        "a number too long or too large to be a result",
        "The number has more characters, or a larger magnitude, than any laboratory result "
        "(the limits are in docs/input.md); it is refused before conversion rather than "
        "overflowing.",
        "Check the export: the cell probably holds several values run together or garbage.",
    ),
    (
        "value-missing",
        "a missing-value marker, not a result",
        "The value is blank or a missing marker (`NA`, `N/A`, `null`… listed in "
        "docs/input.md) where a result was expected. In panels and batch cells a missing "
        "marker simply means no result; it is an error only where a result must be given "
        "(a FHIR Observation, a Measurement).",
        "Leave the analyte out, or send its result.",
    ),
    (
        "field-missing",
        "a required field is blank",
        "A long-export row without its test code, patient id, collection time or result value: "
        "it cannot be placed in a patient's episode, so it is rejected (never pooled).",
        "Fill the field in the export, or leave the row out.",
    ),
    (
        "value-not-finite",
        "not a finite number",
        "NaN, infinity, or a number too large to represent (`1e400`).",
        "Send a finite number; leave the cell blank when there is no result.",
    ),
    (
        "value-negative",
        "negative value",
        "A concentration, count or age cannot be negative.",
        "Check the sign of the value.",
    ),
    (
        "value-type-invalid",
        "a value of the wrong type",
        "The value has a Python type that cannot hold this field: a `bool` where a number is "
        "expected (`True` is not 1 year), a mapping where a list of terms is expected, or an "
        "object that is not a string, number, mapping or Measurement.",
        "Send a number (or its text) for numeric fields, a string or a list of strings for "
        "term lists.",
    ),
    (
        "value-implausible",
        "outside the plausible range, not used",
        "The value, converted to the canonical unit, lies outside the analyte's plausible "
        "range (reference_ranges/analytes.toml): usually a wrong unit. It is not used.",
        "Check the value and its unit.",
    ),
    (
        "value-out-of-range",
        "a value outside the accepted range",
        "A context number outside its allowed range (e.g. an age above 130 years).",
        "Check the value; leave it blank when unknown.",
    ),
    (
        "value-censored-invalid",
        "a censored value that cannot be used",
        "A value with a comparator (`<`, `>`…) where no comparator is allowed (reference "
        "limits, ages, days), or one whose interval lies on both sides of the laboratory's "
        "cut-off so it is neither positive nor negative.",
        "Send a plain number, or the exact result.",
    ),
    (
        "comparator-invalid",
        "malformed comparator",
        "The sign before the number is not one of `<`, `<=`, `≤`, `>`, `>=`, `≥` (also `=<`, "
        "`=>`).",
        "Use one of the accepted comparators, or none.",
    ),
    (
        "qualitative-unknown",
        "not a qualitative result",
        "The text of a qualitative analyte (the IF antibody) is not one of the accepted words.",
        "Send positive, negative or equivocal (or a synonym listed in docs/input.md), or a "
        "number with the laboratory's cut-off (ref_high).",
    ),
    (
        "qualitative-equivocal",
        "an equivocal result cannot be read as positive or negative",
        "No longer raised since the RULES v2 clinical content (kept so that the code is never "
        "reused): an equivocal / borderline / indeterminate / inconclusive IF antibody is now "
        "read as the value `equivocal`, a measured result that counts as neither positive nor "
        "negative (docs/clinical-logic.md §2). Earlier such results were refused with this code.",
        "Nothing to fix: send the equivocal result as reported.",
    ),
    (
        "qualitative-needs-cutoff",
        "a number without the laboratory's cut-off (ref_high; above it is positive) cannot be "
        "read as positive or negative",
        "A numeric IF-antibody result is read only against the laboratory's cut-off; it is "
        "never read as negative.",
        "Send the laboratory's cut-off as ref_high (FHIR referenceRange.high, a ref_high "
        "column), or positive/negative.",
    ),
    (
        "unit-missing",
        "a value without a unit",
        "Units are never guessed for this analyte: its common units differ by a factor "
        "(named in the message, per analyte).",
        "Send the unit in the value (`250 pg/mL`), a unit field/column, a header such as "
        "`b12 (pmol/L)` or `--unit b12=pmol/L` / `units={'b12': ...}`.",
    ),
    (
        "unit-unknown",
        "unknown unit",
        "The unit does not parse, or is not a unit of the analyte's dimension.",
        "Use one of the accepted units listed in the message (reference_ranges/units.toml).",
    ),
    (
        "unit-wrong-dimension",
        "unit has the wrong dimension for the analyte",
        "The unit parses but measures something else (a mass where a volume is expected, "
        "`%` for a concentration…).",
        "Use one of the accepted units listed in the message.",
    ),
    (
        "unit-conflict",
        "contradicting units",
        "The value carries one unit and its unit field, column or header another.",
        "Remove one of them or make them agree.",
    ),
    (
        "reference-invalid",
        "not a usable reference limit",
        "A laboratory reference limit (ref_low / ref_high) that is not a plain non-negative "
        "number.",
        "Send the limit as a number in the result's unit.",
    ),
    (
        "reference-inverted",
        "the lower reference limit lies above the upper one",
        "ref_low is greater than ref_high: the interval is empty, probably swapped.",
        "Send ref_low <= ref_high.",
    ),
    (
        "boolean-invalid",
        "not a yes/no value",
        "A yes/no field holds something other than the accepted spellings.",
        "Use true/false, yes/no, y/n or 1/0 (blank or a missing marker for unknown).",
    ),
    (
        "context-unknown-key",
        "unknown context field",
        "A patient-context mapping holds a key that is not a field of docs/clinical-logic.md §3.",
        "Use one of the accepted keys listed in the message.",
    ),
    (
        "context-value-invalid",
        "a context value that cannot be used",
        "A sex, B12 treatment or other context value outside its accepted spellings.",
        "Use one of the accepted values listed in the message.",
    ),
    (
        "vocabulary-unknown",
        "unknown term",
        "A symptom or condition outside the closed vocabulary of docs/clinical-logic.md §3.",
        "Use a term (or synonym) of the vocabulary; the message lists them.",
    ),
    (
        "analyte-unknown",
        "unknown analyte key",
        "A panel key that is not one of the analytes of docs/clinical-logic.md §2.",
        "Use an analyte key (`b12`, `mma`, `hb`…), listed in the message.",
    ),
    (
        "date-invalid",
        "not a date",
        "A date that does not parse: ISO 8601 unless a date format is given (day/month order "
        "is never guessed).",
        "Send ISO 8601 dates or pass `--date-format` / `date_format=`.",
    ),
    (
        "date-future",
        "a date in the future",
        "A birth or collection date after the moment of scoring.",
        "Check the date.",
    ),
    (
        "date-order",
        "date of birth after the collection date",
        "The patient would be born after the specimen was collected.",
        "Check both dates.",
    ),
    (
        "date-treatment-order",
        "B12 treatment start after the collection date",
        "The recorded start of B12 replacement is later than the specimen's collection.",
        "Check b12_treatment_started and collected_at.",
    ),
    (
        "history-entry-invalid",
        "a history entry that is not an earlier panel",
        "An entry of `history` (results over time, docs/clinical-logic.md §8) is not a mapping "
        "of analytes with a `collected_at`, or names a key that is neither an analyte, "
        "`collected_at` nor `context`.",
        'Pass each earlier result as `{"collected_at": "2026-03-01", "b12": "250 ng/L", '
        '"context": {...}}`.',
    ),
    (
        "history-date-missing",
        "a history entry without its collection date",
        "An earlier result cannot be placed in time without `collected_at`, so it cannot be "
        "compared with the current one.",
        "Give each history entry its ISO 8601 `collected_at`.",
    ),
    (
        "history-date-after-current",
        "a history entry collected after the current panel",
        "History holds earlier results; an entry dated after the current panel's "
        "`collected_at` (or after the time of interpretation) is not earlier.",
        "Check the dates, or interpret the newest panel with the others as its history.",
    ),
    (
        "history-columns-missing",
        "results over time without a patient id or collection date column",
        "A wide export scored with `--history` (`score_frame(history=True)`) needs a column "
        "naming the patient (`patient_id`, `patient`, `mrn` …) and one with each row's "
        "collection date (`collected_at`, `collection_date`, `specimen_date` …): a row's "
        "history is the same patient's earlier rows.",
        "Add or rename the two columns (or map the date with `--map COLUMN=collected_at`).",
    ),
    (
        "input-type-invalid",
        "an input of the wrong type",
        "A panel, context or frame of a type the function does not take (e.g. "
        "`score_frame(None)`, a panel that is a list).",
        "Pass a mapping (panel, context) or a pandas DataFrame (score_frame).",
    ),
    (
        "option-invalid",
        "an option that cannot be used",
        "An argument such as `decimal`, `threads`, `profile` or `date_format` has a value the "
        "function does not accept.",
        "Use one of the values the message names.",
    ),
    (
        "input-format",
        "a batch input that cannot be scored as given",
        "A file or frame whose shape prevents scoring: no analyte column, duplicated columns, "
        "an analyte column without a unit anywhere, an unsorted long export…",
        "Follow the message; docs/batch.md describes the accepted layouts.",
    ),
    (
        "line-malformed",
        "a line with the wrong number of fields",
        "A line of a CSV file holds more or fewer fields than the header (a stray separator, "
        "an unclosed quote, a cut-off line). The row is kept in the output, in place, with "
        "this code; none of its cells is used, since they may sit under the wrong column.",
        "Fix the line the message names (quote cells that contain the separator), or check "
        "`--sep`.",
    ),
    (
        "cell-too-large",
        "a cell too large to be a result or a context field",
        "A cell holds more characters than any export field (the limit is in docs/batch.md): "
        "usually a broken quote that swallowed many lines, or binary data. The cell is not "
        "used; the rest of the row is scored.",
        "Check the line the message names.",
    ),
    (
        "profile-invalid",
        "a threshold profile that fails its schema",
        "A profile file that is missing, unreadable or breaks the schema of docs/clinical-logic.md "
        "§4 (missing keys, unknown units, unknown sources…).",
        "Fix the file and key the message names.",
    ),
    (
        "profile-threshold-order",
        "profile thresholds out of order",
        "A band limit lies above the next band's limit (e.g. `b12_deficient` above "
        "`b12_indeterminate_upper`), so a band would be empty.",
        "Order the band limits: deficient < indeterminate upper < high.",
    ),
    (
        "profile-threshold-negative",
        "a negative threshold",
        "A threshold value is negative; no concentration, age or duration is.",
        "Use a non-negative value.",
    ),
    (
        "extra-missing",
        "an optional dependency is not installed",
        "An optional front-end (FHIR, service, Dask, report) was used without its extra.",
        "Install the extra the message names, e.g. `pip install 'b12labs[fhir]'`.",
    ),
    (
        "service-config-invalid",
        "a service configuration that cannot be used",
        "A CDS Hooks service setting (environment or file) is missing or malformed.",
        "Fix the setting the message names (docs/service.md).",
    ),
    (
        "service-auth-failed",
        "authentication failed",
        "A CDS Hooks call whose bearer token is missing, invalid or not allowed.",
        "Check the client's JWT and the service's allowlist (docs/service.md).",
    ),
    (
        "service-request-invalid",
        "a service request that cannot be used",
        "A CDS Hooks request whose context, prefetch or body is unusable or too large.",
        "Follow the message; docs/service.md describes the limits.",
    ),
)

#: Reported values longer than this are shortened in messages.
_SHOWN_MAX = 80
#: The default code of an error class (an instance may carry a more specific one).
_DEFAULT_CODE = "value-unparseable"


def error_title(code: str) -> str:
    """The one wording of ``code`` (raises KeyError for an unregistered code)."""
    return ERROR_CODES[code].title


class B12LabsError(Exception):
    """Base class of every error b12labs raises; ``code`` is a key of :data:`ERROR_CODES`."""

    code: str = "input-format"

    def __init_subclass__(cls, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        if cls.code not in ERROR_CODES:  # pragma: no cover - caught at import time
            raise AssertionError(f"{cls.__name__}.code {cls.code!r} is not registered")


class InputError(B12LabsError, ValueError):
    """A measurement or context value that cannot be used.

    Attributes: ``code`` (a key of :data:`ERROR_CODES`), ``analyte`` (analyte key or context
    field), ``reported`` (the text as given), ``reason`` (why it was refused: the code's title,
    sometimes with a detail) and ``accepted`` (what would be accepted instead).
    """

    code = _DEFAULT_CODE

    def __init__(
        self,
        reason: str | None = None,
        *,
        code: str | None = None,
        analyte: str | None = None,
        reported: object = None,
        accepted: str | None = None,
    ) -> None:
        if code is not None:
            if code not in ERROR_CODES:
                raise AssertionError(f"unregistered error code {code!r}")
            self.code = code
        self.analyte = analyte
        self.reported = reported
        self.reason = reason if reason is not None else ERROR_CODES[self.code].title
        self.accepted = accepted
        parts = []
        if analyte is not None:
            parts.append(f"{analyte}: ")
        if reported is not None:
            shown = repr(reported)
            if len(shown) > _SHOWN_MAX:  # a 400-digit cell is named, not echoed in full
                shown = f"{shown[: _SHOWN_MAX - 20]}... ({len(shown)} characters)"
            parts.append(f"{shown}: ")
        parts.append(self.reason)
        if accepted:
            parts.append(f" (accepted: {accepted})")
        super().__init__("".join(parts))


class UnitError(InputError):
    """A unit that is missing, unknown, or of the wrong dimension for the analyte."""

    code = "unit-unknown"


class InvalidValueError(InputError):
    """A value that is not a usable number: text, NaN/inf, negative, or a bad comparator."""

    code = "value-unparseable"


class UnknownAnalyteError(InputError):
    """A panel key that is not one of the analytes of docs/clinical-logic.md §2."""

    code = "analyte-unknown"


class VocabularyError(InputError):
    """A symptom or condition term outside the closed vocabulary of docs/clinical-logic.md §3."""

    code = "vocabulary-unknown"

    def __init__(self, field: str, term: str, vocabulary: Iterable[str]) -> None:
        self.vocabulary = sorted(vocabulary)
        super().__init__(
            f"unknown {field[:-1] if field.endswith('s') else field} term",
            analyte=field,
            reported=term,
            accepted=", ".join(self.vocabulary),
        )


class ProfileError(B12LabsError, ValueError):
    """A threshold profile that cannot be loaded: names the file and the key."""

    code = "profile-invalid"

    def __init__(
        self,
        reason: str,
        *,
        file: str | None = None,
        key: str | None = None,
        code: str | None = None,
    ) -> None:
        if code is not None:
            if code not in ERROR_CODES:
                raise AssertionError(f"unregistered error code {code!r}")
            self.code = code
        self.file = file
        self.key = key
        self.reason = reason
        where = " ".join(p for p in (file, f"[{key}]" if key else None) if p)
        super().__init__(f"{where}: {reason}" if where else reason)


class InputFormatError(B12LabsError, ValueError):
    """A batch input (file or frame) that cannot be scored as given."""

    code = "input-format"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        if code is not None:
            if code not in ERROR_CODES:
                raise AssertionError(f"unregistered error code {code!r}")
            self.code = code
        super().__init__(message)


class MissingExtraError(B12LabsError, ImportError):
    """An optional feature used without its extra installed; the message names the extra."""

    code = "extra-missing"

    def __init__(self, feature: str, extra: str, missing: str) -> None:
        self.feature = feature
        self.extra = extra
        super().__init__(
            f"{feature} needs the optional dependency {missing!r}: pip install 'b12labs[{extra}]'"
        )


class ServiceError(B12LabsError):
    """Base of the errors of the optional CDS Hooks service (``b12labs.service``)."""

    code = "service-request-invalid"
