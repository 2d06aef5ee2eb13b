"""JWT verification of CDS Clients (CDS Hooks 2.0 "Trusting CDS Clients").

Real RSA-2048 (RS384) and EC P-384 (ES384) keys are generated here; JWK Sets are written to disk
or served through ``httpx.MockTransport`` (no network). Time comes from a fake clock.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import logging
import warnings
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from b12labs.service._config import ServiceConfig, TrustedIssuer
from b12labs.service._security import (
    JWKS_MAX_AGE_SECONDS,
    JWKS_URL_REFRESH_INTERVAL_SECONDS,
    LEEWAY_SECONDS,
    MAX_TOKEN_LIFETIME_SECONDS,
    AuthError,
    JWTVerifier,
    _ReplayCache,
)
from tests._paths import EXTERNAL

T = TypeVar("T")

BASE = "https://cds.example.org"
SERVICE = "b12labs-interpret"
AUD = f"{BASE}/cds-services/{SERVICE}"
ISS = "https://ehr.example.org"
ISS2 = "https://other-ehr.example.org"
JWKS_URL = "https://ehr.example.org/.well-known/jwks.json"
NOW = 1_800_000_000.0
SPEC_DIR = EXTERNAL / "cds-hooks-spec-examples"

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


class FakeClock:
    def __init__(self, now: float = NOW) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="module")
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def rsa_key2() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def ec_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP384R1())


def public_jwk(key: PrivateKey, kid: str, alg: str | None = None) -> dict[str, Any]:
    if isinstance(key, rsa.RSAPrivateKey):
        jwk: dict[str, Any] = RSAAlgorithm.to_jwk(key.public_key(), as_dict=True)
    else:
        jwk = ECAlgorithm.to_jwk(key.public_key(), as_dict=True)
    jwk.update(kid=kid, use="sig")
    if alg is not None:
        jwk["alg"] = alg
    return jwk


def write_jwks(path: Path, *jwks: object) -> Path:
    path.write_text(json.dumps({"keys": list(jwks)}), encoding="utf-8")
    return path


def claims(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "iss": ISS,
        "aud": AUD,
        "iat": int(NOW),
        "exp": int(NOW) + 300,
        "jti": "jti-0001",
        "tenant": "tenant-secret-value",
    }
    for name, value in overrides.items():
        if value is None:
            base.pop(name, None)
        else:
            base[name] = value
    return base


def sign(
    key: PrivateKey,
    alg: str,
    kid: str | None,
    payload: dict[str, Any],
    **headers: Any,
) -> str:
    hdrs: dict[str, Any] = {"typ": "JWT", **headers}
    if kid is not None:
        hdrs["kid"] = kid
    return jwt.encode(payload, key, algorithm=alg, headers=hdrs)


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def handmade(header: dict[str, Any], payload: dict[str, Any], signature: bytes = b"") -> str:
    signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(payload).encode())}"
    return f"{signing_input}.{b64(signature)}"


def file_config(jwks_path: Path, *extra: TrustedIssuer) -> ServiceConfig:
    return ServiceConfig(
        base_url=BASE,
        trusted_issuers=(TrustedIssuer(iss=ISS, jwks_file=jwks_path), *extra),
    )


@pytest.fixture
def jwks_path(
    tmp_path: Path, rsa_key: rsa.RSAPrivateKey, ec_key: ec.EllipticCurvePrivateKey
) -> Path:
    return write_jwks(
        tmp_path / "ehr-jwks.json",
        public_jwk(rsa_key, "rsa-1", "RS384"),
        public_jwk(ec_key, "ec-1"),  # no "alg": inferred from kty/crv
    )


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def verifier(jwks_path: Path, clock: FakeClock) -> JWTVerifier:
    return JWTVerifier(file_config(jwks_path), clock=clock)


def reject(verifier: JWTVerifier, authorization: str | None, audience: str = AUD) -> str:
    with pytest.raises(AuthError) as info:
        run(verifier.verify(authorization, audience))
    return info.value.reason


# --- accepted tokens ---------------------------------------------------------------------------


def test_valid_rs384(verifier: JWTVerifier, rsa_key: rsa.RSAPrivateKey) -> None:
    token = sign(rsa_key, "RS384", "rsa-1", claims())
    got = run(verifier.verify(f"Bearer {token}", AUD))
    assert got["iss"] == ISS and got["aud"] == AUD and got["jti"] == "jti-0001"


def test_valid_es384(verifier: JWTVerifier, ec_key: ec.EllipticCurvePrivateKey) -> None:
    token = sign(ec_key, "ES384", "ec-1", claims())
    assert run(verifier.verify(f"Bearer {token}", AUD))["tenant"] == "tenant-secret-value"


def test_aud_may_be_a_list_and_scheme_is_case_insensitive(
    verifier: JWTVerifier, ec_key: ec.EllipticCurvePrivateKey
) -> None:
    token = sign(ec_key, "ES384", "ec-1", claims(aud=["https://x.example", AUD]))
    assert run(verifier.verify(f"bearer {token}", AUD))["aud"][1] == AUD


def test_discovery_audience(verifier: JWTVerifier, rsa_key: rsa.RSAPrivateKey) -> None:
    token = sign(rsa_key, "RS384", "rsa-1", claims(aud=f"{BASE}/cds-services"))
    assert run(verifier.verify(f"Bearer {token}", f"{BASE}/cds-services"))


@pytest.mark.skipif(not SPEC_DIR.is_dir(), reason="CDS Hooks spec examples not available")
def test_spec_example_token_verifies_with_spec_jwks(tmp_path: Path) -> None:
    """The Authorization header printed in the CDS Hooks 2.0.1 spec, with its JWK Set."""
    spec = (SPEC_DIR / "cds-hooks-2.0.1-specification.md").read_text(encoding="utf-8")
    header = next(
        line.split(": ", 1)[1]
        for line in spec.splitlines()
        if line.startswith("Authorization: Bearer ey")
    )
    jwks = tmp_path / "spec-jwks.json"
    jwks.write_bytes((SPEC_DIR / "v2.0.1_index_24_example.json").read_bytes())
    cfg = ServiceConfig(
        base_url="https://cds.example.org",
        trusted_issuers=[TrustedIssuer(iss="https://fhir-ehr.example.com/", jwks_file=jwks)],
    )
    clock = FakeClock(1422568860 - 60)  # a minute before the example's exp
    # The example's iat is 3.5 years before its exp: signature, aud and iss check out (time
    # claims are checked last), and then its lifetime is refused under the 300 s maximum.
    with pytest.raises(AuthError, match="token lifetime too long"):
        run(JWTVerifier(cfg, clock=clock).verify(header, cfg.audience("some-service")))
    clock.now = 1422568860 + LEEWAY_SECONDS + 1
    with pytest.raises(AuthError, match="token expired"):
        run(JWTVerifier(cfg, clock=clock).verify(header, cfg.audience("some-service")))


# --- time claims -------------------------------------------------------------------------------


def test_expired(verifier: JWTVerifier, rsa_key: rsa.RSAPrivateKey) -> None:
    token = sign(rsa_key, "RS384", "rsa-1", claims(iat=int(NOW) - 600, exp=int(NOW) - 60))
    assert reject(verifier, f"Bearer {token}") == "token expired"


def test_expiry_leeway(verifier: JWTVerifier, rsa_key: rsa.RSAPrivateKey) -> None:
    just_expired = int(NOW) - int(LEEWAY_SECONDS) + 1
    token = sign(rsa_key, "RS384", "rsa-1", claims(exp=just_expired, iat=int(NOW) - 60))
    assert run(verifier.verify(f"Bearer {token}", AUD))
    token = sign(rsa_key, "RS384", "rsa-1", claims(exp=int(NOW) - int(LEEWAY_SECONDS), jti="j2"))
    assert reject(verifier, f"Bearer {token}") == "token expired"


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"iat": int(NOW) + 60}, "token issued in the future"),
        ({"nbf": int(NOW) + 60}, "token not yet valid"),
        ({"exp": int(NOW + MAX_TOKEN_LIFETIME_SECONDS) + 60}, "token lifetime too long"),
        # exp - iat longer than the maximum lifetime, though exp itself is near
        ({"iat": int(NOW) - 300, "exp": int(NOW) + 60}, "token lifetime too long"),
        # a day-old iat with a fresh-looking exp
        ({"iat": int(NOW) - 86_400, "exp": int(NOW) + 60}, "token lifetime too long"),
        ({"exp": 10**30}, "invalid claim exp"),
        ({"exp": "tomorrow"}, "invalid claim exp"),
        ({"iat": True}, "invalid claim iat"),
        ({"jti": ""}, "invalid claim jti"),
        ({"jti": 42}, "invalid claim jti"),
    ],
)
def test_bad_claim_values(
    verifier: JWTVerifier,
    ec_key: ec.EllipticCurvePrivateKey,
    overrides: dict[str, Any],
    reason: str,
) -> None:
    token = sign(ec_key, "ES384", "ec-1", claims(**overrides))
    assert reject(verifier, f"Bearer {token}") == reason


# --- audience / issuer -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "aud",
    [
        f"{BASE}/cds-services/other-service",
        f"{BASE}/cds-services",
        f"{AUD}/",
        [f"{BASE}/cds-services/other-service"],
        123,
    ],
)
def test_wrong_audience(verifier: JWTVerifier, rsa_key: rsa.RSAPrivateKey, aud: Any) -> None:
    token = sign(rsa_key, "RS384", "rsa-1", claims(aud=aud))
    assert reject(verifier, f"Bearer {token}") == "wrong audience"


def test_unknown_issuer(verifier: JWTVerifier, rsa_key: rsa.RSAPrivateKey) -> None:
    token = sign(rsa_key, "RS384", "rsa-1", claims(iss="https://evil.example"))
    assert reject(verifier, f"Bearer {token}") == "unknown issuer"
    # iss is compared exactly: no trailing-slash or case normalisation
    token = sign(rsa_key, "RS384", "rsa-1", claims(iss=ISS + "/"))
    assert reject(verifier, f"Bearer {token}") == "unknown issuer"


@pytest.mark.parametrize("missing", ["iss", "aud", "exp", "iat", "jti"])
def test_missing_required_claim(
    verifier: JWTVerifier, rsa_key: rsa.RSAPrivateKey, missing: str
) -> None:
    token = sign(rsa_key, "RS384", "rsa-1", claims(**{missing: None}))
    assert reject(verifier, f"Bearer {token}") == f"missing claim {missing}"


# --- algorithms and signatures -----------------------------------------------------------------


def test_alg_none_rejected(verifier: JWTVerifier) -> None:
    token = handmade({"alg": "none", "typ": "JWT", "kid": "rsa-1"}, claims())
    assert reject(verifier, f"Bearer {token}") == "unsupported alg"
    token = jwt.encode(claims(), "", algorithm="none", headers={"kid": "rsa-1"})
    assert reject(verifier, f"Bearer {token}") == "unsupported alg"


@pytest.mark.parametrize("alg", ["HS256", "HS384", "RS384"])
def test_hmac_with_public_key_as_secret_rejected(
    verifier: JWTVerifier, rsa_key: rsa.RSAPrivateKey, alg: str
) -> None:
    """Algorithm confusion: an HMAC over the token keyed with the issuer's *public* key."""
    pem = rsa_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    header = {"alg": alg, "typ": "JWT", "kid": "rsa-1"}
    unsigned = handmade(header, claims()).rsplit(".", 1)[0]
    digest = hashlib.sha384 if alg.endswith("384") else hashlib.sha256
    signature = hmac.new(pem, unsigned.encode("ascii"), digest).digest()
    token = f"{unsigned}.{b64(signature)}"
    expected = "bad signature" if alg == "RS384" else "unsupported alg"
    assert reject(verifier, f"Bearer {token}") == expected


@pytest.mark.parametrize("alg", ["RS256", "ES256", "PS384", "EdDSA"])
def test_other_asymmetric_algs_rejected(verifier: JWTVerifier, alg: str) -> None:
    token = handmade({"alg": alg, "typ": "JWT", "kid": "rsa-1"}, claims(), b"x" * 64)
    assert reject(verifier, f"Bearer {token}") == "unsupported alg"


def test_tampered_payload_bad_signature(verifier: JWTVerifier, rsa_key: rsa.RSAPrivateKey) -> None:
    token = sign(rsa_key, "RS384", "rsa-1", claims())
    head, _, sig = token.split(".")
    forged = b64(json.dumps(claims(tenant="someone-else")).encode())
    assert reject(verifier, f"Bearer {head}.{forged}.{sig}") == "bad signature"


def test_signed_by_other_key_bad_signature(
    verifier: JWTVerifier, rsa_key2: rsa.RSAPrivateKey
) -> None:
    token = sign(rsa_key2, "RS384", "rsa-1", claims())
    assert reject(verifier, f"Bearer {token}") == "bad signature"


def test_alg_must_match_key(verifier: JWTVerifier, ec_key: ec.EllipticCurvePrivateKey) -> None:
    # ES384 token pointing at the RSA key's kid
    token = sign(ec_key, "ES384", "rsa-1", claims())
    assert reject(verifier, f"Bearer {token}") == "key does not match alg"


def test_missing_kid(verifier: JWTVerifier, rsa_key: rsa.RSAPrivateKey) -> None:
    token = sign(rsa_key, "RS384", None, claims())
    assert reject(verifier, f"Bearer {token}") == "missing kid"


def test_wrong_typ(verifier: JWTVerifier, rsa_key: rsa.RSAPrivateKey) -> None:
    token = sign(rsa_key, "RS384", "rsa-1", claims(), typ="at+jwt")
    assert reject(verifier, f"Bearer {token}") == "unsupported typ"


# --- Authorization header ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "reason"),
    [
        (None, "missing bearer token"),
        ("", "missing bearer token"),
        ("   ", "missing bearer token"),
        ("Bearer", "malformed authorization header"),
        ("Basic dXNlcjpwYXNz", "malformed authorization header"),
        ("Bearer a.b.c extra", "malformed authorization header"),
        ("Bearer not-a-jwt", "malformed token"),
        ("Bearer a.b", "malformed token"),
        ("Bearer a.b.c", "malformed token"),
        ("Bearer ###.$$$.%%%", "malformed token"),
        ("Bearer " + "a" * 20000 + ".b.c", "token too large"),
    ],
)
def test_missing_or_garbled_authorization(
    verifier: JWTVerifier, header: str | None, reason: str
) -> None:
    assert reject(verifier, header) == reason


def test_payload_not_a_json_object(verifier: JWTVerifier) -> None:
    token = f"{b64(json.dumps({'alg': 'RS384', 'kid': 'rsa-1'}).encode())}.{b64(b'[1,2]')}.{b64(b'sig')}"
    assert reject(verifier, f"Bearer {token}") == "malformed token"


# --- replay protection -------------------------------------------------------------------------


def test_replayed_jti(verifier: JWTVerifier, clock: FakeClock, rsa_key: rsa.RSAPrivateKey) -> None:
    token = sign(rsa_key, "RS384", "rsa-1", claims(jti="once"))
    run(verifier.verify(f"Bearer {token}", AUD))
    assert reject(verifier, f"Bearer {token}") == "replayed jti"
    # a *different* token reusing the jti is a replay too
    other = sign(rsa_key, "RS384", "rsa-1", claims(jti="once", iat=int(NOW) + 1))
    assert reject(verifier, f"Bearer {other}") == "replayed jti"
    # a failed verification does not burn a jti
    bad_aud = sign(rsa_key, "RS384", "rsa-1", claims(jti="fresh", aud="https://x.example"))
    assert reject(verifier, f"Bearer {bad_aud}") == "wrong audience"
    run(verifier.verify(f"Bearer {sign(rsa_key, 'RS384', 'rsa-1', claims(jti='fresh'))}", AUD))
    # after the token expires it is refused as expired, and its jti is forgotten
    clock.now = NOW + 300 + LEEWAY_SECONDS + 1
    assert reject(verifier, f"Bearer {token}") == "token expired"


def test_same_jti_from_two_issuers_is_not_a_replay(
    tmp_path: Path, jwks_path: Path, rsa_key: rsa.RSAPrivateKey, ec_key: ec.EllipticCurvePrivateKey
) -> None:
    other = write_jwks(tmp_path / "other.json", public_jwk(ec_key, "k"))
    cfg = file_config(jwks_path, TrustedIssuer(iss=ISS2, jwks_file=other))
    v = JWTVerifier(cfg, clock=FakeClock())
    run(v.verify(f"Bearer {sign(rsa_key, 'RS384', 'rsa-1', claims(jti='same'))}", AUD))
    run(v.verify(f"Bearer {sign(ec_key, 'ES384', 'k', claims(jti='same', iss=ISS2))}", AUD))


def test_replay_cache_is_bounded_and_purged() -> None:
    cache = _ReplayCache(max_entries=3)
    cache.add(("i", "a"), expires=10.0, now=0.0)
    cache.add(("i", "b"), expires=20.0, now=0.0)
    cache.add(("i", "c"), expires=30.0, now=0.0)
    with pytest.raises(AuthError, match="replay cache full"):
        cache.add(("i", "d"), expires=30.0, now=5.0)
    with pytest.raises(AuthError, match="replayed jti"):
        cache.add(("i", "b"), expires=20.0, now=5.0)
    cache.add(("i", "d"), expires=40.0, now=15.0)  # ("i", "a") purged at 10
    assert len(cache) == 3
    cache.add(("i", "a"), expires=50.0, now=35.0)  # everything but d expired
    assert len(cache) == 2


# --- key sets: files, rotation, URLs -----------------------------------------------------------


def test_unknown_kid_then_rotation_picked_up_from_file(
    jwks_path: Path, clock: FakeClock, rsa_key: rsa.RSAPrivateKey, rsa_key2: rsa.RSAPrivateKey
) -> None:
    verifier = JWTVerifier(file_config(jwks_path), clock=clock)
    run(verifier.verify(f"Bearer {sign(rsa_key, 'RS384', 'rsa-1', claims(jti='a'))}", AUD))

    new_token = sign(rsa_key2, "RS384", "rsa-2", claims(jti="b"))
    assert reject(verifier, f"Bearer {new_token}") == "unknown key id"

    # the issuer rotates: the new key is published next to the old one
    write_jwks(jwks_path, public_jwk(rsa_key, "rsa-1"), public_jwk(rsa_key2, "rsa-2"))
    clock.now += 2  # file re-reads are rate-limited to one per second
    assert run(verifier.verify(f"Bearer {new_token}", AUD))["jti"] == "b"

    # ... and later retires the old key
    write_jwks(jwks_path, public_jwk(rsa_key2, "rsa-2"))
    clock.now += 2
    # a *known* kid triggers no re-read, so the retired key stays usable until the max age
    old_token = sign(rsa_key, "RS384", "rsa-1", claims(jti="c", iat=int(clock.now)))
    assert run(verifier.verify(f"Bearer {old_token}", AUD))["jti"] == "c"
    clock.now += JWKS_MAX_AGE_SECONDS
    old_token = sign(
        rsa_key, "RS384", "rsa-1", claims(jti="d", iat=int(clock.now), exp=int(clock.now) + 60)
    )
    assert reject(verifier, f"Bearer {old_token}") == "unknown key id"


def test_jwks_file_entries_are_filtered(
    tmp_path: Path,
    clock: FakeClock,
    rsa_key: rsa.RSAPrivateKey,
    ec_key: ec.EllipticCurvePrivateKey,
) -> None:
    weak = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    p256 = ec.generate_private_key(ec.SECP256R1())
    private_ec = ECAlgorithm.to_jwk(ec_key, as_dict=True) | {"kid": "ec-private"}
    path = write_jwks(
        tmp_path / "jwks.json",
        public_jwk(weak, "weak", "RS384"),
        public_jwk(p256, "p256"),
        {"kty": "oct", "kid": "hmac", "k": b64(b"secret"), "alg": "HS256"},
        public_jwk(rsa_key, "enc") | {"use": "enc"},
        public_jwk(rsa_key, "rs256") | {"alg": "RS256"},
        private_ec,  # private material is dropped; the public half still verifies
        "not-a-key",
        {"kty": "RSA", "kid": "broken", "n": "AQAB"},
    )
    v = JWTVerifier(file_config(path), clock=clock)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", jwt.InsecureKeyLengthWarning)
        weak_token = sign(weak, "RS384", "weak", claims())
    assert reject(v, f"Bearer {weak_token}") == "unknown key id"
    for kid in ("hmac", "enc", "rs256", "broken"):
        assert reject(v, f"Bearer {sign(rsa_key, 'RS384', kid, claims())}") == "unknown key id"
    assert reject(v, f"Bearer {sign(ec_key, 'ES384', 'p256', claims())}") == "unknown key id"
    assert run(v.verify(f"Bearer {sign(ec_key, 'ES384', 'ec-private', claims())}", AUD))


def test_unreadable_jwks_file(tmp_path: Path, clock: FakeClock, rsa_key: rsa.RSAPrivateKey) -> None:
    path = tmp_path / "jwks.json"
    path.write_text("{not json", encoding="utf-8")
    v = JWTVerifier(file_config(path), clock=clock)
    token = sign(rsa_key, "RS384", "rsa-1", claims())
    assert reject(v, f"Bearer {token}") == "jwks unavailable"
    path.unlink()
    clock.now += 2
    assert reject(v, f"Bearer {token}") == "jwks unavailable"


class JWKSServer:
    """A mock JWKS endpoint that records every request it receives."""

    def __init__(self, *jwks: dict[str, Any]) -> None:
        self.keys = list(jwks)
        self.status = 200
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if self.status != 200:
            return httpx.Response(self.status, text="nope")
        return httpx.Response(200, json={"keys": self.keys})

    @property
    def urls(self) -> list[str]:
        return [str(r.url) for r in self.requests]


def url_config() -> ServiceConfig:
    return ServiceConfig(base_url=BASE, trusted_issuers=[TrustedIssuer(iss=ISS, jwks_url=JWKS_URL)])


def with_client(
    server: JWKSServer, clock: FakeClock, body: Callable[[JWTVerifier], Coroutine[Any, Any, T]]
) -> T:
    async def main() -> T:
        async with httpx.AsyncClient(transport=httpx.MockTransport(server)) as client:
            return await body(JWTVerifier(url_config(), http_client=client, clock=clock))

    return run(main())


def test_jwks_url_fetched_cached_and_refreshed_rate_limited(
    rsa_key: rsa.RSAPrivateKey, rsa_key2: rsa.RSAPrivateKey, ec_key: ec.EllipticCurvePrivateKey
) -> None:
    server = JWKSServer(public_jwk(rsa_key, "rsa-1"))
    clock = FakeClock()

    async def body(v: JWTVerifier) -> list[str]:
        outcomes: list[str] = []

        async def attempt(token: str) -> None:
            try:
                await v.verify(f"Bearer {token}", AUD)
                outcomes.append("ok")
            except AuthError as exc:
                outcomes.append(exc.reason)

        def tok(key: PrivateKey, alg: str, kid: str, jti: str, **headers: Any) -> str:
            c = claims(jti=jti, iat=int(clock.now), exp=int(clock.now) + 300)
            return sign(key, alg, kid, c, **headers)

        await attempt(tok(rsa_key, "RS384", "rsa-1", "1"))  # first use: 1 fetch
        await attempt(tok(rsa_key, "RS384", "rsa-1", "2"))  # cached: no fetch
        assert len(server.requests) == 1
        # unknown kid right after the initial load: no second fetch (one per 60 s)
        await attempt(tok(rsa_key2, "RS384", "new", "2b"))
        assert len(server.requests) == 1
        clock.now += JWKS_URL_REFRESH_INTERVAL_SECONDS
        # unknown kid, with a jku pointing elsewhere: one refresh of the *configured* URL
        await attempt(tok(rsa_key2, "RS384", "new", "3", jku="https://evil.example/jwks"))
        assert len(server.requests) == 2
        await attempt(tok(rsa_key2, "RS384", "new", "4"))  # within 60 s: no fetch
        assert len(server.requests) == 2
        server.keys.append(public_jwk(rsa_key2, "new"))
        clock.now += JWKS_URL_REFRESH_INTERVAL_SECONDS
        await attempt(tok(rsa_key2, "RS384", "new", "5"))  # refresh allowed again: found
        assert len(server.requests) == 3
        # concurrent unknown kids trigger at most one fetch
        clock.now += JWKS_URL_REFRESH_INTERVAL_SECONDS
        await asyncio.gather(*(attempt(tok(ec_key, "ES384", f"x{i}", f"c{i}")) for i in range(5)))
        assert len(server.requests) == 4
        # keys older than the max age are re-fetched even for a known kid
        clock.now += JWKS_MAX_AGE_SECONDS
        await attempt(tok(rsa_key, "RS384", "rsa-1", "6"))
        assert len(server.requests) == 5
        return outcomes

    outcomes = with_client(server, clock, body)
    assert outcomes == ["ok", "ok", "unknown key id", "unknown key id", "unknown key id", "ok"] + [
        "unknown key id"
    ] * 5 + ["ok"]
    assert set(server.urls) == {JWKS_URL}
    assert all(r.method == "GET" for r in server.requests)


def test_jwks_url_failure(rsa_key: rsa.RSAPrivateKey) -> None:
    server = JWKSServer(public_jwk(rsa_key, "rsa-1"))
    server.status = 503
    clock = FakeClock()

    async def body(v: JWTVerifier) -> list[str]:
        reasons = []
        for jti in ("1", "2"):
            try:
                await v.verify(f"Bearer {sign(rsa_key, 'RS384', 'rsa-1', claims(jti=jti))}", AUD)
                reasons.append("ok")
            except AuthError as exc:
                reasons.append(exc.reason)
        # the endpoint recovers; the next attempt is allowed after the refresh interval
        server.status = 200
        clock.now += JWKS_URL_REFRESH_INTERVAL_SECONDS
        c = claims(jti="3", iat=int(clock.now), exp=int(clock.now) + 60)
        await v.verify(f"Bearer {sign(rsa_key, 'RS384', 'rsa-1', c)}", AUD)
        reasons.append("ok")
        # a failing periodic refresh keeps the previous keys in use
        server.status = 500
        clock.now += JWKS_MAX_AGE_SECONDS
        c = claims(jti="4", iat=int(clock.now), exp=int(clock.now) + 60)
        await v.verify(f"Bearer {sign(rsa_key, 'RS384', 'rsa-1', c)}", AUD)
        reasons.append("ok")
        return reasons

    assert with_client(server, clock, body) == ["jwks unavailable", "jwks unavailable", "ok", "ok"]
    assert len(server.requests) == 3  # the second failure did not hammer the endpoint


def test_jwks_url_network_error_and_oversized_answer(rsa_key: rsa.RSAPrivateKey) -> None:
    def broken(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    def huge(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=b'{"keys": [' + b" " * 300_000 + b"]}")

    token = sign(rsa_key, "RS384", "rsa-1", claims())
    for handler in (broken, huge):

        async def main(h: Callable[[httpx.Request], httpx.Response] = handler) -> None:
            async with httpx.AsyncClient(transport=httpx.MockTransport(h)) as client:
                v = JWTVerifier(url_config(), http_client=client, clock=FakeClock())
                with pytest.raises(AuthError, match="jwks unavailable"):
                    await v.verify(f"Bearer {token}", AUD)

        run(main())


# --- logging -----------------------------------------------------------------------------------


def test_logs_carry_no_token_or_claims(
    verifier: JWTVerifier, rsa_key: rsa.RSAPrivateKey, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="b12labs.service.security")
    good = sign(rsa_key, "RS384", "rsa-1", claims(jti="log-1"))
    run(verifier.verify(f"Bearer {good}", AUD))
    bad = sign(rsa_key, "RS384", "rsa-1", claims(jti="log-2", aud="https://x.example"))
    with pytest.raises(AuthError) as info:
        run(verifier.verify(f"Bearer {bad}", AUD))
    assert "wrong audience" in caplog.text and "rsa-1" in caplog.text and ISS in caplog.text
    for secret in (good, bad, "tenant-secret-value", "log-1", "log-2", "https://x.example"):
        assert secret not in caplog.text
        assert secret not in str(info.value)


# --- robustness --------------------------------------------------------------------------------

_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=8,
)
_header = st.fixed_dictionaries(
    {},
    optional={
        "alg": st.sampled_from(["RS384", "ES384", "none", "HS256"]) | _json,
        "kid": st.sampled_from(["rsa-1", "ec-1"]) | _json,
        "typ": st.just("JWT") | _json,
        "crit": _json,
    },
)
_payload = st.fixed_dictionaries(
    {},
    optional={
        "iss": st.just(ISS) | _json,
        "aud": st.just(AUD) | _json,
        "exp": st.just(int(NOW) + 60) | _json | st.integers(min_value=10**30),
        "iat": st.just(int(NOW)) | _json,
        "nbf": _json,
        "jti": st.text(max_size=5) | _json,
    },
)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(header=_header, payload=_payload, raw_payload=st.none() | st.binary(max_size=20))
def test_arbitrary_tokens_only_raise_auth_error(
    jwks_path: Path,
    header: dict[str, Any],
    payload: dict[str, Any],
    raw_payload: bytes | None,
) -> None:
    verifier = JWTVerifier(file_config(jwks_path), clock=FakeClock())
    body = raw_payload if raw_payload is not None else json.dumps(payload).encode()
    token = f"{b64(json.dumps(header).encode())}.{b64(body)}.{b64(b'not-a-signature')}"
    with pytest.raises(AuthError):
        run(verifier.verify(f"Bearer {token}", AUD))


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(payload=_payload)
def test_validly_signed_arbitrary_claims_never_crash(
    jwks_path: Path, rsa_key: rsa.RSAPrivateKey, payload: dict[str, Any]
) -> None:
    verifier = JWTVerifier(file_config(jwks_path), clock=FakeClock())
    # PyJWS signs the raw bytes (jwt.encode would refuse some of these claim values itself)
    token = jwt.PyJWS().encode(
        json.dumps(payload).encode(), rsa_key, algorithm="RS384", headers={"kid": "rsa-1"}
    )
    try:
        got = run(verifier.verify(f"Bearer {token}", AUD))
    except AuthError:
        return
    assert got["iss"] == ISS and isinstance(got["jti"], str) and got["jti"]


def test_token_lifetime_is_configurable(jwks_path: Path, clock: FakeClock, rsa_key: rsa.RSAPrivateKey) -> None:
    hour = claims(exp=int(NOW) + 3600, jti="hour")
    strict = JWTVerifier(file_config(jwks_path), clock=clock)
    assert reject(strict, f"Bearer {sign(rsa_key, 'RS384', 'rsa-1', hour)}") == "token lifetime too long"
    config = file_config(jwks_path).model_copy(update={"max_token_lifetime_seconds": 3600.0})
    lenient = JWTVerifier(config, clock=clock)
    assert run(lenient.verify(f"Bearer {sign(rsa_key, 'RS384', 'rsa-1', hour)}", AUD))
    # an iat older than the lifetime plus the clock skew is refused, whatever exp says
    clock.now = NOW + 3600 + 61
    stale = claims(iat=int(NOW), exp=int(NOW) + 3600, jti="stale")
    assert reject(lenient, f"Bearer {sign(rsa_key, 'RS384', 'rsa-1', stale)}") == "token expired"
