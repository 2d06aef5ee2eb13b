"""The terminal view for one patient, through a real `python -m b12labs` process."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests._paths import REPO


def run(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "b12labs", *args], capture_output=True, text=True, cwd=cwd,
                          timeout=120, check=False)


def test_interpret_readable_plain_when_not_a_terminal() -> None:
    out = run("interpret", "--b12", "250 pg/mL", "--mma", "0.6 umol/L", "--age", "70", "--sex", "F",
              "--symptom", "numbness", "--medication", "Metformin 500 mg", "--medication", "aspirin")
    assert out.returncode == 0, out.stderr
    text = out.stdout
    assert "\x1b[" not in text  # no colour when stdout is not a terminal
    assert "Status: PROBABLE" in text
    assert "NEURO_URGENT" in text and "MMA_ELEVATED" in text
    assert "Medications not recognised (ignored): aspirin" in text
    assert "Comment:" in text


def test_interpret_colour_when_forced() -> None:
    out = run("interpret", "--b12", "150 pg/mL", "--color", "always")
    assert "\x1b[" in out.stdout


def test_interpret_json_is_the_interpretation() -> None:
    out = run("interpret", "--b12", "250 pg/mL", "--json")
    data = json.loads(out.stdout)
    assert data["status"] == "indeterminate"
    assert data["codes"] == ["B12_INDETERMINATE"]
    assert data["findings"][0]["actions"][0]["loinc"] == "13964-2"


def test_every_analyte_has_an_option() -> None:
    out = run("interpret", "--help")
    for key in ("--b12", "--holotc", "--mma", "--homocysteine", "--mcv", "--hb", "--rdw", "--ferritin", "--tsat",
                "--iron", "--tibc", "--folate", "--rbc-folate", "--creatinine", "--egfr", "--crp", "--if-antibody",
                "--age", "--sex", "--pregnant", "--symptom", "--condition", "--medication", "--profile", "--json"):
        assert key in out.stdout


def test_bad_input_is_a_clear_error_and_exit_2() -> None:
    out = run("interpret", "--b12", "180")
    assert out.returncode == 2
    assert "b12" in out.stderr and "without a unit" in out.stderr and "pg/mL" in out.stderr
    out = run("interpret", "--symptom", "headache")
    assert out.returncode == 2 and "paraesthesia" in out.stderr


def test_interpret_file_of_panels_and_other_profiles() -> None:
    out = run("interpret", "--file", "examples/panels.json", "--json")
    items = json.loads(out.stdout)
    assert len(items) == 12 and items[0]["interpretation"]["status"] == "deficient"
    out = run("interpret", "--b12", "160 ng/L", "--profile", "mayo-acasm", "--json")
    assert json.loads(out.stdout)["status"] == "indeterminate"


def test_profiles_rules_and_docs_check() -> None:
    assert "nice-ng239-2024" in run("profiles").stdout
    rules = json.loads(run("rules", "--json").stdout)
    assert len(rules) == 57  # RULES v2: 41 of v1, six new (§9) and ten of results over time (§8)
    out = run("docs", "--check")
    assert out.returncode == 0, out.stderr
