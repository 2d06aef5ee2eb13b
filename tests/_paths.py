"""Paths tests share.

``FIXTURES`` holds third-party material copied into the repository (each folder with its
``SOURCE.md`` and licence), so the suite runs from a clone or an sdist with nothing beside it.
``SPEC`` is the clinical specification the catalogue is compared with; it lives outside the
repository (``../shared/domain``, present on CI), and the tests that read it skip, with the
reason, when it is absent.
"""

from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO / "tests" / "fixtures"
EXTERNAL = FIXTURES / "external"
SHARED = REPO.parent / "shared"
#: The specification the catalogue implements: v2, the current one.
SPEC = SHARED / "domain" / "RULES.md"


def spec_text() -> str:
    """The specification's text; skips the calling test, saying why, when it is not present."""
    import pytest

    if not SPEC.is_file():
        pytest.skip(f"specification comparison skipped: {SPEC} is not present (it lives beside "
                    "the repository, as on CI; the catalogue's own tests still run)")
    return SPEC.read_text(encoding="utf-8")
