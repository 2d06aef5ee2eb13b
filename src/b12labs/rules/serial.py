"""Results over time (docs/clinical-logic.md §8): rules that compare with earlier results.

Their inputs are ``RawInputs.serial`` (built from history by :mod:`b12labs._serial`, or from a
patient's earlier episodes by the long batch format): day numbers (``now``, ``start``,
``prev_<analyte>_day``, ``bad_day``) and earlier canonical values (``prev_<analyte>``,
``base_<analyte>``), NaN or absent when unknown, so every rule holds in both shapes.
:func:`derive_serial` turns them into the facts below; the messages and evidence read the
scalar :class:`~b12labs._serial.SerialDetail` for the dates and values as reported.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import date, datetime, timedelta
from typing import Any

from .._display import sig3, unit_shown
from .._engine import SCALAR, Facts, Measure
from ..models import Evidence, Measurement, Severity, trusted_constructor
from ..units import ANALYTES
from ._fields import words
from ._registry import branch, derives, message_field, review, rule

X = Any
INFO, WARNING = Severity.info, Severity.warning
_NAN = math.nan
SINCE = "2"  # the clinical-content version §8 appeared in

# evidence built from values computed here, without re-validation
_new_evidence = trusted_constructor(Evidence)

#: code -> evidence builder (the view, the canonical values used) for ``evidence_of="serial"``
SERIAL_EVIDENCE: dict[str, Callable[[Any, Any], tuple[Evidence, ...]]] = {}


#: the serial facts of one panel without history (no earlier result, no treatment start):
#: what the general path below computes from all-NaN inputs (a test holds the two equal)
_NO_HISTORY: dict[str, Any] = {
    "days_since_start": _NAN,
    "treatment_started_known": False,
    "retest": {"b12": False, "folate": False, "ferritin": False},
    "retest_any": False,
    "b12_fall": False,
    "b12_rise": False,
    "base_anaemia": False,
    "base_macrocytosis": False,
    "base_mma_elevated": False,
    "hb_responded": False,
    "mcv_responded": False,
    "haem_response": False,
    "no_response_blood": False,
    "no_response_mma": False,
    "review_due": False,
    "myoclonus_after_start": False,
    "earlier_bad": False,
    "earlier_neuro": False,
    "conflict": False,
    "conflict_current": False,
}


@derives("serial")
def derive_serial(f: Facts, raw: Any, xp: Any) -> None:
    """The serial facts of a panel (or a column of panels); every one false without history."""
    s = f.raw.serial
    if xp is SCALAR and not s and raw.serial_detail is None and not raw.treatment_started:
        # one panel without history: nothing to compare (a third of the cost of evaluation)
        f.__dict__.update(_NO_HISTORY)  # read-only in practice: rules only read facts
        f.on_replacement = raw.treatment == 1 or raw.treatment == 2
        f.treated = bool(f.recent_treatment)
        return
    _derive_serial(f, raw, xp)


def _derive_serial(f: Facts, raw: Any, xp: Any) -> None:
    s = f.raw.serial
    p = f.profile
    g = s.get
    now, start = g("now", _NAN), g("start", _NAN)
    f.days_since_start = now - start  # NaN when either is unknown
    started = f.days_since_start >= 0
    f.treatment_started_known = started & xp.not_(f.treatment_none)
    # on replacement now (current context): oral/injection, or a start with treatment not none
    f.on_replacement = (
        (raw.treatment == 1)
        | (raw.treatment == 2)
        | (raw.treatment_started & xp.not_(f.treatment_none))
    )
    f.treated = f.recent_treatment | f.treatment_started_known

    # the minimum retest interval, per analyte; not when treatment started in between
    retest: X = False
    f.retest = {}
    for a in ("b12", "folate", "ferritin"):
        prev_day = g(f"prev_{a}_day", _NAN)
        between = (start >= prev_day - 1) & (start <= now)
        hit = (
            getattr(f, a).present
            & (now - prev_day <= p[f"retest_{a}"])
            & xp.not_(between & xp.not_(f.treatment_none))
        )
        f.retest[a] = hit
        retest = retest | hit
    f.retest_any = retest

    # B12 change beyond the reference change value (compared in canonical units)
    rcv = p["b12_rcv"] / 100.0
    prev_b12 = g("prev_b12", _NAN)
    f.b12_fall = f.b12.lt(prev_b12 * (1.0 - rcv)) & xp.not_(f.treated)
    f.b12_rise = f.b12.gt(prev_b12 * (1.0 + rcv)) & xp.not_(f.treated)

    # response to replacement, judged against the last result before treatment started
    base_hb, base_mcv, base_mma = g("base_hb", _NAN), g("base_mcv", _NAN), g("base_mma", _NAN)
    after = f.treatment_started_known & (f.days_since_start > 0)
    f.base_anaemia = after & (base_hb < f.limit["hb_anaemia"])
    f.base_macrocytosis = after & (base_mcv > f.limit["mcv_macrocytosis"])
    f.base_mma_elevated = after & (base_mma > f.limit["mma_elevated"])
    f.hb_responded = f.hb.ge(base_hb + p["hb_response"])
    f.mcv_responded = f.mcv.le(base_mcv - p["mcv_response"])
    f.haem_response = (f.base_anaemia | f.base_macrocytosis) & (f.hb_responded | f.mcv_responded)
    long_enough = after & (f.days_since_start >= p["no_response_after"])
    f.no_response_blood = (
        long_enough
        & xp.not_(f.haem_response)
        & ((f.base_anaemia & f.anaemia) | (f.base_macrocytosis & f.macrocytosis))
    )
    f.no_response_mma = (
        long_enough & f.base_mma_elevated & f.mma_elevated & xp.not_(f.mma_renal_caveat)
    )
    pregnant_or_feeding = raw.pregnant | raw.breastfeeding
    review_within = xp.where(
        pregnant_or_feeding, p["review_due_within_pregnant"], p["review_due_within"]
    )
    f.review_due = f.treatment_started_known & (f.days_since_start <= review_within)
    f.myoclonus_after_start = (
        f.sym("myoclonus")
        & f.treatment_started_known
        & (f.days_since_start <= p["myoclonus_note_within"])
    )
    bad_day = g("bad_day", _NAN)
    detail = raw.serial_detail
    if detail is not None and detail.resolve_bad is not None:
        # one panel: the earlier result sets are judged only when that can change a finding
        current_b12 = f.b12.present | f.holotc.present
        could = (f.b12_unlikely & xp.not_(f.treated | f.on_replacement)) | (
            current_b12 & f.on_replacement
        )
        if could:
            bad_day = detail.resolve_bad()
        detail.resolve_bad = None
    f.earlier_bad = bad_day == bad_day  # known
    f.earlier_neuro = g("earlier_neuro", 0.0) > 0
    f.conflict = g("conflict", 0.0) > 0
    f.conflict_current = g("conflict_current", 0.0) > 0


# ---------------------------------------------------------------------------------------
# message helpers (scalar shape: the view of one panel)


def _detail(v: Any) -> Any:
    return v.facts.raw.serial_detail


def _iso(t: datetime | date) -> str:
    if isinstance(t, datetime):
        return t.date().isoformat()
    return t.isoformat()


def _shown(analyte: str, m: Measurement, canonical: float) -> str:
    """An earlier value as reported (with its unit)."""
    if m.reported:
        return m.reported.strip()
    return f"{sig3(canonical)} {unit_shown(ANALYTES[analyte].canonical_unit)}"


def _pair(v: Any, analyte: str) -> tuple[str, str]:
    """(earlier, current) of one analyte as printed: as reported when both share a unit, else
    both in the canonical unit, so a change is read in one unit."""
    o = _detail(v).previous.get(analyte) or _detail(v).baseline.get(analyte)
    current = v.m.get(analyte)
    unit = ANALYTES[analyte].canonical_unit
    if o is None or current is None:
        return "", ""
    if (o.measurement.unit or "") == (current.unit or ""):
        return _shown(analyte, o.measurement, o.value), v[analyte]
    cur = getattr(v.facts, analyte).value
    return f"{sig3(o.value)} {unit_shown(unit)}", f"{sig3(cur)} {unit_shown(unit)}"


def _percent(x: float) -> str:
    return f"{abs(x):.0f}" if abs(x) >= 10 else f"{abs(x):.1f}".rstrip("0").rstrip(".")


def _change_pct(v: Any, analyte: str, key: str = "previous") -> float:
    before = float(getattr(_detail(v), key)[analyte].value)
    cur = float(getattr(v.facts, analyte).value)
    return (cur - before) / before * 100.0


def _start_text(v: Any) -> str:
    d = _detail(v)
    return d.start.isoformat() if d.start is not None else "an unrecorded date"


def _label(analyte: str) -> str:
    short = ANALYTES[analyte].short
    first = short.split(" ", 1)[0]
    if len(first) <= 3 or any(c.isupper() or c.isdigit() for c in first[1:]):
        return short
    return short[:1].lower() + short[1:]


def _ev(
    v: Any,
    analyte: str,
    key: str = "previous",
    *,
    threshold: tuple[float, str, str] | None = None,
) -> tuple[Evidence, ...]:
    """Evidence of one serial comparison: the earlier and the current value, both dated,
    with the change (absolute and %) and the threshold it was judged against."""
    d = _detail(v)
    o = getattr(d, key)[analyte]
    unit = ANALYTES[analyte].canonical_unit
    cur = getattr(v.facts, analyte).value
    limit: dict[str, Any] = {}
    if threshold is not None:
        value, t_unit, t_key = threshold
        limit = {
            "threshold": value,
            "threshold_unit": t_unit,
            "threshold_name": t_key,
            "threshold_source": v.facts.profile.thresholds[t_key].citation,
        }
    earlier = _new_evidence(
        analyte=analyte,
        reported=o.measurement.reported,
        value=o.value,
        unit=unit,
        comparator=o.measurement.comparator,
        collected_at=o.at.isoformat(),
        note="earlier result" if key == "previous" else "last result before treatment started",
    )
    now = _new_evidence(
        analyte=analyte,
        reported=v[analyte],
        value=cur,
        unit=unit,
        comparator=v.m[analyte].comparator,
        collected_at=d.now.isoformat() if d.now_given else None,
        change=float(sig3(cur - o.value)),
        change_percent=round((cur - o.value) / o.value * 100.0, 1),
        note="current result",
        **limit,
    )
    return (earlier, now)


def _rcv(v: Any) -> tuple[float, str, str]:
    return (float(v.facts.profile.thresholds["b12_rcv"].value), "%", "b12_rcv")


# ---------------------------------------------------------------------------------------
# the rules


def _when(t: datetime) -> str:
    """A collection time as printed: the date, with the time (UTC) when one was given."""
    if (t.hour, t.minute, t.second) == (0, 0, 0):
        return t.date().isoformat()
    return t.strftime("%Y-%m-%d %H:%M UTC")


def _conflict_message(v: Any) -> str:
    items = []
    current = False
    for c in _detail(v).conflicts:
        n = "Two" if len(c.reported) == 2 else str(len(c.reported))
        items.append(
            f"{n} {_label(c.analyte)} results collected at {_when(c.at)} differ "
            f"({'; '.join(c.reported)})"
        )
        current = current or c.current
    tail = ", the current one included" if current else ""
    return f"{'; '.join(items)}: neither is used{tail}; check which is correct."


@rule(
    "RESULT_CONFLICT",
    area="serial",
    severity=WARNING,
    title="Two different results at the same time",
    message=_conflict_message,
    comment="two different results share a collection time: neither is used",
    sources=("B12LABS-S8",),
    why="Two results of one analyte collected at the same time cannot both be right; choosing "
    "one could reassure wrongly, so neither is used.",
    since=SINCE,
)
def result_conflict(f: Facts, xp: Any) -> X:
    return f.conflict


@message_field("retests")
def retests(v: Any) -> str:
    f, d = v.facts, _detail(v)
    items = []
    for a in ("b12", "folate", "ferritin"):
        if f.retest[a]:
            o = d.previous[a]
            days = int(f.raw.serial["now"] - o.day)
            items.append(
                f"{_label(a)} {days} day{'s' if days != 1 else ''} after the result of "
                f"{_iso(o.at)} (minimum interval {f.profile.thresholds[f'retest_{a}'].value:g} "
                "days)"
            )
    return words(items)


def _retest_evidence(v: Any, used: Any) -> tuple[Evidence, ...]:
    f = v.facts
    out: list[Evidence] = []
    for a in ("b12", "folate", "ferritin"):
        if f.retest[a]:
            t = f.profile.thresholds[f"retest_{a}"]
            earlier, now = _ev(v, a)
            out += [
                earlier,
                now.model_copy(
                    update={
                        "threshold": float(t.value),
                        "threshold_unit": "days",
                        "threshold_name": f"retest_{a}",
                        "threshold_source": t.citation,
                    }
                ),
            ]
    return tuple(out)


@rule(
    "RETEST_TOO_SOON",
    area="serial",
    severity=INFO,
    title="Repeated within the minimum retest interval",
    message="Repeated within the minimum retest interval: {retests}. A repeat so soon is rarely "
    "informative.",
    sources=("LEEDS-RETEST",),
    why="Laboratories set minimum retest intervals because a repeat within them rarely changes "
    "management (Leeds: B12 56, folate 21, ferritin 20 days).",
    uses=("retest_b12", "retest_folate", "retest_ferritin"),
    evidence_of="serial",
    since=SINCE,
)
def retest_too_soon(f: Facts, xp: Any) -> X:
    return f.retest_any


SERIAL_EVIDENCE["RETEST_TOO_SOON"] = _retest_evidence


@message_field("earlier_bad")
def earlier_bad(v: Any) -> str:
    bad = _detail(v).earlier_bad
    return f"an earlier result ({_iso(bad[0])}) was {bad[1]}" if bad else ""


@message_field("measured_on_replacement")
def measured_on_replacement(v: Any) -> str:
    f = v.facts
    return words([_label(a) for a in ("b12", "holotc") if getattr(f, a).present])


@message_field("earlier_bad_when")
def earlier_bad_when(v: Any) -> str:
    bad = _detail(v).earlier_bad
    return f"a {bad[1]} result on {_iso(bad[0])}" if bad else ""


@rule(
    "B12_ON_REPLACEMENT",
    area="serial",
    severity=INFO,
    title="B12 measured on replacement",
    message="{measured_on_replacement} was measured on replacement, after "
    "{earlier_bad_when}: retesting B12 on established replacement is not needed (BNSSG, "
    "Coventry).",
    sources=("BNSSG",),
    why="On replacement, serum B12 and holoTC reflect the treatment, not the tissue status; "
    "BNSSG and Coventry advise monitoring with symptoms and the full blood count.",
    since=SINCE,
)
def b12_on_replacement(f: Facts, xp: Any) -> X:
    return (f.b12.present | f.holotc.present) & f.on_replacement & f.earlier_bad


def _fall_message(v: Any) -> str:
    before, now = _pair(v, "b12")
    o = _detail(v).previous["b12"]
    return (
        f"B12 fell {_percent(_change_pct(v, 'b12'))} % since {_iso(o.at)} ({before} to {now}), "
        f"beyond the {v.facts.profile.thresholds['b12_rcv'].value:g} % change expected from "
        "analytical and biological variation alone: a real fall."
    )


def _escalate_fall(f: Facts, xp: Any) -> X:
    return xp.where(f.b12_deficient_or_indeterminate, 2, 1)


@rule(
    "B12_SIGNIFICANT_FALL",
    area="serial",
    severity=INFO,
    escalate=_escalate_fall,
    severity_note="warning when the current B12 is in the indeterminate or deficient band",
    title="B12 fell beyond the reference change value",
    message=_fall_message,
    comment="B12 has fallen beyond the change expected from variation alone",
    sources=("COKLUK2021",),
    why="A fall larger than the reference change value (analytical and within-person "
    "variation, 95 %) is a real change.",
    uses=("b12_rcv",),
    evidence_of="serial",
    since=SINCE,
)
def b12_significant_fall(f: Facts, xp: Any) -> X:
    return f.b12_fall


SERIAL_EVIDENCE["B12_SIGNIFICANT_FALL"] = lambda v, used: _ev(v, "b12", threshold=_rcv(v))


def _rise_text(v: Any) -> str:
    before, now = _pair(v, "b12")
    o = _detail(v).previous["b12"]
    return (
        f"B12 rose {_percent(_change_pct(v, 'b12'))} % since {_iso(o.at)} ({before} to {now}), "
        f"beyond the {v.facts.profile.thresholds['b12_rcv'].value:g} % change expected from "
        "variation alone, with no B12 treatment recorded"
    )


@rule(
    "B12_SIGNIFICANT_RISE",
    area="serial",
    severity=INFO,
    title="B12 rose beyond the reference change value without recorded treatment",
    message=_rise_text,
    sources=("COKLUK2021", "ANDRES2013"),
    why="A rise beyond the reference change value with no treatment recorded suggests "
    "unrecorded supplementation; above the upper limit, the causes of a high B12 apply.",
    uses=("b12_rcv",),
    evidence_of="serial",
    branches=(
        branch(
            "above_upper",
            lambda f, xp: f.b12_high,
            lambda v: (
                _rise_text(v) + f", and it is above the upper limit {v['b12_high']}: "
                "consider unrecorded supplementation or a cause of a high B12."
            ),
        ),
        branch("within", lambda f, xp: True, lambda v: _rise_text(v) + "."),
    ),
    since=SINCE,
)
def b12_significant_rise(f: Facts, xp: Any) -> X:
    return f.b12_rise


SERIAL_EVIDENCE["B12_SIGNIFICANT_RISE"] = lambda v, used: _ev(v, "b12", threshold=_rcv(v))


def _responses(v: Any) -> list[str]:
    f, d = v.facts, _detail(v)
    items = []
    if f.hb_responded and "hb" in d.baseline:
        before, now = _pair(v, "hb")
        items.append(f"Hb rose from {before} ({_iso(d.baseline['hb'].at)}) to {now}")
    if f.mcv_responded and "mcv" in d.baseline:
        before, now = _pair(v, "mcv")
        items.append(f"MCV fell from {before} ({_iso(d.baseline['mcv'].at)}) to {now}")
    return items


def _response_evidence(v: Any, used: Any) -> tuple[Evidence, ...]:
    f, p = v.facts, v.facts.profile
    out: list[Evidence] = []
    if f.hb_responded and "hb" in _detail(v).baseline:
        out += _ev(v, "hb", "baseline", threshold=(p["hb_response"], "g/L", "hb_response"))
    if f.mcv_responded and "mcv" in _detail(v).baseline:
        out += _ev(v, "mcv", "baseline", threshold=(p["mcv_response"], "fL", "mcv_response"))
    return tuple(out)


def _mcv_only(f: Facts, xp: Any) -> X:
    """MCV fell but an earlier anaemia persists with Hb not risen: not clearly a response."""
    return f.mcv_responded & xp.not_(f.hb_responded) & f.base_anaemia & f.anaemia


def _mcv_only_message(v: Any) -> str:
    d = _detail(v)
    before, now = _pair(v, "hb")
    iron = " (iron deficiency is present now)" if v.facts.iron_deficiency else ""
    return (
        f"Since B12 treatment started on {_start_text(v)}, {words(_responses(v))}, but the "
        f"anaemia persists (Hb {before} on {_iso(d.baseline['hb'].at)}, {now} now): a falling "
        f"MCV may reflect a response, or iron deficiency that replacement can unmask{iron}; "
        "review the iron studies and the blood count."
    )


@rule(
    "HAEMATOLOGICAL_RESPONSE",
    area="serial",
    severity=INFO,
    escalate=lambda f, xp: xp.where(_mcv_only(f, xp), 2, 1),
    severity_note="warning when only the MCV fell and the anaemia persists",
    title="Blood count after starting replacement",
    message="",
    branches=(
        branch(
            "mcv_only_anaemia_persists",
            _mcv_only,
            _mcv_only_message,
            comment="MCV fell on B12 treatment but the anaemia persists: review the iron studies",
        ),
        branch(
            "response",
            lambda f, xp: True,
            lambda v: (
                f"Since B12 treatment started on {_start_text(v)}, "
                f"{words(_responses(v))}: consistent with a response to replacement."
            ),
        ),
    ),
    sources=("IOM-DRI", "NG239"),
    why="After replacement, reticulocytes peak at 5-8 days and Hb rises and MCV falls over "
    "the following weeks.",
    uses=("hb_response", "mcv_response"),
    evidence_of="serial",
    since=SINCE,
)
def haematological_response(f: Facts, xp: Any) -> X:
    return f.haem_response


SERIAL_EVIDENCE["HAEMATOLOGICAL_RESPONSE"] = _response_evidence


def _weeks(v: Any) -> str:
    return f"{int(v.facts.days_since_start // 7)} weeks"


def _second_cause(v: Any) -> str:
    f = v.facts
    text = (
        "consider adherence, malabsorption on oral replacement, a second cause (iron or folate "
        "deficiency, which replacement can unmask) or another diagnosis"
    )
    if f.mcv.gt(f.profile["mcv_macrocytosis"]):
        text += f" (e.g. myelodysplasia, with MCV {v['mcv']} still above 100 fL)"
    feeding = bool(f.raw.pregnant or f.raw.breastfeeding)
    return text + (
        "; NICE reviews at about 1 month in pregnancy or breastfeeding."
        if feeding
        else "; NICE reviews at about 3 months."
    )


def _persisting(v: Any) -> str:
    f, d = v.facts, _detail(v)
    items = []
    if f.base_anaemia and f.anaemia and "hb" in d.baseline:
        before, now = _pair(v, "hb")
        items.append(
            f"the anaemia persists (Hb {before} on {_iso(d.baseline['hb'].at)}, {now} now)"
        )
    if f.base_macrocytosis and f.macrocytosis and "mcv" in d.baseline:
        before, now = _pair(v, "mcv")
        items.append(
            f"the macrocytosis persists (MCV {before} on {_iso(d.baseline['mcv'].at)}, {now} now)"
        )
    return words(items)


def _no_response_evidence(v: Any, used: Any) -> tuple[Evidence, ...]:
    f, p, d = v.facts, v.facts.profile, _detail(v)
    out: list[Evidence] = []
    if f.no_response_blood:
        if f.base_anaemia and f.anaemia and "hb" in d.baseline and "hb" in v.m:
            out += _ev(v, "hb", "baseline", threshold=(p["hb_response"], "g/L", "hb_response"))
        if f.base_macrocytosis and f.macrocytosis and "mcv" in d.baseline and "mcv" in v.m:
            out += _ev(v, "mcv", "baseline", threshold=(p["mcv_response"], "fL", "mcv_response"))
    elif "mma" in d.baseline and "mma" in v.m:
        out += _ev(v, "mma", "baseline")
    return tuple(out)


@rule(
    "NO_RESPONSE_TO_TREATMENT",
    area="serial",
    severity=WARNING,
    title="No response to B12 treatment",
    message="",
    comment="no response to B12 treatment: consider adherence, malabsorption or a second cause",
    sources=("NG239", "BSH2014"),
    why="Hb should rise and MCV fall within weeks of effective replacement; a persisting "
    "anaemia or macrocytosis, or a raised MMA, after 8 weeks needs an explanation.",
    uses=("no_response_after", "hb_response", "mcv_response"),
    evidence_of="serial",
    branches=(
        branch(
            "blood_count",
            lambda f, xp: f.no_response_blood,
            lambda v: (
                f"{_weeks(v)} after B12 treatment started on {_start_text(v)}, "
                f"{_persisting(v)}, with neither Hb risen by "
                f"{v.facts.profile.thresholds['hb_response'].value:g} g/L nor MCV fallen by "
                f"{v.facts.profile.thresholds['mcv_response'].value:g} fL: {_second_cause(v)}"
            ),
        ),
        branch(
            "mma",
            lambda f, xp: f.no_response_mma,
            lambda v: (
                f"{_weeks(v)} after B12 treatment started on {_start_text(v)}, MMA "
                f"{v['mma']} is still above {v['mma_elevated']} (it was raised before treatment, "
                f"{_iso(_detail(v).baseline['mma'].at)}): {_second_cause(v)}"
            ),
        ),
    ),
    since=SINCE,
)
def no_response_to_treatment(f: Facts, xp: Any) -> X:
    return f.no_response_blood | f.no_response_mma


SERIAL_EVIDENCE["NO_RESPONSE_TO_TREATMENT"] = _no_response_evidence


def _review_message(v: Any) -> str:
    f, d = v.facts, _detail(v)
    feeding = bool(f.raw.pregnant or f.raw.breastfeeding)
    days = f.profile["review_due_within_pregnant" if feeding else "review_due_within"]
    assert d.start is not None
    due = (d.start + timedelta(days=int(days))).isoformat()
    span = (
        "1 month after starting in pregnancy or breastfeeding"
        if feeding
        else "3 months after starting"
    )
    return (
        f"B12 treatment started on {d.start.isoformat()}: NICE advises reviewing the response "
        f"about {span}, around {due}."
    )


@rule(
    "REVIEW_DUE",
    area="serial",
    severity=INFO,
    title="Treatment review due",
    message=_review_message,
    sources=("NG239",),
    why="NICE NG239 reviews the response to B12 replacement about 3 months after starting "
    "(1 month if pregnant or breastfeeding).",
    uses=("review_due_within", "review_due_within_pregnant"),
    since=SINCE,
)
def review_due(f: Facts, xp: Any) -> X:
    return f.review_due


@rule(
    "NEURO_RECOVERY_SLOWER",
    area="serial",
    severity=INFO,
    title="Neurological recovery is slower than haematological",
    message="Neurological symptoms ({neuro_symptoms}) were recorded before and persist while "
    "the blood count has responded to treatment: neurological recovery is slower than "
    "haematological and may be incomplete; symptoms that persist 3 months after starting "
    "treatment warrant neurological review.",
    sources=("S004", "S003"),
    why="Nerve recovery after B12 replacement takes months and may be incomplete, while the "
    "blood count recovers in weeks (S004, S003).",
    actions=(review("neurological review if symptoms persist 3 months after starting"),),
    since=SINCE,
)
def neuro_recovery_slower(f: Facts, xp: Any) -> X:
    return f.neuro & f.earlier_neuro & f.haem_response


@rule(
    "PREVIOUS_DEFICIENCY",
    area="serial",
    severity=INFO,
    title="An earlier result showed deficiency",
    message="B12 {b12} is in the unlikely band now, but {earlier_bad} and no B12 treatment is "
    "recorded: a normal result now does not exclude the earlier deficiency; check whether "
    "treatment was given.",
    comment="an earlier result showed deficiency: check whether treatment was given",
    sources=("NG239",),
    why="A normal B12 after a deficient one most often means treatment was given; if none was, "
    "the earlier deficiency is not excluded.",
    evidence=(("b12", "b12_indeterminate_upper"),),
    since=SINCE,
)
def previous_deficiency(f: Facts, xp: Any) -> X:
    return f.earlier_bad & f.b12_unlikely & xp.not_(f.treated | f.on_replacement)


__all__ = ["SERIAL_EVIDENCE", "derive_serial"]
_ = Measure  # re-exported type for readers of this module
