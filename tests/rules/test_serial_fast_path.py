"""The serial facts of a panel without history are taken as constants (a third of the cost of
one evaluation); they must equal what the general path computes from all-NaN serial inputs,
on every rule case and on random panels and contexts."""

from __future__ import annotations

import math
from typing import Any

from hypothesis import given

from b12labs._engine import SCALAR, Facts, derive
from b12labs._interpret import DEFAULT_PROFILE, panel_inputs
from b12labs.errors import B12LabsError
from b12labs.models import PatientContext, parse_panel
from b12labs.profiles import load_profile
from b12labs.rules import DERIVE, DERIVE_ORDER
from b12labs.rules import serial as serial_rules
from b12labs.units import ANALYTES
from tests.rules._cases import load_cases
from tests.rules.test_messages import INPUTS, RANDOM, _cleaned

SERIAL_FACTS = (*serial_rules._NO_HISTORY, "on_replacement", "treated")
_BEFORE = DERIVE[: DERIVE_ORDER.index("serial")]


def _facts(panel: dict[str, Any], context: dict[str, Any] | None, profile: str | None) -> tuple[Any, Any] | None:
    prof = load_profile(profile or DEFAULT_PROFILE)
    try:
        parsed = parse_panel(panel)
        ctx = PatientContext.parse(context)
    except B12LabsError:
        return None
    measurements = {k: parsed[k] for k in ANALYTES if k in parsed}
    raw, _ = panel_inputs(measurements, ctx, prof)
    return raw, prof


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return bool(a == b)


def _check(panel: dict[str, Any], context: dict[str, Any] | None, profile: str | None = None) -> bool:
    got = _facts(panel, context, profile)
    if got is None:
        return False
    raw, prof = got
    if raw.treatment_started:  # a start date goes through the general path anyway
        return False
    fast: Facts = derive(raw, prof, SCALAR, DERIVE)
    slow: Facts = derive(raw, prof, SCALAR, _BEFORE)
    serial_rules._derive_serial(slow, raw, SCALAR)
    for name in SERIAL_FACTS:
        assert _same(getattr(fast, name), getattr(slow, name)), name
    return True


def test_the_fast_path_is_taken_and_equals_the_general_path_on_every_rule_case() -> None:
    checked = sum(_check(c.panel, c.context, c.profile) for c in load_cases() if not c.history)
    assert checked > 300


@RANDOM
@given(INPUTS)
def test_the_fast_path_equals_the_general_path_on_random_panels(inputs: Any) -> None:
    panel, context = inputs
    _check(panel, _cleaned(context))


def test_a_panel_with_history_does_not_take_the_fast_path() -> None:
    from b12labs import interpret

    out = interpret(
        {"b12": "100 ng/L"},
        {"collected_at": "2026-06-01"},
        history=[{"b12": "300 ng/L", "collected_at": "2026-03-01"}],
    )
    assert "B12_SIGNIFICANT_FALL" in {f.code for f in out.findings}
