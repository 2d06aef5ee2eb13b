"""Pydantic v2 models of the CDS Hooks 2.0 wire format (discovery, hook request, cards, feedback).

Attribute names are the spec's JSON member names (``hookInstance``, ``selectionBehavior``,
``access_token`` ...), so ``model.model_dump(mode="json", exclude_none=True)`` (or
:meth:`WireModel.to_wire`) yields spec JSON directly, with or without ``by_alias``.

Strictness follows the direction of travel:

* What the service *produces* (:class:`Discovery`, :class:`CDSResponse` and its parts) forbids
  unknown members and enforces the spec's REQUIRED fields and MUST rules: card ``summary``
  shorter than 140 characters, ``indicator`` present and one of info|warning|critical,
  ``selectionBehavior`` whenever there are ``suggestions``, a ``display`` on every override
  reason, ``appContext`` only on ``smart`` links, an action ``description``, a ``resource`` for
  create/update and a ``resourceId`` for delete.
* What the service *receives* (:class:`HookRequest`, :class:`FeedbackRequest`) ignores unknown
  members, so newer clients keep working, but still enforces REQUIRED fields.

Every model accepts the reserved ``extension`` member (a JSON object).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator, model_validator

__all__ = [
    "AcceptedSuggestion",
    "Action",
    "CDSResponse",
    "Card",
    "Coding",
    "Discovery",
    "FHIRAuthorization",
    "Feedback",
    "FeedbackRequest",
    "HookRequest",
    "Link",
    "OverrideReason",
    "Service",
    "Source",
    "Suggestion",
    "WireModel",
]

#: The spec: "One-sentence, <140-character summary message".
SUMMARY_MAX_CHARS = 139


class WireModel(BaseModel):
    """Base of all CDS Hooks models: the reserved ``extension`` member and JSON output."""

    model_config = ConfigDict(extra="forbid")

    extension: dict[str, Any] | None = None

    def to_wire(self) -> dict[str, Any]:
        """JSON-ready dict in the spec's shape (unset optional members left out)."""
        return self.model_dump(mode="json", exclude_none=True, by_alias=True)


class _Incoming(WireModel):
    model_config = ConfigDict(extra="ignore")


# --- shared data types ---------------------------------------------------------------------


class Coding(WireModel):
    """CDS Hooks ``Coding`` (a trimmed FHIR Coding). ``display`` is required for card
    ``overrideReasons`` (checked on :class:`Card`), optional elsewhere."""

    model_config = ConfigDict(extra="ignore")

    code: str
    system: str
    display: str | None = None


# --- discovery -----------------------------------------------------------------------------


class Service(WireModel):
    """One entry of the discovery response."""

    hook: str = Field(min_length=1)
    title: str | None = None
    description: str
    id: str = Field(min_length=1)
    prefetch: dict[str, str] | None = None
    usageRequirements: str | None = None


class Discovery(WireModel):
    """Response of ``GET {baseUrl}/cds-services``."""

    services: list[Service] = Field(default_factory=list)


# --- hook request --------------------------------------------------------------------------


class FHIRAuthorization(_Incoming):
    """``fhirAuthorization``: an OAuth 2.0 bearer token for the client's FHIR server.

    ``access_token`` is excluded from ``repr`` so it does not end up in logs or tracebacks.
    """

    access_token: str = Field(min_length=1, max_length=16384, repr=False)
    token_type: str
    expires_in: int = Field(ge=0)
    scope: str
    subject: str
    patient: str | None = None

    @field_validator("access_token")
    @classmethod
    def _token_chars(cls, value: str) -> str:
        # It becomes an HTTP header value: printable ASCII only (RFC 6750 b64token and more).
        if not value.isascii() or not value.isprintable() or " " in value:
            raise ValueError("access_token must be printable ASCII without spaces")
        return value

    @field_validator("token_type")
    @classmethod
    def _bearer(cls, value: str) -> str:
        # Spec: fixed value "Bearer" (OAuth 2.0 token types are case-insensitive).
        if value.lower() != "bearer":
            raise ValueError('token_type must be "Bearer"')
        return value


class HookRequest(_Incoming):
    """Body of ``POST {baseUrl}/cds-services/{id}``.

    ``hookInstance`` is kept as a string (the spec says UUID, but it is only an identifier here).
    ``prefetch`` values are FHIR resources (JSON objects) or ``null`` when the client could not
    fetch them.
    """

    hook: str = Field(min_length=1)
    hookInstance: str = Field(min_length=1)
    fhirServer: str | None = Field(default=None, max_length=2048)
    fhirAuthorization: FHIRAuthorization | None = None
    context: dict[str, Any]
    prefetch: dict[str, dict[str, Any] | None] | None = None

    @model_validator(mode="after")
    def _server_with_authorization(self) -> HookRequest:
        if self.fhirAuthorization is not None and not self.fhirServer:
            raise ValueError("fhirServer is required when fhirAuthorization is given")
        return self


# --- response ------------------------------------------------------------------------------


class Source(WireModel):
    label: str = Field(min_length=1)
    url: str | None = None
    icon: str | None = None
    topic: Coding | None = None


class Action(WireModel):
    """A suggestion action, also used for ``systemActions``."""

    type: Literal["create", "update", "delete"]
    description: str
    resource: dict[str, Any] | None = None
    resourceId: str | None = None

    @model_validator(mode="after")
    def _target(self) -> Action:
        if self.type in ("create", "update") and self.resource is None:
            raise ValueError(f"a {self.type} action needs a resource")
        if self.type == "delete" and not self.resourceId:
            raise ValueError("a delete action needs a resourceId")
        return self


class Suggestion(WireModel):
    label: str = Field(min_length=1)
    uuid: str | None = None
    isRecommended: bool | None = None
    actions: list[Action] | None = None


class Link(WireModel):
    label: str = Field(min_length=1)
    url: str = Field(min_length=1)
    type: Literal["absolute", "smart"]
    appContext: str | None = None
    autolaunchable: bool | None = None

    @model_validator(mode="after")
    def _app_context_only_for_smart(self) -> Link:
        if self.appContext is not None and self.type != "smart":
            raise ValueError("appContext is only valid on smart links")
        return self


class Card(WireModel):
    uuid: str | None = None
    summary: str = Field(min_length=1, max_length=SUMMARY_MAX_CHARS)
    detail: str | None = None
    indicator: Literal["info", "warning", "critical"]
    source: Source
    suggestions: list[Suggestion] | None = None
    selectionBehavior: Literal["at-most-one", "any"] | None = None
    overrideReasons: list[Coding] | None = None
    links: list[Link] | None = None

    @model_validator(mode="after")
    def _spec_rules(self) -> Card:
        if self.suggestions and self.selectionBehavior is None:
            raise ValueError("selectionBehavior is required when suggestions are present")
        if (
            self.selectionBehavior == "at-most-one"
            and self.suggestions
            and sum(1 for s in self.suggestions if s.isRecommended) > 1
        ):
            raise ValueError(
                "only one suggestion may be recommended when selectionBehavior is at-most-one"
            )
        for reason in self.overrideReasons or ():
            if not reason.display:
                raise ValueError("every overrideReasons entry needs a display")
        return self


class CDSResponse(WireModel):
    """Successful response of a CDS Service call."""

    cards: list[Card] = Field(default_factory=list)
    systemActions: list[Action] | None = None


# --- feedback ------------------------------------------------------------------------------


class AcceptedSuggestion(_Incoming):
    id: str = Field(min_length=1)


class OverrideReason(_Incoming):
    reason: Coding | None = None
    userComment: str | None = None


class Feedback(_Incoming):
    """One entry of ``POST {baseUrl}/cds-services/{id}/feedback``. ``outcomeTimestamp`` must
    carry a time zone (the spec requires UTC)."""

    card: str = Field(min_length=1)
    outcome: Literal["accepted", "overridden"]
    acceptedSuggestions: list[AcceptedSuggestion] | None = None
    overrideReason: OverrideReason | None = None
    outcomeTimestamp: AwareDatetime

    @model_validator(mode="after")
    def _accepted_needs_suggestions(self) -> Feedback:
        if self.outcome == "accepted" and not self.acceptedSuggestions:
            raise ValueError("acceptedSuggestions is required for an accepted outcome")
        return self


class FeedbackRequest(_Incoming):
    """Body of the feedback endpoint: ``{"feedback": [...]}``."""

    feedback: list[Feedback]
