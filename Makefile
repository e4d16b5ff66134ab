# jobtrail — two commands on a fresh machine:
#   make run    set up .venv, start the server on ./jobtrail.duckdb and load the demo jobs
#   make test   set up .venv and run the whole test suite
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin

.PHONY: setup run test lint bench clean

$(BIN)/jobtrail: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@

setup: $(BIN)/jobtrail

run: setup
	$(BIN)/jobtrail serve --demo

test: setup
	$(BIN)/ruff check .
	$(BIN)/mypy jobtrail/ agent/ collector/ storage/ api/
	$(BIN)/python -m pytest -q

lint: setup
	$(BIN)/ruff check .
	$(BIN)/mypy jobtrail/ agent/ collector/ storage/ api/

bench: setup
	$(BIN)/python -m pip install --quiet -e '.[bench]'
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) jobtrail.duckdb jobtrail.duckdb.wal
