"""Authentication of CDS Clients: JWT bearer tokens as CDS Hooks 2.0 ("Trusting CDS Clients").

Policy implemented by :class:`JWTVerifier` (each failure raises :class:`AuthError`):

* ``Authorization: Bearer <jwt>`` is required.
* Header ``alg`` must be ``RS384`` or ``ES384`` (the spec's recommended algorithms). ``none``,
  every HMAC (``HS*``) and anything else is refused *before* any key is looked at, so a public
  key can never be abused as an HMAC secret (algorithm confusion). ``kid`` is required; ``typ``,
  when present, must be ``JWT``; unknown ``crit`` extensions are refused.
* The *unverified* ``iss`` is used only to choose the issuer's JWK Set, and it must be one of the
  configured trusted issuers. Keys come from the configured ``jwks_url`` / ``jwks_file`` only;
  a ``jku`` header in the token is ignored, never fetched.
* The key for ``kid`` must match the header ``alg`` (RSA >= 2048 bits for RS384, EC P-384 for
  ES384; a JWK ``alg`` member, if any, must equal the header ``alg``).
* Required claims: ``iss``, ``aud``, ``exp``, ``iat``, ``jti``. ``aud`` must be the audience passed
  in (a string, or a list containing it). Times are checked against the injected ``clock`` with
  :data:`LEEWAY_SECONDS` of leeway for ``exp``, ``nbf`` and an ``iat`` in the future. The
  lifetime is bounded by the config's ``max_token_lifetime_seconds`` (default
  :data:`MAX_TOKEN_LIFETIME_SECONDS`): ``exp - iat`` may not exceed it, ``exp`` may not lie
  further ahead than it, and ``iat`` may not be older than it plus ``clock_skew_seconds``
  (default :data:`CLOCK_SKEW_SECONDS`). Short lifetimes keep the replay cache bounded and a
  captured token useless soon.
* ``jti`` must not have been seen before for the same ``iss`` while the token is still valid.

JWK Set caching: per issuer, loaded on first use; re-loaded when a token names an unknown
``kid`` (at most once per :data:`JWKS_URL_REFRESH_INTERVAL_SECONDS` for URLs, once per
:data:`JWKS_FILE_REFRESH_INTERVAL_SECONDS` for files) and when older than
:data:`JWKS_MAX_AGE_SECONDS` (so a revoked key does not stay trusted forever; if that periodic
refresh fails the previous keys stay in use).

Logging: only the reason, the ``iss`` and the ``kid`` are logged, never the token or other claims.
:attr:`AuthError.reason` is for the log; the HTTP layer answers every failure with one text
(:data:`PUBLIC_REASON`) so a caller cannot tell an unknown issuer from an unknown key or a bad
signature.
"""

from __future__ import annotations

import asyncio
import heapq
import json
import logging
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import httpx
import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from ..errors import ServiceError
from ._config import ServiceConfig, TrustedIssuer
from ._http import TooLarge, get_capped

__all__ = [
    "ALLOWED_ALGORITHMS",
    "CLOCK_SKEW_SECONDS",
    "JTI_CACHE_MAX_ENTRIES",
    "JWKS_FILE_REFRESH_INTERVAL_SECONDS",
    "JWKS_MAX_AGE_SECONDS",
    "JWKS_MAX_BYTES",
    "JWKS_TIMEOUT_SECONDS",
    "JWKS_URL_REFRESH_INTERVAL_SECONDS",
    "LEEWAY_SECONDS",
    "MAX_TOKEN_LIFETIME_SECONDS",
    "PUBLIC_REASON",
    "REQUIRED_CLAIMS",
    "AuthError",
    "JWTVerifier",
    "SQLiteReplayCache",
]

_log = logging.getLogger("b12labs.service.security")

#: Only the algorithms the CDS Hooks 2.0 spec recommends; both asymmetric.
ALLOWED_ALGORITHMS: Final = frozenset({"RS384", "ES384"})
REQUIRED_CLAIMS: Final = ("iss", "aud", "exp", "iat", "jti")
#: Clock-skew tolerance for ``exp``, ``iat`` and ``nbf``.
LEEWAY_SECONDS: Final = 5.0
#: Default of ``max_token_lifetime_seconds``: the longest ``exp - iat`` accepted (and how far
#: ahead ``exp`` may lie).
MAX_TOKEN_LIFETIME_SECONDS: Final = 300.0
#: Default of ``clock_skew_seconds``: how much older than the lifetime an ``iat`` may be.
CLOCK_SKEW_SECONDS: Final = 60.0
#: The one text a caller sees for every verification failure (the reason goes to the log).
PUBLIC_REASON: Final = "invalid or missing credentials"
#: Upper bound on remembered (iss, jti) pairs; when full (after purging expired ones) new tokens
#: are refused ("replay cache full") rather than forgetting a still-valid jti.
JTI_CACHE_MAX_ENTRIES: Final = 100_000
JWKS_URL_REFRESH_INTERVAL_SECONDS: Final = 60.0
JWKS_FILE_REFRESH_INTERVAL_SECONDS: Final = 1.0
JWKS_MAX_AGE_SECONDS: Final = 3600.0
JWKS_TIMEOUT_SECONDS: Final = 5.0
JWKS_MAX_BYTES: Final = 256 * 1024
_MAX_TOKEN_CHARS: Final = 16 * 1024
#: Larger time claims are not dates (and would lose precision as floats).
_MAX_TIME: Final = 2**53
_MIN_RSA_BITS: Final = 2048
_PRIVATE_JWK_MEMBERS: Final = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})
_SUPPORTED_CRIT: Final = frozenset[str]()


class AuthError(ServiceError):
    """The request is not authenticated. ``reason`` is short and safe to log or return to the
    caller: it never contains token contents."""

    code = "service-auth-failed"

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class _JWKSUnavailable(ServiceError):
    """Loading a JWK Set failed (message is safe to log: no key material)."""


def _safe(value: object) -> str:
    """Render an untrusted value (unverified iss/kid) for a log line."""
    text = repr(value)
    return text if len(text) <= 120 else text[:117] + "..."


def _is_number(value: object) -> bool:
    """A finite JSON number (json.loads accepts NaN/Infinity; bool is an int subclass)."""
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return True  # arbitrarily large ints are finite; math.isfinite would overflow
    return isinstance(value, float) and math.isfinite(value)


class _ReplayCache:
    """Remembers (iss, jti) until the token's ``exp`` (+ leeway); bounded in size."""

    def __init__(self, max_entries: int) -> None:
        self._max = max_entries
        self._expiry: dict[tuple[str, str], float] = {}
        self._heap: list[tuple[float, tuple[str, str]]] = []

    def __len__(self) -> int:
        return len(self._expiry)

    def _purge(self, now: float) -> None:
        while self._heap and self._heap[0][0] <= now:
            expires, key = heapq.heappop(self._heap)
            if self._expiry.get(key) == expires:
                del self._expiry[key]

    def add(self, key: tuple[str, str], expires: float, now: float) -> None:
        """Record ``key``; raise AuthError if it is already present and unexpired."""
        self._purge(now)
        if key in self._expiry:
            raise AuthError("replayed jti")
        if len(self._expiry) >= self._max:
            raise AuthError("replay cache full")
        self._expiry[key] = expires
        heapq.heappush(self._heap, (expires, key))


class SQLiteReplayCache:
    """A replay cache shared by the worker processes of one host (``b12labs serve --workers N``):
    (iss, jti) rows in a SQLite file, inserted atomically, so a token replayed to another worker
    is refused too. Same contract as the in-memory cache: bounded, expired rows purged."""

    _PURGE_EVERY: Final = 256

    def __init__(self, path: str | Path, max_entries: int = JTI_CACHE_MAX_ENTRIES) -> None:
        import sqlite3

        self._max = max_entries
        self._adds = 0
        self._db = sqlite3.connect(
            str(path), timeout=5.0, isolation_level=None, check_same_thread=False
        )
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=OFF")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS jti (iss TEXT NOT NULL, jti TEXT NOT NULL, "
            "expires REAL NOT NULL, PRIMARY KEY (iss, jti)) WITHOUT ROWID"
        )

    def __len__(self) -> int:
        row = self._db.execute("SELECT count(*) FROM jti").fetchone()
        return int(row[0])

    def add(self, key: tuple[str, str], expires: float, now: float) -> None:
        """Record ``key``; raise AuthError if it is already present and unexpired."""
        self._adds += 1
        if self._adds % self._PURGE_EVERY == 1:
            self._db.execute("DELETE FROM jti WHERE expires <= ?", (now,))
            if len(self) >= self._max:
                raise AuthError("replay cache full")
        # Insert, or take over an expired row; rowcount 0 means an unexpired row exists.
        cur = self._db.execute(
            "INSERT INTO jti (iss, jti, expires) VALUES (?, ?, ?) "
            "ON CONFLICT (iss, jti) DO UPDATE SET expires = excluded.expires "
            "WHERE jti.expires <= ?",
            (key[0], key[1], expires, now),
        )
        if cur.rowcount == 0:
            raise AuthError("replayed jti")

    def close(self) -> None:
        self._db.close()


@dataclass
class _IssuerKeys:
    issuer: TrustedIssuer
    keys: dict[str, jwt.PyJWK] | None = None
    loaded_at: float = 0.0
    last_attempt: float | None = None
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    @property
    def refresh_interval(self) -> float:
        if self.issuer.jwks_file is not None:
            return JWKS_FILE_REFRESH_INTERVAL_SECONDS
        return JWKS_URL_REFRESH_INTERVAL_SECONDS

    def may_refresh(self, now: float) -> bool:
        return self.last_attempt is None or now - self.last_attempt >= self.refresh_interval


def _parse_jwks(raw: bytes, iss: str) -> dict[str, jwt.PyJWK]:
    """Usable verification keys of a JWK Set, by kid. Unusable entries are skipped (and logged)."""
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise _JWKSUnavailable("JWK Set is not valid JSON") from None
    if not isinstance(data, dict) or not isinstance(data.get("keys"), list):
        raise _JWKSUnavailable('JWK Set has no "keys" array')
    keys: dict[str, jwt.PyJWK] = {}
    for entry in data["keys"]:
        if not isinstance(entry, dict):
            continue
        kid = entry.get("kid")
        if not isinstance(kid, str) or not kid:
            continue  # without a kid a key can never be selected
        problem = _key_problem(entry)
        if problem is None:
            public = {k: v for k, v in entry.items() if k not in _PRIVATE_JWK_MEMBERS}
            if len(public) != len(entry):
                _log.warning(
                    "JWK Set of iss=%s contains private key material (kid=%s)",
                    _safe(iss),
                    _safe(kid),
                )
            try:
                key = jwt.PyJWK(public, algorithm=_key_algorithm(public))
            except (jwt.PyJWTError, ValueError, TypeError):
                problem = "cannot be loaded"
            else:
                problem = _key_strength_problem(key)
        if problem is not None:
            _log.info("skipping JWK kid=%s of iss=%s: %s", _safe(kid), _safe(iss), problem)
            continue
        if kid in keys:
            _log.warning(
                "JWK Set of iss=%s has duplicate kid=%s; keeping the first", _safe(iss), _safe(kid)
            )
            continue
        keys[kid] = key
    return keys


def _key_algorithm(entry: Mapping[str, Any]) -> str:
    alg = entry.get("alg")
    if isinstance(alg, str):
        return alg
    return "RS384" if entry.get("kty") == "RSA" else "ES384"


def _key_problem(entry: Mapping[str, Any]) -> str | None:
    if entry.get("use", "sig") != "sig":
        return "use is not sig"
    ops = entry.get("key_ops")
    if ops is not None and (not isinstance(ops, list) or "verify" not in ops):
        return "key_ops does not allow verify"
    kty = entry.get("kty")
    if kty == "RSA":
        pass
    elif kty == "EC":
        if entry.get("crv") != "P-384":
            return "EC key is not on curve P-384"
    else:
        return f"unsupported kty {_safe(kty)}"
    if _key_algorithm(entry) not in ALLOWED_ALGORITHMS:
        return "alg is not RS384/ES384"
    return None


def _key_strength_problem(key: jwt.PyJWK) -> str | None:
    material = key.key
    if key.algorithm_name == "RS384":
        if not isinstance(material, rsa.RSAPublicKey):
            return "RS384 needs an RSA public key"
        if material.key_size < _MIN_RSA_BITS:
            return f"RSA key shorter than {_MIN_RSA_BITS} bits"
    elif key.algorithm_name == "ES384":
        if not isinstance(material, ec.EllipticCurvePublicKey) or not isinstance(
            material.curve, ec.SECP384R1
        ):
            return "ES384 needs an EC P-384 public key"
    else:  # pragma: no cover - filtered by _key_problem
        return "alg is not RS384/ES384"
    return None


class JWTVerifier:
    """Verifies CDS Client JWTs against the trusted issuers of a :class:`ServiceConfig`.

    One instance is meant to live for the whole service (it holds the JWK Set and replay caches)
    and to be used from a single event loop. ``http_client`` is used for ``jwks_url`` fetches
    (the caller owns and closes it); without one a short-lived client is opened per fetch.
    ``clock`` returns the current Unix time and exists for tests. ``replay_db`` (a SQLite file
    path) shares the jti replay cache between the worker processes of one host; without it the
    cache is in memory, per process.
    """

    def __init__(
        self,
        config: ServiceConfig,
        *,
        http_client: httpx.AsyncClient | None = None,
        clock: Callable[[], float] = time.time,
        replay_db: str | Path | None = None,
    ) -> None:
        self._config = config
        self._http = http_client
        self._clock = clock
        self._issuers = {i.iss: _IssuerKeys(i) for i in config.trusted_issuers}
        self._replay: _ReplayCache | SQLiteReplayCache = (
            SQLiteReplayCache(replay_db)
            if replay_db is not None
            else _ReplayCache(JTI_CACHE_MAX_ENTRIES)
        )

    def close(self) -> None:
        """Release the shared replay cache file (in-memory caches need nothing)."""
        if isinstance(self._replay, SQLiteReplayCache):
            self._replay.close()

    async def verify(
        self, authorization: str | None, audience: str | Sequence[str]
    ) -> dict[str, Any]:
        """Verify an ``Authorization`` header value for a call to ``audience`` (the endpoint URL,
        see :meth:`ServiceConfig.audience`; or several accepted URLs, of which the token's
        ``aud`` must name one). Returns the verified claims; raises AuthError."""
        log_ctx: dict[str, object] = {}
        try:
            claims = await self._verify(authorization, audience, log_ctx)
        except AuthError as exc:
            _log.warning(
                "CDS client JWT rejected: %s (iss=%s, kid=%s)",
                exc.reason,
                _safe(log_ctx.get("iss")),
                _safe(log_ctx.get("kid")),
            )
            raise
        _log.debug(
            "CDS client JWT accepted (iss=%s, kid=%s)",
            _safe(log_ctx.get("iss")),
            _safe(log_ctx.get("kid")),
        )
        return claims

    async def _verify(
        self, authorization: str | None, audience: str | Sequence[str], log_ctx: dict[str, object]
    ) -> dict[str, Any]:
        token = _bearer_token(authorization)

        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise AuthError("malformed token") from None
        alg = header.get("alg")
        if not isinstance(alg, str) or alg not in ALLOWED_ALGORITHMS:
            raise AuthError("unsupported alg")
        kid = header.get("kid")
        log_ctx["kid"] = kid
        if not isinstance(kid, str) or not kid:
            raise AuthError("missing kid")
        typ = header.get("typ")
        if typ is not None and (not isinstance(typ, str) or typ.upper() != "JWT"):
            raise AuthError("unsupported typ")
        crit = header.get("crit")
        if crit is not None and (
            not isinstance(crit, list)
            or any(not isinstance(c, str) or c not in _SUPPORTED_CRIT for c in crit)
        ):
            raise AuthError("unsupported crit")

        # Unverified look at iss, only to choose which issuer's keys to verify with.
        try:
            unverified = jwt.decode(token, options={"verify_signature": False})
        except jwt.PyJWTError:
            raise AuthError("malformed token") from None
        iss = unverified.get("iss")
        log_ctx["iss"] = iss
        if iss is None:
            raise AuthError("missing claim iss")
        state = self._issuers.get(iss) if isinstance(iss, str) else None
        if state is None:
            raise AuthError("unknown issuer")

        key = await self._key_for(state, kid)
        if key.algorithm_name != alg:
            raise AuthError("key does not match alg")

        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key=key,
                algorithms=[alg],
                audience=audience if isinstance(audience, str) else list(audience),
                issuer=iss,
                options={
                    "verify_signature": True,
                    "verify_aud": True,
                    "verify_iss": True,
                    "verify_jti": True,
                    # time claims are checked below against the injectable clock
                    "verify_exp": False,
                    "verify_iat": False,
                    "verify_nbf": False,
                    "require": list(REQUIRED_CLAIMS),
                    "enforce_minimum_key_length": True,
                },
            )
        except jwt.InvalidSignatureError:
            raise AuthError("bad signature") from None
        except jwt.MissingRequiredClaimError as exc:
            raise AuthError(f"missing claim {exc.claim}") from None
        except jwt.InvalidAudienceError:
            raise AuthError("wrong audience") from None
        except jwt.InvalidIssuerError:
            raise AuthError("unknown issuer") from None
        except jwt.exceptions.InvalidJTIError:
            raise AuthError("invalid claim jti") from None
        except jwt.InvalidAlgorithmError:
            raise AuthError("unsupported alg") from None
        except jwt.PyJWTError:
            raise AuthError("invalid token") from None

        now = self._clock()
        lifetime = self._config.max_token_lifetime_seconds
        exp, iat, nbf, jti = claims["exp"], claims["iat"], claims.get("nbf"), claims["jti"]
        if not _is_number(exp) or abs(exp) > _MAX_TIME:
            raise AuthError("invalid claim exp")
        if not _is_number(iat) or abs(iat) > _MAX_TIME:
            raise AuthError("invalid claim iat")
        if exp <= now - LEEWAY_SECONDS:
            raise AuthError("token expired")
        if exp > now + lifetime + LEEWAY_SECONDS or exp - iat > lifetime:
            raise AuthError("token lifetime too long")
        if iat > now + LEEWAY_SECONDS:
            raise AuthError("token issued in the future")
        if now - iat > lifetime + self._config.clock_skew_seconds:
            raise AuthError("token issued too long ago")
        if nbf is not None and (not _is_number(nbf) or nbf > now + LEEWAY_SECONDS):
            raise AuthError("token not yet valid")
        if not isinstance(jti, str) or not jti:
            raise AuthError("invalid claim jti")

        self._replay.add((iss, jti), float(exp) + LEEWAY_SECONDS, now)
        return claims

    async def _key_for(self, state: _IssuerKeys, kid: str) -> jwt.PyJWK:
        now = self._clock()
        if state.keys is None or now - state.loaded_at >= JWKS_MAX_AGE_SECONDS:
            await self._refresh(state)
        if state.keys is not None and kid not in state.keys:
            # Unknown kid: the issuer may have rotated its keys. Re-load, rate-limited.
            await self._refresh(state)
        if state.keys is None:
            raise AuthError("jwks unavailable")
        key = state.keys.get(kid)
        if key is None:
            raise AuthError("unknown key id")
        return key

    async def _refresh(self, state: _IssuerKeys) -> None:
        async with state.lock:
            now = self._clock()
            if not state.may_refresh(now):
                return  # rate-limited, or another task refreshed while we waited
            state.last_attempt = now
            try:
                raw = await self._read_jwks(state.issuer)
                keys = _parse_jwks(raw, state.issuer.iss)
            except _JWKSUnavailable as exc:
                _log.warning("cannot load JWK Set of iss=%s: %s", _safe(state.issuer.iss), exc)
                return
            state.keys = keys
            state.loaded_at = now
            _log.info("loaded %d key(s) for iss=%s", len(keys), _safe(state.issuer.iss))

    async def _read_jwks(self, issuer: TrustedIssuer) -> bytes:
        if issuer.jwks_file is not None:
            return await asyncio.to_thread(_read_file, issuer.jwks_file)
        if issuer.jwks_url is None:  # pragma: no cover - excluded by TrustedIssuer validation
            raise _JWKSUnavailable("no JWKS source configured")
        if self._http is not None:
            return await _fetch(self._http, issuer.jwks_url)
        async with httpx.AsyncClient(timeout=JWKS_TIMEOUT_SECONDS) as client:
            return await _fetch(client, issuer.jwks_url)


def _bearer_token(authorization: str | None) -> str:
    if authorization is None or not authorization.strip():
        raise AuthError("missing bearer token")
    parts = authorization.split()
    if len(parts) != 2 or parts[0].lower() != "bearer":
        raise AuthError("malformed authorization header")
    token = parts[1]
    if len(token) > _MAX_TOKEN_CHARS:
        raise AuthError("token too large")
    if token.count(".") != 2:
        raise AuthError("malformed token")
    return token


def _read_file(path: Path) -> bytes:
    try:
        with path.open("rb") as fh:
            raw = fh.read(JWKS_MAX_BYTES + 1)
    except OSError as exc:
        raise _JWKSUnavailable(f"cannot read JWKS file: {exc.strerror}") from None
    if len(raw) > JWKS_MAX_BYTES:
        raise _JWKSUnavailable("JWKS file too large")
    return raw


async def _fetch(client: httpx.AsyncClient, url: str) -> bytes:
    try:
        status, body = await get_capped(
            client,
            url,
            headers={"Accept": "application/json"},
            timeout=JWKS_TIMEOUT_SECONDS,
            max_bytes=JWKS_MAX_BYTES,
        )
    except TooLarge:
        raise _JWKSUnavailable("JWKS response too large") from None
    except httpx.HTTPError as exc:
        raise _JWKSUnavailable(f"JWKS fetch failed: {type(exc).__name__}") from None
    if status != 200:
        raise _JWKSUnavailable(f"JWKS URL answered HTTP {status}")
    return body
