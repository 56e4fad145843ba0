# cstreams developer commands. Everything runs inside .venv, created on first use.
PYTHON ?= python3
VENV   ?= .venv
PY      = $(VENV)/bin/python
STAMP   = $(VENV)/.installed

.PHONY: install test test-unit test-integration bench bench-e2e bench-e2e-ablate bench-e2e-dsl bench-e2e-w3 bench-e2e-windows bench-kstreams bench-native bench-restore demo debug clean lint

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip

$(STAMP): $(PY) pyproject.toml setup.py $(wildcard cstreams/_core/*.pyx cstreams/_core/*.pxd \
		cstreams/_pure/*.py)
	$(PY) -m pip install -q -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

# The whole suite on the compiled core (it must load), then again on the pure-Python twins
# (all but the slow tests that build user Cython modules, which need the compiled core).
test: install
	CSTREAMS_REQUIRE_EXTENSIONS=1 $(PY) -m pytest -q --timeout=600
	CSTREAMS_NO_EXTENSIONS=1 $(PY) -m pytest -q --timeout=600 -m "not slow"

test-unit: install
	CSTREAMS_REQUIRE_EXTENSIONS=1 $(PY) -m pytest -q -m "not integration"

test-integration: install
	CSTREAMS_REQUIRE_EXTENSIONS=1 $(PY) -m pytest -q -m integration

bench: install
	CSTREAMS_REQUIRE_EXTENSIONS=1 $(PY) -m pytest bench -q --benchmark-only --benchmark-columns=median,iqr,rounds --benchmark-sort=name -p no:randomly

# W1 over the embedded broker: floor (and the floor as it was, floor-before), hand-written,
# cstreams at-least-once and exactly_once_v2 (bench/RESULTS.md). E2E_ARGS="--repeat 7
# --profile cstreams" for more rounds and a py-spy run.
E2E_ARGS ?= --records 200000 --repeat 5
bench-e2e: install
	CSTREAMS_REQUIRE_EXTENSIONS=1 $(PY) bench/e2e.py $(E2E_ARGS)

# W1 in Kafka Streams (bench/kstreams: Processor API and DSL, at-least-once and exactly_once_v2;
# built by Maven on first use, needs java and mvn) beside the floor and cstreams, same run.
# KSTREAMS_ARGS="... --bootstrap HOST:PORT" runs it against an external (Apache Kafka) broker.
KSTREAMS_ARGS ?= --records 1000000 --repeat 5
bench-kstreams: install
	CSTREAMS_REQUIRE_EXTENSIONS=1 $(PY) bench/e2e.py $(KSTREAMS_ARGS) --variants \
		floor,cstreams,cstreams-eos,kstreams-papi,kstreams-papi-eos,kstreams-dsl,kstreams-dsl-eos

# Issue 18 spike (bench/native): the data path compiled onto the librdkafka of confluent-kafka's
# wheel, built by bench/native/setup.py into bench/native/build/; W1's floor, the spike and
# cstreams at-least-once measured in one run. NATIVE_ARGS="--records 400000 --repeat 5".
NATIVE_ARGS ?= --records 400000 --repeat 5
bench-native: install
	$(PY) bench/native/setup.py
	CSTREAMS_REQUIRE_EXTENSIONS=1 $(PY) bench/native/run.py $(NATIVE_ARGS)

# W1 written in the Streams DSL next to the hand-built topology and the floor, same run.
bench-e2e-dsl: install
	CSTREAMS_REQUIRE_EXTENSIONS=1 $(PY) bench/e2e_dsl.py $(E2E_ARGS)

# W3 over the broker: orders joined to 100,000 customers (stream-table join), against the
# client floor of the same run; at-least-once and exactly_once_v2.
W3_ARGS ?= --orders 200000 --repeat 3
bench-e2e-w3: install
	CSTREAMS_REQUIRE_EXTENSIONS=1 $(PY) bench/e2e_w3.py $(W3_ARGS)

# W2 (windowed counts: tumbling, hopping, session; final and update) over the broker against
# the client floor of the same run; every output verified. W2_ARGS="--records 1000000".
W2_ARGS ?= --records 200000 --repeat 3
bench-e2e-windows: install
	CSTREAMS_REQUIRE_EXTENSIONS=1 $(PY) bench/e2e_windows.py $(W2_ARGS)

# Changelog restoration rate over the broker: 1,000,000 records into a fresh RocksDB store.
bench-restore: install
	CSTREAMS_REQUIRE_EXTENSIONS=1 $(PY) bench/restore.py

# Each runtime optimisation switched off in turn (bench/e2e/ablate.py), same run as the full one.
bench-e2e-ablate: install
	CSTREAMS_REQUIRE_EXTENSIONS=1 $(PY) bench/e2e.py $(E2E_ARGS) --variants \
		floor,cstreams,cstreams-before,cstreams-no-gc,cstreams-no-produce,cstreams-no-keys,cstreams-no-checkpoint

demo: install
	CSTREAMS_REQUIRE_EXTENSIONS=1 $(PY) examples/wordcount_demo.py

# Debug build: annotate HTML beside each .pyx, line tracing, bounds checks. Never shipped.
debug: $(PY)
	CSTREAMS_DEBUG=1 $(PY) setup.py build_ext --inplace --force

PUBLIC = cstreams/__init__.py cstreams/topology.py cstreams/processor.py cstreams/serde.py \
	cstreams/testing.py cstreams/errors.py cstreams/handlers.py cstreams/processors.py \
	cstreams/stores/__init__.py cstreams/app.py cstreams/dsl/__init__.py cstreams/dsl/builder.py \
	cstreams/dsl/change.py cstreams/windows.py cstreams/windowed.py

lint: install
	$(PY) -m ruff check cstreams tests bench examples
	$(PY) -m mypy --ignore-missing-imports $(PUBLIC)

clean:
	rm -rf build dist *.egg-info .pytest_cache .benchmarks
	rm -f cstreams/_core/*.c cstreams/_core/*.so cstreams/_core/*.html cstreams/_pure/*.c \
		cstreams/_pure/*.html
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
