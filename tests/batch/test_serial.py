"""Results over time (RULES.md v2 §8) in the long batch format: each episode's history is the
patient's earlier results, and the batch gives what interpret(history=...) gives."""

from __future__ import annotations

from typing import Any

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from b12labs import interpret
from b12labs.batch import score_long
from tests.rules._cases import load_cases

SERIAL_CASES = [c for c in load_cases() if c.history and not c.profile]
LIST_FIELDS = ("symptoms", "conditions", "medications")


def _cell(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return ";".join(value)
    return "" if value is None else str(value)


def _rows(pid: str, when: str, results: dict[str, Any], context: dict[str, Any]) -> list[dict[str, str]]:
    out = []
    for key, value in results.items():
        row = {"patient_id": pid, "collected_at": when, "test": key}
        if isinstance(value, dict):
            row["value"], row["unit"] = str(value["value"]), str(value.get("unit", ""))
        else:
            row["value"], row["unit"] = str(value), ""
        for field, v in context.items():
            if field != "collected_at":
                row[field] = _cell(v)
        out.append(row)
    return out


def to_long(patients: list[tuple[dict[str, Any], dict[str, Any], list[dict[str, Any]]]]) -> pd.DataFrame:
    """One patient per (panel, context, history), history rows first, as a long export."""
    rows: list[dict[str, str]] = []
    for i, (panel, context, history) in enumerate(patients):
        pid = f"P{i:04d}"
        for entry in history:
            results = {k: v for k, v in entry.items() if k not in ("collected_at", "context")}
            rows += _rows(pid, str(entry["collected_at"]), results, entry.get("context") or {})
        rows += _rows(pid, str(context["collected_at"]), panel, context)
    frame = pd.DataFrame(rows).fillna("")
    return frame.astype("string")


def _last_episodes(scored: pd.DataFrame) -> pd.DataFrame:
    return scored.groupby("patient_id", sort=True).tail(1).set_index("patient_id")


def _outcome_batch(row: pd.Series) -> tuple[str, tuple[str, ...]]:
    codes = tuple(c for c in str(row["b12labs_codes"]).split(";") if c)
    return str(row["b12labs_status"]), tuple(sorted(codes))


def _outcome(result: Any) -> tuple[str, tuple[str, ...]]:
    return result.status.value, tuple(sorted(result.codes))


# every panel is its own episode: a window shorter than any gap between the cases' dates
TINY_WINDOW = 1e-6


def test_serial_rule_cases_score_the_same_in_the_long_format() -> None:
    cases = [c for c in SERIAL_CASES if c.context.get("collected_at")]
    assert len(cases) > 40
    frame = to_long([(c.panel, c.context, list(c.history)) for c in cases])
    scored, rejects = score_long(frame, window_days=TINY_WINDOW)
    assert rejects.empty, rejects[["b12labs_reject_reason"]].to_string()
    last = _last_episodes(scored)
    for i, case in enumerate(cases):
        expected = _outcome(interpret(case.panel, case.context, history=list(case.history)))
        got = _outcome_batch(last.loc[f"P{i:04d}"])
        assert got == expected, f"{case.id}: batch {got} != interpret {expected}"


def test_earlier_episodes_are_the_history_of_later_ones_with_the_default_window() -> None:
    frame = to_long(
        [
            ({"b12": "250 ng/L"}, {"collected_at": "2026-09-01"}, [{"collected_at": "2026-03-01", "b12": "400 ng/L"}]),
            ({"b12": "400 ng/L"}, {"collected_at": "2026-09-01"}, [{"collected_at": "2026-02-01", "b12": "150 ng/L"}]),
        ]
    )
    scored, _ = score_long(frame)
    assert len(scored) == 4
    codes = scored["b12labs_codes"].astype(str).tolist()
    assert "B12_SIGNIFICANT_FALL" in codes[1] and "B12_SIGNIFICANT_FALL" not in codes[0]
    assert "PREVIOUS_DEFICIENCY" in codes[3]
    assert scored["b12labs_status"].astype(str).tolist()[3] == "indeterminate"
    # no hidden serial column leaks into the output
    assert not [c for c in scored.columns if "serial" in str(c)]


def test_a_same_time_conflict_in_a_long_export_uses_neither_value_whatever_the_row_order() -> None:
    rows = [
        {"patient_id": "P1", "collected_at": "2026-09-01T09:00", "test": "b12", "value": "150", "unit": "ng/L"},
        {"patient_id": "P1", "collected_at": "2026-09-01T09:00", "test": "b12", "value": "450", "unit": "ng/L"},
    ]
    outcomes = set()
    for order in (rows, rows[::-1]):
        scored, _ = score_long(pd.DataFrame(order).astype("string"))
        assert len(scored) == 1
        outcomes.add(_outcome_batch(scored.iloc[0]))
    assert outcomes == {("not_assessed", ("RESULT_CONFLICT",))}


def test_streaming_in_small_chunks_gives_the_same_serial_findings(tmp_path: Any) -> None:
    from b12labs.batch import ScoreOptions, score_file

    cases = [c for c in SERIAL_CASES if c.context.get("collected_at")][:30]
    frame = to_long([(c.panel, c.context, list(c.history)) for c in cases])
    src = tmp_path / "long.csv"
    frame.to_csv(src, index=False)
    whole, _ = score_long(frame, window_days=TINY_WINDOW)
    out = tmp_path / "out.csv"
    score_file(src, out, ScoreOptions(format="long", chunksize=7, window=TINY_WINDOW))
    streamed = pd.read_csv(out, dtype=str, keep_default_na=False)
    assert streamed["b12labs_codes"].tolist() == whole["b12labs_codes"].astype(str).tolist()


# ------------------------------------------------------------------------------------------
# properties over random histories (RULES.md v2 §8)

DAYS = st.integers(min_value=1, max_value=800)
B12 = st.sampled_from(["90 ng/L", "150 ng/L", "<100 ng/L", "200 ng/L", "260 ng/L", "320 ng/L",
                       "400 ng/L", "600 ng/L", "1200 ng/L", "300 pmol/L", "180 pmol/L"])
ENTRY = st.fixed_dictionaries(
    {"days_before": DAYS},
    optional={
        "b12": B12,
        "mma": st.sampled_from(["0.2 umol/L", "0.5 umol/L", "0.9 umol/L"]),
        "hb": st.sampled_from(["95 g/L", "115 g/L", "135 g/L"]),
        "mcv": st.sampled_from(["88 fL", "104 fL", "115 fL"]),
        "folate": st.sampled_from(["4 nmol/L", "15 nmol/L"]),
        "context": st.fixed_dictionaries(
            {},
            optional={
                "b12_treatment": st.sampled_from(["none", "oral", "injection"]),
                "symptoms": st.sampled_from([["paraesthesia"], ["fatigue"]]),
            },
        ),
    },
)
CURRENT = st.fixed_dictionaries(
    {"b12": B12},
    optional={
        "mma": st.sampled_from(["0.2 umol/L", "0.6 umol/L"]),
        "hb": st.sampled_from(["100 g/L", "125 g/L", "140 g/L"]),
        "mcv": st.sampled_from(["90 fL", "108 fL"]),
        "folate": st.sampled_from(["5 nmol/L", "20 nmol/L"]),
    },
)
CONTEXT = st.fixed_dictionaries(
    {"collected_at": st.just("2026-10-01T10:00")},
    optional={
        "sex": st.sampled_from(["female", "male"]),
        "b12_treatment": st.sampled_from(["none", "oral", "injection"]),
        "b12_treatment_started": st.sampled_from(["2026-05-01", "2026-08-15", "2026-09-20"]),
        "symptoms": st.sampled_from([["paraesthesia"], ["myoclonus"], []]),
    },
)
SETTINGS = settings(max_examples=150, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.too_slow])


def _history(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for e in entries:
        day = pd.Timestamp("2026-10-01T10:00", tz="UTC") - pd.Timedelta(days=e["days_before"])
        entry = {k: v for k, v in e.items() if k != "days_before"}
        entry["collected_at"] = day.strftime("%Y-%m-%dT%H:%M")
        out.append(entry)
    return out


def _distinct_times(entries: list[dict[str, Any]]) -> bool:
    days = [e["days_before"] for e in entries]
    return len(days) == len(set(days))


@SETTINGS
@given(panel=CURRENT, context=CONTEXT, entries=st.lists(ENTRY, max_size=5))
def test_history_never_makes_the_status_more_reassuring(
    panel: dict[str, Any], context: dict[str, Any], entries: list[dict[str, Any]]
) -> None:
    if not _distinct_times(entries):
        return  # same-time results are a conflict (checked on its own)
    without = interpret(panel, context).status.value
    with_history = interpret(panel, context, history=_history(entries)).status.value
    # §8: history can only move the status away from `unlikely`
    assert with_history == without or (without == "unlikely" and with_history == "indeterminate")


@SETTINGS
@given(panel=CURRENT, context=CONTEXT, entries=st.lists(ENTRY, min_size=2, max_size=5),
       seed=st.randoms(use_true_random=False))
def test_the_order_of_history_entries_never_changes_the_result(
    panel: dict[str, Any], context: dict[str, Any], entries: list[dict[str, Any]], seed: Any
) -> None:
    history = _history(entries)
    shuffled = list(history)
    seed.shuffle(shuffled)
    a = interpret(panel, context, history=history)
    b = interpret(panel, context, history=shuffled)
    assert (a.status, a.codes, a.comment) == (b.status, b.codes, b.comment)
    assert [f.message for f in a.findings] == [f.message for f in b.findings]


@settings(max_examples=60, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(patients=st.lists(st.tuples(CURRENT, CONTEXT, st.lists(ENTRY, max_size=4)), min_size=1, max_size=6))
def test_long_format_equals_interpret_with_history_per_episode(
    patients: list[tuple[dict[str, Any], dict[str, Any], list[dict[str, Any]]]],
) -> None:
    prepared = [(p, c, _history(e)) for p, c, e in patients]
    scored, rejects = score_long(to_long(prepared), window_days=TINY_WINDOW)
    assert rejects.empty
    last = _last_episodes(scored)
    for i, (panel, context, history) in enumerate(prepared):
        expected = _outcome(interpret(panel, context, history=history))
        assert _outcome_batch(last.loc[f"P{i:04d}"]) == expected, (panel, context, history)


@pytest.mark.parametrize("days", [729, 731])
def test_only_results_within_730_days_are_compared(days: int) -> None:
    when = (pd.Timestamp("2026-10-01", tz="UTC") - pd.Timedelta(days=days)).strftime("%Y-%m-%d")
    result = interpret({"b12": "250 ng/L"}, {"collected_at": "2026-10-01"},
                       history=[{"collected_at": when, "b12": "500 ng/L"}])
    assert ("B12_SIGNIFICANT_FALL" in result.codes) == (days == 729)
    assert bool(result.ignored) == (days == 731)
