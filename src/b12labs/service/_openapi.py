"""The OpenAPI 3.1 document of the service (``GET /openapi.json``), built from the same pydantic
models that validate the wire format, so integrators and schemathesis test what runs.

Request bodies are the models as validated (``HookRequest``, ``FeedbackRequest``); answers
are the models as produced (``Discovery``, ``CDSResponse``) and the error body every non-2xx
answer carries. The service ids are an enum. Security: a bearer JWT on every CDS endpoint.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field
from pydantic.json_schema import models_json_schema

from .._version import __version__
from ._cdshooks import CDSResponse, Discovery, FeedbackRequest, HookRequest
from ._hooks import SERVICES

__all__ = ["ErrorBody", "openapi_document"]


class ErrorBody(BaseModel):
    """Body of every error answer."""

    error: str = Field(description="machine-readable code, e.g. invalid_request")
    message: str = Field(description="human-readable reason; never patient data")
    request_id: str


_ERRORS = {
    "400": "malformed JSON or a body/context that does not fit the hook",
    "401": "missing or invalid JWT (one text for every failure)",
    "404": "unknown service id",
    "412": "required FHIR data neither prefetched nor obtainable from an allowlisted fhirServer",
    "413": "body larger than max_body_bytes",
    "415": "Content-Type is not application/json",
    "431": "request head larger than 16 KiB",
    "503": "the call's deadline passed (Retry-After)",
}


def _json(ref: str, description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{ref}"}}},
    }


def _errors(*codes: str) -> dict[str, Any]:
    return {c: _json("ErrorBody", _ERRORS[c]) for c in codes}


def openapi_document() -> dict[str, Any]:
    """The OpenAPI document (a fresh dict)."""
    _, defs = models_json_schema(
        [
            (HookRequest, "validation"),
            (FeedbackRequest, "validation"),
            (Discovery, "serialization"),
            (CDSResponse, "serialization"),
            (ErrorBody, "serialization"),
        ],
        ref_template="#/components/schemas/{model}",
    )
    schemas = defs.get("$defs", {})
    service_id = {
        "name": "service_id",
        "in": "path",
        "required": True,
        "schema": {"type": "string", "enum": sorted(SERVICES)},
    }
    secured: list[dict[str, list[str]]] = [{"cdsClientJWT": []}]
    hook_errors = _errors("400", "401", "404", "412", "413", "415", "431", "503")
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "b12labs CDS Hooks service",
            "version": __version__,
            "description": "CDS Hooks 2.0 services interpreting vitamin B12 work-up results. "
            "Decision support only, not a diagnosis.",
        },
        "paths": {
            "/cds-services": {
                "get": {
                    "operationId": "discovery",
                    "summary": "Discovery: the services and their prefetch templates",
                    "security": secured,
                    "responses": {
                        "200": _json("Discovery", "the discovery document"),
                        **_errors("401", "431"),
                    },
                }
            },
            "/cds-services/{service_id}": {
                "post": {
                    "operationId": "callService",
                    "summary": "Call a CDS Service (patient-view or order-select hook)",
                    "security": secured,
                    "parameters": [service_id],
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/json": {
                                "schema": {"$ref": "#/components/schemas/HookRequest"}
                            }
                        },
                    },
                    "responses": {"200": _json("CDSResponse", "cards"), **hook_errors},
                }
            },
            "/cds-services/{service_id}/feedback": {
                "post": {
                    "operationId": "feedback",
                    "summary": "Card feedback (only counts are kept)",
                    "security": secured,
                    "parameters": [service_id],
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/json": {
                                "schema": {"$ref": "#/components/schemas/FeedbackRequest"}
                            }
                        },
                    },
                    "responses": {
                        "200": {
                            "description": "accepted",
                            "content": {
                                "application/json": {
                                    "schema": {"type": "object", "additionalProperties": False}
                                }
                            },
                        },
                        **_errors("400", "401", "404", "413", "415", "431"),
                    },
                }
            },
            "/healthz": {
                "get": {
                    "operationId": "health",
                    "summary": "Liveness (no data, no version)",
                    "responses": {
                        "200": {
                            "description": "alive",
                            "content": {
                                "application/json": {
                                    "schema": {
                                        "type": "object",
                                        "properties": {"status": {"const": "ok"}},
                                        "required": ["status"],
                                        "additionalProperties": False,
                                    }
                                }
                            },
                        }
                    },
                }
            },
        },
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "cdsClientJWT": {
                    "type": "http",
                    "scheme": "bearer",
                    "bearerFormat": "JWT (RS384/ES384; aud = the endpoint URL)",
                }
            },
        },
    }
