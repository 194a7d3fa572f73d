#!/usr/bin/env bash
# The test command (README): creates both environments, fetches the embedded checkpoint, then runs the
# whole suite once per TensorFlow stack. Extra arguments go to pytest, e.g. `bash tests/run.sh -k tokeniz`.
#
# The two stacks run side by side: most tests are runs of tiny models, which keep about one core busy, so on
# two cores both take little longer than one. TF 1.15's output streams here, TF 2's follows when it is
# done; each has its own pytest temporary directory. Tests marked one_stack (conftest.py) run in one of the two.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup_env.sh all
.venv-tf2/bin/python -m bert.data.download default_checkpoint
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT

stack() {
  "$1/bin/python" -c 'import sys, tensorflow as tf; print("TensorFlow", tf.__version__, "on Python", sys.version.split()[0])' 2>/dev/null
}
suite() {  # environment, pytest arguments
  "$1/bin/python" -m pytest -q -p no:cacheprovider --basetemp="$work/tmp$1" tests "${@:2}"
}

status=0
tf2_only=false  # no Python 3.7 here: scripts/setup_env.sh made .venv the TF 2 stack too
cmp -s .venv/.installed .venv-tf2/.installed && tf2_only=true
$tf2_only || export BERT_TESTS_BOTH_STACKS=1  # conftest.py: each one_stack test runs in one of the two sessions
suite .venv-tf2 "$@" > "$work/tf2.log" 2>&1 &
tf2=$!
if $tf2_only; then
  echo "=== .venv is the TF 2 stack too (no Python 3.7 here): testing it once ==="
else
  echo "=== .venv: $(stack .venv) ==="
  suite .venv "$@" || status=1
fi
echo "=== .venv-tf2: $(stack .venv-tf2) ==="
wait "$tf2" || status=1
cat "$work/tf2.log"
exit $status
