"""End to end: a real ``python -m b12labs.service`` process on a loopback port with JWT
verification on (a ``jwks_file``), called over HTTP with RS384 and ES384 tokens signed here; a
tiny loopback FHIR server thread for fetching missing prefetch. Marked ``slow``."""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import urlsplit

import httpx
import jwt
import pytest

from b12labs.service._cdshooks import CDSResponse, Discovery
from tests._paths import REPO
from tests.service import _support as s
from tests.service._support import ig_problems

pytestmark = pytest.mark.slow

STARTUP_SECONDS = 90.0


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Server:
    def __init__(self, url: str, proc: subprocess.Popen[bytes], log: Path, keys: tuple[Any, Any]) -> None:
        self.url = url
        self.proc = proc
        self.log = log
        self.rsa, self.ec = keys

    def aud(self, service: str | None = None) -> str:
        return f"{self.url}/cds-services" + (f"/{service}" if service else "")

    def headers(self, service: str | None = s.INTERPRETATION, *, ec: bool = False, **kw: Any) -> dict[str, str]:
        if ec:
            tok = s.token(self.ec, self.aud(service), alg="ES384", kid=s.EC_KID, **kw)
        else:
            tok = s.token(self.rsa, self.aud(service), **kw)
        return {"Authorization": f"Bearer {tok}"}


def start_server(
    folder: Path, keys: tuple[Any, Any], *extra: str, fhir_servers: tuple[str, ...] = (s.FHIR_SERVER,)
) -> Server:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    jwks = s.write_jwks(
        folder / "ehr-jwks.json",
        s.public_jwk(keys[0], s.RSA_KID, "RS384"),
        s.public_jwk(keys[1], s.EC_KID, "ES384"),
    )
    config = s.write_config(
        folder, jwks, base_url=url, fhir_servers=fhir_servers, max_body_bytes=64 * 1024, fhir_timeout_seconds=5,
        allow_loopback_fhir=True, header_timeout_seconds=1.0,
    )
    log = folder / "server.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "b12labs.service", "--host", "127.0.0.1", "--port", str(port),
             "--config", str(config), "--log-level", "debug", *extra],
            cwd=REPO, stdout=out, stderr=subprocess.STDOUT,
        )
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"server exited with {proc.returncode}:\n{log.read_text()}")
        try:
            if httpx.get(f"{url}/healthz", timeout=1.0).status_code == 200:
                return Server(url, proc, log, keys)
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    stop(proc)
    raise AssertionError(f"server did not start within {STARTUP_SECONDS:g} s:\n{log.read_text()}")


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)


@pytest.fixture(scope="module")
def keys() -> tuple[Any, Any]:
    return s.rsa_key(), s.ec_key()


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, keys: tuple[Any, Any], fhir_server: tuple[str, type[_FHIRHandler]]
) -> Iterator[Server]:
    # the fake FHIR server and a port where nothing listens are allowlisted (development setting)
    srv = start_server(tmp_path_factory.mktemp("e2e"), keys, fhir_servers=(fhir_server[0], DEAD_FHIR))
    try:
        yield srv
    finally:
        stop(srv.proc)


class _FHIRHandler(BaseHTTPRequestHandler):
    data: ClassVar[dict[str, Any]] = {}
    seen: ClassVar[list[tuple[str, str | None]]] = []

    def do_GET(self) -> None:
        self.seen.append((self.path, self.headers.get("Authorization")))
        path = urlsplit(self.path).path.removeprefix("/fhir/")
        key = {
            f"Patient/{s.PATIENT_ID}": "patient",
            "Observation": "observations",
            "MedicationRequest": "medications",
            "Condition": "conditions",
        }.get(path)
        if key is None or self.headers.get("Authorization") != f"Bearer {s.FHIR_TOKEN}":
            self.send_response(404 if key is None else 401)
            self.end_headers()
            return
        body = json.dumps(self.data[key]).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/fhir+json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


DEAD_FHIR = f"http://127.0.0.1:{free_port()}/fhir"


@pytest.fixture(scope="module")
def fhir_server() -> Iterator[tuple[str, type[_FHIRHandler]]]:
    handler = type("Handler", (_FHIRHandler,), {"data": s.prefetch(with_mma=True), "seen": []})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/fhir", handler
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=10)


def post(server: Server, body: Any, headers: dict[str, str], service: str = s.INTERPRETATION, **kw: Any) -> httpx.Response:
    return httpx.post(f"{server.url}/cds-services/{service}", json=body, headers=headers, timeout=30, **kw)


# --- tests ---------------------------------------------------------------------------------------


def test_discovery_rs384(server: Server) -> None:
    r = httpx.get(f"{server.url}/cds-services", headers=server.headers(None), timeout=30)
    assert r.status_code == 200
    doc = Discovery.model_validate(r.json())
    assert {x.id: x.hook for x in doc.services} == {
        s.INTERPRETATION: "patient-view",
        s.ORDER_CHECK: "order-select",
    }


def test_patient_view_es384(server: Server) -> None:
    r = post(server, s.patient_view(s.prefetch()), server.headers(ec=True))
    assert r.status_code == 200, r.text
    doc = r.json()
    CDSResponse.model_validate(doc)
    assert ig_problems(doc, "structuredefinition-CDSHooksResponse.json", "CDSHooksResponse") == []
    status, mtx = doc["cards"]
    assert status["summary"].startswith("B12 status indeterminate: B12 247 pg/mL")
    assert status["source"]["url"] == f"{server.url}/rules/B12_INDETERMINATE"
    assert mtx["indicator"] == "warning"
    # the card's rule page is served by the service itself
    page = httpx.get(mtx["source"]["url"], timeout=30)
    assert page.status_code == 200 and "MACROCYTOSIS_ON_METHOTREXATE" in page.text


def test_order_select_rs384(server: Server) -> None:
    b12 = s.draft_service_request("sr-b12", "2132-9", "Vitamin B12")
    r = post(server, s.order_select(s.prefetch(), b12), server.headers(s.ORDER_CHECK), s.ORDER_CHECK)
    assert r.status_code == 200
    (card,) = r.json()["cards"]
    assert card["indicator"] == "warning" and "MMA" in card["summary"]


@pytest.mark.parametrize(
    "make",
    [
        lambda srv: srv.headers(lifetime=-60),
        lambda srv: srv.headers(s.ORDER_CHECK),
        lambda srv: srv.headers(iss="https://unknown.example.org"),
        lambda srv: {
            "Authorization": "Bearer "
            + jwt.encode(
                {"iss": s.ISS, "aud": srv.aud(s.INTERPRETATION), "exp": int(time.time()) + 60,
                 "iat": int(time.time()), "jti": "unsigned"},
                "", algorithm="none", headers={"kid": s.RSA_KID},
            )
        },
        lambda srv: {},
    ],
    ids=["expired", "wrong-audience", "unknown-issuer", "unsigned", "missing"],
)
def test_rejected_tokens(server: Server, make: Any) -> None:
    r = post(server, s.patient_view(s.prefetch()), make(server))
    assert r.status_code == 401
    assert r.headers["www-authenticate"].startswith("Bearer")
    assert r.json()["error"] == "unauthorized"


def test_replayed_token(server: Server) -> None:
    headers = server.headers(ec=True)
    assert post(server, s.patient_view(s.prefetch()), headers).status_code == 200
    r = post(server, s.patient_view(s.prefetch()), headers)
    assert r.status_code == 401 and r.json()["message"] == "invalid or missing credentials"


def test_oversize_and_malformed(server: Server) -> None:
    url = f"{server.url}/cds-services/{s.INTERPRETATION}"
    big = b"{" + b" " * (100 * 1024) + b"}"
    r = httpx.post(url, content=big, headers={**server.headers(), "Content-Type": "application/json"}, timeout=30)
    assert r.status_code == 413

    def chunks() -> Iterator[bytes]:
        yield b'{"pad": "'
        for _ in range(100):
            yield b"x" * 1024
        yield b'"}'

    r = httpx.post(url, content=chunks(), headers={**server.headers(), "Content-Type": "application/json"}, timeout=30)
    assert r.status_code == 413
    r = httpx.post(url, content=b'{"hook": ', headers={**server.headers(), "Content-Type": "application/json"}, timeout=30)
    assert r.status_code == 400 and r.json()["error"] == "malformed_json"
    body = s.patient_view(s.prefetch(), context={"userId": "Practitioner/1"})
    r = post(server, body, server.headers())
    assert r.status_code == 400 and r.json()["error"] == "invalid_context"


def _raw(server: Server, data: bytes, *, timeout: float = 10.0) -> tuple[bytes, float]:
    """Send raw bytes; return everything the server answers until it closes, and the time."""
    host, port = server.url.removeprefix("http://").split(":")
    t0 = time.monotonic()
    with socket.create_connection((host, int(port)), timeout=timeout) as sock:
        sock.sendall(data)
        out = b""
        while True:
            try:
                chunk = sock.recv(65536)
            except (TimeoutError, ConnectionResetError):
                break
            if not chunk:
                break
            out += chunk
    return out, time.monotonic() - t0


def _status_and_json(raw: bytes) -> tuple[int, dict[str, Any]]:
    head, _, body = raw.partition(b"\r\n\r\n")
    assert b"content-type: application/json" in head.lower(), head
    return int(head.split(b" ", 2)[1]), json.loads(body)


def test_oversized_headers_get_a_json_431(server: Server) -> None:
    req = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * (64 * 1024) + b"\r\n\r\n"
    status, body = _status_and_json(_raw(server, req)[0])
    assert status == 431 and body["error"] == "headers_too_large"
    # the same head sent in pieces: refused by h11 while still incomplete, same answer
    host, port = server.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        out = b""
        try:
            for at in range(0, len(req), 4096):
                sock.sendall(req[at : at + 4096])
                time.sleep(0.01)
        except OSError:
            pass
        try:
            while chunk := sock.recv(65536):
                out += chunk
        except ConnectionResetError:  # the server closed with our bytes still unread
            pass
    status, body = _status_and_json(out)
    assert status == 431 and body["error"] == "headers_too_large"


def test_malformed_request_line_gets_a_json_400(server: Server) -> None:
    status, body = _status_and_json(_raw(server, b"GET /healthz HTTP/1.1\r\nHost x\r\n\r\n")[0])
    assert status == 400 and body["error"] == "bad_request"


def test_half_a_request_line_is_closed_in_bounded_time(server: Server) -> None:
    for data in (b"POST /cds-services/b12-lab", b"", b"GET /healthz HTTP/1.1\r\nHost: x\r\n"):
        out, took = _raw(server, data)
        assert out == b"" and took < 5.0, (data, took)  # header_timeout_seconds = 1
    # a slow trickle does not reset the clock
    host, port = server.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        t0 = time.monotonic()
        closed = False
        for ch in b"GET /healthz HTTP/1.1\r\nHost: x\r\n":
            try:
                sock.sendall(bytes([ch]))
            except OSError:
                closed = True
                break
            time.sleep(0.1)
            if time.monotonic() - t0 > 5:
                break
        closed = closed or sock.recv(1) == b""
        assert closed and time.monotonic() - t0 < 5


def test_keep_alive_still_works_with_the_head_timer(server: Server) -> None:
    with httpx.Client(timeout=10) as c:
        for _ in range(3):
            assert c.get(f"{server.url}/healthz").status_code == 200
            time.sleep(0.6)  # each pause below the 1 s head limit, together above it


def test_fetch_from_loopback_fhir_server(server: Server, fhir_server: tuple[str, type[_FHIRHandler]]) -> None:
    base, handler = fhir_server
    body = s.patient_view(None, fhir=True, fhirServer=base)
    r = post(server, body, server.headers())
    assert r.status_code == 200, r.text
    assert r.json()["cards"][0]["summary"].startswith("B12 deficiency probable")
    assert len(handler.seen) == 4
    assert all(auth == f"Bearer {s.FHIR_TOKEN}" for _, auth in handler.seen)
    # the FHIR server is gone: 412
    body["fhirServer"] = DEAD_FHIR
    gone = post(server, body, server.headers())
    assert gone.status_code == 412 and gone.json()["error"] == "precondition_failed"
    # another loopback port (not allowlisted), another path on the allowed server, a bad
    # port: the same 412 text (no port scanning through the messages), nothing fetched
    seen = len(handler.seen)
    port = int(base.rsplit(":", 1)[1].split("/")[0])
    for other in (f"http://127.0.0.1:{port + 1}/fhir", base + "/../admin", base.replace("/fhir", "/x"),
                  "http://127.0.0.1:99999/fhir", "http://[::1/x"):
        body["fhirServer"] = other
        r = post(server, body, server.headers())
        assert r.status_code == 412 and r.json()["message"] == gone.json()["message"], other
    assert len(handler.seen) == seen


def test_server_log_has_no_patient_data(server: Server) -> None:
    assert post(server, s.patient_view(s.prefetch(), hookInstance="log-check"), server.headers()).status_code == 200
    assert post(server, s.patient_view(None), server.headers()).status_code == 412
    time.sleep(0.3)
    text = server.log.read_text(encoding="utf-8", errors="replace")
    assert "route=/cds-services/{id} service=b12-lab-interpretation status=200" in text
    # request ids (random hex), process ids and durations can contain "1961" by chance (a
    # request id did, once in CI): mask them, after checking they are what they look like
    assert re.findall(r"request_id=([0-9a-f]{32})\b", text)
    text = re.sub(r"request_id=[0-9a-f]{32}\b", "request_id=<id>", text)
    text = re.sub(r" \[\d+\]: ", " [<pid>]: ", text)
    text = re.sub(r"duration_ms=[\d.]+", "duration_ms=<ms>", text)
    for secret in s.SECRETS:
        assert secret not in text, secret


def test_refuses_to_start_without_config() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "b12labs.service", "--port", str(free_port())],
        cwd=REPO, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 2
    assert "refusing to start without --config" in result.stderr


def test_two_workers_share_the_replay_cache(tmp_path: Path, keys: tuple[Any, Any]) -> None:
    srv = start_server(tmp_path, keys, "--workers", "2")
    try:
        headers = srv.headers()
        assert post(srv, s.patient_view(s.prefetch()), headers).status_code == 200
        # new connections land on either worker; none may accept the token again
        for _ in range(8):
            with httpx.Client(timeout=30) as fresh:
                r = fresh.post(f"{srv.url}/cds-services/{s.INTERPRETATION}", json=s.patient_view(s.prefetch()), headers=headers)
            assert r.status_code == 401 and r.json()["message"] == "invalid or missing credentials"
        # TCP_NODELAY on the workers' connections: no ~40 ms Nagle/delayed-ACK stall per request
        with httpx.Client(timeout=30) as keep_alive:
            keep_alive.get(f"{srv.url}/healthz")
            t0 = time.perf_counter()
            for _ in range(30):
                assert keep_alive.get(f"{srv.url}/healthz").status_code == 200
            assert time.perf_counter() - t0 < 1.0  # with the stall: >= 30 x 40 ms
    finally:
        stop(srv.proc)
