"""Results over time through the CDS Hooks service (docs/clinical-logic.md §8): a prefetched
searchset of many Observations, newest first as the template asks, gives the serial findings
and cards that say what changed since when."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from b12labs.service import ServiceConfig, load_config
from tests.service import _support as s
from tests.service.test_app import Client, call, cards_of

B12 = ("2132-9", "Cobalamin (Vitamin B12) [Mass/volume] in Serum or Plasma")
HB = ("718-7", "Hemoglobin [Mass/volume] in Blood")


@pytest.fixture(scope="module")
def keys() -> tuple[Any, Any]:
    return s.rsa_key(), s.ec_key()


@pytest.fixture
def config(tmp_path: Path, keys: tuple[Any, Any]) -> ServiceConfig:
    rsa_key, ec_key = keys
    jwks = s.write_jwks(
        tmp_path / "ehr-jwks.json",
        s.public_jwk(rsa_key, s.RSA_KID, "RS384"),
        s.public_jwk(ec_key, s.EC_KID, "ES384"),
    )
    # a page of 100 Observations is larger than the 64 KiB of the other service tests
    return load_config(s.write_config(tmp_path, jwks, max_body_bytes=512 * 1024))


def b12(oid: str, value: float, day: str) -> dict[str, Any]:
    return s.observation(oid, *B12, value, "pmol/L", when=f"{day}T09:30:00Z")


def history_page(earlier: float, current: float) -> dict[str, Any]:
    """A prefetch whose observations are one searchset page of 100, newest first: B12
    ``earlier`` pmol/L on 2026-03-01 and ``current`` on 2026-09-01, and 98 monthly Hb results
    going back beyond 730 days (most of them too old to be used)."""
    hb = [
        s.observation(
            f"hb-{i}",
            *HB,
            130,
            "g/L",
            when=f"{2026 - (i + 4) // 12}-{12 - (i + 4) % 12:02d}-15T09:30:00Z",
        )
        for i in range(98)
    ]
    obs = [
        b12("b12-sept", current, "2026-09-01"),
        *hb[:3],
        b12("b12-march", earlier, "2026-03-01"),
        *hb[3:],
    ]
    obs.sort(key=lambda r: r["effectiveDateTime"], reverse=True)
    return {
        "patient": s.patient(),
        "observations": s.searchset(*obs),
        "medications": s.searchset(),
        "conditions": s.searchset(),
    }


def test_a_fall_since_an_earlier_result_gets_a_card_with_both_results(
    config: ServiceConfig, keys: Any
) -> None:
    data = history_page(earlier=400, current=248)  # 38 % lower
    assert len(data["observations"]["entry"]) == 100
    cards = cards_of(call(Client(config), keys, s.patient_view(data)))
    [fall] = [c for c in cards if "rules/B12_SIGNIFICANT_FALL" in c["source"]["url"]]
    assert fall["indicator"] == "warning"
    assert "fell 38 %" in fall["detail"] and "since 2026-03-01" in fall["detail"]
    assert "400 pmol/L" in fall["detail"] and "248 pmol/L" in fall["detail"]
    status = cards[0]
    assert "B12_SIGNIFICANT_FALL" in status["detail"]
    # the Hb results older than 730 days were not used, and are only counted
    assert not any("could not be used" in c["summary"] for c in cards)
    assert "other input(s) ignored" in status["detail"]


def test_an_info_finding_of_a_change_is_told_on_the_status_card(
    config: ServiceConfig, keys: Any
) -> None:
    data = history_page(earlier=250, current=400)  # a rise beyond the RCV, no treatment
    cards = cards_of(call(Client(config), keys, s.patient_view(data)))
    status = cards[0]
    line = next(x for x in status["detail"].splitlines() if "B12_SIGNIFICANT_RISE" in x)
    assert line.startswith("- info:") and "2026-03-01" in line  # the message, with the date
    assert not any("rules/B12_SIGNIFICANT_RISE" in c["source"]["url"] for c in cards[1:])


def test_a_result_more_than_730_days_older_is_not_compared(
    config: ServiceConfig, keys: Any
) -> None:
    data = history_page(earlier=400, current=248)
    for entry in data["observations"]["entry"]:
        if entry["resource"]["id"] == "b12-march":
            entry["resource"]["effectiveDateTime"] = "2024-08-31T09:30:00Z"
    cards = cards_of(call(Client(config), keys, s.patient_view(data)))
    assert not any("B12_SIGNIFICANT_FALL" in c["detail"] for c in cards)


def test_a_result_conflict_is_reported_alike_in_either_order(
    config: ServiceConfig, keys: Any
) -> None:
    low, high = b12("b12-1", 150, "2026-09-01"), b12("b12-2", 400, "2026-09-01")
    answers = []
    for pair in ([low, high], [high, low]):
        data = history_page(earlier=400, current=248)
        data["observations"] = s.searchset(*pair)
        answers.append(cards_of(call(Client(config), keys, s.patient_view(data))))
    first, second = answers
    assert any("rules/RESULT_CONFLICT" in c["source"]["url"] for c in first)
    assert [(c["summary"], c["indicator"]) for c in first] == [
        (c["summary"], c["indicator"]) for c in second
    ]
    assert not first[0]["summary"].startswith(("B12 deficiency unlikely", "B12 deficiency likely"))
