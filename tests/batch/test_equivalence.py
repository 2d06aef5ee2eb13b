"""One implementation of the logic: score_frame and interpret agree on every rule case and on
a random 10 000-row sample; score_frame never calls interpret() per row."""

from __future__ import annotations

import random
from typing import Any

import pytest

import b12labs
import b12labs._interpret as interpret_module
from b12labs import interpret
from b12labs.batch import score_frame
from tests.rules._cases import load_cases

from ._convert import batch_outcome, scalar_outcome, to_frame

# cases with history are scored in the long format (tests/batch/test_serial.py)
CASES = [c for c in load_cases() if not c.history]


def _by_profile() -> dict[str | None, list[Any]]:
    groups: dict[str | None, list[Any]] = {}
    for c in CASES:
        groups.setdefault(c.profile, []).append(c)
    return groups


@pytest.mark.parametrize("profile", sorted(_by_profile(), key=str))
def test_every_rule_case_scores_the_same_both_ways(profile: str | None) -> None:
    cases = _by_profile()[profile]
    kwargs = {"profile": profile} if profile else {}
    frame = to_frame([(c.panel, c.context) for c in cases])
    scored = score_frame(frame, **kwargs)
    assert len(scored) == len(cases)
    comments = scored["b12labs_comment"].tolist()
    for i, case in enumerate(cases):
        result = interpret(case.panel, case.context or None, **kwargs)
        expected = scalar_outcome(result)
        got = batch_outcome(scored.iloc[i])
        assert got == expected, f"{case.id}: batch {got} != interpret {expected}"
        assert comments[i] == result.comment, f"{case.id}: comments differ"
        error = scored.iloc[i]["b12labs_error"]
        # interpret() accepted the case, so the only batch note can be an implausible value
        assert error == "" or ("outside the plausible range" in error and "VALUE_IMPLAUSIBLE" in got[1])


def _random_panel(rng: random.Random) -> tuple[dict[str, Any], dict[str, Any]]:
    panel: dict[str, Any] = {}

    def maybe(p: float) -> bool:
        return rng.random() < p

    if maybe(0.8):
        unit = rng.choice(["pg/mL", "ng/L", "pmol/L"])
        v = round(rng.uniform(60, 1400) if unit != "pmol/L" else rng.uniform(40, 1000), rng.choice([0, 1]))
        cmp = rng.choice(["", "", "", "", "<", ">"])
        panel["b12"] = f"{cmp}{v} {unit}"
    if maybe(0.2):
        panel["holotc"] = f"{round(rng.uniform(10, 120), 1)} pmol/L"
    if maybe(0.45):
        unit = rng.choice(["umol/L", "nmol/L", "nmol/mL"])
        v = rng.uniform(0.1, 1.2)
        panel["mma"] = f"{round(v * (1000 if unit == 'nmol/L' else 1), 3)} {unit}"
    if maybe(0.35):
        panel["homocysteine"] = rng.choice([f"{round(rng.uniform(5, 30), 1)} umol/L", f"{round(rng.uniform(0.7, 4), 2)} mg/L"])
    if maybe(0.6):
        panel["mcv"] = f"{round(rng.uniform(70, 130), 1)} fL"
    if maybe(0.6):
        panel["hb"] = rng.choice([f"{round(rng.uniform(6, 17), 1)} g/dL", f"{round(rng.uniform(60, 170))} g/L", f"{round(rng.uniform(4, 11), 2)} mmol/L"])
    if maybe(0.3):
        panel["rdw"] = f"{round(rng.uniform(11, 19), 1)} %"
    if maybe(0.4):
        panel["ferritin"] = rng.choice([f"{round(rng.uniform(3, 300))} ng/mL", f"{round(rng.uniform(3, 300))} ug/L"])
    if maybe(0.2):
        panel["tsat"] = f"{round(rng.uniform(5, 50))} %"
    if maybe(0.15):
        panel["iron"] = f"{round(rng.uniform(20, 180))} ug/dL"
        panel["tibc"] = f"{round(rng.uniform(200, 480))} ug/dL"
    if maybe(0.4):
        panel["folate"] = rng.choice([f"{round(rng.uniform(1, 20), 1)} ng/mL", f"{round(rng.uniform(2, 40), 1)} nmol/L"])
    if maybe(0.1):
        panel["rbc_folate"] = f"{round(rng.uniform(150, 900))} nmol/L"
    if maybe(0.3):
        panel["egfr"] = f"{round(rng.uniform(15, 110))} mL/min/1.73m2"
    if maybe(0.2):
        panel["creatinine"] = {"value": round(rng.uniform(50, 200)), "unit": "umol/L", "ref_high": 110}
    if maybe(0.2):
        panel["crp"] = rng.choice([f"{round(rng.uniform(0.5, 40), 1)} mg/L", f"{round(rng.uniform(0.05, 4), 2)} mg/dL"])
    if maybe(0.1):
        panel["if_antibody"] = rng.choice(["positive", "negative", "equivocal"])
    if maybe(0.1) and "mma" in panel:
        panel["mma"] = {"value": round(rng.uniform(0.1, 0.8), 2), "unit": "umol/L", "ref_high": 0.35}
    ctx: dict[str, Any] = {}
    if maybe(0.8):
        ctx["age"] = rng.randint(10, 95)
    if maybe(0.8):
        ctx["sex"] = rng.choice(["F", "M", "U", "female", "male"])
    if maybe(0.05):
        ctx["pregnant"] = True
    if maybe(0.3):
        ctx["medications"] = rng.sample(
            ["metformin 500 mg", "omeprazole", "methotrexate 15 mg", "Humira", "folic acid 5 mg",
             "hydroxyurea", "cyanocobalamin", "aspirin", "atorvastatin"], rng.randint(1, 3))
    if maybe(0.3):
        ctx["conditions"] = rng.sample(
            ["rheumatoid_arthritis", "pernicious_anaemia", "vegan_diet", "chronic_kidney_disease",
             "coeliac_disease", "heart_failure", "hypothyroidism"], rng.randint(1, 2))
    if maybe(0.35):
        ctx["symptoms"] = rng.sample(
            ["paraesthesia", "numbness", "fatigue", "neck_pain", "myoclonus", "glossitis",
             "gait_disturbance", "occipital_headache"], rng.randint(1, 3))
    if maybe(0.05):
        ctx["nitrous_oxide_exposure"] = True
    if maybe(0.05):
        ctx["b12_treatment"] = rng.choice(["oral", "injection", "none"])
    if maybe(0.05):
        ctx["days_since_b12_injection"] = rng.randint(0, 40)
    return panel, ctx


def test_random_sample_scores_the_same_both_ways() -> None:
    rng = random.Random(20261123)
    items = [_random_panel(rng) for _ in range(10_000)]
    scored = score_frame(to_frame(items))
    assert len(scored) == len(items)
    mismatches = []
    comments = scored["b12labs_comment"].tolist()
    for i, (panel, ctx) in enumerate(items):
        result = interpret(panel, ctx)
        expected = (*scalar_outcome(result), result.comment)
        got = (*batch_outcome(scored.iloc[i]), comments[i])
        if got != expected:
            mismatches.append((i, panel, ctx, got, expected))
    assert not mismatches, f"{len(mismatches)} mismatches, first: {mismatches[0]}"


@pytest.mark.parametrize("limit", [60, 150, 250])
def test_short_comments_are_the_same_both_ways(limit: int) -> None:
    # a short limit makes most rows leave clauses and suggestions out: the same ones both ways
    rng = random.Random(limit)
    items = [_random_panel(rng) for _ in range(1_500)]
    comments = score_frame(to_frame(items), comment_limit=limit)["b12labs_comment"].tolist()
    for i, (panel, ctx) in enumerate(items):
        assert comments[i] == interpret(panel, ctx, comment_limit=limit).comment, (panel, ctx)


def test_score_frame_never_calls_interpret_per_row(monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("score_frame called interpret()")

    monkeypatch.setattr(interpret_module, "interpret", boom)
    monkeypatch.setattr(b12labs, "interpret", boom)
    monkeypatch.setattr(interpret_module, "panel_inputs", boom)
    items = [({"b12": "150 pg/mL", "mcv": "104 fL"}, {"age": 70}), ({"b12": "400 pmol/L"}, None)]
    scored = score_frame(to_frame(items))
    assert list(scored["b12labs_status"]) == ["deficient", "unlikely"]


def test_equivocal_if_antibody_cells_score_like_interpret() -> None:
    # §2: an equivocal cell is a measured result, not an error: neither positive nor negative,
    # no canonical value, and the IF antibody is not ordered again
    import math

    cells = ["equivocal", "Borderline", " indeterminate ", "INCONCLUSIVE", "positive", "negative", ""]
    items: list[tuple[dict[str, Any], Any]] = [
        ({"b12": "120 pg/mL", **({"if_antibody": c} if c else {})}, None) for c in cells
    ]
    scored = score_frame(to_frame(items))
    assert scored["b12labs_error_code"].astype(str).tolist() == [""] * len(cells)
    for i, (panel, _) in enumerate(items):
        want = interpret(panel)
        assert scored["b12labs_status"].iloc[i] == want.status.value
        assert str(scored["b12labs_codes"].iloc[i]) == ";".join(want.codes)
        if i < 4:  # the equivocal spellings
            assert math.isnan(scored["if_antibody_positive"].iloc[i])
            assert "31444-3" not in str(scored["b12labs_actions"].iloc[i])
            assert "IF_ANTIBODY_NEGATIVE" not in want.codes
    assert scored["if_antibody_positive"].iloc[4] == 1.0
    assert scored["if_antibody_positive"].iloc[5] == 0.0
    assert "31444-3" in str(scored["b12labs_actions"].iloc[6])


def test_equivocal_if_antibody_in_a_long_export_is_not_rejected() -> None:
    import pandas as pd

    from b12labs.batch import score_long

    df = pd.DataFrame(
        {
            "patient_id": ["P1", "P1"],
            "collected_at": ["2026-01-01", "2026-01-01"],
            "test": ["2132-9", "31444-3"],
            "value": ["120", "equivocal"],
            "unit": ["pg/mL", ""],
        }
    )
    episodes, rejects = score_long(df)
    assert len(rejects) == 0
    assert episodes["b12labs_status"].tolist() == ["deficient"]
    assert "31444-3" not in str(episodes["b12labs_actions"].iloc[0])


@pytest.mark.parametrize("missing", ["str dtype NaN", "object None", "pyarrow string NA"])
def test_missing_cells_score_like_blank_cells(missing: str) -> None:
    # read_csv(dtype=str) gives NaN for empty cells; other sources give None or pd.NA: a
    # missing cell is never a bad cell, and the result is that of a blank cell
    import numpy as np

    rng = random.Random(7)
    blank = to_frame([_random_panel(rng) for _ in range(2_000)])
    as_object = blank.astype(object).mask(blank.eq(""), None)
    frames = {
        "str dtype NaN": as_object.astype("str"),
        "object None": as_object,
        "pyarrow string NA": as_object.astype("string[pyarrow]"),
    }
    na = frames[missing]
    assert na.isna().to_numpy().any()
    a, b = score_frame(blank), score_frame(na)
    for col in a.columns:
        if col.startswith("b12labs_"):
            assert a[col].astype(str).tolist() == b[col].astype(str).tolist(), col
        elif col not in blank.columns:
            np.testing.assert_array_equal(a[col].to_numpy(), b[col].to_numpy(), err_msg=col)


def test_output_does_not_depend_on_the_number_of_threads() -> None:
    # analyte columns are parsed in parallel threads; errors are merged in column order
    rng = random.Random(11)
    items = [_random_panel(rng) for _ in range(25_000)]  # above the threading threshold
    frame = to_frame(items)
    bad = frame.index[::97]
    frame.loc[bad, "b12"] = "hemolysed"
    frame.loc[bad[::2], "mcv"] = "-4 fL"
    one = score_frame(frame, threads=1)
    many = score_frame(frame, threads=4)
    assert (one["b12labs_error"].astype(str) != "").sum() >= len(bad)
    for col in one.columns:
        assert one[col].astype(str).tolist() == many[col].astype(str).tolist(), col
    with pytest.raises(ValueError, match="threads"):
        score_frame(frame.head(3), threads=0)


@pytest.mark.parametrize(
    "cell", ["250.", "<250.", "250. pg/mL", "250.pg/mL", ".25e3", "+250", "2.5E2 pg/mL", "250,"]
)
def test_number_spellings_read_the_same_both_ways(cell: str) -> None:
    # a clean number takes the batch fast path, anything else the full cell grammar; both
    # must read a cell as interpret() reads it, or reject it in both
    import math

    import pandas as pd

    from b12labs.errors import InputError

    frame = pd.DataFrame({"b12": [cell], "b12_unit": ["pg/mL"]}, dtype="string")
    scored = score_frame(frame)
    text = cell if "pg" in cell else f"{cell} pg/mL"
    try:
        expected = interpret({"b12": text}).values["b12"]
    except InputError:
        assert str(scored["b12labs_error"][0]), "batch read what interpret() rejects"
        assert math.isnan(scored["b12_pmol_l"][0])
        return
    assert str(scored["b12labs_error"][0]) == ""
    assert scored["b12_pmol_l"][0] == expected
