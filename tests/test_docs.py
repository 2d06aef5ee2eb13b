"""Documentation stays true: generated pages match the catalogue, and code examples run."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from b12labs._docs import check
from b12labs.rules import CATALOGUE
from tests._paths import REPO


def test_generated_docs_have_no_drift() -> None:
    assert check(REPO / "docs") == [], "run `make docs`"


def test_every_rule_has_a_page_with_the_fixed_sections() -> None:
    for r in CATALOGUE:
        text = (REPO / "docs" / "rules" / f"{r.code}.md").read_text(encoding="utf-8")
        for section in ("## What it flags", "## Why it matters", "## Thresholds per profile", "## Example", "## Sources"):
            assert section in text, (r.code, section)


def _python_blocks(path: Path) -> list[str]:
    return re.findall(r"```python\n(.*?)```", path.read_text(encoding="utf-8"), flags=re.S)


@pytest.mark.parametrize("block", _python_blocks(REPO / "README.md")[:1])
def test_readme_library_example_runs(block: str) -> None:
    namespace: dict[str, object] = {}
    exec(compile(block, "README.md", "exec"), namespace)
    result = namespace["result"]
    assert result.status.value == "probable"  # type: ignore[attr-defined]
    assert {"NEURO_URGENT", "B12_INDETERMINATE", "MMA_ELEVATED"} <= set(result.codes)  # type: ignore[attr-defined]


def test_readme_history_example_runs_and_says_what_it_gives() -> None:
    block = next(b for b in _python_blocks(REPO / "README.md") if "history=" in b)
    namespace: dict[str, object] = {}
    exec(compile(block.replace("interpret(\n", "result = interpret(\n", 1), "README.md", "exec"), namespace)
    shown = block.split("# ", 1)[1].strip()
    assert repr(namespace["result"]) == shown


def test_readme_batch_example_runs() -> None:
    import pandas as pd

    block = next(b for b in _python_blocks(REPO / "README.md") if "score_frame(" in b)
    df = pd.DataFrame({"id": ["1"], "B12 result": ["150"]})
    long_df = pd.DataFrame({"patient_id": ["p"], "collected_at": ["2024-01-01"], "test": ["2132-9"],
                            "value": ["150"], "unit": ["pg/mL"]})
    namespace: dict[str, object] = {"df": df, "long_df": long_df}
    exec(compile(block, "README.md", "exec"), namespace)
    assert namespace["scored"]["b12labs_status"].tolist() == ["deficient"]  # type: ignore[index]
    assert len(namespace["episodes"]) == 1  # type: ignore[arg-type]


def _project_texts() -> list[Path]:
    roots = [REPO / "docs", REPO / "src", REPO / "reference_ranges", REPO / "benchmarks"]
    files = [REPO / "README.md", REPO / "CHANGELOG.md"]
    for root in roots:
        files += [p for p in root.rglob("*") if p.suffix in (".md", ".py", ".toml", ".txt") and p.is_file()]
    return files


def test_the_project_states_its_own_logic() -> None:
    # the clinical specification lives outside the repository: code and docs point to the
    # project's own account of it (docs/clinical-logic.md), whose sections they name
    offenders = [str(p.relative_to(REPO)) for p in _project_texts()
                 if "RULES.md" in p.read_text(encoding="utf-8") and p.name != "CHANGELOG.md"]
    assert offenders == []
    logic = (REPO / "docs" / "clinical-logic.md").read_text(encoding="utf-8")
    sections = set(re.findall(r"^## §(\d+) ", logic, flags=re.M))
    for p in _project_texts():
        for n in re.findall(r"clinical-logic\.md §(\d+)", p.read_text(encoding="utf-8")):
            assert n in sections, f"{p.relative_to(REPO)} cites clinical-logic.md §{n}, which does not exist"


def test_docs_do_not_speak_of_issue_numbers() -> None:
    pattern = re.compile(r"\bissues? #?\d+|\(#\d+\)", re.I)
    docs = [REPO / "README.md", *(REPO / "docs").rglob("*.md"), *(REPO / "benchmarks").glob("*.md"),
            *(REPO / "reference_ranges").rglob("*.md")]
    hits = [f"{p.relative_to(REPO)}: {m.group(0)}" for p in docs for m in pattern.finditer(p.read_text(encoding="utf-8"))]
    assert hits == []


def test_rule_pages_show_prose_not_format_fields() -> None:
    # a message template's {fields} are rendered as words on the generated pages
    import re

    from b12labs._docs import render_rule
    from b12labs.rules import CATALOGUE

    for r in CATALOGUE:
        page = render_rule(r)
        prose = re.sub(r"```.*?```", "", page, flags=re.S)
        assert not re.search(r"\{[a-z_0-9]+\}", prose), r.code
