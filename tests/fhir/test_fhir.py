"""b12labs.fhir: FHIR R4 in (interpret_fhir) and out (to_fhir), on project fixtures in the
style of the official examples and on the official FHIR R4 examples themselves."""

from __future__ import annotations

import copy
import importlib
import json
import logging
import sys
from pathlib import Path
from typing import Any

import pytest
from fhir.resources.R4B import get_fhir_model_class
from fhir.resources.R4B.bundle import Bundle

from b12labs import Measurement, interpret
from b12labs.errors import InvalidValueError, MissingExtraError
from b12labs.fhir import RULE_SYSTEM, interpret_fhir, to_fhir
from b12labs.fhir._read import _read
from b12labs.models import Interpretation
from tests._paths import EXTERNAL

FIXTURES = Path(__file__).parent / "fixtures"
OFFICIAL = EXTERNAL / "fhir-r4-examples"
EXAMPLES = OFFICIAL / "examples"
V3 = "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation"
LOINC = "http://loinc.org"
SNOMED = "http://snomed.info/sct"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
SPECIMEN = "2024-05-02T08:30:00Z"


# ---------------------------------------------------------------- helpers
def load(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / name).read_text(encoding="utf-8"))
    return data


def workup() -> list[dict[str, Any]]:
    """The project's work-up fixtures: Patient, B12, MMA, MCV, ferritin, methotrexate, RA."""
    return [load(n) for n in (
        "patient.json", "observation-b12.json", "observation-mma.json", "observation-mcv.json",
        "observation-ferritin.json", "medicationrequest-methotrexate.json", "condition-ra.json",
    )]


def bundle(resources: list[dict[str, Any]], kind: str = "searchset") -> dict[str, Any]:
    return {
        "resourceType": "Bundle",
        "type": kind,
        "entry": [
            {"fullUrl": f"https://ehr.example/fhir/{r['resourceType']}/{r['id']}" if r.get("id")
             else f"urn:uuid:00000000-0000-4000-8000-{i:012d}", "resource": r}
            for i, r in enumerate(resources)
        ],
    }


def observation(
    loinc: str, *, value: float | None = None, unit: str | None = None, when: str = SPECIMEN,
    rid: str | None = None, **extra: Any,
) -> dict[str, Any]:
    r: dict[str, Any] = {
        "resourceType": "Observation",
        "status": "final",
        "code": {"coding": [{"system": LOINC, "code": loinc}]},
        "subject": {"reference": "Patient/b12-pat"},
        "effectiveDateTime": when,
    }
    if rid:
        r["id"] = rid
    if value is not None:
        q: dict[str, Any] = {"value": value}
        if unit:
            q.update(unit=unit, system="http://unitsofmeasure.org", code=unit)
        r["valueQuantity"] = q
    r.update(extra)
    return r


def ignored_reasons(interp: Interpretation) -> dict[str, str]:
    return {i.source: i.reason for i in interp.ignored}


def validate_bundle(b: dict[str, Any]) -> None:
    """The Bundle and every resource in it validate with fhir.resources R4B."""
    Bundle.model_validate(b)
    for entry in b["entry"]:
        resource = entry["resource"]
        get_fhir_model_class(resource["resourceType"]).model_validate(resource)


def entries(b: dict[str, Any], rtype: str) -> list[dict[str, Any]]:
    return [e["resource"] for e in b["entry"] if e["resource"]["resourceType"] == rtype]


def b12labs_interpretation(obs: dict[str, Any]) -> str | None:
    for concept in obs.get("interpretation", []):
        if concept.get("text", "").startswith("b12labs"):
            return str(concept["coding"][0]["code"])
    return None


def interpretation_codes() -> dict[str, set[str]]:
    """The codes of the v3 ObservationInterpretation code system, R4 and current THO."""
    def walk(concepts: list[dict[str, Any]], out: set[str]) -> set[str]:
        for c in concepts:
            out.add(c["code"])
            walk(c.get("concept", []), out)
        return out

    out = {}
    for folder in ("terminology-r4-4.0.1", "terminology-hl7-7.0.1"):
        cs = json.loads((OFFICIAL / folder / "CodeSystem-v3-ObservationInterpretation.json")
                        .read_text(encoding="utf-8"))
        assert cs["url"] == V3
        out[folder] = walk(cs["concept"], set())
    return out


EQUIVALENT_PANEL = {
    "b12": Measurement(value=250, unit="pg/mL", ref_low=197, ref_high=771, reported="250 pg/mL"),
    "mma": Measurement(value=440, unit="nmol/L", ref_low=87, ref_high=318, reported="440 nmol/L"),
    "mcv": Measurement(value=106, unit="fL", ref_low=80, ref_high=98, reported="106 fL"),
    "ferritin": Measurement(value=45, unit="ng/mL", ref_low=15, ref_high=150, reported="45 ng/mL"),
}
# born 1959-06-01: 64 at the specimen (2024-05-02), older on the day the test runs
EQUIVALENT_CONTEXT = {
    "age": 64, "sex": "female", "medications": ["methotrexate"],
    "conditions": ["rheumatoid_arthritis"],
}


# ---------------------------------------------------------------- one logic
def test_workup_matches_interpret_on_the_equivalent_panel() -> None:
    got = interpret_fhir(bundle(workup()))
    want = interpret(EQUIVALENT_PANEL, EQUIVALENT_CONTEXT)
    assert got.status == want.status
    assert got.codes == want.codes
    assert got.values == want.values
    assert got.findings == want.findings
    assert got.ignored == ()
    assert "MACROCYTOSIS_ON_METHOTREXATE" in got.codes
    assert "MMA_ELEVATED" in got.codes


def test_age_is_taken_at_the_newest_specimen() -> None:
    got = interpret_fhir(workup())
    mma = [e for f in got.findings if f.code == "MMA_ELEVATED" for e in f.evidence]
    # 64 at the specimen: the under-65 limit (0.40), not the older one (0.46)
    assert mma and {e.threshold_name for e in mma} == {"mma_elevated"}
    assert got.status.value == "probable"


@pytest.mark.parametrize("kind", ["searchset", "collection", "transaction"])
def test_bundle_types_list_and_models_agree(kind: str) -> None:
    want = interpret_fhir(workup())
    b = bundle(workup(), kind)
    if kind == "transaction":
        for e in b["entry"]:
            e["request"] = {"method": "POST", "url": e["resource"]["resourceType"]}
    assert interpret_fhir(b).findings == want.findings
    models = [get_fhir_model_class(r["resourceType"]).model_validate(r) for r in workup()]
    assert interpret_fhir(models).findings == want.findings
    assert interpret_fhir(Bundle.model_validate(bundle(workup()))).findings == want.findings


def test_cds_hooks_prefetch_object() -> None:
    res = workup()
    prefetch = {
        "patient": res[0],
        "observations": bundle(res[1:5]),
        "medications": bundle([res[5]]),
        "conditions": bundle([res[6]]),
        "missing": None,
    }
    assert interpret_fhir(prefetch).findings == interpret_fhir(res).findings


# ---------------------------------------------------------------- episodes
def test_results_before_the_newest_episode_are_history_not_the_current_panel() -> None:
    old_b12 = observation("2132-9", value=120, unit="pg/mL", when="2023-01-10T08:00:00Z", rid="old-b12")
    old_folate = observation("2284-8", value=2.0, unit="ng/mL", when="2023-01-10T08:00:00Z", rid="old-fol")
    older_in_episode = observation("2132-9", value=140, unit="pg/mL", when="2024-04-20T08:00:00Z",
                                   rid="b12-earlier")
    inputs, ignored = _read([*workup(), old_b12, old_folate, older_in_episode],
                            window_days=90, history_days=730)
    want, _ = _read(workup(), window_days=90, history_days=730)
    assert inputs.panel == want.panel and "folate" not in inputs.panel
    # neither dropped: the earlier results are the history, one entry per specimen time
    assert [sorted(k for k in e if k != "collected_at") for e in inputs.history] == [
        ["b12", "folate"], ["b12"]]
    assert [e["collected_at"].date().isoformat() for e in inputs.history] == [
        "2023-01-10", "2024-04-20"]
    assert not {"Observation/old-b12", "Observation/old-fol", "Observation/b12-earlier"} & {
        i.source for i in ignored}


def test_window_days_changes_the_episode() -> None:
    early = observation("13964-2", value=250, unit="nmol/L", when="2024-01-05T08:00:00Z", rid="mma-jan")
    late = observation("2132-9", value=250, unit="pg/mL", when="2024-05-02T08:00:00Z", rid="b12-may")
    # 118 days apart: two episodes with the default 90 days, one with 180
    assert interpret_fhir([early, late]).status.value == "indeterminate"
    assert interpret_fhir([early, late], window_days=180).status.value == "unlikely"


def test_undated_result_is_ignored() -> None:
    r = observation("2132-9", value=150, unit="pg/mL", rid="undated")
    del r["effectiveDateTime"]
    got = interpret_fhir([r])
    assert got.status.value == "not_assessed"
    assert "no effective date" in ignored_reasons(got)["Observation/undated"]


def test_issued_and_period_start_are_date_fallbacks() -> None:
    a = observation("2132-9", value=150, unit="pg/mL", rid="a")
    del a["effectiveDateTime"]
    a["issued"] = "2024-05-02T15:00:00+01:00"
    b = observation("787-2", value=104, unit="fL", rid="b")
    del b["effectiveDateTime"]
    b["effectivePeriod"] = {"start": "2024-05-01T09:00:00+01:00"}
    got = interpret_fhir([a, b])
    assert set(got.values) == {"b12", "mcv"}
    assert got.ignored == ()


# ---------------------------------------------------------------- ignored inputs
def test_entered_in_error_cancelled_and_data_absent_are_ignored_and_listed() -> None:
    eie = observation("2132-9", value=90, unit="pg/mL", rid="eie", status="entered-in-error")
    cancelled = observation("13964-2", value=900, unit="nmol/L", rid="cx", status="cancelled")
    absent = observation("2284-8", rid="dar", dataAbsentReason={"coding": [{
        "system": "http://terminology.hl7.org/CodeSystem/data-absent-reason", "code": "not-performed"}]})
    got = interpret_fhir([*workup(), eie, cancelled, absent])
    assert got.findings == interpret_fhir(workup()).findings
    reasons = ignored_reasons(got)
    assert reasons["Observation/eie"] == "status entered-in-error"
    assert reasons["Observation/cx"] == "status cancelled"
    assert reasons["Observation/dar"] == "dataAbsentReason not-performed"


def test_unknown_loinc_and_unrelated_types_are_listed() -> None:
    glucose = observation("15074-8", value=6.3, unit="mmol/L", rid="glu")
    org = {"resourceType": "Organization", "id": "lab", "name": "Acme"}
    got = interpret_fhir([*workup(), glucose, org])
    reasons = ignored_reasons(got)
    assert reasons["Observation/glu"] == "code not used by b12labs"
    assert "Organization not used" in reasons["Organization/lab"]
    assert got.findings == interpret_fhir(workup()).findings


def test_invalid_resource_is_ignored_with_reason_never_crashes() -> None:
    bad = observation("2132-9", value=150, unit="pg/mL", rid="bad", bogusElement=True)
    worse = observation("2132-9", rid="worse", valueQuantity={"value": "lots", "unit": "pg/mL"})
    wrong_cmp = observation("2132-9", rid="cmp", valueQuantity={"value": 50, "comparator": "<<",
                                                                  "unit": "pg/mL"})
    got = interpret_fhir([bad, worse, wrong_cmp, "not a resource", {"resourceType": "Nonsense"}])
    again = interpret_fhir([bad, worse, wrong_cmp, "not a resource", {"resourceType": "Nonsense"}])
    assert again.ignored == got.ignored  # validation outcomes are cached, not changed
    reasons = ignored_reasons(got)
    assert reasons["Observation/bad"].startswith("fails FHIR R4B validation")
    assert "lots" not in reasons["Observation/worse"]
    assert "comparator" in reasons["Observation/cmp"]
    assert got.status.value == "not_assessed"
    assert any(r == "not a FHIR resource" for r in reasons.values())


def test_value_string_censored() -> None:
    with_unit = observation("2132-9", rid="s1", valueString="<50 pmol/L")
    got = interpret_fhir([with_unit])
    assert got.status.value == "deficient"
    assert "VALUE_CENSORED" in got.codes
    assert got.codes == interpret({"b12": "<50 pmol/L"}).codes

    no_unit = observation("2132-9", rid="s2", valueString="<50")
    got = interpret_fhir([no_unit, observation("787-2", value=90, unit="fL")])
    assert "b12" not in got.values
    reason = ignored_reasons(got)["Observation/s2"]
    assert "without a unit" in reason
    assert "<50" not in reason  # no patient value in a reason


def test_ucum_code_preferred_and_unit_text_fallback() -> None:
    coded = observation("2132-9", rid="c", valueQuantity={
        "value": 98, "unit": "picomole per litre", "system": "http://unitsofmeasure.org",
        "code": "10*-12.mol/L"})
    text_only = observation("13964-2", rid="t", valueQuantity={"value": 0.62, "unit": "umol/L"})
    got = interpret_fhir([coded, text_only])
    assert got.values["b12"] == pytest.approx(98)
    assert got.values["mma"] == pytest.approx(0.62)
    assert got.status.value == "deficient"


def test_if_antibody_coded_positive() -> None:
    ifab = observation("31444-3", rid="ifab", valueCodeableConcept={
        "coding": [{"system": SNOMED, "code": "10828004", "display": "Positive"}]})
    b12 = observation("2132-9", value=400, unit="pg/mL", rid="b12")
    got = interpret_fhir([ifab, b12])
    assert "IF_ANTIBODY_POSITIVE" in got.codes
    assert got.codes == interpret({"if_antibody": "positive", "b12": "400 pg/mL"}).codes
    out = to_fhir(got, subject="Patient/b12-pat", inputs=[ifab, b12])
    validate_bundle(out)
    echoed = {o["id"]: b12labs_interpretation(o) for o in entries(out, "Observation")}
    assert echoed["ifab"] == "POS"

    text_negative = observation("31444-3", rid="neg", valueCodeableConcept={"text": "Negative"})
    assert interpret_fhir([text_negative]).values["if_antibody"] == 0.0


def test_if_antibody_coded_equivocal_counts_as_neither() -> None:
    # SNOMED CT 42425007 "Equivocal", or the text: a measured result, neither positive nor
    # negative (§2); the IF antibody is not ordered again, and it is echoed as E (Equivocal)
    b12 = observation("2132-9", value=120, unit="pg/mL", rid="b12")
    expected = interpret({"if_antibody": "equivocal", "b12": "120 pg/mL"})
    for concept in (
        {"coding": [{"system": SNOMED, "code": "42425007", "display": "Equivocal"}]},
        {"text": "Borderline"},
    ):
        ifab = observation("31444-3", rid="ifab", valueCodeableConcept=concept)
        got = interpret_fhir([ifab, b12])
        assert not got.ignored
        assert "if_antibody" not in got.values
        assert got.codes == expected.codes == ("B12_DEFICIENT",)
        assert got.status.value == "deficient"
        assert all(a.loinc != "31444-3" for f in got.findings for a in f.actions)
        assert [f.message for f in got.findings] == [f.message for f in expected.findings]
        out = to_fhir(got, subject="Patient/b12-pat", inputs=[ifab, b12])
        validate_bundle(out)
        echoed = {o["id"]: b12labs_interpretation(o) for o in entries(out, "Observation")}
        assert echoed["ifab"] == "E"
    text = observation("31444-3", rid="t", valueString="indeterminate")
    got = interpret_fhir([text])
    assert not got.ignored and got.status.value == "not_assessed"


# ---------------------------------------------------------------- context
def medication_request(concept: dict[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
    r: dict[str, Any] = {
        "resourceType": "MedicationRequest", "status": "active", "intent": "order",
        "subject": {"reference": "Patient/b12-pat"},
    }
    if concept is not None:
        r["medicationCodeableConcept"] = concept
    r.update(extra)
    return r


MCV_106 = observation("787-2", value=106, unit="fL", rid="mcv106")


def test_medication_by_rxnorm_clinical_drug_text_fallback() -> None:
    clinical_drug = medication_request({
        "coding": [{"system": RXNORM, "code": "105585",
                    "display": "Methotrexate 2.5 MG Oral Tablet"}]})
    got = interpret_fhir([MCV_106, clinical_drug])
    assert "MACROCYTOSIS_ON_METHOTREXATE" in got.codes
    assert got.unrecognised_medications == ()


def test_medication_by_atc_and_by_reference_to_contained_and_bundled_medication() -> None:
    atc = medication_request({"coding": [{"system": "http://www.whocc.no/atc", "code": "L04AX03"}]})
    assert "MACROCYTOSIS_ON_METHOTREXATE" in interpret_fhir([MCV_106, atc]).codes

    contained = medication_request(
        None, id="rq1", medicationReference={"reference": "#med"},
        contained=[{"resourceType": "Medication", "id": "med",
                    "code": {"coding": [{"system": RXNORM, "code": "6851"}]}}])
    assert "MACROCYTOSIS_ON_METHOTREXATE" in interpret_fhir([MCV_106, contained]).codes

    med = {"resourceType": "Medication", "id": "m1",
           "code": {"coding": [{"system": RXNORM, "code": "6851"}]}}
    by_ref = medication_request(None, medicationReference={"reference": "Medication/m1"})
    assert "MACROCYTOSIS_ON_METHOTREXATE" in interpret_fhir(bundle([MCV_106, by_ref, med])).codes


def test_inactive_and_do_not_perform_medications_are_ignored() -> None:
    mtx = {"coding": [{"system": RXNORM, "code": "6851"}]}
    stopped = {"resourceType": "MedicationStatement", "id": "st", "status": "completed",
               "medicationCodeableConcept": mtx, "subject": {"reference": "Patient/b12-pat"}}
    dnp = medication_request(mtx, id="dnp", doNotPerform=True)
    got = interpret_fhir([MCV_106, stopped, dnp])
    assert "MACROCYTOSIS_ON_METHOTREXATE" not in got.codes
    reasons = ignored_reasons(got)
    assert "not an active medication" in reasons["MedicationStatement/st"]
    assert "doNotPerform" in reasons["MedicationRequest/dnp"]
    active = {**stopped, "status": "active"}
    assert "MACROCYTOSIS_ON_METHOTREXATE" in interpret_fhir([MCV_106, active]).codes


def test_unmapped_medication_text_is_kept_and_listed() -> None:
    other = medication_request({"text": "Paracetamol 500 mg tablet"})
    got = interpret_fhir([MCV_106, other])
    assert got.unrecognised_medications == ("Paracetamol 500 mg tablet",)


def condition(code: str | None, *, text: str | None = None, rid: str = "c1",
              clinical: str | None = "active", verification: str | None = "confirmed") -> dict[str, Any]:
    r: dict[str, Any] = {"resourceType": "Condition", "id": rid,
                         "subject": {"reference": "Patient/b12-pat"}, "code": {}}
    if code:
        r["code"]["coding"] = [{"system": SNOMED, "code": code}]
    if text:
        r["code"]["text"] = text
    if clinical:
        r["clinicalStatus"] = {"coding": [{
            "system": "http://terminology.hl7.org/CodeSystem/condition-clinical", "code": clinical}]}
    if verification:
        r["verificationStatus"] = {"coding": [{
            "system": "http://terminology.hl7.org/CodeSystem/condition-ver-status", "code": verification}]}
    return r


FERRITIN_60 = observation("2276-4", value=60, unit="ug/L", rid="fer60")
TSAT_15 = observation("2502-3", value=15, unit="%", rid="tsat15")


def test_conditions_refuted_resolved_and_unknown() -> None:
    # ferritin 60 and TSAT 15 % are iron deficiency only with an inflammatory condition
    base = [FERRITIN_60, TSAT_15]
    assert "IRON_DEFICIENCY" in interpret_fhir([*base, condition("69896004")]).codes
    refuted = condition("69896004", rid="ref", verification="refuted")
    resolved = condition("69896004", rid="res", clinical="resolved")
    eie = condition("69896004", rid="eie", verification="entered-in-error")
    unknown = condition("44054006", rid="dm", text="Diabetes mellitus type 2")
    got = interpret_fhir([*base, refuted, resolved, eie, unknown])
    assert "IRON_DEFICIENCY" not in got.codes
    reasons = ignored_reasons(got)
    assert reasons["Condition/ref"] == "verificationStatus refuted"
    assert reasons["Condition/eie"] == "verificationStatus entered-in-error"
    assert "resolved" in reasons["Condition/res"]
    assert reasons["Condition/dm"] == "code not used by b12labs"


def test_condition_by_text_and_without_clinical_status() -> None:
    by_text = condition(None, text="Rheumatoid arthritis", clinical=None, verification=None)
    assert "IRON_DEFICIENCY" in interpret_fhir([FERRITIN_60, TSAT_15, by_text]).codes


def test_symptom_observation_and_condition_by_snomed() -> None:
    b12 = observation("2132-9", value=250, unit="pg/mL", rid="b12")
    symptom = {"resourceType": "Observation", "id": "sym", "status": "final",
               "code": {"coding": [{"system": SNOMED, "code": "91019004", "display": "Paresthesia"}]},
               "subject": {"reference": "Patient/b12-pat"}, "effectiveDateTime": "2024-05-01",
               "valueBoolean": True}
    got = interpret_fhir([b12, symptom])
    assert "NEURO_URGENT" in got.codes
    assert got.codes == interpret({"b12": "250 pg/mL"}, {"symptoms": ["paraesthesia"]}).codes

    absent = {**symptom, "id": "no-sym", "valueBoolean": False}
    got = interpret_fhir([b12, absent])
    assert "NEURO_URGENT" not in got.codes
    assert "absent" in ignored_reasons(got)["Observation/no-sym"]

    stale = {**symptom, "id": "old-sym", "effectiveDateTime": "2020-01-01"}
    assert "NEURO_URGENT" not in interpret_fhir([b12, stale]).codes

    as_condition = condition("91019004", rid="sym-c")
    assert "NEURO_URGENT" in interpret_fhir([b12, as_condition]).codes


def pregnancy_status(answer: str, when: str = "2024-04-20") -> dict[str, Any]:
    return {"resourceType": "Observation", "id": f"preg-{answer}", "status": "final",
            "code": {"coding": [{"system": LOINC, "code": "82810-3", "display": "Pregnancy status"}]},
            "subject": {"reference": "Patient/b12-pat"}, "effectiveDateTime": when,
            "valueCodeableConcept": {"coding": [{"system": LOINC, "code": answer}]}}


def test_pregnancy_from_loinc_82810_3_and_from_condition() -> None:
    b12 = observation("2132-9", value=400, unit="pg/mL", rid="b12")
    want = interpret({"b12": "400 pg/mL"}, {"pregnant": True}).codes
    assert "PREGNANCY_CAVEAT" in want
    assert interpret_fhir([b12, pregnancy_status("LA15173-0")]).codes == want
    assert "PREGNANCY_CAVEAT" not in interpret_fhir([b12, pregnancy_status("LA26683-5")]).codes
    # the newest statement wins; a pregnancy status older than 42 weeks is not current
    both = [b12, pregnancy_status("LA15173-0", "2024-01-01"), pregnancy_status("LA26683-5")]
    assert "PREGNANCY_CAVEAT" not in interpret_fhir(both).codes
    stale = interpret_fhir([b12, pregnancy_status("LA15173-0", "2022-01-01")])
    assert "PREGNANCY_CAVEAT" not in stale.codes
    assert "42 weeks" in ignored_reasons(stale)["Observation/preg-LA15173-0"]
    assert interpret_fhir([b12, condition("77386006", rid="preg")]).codes == want


def test_patient_sex_and_age() -> None:
    hb = observation("718-7", value=125, unit="g/L", rid="hb")
    male = {"resourceType": "Patient", "id": "b12-pat", "gender": "male", "birthDate": "1950"}
    female = {**male, "gender": "female"}
    assert "ANAEMIA" in interpret_fhir([hb, male]).codes  # < 130 g/L for men
    assert "ANAEMIA" not in interpret_fhir([hb, female]).codes  # 120 g/L for women
    child = {**male, "birthDate": "2015-02-03"}
    assert "AGE_OUT_OF_SCOPE" in interpret_fhir([hb, child]).codes


def test_more_than_one_patient_is_refused() -> None:
    a = observation("2132-9", value=250, unit="pg/mL")
    b = {**observation("13964-2", value=250, unit="nmol/L"), "subject": {"reference": "Patient/other"}}
    with pytest.raises(InvalidValueError, match="different patients"):
        interpret_fhir([a, b])


def test_not_fhir_at_all_is_an_input_error() -> None:
    with pytest.raises(InvalidValueError):
        interpret_fhir("Observation")


def test_no_patient_value_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    interp = interpret_fhir(bundle(workup()))
    to_fhir(interp, subject="Patient/b12-pat", inputs=workup())
    text = caplog.text
    for value in ("250", "440", "106", "1959-06-01"):
        assert value not in text


# ---------------------------------------------------------------- to_fhir
def test_to_fhir_bundle_validates_and_carries_findings() -> None:
    res = workup()
    interp = interpret_fhir(res)
    out = to_fhir(interp, subject="Patient/b12-pat", inputs=res)
    validate_bundle(out)
    assert out["type"] == "collection"
    assert out["timestamp"]
    tags = {t["system"].rsplit("/", 1)[-1]: t for t in out["meta"]["tag"]}
    assert tags["status"]["code"] == interp.status.value
    assert tags["profile"]["code"] == interp.profile_id
    assert tags["profile"]["version"] == interp.profile_version
    assert tags["library"]["version"] == interp.library_version

    issues = entries(out, "DetectedIssue")
    assert [i["code"]["coding"][0]["code"] for i in issues] == list(interp.codes)
    severity = {"critical": "high", "warning": "moderate", "info": "low"}
    for issue, finding in zip(issues, interp.findings, strict=True):
        assert issue["status"] == "final"
        assert issue["severity"] == severity[finding.severity.value]
        assert issue["code"]["coding"][0]["system"] == RULE_SYSTEM
        assert issue["code"]["text"] == finding.title
        assert issue["detail"] == finding.message
        assert issue["patient"] == {"reference": "Patient/b12-pat"}
        assert issue["reference"].endswith(finding.code)
        assert len(issue["evidence"]) == len(finding.evidence)
    mtx = next(i for i in issues if i["code"]["coding"][0]["code"] == "MACROCYTOSIS_ON_METHOTREXATE")
    assert {r["reference"] for r in mtx["implicated"]} == {"Observation/mcv", "Observation/b12"}
    assert all(e["detail"][0]["reference"].startswith("Observation/") for e in mtx["evidence"])

    echoed = {o["id"]: b12labs_interpretation(o) for o in entries(out, "Observation")}
    assert echoed == {"b12": "IND", "mma": "H", "mcv": "H", "ferritin": "N"}


def test_to_fhir_severity_mapping_covers_all_three() -> None:
    interp = interpret_fhir([
        observation("2132-9", value=150, unit="pg/mL", rid="b12"),
        observation("718-7", value=75, unit="g/L", rid="hb"),
        observation("787-2", value=125, unit="fL", rid="mcv"),
    ])
    out = to_fhir(interp, subject="Patient/b12-pat")
    validate_bundle(out)
    got = {i["code"]["coding"][0]["code"]: i["severity"] for i in entries(out, "DetectedIssue")}
    assert got["ANAEMIA"] == "high"  # severe anaemia: critical
    assert got["B12_DEFICIENT"] == "moderate"  # warning
    assert got["MACROCYTOSIS"] == "low"  # info
    # without inputs there is nothing to echo or implicate, and it still validates
    assert entries(out, "Observation") == []


def test_to_fhir_service_request_per_missing_test() -> None:
    interp = interpret_fhir([observation("2132-9", value=250, unit="pg/mL", rid="b12")])
    wanted = {a.loinc for a in interp.actions() if a.kind == "order_test"}
    assert "13964-2" in wanted  # MMA
    out = to_fhir(interp, subject="Patient/b12-pat")
    validate_bundle(out)
    requests = entries(out, "ServiceRequest")
    assert {r["code"]["coding"][0]["code"] for r in requests} == wanted
    assert len(requests) == len(wanted)
    for r in requests:
        assert r["status"] == "draft"
        assert r["intent"] == "proposal"
        assert r["code"]["coding"][0]["system"] == LOINC
        assert r["subject"] == {"reference": "Patient/b12-pat"}


@pytest.mark.parametrize(("panel", "expected"), [
    ([("2132-9", 150, "pg/mL")], {"2132-9": "L"}),
    ([("2132-9", 250, "pg/mL")], {"2132-9": "IND"}),
    ([("2132-9", 250, "pg/mL"), ("13964-2", 620, "nmol/L")], {"2132-9": "IND", "13964-2": "H"}),
    ([("2132-9", 250, "pg/mL"), ("13964-2", 250, "nmol/L")], {"2132-9": "IND", "13964-2": "N"}),
    ([("2132-9", 600, "pg/mL"), ("13964-2", 250, "nmol/L")], {"2132-9": "N", "13964-2": "N"}),
    ([("2132-9", 1200, "pg/mL")], {"2132-9": "H"}),
    ([("718-7", 100, "g/L")], {"718-7": "L"}),
    ([("2276-4", 9, "ug/L")], {"2276-4": "L"}),
])
def test_observation_interpretation_codes(panel: list[tuple[str, float, str]],
                                          expected: dict[str, str]) -> None:
    inputs = [observation(code, value=v, unit=u, rid=code) for code, v, u in panel]
    out = to_fhir(interpret_fhir(inputs), subject="Patient/b12-pat", inputs=inputs)
    validate_bundle(out)
    got = {o["id"]: b12labs_interpretation(o) for o in entries(out, "Observation")}
    assert got == expected
    codes = interpretation_codes()
    for o in entries(out, "Observation"):
        coding = o["interpretation"][-1]["coding"][0]
        assert coding["system"] == V3
        for folder in codes.values():
            assert coding["code"] in folder


def test_censored_value_reads_as_decided_or_indeterminate() -> None:
    low = observation("2132-9", rid="low", valueString="<50 pmol/L")
    undecided = observation("2132-9", rid="und", valueString="<200 pg/mL")
    for r, code in ((low, "L"), (undecided, "IND")):
        out = to_fhir(interpret_fhir([r]), subject="Patient/b12-pat", inputs=[r])
        validate_bundle(out)
        assert [b12labs_interpretation(o) for o in entries(out, "Observation")] == [code]


def test_to_fhir_skips_inputs_that_were_not_used() -> None:
    res = workup()
    old = observation("2132-9", value=120, unit="pg/mL", when="2023-01-10T08:00:00Z", rid="old-b12")
    eie = observation("13964-2", value=440, unit="nmol/L", rid="eie", status="entered-in-error")
    interp = interpret_fhir([*res, old, eie])
    out = to_fhir(interp, subject="Patient/b12-pat", inputs=[*res, old, eie])
    validate_bundle(out)
    assert {o["id"] for o in entries(out, "Observation")} == {"b12", "mma", "mcv", "ferritin"}


def test_to_fhir_accepts_models_and_observations_without_id() -> None:
    res = workup()
    no_id = observation("718-7", value=101, unit="g/L")
    interp = interpret_fhir([*res, no_id])
    models = [get_fhir_model_class(r["resourceType"]).model_validate(r) for r in [*res, no_id]]
    out = to_fhir(interp, subject="Patient/b12-pat", inputs=models)
    validate_bundle(out)
    hb_entry = next(e for e in out["entry"] if e["resource"]["resourceType"] == "Observation"
                    and "id" not in e["resource"])
    assert b12labs_interpretation(hb_entry["resource"]) == "L"
    anaemia = next(i for i in entries(out, "DetectedIssue") if i["code"]["coding"][0]["code"] == "ANAEMIA")
    assert anaemia["implicated"] == [{"reference": hb_entry["fullUrl"], "display": "Hb"}]


def test_to_fhir_keeps_the_labs_own_interpretation() -> None:
    r = load("observation-mcv.json")
    r["interpretation"] = [{"coding": [{"system": V3, "code": "H"}]}]
    out = to_fhir(interpret_fhir([r]), subject="Patient/b12-pat", inputs=[copy.deepcopy(r)])
    validate_bundle(out)
    (echo,) = entries(out, "Observation")
    assert echo["interpretation"][0] == {"coding": [{"system": V3, "code": "H"}]}
    assert b12labs_interpretation(echo) == "H"


def test_to_fhir_rejects_an_empty_subject() -> None:
    with pytest.raises(ValueError):
        to_fhir(interpret({}), subject=" ")


# ---------------------------------------------------------------- official FHIR R4 examples
OFFICIAL_FILES = sorted(p.name for p in EXAMPLES.glob("*.json"))


def official(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((EXAMPLES / name).read_text(encoding="utf-8"))
    return data


def observations_of(data: dict[str, Any]) -> list[dict[str, Any]]:
    if data["resourceType"] == "Bundle":
        return [e["resource"] for e in data["entry"] if e["resource"]["resourceType"] == "Observation"]
    return [data] if data["resourceType"] == "Observation" else []


def test_official_examples_are_present() -> None:
    assert {"Bundle-101.json", "Bundle-ghp.json", "Observation-f005.json"} <= set(OFFICIAL_FILES)


@pytest.mark.parametrize("name", OFFICIAL_FILES)
def test_official_example_round_trip(name: str) -> None:
    data = official(name)
    interp = interpret_fhir(data)
    out = to_fhir(interp, subject="Patient/example", inputs=observations_of(data))
    validate_bundle(out)
    # every input resource is either used or listed with a reason
    used = set(interp.values)
    n_inputs = len(data["entry"]) if data["resourceType"] == "Bundle" else 1
    n_reports = sum(1 for e in data.get("entry", []) if e["resource"]["resourceType"] == "DiagnosticReport")
    assert len(interp.ignored) + len(used) == n_inputs - n_reports


def test_official_cbc_bundle_101() -> None:
    data = official("Bundle-101.json")
    interp = interpret_fhir(data)
    # haemoglobin 176 g/L and MCV 99 fL (lab interval 80-98) dated by their DiagnosticReport
    assert interp.values == {"hb": 176.0, "mcv": 99.0}
    assert interp.status.value == "not_assessed"
    assert "MACROCYTOSIS" in interp.codes
    assert all(i.reason == "code not used by b12labs" for i in interp.ignored)
    out = to_fhir(interp, subject="Patient/pat2", inputs=observations_of(data))
    echoed = {o["id"]: b12labs_interpretation(o) for o in entries(out, "Observation")}
    assert echoed == {"r1": "N", "r4": "H"}  # the lab flagged MCV H too
    assert {r["code"]["coding"][0]["code"] for r in entries(out, "ServiceRequest")} >= {"2132-9"}


def test_official_general_health_panel() -> None:
    data = official("Bundle-ghp.json")
    interp = interpret_fhir(data)
    # creatinine 0.09 mmol/L (unit text only, no UCUM code) is 90 umol/L
    assert interp.values == {"hb": 176.0, "mcv": 99.0, "creatinine": pytest.approx(90.0)}
    reasons = ignored_reasons(interp)
    assert "Specimen not used" in reasons["Specimen/rtt"]
    assert reasons["Observation/u2"] == "code not used by b12labs"


def test_official_haemoglobin_f005() -> None:
    interp = interpret_fhir(official("Observation-f005.json"))
    assert interp.values == {"hb": 72.0}  # 7.2 g/dL
    assert "ANAEMIA" in interp.codes
    out = to_fhir(interp, subject="Patient/f001", inputs=[official("Observation-f005.json")])
    validate_bundle(out)
    assert [b12labs_interpretation(o) for o in entries(out, "Observation")] == ["L"]


@pytest.mark.parametrize("name", [n for n in OFFICIAL_FILES if n.startswith("Observation-")
                                  and n != "Observation-f005.json"])
def test_unrelated_official_examples_are_ignored_gracefully(name: str) -> None:
    interp = interpret_fhir(official(name))
    assert interp.status.value == "not_assessed"
    assert interp.findings == ()
    assert len(interp.ignored) == 1


def test_official_entered_in_error_example() -> None:
    interp = interpret_fhir(official("Observation-f202.json"))
    assert ignored_reasons(interp) == {"Observation/f202": "status entered-in-error"}


def test_all_official_examples_together_are_refused_as_several_patients() -> None:
    with pytest.raises(InvalidValueError):
        interpret_fhir([official(n) for n in OFFICIAL_FILES])


# ---------------------------------------------------------------- the extra
def test_missing_fhir_resources_raises_missing_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(sys.modules):
        if name == "b12labs.fhir" or name.startswith("b12labs.fhir."):
            monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "fhir.resources.R4B", None)
    with pytest.raises(MissingExtraError) as excinfo:
        importlib.import_module("b12labs.fhir")
    assert excinfo.value.extra == "fhir"
    assert "b12labs[fhir]" in str(excinfo.value)
