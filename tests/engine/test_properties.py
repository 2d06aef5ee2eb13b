"""Invariants of the interpretation (hypothesis): B12 monotonicity, unit-choice invariance,
and confounders never moving a status towards `unlikely`."""

from __future__ import annotations

from typing import Any

from hypothesis import assume, given
from hypothesis import strategies as st

from b12labs import interpret
from b12labs.profiles import load_profile
from b12labs.units import convert

# how reassuring a status is: lower = more concerning
RANK = {"deficient": 0, "probable": 1, "indeterminate": 2, "uninterpretable": 2, "not_assessed": 2, "unlikely": 3}

PROFILES = ("nice-ng239-2024", "mayo-acasm", "labcorp-141503")

other_analytes = st.fixed_dictionaries(
    {},
    optional={
        "mma": st.floats(0.05, 2.0).map(lambda v: f"{v:.3f} umol/L"),
        "homocysteine": st.floats(4, 40).map(lambda v: f"{v:.1f} umol/L"),
        "mcv": st.floats(70, 130).map(lambda v: f"{v:.1f} fL"),
        "hb": st.floats(60, 170).map(lambda v: f"{v:.0f} g/L"),
        "ferritin": st.floats(3, 400).map(lambda v: f"{v:.0f} ug/L"),
        "folate": st.floats(2, 40).map(lambda v: f"{v:.1f} nmol/L"),
        "egfr": st.floats(10, 120).map(lambda v: f"{v:.0f} mL/min/1.73m2"),
        "holotc": st.floats(10, 150).map(lambda v: f"{v:.0f} pmol/L"),
        "if_antibody": st.sampled_from(["positive", "negative"]),
    },
)
contexts = st.fixed_dictionaries(
    {},
    optional={
        "age": st.integers(16, 95),
        "sex": st.sampled_from(["female", "male", "unknown"]),
        "symptoms": st.lists(st.sampled_from(["paraesthesia", "fatigue", "numbness", "neck_pain", "myoclonus"]), max_size=2),
        "medications": st.lists(st.sampled_from(["metformin", "methotrexate", "omeprazole", "aspirin"]), max_size=2),
        "conditions": st.lists(st.sampled_from(["rheumatoid_arthritis", "vegan_diet", "hypothyroidism"]), max_size=1),
    },
)


@given(
    b12_low=st.floats(2.0, 3000.0), b12_high=st.floats(2.0, 3000.0),  # inside the plausible range
    unit=st.sampled_from(["pg/mL", "ng/L", "pmol/L"]), others=other_analytes, ctx=contexts,
    profile=st.sampled_from(PROFILES),
)
def test_lower_b12_never_gives_a_less_severe_status(
    b12_low: float, b12_high: float, unit: str, others: dict[str, Any], ctx: dict[str, Any], profile: str
) -> None:
    lo, hi = sorted((round(b12_low, 1), round(b12_high, 1)))
    s_lo = interpret({**others, "b12": f"{lo} {unit}"}, ctx, profile=profile).status.value
    s_hi = interpret({**others, "b12": f"{hi} {unit}"}, ctx, profile=profile).status.value
    assert RANK[s_lo] <= RANK[s_hi], f"B12 {lo} gave {s_lo}, B12 {hi} gave {s_hi}"


_UNITS = {
    "b12": ["pg/mL", "ng/L", "pmol/L", "10*-12.mol/L"],
    "mma": ["umol/L", "nmol/L", "nmol/mL"],
    "homocysteine": ["umol/L", "mg/L", "mg/dL"],
    "hb": ["g/L", "g/dL", "mmol/L"],
    "ferritin": ["ug/L", "ng/mL"],
    "folate": ["nmol/L", "ng/mL", "ug/L"],
    "iron": ["umol/L", "ug/dL"],
    "tibc": ["umol/L", "ug/dL"],
    "creatinine": ["umol/L", "mg/dL"],
    "crp": ["mg/L", "mg/dL"],
}
_CANONICAL = {"b12": "pmol/L", "mma": "umol/L", "homocysteine": "umol/L", "hb": "g/L", "ferritin": "ug/L",
              "folate": "nmol/L", "iron": "umol/L", "tibc": "umol/L", "creatinine": "umol/L", "crp": "mg/L"}
_RANGES = {"b12": (40, 1500), "mma": (0.05, 1.5), "homocysteine": (4, 40), "hb": (60, 170),
           "ferritin": (3, 300), "folate": (2, 40), "iron": (3, 40), "tibc": (30, 90),
           "creatinine": (40, 300), "crp": (0.2, 50)}


def _near_threshold(key: str, canonical: float) -> bool:
    for pid in PROFILES:
        p = load_profile(pid)
        for t in p.thresholds.values():
            figures = [t.canonical]
            if key in ("b12", "holotc"):
                figures += [convert(v, key, u) for u, v in t.alt.items()]
            for fig in figures:
                if fig and abs(canonical - fig) / fig < 0.005:
                    return True
    return False


@given(
    data=st.data(),
    keys=st.sets(st.sampled_from(sorted(_UNITS)), min_size=1, max_size=6),
    ctx=contexts,
    profile=st.sampled_from(PROFILES),
)
def test_same_values_in_other_units_give_the_same_interpretation(
    data: st.DataObject, keys: set[str], ctx: dict[str, Any], profile: str
) -> None:
    canonical = {k: data.draw(st.floats(*_RANGES[k]), label=k) for k in sorted(keys)}
    for k, v in canonical.items():
        assume(not _near_threshold(k, v))
    if "iron" in canonical and "tibc" in canonical:
        assume(abs(canonical["iron"] / canonical["tibc"] * 100 - 20) > 0.2)
    panel_a = {k: f"{v!r} {_CANONICAL[k]}" for k, v in canonical.items()}
    panel_b = {}
    for k, v in canonical.items():
        unit = data.draw(st.sampled_from(_UNITS[k]), label=f"{k} unit")
        panel_b[k] = f"{convert(v, k, _CANONICAL[k], unit)!r} {unit}"
    a = interpret(panel_a, ctx, profile=profile)
    b = interpret(panel_b, ctx, profile=profile)
    assert a.status == b.status
    assert a.codes == b.codes
    assert [f.severity for f in a.findings] == [f.severity for f in b.findings]
    for k in canonical:
        assert abs(a.values[k] - b.values[k]) <= 1e-9 * max(1.0, abs(a.values[k]))


CONFOUNDERS: list[tuple[str, dict[str, Any], dict[str, Any]]] = [
    ("renal impairment (eGFR)", {"egfr": "40 mL/min/1.73m2"}, {}),
    ("chronic kidney disease", {}, {"conditions": ["chronic_kidney_disease"]}),
    ("low folate", {"folate": "2.0 ng/mL"}, {}),
    ("pregnancy", {}, {"pregnant": True}),
    ("recent B12 injection", {}, {"b12_treatment": "injection"}),
    ("B12 supplement", {}, {"medications": ["cyanocobalamin 1 mg"]}),
    ("nitrous oxide", {}, {"nitrous_oxide_exposure": True}),
    ("metformin", {}, {"medications": ["metformin 1 g"]}),
    ("methotrexate", {}, {"medications": ["methotrexate 15 mg"]}),
    ("proton-pump inhibitor", {}, {"medications": ["omeprazole"]}),
    ("hypothyroidism", {}, {"conditions": ["hypothyroidism"]}),
]


def _merge(ctx: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = dict(ctx)
    for k, v in extra.items():
        if isinstance(v, list):
            out[k] = [*out.get(k, []), *v]
        else:
            out[k] = v
    return out


@given(
    b12=st.floats(40, 2000).map(lambda v: f"{v:.0f} pg/mL"),
    others=other_analytes, ctx=contexts, confounder=st.sampled_from(CONFOUNDERS),
    profile=st.sampled_from(PROFILES),
)
def test_adding_a_confounder_never_moves_the_status_towards_unlikely(
    b12: str, others: dict[str, Any], ctx: dict[str, Any], confounder: tuple[str, dict[str, Any], dict[str, Any]],
    profile: str,
) -> None:
    name, panel_extra, ctx_extra = confounder
    assume(not any(k in others for k in panel_extra))
    panel = {**others, "b12": b12}
    before = interpret(panel, ctx, profile=profile).status.value
    after = interpret({**panel, **panel_extra}, _merge(ctx, ctx_extra), profile=profile).status.value
    if before != "unlikely":
        assert after != "unlikely", f"adding {name} turned {before} into unlikely"
    assert RANK[after] <= RANK[before] or after in ("indeterminate", "uninterpretable"), (
        f"adding {name} moved {before} to {after}"
    )
