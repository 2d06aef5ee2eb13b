"""Results over time (docs/clinical-logic.md §8): earlier results as the engine's serial inputs.

:func:`serial_inputs` turns one patient's history (earlier result sets, each with its
``collected_at`` and optionally the context of that time) into the flat, numeric inputs the
serial rules read in either shape (``RawInputs.serial``), plus what their messages need
(:class:`SerialDetail`, the scalar shape only). The batch long format builds the same inputs
as arrays from a patient's earlier episodes (``b12labs.batch._long``).

Decisions made here, in one place:

- a result more than ``history_window`` days (730) older than the current panel is ignored;
- two results of one analyte with the same ``collected_at`` and different values are a
  conflict: neither is used (the current one included), and ``RESULT_CONFLICT`` names both;
  the same value reported twice (in any unit) is one result;
- only an uncensored, plausible earlier value is compared for a change ("comparable");
- the treatment start is the current context's ``b12_treatment_started``, else the latest
  one recorded in an earlier entry's context;
- an earlier result set counts as deficient or probable by the status logic of §6 (the
  current patient's age and sex; the conditions of the current context unless the entry
  gives its own context), a censored value that decided the deficient band included.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime

from .errors import InvalidValueError
from .models import HistoryEntry, Measurement, PatientContext
from .profiles import Profile
from .units import ANALYTES, resolve_unit, round_sig
from .vocabulary import NEUROLOGICAL_SYMPTOMS

__all__ = [
    "COMPARED_ANALYTES",
    "RETEST_ANALYTES",
    "SerialDetail",
    "day_number",
    "serial_inputs",
]

#: analytes whose earlier values the serial rules compare (docs/clinical-logic.md §8)
COMPARED_ANALYTES: tuple[str, ...] = ("b12", "holotc", "folate", "ferritin", "hb", "mcv", "mma")
#: analytes with a minimum retest interval (profile ``retest_<analyte>``)
RETEST_ANALYTES: tuple[str, ...] = ("b12", "folate", "ferritin")
#: the earlier values a response to treatment is judged against (the last before the start)
BASELINE_ANALYTES: tuple[str, ...] = ("hb", "mcv", "mma")

_SECONDS_PER_DAY = 86400.0
_NEUROLOGICAL = frozenset(NEUROLOGICAL_SYMPTOMS)


def day_number(t: datetime | date) -> float:
    """Days since 1970-01-01 UTC (fractional for a time), the unit every §8 interval uses."""
    if not isinstance(t, datetime):
        t = datetime(t.year, t.month, t.day, tzinfo=UTC)
    return t.timestamp() / _SECONDS_PER_DAY


@dataclass(frozen=True, slots=True)
class Earlier:
    """One earlier result of one analyte."""

    analyte: str
    at: datetime
    day: float
    measurement: Measurement
    value: float  # canonical; NaN for a qualitative result
    comparable: bool  # uncensored and plausible: may be compared for a change


@dataclass(frozen=True, slots=True)
class Conflict:
    """Two (or more) results of one analyte at one time with different values."""

    analyte: str
    at: datetime
    reported: tuple[str, ...]
    current: bool  # one of them is the current panel's


@dataclass
class SerialDetail:
    """What the serial messages and evidence show (scalar shape only)."""

    now: datetime
    now_given: bool
    previous: dict[str, Earlier] = field(default_factory=dict)
    baseline: dict[str, Earlier] = field(default_factory=dict)
    start: date | None = None
    start_from_history: bool = False
    earlier_bad: tuple[datetime, str] | None = None  # (collected_at, "deficient"/"probable")
    conflicts: tuple[Conflict, ...] = ()
    ignored_old: list[int] = field(default_factory=list)
    #: judges the earlier result sets on demand (the day of the newest deficient or probable
    #: one, NaN if none); None once resolved or when it cannot matter
    resolve_bad: Callable[[], float] | None = None


def _value_key(analyte: str, m: Measurement) -> tuple[object, ...]:
    """What makes two results the same result: the canonical value and comparator."""
    if ANALYTES[analyte].qualitative:
        return ("q", m.qualitative)
    assert m.value is not None
    factor = resolve_unit(analyte, m.unit).factor if m.unit else 1.0
    return (round_sig(m.value * factor), m.comparator)


#: values this close (relative) are one result reported at different precision or in
#: another unit (250 pg/mL and 184.5 pmol/L)
SAME_RESULT_TOLERANCE = 0.01


def _same(a: tuple[object, ...], b: tuple[object, ...]) -> bool:
    if a[0] == "q" or b[0] == "q":
        return a == b
    va, vb = a[0], b[0]
    assert isinstance(va, float) and isinstance(vb, float)
    return a[1] == b[1] and math.isclose(va, vb, rel_tol=SAME_RESULT_TOLERANCE)


def _order(key: tuple[object, ...]) -> tuple[float, str]:
    """A value key's place in a stable order: numbers by value, words by text."""
    first = key[0]
    return (first, repr(key)) if isinstance(first, float) else (math.inf, repr(key))


def _distinct(values: dict[tuple[object, ...], str]) -> dict[tuple[object, ...], str]:
    """The values that are different results (near-equal ones collapsed into the first)."""
    out: dict[tuple[object, ...], str] = {}
    for key, reported in sorted(values.items(), key=lambda kv: _order(kv[0])):
        if not any(_same(key, seen) for seen in out):
            out[key] = reported
    return out


def _earlier(analyte: str, at: datetime, m: Measurement) -> Earlier:
    spec = ANALYTES[analyte]
    if spec.qualitative or m.value is None:
        return Earlier(analyte, at, day_number(at), m, math.nan, False)
    factor = resolve_unit(analyte, m.unit).factor if m.unit else 1.0
    value = m.value if factor == 1.0 else round_sig(m.value * factor)
    plausible = not spec.plausible or spec.plausible[0] <= value <= spec.plausible[1]
    return Earlier(analyte, at, day_number(at), m, value, plausible and not m.comparator)


def _entry_context(entry: HistoryEntry, current: PatientContext) -> PatientContext:
    """The context an earlier result set is banded with: its own (or the current conditions),
    with the current patient's age and sex (docs/clinical-logic.md §8)."""
    update = {"age": current.age, "sex": current.sex}
    if entry.context is None:
        return PatientContext.model_construct(
            None, conditions=current.conditions, age=current.age, sex=current.sex
        )
    return entry.context.model_copy(update=update)


def serial_inputs(
    measurements: Mapping[str, Measurement],
    context: PatientContext,
    history: Sequence[HistoryEntry],
    profile: Profile,
    *,
    now: datetime | None = None,
    current_times: Mapping[str, datetime] | None = None,
    eager_bad: bool = True,
) -> tuple[dict[str, float], SerialDetail, tuple[str, ...]]:
    """The serial inputs of one panel, their detail, and the current analytes a conflict voids.

    ``eager_bad`` judges the earlier result sets now (the default, and the only way for a
    column of panels); ``interpret()`` passes False and lets ``derive_serial`` judge them only
    when a finding can read them. ``current_times`` gives the collection time of each current result where it differs from
    the panel's ``collected_at`` (the long batch format: a panel's results span an episode).

    Raises :class:`~b12labs.errors.InvalidValueError` (``history-date-after-current``) for an
    entry collected after the current panel.
    """
    given = context.collected_at is not None
    current_at = context.collected_at or now or datetime.now(UTC)
    now_day = day_number(current_at)
    detail = SerialDetail(now=current_at, now_given=given)
    times = current_times or {}
    inputs: dict[str, float] = {"now": now_day}
    window = profile["history_window"]
    entries: list[HistoryEntry] = []
    for i, entry in enumerate(history):
        if entry.collected_at > current_at:
            raise InvalidValueError(
                code="history-date-after-current",
                analyte=f"history[{i}].collected_at",
                reported=entry.collected_at.isoformat(),
            )
        if now_day - day_number(entry.collected_at) > window:
            detail.ignored_old.append(i)
            continue
        entries.append(entry)
    if not entries:
        start = context.b12_treatment_started
        if start is not None:
            detail.start = start
            inputs["start"] = day_number(start)
        return inputs, detail, ()

    # every result at each (analyte, time), the current panel's included when its time is known;
    # only a time holding two results can hold a conflict, so only those are compared
    by_time: dict[tuple[str, datetime], list[Measurement]] = {}
    for entry in entries:
        for analyte, m in entry.results.items():
            by_time.setdefault((analyte, entry.collected_at), []).append(m)
    voided: list[str] = []
    conflicts: list[Conflict] = []
    conflicted: set[tuple[str, datetime]] = set()
    for (analyte, at), found in by_time.items():
        current = given and at == times.get(analyte, current_at) and analyte in measurements
        if len(found) < 2 and not current:
            continue
        values: dict[tuple[object, ...], str] = {}
        for m in (*found, *((measurements[analyte],) if current else ())):
            values.setdefault(_value_key(analyte, m), m.reported or "")
        distinct = _distinct(values)
        if len(distinct) > 1:
            conflicted.add((analyte, at))
            # named in value order, so the message never depends on the order of the inputs
            ordered = sorted(distinct.items(), key=lambda kv: _order(kv[0]))
            conflicts.append(Conflict(analyte, at, tuple(r for _, r in ordered), current))
            if current:
                voided.append(analyte)
    detail.conflicts = tuple(sorted(conflicts, key=lambda c: (c.at, c.analyte)))
    if conflicts:
        inputs["conflict"] = 1.0
    if voided:
        inputs["conflict_current"] = 1.0

    # the newest comparable earlier value of each analyte (strictly before the current panel),
    # read newest first so that only the values that can be chosen are converted
    newest_first = sorted(entries, key=lambda e: e.collected_at, reverse=True)
    detail.previous = _newest_comparable(
        newest_first,
        COMPARED_ANALYTES,
        conflicted,
        lambda e, a: e.collected_at < times.get(a, current_at),
    )
    for analyte, o in detail.previous.items():
        inputs[f"prev_{analyte}"] = o.value
        inputs[f"prev_{analyte}_day"] = o.day

    # treatment start: the current context's, else the latest an earlier context recorded
    start = context.b12_treatment_started
    if start is None:
        recorded = [
            e.context.b12_treatment_started
            for e in entries
            if e.context is not None and e.context.b12_treatment_started is not None
        ]
        if recorded:
            start = max(recorded)
            detail.start_from_history = True
    if start is not None:
        detail.start = start
        inputs["start"] = start_day = day_number(start)
        # a result on the day treatment started counts as before it (taken to decide)
        detail.baseline = _newest_comparable(
            newest_first,
            BASELINE_ANALYTES,
            conflicted,
            lambda e, a: day_number(e.collected_at) < start_day + 1,
        )
        for analyte, o in detail.baseline.items():
            inputs[f"base_{analyte}"] = o.value
            inputs[f"base_{analyte}_day"] = o.day

    # an earlier neurological symptom (for NEURO_RECOVERY_SLOWER)
    if any(
        e.context is not None and not _NEUROLOGICAL.isdisjoint(e.context.symptoms) for e in entries
    ):
        inputs["earlier_neuro"] = 1.0

    # the newest earlier result set that was deficient or probable: judged only when the
    # current facts show it can matter (PREVIOUS_DEFICIENCY, B12_ON_REPLACEMENT), by
    # rules.serial.derive_serial calling resolve_bad(); eagerly with eager_bad (batch)
    if "b12" in measurements or "holotc" in measurements:

        def resolve() -> float:
            bad = _newest_bad(entries, conflicted, context, profile, current_at)
            if bad is None:
                return math.nan
            detail.earlier_bad = bad
            return day_number(bad[0])

        if eager_bad and _current_could_use_bad(measurements, context, profile):
            day = resolve()
            if day == day:
                inputs["bad_day"] = day
        else:
            detail.resolve_bad = resolve
    return inputs, detail, tuple(voided)


def _newest_comparable(
    newest_first: Sequence[HistoryEntry],
    analytes: Sequence[str],
    conflicted: set[tuple[str, datetime]],
    before: Callable[[HistoryEntry, str], bool],
) -> dict[str, Earlier]:
    """The newest comparable (uncensored, plausible, unconflicted) value of each analyte among
    the entries ``before`` accepts; entries come newest first, so only the values that can be
    chosen are converted."""
    found: dict[str, Earlier] = {}
    wanted = set(analytes)
    for entry in newest_first:
        for analyte, m in entry.results.items():
            if analyte not in wanted or (analyte, entry.collected_at) in conflicted:
                continue
            if not before(entry, analyte):
                continue
            o = _earlier(analyte, entry.collected_at, m)
            if o.comparable:
                found[analyte] = o
                wanted.discard(analyte)
        if not wanted:
            break
    return found


_STATUS_MARKERS = frozenset({"b12", "holotc", "mma", "homocysteine", "if_antibody"})
_PROBABLE_MARKERS = frozenset({"mma", "homocysteine", "if_antibody"})


def _current_could_use_bad(
    measurements: Mapping[str, Measurement], context: PatientContext, profile: Profile
) -> bool:
    """False only when no finding can read the earlier deficiency: not on replacement
    (B12_ON_REPLACEMENT) and the current B12 not possibly in the unlikely band
    (PREVIOUS_DEFICIENCY). A cheap, safe screen for the batch, which judges eagerly."""
    if context.b12_treatment in ("oral", "injection") or (
        context.b12_treatment_started is not None and context.b12_treatment != "none"
    ):
        return True
    m = measurements.get("b12")
    if m is None or m.value is None:
        return False
    if m.comparator in (">", ">="):
        return True
    limit = profile.band("b12_indeterminate_upper", m.unit)[0]
    factor = resolve_unit("b12", m.unit).factor if m.unit else 1.0
    return m.value * factor >= limit * (1 - 1e-9)


def _could_be_bad(entry: HistoryEntry, profile: Profile) -> bool:
    """False only when an entry cannot be deficient or probable: no MMA, homocysteine or IF
    antibody, and every B12 or holoTC wholly above its deficient limit. A cheap, safe screen
    in front of the full judgement (which decides every entry it lets through)."""
    if not _PROBABLE_MARKERS.isdisjoint(entry.results):
        return True
    for key in ("b12", "holotc"):
        m = entry.results.get(key)
        if m is None:
            continue
        if m.value is None or m.comparator in ("<", "<="):
            return True
        limit = profile.band(f"{key}_deficient", m.unit)[0]
        factor = resolve_unit(key, m.unit).factor if m.unit else 1.0
        if m.value * factor <= limit * (1 + 1e-9):
            return True
    return False


def _newest_bad(
    entries: Sequence[HistoryEntry],
    conflicted: set[tuple[str, datetime]],
    context: PatientContext,
    profile: Profile,
    current_at: datetime,
) -> tuple[datetime, str] | None:
    # imported here: _interpret imports this module
    from ._engine import SCALAR, deficient_or_probable, derive
    from ._interpret import panel_inputs
    from .rules import DERIVE_STATUS

    plain: PatientContext | None = None  # the context of every entry without its own
    for entry in sorted(entries, key=lambda e: e.collected_at, reverse=True):
        if entry.collected_at >= current_at or _STATUS_MARKERS.isdisjoint(entry.results):
            continue
        if not _could_be_bad(entry, profile):
            continue
        if entry.context is None:
            plain = plain or _entry_context(entry, context)
            entry_context = plain
        else:
            entry_context = _entry_context(entry, context)
        results = {
            k: m for k, m in entry.results.items() if (k, entry.collected_at) not in conflicted
        }
        raw, _ = panel_inputs(results, entry_context, profile)
        code = deficient_or_probable(derive(raw, profile, SCALAR, DERIVE_STATUS))
        if code:
            return entry.collected_at, ("deficient" if code == 1 else "probable")
    return None
