"""Collect the FHIR data a call needs: from ``prefetch``, else from the client's FHIR server.

Per prefetch key (see :mod:`._hooks`):

* present with a resource/Bundle: used as given (a searchset Bundle's ``next`` page is fetched
  when the FHIR server is reachable, up to :data:`MAX_PAGES` pages);
* present as ``null``: the client has no such data (spec) - nothing to fetch;
* absent, or an ``OperationOutcome``: fetched from ``fhirServer`` with the
  ``fhirAuthorization`` bearer token (httpx, ``fhir_timeout_seconds`` for all fetches of one
  call together); a required key that cannot be obtained raises :class:`PreconditionFailed`
  (HTTP 412), an optional one is reported in :attr:`Collected.missing`.

Only ``https`` FHIR servers are called (``http`` only on loopback hosts, for development), and
``next`` links are followed only on the same origin, so a client cannot point the service at an
arbitrary host with a crafted Bundle. Responses are size-capped. The access token is never
logged.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final
from urllib.parse import urljoin, urlsplit

import httpx

from ._cdshooks import HookRequest
from ._hooks import REQUIRED_PREFETCH, ServiceDef, render_template
from ._http import TooLarge, get_capped

__all__ = [
    "FHIR_RESPONSE_MAX_BYTES",
    "MAX_PAGES",
    "Collected",
    "PreconditionFailed",
    "collect",
]

_log = logging.getLogger("b12labs.service.fhir")

MAX_PAGES: Final = 5
FHIR_RESPONSE_MAX_BYTES: Final = 16 * 1024 * 1024
_LOOPBACK: Final = frozenset({"localhost", "127.0.0.1", "::1"})
#: Resource types the interpretation reads; anything else in a Bundle is ignored.
_USED_TYPES: Final = frozenset(
    {"Patient", "Observation", "MedicationRequest", "MedicationStatement", "Condition"}
)


class PreconditionFailed(Exception):
    """Required data could be neither prefetched nor fetched (HTTP 412). ``str()`` is safe to
    return and log: it names prefetch keys and reasons, never data or tokens."""


class _FetchError(Exception):
    pass


@dataclass
class Collected:
    """The resources of one call, checked to belong to the patient in context."""

    resources: list[dict[str, Any]] = field(default_factory=list)
    #: optional prefetch keys that could not be obtained
    missing: list[str] = field(default_factory=list)
    #: keys fetched from the FHIR server (not prefetched)
    fetched: list[str] = field(default_factory=list)
    #: resources dropped because they belong to another patient
    foreign: int = 0


def _fhir_base(request: HookRequest) -> str | None:
    """The usable FHIR base URL, or None when the service may not / cannot call it."""
    if request.fhirAuthorization is None or not request.fhirServer:
        return None
    parts = urlsplit(request.fhirServer)
    if not parts.hostname or parts.username or parts.password:
        return None
    if parts.scheme == "https" or (parts.scheme == "http" and parts.hostname in _LOOPBACK):
        return request.fhirServer.rstrip("/") + "/"
    return None


def _same_origin(url: str, base: str) -> bool:
    a, b = urlsplit(url), urlsplit(base)
    return (a.scheme, a.hostname, a.port) == (b.scheme, b.hostname, b.port)


async def _get_json(client: httpx.AsyncClient, url: str, token: str, timeout: float) -> Any:
    headers = {"Accept": "application/fhir+json", "Authorization": f"Bearer {token}"}
    try:
        status, body = await get_capped(
            client, url, headers=headers, timeout=timeout, max_bytes=FHIR_RESPONSE_MAX_BYTES
        )
    except TooLarge:
        raise _FetchError("FHIR response too large") from None
    except httpx.HTTPError as exc:
        raise _FetchError(f"FHIR request failed ({type(exc).__name__})") from None
    if status == 404:
        return None
    if status != 200:
        raise _FetchError(f"FHIR server answered HTTP {status}")
    try:
        return json.loads(body)
    except ValueError:
        raise _FetchError("FHIR response is not JSON") from None


def _is_outcome(value: Any) -> bool:
    return isinstance(value, dict) and value.get("resourceType") == "OperationOutcome"


def _next_link(bundle: Mapping[str, Any]) -> str | None:
    for link in bundle.get("link") or ():
        if isinstance(link, dict) and link.get("relation") == "next":
            url = link.get("url")
            return url if isinstance(url, str) and url else None
    return None


async def _fetch_key(
    client: httpx.AsyncClient,
    base: str,
    token: str,
    template: str,
    patient_id: str,
    timeout: float,
) -> Any:
    value = await _get_json(
        client, urljoin(base, render_template(template, patient_id)), token, timeout
    )
    if _is_outcome(value):
        raise _FetchError("FHIR server returned an OperationOutcome")
    return value


async def _follow_pages(
    client: httpx.AsyncClient, base: str, token: str, bundle: dict[str, Any], timeout: float
) -> dict[str, Any]:
    entries = list(bundle.get("entry") or ())
    page = bundle
    for _ in range(MAX_PAGES - 1):
        url = _next_link(page)
        if url is None:
            break
        url = urljoin(base, url)
        if not _same_origin(url, base):
            _log.warning("not following a Bundle next link to another origin")
            break
        nxt = await _get_json(client, url, token, timeout)
        if not isinstance(nxt, dict) or nxt.get("resourceType") != "Bundle":
            raise _FetchError("next page is not a Bundle")
        entries.extend(nxt.get("entry") or ())
        page = nxt
    return {**bundle, "entry": entries, "link": []}


def _belongs(resource: Mapping[str, Any], patient_id: str) -> bool:
    """False when the resource names another patient as its subject/patient."""
    if resource.get("resourceType") == "Patient":
        rid = resource.get("id")
        return rid is None or rid == patient_id
    for key in ("subject", "patient"):
        ref = resource.get(key)
        if isinstance(ref, dict) and isinstance(ref.get("reference"), str):
            text: str = ref["reference"]
            want = f"Patient/{patient_id}"
            return text == want or text.endswith("/" + want)
    return True


def _resources(value: Any) -> list[dict[str, Any]]:
    if not isinstance(value, dict):
        return []
    if value.get("resourceType") == "Bundle":
        out = []
        for entry in value.get("entry") or ():
            if not isinstance(entry, dict):
                continue
            search = entry.get("search")
            if isinstance(search, dict) and search.get("mode") == "outcome":
                continue
            res = entry.get("resource")
            if isinstance(res, dict) and res.get("resourceType") in _USED_TYPES:
                out.append(res)
        return out
    return [value] if value.get("resourceType") in _USED_TYPES else []


async def collect(
    request: HookRequest,
    service: ServiceDef,
    patient_id: str,
    client: httpx.AsyncClient,
    *,
    timeout: float,
) -> Collected:
    """Gather the service's prefetch data for one call (see the module docstring)."""
    prefetch = request.prefetch or {}
    base = _fhir_base(request)
    token = request.fhirAuthorization.access_token if request.fhirAuthorization else ""
    values: dict[str, Any] = {}
    to_fetch: list[str] = []
    for key in service.prefetch:
        if key in prefetch and not _is_outcome(prefetch[key]):
            values[key] = prefetch[key]
        else:
            to_fetch.append(key)

    out = Collected()
    missing_required = [k for k in to_fetch if k in REQUIRED_PREFETCH]
    if to_fetch and base is None:
        if missing_required:
            raise PreconditionFailed(
                "prefetch " + ", ".join(missing_required) + " missing and no usable "
                "fhirServer/fhirAuthorization to fetch it"
            )
        out.missing.extend(to_fetch)
        to_fetch = []

    async def fetch_all() -> None:
        assert base is not None
        results = await asyncio.gather(
            *(
                _fetch_key(client, base, token, service.prefetch[k], patient_id, timeout)
                for k in to_fetch
            ),
            return_exceptions=True,
        )
        for key, result in zip(to_fetch, results, strict=True):
            if isinstance(result, BaseException):
                if not isinstance(result, _FetchError):
                    raise result
                if key in REQUIRED_PREFETCH:
                    raise PreconditionFailed(
                        f"prefetch {key} missing and fetching it failed: {result}"
                    )
                _log.info("optional prefetch %s could not be fetched: %s", key, result)
                out.missing.append(key)
            else:
                values[key] = result
                out.fetched.append(key)
        if base is not None:
            for key, value in list(values.items()):
                if (
                    isinstance(value, dict)
                    and value.get("resourceType") == "Bundle"
                    and _next_link(value)
                ):
                    try:
                        values[key] = await _follow_pages(client, base, token, value, timeout)
                    except _FetchError as exc:
                        if key in REQUIRED_PREFETCH:
                            raise PreconditionFailed(
                                f"prefetch {key}: fetching the next page failed: {exc}"
                            ) from None
                        out.missing.append(key)
                        values.pop(key)

    if base is not None:
        try:
            await asyncio.wait_for(fetch_all(), timeout)
        except TimeoutError:
            raise PreconditionFailed(
                "fetching prefetch data from the FHIR server timed out"
            ) from None

    for key in service.prefetch:
        for res in _resources(values.get(key)):
            if _belongs(res, patient_id):
                out.resources.append(res)
            else:
                out.foreign += 1
    return out
