# Every routine task is one command. `make test` and `make demo` set everything up first.
PYTHON ?= $(shell for p in python3.13 python3.12 python3.11 python3; do \
	command -v $$p >/dev/null 2>&1 && $$p -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null \
	&& { echo $$p; break; }; done)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install test check lint format serve demo bench bench-instructions generate clean fastapi flask django
.PHONY: test-lowest hooks

$(STAMP): pyproject.toml
	@test -n "$(PYTHON)" || { echo "coatcheck needs Python 3.11 or newer on PATH" >&2; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[all]' --group dev
	@touch $@

install: $(STAMP)

## The whole suite: generated code fresh, lint, types, then every test.
test: check
	$(BIN)/python -m pytest

check: install
	$(BIN)/python scripts/unasync.py --check
	$(BIN)/ruff check src tests benchmarks scripts
	$(BIN)/ruff format --check src tests benchmarks scripts
	$(BIN)/mypy src

## The tests again, in .venv-lowest, on the lowest releases pyproject.toml admits of each
## dependency (ci/constraints-lowest.txt), on Python 3.11 where there is one; ci/check_lowest.py
## first checks pins, bounds and installed versions agree. .ci/run runs it after `make test`;
## lint and types are not repeated.
LOWEST := .venv-lowest
LOWEST_PYTHON ?= $(shell command -v python3.11 >/dev/null 2>&1 && echo python3.11 || echo $(PYTHON))
LOWEST_STAMP := $(LOWEST)/.installed

$(LOWEST_STAMP): pyproject.toml ci/constraints-lowest.txt
	@test -n "$(LOWEST_PYTHON)" || { echo "coatcheck needs Python 3.11 or newer on PATH" >&2; exit 1; }
	rm -rf $(LOWEST)
	$(LOWEST_PYTHON) -m venv $(LOWEST)
	$(LOWEST)/bin/python -m pip install --quiet --upgrade pip
	$(LOWEST)/bin/python -m pip install --quiet -c ci/constraints-lowest.txt -e '.[all]' --group dev
	@touch $@

test-lowest: $(LOWEST_STAMP)
	$(LOWEST)/bin/python ci/check_lowest.py
	$(LOWEST)/bin/python -m pytest

## pre-commit runs `make check`'s four checks before each commit (.pre-commit-config.yaml).
hooks: install
	$(BIN)/python -m pip install --quiet 'pre-commit>=3.5'
	$(BIN)/pre-commit install

generate: install
	$(BIN)/python scripts/unasync.py

format: install
	$(BIN)/ruff format src tests benchmarks scripts
	$(BIN)/ruff check --fix src tests benchmarks scripts

## The session service on http://127.0.0.1:8000 with its SQLite database and secret file in
## ./coatcheck-data (created on first start; docs/serve.md). Stop it with Ctrl-C.
serve: install
	$(BIN)/coatcheck serve

## The operator CLI walking through a session's lifecycle on the embedded SQLite store.
demo: install
	@PATH="$(CURDIR)/$(BIN):$$PATH" sh scripts/demo.sh

## Benchmarks print numbers and ratios; they never pass or fail. wrk: apt-get install wrk.
## The example apps on http://127.0.0.1:8000 (log in as alice / alice-password).
fastapi: install
	$(BIN)/uvicorn --app-dir examples/fastapi_app app:app --host 127.0.0.1 --port 8000

flask: install
	$(BIN)/flask --app examples/flask_app/app.py run --host 127.0.0.1 --port 8000

django: install
	cd examples/django_project && ../../$(BIN)/python manage.py runserver 127.0.0.1:8000

bench: install
	$(BIN)/python -m pip install --quiet -r benchmarks/requirements.txt
	$(BIN)/python benchmarks/store_ops.py
	$(BIN)/python benchmarks/web_overhead.py

## Instructions per request under callgrind (deterministic; apt-get install valgrind; ~8 min).
bench-instructions: install
	$(BIN)/python -m pip install --quiet -r benchmarks/requirements.txt
	$(BIN)/python benchmarks/instructions.py

clean:
	rm -rf $(VENV) $(LOWEST) .pytest_cache .mypy_cache .ruff_cache .hypothesis
