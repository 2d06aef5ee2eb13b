"""FHIR R4 in and out (extra ``fhir``; models from ``fhir.resources.R4B``, which reads R4).

- :func:`interpret_fhir`: a Bundle or a list of resources (Observations by LOINC, Patient,
  Conditions, active medications) → :class:`~b12labs.models.Interpretation`, through the same
  ``interpret()`` as every other front-end; unused inputs are listed in ``ignored``.
- :func:`to_fhir`: an Interpretation → a ``collection`` Bundle of DetectedIssues,
  ServiceRequests for tests to order, and the input Observations with an
  ObservationInterpretation code.

Importing this module without ``fhir.resources`` raises
:class:`~b12labs.errors.MissingExtraError` naming the extra ``fhir``.
"""

from __future__ import annotations

from ..errors import MissingExtraError

try:
    import fhir.resources.R4B  # noqa: F401  (the import check of the extra)
except ImportError as exc:  # pragma: no cover - exercised with the module hidden
    raise MissingExtraError("b12labs.fhir", "fhir", "fhir.resources") from exc

from ._read import interpret_fhir
from ._write import RULE_DOC_URL, RULE_SYSTEM, observation_interpretation, to_fhir

__all__ = [
    "RULE_DOC_URL",
    "RULE_SYSTEM",
    "interpret_fhir",
    "observation_interpretation",
    "to_fhir",
]
