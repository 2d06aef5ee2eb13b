"""Turning dict panels (as interpret() takes them) into wide rows (as score_frame takes them)."""

from __future__ import annotations

from typing import Any

import pandas as pd

from b12labs.rules import ActionSpec


def to_row(panel: dict[str, Any], context: dict[str, Any] | None) -> dict[str, str]:
    row: dict[str, str] = {}
    for key, value in panel.items():
        if isinstance(value, dict):
            v = value.get("value")
            cmp = value.get("comparator") or ""
            row[key] = f"{cmp}{v}"
            if value.get("unit"):
                row[f"{key}_unit"] = value["unit"]
            for ref in ("ref_low", "ref_high"):
                if value.get(ref) is not None:
                    row[f"{key}_{ref}"] = str(value[ref])
        elif isinstance(value, bool):
            row[key] = "positive" if value else "negative"
        else:
            row[key] = str(value)
    for key, value in (context or {}).items():
        if isinstance(value, (list, tuple)):
            row[key] = ";".join(value)
        elif isinstance(value, bool):
            row[key] = "Y" if value else "N"
        elif value is None:
            row[key] = ""
        else:
            row[key] = str(value)
    return row


def to_frame(items: list[tuple[dict[str, Any], dict[str, Any] | None]]) -> pd.DataFrame:
    rows = [to_row(p, c) for p, c in items]
    columns: list[str] = []
    for r in rows:
        for k in r:
            if k not in columns:
                columns.append(k)
    return pd.DataFrame([{c: r.get(c, "") for c in columns} for r in rows], columns=columns, dtype="string")


def batch_outcome(row: pd.Series) -> tuple[str, frozenset[str], frozenset[str], str]:
    codes = frozenset(c for c in str(row["b12labs_codes"]).split(";") if c)
    actions = frozenset(a for a in str(row["b12labs_actions"]).split(";") if a)
    return str(row["b12labs_status"]), codes, actions, str(row["b12labs_max_severity"])


def scalar_outcome(result: Any) -> tuple[str, frozenset[str], frozenset[str], str]:
    actions = frozenset(ActionSpec(a.kind, a.test, a.loinc).label() for f in result.findings for a in f.actions)
    sev = result.findings[0].severity.value if result.findings else ""
    return result.status.value, frozenset(result.codes), actions, sev
