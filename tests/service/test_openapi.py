"""The OpenAPI document (GET /openapi.json) and a bounded schemathesis run against it, with a
freshly signed JWT for every generated request."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, settings

from b12labs.service import create_app, load_config
from b12labs.service._cdshooks import CDSResponse, HookRequest
from tests.service import _support as s

schemathesis = pytest.importorskip("schemathesis")

KEY = s.ec_key()


def _app(folder: Path) -> Any:
    jwks = s.write_jwks(folder / "jwks.json", s.public_jwk(KEY, s.EC_KID, "ES384"))
    return create_app(load_config(s.write_config(folder, jwks)))


def test_openapi_document_describes_the_cds_endpoints(tmp_path: Path) -> None:
    doc = _app(tmp_path).openapi()
    paths = doc["paths"]
    assert set(paths) == {"/cds-services", "/cds-services/{service_id}", "/cds-services/{service_id}/feedback", "/healthz"}
    call = paths["/cds-services/{service_id}"]["post"]
    assert call["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith("/HookRequest")
    assert call["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].endswith("/CDSResponse")
    assert {"400", "401", "404", "412", "413", "415", "431", "503"} <= set(call["responses"])
    assert call["parameters"][0]["schema"]["enum"] == [s.INTERPRETATION, s.ORDER_CHECK]
    schemas = doc["components"]["schemas"]
    assert set(schemas["HookRequest"]["required"]) == set(HookRequest.model_json_schema()["required"])
    assert "cards" in schemas["CDSResponse"]["properties"] and CDSResponse
    assert doc["components"]["securitySchemes"]["cdsClientJWT"]["scheme"] == "bearer"


def _sign(case: Any) -> dict[str, str]:
    return {"Authorization": f"Bearer {s.token(KEY, s.BASE + case.formatted_path, alg='ES384', kid=s.EC_KID)}"}


def test_api_conforms_to_its_openapi_document(tmp_path: Path) -> None:
    """Every operation, a few generated requests each (bounded for CI's two cores): no 5xx,
    documented status codes, answers that match their schemas."""
    from hypothesis import given
    from schemathesis.checks import (
        not_a_server_error,
        response_schema_conformance,
        status_code_conformance,
    )

    api = schemathesis.openapi.from_asgi("/openapi.json", _app(tmp_path))
    checks = [not_a_server_error, status_code_conformance, response_schema_conformance]
    operations = [result.ok() for result in api.get_all_operations()]
    assert len(operations) == 4
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=15, derandomize=True, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck))
        def run(case: Any) -> None:
            headers = {} if case.path == "/healthz" else _sign(case)
            case.call_and_validate(headers=headers, checks=checks)

        run()
