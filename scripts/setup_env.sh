#!/usr/bin/env bash
# Creates the project's virtual environments (idempotent: a complete one is left alone).
#   .venv      the default stack: TF 1.15.5 on Python 3.7 where one exists, else TF 2.15
#   .venv-tf2  TF 2.15 on Python 3.9-3.11
# Usage: scripts/setup_env.sh [default|tf2|all] ; GPU=1 installs the GPU builds.
set -euo pipefail
cd "$(dirname "$0")/.."
which_envs=${1:-all}

find_python() {  # first interpreter on the list that runs (pyenv shims exist even when they cannot run)
  for candidate in "$@"; do
    if "$candidate" -c 'import venv' >/dev/null 2>&1; then echo "$candidate"; return 0; fi
  done
  return 1
}

pyenv_root=$(pyenv root 2>/dev/null || echo "$HOME/.pyenv")
py37=$(find_python "$pyenv_root/versions/3.7.16/bin/python3.7" python3.7 || true)
py3x=$(find_python python3.11 python3.10 python3.9 "$pyenv_root/versions/3.11.7/bin/python3.11" || true)

make_env() {  # make_env DIR PYTHON REQUIREMENTS
  local dir=$1 python=$2 requirements=$3 stamp="$1/.installed"
  if [ -f "$stamp" ] && cmp -s "$requirements" "$stamp"; then return 0; fi
  echo "[setup] creating $dir with $("$python" --version 2>&1) from $requirements"
  rm -rf "$dir"
  "$python" -m venv "$dir"
  "$dir/bin/python" -m pip install -q --upgrade "pip<24.1"
  local extra=()
  if [ "${GPU:-0}" = 1 ]; then
    case "$requirements" in
      *tf1.txt) extra=(tensorflow-gpu==1.15.5) ;;
      *tf2.txt) extra=("tensorflow[and-cuda]==2.15.1") ;;
    esac
  fi
  "$dir/bin/python" -m pip install -q -r "$requirements" "${extra[@]}"
  cp "$requirements" "$stamp"
}

if [ -z "$py3x" ]; then echo "[setup] error: no Python 3.9-3.11 found (TF 2.15 needs one)" >&2; exit 1; fi
case "$which_envs" in
  default|all)
    if [ -n "$py37" ]; then make_env .venv "$py37" requirements/tf1.txt
    else echo "[setup] no Python 3.7: the default stack is TF 2.15"; make_env .venv "$py3x" requirements/tf2.txt; fi ;;
esac
case "$which_envs" in
  tf2|all) make_env .venv-tf2 "$py3x" requirements/tf2.txt ;;
esac
