"""Hardening of the hook endpoints: FHIR server allowlist (SSRF), bounded work, strict JSON."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from b12labs.service import ConfigError, ServiceConfig, load_config
from b12labs.service._config import normalise_fhir_base
from b12labs.service._limits import JSONLimitError, loads_limited
from b12labs.service._prefetch import PUBLIC_412
from tests.service import _support as s
from tests.service.test_app import Client, FakeFHIR, call, cards_of, config, keys  # noqa: F401

# --- allowlist -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "server",
    [
        "https://evil.example.org/fhir",  # another host
        "https://ehr.example.org/fhir2",  # another path on the allowed host
        "https://ehr.example.org/fhir/../admin",
        "https://ehr.example.org:8443/fhir",  # another port
        "http://ehr.example.org/fhir",  # plain http
        "http://127.0.0.1:6379/fhir",  # loopback without the development setting
        "https://user:pw@ehr.example.org/fhir",
        "https://ehr.example.org/fhir?x=1",
        "http://[::1/x",
        "https://ehr.example.org:99999/fhir",
        "https://ehr.example.org/" + "a" * 3000,
    ],
)
def test_fhir_server_must_be_allowlisted(config: ServiceConfig, keys: Any, server: str) -> None:  # noqa: F811
    fhir = FakeFHIR()
    r = call(Client(config, fhir), keys, s.patient_view(None, fhir=True, fhirServer=server))
    assert r.status_code in (400, 412), r.text
    if r.status_code == 412:
        assert r.json()["message"] == PUBLIC_412
    assert fhir.requests == []


def test_allowlisted_server_normalised(config: ServiceConfig, keys: Any) -> None:  # noqa: F811
    fhir = FakeFHIR()
    body = s.patient_view(None, fhir=True, fhirServer="HTTPS://EHR.example.org:443/fhir/")
    assert cards_of(call(Client(config, fhir), keys, body))
    assert len(fhir.requests) == 4


def test_next_links_stay_under_the_base_path(config: ServiceConfig, keys: Any) -> None:  # noqa: F811
    fhir = FakeFHIR()
    data = s.prefetch()
    outside = ["https://ehr.example.org/admin/Observation?page=2", "https://ehr.example.org/fhir/../x",
               "https://ehr.example.org/fhir/%2e%2e/x", "https://other.example.org/fhir/Observation?page=2"]
    for link in outside:
        data["observations"]["link"] = [{"relation": "next", "url": link}]
        cards_of(call(Client(config, fhir), keys, s.patient_view(data, fhir=True)))
    assert fhir.requests == []
    data["observations"]["link"] = [{"relation": "next", "url": "Observation?page=2"}]
    cards = cards_of(call(Client(config, fhir), keys, s.patient_view(data, fhir=True)))
    assert [r.url.path for r in fhir.requests] == ["/fhir/Observation"]
    assert cards[0]["summary"].startswith("B12 deficiency probable")  # MMA came on page 2


def test_redirects_are_refused(config: ServiceConfig, keys: Any) -> None:  # noqa: F811
    seen: list[str] = []

    def redirect(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url))
        return httpx.Response(302, headers={"Location": "http://169.254.169.254/latest"})

    r = call(Client(config, redirect), keys, s.patient_view(None, fhir=True))
    assert r.status_code == 412 and r.json()["message"] == PUBLIC_412
    assert all("169.254" not in u for u in seen)


def test_loopback_needs_the_development_setting(tmp_path: Path) -> None:
    jwks = s.write_jwks(tmp_path / "j.json", s.public_jwk(s.ec_key(), s.EC_KID, "ES384"))
    path = s.write_config(tmp_path, jwks, fhir_servers=("http://127.0.0.1:9000/fhir",))
    with pytest.raises(ConfigError, match="allow_loopback_fhir"):
        load_config(path)
    loaded = load_config(path, allow_loopback_fhir=True)
    assert loaded.fhir_allowlist(s.ISS) == {"http://127.0.0.1:9000/fhir"}
    assert loaded.fhir_allowlist("https://someone-else.example") == frozenset()
    with pytest.raises(ConfigError, match="https"):
        load_config(s.write_config(tmp_path, jwks, fhir_servers=("http://ehr.example.org/fhir",)))
    # unauthenticated mode: the top-level list (or --fhir-server), nothing else
    dev = ServiceConfig(base_url=s.BASE, allow_unauthenticated=True, fhir_servers=("https://a.example/r4",))
    assert dev.fhir_allowlist(None) == {"https://a.example/r4"}
    assert ServiceConfig(base_url=s.BASE, fhir_servers=("https://a.example/r4",)).fhir_allowlist(None) == frozenset()


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://A.example/r4/", "https://a.example/r4"),
        ("https://a.example:443/r4", "https://a.example/r4"),
        ("http://[::1]:8080/fhir", "http://[::1]:8080/fhir"),
        ("https://a.example/r4/./x", None),
        ("https://a.example/r4%2F..", None),
        ("ftp://a.example/r4", None),
        ("https://a.example:0x50/r4", None),
        ("https://a.example/r4\u00e9", None),
    ],
)
def test_normalise_fhir_base(url: str, expected: str | None) -> None:
    assert normalise_fhir_base(url) == expected


# --- bounded work --------------------------------------------------------------------------------


def test_huge_pages_are_cut_off_by_the_byte_budget(config: ServiceConfig, keys: Any) -> None:  # noqa: F811
    big = json.dumps(s.searchset(*[s.mcv_obs() for _ in range(200)])).encode()
    pages: list[int] = []

    def huge(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith(f"Patient/{s.PATIENT_ID}"):
            return httpx.Response(200, json=s.patient())
        pages.append(1)
        doc = json.loads(big)
        doc["link"] = [{"relation": "next", "url": f"{s.FHIR_SERVER}/Observation?page={len(pages) + 1}"}]
        return httpx.Response(200, content=json.dumps(doc).encode())

    small = config.model_copy(update={"max_fhir_bytes": 3 * len(big)})
    t0 = time.perf_counter()
    r = call(Client(small, huge), keys, s.patient_view({"patient": s.patient()}, fhir=True))
    assert r.status_code == 412 and r.json()["message"] == PUBLIC_412
    assert len(pages) <= 6 and time.perf_counter() - t0 < 5  # 3 pages + what passed the cap


def test_page_and_resource_caps(config: ServiceConfig, keys: Any) -> None:  # noqa: F811
    fhir = FakeFHIR()
    fhir.pages = True
    one_page = config.model_copy(update={"max_fhir_pages": 1})
    data = s.prefetch()
    del data["observations"]
    cards = cards_of(call(Client(one_page, fhir), keys, s.patient_view(data, fhir=True)))
    assert len(fhir.requests) == 1 and cards  # page 2 never asked for
    few = config.model_copy(update={"max_resources": 3})
    r = call(Client(few), keys, s.patient_view(s.prefetch()))
    assert r.status_code == 412


def test_call_deadline_covers_interpretation(config: ServiceConfig, keys: Any) -> None:  # noqa: F811
    client = Client(config.model_copy(update={"call_deadline_seconds": 0.5}))
    release = threading.Event()
    real = client.app.state.service.interpret_fhir

    def slow(resources: Any) -> Any:
        release.wait(5)
        return real(resources)

    client.app.state.service.interpret_fhir = slow
    t0 = time.perf_counter()
    r = call(client, keys, s.patient_view(s.prefetch()))
    release.set()
    assert r.status_code == 503 and r.json()["error"] == "deadline_exceeded"
    assert r.headers["retry-after"] == "5"
    assert time.perf_counter() - t0 < 3


def test_healthz_answers_while_interpretation_runs(config: ServiceConfig, keys: Any) -> None:  # noqa: F811
    import asyncio

    client = Client(config)
    started, release = threading.Event(), threading.Event()
    real = client.app.state.service.interpret_fhir

    def slow(resources: Any) -> Any:
        started.set()
        release.wait(5)
        return real(resources)

    client.app.state.service.interpret_fhir = slow
    url = f"{s.BASE}/cds-services/{s.INTERPRETATION}"

    async def go() -> tuple[int, float, int]:
        transport = httpx.ASGITransport(app=client.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
            hook = asyncio.create_task(
                c.post(f"/cds-services/{s.INTERPRETATION}", json=s.patient_view(s.prefetch()),
                       headers={"Authorization": f"Bearer {s.token(keys[0], url)}"})
            )
            while not started.is_set():
                await asyncio.sleep(0.01)
            t0 = time.perf_counter()
            health = await c.get("/healthz")
            took = time.perf_counter() - t0
            release.set()
            return health.status_code, took, (await hook).status_code

    health, took, hook = asyncio.run(go())
    assert health == 200 and took < 1.0 and hook == 200


# --- strict JSON ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    [b"[" * 2000 + b"]" * 2000, b'{"a": ' + b"9" * 4000 + b"}", b'{"a": 1e999}', b'{"a": NaN}',
     b'{"a": "\xff"}', b'{"a": -Infinity}', b'{"a": 0.' + b"1" * 100 + b"}",
     b'{"a\\\\": ' + b"[" * 100 + b"]" * 100 + b"}"],
    ids=["deep", "long-int", "overflow", "nan", "not-utf8", "infinity", "long-float", "deep-after-escape"],
)
def test_json_limits(raw: bytes) -> None:
    with pytest.raises(JSONLimitError):
        loads_limited(raw)


def test_json_limits_leave_normal_documents_alone() -> None:
    doc = {"a": [1, 2.5, -3e-7, {"b": "[[[[{{{{ \\\" ]] NaN 1e999 " + "9" * 40}], "c": None, "d": True,
           "e\\": "x\\", "f": "\\\\\""}
    assert loads_limited(json.dumps(doc).encode()) == doc
    assert loads_limited(b'"[[["') == "[[["


@pytest.mark.parametrize(
    "ctype", ["application/jsonfoo", "application/json-patch", "text/json", "application/x-www-form-urlencoded"]
)
def test_content_type_is_matched_exactly(config: ServiceConfig, keys: Any, ctype: str) -> None:  # noqa: F811
    url = f"{s.BASE}/cds-services/{s.INTERPRETATION}"
    r = Client(config)(
        "POST", f"/cds-services/{s.INTERPRETATION}", content=json.dumps(s.patient_view(s.prefetch())),
        headers={"Authorization": f"Bearer {s.token(keys[0], url)}", "Content-Type": ctype},
    )
    assert r.status_code == 415


@pytest.mark.parametrize("ctype", ["application/json", "application/json; charset=utf-8", "Application/JSON",
                                   "application/fhir+json"])
def test_json_media_types_accepted(config: ServiceConfig, keys: Any, ctype: str) -> None:  # noqa: F811
    url = f"{s.BASE}/cds-services/{s.INTERPRETATION}"
    r = Client(config)(
        "POST", f"/cds-services/{s.INTERPRETATION}", content=json.dumps(s.patient_view(s.prefetch())),
        headers={"Authorization": f"Bearer {s.token(keys[0], url)}", "Content-Type": ctype},
    )
    assert r.status_code == 200


# --- nothing dropped silently --------------------------------------------------------------------


def _bad_b12(kind: str) -> dict[str, Any]:
    o = s.b12_obs()
    if kind == "negative":
        o["valueQuantity"]["value"] = -5
    elif kind == "nan":
        o["valueQuantity"]["value"] = "NaN"
    elif kind == "bananas":
        o["valueQuantity"].update(unit="bananas", code="bananas")
    elif kind == "value-string":
        del o["valueQuantity"]
        o["valueString"] = "about two hundred"
    elif kind == "date":
        o["effectiveDateTime"], o["issued"] = "yesterday", "soon"
    return o


@pytest.mark.parametrize("kind", ["negative", "nan", "bananas", "value-string", "date"])
@pytest.mark.parametrize("alone", [True, False], ids=["alone", "with-others"])
def test_unusable_result_gets_a_card(config: ServiceConfig, keys: Any, kind: str, alone: bool) -> None:  # noqa: F811
    data = s.prefetch(b12=_bad_b12(kind))
    if alone:
        data["observations"] = s.searchset(_bad_b12(kind))
    cards = cards_of(call(Client(config), keys, s.patient_view(data)))
    flagged = [c for c in cards if "could not be used" in c["summary"]]
    assert len(flagged) == 1, [c["summary"] for c in cards]
    card = flagged[0]
    assert card["indicator"] == "warning" and "B12" in card["summary"]
    assert "Observation/b12-1" in card["detail"] and "not used" in card["detail"]
    reason_row = next(line for line in card["detail"].splitlines() if "b12-1" in line)
    assert len(reason_row.split("|")[3].strip()) > 5  # a reason is given


def test_conflicting_results_are_not_used(config: ServiceConfig, keys: Any) -> None:  # noqa: F811
    low, high = s.b12_obs(150), s.b12_obs(400)
    high["id"] = "b12-2"
    data = s.prefetch()
    data["observations"] = s.searchset(low, high, s.mcv_obs())
    cards = cards_of(call(Client(config), keys, s.patient_view(data)))
    conflict = [c for c in cards if c["summary"].startswith("Result conflict")]
    assert len(conflict) == 1 and conflict[0]["indicator"] == "warning"
    assert "b12-1" in conflict[0]["detail"] and "b12-2" in conflict[0]["detail"]
    # neither value was used: no B12 status is claimed from either
    assert not cards[0]["summary"].startswith(("B12 deficiency unlikely", "B12 deficiency likely"))
    assert "| Vitamin B12" not in cards[0]["detail"]  # not among the values used
    # the same value twice (e.g. in two units) is not a conflict
    same = s.b12_obs(247, "pg/mL")
    twin = s.b12_obs(182.2, "pmol/L")
    twin["id"] = "b12-2"
    data["observations"] = s.searchset(same, twin)
    cards = cards_of(call(Client(config), keys, s.patient_view(data)))
    assert not any(c["summary"].startswith("Result conflict") for c in cards)


# --- the malformed inputs that used to give a 500 ---------------------------------------------------


def _case(name: str) -> tuple[str, bytes]:
    b12 = s.draft_service_request("sr-b12", "2132-9", "Vitamin B12")
    body: Any = s.patient_view(s.prefetch())
    service = s.INTERPRETATION
    if name == "deep":
        return service, b'{"hook": "patient-view", "context": ' + b"[" * 1500 + b"]" * 1500 + b"}"
    if name == "long-number":
        raw = json.dumps(body).replace('"value": 247', '"value": ' + "9" * 4000)
        return service, raw.encode()
    if name in ("rtype-list", "rtype-object"):
        body["prefetch"]["observations"]["entry"][0]["resource"]["resourceType"] = [] if name == "rtype-list" else {}
    elif name == "entry-5":
        body["prefetch"]["observations"]["entry"] = 5
    elif name == "status-list":
        body["prefetch"]["observations"]["entry"][0]["resource"]["status"] = []
    elif name in ("draft-code-string", "draft-coding-number"):
        b12["code"] = "2132-9" if name == "draft-code-string" else {"coding": [5, 6.5]}
        body, service = s.order_select(s.prefetch(), b12), s.ORDER_CHECK
    elif name in ("server-bracket", "server-port", "server-long", "token-unicode"):
        body = s.patient_view(None, fhir=True)
        if name == "token-unicode":
            body["fhirAuthorization"]["access_token"] = "tökén"
        else:
            body["fhirServer"] = {"server-bracket": "http://[::1/x", "server-port": "https://ehr.example.org:99999/fhir",
                                  "server-long": "https://ehr.example.org/" + "a" * 100_000}[name]
    return service, json.dumps(body).encode()


@pytest.mark.parametrize(
    "name",
    ["deep", "long-number", "rtype-list", "rtype-object", "entry-5", "status-list", "draft-code-string",
     "draft-coding-number", "server-bracket", "server-port", "server-long", "token-unicode"],
)
def test_formerly_500_inputs(config: ServiceConfig, keys: Any, name: str) -> None:  # noqa: F811
    service, raw = _case(name)
    big = config.model_copy(update={"max_body_bytes": 1024 * 1024})
    url = f"{s.BASE}/cds-services/{service}"
    r = Client(big)(
        "POST", f"/cds-services/{service}", content=raw,
        headers={"Authorization": f"Bearer {s.token(keys[0], url)}", "Content-Type": "application/json"},
    )
    assert 200 <= r.status_code < 500, r.text
    assert r.headers["content-type"] == "application/json"


def test_a_page_that_cannot_fit_is_refused_before_parsing() -> None:
    from b12labs.service._prefetch import _RESOURCE_KEY

    page = json.dumps(s.searchset(s.b12_obs(), s.mcv_obs(), s.ferritin_obs())).encode()
    assert len(_RESOURCE_KEY.findall(page)) == 3
    assert len(_RESOURCE_KEY.findall(b'{"a": "{\\"resource\\": 1}", "resource": {}}')) == 1  # not inside strings
