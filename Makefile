# The two commands a new user runs on a fresh clone: `make demo` and `make test`.
# Both create .venv themselves; nothing needs to be installed beforehand but Python 3.11+ and make.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
DEMO_OUT ?= demo-out

.PHONY: demo test lint format venv eval-venv clean

venv: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# torch first and pinned: an unpinned resolve would pull GBs of CUDA wheels.
	$(PY) -m pip install -q -c constraints.txt torch==2.13.0
	$(PY) -m pip install -q -c constraints.txt -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/sparrow demo --out $(DEMO_OUT)

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests benchmarks
	$(VENV)/bin/ruff format --check src tests benchmarks

format: $(STAMP)
	$(VENV)/bin/ruff check --fix src tests benchmarks
	$(VENV)/bin/ruff format src tests benchmarks

# lmms-eval lives in its own environment: its pins (av<16, torchvision) clash with the core one.
# One integration test runs lmms-eval's CLI from it; the script skips the build when it is current.
EVAL_VENV := .venv-eval
EVAL_STAMP := $(EVAL_VENV)/.eval-stamp

eval-venv: $(EVAL_STAMP)

# A failed build leaves the reason in .venv-eval/.build-failed; the lmms-eval test then skips quoting it
# (the leading "-" lets make go on to the rest of the tests).
$(EVAL_STAMP): scripts/make_eval_venv.sh constraints.txt
	-PYTHON=$(PYTHON) bash scripts/make_eval_venv.sh

test: lint eval-venv
	$(VENV)/bin/pytest

clean:
	rm -rf $(VENV) .venv-eval $(DEMO_OUT) .pytest_cache .ruff_cache
