"""Threshold profiles: versioned, cited TOML files under ``reference_ranges/profiles/``.

A profile may ``extends`` another (by id, or by a path relative to its own file) and override
only what differs. Every threshold of :data:`THRESHOLDS` must be present after inheritance,
carry a unit of its analyte's dimension and name one of the profile's ``[sources]``.
"""

from __future__ import annotations

import datetime as dt
import functools
import itertools
import math
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ._data import reference_ranges
from .errors import ProfileError, UnitError
from .units import resolve_unit, round_sig

__all__ = [
    "DEFAULT_PROFILE",
    "THRESHOLDS",
    "Profile",
    "Threshold",
    "ThresholdSpec",
    "list_profiles",
    "load_profile",
]

DEFAULT_PROFILE = "nice-ng239-2024"


@dataclass(frozen=True, slots=True)
class ThresholdSpec:
    """The schema of one threshold: what it measures and whether it is a band limit."""

    kind: str  # an analyte key, "years", "weeks" or "days"
    description: str
    band: bool = False


#: Every threshold a profile must define (docs/clinical-logic.md §4 and the limits §5 names).
THRESHOLDS: dict[str, ThresholdSpec] = {
    "b12_deficient": ThresholdSpec("b12", "B12 deficient below", band=True),
    "b12_indeterminate_upper": ThresholdSpec(
        "b12", "B12 indeterminate up to (inclusive)", band=True
    ),
    "b12_high": ThresholdSpec("b12", "B12 upper limit (high above)", band=True),
    "holotc_deficient": ThresholdSpec("holotc", "holoTC deficient below", band=True),
    "holotc_indeterminate_upper": ThresholdSpec(
        "holotc", "holoTC indeterminate up to (inclusive)", band=True
    ),
    "mma_elevated": ThresholdSpec("mma", "MMA elevated above (age < older-age limit or unknown)"),
    "mma_elevated_older": ThresholdSpec("mma", "MMA elevated above (age >= older-age limit)"),
    "mma_older_age": ThresholdSpec("years", "age from which the older MMA limit applies"),
    "mma_elevated_infant": ThresholdSpec("mma", "MMA elevated above (age under the child age)"),
    "mma_elevated_child": ThresholdSpec("mma", "MMA elevated above (child age to adolescent age)"),
    "mma_elevated_adolescent": ThresholdSpec(
        "mma", "MMA elevated above (adolescent age to adult MMA age)"
    ),
    "mma_child_age": ThresholdSpec("years", "age from which the child MMA limit applies"),
    "mma_adolescent_age": ThresholdSpec("years", "age from which the adolescent MMA limit applies"),
    "mma_adult_age": ThresholdSpec("years", "age from which the adult MMA limits apply"),
    "mma_markedly_elevated": ThresholdSpec("mma", "MMA markedly elevated above"),
    "homocysteine_elevated": ThresholdSpec("homocysteine", "homocysteine elevated above"),
    "mcv_macrocytosis": ThresholdSpec("mcv", "macrocytosis: MCV above"),
    "mcv_marked": ThresholdSpec("mcv", "marked macrocytosis: MCV above"),
    "ferritin_low": ThresholdSpec("ferritin", "iron deficiency: ferritin below"),
    "ferritin_low_inflammation": ThresholdSpec(
        "ferritin", "iron deficiency with inflammation: ferritin below"
    ),
    "ferritin_possible_upper": ThresholdSpec(
        "ferritin", "possible iron deficiency with inflammation: ferritin up to (inclusive)"
    ),
    "tsat_low_inflammation": ThresholdSpec("tsat", "iron deficiency with inflammation: TSAT below"),
    "folate_low": ThresholdSpec("folate", "folate low below"),
    "folate_borderline_upper": ThresholdSpec("folate", "folate borderline below"),
    "rbc_folate_low": ThresholdSpec("rbc_folate", "red-cell folate low below"),
    "hb_anaemia_male": ThresholdSpec("hb", "anaemia (men, or sex unknown): Hb below"),
    "hb_anaemia_female": ThresholdSpec("hb", "anaemia (non-pregnant women): Hb below"),
    "hb_anaemia_pregnant": ThresholdSpec("hb", "anaemia (pregnancy): Hb below"),
    "hb_anaemia_pregnant_second_trimester": ThresholdSpec(
        "hb", "anaemia (second trimester of pregnancy): Hb below"
    ),
    "second_trimester_from": ThresholdSpec("weeks", "second trimester from (gestational weeks)"),
    "second_trimester_to": ThresholdSpec("weeks", "second trimester to, inclusive (weeks)"),
    "hb_moderate": ThresholdSpec("hb", "moderate anaemia below"),
    "hb_severe": ThresholdSpec("hb", "severe anaemia below"),
    "hb_moderate_pregnant": ThresholdSpec("hb", "moderate anaemia in pregnancy below"),
    "hb_severe_pregnant": ThresholdSpec("hb", "severe anaemia in pregnancy below"),
    "rdw_high": ThresholdSpec("rdw", "RDW high above"),
    "egfr_renal": ThresholdSpec("egfr", "renal caveat: eGFR below"),
    "egfr_kidney_failure": ThresholdSpec("egfr", "kidney failure: eGFR below"),
    "retic_high": ThresholdSpec("retic", "reticulocytes high above (a local limit)"),
    "crp_inflammation": ThresholdSpec("crp", "inflammation: CRP above"),
    "b12_injection_recent": ThresholdSpec("days", "B12 injection counts as recent within (days)"),
    "if_antibody_false_positive": ThresholdSpec(
        "days", "IF antibody possibly false positive within (days of an injection)"
    ),
    "adult_age": ThresholdSpec("years", "profiles apply from this age"),
    "risk_age": ThresholdSpec("years", "age counted as a risk factor for B12 testing"),
    # results over time (docs/clinical-logic.md §8)
    "b12_rcv": ThresholdSpec("percent", "B12 reference change value (two-sided 95 %)"),
    "retest_b12": ThresholdSpec(
        "days", "B12 minimum retest interval (a repeat within is too soon)"
    ),
    "retest_folate": ThresholdSpec("days", "folate minimum retest interval"),
    "retest_ferritin": ThresholdSpec("days", "ferritin minimum retest interval"),
    "hb_response": ThresholdSpec("hb", "haematological response: Hb risen by at least"),
    "mcv_response": ThresholdSpec("mcv", "haematological response: MCV fallen by at least"),
    "no_response_after": ThresholdSpec("days", "no response to treatment judged from (days)"),
    "myoclonus_note_within": ThresholdSpec(
        "days", "myoclonus may intensify within (days of starting treatment)"
    ),
    "history_window": ThresholdSpec("days", "earlier results older than this are ignored"),
    "review_due_within": ThresholdSpec("days", "NICE review due about (days after starting)"),
    "review_due_within_pregnant": ThresholdSpec(
        "days", "NICE review due about (days after starting; pregnant or breastfeeding)"
    ),
}

_PLAIN_UNITS = {
    "years": ("years", "year", "a", "y"),
    "days": ("days", "day", "d"),
    "weeks": ("weeks", "week", "wk"),
    "percent": ("%",),
}


@dataclass(frozen=True, slots=True, eq=False)
class Threshold:
    """One threshold as published: value, unit, alternative published figures and source."""

    key: str
    value: float
    unit: str
    source: str
    citation: str
    alt: Mapping[str, float] = field(default_factory=dict)
    canonical: float = 0.0  # in the analyte's canonical unit (or years/days)


@dataclass(frozen=True, slots=True, eq=False)
class Profile:
    """A loaded, validated threshold profile."""

    id: str
    version: str
    title: str
    effective_date: dt.date | None
    extends: str | None
    description: str
    sources: Mapping[str, str]
    thresholds: Mapping[str, Threshold]
    path: str
    lineage: tuple[str, ...] = ()
    canonical: Mapping[str, float] = field(default_factory=dict)
    #: the printed comment's length limit (docs/clinical-logic.md §6.1); ``None``: the default
    comment_limit: int | None = None

    def __post_init__(self) -> None:
        # canonical values by key, for the rule engine's hot path
        object.__setattr__(self, "canonical", {k: t.canonical for k, t in self.thresholds.items()})

    def __getitem__(self, key: str) -> float:
        """The threshold's value in the canonical unit of its analyte."""
        return self.canonical[key]

    def with_comment_limit(self, limit: int, *, where: str = "comment_limit") -> Profile:
        """This profile with another printed-comment limit (validated as for ``interpret``)."""
        from ._comment import check_comment_limit

        return replace(self, comment_limit=check_comment_limit(limit, where=where))

    def band(self, key: str, unit: str | None) -> tuple[float, float, str]:
        """A band limit for a result reported in ``unit``.

        Returns ``(canonical, as_compared, compared_unit)``: the limit in canonical units for a
        value reported in ``unit``, and the figure as published in the unit it is compared in.
        A figure the source publishes in the reported unit (e.g. NICE 133 pmol/L) is used as is;
        otherwise the primary figure (e.g. 180 ng/L) is converted into the reported unit, so
        that a value on the published figure is compared exactly on it (pg/mL *is* ng/L).
        """
        return _band(self, key, unit)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-friendly description (for docs and audits)."""
        return {
            "id": self.id,
            "version": self.version,
            "title": self.title,
            "effective_date": self.effective_date.isoformat() if self.effective_date else None,
            "extends": self.extends,
            "comment_limit": self.comment_limit,
            "sources": dict(self.sources),
            "thresholds": {
                k: {
                    "value": t.value,
                    "unit": t.unit,
                    "alt": dict(t.alt),
                    "source": t.source,
                    "canonical": t.canonical,
                }
                for k, t in self.thresholds.items()
            },
        }


@functools.lru_cache(maxsize=256)
def _band(profile: Profile, key: str, unit: str | None) -> tuple[float, float, str]:
    t = profile.thresholds[key]
    analyte = THRESHOLDS[key].kind
    if unit is not None:
        reported = resolve_unit(analyte, unit)
        for alt_unit, alt_value in t.alt.items():
            if resolve_unit(analyte, alt_unit).code == reported.code:
                return round_sig(alt_value * reported.factor), alt_value, alt_unit
        primary = resolve_unit(analyte, t.unit)
        in_reported = round_sig(t.value * primary.factor / reported.factor)
        return round_sig(in_reported * reported.factor), t.value, t.unit
    return t.canonical, t.value, t.unit


def _shipped_dir() -> Any:
    return reference_ranges().joinpath("profiles")


def list_profiles() -> list[dict[str, str]]:
    """The shipped profiles: id, version, title and effective date."""
    out = []
    for entry in sorted(_shipped_dir().iterdir(), key=lambda e: e.name):
        if entry.name.endswith(".toml"):
            p = load_profile(entry.name.removesuffix(".toml"))
            out.append(
                {
                    "id": p.id,
                    "version": p.version,
                    "title": p.title,
                    "effective_date": p.effective_date.isoformat() if p.effective_date else "",
                    "extends": p.extends or "",
                }
            )
    return out


def _read(source: Any, name: str) -> dict[str, Any]:
    try:
        with source.open("rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise ProfileError("profile file not found", file=name) from None
    except tomllib.TOMLDecodeError as exc:
        raise ProfileError(f"not valid TOML: {exc}", file=name) from None


def _locate(ref: str, relative_to: Path | None) -> tuple[Any, str]:
    """A profile reference (shipped id or path) -> (readable, display name)."""
    shipped = _shipped_dir().joinpath(f"{ref}.toml")
    looks_like_path = ref.endswith(".toml") or "/" in ref or "\\" in ref
    if not looks_like_path and shipped.is_file():
        return shipped, f"{ref}.toml"
    path = Path(ref)
    if relative_to is not None and not path.is_absolute():
        path = relative_to / path
    if path.is_file():
        return path, str(path)
    if not looks_like_path:
        known = ", ".join(p["id"] for p in list_profiles())
        raise ProfileError(
            f"unknown profile {ref!r} (shipped: {known}; or pass a path to a .toml file)"
        )
    raise ProfileError("profile file not found", file=str(path))


def load_profile(ref: str | Path | Profile = DEFAULT_PROFILE) -> Profile:
    """Load a profile by shipped id (``"nice-ng239-2024"``) or by path to a TOML file."""
    if isinstance(ref, Profile):
        return ref
    if isinstance(ref, Path):
        ref = str(ref)
    if not isinstance(ref, str) or not ref.strip():
        raise ProfileError(
            f"profile must be a shipped profile id, a path or a Profile, not {ref!r} "
            f"(shipped: {', '.join(p['id'] for p in list_profiles())})",
            code="option-invalid",
        )
    return _load_cached(ref)


@functools.lru_cache(maxsize=64)
def _load_cached(ref: str) -> Profile:
    return _load(ref, None, ())


def _load(ref: str, relative_to: Path | None, chain: tuple[str, ...]) -> Profile:
    source, name = _locate(ref, relative_to)
    key = str(source)
    if key in chain:
        raise ProfileError("extends cycle: " + " -> ".join([*chain, key]), file=name, key="extends")
    raw = _read(source, name)
    for required in ("id", "version"):
        if not isinstance(raw.get(required), str) or not raw[required]:
            raise ProfileError(f"missing or empty {required!r}", file=name, key=required)
    allowed = {
        "id",
        "version",
        "title",
        "effective_date",
        "extends",
        "description",
        "sources",
        "thresholds",
        "comment_limit",
    }
    unknown = set(raw) - allowed
    if unknown:
        raise ProfileError(f"unknown key(s) {sorted(unknown)}", file=name, key=sorted(unknown)[0])

    base: Profile | None = None
    extends = raw.get("extends")
    if extends is not None:
        if not isinstance(extends, str):
            raise ProfileError("extends must be a profile id or path", file=name, key="extends")
        here = Path(str(source)).parent if isinstance(source, Path) else None
        base = _load(extends, here, (*chain, key))

    sources: dict[str, str] = dict(base.sources) if base else {}
    raw_sources = raw.get("sources", {})
    if not isinstance(raw_sources, dict):
        raise ProfileError("[sources] must be a table", file=name, key="sources")
    sources.update({str(k): str(v) for k, v in raw_sources.items()})

    thresholds: dict[str, Threshold] = dict(base.thresholds) if base else {}
    raw_thresholds = raw.get("thresholds", {})
    if not isinstance(raw_thresholds, dict):
        raise ProfileError("[thresholds] must be a table", file=name, key="thresholds")
    for tkey, entry in raw_thresholds.items():
        thresholds[tkey] = _threshold(tkey, entry, sources, name)
    missing = [k for k in THRESHOLDS if k not in thresholds]
    if missing:
        raise ProfileError(
            f"missing threshold(s): {', '.join(missing)}", file=name, key=f"thresholds.{missing[0]}"
        )
    _check_order(thresholds, name)
    date = raw.get("effective_date")
    if date is not None and not isinstance(date, dt.date):
        raise ProfileError(
            "effective_date must be a date (YYYY-MM-DD)", file=name, key="effective_date"
        )
    comment_limit = raw.get("comment_limit", base.comment_limit if base else None)
    if comment_limit is not None and (
        isinstance(comment_limit, bool) or not isinstance(comment_limit, int) or comment_limit < 1
    ):
        raise ProfileError(
            "comment_limit must be a positive whole number of characters",
            file=name,
            key="comment_limit",
        )
    return Profile(
        id=raw["id"],
        version=raw["version"],
        title=str(raw.get("title", raw["id"])),
        effective_date=date,
        extends=extends,
        description=str(raw.get("description", "")).strip(),
        sources=sources,
        thresholds={k: thresholds[k] for k in THRESHOLDS},
        path=name,
        lineage=(raw["id"], *(base.lineage if base else ())),
        comment_limit=comment_limit,
    )


#: Limits that must not decrease along each chain (compared in canonical units): a band
#: limit above the next band's would leave a band empty and read a value in two bands.
THRESHOLD_ORDER: tuple[tuple[str, ...], ...] = (
    ("b12_deficient", "b12_indeterminate_upper", "b12_high"),
    ("holotc_deficient", "holotc_indeterminate_upper"),
)


def _check_order(thresholds: Mapping[str, Threshold], file: str) -> None:
    for chain in THRESHOLD_ORDER:
        for lower, upper in itertools.pairwise(chain):
            lo, hi = thresholds[lower], thresholds[upper]
            if lo.canonical > hi.canonical:
                raise ProfileError(
                    f"profile thresholds out of order: {lower} ({lo.value:g} {lo.unit}) lies "
                    f"above {upper} ({hi.value:g} {hi.unit}); the bands run " + " <= ".join(chain),
                    file=file,
                    key=f"thresholds.{lower}",
                    code="profile-threshold-order",
                )


def _threshold(key: str, entry: object, sources: Mapping[str, str], file: str) -> Threshold:
    where = f"thresholds.{key}"
    spec = THRESHOLDS.get(key)
    if spec is None:
        raise ProfileError(
            f"unknown threshold (known: {', '.join(THRESHOLDS)})", file=file, key=where
        )
    if not isinstance(entry, dict):
        raise ProfileError("a threshold is a table {value, unit, source}", file=file, key=where)
    value = entry.get("value")
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ProfileError("missing or non-numeric value", file=file, key=where)
    if not math.isfinite(value) or value < 0:
        raise ProfileError(
            f"a negative threshold ({value!r}): thresholds are finite and non-negative",
            file=file,
            key=where,
            code="profile-threshold-negative",
        )
    unit = entry.get("unit")
    if not isinstance(unit, str) or not unit:
        raise ProfileError("missing unit", file=file, key=where)
    source = entry.get("source")
    if not isinstance(source, str) or source not in sources:
        raise ProfileError(
            f"source {source!r} is not in [sources] ({', '.join(sources) or 'none'})",
            file=file,
            key=where,
        )
    unexpected = set(entry) - {"value", "unit", "source", "alt", "note"}
    if unexpected:
        raise ProfileError(f"unknown field(s) {sorted(unexpected)}", file=file, key=where)
    alt_raw = entry.get("alt", {})
    if not isinstance(alt_raw, dict):
        raise ProfileError("alt must be a table {unit = value}", file=file, key=where)
    if spec.kind in _PLAIN_UNITS:
        if unit not in _PLAIN_UNITS[spec.kind]:
            raise ProfileError(f"unit must be {spec.kind!r}", file=file, key=where)
        canonical = float(value)
    else:
        try:
            canonical = round_sig(float(value) * resolve_unit(spec.kind, unit).factor)
            for alt_unit in alt_raw:
                resolve_unit(spec.kind, alt_unit)
        except UnitError as exc:
            raise ProfileError(
                f"unit does not parse for {spec.kind}: {exc.reason}", file=file, key=where
            ) from None
    alt = {str(u): float(v) for u, v in alt_raw.items()}
    if alt and not spec.band:
        raise ProfileError("alt figures are only used for band thresholds", file=file, key=where)
    return Threshold(
        key=key,
        value=float(value),
        unit=unit,
        source=source,
        citation=sources[source],
        alt=alt,
        canonical=canonical,
    )
