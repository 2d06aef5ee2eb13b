"""Fuzz (hypothesis): random cells, rows and text thrown at interpret() and score_frame().

Nothing escapes the B12LabsError tree, every input row comes out once and in order, and a row
that cannot be scored (interpret() refuses it) carries an error reason and code in batch.
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from b12labs import interpret
from b12labs._grammar import COMPARATORS, MISSING_MARKERS, QUALITATIVE_WORDS, TRUE_WORDS
from b12labs.batch import score_frame
from b12labs.errors import ERROR_CODES, B12LabsError

_UNITS = ["pmol/L", "pg/mL", "ng/L", "", "g/dL", "%", "furlong", "pmol/l", " pmol / L"]
_NUMBERS = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.integers(-(10**30), 10**30).map(str),
    st.decimals(allow_nan=False, allow_infinity=False, places=3).map(str),
    st.sampled_from(["1" * 400, "1e400", "٢٥٠", "２５０", "1,5", "1.000,5", "12.", ".5", "1e5"]),
)
cells = st.one_of(
    st.text(max_size=30),
    st.builds(
        lambda c, n, u: f"{c}{n} {u}".strip(),
        st.sampled_from(["", *COMPARATORS, "~", "<<", "!"]),
        _NUMBERS,
        st.sampled_from(_UNITS),
    ),
    st.sampled_from([*MISSING_MARKERS, *QUALITATIVE_WORDS, "NA ", " n/a"]),
)
# values interpret() may be handed in a panel, beyond text
raw_values = st.one_of(
    cells,
    st.none(),
    st.booleans(),
    st.integers(-(10**500), 10**500),
    st.floats(),
    st.fixed_dictionaries(
        {"value": st.one_of(cells, st.floats(), st.integers(), st.booleans(), st.none())},
        optional={
            "unit": st.sampled_from(_UNITS),
            "ref_low": st.one_of(cells, st.floats(), st.integers(-5, 500)),
            "ref_high": st.one_of(cells, st.floats(), st.integers(-5, 500)),
            "comparator": st.sampled_from([*COMPARATORS, "~", ""]),
        },
    ),
    st.lists(st.integers(), max_size=2),
)
context_values = st.one_of(
    cells, st.none(), st.booleans(), st.integers(-(10**400), 10**400), st.floats(),
    st.dictionaries(st.text(max_size=5), st.text(max_size=5), max_size=2),
    st.lists(st.one_of(st.text(max_size=10), st.integers()), max_size=3),
)
contexts = st.dictionaries(
    st.sampled_from(["age", "sex", "pregnant", "medications", "symptoms", "conditions",
                     "b12_treatment", "days_since_b12_injection", "nitrous_oxide_exposure", "agee"]),
    context_values,
    max_size=4,
)
panels = st.dictionaries(
    st.sampled_from(["b12", "holotc", "mma", "hb", "mcv", "folate", "if_antibody", "ferritin"]),
    raw_values,
    max_size=4,
)


@given(panel=panels, context=st.one_of(st.none(), contexts), decimal=st.sampled_from([".", ","]))
def test_interpret_raises_only_coded_b12labs_errors(
    panel: dict[str, Any], context: dict[str, Any] | None, decimal: str
) -> None:
    try:
        interpret(panel, context, decimal=decimal)
    except B12LabsError as exc:
        assert exc.code in ERROR_CODES
        str(exc)  # the message can always be built


@given(text=st.text(max_size=60))
def test_random_text_for_every_analyte(text: str) -> None:
    for analyte in ("b12", "if_antibody", "hb"):
        try:
            interpret({analyte: text})
        except B12LabsError as exc:
            assert exc.code in ERROR_CODES


_FRAME_COLUMNS = ("b12", "if_antibody", "age", "sex", "pregnant")
rows = st.lists(
    st.fixed_dictionaries(
        {
            "b12": cells,
            "if_antibody": st.one_of(cells, st.sampled_from(["positive", "negative", ""])),
            "age": st.one_of(cells, st.integers(0, 120).map(str), st.sampled_from(["", "True"])),
            "sex": st.one_of(st.sampled_from(["F", "m", "", "unknown", "x"]), st.text(max_size=4)),
            "pregnant": st.one_of(st.sampled_from([*TRUE_WORDS, "no", "", "maybe"]), st.text(max_size=3)),
        }
    ),
    min_size=1,
    max_size=25,
)


def _as_panel(row: dict[str, str]) -> tuple[dict[str, str], dict[str, str]]:
    return (
        {"b12": row["b12"], "if_antibody": row["if_antibody"]},
        {"age": row["age"], "sex": row["sex"], "pregnant": row["pregnant"]},
    )


@settings(max_examples=40)
@given(data=rows, decimal=st.sampled_from([".", ","]))
def test_score_frame_keeps_every_row_in_order_and_explains_the_unscored(
    data: list[dict[str, str]], decimal: str
) -> None:
    # one row with a unit so that the column as a whole is scorable
    data = [*data, {"b12": "250 pmol/L", "if_antibody": "", "age": "", "sex": "", "pregnant": ""}]
    frame = pd.DataFrame(data, columns=list(_FRAME_COLUMNS), dtype="string")
    frame.index = pd.RangeIndex(100, 100 + len(frame))
    frame["row_id"] = [f"r{i}" for i in range(len(frame))]
    try:
        out = score_frame(frame, decimal=decimal)
    except B12LabsError as exc:
        assert exc.code in ERROR_CODES
        return
    assert len(out) == len(frame)
    assert out.index.equals(frame.index)
    assert out["row_id"].tolist() == frame["row_id"].tolist()
    errors = out["b12labs_error"].astype(str).tolist()
    codes = out["b12labs_error_code"].astype(str).tolist()
    for row, error, code in zip(data, errors, codes, strict=True):
        assert (error == "") == (code == ""), (error, code)
        for c in filter(None, code.split(";")):
            assert c in ERROR_CODES
        panel, context = _as_panel(row)
        try:
            interpret(panel, context, decimal=decimal)
        except B12LabsError as exc:
            # a row interpret() refuses is never silently scored in batch: it says why
            assert error, (row, exc.code)
            if exc.code not in ("vocabulary-unknown",):
                assert exc.code in code.split(";"), (row, exc.code, code)


@given(value=st.floats(allow_nan=True, allow_infinity=True) | st.integers(-(10**400), 10**400))
def test_numbers_never_overflow(value: float) -> None:
    try:
        result = interpret({"b12": {"value": value, "unit": "pmol/L"}}, {"age": value})
    except B12LabsError as exc:
        assert exc.code in ERROR_CODES
    else:
        assert all(math.isfinite(v) for v in result.values.values())
