# The verbs a user types. `make run` brings the broker up locally; `make test` is what CI runs.
SHELL := /bin/bash
.DEFAULT_GOAL := help
VENV := .venv
PY := $(VENV)/bin/python
SAM := .venv-sam/bin/sam
CHROMIUM := /usr/bin/chromium
APT := $(if $(filter 0,$(shell id -u)),,sudo) env DEBIAN_FRONTEND=noninteractive apt-get
SRC := functions/shared/broker functions/*/app.py cli/avaturn_broker_cli local/*.py local/simulators/upstream_sim benchmarks scripts

.PHONY: help setup run stop status build lint unit integration e2e test clean

help: ## list the verbs
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

$(VENV)/.installed: requirements-dev.txt requirements.txt pyproject.toml
	@echo "==> Python dev tools into $(VENV) (about 1 min on a fresh machine)"
	@test -x $(PY) || python3 -m venv $(VENV)
	@$(VENV)/bin/pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	@touch $@

.venv-sam/.installed: requirements-sam.txt
	@echo "==> AWS SAM CLI into .venv-sam (about 1 min on a fresh machine)"
	@test -x .venv-sam/bin/python || python3 -m venv .venv-sam
	@.venv-sam/bin/pip install --quiet --disable-pip-version-check -r requirements-sam.txt
	@touch $@

.venv-checkov/.installed: requirements-checkov.txt
	@echo "==> checkov into .venv-checkov (its pins conflict with the dev tools'; about 30 s)"
	@test -x .venv-checkov/bin/python || python3 -m venv .venv-checkov
	@.venv-checkov/bin/pip install --quiet --disable-pip-version-check -r requirements-checkov.txt
	@touch $@

web/node_modules/.installed: web/package.json web/package-lock.json
	@echo "==> npm ci in web/: Vite, the Avaturn web SDK, playwright-core (about 15 s)"
	@cd web && npm ci --no-audit --no-fund --loglevel=error
	@touch $@

$(CHROMIUM):
	@echo "==> Debian chromium for the e2e tier (apt-get; about 1 min; log: .local/logs/apt-chromium.log)"
	@mkdir -p .local/logs
	@{ $(APT) update -q && $(APT) install -y -q chromium; } >>.local/logs/apt-chromium.log 2>&1 \
		|| { tail -20 .local/logs/apt-chromium.log; exit 1; }

setup: $(VENV)/.installed .venv-sam/.installed web/node_modules/.installed $(CHROMIUM) ## install the dev tools, the SAM CLI, the demo page's packages and chromium (idempotent)

run: setup ## set everything up and run the broker locally (sam local start-api on :3000)
	@$(PY) local/stack.py up
	@echo "Try: curl -s -X POST http://127.0.0.1:3000/sessions -H 'content-type: application/json' -d '{}'"
	@echo "Stop with: make stop"

stop: ## stop everything `make run` started (by PID), then the Docker engine
	@test -x $(PY) && $(PY) local/stack.py down || true
	@bash local/engine.sh stop

status: ## what is running
	@$(PY) local/stack.py status; bash local/engine.sh status || true

build: setup ## sam build (the same artifacts `sam deploy` ships), byte-compiled for python3.13
	@# the .pyc are compiled by python3.13 if the host has one, else in the local Lambda base image
	@"$${PYTHON313:-python3.13}" -c '' 2>/dev/null || { bash local/engine.sh start && bash local/base-image.sh; }
	@AWS_DEFAULT_REGION=us-east-1 $(SAM) build

lint: setup .venv-checkov/.installed ## ruff, mypy, interrogate, import-linter, bandit, sam validate --lint, cfn-lint of the transformed template, checkov
	@echo "==> ruff"; $(VENV)/bin/ruff check . && $(VENV)/bin/ruff format --check .
	@echo "==> mypy"; $(VENV)/bin/mypy $(SRC)
	@echo "==> interrogate (every public name in broker/ and the CLI has a docstring)"; $(VENV)/bin/interrogate functions/shared/broker cli/avaturn_broker_cli
	@echo "==> import-linter (layering contracts in pyproject.toml)"; PYTHONPATH=functions/shared:cli $(VENV)/bin/lint-imports --no-cache
	@echo "==> sam validate --lint"; $(SAM) validate --lint
	@echo "==> cfn-lint of the SAM-transformed template"; .venv-sam/bin/python scripts/lint-template.py
	@echo "==> bandit (skips explained in bandit.yaml)"; $(VENV)/bin/bandit -q -c bandit.yaml -r functions cli local scripts benchmarks
	@echo "==> checkov (skips explained in template.yaml)"; .venv-checkov/bin/checkov -f template.yaml \
		--framework cloudformation --compact --quiet --skip-download

unit: setup ## unit tier (handlers in-process, moto, fake upstreams, no network) and the simulator's tests
	@$(PY) -m pytest tests/unit tests/simulator -q

integration: setup ## integration tier: real sam local start-api / invoke, moto server, simulators
	@$(PY) -m pytest tests/integration -q

e2e: setup ## e2e tier: the demo page and the real web SDK in headless Chromium, against its own stack
	@$(PY) -m pytest tests/e2e -q
	@echo "==> screenshots and the browser tests' report: artifacts/e2e/"

test: lint unit integration e2e ## everything CI runs: lint, unit, integration, e2e

.PHONY: bench
bench: setup ## benchmarks: cold start and warm create next to the seed-style port and the floor, reuse, secrets, cleanup, sizes (~10 min; not in test)
	@$(PY) -m benchmarks.run

clean: stop ## remove build output and local state (keeps the venvs)
	rm -rf .aws-sam .local
