"""The printed comment (docs/clinical-logic.md §6.1): status sentence by status and reason,
one clause per critical and warning finding, "Suggest:" by name, the limit and what it may
leave out, and the same text from interpret(), score_frame and the CLI."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import b12labs._interpret as interpret_module
import b12labs.batch._frame as frame_module
from b12labs import interpret
from b12labs._comment import (
    DEFAULT_COMMENT_LIMIT,
    DISCLAIMER,
    STATUS_REASONS,
    comment,
    reason_name,
    status_sentence,
)
from b12labs.batch import score_frame
from b12labs.errors import InputError, ProfileError
from b12labs.models import Status
from b12labs.profiles import load_profile
from b12labs.rules import CATALOGUE

from ._paths import REPO
from .batch._convert import to_frame

STATUSES = [s.value for s in Status]
CRIT, WARN, INFO = 3, 2, 1


# ---- status sentence


@pytest.mark.parametrize("status", STATUSES)
def test_every_status_has_a_generic_sentence(status: str) -> None:
    assert status_sentence(status, None).endswith(".")


@pytest.mark.parametrize(
    ("status", "reason", "expected"),
    [
        ("probable", "mma", "Raised MMA: functional B12 deficiency is probable."),
        ("probable", "mma_child", "Raised MMA: B12 deficiency or an inborn error of metabolism."),
        ("uninterpretable", None, "B12 results reflect B12 treatment and do not show B12 status."),
    ],
)
def test_sentences_the_spec_words(status: str, reason: str | None, expected: str) -> None:
    assert status_sentence(status, reason) == expected


@pytest.mark.parametrize(
    ("reason", "says"),
    [
        ("mma_renal", "renal impairment"),
        ("if_antibody", "intrinsic-factor antibody"),
        ("homocysteine_nitrous", "nitrous oxide"),
    ],
)
def test_probable_says_why(reason: str, says: str) -> None:
    sentence = status_sentence("probable", reason)
    assert says in sentence and "probable" in sentence
    assert "MMA" not in sentence or reason == "mma_renal"  # an antibody is not a raised MMA


def test_deficient_reasons_name_the_marker() -> None:
    assert "total B12" in status_sentence("deficient", "b12")
    assert "holoTC" in status_sentence("deficient", "holotc")


def test_a_reason_that_cannot_make_the_status_is_refused() -> None:
    with pytest.raises(ValueError, match="no reason 'mma'"):
        status_sentence("unlikely", "mma")
    with pytest.raises(ValueError, match="unknown status"):
        status_sentence("fine", None)


def test_reasons_come_as_codes_or_names() -> None:
    assert reason_name(None) is None and reason_name(0) is None and reason_name("") is None
    assert reason_name(STATUS_REASONS.index("mma")) == "mma"
    assert reason_name(np.int64(STATUS_REASONS.index("if_antibody"))) == "if_antibody"
    assert reason_name("holotc") == "holotc"


# ---- assembly


def test_order_sections_and_no_info_clause() -> None:
    text = comment(
        "indeterminate",
        None,
        ((CRIT, "exclude cord compression"), (WARN, "moderate anaemia"), (INFO, "a risk medicine")),
        (("order_test", "MMA"), ("order_test", "homocysteine"), ("review", "dietary review")),
    )
    assert text == (
        "B12 status is indeterminate: deficiency is not excluded. Exclude cord compression; "
        "moderate anaemia. Suggest: MMA, homocysteine, dietary review. " + DISCLAIMER
    )
    assert "risk medicine" not in text
    assert "LOINC" not in text


def test_no_point_twice() -> None:
    text = comment(
        "not_assessed",
        None,
        (
            (CRIT, "nitrous oxide exposure: check homocysteine and MMA"),
            (WARN, "Nitrous oxide exposure: check homocysteine and MMA."),  # the same clause
            (WARN, "prompt review: MRI cervical spine"),
        ),
        (
            ("order_test", "homocysteine"),
            ("order_test", "MMA"),
            ("order_test", "MMA"),
            ("review", "MRI cervical spine"),
            ("order_test", "folate"),
        ),
    )
    body = text.removeprefix(status_sentence("not_assessed", None))
    assert body.count("homocysteine") == 1 and body.count("MMA") == 1
    assert body.count("MRI cervical spine") == 1
    assert "Suggest: folate." in text


def test_the_vitamin_named_in_a_clause_is_not_the_test() -> None:
    # "B12 deficiency" speaks of the vitamin: the B12 test is still suggested
    text = comment(
        "not_assessed",
        None,
        ((WARN, "do not give folic acid alone before B12 deficiency is excluded"),),
        (("order_test", "B12"),),
    )
    assert "Suggest: B12." in text
    covered = comment(
        "not_assessed",
        None,
        ((WARN, "check B12 before blaming methotrexate"),),
        (("order_test", "B12"),),
    )
    assert "Suggest" not in covered


def test_avoid_actions_are_not_suggestions() -> None:
    text = comment(
        "deficient",
        None,
        ((CRIT, "treat B12 before or alongside folic acid"),),
        (("avoid", "folic acid alone"),),
    )
    assert "Suggest" not in text


def test_dropping_a_clause_brings_back_the_test_it_named() -> None:
    clauses = ((WARN, "raised homocysteine with MMA unmeasured: measure MMA " + "x" * 200),)
    full = comment("indeterminate", None, clauses, (("order_test", "MMA"),), 1000)
    assert "Suggest" not in full
    short = comment("indeterminate", None, clauses, (("order_test", "MMA"),), 180)
    assert "Suggest: MMA." in short and "(+1 more finding)" in short


def test_warnings_are_left_out_last_first_and_counted() -> None:
    clauses = tuple((WARN, f"warning clause number {i}") for i in range(1, 8))
    text = comment("indeterminate", None, ((CRIT, "urgent clause"), *clauses), (), 200)
    assert len(text) <= 200
    kept = [i for i in range(1, 8) if f"warning clause number {i}" in text]
    assert kept == list(range(1, len(kept) + 1))  # a prefix: the last ones went first
    assert f"(+{7 - len(kept)} more findings)" in text
    assert "Urgent clause" in text and text.endswith(DISCLAIMER)


def test_the_limit_yields_to_critical_clauses_and_the_disclaimer() -> None:
    long_clause = "exclude cervical cord compression alongside the B12 work-up " * 4
    text = comment("indeterminate", None, ((CRIT, long_clause), (WARN, "moderate anaemia")), (), 60)
    assert long_clause.strip().lower() in text.lower()
    assert text.endswith(DISCLAIMER) and "moderate anaemia" not in text
    assert "(+1 more finding)" in text


_words = st.lists(
    st.text(alphabet="abcdefghijklmnop", min_size=1, max_size=9), min_size=1, max_size=6
)


@given(
    status=st.sampled_from(STATUSES),
    findings=st.lists(st.tuples(st.sampled_from([CRIT, WARN, INFO]), _words), max_size=10),
    tests=st.lists(st.sampled_from(["MMA", "homocysteine", "folate", "B12"]), max_size=4),
    limit=st.integers(min_value=1, max_value=600),
)
def test_limit_properties(
    status: str, findings: list[tuple[int, list[str]]], tests: list[str], limit: int
) -> None:
    # every clause's words are tagged with its number, so a clause half shown is detectable
    clauses = tuple(
        (rank, " ".join(f"{w}q{i}" for w in words)) for i, (rank, words) in enumerate(findings)
    )
    text = comment(status, None, clauses, tuple(("order_test", t) for t in tests), limit)
    assert text.startswith(status_sentence(status, None))
    assert text.endswith(DISCLAIMER)
    lowered = text.lower()
    for i, (rank, clause) in enumerate(clauses):
        shown = [f"{w}q{i}" in lowered.split(" ") or f"{w}q{i}" in lowered for w in clause.split()]
        if rank == CRIT:
            assert clause in lowered  # never dropped, never cut
        elif rank == INFO:
            assert not any(f"q{i}" in word for word in lowered.split())
        else:
            assert all(shown) or not any(shown), "a clause cut in the middle"
    if len(text) > limit:  # only when the status sentence, critical clauses and disclaimer
        # alone overflow: everything that may be left out has been
        assert "Suggest:" not in text
        assert not any(f"q{i}" in text for i, (rank, _) in enumerate(clauses) if rank == WARN)
        critical = "; ".join(c for r, c in clauses if r == CRIT)
        floor = len(status_sentence(status, None)) + 1 + len(DISCLAIMER)
        floor += len(critical) + 2 if critical else 0
        assert floor > limit


# ---- the library front-ends

CRITICAL_PANEL = (
    {"hb": "9.8 g/dL", "mcv": "125 fL", "b12": "150 pmol/L"},
    {
        "conditions": ["rheumatoid_arthritis"],
        "symptoms": ["neck_pain", "paraesthesia"],
        "medications": ["methotrexate", "folic acid"],
    },
)


def test_default_limit_and_per_call_limit() -> None:
    full = interpret(*CRITICAL_PANEL, comment_limit=5000)
    assert len(interpret(*CRITICAL_PANEL).comment) <= DEFAULT_COMMENT_LIMIT < len(full.comment)
    short = interpret(*CRITICAL_PANEL, comment_limit=50)
    critical = [f for f in short.findings if f.severity.value == "critical"]
    assert critical and short.comment.endswith(DISCLAIMER)
    for f in critical:  # the fallback clause is the title, first letter lower-cased
        clause = CATALOGUE[[r.code for r in CATALOGUE].index(f.code)].clause(f.branch)
        assert clause in short.comment or clause[:1].upper() + clause[1:] in short.comment
    assert len(short.findings) == len(full.findings)  # the full list is always in findings


@pytest.mark.parametrize("bad", [0, -5, True, 2.5, "100"])
def test_a_bad_limit_is_a_clear_error(bad: Any) -> None:
    with pytest.raises(InputError, match="positive whole number"):
        interpret({"b12": "150 pg/mL"}, comment_limit=bad)
    with pytest.raises(InputError, match="positive whole number"):
        score_frame(to_frame([({"b12": "150 pg/mL"}, None)]), comment_limit=bad)


def _profile(tmp_path: Path, name: str, body: str) -> Path:
    path = tmp_path / f"{name}.toml"
    path.write_text(f'id = "{name}"\nversion = "1"\n{body}\n', encoding="utf-8")
    return path


def test_profile_limit_is_inherited_and_a_call_overrides_it(tmp_path: Path) -> None:
    _profile(tmp_path, "local", 'extends = "nice-ng239-2024"\ncomment_limit = 90')
    child = _profile(tmp_path, "child", 'extends = "local.toml"')
    assert load_profile(child).comment_limit == 90
    assert load_profile("nice-ng239-2024").comment_limit is None
    by_profile = interpret(*CRITICAL_PANEL, profile=child).comment
    assert by_profile == interpret(*CRITICAL_PANEL, comment_limit=90).comment
    assert interpret(*CRITICAL_PANEL, profile=child, comment_limit=5000).comment == (
        interpret(*CRITICAL_PANEL, comment_limit=5000).comment
    )
    frame = to_frame([CRITICAL_PANEL])
    assert score_frame(frame, profile=child)["b12labs_comment"].tolist() == [by_profile]


@pytest.mark.parametrize("bad", ["0", "-1", "true", '"400"', "12.5"])
def test_a_bad_profile_limit_names_the_file_and_key(tmp_path: Path, bad: str) -> None:
    path = _profile(tmp_path, "bad", f'extends = "nice-ng239-2024"\ncomment_limit = {bad}')
    with pytest.raises(ProfileError, match=r"bad\.toml \[comment_limit\]"):
        load_profile(path)


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "b12labs", *args], capture_output=True, text=True, cwd=REPO,
        timeout=120,
    )


def test_cli_comment_limit(tmp_path: Path) -> None:
    args = ["interpret", "--b12", "150 pmol/L", "--hb", "9.8 g/dL", "--mcv", "125 fL",
            "--condition", "rheumatoid_arthritis", "--symptom", "neck_pain",
            "--symptom", "paraesthesia", "--medication", "methotrexate",
            "--medication", "folic acid", "--json"]
    import json

    out = _cli(*args, "--comment-limit", "60")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["comment"] == interpret(*CRITICAL_PANEL, comment_limit=60).comment
    bad = _cli(*args, "--comment-limit", "0")
    assert bad.returncode == 2 and "--comment-limit" in bad.stderr and "positive" in bad.stderr

    src = tmp_path / "in.csv"
    src.write_text("b12,mma\n150 pg/mL,0.9 umol/L\n300 pmol/L,\n", encoding="utf-8")
    dst = tmp_path / "out.csv"
    scored = _cli("score", str(src), "-o", str(dst), "--comment-limit", "120", "--quiet")
    assert scored.returncode == 0, scored.stderr
    import pandas as pd

    comments = pd.read_csv(dst, dtype=str)["b12labs_comment"].tolist()
    assert comments == [
        interpret({"b12": "150 pg/mL", "mma": "0.9 umol/L"}, comment_limit=120).comment,
        interpret({"b12": "300 pmol/L"}, comment_limit=120).comment,
    ]
    assert all(len(c) <= 120 for c in comments)


# ---- clauses written for rules (a temporary mapping: the rule files are the lead's)


@pytest.fixture
def with_clauses(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """Give rules (and branches) comment clauses for one test, in both front-ends."""

    def apply(rules: Mapping[str, str], branches: Mapping[tuple[str, str], str] = {}) -> None:
        for i, r in enumerate(CATALOGUE):
            mine = {name: c for (code, name), c in branches.items() if code == r.code}
            if r.code not in rules and not mine:
                continue
            new = dataclasses.replace(
                r,
                comment=rules.get(r.code, r.comment),
                branches=tuple(
                    dataclasses.replace(b, comment=mine.get(b.name, b.comment)) for b in r.branches
                ),
            )
            CATALOGUE[i] = new
            monkeypatch.setitem(interpret_module._PLAN_BY_CODE, r.code, interpret_module._plan(i, new))
        monkeypatch.setattr(frame_module, "_CLAUSES", frame_module.clause_table())
        monkeypatch.setattr(
            frame_module,
            "_CLAUSE_BRANCHES",
            frozenset(i for i, r in enumerate(CATALOGUE) if any(b.comment for b in r.branches)),
        )

    saved = list(CATALOGUE)
    try:
        yield apply
    finally:
        CATALOGUE[:] = saved


def test_rule_clauses_replace_titles_and_batch_agrees(with_clauses: Any) -> None:
    folic = next(r for r in CATALOGUE if r.code == "FOLIC_ACID_CAUTION")
    with_clauses(
        {
            "IF_ANTIBODY_POSITIVE": "an IF-antibody clause no branch uses",
            "ANAEMIA": "moderate anaemia",
            "POSSIBLE_ASSAY_INTERFERENCE": "B12 assays can read falsely normal in pernicious "
            "anaemia; check MMA and homocysteine",
        },
        {(folic.code, b.name): f"folic acid clause for {b.name}" for b in folic.branches},
    )
    items = [
        ({"b12": "420 ng/L", "if_antibody": "positive", "mcv": 115, "hb": "98 g/L"},
         {"symptoms": ["paraesthesia"]}),
        ({"b12": "100 pg/mL", "folate": "2 ng/mL"}, None),
        ({"b12": "150 pmol/L"}, {"medications": ["folic acid"]}),
        ({"folate": "2 ng/mL"}, None),
        ({"b12": "200 ng/L"}, {"pregnant": True, "medications": ["folic acid 400 micrograms"]}),
    ]
    first = interpret(*items[0], comment_limit=1000).comment
    # the fired branch's own clause overrides the rule's; with a neurological symptom it is
    # NEURO_URGENT's clause, said once
    assert first.count("prompt clinical review, without delaying treatment") == 1
    assert "no branch uses" not in first
    assert "moderate anaemia; " in first.lower()
    assert "Suggest:" not in first or "MMA" not in first.split("Suggest:")[1]
    for panel, ctx in items[1:]:
        result = interpret(panel, ctx)
        fired = [f for f in result.findings if f.code == folic.code and f.severity.value != "info"]
        for f in fired:
            assert f"folic acid clause for {f.branch}" in result.comment.lower()
    for limit in (400, 120):
        batch = score_frame(to_frame(items), comment_limit=limit)["b12labs_comment"].tolist()
        assert batch == [interpret(p, c, comment_limit=limit).comment for p, c in items]


def test_the_engine_reason_reaches_both_front_ends(monkeypatch: pytest.MonkeyPatch) -> None:
    # the lead's engine will set Facts.status_reason; here a stand-in sets it after evaluate()
    code = STATUS_REASONS.index("if_antibody")

    def scalar(*args: Any) -> Any:
        f = real(*args)
        f.status_reason = code if f.status == 3 else 0
        return f

    def vector(*args: Any) -> Any:
        f = real(*args)
        f.status_reason = np.where(np.asarray(f.status) == 3, code, 0)
        return f

    real = interpret_module.evaluate
    monkeypatch.setattr(interpret_module, "evaluate", scalar)
    monkeypatch.setattr(frame_module, "evaluate", vector)
    items = [({"b12": "510 pg/mL", "mma": "0.62 umol/L"}, {"age": 50}), ({"b12": "150 pg/mL"}, None)]
    comments = [interpret(p, c).comment for p, c in items]
    assert comments[0].startswith(status_sentence("probable", "if_antibody"))
    assert comments[1].startswith(status_sentence("deficient", None))
    assert score_frame(to_frame(items))["b12labs_comment"].tolist() == comments
