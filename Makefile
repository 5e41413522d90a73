# Mini PACS. `make test` works on a fresh machine with PostgreSQL and Redis on
# localhost (it installs the venv, the project and DCMTK), or with only Docker
# (it runs the suite in a container next to compose's postgres and redis).

VENV   ?= .venv
PYTHON ?= python3
BIN    := $(VENV)/bin
COMPOSE ?= docker compose
SUDO   := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: test test-native test-docker install tools lint bench bench-find bench-move psql up down

test:
	@if $(PYTHON) -c "import socket; socket.create_connection(('127.0.0.1', 5432), 2)" 2>/dev/null; then \
		$(MAKE) --no-print-directory test-native; \
	elif command -v docker >/dev/null 2>&1; then \
		$(MAKE) --no-print-directory test-docker; \
	else \
		echo "make test: need PostgreSQL and Redis on localhost, or Docker" >&2; exit 2; \
	fi

test-native: install tools
	$(BIN)/pytest -q tests

test-docker:
	$(COMPOSE) -f docker-compose.yml -f docker-compose.test.yml run --rm --build tests

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	touch $@

# DCMTK drives the end-to-end tests; docker-compose validates the compose file.
tools:
	@missing=""; \
	[ -x /usr/bin/storescu ] || missing="$$missing dcmtk"; \
	command -v docker-compose >/dev/null 2>&1 || missing="$$missing docker-compose"; \
	if [ -n "$$missing" ]; then \
		echo "installing$$missing"; \
		$(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq --no-install-recommends $$missing; \
	fi

lint: install
	$(BIN)/ruff check services tests bench migrations
	$(BIN)/ruff format --check services tests bench migrations

# Every performance figure, next to DCMTK storescp and Orthanc (if installed).
bench: install tools
	$(BIN)/python bench/bench.py

# C-FIND at scale: STUDIES=10000 make bench-find for a quick run.
STUDIES ?= 100000
bench-find: install
	$(BIN)/python bench/find_bench.py --studies $(STUDIES) --patients $$(( $(STUDIES) / 5 ))

# C-MOVE and C-GET of 500 512x512 16-bit images beside DCMTK storescu's ceiling.
bench-move: install tools
	$(BIN)/python bench/move_bench.py

psql:
	psql "postgresql://minipacs:$${POSTGRES_PASSWORD:-minipacs}@127.0.0.1:$${PACS_DB_HOST_PORT:-5433}/minipacs"

up:
	$(COMPOSE) up -d

down:
	$(COMPOSE) down
