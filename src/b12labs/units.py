"""Units: one private pint registry, an explicit alias table, cached conversion factors.

Lab spellings and UCUM codes are resolved through ``reference_ranges/units.toml`` (never raw
through pint's parser); conversions are computed by pint once per (analyte, unit) and cached,
mass <-> molar through pint's ``chemistry`` context with the molar mass of
``reference_ranges/analytes.toml``. Hot paths multiply by the cached factor.
"""

from __future__ import annotations

import functools
import math
import re
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ._data import read_toml, reference_ranges
from .errors import B12LabsError, UnitError

if TYPE_CHECKING:  # pragma: no cover
    import pint

__all__ = [
    "ANALYTES",
    "AnalyteSpec",
    "ResolvedUnit",
    "accepted_units",
    "column_name",
    "convert",
    "registry",
    "resolve_unit",
    "round_sig",
    "ucum_code",
    "unit_hint",
]


@dataclass(frozen=True, slots=True)
class AnalyteSpec:
    """One analyte of docs/clinical-logic.md §2, as described in ``reference_ranges/analytes.toml``."""

    key: str
    name: str
    short: str
    loinc: tuple[str, ...]
    canonical_unit: str
    molar_mass: float | None
    plausible: tuple[float, float] | None
    #: canonical value above which a used result's unit is questioned (VALUE_SUSPECT_UNIT)
    suspect: float | None
    unit_required: bool
    default_unit: str | None
    qualitative: bool
    names: tuple[str, ...]
    #: spellings (matched exactly, with their case) that mean a unit for this analyte only:
    #: ``G/L`` is 10^9/L for a cell count, but folded to ``g/l`` it would be grams per litre
    unit_aliases: tuple[tuple[str, str], ...] = ()


def _load_analytes() -> dict[str, AnalyteSpec]:
    raw = read_toml("analytes.toml")["analytes"]
    out: dict[str, AnalyteSpec] = {}
    for key, spec in raw.items():
        plausible = spec.get("plausible")
        out[key] = AnalyteSpec(
            key=key,
            name=spec["name"],
            short=spec["short"],
            loinc=tuple(spec["loinc"]),
            canonical_unit=spec["canonical_unit"],
            molar_mass=spec.get("molar_mass"),
            plausible=(float(plausible[0]), float(plausible[1])) if plausible else None,
            suspect=float(spec["suspect"]) if "suspect" in spec else None,
            unit_required=bool(spec.get("unit_required", True)),
            default_unit=spec.get("default_unit"),
            qualitative=bool(spec.get("qualitative", False)),
            names=tuple(spec.get("names", ())),
            unit_aliases=tuple(spec.get("unit_aliases", {}).items()),
        )
    return out


#: The analytes of docs/clinical-logic.md §2, keyed by their analyte key, in catalogue order.
ANALYTES: dict[str, AnalyteSpec] = _load_analytes()

_UNITS = read_toml("units.toml")
_UCUM_TO_PINT: dict[str, str] = dict(_UNITS["ucum"])
_ALIASES: dict[str, str] = dict(_UNITS["aliases"])
_FOLD = str.maketrans({"\u00b5": "u", "\u03bc": "u", " ": None, "\t": None})
_UCUM_ONLY = re.compile(r"[\d*{}\[\]]")
# A unit outside the alias table is tried with pint only when every token is a metric
# mass, amount or volume unit with a lower-case SI prefix: upper-case prefixes (P, M, G) are
# never what a lab meant (`Pmol/mL` is not petamoles), and pint's imperial or angular units
# (`pt`, `deg`, `dB`) must not pass for a concentration or a percentage.
_FALLBACK_TOKEN = re.compile(
    r"^(?:(?:da|[afpnumcdhk])?(?:mol|g|l|L)"
    r"|(?:femto|pico|nano|micro|milli|centi|deci|kilo)?(?:gram|litre|liter|mole)s?)$"
)

_registry_lock = threading.Lock()
_pint_lock = threading.RLock()
_registry: pint.UnitRegistry[Any] | None = None


def registry() -> pint.UnitRegistry[Any]:
    """The library's one pint registry (built lazily; never the application registry)."""
    global _registry
    if _registry is None:
        with _registry_lock:
            if _registry is None:
                import pint

                ureg: pint.UnitRegistry[Any] = pint.UnitRegistry()
                definitions = reference_ranges().joinpath("units.txt")
                with definitions.open("r", encoding="utf-8") as fh:
                    for line in fh:
                        line = line.strip()
                        if line and not line.startswith("#"):
                            ureg.define(line)
                _registry = ureg
    return _registry


def round_sig(x: float, digits: int = 12) -> float:
    """Round to ``digits`` significant digits, removing float noise from unit factors."""
    if x == 0 or not math.isfinite(x):
        return x
    return round(x, digits - 1 - math.floor(math.log10(abs(x))))


def _fold(unit: str) -> str:
    folded = unit.strip().translate(_FOLD).lower()
    folded = folded.replace("mcg", "ug").replace("mcmol", "umol").replace("micromol", "umol")
    return folded


@functools.lru_cache(maxsize=4096)
def ucum_code(unit: str) -> str | None:
    """The canonical UCUM code for a lab or UCUM spelling in the alias table, else ``None``."""
    if unit in _UCUM_TO_PINT:
        return unit
    return _ALIASES.get(_fold(unit))


@dataclass(frozen=True, slots=True)
class ResolvedUnit:
    """A unit as resolved for one analyte: its code and the factor to the canonical unit."""

    analyte: str
    reported: str
    code: str
    factor: float


def _pint_expr(code: str) -> str:
    return _UCUM_TO_PINT.get(code, code)


class _WrongDimension(B12LabsError):
    pass


def _factor(spec: AnalyteSpec, src_expr: str, dst_expr: str) -> float:
    import pint

    ureg = registry()
    src = ureg.Quantity(1.0, ureg.parse_units(src_expr))  # unknown -> pint error (caller)
    dst = ureg.parse_units(dst_expr)
    if src.dimensionality == dst.dimensionality:
        return round_sig(float(src.to(dst).magnitude))
    if spec.molar_mass is not None:
        mw = ureg.Quantity(spec.molar_mass, "g/mol")
        try:
            return round_sig(float(src.to(dst, "chemistry", mw=mw).magnitude))
        except Exception:
            pass
        del pint
    raise _WrongDimension


def accepted_units(analyte: str) -> str:
    """Examples of units accepted for an analyte, for error messages."""
    spec = ANALYTES[analyte]
    if spec.qualitative:
        return "positive, negative, equivocal"
    examples = {
        "pmol/L": "pg/mL, ng/L, pmol/L" if spec.molar_mass else "pmol/L",
        "umol/L": "umol/L, µmol/L, nmol/L, nmol/mL"
        + (", mg/L, mg/dL, ug/dL" if spec.molar_mass else ""),
        "fL": "fL, um3",
        "g/L": "g/dL, g/L, mmol/L",
        "%": "%",
        "ug/L": "ng/mL, ug/L, mcg/L",
        "nmol/L": "ng/mL, ug/L, nmol/L",
        "mL/min/{1.73_m2}": "mL/min/1.73m2, mL/min/{1.73_m2}",
        "mg/L": "mg/L, mg/dL",
        "10*9/L": "10^9/L, 10*9/L, /nL, G/L",
    }
    return examples.get(spec.canonical_unit, spec.canonical_unit)


@functools.lru_cache(maxsize=64)
def unit_hint(analyte: str) -> str:
    """Why a unit is never guessed for ``analyte``: two of its common units and the factor
    between them (``pg/mL and pmol/L differ by 1.36x``), computed from the unit data."""
    examples = [u.strip() for u in accepted_units(analyte).split(",")]
    factors: list[tuple[str, float]] = []
    for u in examples:
        try:
            factors.append((u, resolve_unit(analyte, u).factor))
        except UnitError:
            continue
    for i, (a, fa) in enumerate(factors):
        for b, fb in factors[i + 1 :]:
            ratio = max(fa, fb) / min(fa, fb)
            if ratio > 1.0001:
                shown = f"{ratio:.3g}" if ratio < 100 else f"{ratio:.0f}"
                return f"{a} and {b} differ by {shown}x"
    return f"the canonical unit is {ANALYTES[analyte].canonical_unit}"


@functools.lru_cache(maxsize=4096)
def resolve_unit(analyte: str, unit: str) -> ResolvedUnit:
    """Resolve ``unit`` for ``analyte``: its UCUM code and the factor to the canonical unit.

    Raises :class:`UnitError` for an unknown unit or one of the wrong dimension.
    """
    spec = ANALYTES[analyte]
    code = dict(spec.unit_aliases).get(unit.strip()) or ucum_code(unit)
    expr: str
    if code is not None:
        expr = _pint_expr(code)
    else:
        text = unit.strip().replace("\u00b5", "u").replace("\u03bc", "u")
        tokens = re.split(r"\s*/\s*", text)
        if not text or _UCUM_ONLY.search(text) or not all(_FALLBACK_TOKEN.match(t) for t in tokens):
            raise UnitError(
                code="unit-unknown",
                analyte=analyte,
                reported=unit,
                accepted=accepted_units(analyte),
            )
        expr = code = text
    try:
        with _pint_lock:  # a new unit (cache miss): pint's registry is not thread-safe
            factor = _factor(spec, expr, _pint_expr(spec.canonical_unit))
    except _WrongDimension:
        raise UnitError(
            code="unit-wrong-dimension",
            analyte=analyte,
            reported=unit,
            accepted=accepted_units(analyte),
        ) from None
    except (
        Exception
    ):  # pint's UndefinedUnitError is an AttributeError, DimensionalityError a TypeError
        raise UnitError(
            code="unit-unknown",
            analyte=analyte,
            reported=unit,
            accepted=accepted_units(analyte),
        ) from None
    if not math.isfinite(factor) or factor <= 0:
        raise UnitError(
            code="unit-unknown", analyte=analyte, reported=unit, accepted=accepted_units(analyte)
        )
    return ResolvedUnit(analyte=analyte, reported=unit, code=code, factor=factor)


@functools.lru_cache(maxsize=4096)
def _pair_factor(analyte: str, src: str, dst: str) -> float:
    a = resolve_unit(analyte, src).factor
    b = resolve_unit(analyte, dst).factor
    return round_sig(a / b)


def convert(value: float, analyte: str, src: str, dst: str | None = None) -> float:
    """Convert ``value`` of ``analyte`` from unit ``src`` to ``dst`` (default: canonical)."""
    if dst is None:
        return round_sig(value * resolve_unit(analyte, src).factor)
    return round_sig(value * _pair_factor(analyte, src, dst))


def column_name(analyte: str) -> str:
    """The batch output column of an analyte's canonical value, e.g. ``b12_pmol_l``."""
    spec = ANALYTES[analyte]
    if spec.qualitative:
        return f"{analyte}_positive"
    unit = spec.canonical_unit
    suffix = unit.replace("{1.73_m2}", "173m2").replace("%", "pct").replace("/", "_").lower()
    return f"{analyte}_{suffix}"
