"""CDS Hooks 2.0 wire models against the spec's own JSON examples and the FHIR tools IG examples.

Each v2.0.1 example file is classified below as a whole document (validated with the matching
top-level model and round-tripped), a component fragment (validated with the component model),
a known spec erratum (asserted to be rejected, with the reason) or skipped (with the reason).
A test fails if a v2.0.1 file is not classified, so new example files cannot be ignored silently.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel, TypeAdapter, ValidationError

from b12labs.service._cdshooks import (
    Action,
    Card,
    CDSResponse,
    Coding,
    Discovery,
    FeedbackRequest,
    FHIRAuthorization,
    HookRequest,
    Link,
    Service,
    Source,
    Suggestion,
)
from tests._paths import EXTERNAL

SPEC_DIR = EXTERNAL / "cds-hooks-spec-examples"
IG_DIR = EXTERNAL / "cds-hooks-fhir-tools-ig"

pytestmark = pytest.mark.skipif(
    not (SPEC_DIR.is_dir() and IG_DIR.is_dir()),
    reason="CDS Hooks spec/IG example folders are not available on this machine",
)

# Whole documents: file -> top-level model.
DOCUMENTS: dict[str, type[BaseModel]] = {
    "v2.0.1_index_01_discovery-example.json": Discovery,
    "v2.0.1_index_02_example.json": HookRequest,
    "v2.0.1_index_10_http-response.json": CDSResponse,
    "v2.0.1_index_17_example.json": CDSResponse,
    "v2.0.1_index_19_example-suggestion-accepted.json": FeedbackRequest,
    "v2.0.1_index_20_example-overridden-guidance-without-over.json": FeedbackRequest,
    "v2.0.1_index_21_example-overridden-guidance-with-overrid.json": FeedbackRequest,
    "v2.0.1_index_26_extensions.json": HookRequest,
    "v2.0.1_index_27_extensions.json": Discovery,
}
IG_DOCUMENTS: dict[str, type[BaseModel]] = {
    "Binary-CDSHookServices.json": Discovery,
    "Binary-CDSHooksRequestPV.json": HookRequest,
    "Binary-CDSHooksResponse.json": CDSResponse,
}

# Fragments of a larger structure: file -> (member to unwrap or None, type of the component).
FRAGMENTS: dict[str, tuple[str | None, Any]] = {
    "v2.0.1_index_09_passing-the-access-token-to-the-cds-serv.json": (
        "fhirAuthorization",
        FHIRAuthorization,
    ),
    "v2.0.1_index_11_source.json": ("source", Source),
    "v2.0.1_index_12_action.json": (None, Action),
    "v2.0.1_index_13_action.json": (None, Action),
    "v2.0.1_index_14_action.json": (None, Action),
    # override reasons are Codings that MUST carry a display; checked through a Card below
    "v2.0.1_index_15_reasons-for-rejecting-a-card.json": ("overrideReasons", list[Coding]),
    # prefetch templates: the `prefetch` member of a discovery Service
    "v2.0.1_index_03_prefetch-template.json": ("prefetch", dict[str, str]),
    "v2.0.1_index_07_example-prefetch-templates.json": ("prefetch", dict[str, str]),
    "v2.0.1_index_29_what-s-the-difference.json": ("prefetch", dict[str, str]),
}

# Examples in the spec that break the spec's own REQUIRED rules: file -> (model, error location).
ERRATA: dict[str, tuple[type[BaseModel], tuple[str | int, ...], str]] = {
    # "System Action" example: the action has no `description` (REQUIRED for every Action).
    "v2.0.1_index_16_system-action.json": (
        CDSResponse,
        ("systemActions", 0, "description"),
        "missing",
    ),
    # "autolaunchable" example: the card has no `indicator` (REQUIRED for every Card).
    "v2.0.1_index_18_example.json": (CDSResponse, ("cards", 0, "indicator"), "missing"),
}

SKIPPED: dict[str, str] = {
    "v2.0.1_index_04_example-prefetch-token.json": "context-only fragment; context is hook-specific (untyped dict)",
    "v2.0.1_index_05_example-prefetch-token.json": "context-only fragment; context is hook-specific (untyped dict)",
    "v2.0.1_index_06_example-prefetch-token.json": "context-only fragment; context is hook-specific (untyped dict)",
    "v2.0.1_index_28_what-s-the-difference.json": "context-only fragment; context is hook-specific (untyped dict)",
    "v2.0.1_index_30_examples.json": "context-only fragment; context is hook-specific (untyped dict)",
    "v2.0.1_patient-view_01_examples.json": "context-only fragment (patient-view hook page)",
    "v2.0.1_patient-view_02_examples.json": "context-only fragment (patient-view hook page)",
    "v2.0.1_order-select_01_example-r4.json": "context-only fragment (order-select hook page)",
    "v2.0.1_order-select_02_example-stu3.json": "context-only fragment (order-select hook page)",
    "v2.0.1_order-select_03_example-dstu2.json": "context-only fragment (order-select hook page)",
    "v2.0.1_order-sign_01_example-r4.json": "context-only fragment (order-sign hook page)",
    "v2.0.1_order-sign_02_example-stu3.json": "context-only fragment (order-sign hook page)",
    "v2.0.1_order-sign_03_example-dstu2.json": "context-only fragment (order-sign hook page)",
    "v2.0.1_index_08_example-prefetch-data.json": (
        "prefetch-data fragment; its `user` entry is the string '123', not a FHIR resource "
        "(checked in test_prefetch_data_fragment)"
    ),
    "v2.0.1_index_22_example.json": "JWT header, not a wire model (used by the security tests)",
    "v2.0.1_index_23_example.json": "JWT payload, not a wire model (used by the security tests)",
    "v2.0.1_index_24_example.json": "JWK Set, not a wire model (used by the security tests)",
    "v2.0.1_index_25_example.json": "private JWK, not a wire model",
}


def load(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def test_every_v2_example_is_classified() -> None:
    files = {p.name for p in SPEC_DIR.glob("v2.0.1_*.json")}
    assert files, "spec examples folder is empty"
    classified = [*DOCUMENTS, *FRAGMENTS, *ERRATA, *SKIPPED]
    assert len(classified) == len(set(classified)), "a file is classified twice"
    assert files == set(classified)


@pytest.mark.parametrize(
    ("path", "model"),
    [(SPEC_DIR / name, model) for name, model in DOCUMENTS.items()]
    + [(IG_DIR / name, model) for name, model in IG_DOCUMENTS.items()],
    ids=lambda v: v.name if isinstance(v, Path) else v.__name__,
)
def test_document_validates_and_round_trips(path: Path, model: type[BaseModel]) -> None:
    data = load(path)
    parsed = model.model_validate(data)
    # Dumping reproduces the example exactly: field names are the spec's JSON names.
    assert parsed.model_dump(mode="json", exclude_none=True) == data
    assert parsed.model_dump(mode="json", exclude_none=True, by_alias=True) == data


@pytest.mark.parametrize(("name", "spec"), FRAGMENTS.items(), ids=list(FRAGMENTS))
def test_fragment_validates(name: str, spec: tuple[str | None, Any]) -> None:
    member, component = spec
    data = load(SPEC_DIR / name)
    if member is not None:
        assert list(data) == [member]
        data = data[member]
    adapter: TypeAdapter[Any] = TypeAdapter(component)
    parsed = adapter.validate_python(data)
    assert adapter.dump_python(parsed, mode="json", exclude_none=True) == data


@pytest.mark.parametrize(("name", "spec"), ERRATA.items(), ids=list(ERRATA))
def test_spec_errata_are_rejected(
    name: str, spec: tuple[type[BaseModel], tuple[str | int, ...], str]
) -> None:
    model, loc, kind = spec
    with pytest.raises(ValidationError) as info:
        model.model_validate(load(SPEC_DIR / name))
    errors = info.value.errors()
    assert [(e["loc"], e["type"]) for e in errors] == [(loc, kind)]


def test_errata_pass_once_fixed() -> None:
    """With the missing REQUIRED member added, the erratum examples validate."""
    sys_action = load(SPEC_DIR / "v2.0.1_index_16_system-action.json")
    sys_action["systemActions"][0]["description"] = "Update the MRI order"
    assert CDSResponse.model_validate(sys_action).systemActions
    autolaunch = load(SPEC_DIR / "v2.0.1_index_18_example.json")
    autolaunch["cards"][0]["indicator"] = "info"
    card = CDSResponse.model_validate(autolaunch).cards[0]
    assert card.links and card.links[0].autolaunchable is True


def test_prefetch_data_fragment() -> None:
    prefetch = load(SPEC_DIR / "v2.0.1_index_08_example-prefetch-data.json")["prefetch"]
    base = {"hook": "patient-view", "hookInstance": "x", "context": {}}
    with pytest.raises(ValidationError) as info:
        HookRequest.model_validate({**base, "prefetch": prefetch})
    assert {e["loc"][:2] for e in info.value.errors()} == {("prefetch", "user")}
    del prefetch["user"]
    request = HookRequest.model_validate({**base, "prefetch": prefetch | {"missing": None}})
    assert request.prefetch is not None and request.prefetch["missing"] is None


def test_override_reasons_fragment_on_a_card() -> None:
    reasons = load(SPEC_DIR / "v2.0.1_index_15_reasons-for-rejecting-a-card.json")
    card = Card.model_validate(
        {"summary": "s", "indicator": "info", "source": {"label": "b12labs"}, **reasons}
    )
    assert card.overrideReasons and card.overrideReasons[1].display == "Contraindicated"


def test_a_v1_card_response_still_validates() -> None:
    """1.0 examples are out of scope; spot check: a 1.0 card response (no uuid) is valid 2.0."""
    data = load(SPEC_DIR / "v1.0_1.0_14_example.json")
    assert CDSResponse.model_validate(data).cards


# --- rules enforced on what the service produces -------------------------------------------------

SOURCE = {"label": "b12labs"}


def card(**overrides: Any) -> dict[str, Any]:
    return {"summary": "Low vitamin B12", "indicator": "warning", "source": SOURCE, **overrides}


def test_summary_must_be_shorter_than_140_characters() -> None:
    assert Card.model_validate(card(summary="x" * 139))
    with pytest.raises(ValidationError, match="at most 139 characters"):
        Card.model_validate(card(summary="x" * 140))
    with pytest.raises(ValidationError):
        Card.model_validate(card(summary=""))


@pytest.mark.parametrize("indicator", ["error", "hard-stop", "Info", None])
def test_indicator_values(indicator: str | None) -> None:
    with pytest.raises(ValidationError):
        Card.model_validate(card(indicator=indicator))


def test_suggestions_need_selection_behavior() -> None:
    suggestion = {"label": "Order MMA", "uuid": "s1", "actions": []}
    with pytest.raises(ValidationError, match="selectionBehavior is required"):
        Card.model_validate(card(suggestions=[suggestion]))
    ok = Card.model_validate(card(suggestions=[suggestion], selectionBehavior="at-most-one"))
    assert ok.to_wire()["selectionBehavior"] == "at-most-one"
    with pytest.raises(ValidationError):
        Card.model_validate(card(suggestions=[suggestion], selectionBehavior="all"))
    two = [suggestion | {"isRecommended": True}, suggestion | {"uuid": "s2", "isRecommended": True}]
    with pytest.raises(ValidationError, match="only one suggestion may be recommended"):
        Card.model_validate(card(suggestions=two, selectionBehavior="at-most-one"))
    assert Card.model_validate(card(suggestions=two, selectionBehavior="any"))


def test_override_reasons_need_display() -> None:
    reason = {"code": "c", "system": "https://b12labs.example/reasons"}
    with pytest.raises(ValidationError, match="needs a display"):
        Card.model_validate(card(overrideReasons=[reason]))


@pytest.mark.parametrize(
    ("action", "message"),
    [
        ({"type": "create", "description": "d"}, "needs a resource"),
        ({"type": "update", "description": "d"}, "needs a resource"),
        ({"type": "delete", "description": "d"}, "needs a resourceId"),
        ({"type": "patch", "description": "d", "resource": {}}, "literal_error|Input should be"),
        ({"type": "create", "resource": {"resourceType": "ServiceRequest"}}, "Field required"),
    ],
)
def test_action_rules(action: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        Action.model_validate(action)


def test_links() -> None:
    with pytest.raises(ValidationError, match="appContext is only valid on smart links"):
        Link.model_validate(
            {"label": "l", "url": "https://x", "type": "absolute", "appContext": "c"}
        )
    with pytest.raises(ValidationError):
        Link.model_validate({"label": "l", "url": "https://x", "type": "relative"})
    with pytest.raises(ValidationError):
        Link.model_validate({"label": "l", "url": "https://x"})


def test_outgoing_models_forbid_unknown_members() -> None:
    with pytest.raises(ValidationError, match="Extra inputs are not permitted"):
        Card.model_validate(card(sumary="typo"))
    with pytest.raises(ValidationError, match="Extra inputs are not permitted"):
        Service.model_validate(
            {"hook": "patient-view", "id": "x", "description": "d", "titel": "t"}
        )


def test_build_a_response_in_code() -> None:
    response = CDSResponse(
        cards=[
            Card(
                uuid="c1",
                summary="Vitamin B12 deficiency likely",
                indicator="warning",
                detail="**MMA** is raised.",
                source=Source(
                    label="b12labs", topic=Coding(code="b12", system="https://b12labs.example")
                ),
                suggestions=[
                    Suggestion(
                        label="Order holotranscobalamin",
                        uuid="s1",
                        isRecommended=True,
                        actions=[
                            Action(
                                type="create",
                                description="Order holoTC",
                                resource={"resourceType": "ServiceRequest", "status": "draft"},
                            )
                        ],
                    )
                ],
                selectionBehavior="at-most-one",
                links=[Link(label="Guideline", url="https://example.org/g", type="absolute")],
            )
        ]
    )
    wire = response.to_wire()
    assert "systemActions" not in wire and "extension" not in wire
    assert wire["cards"][0]["suggestions"][0]["actions"][0]["type"] == "create"
    assert wire["cards"][0]["source"]["topic"] == {
        "code": "b12",
        "system": "https://b12labs.example",
    }
    assert CDSResponse.model_validate_json(json.dumps(wire)) == response
    assert Discovery().to_wire() == {"services": []}
    assert CDSResponse().to_wire() == {"cards": []}


# --- incoming: requests and feedback -------------------------------------------------------------


def test_request_tolerates_unknown_members_and_hides_access_token() -> None:
    data = load(SPEC_DIR / "v2.0.1_index_02_example.json")
    data["someFutureMember"] = {"x": 1}
    data["fhirAuthorization"]["patient"] = "1288992"
    request = HookRequest.model_validate(data)
    assert request.fhirAuthorization is not None
    assert request.fhirAuthorization.patient == "1288992"
    assert "some-opaque-fhir-access-token" not in repr(request)
    assert "some-opaque-fhir-access-token" not in str(request)
    assert request.fhirAuthorization.access_token == "some-opaque-fhir-access-token"
    assert "someFutureMember" not in request.to_wire()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"hookInstance": None}, "hookInstance"),
        ({"hook": None}, "hook"),
        ({"context": None}, "context"),
        ({"fhirServer": None}, "fhirServer is required when fhirAuthorization is given"),
        ({"prefetch": {"patient": "Patient/1"}}, "prefetch.patient"),
    ],
)
def test_request_required_members(change: dict[str, Any], message: str) -> None:
    data = load(SPEC_DIR / "v2.0.1_index_02_example.json")
    for key, value in change.items():
        if value is None:
            del data[key]
        else:
            data[key] = value
    with pytest.raises(ValidationError, match=message):
        HookRequest.model_validate(data)


def test_fhir_authorization_token_type() -> None:
    base = load(SPEC_DIR / "v2.0.1_index_09_passing-the-access-token-to-the-cds-serv.json")
    auth = base["fhirAuthorization"]
    assert FHIRAuthorization.model_validate(auth | {"token_type": "bearer"})
    with pytest.raises(ValidationError, match='token_type must be "Bearer"'):
        FHIRAuthorization.model_validate(auth | {"token_type": "MAC"})


def test_feedback_rules() -> None:
    accepted = load(SPEC_DIR / "v2.0.1_index_19_example-suggestion-accepted.json")
    entry = accepted["feedback"][0]
    parsed = FeedbackRequest.model_validate(accepted).feedback[0]
    assert parsed.outcomeTimestamp.utcoffset() is not None
    assert parsed.acceptedSuggestions and parsed.acceptedSuggestions[0].id.startswith("e56e")
    with pytest.raises(ValidationError, match="acceptedSuggestions is required"):
        FeedbackRequest.model_validate({"feedback": [entry | {"acceptedSuggestions": []}]})
    with pytest.raises(ValidationError, match="timezone"):
        FeedbackRequest.model_validate(
            {"feedback": [entry | {"outcomeTimestamp": "2021-12-11T10:05:31"}]}
        )
    with pytest.raises(ValidationError):
        FeedbackRequest.model_validate({"feedback": [entry | {"outcome": "ignored"}]})
