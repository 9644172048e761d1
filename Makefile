# The README's commands: `make run` and `make test`; helpers: bot, bench, lint.
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
PYTHON ?= python3

.PHONY: run test bot bench lint install install-dev clean

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip

$(VENV)/.runtime: requirements.txt | $(VENV)/bin/python
	$(PIP) install -q -r requirements.txt
	touch $@

$(VENV)/.dev: requirements.txt requirements-dev.txt | $(VENV)/bin/python
	$(PIP) install -q -r requirements-dev.txt
	touch $@ $(VENV)/.runtime

install: $(VENV)/.runtime
install-dev: $(VENV)/.dev

.env:
	$(PY) scripts/dev_env.py

run: install .env
	$(PY) scripts/dev.py $(if $(RESET),--reset)

# `make bot NAME=mybot`: handlers/mybot.py and tests/test_mybot.py from the template (`bots new`); under
# `make run` the bot is live a moment later.
bot: install
	$(if $(NAME),,$(error give the bot a name: make bot NAME=mybot))
	$(PY) -m bots.flask.command new $(NAME)

test: install-dev
	bash scripts/install_chromium.sh
	bash scripts/redis.sh
	bash scripts/prometheus.sh
	bash scripts/nginx.sh install
	BOTS_TEST_REDIS_URL=$${BOTS_TEST_REDIS_URL:-redis://127.0.0.1:$${BOTS_TEST_REDIS_PORT:-6390}} $(PY) -m pytest $(PYTEST_ARGS)

# `make bench BENCH_ARGS=--quick` for a smoke run (under a minute); the full run takes about four.
bench: install-dev
	command -v wrk >/dev/null || apt-get install -y -q wrk >/dev/null 2>&1 || \
	  { apt-get update -q >/dev/null 2>&1 && apt-get install -y -q wrk >/dev/null 2>&1; } || \
	  echo "wrk not installed: using the Python load generator"
	bash scripts/redis.sh
	BENCH_REDIS_URL=redis://127.0.0.1:$${BOTS_TEST_REDIS_PORT:-6390}/31 $(PY) bench/run.py $(BENCH_ARGS)

# `make soak SOAK_ARGS="--minutes 2"` for a short run; the full soak takes about 31 minutes. Not part of `make test`.
.PHONY: soak
soak: install-dev
	$(PY) -m bench.soak $(SOAK_ARGS)

lint: install-dev
	$(VENV)/bin/ruff check .

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis data
