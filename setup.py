"""Package discovery for setuptools; every other setting is in pyproject.toml.

Packages are found, never listed: the code under ``src/b12labs`` and the data folder
``reference_ranges/``, which lives at the repository root so a lab can audit it and ships
inside the wheel as ``b12labs.reference_ranges``. A new subpackage or data folder is picked up
without editing anything here; ``tests/test_packaging.py`` checks that every tracked file of
both folders is in the built wheel.
"""

from setuptools import find_namespace_packages, setup

_SKIP = ["*__pycache__*", "*.egg-info*"]

code = find_namespace_packages("src", include=["b12labs", "b12labs.*"], exclude=_SKIP)
data = ["b12labs.reference_ranges"] + [
    f"b12labs.reference_ranges.{sub}"
    for sub in find_namespace_packages("reference_ranges", exclude=_SKIP)
]

setup(
    packages=code + data,
    package_dir={"b12labs": "src/b12labs", "b12labs.reference_ranges": "reference_ranges"},
)
