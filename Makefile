# The Makefile only calls scripts and modules; `make help` lists the targets.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
STACK := $(PY) -m recsys_local
DURATIONS ?= 25
# Load .env (optional, git-ignored) so ports and names can be changed without editing anything.
ifneq (,$(wildcard .env))
include .env
export
endif

.PHONY: help setup up airflow down status clean seed demo test check reliability iam-report lint format bench lock package

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F ':.*## ' '{printf "  make %-8s %s\n", $$1, $$2}'

setup: ## install missing Debian packages and the pinned Python environment (idempotent)
	@scripts/setup.sh

up: setup ## start the local stack (MariaDB, PostgreSQL + pgvector, moto + executors); seed an empty source; re-apply Terraform on a restarted endpoint (UP_ARGS=--no-restore skips)
	@$(STACK) up $(UP_ARGS)

airflow: up ## start Airflow 3 (api-server, scheduler, dag-processor, triggerer) on the stack; UI http://127.0.0.1:8080
	@$(STACK) airflow

down: ## stop exactly the processes the stack started (Airflow too); keep the data
	@[ ! -x $(PY) ] || $(STACK) down

status: ## show each service's endpoint and health
	@$(STACK) status

clean: ## stop the stack and delete LOCAL_STACK_HOME (default .local/): only a folder the stack made and marked
	@if [ -x $(PY) ]; then $(STACK) clean; elif [ -f .local/.recsys-stack-home ]; then rm -rf .local; fi

seed: up ## regenerate the source data (ARGS="--customers 100000 --products 2000 --ratings 10000000")
	@$(PY) -m recsys_local.seed $(ARGS)

demo: up ## run the whole platform end to end on the local stack
	@$(PY) -m recsys_local.demo

test: setup ## ruff, then the whole test suite in three lanes at once, each on services of its own (A: e2e; B: unit, dags, terraform, integration; C: the AWS rehearsal, then batch reliability; scripts/test.sh --help); prints each lane's 25 slowest tests (DURATIONS=N)
	@$(VENV)/bin/ruff check .
	@$(VENV)/bin/ruff format --check .
	@DURATIONS=$(DURATIONS) scripts/test.sh

check: setup ## the inner loop, no stack: ruff, unit, DAG integrity and static Terraform tests (make test runs them too)
	@$(VENV)/bin/ruff check .
	@$(VENV)/bin/ruff format --check .
	@$(PY) -m pytest -m "not integration and not e2e and not reliability" tests/unit tests/dags tests/terraform

reliability: setup ## fault, restart and load scenarios on the test stack (real kills); prints the table, .local/reliability/, and docs/reliability.md's table after a passing run
	@RELIABILITY_PAGE=1 RELIABILITY_LOAD_EVENTS=$${RELIABILITY_LOAD_EVENTS:-50000} DURABILITY_FAULTS=$${DURABILITY_FAULTS:-40} $(PY) -m pytest -m reliability

iam-report: setup ## the AWS rehearsal, then docs/iam-report.md: the actions the workers and the services' roles called, and why each allowed action nothing called stays
	@IAM_REPORT_PAGE=1 $(PY) -m pytest -q -p no:cacheprovider tests/e2e/test_aws_deployment_rehearsal.py

lint: setup ## ruff only
	@$(VENV)/bin/ruff check .

format: setup ## apply ruff's formatting and fixes
	@$(VENV)/bin/ruff format . && $(VENV)/bin/ruff check --fix .

bench: up ## each speed claim against its reference in one run (ARGS="--quick", ARGS="vectors etl"); bench/results/latest.md
	@$(PY) -m recsys_local.bench $(ARGS)

package: ## build both Lambda zips ahead of time into dist/lambda (for Airflow workers without the internet: upload them, then RECSYS_PREBUILT_PACKAGES); needs Python 3.11 only
	@scripts/setup.sh --python-only
	@$(PY) -m recsys.streaming.packaging --build dist/lambda

lock: ## re-resolve requirements-dev.txt into requirements-lock.txt (needs the package index)
	@scripts/lock.sh
