"""b12labs as a CDS Hooks 2.0 service (extra ``service``): ``b12labs serve``.

``create_app(config)`` builds the FastAPI application; ``load_config(path)`` reads the TOML
configuration (see :mod:`b12labs.service._config`). The configuration part needs only the core
dependencies; ``create_app`` needs the extra (``pip install 'b12labs[service]'``) and raises
:class:`~b12labs.errors.MissingExtraError` naming the missing package without it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._config import ConfigError, ServiceConfig, TrustedIssuer, load_config

if TYPE_CHECKING:  # pragma: no cover
    from .app import create_app

__all__ = ["ConfigError", "ServiceConfig", "TrustedIssuer", "create_app", "load_config"]

#: Modules the service needs beyond the core dependencies (import name -> distribution).
REQUIRED_MODULES = ("fastapi", "uvicorn", "httpx", "jwt", "cryptography", "fhir.resources")


def require_extra(feature: str = "the CDS Hooks service") -> None:
    """Raise MissingExtraError if a module of the ``service`` extra is not importable."""
    import importlib.util

    from ..errors import MissingExtraError

    for name in REQUIRED_MODULES:
        try:
            found = importlib.util.find_spec(name) is not None
        except ModuleNotFoundError:  # parent package missing (fhir.resources)
            found = False
        if not found:
            raise MissingExtraError(feature, "service", name)


def __getattr__(name: str) -> Any:
    if name == "create_app":
        require_extra()
        from .app import create_app

        return create_app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
