"""JSON parsing with limits, for request bodies and FHIR server responses.

:func:`loads_limited` refuses (:class:`JSONLimitError`, a ``ValueError``) what the standard
parser would accept but the service must not process:

* nesting deeper than :data:`MAX_JSON_DEPTH` (the C parser recurses; ~1,000 levels overflow);
* runs of more than :data:`MAX_INT_DIGITS` digits in a number (a 4,000-digit value cannot
  become a float) and exponents of three or more digits (``1e999`` overflows to infinity);
* ``NaN`` and ``Infinity`` (not JSON);
* bytes that are not UTF-8.

All checks run before parsing, vectorised with numpy over the bytes outside strings (a few
milliseconds for 1.4 MB), so that the standard C parser then runs without per-number hooks.
Messages name the limit, never the content.
"""

from __future__ import annotations

import json
import re
from typing import Any, Final

import numpy as np

from ..errors import ServiceError

__all__ = [
    "MAX_HEADER_BYTES",
    "MAX_INT_DIGITS",
    "MAX_JSON_DEPTH",
    "JSONLimitError",
    "loads_limited",
]

#: Largest request head (request line and headers) accepted; larger gets 431 (checked by the
#: HTTP protocol while reading, and by the app for heads that arrived in one piece).
MAX_HEADER_BYTES: Final = 16 * 1024
MAX_JSON_DEPTH: Final = 64
MAX_INT_DIGITS: Final = 30
_LONG_DIGITS: Final = re.compile(rb"[0-9]{%d,}" % (MAX_INT_DIGITS + 1))
_BIG_EXPONENT: Final = re.compile(rb"[eE][+-]?[0-9]{3,}")
_NOT_JSON: Final = re.compile(rb"NaN|Infinity")


class JSONLimitError(ServiceError, ValueError):
    """The document is not JSON, or passes one of the limits (message is safe to return)."""


def _outside_strings(raw: bytes) -> np.ndarray[Any, np.dtype[np.uint8]]:
    """The bytes of ``raw`` that are not inside a JSON string (vectorised, no Python loop per
    byte: a quote counts unless an odd run of backslashes precedes it)."""
    arr = np.frombuffer(raw, dtype=np.uint8)
    quote = arr == 0x22
    if not quote.any():
        return arr
    backslash = arr == 0x5C
    if backslash.any():
        idx = np.arange(arr.size)
        last_plain = np.maximum.accumulate(np.where(backslash, -1, idx))
        q = np.flatnonzero(quote)
        before = q - 1
        run = np.where(before >= 0, before - last_plain[np.maximum(before, 0)], 0)
        quote[q[(run % 2) == 1]] = False
    inside = (np.cumsum(quote) % 2).astype(bool)
    out: np.ndarray[Any, np.dtype[np.uint8]] = arr[~inside & ~quote]
    return out


def _check(raw: bytes, max_depth: int) -> None:
    if not raw:
        return
    outside = _outside_strings(raw)
    step = ((outside == 0x5B) | (outside == 0x7B)).astype(np.int32) - (
        (outside == 0x5D) | (outside == 0x7D)
    ).astype(np.int32)
    if step.size and int(step.cumsum().max()) > max_depth:
        raise JSONLimitError(f"JSON nested deeper than {max_depth} levels")
    rest = outside.tobytes()
    if _LONG_DIGITS.search(rest):
        raise JSONLimitError(f"a number has more than {MAX_INT_DIGITS} digits")
    if _BIG_EXPONENT.search(rest):
        raise JSONLimitError("a number has an exponent of three or more digits")
    if _NOT_JSON.search(rest):
        raise JSONLimitError("NaN and Infinity are not JSON")


def loads_limited(raw: bytes | str, *, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """``json.loads`` within the limits of the module docstring."""
    data = raw.encode("utf-8") if isinstance(raw, str) else raw
    _check(data, max_depth)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise JSONLimitError("the body is not UTF-8") from None
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        raise JSONLimitError("not valid JSON") from None
