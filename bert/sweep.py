"""The learning-rate sweep behind run_all.sh: every (task, learning rate, seed) as one run_classifier run.

Settings come from the environment (run_all.sh documents them): TASKS, LRS, SEEDS, EPOCHS, BATCH_SIZE,
MAX_SEQ_LENGTH, BERT_DIR, GLUE_DIR, OUTPUT_DIR, EXTRA_FLAGS. A sweep's runs go into one tree per settings,
OUTPUT_DIR/<settings>/ (bert/runs.py): the checkpoint (its config, weights and vocab, by content), the
epochs, batch size, max_seq_length and EXTRA_FLAGS name the tree and are recorded in its settings.json, so
a sweep with other settings trains its own runs beside the earlier ones and never takes theirs for its
own. Each run is a subprocess writing to <tree>/<TASK>/lr_<LR>[_seed_<S>]/ with its log in log.txt, so that:
- a finished run (its eval_results.txt exists: run_classifier writes it atomically) is never redone;
- an interrupted run resumes from its last checkpoint, continuing the same training order;
- a failed run is reported with its last error line and the sweep goes on; the exit status says so;
- the tokenized examples are shared by every run of every tree (OUTPUT_DIR/feature_cache).
At the end the report (summary.md/csv/json/png per tree, OUTPUT_DIR/summary.md over all trees, and the
GLUE submission files) is rebuilt from all results.

Interruptions: each fine-tune runs in a process group of its own, so the signal a terminal's Ctrl-C or
`timeout` sends to the whole group reaches the sweep only; the sweep forwards exactly one signal to the
fine-tune (which then finishes its step, saves a checkpoint and exits) and exits after it, with 128 + the
signal's number. If the sweep itself is killed outright, the fine-tune gets SIGTERM (Linux) and stops the
same way.
"""
import ctypes
import hashlib
import json
import os
import shlex
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import Dict, List, Optional

from bert import files, processors
from bert.files import write_atomically
from bert.report import format_duration
from bert.runs import SETTINGS_FILE, read_eval_results, read_settings

ALL_TASKS = "CoLA SST-2 MRPC STS-B QQP MNLI QNLI RTE WNLI"
PAPER_LEARNING_RATES = "5e-5 4e-5 3e-5 2e-5"
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


@dataclass
class PlannedRun:
    task: processors.TaskSpec
    learning_rate: str
    seed: Optional[str]
    run_dir: str
    train_examples: int


def log(message: str) -> None:
    print("[sweep] " + message, flush=True)


def _sha1(path: str) -> Optional[str]:
    """files.sha1 of the file, None where there is none (a BERT_DIR without weights trains from scratch)."""
    return files.sha1(path) if os.path.isfile(path) else None


def sweep_settings(env: Dict[str, str]) -> Dict:
    """What every run of this sweep shares: the checkpoint, by content, and the hyperparameters.

    The checkpoint is told by the digests of its bert_config.json, vocab.txt and bert_model.ckpt.index
    (which holds a checksum of every tensor), so a BERT_DIR whose files were replaced counts as another
    checkpoint, and the same files in another folder as the same one.
    """
    bert_dir = env["BERT_DIR"]
    config_path = os.path.join(bert_dir, "bert_config.json")
    with open(config_path, encoding="utf-8") as f:
        model = json.load(f)
    return {
        "checkpoint": {"dir": bert_dir, "model": model, "config_sha1": _sha1(config_path),
                       "vocab_sha1": _sha1(os.path.join(bert_dir, "vocab.txt")),
                       "weights_sha1": _sha1(os.path.join(bert_dir, "bert_model.ckpt.index"))},
        "epochs": float(env.get("EPOCHS", "3")),
        "batch_size": int(env.get("BATCH_SIZE", "32")),
        "max_seq_length": int(env.get("MAX_SEQ_LENGTH", "128")),
        "extra_flags": shlex.split(env.get("EXTRA_FLAGS", "")),
    }


def tree_name(settings: Dict) -> str:
    """`uncased_L-6_H-384_A-12_ep3_bs32_len128_1f0c2d3e`: readable, and unique by the digest of all settings."""
    identity = dict(settings, checkpoint={k: v for k, v in settings["checkpoint"].items() if k != "dir"})
    digest = hashlib.sha1(json.dumps(identity, sort_keys=True).encode("utf-8")).hexdigest()[:8]
    return "%s_ep%g_bs%d_len%d_%s" % (os.path.basename(os.path.normpath(settings["checkpoint"]["dir"])),
                                      settings["epochs"], settings["batch_size"], settings["max_seq_length"], digest)


def count_rows(path: str) -> int:
    with open(path, "rb") as f:
        return max(sum(1 for _ in f) - 1, 0)  # header-less CoLA is off by one: only an estimate


def plan(env: Dict[str, str], tree: str) -> List[PlannedRun]:
    """The runs to do, in order; tasks without training data are reported once and left out."""
    glue_dir = env["GLUE_DIR"]
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
                run_dir = os.path.join(tree, task.name, "lr_%s%s" % (lr, "_seed_%s" % seed if seed else ""))
                runs.append(PlannedRun(task, lr, seed, run_dir, count_rows(train_file)))
    return runs


def is_finished(run: PlannedRun) -> bool:
    return os.path.isfile(os.path.join(run.run_dir, "eval_results.txt"))


def command(run: PlannedRun, env: Dict[str, str]) -> List[str]:
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


def headline(run: PlannedRun) -> str:
    """`f1 85.5` from the run's eval_results.txt."""
    results = read_eval_results(os.path.join(run.run_dir, "eval_results.txt"))
    metric = run.task.headline_metric
    value = results.get("eval_" + metric)
    return "%s %.1f" % (metric, 100 * float(value)) if value is not None else "no %s" % metric


def last_error(log_path: str) -> str:
    lines = [line.strip() for line in open(log_path, errors="replace").read().splitlines() if line.strip()]
    errors = [line for line in lines if "Error" in line or line.startswith("error")]
    return (errors or lines or ["(empty log)"])[-1][:300]


class Stopping:
    """The sweep's SIGINT / SIGTERM / SIGHUP handler: the first signal is forwarded once to the running
    fine-tune (SIGHUP as SIGTERM), and the sweep stops after it; later signals change nothing.

    A second signal to the fine-tune would not kill it either (run_classifier finishes its checkpoint
    whatever arrives), but one is all it needs. Messages go straight to the file descriptor: a handler
    must not print through sys.stdout, which the interrupted code may be in the middle of.
    """

    def __init__(self):
        self.signum: Optional[int] = None
        self.child: Optional[subprocess.Popen] = None

    def __call__(self, signum, frame) -> None:
        name = signal.Signals(signum).name
        if self.signum is not None:
            self.say("%s again: still waiting for the running fine-tune to save its checkpoint and stop" % name)
            return
        self.signum = signum
        if self.child is not None and self.child.poll() is None:
            self.child.send_signal(signal.SIGTERM if signum == signal.SIGHUP else signum)
            self.say("%s: the running fine-tune saves a checkpoint and stops; the sweep stops after it" % name)

    @staticmethod
    def say(message: str) -> None:
        os.write(sys.stdout.fileno(), ("[sweep] %s\n" % message).encode("utf-8"))


def _in_own_process_group() -> None:
    """Runs in the fine-tune's process before it starts: out of the sweep's process group, and (on Linux)
    sent SIGTERM if the sweep dies without forwarding a signal (SIGKILL, a crash)."""
    os.setpgid(0, 0)
    try:
        ctypes.CDLL("libc.so.6").prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def execute(run: PlannedRun, env: Dict[str, str], stopping: Stopping) -> bool:
    """Runs one fine-tune to its end (or until it stops for a forwarded signal); True when it finished."""
    os.makedirs(run.run_dir, exist_ok=True)
    log_path = os.path.join(run.run_dir, "log.txt")
    with open(log_path, "a") as log_file:  # appended: a resumed run keeps the history of its attempts
        log_file.write("\n===== %s: %s\n" % (time.strftime("%Y-%m-%d %H:%M:%S"), " ".join(command(run, env))))
        log_file.flush()
        stopping.child = subprocess.Popen(command(run, env), stdout=log_file, stderr=subprocess.STDOUT,
                                          preexec_fn=_in_own_process_group)
        try:
            return_code = stopping.child.wait()  # a handled signal does not end the wait (PEP 475)
        finally:
            stopping.child = None
    return return_code == 0 and is_finished(run)


def sweep(env: Dict[str, str], stopping: Stopping) -> int:
    output_dir = env.get("OUTPUT_DIR", "fine_tune_outputs")
    settings = sweep_settings(env)
    tree = os.path.join(output_dir, tree_name(settings))
    os.makedirs(tree, exist_ok=True)
    if read_settings(tree) is None:
        write_atomically(os.path.join(tree, SETTINGS_FILE), json.dumps(settings, indent=1, sort_keys=True) + "\n")
    runs = plan(env, tree)
    todo = [run for run in runs if not is_finished(run)]
    log("%d run%s planned, %d done before, %d to do; checkpoint %s, data %s, output %s"
        % (len(runs), "" if len(runs) == 1 else "s", len(runs) - len(todo), len(todo), env["BERT_DIR"], env["GLUE_DIR"],
           tree))
    failed, seconds_per_example = [], []
    for number, run in enumerate(todo, 1):
        label = "%s lr=%s%s" % (run.task.name, run.learning_rate, " seed=%s" % run.seed if run.seed else "")
        if stopping.signum is not None:
            break
        log("(%d/%d) %s: started %s, log %s" % (number, len(todo), label, time.strftime("%H:%M:%S"),
                                                os.path.join(run.run_dir, "log.txt")))
        start = time.time()
        finished = execute(run, env, stopping)
        elapsed = time.time() - start
        if stopping.signum is not None and not finished:
            log("interrupted during %s: run the same command again to resume" % label)
            break
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
    if stopping.signum is not None:
        for signum in STOP_SIGNALS:  # Python's shutdown puts back the default handlers, which a late signal would die of
            signal.signal(signum, signal.SIG_IGN)
        return 128 + stopping.signum
    report = subprocess.call([sys.executable, "-m", "bert.report", "--output_dir", output_dir,
                              "--glue_dir", env["GLUE_DIR"]])
    if failed:
        log("%d run(s) failed: %s" % (len(failed), ", ".join(failed)))
    return 1 if failed or report else 0


def main() -> int:
    stopping = Stopping()
    for signum in STOP_SIGNALS:
        signal.signal(signum, stopping)
    return sweep(dict(os.environ), stopping)


if __name__ == "__main__":
    sys.exit(main())
