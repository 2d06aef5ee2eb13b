"""The CDS Hooks 2.0 service as a FastAPI application: :func:`create_app`.

Endpoints (``{id}`` is ``b12-lab-interpretation`` or ``b12-order-check``):

=============================================  ====================================================
``GET  /cds-services``                         discovery (JWT, ``aud = {base_url}/cds-services``)
``POST /cds-services/{id}``                    hook call -> ``{"cards": [...]}`` (JWT, ``aud`` =
                                               the endpoint URL)
``POST /cds-services/{id}/feedback``           card feedback; only counts are kept (JWT, ``aud`` =
                                               the feedback URL or the service URL)
``GET  /healthz``                              liveness, no authentication, no data
``GET  /openapi.json``                         OpenAPI 3.1 document of these endpoints
``GET  /rules``, ``GET /rules/{CODE}``         rule pages that cards link to (HTML, public)
=============================================  ====================================================

Status codes: 200; 400 malformed JSON (or past the depth/number limits of :mod:`._limits`),
a body that is not a hook request, a ``hook`` other than the service's, or a context that
does not fit the hook; 401 missing/invalid JWT (with ``WWW-Authenticate: Bearer``; one text
for every failure); 404 unknown service id or path; 405 wrong method; 412 required FHIR data
neither prefetched nor obtainable from an allowlisted ``fhirServer`` (one text; the detail is
logged); 413 body larger than ``max_body_bytes`` (declared ``Content-Length`` or counted while
streaming); 415 a ``Content-Type`` other than ``application/json`` / ``application/*+json``;
431 a request head over 16 KiB; 503 the call's deadline passed during interpretation; 500
unexpected errors. Every error body is JSON: ``{"error": <code>, "message": <text>, "request_id": <id>}``.

Logging (logger ``b12labs.service``): one access line per request with the request id (taken
from a well-formed ``X-Request-ID`` header or generated, and echoed back), method, route
template, service id, status and duration. Patient data is never logged: no bodies, no query
strings, no context ids, no exception messages from the interpretation (they may quote a
result), no tokens. Unexpected exceptions are logged as their type and stack frames only.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
import traceback
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from typing import Any, Final, Protocol

import httpx
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, Response
from pydantic import ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .._version import __version__
from ..errors import B12LabsError, ServiceError
from ..models import Interpretation
from ._cards import (
    Unusable,
    error_card,
    interpretation_cards,
    order_check_card,
    service_requests_by_loinc,
)
from ._cdshooks import Card, CDSResponse, FeedbackRequest, HookRequest
from ._config import ServiceConfig
from ._hooks import (
    B12_RETEST_LOINCS,
    MMA_LOINC,
    SERVICES,
    HookContextError,
    ServiceDef,
    discovery,
    validate_context,
)
from ._limits import MAX_HEADER_BYTES, JSONLimitError, loads_limited
from ._openapi import openapi_document
from ._prefetch import PUBLIC_412, Collected, Limits, PreconditionFailed, collect
from ._rules_page import HTML_HEADERS, rule_page, rules_index
from ._security import PUBLIC_REASON, AuthError, JWTVerifier

__all__ = [
    "ENV_ALLOW_LOOPBACK_FHIR",
    "ENV_ALLOW_UNAUTHENTICATED",
    "ENV_BASE_URL",
    "ENV_CONFIG",
    "ENV_FHIR_SERVERS",
    "ENV_REPLAY_DB",
    "app_from_env",
    "create_app",
]

_log = logging.getLogger("b12labs.service")
_access = logging.getLogger("b12labs.service.access")

#: Environment variables read by :func:`app_from_env` (set by ``b12labs serve`` for workers).
ENV_CONFIG: Final = "B12LABS_SERVICE_CONFIG"
ENV_ALLOW_UNAUTHENTICATED: Final = "B12LABS_SERVICE_ALLOW_UNAUTHENTICATED"
ENV_BASE_URL: Final = "B12LABS_SERVICE_BASE_URL"
ENV_REPLAY_DB: Final = "B12LABS_SERVICE_REPLAY_DB"
ENV_FHIR_SERVERS: Final = "B12LABS_SERVICE_FHIR_SERVERS"
ENV_ALLOW_LOOPBACK_FHIR: Final = "B12LABS_SERVICE_ALLOW_LOOPBACK_FHIR"

_REQUEST_ID: Final = re.compile(r"[A-Za-z0-9._:\-]{1,128}")
#: ``application/json`` or ``application/<x>+json``, exactly, optionally with parameters.
_JSON_TYPES: Final = re.compile(
    r"application/(?:[a-z0-9!#$&^_.-]+\+)?json[ \t]*(?:;.*)?", re.IGNORECASE | re.DOTALL
)
_API_HEADERS: Final = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"}


class _InterpretFHIR(Protocol):
    def __call__(self, resources: Any, /) -> Interpretation: ...


class _ToFHIR(Protocol):
    def __call__(self, interpretation: Interpretation, /, *, subject: str) -> dict[str, Any]: ...


class MissingConfigError(ServiceError, RuntimeError):
    """The service was started without a configuration (a RuntimeError, as before)."""

    code = "service-config-invalid"


class Problem(ServiceError):
    """An HTTP error answer with a JSON body (message is safe to return and log)."""

    def __init__(
        self, status: int, code: str, message: str, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.problem = code  # the JSON body's code; ``self.code`` is the registry's
        self.message = message
        self.headers = headers or {}


def _json(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    body = json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    return Response(
        body,
        status_code=status,
        media_type="application/json",
        headers={**_API_HEADERS, **(headers or {})},
    )


def _error(
    status: int, code: str, message: str, request_id: str, headers: dict[str, str] | None = None
) -> Response:
    return _json({"error": code, "message": message, "request_id": request_id}, status, headers)


def _info(request: Request) -> dict[str, Any]:
    info: dict[str, Any] = request.scope.setdefault("b12labs", {"request_id": "-"})
    return info


# --- ASGI middleware: request id, timing, access log, last-resort error handling -----------------


class _RequestLog:
    """Pure ASGI middleware (no BaseHTTPMiddleware overhead)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        request_id = None
        for name, value in scope.get("headers", ()):
            if name == b"x-request-id":
                text = value.decode("latin-1")
                if _REQUEST_ID.fullmatch(text):
                    request_id = text
                break
        request_id = request_id or uuid.uuid4().hex
        info: dict[str, Any] = {"request_id": request_id, "route": "-", "service": "-"}
        scope["b12labs"] = info
        head = len(scope.get("raw_path") or b"") + len(scope.get("query_string") or b"")
        head += sum(len(n) + len(v) + 4 for n, v in scope.get("headers", ()))
        if head > MAX_HEADER_BYTES:
            # h11 checks the size only while a head is incomplete; one that arrived whole
            # is refused here, with the same answer.
            too_large = _error(
                431,
                "headers_too_large",
                f"request head larger than {MAX_HEADER_BYTES} bytes",
                request_id,
                {"Connection": "close"},
            )
            await too_large(scope, receive, send)
            _access.info("request_id=%s method=%s route=- status=431", request_id, "-")
            return
        status = 500
        started = False

        async def send_wrapper(message: Message) -> None:
            nonlocal status, started
            if message["type"] == "http.response.start":
                started = True
                status = message["status"]
                headers = list(message.get("headers", ()))
                headers.append((b"x-request-id", request_id.encode("latin-1")))
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        except Exception as exc:
            # Type and frames only: messages of library errors can quote patient results.
            _log.error(
                "unhandled %s (request_id=%s)\n%s",
                type(exc).__name__,
                request_id,
                "".join(traceback.format_tb(exc.__traceback__)),
            )
            if not started:
                response = _error(500, "internal_error", "internal server error", request_id)
                await response(scope, receive, send_wrapper)
        finally:
            _access.info(
                "request_id=%s method=%s route=%s service=%s status=%d duration_ms=%.1f%s",
                request_id,
                scope.get("method", "-"),
                info.get("route", "-"),
                info.get("service", "-"),
                status,
                (time.perf_counter() - start) * 1000.0,
                f" cards={info['cards']}" if "cards" in info else "",
            )


# --- the application -----------------------------------------------------------------------------


def _fhir_functions() -> tuple[_InterpretFHIR, _ToFHIR]:
    from ..fhir import interpret_fhir, to_fhir

    return interpret_fhir, to_fhir


class _Service:
    """State and request handling of one app instance."""

    def __init__(
        self,
        config: ServiceConfig,
        *,
        http_client: httpx.AsyncClient | None,
        clock: Callable[[], float],
        replay_db: str | None,
    ) -> None:
        self.config = config
        self._client = http_client
        self._own_client = http_client is None
        self.verifier = JWTVerifier(config, clock=clock, replay_db=replay_db)
        self.interpret_fhir, self.to_fhir = _fhir_functions()
        self.warm_up()
        _ = self.client  # open it now (imports, CA bundle), not in the first request
        # Interpretation is CPU work: a bounded pool keeps it off the event loop, so /healthz
        # and other calls are answered while it runs.
        self.pool = ThreadPoolExecutor(
            max_workers=config.interpret_concurrency, thread_name_prefix="b12labs-interpret"
        )
        self.feedback: Counter[tuple[str, str]] = Counter()
        self.discovery = json.dumps(discovery(), separators=(",", ":")).encode("utf-8")

    def warm_up(self) -> None:
        """Build the FHIR models and pint factors now (about a second, once per process),
        not during the first clinical request."""
        sample = [
            {"resourceType": "Patient", "id": "warm-up", "birthDate": "1970-01-01"},
            {
                "resourceType": "Observation",
                "status": "final",
                "code": {"coding": [{"system": "http://loinc.org", "code": "2132-9"}]},
                "subject": {"reference": "Patient/warm-up"},
                "effectiveDateTime": "2020-01-01",
                "valueQuantity": {
                    "value": 250,
                    "unit": "pg/mL",
                    "system": "http://unitsofmeasure.org",
                    "code": "pg/mL",
                },
            },
            {
                "resourceType": "MedicationRequest",
                "status": "active",
                "intent": "order",
                "medicationCodeableConcept": {"text": "metformin"},
                "subject": {"reference": "Patient/warm-up"},
            },
            {
                "resourceType": "Condition",
                "clinicalStatus": {
                    "coding": [
                        {
                            "system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
                            "code": "active",
                        }
                    ]
                },
                "code": {"coding": [{"system": "http://snomed.info/sct", "code": "69896004"}]},
                "subject": {"reference": "Patient/warm-up"},
            },
        ]
        interp = self.interpret_fhir(sample)
        requests = service_requests_by_loinc(self.to_fhir(interp, subject="Patient/warm-up"))
        cards = interpretation_cards(
            interp, base_url=self.config.base_url, service_requests=requests
        )
        CDSResponse(cards=cards).to_wire()
        HookRequest.model_validate(
            {"hook": "patient-view", "hookInstance": "warm-up", "context": {}, "prefetch": {}}
        )

    @property
    def client(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(
                timeout=self.config.fhir_timeout_seconds,
                limits=httpx.Limits(max_connections=50, max_keepalive_connections=10),
                headers={"User-Agent": f"b12labs/{__version__}"},
            )
        return self._client

    async def aclose(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)
        self.verifier.close()
        if self._own_client and self._client is not None:
            await self._client.aclose()
            self._client = None

    # -- building blocks --

    async def authenticate(self, request: Request, audiences: Sequence[str]) -> str | None:
        """The verified ``iss`` (None when authentication is off); Problem 401 otherwise."""
        if self.config.allow_unauthenticated:
            return None
        try:
            claims = await self.verifier.verify(request.headers.get("authorization"), audiences)
        except AuthError as exc:
            challenge = (
                "Bearer" if exc.reason == "missing bearer token" else 'Bearer error="invalid_token"'
            )
            # One text for every failure (the reason is in the verifier's log line).
            raise Problem(
                401, "unauthorized", PUBLIC_REASON, {"WWW-Authenticate": challenge}
            ) from None
        iss: str = claims["iss"]
        return iss

    def check_declared_length(self, request: Request) -> None:
        declared = request.headers.get("content-length")
        if declared is None:
            return
        if not declared.isdigit():
            raise Problem(400, "bad_request", "invalid Content-Length")
        if int(declared) > self.config.max_body_bytes:
            raise Problem(
                413, "payload_too_large", f"body exceeds {self.config.max_body_bytes} bytes"
            )

    async def read_json(self, request: Request) -> Any:
        ctype = request.headers.get("content-type")
        if ctype is not None and not _JSON_TYPES.fullmatch(ctype.strip()):
            raise Problem(415, "unsupported_media_type", "the body must be application/json")
        limit = self.config.max_body_bytes
        chunks: list[bytes] = []
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise Problem(413, "payload_too_large", f"body exceeds {limit} bytes")
            chunks.append(chunk)
        try:
            return loads_limited(b"".join(chunks))
        except JSONLimitError as exc:
            raise Problem(400, "malformed_json", f"the body is not usable JSON: {exc}") from None

    def service(self, request: Request, service_id: str) -> ServiceDef:
        service = SERVICES.get(service_id)
        if service is None:
            raise Problem(
                404, "unknown_service", "no CDS Service with this id (see GET /cds-services)"
            )
        _info(request)["service"] = service.id
        return service

    # -- handlers --

    async def hook_call(self, request: Request, service_id: str) -> Response:
        info = _info(request)
        info["route"] = "/cds-services/{id}"
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.config.call_deadline_seconds
        service = self.service(request, service_id)
        self.check_declared_length(request)
        iss = await self.authenticate(request, [self.config.audience(service.id)])
        body = await self.read_json(request)
        if not isinstance(body, dict):
            raise Problem(400, "invalid_request", "the body must be a JSON object")
        prefetch = body.get("prefetch")
        if isinstance(prefetch, dict):
            # Only this service's keys matter (the spec's own example carries a string "user").
            body["prefetch"] = {k: v for k, v in prefetch.items() if k in service.prefetch}
        try:
            hook_request = HookRequest.model_validate(body)
        except ValidationError as exc:
            raise Problem(400, "invalid_request", _describe(exc)) from None
        if hook_request.hook != service.hook:
            raise Problem(
                400, "wrong_hook", f"service {service.id} is invoked on the {service.hook} hook"
            )
        try:
            patient_id = validate_context(service.hook, hook_request.context)
        except HookContextError as exc:
            raise Problem(400, "invalid_context", str(exc)) from None

        limits = Limits(
            deadline=deadline,
            fhir_timeout=self.config.fhir_timeout_seconds,
            max_pages=self.config.max_fhir_pages,
            max_bytes=self.config.max_fhir_bytes,
            max_resources=self.config.max_resources,
        )
        allowlist = self.config.fhir_allowlist(iss)
        if service.hook == "order-select":
            drafts = _retest_drafts(hook_request.context)
            if not drafts:
                cards: list[Card] = []
            else:
                collected = await self.gather(hook_request, service, patient_id, allowlist, limits)
                cards = await self.off_loop(
                    deadline, self.order_check, collected, drafts, patient_id
                )
        else:
            collected = await self.gather(hook_request, service, patient_id, allowlist, limits)
            cards = await self.off_loop(deadline, self.interpretation, collected, patient_id)
        info["cards"] = len(cards)
        return _json(CDSResponse(cards=cards).to_wire())

    async def off_loop(
        self, deadline: float, fn: Callable[..., list[Card]], *args: Any
    ) -> list[Card]:
        """Run ``fn(*args)`` in the interpretation pool, within the call's deadline (503 after:
        the work is abandoned if it has not started, and its result dropped if it has)."""
        loop = asyncio.get_running_loop()
        future = loop.run_in_executor(self.pool, fn, *args)
        try:
            return await asyncio.wait_for(future, max(0.0, deadline - loop.time()))
        except TimeoutError:
            _log.warning("call deadline passed before the interpretation finished")
            raise Problem(
                503,
                "deadline_exceeded",
                "the service could not answer within its time limit; try again later",
                {"Retry-After": "5"},
            ) from None

    async def gather(
        self,
        hook_request: HookRequest,
        service: ServiceDef,
        patient_id: str,
        allowlist: frozenset[str],
        limits: Limits,
    ) -> Collected:
        try:
            return await collect(
                hook_request,
                service,
                patient_id,
                self.client,
                allowlist=allowlist,
                limits=limits,
            )
        except PreconditionFailed as exc:
            # The detail names keys and reasons only (no URL, data or token).
            _log.info("412: %s", exc)
            raise Problem(412, "precondition_failed", PUBLIC_412) from None

    def interpret(self, collected: Collected) -> Interpretation | B12LabsError:
        try:
            return self.interpret_fhir(collected.resources)
        except B12LabsError as exc:
            _log.info("interpretation refused the input: %s", type(exc).__name__)
            return exc

    def proposals(self, interp: Interpretation, patient_id: str) -> dict[str, dict[str, Any]]:
        if not any(a.kind == "order_test" for a in interp.actions()):
            return {}
        return service_requests_by_loinc(self.to_fhir(interp, subject=f"Patient/{patient_id}"))

    def interpretation(self, collected: Collected, patient_id: str) -> list[Card]:
        """The ``b12-lab-interpretation`` cards (runs in the interpretation pool)."""
        interp = self.interpret(collected)
        if isinstance(interp, B12LabsError):
            return [error_card(str(interp), self.config.base_url)]
        return interpretation_cards(
            interp,
            base_url=self.config.base_url,
            service_requests=self.proposals(interp, patient_id),
            missing_context=collected.missing,
            foreign=collected.foreign,
            unusable=_unusable(interp, collected.resources),
        )

    def order_check(
        self, collected: Collected, drafts: list[dict[str, Any]], patient_id: str
    ) -> list[Card]:
        """The ``b12-order-check`` card, if any (runs in the interpretation pool)."""
        interp = self.interpret(collected)
        if isinstance(interp, B12LabsError):
            return []
        borderline = {"B12_INDETERMINATE", "HOLOTC_INDETERMINATE"} & set(interp.codes)
        mma_next = any(a.kind == "order_test" and a.loinc == MMA_LOINC for a in interp.actions())
        if not (borderline and mma_next):
            return []
        mma = self.proposals(interp, patient_id).get(MMA_LOINC)
        return [order_check_card(interp, drafts, base_url=self.config.base_url, mma_request=mma)]

    async def feedback_call(self, request: Request, service_id: str) -> Response:
        _info(request)["route"] = "/cds-services/{id}/feedback"
        service = self.service(request, service_id)
        self.check_declared_length(request)
        url = self.config.audience(service.id)
        await self.authenticate(request, [f"{url}/feedback", url])
        body = await self.read_json(request)
        try:
            feedback = FeedbackRequest.model_validate(body)
        except ValidationError as exc:
            raise Problem(400, "invalid_feedback", _describe(exc)) from None
        counts = Counter(item.outcome for item in feedback.feedback)
        for outcome, n in counts.items():
            self.feedback[(service.id, outcome)] += n
        _log.info(
            "feedback service=%s accepted=%d overridden=%d",
            service.id,
            counts.get("accepted", 0),
            counts.get("overridden", 0),
        )
        return _json({})


def _retest_drafts(context: dict[str, Any]) -> list[dict[str, Any]]:
    """Draft ServiceRequests (selected ones, when ``selections`` is given) for B12/active B12.
    Any shape is tolerated: what is not a coded ServiceRequest is not a retest draft."""
    selections = context.get("selections")
    selected = set(selections) if isinstance(selections, list) else None
    draft = context.get("draftOrders")
    entries = draft.get("entry") if isinstance(draft, dict) else None
    out = []
    for entry in entries if isinstance(entries, list) else ():
        res = entry.get("resource") if isinstance(entry, dict) else None
        if not isinstance(res, dict) or res.get("resourceType") != "ServiceRequest":
            continue
        if selected is not None and f"ServiceRequest/{res.get('id')}" not in selected:
            continue
        code = res.get("code")
        codings = code.get("coding") if isinstance(code, dict) else None
        if any(
            isinstance(c, dict)
            and c.get("system") == "http://loinc.org"
            and isinstance(c.get("code"), str)
            and c.get("code") in B12_RETEST_LOINCS
            for c in (codings if isinstance(codings, list) else ())
        ):
            out.append(res)
    return out


#: ``ignored`` reasons that are deliberate choices, not a result the service failed to use.
_NOT_A_PROBLEM: Final = ("superseded", "older than", "status entered-in-error", "status cancelled")


def _unusable(interp: Interpretation, resources: Sequence[dict[str, Any]]) -> list[Unusable]:
    """The ignored inputs that are B12 work-up results (an analyte's LOINC code) the reader
    could not use. The resources were passed as a flat list, so their labels are
    ``Type/id`` or ``Type #position`` (the reader's :func:`resource_label`)."""
    from ..fhir._common import loinc_analyte, resource_label
    from ..fhir._read import CONFLICT_REASON

    analytes: dict[str, str] = {}
    for i, res in enumerate(resources):
        if res.get("resourceType") != "Observation":
            continue
        try:
            analyte = loinc_analyte(res.get("code"))
        except (TypeError, ValueError, AttributeError):
            analyte = None
        if analyte is not None:
            analytes.setdefault(resource_label(res, i, None), analyte)
    out = []
    for item in interp.ignored:
        analyte = analytes.get(item.source)
        if analyte is None or item.reason.startswith(_NOT_A_PROBLEM):
            continue
        out.append(
            Unusable(
                item.source, analyte, item.reason, conflict=item.reason.startswith(CONFLICT_REASON)
            )
        )
    return out


def _describe(exc: ValidationError) -> str:
    """Field locations and messages of a validation error, never the input values."""
    parts = []
    for err in exc.errors(include_url=False, include_input=False, include_context=False)[:5]:
        loc = ".".join(str(p) for p in err["loc"])
        parts.append(f"{loc}: {err['msg']}" if loc else str(err["msg"]))
    return "; ".join(parts)


def create_app(
    config: ServiceConfig,
    *,
    http_client: httpx.AsyncClient | None = None,
    clock: Callable[[], float] = time.time,
    replay_db: str | None = None,
) -> FastAPI:
    """The CDS Hooks service for ``config`` (see the module docstring).

    ``http_client`` is used for calls to the CDS Clients' FHIR servers (the caller owns it;
    by default the app opens one and closes it at shutdown). ``clock`` is for tests (JWT times).
    ``replay_db``: a SQLite file that the worker processes of one host share as their JWT
    ``jti`` replay cache (``b12labs serve --workers N`` sets it); default in memory.
    """
    svc = _Service(config, http_client=http_client, clock=clock, replay_db=replay_db)
    # httpx logs every request URL at INFO, and FHIR search URLs carry the patient id: keep
    # those loggers at WARNING unless the operator configured them explicitly.
    for name in ("httpx", "httpcore"):
        third_party = logging.getLogger(name)
        if third_party.level == logging.NOTSET:
            third_party.setLevel(logging.WARNING)
    if config.allow_unauthenticated:
        _log.warning(
            "JWT authentication is DISABLED (--allow-unauthenticated): any caller can use this "
            "service. Use only for local demos."
        )
    elif not config.trusted_issuers:
        _log.warning("no trusted issuers configured: every CDS request will be refused (401)")
    if config.allow_loopback_fhir:
        _log.warning(
            "loopback FHIR servers are allowed (allow_loopback_fhir): development setting only"
        )

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        await svc.aclose()

    app = FastAPI(
        title="b12labs CDS Hooks service",
        version=__version__,
        docs_url=None,
        redoc_url=None,
        openapi_url="/openapi.json",
        lifespan=lifespan,
    )
    # The document is built from the wire models (the handlers read raw requests, so FastAPI
    # could not infer the bodies); see _openapi.
    document = openapi_document()
    app.openapi = lambda: document  # type: ignore[method-assign]
    app.state.service = svc
    app.add_middleware(_RequestLog)

    @app.exception_handler(Problem)
    async def _problem(request: Request, exc: Problem) -> Response:
        return _error(
            exc.status, exc.problem, exc.message, _info(request)["request_id"], exc.headers
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return _error(
            exc.status_code,
            code,
            str(exc.detail),
            _info(request)["request_id"],
            dict(exc.headers or {}),
        )

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> Response:
        return _error(400, "bad_request", "invalid request", _info(request)["request_id"])

    @app.get("/cds-services")
    async def discovery_endpoint(request: Request) -> Response:
        _info(request)["route"] = "/cds-services"
        await svc.authenticate(request, [config.audience()])
        return Response(svc.discovery, media_type="application/json", headers=_API_HEADERS)

    @app.post("/cds-services/{service_id}")
    async def hook_endpoint(request: Request, service_id: str) -> Response:
        return await svc.hook_call(request, service_id)

    @app.post("/cds-services/{service_id}/feedback")
    async def feedback_endpoint(request: Request, service_id: str) -> Response:
        return await svc.feedback_call(request, service_id)

    @app.get("/healthz")
    async def healthz(request: Request) -> Response:
        _info(request)["route"] = "/healthz"
        # No version: an unauthenticated caller learns nothing about the build.
        return _json({"status": "ok"})

    @app.get("/rules", response_class=HTMLResponse)
    async def rules(request: Request) -> Response:
        _info(request)["route"] = "/rules"
        return HTMLResponse(rules_index(), headers=HTML_HEADERS)

    @app.get("/rules/{code}", response_class=HTMLResponse)
    async def rule(request: Request, code: str) -> Response:
        _info(request)["route"] = "/rules/{code}"
        page = rule_page(code) if re.fullmatch(r"[A-Z0-9_]{1,64}", code) else None
        if page is None:
            return HTMLResponse(
                "<!DOCTYPE html><title>Not found</title><p>No such rule.</p>",
                status_code=404,
                headers=HTML_HEADERS,
            )
        return HTMLResponse(page, headers=HTML_HEADERS)

    return app


def app_from_env() -> FastAPI:
    """Factory for ``uvicorn --factory b12labs.service.app:app_from_env`` (several workers):
    the config path in ``B12LABS_SERVICE_CONFIG``, the shared replay cache file in
    ``B12LABS_SERVICE_REPLAY_DB``; ``B12LABS_SERVICE_ALLOW_UNAUTHENTICATED=1`` and
    ``B12LABS_SERVICE_BASE_URL`` are what ``b12labs serve --allow-unauthenticated`` passes."""
    import os

    from ._config import load_config

    allow = os.environ.get(ENV_ALLOW_UNAUTHENTICATED) == "1"
    servers = os.environ.get(ENV_FHIR_SERVERS, "").split()
    loopback = os.environ.get(ENV_ALLOW_LOOPBACK_FHIR) == "1"
    path = os.environ.get(ENV_CONFIG)
    if path:
        config = load_config(
            path, allow_unauthenticated=allow, fhir_servers=servers, allow_loopback_fhir=loopback
        )
    elif allow:
        config = ServiceConfig(
            base_url=os.environ.get(ENV_BASE_URL, "http://127.0.0.1:8080"),
            allow_unauthenticated=True,
            fhir_servers=tuple(servers),
            allow_loopback_fhir=loopback,
        )
    else:
        raise MissingConfigError(
            f"set {ENV_CONFIG} to the service config file (or run `b12labs serve --config FILE`)"
        )
    return create_app(config, replay_db=os.environ.get(ENV_REPLAY_DB) or None)
