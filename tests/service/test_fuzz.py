"""Fuzzing the hook endpoints: mutated official examples never get a 5xx.

Seeds: the CDS Hooks 2.0.1 spec's hook requests, our realistic requests, and the FHIR R4
example Observations/Bundles put into prefetch. Hypothesis replaces, deletes or wraps one
value anywhere in the tree with awkward JSON (wrong types, huge numbers, deep nesting, odd
URLs, non-ASCII tokens) or damages the bytes. Only 2xx and 4xx answers are acceptable.
Bounded: derandomized, a fixed number of examples, no network (the FHIR server is an
httpx.MockTransport).
"""

from __future__ import annotations

import asyncio
import copy
import json
from functools import cache
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from b12labs.service import ServiceConfig, create_app
from tests._paths import EXTERNAL
from tests.service import _support as s
from tests.service.test_app import FakeFHIR

SPEC = EXTERNAL / "cds-hooks-spec-examples"
FHIR = EXTERNAL / "fhir-r4-examples" / "examples"
FUZZ = settings(
    max_examples=150, derandomize=True, deadline=None, database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def _spec_requests() -> list[dict[str, Any]]:
    out = []
    for path in sorted(SPEC.glob("v2.0.1_*.json")) if SPEC.is_dir() else ():
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
        except ValueError:
            continue
        if isinstance(doc, dict) and "hookInstance" in doc:
            out.append(doc)
    return out


def _fhir_examples() -> list[dict[str, Any]]:
    return [json.loads(p.read_text(encoding="utf-8")) for p in sorted(FHIR.glob("*.json"))] if FHIR.is_dir() else []


@cache
def seeds() -> tuple[str, ...]:
    docs: list[dict[str, Any]] = [*_spec_requests()]
    docs.append(s.patient_view(s.prefetch(with_mma=True)))
    docs.append(s.patient_view(None, fhir=True))
    b12 = s.draft_service_request("sr-b12", "2132-9", "Vitamin B12")
    docs.append(s.order_select(s.prefetch(), b12))
    examples = _fhir_examples()
    if examples:
        data = s.prefetch()
        data["observations"]["entry"] += [{"resource": r} for r in examples if r.get("resourceType") == "Observation"]
        docs.append(s.patient_view(data))
        for bundle in (r for r in examples if r.get("resourceType") == "Bundle"):
            docs.append(s.patient_view({"patient": s.patient(), "observations": bundle}))
    return tuple(json.dumps(d) for d in docs)


NASTY = st.one_of(
    st.sampled_from([
        None, True, 0, -1, 5, 1e308, -1e-308, 10**200, "", "x", [], {}, [[]], [{}], {"": {}},
        "http://[::1/x", "https://ehr.example.org:99999/fhir", "https://ehr.example.org/" + "a" * 100_000,
        "tökén-ünïcode", "Bearer", "Patient/../x", "2132-9", {"coding": 5}, {"coding": [5, "x"]},
        "OperationOutcome", "Bundle", "ServiceRequest", {"resourceType": "Bundle", "entry": 5},
        {"resourceType": []}, {"resourceType": {}}, "NaN", "-5", "9" * 4000,
    ]),
    st.text(max_size=20),
    st.integers(),
    st.floats(allow_nan=False, allow_infinity=False),
    st.recursive(st.none() | st.integers() | st.text(max_size=5), lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=5), c, max_size=3), max_leaves=10),
)


def _paths(doc: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(doc, dict):
        for k, v in doc.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            out += _paths(v, (*prefix, i))
    return out


def _mutate(doc: Any, path: tuple[Any, ...], how: str, value: Any) -> Any:
    if not path:
        return value if how == "replace" else [doc]
    parent = doc
    for key in path[:-1]:
        parent = parent[key]
    last = path[-1]
    if how == "delete" and isinstance(parent, dict):
        del parent[last]
    elif how == "wrap":
        parent[last] = [parent[last]]
    elif how == "deep":
        nested: Any = parent[last]
        for _ in range(1200):
            nested = [nested]
        parent[last] = nested
    else:
        parent[last] = value
    return doc


@cache
def app() -> Any:
    # authentication off, so every example reaches the body handling (JWT has its own fuzz
    # tests); the fixture FHIR server is allowlisted so fetching and paging run too
    config = ServiceConfig(
        base_url=s.BASE, allow_unauthenticated=True, fhir_servers=(s.FHIR_SERVER,), max_body_bytes=256 * 1024
    )
    fhir = FakeFHIR()
    fhir.pages = True
    return create_app(config, http_client=httpx.AsyncClient(transport=httpx.MockTransport(fhir)))


def post(body: bytes, service: str = s.INTERPRETATION, ctype: str = "application/json") -> httpx.Response:
    async def go() -> httpx.Response:
        transport = httpx.ASGITransport(app=app())
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
            return await c.post(f"/cds-services/{service}", content=body, headers={"Content-Type": ctype})

    return asyncio.run(go())


def _encode(doc: Any) -> bytes:
    try:
        return json.dumps(doc).encode()
    except (ValueError, RecursionError):  # a mutation json cannot even write
        return b"[]"


@pytest.mark.skipif(not SPEC.is_dir(), reason="CDS Hooks spec examples not available")
@FUZZ
@given(data=st.data())
def test_mutated_requests_never_get_a_5xx(data: st.DataObject) -> None:
    seed = data.draw(st.sampled_from(seeds()), label="seed")
    doc = json.loads(seed)
    path = data.draw(st.sampled_from(_paths(doc)), label="path")
    how = data.draw(st.sampled_from(["replace", "replace", "replace", "delete", "wrap", "deep"]), label="how")
    value = data.draw(NASTY, label="value")
    body = _encode(_mutate(copy.deepcopy(doc), path, how, value))
    service = s.ORDER_CHECK if '"order-select"' in seed else s.INTERPRETATION
    r = post(body, service)
    assert r.status_code < 500, (path, how, r.text)
    assert r.headers["content-type"] == "application/json"


@pytest.mark.skipif(not SPEC.is_dir(), reason="CDS Hooks spec examples not available")
@FUZZ
@given(data=st.data())
def test_damaged_bytes_never_get_a_5xx(data: st.DataObject) -> None:
    raw = bytearray(data.draw(st.sampled_from(seeds()), label="seed").encode())
    for _ in range(data.draw(st.integers(1, 4), label="edits")):
        at = data.draw(st.integers(0, len(raw) - 1), label="at")
        raw[at : at + data.draw(st.integers(0, 3))] = data.draw(st.binary(max_size=3), label="bytes")
    r = post(bytes(raw))
    assert r.status_code < 500, r.text
