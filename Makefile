# Two commands for a new machine: `make demo` and `make test`. Both set up what they need.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cksum < pyproject.toml | cut -d' ' -f1)
SUDO   := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
DEMO_SECONDS ?= 60
# The gateway's pinned, hash-checked dependencies (scripts/install-gateway) and a wheelhouse of
# them, downloaded once, from which the install test installs offline as an image build does.
LOCKS      := scripts/build-tools.lock scripts/requirements.lock
WHEELHOUSE := $(VENV)/wheelhouse
WHEELS     := $(WHEELHOUSE)/.complete-$(shell cat $(LOCKS) | cksum | cut -d' ' -f1)
PIP_COMPILE = $(BIN)/pip-compile --quiet --generate-hashes --allow-unsafe --strip-extras \
              --no-emit-find-links --no-emit-index-url

.PHONY: demo test lint typecheck unit bench mosquitto clean lock

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,bench]'
	rm -f $(VENV)/.installed-* && touch $@

$(WHEELS): $(LOCKS) | $(STAMP)
	rm -rf $(WHEELHOUSE)
	$(BIN)/python -m pip download --quiet --require-hashes --no-deps --dest $(WHEELHOUSE) \
	  $(foreach lock,$(LOCKS),-r $(lock))
	touch $@

# After a change of dependencies (pyproject.toml, scripts/build-tools.in): new locks, with the
# hashes of every file of each pinned release (all platforms: amd64, arm64 wheels and sources).
lock: $(STAMP)
	$(BIN)/python -m pip install --quiet 'pip-tools>=7.4'
	$(PIP_COMPILE) --output-file=scripts/build-tools.lock scripts/build-tools.in
	$(PIP_COMPILE) --output-file=scripts/requirements.lock pyproject.toml

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

unit: $(STAMP) $(WHEELS) mosquitto
	HPAGENT_WHEELHOUSE=$(WHEELHOUSE) PATH="$$PATH:/usr/sbin" $(BIN)/pytest -q

test: lint typecheck unit

bench: $(STAMP) mosquitto
	PATH="$$PATH:/usr/sbin" $(BIN)/python scripts/bench.py

clean:
	rm -rf $(VENV) build dist .pytest_cache .mypy_cache .ruff_cache
