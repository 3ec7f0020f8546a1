# drgwatch: `make up` starts the embedded stack, `make test` runs every test.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml requirements.lock | sha1sum | cut -c1-12)

MUTATION_VENV := .venv-mutation
MUTATION_STAMP := $(MUTATION_VENV)/.installed-$(shell cat requirements-mutation.lock | sha1sum | cut -c1-12)
MUTATION_CHILDREN ?= 1

.PHONY: up demo test lint typecheck mutation clean ui

$(STAMP): pyproject.toml requirements.lock
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -c requirements.lock -e '.[test,bench]'
	rm -f $(VENV)/.installed-*; touch $(STAMP)

# mutmut cannot share .venv (it needs click>=8.4.2, faust-streaming click<8.4); the core's
# tests run from the source tree, so the project itself is not installed here: an installed
# copy could be imported in place of the mutated one
$(MUTATION_STAMP): requirements-mutation.lock
	test -x $(MUTATION_VENV)/bin/python || $(PYTHON) -m venv $(MUTATION_VENV)
	$(MUTATION_VENV)/bin/python -m pip install --quiet -r requirements-mutation.lock
	rm -f $(MUTATION_VENV)/.installed-*; touch $(MUTATION_STAMP)

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
	$(BIN)/python -m pytest -q -p no:cacheprovider -rs --durations=25 $(PYTEST_ARGS)

# the dashboard: install the pinned Node packages and build services/api/ui/dist (committed,
# so running drgwatch needs no Node); run after changing anything under services/api/ui
ui:
	cd services/api/ui && npm ci --no-audit --no-fund && npm run build

lint: $(STAMP)
	$(BIN)/ruff check services tests
	$(BIN)/ruff format --check services tests
	$(BIN)/mypy
	$(BIN)/lint-imports

# Mutation testing of the pure core ([tool.mutmut] in pyproject.toml): 20 minutes and more,
# so not part of `make test`. Every run starts afresh; MUTANTS='name ...' re-runs only those
# mutants of the last run (their names as the summary lists them).
mutation: $(MUTATION_STAMP)
	$(if $(MUTANTS),,rm -rf mutants)
	$(MUTATION_VENV)/bin/mutmut run --max-children $(MUTATION_CHILDREN) $(MUTANTS)
	$(MUTATION_VENV)/bin/python scripts/mutation_summary.py

clean:
	rm -rf $(VENV) $(MUTATION_VENV) mutants var
