# Sourced by run_all.sh and run_pruning.sh from the repository's root: the defaults both sweeps share.
#   PYTHON    (default: .venv/bin/python, created by scripts/setup_env.sh)
#   BERT_DIR  (default: uncased_L-12_H-768_A-12 if present, else the embedded uncased_L-6_H-384_A-12, fetched if needed)
#   GLUE_DIR  (default: datasets/ if it holds data, else ../shared/glue_data)
# Exits the sourcing script with status 1 when one cannot be set up; exports BERT_DIR and GLUE_DIR.

if [ -z "${PYTHON:-}" ]; then
  bash scripts/setup_env.sh default || exit 1
  PYTHON=.venv/bin/python
fi

if [ -z "${BERT_DIR:-}" ]; then
  if [ -f uncased_L-12_H-768_A-12/bert_config.json ]; then BERT_DIR=uncased_L-12_H-768_A-12
  else
    "$PYTHON" -m bert.data.download default_checkpoint || exit 1
    BERT_DIR=uncased_L-6_H-384_A-12
  fi
fi

if [ -z "${GLUE_DIR:-}" ]; then
  for candidate in datasets ../shared/glue_data; do
    if ls "$candidate"/*/train.tsv >/dev/null 2>&1; then GLUE_DIR=$candidate; break; fi
  done
fi
if [ -z "${GLUE_DIR:-}" ]; then
  echo "error: no GLUE data: set GLUE_DIR, or fill datasets/ with '$PYTHON -m bert.data.download glue'" >&2
  exit 1
fi

export BERT_DIR GLUE_DIR
