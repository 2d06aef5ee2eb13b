"""One bounded HTTP GET for the service's outbound calls (EHR FHIR server, issuers' JWKS)."""

from __future__ import annotations

import httpx

from ..errors import ServiceError

__all__ = ["TooLarge", "get_capped"]


class TooLarge(ServiceError):
    """The response body passed the size cap while streaming."""


async def get_capped(
    client: httpx.AsyncClient, url: str, *, headers: dict[str, str], timeout: float, max_bytes: int
) -> tuple[int, bytes]:
    """``(status, body)`` of a GET with no redirects, reading at most ``max_bytes``.

    The body is read only for status 200 (it is ``b""`` otherwise). Raises :class:`TooLarge`
    when the declared ``Content-Length`` or the bytes streamed pass the cap, and lets ``httpx.HTTPError`` through for the caller to translate.
    """
    async with client.stream(
        "GET", url, headers=headers, timeout=timeout, follow_redirects=False
    ) as response:
        if response.status_code != 200:
            return response.status_code, b""
        declared = response.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > max_bytes:
            raise TooLarge  # refused before a byte of the body is read
        chunks: list[bytes] = []
        size = 0
        async for chunk in response.aiter_bytes():
            size += len(chunk)
            if size > max_bytes:
                raise TooLarge
            chunks.append(chunk)
    return 200, b"".join(chunks)
