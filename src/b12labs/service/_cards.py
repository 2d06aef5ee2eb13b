"""Cards (CDS Hooks 2.0) from an :class:`~b12labs.Interpretation`.

``b12-lab-interpretation`` answers with

* one **status card**: summary ``"B12 status indeterminate: B12 250 pg/mL; consider MMA"``
  (< 140 characters), indicator ``warning`` when the status is deficient/probable, else
  ``info``; markdown detail with every value used, the findings (with the message of each
  ``info`` finding, e.g. a change since an earlier result), the comment and provenance;
  suggestions for the missing tests that no finding card already offers;
* one card per **warning/critical finding** (indicator = severity): the rule's title as
  summary, markdown detail with the message, the values and thresholds (with their sources),
  next steps and citations; ``source.url`` and a link point to ``{base_url}/rules/{CODE}``;
  suggestions create the proposed ``ServiceRequest`` (from :func:`b12labs.fhir.to_fhir`) for each
  missing test.

Suggestions use ``selectionBehavior: "any"``; every card and suggestion has a fresh UUID (for
the feedback endpoint). Text that can carry client data (reported values) is markdown-escaped.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from ..models import Action as LibAction
from ..models import Evidence, Finding, Interpretation, Severity, Status
from ..rules import CATALOGUE
from ..units import ANALYTES
from ._cdshooks import SUMMARY_MAX_CHARS, Action, Card, Link, Source, Suggestion

__all__ = [
    "NO_ASSESSMENT",
    "Unusable",
    "error_card",
    "interpretation_cards",
    "order_check_card",
    "service_requests_by_loinc",
    "summary_text",
]

LOINC_SYSTEM: Final = "http://loinc.org"

_STATUS_PHRASE: Final = {
    Status.deficient: "B12 deficiency likely",
    Status.probable: "B12 deficiency probable",
    Status.indeterminate: "B12 status indeterminate",
    Status.unlikely: "B12 deficiency unlikely",
    Status.uninterpretable: "B12 results cannot be interpreted",
    Status.not_assessed: "B12 status not assessed",
}
_KEY_ANALYTES: Final = ("b12", "holotc", "mma")
#: Status with no finding: nothing to say (``{"cards": []}``).
NO_ASSESSMENT: Final = Status.not_assessed
_MD_ESCAPES: Final = str.maketrans({c: "\\" + c for c in "\\`*_[]<>|~#!{}"})
_AREAS: Final = {r.code: r.area for r in CATALOGUE}
_STATUS_AREAS: Final = frozenset({"cobalamin", "metabolites"})
_CONTEXT_NAMES: Final = {"medications": "active medications", "conditions": "active conditions"}


def md(text: object) -> str:
    """Escape text for GitHub-flavoured markdown (no HTML, no links, no table breaks)."""
    return " ".join(str(text).split()).translate(_MD_ESCAPES)


def summary_text(text: str) -> str:
    """One line, shorter than 140 characters (cut at a word, with an ellipsis)."""
    text = " ".join(text.split())
    if len(text) <= SUMMARY_MAX_CHARS:
        return text
    cut = text[: SUMMARY_MAX_CHARS - 1]
    if " " in cut[40:]:
        cut = cut[: cut.rfind(" ")]
    return cut.rstrip(" ,;:") + "…"


def service_requests_by_loinc(bundle: Mapping[str, Any] | None) -> dict[str, dict[str, Any]]:
    """LOINC -> proposed ServiceRequest from a :func:`b12labs.fhir.to_fhir` Bundle."""
    out: dict[str, dict[str, Any]] = {}
    for entry in (bundle or {}).get("entry") or ():
        res = entry.get("resource") if isinstance(entry, dict) else None
        if not isinstance(res, dict) or res.get("resourceType") != "ServiceRequest":
            continue
        for coding in (res.get("code") or {}).get("coding") or ():
            if coding.get("system") == LOINC_SYSTEM and coding.get("code"):
                out.setdefault(coding["code"], res)
    return out


def _reported(interp: Interpretation) -> dict[str, str]:
    """Analyte -> result text as reported (from the findings' evidence)."""
    out: dict[str, str] = {}
    for f in interp.findings:
        for e in f.evidence:
            if e.reported and e.analyte not in out:
                out[e.analyte] = e.reported
    return out


def _short(key: str) -> str:
    spec = ANALYTES.get(key)
    return spec.short if spec else key


def _value_text(key: str, interp: Interpretation, reported: Mapping[str, str]) -> str | None:
    if key in reported:
        return reported[key]
    if key in interp.values:
        spec = ANALYTES.get(key)
        return f"{interp.values[key]:.4g} {spec.canonical_unit if spec else ''}".strip()
    return None


def _rule_url(base_url: str, code: str | None) -> str:
    return f"{base_url}/rules/{code}" if code else f"{base_url}/rules"


def _source(interp: Interpretation, base_url: str, code: str | None) -> Source:
    label = f"b12labs rule {code}" if code else "b12labs"
    return Source(label=f"{label} ({interp.profile_id})", url=_rule_url(base_url, code))


def _suggestion(action: LibAction, requests: Mapping[str, dict[str, Any]]) -> Suggestion | None:
    if action.kind != "order_test" or not action.loinc or action.loinc not in requests:
        return None
    return Suggestion(
        label=f"Order {action.test} (LOINC {action.loinc})",
        uuid=str(uuid.uuid4()),
        isRecommended=True,
        actions=[
            Action(
                type="create",
                description=f"Create a proposed order for {action.test} (LOINC {action.loinc})",
                resource=requests[action.loinc],
            )
        ],
    )


def _with_suggestions(
    actions: Iterable[LibAction], requests: Mapping[str, dict[str, Any]]
) -> dict[str, Any]:
    suggestions = [s for a in actions if (s := _suggestion(a, requests)) is not None]
    if not suggestions:
        return {}
    return {"suggestions": suggestions, "selectionBehavior": "any"}


def _evidence_rows(evidence: Sequence[Evidence]) -> list[str]:
    if not evidence:
        return []
    rows = [
        "| Result | Reported | Value used | Threshold | Threshold source |",
        "|---|---|---|---|---|",
    ]
    for e in evidence:
        used = f"{e.comparator or ''}{e.value:.4g} {e.unit or ''}" if e.value is not None else "–"
        limit = f"{e.threshold:.4g} {e.threshold_unit or ''}" if e.threshold is not None else "–"
        if e.lab_interval:
            limit += " (lab reference interval)"
        cells = [
            _short(e.analyte),
            e.reported or "–",
            used.strip(),
            limit.strip(),
            e.threshold_source or "–",
        ]
        rows.append("| " + " | ".join(md(c) for c in cells) + " |")
        if e.note:
            rows.append(f"| | {md(e.note)} | | | |")
    return rows


def _action_lines(actions: Sequence[LibAction]) -> list[str]:
    lines = []
    for a in actions:
        what = {"order_test": "Order", "review": "Review", "avoid": "Avoid"}[a.kind]
        lines.append(f"- {what}: {md(a.test)}" + (f" (LOINC {a.loinc})" if a.loinc else ""))
    return lines


def _finding_card(
    f: Finding, interp: Interpretation, base_url: str, requests: Mapping[str, dict[str, Any]]
) -> Card:
    detail = [md(f.message), ""]
    detail += _evidence_rows(f.evidence)
    if f.actions:
        detail += ["", "**Next steps**", *_action_lines(f.actions)]
    if f.sources:
        detail += ["", "**Sources**", *(f"- {md(s)}" for s in f.sources)]
    detail += ["", f"_Rule {f.code}; decision support only, not a diagnosis._"]
    return Card(
        uuid=str(uuid.uuid4()),
        summary=summary_text(f.title),
        detail="\n".join(detail),
        indicator=f.severity.value,
        source=_source(interp, base_url, f.code),
        links=[
            Link(
                label=f"Rule {f.code}: rationale and sources",
                url=_rule_url(base_url, f.code),
                type="absolute",
            )
        ],
        **_with_suggestions(f.actions, requests),
    )


def _status_summary(interp: Interpretation, reported: Mapping[str, str]) -> str:
    parts = [
        f"{_short(k)} {text}"
        for k in _KEY_ANALYTES
        if (text := _value_text(k, interp, reported)) is not None
    ]
    text = _STATUS_PHRASE[interp.status]
    if parts:
        text += ": " + ", ".join(parts)
    orders = [a.test for a in interp.actions() if a.kind == "order_test"]
    if orders:
        text += "; consider " + ", ".join(orders)
    return summary_text(text)


def interpretation_cards(
    interp: Interpretation,
    *,
    base_url: str,
    service_requests: Mapping[str, dict[str, Any]],
    missing_context: Sequence[str] = (),
    foreign: int = 0,
    unusable: Sequence[Unusable] = (),
) -> list[Card]:
    """The ``b12-lab-interpretation`` cards (see the module docstring); with ``unusable``
    results, a warning card naming them comes right after the status card (alone when there
    is nothing else to say)."""
    extra = [unusable_card(unusable, base_url)] if unusable else []
    if interp.status is NO_ASSESSMENT and not interp.findings:
        return extra
    reported = _reported(interp)
    loud = [f for f in interp.findings if f.severity in (Severity.warning, Severity.critical)]
    offered = {a for f in loud for a in f.actions}

    detail = [f"**{md(_STATUS_PHRASE[interp.status])}** (status `{interp.status.value}`)", ""]
    if interp.values:
        detail += ["| Result | Value used | As reported |", "|---|---|---|"]
        for key, value in interp.values.items():
            spec = ANALYTES.get(key)
            name = spec.name if spec else key
            unit = spec.canonical_unit if spec else ""
            if spec is not None and spec.qualitative:
                used = "positive" if value else "negative"
            else:
                used = f"{value:.4g} {unit}".strip()
            detail.append(f"| {md(name)} | {md(used)} | {md(reported.get(key, ''))} |")
        detail.append("")
    if interp.findings:
        detail.append("**Findings**")
        for f in interp.findings:
            line = (
                f"- {f.severity.value}: {md(f.title)} ([{f.code}]({_rule_url(base_url, f.code)}))"
            )
            if f not in loud:
                # no card of its own: its message (e.g. what changed since which date) goes here
                line += f": {md(f.message)}"
            detail.append(line)
        detail.append("")
    if interp.comment:
        detail += [md(interp.comment), ""]
    notes = []
    if missing_context:
        names = ", ".join(_CONTEXT_NAMES.get(k, k) for k in missing_context)
        notes.append(f"Not considered (not available from the EHR): {names}.")
    if foreign:
        notes.append(f"{foreign} resource(s) naming another patient were ignored.")
    if unusable:
        notes.append(f"{len(unusable)} B12 work-up result(s) could not be used (see below).")
    if len(interp.ignored) > len(unusable):
        notes.append(
            f"{len(interp.ignored) - len(unusable)} other input(s) ignored "
            "(e.g. entered in error, superseded)."
        )
    if interp.unrecognised_medications:
        notes.append(f"{len(interp.unrecognised_medications)} medication(s) not recognised.")
    detail += [f"_{md(n)}_" for n in notes]
    detail.append(
        f"_Profile {md(interp.profile_id)} {md(interp.profile_version)}; b12labs "
        f"{md(interp.library_version)}. Decision support only, not a diagnosis._"
    )
    status_rules = [f.code for f in interp.findings if _AREAS.get(f.code) in _STATUS_AREAS]
    codes = status_rules or [f.code for f in interp.findings]
    top = codes[0] if codes else None
    status_card = Card(
        uuid=str(uuid.uuid4()),
        summary=_status_summary(interp, reported),
        detail="\n".join(detail),
        indicator="warning" if interp.status in (Status.deficient, Status.probable) else "info",
        source=_source(interp, base_url, top),
        links=[
            Link(label="b12labs rule catalogue", url=_rule_url(base_url, None), type="absolute")
        ],
        **_with_suggestions((a for a in interp.actions() if a not in offered), service_requests),
    )
    return [
        status_card,
        *extra,
        *(_finding_card(f, interp, base_url, service_requests) for f in loud),
    ]


def order_check_card(
    interp: Interpretation,
    drafts: Sequence[dict[str, Any]],
    *,
    base_url: str,
    mma_request: dict[str, Any] | None,
) -> Card:
    """Warning for repeat B12/active-B12 orders while a borderline result is on file."""
    reported = _reported(interp)
    on_file = ", ".join(
        f"{_short(k)} {t}" for k in ("b12", "holotc") if (t := _value_text(k, interp, reported))
    )
    band = [
        e
        for f in interp.findings
        if f.code in ("B12_INDETERMINATE", "HOLOTC_INDETERMINATE")
        for e in f.evidence
        if e.analyte in ("b12", "holotc") and e.threshold is not None
    ]
    detail = [
        f"A borderline result is already on file ({md(on_file or 'indeterminate band')}). "
        "NICE NG239 recommends a second-line test such as **methylmalonic acid (MMA)**, not a "
        "repeat of the same test, to clarify an indeterminate B12.",
        "",
        *_evidence_rows(band),
        "",
        "**Selected order(s)**",
        *(f"- {md(_order_name(d))}" for d in drafts),
        "",
        "_Decision support only; the repeat may still be right (e.g. after treatment)._",
    ]
    suggestions: list[Suggestion] = []
    if mma_request is not None:
        create = Action(
            type="create",
            description="Create a proposed order for MMA (LOINC 13964-2)",
            resource=mma_request,
        )
        deletes = [
            Action(
                type="delete",
                description=f"Remove the draft order {_order_name(d)}",
                resourceId=f"ServiceRequest/{d['id']}",
            )
            for d in drafts
            if isinstance(d.get("id"), str)
        ]
        if deletes:
            suggestions.append(
                Suggestion(
                    label="Replace with MMA (LOINC 13964-2)",
                    uuid=str(uuid.uuid4()),
                    isRecommended=True,
                    actions=[*deletes, create],
                )
            )
        suggestions.append(
            Suggestion(
                label="Add MMA (LOINC 13964-2), keep the repeat",
                uuid=str(uuid.uuid4()),
                actions=[create],
            )
        )
    code = "B12_INDETERMINATE" if "B12_INDETERMINATE" in interp.codes else "HOLOTC_INDETERMINATE"
    return Card(
        uuid=str(uuid.uuid4()),
        summary=summary_text(
            f"Borderline B12 already on file ({on_file}): MMA is the next test, not a repeat"
        ),
        detail="\n".join(detail),
        indicator="warning",
        source=_source(interp, base_url, code),
        links=[
            Link(
                label=f"Rule {code}: rationale and sources",
                url=_rule_url(base_url, code),
                type="absolute",
            )
        ],
        **({"suggestions": suggestions, "selectionBehavior": "at-most-one"} if suggestions else {}),
    )


def _order_name(resource: Mapping[str, Any]) -> str:
    code = resource.get("code") or {}
    if isinstance(code, dict):
        if isinstance(code.get("text"), str):
            return str(code["text"])
        for c in code.get("coding") or ():
            if isinstance(c, dict) and (c.get("display") or c.get("code")):
                return str(c.get("display") or c.get("code"))
    return "ServiceRequest"


@dataclass(frozen=True)
class Unusable:
    """A B12 work-up result that was not used: its label (``Observation/id``), analyte key and
    the value-free reason from the FHIR reader."""

    label: str
    analyte: str
    reason: str
    conflict: bool = False


def unusable_card(items: Sequence[Unusable], base_url: str) -> Card:
    """One ``warning`` card naming each work-up result that could not be used, and why: a
    result that silently vanished could make the status look more reassuring than it is."""
    names = ", ".join(dict.fromkeys(_short(u.analyte) for u in items))
    if any(u.conflict for u in items):
        summary = f"Result conflict ({names}): results not used; check the record"
    else:
        summary = f"{len(items)} B12 work-up result(s) could not be used ({names})"
    detail = [
        "These results are in the record but were **not used** in the interpretation; any "
        "status shown was reached without them.",
        "",
        "| Result | Analyte | Why not used |",
        "|---|---|---|",
        *(f"| {md(u.label)} | {md(_short(u.analyte))} | {md(u.reason)} |" for u in items),
        "",
        "_Check these results (value, unit, date) in the record; decision support only._",
    ]
    return Card(
        uuid=str(uuid.uuid4()),
        summary=summary_text(summary),
        detail="\n".join(detail),
        indicator="warning",
        source=Source(label="b12labs", url=_rule_url(base_url, None)),
    )


def error_card(message: str, base_url: str) -> Card:
    """Shown when the data could not be interpreted (e.g. an unknown unit); the message goes to
    the clinician (it may quote the result) and is never logged."""
    return Card(
        uuid=str(uuid.uuid4()),
        summary="B12 results could not be interpreted automatically",
        detail=md(message) + "\n\n_Check the result and its unit in the record._",
        indicator="info",
        source=Source(label="b12labs", url=_rule_url(base_url, None)),
    )
