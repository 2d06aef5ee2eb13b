"""Findings agree with each other and with the status, advice is current, and the printed
comment is well formed (RULES.md v2 §1 principles 5-6, §5, §6, §6.1).

Checked over every rule case and over random panels/contexts (the strategies of
tests/rules/test_messages.py), with the comment limit varied in the random runs.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from b12labs._comment import DISCLAIMER, STATUS_SENTENCES
from b12labs.rules import CATALOGUE
from tests.rules.test_messages import INPUTS, RANDOM, _cleaned, _report, case_results, run_random

RULES = {r.code: r for r in CATALOGUE}

# --------------------------------------------------------------------------------------------
# findings vs status (§5, §6)
# --------------------------------------------------------------------------------------------

#: code -> statuses it may stand beside, with the line of RULES.md it comes from
ALLOWED_STATUS: dict[str, tuple[set[str], str]] = {
    # §5 NEURO_URGENT: "It does not fire when the status is `unlikely`"; §1.5
    "NEURO_URGENT": ({"deficient", "probable", "indeterminate", "uninterpretable", "not_assessed"},
                     "§5 NEURO_URGENT: does not fire when the status is unlikely"),
    # §5 "B12_DEFICIENCY_UNLIKELY [info] above the indeterminate band and the overall status is `unlikely`"
    "B12_DEFICIENCY_UNLIKELY": ({"unlikely"}, "§5 B12_DEFICIENCY_UNLIKELY: ... and the overall status is unlikely"),
    # §5 "HOLOTC_DEFICIENCY_UNLIKELY [info; only when the overall status is `unlikely`]"
    "HOLOTC_DEFICIENCY_UNLIKELY": ({"unlikely"}, "§5 HOLOTC_DEFICIENCY_UNLIKELY: only when the overall status is unlikely"),
    # §5 FOLIC_ACID_CAUTION: "It does not fire when B12 deficiency is unlikely (status `unlikely`)"
    "FOLIC_ACID_CAUTION": ({"deficient", "probable", "indeterminate", "not_assessed", "uninterpretable"},
                           "§5 FOLIC_ACID_CAUTION: does not fire when the status is unlikely"),
    # §6 step 2: B12/holoTC deficient band -> deficient (step 2 comes before everything but step 1)
    "B12_DEFICIENT": ({"deficient"}, "§6 step 2: B12 in the deficient band -> deficient"),
    "HOLOTC_DEFICIENT": ({"deficient"}, "§6 step 2: holoTC in the deficient band -> deficient"),
    # §6 step 3 uninterpretable = RECENT_B12_TREATMENT, after steps 1 and 2 only
    "RECENT_B12_TREATMENT": ({"not_assessed", "deficient", "uninterpretable"},
                             "§6 steps 1-3: RECENT_B12_TREATMENT makes the status uninterpretable unless not_assessed/deficient"),
    # §6 step 5 modifiers: an otherwise-unlikely result with these is indeterminate
    "NEURO_SYMPTOMS_NORMAL_B12": ({"indeterminate", "probable", "deficient", "uninterpretable"},
                                  "§6 step 5: NEURO_SYMPTOMS_NORMAL_B12 -> indeterminate if otherwise unlikely"),
    "POSSIBLE_ASSAY_INTERFERENCE": ({"indeterminate", "probable", "deficient", "uninterpretable", "not_assessed"},
                                    "§6 step 5: POSSIBLE_ASSAY_INTERFERENCE -> not unlikely"),
    "AGE_OUT_OF_SCOPE": ({"indeterminate", "probable", "deficient", "uninterpretable", "not_assessed"},
                         "§6 step 5: AGE_OUT_OF_SCOPE -> not unlikely"),
    "NITROUS_OXIDE": ({"indeterminate", "probable", "deficient", "uninterpretable", "not_assessed"},
                      "§6 step 5: nitrous oxide -> not unlikely"),
    "METABOLIC_EVIDENCE_NORMAL_B12": ({"indeterminate", "probable", "deficient", "uninterpretable"},
                                      "§6 steps 4/5: MMA elevated -> probable; homocysteine alone -> indeterminate"),
    # §5 FOLATE_PATTERN [info; not when the status is `deficient` or `probable`]
    "FOLATE_PATTERN": ({"indeterminate", "unlikely", "uninterpretable", "not_assessed"},
                       "§5 FOLATE_PATTERN: not when the status is deficient or probable"),
    # §5 MYOCLONUS_TREATMENT_NOTE: myoclonus and status deficient/probable (§8: or treatment
    # started within 4 weeks, handled below)
    "MYOCLONUS_TREATMENT_NOTE": ({"deficient", "probable"}, "§5 MYOCLONUS_TREATMENT_NOTE: status deficient/probable"),
    # §5 B12_HOLOTC_DISCORDANT replaces B12_DEFICIENT/HOLOTC_DEFICIENT: never deficient (§6 step 2 "unless")
    "B12_HOLOTC_DISCORDANT": ({"indeterminate", "probable", "unlikely", "uninterpretable"},
                              "§6 step 2: deficient unless B12_HOLOTC_DISCORDANT"),
}

#: codes about B12 deficiency itself: when critical they are the "urgent: possible B12
#: deficiency" §1.5 forbids beside "deficiency unlikely" (ANAEMIA and RA_CERVICAL_RED_FLAG are
#: critical for reasons that a normal B12 does not undo)
B12_CRITICAL = {"NEURO_URGENT", "FOLIC_ACID_CAUTION", "IF_ANTIBODY_POSITIVE", "NITROUS_OXIDE", "PAEDIATRIC_MMA"}


def _ctx_has_treatment_start(ctx: dict[str, Any]) -> bool:
    return bool(ctx.get("b12_treatment_started"))


def check_findings_match_status(result: Any, panel: dict[str, Any], ctx: dict[str, Any]) -> list[str]:
    out = []
    status = result.status.value
    codes = set(result.codes)
    sev = {f.code: f.severity.value for f in result.findings}
    for f in result.findings:
        rule = ALLOWED_STATUS.get(f.code)
        if rule and status not in rule[0]:
            if f.code == "MYOCLONUS_TREATMENT_NOTE" and _ctx_has_treatment_start(ctx):
                continue
            out.append(f"{f.code} beside status {status!r} ({rule[1]}): {f.message!r}")
        if status == "unlikely" and f.severity.value == "critical" and f.code in B12_CRITICAL:
            out.append(f"critical {f.code} beside status unlikely (§1.5): {f.message!r}")
        if status == "unlikely" and re.search(r"\burgent", f.message + " " + f.title, re.I):
            out.append(f"{f.code} says urgent beside status unlikely (§1.5): {f.message!r}")
    # §6 step 2: status deficient iff B12 or holoTC in the deficient band (and not discordant)
    if status == "deficient" and not codes & {"B12_DEFICIENT", "HOLOTC_DEFICIENT"}:
        out.append(f"status deficient without B12_DEFICIENT/HOLOTC_DEFICIENT (§6 step 2): {sorted(codes)}")
    # §6 step 3
    if status == "uninterpretable" and "RECENT_B12_TREATMENT" not in codes:
        out.append("status uninterpretable without RECENT_B12_TREATMENT (§6 step 3)")
    # §6 step 4: MMA elevated without renal caveat -> probable (deficient/uninterpretable first)
    if "MMA_ELEVATED" in codes and "MMA_RENAL_CAVEAT" not in codes and status not in {"probable", "deficient", "uninterpretable"}:
        out.append(f"MMA_ELEVATED without renal caveat but status {status!r} (§6 step 4)")
    # §6 step 4: a positive IF antibody (not the info false-positive branch) -> probable
    if sev.get("IF_ANTIBODY_POSITIVE") in ("warning", "critical") and status not in {"probable", "deficient", "uninterpretable"}:
        out.append(f"IF_ANTIBODY_POSITIVE beside status {status!r} (§6 step 4)")
    # §5 FOLIC_ACID_CAUTION: critical iff status deficient/probable (the first branch)
    if "FOLIC_ACID_CAUTION" in sev:
        crit = sev["FOLIC_ACID_CAUTION"] == "critical"
        if crit != (status in {"deficient", "probable"}):
            out.append(f"FOLIC_ACID_CAUTION {sev['FOLIC_ACID_CAUTION']} with status {status!r} (§5: critical iff deficient/probable)")
    # §5 B12_HOLOTC_DISCORDANT replaces the deficient and unlikely-band findings of the pair
    if "B12_HOLOTC_DISCORDANT" in codes:
        # "and the unlikely-band findings for that pair": the findings whose premise is a B12
        # or holoTC in the unlikely band ("a normal B12 does not exclude…") would call one of
        # two disagreeing markers reassuring while the other is deficient (§1.5)
        both = codes & {"B12_DEFICIENT", "HOLOTC_DEFICIENT", "B12_DEFICIENCY_UNLIKELY", "HOLOTC_DEFICIENCY_UNLIKELY",
                        "METABOLIC_EVIDENCE_NORMAL_B12", "NEURO_SYMPTOMS_NORMAL_B12"}
        if both:
            out.append(f"B12_HOLOTC_DISCORDANT beside {sorted(both)} (§5: it replaces them)")
    # findings about B12 status must not contradict each other (§1.5)
    if codes & {"B12_DEFICIENCY_UNLIKELY", "HOLOTC_DEFICIENCY_UNLIKELY"} and codes & {"NEURO_URGENT", "B12_DEFICIENT", "HOLOTC_DEFICIENT"}:
        out.append(f"'deficiency unlikely' beside deficiency findings: {sorted(codes)}")
    # §5 IF_ANTIBODY_NEGATIVE replaces, never accompanies, a suggestion to test the IF antibody
    if "IF_ANTIBODY_NEGATIVE" in codes and any(_analyte_of(a) == "if_antibody" for f in result.findings for a in f.actions if a.kind == "order_test"):
        out.append("IF_ANTIBODY_NEGATIVE beside an IF antibody order (§5)")
    return out


# --------------------------------------------------------------------------------------------
# advice is current (principle 6)
# --------------------------------------------------------------------------------------------

#: §2 LOINC codes -> analyte key
LOINC = {
    "2132-9": "b12", "14685-2": "b12", "72160-5": "holotc", "13964-2": "mma", "13965-9": "homocysteine",
    "2276-4": "ferritin", "2502-3": "tsat", "14801-5": "tsat", "2498-4": "iron", "14798-3": "iron",
    "2500-7": "tibc", "14800-7": "tibc", "2284-8": "folate", "14732-2": "folate", "2283-0": "rbc_folate",
    "2282-2": "rbc_folate", "31444-3": "if_antibody", "31443-5": "if_antibody", "1988-5": "crp",
    "2160-0": "creatinine", "14682-9": "creatinine", "787-2": "mcv", "30428-7": "mcv", "718-7": "hb",
}
_NAMES = [  # (pattern on the test name, analyte), most specific first
    (r"methylmalonic|\bMMA\b", "mma"), (r"homocysteine", "homocysteine"),
    (r"holo\s*TC|holotranscobalamin|active B12", "holotc"), (r"intrinsic[- ]factor|\bIF antibod", "if_antibody"),
    (r"red[- ]cell folate|RBC folate", "rbc_folate"), (r"folate", "folate"), (r"\bTIBC\b|iron[- ]binding", "tibc"),
    (r"\bTSAT\b|transferrin saturation", "tsat"), (r"ferritin", "ferritin"), (r"\biron\b", "iron"),
    (r"\bB12\b|cobalamin", "b12"), (r"coeliac|celiac|tTG", "coeliac"),
]


def _analyte_of(action: Any) -> str | None:
    if action.loinc and action.loinc in LOINC:
        return LOINC[action.loinc]
    for rx, key in _NAMES:
        if re.search(rx, action.test, re.I):
            return key
    return None


def _measured(result: Any, panel: dict[str, Any]) -> set[str]:
    """Analytes with a result in the panel that was used (an implausible value is not used)."""
    keys = set(result.values)
    if panel.get("if_antibody") not in (None, ""):
        keys.add("if_antibody")
    if "iron" in keys and "tibc" in keys:
        keys.add("tsat")  # derived (§2)
    return keys


def _conditions(ctx: dict[str, Any]) -> set[str]:
    raw = ctx.get("conditions") or ()
    if isinstance(raw, str):
        raw = [raw]
    return {str(c).lower().replace("celiac", "coeliac").replace("anemia", "anaemia") for c in raw}


def check_advice_is_current(result: Any, panel: dict[str, Any], ctx: dict[str, Any]) -> list[str]:
    out = []
    measured = _measured(result, panel)
    codes = set(result.codes)
    conditions = _conditions(ctx)
    status = result.status.value
    pregnancy_only = (bool(ctx.get("pregnant")) and "B12_DEFICIENT" in codes and "HOLOTC_DEFICIENT" not in codes)
    for f in result.findings:
        for a in f.actions:
            if a.kind != "order_test":
                continue
            key = _analyte_of(a)
            label = f"{f.code} orders {a.test!r}"
            if key in measured:
                out.append(f"{label} although {key} is in the panel (principle 6)")
            if key in ("iron", "tibc") and "tsat" in measured:
                out.append(f"{label} although TSAT is in the panel (§5 IRON_DEFICIENCY_POSSIBLE: TSAT not measured)")
            if key == "b12" and "holotc" in measured:
                out.append(f"{label} although holoTC is measured (§5 MACROCYTOSIS: B12 when neither B12 nor holoTC)")
            if key == "coeliac":
                if "coeliac_disease" in conditions:
                    out.append(f"{label} with coeliac disease recorded (principle 6)")
                known = codes & {"MALABSORPTION_RISK", "DIETARY_RISK", "B12_RISK_MEDICATION"}
                # a positive IF antibody within 14 days of an injection counts for nothing but
                # its own note (§5 IF_ANTIBODY_POSITIVE: it triggers no other rule)
                if any(x.code == "IF_ANTIBODY_POSITIVE" and x.branch != "after_injection"
                       for x in result.findings):
                    known |= {"IF_ANTIBODY_POSITIVE"}
                if known:
                    out.append(f"{label} with a cause recorded ({sorted(known)}; §5 B12_DEFICIENT)")
            if key == "if_antibody":
                if conditions & {"pernicious_anaemia", "autoimmune_gastritis"}:
                    out.append(f"{label} with {sorted(conditions & {'pernicious_anaemia', 'autoimmune_gastritis'})} recorded (§5)")
                if f.code in ("B12_DEFICIENT", "HOLOTC_DEFICIENT") and "MALABSORPTION_RISK" in codes:
                    out.append(f"{label} with a malabsorption condition recorded (§5 B12_DEFICIENT)")
            # established deficiency needs no further confirmation (principle 6; §5 PREGNANCY_CAVEAT:
            # a deficient total B12 alone in pregnancy is not established)
            if status == "deficient" and key in ("mma", "homocysteine") and not pregnancy_only:
                out.append(f"{label} although deficiency is established (status deficient; principle 6)")
    return out


# --------------------------------------------------------------------------------------------
# the comment (§6.1)
# --------------------------------------------------------------------------------------------

_LOINC_RX = re.compile(r"\b\d{4,5}-\d\b")


def _clause(f: Any) -> str:
    rule = RULES.get(f.code)
    if rule is None:
        return ""
    return rule.clause(f.branch).strip().rstrip(".")


def check_comment(result: Any, panel: dict[str, Any], ctx: dict[str, Any], limit: int = 400) -> list[str]:
    out = []
    c = result.comment
    status = result.status.value
    if not c.strip():
        return ["comment is empty"]
    openings = [s for (st_, _), s in STATUS_SENTENCES.items() if st_ == status]
    if not any(c.startswith(s) for s in openings):
        out.append(f"comment does not open with a {status!r} status sentence: {c!r}")
    if not c.endswith(DISCLAIMER):
        out.append(f"comment does not end with the disclaimer (cut mid-word?): {c!r}")
    if _LOINC_RX.search(c):
        out.append(f"LOINC code in the comment: {_LOINC_RX.search(c).group(0)!r} in {c!r}")
    if len(re.findall(r"\burgent", c, re.I)) > 1:
        out.append(f"'urgent' said more than once: {c!r}")
    pieces = [p.strip().casefold().rstrip(".") for p in re.split(r"(?<=[.;])\s+", c) if p.strip()]
    dup = {p for p in pieces if pieces.count(p) > 1 and len(p) > 8}
    if dup:
        out.append(f"sentence/clause repeated {sorted(dup)}: {c!r}")
    low = c.casefold()
    crit = [f for f in result.findings if f.severity.value == "critical"]
    warn = [f for f in result.findings if f.severity.value == "warning"]
    for f in crit:
        cl = _clause(f)
        if cl and cl.casefold() not in low:
            out.append(f"critical {f.code}'s clause {cl!r} missing from the comment: {c!r}")
    crit_clauses = {_clause(f).casefold() for f in crit}
    missing_warn = [f.code for f in warn if _clause(f) and _clause(f).casefold() not in low]
    # "(+N more findings)" is said when warning clauses are left out (§6.1) — unless even the
    # shortest note no longer fits the limit: §6.1 protects only the status sentence, the
    # critical clauses and the disclaimer from the limit, not the note
    note_fits = len(c) + len(f" (+{len(missing_warn)} more)") <= limit
    if missing_warn and "more" not in low and note_fits:
        out.append(f"warning clauses of {missing_warn} left out without '(+N more findings)': {c!r}")
    if len(c) > limit:
        if "Suggest:" in c:
            out.append(f"comment {len(c)} > limit {limit} but still has suggestions: {c!r}")
        kept = [f.code for f in warn if _clause(f) and _clause(f).casefold() in low and _clause(f).casefold() not in crit_clauses]
        if kept:
            out.append(f"comment {len(c)} > limit {limit} but keeps warning clauses of {kept}: {c!r}")
    # the comment never contradicts the status (§6.1)
    if status == "unlikely" and re.search(r"\burgent|consistent with B12 deficiency|deficiency is probable", c, re.I):
        out.append(f"comment contradicts status unlikely: {c!r}")
    if status in ("deficient", "probable", "indeterminate") and re.search(r"deficiency is unlikely", c, re.I):
        out.append(f"comment says unlikely with status {status!r}: {c!r}")
    return out


PROPERTIES: dict[str, Callable[..., list[str]]] = {
    "findings_match_status": check_findings_match_status,
    "advice_is_current": check_advice_is_current,
    "comment_well_formed": check_comment,
}


@pytest.mark.parametrize("prop", sorted(PROPERTIES))
def test_property_over_rule_cases(prop: str) -> None:
    problems = []
    for case_id, panel, ctx, result in case_results():
        problems += [f"[{case_id}] panel={panel} context={ctx}: {p}" for p in PROPERTIES[prop](result, panel, ctx)]
    assert not problems, _report(problems)


@pytest.mark.parametrize("prop", sorted(PROPERTIES))
@RANDOM
@given(inputs=INPUTS, limit=st.sampled_from([None, None, 60, 150, 250, 400, 1000]))
def test_property_over_random_panels(prop: str, inputs: tuple[dict[str, Any], dict[str, Any]], limit: int | None) -> None:
    panel, ctx = inputs
    kwargs = {"comment_limit": limit} if limit else {}
    result = run_random(panel, ctx, **kwargs)
    extra = {"limit": limit or 400} if prop == "comment_well_formed" else {}
    problems = PROPERTIES[prop](result, panel, _cleaned(ctx), **extra)
    assert not problems, f"panel={panel} context={_cleaned(ctx)} limit={limit}: " + _report(problems)
