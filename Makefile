# The two commands a new user runs on a fresh clone: `make demo` and `make test`.
# Both create .venv themselves; nothing needs to be installed beforehand but Python 3.11+ and make.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
DEMO_OUT ?= demo-out

.PHONY: demo demo-long seeing-long seeing-captioner test lint format venv eval-venv lock clean

venv: $(STAMP)

# Both environments install from lock files that pin every package, transitive ones included, to
# versions known to pass: a fresh clone gets today's environment, not whatever was released since.
# `make lock` regenerates them on purpose; nothing else resolves versions.
CORE_LOCK := requirements/core.lock
EVAL_LOCK := requirements/eval.lock

$(STAMP): $(CORE_LOCK) requirements/nodeps.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q -r $(CORE_LOCK)
	$(PY) -m pip install -q --no-deps -r requirements/nodeps.txt
	$(PY) -m pip install -q --no-deps --no-build-isolation -e .
	touch $(STAMP)

# pip-compile (pip-tools, pinned) in its own environment, for this Python and platform. torch is written
# as ==2.13.0 without the local "+cpu" label: that pin takes the CPU wheel where one lies on disk (this
# machine, CI) and PyPI's build elsewhere.
LOCK_VENV := .venv-lock
PIP_COMPILE_BIN := $(LOCK_VENV)/bin/pip-compile
PIP_COMPILE := $(LOCK_VENV)/bin/pip-compile -q --strip-extras --allow-unsafe --no-emit-index-url --no-emit-find-links --upgrade

lock:
	test -x $(PIP_COMPILE_BIN) || ($(PYTHON) -m venv $(LOCK_VENV) && $(LOCK_VENV)/bin/pip install -q pip-tools==7.6.2)
	$(PIP_COMPILE) --extra dev --extra ray --extra embedded -o $(CORE_LOCK) pyproject.toml requirements/core.in
	$(PIP_COMPILE) -o $(EVAL_LOCK) pyproject.toml requirements/eval.in
	sed -i 's/^torch==\([0-9.]*\)+cpu$$/torch==\1/' $(CORE_LOCK) $(EVAL_LOCK)

demo: $(STAMP)
	$(VENV)/bin/sparrow demo --out $(DEMO_OUT)

# The demo's recipe as written (6.7 times the training steps of `make demo`): see docs/seeing.md for what
# each costs and scores.
demo-long: $(STAMP)
	$(VENV)/bin/sparrow demo --out $(DEMO_OUT)-long --steps-scale 1

# The longer run that reaches issue 17's bar on a 3,000-video world (docs/seeing.md, "The longer run"):
# about 30 min of training (3,500 steps at 0.44-0.48 s a step on a free core; 51 min in all when measured
# beside another training run) and 2 of evaluation on 2 cores; each step resumes when run again.
SEEING_OUT ?= seeing-long
seeing-long: $(STAMP)
	$(VENV)/bin/sparrow world --out $(SEEING_OUT)/world --videos 3000,20,150
	$(VENV)/bin/sparrow train configs/seeing/long.yaml --data-root $(SEEING_OUT)/world --out $(SEEING_OUT)/run --resume
	$(VENV)/bin/sparrow eval -m $(SEEING_OUT)/run/final -b $(SEEING_OUT)/world/bench_test.jsonl \
		-o $(SEEING_OUT)/eval --conditions all --method cloze_norm

# The flywheel with a captioner that starts from the seeing model (docs/refine.md): after seeing-long,
# teach it the captioner's task on its world, then run the flywheel on another world (seed 1).
seeing-captioner: $(STAMP)
	$(VENV)/bin/sparrow flywheel-pairs --world $(SEEING_OUT)/world
	$(VENV)/bin/sparrow train configs/seeing/captioner-pretrain.yaml --init-from $(SEEING_OUT)/run/final \
		--data-root $(SEEING_OUT)/world --out $(SEEING_OUT)/captioner --resume
	$(VENV)/bin/sparrow world --out $(SEEING_OUT)/world-seed1 --seed 1
	$(VENV)/bin/sparrow flywheel --world $(SEEING_OUT)/world-seed1 --out $(SEEING_OUT)/flywheel \
		--captioner-init $(SEEING_OUT)/captioner/final --no-vendi --rounds 1

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
$(EVAL_STAMP): scripts/make_eval_venv.sh $(EVAL_LOCK)
	-PYTHON=$(PYTHON) bash scripts/make_eval_venv.sh

test: lint eval-venv
	$(VENV)/bin/pytest

clean:
	rm -rf $(VENV) .venv-eval $(LOCK_VENV) $(DEMO_OUT) .pytest_cache .ruff_cache
