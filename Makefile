# jukinet — the two commands: `make demo` and `make test` (see README.md).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
DATA ?= ./jukinet-data
RESIDENTS ?= 20000
CENTER ?=
CENTER_DIR ?= ./jukinet-center
CENTER_RESIDENTS ?= 5000

.PHONY: demo test venv bench trace clean-demo lint

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $@

venv: $(VENV)/.installed

## Run the whole system on the embedded default (SQLite) with synthetic Mie data.
## `make demo CENTER=1`: a consolidated center with 三重県, 愛知県 and 岐阜県 (issue 14, ADR 0045).
demo: venv
ifeq ($(strip $(CENTER)),)
	$(VENV)/bin/jukinet demo --data-dir $(DATA) --residents $(RESIDENTS)
else
	$(VENV)/bin/jukinet center demo --center-dir $(CENTER_DIR) --residents $(CENTER_RESIDENTS)
endif

## Run every test (SQLite always; PostgreSQL too when JUKINET_TEST_POSTGRES_URL is set).
test: venv
	$(PY) -m pytest -q -n 2 --dist loadgroup

## Benchmarks (writes figures to stdout; see bench/RESULTS.md). SQLite unless DB names a PostgreSQL
## server where the benchmarks may create (and drop) their own databases and roles:
##   make bench DB=postgresql://postgres@127.0.0.1:5432/postgres
DB ?=
bench: venv
	$(PY) bench/run.py $(if $(DB),--db-url $(DB))

## Regenerate docs/requirements-trace.md from the test names.
trace: venv
	$(PY) scripts/trace.py

clean-demo:
	rm -rf $(DATA) $(CENTER_DIR)
