# Two commands do everything: `make run` (the whole local stack) and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# The local stack's DynamoDB: AWS's DynamoDB Local (Java 17), or moto's with EMULATOR=moto.
EMULATOR ?= dynamodb-local
ENGINES := .tools/dynamodb-local/.integrity
LOCALSTACK := .tools/localstack/.requirements
SCANNERS := .tools/scanners/.requirements
LIGHTHOUSE := .tools/lighthouse/.lock
# pytest-xdist: one worker per core (JOBS=1 runs in this process); a file's tests share a worker, so
# a module's stack or browser starts once. Files go out in collection order, which tests/conftest.py makes
# the slow ones (stacks, browsers) first: the many short unit files then even out the workers' ends.
JOBS ?= auto
PARALLEL := $(if $(filter 1,$(JOBS)),,-n $(JOBS) --dist loadfile --no-loadscope-reorder)

.PHONY: engines run test test-tools localstack-optional lint unit fuzz screenshots user recount bench bench-load package cfn-lint scan deploy clean

$(STAMP): requirements.txt requirements-dev.txt requirements-nodeps.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade 'pip<26.3'  # chalice 1.34 requires pip<26.3
	$(PY) -m pip install --quiet -r requirements-dev.txt
	$(PY) -m pip install --quiet --no-deps -r requirements-nodeps.txt  # see the file: a pin we must not follow
	touch $(STAMP)

# The tools need a Python, not the project's venv (local.install is standard library only): make test installs
# them beside it.
$(ENGINES): local/install.py
	$(PYTHON) -m local.install dynamodb-local

$(LOCALSTACK): local/localstack-requirements.txt
	$(PYTHON) -m local.install localstack

$(SCANNERS): infra/scan-requirements.txt
	$(PYTHON) -m local.install scanners

$(LIGHTHOUSE): local/lighthouse/package-lock.json
	$(PYTHON) -m local.install lighthouse

engines: $(if $(filter moto,$(EMULATOR)),,$(ENGINES)) $(if $(filter localstack,$(EMULATOR)),$(LOCALSTACK))

run: $(STAMP) engines  ## the local stack in the foreground, state kept in .local/; `make run FRESH=1` starts empty, VERBOSE=1 prints the JSON logs too
	EMULATOR=$(EMULATOR) VERBOSE=$(VERBOSE) $(PY) -m local.stack $(if $(filter-out 0,$(FRESH)),--fresh)

test:  ## every test (unit, integration, browser); fails on "no tests collected"
	@$(MAKE) --no-print-directory --jobs=5 --output-sync=target test-tools
	$(PY) -m pytest $(PARALLEL)

# What the tests need: the project's venv, the tools beside it, then the lint. Side by side (make -j), each
# one's output printed whole when it ends; docs/performance.md#the-test-loop has the figures.
test-tools: $(STAMP) $(ENGINES) $(SCANNERS) $(LIGHTHOUSE) localstack-optional lint

localstack-optional:
	@$(PYTHON) -m local.install localstack --optional-localstack  # without Python 3.13 its tests skip (fail if CI=true)

lint: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m mypy

unit: $(STAMP)  ## the quick loop: unit tests only (moto in-process), no stack, no browser
	$(PY) -m pytest $(PARALLEL) tests/unit

fuzz: $(STAMP) $(ENGINES)  ## schemathesis, every check, against a live stack: make fuzz [EXAMPLES=400] per operation
	FUZZ_EXAMPLES=$(or $(EXAMPLES),400) $(PY) -m pytest tests/integration/test_fuzz.py --timeout 0

screenshots: $(STAMP) $(LIGHTHOUSE)  ## refresh the README's pictures in docs/screenshots (make test writes to build/)
	SCREENSHOTS_DIR=docs/screenshots $(PY) -m pytest tests/browser

user: $(STAMP)  ## make user USERNAME=u PASSWORD=p ROLE=user|staff|superuser
	@test -n "$(USERNAME)" -a -n "$(PASSWORD)" || { echo "usage: make user USERNAME=u PASSWORD=p ROLE=user|staff|superuser"; exit 2; }
	@$(PY) -m local.manage_user --username "$(USERNAME)" --password "$(PASSWORD)" --role "$(or $(ROLE),user)" $(if $(EMAIL),--email "$(EMAIL)")

recount: $(STAMP)  ## make recount [FIX=1]: recompute every statistic from the records, report (and fix) drift
	@$(PY) -m local.recount $(if $(FIX),--fix)

package: $(STAMP)  ## build/package/: the prod stage as one SAM template + a small deployment.zip
	$(PY) -m infra.package --stage $(or $(STAGE),prod)

cfn-lint: package
	$(VENV)/bin/cfn-lint build/package/sam.json

scan: package $(SCANNERS)  ## checkov and parliament on the packaged template; findings explained in infra/scan-baseline.json
	.tools/scanners/bin/python -m infra.scan build/package/sam.json

deploy: cfn-lint scan  ## make deploy STAGE=prod DEPLOY_BUCKET=<an S3 bucket for artifacts> (needs AWS credentials)
	@test -n "$(DEPLOY_BUCKET)" || { echo "usage: make deploy STAGE=prod DEPLOY_BUCKET=<bucket>"; exit 2; }
	aws cloudformation package --template-file build/package/sam.json --s3-bucket "$(DEPLOY_BUCKET)" \
		--output-template-file build/package/packaged.yaml
	aws cloudformation deploy --template-file build/package/packaged.yaml --stack-name paidupload-$(or $(STAGE),prod) \
		--s3-bucket "$(DEPLOY_BUCKET)" --capabilities CAPABILITY_IAM  # the template is over 51,200 bytes: S3 only

bench: $(STAMP)
	$(PY) -m bench

bench-load: $(STAMP) engines  ## make bench-load N=100 [CLIENT=threads]: N concurrent whole journeys against a stack of its own
	EMULATOR=$(EMULATOR) $(PY) -m bench.load --users $(or $(N),40) --client $(or $(CLIENT),locust)

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache build .tools
