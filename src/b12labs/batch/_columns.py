"""Finding analyte, unit, reference-interval and context columns in a wide export."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from ..errors import InputFormatError, UnitError
from ..units import ANALYTES, resolve_unit, ucum_code

__all__ = [
    "CONTEXT_NAMES",
    "LIST_CONTEXT_FIELDS",
    "PATIENT_ID_NAMES",
    "ROW_CONTEXT_FIELDS",
    "AnalyteColumns",
    "ColumnMap",
    "detect_columns",
    "norm",
]


def norm(name: str) -> str:
    """Header normal form: lower case, separators folded to ``_``."""
    return re.sub(r"[\s\-./]+", "_", name.strip().lower().replace("\ufeff", "")).strip("_")


_NAME_TO_ANALYTE: dict[str, str] = {}
for _key, _spec in ANALYTES.items():
    for _n in (_key, *_spec.names):
        _NAME_TO_ANALYTE[norm(_n)] = _key
    for _code in _spec.loinc:
        _NAME_TO_ANALYTE[_code] = _key
        _NAME_TO_ANALYTE[norm(_code)] = _key

CONTEXT_NAMES: dict[str, tuple[str, ...]] = {
    "age": ("age", "age_years", "patient_age", "age_at_collection"),
    "sex": ("sex", "gender", "patient_sex"),
    "pregnant": ("pregnant", "pregnancy", "is_pregnant"),
    "medications": ("medications", "medication", "meds", "drugs"),
    "conditions": ("conditions", "condition", "diagnoses", "problems"),
    "symptoms": ("symptoms", "symptom"),
    "nitrous_oxide_exposure": ("nitrous_oxide_exposure", "nitrous_oxide", "n2o", "n2o_exposure"),
    "b12_treatment": ("b12_treatment", "b12_therapy"),
    "days_since_b12_injection": ("days_since_b12_injection", "days_since_injection"),
    "b12_treatment_started": (
        "b12_treatment_started",
        "b12_treatment_start",
        "b12_started",
        "treatment_started",
    ),
    "gestational_weeks": ("gestational_weeks", "gestation_weeks", "gestational_age_weeks"),
    "breastfeeding": ("breastfeeding", "breast_feeding", "lactating"),
    "date_of_birth": ("date_of_birth", "dob", "birth_date", "birthdate"),
    "collected_at": (
        "collected_at",
        "collection_date",
        "collection_time",
        "specimen_date",
        "sample_date",
        "collected",
        "date_collected",
    ),
}
#: Column names a patient id is read from (long format; wide exports with results over time).
PATIENT_ID_NAMES: tuple[str, ...] = (
    "patient_id",
    "patient",
    "mrn",
    "subject",
    "person_id",
    "pid",
    "nhs_number",
    "patientid",
)

#: The context fields a per-result (long) export may carry, one value per row, in output order.
ROW_CONTEXT_FIELDS: tuple[str, ...] = (
    "age",
    "sex",
    "pregnant",
    "medications",
    "conditions",
    "symptoms",
    "nitrous_oxide_exposure",
    "b12_treatment",
    "days_since_b12_injection",
    "b12_treatment_started",
    "gestational_weeks",
    "breastfeeding",
    "date_of_birth",
)
#: of those, the ones holding a list of terms
LIST_CONTEXT_FIELDS: tuple[str, ...] = ("medications", "conditions", "symptoms")

_CONTEXT_LOOKUP = {norm(n): field_ for field_, names in CONTEXT_NAMES.items() for n in names}
#: roles a column is given only by mapping it (``--map COLUMN=patient_id``), never by its name
#: alone: the patient id is read only for results over time (``history=True``)
MAPPED_ONLY: tuple[str, ...] = ("patient_id",)
_UNIT_IN_HEADER = re.compile(r"^(?P<name>.*?)\s*[\(\[]\s*(?P<unit>[^\)\]]+?)\s*[\)\]]\s*$")


@dataclass
class AnalyteColumns:
    """Where one analyte's value, unit and reference interval come from."""

    analyte: str
    value: str
    unit_column: str | None = None
    header_unit: str | None = None
    default_unit: str | None = None  # from units=, or the analyte's single common unit
    ref_low: str | None = None
    ref_high: str | None = None

    @property
    def fixed_unit(self) -> str | None:
        """The unit that applies to cells without one (unit column aside)."""
        return self.header_unit or self.default_unit


@dataclass
class ColumnMap:
    """The detected mapping of a frame's columns (``b12labs score --dry-run`` prints it)."""

    analytes: dict[str, AnalyteColumns] = field(default_factory=dict)
    context: dict[str, str] = field(default_factory=dict)
    unused: list[str] = field(default_factory=list)

    def describe(self) -> str:
        lines = ["analyte columns:"]
        for key, a in self.analytes.items():
            if a.unit_column:
                unit = f"unit from column {a.unit_column!r}" + (
                    f" (else {a.fixed_unit})" if a.fixed_unit else ""
                )
            elif a.header_unit:
                unit = f"unit {a.header_unit} (from the header)"
            elif a.default_unit:
                unit = f"unit {a.default_unit}"
            else:
                unit = "unit from each cell"
            refs = ", ".join(x for x in (a.ref_low, a.ref_high) if x)
            lines.append(
                f"  {a.value!r:32} -> {key:13} {unit}"
                + (f"; reference interval {refs}" if refs else "")
            )
        lines.append("context columns:")
        for k, col in self.context.items():
            lines.append(f"  {col!r:32} -> {k}")
        if not self.context:
            lines.append("  (none)")
        if self.unused:
            lines.append("passed through untouched: " + ", ".join(repr(c) for c in self.unused))
        return "\n".join(lines)


def _header_analyte(col: str) -> tuple[str | None, str | None]:
    """(analyte, unit in header) for a column name, else (None, None)."""
    m = _UNIT_IN_HEADER.match(col)
    if m:
        key = _NAME_TO_ANALYTE.get(norm(m.group("name")))
        if key:
            return key, m.group("unit").strip()
    n = norm(col)
    key = _NAME_TO_ANALYTE.get(n)
    if key:
        return key, None
    # suffix form: b12_pg_ml, hb_g_dl, mma_umol_l
    parts = n.split("_")
    for i in range(len(parts) - 1, 0, -1):
        key = _NAME_TO_ANALYTE.get("_".join(parts[:i]))
        if key is None:
            continue
        rest = parts[i:]
        for candidate in ("/".join(rest), "".join(rest[:1]) + "/" + "".join(rest[1:])):
            code = ucum_code(candidate)
            if code is not None:
                try:
                    resolve_unit(key, code)
                except UnitError:
                    continue
                return key, code
        return None, None
    return None, None


def detect_columns(
    columns: Sequence[str],
    *,
    mapping: Mapping[str, str] | None = None,
    units: Mapping[str, str] | None = None,
) -> ColumnMap:
    """Detect analyte, unit, reference-interval and context columns by name.

    ``mapping`` maps column names to analyte keys for names b12labs does not recognise;
    ``units`` names the unit of an analyte whose cells and headers carry none. Raises
    :class:`InputFormatError` for duplicated columns, two columns for one analyte, a header unit
    that is not a unit of the analyte, or an unknown key in ``mapping``/``units``.
    """
    seen: dict[str, int] = {}
    for c in columns:
        seen[c] = seen.get(c, 0) + 1
    dupes = [c for c, n in seen.items() if n > 1]
    if dupes:
        raise InputFormatError(f"duplicated column name(s): {', '.join(repr(d) for d in dupes)}")
    mapping = dict(mapping or {})
    units = dict(units or {})
    for wanted in list(mapping.values()) + list(units):
        if wanted not in ANALYTES and wanted not in CONTEXT_NAMES and wanted not in MAPPED_ONLY:
            raise InputFormatError(
                f"unknown analyte {wanted!r} in the column mapping or units "
                f"(analytes: {', '.join(ANALYTES)})"
            )
    for col in mapping:
        if col not in columns:
            raise InputFormatError(
                f"mapped column {col!r} is not in the input (columns: {', '.join(columns)})"
            )
    cmap = ColumnMap()
    claimed: set[str] = set()
    by_norm = {norm(c): c for c in columns}

    for col in columns:
        target = mapping.get(col)
        header_unit: str | None = None
        if target is None:
            target, header_unit = _header_analyte(col)
        elif target in ANALYTES:
            m = _UNIT_IN_HEADER.match(col)
            header_unit = m.group("unit").strip() if m else None
        if target is None:
            continue
        if target in CONTEXT_NAMES or target in MAPPED_ONLY:
            cmap.context[target] = col
            claimed.add(col)
            continue
        if target in cmap.analytes:
            raise InputFormatError(
                f"two columns for {target}: {cmap.analytes[target].value!r} and {col!r}; "
                f"map one with --map/columns= or drop it"
            )
        if header_unit is not None:
            try:
                header_unit = resolve_unit(target, header_unit).reported
            except UnitError as exc:
                raise InputFormatError(
                    f"column {col!r}: header unit {header_unit!r}: {exc.reason}"
                ) from None
        cmap.analytes[target] = AnalyteColumns(analyte=target, value=col, header_unit=header_unit)
        claimed.add(col)

    for key, a in cmap.analytes.items():
        base = norm(a.value if a.header_unit is None else _UNIT_IN_HEADER.sub(r"\g<name>", a.value))
        stems = {base, key}
        for stem in stems:
            for suffix, attr in (
                ("unit", "unit_column"),
                ("units", "unit_column"),
                ("ref_low", "ref_low"),
                ("ref_high", "ref_high"),
                ("low", "ref_low"),
                ("high", "ref_high"),
            ):
                found = by_norm.get(f"{stem}_{suffix}")
                if found is not None and found not in claimed and getattr(a, attr) is None:
                    setattr(a, attr, found)
                    claimed.add(found)
        if key in units:
            try:
                resolve_unit(key, units[key])
            except UnitError as exc:
                raise InputFormatError(f"units[{key!r}] = {units[key]!r}: {exc.reason}") from None
            if (
                a.header_unit
                and resolve_unit(key, a.header_unit).code != resolve_unit(key, units[key]).code
            ):
                raise InputFormatError(
                    f"column {a.value!r}: header unit {a.header_unit} contradicts the unit given for {key} ({units[key]})"
                )
            a.default_unit = units[key]
        elif not ANALYTES[key].unit_required:
            a.default_unit = ANALYTES[key].default_unit

    for col in columns:
        if col in claimed:
            continue
        field_ = _CONTEXT_LOOKUP.get(norm(col))
        if field_ is not None and field_ not in cmap.context:
            cmap.context[field_] = col
            claimed.add(col)
    cmap.unused = [c for c in columns if c not in claimed]
    return cmap
