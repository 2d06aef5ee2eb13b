"""Collect the FHIR data a call needs: from ``prefetch``, else from the client's FHIR server.

Per prefetch key (see :mod:`._hooks`):

* present with a resource/Bundle: used as given (a searchset Bundle's ``next`` page is fetched
  when the FHIR server is allowed, up to ``max_fhir_pages`` pages per key);
* present as ``null``: the client has no such data (spec) - nothing to fetch;
* absent, or an ``OperationOutcome``: fetched from ``fhirServer`` with the
  ``fhirAuthorization`` bearer token; a required key that cannot be obtained raises
  :class:`PreconditionFailed` (HTTP 412), an optional one is reported in
  :attr:`Collected.missing`.

Which servers are called (SSRF): only a ``fhirServer`` equal (after normalising scheme, host,
default port and trailing slash) to one of the allowlisted base URLs of the token's issuer
(:meth:`ServiceConfig.fhir_allowlist`); every request and every ``next`` link must stay under
that base path (same scheme, host and port, no dot segments or encoded separators); redirects
are never followed. A request naming another server gets the same 412 text as any other
failure: the detail (not allowlisted, connection error, HTTP status, too large) is logged
without URLs, data or tokens, so the answers cannot be used to probe a network.

Bounded work (:class:`Limits`): all fetches of one call share the call's deadline (and at most
``fhir_timeout_seconds``), at most ``max_fhir_bytes`` are read per call and at most
``max_resources`` resources are kept; JSON is parsed in a worker thread.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final
from urllib.parse import urljoin, urlsplit

import httpx

from ..errors import ServiceError
from ._cdshooks import HookRequest
from ._config import normalise_fhir_base, path_is_plain
from ._hooks import REQUIRED_PREFETCH, ServiceDef, render_template
from ._http import TooLarge, get_capped
from ._limits import JSONLimitError, loads_limited

__all__ = [
    "PUBLIC_412",
    "Collected",
    "Limits",
    "PreconditionFailed",
    "collect",
]

_log = logging.getLogger("b12labs.service.fhir")

#: A ``"resource"`` member name: a quote preceded by ``{``, ``,`` or whitespace cannot be
#: inside a string (there it would be escaped), so this counts entry resources of a Bundle
#: (and any other "resource" members) without parsing.
_RESOURCE_KEY: Final = re.compile(rb'[{,\s]"resource"\s*:')
#: The one text of every 412 (the detail goes to the log).
PUBLIC_412: Final = "required FHIR data was neither prefetched nor obtainable from fhirServer"
#: Resource types the interpretation reads; anything else in a Bundle is ignored.
_USED_TYPES: Final = frozenset(
    {"Patient", "Observation", "MedicationRequest", "MedicationStatement", "Condition"}
)


class PreconditionFailed(ServiceError):
    """Required data could be neither prefetched nor fetched (HTTP 412). ``str()`` is the detail
    for the log (prefetch keys and reasons, never URLs, data or tokens); callers get
    :data:`PUBLIC_412`."""


class _FetchError(ServiceError):
    pass


@dataclass
class Limits:
    """What one call may spend on fetching (``deadline`` is ``loop.time()`` based)."""

    deadline: float
    fhir_timeout: float
    max_pages: int
    max_bytes: int
    max_resources: int
    bytes_read: int = 0
    #: resources of the pages fetched so far (for the pre-parse count)
    resources_seen: int = 0

    def remaining(self) -> float:
        return self.deadline - asyncio.get_running_loop().time()

    def timeout(self) -> float:
        left = self.remaining()
        if left <= 0:
            raise _FetchError("call deadline passed")
        return min(self.fhir_timeout, left)


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


def _fhir_base(request: HookRequest, allowlist: frozenset[str]) -> tuple[str | None, str]:
    """(the usable FHIR base URL with a trailing slash, or None; why not, for the log)."""
    if request.fhirAuthorization is None or not request.fhirServer:
        return None, "no fhirServer/fhirAuthorization"
    base = normalise_fhir_base(request.fhirServer)
    if base is None:
        return None, "fhirServer is not a usable URL"
    if base not in allowlist:
        return None, "fhirServer is not allowlisted for this issuer"
    return base + "/", ""


def _within(url: str, base: str) -> bool:
    """``url`` is under ``base`` (same scheme, host and port; path below the base path)."""
    try:
        a, b = urlsplit(url), urlsplit(base)
        same = (a.scheme, a.hostname, a.port) == (b.scheme, b.hostname, b.port)
    except ValueError:
        return False
    if not same or a.username is not None or a.password is not None or a.fragment:
        return False
    if not url.isascii() or any(c.isspace() for c in url) or "\\" in url:
        return False
    path = a.path
    return path.startswith(b.path) and path_is_plain(path.rstrip("/"))


async def _get_json(client: httpx.AsyncClient, url: str, token: str, limits: Limits) -> Any:
    headers = {"Accept": "application/fhir+json", "Authorization": f"Bearer {token}"}
    budget = limits.max_bytes - limits.bytes_read
    if budget <= 0:
        raise _FetchError("FHIR byte budget of the call spent")
    try:
        status, body = await get_capped(
            client, url, headers=headers, timeout=limits.timeout(), max_bytes=budget
        )
    except TooLarge:
        raise _FetchError("FHIR responses larger than the byte budget of the call") from None
    except httpx.HTTPError as exc:
        raise _FetchError(f"FHIR request failed ({type(exc).__name__})") from None
    limits.bytes_read += len(body)
    if status == 404:
        return None
    if status != 200:
        raise _FetchError(f"FHIR server answered HTTP {status}")
    if len(_RESOURCE_KEY.findall(body)) > limits.max_resources - limits.resources_seen:
        # counted before parsing: a page that cannot fit is not worth the CPU of parsing it
        raise _FetchError("more resources than max_resources")
    try:
        return await asyncio.to_thread(loads_limited, body)
    except JSONLimitError as exc:
        raise _FetchError(f"FHIR response refused: {exc}") from None


def _is_outcome(value: Any) -> bool:
    return isinstance(value, dict) and value.get("resourceType") == "OperationOutcome"


def _entries(bundle: Mapping[str, Any]) -> list[Any]:
    entry = bundle.get("entry")
    return entry if isinstance(entry, list) else []


def _next_link(bundle: Mapping[str, Any]) -> str | None:
    links = bundle.get("link")
    for link in links if isinstance(links, list) else ():
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
    limits: Limits,
) -> Any:
    value = await _get_json(
        client, urljoin(base, render_template(template, patient_id)), token, limits
    )
    if _is_outcome(value):
        raise _FetchError("FHIR server returned an OperationOutcome")
    if value is not None and not isinstance(value, dict):
        raise _FetchError("FHIR response is not a JSON object")
    if isinstance(value, dict) and len(_entries(value)) > limits.max_resources:
        raise _FetchError("more resources than max_resources")
    return value


async def _follow_pages(
    client: httpx.AsyncClient, base: str, token: str, bundle: dict[str, Any], limits: Limits
) -> dict[str, Any]:
    entries = list(_entries(bundle))
    limits.resources_seen = max(limits.resources_seen, len(entries))
    page = bundle
    for _ in range(limits.max_pages - 1):
        link = _next_link(page)
        if link is None:
            break
        url = urljoin(base, link)
        if not _within(url, base):
            _log.warning("not following a Bundle next link outside the FHIR base URL")
            break
        nxt = await _get_json(client, url, token, limits)
        if not isinstance(nxt, dict) or nxt.get("resourceType") != "Bundle":
            raise _FetchError("next page is not a Bundle")
        entries.extend(_entries(nxt))
        limits.resources_seen = len(entries)
        if len(entries) > limits.max_resources:
            raise _FetchError("more resources than max_resources")
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
        for entry in _entries(value):
            if not isinstance(entry, dict):
                continue
            search = entry.get("search")
            if isinstance(search, dict) and search.get("mode") == "outcome":
                continue
            res = entry.get("resource")
            if isinstance(res, dict) and _rtype(res) in _USED_TYPES:
                out.append(res)
        return out
    return [value] if _rtype(value) in _USED_TYPES else []


def _rtype(resource: Mapping[str, Any]) -> str | None:
    rtype = resource.get("resourceType")
    return rtype if isinstance(rtype, str) else None


async def collect(
    request: HookRequest,
    service: ServiceDef,
    patient_id: str,
    client: httpx.AsyncClient,
    *,
    allowlist: frozenset[str],
    limits: Limits,
) -> Collected:
    """Gather the service's prefetch data for one call (see the module docstring)."""
    prefetch = request.prefetch or {}
    base, why_not = _fhir_base(request, allowlist)
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
                "prefetch " + ", ".join(missing_required) + f" missing and {why_not}"
            )
        out.missing.extend(to_fetch)
        to_fetch = []
    if base is None and why_not and request.fhirServer:
        _log.info("not calling the FHIR server: %s", why_not)

    async def fetch_all() -> None:
        assert base is not None
        results = await asyncio.gather(
            *(
                _fetch_key(client, base, token, service.prefetch[k], patient_id, limits)
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
        for key, value in list(values.items()):
            if (
                isinstance(value, dict)
                and value.get("resourceType") == "Bundle"
                and _next_link(value)
            ):
                try:
                    values[key] = await _follow_pages(client, base, token, value, limits)
                except _FetchError as exc:
                    if key in REQUIRED_PREFETCH:
                        raise PreconditionFailed(
                            f"prefetch {key}: fetching the next page failed: {exc}"
                        ) from None
                    _log.info("optional prefetch %s: next page failed: %s", key, exc)
                    out.missing.append(key)
                    values.pop(key)

    if base is not None:
        try:
            await asyncio.wait_for(
                fetch_all(), max(0.0, min(limits.fhir_timeout, limits.remaining()))
            )
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
    if len(out.resources) > limits.max_resources:
        raise PreconditionFailed("more resources than max_resources")
    return out
