"""Shared pieces of the FHIR adapter: code systems, code maps, defensive readers, validation.

Everything here reads plain JSON-shaped dicts defensively (a malformed element yields
``None``, never an exception): resources are validated with ``fhir.resources.R4B`` before
they are used, but the adapter never lets one bad resource fail a whole call.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import json
import re
import threading
from collections import OrderedDict
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from fhir.resources.R4B import get_fhir_model_class

from .._data import read_toml
from ..units import ANALYTES

__all__ = [
    "ATC",
    "LOINC",
    "RXNORM",
    "SNOMED",
    "UCUM",
    "V3_INTERPRETATION",
    "CodeMaps",
    "as_dict",
    "as_list",
    "as_str",
    "code_maps",
    "codings",
    "loinc_analyte",
    "parse_fhir_datetime",
    "resource_label",
    "validate",
]

LOINC = "http://loinc.org"
SNOMED = "http://snomed.info/sct"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
ATC = "http://www.whocc.no/atc"
UCUM = "http://unitsofmeasure.org"
V3_INTERPRETATION = "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation"


# ---------------------------------------------------------------- defensive readers
def as_dict(x: object) -> dict[str, Any]:
    """``x`` if it is a JSON object, else an empty dict."""
    return x if isinstance(x, dict) else {}


def as_list(x: object) -> list[Any]:
    """``x`` if it is a JSON array, else an empty list."""
    return x if isinstance(x, list) else []


def as_str(x: object) -> str | None:
    """``x`` stripped if it is a non-empty string, else ``None``."""
    if isinstance(x, str) and x.strip():
        return x.strip()
    return None


def codings(concept: object) -> Iterator[tuple[str | None, str | None, str | None]]:
    """``(system, code, display)`` of each coding of a CodeableConcept."""
    for coding in as_list(as_dict(concept).get("coding")):
        c = as_dict(coding)
        yield as_str(c.get("system")), as_str(c.get("code")), as_str(c.get("display"))


def concept_texts(concept: object) -> list[str]:
    """The human-readable texts of a CodeableConcept: ``text`` first, then displays."""
    cc = as_dict(concept)
    out: list[str] = []
    text = as_str(cc.get("text"))
    if text:
        out.append(text)
    out.extend(display for _, _, display in codings(cc) if display and display not in out)
    return out


def resource_label(resource: Mapping[str, Any], position: int, full_url: str | None) -> str:
    """How an input resource is named in ``Interpretation.ignored``: ``Observation/abc``.

    Never a value: only the type and the id (or the bundle ``fullUrl``, or the position).
    """
    rtype = as_str(resource.get("resourceType")) or "resource"
    rid = as_str(resource.get("id"))
    if rid:
        return f"{rtype}/{rid}"
    if full_url:
        return full_url
    return f"{rtype} #{position + 1}"


# ---------------------------------------------------------------- dates
_PARTIAL = re.compile(r"^(\d{4})(?:-(\d{2}))?(?:-(\d{2}))?$")


def parse_fhir_datetime(value: object, *, latest: bool = False) -> dt.datetime | None:
    """A FHIR ``date``/``dateTime``/``instant`` string as an aware datetime (UTC if none given).

    Partial dates (``2013``, ``2013-04``) become the first moment of the period, or with
    ``latest`` its last day. Returns ``None`` for anything unreadable.
    """
    if isinstance(value, dt.datetime):
        return value if value.tzinfo else value.replace(tzinfo=dt.UTC)
    if isinstance(value, dt.date):
        return dt.datetime(value.year, value.month, value.day, tzinfo=dt.UTC)
    text = as_str(value)
    if text is None:
        return None
    m = _PARTIAL.match(text)
    try:
        if m:
            year = int(m.group(1))
            month = int(m.group(2)) if m.group(2) else (12 if latest else 1)
            if m.group(3):
                day = int(m.group(3))
            elif latest:
                nxt = dt.date(year + (month == 12), month % 12 + 1, 1)
                day = (nxt - dt.timedelta(days=1)).day
            else:
                day = 1
            return dt.datetime(year, month, day, tzinfo=dt.UTC)
        parsed = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


# ---------------------------------------------------------------- code maps
@dataclass(frozen=True, slots=True)
class SnomedEntry:
    """What one SNOMED CT concept means for the patient context."""

    condition: str | None = None
    symptom: str | None = None
    pregnant: bool | None = None


@dataclass(frozen=True, slots=True)
class CodeMaps:
    """The terminology maps of ``reference_ranges/codes/`` plus the LOINC analyte codes."""

    loinc_analyte: Mapping[str, str]
    rxnorm: Mapping[str, str]
    atc: Mapping[str, str]
    snomed: Mapping[str, SnomedEntry]
    pregnancy_observations: frozenset[str]
    pregnancy_answers: Mapping[str, bool | None]


def _entries(name: str) -> list[dict[str, Any]]:
    return [as_dict(e) for e in as_list(read_toml("codes", name).get("code"))]


@functools.cache
def code_maps() -> CodeMaps:
    """Load the code maps once (the files are read-only data)."""
    loinc_analyte = {code: key for key, spec in ANALYTES.items() for code in spec.loinc}
    snomed: dict[str, SnomedEntry] = {}
    for e in _entries("snomed.toml"):
        pregnant = e.get("pregnant")
        snomed[str(e["code"])] = SnomedEntry(
            condition=e.get("condition"),
            symptom=e.get("symptom"),
            pregnant=pregnant if isinstance(pregnant, bool) else None,
        )
    observations: set[str] = set()
    answers: dict[str, bool | None] = {}
    for e in _entries("loinc-context.toml"):
        if e.get("kind") == "observation" and e.get("context") == "pregnant":
            observations.add(str(e["code"]))
    for e in _entries("loinc-context.toml"):
        if e.get("kind") == "answer" and e.get("answer_for") in observations:
            pregnant = e.get("pregnant")
            answers[str(e["code"])] = pregnant if isinstance(pregnant, bool) else None
    return CodeMaps(
        loinc_analyte=loinc_analyte,
        rxnorm={str(e["code"]): str(e["medication"]) for e in _entries("rxnorm.toml")},
        atc={str(e["code"]): str(e["medication"]) for e in _entries("atc.toml")},
        snomed=snomed,
        pregnancy_observations=frozenset(observations),
        pregnancy_answers=answers,
    )


def loinc_analyte(concept: object) -> str | None:
    """The docs/clinical-logic.md §2 analyte key of an Observation.code, by its LOINC codings."""
    table = code_maps().loinc_analyte
    for system, code, _ in codings(concept):
        if system == LOINC and code is not None and code in table:
            return table[code]
    return None


# ---------------------------------------------------------------- validation
_CACHE_SIZE = 4096
_cache: OrderedDict[bytes, str | None] = OrderedDict()
_cache_lock = threading.Lock()


def _digest(resource: Mapping[str, Any]) -> bytes | None:
    try:
        text = json.dumps(resource, sort_keys=True, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError):  # not plain JSON (e.g. a Decimal): validate uncached
        return None
    return hashlib.blake2b(text.encode("utf-8"), digest_size=20).digest()


def validate(resource: Mapping[str, Any]) -> str | None:
    """Validate one resource with ``fhir.resources.R4B``; ``None`` if valid, else the reason.

    The reason names the element and the problem, never the offending value. Outcomes are
    kept in a bounded LRU cache keyed by a digest of the resource's canonical JSON (no
    resource content is kept), because EHRs send the same resources again and again and
    R4B validation costs about a millisecond per resource.
    """
    key = _digest(resource)
    if key is not None:
        with _cache_lock:
            if key in _cache:
                _cache.move_to_end(key)
                return _cache[key]
    outcome = _validate(resource)
    if key is not None:
        with _cache_lock:
            _cache[key] = outcome
            while len(_cache) > _CACHE_SIZE:
                _cache.popitem(last=False)
    return outcome


def _validate(resource: Mapping[str, Any]) -> str | None:
    rtype = as_str(resource.get("resourceType"))
    if rtype is None:
        return "no resourceType"
    try:
        model = get_fhir_model_class(rtype)
    except Exception:  # an unknown resource type: fhir.resources raises a plain error
        return f"unknown resource type for FHIR R4B: {rtype}"
    try:
        model.model_validate(dict(resource))
    except Exception as exc:  # pydantic's ValidationError, or fhir_core's own errors
        return "fails FHIR R4B validation: " + _first_error(exc)
    return None


def _first_error(exc: Exception) -> str:
    errors = getattr(exc, "errors", None)
    if callable(errors):
        try:
            listed = errors(include_input=False, include_url=False)
        except TypeError:
            listed = errors()
        if listed:
            first = listed[0]
            loc = ".".join(str(x) for x in first.get("loc", ()))
            msg = str(first.get("msg", "invalid"))
            more = f" (and {len(listed) - 1} more)" if len(listed) > 1 else ""
            return f"{loc}: {msg}{more}" if loc else f"{msg}{more}"
    return type(exc).__name__
