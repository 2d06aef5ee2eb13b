"""Mutation check: moving any single profile threshold by ±10 % makes at least one case fail.

A threshold that no case notices is an untested threshold. Each shipped profile's own
thresholds (for the extending profiles, those they override) are mutated in memory, one at a
time, and the cases of that profile are re-run through interpret().
"""

from __future__ import annotations

import dataclasses
import tomllib
from collections.abc import Iterator

import pytest

from b12labs import interpret
from b12labs._data import reference_ranges
from b12labs.profiles import Profile, Threshold, load_profile

from ._cases import Case, check, load_cases, outcome_from_interpretation

CASES = load_cases()
DEFAULT = "nice-ng239-2024"


def _own_keys(profile_id: str) -> list[str]:
    with reference_ranges().joinpath("profiles", f"{profile_id}.toml").open("rb") as fh:
        return list(tomllib.load(fh)["thresholds"])


def _mutated(profile: Profile, key: str, factor: float) -> Profile:
    t = profile.thresholds[key]
    moved = Threshold(
        key=t.key, value=t.value * factor, unit=t.unit, source=t.source, citation=t.citation,
        alt={u: v * factor for u, v in t.alt.items()}, canonical=t.canonical * factor,
    )
    return dataclasses.replace(profile, thresholds={**profile.thresholds, key: moved})


def _mutations() -> Iterator[tuple[str, str, float]]:
    for pid in (DEFAULT, "mayo-acasm", "labcorp-141503"):
        for key in _own_keys(pid):
            for factor in (0.9, 1.1):
                yield pid, key, factor


def _cases_for(pid: str) -> list[Case]:
    return [c for c in CASES if (c.profile or DEFAULT) == pid]


@pytest.mark.parametrize(("profile_id", "key", "factor"), list(_mutations()),
                         ids=[f"{p}:{k}:x{f}" for p, k, f in _mutations()])
def test_moving_a_threshold_by_10_percent_is_noticed(profile_id: str, key: str, factor: float) -> None:
    profile = _mutated(load_profile(profile_id), key, factor)
    for case in _cases_for(profile_id):
        result = interpret(case.panel, case.context or None, profile=profile, **case.kwargs)
        if check(case, outcome_from_interpretation(result)):
            return
    pytest.fail(f"no case of {profile_id} notices {key} moved x{factor}: add cases around it")
