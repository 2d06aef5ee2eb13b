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


def _tree(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*")
            if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"}


def test_wheel_contains_every_file_of_the_package_and_data_folders(wheel: Path) -> None:
    # packages and data files are discovered, not listed: a new module, subpackage or data
    # file must ship without anyone editing the packaging
    names = set(zipfile.ZipFile(wheel).namelist())
    expected = {f"b12labs/{n}" for n in _tree(REPO / "src" / "b12labs")}
    expected |= {f"b12labs/reference_ranges/{n}" for n in _tree(REPO / "reference_ranges")}
    assert "b12labs/batch/__init__.py" in expected and "b12labs/reference_ranges/codes/README.md" in expected
    assert sorted(expected - names) == []


def test_wheel_metadata_has_the_spdx_licence_and_one_version(wheel: Path) -> None:
    import b12labs

    with zipfile.ZipFile(wheel) as zf:
        meta = next(n for n in zf.namelist() if n.endswith(".dist-info/METADATA"))
        text = zf.read(meta).decode()
        assert any(n.endswith(".dist-info/licenses/LICENSE") for n in zf.namelist())
    assert "License-Expression: Apache-2.0" in text
    assert f"Version: {b12labs.__version__}\n" in text
    assert f"b12labs-{b12labs.__version__}-" in wheel.name


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
