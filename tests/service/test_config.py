"""Loading and validating the service's TOML configuration."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from b12labs.service._config import (
    DEFAULT_FHIR_TIMEOUT_SECONDS,
    DEFAULT_MAX_BODY_BYTES,
    ConfigError,
    ServiceConfig,
    TrustedIssuer,
    load_config,
)

JWKS = '{"keys": []}'


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def problem(path: Path, *, allow_unauthenticated: bool = False) -> str:
    with pytest.raises(ConfigError) as info:
        load_config(path, allow_unauthenticated=allow_unauthenticated)
    message = str(info.value)
    assert str(path) in message  # every error names the file
    return message


def test_full_example_with_url(tmp_path: Path) -> None:
    cfg_file = write(
        tmp_path / "service.toml",
        """
base_url = "https://cds.example.org/"
max_body_bytes = 65536
fhir_timeout_seconds = 2.5

[[trusted_issuers]]
iss = "https://ehr.example.org"
jwks_url = "https://ehr.example.org/.well-known/jwks.json"
""",
    )
    cfg = load_config(cfg_file)
    assert cfg.base_url == "https://cds.example.org"  # trailing slash normalised
    assert cfg.max_body_bytes == 65536
    assert cfg.fhir_timeout_seconds == 2.5
    assert cfg.allow_unauthenticated is False
    (issuer,) = cfg.trusted_issuers
    assert issuer.iss == "https://ehr.example.org"
    assert issuer.jwks_url == "https://ehr.example.org/.well-known/jwks.json"
    assert issuer.jwks_file is None
    assert cfg.issuer("https://ehr.example.org") is issuer
    assert cfg.issuer("https://ehr.example.org/") is None
    assert (
        cfg.audience("b12labs-interpret")
        == "https://cds.example.org/cds-services/b12labs-interpret"
    )
    assert cfg.audience() == "https://cds.example.org/cds-services"


def test_defaults_and_cli_flag(tmp_path: Path) -> None:
    cfg_file = write(tmp_path / "service.toml", 'base_url = "https://cds.example.org///"\n')
    cfg = load_config(cfg_file, allow_unauthenticated=True)
    assert cfg.base_url == "https://cds.example.org"
    assert cfg.max_body_bytes == DEFAULT_MAX_BODY_BYTES == 1024 * 1024
    assert cfg.fhir_timeout_seconds == DEFAULT_FHIR_TIMEOUT_SECONDS
    assert cfg.trusted_issuers == ()
    assert cfg.allow_unauthenticated is True


def test_base_url_with_path_prefix(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path / "s.toml", 'base_url = "https://h.example/cds/"\n'))
    assert cfg.audience("x") == "https://h.example/cds/cds-services/x"


def test_relative_jwks_file_resolves_against_config_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    keys = write(tmp_path / "conf" / "keys" / "ehr-jwks.json", JWKS)
    cfg_file = write(
        tmp_path / "conf" / "service.toml",
        """
base_url = "https://cds.example.org"
[[trusted_issuers]]
iss = "https://ehr.example.org"
jwks_file = "keys/ehr-jwks.json"
""",
    )
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    # the config path itself is relative too: ../conf/service.toml seen from elsewhere/
    cfg = load_config(Path("..") / cfg_file.relative_to(tmp_path))
    (issuer,) = cfg.trusted_issuers
    assert issuer.jwks_file is not None
    assert issuer.jwks_file.is_absolute()
    assert issuer.jwks_file.resolve() == keys.resolve()


def test_absolute_jwks_file(tmp_path: Path) -> None:
    keys = write(tmp_path / "k.json", JWKS)
    cfg_file = write(
        tmp_path / "sub" / "service.toml",
        f"""
base_url = "https://cds.example.org"
[[trusted_issuers]]
iss = "https://ehr.example.org"
jwks_file = "{keys.as_posix()}"
""",
    )
    assert load_config(cfg_file).trusted_issuers[0].jwks_file == keys


@pytest.mark.parametrize(
    "source",
    [
        'jwks_url = "https://e.example/jwks"\njwks_file = "k.json"',
        "",
    ],
    ids=["both", "neither"],
)
def test_exactly_one_key_source(tmp_path: Path, source: str) -> None:
    write(tmp_path / "k.json", JWKS)
    cfg_file = write(
        tmp_path / "service.toml",
        f"""
base_url = "https://cds.example.org"
[[trusted_issuers]]
iss = "https://a.example"
jwks_url = "https://a.example/jwks"
[[trusted_issuers]]
iss = "https://ehr.example.org"
{source}
""",
    )
    message = problem(cfg_file)
    assert "trusted_issuers[1]: exactly one of jwks_url or jwks_file is required" in message
    assert "trusted_issuers[0]" not in message


def test_missing_jwks_file(tmp_path: Path) -> None:
    cfg_file = write(
        tmp_path / "service.toml",
        """
base_url = "https://cds.example.org"
[[trusted_issuers]]
iss = "https://ehr.example.org"
jwks_file = "keys/missing.json"
""",
    )
    message = problem(cfg_file)
    assert "trusted_issuers[0].jwks_file: JWKS file not found" in message
    assert str(tmp_path / "keys" / "missing.json") in message


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("max_body_bytes = 10\n", "base_url: Field required"),
        ('base_url = "cds.example.org"\n', "base_url: base_url must be an absolute https:// URL"),
        ('base_url = "http://cds.example.org"\n', "base_url: base_url must use https://"),
        (
            'base_url = "https://u:p@cds.example.org"\n',
            "base_url: base_url must not contain credentials",
        ),
        (
            'base_url = "https://cds.example.org?x=1"\n',
            "base_url: base_url must not contain a ?query",
        ),
        (
            'base_url = "https://cds.example.org"\nmax_body_bytes = 0\n',
            "max_body_bytes: Input should be greater than 0",
        ),
        (
            'base_url = "https://cds.example.org"\nmax_body_bytes = "1MB"\n',
            "max_body_bytes: Input should be a valid integer",
        ),
        (
            'base_url = "https://cds.example.org"\nmax_body_bytes = 1.5\n',
            "max_body_bytes: Input should be a valid integer",
        ),
        (
            'base_url = "https://cds.example.org"\nfhir_timeout_seconds = -1\n',
            "fhir_timeout_seconds: Input should be greater than 0",
        ),
        (
            'base_url = "https://cds.example.org"\nbase_uri = "x"\n',
            "base_uri: Extra inputs are not permitted",
        ),
        (
            'base_url = "https://cds.example.org"\n[[trusted_issuers]]\niss = "https://e.example"\njwks_uri = "https://e.example/j"\n',
            "trusted_issuers[0].jwks_uri: Extra inputs are not permitted",
        ),
        (
            'base_url = "https://cds.example.org"\n[[trusted_issuers]]\niss = "https://e.example"\njwks_url = "http://e.example/j"\n',
            "trusted_issuers[0].jwks_url: jwks_url must use https://",
        ),
        (
            'base_url = "https://cds.example.org"\n[[trusted_issuers]]\niss = ""\njwks_url = "https://e.example/j"\n',
            "trusted_issuers[0].iss: String should have at least 1 character",
        ),
        (
            'base_url = "https://cds.example.org"\n[[trusted_issuers]]\niss = " https://e.example"\njwks_url = "https://e.example/j"\n',
            "trusted_issuers[0].iss: iss must be non-blank",
        ),
        (
            'base_url = "https://cds.example.org"\n'
            '[[trusted_issuers]]\niss = "https://e.example"\njwks_url = "https://e.example/j"\n'
            '[[trusted_issuers]]\niss = "https://e.example"\njwks_url = "https://e.example/k"\n',
            "trusted issuer 'https://e.example' is listed more than once",
        ),
        (
            'base_url = "https://cds.example.org"\ntrusted_issuers = "x"\n',
            "trusted_issuers: Input should be a valid tuple",
        ),
    ],
)
def test_invalid_values_name_the_key(tmp_path: Path, text: str, expected: str) -> None:
    assert expected in problem(write(tmp_path / "service.toml", text))


def test_several_problems_reported_together(tmp_path: Path) -> None:
    message = problem(write(tmp_path / "s.toml", "max_body_bytes = -1\nfhir_timeout_seconds = 0\n"))
    assert len(message.splitlines()) == 3
    assert (
        "base_url" in message and "max_body_bytes" in message and "fhir_timeout_seconds" in message
    )


def test_http_allowed_for_localhost_only(tmp_path: Path) -> None:
    cfg = load_config(
        write(
            tmp_path / "s.toml",
            'base_url = "http://127.0.0.1:8000/"\n'
            '[[trusted_issuers]]\niss = "dev"\njwks_url = "http://localhost:9000/jwks"\n',
        )
    )
    assert cfg.base_url == "http://127.0.0.1:8000"


def test_allow_unauthenticated_cannot_come_from_file(tmp_path: Path) -> None:
    cfg_file = write(
        tmp_path / "service.toml",
        'base_url = "https://cds.example.org"\nallow_unauthenticated = true\n',
    )
    message = problem(cfg_file, allow_unauthenticated=True)
    assert "allow_unauthenticated: cannot be set in the config file" in message


def test_invalid_toml(tmp_path: Path) -> None:
    message = problem(write(tmp_path / "service.toml", 'base_url = "https://x\n'))
    assert "invalid TOML" in message and "line 1" in message


def test_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "service.toml"
    path.write_bytes(b'base_url = "\xff"\n')
    assert "not valid UTF-8" in problem(path)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="config file not found") as info:
        load_config(tmp_path / "nope.toml")
    assert isinstance(info.value, ValueError)
    assert info.value.path == tmp_path / "nope.toml"
    assert info.value.problems == ((None, "config file not found"),)


def test_config_is_immutable_and_constructible_in_code(tmp_path: Path) -> None:
    keys = write(tmp_path / "k.json", JWKS)
    cfg = ServiceConfig(
        base_url="https://cds.example.org/",
        trusted_issuers=[TrustedIssuer(iss="https://e.example", jwks_file=keys)],
    )
    assert cfg.base_url == "https://cds.example.org"
    with pytest.raises(ValidationError):
        cfg.base_url = "https://other.example"  # type: ignore[misc]
