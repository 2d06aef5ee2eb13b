"""Typed models (pydantic v2): inputs (:class:`Measurement`, :class:`LabPanel`,
:class:`PatientContext`) and the immutable, JSON-serialisable outputs
(:class:`Interpretation`, :class:`Finding`, :class:`Evidence`, :class:`Action`).
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum
from typing import Any, Literal, TypeVar

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    computed_field,
    field_validator,
    model_validator,
)

from . import _grammar as grammar
from .errors import ERROR_CODES, InputError, InvalidValueError, UnitError, UnknownAnalyteError
from .units import ANALYTES, accepted_units, resolve_unit, unit_hint
from .vocabulary import (
    NEUROLOGICAL_SYMPTOMS,
    match_medication,
    normalise_condition,
    normalise_symptom,
)

__all__ = [
    "Action",
    "Comparator",
    "Evidence",
    "Finding",
    "HistoryEntry",
    "IgnoredInput",
    "Interpretation",
    "LabPanel",
    "Measurement",
    "PatientContext",
    "Severity",
    "Status",
    "parse_measurement",
    "parse_panel",
]

Comparator = Literal["<", "<=", ">", ">="]


def _coded(exc: ValueError) -> InputError | None:
    """The b12labs error a validator raised inside a pydantic ``ValidationError``, if any."""
    errors = getattr(exc, "errors", None)
    for err in errors() if callable(errors) else ():
        found = (err.get("ctx") or {}).get("error")
        if isinstance(found, InputError):
            return found
    cause = exc.__cause__ or exc.__context__
    return cause if isinstance(cause, InputError) else None


class Measurement(BaseModel):
    """One reported result: value, unit and comparator as the lab gave them.

    ``value`` is ``None`` only for a qualitative result (``qualitative``). ``ref_low`` and
    ``ref_high`` are the lab's own reference interval, in the same unit as ``value``.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    value: float | None = None
    unit: str | None = None
    comparator: Comparator | None = None
    ref_low: float | None = None
    ref_high: float | None = None
    reported: str | None = Field(default=None, description="the result text as reported")
    #: a qualitative result (the IF antibody); ``equivocal`` is measured but counts as neither
    qualitative: grammar.Qualitative | None = None

    @field_validator("comparator", mode="before")
    @classmethod
    def _comparator(cls, v: object) -> object:
        if v is None or v == "":
            return None
        if isinstance(v, str) and v.strip() in grammar.COMPARATORS:
            return grammar.COMPARATORS[v.strip()]
        raise InvalidValueError(
            code="comparator-invalid",
            analyte="comparator",
            reported=v,
            accepted=grammar.COMPARATORS_ACCEPTED,
        )

    @model_validator(mode="after")
    def _check(self) -> Measurement:
        for name in ("value", "ref_low", "ref_high"):
            x = getattr(self, name)
            if x is not None:
                bad = grammar.check_number(x)
                if isinstance(bad, tuple):
                    code = bad[0] if name == "value" else "reference-invalid"
                    raise InvalidValueError(code=code, analyte=name, reported=x, accepted=bad[1])
        if self.ref_low is not None and self.ref_high is not None and self.ref_low > self.ref_high:
            raise InvalidValueError(
                code="reference-inverted",
                analyte="ref_low",
                reported=f"{self.ref_low:g} > {self.ref_high:g}",
                accepted="ref_low <= ref_high",
            )
        if self.value is None and self.qualitative is None:
            raise InvalidValueError(
                code="value-missing", accepted="a value (or a qualitative result)"
            )
        return self

    def text(self) -> str:
        """The result as it would be printed: ``'<50 pmol/L'``, ``'positive'``."""
        if self.reported:
            return self.reported
        if self.qualitative:
            return self.qualitative
        num = f"{self.value:g}"
        # a unit the library supplied is shown as a clinician writes it, not as UCUM
        unit = {"mL/min/{1.73_m2}": "mL/min/1.73m2"}.get(self.unit or "", self.unit)
        return f"{self.comparator or ''}{num}{' ' + unit if unit else ''}"


def _check_value(value: float, analyte: str, reported: object) -> float:
    if isinstance(value, int) and abs(value) > grammar.MAX_MAGNITUDE:  # before float(): no overflow
        raise InvalidValueError(code="value-too-large", analyte=analyte, reported=reported)
    bad = grammar.check_number(float(value))
    if isinstance(bad, tuple):
        raise InvalidValueError(code=bad[0], analyte=analyte, reported=reported, accepted=bad[1])
    return bad


@functools.lru_cache(maxsize=65536)
def _parse_text(
    analyte: str, text: str, decimal: str, unit: str | None, numeric: bool = False
) -> Measurement:
    """Parse a result string (cached: a pure function returning an immutable Measurement).

    ``numeric`` reads a qualitative analyte's text as a number (a mapping that brings the
    laboratory's cut-off with it); the cut-off then decides positive or negative.
    """
    return _parse_text_uncached(analyte, text, decimal, unit, numeric)


def _parse_text_uncached(
    analyte: str, text: str, decimal: str, unit: str | None, numeric: bool = False
) -> Measurement:
    spec = ANALYTES[analyte]
    stripped = text.strip()
    if grammar.is_missing(stripped):
        raise InvalidValueError(code="value-missing", analyte=analyte, reported=text)
    if spec.qualitative and not numeric:
        q = grammar.read_qualitative(stripped, field=analyte)
        return Measurement(qualitative=q, reported=stripped)
    cell = grammar.read_cell(stripped, decimal=decimal, field=analyte)
    text_unit = cell.unit
    if text_unit and unit and text_unit.strip() != unit.strip():
        resolved_text = resolve_unit(analyte, text_unit).code
        if resolved_text != resolve_unit(analyte, unit).code:
            raise UnitError(
                code="unit-conflict",
                analyte=analyte,
                reported=text,
                accepted=f"the unit given ({unit!r}) or none in the value",
            )
    return Measurement(
        value=cell.value, unit=text_unit or unit, comparator=cell.comparator, reported=stripped
    )


def _with_unit(analyte: str, m: Measurement) -> Measurement:
    """Check the unit (present when required, known, right dimension); fill a default."""
    spec = ANALYTES[analyte]
    if spec.qualitative:
        return m
    if m.unit is None or not m.unit.strip():
        if spec.unit_required or spec.default_unit is None:
            raise UnitError(
                f"{ERROR_CODES['unit-missing'].title} (it is never guessed: {unit_hint(analyte)})",
                code="unit-missing",
                analyte=analyte,
                reported=m.text(),
                accepted=accepted_units(analyte),
            )
        return m.model_copy(update={"unit": spec.default_unit})
    resolve_unit(analyte, m.unit)  # raises UnitError
    return m


@functools.lru_cache(maxsize=8192)
def _machine_measurement(analyte: str, value: float, unit: str, is_int: bool) -> Measurement:
    """``{"value": 250.0, "unit": "pg/mL"}`` checked and built once per distinct input (the
    result is frozen, so sharing it is safe; a refused one raises every time). ``value`` is
    a float or int, never a bool (the caller checks the exact type); ``is_int`` keeps 250 and
    250.0 apart in the cache, since they compare equal."""
    checked = _check_value(value, analyte, value)
    resolve_unit(analyte, unit)  # raises UnitError
    return _new_measurement(value=checked, unit=unit)


def parse_measurement(
    analyte: str, raw: object, *, decimal: str = ".", unit: str | None = None
) -> Measurement:
    """Parse one result for ``analyte`` from a string, a number, a mapping or a Measurement.

    Strings: ``"180 pg/mL"``, ``"<50 pmol/L"``, ``">= 2000 ng/L"``, ``"positive"``; a decimal
    comma only with ``decimal=","``. ``unit`` names the unit when the value carries none.
    Raises :class:`~b12labs.errors.InputError` subclasses that say what would be accepted.
    """
    if analyte not in ANALYTES:
        raise UnknownAnalyteError(
            "unknown analyte key", analyte=analyte, accepted=", ".join(ANALYTES)
        )
    if decimal not in (".", ","):
        raise InvalidValueError(
            code="option-invalid", analyte="decimal", reported=decimal, accepted="'.' or ','"
        )
    if type(raw) is dict and unit is None and len(raw) == 2:
        # the common machine form {"value": 250.0, "unit": "pg/mL"}: the same checks as the
        # general path below (finite, non-negative, a known unit of the right dimension)
        value, value_unit = raw.get("value"), raw.get("unit")
        if (
            (type(value) is float or type(value) is int)
            and type(value_unit) is str
            and value_unit.strip()
            and not ANALYTES[analyte].qualitative
        ):
            return _machine_measurement(analyte, value, value_unit, type(value) is int)
    if isinstance(raw, Measurement):
        m = raw if unit is None or raw.unit else raw.model_copy(update={"unit": unit})
    elif isinstance(raw, str):
        m = _parse_text(analyte, raw, decimal, unit)
    elif isinstance(raw, bool):
        # a bool is never a number, nor a positive/negative result (True is not "positive")
        raise InvalidValueError(
            code="value-type-invalid",
            analyte=analyte,
            reported=raw,
            accepted="a number with its unit, or positive/negative/equivocal text",
        )
    elif isinstance(raw, (int, float)):
        m = Measurement(value=_check_value(raw, analyte, raw), unit=unit)
    elif isinstance(raw, Mapping):
        data = dict(raw)
        value = data.get("value")
        if isinstance(value, str):
            numeric = (
                ANALYTES[analyte].qualitative
                and value.strip().lower() not in grammar.QUALITATIVE_WORDS
                and data.get("ref_high") is not None
            )
            base = _parse_text(analyte, value, decimal, data.get("unit") or unit, numeric)
            data = {
                **base.model_dump(exclude_none=True),
                **{k: v for k, v in data.items() if k != "value"},
            }
            data.setdefault("unit", base.unit)
            if base.value is not None:
                data["value"] = base.value
        elif isinstance(value, bool):
            raise InvalidValueError(
                code="value-type-invalid", analyte=analyte, reported=value, accepted="a number"
            )
        elif isinstance(value, (int, float)):
            data["value"] = _check_value(value, analyte, value)
        elif value is not None:
            raise InvalidValueError(
                code="value-type-invalid", analyte=analyte, reported=value, accepted="a number"
            )
        if unit is not None and not data.get("unit"):
            data["unit"] = unit
        for key in ("ref_low", "ref_high"):
            if key in data:
                data[key] = grammar.read_limit(data[key], field=f"{analyte}.{key}", decimal=decimal)
        try:
            m = Measurement.model_validate(data)
        except ValueError as exc:
            coded = _coded(exc)
            if coded is not None:
                raise InvalidValueError(
                    coded.reason,
                    code=coded.code,
                    analyte=analyte if coded.analyte is None else f"{analyte}.{coded.analyte}",
                    reported=coded.reported,
                    accepted=coded.accepted,
                ) from None
            raise InvalidValueError(
                f"{ERROR_CODES['value-type-invalid'].title}: {_first_error(exc)}",
                code="value-type-invalid",
                analyte=analyte,
                reported=dict(raw),
            ) from None
    else:
        raise InvalidValueError(
            f"{ERROR_CODES['value-type-invalid'].title}: cannot read a {type(raw).__name__} "
            "as a measurement",
            code="value-type-invalid",
            analyte=analyte,
            reported=raw,
            accepted="a string such as '250 pg/mL', a mapping with value and unit, or a Measurement",
        )
    if m.qualitative is None and ANALYTES[analyte].qualitative:
        m = _qualitative_from_number(analyte, m)
    return _with_unit(analyte, m)


#: What a qualitative analyte (the IF antibody) accepts, in every front-end's errors.
QUALITATIVE_ACCEPTED = grammar.QUALITATIVE_ACCEPTED
#: Why a number alone cannot be read for a qualitative analyte.
QUALITATIVE_NEEDS_CUTOFF = ERROR_CODES["qualitative-needs-cutoff"].title


def _qualitative_from_number(analyte: str, m: Measurement) -> Measurement:
    """A numeric result of a qualitative analyte (an antibody in U/mL, an index).

    Positive above the laboratory's cut-off (``ref_high``), negative at or below it. Without a
    cut-off the number is an error: it is never read as negative (a positive antibody changes
    the interpretation). A censored value decides only when its whole interval lies on one side.
    """
    reported = m.reported or m.text()
    if m.ref_high is None or m.value is None:
        raise InvalidValueError(
            QUALITATIVE_NEEDS_CUTOFF,
            code="qualitative-needs-cutoff",
            analyte=analyte,
            reported=reported,
            accepted=QUALITATIVE_ACCEPTED,
        )
    cut = m.ref_high
    v, cmp = m.value, m.comparator
    # the whole (censored) interval must lie on one side of the cut-off
    above = v >= cut if cmp == ">" else (v > cut and cmp in (None, ">="))
    at_or_below = v <= cut and cmp in (None, "<", "<=")
    if above == at_or_below:  # a censored value on both sides of the cut-off
        raise InvalidValueError(
            f"{ERROR_CODES['value-censored-invalid'].title}: it lies on both sides of the "
            f"laboratory's cut-off ({cut:g})",
            code="value-censored-invalid",
            analyte=analyte,
            reported=reported,
            accepted=QUALITATIVE_ACCEPTED,
        )
    unit = f" {m.unit}" if m.unit else ""
    return Measurement(
        qualitative="positive" if above else "negative",
        reported=f"{reported} (cut-off {cut:g}{unit})",
    )


def _first_error(exc: ValueError) -> str:
    errors = getattr(exc, "errors", None)
    if callable(errors):
        first = errors()[0]
        loc = ".".join(str(x) for x in first.get("loc", ()))
        msg = str(first.get("msg", exc)).removeprefix("Value error, ")
        return f"{loc}: {msg}" if loc else msg
    return str(exc)


def parse_panel(panel: Mapping[str, object], *, decimal: str = ".") -> dict[str, Measurement]:
    """Parse a mapping of analyte keys to results; ``None`` / empty values are skipped."""
    out: dict[str, Measurement] = {}
    for key, raw in panel.items():
        spec = ANALYTES.get(key)
        if spec is None:
            raise UnknownAnalyteError(
                "unknown analyte key", analyte=str(key), accepted=", ".join(ANALYTES)
            )
        if type(raw) is dict and len(raw) == 2 and not spec.qualitative:
            # the machine form {"value": 250.0, "unit": "pg/mL"}, as parse_measurement reads it
            value, unit = raw.get("value"), raw.get("unit")
            if (
                (type(value) is float or type(value) is int)
                and type(unit) is str
                and unit.strip()
                and decimal in (".", ",")
            ):
                out[key] = _machine_measurement(key, value, unit, type(value) is int)
                continue
        if raw is None or (type(raw) is not dict and grammar.is_missing(raw)):
            continue  # None, NaN, "", "NA", "N/A", "null"…: no result (a dict never is)
        out[key] = parse_measurement(key, raw, decimal=decimal)
    return out


class LabPanel(BaseModel):
    """A patient's results, keyed by the analytes of docs/clinical-logic.md §2 (all optional).

    Accepts strings, numbers (with a unit only where docs/clinical-logic.md §2 allows none), mappings or
    :class:`Measurement` objects; an unknown key is an error naming it.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    b12: Measurement | None = None
    holotc: Measurement | None = None
    mma: Measurement | None = None
    homocysteine: Measurement | None = None
    mcv: Measurement | None = None
    hb: Measurement | None = None
    rdw: Measurement | None = None
    ferritin: Measurement | None = None
    tsat: Measurement | None = None
    iron: Measurement | None = None
    tibc: Measurement | None = None
    folate: Measurement | None = None
    rbc_folate: Measurement | None = None
    creatinine: Measurement | None = None
    egfr: Measurement | None = None
    crp: Measurement | None = None
    if_antibody: Measurement | None = None
    retic: Measurement | None = None

    @model_validator(mode="before")
    @classmethod
    def _parse(cls, data: Any, info: Any) -> Any:
        if isinstance(data, Mapping):
            decimal = "."
            if info.context and isinstance(info.context, Mapping):
                decimal = info.context.get("decimal", ".")
            return parse_panel(data, decimal=decimal)
        return data

    @classmethod
    def parse(cls, panel: Mapping[str, object] | LabPanel, *, decimal: str = ".") -> LabPanel:
        """Build a panel, raising b12labs errors (not pydantic's) for bad input."""
        if isinstance(panel, LabPanel):
            return panel
        if not isinstance(panel, Mapping):
            raise InvalidValueError(
                f"{ERROR_CODES['input-type-invalid'].title}: a panel must be a mapping or a "
                f"LabPanel, not {type(panel).__name__}",
                code="input-type-invalid",
            )
        return cls.model_construct(None, **parse_panel(panel, decimal=decimal))

    def measurements(self) -> dict[str, Measurement]:
        """The results present, keyed by analyte, in catalogue order."""
        return {k: v for k in ANALYTES if (v := getattr(self, k)) is not None}


def parse_bool(value: object, field: str) -> bool | None:
    """Booleans as docs/clinical-logic.md §3 accepts them: true/false, yes/no, y/n, 1/0
    (the one reading, :func:`b12labs._grammar.read_bool`)."""
    return grammar.read_bool(value, field=field)


_SEX = {
    "female": "female",
    "f": "female",
    "woman": "female",
    "male": "male",
    "m": "male",
    "man": "male",
    "other": "other",
    "o": "other",
    "x": "other",
    "unknown": "unknown",
    "u": "unknown",
    "": "unknown",
}


def _split_terms(value: object, field: str) -> list[str]:
    if value is None:
        return []
    if isinstance(value, float) and math.isnan(value):
        return []
    if isinstance(value, str):
        return [t.strip() for t in re.split(r"[;|]", value) if t.strip()]
    # a mapping would iterate its keys and bytes their integers: never a list of terms
    if isinstance(value, Iterable) and not isinstance(value, (Mapping, bytes, bytearray)):
        items = list(value)
        if all(isinstance(t, str) for t in items):
            return [t.strip() for t in items if t.strip()]
    raise InvalidValueError(
        code="value-type-invalid",
        analyte=field,
        reported=value,
        accepted="a string ('a; b') or a list of strings",
    )


class PatientContext(BaseModel):
    """Patient context of docs/clinical-logic.md §3; every field optional.

    ``symptoms`` and ``conditions`` are closed vocabularies (synonyms accepted, an unknown term
    is an error listing the vocabulary); ``medications`` is free text, matched to classes.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    age: float | None = Field(default=None, ge=0, le=130, description="years")
    sex: Literal["female", "male", "other", "unknown"] = "unknown"
    pregnant: bool | None = None
    medications: tuple[str, ...] = ()
    conditions: tuple[str, ...] = ()
    symptoms: tuple[str, ...] = ()
    nitrous_oxide_exposure: bool | None = None
    b12_treatment: Literal["none", "oral", "injection"] | None = None
    days_since_b12_injection: float | None = Field(default=None, ge=0)
    #: the date B12 replacement began (ISO 8601); results over time measure from it
    b12_treatment_started: date | None = None
    #: when the specimen was collected (ISO 8601; a time without a zone is UTC)
    collected_at: datetime | None = None
    gestational_weeks: float | None = Field(default=None, ge=0, le=45)
    breastfeeding: bool | None = None

    @field_validator("age", "days_since_b12_injection", "gestational_weeks", mode="before")
    @classmethod
    def _number(cls, v: object, info: Any) -> object:
        upper = {"age": 130.0, "gestational_weeks": 45.0}.get(info.field_name)
        return grammar.read_plain_number(v, field=info.field_name, upper=upper)

    @field_validator("b12_treatment_started", "collected_at", mode="before")
    @classmethod
    def _date(cls, v: object, info: Any) -> object:
        return _read_date(v, info.field_name, with_time=info.field_name == "collected_at")

    @model_validator(mode="after")
    def _dates_in_order(self) -> PatientContext:
        start, when = self.b12_treatment_started, self.collected_at
        if start is not None and when is not None and start > when.date():
            raise InvalidValueError(
                code="date-treatment-order",
                analyte="b12_treatment_started",
                reported=start.isoformat(),
            )
        return self

    @field_validator("sex", mode="before")
    @classmethod
    def _sex(cls, v: object) -> object:
        if v is None or (isinstance(v, float) and math.isnan(v)):
            return "unknown"
        if isinstance(v, str) and v.strip().lower() in _SEX:
            return _SEX[v.strip().lower()]
        if grammar.is_missing(v):
            return "unknown"
        raise InvalidValueError(
            code="context-value-invalid",
            analyte="sex",
            reported=v,
            accepted="female/f, male/m, other, unknown/u",
        )

    @field_validator("pregnant", "nitrous_oxide_exposure", "breastfeeding", mode="before")
    @classmethod
    def _bool(cls, v: object, info: Any) -> object:
        return parse_bool(v, info.field_name)

    @field_validator("b12_treatment", mode="before")
    @classmethod
    def _treatment(cls, v: object) -> object:
        if v is None or (isinstance(v, float) and math.isnan(v)):
            return None
        if isinstance(v, str):
            t = v.strip().lower()
            if not t:
                return None
            aliases = {
                "im": "injection",
                "intramuscular": "injection",
                "injections": "injection",
                "tablets": "oral",
                "tablet": "oral",
                "no": "none",
            }
            t = aliases.get(t, t)
            if t in ("none", "oral", "injection"):
                return t
        if grammar.is_missing(v):
            return None
        raise InvalidValueError(
            code="context-value-invalid",
            analyte="b12_treatment",
            reported=v,
            accepted="none, oral, injection",
        )

    @field_validator("medications", mode="before")
    @classmethod
    def _meds(cls, v: object) -> object:
        return tuple(_split_terms(v, "medications"))

    @field_validator("conditions", mode="before")
    @classmethod
    def _conditions(cls, v: object) -> object:
        return tuple(dict.fromkeys(normalise_condition(t) for t in _split_terms(v, "conditions")))

    @field_validator("symptoms", mode="before")
    @classmethod
    def _symptoms(cls, v: object) -> object:
        return tuple(dict.fromkeys(normalise_symptom(t) for t in _split_terms(v, "symptoms")))

    @property
    def medication_classes(self) -> frozenset[str]:
        """The docs/clinical-logic.md §3 medication classes matched by ``medications``."""
        return frozenset(c for m in self.medications for c in match_medication(m).classes)

    @property
    def unrecognised_medications(self) -> tuple[str, ...]:
        """Medication entries that matched no class (kept, listed, otherwise ignored)."""
        return tuple(m for m in self.medications if not match_medication(m).classes)

    @property
    def neurological(self) -> bool:
        """Whether any neurological symptom of docs/clinical-logic.md §3 is present."""
        return any(s in NEUROLOGICAL_SYMPTOMS for s in self.symptoms)

    @classmethod
    def parse(cls, context: Mapping[str, object] | PatientContext | None) -> PatientContext:
        """Build a context, raising b12labs errors (not pydantic's) for bad input."""
        if context is None:
            return _EMPTY_CONTEXT
        if isinstance(context, PatientContext):
            return context
        if not isinstance(context, Mapping):
            raise InvalidValueError(
                f"{ERROR_CODES['input-type-invalid'].title}: a context must be a mapping or a "
                f"PatientContext, not {type(context).__name__}",
                code="input-type-invalid",
            )
        unknown = [str(k) for k in context if k not in cls.model_fields]
        if unknown:
            raise InvalidValueError(
                code="context-unknown-key",
                analyte=unknown[0],
                accepted=", ".join(cls.model_fields),
            )
        key = _context_key(context)
        try:
            return cls.model_validate(context) if key is None else _validated_context(key)
        except ValueError as exc:
            coded = _coded(exc)
            if coded is not None:
                raise coded from None
            errors = getattr(exc, "errors", None)
            field = None
            first: dict[str, Any] = errors()[0] if callable(errors) else {}
            loc = first.get("loc", ())
            field = str(loc[0]) if loc else None
            # the field is named once, by the error's analyte (not again in the message)
            msg = str(first.get("msg", exc)).removeprefix("Value error, ")
            raise InvalidValueError(
                f"{ERROR_CODES['context-value-invalid'].title}: {msg}",
                code="context-value-invalid",
                analyte=field,
                reported=first.get("input"),
            ) from None


_EMPTY_CONTEXT = PatientContext()

#: Value types a context is remembered by (exactly these: ``True`` is not ``1``).
_PLAIN_TYPES = frozenset({type(None), bool, int, float, str})
#: Fields read against the clock ("not in the future"): a context with one is never remembered.
_CLOCK_FIELDS = ("b12_treatment_started", "collected_at")

_ContextKey = tuple[tuple[str, type, Any, str | None], ...]


def _context_key(context: Mapping[str, object]) -> _ContextKey | None:
    """What a context dict is remembered by: each field's name, exact type and value (a
    float also by ``repr``, so ``-0.0`` is not ``0.0``), in the order given; ``None`` when a
    value is of another type (or a field is read against the clock), so it is always validated.
    """
    if type(context) is not dict:
        return None
    out = []
    for k, v in context.items():
        t = type(v)
        if type(k) is not str or k in _CLOCK_FIELDS:
            return None
        if t in _PLAIN_TYPES:
            out.append((k, t, v, repr(v) if t is float else None))
        elif (t is list or t is tuple) and all(type(x) is str for x in v):
            out.append((k, t, tuple(v), None))
        else:
            return None
    return tuple(out)


@functools.lru_cache(maxsize=4096)
def _validated_context(key: _ContextKey) -> PatientContext:
    """A context validated once per distinct input: validation is a function of the input
    alone (no clock fields), the model is frozen and its values immutable, so a repeated
    context (the same patient's next panel, a common age and sex) is not validated again.
    An input that fails is not remembered: it raises again every time."""
    data = {k: list(v) if t is list else v for k, t, v, _ in key}
    return PatientContext.model_validate(data)


#: a date this far ahead of the clock is "in the future" (time zones, clock skew)
_FUTURE_SLACK = timedelta(days=1)


@functools.lru_cache(maxsize=4096)
def _iso_datetime(value: str) -> datetime | None:
    """ISO 8601 text as an aware UTC datetime (a time without a zone is UTC; a date alone is
    its midnight UTC), or None when it is not ISO 8601. The reading of :func:`_read_date`
    for ``collected_at``, without the check against the clock (which must not be cached)."""
    text = value.strip()
    try:
        parsed = (
            datetime.fromisoformat(text) if "T" in text or " " in text else date.fromisoformat(text)
        )
    except ValueError:
        return None
    if not isinstance(parsed, datetime):
        return datetime(parsed.year, parsed.month, parsed.day, tzinfo=UTC)
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def _read_date(value: object, field: str, *, with_time: bool) -> date | datetime | None:
    """A context date: a ``date``/``datetime`` or ISO 8601 text (day/month order never guessed).

    ``collected_at`` becomes an aware UTC datetime (a time without a zone is UTC); a date in
    the future is refused, as in batch input.
    """
    if value is None or grammar.is_missing(value):
        return None
    if with_time and type(value) is str:
        parsed_at = _iso_datetime(value)  # cached: a history repeats few distinct times
        if parsed_at is None:
            raise InvalidValueError(
                code="date-invalid",
                analyte=field,
                reported=value,
                accepted="ISO 8601 (YYYY-MM-DD, optionally THH:MM)",
            )
        if parsed_at > datetime.now(UTC) + _FUTURE_SLACK:
            raise InvalidValueError(code="date-future", analyte=field, reported=value)
        return parsed_at
    if isinstance(value, datetime):
        parsed: date | datetime = value
    elif isinstance(value, date):
        parsed = value
    elif isinstance(value, str):
        text = value.strip()
        try:
            parsed = (
                datetime.fromisoformat(text)
                if "T" in text or " " in text
                else date.fromisoformat(text)
            )
        except ValueError:
            raise InvalidValueError(
                code="date-invalid",
                analyte=field,
                reported=value,
                accepted="ISO 8601 (YYYY-MM-DD, optionally THH:MM)",
            ) from None
    else:
        raise InvalidValueError(
            code="date-invalid",
            analyte=field,
            reported=value,
            accepted="ISO 8601 (YYYY-MM-DD, optionally THH:MM)",
        )
    now = datetime.now(UTC)
    if with_time:
        if not isinstance(parsed, datetime):
            parsed = datetime(parsed.year, parsed.month, parsed.day, tzinfo=UTC)
        elif parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=UTC)
        else:
            parsed = parsed.astimezone(UTC)
        future = parsed > now + _FUTURE_SLACK
    else:
        if isinstance(parsed, datetime):
            parsed = parsed.date()
        future = parsed > (now + _FUTURE_SLACK).date()
    if future:
        raise InvalidValueError(code="date-future", analyte=field, reported=value)
    return parsed


class HistoryEntry(BaseModel):
    """One earlier result set (docs/clinical-logic.md §8): analytes, when, and what was known then.

    Parsed from a mapping of §2 analyte keys (values as in a panel), a required
    ``collected_at`` (ISO 8601; a time without a zone is UTC) and an optional ``context`` of
    §3 fields as they were at the time (treatment, symptoms). A value that would be an error in
    a panel is an error here, named ``history[i].<key>``.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    collected_at: datetime
    results: dict[str, Measurement] = Field(default_factory=dict)
    context: PatientContext | None = None

    @classmethod
    def parse(
        cls, entry: Mapping[str, object] | HistoryEntry, *, index: int = 0, decimal: str = "."
    ) -> HistoryEntry:
        """Build an entry, raising b12labs errors located at ``history[index]``."""
        if isinstance(entry, HistoryEntry):
            return entry
        where = f"history[{index}]"
        if not isinstance(entry, Mapping):
            raise InvalidValueError(
                f"{ERROR_CODES['history-entry-invalid'].title}: a mapping, not "
                f"{type(entry).__name__}",
                code="history-entry-invalid",
                analyte=where,
            )
        fields = dict(entry)
        when = fields.pop("collected_at", None)
        raw_context = fields.pop("context", None)
        if when is None or grammar.is_missing(when):
            raise InvalidValueError(code="history-date-missing", analyte=where)
        try:
            collected = _read_date(when, "collected_at", with_time=True)
            context = None if raw_context is None else PatientContext.parse(raw_context)  # type: ignore[arg-type]
            results = parse_panel(fields, decimal=decimal)
        except UnknownAnalyteError as exc:
            raise InvalidValueError(
                code="history-entry-invalid",
                analyte=f"{where}.{exc.analyte}",
                accepted=f"collected_at, context, {exc.accepted}",
            ) from None
        except InputError as exc:
            exc.analyte = f"{where}.{exc.analyte}" if exc.analyte else where
            exc.args = (f"{where}.{exc.args[0]}" if exc.args else where,)
            raise
        assert isinstance(collected, datetime)
        return _new_history_entry(collected_at=collected, results=results, context=context)


def parse_history(history: object, *, decimal: str = ".") -> tuple[HistoryEntry, ...]:
    """The entries of ``history`` (a sequence of mappings or :class:`HistoryEntry`)."""
    if history is None:
        return ()
    if isinstance(history, (str, bytes, Mapping)) or not isinstance(history, Sequence):
        raise InvalidValueError(
            f"{ERROR_CODES['input-type-invalid'].title}: history must be a list of earlier "
            f"panels, not {type(history).__name__}",
            code="input-type-invalid",
            analyte="history",
        )
    return tuple(HistoryEntry.parse(e, index=i, decimal=decimal) for i, e in enumerate(history))


class Severity(StrEnum):
    """Finding severity, ordered ``info`` < ``warning`` < ``critical``."""

    info = "info"
    warning = "warning"
    critical = "critical"

    @property
    def rank(self) -> int:
        return _SEVERITY_RANK[self]


_SEVERITY_RANK = {Severity.info: 1, Severity.warning: 2, Severity.critical: 3}


class Status(StrEnum):
    """Overall status of docs/clinical-logic.md §6."""

    deficient = "deficient"
    probable = "probable"
    indeterminate = "indeterminate"
    unlikely = "unlikely"
    uninterpretable = "uninterpretable"
    not_assessed = "not_assessed"


class _Out(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", use_enum_values=False)


_M = TypeVar("_M", bound=BaseModel)
_REQUIRED: Any = object()


def trusted_constructor(cls: type[_M]) -> Callable[..., _M]:
    """A constructor for models whose values b12labs has already checked or computed itself.

    ``interpret()`` builds several outputs per panel from values of the declared types
    (checked by ``mypy --strict`` and by tests that re-validate every output of the rule
    cases), and ``parse_measurement()`` builds a :class:`Measurement` from a value and unit
    it has checked as the validators would (a test compares both paths); validating again
    would only cost time. The instance is what ``cls.model_construct`` makes (pydantic's
    documented way to build a model from trusted data), without its per-field Python loop:
    omitted fields take their defaults, and fields with a default factory must be given.
    Raw user input never goes through it unchecked.
    """
    template: dict[str, Any] = {}
    for name, info in cls.model_fields.items():
        if info.is_required() or info.default_factory is not None:
            template[name] = _REQUIRED
        else:
            template[name] = info.get_default()
    new = cls.__new__
    setattr_ = object.__setattr__

    def make(**values: Any) -> _M:
        data = template.copy()
        data.update(values)
        obj = new(cls)
        setattr_(obj, "__dict__", data)
        setattr_(obj, "__pydantic_fields_set__", set(values))
        setattr_(obj, "__pydantic_extra__", None)
        setattr_(obj, "__pydantic_private__", None)
        return obj

    make.__qualname__ = make.__name__ = f"trusted_{cls.__name__}"
    return make


_new_measurement = trusted_constructor(Measurement)
_new_history_entry = trusted_constructor(HistoryEntry)


class Evidence(_Out):
    """One value a finding used: as reported, normalised, and the threshold it met."""

    analyte: str
    reported: str | None = Field(default=None, description="the result as reported")
    value: float | None = Field(
        default=None,
        description="value in `unit` (canonical unless a band was compared in the published unit)",
    )
    unit: str | None = None
    comparator: Comparator | None = None
    threshold: float | None = None
    threshold_unit: str | None = None
    threshold_source: str | None = None
    threshold_name: str | None = Field(default=None, description="profile threshold key")
    lab_interval: bool = Field(
        default=False, description="the lab's own reference interval replaced the profile limit"
    )
    note: str | None = None
    #: results over time (docs/clinical-logic.md §8): when this value was collected, and for
    #: the current value of a serial comparison the change from the earlier one
    collected_at: str | None = Field(default=None, description="ISO 8601 collection time")
    change: float | None = Field(
        default=None, description="change from the earlier value, in `unit`"
    )
    change_percent: float | None = Field(
        default=None, description="change from the earlier value, %"
    )


class Action(_Out):
    """A recommended next step: ``order_test`` (with LOINC), ``review`` or ``avoid``."""

    kind: Literal["order_test", "review", "avoid"]
    test: str
    loinc: str | None = None


class Finding(_Out):
    """One rule that fired: code, severity, explanation, evidence, actions and sources."""

    code: str
    severity: Severity
    title: str
    message: str
    evidence: tuple[Evidence, ...] = ()
    actions: tuple[Action, ...] = ()
    sources: tuple[str, ...] = ()
    #: which of the rule's branches fired (rules with one way of firing have none); the
    #: message and evidence are that branch's only
    branch: str | None = None


class IgnoredInput(_Out):
    """An input a front-end received but did not use (e.g. an entered-in-error Observation)."""

    source: str
    reason: str
    code: str | None = Field(
        default=None, description="the error code (docs/errors.md) when a value was refused"
    )


class Interpretation(_Out):
    """The interpretation of one panel: status, ordered findings, values used, provenance."""

    status: Status
    findings: tuple[Finding, ...] = ()
    values: dict[str, float] = Field(default_factory=dict, description="canonical values used")
    comment: str = ""
    profile_id: str
    profile_version: str
    library_version: str
    unrecognised_medications: tuple[str, ...] = ()
    ignored: tuple[IgnoredInput, ...] = Field(
        default=(), description="inputs received but not used, with the reason"
    )

    @computed_field  # type: ignore[prop-decorator]
    @property
    def codes(self) -> tuple[str, ...]:
        """The finding codes, in the order of ``findings``."""
        return tuple(f.code for f in self.findings)

    @property
    def max_severity(self) -> Severity | None:
        """The most severe finding's severity, or ``None``."""
        return self.findings[0].severity if self.findings else None

    def actions(self) -> tuple[Action, ...]:
        """Every action of every finding, de-duplicated, in finding order."""
        return tuple(dict.fromkeys(a for f in self.findings for a in f.actions))
