#!/usr/bin/env bash
# Creates the project's virtual environments (idempotent: a complete one is left alone).
#   .venv      the default stack: TF 1.15.5 on Python 3.7 where one exists, else TF 2.15
#   .venv-tf2  TF 2.15 on Python 3.9-3.11
# Each gets its pinned requirements, then this project installed editable (pyproject.toml): `bert` imports from
# anywhere, e.g. `python bench/benchmark.py`. An environment is made anew when its requirements change; the
# project is installed again when pyproject.toml or the checkout's folder changes.
# Usage: scripts/setup_env.sh [default|tf2|all]
#   GPU=1      TensorFlow's GPU build in place of `tensorflow` (one TensorFlow distribution per environment):
#              tensorflow-gpu for TF 1.15 (its `tensorflow` wheels are CPU-only since 1.15.2) and
#              tensorflow[and-cuda] for TF 2.15. Switching GPU on or off recreates the environment.
#   DRY_RUN=1  prints the commands that would create the environments instead of running them
set -euo pipefail
cd "$(dirname "$0")/.."
which_envs=${1:-all}
gpu=${GPU:-0} dry_run=${DRY_RUN:-0}

find_python() {  # first interpreter on the list that runs (pyenv shims exist even when they cannot run)
  for candidate in "$@"; do
    if "$candidate" -c 'import venv' >/dev/null 2>&1; then echo "$candidate"; return 0; fi
  done
  return 1
}

pyenv_root=$(pyenv root 2>/dev/null || echo "$HOME/.pyenv")
py37=$(find_python "$pyenv_root/versions/3.7.16/bin/python3.7" python3.7 || true)
py3x=$(find_python python3.11 python3.10 python3.9 "$pyenv_root/versions/3.11.7/bin/python3.11" || true)

run() {  # runs a command, or with DRY_RUN=1 prints it, quoted so that the line can be pasted into a shell
  if [ "$dry_run" = 1 ]; then echo "[dry-run]$(printf ' %q' "$@")"; else "$@"; fi
}

gpu_build() {  # gpu_build REQUIREMENTS: the distribution that replaces `tensorflow` with GPU=1, and what it needs
  case "$1" in
    *tf1.txt) echo "tensorflow-gpu" "needs CUDA 10.0 and cuDNN 7.4 or a later 7.x installed on the machine" ;;
    *tf2.txt) echo "tensorflow[and-cuda]" "brings CUDA 12.2 and cuDNN 8.9 from pip (and needs the NVIDIA driver)" ;;
  esac
}

pins() {  # pins REQUIREMENTS: the file's requirements without comments, one a line, TensorFlow's GPU build with GPU=1
  local rename="" build _
  if [ "$gpu" = 1 ]; then read -r build _ <<<"$(gpu_build "$1")"; rename="s/^tensorflow==/$build==/"; fi
  sed -e 's/#.*//' -e 's/[[:space:]]*$//' -e '/^$/d' -e "$rename" "$1"
}

project_stamp() {  # what .installed-project records: pyproject.toml and the checkout the install points at
  cat pyproject.toml
  echo "# editable at $(pwd -P)"
}

stamp() {  # stamp REQUIREMENTS: what .installed records; without GPU=1 the requirements file itself, as before
  cat "$1"
  if [ "$gpu" = 1 ]; then echo "# GPU=1"; fi
}

install_project() {  # install_project DIR [new]: this project, editable, unless already so from this pyproject.toml
  local dir=$1 new=${2:-} stamp_file="$1/.installed-project"  # here; `new`: DIR was just made, without it
  if [ -z "$new" ] && [ -f "$stamp_file" ] && cmp -s "$stamp_file" <(project_stamp); then return 0; fi
  echo "[setup] installing this project into $dir (pip install -e .)"
  # pip builds it with setuptools>=64 (pyproject.toml's build-system), whatever setuptools the environment has
  run "$dir/bin/python" -m pip install -q -e .
  if [ "$dry_run" = 1 ]; then echo "[dry-run] (write $stamp_file)"; else project_stamp >"$stamp_file"; fi
}

make_env() {  # make_env DIR PYTHON REQUIREMENTS
  local dir=$1 python=$2 requirements=$3 stamp_file="$1/.installed" packages build needs
  if [ -f "$stamp_file" ] && cmp -s "$stamp_file" <(stamp "$requirements"); then install_project "$dir"; return 0; fi
  echo "[setup] creating $dir with $("$python" --version 2>&1) from $requirements"
  if [ "$gpu" = 1 ]; then
    read -r build needs <<<"$(gpu_build "$requirements")"
    echo "[setup] GPU=1: $build in place of tensorflow; it $needs"
  fi
  mapfile -t packages < <(pins "$requirements")
  run rm -rf "$dir"
  run "$python" -m venv "$dir"
  run "$dir/bin/python" -m pip install -q --upgrade "pip<24.1"
  run "$dir/bin/python" -m pip install -q "${packages[@]}"
  if [ "$dry_run" = 1 ]; then echo "[dry-run] (write $stamp_file)"; else stamp "$requirements" >"$stamp_file"; fi
  install_project "$dir" new
}

fail() { echo "[setup] error: $1" >&2; exit 1; }

case "$which_envs" in
  default|tf2|all) ;;
  *) fail "unknown argument '$which_envs': give default, tf2 or all" ;;
esac
case "$which_envs" in  # before anything is made, so that `all` does not stop half done
  tf2|all) if [ -z "$py3x" ]; then
             fail "no Python 3.9-3.11 found: .venv-tf2 needs one (TF 2.15 supports Python 3.9-3.11 only)"; fi ;;
  default) if [ -z "$py37$py3x" ]; then
             fail "no Python 3.7 (for TF 1.15) nor 3.9-3.11 (for TF 2.15) found: the default stack needs one"; fi ;;
esac
case "$which_envs" in
  default|all)
    if [ -n "$py37" ]; then make_env .venv "$py37" requirements/tf1.txt
    else echo "[setup] no Python 3.7: the default stack is TF 2.15"; make_env .venv "$py3x" requirements/tf2.txt; fi ;;
esac
case "$which_envs" in
  tf2|all) make_env .venv-tf2 "$py3x" requirements/tf2.txt ;;
esac
