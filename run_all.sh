#!/usr/bin/env bash
# Fine-tunes every GLUE task it finds data for at the BERT paper's learning rates, then writes
# fine_tune_outputs/summary.{md,csv,json,png} and the GLUE submission files. Run it again after an
# interruption: finished runs are kept, an interrupted one resumes from its last checkpoint.
# Settings (environment variables):
#   TASKS="CoLA SST-2 MRPC STS-B QQP MNLI QNLI RTE WNLI"   LRS="5e-5 4e-5 3e-5 2e-5"
#   SEEDS="1 2 3"  (several runs per point, in lr_<LR>_seed_<S>/; unset: one run with seed 42, in lr_<LR>/)
#   EPOCHS=3  BATCH_SIZE=32  MAX_SEQ_LENGTH=128
#   BERT_DIR  (default: uncased_L-12_H-768_A-12 if present, else the embedded uncased_L-6_H-384_A-12)
#   GLUE_DIR  (default: datasets/ if it holds data, else ../shared/glue_data)
#   OUTPUT_DIR=fine_tune_outputs   EXTRA_FLAGS="--flag=value ..." (passed to run_classifier.py)
#   PYTHON    (default: .venv/bin/python, created by scripts/setup_env.sh)
set -uo pipefail
cd "$(dirname "$0")"

if [ -z "${PYTHON:-}" ]; then
  bash scripts/setup_env.sh default || exit 1
  PYTHON=.venv/bin/python
fi

if [ -z "${BERT_DIR:-}" ]; then
  if [ -f uncased_L-12_H-768_A-12/bert_config.json ]; then BERT_DIR=uncased_L-12_H-768_A-12
  else
    "$PYTHON" -m bert.download default_checkpoint || exit 1
    BERT_DIR=uncased_L-6_H-384_A-12
  fi
fi

if [ -z "${GLUE_DIR:-}" ]; then
  for candidate in datasets ../shared/glue_data; do
    if ls "$candidate"/*/train.tsv >/dev/null 2>&1; then GLUE_DIR=$candidate; break; fi
  done
fi
if [ -z "${GLUE_DIR:-}" ]; then
  echo "error: no GLUE data: set GLUE_DIR, or fill datasets/ with '$PYTHON -m bert.download glue'" >&2
  exit 1
fi

export BERT_DIR GLUE_DIR
exec "$PYTHON" -m bert.sweep
