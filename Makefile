# b12labs: the one entry point. A fresh machine needs only Python 3.11+ and pip.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
OUT ?= out

.PHONY: setup demo test check lint typecheck docs docs-check bench release-check clean

$(STAMP): pyproject.toml setup.py
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[all]"
	touch $(STAMP)

setup: $(STAMP)

## demo: interpret the bundled example panels, then score the bundled example exports
demo: $(STAMP)
	$(BIN)/b12labs interpret --file examples/panels.json
	@mkdir -p $(OUT)
	$(BIN)/b12labs score examples/export.csv -o $(OUT)/export.scored.csv --report $(OUT)/cohort-report.html
	$(BIN)/b12labs score examples/long_export.csv -o $(OUT)/long_export.scored.csv --report $(OUT)/long-cohort-report.html
	@echo "demo outputs in $(OUT)/"

## test: the whole test suite
test: $(STAMP)
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks tools setup.py
	$(BIN)/ruff format --check src

typecheck: $(STAMP)
	$(BIN)/mypy --strict src/b12labs

docs: $(STAMP)
	$(BIN)/b12labs docs

docs-check: $(STAMP)
	$(BIN)/b12labs docs --check

## check: lint + types + tests + docs drift
check: lint typecheck docs-check test

## bench: benchmarks, printed as ratios against baselines measured in the same run
bench: $(STAMP)
	$(BIN)/python benchmarks/run_all.py

## release-check: build sdist and wheel, install the wheel in fresh venvs outside the checkout, run
## every README entry point there (and the core-only install), then the sdist's own test suite
release-check: $(STAMP)
	$(BIN)/python tools/release_check.py

clean:
	rm -rf $(VENV) $(OUT) build dist .pytest_cache .mypy_cache .ruff_cache .hypothesis
