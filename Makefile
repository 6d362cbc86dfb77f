# The two commands of the README are `make demo` and `make test`; both set up what they need.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
export COOP_DATA_DIR ?= $(CURDIR)/.var
LOCALDEV := $(PY) -m devtools.localdev

.PHONY: venv lock upgrade-check fuzz services demo serve test check lint format typecheck imports architecture stop messages \
	agreement-schema jurisdiction-schema docs \
	bench load chaos clean \
	bench-realtime bench-quick bench-realtime-quick bench-replay bench-replay-lag bench-fairness bench-ops-map bench-eta

venv: $(VENV)/.installed

# Installed from requirements.lock only, every file checked against its hash; the project itself
# goes in editable and without its dependencies (they are the lock's). `make lock` rewrites it.
$(VENV)/.installed: requirements.lock pyproject.toml
	@$(PYTHON) -m venv $(VENV) 2>/dev/null || { \
	  rm -rf $(VENV); \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "installing python3-venv"; \
	    DEBIAN_FRONTEND=noninteractive apt-get update -q >/dev/null && \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -q python3-venv >/dev/null && \
	    $(PYTHON) -m venv $(VENV); \
	  else echo "'$(PYTHON) -m venv' failed: install it with: sudo apt-get install python3-venv"; exit 1; fi; }
	@echo "installing the locked dependencies into $(VENV) (requirements.lock, hashes checked; a minute or two the first time)"
	@$(PY) devtools/install_progress.py --lock requirements.lock -- \
	  $(PY) -m pip install --progress-bar off --disable-pip-version-check --require-hashes --no-deps -r requirements.lock
	$(PY) -m pip install -q --disable-pip-version-check --no-deps --no-build-isolation -e .
	$(PY) -m pip check --disable-pip-version-check
	@touch $@

LOCK_ARGS ?=
lock: venv ## rewrite requirements.lock with the newest versions pyproject.toml's ranges allow
	$(VENV)/bin/uv pip compile pyproject.toml --extra dev --universal --python-version 3.11 \
	  --generate-hashes --no-emit-package coop-ride --custom-compile-command "make lock" \
	  --upgrade $(LOCK_ARGS) -o requirements.lock

upgrade-check: venv ## the suite in a throwaway virtualenv of the newest allowed versions (no lock)
	@$(LOCALDEV) run -- bash .ci/upgrade-check

# The suite's fuzzing is seeded and bounded; this is the open-ended search. It prints its seed
# (FUZZ_SEED=... replays a run); what it finds becomes an explicit case in the suite (docs/testing.md).
export FUZZ_SEED ?=
export FUZZ_SECONDS ?= 300
fuzz: venv ## randomized search: schemathesis over the whole API, then every property test (HYPOTHESIS_PROFILE=fuzz)
	@$(LOCALDEV) run -- $(PY) -m pytest -p no:cacheprovider -m fuzz -s tests/dispatch/test_security.py
	@HYPOTHESIS_PROFILE=fuzz $(LOCALDEV) run -- $(PY) -m pytest -p no:cacheprovider -q \
	  $$(grep -rl --include='test_*.py' 'from hypothesis import' tests)

services: venv ## start the private PostgreSQL/PostGIS and Redis (left running; `make stop`)
	@$(LOCALDEV) up >/dev/null

demo: venv ## the service and a simulated city on it; Ctrl-C stops everything it started
	@$(LOCALDEV) run -- $(PY) -m devtools.demo

serve: venv ## just the service, in the foreground
	@$(LOCALDEV) run -- $(PY) -m server serve

test: venv ## the whole suite against private PostgreSQL/PostGIS and Redis (and Chromium)
	@$(LOCALDEV) browser >/dev/null
	@$(LOCALDEV) run -- $(PY) -m pytest $(PYTEST_ARGS)

check: lint typecheck imports

messages: venv ## bring the pages' French catalogue up to date with the templates and code
	$(VENV)/bin/pybabel extract -F babel.cfg -k N_ -k translate:2 -k translate_plural:2,3 --no-location --sort-output \
	  --omit-header -o server/web/translations/messages.pot .
	$(VENV)/bin/pybabel update -i server/web/translations/messages.pot \
	  -d server/web/translations --no-fuzzy-matching --ignore-obsolete -w 100

imports: venv ## the import contracts of .importlinter (the architecture's layers)
	$(VENV)/bin/lint-imports --no-cache

architecture: venv ## redraw the layer diagram in docs/architecture.md from .importlinter
	$(PY) .ci/architecture_diagram.py

agreement-schema: venv ## rewrite the terms schema table in docs/agreement.md from bargaining/terms.py
	$(PY) .ci/terms_schema.py

jurisdiction-schema: venv ## rewrite the profile tables in docs/jurisdiction.md from coop/jurisdiction.py
	$(PY) .ci/jurisdiction_schema.py

docs: architecture agreement-schema jurisdiction-schema ## every generated part of docs/ (tests check they are current)

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: venv
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

typecheck: venv
	$(VENV)/bin/mypy

bench: venv ## every benchmark, about 25 minutes (results in docs/performance.md)
	$(PY) -m loadtests.bench_matching
	@$(LOCALDEV) run -- $(MAKE) --no-print-directory bench-realtime

# Ingest, connections, dispatch latency and the request flood against the private PostgreSQL and Redis (started
# by `make bench`, or by `make services` beforehand).
bench-realtime:
	$(PY) -m loadtests.bench_ingest
	$(PY) -m loadtests.bench_connections
	$(PY) -m loadtests.bench_latency
	$(PY) -m loadtests.bench_flood --repeats 3

REPLAY_ARGS ?=
bench-replay: venv ## real New York demand replayed against `serve`: request -> offer, batch stages (3 runs, ~45 min)
	@$(LOCALDEV) run -- $(PY) -m loadtests.bench_replay $(REPLAY_ARGS)

OPS_MAP_ARGS ?=
bench-ops-map: venv ## the live map in Chromium with 40, then 5,000 drivers: frame times and JS heap (docs/web.md)
	@$(LOCALDEV) browser >/dev/null
	@$(LOCALDEV) run -- $(PY) -m loadtests.bench_ops_map $(OPS_MAP_ARGS)

bench-eta: venv ## the learned travel-time model against the constant speeds on real taxi trips (docs/eta.md)
	$(PY) -m loadtests.bench_eta

bench-replay-lag: venv ## the worker's event-loop lag while a proposal's impact is replayed, in a thread and in a process
	$(PY) -m loadtests.bench_replay_lag $(LAG_ARGS)

bench-fairness: venv ## a simulated working day on real demand through the matcher, per fairness policy (docs/fairness.md)
	$(PY) -m loadtests.bench_fairness
	$(MAKE) bench-fairness-pay

.PHONY: bench-fairness-pay
bench-fairness-pay: venv ## the pay side (dispatch policy x hourly floor) and which riders each policy serves (docs/fairness.md)
	$(PY) -m loadtests.bench_fairness_pay

.PHONY: bench-ridecheck
bench-ridecheck: venv ## the ride check's detectors on real New York trips and the simulated city: false alarms, incidents (docs/safety.md)
	$(PY) -m loadtests.bench_ridecheck

bench-quick: venv ## every benchmark at small sizes, a few minutes (no figures for the docs)
	$(PY) -m loadtests.bench_matching --sizes 1000x2000 --repeats 5
	@$(LOCALDEV) run -- $(MAKE) --no-print-directory bench-realtime-quick

bench-realtime-quick:
	$(PY) -m loadtests.bench_ingest --drivers 2000 --rates 4000 --window 10 --no-baseline
	$(PY) -m loadtests.bench_connections --sockets 1000 --no-baseline
	$(PY) -m loadtests.bench_latency --drivers 1000 --duration 20 --no-baseline
	$(PY) -m loadtests.bench_flood --drivers 200 --flood 2500 --repeats 1

LOAD_USERS ?= 60
LOAD_SPAWN_RATE ?= 10
LOAD_TIME ?= 60s
load: venv ## Locust riders and drivers against a local service for LOAD_TIME, then the invariants
	@$(LOCALDEV) run -- $(PY) -m loadtests.run --users $(LOAD_USERS) \
	  --spawn-rate $(LOAD_SPAWN_RATE) --time $(LOAD_TIME)

CHAOS_ARGS ?=
chaos: venv ## two workers under a simulated city while PostgreSQL, Redis and a worker fail (10 min)
	$(PY) -m loadtests.chaos $(CHAOS_ARGS)

stop: ## stop the private instances of this COOP_DATA_DIR
	@$(PYTHON) -m devtools.localdev down

clean: stop
	rm -rf $(VENV) $(COOP_DATA_DIR) .mypy_cache .ruff_cache .pytest_cache .hypothesis

# High availability on three test hosts (network namespaces on a private bridge; root needed):
# deploy/ rendered and started by devtools/cluster, state under $(COOP_DATA_DIR)/cluster.
.PHONY: cluster cluster-stop cluster-status cluster-chaos cluster-test cluster-restore-check
cluster: venv ## three test hosts: Patroni/PostgreSQL, etcd, Redis + Sentinel, HAProxy, two workers
	$(PY) -m devtools.cluster up

cluster-stop: ## stop everything `make cluster` started, remove its namespaces and bridge, check
	$(PYTHON) -m devtools.cluster down

cluster-status:
	$(PYTHON) -m devtools.cluster status

CLUSTER_CHAOS_ARGS ?=
cluster-test: venv ## the failover test on three test hosts: a trip in flight while PostgreSQL's primary fails over (root)
	@$(LOCALDEV) run -- $(PY) -m pytest -p no:cacheprovider -m cluster tests/cluster $(PYTEST_ARGS)

cluster-restore-check: cluster ## rehearse a point-in-time restore from pgBackRest's backup and archived WAL (docs/deployment.md)
	$(PY) -m devtools.cluster restore-check

cluster-chaos: cluster ## the simulated city through HAProxy while a host, PostgreSQL, Redis fail (docs/deployment.md)
	$(PY) -m devtools.cluster chaos $(CLUSTER_CHAOS_ARGS)

.PHONY: bench-apps
bench-apps: venv ## the rider and driver apps on Slow 4G: bytes and time to usable; the offer card's frame rate (docs/apps.md)
	@$(LOCALDEV) browser >/dev/null
	@$(LOCALDEV) run -- $(PY) -m loadtests.bench_apps $(APPS_ARGS)
