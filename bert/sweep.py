"""The learning-rate sweep behind run_all.sh: every (task, learning rate, seed) as one run_classifier run.

Settings come from the environment (run_all.sh documents them): TASKS, LRS, SEEDS, EPOCHS, BATCH_SIZE,
MAX_SEQ_LENGTH, BERT_DIR, GLUE_DIR, OUTPUT_DIR, EXTRA_FLAGS. Each run is a subprocess writing to
OUTPUT_DIR/<TASK>/lr_<LR>[_seed_<S>]/ with its log in log.txt, so that:
- a finished run (its eval_results.txt exists: run_classifier writes it atomically) is never redone;
- an interrupted run resumes from its last checkpoint, continuing the same training order;
- a failed run is reported with its last error line and the sweep goes on; the exit status says so;
- the tokenized examples are shared by every run of the sweep (OUTPUT_DIR/feature_cache).
At the end the report (summary.md/csv/json/png, GLUE submission files) is rebuilt from all results.
"""
import os
import shlex
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import Dict, List, Optional

from bert import processors
from bert.report import format_duration, read_eval_results

ALL_TASKS = "CoLA SST-2 MRPC STS-B QQP MNLI QNLI RTE WNLI"
PAPER_LEARNING_RATES = "5e-5 4e-5 3e-5 2e-5"


@dataclass
class Run:
    task: processors.TaskSpec
    learning_rate: str
    seed: Optional[str]
    run_dir: str
    train_examples: int


def log(message: str) -> None:
    print("[sweep] " + message, flush=True)


def count_rows(path: str) -> int:
    with open(path, "rb") as f:
        return max(sum(1 for _ in f) - 1, 0)  # header-less CoLA is off by one: only an estimate


def plan(env: Dict[str, str]) -> List[Run]:
    """The runs to do, in order; tasks without training data are reported once and left out."""
    glue_dir, output_dir = env["GLUE_DIR"], env.get("OUTPUT_DIR", "fine_tune_outputs")
    seeds = env.get("SEEDS", "").split() or [None]
    runs = []
    for name in env.get("TASKS", ALL_TASKS).split():
        task = processors.get_task(name)
        train_file = os.path.join(glue_dir, task.directory, task.splits["train"].file) if "train" in task.splits else None
        if not train_file or not os.path.isfile(train_file):
            log("%s: no training data at %s, skipped" % (task.name, train_file or task.directory))
            continue
        for lr in env.get("LRS", PAPER_LEARNING_RATES).split():
            for seed in seeds:
                run_dir = os.path.join(output_dir, task.name, "lr_%s%s" % (lr, "_seed_%s" % seed if seed else ""))
                runs.append(Run(task, lr, seed, run_dir, count_rows(train_file)))
    return runs


def is_finished(run: Run) -> bool:
    return os.path.isfile(os.path.join(run.run_dir, "eval_results.txt"))


def command(run: Run, env: Dict[str, str]) -> List[str]:
    bert_dir, glue_dir = env["BERT_DIR"], env["GLUE_DIR"]
    data_dir = os.path.join(glue_dir, run.task.directory)
    args = [sys.executable, "-m", "bert.run_classifier", "--task_name=" + run.task.name,
            "--do_train=true", "--do_eval=true", "--data_dir=" + data_dir,
            "--vocab_file=" + os.path.join(bert_dir, "vocab.txt"),
            "--bert_config_file=" + os.path.join(bert_dir, "bert_config.json"),
            "--max_seq_length=" + env.get("MAX_SEQ_LENGTH", "128"),
            "--train_batch_size=" + env.get("BATCH_SIZE", "32"),
            "--learning_rate=" + run.learning_rate, "--num_train_epochs=" + env.get("EPOCHS", "3"),
            "--eval_batch_size=32", "--predict_batch_size=32",  # Google's 8 only makes evaluation slower
            "--output_dir=" + run.run_dir,
            "--feature_cache_dir=" + os.path.join(env.get("OUTPUT_DIR", "fine_tune_outputs"), "feature_cache")]
    if os.path.isfile(os.path.join(bert_dir, "bert_model.ckpt.index")):
        args.append("--init_checkpoint=" + os.path.join(bert_dir, "bert_model.ckpt"))
    if os.path.isfile(os.path.join(data_dir, run.task.splits["test"].file)):
        args.append("--do_predict=true")  # the best run's predictions become the GLUE submission
    if run.seed:
        args.append("--seed=" + run.seed)
    return args + shlex.split(env.get("EXTRA_FLAGS", ""))


def headline(run: Run) -> str:
    """`f1 85.5` from the run's eval_results.txt."""
    results = read_eval_results(os.path.join(run.run_dir, "eval_results.txt"))
    metric = run.task.headline_metric
    value = results.get("eval_" + metric)
    return "%s %.1f" % (metric, 100 * float(value)) if value is not None else "no %s" % metric


def last_error(log_path: str) -> str:
    lines = [line.strip() for line in open(log_path, errors="replace").read().splitlines() if line.strip()]
    errors = [line for line in lines if "Error" in line or line.startswith("error")]
    return (errors or lines or ["(empty log)"])[-1][:300]


def execute(run: Run, env: Dict[str, str]) -> bool:
    """Runs one fine-tune; True when it finished. Ctrl-C stops it and the sweep (resumable)."""
    os.makedirs(run.run_dir, exist_ok=True)
    log_path = os.path.join(run.run_dir, "log.txt")
    with open(log_path, "a") as log_file:  # appended: a resumed run keeps the history of its attempts
        log_file.write("\n===== %s: %s\n" % (time.strftime("%Y-%m-%d %H:%M:%S"), " ".join(command(run, env))))
        log_file.flush()
        child = subprocess.Popen(command(run, env), stdout=log_file, stderr=subprocess.STDOUT)
        try:
            return_code = child.wait()
        except KeyboardInterrupt:
            # SIGINT first, as a terminal's Ctrl-C would: a training run then checkpoints its current step and
            # stops. SIGTERM if it has not within 30 s (a run started in the background ignores SIGINT
            # until its training starts).
            child.send_signal(signal.SIGINT)
            try:
                child.wait(timeout=30)
            except subprocess.TimeoutExpired:
                child.terminate()
                child.wait()
            raise
    return return_code == 0 and is_finished(run)


def sweep(env: Dict[str, str]) -> int:
    runs = plan(env)
    todo = [run for run in runs if not is_finished(run)]
    log("%d run%s planned, %d done before, %d to do; checkpoint %s, data %s, output %s"
        % (len(runs), "" if len(runs) == 1 else "s", len(runs) - len(todo), len(todo), env["BERT_DIR"], env["GLUE_DIR"],
           env.get("OUTPUT_DIR", "fine_tune_outputs")))
    failed, seconds_per_example = [], []
    for number, run in enumerate(todo, 1):
        label = "%s lr=%s%s" % (run.task.name, run.learning_rate, " seed=%s" % run.seed if run.seed else "")
        log("(%d/%d) %s: started %s, log %s" % (number, len(todo), label, time.strftime("%H:%M:%S"),
                                                os.path.join(run.run_dir, "log.txt")))
        start = time.time()
        try:
            finished = execute(run, env)
        except KeyboardInterrupt:
            log("interrupted during %s: run the same command again to resume" % label)
            return 130
        elapsed = time.time() - start
        if finished:
            seconds_per_example.append(elapsed / max(run.train_examples, 1))
            left = todo[number:]
            estimate = sum(r.train_examples for r in left) * sum(seconds_per_example) / len(seconds_per_example)
            log("(%d/%d) %s: %s in %s; %d run%s left%s" % (
                number, len(todo), label, headline(run), format_duration(elapsed), len(left), "" if len(left) == 1 else "s",
                ", about %s to go" % format_duration(estimate) if left else ""))
        else:
            failed.append(label)
            log("(%d/%d) %s: FAILED after %s: %s (see %s)" % (number, len(todo), label, format_duration(elapsed),
                                                             last_error(os.path.join(run.run_dir, "log.txt")),
                                                             os.path.join(run.run_dir, "log.txt")))
    report = subprocess.call([sys.executable, "-m", "bert.report", "--output_dir",
                              env.get("OUTPUT_DIR", "fine_tune_outputs"), "--glue_dir", env["GLUE_DIR"]])
    if failed:
        log("%d run(s) failed: %s" % (len(failed), ", ".join(failed)))
    return 1 if failed or report else 0


def stop_on_sigterm(signum, frame):
    raise KeyboardInterrupt  # a killed sweep stops its current run too, instead of orphaning it


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, stop_on_sigterm)
    sys.exit(sweep(dict(os.environ)))
