# Two commands for a new machine: `make demo` and `make test`. Both set up what they need.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cksum < pyproject.toml | cut -d' ' -f1)
SUDO   := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
DEMO_SECONDS ?= 60

.PHONY: demo test lint typecheck unit bench mosquitto clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,bench]'
	rm -f $(VENV)/.installed-* && touch $@

# Debian's mosquitto, when no mosquitto is installed (its binary lives in /usr/sbin).
mosquitto:
	@PATH="$$PATH:/usr/sbin" command -v mosquitto >/dev/null || { \
	  echo "installing mosquitto from Debian's packages"; \
	  $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends mosquitto >/dev/null; }

demo: $(STAMP) mosquitto
	PATH="$$PATH:/usr/sbin" $(BIN)/hpagent demo --seconds $(DEMO_SECONDS)

lint: $(STAMP)
	$(BIN)/ruff check .

typecheck: $(STAMP)
	$(BIN)/mypy

unit: $(STAMP) mosquitto
	PATH="$$PATH:/usr/sbin" $(BIN)/pytest -q

test: lint typecheck unit

bench: $(STAMP) mosquitto
	PATH="$$PATH:/usr/sbin" $(BIN)/python scripts/bench.py

clean:
	rm -rf $(VENV) build dist .pytest_cache .mypy_cache .ruff_cache
