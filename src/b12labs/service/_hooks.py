"""The two CDS Services b12labs offers: discovery entries, prefetch templates, hook contexts.

* ``b12-lab-interpretation`` on ``patient-view``: interprets the patient's B12 work-up.
* ``b12-order-check`` on ``order-select``: when a repeat B12 / active-B12 test is being ordered
  while a borderline result is already on file, points to MMA as the right next test.

Both request the same prefetch (the Patient, the Observations with the LOINC codes of the analytes
(docs/clinical-logic.md §2) plus pregnancy status, newest first, 100 per page, active
MedicationRequests and active Conditions). The earlier results are the history of the newest
(docs/clinical-logic.md §8); those more than 730 days before the newest are not used. ``patient`` and
``observations`` are *required* (age and sex change thresholds; without results there is
nothing to interpret): when neither prefetched nor fetchable the service answers 412.
``medications`` and ``conditions`` are *optional*: without them the interpretation runs and the
status card says which context was not considered.

Context validation follows the hook definitions (FHIR tools IG ``CDSHook*Context``):
``patientId`` must be a FHIR id (it is substituted into FHIR URLs), ``userId`` a
``ResourceType/id`` reference, and ``order-select`` needs a ``draftOrders`` Bundle.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from ..errors import ServiceError
from ..units import ANALYTES
from ._cdshooks import Discovery, Service

__all__ = [
    "B12_RETEST_LOINCS",
    "CONTEXT_LOINCS",
    "FHIR_ID",
    "MMA_LOINC",
    "PREFETCH_TEMPLATES",
    "REQUIRED_PREFETCH",
    "SERVICES",
    "HookContextError",
    "ServiceDef",
    "discovery",
    "observation_loincs",
    "render_template",
    "validate_context",
]

#: FHIR ``id`` datatype (R4): 1-64 of ``[A-Za-z0-9\-.]``.
FHIR_ID: Final = re.compile(r"[A-Za-z0-9\-.]{1,64}")
_REFERENCE: Final = re.compile(r"[A-Z][A-Za-z]{1,63}/[A-Za-z0-9\-.]{1,64}")

#: Context observations the FHIR adapter reads besides the analytes (pregnancy status).
CONTEXT_LOINCS: Final = ("82810-3",)

#: Orders that repeat B12 screening (total B12, active B12): the ones ``b12-order-check``
#: questions when a borderline result is already on file.
B12_RETEST_LOINCS: Final = frozenset(ANALYTES["b12"].loinc + ANALYTES["holotc"].loinc)
MMA_LOINC: Final = ANALYTES["mma"].loinc[0]


def observation_loincs() -> tuple[str, ...]:
    """Every analyte LOINC code (docs/clinical-logic.md §2: all analytes, all listed codes) plus context codes."""
    codes = [c for spec in ANALYTES.values() for c in spec.loinc]
    return tuple(dict.fromkeys([*codes, *CONTEXT_LOINCS]))


_PATIENT = "{{context.patientId}}"

PREFETCH_TEMPLATES: Final[dict[str, str]] = {
    "patient": f"Patient/{_PATIENT}",
    "observations": (
        f"Observation?patient={_PATIENT}&code="
        + ",".join(f"http://loinc.org|{c}" for c in observation_loincs())
        # prefetch tokens cannot express a date window: the newest results first, and the
        # FHIR reader keeps the last 730 days as history (docs/clinical-logic.md §8)
        + "&_sort=-date&_count=100"
    ),
    "medications": f"MedicationRequest?patient={_PATIENT}&status=active",
    "conditions": f"Condition?patient={_PATIENT}&clinical-status=active",
}
REQUIRED_PREFETCH: Final = frozenset({"patient", "observations"})


class HookContextError(ServiceError, ValueError):
    """The request's ``context`` does not fit the hook; the message is safe to return/log
    (it names fields, never their values)."""


@dataclass(frozen=True)
class ServiceDef:
    id: str
    hook: str
    title: str
    description: str
    prefetch: Mapping[str, str] = field(default_factory=lambda: dict(PREFETCH_TEMPLATES))
    usage_requirements: str | None = None

    def entry(self) -> Service:
        return Service(
            hook=self.hook,
            title=self.title,
            description=self.description,
            id=self.id,
            prefetch=dict(self.prefetch),
            usageRequirements=self.usage_requirements,
        )


_USAGE = (
    "Needs the prefetched Patient and B12 work-up Observations (or fhirServer with "
    "fhirAuthorization granting read access to them); otherwise the call fails with 412. "
    "Decision support only, not a diagnosis."
)

SERVICES: Final[dict[str, ServiceDef]] = {
    s.id: s
    for s in (
        ServiceDef(
            id="b12-lab-interpretation",
            hook="patient-view",
            title="Vitamin B12 lab interpretation",
            description=(
                "Interprets the patient's vitamin B12 work-up (total and active B12, MMA, "
                "homocysteine, folate, blood count, iron studies, renal function) against "
                "published thresholds (default NICE NG239), with medications and conditions "
                "as context: one status card, one card per warning, and one-click orders for "
                "missing tests."
            ),
            usage_requirements=_USAGE,
        ),
        ServiceDef(
            id="b12-order-check",
            hook="order-select",
            title="B12 test order check",
            description=(
                "When a total or active B12 test is selected while a borderline (indeterminate) "
                "B12 result is already on file and no MMA has been measured, suggests MMA as "
                "the right next test instead of a repeat."
            ),
            usage_requirements=_USAGE,
        ),
    )
}


def discovery() -> dict[str, Any]:
    """The discovery document (``GET /cds-services``)."""
    return Discovery(services=[s.entry() for s in SERVICES.values()]).to_wire()


def render_template(template: str, patient_id: str) -> str:
    """Substitute the prefetch token; ``patient_id`` must already match :data:`FHIR_ID`."""
    if not FHIR_ID.fullmatch(patient_id):  # pragma: no cover - validated before
        raise HookContextError("context.patientId is not a FHIR id")
    return template.replace(_PATIENT, patient_id)


def _require_id(context: Mapping[str, Any], name: str) -> str:
    value = context.get(name)
    if value is None:
        raise HookContextError(f"context.{name} is required for this hook")
    if not isinstance(value, str) or not FHIR_ID.fullmatch(value):
        raise HookContextError(f"context.{name} must be a FHIR id ([A-Za-z0-9-.]{{1,64}})")
    return value


def _check_user(context: Mapping[str, Any]) -> None:
    value = context.get("userId")
    if value is None:
        raise HookContextError("context.userId is required for this hook")
    if not isinstance(value, str) or not _REFERENCE.fullmatch(value):
        raise HookContextError("context.userId must be a reference such as Practitioner/123")


def validate_context(hook: str, context: Mapping[str, Any]) -> str:
    """Check ``context`` against ``hook``'s definition; return the patient id.

    Raises :class:`HookContextError` naming the offending field.
    """
    _check_user(context)
    patient_id = _require_id(context, "patientId")
    encounter = context.get("encounterId")
    if encounter is not None and (
        not isinstance(encounter, str) or not FHIR_ID.fullmatch(encounter)
    ):
        raise HookContextError("context.encounterId must be a FHIR id")
    if hook == "order-select":
        draft = context.get("draftOrders")
        if draft is None:
            raise HookContextError("context.draftOrders is required for order-select")
        if not isinstance(draft, dict) or draft.get("resourceType") != "Bundle":
            raise HookContextError("context.draftOrders must be a FHIR Bundle")
        entries = draft.get("entry", [])
        if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
            raise HookContextError("context.draftOrders.entry must be an array of objects")
        selections = context.get("selections")
        if selections is not None and (
            not isinstance(selections, list) or not all(isinstance(s, str) for s in selections)
        ):
            raise HookContextError("context.selections must be an array of strings")
    return patient_id
