"""Paths tests share: the repository and ../shared beside it (as on CI)."""

from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
EXTERNAL = SHARED / "external"
