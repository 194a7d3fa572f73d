#!/usr/bin/env bash
# Fine-tunes every GLUE task it finds data for at the BERT paper's learning rates and writes
# fine_tune_outputs/<TASK>/lr_<LR>/eval_results.txt per run. A finished run is skipped when the sweep
# is started again. Settings come from the environment:
#   TASKS="CoLA SST-2 MRPC STS-B QQP MNLI QNLI RTE WNLI"   LRS="5e-5 4e-5 3e-5 2e-5"
#   EPOCHS=3  BATCH_SIZE=32  MAX_SEQ_LENGTH=128  SEED=42
#   BERT_DIR  (default: uncased_L-12_H-768_A-12 if present, else the embedded uncased_L-6_H-384_A-12)
#   GLUE_DIR  (default: datasets/, else ../shared/glue_data)   OUTPUT_DIR=fine_tune_outputs
#   PYTHON    (default: .venv/bin/python, created by scripts/setup_env.sh)   EXTRA_FLAGS="--flag=value ..."
set -uo pipefail
cd "$(dirname "$0")"

TASKS=${TASKS:-"CoLA SST-2 MRPC STS-B QQP MNLI QNLI RTE WNLI"}
LRS=${LRS:-"5e-5 4e-5 3e-5 2e-5"}
EPOCHS=${EPOCHS:-3}
BATCH_SIZE=${BATCH_SIZE:-32}
MAX_SEQ_LENGTH=${MAX_SEQ_LENGTH:-128}
SEED=${SEED:-42}
OUTPUT_DIR=${OUTPUT_DIR:-fine_tune_outputs}
EXTRA_FLAGS=${EXTRA_FLAGS:-}

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
    if ls "$candidate"/*/dev*.tsv >/dev/null 2>&1; then GLUE_DIR=$candidate; break; fi
  done
fi
if [ -z "${GLUE_DIR:-}" ]; then
  echo "error: no GLUE data: set GLUE_DIR, or fill datasets/ with '$PYTHON -m bert.download glue'" >&2
  exit 1
fi

echo "[sweep] checkpoint $BERT_DIR, data $GLUE_DIR, tasks: $TASKS, learning rates: $LRS"
failed=0
for task in $TASKS; do
  if ! ls "$GLUE_DIR/$task"/train.tsv >/dev/null 2>&1; then
    echo "[sweep] $task: no $GLUE_DIR/$task/train.tsv, skipped"; continue
  fi
  for lr in $LRS; do
    run_dir="$OUTPUT_DIR/$task/lr_$lr"
    if [ -f "$run_dir/eval_results.txt" ]; then
      echo "[sweep] $task lr=$lr: done before, skipped ($run_dir/eval_results.txt)"; continue
    fi
    mkdir -p "$run_dir"
    echo "[sweep] $task lr=$lr: started $(date +%H:%M:%S), log in $run_dir/log.txt"
    start=$(date +%s)
    # shellcheck disable=SC2086
    if "$PYTHON" -m bert.run_classifier --task_name="$task" --do_train=true --do_eval=true \
        --data_dir="$GLUE_DIR/$task" --vocab_file="$BERT_DIR/vocab.txt" \
        --bert_config_file="$BERT_DIR/bert_config.json" --init_checkpoint="$BERT_DIR/bert_model.ckpt" \
        --max_seq_length="$MAX_SEQ_LENGTH" --train_batch_size="$BATCH_SIZE" --learning_rate="$lr" \
        --num_train_epochs="$EPOCHS" --seed="$SEED" --output_dir="$run_dir" $EXTRA_FLAGS \
        > "$run_dir/log.txt" 2>&1; then
      metrics=$(grep -E '^eval_(accuracy|f1|mcc|pearson|spearman|mismatched_accuracy) ' "$run_dir/eval_results.txt" \
                | tr -d ' ' | paste -sd ' ' -)
      echo "[sweep] $task lr=$lr: finished in $(( $(date +%s) - start ))s: $metrics"
    else
      failed=1
      echo "[sweep] $task lr=$lr: FAILED after $(( $(date +%s) - start ))s; last lines of $run_dir/log.txt:"
      tail -n 5 "$run_dir/log.txt" | sed 's/^/    /'
    fi
  done
done
exit $failed
