#!/usr/bin/env bash
# The test command (README): creates both environments, fetches the embedded checkpoint, then runs the
# whole suite once per TensorFlow stack. Extra arguments go to pytest, e.g. `bash tests/run.sh -k tokeniz`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup_env.sh all
.venv-tf2/bin/python -m bert.download default_checkpoint
status=0
for env in .venv .venv-tf2; do
  if [ "$env" = .venv ] && cmp -s .venv/.installed .venv-tf2/.installed; then
    echo "=== .venv is the TF 2 stack too (no Python 3.7 here): testing it once ==="; continue
  fi
  echo "=== $env: $("$env/bin/python" -c 'import sys, tensorflow as tf; print("TensorFlow", tf.__version__, "on Python", sys.version.split()[0])' 2>/dev/null) ==="
  "$env/bin/python" -m pytest -q -p no:cacheprovider tests "$@" || status=1
done
exit $status
