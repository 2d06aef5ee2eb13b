"""Unit resolution and conversion (issue 2, section 5 "Units" and the Tests section).

What is checked here:

1. conversions against published pairs (clinical-reference.md §1.1, §2.1), to the rounding each
   source uses (180 ng/L -> 132.8 -> "133 pmol/L");
2. every unit spelling the issue lists, and the case variants labs print, resolved through the
   alias table of ``reference_ranges/units.toml``;
3. refusals with a clear :class:`UnitError` (wrong dimension, unknown unit, UCUM-only syntax
   outside the table, empty text);
4. hypothesis properties: round trips through every accepted unit of an analyte are the identity
   within float tolerance, and conversion is monotone;
5. third-party material: the UCUM functional test suite (``validation`` cases) and the
   concentration units of ``lhc-ucum-common-units.csv`` (see ``../shared/external/ucum/SOURCE.md``).

Case variants. The alias table folds case, the micro sign (U+00B5) and Greek mu (U+03BC), so every
case variant of a spelling in the table (``PG/ML``, ``pmol/l``, ``FL``, ``Mmol/L``, ``NMOL/ML``)
resolves to the same UCUM code as the spelling itself: a variant is never read as another SI
prefix. This matches UCUM's own case-insensitive form, where pico is ``P``, femto ``F`` and
milli ``M`` (peta, mega are ``PT``, ``MA``); so ``Mmol/L`` is millimole per litre, not megamole.
Strings *outside* the table go to pint only when every token is a metric mass, amount or volume
unit with a lower-case SI prefix, so ``Pmol/mL`` (petamole) and ``pt`` (a US pint) are refused;
the ``KNOWN_*`` regression tests below pin the defects this suite found before that rule.

The UCUM oracle. Factors of accepted units are cross-checked against an independent evaluator of
UCUM expressions built from ``ucum-essence.xml`` (prefixes, base units and unit definitions; the
mole is kept as its own dimension so that mass <-> substance conversions need the molar mass, as
in b12labs). The evaluator is itself checked against the suite: it agrees with every validation
case and reproduces the suite's ``conversion`` cases.
"""

from __future__ import annotations

import csv
import itertools
import math
import re
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import b12labs
from b12labs.errors import UnitError
from b12labs.units import (
    _ALIASES,
    _UCUM_TO_PINT,
    ANALYTES,
    accepted_units,
    convert,
    resolve_unit,
    ucum_code,
)
from tests._paths import EXTERNAL

# On top of the profile tests/conftest.py loads (HYPOTHESIS_PROFILE: "dev" or "ci"): no deadline,
# whatever the profile says, as CI machines are noisy and pint builds its registry on first use.
UNITS_PROFILE = settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])

UCUM_DIR = EXTERNAL / "ucum"
UCUM_TESTS = UCUM_DIR / "UcumFunctionalTests.xml"
UCUM_ESSENCE = UCUM_DIR / "ucum-essence.xml"
LHC_UNITS = UCUM_DIR / "lhc-ucum-common-units.csv"

QUANTITATIVE = [key for key, spec in ANALYTES.items() if not spec.qualitative]


def sig(x: float, digits: int) -> float:
    """``x`` rounded to ``digits`` significant digits (how the sources print their pairs)."""
    return round(x, digits - 1 - math.floor(math.log10(abs(x))))


def mw(analyte: str) -> float:
    molar_mass = ANALYTES[analyte].molar_mass
    assert molar_mass is not None
    return molar_mass


# ---------------------------------------------------------------------------------------------
# 1. Published pairs
# ---------------------------------------------------------------------------------------------

# (analyte, value, from unit, to unit, published value, significant digits the source prints, source)
PUBLISHED_PAIRS = [
    ("b12", 180, "ng/L", "pmol/L", 133, 3, "NICE NG239: < 180 ng/L (< 133 pmol/L)"),
    ("b12", 350, "ng/L", "pmol/L", 258, 3, "NICE NG239: > 350 ng/L (> 258 pmol/L)"),
    ("b12", 200, "ng/L", "pmol/L", 148, 3, "BSH 2014: 148 pmol/L (200 ng/L)"),
    ("b12", 200, "pg/mL", "pmol/L", 148, 3, "BMJ Best Practice: < 148 pmol/L (< 200 pg/mL)"),
    ("b12", 1, "pg/mL", "pmol/L", 0.7378, 4, "clinical-reference §2.1: pg/mL x 0.7378"),
    ("b12", 1, "pmol/L", "pg/mL", 1.3554, 5, "clinical-reference §2.1: pmol/L x 1.3554"),
    ("b12", 150, "ng/L", "pmol/L", 111, 3, "Mayo 150 ng/L ~ 111 pmol/L"),
    ("b12", 400, "ng/L", "pmol/L", 295, 3, "Mayo/Labcorp 400 ng/L ~ 295 pmol/L"),
    ("b12", 914, "ng/L", "pmol/L", 674, 3, "Mayo/ARUP 914 ng/L ~ 674 pmol/L"),
    ("b12", 1245, "pg/mL", "pmol/L", 919, 3, "Labcorp 1245 pg/mL ~ 919 pmol/L"),
    ("holotc", 200, "pg/mL", "pmol/L", 148, 3, "cobalamin factor applies to holoTC"),
    ("folate", 3, "ng/mL", "nmol/L", 6.8, 2, "WHO: 3 ng/mL = 6.8 nmol/L"),
    ("folate", 400, "ng/mL", "nmol/L", 906, 3, "WHO: 400 ng/mL = 906 nmol/L"),
    ("folate", 151, "ng/mL", "nmol/L", 340, 2, "WHO: 151 ng/mL = 340 nmol/L"),
    ("folate", 1, "ng/mL", "nmol/L", 2.266, 4, "clinical-reference §2.1: ng/mL x 2.266"),
    ("folate", 4.0, "ug/L", "nmol/L", 9.1, 2, "serum folate 4.0 ug/L ~ 9.1 nmol/L"),
    ("rbc_folate", 1, "ng/mL", "nmol/L", 2.266, 4, "folate factor applies to red-cell folate"),
    ("mma", 0.40, "nmol/mL", "nmol/L", 400, 3, "Mayo: 0.40 nmol/mL = 400 nmol/L"),
    ("mma", 0.40, "nmol/mL", "umol/L", 0.40, 2, "nmol/mL = umol/L"),
    ("mma", 0.40, "umol/L", "ug/L", 47, 2, "MMA 0.40 umol/L ~ 47 ug/L"),
    ("hb", 7.5, "g/dL", "g/L", 75, 2, "g/dL x 10 = g/L"),
    ("hb", 7.5, "g/dL", "mmol/L", 4.65, 3, "7.5 g/dL = 4.65 mmol/L (monomer)"),
    ("hb", 75, "g/L", "mmol/L", 4.65, 3, "75 g/L = 4.65 mmol/L (monomer)"),
    ("hb", 1, "g/dL", "mmol/L", 0.6206, 4, "clinical-reference §2.1: g/dL x 0.6206"),
    ("iron", 100, "ug/dL", "umol/L", 17.91, 4, "clinical-reference §2.1: ug/dL x 0.1791"),
    ("tibc", 100, "ug/dL", "umol/L", 17.91, 4, "TIBC uses the iron factor"),
    ("creatinine", 1, "mg/dL", "umol/L", 88.4, 3, "clinical-reference §2.1: mg/dL x 88.4"),
    ("homocysteine", 1, "mg/dL", "umol/L", 73.98, 4, "clinical-reference §2.1: mg/dL x 73.98"),
    ("homocysteine", 1, "umol/L", "mg/L", 0.1352, 4, "clinical-reference §2.1: umol/L x 0.1352"),
    ("ferritin", 1, "ng/mL", "ug/L", 1, 1, "ng/mL = ug/L"),
    ("crp", 1, "mg/dL", "mg/L", 10, 2, "mg/dL x 10 = mg/L"),
]


@pytest.mark.parametrize(
    ("analyte", "value", "src", "dst", "published", "digits", "source"),
    PUBLISHED_PAIRS,
    ids=[f"{p[0]}-{p[1]}{p[2]}->{p[3]}" for p in PUBLISHED_PAIRS],
)
def test_published_pair(
    analyte: str, value: float, src: str, dst: str, published: float, digits: int, source: str
) -> None:
    got = convert(value, analyte, src, dst)
    assert sig(got, digits) == pytest.approx(published, rel=1e-12), source


def test_180_ng_l_is_132_8_not_133() -> None:
    """clinical-reference §0.3: the conversion gives 132.8 pmol/L, not exactly 133."""
    assert convert(180, "b12", "ng/L") == pytest.approx(132.8, abs=0.05)
    assert convert(180, "b12", "ng/L") != 133
    assert b12labs.normalize({"b12": "180 ng/L"})["b12"] == pytest.approx(132.8, abs=0.05)
    assert b12labs.normalize({"b12": "180 pg/mL"})["b12"] == pytest.approx(132.8, abs=0.05)


@pytest.mark.parametrize(
    ("panel", "expected"),
    [
        ({"b12": "180 ng/L"}, {"b12": 132.805}),
        ({"mma": "0.40 nmol/mL"}, {"mma": 0.40}),
        ({"mma": "400 nmol/L"}, {"mma": 0.40}),
        ({"hb": "7.5 g/dL"}, {"hb": 75.0}),
        ({"hb": "4.65 mmol/L"}, {"hb": 74.93}),
        ({"folate": "3 ng/mL"}, {"folate": 6.797}),
        ({"ferritin": "30 mcg/L"}, {"ferritin": 30.0}),
        ({"homocysteine": "15 µmol/L"}, {"homocysteine": 15.0}),
        ({"homocysteine": "15 μmol/L"}, {"homocysteine": 15.0}),
        ({"creatinine": "1.0 mg/dL"}, {"creatinine": 88.4}),
        ({"egfr": "60 mL/min/1.73m2"}, {"egfr": 60.0}),
        ({"mcv": "101 fL"}, {"mcv": 101.0}),
    ],
)
def test_normalize_converts_to_canonical(panel: dict[str, str], expected: dict[str, float]) -> None:
    got = b12labs.normalize(panel)
    for key, value in expected.items():
        assert got[key] == pytest.approx(value, rel=1e-3)


def test_default_destination_is_the_canonical_unit() -> None:
    for analyte in QUANTITATIVE:
        canonical = ANALYTES[analyte].canonical_unit
        assert resolve_unit(analyte, canonical).factor == 1.0
        assert convert(12.5, analyte, canonical) == 12.5
        assert convert(12.5, analyte, canonical, canonical) == 12.5


# ---------------------------------------------------------------------------------------------
# 2. Spellings of the issue, and case variants
# ---------------------------------------------------------------------------------------------

# SI factors derived by hand: mass concentration in g/L, substance concentration in mol/L.
_G_PER_L = {"pg/mL": 1e-9, "ng/L": 1e-9, "ng/mL": 1e-6, "ug/L": 1e-6, "ug/dL": 1e-5,
            "mg/L": 1e-3, "mg/dL": 1e-2, "g/L": 1.0, "g/dL": 10.0}
_MOL_PER_L = {"pmol/L": 1e-12, "nmol/L": 1e-9, "nmol/mL": 1e-6, "umol/L": 1e-6, "mmol/L": 1e-3}


def hand_factor(analyte: str, code: str) -> float:
    """Factor from ``code`` to the analyte's canonical unit, by hand (SI prefixes, molar mass)."""
    canonical = ANALYTES[analyte].canonical_unit
    if canonical in _MOL_PER_L:
        to = _MOL_PER_L[canonical]
        return _MOL_PER_L[code] / to if code in _MOL_PER_L else _G_PER_L[code] / mw(analyte) / to
    if canonical in _G_PER_L:
        to = _G_PER_L[canonical]
        return _G_PER_L[code] / to if code in _G_PER_L else _MOL_PER_L[code] * mw(analyte) / to
    return {"fL": 1.0, "um3": 1.0, "%": 1.0, "mL/min/{1.73_m2}": 1.0}[code]


# (analyte, spelling as a lab prints it, UCUM code it must resolve to)
ISSUE_SPELLINGS = [
    ("b12", "pg/mL", "pg/mL"),
    ("b12", "ng/L", "ng/L"),
    ("b12", "pmol/L", "pmol/L"),
    ("b12", "10*-12.mol/L", "pmol/L"),
    ("holotc", "pmol/L", "pmol/L"),
    ("mma", "umol/L", "umol/L"),
    ("mma", "\u00b5mol/L", "umol/L"),  # micro sign
    ("mma", "\u03bcmol/L", "umol/L"),  # Greek mu
    ("mma", "nmol/mL", "nmol/mL"),
    ("mma", "nmol/L", "nmol/L"),
    ("homocysteine", "umol/L", "umol/L"),
    ("homocysteine", "\u00b5mol/L", "umol/L"),
    ("homocysteine", "mg/L", "mg/L"),
    ("homocysteine", "mg/dL", "mg/dL"),
    ("mcv", "fL", "fL"),
    ("hb", "g/dL", "g/dL"),
    ("hb", "g/L", "g/L"),
    ("hb", "mmol/L", "mmol/L"),
    ("rdw", "%", "%"),
    ("ferritin", "ug/L", "ug/L"),
    ("ferritin", "mcg/L", "ug/L"),
    ("ferritin", "\u00b5g/L", "ug/L"),
    ("ferritin", "ng/mL", "ng/mL"),
    ("tsat", "%", "%"),
    ("iron", "ug/dL", "ug/dL"),
    ("iron", "mcg/dL", "ug/dL"),
    ("iron", "umol/L", "umol/L"),
    ("tibc", "ug/dL", "ug/dL"),
    ("tibc", "\u03bcmol/L", "umol/L"),
    ("folate", "ng/mL", "ng/mL"),
    ("folate", "ug/L", "ug/L"),
    ("folate", "nmol/L", "nmol/L"),
    ("rbc_folate", "ng/mL", "ng/mL"),
    ("rbc_folate", "nmol/L", "nmol/L"),
    ("creatinine", "mg/dL", "mg/dL"),
    ("creatinine", "umol/L", "umol/L"),
    ("creatinine", "mcmol/L", "umol/L"),
    ("egfr", "mL/min/1.73m2", "mL/min/{1.73_m2}"),
    ("egfr", "mL/min/{1.73_m2}", "mL/min/{1.73_m2}"),
    ("crp", "mg/L", "mg/L"),
    ("crp", "mg/dL", "mg/dL"),
]


@pytest.mark.parametrize(("analyte", "spelling", "code"), ISSUE_SPELLINGS)
def test_issue_spelling_is_accepted(analyte: str, spelling: str, code: str) -> None:
    resolved = resolve_unit(analyte, spelling)
    assert resolved.code == code
    assert ucum_code(spelling) == code, "resolved through the alias table, not pint's parser"
    assert resolved.factor == pytest.approx(hand_factor(analyte, code), rel=1e-9)
    assert resolved.analyte == analyte
    assert resolved.reported == spelling


def test_ucum_power_of_ten_codes_are_never_parsed_by_pint() -> None:
    """pint reads ``10*-12.mol/L`` as -120 mol/L; the table must give 1 pmol/L."""
    for analyte in ("b12", "holotc"):
        assert resolve_unit(analyte, "10*-12.mol/L").factor == 1.0
        assert convert(150, analyte, "10*-12.mol/L") == 150
    assert resolve_unit("folate", "10*-9.mol/L").factor == 1.0
    assert resolve_unit("mma", "10*-6.mol/L").factor == 1.0
    assert resolve_unit("hb", "10*-3.mol/L").code == "mmol/L"
    assert resolve_unit("b12", "10*-12.g/mL").code == "pg/mL"
    assert resolve_unit("mcv", "10*-15.L").code == "fL"


# (analyte, case variant a lab prints, code it resolves to): documented behaviour of the table.
CASE_VARIANTS = [
    ("b12", "PG/ML", "pg/mL"),  # pint case-insensitively: petagauss per megalitre
    ("b12", "Pg/mL", "pg/mL"),
    ("b12", "pg/ml", "pg/mL"),
    ("b12", "NG/L", "ng/L"),
    ("b12", "pmol/l", "pmol/L"),
    ("b12", "PMOL/L", "pmol/L"),
    ("b12", "Pmol/L", "pmol/L"),
    ("b12", "10*-12.MOL/L", "pmol/L"),
    ("mcv", "FL", "fL"),  # UCUM case-insensitive: F = femto
    ("mcv", "fl", "fL"),
    ("mcv", "Fl", "fL"),
    ("hb", "Mmol/L", "mmol/L"),  # case-sensitive UCUM: megamole; labs mean millimole (UCUM ci: M)
    ("hb", "MMOL/L", "mmol/L"),
    ("hb", "mmol/l", "mmol/L"),
    ("hb", "G/DL", "g/dL"),
    ("hb", "gm/dl", "g/dL"),
    ("hb", "g%", "g/dL"),
    ("hb", "GM%", "g/dL"),
    ("ferritin", "NG/ML", "ng/mL"),
    ("ferritin", "UG/L", "ug/L"),
    ("ferritin", "MCG/L", "ug/L"),
    ("ferritin", "\u00b5G/L", "ug/L"),
    ("mma", "NMOL/ML", "nmol/mL"),
    ("mma", "nmol/ml", "nmol/mL"),
    ("mma", "UMOL/L", "umol/L"),
    ("mma", "\u00b5MOL/L", "umol/L"),
    ("mma", "\u00b5mol/l", "umol/L"),
    ("mma", "NMOL/L", "nmol/L"),
    ("iron", "UG/DL", "ug/dL"),
    ("iron", "MCG/DL", "ug/dL"),
    ("creatinine", "MG/DL", "mg/dL"),
    ("creatinine", "mg%", "mg/dL"),
    ("crp", "MG/L", "mg/L"),
    ("rdw", "PERCENT", "%"),
    ("egfr", "ML/MIN/1.73M2", "mL/min/{1.73_m2}"),
    ("egfr", "ml/min/1.73 m2", "mL/min/{1.73_m2}"),
    ("egfr", "mL/min/1.73m²", "mL/min/{1.73_m2}"),
    ("egfr", "mL/min/1,73 m²", "mL/min/{1.73_m2}"),
    ("b12", " pg/mL ", "pg/mL"),
]


@pytest.mark.parametrize(("analyte", "spelling", "code"), CASE_VARIANTS)
def test_case_variant_resolves_through_the_table(analyte: str, spelling: str, code: str) -> None:
    resolved = resolve_unit(analyte, spelling)
    assert resolved.code == code
    assert resolved.factor == resolve_unit(analyte, code).factor


def _case_variants(text: str) -> Iterator[str]:
    letters = [i for i, ch in enumerate(text) if ch.lower() != ch.upper()]
    for mask in itertools.product((False, True), repeat=len(letters)):
        chars = list(text)
        for upper, i in zip(mask, letters, strict=True):
            chars[i] = chars[i].upper() if upper else chars[i].lower()
        yield "".join(chars)


def test_no_case_variant_of_a_table_spelling_changes_its_meaning() -> None:
    """Every upper/lower-case variant of every alias (and aliased UCUM code) maps to one code.

    (A UCUM code with no alias, today only ``mL/min``, is matched exactly; its other case
    variants go to pint, which refuses them for every analyte of this library.)
    """
    spellings = {**{c: c for c in _UCUM_TO_PINT if c.lower() in _ALIASES}, **_ALIASES}
    checked = 0
    for spelling, code in spellings.items():
        for variant in _case_variants(spelling):
            assert ucum_code(variant) == code, (spelling, variant)
            checked += 1
    assert checked > 1000


def test_alias_table_is_consistent() -> None:
    for alias, code in _ALIASES.items():
        assert code in _UCUM_TO_PINT, f"alias {alias!r} -> {code!r} has no [ucum] entry"
        assert alias == alias.lower() and " " not in alias, f"alias {alias!r} is not folded"
    for code in _UCUM_TO_PINT:
        assert ucum_code(code) == code


# ---------------------------------------------------------------------------------------------
# 3. Refusals
# ---------------------------------------------------------------------------------------------

# pint's chemistry context raises ZeroDivisionError (not a DimensionalityError) for a
# dimensionless or plain-mass unit against a molar canonical unit: units.py reports it as a
# wrong dimension, not as an unknown unit.
WRONG_DIMENSION = [
    ("b12", "fL"), ("b12", "%"), ("b12", "mL/min/1.73m2"),
    ("holotc", "g"),
    ("mcv", "pg/mL"), ("mcv", "g/L"), ("mcv", "%"),
    ("rdw", "fL"),  # RDW here is RDW-CV; RDW-SD (fL) is another measurement
    ("tsat", "umol/L"), ("hb", "fL"),
    ("ferritin", "pmol/L"),  # no molar mass in analytes.toml: substance units are refused
    ("crp", "nmol/L"),
    ("egfr", "mL/min"),  # not normalised to body surface area
    ("egfr", "mL"), ("egfr", "%"),
    ("mma", "mL"), ("iron", "%"),
]


@pytest.mark.parametrize(("analyte", "unit"), WRONG_DIMENSION)
def test_wrong_dimension_is_refused(analyte: str, unit: str) -> None:
    with pytest.raises(UnitError) as info:
        resolve_unit(analyte, unit)
    err = info.value
    assert isinstance(err, ValueError)
    assert err.analyte == analyte
    assert err.reported == unit
    assert "wrong dimension" in err.reason
    assert err.accepted and err.accepted in str(err)


# (analyte, table code) refused as "unknown unit" although the code is in the table (see above)
KNOWN_UNKNOWN_NOT_WRONG_DIMENSION = {
    (key, "%") for key in QUANTITATIVE if ANALYTES[key].molar_mass is not None
}


def _table_codes_refused_as_unknown() -> set[tuple[str, str]]:
    out = set()
    for analyte in QUANTITATIVE:
        for code in _UCUM_TO_PINT:
            try:
                resolve_unit(analyte, code)
            except UnitError as err:
                if "wrong dimension" not in err.reason:
                    out.add((analyte, code))
    return out


def test_table_code_is_accepted_or_of_the_wrong_dimension_only_known_defects() -> None:
    """A code of the table is never "unknown"; regression guard over the known defect."""
    assert _table_codes_refused_as_unknown() <= KNOWN_UNKNOWN_NOT_WRONG_DIMENSION



def test_table_code_is_accepted_or_of_the_wrong_dimension() -> None:
    assert _table_codes_refused_as_unknown() == set()


def test_250_fl_for_b12_is_a_wrong_dimension_error() -> None:
    with pytest.raises(UnitError) as info:
        b12labs.normalize({"b12": "250 fL"})
    assert info.value.analyte == "b12"
    assert "wrong dimension" in str(info.value)
    assert "pg/mL" in str(info.value)  # says what would be accepted


UNKNOWN = [
    ("b12", "furlong/fortnight-ish"),
    ("b12", "xyz"),
    ("b12", "pg/mL/"),
    ("b12", "10*3/uL"),  # UCUM cell-count syntax, not in the table
    ("b12", "10*-12.mol/dL"),  # UCUM power of ten, not in the table
    ("b12", "10^-12.mol/L"),
    ("ferritin", "[IU]/L"),
    ("crp", "mg/L{serum}"),
    ("rdw", "{ratio}"),
    ("egfr", "mL/min/{BSA}"),
    ("egfr", "mL/min/1.73"),
    ("b12", "1/L"),
    ("b12", ""),
    ("b12", "   "),
    ("mcv", "250 fL"),  # a number inside the unit
]


@pytest.mark.parametrize(("analyte", "unit"), UNKNOWN)
def test_unknown_unit_is_refused(analyte: str, unit: str) -> None:
    with pytest.raises(UnitError) as info:
        resolve_unit(analyte, unit)
    err = info.value
    assert isinstance(err, ValueError)
    assert err.analyte == analyte
    assert err.reported == unit
    assert err.reason == "unknown unit"
    assert str(err).startswith(f"{analyte}: {unit!r}: unknown unit (accepted: ")
    assert err.accepted and err.accepted in str(err)


def test_refusals_through_normalize() -> None:
    with pytest.raises(UnitError):
        b12labs.normalize({"b12": "180 10*3/uL"})
    with pytest.raises(UnitError):
        b12labs.normalize({"b12": "180 furlongs"})
    with pytest.raises(UnitError):
        b12labs.normalize({"b12": "180"})  # a unit is required for B12 (RULES.md §2)


# ---------------------------------------------------------------------------------------------
# Former defects of the pint fallback (found by this suite, fixed in units.py): regression tests
# ---------------------------------------------------------------------------------------------

# A case variant *outside* the alias table is read by pint case-sensitively as another prefix.
KNOWN_PREFIX_CHANGES = [
    ("b12", "Pg/dL", "pg/dL"),  # petagram per dL, factor 7.4e24
    ("b12", "Pmol/mL", "pmol/mL"),  # petamole per mL, factor 1e30
    ("b12", "Pmol/dL", "pmol/dL"),
    ("crp", "Mg/mL", "mg/mL"),  # megagram per mL
    ("mcv", "ML", "mL"),  # megalitre; UCUM case-insensitive ML is millilitre
]


@pytest.mark.parametrize(("analyte", "variant", "spelling"), KNOWN_PREFIX_CHANGES)
def test_case_variant_outside_the_table_is_not_read_as_another_prefix(
    analyte: str, variant: str, spelling: str
) -> None:
    expected = resolve_unit(analyte, spelling).factor
    try:
        got = resolve_unit(analyte, variant).factor
    except UnitError:
        return  # refusing it is fine
    assert got == pytest.approx(expected, rel=1e-9)


# Units the pint fallback used to accept by a dimensional coincidence (UCUM: not commensurable).
KNOWN_WRONG_ACCEPTANCE = {
    # angles, logarithmic and "absorbance" units are dimensionless in pint, so they pass as %
    **{(a, u): "not a fraction" for a in ("rdw", "tsat")
       for u in ("deg", "rad", "gon", "sr", "dB", "B", "Np", "AU")},
    # BSA173 = 1.73 m2 makes mL/min/1.73m2 a velocity in pint; UCUM's {1.73_m2} is an annotation
    **{("egfr", u): "velocity, not a BSA-normalised flow" for u in ("cm/s", "m/s", "mm/h", "mm/min", "um/s")},
    ("mcv", "pt"): "UCUM pt is the picotonne (a mass); pint reads a US pint",
}


@pytest.mark.parametrize(("analyte", "unit"), sorted(KNOWN_WRONG_ACCEPTANCE))
def test_unit_of_another_kind_is_refused(analyte: str, unit: str) -> None:
    with pytest.raises(UnitError):
        resolve_unit(analyte, unit)


# ---------------------------------------------------------------------------------------------
# 4. Properties
# ---------------------------------------------------------------------------------------------

ACCEPTED_UNITS: dict[str, list[str]] = {
    "b12": ["pg/mL", "ng/L", "pmol/L", "10*-12.mol/L", "PG/ML", "pmol/l", "nmol/L"],
    "holotc": ["pmol/L", "pg/mL", "ng/L"],
    "mma": ["umol/L", "\u00b5mol/L", "\u03bcmol/L", "nmol/L", "nmol/mL", "ug/L", "mg/L"],
    "homocysteine": ["umol/L", "\u00b5mol/L", "mg/L", "mg/dL"],
    "mcv": ["fL", "FL", "um3", "\u00b5m3", "10*-15.L"],
    "hb": ["g/dL", "g/L", "mmol/L", "g%", "Mmol/L"],
    "rdw": ["%", "percent"],
    "ferritin": ["ng/mL", "ug/L", "mcg/L", "\u00b5g/L"],
    "tsat": ["%"],
    "iron": ["ug/dL", "umol/L", "\u00b5mol/L", "mcg/dL"],
    "tibc": ["ug/dL", "umol/L"],
    "folate": ["ng/mL", "ug/L", "nmol/L", "mcg/L"],
    "rbc_folate": ["ng/mL", "nmol/L", "ug/L"],
    "creatinine": ["mg/dL", "umol/L", "\u00b5mol/L", "mg%", "mmol/L"],
    "egfr": ["mL/min/1.73m2", "mL/min/{1.73_m2}", "mL/min/1.73m²"],
    "crp": ["mg/L", "mg/dL"],
    "retic": ["10*9/L", "10^9/L", "/nL", "G/L"],  # RULES v2 §2; G/L = giga per litre
}


def test_retic_in_giga_per_litre_is_10_9_per_litre() -> None:
    # G/L (a common European spelling of 10^9/L) is a count unit for the reticulocytes only:
    # matched with its case, so g/L stays grams per litre (hb) and a wrong dimension for retic
    from b12labs import interpret
    from b12labs.errors import UnitError

    for spelling in ("G/L", "G/l", " G/L "):
        assert resolve_unit("retic", spelling).code == "10*9/L"
        assert resolve_unit("retic", spelling).factor == 1.0
    assert interpret({"retic": "80 G/L"}).values["retic"] == 80.0
    assert interpret({"retic": {"value": 80, "unit": "G/L"}}).values["retic"] == 80.0
    assert "G/L" in accepted_units("retic")
    with pytest.raises(UnitError) as info:
        resolve_unit("retic", "g/L")
    assert info.value.code == "unit-wrong-dimension"
    assert resolve_unit("hb", "g/L").code == "g/L"


def test_property_table_covers_every_quantitative_analyte() -> None:
    assert set(ACCEPTED_UNITS) == set(QUANTITATIVE)
    for analyte, units in ACCEPTED_UNITS.items():
        assert ANALYTES[analyte].canonical_unit in {ucum_code(u) for u in units}
        for unit in units:
            resolve_unit(analyte, unit)  # all accepted


values = st.floats(min_value=1e-6, max_value=1e9, allow_nan=False, allow_infinity=False)


@st.composite
def analyte_and_units(draw: st.DrawFn) -> tuple[str, str, str]:
    analyte = draw(st.sampled_from(sorted(ACCEPTED_UNITS)))
    src = draw(st.sampled_from(ACCEPTED_UNITS[analyte]))
    dst = draw(st.sampled_from(ACCEPTED_UNITS[analyte]))
    return analyte, src, dst


@UNITS_PROFILE
@given(analyte_and_units(), values)
def test_round_trip_is_identity(units: tuple[str, str, str], value: float) -> None:
    analyte, src, dst = units
    there = convert(value, analyte, src, dst)
    back = convert(there, analyte, dst, src)
    assert back == pytest.approx(value, rel=1e-9)
    # going through the destination unit agrees with converting straight to canonical
    assert convert(there, analyte, dst) == pytest.approx(convert(value, analyte, src), rel=1e-9)


@UNITS_PROFILE
@given(analyte_and_units(), values, values)
def test_conversion_is_monotone(units: tuple[str, str, str], a: float, b: float) -> None:
    analyte, src, dst = units
    lo, hi = min(a, b), max(a, b)
    c_lo, c_hi = convert(lo, analyte, src, dst), convert(hi, analyte, src, dst)
    assert 0 < c_lo <= c_hi
    if hi > lo * (1 + 1e-9):
        assert c_lo < c_hi
    assert convert(0.0, analyte, src, dst) == 0.0


@UNITS_PROFILE
@given(st.sampled_from(sorted(_ALIASES.items())), st.data())
def test_random_case_and_micro_spelling_keeps_the_code(item: tuple[str, str], data: st.DataObject) -> None:
    spelling, code = item
    flips = data.draw(st.lists(st.booleans(), min_size=len(spelling), max_size=len(spelling)))
    variant = "".join(ch.upper() if f else ch for ch, f in zip(spelling, flips, strict=True))
    micro = data.draw(st.sampled_from(["u", "\u00b5", "\u03bc"]))
    if variant.lower().startswith("u"):
        variant = micro + variant[1:]
    assert ucum_code(variant) == code


# ---------------------------------------------------------------------------------------------
# 5. Third-party material: a UCUM oracle from ucum-essence.xml
# ---------------------------------------------------------------------------------------------

_NS = "{http://unitsofmeasure.org/ucum-essence}"
_EXPONENT = re.compile(r"^(.+?)([+-]?\d+)$")


class UcumUnsupported(Exception):
    """A special (non-ratio) or arbitrary unit: valid UCUM, but not commensurable with ours."""


class UcumSyntax(Exception):
    """Not a valid UCUM expression."""


@dataclass(frozen=True)
class UQ:
    """A UCUM magnitude in base units (g, m, s, ..., with mol as its own dimension N)."""

    mag: float
    dim: frozenset[tuple[str, int]]

    def _combine(self, other: UQ, sign: int) -> frozenset[tuple[str, int]]:
        d = dict(self.dim)
        for k, e in other.dim:
            d[k] = d.get(k, 0) + sign * e
        return frozenset((k, e) for k, e in d.items() if e)

    def __mul__(self, other: UQ) -> UQ:
        return UQ(self.mag * other.mag, self._combine(other, 1))

    def __truediv__(self, other: UQ) -> UQ:
        return UQ(self.mag / other.mag, self._combine(other, -1))

    def __pow__(self, n: int) -> UQ:
        return UQ(self.mag**n, frozenset((k, e * n) for k, e in self.dim))


ONE = UQ(1.0, frozenset())


class Ucum:
    """Evaluates case-sensitive UCUM expressions with the definitions of ucum-essence.xml."""

    def __init__(self, essence: Path) -> None:
        root = ET.parse(essence).getroot()
        self.prefixes: dict[str, float] = {}
        for p in root.iter(_NS + "prefix"):
            value = p.find(_NS + "value")
            assert value is not None
            self.prefixes[p.get("Code", "")] = float(value.get("value", "nan"))
        self.base: dict[str, str] = {b.get("Code", ""): b.get("dim", "") for b in root.iter(_NS + "base-unit")}
        self.units: dict[str, ET.Element] = {u.get("Code", ""): u for u in root.iter(_NS + "unit")}
        self._cache: dict[str, UQ] = {}

    def is_metric(self, code: str) -> bool:
        return code in self.base or self.units[code].get("isMetric") == "yes"

    def atom(self, code: str) -> UQ:
        if code in self._cache:
            return self._cache[code]
        if code == "mol":  # kept as a dimension: mass <-> substance needs the molar mass
            q = UQ(1.0, frozenset({("N", 1)}))
        elif code in self.base:
            q = UQ(1.0, frozenset({(self.base[code], 1)}))
        else:
            node = self.units[code]
            if node.get("isSpecial") == "yes" or node.get("isArbitrary") == "yes":
                raise UcumUnsupported(code)
            value = node.find(_NS + "value")
            assert value is not None
            q = UQ(float(value.get("value", "nan")), frozenset()) * self.parse(value.get("Unit", ""))
        self._cache[code] = q
        return q

    def simple(self, symbol: str) -> UQ:
        if symbol in self.base or symbol in self.units:
            return self.atom(symbol)
        for n in (2, 1):
            prefix, rest = symbol[:n], symbol[n:]
            if prefix in self.prefixes and (rest in self.base or rest in self.units) and self.is_metric(rest):
                return UQ(self.prefixes[prefix], frozenset()) * self.atom(rest)
        raise UcumSyntax(f"unknown symbol {symbol!r}")

    def parse(self, expr: str) -> UQ:
        return _UcumParser(self, expr).run()


class _UcumParser:
    def __init__(self, ucum: Ucum, expr: str) -> None:
        self.u, self.s, self.i = ucum, expr, 0

    def run(self) -> UQ:
        if not self.s:
            raise UcumSyntax("empty")
        q = ONE / self._term() if self._eat("/") else self._term()
        if self.i != len(self.s):
            raise UcumSyntax(f"unexpected {self.s[self.i]!r}")
        return q

    def _eat(self, ch: str) -> bool:
        if self.s[self.i : self.i + 1] == ch:
            self.i += 1
            return True
        return False

    def _term(self) -> UQ:
        q = self._component()
        while self.i < len(self.s) and self.s[self.i] in "./":
            op = self.s[self.i]
            self.i += 1
            c = self._component()
            q = q * c if op == "." else q / c
        return q

    def _annotation(self) -> None:
        end = self.s.find("}", self.i)
        body = self.s[self.i + 1 : end]
        if end < 0 or "{" in body or any(not 32 <= ord(ch) <= 126 for ch in body):
            raise UcumSyntax("bad annotation")
        self.i = end + 1

    def _component(self) -> UQ:
        if self._eat("("):
            q = self._term()
            if not self._eat(")"):
                raise UcumSyntax("unclosed (")
            return q
        if self.s[self.i : self.i + 1] == "{":
            self._annotation()
            return ONE
        start = self.i
        while self.i < len(self.s) and self.s[self.i] not in "./(){}":
            if self.s[self.i] == "[":
                end = self.s.find("]", self.i)
                if end < 0:
                    raise UcumSyntax("unclosed [")
                self.i = end + 1
            else:
                self.i += 1
        token = self.s[start : self.i]
        if not token:
            raise UcumSyntax(f"missing term at {start}")
        if token.isdigit():
            q = UQ(float(token), frozenset())
        else:
            m = _EXPONENT.match(token)
            if m and not m.group(1).isdigit():
                try:
                    q = self.u.simple(m.group(1)) ** int(m.group(2))
                except UcumSyntax:
                    q = self.u.simple(token)
            else:
                q = self.u.simple(token)
        if self.s[self.i : self.i + 1] == "{":
            self._annotation()
        return q


@cache
def ucum() -> Ucum:
    return Ucum(UCUM_ESSENCE)


@cache
def ucum_suite() -> ET.Element:
    return ET.parse(UCUM_TESTS).getroot()


def validation_cases() -> list[tuple[str, str, bool]]:
    section = ucum_suite().find("validation")
    assert section is not None
    return [(c.get("id", ""), c.get("unit", ""), c.get("valid") == "true") for c in section.iter("case")]


def oracle(unit: str) -> UQ | None:
    """The unit's UCUM magnitude, or ``None`` for a special/arbitrary unit (or not UCUM at all)."""
    try:
        return ucum().parse(unit)
    except (UcumUnsupported, UcumSyntax):
        return None


def oracle_factor(analyte: str, unit: str) -> float | None:
    """UCUM factor from ``unit`` to the analyte's canonical unit, ``None`` if not commensurable."""
    q = oracle(unit)
    canonical = oracle(ANALYTES[analyte].canonical_unit)
    assert canonical is not None
    if q is None:
        return None
    if q.dim == canonical.dim:
        return q.mag / canonical.mag
    molar_mass = ANALYTES[analyte].molar_mass
    if molar_mass is not None:
        ratio = dict((q / canonical).dim)
        if ratio == {"M": 1, "N": -1}:  # mass concentration -> substance concentration
            return q.mag / canonical.mag / molar_mass
        if ratio == {"M": -1, "N": 1}:
            return q.mag / canonical.mag * molar_mass
    return None


def test_oracle_agrees_with_every_ucum_validation_case() -> None:
    wrong = []
    for case_id, unit, valid in validation_cases():
        try:
            ucum().parse(unit)
            parsed = True
        except UcumUnsupported:
            parsed = True
        except UcumSyntax:
            parsed = False
        if parsed != valid:
            wrong.append((case_id, unit, valid))
    assert len(validation_cases()) == 529  # SOURCE.md
    assert wrong == []


def test_oracle_reproduces_ucum_conversion_cases() -> None:
    section = ucum_suite().find("conversion")
    assert section is not None
    cases = list(section.iter("case"))
    assert len(cases) == 30
    for c in cases:
        src, dst = ucum().parse(c.get("srcUnit", "")), ucum().parse(c.get("dstUnit", ""))
        assert src.dim == dst.dim, c.get("id")
        got = float(c.get("value", "nan")) * src.mag / dst.mag
        outcome = c.get("outcome", "")
        digits = len(outcome.lstrip("0.").replace(".", "").split("e")[0])  # as printed
        assert sig(got, max(digits, 2)) == pytest.approx(sig(float(outcome), max(digits, 2)), rel=1e-9), c.get("id")


@pytest.mark.parametrize(
    ("unit", "analyte", "factor"),
    [("pg/mL", "b12", 1 / 1.35537), ("10*-12.mol/L", "b12", 1.0), ("g/dL", "hb", 10.0),
     ("fL", "mcv", 1.0), ("%", "rdw", 1.0), ("mL/min/{1.73_m2}", "egfr", 1.0),
     ("nmol/mL", "mma", 1.0), ("ng/mL", "ferritin", 1.0), ("g%", "hb", 10.0), ("mg%", "creatinine", 88.4016973)],
)
def test_oracle_on_known_units(unit: str, analyte: str, factor: float) -> None:
    assert oracle_factor(analyte, unit) == pytest.approx(factor, rel=1e-6)


@dataclass
class Outcome:
    """How b12labs treats one (unit, analyte) pair of the third-party material."""

    unit: str
    analyte: str
    applicable: bool  # UCUM says commensurable with the analyte (molar mass allowed)
    accepted: bool
    via_table: bool
    factor: float | None
    expected: float | None


def classify(unit: str, analyte: str) -> Outcome:
    expected = oracle_factor(analyte, unit)
    try:
        resolved = resolve_unit(analyte, unit)
    except UnitError:
        return Outcome(unit, analyte, expected is not None, False, False, None, expected)
    return Outcome(unit, analyte, expected is not None, True, ucum_code(unit) is not None,
                   resolved.factor, expected)


def check_outcomes(outcomes: list[Outcome]) -> tuple[list[Outcome], list[Outcome]]:
    """(accepted with a factor UCUM disagrees with, accepted although UCUM says not commensurable)."""
    wrong_factor = [o for o in outcomes if o.accepted and o.applicable
                    and o.factor != pytest.approx(o.expected, rel=1e-9)]
    wrong_kind = [o for o in outcomes if o.accepted and not o.applicable]
    return wrong_factor, wrong_kind


@cache
def ucum_outcomes() -> tuple[list[Outcome], list[Outcome]]:
    """(outcomes of cases the suite marks valid, of cases it marks invalid) for every analyte."""
    valid: list[Outcome] = []
    invalid: list[Outcome] = []
    for _case_id, unit, is_valid in validation_cases():
        for analyte in QUANTITATIVE:
            (valid if is_valid else invalid).append(classify(unit, analyte))
    return valid, invalid


def test_ucum_invalid_cases_are_never_accepted() -> None:
    _valid, invalid = ucum_outcomes()
    assert len(invalid) > 0
    assert [(o.unit, o.analyte, o.factor) for o in invalid if o.accepted] == []


def test_ucum_valid_cases_are_accepted_with_the_ucum_factor_or_refused() -> None:
    valid, _invalid = ucum_outcomes()
    wrong_factor, _wrong_kind = check_outcomes(valid)
    assert [(o.unit, o.analyte, o.factor, o.expected) for o in wrong_factor] == []


def test_ucum_valid_cases_of_another_kind_only_known_defects() -> None:
    """Regression guard: no acceptance of another kind beyond the known defects."""
    valid, _invalid = ucum_outcomes()
    _wrong_factor, wrong_kind = check_outcomes(valid)
    assert {(o.analyte, o.unit) for o in wrong_kind} <= set(KNOWN_WRONG_ACCEPTANCE)


def test_ucum_valid_cases_of_another_kind_are_refused() -> None:
    valid, _invalid = ucum_outcomes()
    _wrong_factor, wrong_kind = check_outcomes(valid)
    assert [(o.unit, o.analyte) for o in wrong_kind] == []


def _summary(title: str, outcomes: list[Outcome], units: int) -> str:
    applicable = [o for o in outcomes if o.applicable]
    units_applicable = {o.unit for o in applicable}
    units_accepted = {o.unit for o in applicable if o.accepted}
    units_table = {o.unit for o in applicable if o.via_table}
    units_refused = units_applicable - units_accepted
    wrong_kind = sorted({(o.analyte, o.unit) for o in outcomes if o.accepted and not o.applicable})
    return "\n".join([
        f"{title}",
        f"  units examined: {units}",
        f"  applicable units (UCUM-commensurable with >= 1 analyte): {len(units_applicable)}",
        f"    accepted for >= 1 analyte: {len(units_accepted)} (through the alias table: {len(units_table)})",
        f"    refused for every analyte: {len(units_refused)}",
        f"  applicable (unit, analyte) pairs: {len(applicable)}; accepted: "
        f"{sum(o.accepted for o in applicable)}; refused: {sum(not o.accepted for o in applicable)}",
        f"  accepted units: {', '.join(sorted(units_accepted))}",
        f"  accepted although UCUM says another kind (known defects): {wrong_kind}",
    ])


def test_ucum_coverage_report(record_property: Callable[[str, object], None]) -> None:
    valid, invalid = ucum_outcomes()
    cases = validation_cases()
    n_invalid = sum(not v for _i, _u, v in cases)
    valid_units = {u for _i, u, v in cases if v}
    text = _summary(
        f"UCUM functional tests, validation section: {len(cases)} cases "
        f"({len(cases) - n_invalid} valid, {n_invalid} invalid; invalid refused: "
        f"{sum(not o.accepted for o in invalid)}/{len(invalid)} (case, analyte) pairs)",
        valid, len(valid_units),
    )
    applicable_cases = [c for c in cases if c[2] and any(oracle_factor(a, c[1]) is not None for a in QUANTITATIVE)]
    accepted_cases = [c for c in applicable_cases if any(o.accepted and o.applicable and o.unit == c[1] for o in valid)]
    text += (f"\n  applicable cases (by id): {len(applicable_cases)}; accepted: {len(accepted_cases)}; "
             f"refused: {len(applicable_cases) - len(accepted_cases)}")
    print(text)
    record_property("ucum_validation_coverage", text)
    assert applicable_cases and accepted_cases


# ---------------------------------------------------------------------------------------------
# 5b. lhc-ucum-common-units.csv
# ---------------------------------------------------------------------------------------------


@cache
def lhc_codes() -> list[str]:
    with LHC_UNITS.open(encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    return [row["case-sensitive code"].strip() for row in rows if row["case-sensitive code"].strip()]


# The units of the csv a lab reports for these analytes (clinical-reference.md §2.2). Each must
# resolve through the alias table with the UCUM factor. (mL/min/{1.73_m2} is not in the csv.)
LHC_LAB_UNITS: dict[str, list[str]] = {
    "b12": ["pg/mL", "ng/L", "pmol/L"],
    "holotc": ["pmol/L", "pg/mL"],
    "mma": ["nmol/L", "nmol/mL", "umol/L"],
    "homocysteine": ["umol/L", "mg/L", "mg/dL"],
    "mcv": ["fL"],
    "hb": ["g/dL", "g/L", "mmol/L", "g%"],
    "rdw": ["%"],
    "ferritin": ["ng/mL", "ug/L"],
    "tsat": ["%"],
    "iron": ["ug/dL", "umol/L"],
    "tibc": ["ug/dL", "umol/L"],
    "folate": ["ng/mL", "ug/L", "nmol/L"],
    "rbc_folate": ["ng/mL", "ug/L", "nmol/L"],
    "creatinine": ["mg/dL", "umol/L"],
    "crp": ["mg/L", "mg/dL"],
}


@pytest.mark.parametrize(
    ("analyte", "unit"), [(a, u) for a, units in LHC_LAB_UNITS.items() for u in units]
)
def test_lhc_lab_unit_is_in_the_alias_table(analyte: str, unit: str) -> None:
    assert unit in lhc_codes()
    assert ucum_code(unit) is not None
    resolved = resolve_unit(analyte, unit)
    assert resolved.factor == pytest.approx(oracle_factor(analyte, unit), rel=1e-9)


@cache
def lhc_outcomes() -> list[Outcome]:
    return [classify(code, analyte) for code in lhc_codes() for analyte in QUANTITATIVE]


def test_lhc_units_accepted_with_the_ucum_factor_or_refused() -> None:
    wrong_factor, wrong_kind = check_outcomes(lhc_outcomes())
    assert [(o.unit, o.analyte, o.factor, o.expected) for o in wrong_factor] == []
    assert {(o.analyte, o.unit) for o in wrong_kind} <= set(KNOWN_WRONG_ACCEPTANCE)


def test_lhc_coverage_report(record_property: Callable[[str, object], None]) -> None:
    outcomes = lhc_outcomes()
    lab = {(a, u) for a, units in LHC_LAB_UNITS.items() for u in units}
    lab_ok = {(o.analyte, o.unit) for o in outcomes if (o.analyte, o.unit) in lab and o.via_table}
    text = _summary("lhc-ucum-common-units.csv", outcomes, len(set(lhc_codes())))
    text += f"\n  lab units for these analytes: {len(lab)}; through the alias table: {len(lab_ok)}"
    print(text)
    record_property("lhc_coverage", text)
    assert lab_ok == lab
