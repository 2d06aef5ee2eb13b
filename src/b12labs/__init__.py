"""b12labs: flagged, explained, cited interpretation of vitamin B12 work-up results.

Clinical decision support, never a diagnosis::

    >>> from b12labs import interpret
    >>> result = interpret({"b12": "250 pg/mL"})
    >>> result.status.value
    'indeterminate'
"""

from __future__ import annotations

from typing import Any

from ._interpret import interpret, normalize
from ._version import __version__
from .errors import (
    B12LabsError,
    InputError,
    InputFormatError,
    InvalidValueError,
    MissingExtraError,
    ProfileError,
    UnitError,
    UnknownAnalyteError,
    VocabularyError,
)
from .models import (
    Action,
    Evidence,
    Finding,
    Interpretation,
    LabPanel,
    Measurement,
    PatientContext,
    Severity,
    Status,
)
from .profiles import Profile, list_profiles, load_profile

__all__ = [
    "Action",
    "B12LabsError",
    "Evidence",
    "Finding",
    "InputError",
    "InputFormatError",
    "Interpretation",
    "InvalidValueError",
    "LabPanel",
    "Measurement",
    "MissingExtraError",
    "PatientContext",
    "Profile",
    "ProfileError",
    "Severity",
    "Status",
    "UnitError",
    "UnknownAnalyteError",
    "VocabularyError",
    "__version__",
    "interpret",
    "list_profiles",
    "list_rules",
    "load_profile",
    "normalize",
]


def list_rules() -> list[dict[str, Any]]:
    """The rule catalogue: code, area, severity, title and sources of every rule."""
    from .rules import CATALOGUE

    return [
        {
            "code": r.code,
            "area": r.area,
            "severity": r.severity.value,
            "severity_note": r.severity_note,
            "title": r.title,
            "sources": list(r.citations()),
        }
        for r in CATALOGUE
    ]
