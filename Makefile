# Each target sets up what it needs: a newcomer types `make demo` or `make test` and nothing else.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat requirements.txt requirements-dev.txt | cksum | cut -d' ' -f1)

.PHONY: test demo run bench lint typecheck unit package clean

$(STAMP): requirements.txt requirements-dev.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	@rm -f $(VENV)/.installed-* && touch $@

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy chalicelib app.py local bench

# Everything but the real-time scenarios on two workers, each test module (or shard of one) a unit of work, the
# longest first (tests/conftest.py); then the real-time scenarios (`-m realtime`: seconds-scale deadlines asserted
# against the wall clock) alone in one process, so another worker cannot starve them on a busy machine.
# TEST_WORKERS=0 runs the first part in one process too.
TEST_WORKERS ?= 2
test: lint typecheck
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadgroup --no-loadscope-reorder -m "not realtime"
	$(BIN)/python -m pytest -m realtime

unit: $(STAMP)
	$(BIN)/python -m pytest tests/unit

demo: $(STAMP)
	$(BIN)/python -m local.demo $(ARGS)

# The local platform for device and app integrators, up until Ctrl-C (docs/local-platform.md); FLEET=1 adds the
# simulated fleet and people. Ports: ARGS="--api-port 8080" or DYJ_RUN_API_PORT, DYJ_RUN_MQTT_PORT, DYJ_RUN_AWS_PORT.
run: $(STAMP)
	$(BIN)/python -m local.run $(if $(filter 1 yes true,$(FLEET)),--fleet) $(ARGS)

bench: $(STAMP)
	$(BIN)/python -m bench.engine
	mkdir -p build
	$(BIN)/python -m bench.ingest --json build/bench-ingest.json
	$(BIN)/python -m bench.workflow --json build/bench-workflow.json
	$(BIN)/python -m bench.costs --ingest-json build/bench-ingest.json --workflow-json build/bench-workflow.json
	$(BIN)/python -m bench.coldstart
	$(BIN)/python -m bench.timers
	$(BIN)/python -m bench.offline
	$(BIN)/python -m bench.delivery
	$(BIN)/python -m bench.evaluation
	$(BIN)/python -m bench.publication

clean:
	rm -rf $(VENV) build .mypy_cache .ruff_cache .pytest_cache .hypothesis

STAGE ?= prod
package: $(STAMP)
	PATH=$(CURDIR)/$(BIN):$$PATH scripts/package.sh $(STAGE)
