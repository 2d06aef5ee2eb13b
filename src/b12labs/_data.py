"""Locating and reading the data files of ``reference_ranges/``.

In an installed wheel the folder ships as ``b12labs/reference_ranges``; in a source checkout
(editable install) it is the repository's top-level ``reference_ranges/``.
"""

from __future__ import annotations

import functools
import tomllib
from importlib.resources import files
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any

__all__ = ["read_toml", "reference_ranges"]


@functools.cache
def reference_ranges() -> Traversable:
    """The ``reference_ranges`` folder, wherever this installation keeps it."""
    packaged = files("b12labs").joinpath("reference_ranges")
    if packaged.is_dir():
        return packaged
    source = Path(__file__).resolve().parents[2] / "reference_ranges"
    if source.is_dir():
        return source
    raise FileNotFoundError(  # pragma: no cover - a broken installation
        "b12labs cannot find its reference_ranges data folder; reinstall the package"
    )


@functools.cache
def read_toml(*parts: str) -> dict[str, Any]:
    """Parse a TOML file below ``reference_ranges`` (cached: the files are read-only data)."""
    node = reference_ranges()
    for part in parts:
        node = node.joinpath(part)
    with node.open("rb") as fh:
        return tomllib.load(fh)
