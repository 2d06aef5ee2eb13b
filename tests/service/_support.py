"""Shared fixtures of the service tests (and the benchmark): keys, tokens, FHIR prefetch data.

FHIR resources follow the style of the official examples (coded with LOINC, UCUM, RxNorm and
SNOMED CT; searchset Bundles as the spec's prefetch example). Identifying values are distinctive
strings so a log capture can prove none of them is written.
"""

from __future__ import annotations

import copy
import json
import time
import uuid
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from tests._paths import EXTERNAL

IG_DIR = EXTERNAL / "cds-hooks-fhir-tools-ig"

BASE = "http://127.0.0.1:8080"
ISS = "https://ehr.example.org"
RSA_KID = "ehr-rsa-2026"
EC_KID = "ehr-ec-2026"
INTERPRETATION = "b12-lab-interpretation"
ORDER_CHECK = "b12-order-check"

# Identifying data that must never reach a log line.
PATIENT_ID = "pt-7f3a9c41"
FAMILY = "Zyxwortle"
GIVEN = "Quillon"
BIRTH_DATE = "1961-03-14"
FHIR_TOKEN = "fhir-access-token-5d1e9a0c"
B12_TEXT = "247 pg/mL"
SECRETS = (PATIENT_ID, FAMILY, GIVEN, BIRTH_DATE, FHIR_TOKEN, "247 pg", "247.0", "1961")

LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
SUBJECT = {"reference": f"Patient/{PATIENT_ID}"}


def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def ec_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP384R1())


def public_jwk(key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey, kid: str, alg: str) -> dict[str, Any]:
    jwk: dict[str, Any] = json.loads(jwt.algorithms.get_default_algorithms()[alg].to_jwk(key.public_key()))
    jwk.update({"kid": kid, "alg": alg, "use": "sig"})
    return jwk


def write_jwks(path: Path, *keys: dict[str, Any]) -> Path:
    path.write_text(json.dumps({"keys": list(keys)}), encoding="utf-8")
    return path


FHIR_SERVER = "https://ehr.example.org/fhir"


def write_config(
    folder: Path, jwks: Path, *, base_url: str = BASE, fhir_servers: tuple[str, ...] = (FHIR_SERVER,), **extra: Any
) -> Path:
    lines = [f'base_url = "{base_url}"']
    lines += [f"{k} = {json.dumps(v)}" for k, v in extra.items()]
    lines += ["", "[[trusted_issuers]]", f'iss = "{ISS}"', f'jwks_file = "{jwks.name}"']
    lines += [f"fhir_servers = {json.dumps(list(fhir_servers))}"]
    path = folder / "service.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def token(
    key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey,
    aud: str | list[str],
    *,
    alg: str = "RS384",
    kid: str = RSA_KID,
    iss: str = ISS,
    now: float | None = None,
    lifetime: float = 300,
    jti: str | None = None,
    **claims: Any,
) -> str:
    now = time.time() if now is None else now
    payload = {
        "iss": iss,
        "aud": aud,
        "iat": int(now),
        "exp": int(now + lifetime),
        "jti": jti or str(uuid.uuid4()),
        "tenant": "tenant-1",
        **claims,
    }
    return jwt.encode(payload, key, algorithm=alg, headers={"kid": kid, "typ": "JWT"})


# --- FHIR resources ------------------------------------------------------------------------------


def patient() -> dict[str, Any]:
    return {
        "resourceType": "Patient",
        "id": PATIENT_ID,
        "active": True,
        "name": [{"use": "official", "family": FAMILY, "given": [GIVEN]}],
        "gender": "female",
        "birthDate": BIRTH_DATE,
    }


def observation(
    oid: str, loinc: str, display: str, value: float, unit: str, *, when: str = "2026-05-04T09:30:00Z"
) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "id": oid,
        "status": "final",
        "category": [
            {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                        "code": "laboratory",
                        "display": "Laboratory",
                    }
                ]
            }
        ],
        "code": {"coding": [{"system": LOINC, "code": loinc, "display": display}], "text": display},
        "subject": dict(SUBJECT),
        "effectiveDateTime": when,
        "issued": when.replace("09:30", "14:02"),
        "valueQuantity": {"value": value, "unit": unit, "system": UCUM, "code": unit},
    }


def b12_obs(value: float = 247, unit: str = "pg/mL") -> dict[str, Any]:
    return observation(
        "b12-1", "2132-9", "Cobalamin (Vitamin B12) [Mass/volume] in Serum or Plasma", value, unit
    )


def mma_obs(value: float = 520) -> dict[str, Any]:
    return observation(
        "mma-1", "13964-2", "Methylmalonate [Moles/volume] in Serum or Plasma", value, "nmol/L"
    )


def mcv_obs(value: float = 103) -> dict[str, Any]:
    return observation("mcv-1", "787-2", "MCV [Entitic volume] by Automated count", value, "fL")


def ferritin_obs(value: float = 41) -> dict[str, Any]:
    return observation("ferritin-1", "2276-4", "Ferritin [Mass/volume] in Serum or Plasma", value, "ng/mL")


def methotrexate() -> dict[str, Any]:
    return {
        "resourceType": "MedicationRequest",
        "id": "mtx-1",
        "status": "active",
        "intent": "order",
        "medicationCodeableConcept": {
            "coding": [
                {
                    "system": "http://www.nlm.nih.gov/research/umls/rxnorm",
                    "code": "6851",
                    "display": "methotrexate",
                }
            ],
            "text": "Methotrexate 15 mg weekly",
        },
        "subject": dict(SUBJECT),
        "authoredOn": "2025-11-02",
    }


def rheumatoid_arthritis() -> dict[str, Any]:
    return {
        "resourceType": "Condition",
        "id": "ra-1",
        "clinicalStatus": {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
                    "code": "active",
                }
            ]
        },
        "verificationStatus": {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/condition-ver-status",
                    "code": "confirmed",
                }
            ]
        },
        "category": [
            {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/condition-category",
                        "code": "problem-list-item",
                    }
                ]
            }
        ],
        "code": {
            "coding": [
                {"system": "http://snomed.info/sct", "code": "69896004", "display": "Rheumatoid arthritis"}
            ],
            "text": "Rheumatoid arthritis",
        },
        "subject": dict(SUBJECT),
        "onsetDateTime": "2019-06-01",
    }


def searchset(*resources: dict[str, Any]) -> dict[str, Any]:
    return {
        "resourceType": "Bundle",
        "type": "searchset",
        "total": len(resources),
        "entry": [
            {"fullUrl": f"https://ehr.example.org/fhir/{r['resourceType']}/{r['id']}", "resource": r, "search": {"mode": "match"}}
            for r in resources
        ],
    }


def prefetch(*, with_mma: bool = False, b12: dict[str, Any] | None = None) -> dict[str, Any]:
    """Borderline B12 (247 pg/mL), MCV 103 fL, ferritin 41 ng/mL [, MMA 520 nmol/L],
    methotrexate, rheumatoid arthritis."""
    obs = [b12 if b12 is not None else b12_obs(), mcv_obs(), ferritin_obs()]
    if with_mma:
        obs.append(mma_obs())
    return {
        "patient": patient(),
        "observations": searchset(*obs),
        "medications": searchset(methotrexate()),
        "conditions": searchset(rheumatoid_arthritis()),
    }


def patient_view(
    prefetch_data: dict[str, Any] | None = None, *, fhir: bool = False, **overrides: Any
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "hookInstance": str(uuid.uuid4()),
        "hook": "patient-view",
        "context": {"userId": "Practitioner/example", "patientId": PATIENT_ID, "encounterId": "enc-1"},
    }
    if prefetch_data is not None:
        body["prefetch"] = copy.deepcopy(prefetch_data)
    if fhir:
        body["fhirServer"] = FHIR_SERVER
        body["fhirAuthorization"] = {
            "access_token": FHIR_TOKEN,
            "token_type": "Bearer",
            "expires_in": 300,
            "scope": "user/Patient.read user/Observation.read user/MedicationRequest.read user/Condition.read",
            "subject": "b12labs",
        }
    body.update(overrides)
    return body


def draft_service_request(rid: str, loinc: str, display: str) -> dict[str, Any]:
    return {
        "resourceType": "ServiceRequest",
        "id": rid,
        "status": "draft",
        "intent": "order",
        "code": {"coding": [{"system": LOINC, "code": loinc, "display": display}], "text": display},
        "subject": dict(SUBJECT),
    }


def order_select(
    prefetch_data: dict[str, Any] | None, *orders: dict[str, Any], selections: list[str] | None = None
) -> dict[str, Any]:
    body = patient_view(prefetch_data, hook="order-select")
    body["context"] = {
        "userId": "PractitionerRole/123",
        "patientId": PATIENT_ID,
        "selections": selections if selections is not None else [f"ServiceRequest/{o['id']}" for o in orders],
        "draftOrders": {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": o} for o in orders]},
    }
    return body


# --- the FHIR tools IG logical models ------------------------------------------------------------

_SPEC_CODES = {
    "indicator": {"info", "warning", "critical"},  # the 2.0.1 spec text (IG value set differs)
    "selectionBehavior": {"at-most-one", "any"},
    "type": {"create", "update", "delete", "absolute", "smart"},
}


def ig_problems(instance: dict[str, Any], sd_file: str, root: str) -> list[str]:
    """Cardinality and membership of ``instance`` against a StructureDefinition's elements."""
    sd = json.loads((IG_DIR / sd_file).read_text(encoding="utf-8"))
    elements = {e["path"]: e for e in sd["differential"]["element"]}
    problems: list[str] = []

    def walk(obj: dict[str, Any], path: str) -> None:
        children = {
            p[len(path) + 1 :]: e
            for p, e in elements.items()
            if p.startswith(path + ".") and "." not in p[len(path) + 1 :]
        }
        for name, e in children.items():
            if int(e.get("min", 0)) >= 1 and name not in obj:
                problems.append(f"{path}.{name}: required, missing")
        for key, value in obj.items():
            if key == "extension":
                continue
            e = children.get(key)
            if e is None:
                problems.append(f"{path}.{key}: not in the model")
                continue
            if e.get("max") == "1" and isinstance(value, list):
                problems.append(f"{path}.{key}: max 1, got an array")
            if e.get("max") == "*" and not isinstance(value, (list, dict)):
                problems.append(f"{path}.{key}: expected an array")
            types = [t["code"] for t in e.get("type", [])]
            if key in _SPEC_CODES and isinstance(value, str) and value not in _SPEC_CODES[key]:
                problems.append(f"{path}.{key}: code {value!r} not allowed")
            if types and all(t.endswith("CDSHooksElement") for t in types):
                for item in value if isinstance(value, list) else [value]:
                    if isinstance(item, dict):
                        walk(item, f"{path}.{key}")

    walk(instance, root)
    return problems
