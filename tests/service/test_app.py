"""The CDS Hooks service in-process (httpx.ASGITransport): discovery, cards, security, limits,
prefetch fetching, order check, feedback, rule pages and logging hygiene."""

from __future__ import annotations

import asyncio
import json
import logging
import re
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from b12labs.errors import InvalidValueError, MissingExtraError
from b12labs.rules import CATALOGUE
from b12labs.service import ServiceConfig, create_app, load_config, require_extra
from b12labs.service._cdshooks import SUMMARY_MAX_CHARS, Card, CDSResponse, Discovery
from b12labs.service._hooks import observation_loincs
from b12labs.service._security import PUBLIC_REASON
from b12labs.units import ANALYTES
from tests.service import _support as s
from tests.service._support import ig_problems

SERVICE_URL = f"{s.BASE}/cds-services/{s.INTERPRETATION}"
ORDER_URL = f"{s.BASE}/cds-services/{s.ORDER_CHECK}"
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")

FHIRHandler = Callable[[httpx.Request], httpx.Response]


# --- harness -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def keys() -> tuple[rsa.RSAPrivateKey, ec.EllipticCurvePrivateKey]:
    return s.rsa_key(), s.ec_key()


@pytest.fixture
def config(tmp_path: Path, keys: tuple[rsa.RSAPrivateKey, ec.EllipticCurvePrivateKey]) -> ServiceConfig:
    rsa_key, ec_key = keys
    jwks = s.write_jwks(
        tmp_path / "ehr-jwks.json",
        s.public_jwk(rsa_key, s.RSA_KID, "RS384"),
        s.public_jwk(ec_key, s.EC_KID, "ES384"),
    )
    return load_config(s.write_config(tmp_path, jwks, max_body_bytes=64 * 1024))


class FakeFHIR:
    """An in-process FHIR server (httpx.MockTransport) serving the fixture resources."""

    def __init__(self, data: dict[str, Any] | None = None, *, fail: int | None = None) -> None:
        self.data = data if data is not None else s.prefetch()
        self.fail = fail
        self.requests: list[httpx.Request] = []
        self.pages = False

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if self.fail is not None:
            return httpx.Response(self.fail, json={"resourceType": "OperationOutcome", "issue": []})
        path = request.url.path.removeprefix("/fhir/")
        if path == f"Patient/{s.PATIENT_ID}":
            return httpx.Response(200, json=self.data["patient"])
        if path == "Observation" and request.url.params.get("page") == "2":
            return httpx.Response(200, json=s.searchset(s.mma_obs()))
        key = {"Observation": "observations", "MedicationRequest": "medications", "Condition": "conditions"}.get(path)
        if key is None:
            return httpx.Response(404)
        body = dict(self.data[key])
        if key == "observations" and self.pages:
            body["link"] = [{"relation": "next", "url": "https://ehr.example.org/fhir/Observation?page=2"}]
        return httpx.Response(200, json=body)


class Client:
    """Calls one app instance; each call runs its own event loop."""

    def __init__(self, config: ServiceConfig, fhir: FHIRHandler | None = None) -> None:
        self.fhir = fhir or FakeFHIR()
        self.app = create_app(config, http_client=httpx.AsyncClient(transport=httpx.MockTransport(self.fhir)))

    def __call__(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        async def go() -> httpx.Response:
            transport = httpx.ASGITransport(app=self.app)
            async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
                return await c.request(method, path, **kwargs)

        return asyncio.run(go())


@pytest.fixture
def client(config: ServiceConfig) -> Client:
    return Client(config)


def bearer(key: Any, aud: str, **kw: Any) -> dict[str, str]:
    return {"Authorization": f"Bearer {s.token(key, aud, **kw)}"}


def call(
    client: Client,
    keys: tuple[Any, Any],
    body: Any,
    *,
    service: str = s.INTERPRETATION,
    ec: bool = False,
) -> httpx.Response:
    url = f"{s.BASE}/cds-services/{service}"
    headers = bearer(keys[1], url, alg="ES384", kid=s.EC_KID) if ec else bearer(keys[0], url)
    return client("POST", f"/cds-services/{service}", json=body, headers=headers)


def cards_of(response: httpx.Response) -> list[dict[str, Any]]:
    assert response.status_code == 200, response.text
    doc = response.json()
    CDSResponse.model_validate(doc)
    assert ig_problems(doc, "structuredefinition-CDSHooksResponse.json", "CDSHooksResponse") == []
    cards: list[dict[str, Any]] = doc["cards"]
    return cards


# --- discovery -----------------------------------------------------------------------------------


def test_discovery(client: Client, keys: tuple[Any, Any]) -> None:
    r = client("GET", "/cds-services", headers=bearer(keys[0], f"{s.BASE}/cds-services"))
    assert r.status_code == 200
    doc = r.json()
    Discovery.model_validate(doc)
    services = {x["id"]: x for x in doc["services"]}
    assert services[s.INTERPRETATION]["hook"] == "patient-view"
    assert services[s.ORDER_CHECK]["hook"] == "order-select"
    for service in services.values():
        assert service["title"] and service["description"]
        prefetch = service["prefetch"]
        assert prefetch["patient"] == "Patient/{{context.patientId}}"
        assert prefetch["medications"] == "MedicationRequest?patient={{context.patientId}}&status=active"
        assert prefetch["conditions"].startswith("Condition?patient={{context.patientId}}")
        obs = prefetch["observations"]
        assert obs.startswith("Observation?patient={{context.patientId}}&code=http://loinc.org|2132-9,")
        for spec in ANALYTES.values():
            for code in spec.loinc:
                assert f"http://loinc.org|{code}" in obs
        # every result, newest first: the earlier ones are the history (RULES §8; no date
        # window can be expressed in a prefetch token)
        assert obs.endswith("&_sort=-date&_count=100")
        # prefetch tokens: only root-level context fields
        assert set(re.findall(r"\{\{([^}]*)\}\}", "".join(prefetch.values()))) == {"context.patientId"}
    # the IG's services model (prefetch is a JSON object of strings)
    for service in doc["services"]:
        service = {k: v for k, v in service.items() if k != "prefetch"}
        assert ig_problems({"services": [service]}, "structuredefinition-CDSHooksServices.json", "CDSHooksServices") == []


def test_discovery_requires_a_token_for_the_discovery_audience(client: Client, keys: tuple[Any, Any]) -> None:
    r = client("GET", "/cds-services")
    assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
    r = client("GET", "/cds-services", headers=bearer(keys[0], SERVICE_URL))
    assert r.status_code == 401 and r.json()["message"] == PUBLIC_REASON


def test_observation_codes_cover_rules_md() -> None:
    codes = observation_loincs()
    assert "13964-2" in codes and "787-2" in codes and "2276-4" in codes and "82810-3" in codes
    assert len(codes) == len(set(codes))


# --- patient-view ------------------------------------------------------------------------------


def test_patient_view_borderline_b12(client: Client, keys: tuple[Any, Any]) -> None:
    cards = cards_of(call(client, keys, s.patient_view(s.prefetch())))
    status, *findings = cards
    assert status["indicator"] == "info"  # indeterminate
    assert status["summary"].startswith("B12 status indeterminate: B12 247 pg/mL")
    assert "consider MMA" in status["summary"]
    assert "| Vitamin B12" in status["detail"] and "247 pg/mL" in status["detail"]
    assert status["source"]["url"] == f"{s.BASE}/rules/B12_INDETERMINATE"
    # the missing tests, as one-click orders
    orders = {
        a["resource"]["code"]["coding"][0]["code"]: a["resource"]
        for sug in status["suggestions"]
        for a in sug["actions"]
    }
    assert "13964-2" in orders
    mma = orders["13964-2"]
    assert mma["resourceType"] == "ServiceRequest" and mma["status"] == "draft"
    assert mma["intent"] == "proposal" and mma["subject"] == {"reference": f"Patient/{s.PATIENT_ID}"}
    assert status["selectionBehavior"] == "any"
    # one card per warning/critical finding, here the methotrexate one
    assert [c["source"]["url"].rsplit("/", 1)[1] for c in findings] == ["MACROCYTOSIS_ON_METHOTREXATE"]
    mtx = findings[0]
    assert mtx["indicator"] == "warning"
    assert "methotrexate" in mtx["summary"].lower()
    assert "| MCV | 103 fL | 103 fL | 100 fL |" in mtx["detail"]
    assert mtx["links"] == [
        {
            "label": "Rule MACROCYTOSIS_ON_METHOTREXATE: rationale and sources",
            "url": f"{s.BASE}/rules/MACROCYTOSIS_ON_METHOTREXATE",
            "type": "absolute",
        }
    ]
    uuids = [c["uuid"] for c in cards] + [x["uuid"] for c in cards for x in c.get("suggestions", [])]
    assert all(UUID.fullmatch(u) for u in uuids) and len(set(uuids)) == len(uuids)
    for card in cards:
        Card.model_validate(card)
        assert 0 < len(card["summary"]) <= SUMMARY_MAX_CHARS


def test_patient_view_with_mma_es384(client: Client, keys: tuple[Any, Any]) -> None:
    cards = cards_of(call(client, keys, s.patient_view(s.prefetch(with_mma=True)), ec=True))
    status = cards[0]
    assert status["indicator"] == "warning"  # probable
    assert status["summary"].startswith("B12 deficiency probable: B12 247 pg/mL, MMA 520 nmol/L")
    codes = [c["source"]["url"].rsplit("/", 1)[1] for c in cards[1:]]
    assert codes == ["MMA_ELEVATED", "MACROCYTOSIS_ON_METHOTREXATE"]
    assert "| MMA | 520 nmol/L | 0.52 umol/L | 0.46 umol/L |" in cards[1]["detail"]  # aged 65: older limit
    # MMA present: no MMA order offered anywhere
    offered = [
        a["resource"]["code"]["coding"][0]["code"]
        for c in cards
        for sug in c.get("suggestions", [])
        for a in sug["actions"]
    ]
    assert "13964-2" not in offered


def test_deficient_b12_is_a_warning_status(client: Client, keys: tuple[Any, Any]) -> None:
    data = s.prefetch(b12=s.b12_obs(120))
    cards = cards_of(call(client, keys, s.patient_view(data)))
    assert cards[0]["indicator"] == "warning" and cards[0]["summary"].startswith("B12 deficiency likely")
    assert any(c["source"]["url"].endswith("/B12_DEFICIENT") for c in cards[1:])


@pytest.mark.parametrize(
    "observations",
    [s.searchset(), None, s.searchset(s.observation("x", "4548-4", "Hemoglobin A1c", 6.1, "%"))],
    ids=["empty-bundle", "null", "unrelated-code"],
)
def test_no_relevant_data_no_cards(client: Client, keys: tuple[Any, Any], observations: Any) -> None:
    data = s.prefetch()
    data["observations"] = observations
    r = call(client, keys, s.patient_view(data))
    assert r.status_code == 200 and r.json() == {"cards": []}


def test_resources_of_another_patient_are_ignored(client: Client, keys: tuple[Any, Any]) -> None:
    data = s.prefetch()
    other = s.mma_obs()
    other["subject"] = {"reference": "Patient/someone-else"}
    data["observations"]["entry"].append({"resource": other})
    cards = cards_of(call(client, keys, s.patient_view(data)))
    assert cards[0]["summary"].startswith("B12 status indeterminate")
    assert "1 resource(s) naming another patient were ignored" in cards[0]["detail"]


def test_markdown_in_client_data_is_escaped(client: Client, keys: tuple[Any, Any]) -> None:
    data = s.prefetch()
    obs = data["observations"]["entry"][0]["resource"]
    obs.pop("valueQuantity")
    obs["valueString"] = "<200 pg/mL"
    cards = cards_of(call(client, keys, s.patient_view(data)))
    assert "\\<200 pg/mL" in cards[0]["detail"]
    assert "<200" not in cards[0]["detail"].replace("\\<200", "")


# --- security ------------------------------------------------------------------------------------


def _post(client: Client, headers: dict[str, str]) -> httpx.Response:
    return client("POST", f"/cds-services/{s.INTERPRETATION}", json=s.patient_view(s.prefetch()), headers=headers)


def test_missing_token(client: Client) -> None:
    r = _post(client, {})
    assert r.status_code == 401
    assert r.headers["www-authenticate"] == "Bearer"
    assert r.json()["error"] == "unauthorized" and r.json()["message"] == PUBLIC_REASON


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (lambda k: s.token(k[0], SERVICE_URL, lifetime=-60), "token expired"),
        (lambda k: s.token(k[0], ORDER_URL), "wrong audience"),
        (lambda k: s.token(k[0], "https://cds.example.org/cds-services/b12-lab-interpretation"), "wrong audience"),
        (lambda k: s.token(k[0], SERVICE_URL, iss="https://evil.example.org"), "unknown issuer"),
        (
            lambda k: jwt.encode(
                {"iss": s.ISS, "aud": SERVICE_URL, "exp": 4_000_000_000, "iat": 1, "jti": "x"},
                "", algorithm="none", headers={"kid": s.RSA_KID},
            ),
            "unsupported alg",
        ),
        (lambda k: s.token(s.rsa_key(), SERVICE_URL), "bad signature"),
        (lambda k: s.token(k[1], SERVICE_URL, alg="ES384", kid="unknown-kid"), "unknown key id"),
    ],
    ids=["expired", "other-service-aud", "other-host-aud", "unknown-issuer", "unsigned", "other-key", "unknown-kid"],
)
def test_bad_tokens(
    client: Client, keys: tuple[Any, Any], make: Callable[[Any], str], reason: str, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="b12labs.service.security"):
        r = _post(client, {"Authorization": f"Bearer {make(keys)}"})
    assert r.status_code == 401
    assert r.headers["www-authenticate"] == 'Bearer error="invalid_token"'
    # one text for every failure (no issuer/key enumeration); the reason is only in the log
    assert r.json()["message"] == PUBLIC_REASON
    assert f"rejected: {reason} " in caplog.text
    assert r.headers["content-type"] == "application/json"


def test_replayed_token(client: Client, keys: tuple[Any, Any]) -> None:
    headers = bearer(keys[1], SERVICE_URL, alg="ES384", kid=s.EC_KID)
    assert _post(client, headers).status_code == 200
    r = _post(client, headers)
    assert r.status_code == 401 and r.json()["message"] == PUBLIC_REASON


def test_allow_unauthenticated(config: ServiceConfig, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="b12labs"):
        client = Client(config.model_copy(update={"allow_unauthenticated": True}))
    assert any("authentication is DISABLED" in r.getMessage() for r in caplog.records)
    assert client("GET", "/cds-services").status_code == 200
    assert _post(client, {}).status_code == 200


# --- malformed and oversize requests ----------------------------------------------------------


def test_oversize_by_content_length(client: Client, keys: tuple[Any, Any]) -> None:
    body = b"{" + b" " * (64 * 1024) + b"}"
    r = client("POST", f"/cds-services/{s.INTERPRETATION}", content=body, headers={"Content-Type": "application/json"})
    assert r.status_code == 413  # before authentication: the declared length is enough
    assert r.json()["error"] == "payload_too_large"


def test_oversize_streamed_without_content_length(client: Client, keys: tuple[Any, Any]) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"hook": "patient-view", "pad": "'
        for _ in range(100):  # 100 KiB > 64 KiB, in 1 KiB chunks, no Content-Length
            yield b"x" * 1024
        yield b'"}'

    headers = {**bearer(keys[0], SERVICE_URL), "Content-Type": "application/json"}
    r = client("POST", f"/cds-services/{s.INTERPRETATION}", content=chunks(), headers=headers)
    assert r.status_code == 413


@pytest.mark.parametrize(
    ("body", "status", "error"),
    [
        (b'{"hook": "patient-view", ', 400, "malformed_json"),
        (b"\xff\xfe", 400, "malformed_json"),
        (b"[]", 400, "invalid_request"),
        (json.dumps({"hook": "patient-view", "context": {}}).encode(), 400, "invalid_request"),
        (json.dumps(s.patient_view(s.prefetch(), hook="order-sign")).encode(), 400, "wrong_hook"),
    ],
    ids=["truncated", "not-utf8", "array", "no-hookInstance", "wrong-hook"],
)
def test_malformed_bodies(client: Client, keys: tuple[Any, Any], body: bytes, status: int, error: str) -> None:
    headers = {**bearer(keys[0], SERVICE_URL), "Content-Type": "application/json"}
    r = client("POST", f"/cds-services/{s.INTERPRETATION}", content=body, headers=headers)
    assert r.status_code == status
    doc = r.json()
    assert doc["error"] == error and doc["message"] and doc["request_id"] == r.headers["x-request-id"]


@pytest.mark.parametrize(
    ("context", "message"),
    [
        ({"userId": "Practitioner/1"}, "context.patientId is required for this hook"),
        ({"userId": "Practitioner/1", "patientId": "../Patient?x=1"}, "context.patientId must be a FHIR id"),
        ({"patientId": s.PATIENT_ID}, "context.userId is required for this hook"),
        ({"userId": "me", "patientId": s.PATIENT_ID}, "context.userId must be a reference"),
    ],
)
def test_context_must_fit_the_hook(client: Client, keys: tuple[Any, Any], context: dict[str, Any], message: str) -> None:
    r = call(client, keys, s.patient_view(s.prefetch(), context=context))
    assert r.status_code == 400 and r.json()["error"] == "invalid_context"
    assert r.json()["message"].startswith(message)


def test_order_select_needs_draft_orders(client: Client, keys: tuple[Any, Any]) -> None:
    body = s.order_select(s.prefetch())
    del body["context"]["draftOrders"]
    r = call(client, keys, body, service=s.ORDER_CHECK)
    assert r.status_code == 400 and "draftOrders" in r.json()["message"]


def test_unknown_service_wrong_method_and_media_type(client: Client, keys: tuple[Any, Any]) -> None:
    r = client("POST", "/cds-services/nope", json=s.patient_view(s.prefetch()))
    assert r.status_code == 404 and r.json()["error"] == "unknown_service"
    r = client("GET", f"/cds-services/{s.INTERPRETATION}")
    assert r.status_code == 405 and r.json()["error"] == "method_not_allowed"
    r = client("GET", "/nowhere")
    assert r.status_code == 404 and r.json()["error"] == "not_found"
    headers = {**bearer(keys[0], SERVICE_URL), "Content-Type": "text/plain"}
    r = client("POST", f"/cds-services/{s.INTERPRETATION}", content=b"{}", headers=headers)
    assert r.status_code == 415


# --- prefetch: fetching from the FHIR server, and 412 ------------------------------------------------


def test_missing_prefetch_fetched_from_fhir_server(config: ServiceConfig, keys: tuple[Any, Any]) -> None:
    fhir = FakeFHIR()
    client = Client(config, fhir)
    cards = cards_of(call(client, keys, s.patient_view(None, fhir=True)))
    assert cards[0]["summary"].startswith("B12 status indeterminate: B12 247 pg/mL")
    assert len(fhir.requests) == 4
    for request in fhir.requests:
        assert request.headers["authorization"] == f"Bearer {s.FHIR_TOKEN}"
        assert request.headers["accept"] == "application/fhir+json"
    urls = {r.url.path: r.url for r in fhir.requests}
    assert f"/fhir/Patient/{s.PATIENT_ID}" in urls
    obs = urls["/fhir/Observation"]
    assert obs.params["patient"] == s.PATIENT_ID and "http://loinc.org|2132-9" in obs.params["code"].split(",")
    assert urls["/fhir/MedicationRequest"].params["status"] == "active"


def test_only_missing_keys_are_fetched_and_pages_followed(config: ServiceConfig, keys: tuple[Any, Any]) -> None:
    fhir = FakeFHIR()
    fhir.pages = True
    client = Client(config, fhir)
    data = s.prefetch()
    del data["observations"]
    data["conditions"] = {"resourceType": "OperationOutcome", "issue": [{"severity": "error", "code": "timeout"}]}
    cards = cards_of(call(client, keys, s.patient_view(data, fhir=True)))
    assert sorted(r.url.path for r in fhir.requests) == ["/fhir/Condition", "/fhir/Observation", "/fhir/Observation"]
    assert cards[0]["summary"].startswith("B12 deficiency probable")  # MMA came on page 2


@pytest.mark.parametrize(
    ("body", "fhir"),
    [
        (s.patient_view(None), FakeFHIR()),  # nothing prefetched, no FHIR access
        (s.patient_view({"patient": s.patient()}), FakeFHIR()),  # observations missing
        (s.patient_view(None, fhir=True), FakeFHIR(fail=500)),
        (s.patient_view(None, fhir=True), FakeFHIR(fail=401)),
        (s.patient_view(None, fhir=True, fhirServer="http://ehr.example.org/fhir"), FakeFHIR()),  # not https
    ],
    ids=["no-prefetch", "partial", "server-error", "server-401", "plain-http"],
)
def test_412_when_data_cannot_be_obtained(
    config: ServiceConfig, keys: tuple[Any, Any], body: dict[str, Any], fhir: FakeFHIR
) -> None:
    r = call(Client(config, fhir), keys, body)
    assert r.status_code == 412
    assert r.json()["error"] == "precondition_failed"
    assert "observations" in r.json()["message"] or "FHIR" in r.json()["message"]


def test_412_on_fhir_timeout(config: ServiceConfig, keys: tuple[Any, Any]) -> None:
    def timeout(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("slow", request=request)

    r = call(Client(config, timeout), keys, s.patient_view(None, fhir=True))
    assert r.status_code == 412


def test_optional_context_missing_is_said(client: Client, keys: tuple[Any, Any]) -> None:
    data = s.prefetch()
    del data["medications"], data["conditions"]
    cards = cards_of(call(client, keys, s.patient_view(data)))
    assert "Not considered (not available from the EHR): active medications, active conditions" in cards[0]["detail"]
    assert len(cards) == 1  # without methotrexate there is no warning card


# --- order-select ------------------------------------------------------------------------------


def test_order_check_repeat_b12_while_borderline(client: Client, keys: tuple[Any, Any]) -> None:
    b12 = s.draft_service_request("sr-b12", "2132-9", "Vitamin B12")
    other = s.draft_service_request("sr-cbc", "58410-2", "CBC panel")
    r = call(client, keys, s.order_select(s.prefetch(), b12, other), service=s.ORDER_CHECK)
    (card,) = cards_of(r)
    assert card["indicator"] == "warning"
    assert "MMA" in card["summary"] and len(card["summary"]) <= SUMMARY_MAX_CHARS
    assert card["selectionBehavior"] == "at-most-one"
    replace, add = card["suggestions"]
    assert replace["isRecommended"] is True
    assert [a["type"] for a in replace["actions"]] == ["delete", "create"]
    assert replace["actions"][0]["resourceId"] == "ServiceRequest/sr-b12"
    assert replace["actions"][1]["resource"]["code"]["coding"][0]["code"] == "13964-2"
    assert [a["type"] for a in add["actions"]] == ["create"]


@pytest.mark.parametrize(
    ("orders", "data"),
    [
        ([s.draft_service_request("sr-mma", "13964-2", "MMA")], s.prefetch()),  # MMA is right
        ([s.draft_service_request("sr-b12", "2132-9", "B12")], s.prefetch(with_mma=True)),  # MMA on file
        ([s.draft_service_request("sr-b12", "2132-9", "B12")], s.prefetch(b12=s.b12_obs(600))),  # not borderline
        ([s.draft_service_request("sr-cbc", "58410-2", "CBC panel")], None),  # no B12 order: no data needed
    ],
    ids=["mma-ordered", "mma-on-file", "normal-b12", "unrelated-order"],
)
def test_order_check_silent(client: Client, keys: tuple[Any, Any], orders: list[dict[str, Any]], data: Any) -> None:
    r = call(client, keys, s.order_select(data, *orders), service=s.ORDER_CHECK)
    assert r.status_code == 200 and r.json() == {"cards": []}


def test_order_check_only_looks_at_selected_orders(client: Client, keys: tuple[Any, Any]) -> None:
    b12 = s.draft_service_request("sr-b12", "2132-9", "Vitamin B12")
    body = s.order_select(s.prefetch(), b12, selections=["MedicationRequest/other"])
    assert call(client, keys, body, service=s.ORDER_CHECK).json() == {"cards": []}


# --- feedback, healthz, rules ---------------------------------------------------------------------


def test_feedback(client: Client, keys: tuple[Any, Any]) -> None:
    url = f"{SERVICE_URL}/feedback"
    body = {
        "feedback": [
            {
                "card": str(uuid.uuid4()),
                "outcome": "accepted",
                "acceptedSuggestions": [{"id": str(uuid.uuid4())}],
                "outcomeTimestamp": "2026-05-04T10:05:31Z",
            },
            {
                "card": str(uuid.uuid4()),
                "outcome": "overridden",
                "overrideReason": {"userComment": f"patient {s.FAMILY} declined"},
                "outcomeTimestamp": "2026-05-04T10:06:00Z",
            },
        ]
    }
    path = f"/cds-services/{s.INTERPRETATION}/feedback"
    r = client("POST", path, json=body, headers=bearer(keys[0], url))
    assert r.status_code == 200 and r.json() == {}
    r = client("POST", path, json=body, headers=bearer(keys[0], SERVICE_URL))  # service URL accepted too
    assert r.status_code == 200
    counts = client.app.state.service.feedback
    assert counts == {(s.INTERPRETATION, "accepted"): 2, (s.INTERPRETATION, "overridden"): 2}
    assert client("POST", path, json=body).status_code == 401
    bad = {"feedback": [{"card": "c", "outcome": "accepted", "outcomeTimestamp": "2026-05-04T10:05:31Z"}]}
    r = client("POST", path, json=bad, headers=bearer(keys[0], url))
    assert r.status_code == 400 and "acceptedSuggestions" in r.json()["message"]
    assert client("POST", "/cds-services/nope/feedback", json=body).status_code == 404


def test_healthz(client: Client) -> None:
    r = client("GET", "/healthz")
    assert r.status_code == 200 and r.json() == {"status": "ok"}  # no version to anonymous callers


def test_rule_pages(client: Client) -> None:
    r = client("GET", "/rules/B12_INDETERMINATE")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert "default-src 'none'" in r.headers["content-security-policy"]
    rule = next(x for x in CATALOGUE if x.code == "B12_INDETERMINATE")
    from html import escape

    assert escape(rule.title) in r.text and escape(rule.why) in r.text
    assert all(escape(c) in r.text for c in rule.citations())
    index = client("GET", "/rules").text
    assert all(f"rules/{x.code}" in index for x in CATALOGUE)
    assert client("GET", "/rules/NOPE").status_code == 404
    assert client("GET", "/rules/%3Cscript%3E").status_code == 404


# --- errors and logging hygiene --------------------------------------------------------------


def test_library_refusal_becomes_an_info_card(client: Client, keys: tuple[Any, Any], caplog: pytest.LogCaptureFixture) -> None:
    def refuse(resources: Any) -> Any:
        raise InvalidValueError("unknown unit", analyte="b12", reported=s.B12_TEXT)

    client.app.state.service.interpret_fhir = refuse
    with caplog.at_level(logging.DEBUG):
        cards = cards_of(call(client, keys, s.patient_view(s.prefetch())))
    assert cards[0]["indicator"] == "info" and "247 pg/mL" in cards[0]["detail"]
    assert "247" not in caplog.text


def test_unexpected_error_is_a_500_without_details(client: Client, keys: tuple[Any, Any], caplog: pytest.LogCaptureFixture) -> None:
    def boom(resources: Any) -> Any:
        raise RuntimeError(f"cannot handle {s.FAMILY} {s.B12_TEXT}")

    client.app.state.service.interpret_fhir = boom
    with caplog.at_level(logging.DEBUG):
        r = call(client, keys, s.patient_view(s.prefetch()))
    assert r.status_code == 500 and r.json()["error"] == "internal_error"
    assert s.FAMILY not in r.text
    assert "RuntimeError" in caplog.text and s.FAMILY not in caplog.text


def test_logs_carry_request_id_and_never_patient_data(
    config: ServiceConfig, keys: tuple[Any, Any], caplog: pytest.LogCaptureFixture
) -> None:
    fhir = FakeFHIR()
    client = Client(config, fhir)
    with caplog.at_level(logging.DEBUG):
        r = client(
            "POST", f"/cds-services/{s.INTERPRETATION}", json=s.patient_view(s.prefetch()),
            headers={**bearer(keys[0], SERVICE_URL), "X-Request-ID": "req-42"},
        )
        assert r.status_code == 200 and r.headers["x-request-id"] == "req-42"
        assert call(client, keys, s.patient_view(None, fhir=True)).status_code == 200
        assert call(client, keys, s.patient_view(None)).status_code == 412
        assert call(client, keys, s.patient_view(s.prefetch(), context={"userId": "Practitioner/1", "patientId": "Zyxwortle 247"})).status_code == 400
        assert _post(client, {"Authorization": "Bearer " + s.token(keys[0], SERVICE_URL, lifetime=-60)}).status_code == 401
        b12 = s.draft_service_request("sr-b12", "2132-9", "Vitamin B12")
        assert call(client, keys, s.order_select(s.prefetch(), b12), service=s.ORDER_CHECK).status_code == 200
        r = client("GET", "/healthz", headers={"X-Request-ID": "bad id\nforged"})
        assert UUID.fullmatch(str(uuid.UUID(r.headers["x-request-id"])))
    text = caplog.text
    for secret in s.SECRETS:
        assert secret not in text, secret
    access = [r.getMessage() for r in caplog.records if r.name == "b12labs.service.access"]
    assert len(access) == 7
    assert access[0].startswith("request_id=req-42 method=POST route=/cds-services/{id} service=b12-lab-interpretation status=200 duration_ms=")
    assert access[0].endswith("cards=2")
    assert " status=412 " in access[2] and " status=400 " in access[3] and " status=401 " in access[4]
    assert "forged" not in text


def test_missing_extra_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "uvicorn" else real(name, *a))
    with pytest.raises(MissingExtraError, match=r"b12labs\[service\]") as info:
        require_extra()
    assert "uvicorn" in str(info.value)


def test_sqlite_replay_cache_is_shared_between_processes(tmp_path: Path) -> None:
    from b12labs.service._security import AuthError, SQLiteReplayCache

    path = tmp_path / "jti.sqlite3"
    worker_a, worker_b = SQLiteReplayCache(path), SQLiteReplayCache(path, max_entries=3)
    try:
        worker_a.add((s.ISS, "jti-1"), expires=200.0, now=100.0)
        with pytest.raises(AuthError, match="replayed jti"):
            worker_b.add((s.ISS, "jti-1"), expires=200.0, now=150.0)
        worker_b.add(("https://other.example", "jti-1"), expires=200.0, now=150.0)  # other issuer
        worker_b.add((s.ISS, "jti-1"), expires=400.0, now=250.0)  # the first one has expired
        with pytest.raises(AuthError, match="replayed jti"):
            worker_a.add((s.ISS, "jti-1"), expires=400.0, now=260.0)
        worker_b.add((s.ISS, "jti-2"), expires=400.0, now=260.0)
        assert len(worker_a) == 3
    finally:
        worker_a.close()
        worker_b.close()


def test_prefetch_keys_of_other_services_are_ignored(client: Client, keys: tuple[Any, Any]) -> None:
    data = {**s.prefetch(), "user": "123", "hemoglobin-a1c": {"resourceType": "Bundle", "type": "searchset"}}
    cards = cards_of(call(client, keys, s.patient_view(data)))
    assert cards[0]["summary"].startswith("B12 status indeterminate")


def _serve_args(**kw: Any) -> Any:
    import argparse

    from b12labs.service._cli import add_arguments

    parser = argparse.ArgumentParser()
    add_arguments(parser)
    argv = [f"--{k.replace('_', '-')}" if v is True else f"--{k.replace('_', '-')}={v}" for k, v in kw.items()]
    return parser.parse_args(argv)


def test_cli_refuses_to_start_without_config(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    from b12labs.service._cli import run

    assert run(_serve_args()) == 2
    assert "refusing to start without --config" in capsys.readouterr().err
    bad = tmp_path / "bad.toml"
    bad.write_text('base_url = "http://cds.example.org"\nallow_unauthenticated = true\n')
    assert run(_serve_args(config=bad)) == 2
    assert "allow_unauthenticated: cannot be set in the config file" in capsys.readouterr().err
    assert run(_serve_args(config=tmp_path / "missing.toml")) == 2
    assert "config file not found" in capsys.readouterr().err


def test_app_from_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, config: ServiceConfig) -> None:
    from b12labs.service.app import (
        ENV_ALLOW_UNAUTHENTICATED,
        ENV_BASE_URL,
        ENV_CONFIG,
        ENV_REPLAY_DB,
        app_from_env,
    )

    for name in (ENV_CONFIG, ENV_ALLOW_UNAUTHENTICATED, ENV_BASE_URL, ENV_REPLAY_DB):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(RuntimeError, match=ENV_CONFIG):
        app_from_env()
    monkeypatch.setenv(ENV_ALLOW_UNAUTHENTICATED, "1")
    monkeypatch.setenv(ENV_BASE_URL, "http://127.0.0.1:9999")
    assert app_from_env().state.service.config.base_url == "http://127.0.0.1:9999"
    monkeypatch.delenv(ENV_ALLOW_UNAUTHENTICATED)
    monkeypatch.setenv(ENV_CONFIG, str(tmp_path / "service.toml"))
    monkeypatch.setenv(ENV_REPLAY_DB, str(tmp_path / "jti.sqlite3"))
    app = app_from_env()
    assert app.state.service.config == config
    assert (tmp_path / "jti.sqlite3").exists()
