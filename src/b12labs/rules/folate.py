"""Folate rules (docs/clinical-logic.md §5 "Folate").

The folate facts (serum folate low or borderline, red-cell folate low) are derived here, by
:func:`derive_folate`.
"""

from __future__ import annotations

import math
from typing import Any

from .._engine import Facts, RawInputs, StatusCode, lab_limit
from ..models import Severity
from ._fields import words
from ._registry import avoid, branch, derives, message_field, order, rule

X = Any
INFO, WARNING, CRITICAL = Severity.info, Severity.warning, Severity.critical


_NAN = math.nan


@derives("folate")
def derive_folate(f: Facts, raw: RawInputs, xp: Any) -> None:
    """Serum folate low or borderline (a lab's lower limit replaces the profile's) and red-cell
    folate low."""
    p = f.profile.canonical
    folate_low_limit = lab_limit(
        f, xp, "folate_low", p["folate_low"], raw.ref_low.get("folate", _NAN)
    )
    f.folate_low = f.folate.lt(folate_low_limit)
    f.folate_borderline = f.folate.ge(folate_low_limit) & f.folate.le(p["folate_borderline_upper"])
    f.rbc_folate_low = f.rbc_folate.lt(p["rbc_folate_low"])


@rule(
    "FOLATE_LOW",
    area="folate",
    severity=WARNING,
    title="Serum folate low",
    message="Serum folate {folate} is below {folate_low}: consistent with folate deficiency.",
    comment="low serum folate",
    sources=("WHO-FOLATE", "BSH2014"),
    why="Serum folate is the first-line folate test (BSH 2014); WHO defines deficiency below "
    "6.8 nmol/L (3 ng/mL).",
    evidence=(("folate", "folate_low"),),
    example={"panel": {"folate": "2.5 ng/mL"}},
)
def folate_low(f: Facts, xp: Any) -> X:
    return f.folate_low


@rule(
    "FOLATE_BORDERLINE",
    area="folate",
    severity=INFO,
    title="Serum folate borderline",
    message="Serum folate {folate} is borderline ({folate_low} to {folate_borderline_upper}): "
    "possible folate deficiency.",
    sources=("WHO-FOLATE",),
    why="WHO's homocysteine-based cut-off: below 10 nmol/L is possible deficiency.",
    evidence=(("folate", "folate_low"), ("folate", "folate_borderline_upper")),
    example={"panel": {"folate": "8 nmol/L"}},
)
def folate_borderline(f: Facts, xp: Any) -> X:
    return f.folate_borderline


_SCD = "folic acid alone may precipitate subacute combined degeneration of the cord."


@message_field("folic_trigger")
def folic_trigger(v: Any) -> str:
    """What triggered the caution: the low folate and/or the folic acid entry as written."""
    f = v.facts
    items = []
    if f.folate_low:
        items.append(f"serum folate {v['folate']} is below {v['folate_low']}")
    if f.med("folic_acid"):
        items.append(f"folic acid is recorded ({v['meds_folic_acid']})")
    text = words(items)
    return text[:1].upper() + text[1:]


def _prophylaxis(f: Facts, xp: Any) -> X:
    """Folic acid the patient should keep: in pregnancy or alongside methotrexate."""
    return f.med("folic_acid") & (f.raw.pregnant | f.med("methotrexate"))


@message_field("keep_prophylaxis")
def keep_prophylaxis(v: Any) -> str:
    f = v.facts
    if not (f.med("folic_acid") and (f.raw.pregnant or f.med("methotrexate"))):
        return ""
    why = "in pregnancy" if f.raw.pregnant else "alongside methotrexate"
    return f" This is not a reason to stop folic acid prophylaxis {why}."


def _status_is(*codes: StatusCode) -> Any:
    def holds(f: Facts, xp: Any) -> X:
        out: X = False
        for c in codes:
            out = out | (f.status == c)
        return out

    return holds


_deficient_or_probable = _status_is(StatusCode.DEFICIENT, StatusCode.PROBABLE)
_indeterminate = _status_is(StatusCode.INDETERMINATE)
_not_assessed = _status_is(StatusCode.NOT_ASSESSED)
_uninterpretable = _status_is(StatusCode.UNINTERPRETABLE)


def _nothing_measured(f: Facts, xp: Any) -> X:
    return xp.not_(f.b12.present | f.holotc.present | f.mma.present | f.homocysteine.present)


def _not_excluded(f: Facts, xp: Any) -> X:
    return _indeterminate(f, xp) | (_nothing_measured(f, xp) & f.folate_low)


def _b12_or_holotc_indeterminate(f: Facts, xp: Any) -> X:
    return f.b12_indeterminate | f.holotc_indeterminate


def _holotc_first(f: Facts, xp: Any) -> X:
    """In pregnancy NICE prefers active B12 when neither holoTC nor MMA was measured."""
    return f.raw.pregnant & xp.not_(f.holotc.present) & xp.not_(f.mma.present)


@rule(
    "FOLIC_ACID_CAUTION",
    area="folate",
    severity=WARNING,
    escalate=lambda f, xp: xp.select(
        [
            _deficient_or_probable(f, xp),
            _not_excluded(f, xp),
            _not_assessed(f, xp) & (f.anaemia | f.macrocytosis),
        ],
        [3, 2, 2],
        1,
    ),
    severity_note="critical when B12 deficiency is established or probable; warning when it is "
    "not excluded; info when B12 status is unknown with folic acid recorded (warning with "
    "anaemia or macrocytosis) and beside B12 replacement",
    title="Folic acid and B12 status",
    message="{folic_trigger}.",
    branches=(
        branch(
            "b12_deficiency",
            _deficient_or_probable,
            "{folic_trigger}, and B12 deficiency is established or probable: treat the B12 "
            "deficiency before or alongside folic acid; " + _SCD + "{keep_prophylaxis}",
            comment="treat B12 deficiency before or alongside folic acid",
        ),
        branch(
            "b12_not_excluded",
            _not_excluded,
            "{folic_trigger}, and B12 deficiency is not excluded: establish B12 status before "
            "relying on folic acid alone; " + _SCD + "{keep_prophylaxis}",
            comment="establish B12 status before relying on folic acid alone",
        ),
        branch(
            "b12_unknown",
            _not_assessed,
            "{folic_trigger}, and B12 status is unknown (no B12, active B12, MMA or homocysteine "
            "result): establish it before folic acid alone treats an anaemia or macrocytosis."
            "{keep_prophylaxis}",
            comment="establish B12 status before folic acid alone treats the blood count",
        ),
        branch(
            "on_replacement",
            _uninterpretable,
            "{folic_trigger}, alongside recorded B12 replacement: folate replacement with B12 "
            "is appropriate.",
            comment="folate alongside B12 replacement",
        ),
    ),
    sources=("FOLIC-WARNING", "BSH2014"),
    why="Folic acid can correct the anaemia of B12 deficiency while the neurological damage "
    "progresses (subacute combined degeneration); the caution is graded by what is known of "
    "B12 status, and prophylaxis in pregnancy or with methotrexate is not to be stopped.",
    evidence=(("folate", "folate_low"),),
    actions=(
        avoid(
            "folic acid alone before B12 deficiency is treated",
            when=lambda f, xp: _deficient_or_probable(f, xp) & xp.not_(_prophylaxis(f, xp)),
        ),
        order(
            "mma",
            when=lambda f, xp: (
                _not_excluded(f, xp)
                & _b12_or_holotc_indeterminate(f, xp)
                & xp.not_(f.mma.present)
                & xp.not_(_holotc_first(f, xp))
            ),
        ),
        order(
            "holotc",
            when=lambda f, xp: (
                _not_excluded(f, xp) & _b12_or_holotc_indeterminate(f, xp) & _holotc_first(f, xp)
            ),
        ),
        order(
            "b12",
            when=lambda f, xp: (
                (_not_excluded(f, xp) | _not_assessed(f, xp))
                & _nothing_measured(f, xp)
                & xp.not_(f.recent_treatment)
            ),
        ),
    ),
    after_status=True,
    example={"panel": {"folate": "2.5 ng/mL", "b12": "150 pg/mL"}},
)
def folic_acid_caution(f: Facts, xp: Any) -> X:
    trigger = f.folate_low | f.med("folic_acid")
    return trigger & (
        _deficient_or_probable(f, xp)
        | _not_excluded(f, xp)
        | (_not_assessed(f, xp) & f.med("folic_acid") & xp.not_(f.folate_low))
        | (_uninterpretable(f, xp) & f.folate_low)
    )


@rule(
    "RBC_FOLATE_LOW",
    area="folate",
    severity=INFO,
    title="Red-cell folate low",
    message="Red-cell folate {rbc_folate} is below {rbc_folate_low}. Red-cell folate is often "
    "low in B12 deficiency too: read it with the B12 result.",
    sources=("GREEN2011", "WHO-FOLATE"),
    why="Red-cell folate reflects longer-term status but falls in B12 deficiency as well "
    "(Green 2011), so it is not specific.",
    evidence=(("rbc_folate", "rbc_folate_low"), ("b12", None)),
    example={"panel": {"rbc_folate": "250 nmol/L"}},
)
def rbc_folate_low(f: Facts, xp: Any) -> X:
    return f.rbc_folate_low
