# The two commands a newcomer needs:
#   make run    the service with throwaway local PostgreSQL, Kafka and a stand-in User-service
#               (any of them you configure with DB_URL / KAFKA_BOOTSTRAP_SERVERS /
#               USER_SERVICE_ADDR is used instead)
#   make test   lint, type checks and the whole test suite (what CI runs)
.PHONY: run test lint pytest protos env setup bench image

PY := .venv/bin/python

env:
	@devenv/ensure_env.sh

run: env
	$(PY) -m devenv.run

test: env setup lint pytest

# What the test suite needs on the machine (Debian packages, Kafka jars, Go tools, Kubernetes
# binaries), installed before any test runs; quick when all is present.
setup: env
	$(PY) -m devenv.setup

lint:
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .
	.venv/bin/mypy
	.venv/bin/lint-imports
	.venv/bin/bandit -q -c pyproject.toml -r src

pytest:
	.venv/bin/pytest

protos: env
	$(PY) scripts/generate_protos.py

bench: env
	$(PY) -m bench.run $(BENCH_ARGS)

# The service and dev User-service stub images, tagged by content (prints name<TAB>tag).
# Installs docker.io and starts dockerd if needed; builds a Debian stand-in base first when
# python:3.12-slim-trixie can be neither found nor pulled (see docs/image.md).
image: env
	$(PY) -m devenv.images service stub
