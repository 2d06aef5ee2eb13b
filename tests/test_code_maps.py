"""Structure and vocabulary checks for the terminology code maps in reference_ranges/codes/."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

CODES_DIR = Path(__file__).parents[1] / "reference_ranges" / "codes"

SYSTEMS = {
    "rxnorm.toml": "http://www.nlm.nih.gov/research/umls/rxnorm",
    "atc.toml": "http://www.whocc.no/atc",
    "snomed.toml": "http://snomed.info/sct",
    "loinc-context.toml": "http://loinc.org",
}

# Hard-coded from RULES.md §3 "Medication classes" (generic names, lower case).
# hydroxyurea and hydroxycarbamide are the two names of one medicine.
RULES_MEDICATIONS = {
    "methotrexate",
    "hydroxyurea", "hydroxycarbamide", "azathioprine", "mercaptopurine", "mycophenolate",
    "leflunomide", "zidovudine", "trimethoprim", "phenytoin", "valproate",
    "metformin", "omeprazole", "esomeprazole", "lansoprazole", "pantoprazole", "rabeprazole",
    "famotidine", "ranitidine", "cimetidine", "colchicine", "topiramate", "pregabalin",
    "phenobarbital", "primidone",
    "adalimumab", "infliximab", "etanercept", "certolizumab", "golimumab",
    "folic acid",
    "cyanocobalamin", "hydroxocobalamin", "methylcobalamin",
}
SYNONYMS = [{"hydroxyurea", "hydroxycarbamide"}]

# Hard-coded from RULES.md §3 `conditions` and `symptoms` (closed lists).
RULES_CONDITIONS = {
    "rheumatoid_arthritis", "pernicious_anaemia", "autoimmune_gastritis", "gastrectomy",
    "bariatric_surgery", "ileal_resection", "crohns_disease", "coeliac_disease",
    "chronic_kidney_disease", "hypothyroidism", "inflammatory_bowel_disease", "heart_failure",
    "vegan_diet", "vegetarian_diet", "alcohol_excess", "liver_disease",
}
RULES_SYMPTOMS = {
    "paraesthesia", "numbness", "ataxia", "gait_disturbance", "myoclonus", "muscle_weakness",
    "cognitive_impairment", "visual_disturbance", "bladder_bowel_dysfunction",
    "fatigue", "glossitis", "neck_pain", "neck_stiffness", "back_pain", "joint_stiffness",
    "occipital_headache", "mood_change",
}

# Exceptions: no code could be verified in a public source (see each file's
# "Unverified, not used" block). The reason is the same for every entry here: no public
# source seen during verification paired the term with a code, so none is listed rather
# than a guessed one.
RXNORM_UNVERIFIED = {
    "hydroxyurea", "hydroxycarbamide", "leflunomide", "zidovudine", "trimethoprim",
    "cimetidine", "colchicine", "topiramate", "primidone", "adalimumab", "infliximab",
    "etanercept", "certolizumab", "golimumab", "folic acid", "cyanocobalamin",
    "hydroxocobalamin", "methylcobalamin",
}
SNOMED_CONDITIONS_UNVERIFIED = {
    "autoimmune_gastritis", "gastrectomy", "bariatric_surgery", "ileal_resection",
    "vegan_diet", "vegetarian_diet",
}
SNOMED_SYMPTOMS_UNVERIFIED = {
    "numbness", "bladder_bowel_dysfunction", "glossitis", "joint_stiffness",
    "occipital_headache", "mood_change",
}


def load(name: str) -> dict:
    with open(CODES_DIR / name, "rb") as fh:
        return tomllib.load(fh)


@pytest.fixture(scope="module", params=sorted(SYSTEMS))
def code_map(request):
    return request.param, load(request.param)


def test_header(code_map):
    name, data = code_map
    assert data["system"] == SYSTEMS[name]
    assert isinstance(data["title"], str) and data["title"]
    assert isinstance(data["version"], str) and data["version"]
    assert isinstance(data["sources"], list) and data["sources"]
    assert all(isinstance(s, str) and s.strip() for s in data["sources"])


def test_entries_structure(code_map):
    name, data = code_map
    entries = data["code"]
    assert entries, name
    seen = set()
    for entry in entries:
        for key in ("code", "display", "verified"):
            assert isinstance(entry.get(key), str) and entry[key].strip(), (name, entry)
        assert entry["code"] == entry["code"].strip()
        assert entry["code"] not in seen, f"duplicate code {entry['code']} in {name}"
        seen.add(entry["code"])


def test_medication_maps():
    for name in ("rxnorm.toml", "atc.toml"):
        for entry in load(name)["code"]:
            assert entry.get("medication") in RULES_MEDICATIONS, (name, entry)
    for entry in load("rxnorm.toml")["code"]:
        assert entry.get("tty") == "IN", entry
        assert entry["code"].isdigit(), entry


def test_every_medication_has_rxnorm_code():
    covered = {e["medication"] for e in load("rxnorm.toml")["code"]}
    for group in SYNONYMS:
        if covered & group:
            covered |= group
    missing = RULES_MEDICATIONS - covered - RXNORM_UNVERIFIED
    assert not missing, f"medications without a verified RxNorm code: {sorted(missing)}"
    # An exception that has since been verified must be removed from the list.
    assert not (covered & RXNORM_UNVERIFIED), sorted(covered & RXNORM_UNVERIFIED)


def test_snomed_terms():
    for entry in load("snomed.toml")["code"]:
        keys = [k for k in ("condition", "symptom", "pregnant") if k in entry]
        assert len(keys) == 1, entry
        if "condition" in entry:
            assert entry["condition"] in RULES_CONDITIONS, entry
        elif "symptom" in entry:
            assert entry["symptom"] in RULES_SYMPTOMS, entry
        else:
            assert isinstance(entry["pregnant"], bool), entry
        assert entry["code"].isdigit(), entry


def test_every_condition_and_symptom_has_snomed_code():
    entries = load("snomed.toml")["code"]
    conditions = {e["condition"] for e in entries if "condition" in e}
    symptoms = {e["symptom"] for e in entries if "symptom" in e}
    assert not (RULES_CONDITIONS - conditions - SNOMED_CONDITIONS_UNVERIFIED)
    assert not (RULES_SYMPTOMS - symptoms - SNOMED_SYMPTOMS_UNVERIFIED)
    assert not (conditions & SNOMED_CONDITIONS_UNVERIFIED)
    assert not (symptoms & SNOMED_SYMPTOMS_UNVERIFIED)
    assert any(e.get("pregnant") is True and e["code"] == "77386006" for e in entries)


def test_loinc_context():
    entries = {e["code"]: e for e in load("loinc-context.toml")["code"]}
    assert entries["82810-3"]["kind"] == "observation"
    assert entries["82810-3"]["context"] == "pregnant"
    for _code, entry in entries.items():
        assert entry["kind"] in {"observation", "answer"}, entry
        if entry["kind"] == "answer":
            assert entry["answer_for"] in entries, entry
            assert isinstance(entry.get("pregnant", False), bool), entry
    assert entries["LA15173-0"]["pregnant"] is True
    assert entries["LA26683-5"]["pregnant"] is False
    assert "pregnant" not in entries["LA4489-6"]
