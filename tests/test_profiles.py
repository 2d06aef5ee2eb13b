"""Threshold profiles as data: shipped profiles, local profiles that extend them, schema errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from b12labs import ProfileError, interpret, list_profiles, load_profile
from b12labs.profiles import THRESHOLDS

SHIPPED = {"nice-ng239-2024", "mayo-acasm", "labcorp-141503"}


def test_shipped_profiles_are_listed_with_provenance() -> None:
    profiles = {p["id"]: p for p in list_profiles()}
    assert set(profiles) == SHIPPED
    for pid in SHIPPED:
        p = load_profile(pid)
        assert p.version and p.effective_date and p.sources
        assert set(p.thresholds) == set(THRESHOLDS)
        for t in p.thresholds.values():
            assert t.citation and t.unit
    assert load_profile("mayo-acasm").extends == "nice-ng239-2024"


def test_rules_md_section_4_numbers() -> None:
    nice, mayo, labcorp = (load_profile(p) for p in ("nice-ng239-2024", "mayo-acasm", "labcorp-141503"))
    assert (nice.thresholds["b12_deficient"].value, nice.thresholds["b12_deficient"].unit) == (180, "ng/L")
    assert nice.thresholds["b12_deficient"].alt == {"pmol/L": 133}
    assert nice.thresholds["b12_indeterminate_upper"].alt == {"pmol/L": 258}
    assert mayo.thresholds["b12_deficient"].value == 150 and mayo.thresholds["b12_indeterminate_upper"].value == 400
    assert labcorp.thresholds["b12_deficient"].unit == "pg/mL" and labcorp.thresholds["b12_high"].value == 1245
    assert labcorp["mma_elevated"] == pytest.approx(0.378)
    assert nice["mma_elevated_older"] == 0.46 and mayo["mma_elevated_older"] == 0.40
    assert nice["hb_anaemia_female"] == 120 and nice["folate_low"] == 6.8


# RULES.md §4, as published (value, unit) — every threshold of the default profile
NICE_EXPECTED = {
    "b12_deficient": (180, "ng/L"), "b12_indeterminate_upper": (350, "ng/L"), "b12_high": (914, "ng/L"),
    "holotc_deficient": (25, "pmol/L"), "holotc_indeterminate_upper": (70, "pmol/L"),
    "mma_elevated": (0.40, "umol/L"), "mma_elevated_older": (0.46, "umol/L"), "mma_older_age": (65, "years"),
    # RULES v2 §4: children's MMA limits (Danish age-specific RIs), adult limits from 18
    "mma_elevated_infant": (1.25, "umol/L"), "mma_elevated_child": (0.30, "umol/L"),
    "mma_elevated_adolescent": (0.35, "umol/L"), "mma_child_age": (1, "years"),
    "mma_adolescent_age": (12, "years"), "mma_adult_age": (18, "years"),
    "mma_markedly_elevated": (0.75, "umol/L"), "homocysteine_elevated": (15, "umol/L"),
    "mcv_macrocytosis": (100, "fL"), "mcv_marked": (120, "fL"), "ferritin_low": (30, "ug/L"),
    "ferritin_low_inflammation": (100, "ug/L"), "ferritin_possible_upper": (300, "ug/L"),
    "tsat_low_inflammation": (20, "%"),
    "folate_low": (6.8, "nmol/L"), "folate_borderline_upper": (10, "nmol/L"), "rbc_folate_low": (340, "nmol/L"),
    "hb_anaemia_male": (130, "g/L"), "hb_anaemia_female": (120, "g/L"), "hb_anaemia_pregnant": (110, "g/L"),
    "hb_anaemia_pregnant_second_trimester": (105, "g/L"), "second_trimester_from": (14, "weeks"),
    "second_trimester_to": (27, "weeks"),
    "hb_moderate": (110, "g/L"), "hb_severe": (80, "g/L"), "hb_moderate_pregnant": (100, "g/L"),
    "hb_severe_pregnant": (70, "g/L"), "rdw_high": (14.5, "%"), "egfr_renal": (60, "mL/min/{1.73_m2}"),
    "egfr_kidney_failure": (15, "mL/min/{1.73_m2}"), "retic_high": (100, "10*9/L"),
    "crp_inflammation": (5, "mg/L"), "b12_injection_recent": (90, "days"),
    "if_antibody_false_positive": (14, "days"), "adult_age": (16, "years"),
    "risk_age": (65, "years"),
    # RULES v2 §4 and §8: results over time
    "b12_rcv": (23.4, "%"), "retest_b12": (56, "days"), "retest_folate": (21, "days"),
    "retest_ferritin": (20, "days"), "hb_response": (10, "g/L"), "mcv_response": (5, "fL"),
    "no_response_after": (56, "days"), "myoclonus_note_within": (28, "days"),
    "history_window": (730, "days"), "review_due_within": (90, "days"),
    "review_due_within_pregnant": (30, "days"),
}


def test_every_default_threshold_is_the_published_figure() -> None:
    nice = load_profile("nice-ng239-2024")
    got = {k: (t.value, t.unit) for k, t in nice.thresholds.items()}
    assert got == NICE_EXPECTED


def _write(tmp: Path, name: str, text: str) -> Path:
    path = tmp / name
    path.write_text(text, encoding="utf-8")
    return path


LOCAL = """
id = "st-elsewhere-2025"
version = "2025.1"
title = "St Elsewhere pathology, Abbott Alinity B12"
effective_date = 2025-04-01
extends = "nice-ng239-2024"

[sources]
local-verification = "St Elsewhere method verification report 2025-03 (Alinity i B12)"

[thresholds]
b12_deficient = { value = 150, unit = "ng/L", source = "local-verification" }
"""


def test_a_local_profile_extends_a_shipped_one(tmp_path: Path) -> None:
    path = _write(tmp_path, "local.toml", LOCAL)
    p = load_profile(path)
    assert p.id == "st-elsewhere-2025" and p.lineage == ("st-elsewhere-2025", "nice-ng239-2024")
    assert p.thresholds["b12_deficient"].value == 150
    assert p.thresholds["b12_indeterminate_upper"].value == 350  # inherited
    assert interpret({"b12": "160 ng/L"}, profile=path).status.value == "indeterminate"
    assert interpret({"b12": "160 ng/L"}).status.value == "deficient"
    result = interpret({"b12": "140 ng/L"}, profile=str(path))
    assert result.profile_id == "st-elsewhere-2025" and result.profile_version == "2025.1"
    assert "method verification" in (result.findings[0].evidence[0].threshold_source or "")


def test_the_readme_worked_profile_loads() -> None:
    readme = (Path(__file__).parents[1] / "reference_ranges" / "README.md").read_text(encoding="utf-8")
    block = readme.split("```toml", 1)[1].split("```", 1)[0]
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        p = load_profile(_write(Path(tmp), "readme.toml", block))
    assert p.extends == "nice-ng239-2024"


@pytest.mark.parametrize(
    ("body", "key", "text"),
    [
        ('id = "x"\nversion = "1"\n[sources]\ns = "s"\n[thresholds]\nb12_deficient = { value = 1, unit = "ng/L", source = "s" }\n',
         "thresholds.b12_indeterminate_upper", "missing threshold"),
        ('id = "x"\nversion = "1"\nextends = "nice-ng239-2024"\n[sources]\ns = "s"\n[thresholds]\nb12_deficient = { value = 150, unit = "furlong", source = "s" }\n',
         "thresholds.b12_deficient", "does not parse"),
        ('id = "x"\nversion = "1"\nextends = "nice-ng239-2024"\n[sources]\ns = "s"\n[thresholds]\nmma_elevated = { value = 0.4, unit = "fL", source = "s" }\n',
         "thresholds.mma_elevated", "does not parse"),
        ('id = "x"\nversion = "1"\nextends = "nice-ng239-2024"\n[thresholds]\nb12_deficient = { value = 150, unit = "ng/L", source = "nowhere" }\n',
         "thresholds.b12_deficient", r"not in \[sources\]"),
        ('id = "x"\nversion = "1"\nextends = "nice-ng239-2024"\n[sources]\ns = "s"\n[thresholds]\nb12_deficent = { value = 150, unit = "ng/L", source = "s" }\n',
         "thresholds.b12_deficent", "unknown threshold"),
        ('id = "x"\nversion = "1"\nextends = "nice-ng239-2024"\n[sources]\ns = "s"\n[thresholds]\nb12_deficient = { unit = "ng/L", source = "s" }\n',
         "thresholds.b12_deficient", "non-numeric"),
        ('version = "1"\n', "id", "missing"),
        ('id = "x"\nversion = "1"\nextends = "no-such-profile"\n', None, "unknown profile"),
        ('id = "x" version', None, "not valid TOML"),
    ],
)
def test_profile_errors_name_the_file_and_key(tmp_path: Path, body: str, key: str | None, text: str) -> None:
    path = _write(tmp_path, "bad.toml", body)
    with pytest.raises(ProfileError, match=text) as info:
        load_profile(path)
    assert "bad.toml" in str(info.value) or key is None
    if key:
        assert info.value.key == key
        assert key in str(info.value)


def test_extends_cycle_is_an_error(tmp_path: Path) -> None:
    _write(tmp_path, "a.toml", 'id = "a"\nversion = "1"\nextends = "b.toml"\n')
    _write(tmp_path, "b.toml", 'id = "b"\nversion = "1"\nextends = "a.toml"\n')
    with pytest.raises(ProfileError, match="cycle"):
        load_profile(tmp_path / "a.toml")


def test_unknown_profile_id_lists_the_shipped_ones() -> None:
    with pytest.raises(ProfileError, match="nice-ng239-2024"):
        load_profile("nice-2099")
