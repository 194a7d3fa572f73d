"""The sweeps' settings (environment variables) and their defaults, in one place.

run_all.sh (bert/sweeps/sweep.py) reads RUN_ALL, run_pruning.sh (bert/sweeps/pruning_sweep.py) RUN_PRUNING: a
variable that is not set takes its default here (one set to "" stays ""). The report's and the submission's
--output_dir default to run_all.sh's OUTPUT_DIR. The headers of run_all.sh and run_pruning.sh and README.md
spell these defaults out for their readers (tests/test_sweep_settings.py checks that they agree). PYTHON,
BERT_DIR and GLUE_DIR are found by scripts/sweep_defaults.sh, which both scripts source.
"""

RUN_ALL = {
    "TASKS": "CoLA SST-2 MRPC STS-B QQP MNLI QNLI RTE WNLI",
    "LRS": "5e-5 4e-5 3e-5 2e-5",  # the BERT paper's
    "SEEDS": "",  # none: one run per point, with run_classifier's seed, in lr_<LR>/
    "EPOCHS": "3",
    "BATCH_SIZE": "32",
    "MAX_SEQ_LENGTH": "128",
    "OUTPUT_DIR": "fine_tune_outputs",
    "EXTRA_FLAGS": "",
    "PROGRESS_EVERY": "60",  # seconds between progress lines when the output is not a terminal
}

RUN_PRUNING = dict(
    {name: value for name, value in RUN_ALL.items() if name not in ("LRS", "SEEDS")},
    TASKS="MRPC STS-B RTE CoLA SST-2",
    OUTPUT_DIR=RUN_ALL["OUTPUT_DIR"] + "/pruning",
    DENSE_DIR=RUN_ALL["OUTPUT_DIR"],  # where run_all.sh's runs are: step 1 looks there for a dense model
    GRANULARITIES="weight block",
    SPARSITIES="0.5 0.7 0.8 0.9",
    LR="2e-5",  # the dense model's, when fine-tuned here
    PRUNE_LR="1e-4",  # every later run's (bench/pruning_recipe.md)
    PRUNE_EPOCHS="3",
    GROUP_LASSO="1e-4",
    REWEIGHT_STEPS="100",
    DISTILL="1",  # the one-shot and gradual runs distil from the dense model
)
