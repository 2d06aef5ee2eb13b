"""``b12labs serve``: run the CDS Hooks service with uvicorn.

The lead's ``b12labs.cli`` calls :func:`add_arguments` on its ``serve`` sub-parser and
:func:`run` with the parsed namespace; ``python -m b12labs.service`` does the same.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

__all__ = ["add_arguments", "log_config", "run"]

_LEVELS = ("debug", "info", "warning", "error")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``serve`` options to ``parser``."""
    parser.add_argument("--host", default="127.0.0.1", help="interface to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8080, help="TCP port (default 8080)")
    parser.add_argument(
        "--workers",
        type=int,
        default=1,
        metavar="N",
        help="worker processes (default 1; about one per CPU core)",
    )
    parser.add_argument(
        "--config",
        type=Path,
        metavar="FILE",
        help="service TOML: base_url and [[trusted_issuers]] (iss with jwks_url or jwks_file)",
    )
    parser.add_argument(
        "--allow-unauthenticated",
        action="store_true",
        help="skip JWT verification (local demos only; logs a warning)",
    )
    parser.add_argument(
        "--fhir-server",
        action="append",
        default=[],
        metavar="URL",
        help="FHIR base URL that requests may name as fhirServer when authentication is off "
        "(repeatable; with JWT on, each trusted issuer's fhir_servers apply)",
    )
    parser.add_argument(
        "--allow-loopback-fhir",
        action="store_true",
        help="allow loopback FHIR servers (localhost, 127.0.0.0/8, ::1) in the allowlists "
        "(development only)",
    )
    parser.add_argument("--log-level", choices=_LEVELS, default="info", help="default info")


def log_config(level: str) -> dict[str, Any]:
    """``logging.config.dictConfig`` for uvicorn and b12labs (applied in every worker)."""
    upper = level.upper()
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {
            "plain": {"format": "%(asctime)s %(levelname)s %(name)s [%(process)d]: %(message)s"}
        },
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "formatter": "plain",
                "stream": "ext://sys.stderr",
            }
        },
        "loggers": {
            "b12labs": {"handlers": ["stderr"], "level": upper, "propagate": False},
            "uvicorn": {"handlers": ["stderr"], "level": upper, "propagate": False},
            "uvicorn.error": {"level": upper},
            "uvicorn.access": {"handlers": [], "level": "WARNING", "propagate": False},
            # httpx logs request URLs (FHIR searches carry the patient id) at INFO
            "httpx": {"handlers": ["stderr"], "level": "WARNING", "propagate": False},
            "httpcore": {"handlers": ["stderr"], "level": "WARNING", "propagate": False},
        },
    }


def _fail(message: str) -> int:
    print(f"b12labs serve: {message}", file=sys.stderr)
    return 2


def run(args: argparse.Namespace) -> int:
    """Start the server (blocks until it stops). Returns a process exit code."""
    from ..errors import MissingExtraError
    from . import require_extra

    try:
        require_extra("b12labs serve")
    except MissingExtraError as exc:
        return _fail(str(exc))

    from ._config import ConfigError, ServiceConfig, load_config

    config_path: Path | None = args.config
    allow: bool = bool(args.allow_unauthenticated)
    if config_path is None and not allow:
        return _fail(
            "refusing to start without --config FILE: the config names the EHRs (trusted JWT "
            "issuers) allowed to call the service. For a local demo without authentication "
            "pass --allow-unauthenticated."
        )
    if args.workers < 1:
        return _fail("--workers must be at least 1")
    if not 0 <= args.port <= 65535:
        return _fail("--port must be between 0 and 65535")
    base_url = f"http://{'127.0.0.1' if args.host in ('0.0.0.0', '::') else args.host}:{args.port}"
    servers: list[str] = list(getattr(args, "fhir_server", None) or [])
    loopback = bool(getattr(args, "allow_loopback_fhir", False))
    try:
        if config_path is not None:
            config = load_config(
                config_path,
                allow_unauthenticated=allow,
                fhir_servers=servers,
                allow_loopback_fhir=loopback,
            )
        else:
            config = ServiceConfig(
                base_url=base_url,
                allow_unauthenticated=True,
                fhir_servers=tuple(servers),
                allow_loopback_fhir=loopback,
            )
    except ConfigError as exc:
        return _fail(str(exc))
    except ValueError as exc:  # pydantic error of the fallback config (an odd --host)
        return _fail(f"cannot build a demo configuration: {exc}")

    import uvicorn

    from ._uvicorn import ENV_HEADER_TIMEOUT, MAX_HEADER_BYTES

    os.environ[ENV_HEADER_TIMEOUT] = str(config.header_timeout_seconds)

    common: dict[str, Any] = {
        "host": args.host,
        "port": args.port,
        "log_config": log_config(args.log_level),
        "log_level": args.log_level,
        "access_log": False,
        "server_header": False,
        "timeout_graceful_shutdown": 10,
        # TCP_NODELAY on every connection (uvicorn's multi-worker sockets lack it: +40 ms),
        # JSON bodies for the 400/431 answers of h11, a deadline for request heads
        "http": "b12labs.service._uvicorn:NoDelayHTTPProtocol",
        "h11_max_incomplete_event_size": MAX_HEADER_BYTES,
        "timeout_keep_alive": 5,
    }
    if args.workers == 1:
        from .app import create_app

        uvicorn.run(create_app(config), **common)
        return 0
    # Several processes: uvicorn needs an import string; the workers read the config path
    # (already validated above) from the environment.
    if config_path is not None:
        os.environ["B12LABS_SERVICE_CONFIG"] = str(config_path.resolve())
    else:
        os.environ.pop("B12LABS_SERVICE_CONFIG", None)
        os.environ["B12LABS_SERVICE_BASE_URL"] = config.base_url
    os.environ["B12LABS_SERVICE_FHIR_SERVERS"] = " ".join(servers)
    os.environ["B12LABS_SERVICE_ALLOW_LOOPBACK_FHIR"] = "1" if loopback else ""
    if allow:
        os.environ["B12LABS_SERVICE_ALLOW_UNAUTHENTICATED"] = "1"
    else:
        os.environ.pop("B12LABS_SERVICE_ALLOW_UNAUTHENTICATED", None)
    # One jti replay cache for all workers of this host (a token replayed to another worker
    # must fail too): a SQLite file in a private temporary folder, removed at exit.
    import tempfile

    with tempfile.TemporaryDirectory(prefix="b12labs-serve-") as folder:
        os.environ["B12LABS_SERVICE_REPLAY_DB"] = str(Path(folder) / "jti.sqlite3")
        uvicorn.run(
            "b12labs.service.app:app_from_env", factory=True, workers=args.workers, **common
        )
    return 0
