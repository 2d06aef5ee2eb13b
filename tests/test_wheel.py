"""The built wheel ships reference_ranges/ and finds every profile through importlib.resources."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

from tests._paths import REPO

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    # build from a clean copy: a developer's stale build/ folder must not leak into the test
    src = tmp_path_factory.mktemp("src") / "b12labs"
    shutil.copytree(REPO, src, ignore=shutil.ignore_patterns(
        ".venv", "build", "dist", "out", ".git", "*.egg-info", "__pycache__", ".*_cache", ".hypothesis", "_data"))
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(out), str(src)],
        check=True, capture_output=True, text=True,
    )
    (found,) = out.glob("b12labs-*.whl")
    return found


def test_wheel_contains_the_data_files(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    for needed in ("b12labs/py.typed", "b12labs/reference_ranges/analytes.toml", "b12labs/reference_ranges/units.toml",
                   "b12labs/reference_ranges/units.txt", "b12labs/reference_ranges/profiles/nice-ng239-2024.toml",
                   "b12labs/reference_ranges/profiles/mayo-acasm.toml", "b12labs/reference_ranges/codes/rxnorm.toml"):
        assert needed in names, needed


def test_installed_wheel_finds_every_profile(wheel: Path, tmp_path: Path) -> None:
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(target), str(wheel)],
                   check=True, capture_output=True, text=True)
    # -S: no site processing, so the development (editable) install cannot shadow the wheel;
    # the dependencies come from this interpreter's site-packages, after the wheel's target
    code = (
        "import sys, json; sys.path[:0] = [sys.argv[1], sys.argv[2]];"
        "import b12labs; from b12labs._data import reference_ranges;"
        "print(json.dumps({'file': b12labs.__file__, 'data': str(reference_ranges()),"
        "'profiles': [p['id'] for p in b12labs.list_profiles()],"
        "'status': b12labs.interpret({'b12': '150 pg/mL'}).status.value}))"
    )
    purelib = sysconfig.get_paths()["purelib"]
    out = subprocess.run([sys.executable, "-S", "-c", code, str(target), purelib], check=False,
                         capture_output=True, text=True, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    info = json.loads(out.stdout)
    assert info["file"].startswith(str(target))
    assert info["data"].startswith(str(target))
    assert sorted(info["profiles"]) == ["labcorp-141503", "mayo-acasm", "nice-ng239-2024"]
    assert info["status"] == "deficient"
