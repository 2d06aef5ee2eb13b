"""Loading and checking the rule case files ``tests/rules/cases/<CODE>.yaml``.

Each file holds cases whose expected results are derived from RULES.md (not captured from the
code): values on, just below and just above every threshold, in non-canonical units, with
context missing. Format::

    code: B12_DEFICIENT
    cases:
      - name: just below the NICE limit, in ng/L
        panel: {b12: "179 ng/L"}
        context: {age: 50}            # optional
        profile: nice-ng239-2024      # optional (default profile)
        fires: true                   # whether the file's code is among the findings
        severity: warning             # optional, checked when it fires
        status: deficient             # optional overall status
        actions: ["order 31444-3 intrinsic-factor antibody"]   # optional, must be present
        no_actions: ["order 13964-2 MMA"]                       # optional, must be absent
        codes: [B12_DEFICIENT]        # optional, other codes that must be present
        no_codes: [MMA_ELEVATED]      # optional, codes that must be absent
        evidence: [rdw]               # optional, analytes in the evidence of the file's code
        no_evidence: [rdw]            # optional, analytes not in that evidence
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

CASES_DIR = Path(__file__).parent / "cases"


@dataclass(frozen=True)
class Case:
    code: str
    name: str
    panel: dict[str, Any]
    context: dict[str, Any]
    profile: str | None
    fires: bool
    severity: str | None = None
    status: str | None = None
    actions: tuple[str, ...] = ()
    no_actions: tuple[str, ...] = ()
    codes: tuple[str, ...] = ()
    no_codes: tuple[str, ...] = ()
    evidence: tuple[str, ...] = ()
    no_evidence: tuple[str, ...] = ()
    file: str = ""
    extra: dict[str, Any] = field(default_factory=dict)
    #: earlier results (docs/clinical-logic.md §8), passed as interpret(history=...)
    history: tuple[dict[str, Any], ...] = ()

    @property
    def kwargs(self) -> dict[str, Any]:
        """The keyword arguments interpret() takes for this case besides the profile."""
        return {"history": list(self.history)} if self.history else {}

    @property
    def id(self) -> str:
        return f"{self.code}:{self.name}"


_KEYS = {"name", "panel", "context", "history", "profile", "fires", "severity", "status", "actions",
         "no_actions", "codes", "no_codes", "evidence", "no_evidence"}


def load_cases(directory: Path = CASES_DIR) -> list[Case]:
    cases: list[Case] = []
    for path in sorted(directory.glob("*.yaml")):
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
        code = doc["code"]
        assert path.stem == code, f"{path.name}: code {code} does not match the file name"
        for raw in doc["cases"]:
            unknown = set(raw) - _KEYS
            assert not unknown, f"{path.name}: {raw.get('name')}: unknown keys {unknown}"
            cases.append(Case(
                code=code,
                name=str(raw["name"]),
                panel=dict(raw.get("panel") or {}),
                context=dict(raw.get("context") or {}),
                profile=raw.get("profile"),
                fires=bool(raw["fires"]),
                severity=raw.get("severity"),
                status=raw.get("status"),
                actions=tuple(raw.get("actions") or ()),
                no_actions=tuple(raw.get("no_actions") or ()),
                codes=tuple(raw.get("codes") or ()),
                no_codes=tuple(raw.get("no_codes") or ()),
                evidence=tuple(raw.get("evidence") or ()),
                no_evidence=tuple(raw.get("no_evidence") or ()),
                file=path.name,
                history=tuple(dict(h) for h in raw.get("history") or ()),
            ))
    return cases


@dataclass(frozen=True)
class Outcome:
    """What a front-end produced for a case, in a form both front-ends can give."""

    status: str
    codes: tuple[str, ...]
    severities: dict[str, str]
    actions: dict[str, tuple[str, ...]]  # per code, action labels
    evidence: dict[str, tuple[str, ...]] | None = None  # per code, evidence analytes (scalar only)


def outcome_from_interpretation(result: Any) -> Outcome:
    from b12labs.rules import ActionSpec

    actions = {}
    for f in result.findings:
        labels = []
        for a in f.actions:
            labels.append(ActionSpec(a.kind, a.test, a.loinc).label())
        actions[f.code] = tuple(labels)
    return Outcome(
        status=result.status.value,
        codes=tuple(result.codes),
        severities={f.code: f.severity.value for f in result.findings},
        actions=actions,
        evidence={f.code: tuple(e.analyte for e in f.evidence) for f in result.findings},
    )


def check(case: Case, out: Outcome) -> list[str]:
    """The ways ``out`` disagrees with ``case`` (empty when it agrees)."""
    problems: list[str] = []
    fired = case.code in out.codes
    if fired != case.fires:
        problems.append(f"{case.code} fired={fired}, expected {case.fires} (codes {out.codes})")
    if fired and case.fires and case.severity and out.severities[case.code] != case.severity:
        problems.append(f"severity {out.severities[case.code]}, expected {case.severity}")
    if case.status and out.status != case.status:
        problems.append(f"status {out.status}, expected {case.status}")
    all_actions = {a for labels in out.actions.values() for a in labels}
    own = set(out.actions.get(case.code, ()))
    for a in case.actions:
        if a not in own:
            problems.append(f"action {a!r} missing from {case.code} (has {sorted(own)})")
    for a in case.no_actions:
        if a in own:
            problems.append(f"action {a!r} present on {case.code}")
    for c in case.codes:
        if c not in out.codes:
            problems.append(f"code {c} missing (codes {out.codes})")
    for c in case.no_codes:
        if c in out.codes:
            problems.append(f"code {c} present (codes {out.codes})")
    del all_actions
    if out.evidence is not None and fired:
        have = set(out.evidence.get(case.code, ()))
        problems += [f"evidence {a!r} missing" for a in case.evidence if a not in have]
        problems += [f"evidence {a!r} present" for a in case.no_evidence if a in have]
    return problems
