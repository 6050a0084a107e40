# hazmon — two commands on a fresh Debian machine: `make demo` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
export HAZMON_DSN ?= postgresql://postgres@127.0.0.1:5432/hazmon
export HAZMON_MQTT ?= mqtt://127.0.0.1:1883

.PHONY: all venv services lint typecheck pytest test demo clean migrate grafana

all: test

# The venv is rebuilt when pyproject.toml changes; the editable install maps the
# folders onto the hazmon.* namespace (package-dir), so no bare `rules` is installed.
$(VENV)/.installed: pyproject.toml
	@tools/ensure-python.sh "$(PYTHON)" "$(VENV)"
	$(PIP) install -q --upgrade pip setuptools wheel
	$(PIP) install -q -e '.[dev]' --no-build-isolation
	@touch $@

venv: $(VENV)/.installed

services:
	@tools/ensure-services.sh

lint: venv
	$(VENV)/bin/ruff check .

# mypy cannot follow setuptools' editable finder, so it checks a tree of symlinks
# laid out exactly as the installed hazmon.* namespace (tools/typecheck-tree.sh).
typecheck: venv
	@tools/typecheck-tree.sh build/typecheck
	cd build/typecheck && ../../$(VENV)/bin/mypy -p hazmon

# pytest exits 5 when it collects no test: that is a failure here, not a pass.
# Two workers (pytest-xdist), a test file each at a time: every test has its own database,
# broker topic prefix and ports, so files run side by side (serial: PYTEST_WORKERS=0).
PYTEST_WORKERS ?= 2
pytest: venv services
	$(VENV)/bin/pytest -n $(PYTEST_WORKERS) --dist loadfile $(PYTEST_ARGS); rc=$$?; \
	  if [ $$rc -eq 5 ]; then echo "pytest collected no tests: failing"; exit 1; fi; exit $$rc

test: lint typecheck pytest

migrate: venv services
	$(VENV)/bin/hazmon db migrate
	$(VENV)/bin/hazmon db load examples/plant.yaml

grafana: venv
	$(VENV)/bin/hazmon grafana build

demo: venv services
	@tools/demo.sh

clean:
	rm -rf build $(VENV) .mypy_cache .ruff_cache .pytest_cache
