"""The uvicorn HTTP protocol of ``b12labs serve``: h11 with ``TCP_NODELAY``, JSON error bodies
for requests h11 itself refuses, and a time limit on reading a request head.

* ``TCP_NODELAY``: with ``--workers N`` uvicorn binds the listening socket itself
  (``socket.socket(family=...)``, ``proto`` 0), and asyncio only sets ``TCP_NODELAY`` on
  accepted sockets whose ``proto`` is ``IPPROTO_TCP``. Responses are written as two segments
  (head, body), so Nagle's algorithm held the body until the client's delayed ACK: a constant
  ~40 ms per request (measured: 22 requests/s on one keep-alive connection instead of
  ~1,400). This protocol sets the option explicitly.
* Malformed or oversized request heads never reach the application: h11 refuses them and
  uvicorn answers a plain-text 400. Here the answer is the service's JSON error body, with
  **431** when the head passed :data:`MAX_HEADER_BYTES` (given to h11 as
  ``h11_max_incomplete_event_size``) and 400 otherwise.
* A connection must deliver a complete request head within :data:`HEADER_TIMEOUT_SECONDS`
  of connecting (or of its previous response); otherwise it is closed. uvicorn's own
  keep-alive timer stops at the first byte, so without this a client sending half a request
  line would hold the connection (and its memory) for ever.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import uuid
from typing import Any, Final

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

from ._limits import MAX_HEADER_BYTES

__all__ = [
    "ENV_HEADER_TIMEOUT",
    "HEADER_TIMEOUT_SECONDS",
    "MAX_HEADER_BYTES",
    "NoDelayHTTPProtocol",
]

#: Time allowed to send a complete request head (``header_timeout_seconds`` in the config;
#: ``b12labs serve`` hands it to the workers in this environment variable).
HEADER_TIMEOUT_SECONDS: Final = 10.0
ENV_HEADER_TIMEOUT: Final = "B12LABS_SERVICE_HEADER_TIMEOUT"


def _header_timeout() -> float:
    try:
        value = float(os.environ.get(ENV_HEADER_TIMEOUT, HEADER_TIMEOUT_SECONDS))
    except ValueError:
        return HEADER_TIMEOUT_SECONDS
    return value if 0 < value <= 3600 else HEADER_TIMEOUT_SECONDS


def error_body(status: int, code: str, message: str) -> bytes:
    doc = {"error": code, "message": message, "request_id": uuid.uuid4().hex}
    return json.dumps(doc, separators=(",", ":")).encode("utf-8")


class NoDelayHTTPProtocol(H11Protocol):
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        sock: Any = transport.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._head_timer: asyncio.TimerHandle | None = None
        self.header_timeout = _header_timeout()
        super().connection_made(transport)
        self._arm_head_timer()

    # -- the request-head deadline --

    def _arm_head_timer(self) -> None:
        if self._head_timer is None:
            self._head_timer = self.loop.call_later(self.header_timeout, self._head_timeout)

    def _disarm_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timeout(self) -> None:
        self._head_timer = None
        if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
            self.logger.info("closing a connection that sent no complete request head in time")
            self.transport.close()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
            self._arm_head_timer()  # still reading a head: the clock runs from its start
        else:
            self._disarm_head_timer()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing():
            self._disarm_head_timer()
            self._arm_head_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_head_timer()
        super().connection_lost(exc)

    # -- JSON answers for what h11 refuses --

    def send_400_response(self, msg: str) -> None:
        too_large = len(self.conn.trailing_data[0]) > MAX_HEADER_BYTES
        status, code, message = (
            (431, "headers_too_large", f"request head larger than {MAX_HEADER_BYTES} bytes")
            if too_large
            else (400, "bad_request", "malformed HTTP request")
        )
        body = error_body(status, code, message)
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"cache-control", b"no-store"),
            (b"connection", b"close"),
        ]
        try:
            out = self.conn.send(h11.Response(status_code=status, headers=headers))
            out = (out or b"") + (self.conn.send(h11.Data(data=body)) or b"")
            out += self.conn.send(h11.EndOfMessage()) or b""
        except h11.LocalProtocolError:
            out = b""
        if out:
            self.transport.write(out)
        self.transport.close()
