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
#   OUTPUT_DIR=fine_tune_outputs   EXTRA_FLAGS="--flag=value ..." (passed to run_classifier.py; its --num_train_epochs,
#     --train_batch_size, --max_seq_length count as EPOCHS, BATCH_SIZE, MAX_SEQ_LENGTH; the flags each run gets
#     from TASKS, GLUE_DIR, OUTPUT_DIR, LRS, SEEDS and BERT_DIR are refused)
#   PYTHON    (default: .venv/bin/python, created by scripts/setup_env.sh)
#   PROGRESS_EVERY=60  (seconds between progress lines when the output is not a terminal)
set -uo pipefail
cd "$(dirname "$0")"
source scripts/sweep_defaults.sh
exec "$PYTHON" -m bert.sweeps.sweep
