#!/usr/bin/env bash
# Build .venv-eval: lmms-eval plus this package, kept apart from the core .venv.
#
# lmms-eval's own requirements clash with the core environment: it pins av<16 (Sparrow's decoder is
# tested on av 18) and requires torchvision, which has no working CPU build here, plus ~50 packages a
# local task run never imports (API clients, wandb, audio and metric libraries). So lmms-eval is
# installed with --no-deps, next to requirements/eval.lock: every other package pinned (torch, Sparrow's
# dependencies, and the few packages lmms-eval imports to load a local task, run a model and write its
# logs; see requirements/eval.in). Nothing here resolves versions: `make lock` does, on purpose.
#
#   scripts/make_eval_venv.sh            # builds .venv-eval once (a stamp file marks success)
#   EVAL_VENV=/path PYTHON=python3.11 scripts/make_eval_venv.sh
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
VENV=${EVAL_VENV:-.venv-eval}
LMMS_EVAL_VERSION=${LMMS_EVAL_VERSION:-0.7.3}
LOCK=requirements/eval.lock
STAMP="$VENV/.eval-stamp"
# The stamp names what was installed: a new lmms-eval version or a regenerated lock rebuilds.
WANT="lmms-eval==$LMMS_EVAL_VERSION $(sha256sum "$LOCK" | cut -c1-16)"

if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$WANT" ]; then
  echo "$VENV is up to date (lmms-eval $LMMS_EVAL_VERSION)"
  exit 0
fi

rm -rf "$VENV"
fail() {
  # Leave only a marker saying why, so tests skip at once with the reason instead of rebuilding.
  echo "building $VENV failed ($1); see the messages above" >&2
  rm -rf "$VENV" && mkdir -p "$VENV"
  echo "scripts/make_eval_venv.sh failed: $1" > "$VENV/.build-failed"
  exit 1
}
trap 'fail "line $LINENO: $BASH_COMMAND"' ERR
"$PYTHON" -m venv "$VENV"
PY="$VENV/bin/python"
"$PY" -m pip install -q -r "$LOCK"
"$PY" -m pip install -q --no-deps --no-build-isolation -e .
"$PY" -m pip install -q --no-deps "lmms-eval==$LMMS_EVAL_VERSION"
echo "note: pip may list lmms-eval requirements as missing or incompatible (av<16, torchvision, wandb, ...):" \
  "expected, they are left out on purpose (see the top of $0)"

# The environment must load lmms-eval, find the `sparrow` model through the entry point, and hold no
# torchvision (the plugin must work without it).
"$PY" - <<'EOF'
import importlib.util
import sys

import lmms_eval.evaluator  # noqa: F401
import lmms_eval.tasks  # noqa: F401
from lmms_eval.models import get_model

assert importlib.util.find_spec("torchvision") is None, "torchvision must not be installed in .venv-eval"
cls = get_model("sparrow")
assert cls.__name__ == "SparrowLMM", cls
assert "torchvision" not in sys.modules
print("lmms-eval ok: model 'sparrow' ->", cls.__module__ + "." + cls.__name__)
EOF
trap - ERR
echo "$WANT" > "$STAMP"
echo "built $VENV"
