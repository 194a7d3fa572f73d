#!/usr/bin/env bash
# Prunes every task of TASKS at every granularity and target sparsity, two ways: the three-step pipeline
# (1. the dense model: run_all.sh's best run of the same settings, else fine-tuned here; 2. reweighted
# group-lasso training; 3. one-shot pruning and retraining with the mask fixed) and, instead of steps 2 and 3,
# gradual pruning of the dense model in one run, by Taylor scores. The pruned runs distil from the dense model.
# Then writes pruning_summary.{md,csv,json,png} into its tree. Run it again after an interruption: finished runs
# are kept, an interrupted one resumes from its last checkpoint.
# Settings (environment variables):
#   TASKS="MRPC STS-B RTE CoLA SST-2"   GRANULARITIES="weight block"   SPARSITIES="0.5 0.7 0.8 0.9"
#   LR=2e-5 and EPOCHS=3 (the dense model's)   PRUNE_LR=1e-4 and PRUNE_EPOCHS=3 (every later run's: the recipe
#   measured in bench/pruning_recipe.md)   DISTILL=1 (the one-shot and gradual runs distil from the dense model;
#   0: without)   GROUP_LASSO=1e-4 (lambda; 0 skips step 2: step 3 prunes the dense model)  REWEIGHT_STEPS=100
#   GRANULARITIES may hold `structured` (heads and neurons): gradual runs only, and the compact models' size and
#   speed in the summary
#   BATCH_SIZE=32  MAX_SEQ_LENGTH=128
#   DENSE_DIR=fine_tune_outputs (run_all.sh's OUTPUT_DIR, where step 1 looks for a dense run)
#   OUTPUT_DIR=fine_tune_outputs/pruning   EXTRA_FLAGS="--flag=value ..." (passed to every run_classifier.py run;
#     as for run_all.sh, with LR in place of LRS, and no SEEDS)
#   BERT_DIR, GLUE_DIR, PYTHON, PROGRESS_EVERY: as for run_all.sh
set -uo pipefail
cd "$(dirname "$0")"
source scripts/sweep_defaults.sh
exec "$PYTHON" -m bert.sweeps.pruning_sweep
