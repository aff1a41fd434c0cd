# The commands a user and CI run. `.ci/run` calls `make lint` and `make test`, nothing else.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip --disable-pip-version-check --quiet

.PHONY: demo serve test lint format bench bench-detection bench-failover lock clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.runtime: requirements.lock pyproject.toml | $(BIN)/python
	$(PIP) install --require-hashes -r requirements.lock
	$(PIP) install --no-deps -e .
	touch $@

$(VENV)/.dev: requirements-dev.lock pyproject.toml | $(BIN)/python
	$(PIP) install --require-hashes -r requirements-dev.lock
	$(PIP) install --no-deps -e .
	touch $(VENV)/.runtime $@

$(VENV)/.bench: requirements-bench.lock | $(VENV)/.dev
	$(PIP) install --require-hashes -r requirements-bench.lock
	touch $@

demo: $(VENV)/.runtime  ## start Bastion on 127.0.0.1:8080 with a demo project, key and the echo model
	$(BIN)/bastion demo

test: $(VENV)/.dev  ## the whole suite: unit, integration (PostgreSQL, Redis), end-to-end
	$(BIN)/pytest --cov --cov-report=term

lint: $(VENV)/.dev  ## format check, lint, strict typing
	$(BIN)/ruff format --check src tests bench
	$(BIN)/ruff check src tests bench
	$(BIN)/mypy

format: $(VENV)/.dev
	$(BIN)/ruff format src tests bench
	$(BIN)/ruff check --fix src tests bench

bench: $(VENV)/.dev  ## gateway overhead, side by side with a direct upstream
	$(BIN)/python bench/overhead.py

bench-detection: $(VENV)/.bench  ## detection accuracy and speed: the pattern tier, with NER, and Presidio
	$(BIN)/python bench/detection.py

bench-failover: $(VENV)/.dev  ## failover under load: one of three upstreams fails half its requests, then goes down
	$(BIN)/python bench/failover.py

# The dev set is constrained by the benchmark's (dev plus Presidio), so installing Presidio changes no dev pin.
lock:  ## re-pin the runtime, dev and benchmark dependencies with hashes (needs uv)
	uv pip compile pyproject.toml --generate-hashes --python-version 3.11 -o requirements.lock
	uv pip compile pyproject.toml --extra dev --extra bench --generate-hashes --python-version 3.11 -o requirements-bench.lock
	uv pip compile pyproject.toml --extra dev -c requirements-bench.lock --generate-hashes --python-version 3.11 -o requirements-dev.lock

clean:
	rm -rf $(VENV) .bastion .pytest_cache .mypy_cache .ruff_cache .coverage
