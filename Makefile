# ttlp — the two commands a newcomer needs: `make run` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: install run test lint typecheck unit bench fixtures clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

## Run every role in one process on the embedded backends (SQLite + in-process bus), fed by
## the mock provider at 20 frames/s in a loop: events flow and are stored. Ctrl+C stops it.
## It prints where the web UI is and, on the first run, the setup link that makes the owner.
run: install
	@echo "ttlp: the command is $(BIN)/ttlp (in another terminal: $(BIN)/ttlp accounts list;"
	@echo "      'source $(BIN)/activate' puts it on PATH). Below: 'web UI at ...' and, while no account exists, a one-time setup link."
	$(BIN)/ttlp run --roles all --provider mock --rate 20 --loop --log-format pretty

## Lint, type-check and run the whole test suite (integration tests need PostgreSQL and Redis
## on 127.0.0.1; they are skipped with a reason when absent, and must run under CI=true).
## Two workers by default (the machine has two cores); a test file runs whole in one worker.
## The browser tests run after the others, in a run of their own: Playwright's sync API keeps
## an event loop running in its worker's main thread, where no asyncio test could run after it
## (xdist hands out the biggest files first, whatever the collection order).
TEST_WORKERS ?= 2
test: install lint typecheck
	$(BIN)/pytest -n $(TEST_WORKERS) --dist loadfile -m "not browser"; status=$$?; \
	$(BIN)/pytest -n $(TEST_WORKERS) --dist loadfile -m browser || exit 1; exit $$status

lint: install
	$(BIN)/ruff check src tests benchmarks scripts alembic
	$(BIN)/ruff format --check src tests benchmarks scripts alembic

typecheck: install
	$(BIN)/mypy

unit: install
	$(BIN)/pytest tests/unit

bench: install
	$(BIN)/python benchmarks/pipeline.py

fixtures: install
	$(BIN)/python scripts/make_fixtures.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache build dist
