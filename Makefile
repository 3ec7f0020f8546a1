# drgwatch: `make up` starts the embedded stack, `make test` runs every test.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml requirements.lock | sha1sum | cut -c1-12)

.PHONY: up demo test lint typecheck clean

$(STAMP): pyproject.toml requirements.lock
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -c requirements.lock -e '.[test,bench]'
	rm -f $(VENV)/.installed-*; touch $(STAMP)

up: $(STAMP)
	$(BIN)/drgwatch up $(ARGS)

demo: $(STAMP)
	$(BIN)/drgwatch up --demo $(ARGS)

test: $(STAMP)
	bash scripts/ensure-services
	$(BIN)/ruff check services tests
	$(BIN)/ruff format --check services tests
	$(BIN)/mypy
	$(BIN)/lint-imports
	$(BIN)/python -m pytest -q -p no:cacheprovider -rs $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check services tests
	$(BIN)/ruff format --check services tests
	$(BIN)/mypy
	$(BIN)/lint-imports

clean:
	rm -rf $(VENV) var
