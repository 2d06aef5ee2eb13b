"""JSON parsing with limits, for request bodies and FHIR server responses.

:func:`loads_limited` refuses (:class:`JSONLimitError`, a ``ValueError``) what the standard
parser would accept but the service must not process:

* nesting deeper than :data:`MAX_JSON_DEPTH` (the C parser recurses; ~1,000 levels overflow),
  measured before parsing, without recursion, with numpy over the bytes outside strings;
* integers longer than :data:`MAX_INT_DIGITS` digits and numbers written with more than
  :data:`MAX_NUMBER_CHARS` characters (a 4,000-digit value cannot become a float);
* ``NaN``, ``Infinity`` and numbers that overflow to infinity (not JSON);
* bytes that are not UTF-8.

Messages name the limit, never the content.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any, Final

import numpy as np

__all__ = [
    "MAX_INT_DIGITS",
    "MAX_JSON_DEPTH",
    "MAX_NUMBER_CHARS",
    "JSONLimitError",
    "loads_limited",
]

#: Largest request head (request line and headers) accepted; larger gets 431 (checked by the
#: HTTP protocol while reading, and by the app for heads that arrived in one piece).
MAX_HEADER_BYTES: Final = 16 * 1024
MAX_JSON_DEPTH: Final = 64
MAX_INT_DIGITS: Final = 30
MAX_NUMBER_CHARS: Final = 64
_STRING: Final = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)


class JSONLimitError(ValueError):
    """The document is not JSON, or passes one of the limits (message is safe to return)."""


def _depth(raw: bytes) -> int:
    if not any(b in raw for b in (b"[", b"{")):
        return 0
    outside = _STRING.sub(b"", raw)
    arr = np.frombuffer(outside, dtype=np.uint8)
    step = ((arr == 0x5B) | (arr == 0x7B)).astype(np.int32) - (
        (arr == 0x5D) | (arr == 0x7D)
    ).astype(np.int32)
    return int(step.cumsum().max()) if step.size else 0


def _int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_INT_DIGITS:
        raise JSONLimitError(f"a number has more than {MAX_INT_DIGITS} digits")
    return int(text)


def _float(text: str) -> float:
    if len(text) > MAX_NUMBER_CHARS:
        raise JSONLimitError(f"a number is longer than {MAX_NUMBER_CHARS} characters")
    value = float(text)
    if not math.isfinite(value):
        raise JSONLimitError("a number is too large")
    return value


def _constant(text: str) -> Any:
    raise JSONLimitError(f"{text} is not JSON")


def loads_limited(raw: bytes | str, *, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """``json.loads`` within the limits of the module docstring."""
    data = raw.encode("utf-8") if isinstance(raw, str) else raw
    if _depth(data) > max_depth:
        raise JSONLimitError(f"JSON nested deeper than {max_depth} levels")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise JSONLimitError("the body is not UTF-8") from None
    try:
        return json.loads(text, parse_int=_int, parse_float=_float, parse_constant=_constant)
    except JSONLimitError:
        raise
    except (ValueError, RecursionError):
        raise JSONLimitError("not valid JSON") from None
