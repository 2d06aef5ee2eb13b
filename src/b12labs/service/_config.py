"""Configuration of the CDS Hooks service: pydantic models and a TOML loader.

Example ``service.toml``::

    base_url = "https://cds.example.org"   # public URL; JWT aud = base_url + "/cds-services/" + id
    max_body_bytes = 1048576               # optional, default 1 MiB
    fhir_timeout_seconds = 10              # optional, default 10 s
    max_token_lifetime_seconds = 300       # optional, default 300 s (JWT exp - iat)
    clock_skew_seconds = 60                # optional, default 60 s (how much older iat may be)

    [[trusted_issuers]]
    iss = "https://ehr.example.org"
    jwks_url = "https://ehr.example.org/.well-known/jwks.json"
    # or: jwks_file = "keys/ehr-jwks.json"  (relative to this file's folder)
    fhir_servers = ["https://ehr.example.org/fhir/r4"]   # the only fhirServer values accepted

Limits of one hook call (all optional): ``call_deadline_seconds`` (20), ``max_fhir_pages``
(5 pages per prefetch key), ``max_fhir_bytes`` (8 MiB fetched per call), ``max_resources``
(2,000 resources per call), ``interpret_concurrency`` (2 interpretations at once per process),
``header_timeout_seconds`` (10: time to send a complete request head).

``fhir_servers`` at the top level is the allowlist used when authentication is off
(``b12labs serve --allow-unauthenticated``, which also takes ``--fhir-server URL``); with
authentication on, each trusted issuer's own list applies. ``allow_loopback_fhir = true`` (or
``--allow-loopback-fhir``) lets loopback servers (``localhost``, ``127.0.0.0/8``, ``::1``, plain
http allowed) into the lists: a development setting, off by default.

``allow_unauthenticated`` is deliberately *not* accepted from the file: it can only be switched on
by the caller (the command-line flag), so a copied or tampered config file cannot silently turn
authentication off.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from ..errors import ServiceError

__all__ = [
    "DEFAULT_CLOCK_SKEW_SECONDS",
    "DEFAULT_FHIR_TIMEOUT_SECONDS",
    "DEFAULT_MAX_BODY_BYTES",
    "DEFAULT_MAX_TOKEN_LIFETIME_SECONDS",
    "ConfigError",
    "ServiceConfig",
    "TrustedIssuer",
    "load_config",
]

DEFAULT_MAX_BODY_BYTES = 1024 * 1024
DEFAULT_FHIR_TIMEOUT_SECONDS = 10.0
DEFAULT_MAX_TOKEN_LIFETIME_SECONDS = 300.0
DEFAULT_CLOCK_SKEW_SECONDS = 60.0
DEFAULT_CALL_DEADLINE_SECONDS = 20.0
DEFAULT_MAX_FHIR_PAGES = 5
DEFAULT_MAX_FHIR_BYTES = 8 * 1024 * 1024
DEFAULT_MAX_RESOURCES = 2000
DEFAULT_INTERPRET_CONCURRENCY = 2
_MAX_URL_CHARS = 2048

_LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})
# Keys that exist on ServiceConfig but must never come from the file.
_CLI_ONLY_KEYS = ("allow_unauthenticated",)


class ConfigError(ServiceError, ValueError):
    """The service configuration file is missing, unreadable or invalid.

    ``str(err)`` is a human-readable message naming the file and, where known, the offending
    key (e.g. ``service.toml: trusted_issuers[0].jwks_url: ...``); several problems are
    reported one per line.
    """

    code = "service-config-invalid"

    def __init__(self, path: str | os.PathLike[str], problems: Sequence[tuple[str | None, str]]):
        self.path = Path(path)
        self.problems: tuple[tuple[str | None, str], ...] = tuple(problems)
        lines = [
            f"{self.path}: {key}: {msg}" if key else f"{self.path}: {msg}"
            for key, msg in self.problems
        ]
        super().__init__("\n".join(lines))


def is_loopback(host: str | None) -> bool:
    """``localhost``, ``127.0.0.0/8`` or ``::1`` (textual check; no name resolution)."""
    if host is None:
        return False
    host = host.lower().rstrip(".")
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        import ipaddress

        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def normalise_fhir_base(value: str) -> str | None:
    """``scheme://host[:port]/path`` (lower-case scheme and host, explicit non-default port, no
    trailing slash), or None when ``value`` is not an absolute http(s) URL without credentials,
    query, fragment, dot segments or encoded separators. Never raises."""
    if not isinstance(value, str) or not value or len(value) > _MAX_URL_CHARS:
        return None
    if not value.isascii() or any(c.isspace() or ord(c) < 32 for c in value):
        return None
    try:
        parts = urlsplit(value)
        port = parts.port
        host = parts.hostname
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not host:
        return None
    if parts.username is not None or parts.password is not None or parts.query or parts.fragment:
        return None
    if "?" in value or "#" in value or "\\" in value:
        return None
    path = parts.path.rstrip("/")
    if not path_is_plain(path):
        return None
    scheme = parts.scheme.lower()
    default = 443 if scheme == "https" else 80
    netloc = f"[{host}]" if ":" in host else host
    if port is not None and port != default:
        netloc += f":{port}"
    return f"{scheme}://{netloc}{path}"


def path_is_plain(path: str) -> bool:
    """No ``.``/``..`` segments, empty segments or percent-encoded ``.``, ``/`` or ``\\``."""
    lowered = path.lower()
    if any(x in lowered for x in ("%2e", "%2f", "%5c", "\\")):
        return False
    segments = path.split("/")[1:] if path else []
    return all(seg not in ("", ".", "..") for seg in segments)


def _check_fhir_servers(values: tuple[str, ...], allow_loopback: bool, what: str) -> None:
    for value in values:
        base = normalise_fhir_base(value)
        if base is None:
            raise ValueError(
                f"{what}: {value!r} is not a FHIR base URL (absolute, no query or credentials)"
            )
        host = urlsplit(base).hostname
        if is_loopback(host):
            if not allow_loopback:
                raise ValueError(
                    f"{what}: {value!r} is a loopback server; set allow_loopback_fhir = true "
                    "(development only) to allow it"
                )
        elif not base.startswith("https://"):
            raise ValueError(f"{what}: {value!r} must use https://")


def _check_url(value: str, what: str) -> str:
    """Require an absolute https URL (http only for loopback hosts, i.e. local development)."""
    parts = urlsplit(value)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise ValueError(f"{what} must be an absolute https:// URL, got {value!r}")
    if parts.scheme == "http" and parts.hostname not in _LOOPBACK_HOSTS:
        raise ValueError(
            f"{what} must use https:// (plain http is only allowed for localhost), got {value!r}"
        )
    if parts.username or parts.password:
        raise ValueError(f"{what} must not contain credentials")
    if parts.fragment:
        raise ValueError(f"{what} must not contain a #fragment")
    return value


class TrustedIssuer(BaseModel):
    """A CDS Client (JWT ``iss``) whose signed requests the service accepts.

    Its public keys come from exactly one of ``jwks_url`` (fetched over https, never from a
    ``jku`` taken from a token) or ``jwks_file`` (a JWK Set on disk).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    iss: str = Field(min_length=1)
    jwks_url: str | None = None
    jwks_file: Path | None = None
    #: FHIR base URLs this issuer's requests may name as ``fhirServer`` (none: prefetch only).
    fhir_servers: tuple[str, ...] = ()

    @field_validator("iss")
    @classmethod
    def _iss_not_blank(cls, value: str) -> str:
        if not value.strip() or value != value.strip():
            raise ValueError("iss must be non-blank and have no leading/trailing whitespace")
        return value

    @field_validator("jwks_url")
    @classmethod
    def _jwks_url_is_https(cls, value: str | None) -> str | None:
        if value is None:
            return None
        return _check_url(value, "jwks_url")

    @field_validator("jwks_file")
    @classmethod
    def _resolve_jwks_file(cls, value: Path | None, info: ValidationInfo) -> Path | None:
        if value is None:
            return None
        base = (info.context or {}).get("config_dir")
        if not value.is_absolute() and base is not None:
            value = Path(base) / value
        if not value.is_file():
            raise ValueError(f"JWKS file not found: {value}")
        return value

    @model_validator(mode="after")
    def _exactly_one_key_source(self) -> TrustedIssuer:
        if (self.jwks_url is None) == (self.jwks_file is None):
            raise ValueError("exactly one of jwks_url or jwks_file is required")
        return self


class ServiceConfig(BaseModel):
    """Validated service configuration (see the module docstring for the file format)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    base_url: str
    max_body_bytes: int = Field(default=DEFAULT_MAX_BODY_BYTES, gt=0, strict=True)
    fhir_timeout_seconds: float = Field(default=DEFAULT_FHIR_TIMEOUT_SECONDS, gt=0, le=600)
    max_token_lifetime_seconds: float = Field(
        default=DEFAULT_MAX_TOKEN_LIFETIME_SECONDS, gt=0, le=3600
    )
    clock_skew_seconds: float = Field(default=DEFAULT_CLOCK_SKEW_SECONDS, ge=0, le=300)
    call_deadline_seconds: float = Field(default=DEFAULT_CALL_DEADLINE_SECONDS, gt=0, le=600)
    #: a connection must send a complete request head within this time (HTTP layer)
    header_timeout_seconds: float = Field(default=10.0, gt=0, le=3600)
    max_fhir_pages: int = Field(default=DEFAULT_MAX_FHIR_PAGES, ge=1, le=100, strict=True)
    max_fhir_bytes: int = Field(default=DEFAULT_MAX_FHIR_BYTES, gt=0, strict=True)
    max_resources: int = Field(default=DEFAULT_MAX_RESOURCES, gt=0, le=100_000, strict=True)
    interpret_concurrency: int = Field(
        default=DEFAULT_INTERPRET_CONCURRENCY, ge=1, le=64, strict=True
    )
    #: allowlist of FHIR servers when authentication is off (see the module docstring)
    fhir_servers: tuple[str, ...] = ()
    #: development setting: loopback FHIR servers may be listed
    allow_loopback_fhir: bool = False
    trusted_issuers: tuple[TrustedIssuer, ...] = ()
    allow_unauthenticated: bool = False

    @field_validator("base_url")
    @classmethod
    def _normalise_base_url(cls, value: str) -> str:
        value = value.strip()
        _check_url(value, "base_url")
        if urlsplit(value).query:
            raise ValueError("base_url must not contain a ?query")
        return value.rstrip("/")

    @model_validator(mode="after")
    def _unique_issuers(self) -> ServiceConfig:
        _check_fhir_servers(self.fhir_servers, self.allow_loopback_fhir, "fhir_servers")
        for n, issuer in enumerate(self.trusted_issuers):
            _check_fhir_servers(
                issuer.fhir_servers, self.allow_loopback_fhir, f"trusted_issuers[{n}].fhir_servers"
            )
        seen: set[str] = set()
        for issuer in self.trusted_issuers:
            if issuer.iss in seen:
                raise ValueError(f"trusted issuer {issuer.iss!r} is listed more than once")
            seen.add(issuer.iss)
        return self

    def issuer(self, iss: str) -> TrustedIssuer | None:
        """The trusted issuer with exactly this ``iss`` (no normalisation), or ``None``."""
        for issuer in self.trusted_issuers:
            if issuer.iss == iss:
                return issuer
        return None

    def fhir_allowlist(self, iss: str | None) -> frozenset[str]:
        """Normalised FHIR base URLs a request may name: the issuer's (``iss`` from a verified
        token), or the top-level list when authentication is off and ``iss`` is None."""
        if iss is None:
            values = self.fhir_servers if self.allow_unauthenticated else ()
        else:
            issuer = self.issuer(iss)
            values = issuer.fhir_servers if issuer is not None else ()
        return frozenset(b for v in values if (b := normalise_fhir_base(v)) is not None)

    def audience(self, service_id: str | None = None) -> str:
        """The JWT ``aud`` a client must use: ``{base_url}/cds-services[/{service_id}]``."""
        url = f"{self.base_url}/cds-services"
        return f"{url}/{service_id}" if service_id else url


def _loc_to_key(loc: tuple[int | str, ...]) -> str | None:
    key = ""
    for part in loc:
        if isinstance(part, int):
            key += f"[{part}]"
        else:
            key += f".{part}" if key else part
    return key or None


def load_config(
    path: str | os.PathLike[str],
    *,
    allow_unauthenticated: bool = False,
    fhir_servers: Sequence[str] = (),
    allow_loopback_fhir: bool = False,
) -> ServiceConfig:
    """Read and validate a service TOML config file.

    Relative ``jwks_file`` paths resolve against the folder holding the config file, and a
    trailing slash on ``base_url`` is dropped. ``allow_unauthenticated`` comes from the caller
    (the CLI flag); the file may not set it. ``fhir_servers`` (``--fhir-server``) are added to
    the top-level list, and ``allow_loopback_fhir`` (``--allow-loopback-fhir``) switches the
    development setting on. Raises :class:`ConfigError` naming the file and key.
    """
    file = Path(path)
    try:
        raw = file.read_bytes()
    except FileNotFoundError:
        raise ConfigError(file, [(None, "config file not found")]) from None
    except OSError as exc:
        raise ConfigError(file, [(None, f"cannot read config file: {exc.strerror}")]) from None
    try:
        data: dict[str, Any] = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise ConfigError(file, [(None, "config file is not valid UTF-8")]) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(file, [(None, f"invalid TOML: {exc}")]) from None

    problems: list[tuple[str | None, str]] = [
        (key, "cannot be set in the config file; use the command-line flag instead")
        for key in _CLI_ONLY_KEYS
        if key in data
    ]
    if problems:
        raise ConfigError(file, problems)
    data["allow_unauthenticated"] = allow_unauthenticated
    if fhir_servers:
        listed = data.get("fhir_servers", [])
        data["fhir_servers"] = [*(listed if isinstance(listed, list) else [listed]), *fhir_servers]
    if allow_loopback_fhir:
        data["allow_loopback_fhir"] = True
    try:
        return ServiceConfig.model_validate(data, context={"config_dir": file.resolve().parent})
    except ValidationError as exc:
        raise ConfigError(
            file,
            [
                (_loc_to_key(err["loc"]), err["msg"].removeprefix("Value error, "))
                for err in exc.errors(include_url=False)
            ],
        ) from None
