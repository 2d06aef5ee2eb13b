"""Context vocabularies of docs/clinical-logic.md §3: symptoms, conditions and medication classes.

The terms, synonyms and medicine names are data (``reference_ranges/vocabulary.toml`` and
``reference_ranges/medications.toml``).
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

from ._data import read_toml
from .errors import VocabularyError

__all__ = [
    "CONDITIONS",
    "CONDITION_GROUPS",
    "MEDICATION_CLASSES",
    "NEUROLOGICAL_SYMPTOMS",
    "NG239_SYMPTOMS",
    "SYMPTOMS",
    "SYMPTOM_GROUPS",
    "MedicationMatch",
    "match_medication",
    "normalise_condition",
    "normalise_symptom",
]

_VOCAB = read_toml("vocabulary.toml")
_MEDS = read_toml("medications.toml")


def _key(term: str) -> str:
    return re.sub(r"[\s\-]+", "_", term.strip().lower().replace("’", "'"))


def _synonym_table(groups: dict[str, list[str]]) -> dict[str, str]:
    table: dict[str, str] = {}
    for term, synonyms in groups.items():
        table[_key(term)] = term
        for synonym in synonyms:
            table[_key(synonym)] = term
    return table


#: Closed condition vocabulary, in vocabulary order.
CONDITIONS: tuple[str, ...] = tuple(_VOCAB["conditions"])
#: Neurological symptoms of docs/clinical-logic.md §3.
NEUROLOGICAL_SYMPTOMS: tuple[str, ...] = tuple(_VOCAB["symptoms"]["neurological"])
#: All symptoms of docs/clinical-logic.md §3 (neurological first).
SYMPTOMS: tuple[str, ...] = NEUROLOGICAL_SYMPTOMS + tuple(_VOCAB["symptoms"]["other"])
#: Medication classes of docs/clinical-logic.md §3.
MEDICATION_CLASSES: tuple[str, ...] = tuple(_MEDS["classes"])


def _groups(table: dict[str, list[str]], vocabulary: tuple[str, ...]) -> dict[str, tuple[str, ...]]:
    out: dict[str, tuple[str, ...]] = {}
    for name, members in table.items():
        unknown = sorted(set(members) - set(vocabulary))
        if unknown:  # a data error, caught when the package is imported (and by the tests)
            raise ValueError(f"vocabulary.toml [groups] {name}: not vocabulary terms: {unknown}")
        out[name] = tuple(members)
    return out


#: Condition groups the rules read (``inflammatory``, ``malabsorption``, ``diet``), as data.
CONDITION_GROUPS: dict[str, tuple[str, ...]] = _groups(
    _VOCAB.get("groups", {}).get("conditions", {}), CONDITIONS
)

#: Symptom groups the rules read (``ng239_other``, ``neck``), as data.
SYMPTOM_GROUPS: dict[str, tuple[str, ...]] = _groups(
    _VOCAB.get("groups", {}).get("symptoms", {}), SYMPTOMS
)
#: NICE NG239's symptoms of B12 deficiency: every neurological term, fatigue, glossitis and
#: mood change (neck pain, back pain and joint stiffness are not among them on their own).
NG239_SYMPTOMS: tuple[str, ...] = NEUROLOGICAL_SYMPTOMS + SYMPTOM_GROUPS["ng239_other"]

_CONDITION_TABLE = _synonym_table(_VOCAB["conditions"])
_SYMPTOM_TABLE = _synonym_table(
    {**_VOCAB["symptoms"]["neurological"], **_VOCAB["symptoms"]["other"]}
)


def normalise_condition(term: str) -> str:
    """The vocabulary term for a condition or its synonym; :class:`VocabularyError` otherwise."""
    found = _CONDITION_TABLE.get(_key(term))
    if found is None:
        raise VocabularyError("conditions", term, CONDITIONS)
    return found


def normalise_symptom(term: str) -> str:
    """The vocabulary term for a symptom or its synonym; :class:`VocabularyError` otherwise."""
    found = _SYMPTOM_TABLE.get(_key(term))
    if found is None:
        raise VocabularyError("symptoms", term, SYMPTOMS)
    return found


def _medicine_names() -> dict[str, tuple[str, str]]:
    names: dict[str, tuple[str, str]] = {}
    for cls, spec in _MEDS["classes"].items():
        for drug, brands in spec["drugs"].items():
            names[drug.lower()] = (cls, drug)
            for brand in brands:
                names[brand.lower()] = (cls, drug)
    return names


_MEDICINE_NAMES = _medicine_names()
_MEDICINE_RE = re.compile(
    r"(?<![\w-])("
    + "|".join(re.escape(n) for n in sorted(_MEDICINE_NAMES, key=len, reverse=True))
    + r")(?![\w-])",
    re.IGNORECASE,
)


@dataclass(frozen=True, slots=True)
class MedicationMatch:
    """What one free-text medication entry matched: classes and generic names."""

    text: str
    classes: frozenset[str]
    drugs: frozenset[str]


@functools.lru_cache(maxsize=8192)
def match_medication(text: str) -> MedicationMatch:
    """Match a free-text entry to medication classes by generic or brand name as a word."""
    hits = [_MEDICINE_NAMES[m.group(1).lower()] for m in _MEDICINE_RE.finditer(text)]
    return MedicationMatch(
        text=text,
        classes=frozenset(c for c, _ in hits),
        drugs=frozenset(d for _, d in hits),
    )
