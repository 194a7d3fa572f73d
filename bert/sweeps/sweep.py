"""The learning-rate sweep behind run_all.sh: every (task, learning rate, seed) as one run_classifier run,
and the loop that runs a planned list of fine-tunes, which bert/sweeps/pruning_sweep.py (run_pruning.sh) shares.

Settings come from the environment (run_all.sh documents them; defaults in bert/sweeps/defaults.py): TASKS, LRS,
SEEDS, EPOCHS, BATCH_SIZE, MAX_SEQ_LENGTH, BERT_DIR, GLUE_DIR, OUTPUT_DIR, EXTRA_FLAGS, PROGRESS_EVERY. A sweep's
runs go into one tree per settings, OUTPUT_DIR/<settings>/ (bert/sweeps/runs.py): the checkpoint (its config,
weights and vocab, by content), the epochs, batch size, max_seq_length and EXTRA_FLAGS name the tree and are
recorded in its settings.json (EXTRA_FLAGS' --num_train_epochs, --train_batch_size and --max_seq_length as the
epochs, batch size and max_seq_length: bert/sweeps/extra_flags.py), so a sweep with other settings trains its
own runs beside the earlier ones and never takes theirs for its own. Each run is a subprocess writing to
<tree>/<TASK>/lr_<LR>[_seed_<S>]/ with its log in log.txt, so that:
- a finished run (its eval_results.txt exists: run_classifier writes it atomically) is never redone;
- an interrupted run resumes from its last checkpoint, continuing the same training order;
- a failed run is reported with its last error line and the sweep goes on; the exit status says so (a run
  that starts from another run's checkpoint is skipped when that one failed);
- the tokenized examples are shared by every run of every tree (OUTPUT_DIR/feature_cache).
At the end the report (summary.md/csv/json/png per tree, OUTPUT_DIR/summary.md over all trees, and the
GLUE submission files) is rebuilt from all results.
While a run goes on, a status line (bert/sweeps/progress.py) shows its progress, read from its log, and the sweep's
time left.

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
import re
import shlex
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Set, Tuple

from bert import files
from bert.data import processors
from bert.sweeps import progress
from bert.sweeps.defaults import RUN_ALL
from bert.sweeps.extra_flags import resolve
from bert.errors import UserError
from bert.files import write_atomically
from bert.formatting import format_duration
from bert.sweeps.runs import SETTINGS_FILE, read_eval_results, read_settings

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
POLL_SECONDS = 1.0  # how often the sweep looks at a running fine-tune's log for its progress


@dataclass
class PlannedRun:
    """One fine-tune of a sweep: where it goes and what sets it apart from the sweep's other runs."""

    task: processors.TaskSpec
    label: str  # how the terminal names it: "MRPC lr=3e-5", "MRPC block oneshot 0.7"
    run_dir: str
    learning_rate: str
    train_examples: int  # for the time estimate
    flags: List[str] = field(default_factory=list)  # its own flags (seed, pruning); EXTRA_FLAGS come after
    start_from: Optional["PlannedRun"] = None  # starts from that run's last checkpoint instead of BERT_DIR's
    predict: bool = False  # also predict the test set (the sweep's best runs make the GLUE submission)


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
        "epochs": float(env["EPOCHS"]),
        "batch_size": int(env["BATCH_SIZE"]),
        "max_seq_length": int(env["MAX_SEQ_LENGTH"]),
        "extra_flags": shlex.split(env["EXTRA_FLAGS"]),
    }


def settings_identity(settings: Dict) -> Dict:
    """The settings without the checkpoint's folder: the same files elsewhere are the same checkpoint."""
    return dict(settings, checkpoint={k: v for k, v in settings["checkpoint"].items() if k != "dir"})


def tree_name(settings: Dict, tag: str = "") -> str:
    """`uncased_L-6_H-384_A-12_ep3_bs32_len128_1f0c2d3e`: readable (plus `tag`, e.g. a pruning tree's learning
    rate), and unique by the digest of all settings."""
    digest = hashlib.sha1(json.dumps(settings_identity(settings), sort_keys=True).encode("utf-8")).hexdigest()[:8]
    return "%s_ep%g_bs%d_len%d%s_%s" % (os.path.basename(os.path.normpath(settings["checkpoint"]["dir"])),
                                        settings["epochs"], settings["batch_size"], settings["max_seq_length"],
                                        "_" + tag if tag else "", digest)


def make_tree(output_dir: str, settings: Dict, tag: str = "") -> str:
    """The settings' tree under output_dir, created with its settings.json if new."""
    tree = os.path.join(output_dir, tree_name(settings, tag))
    os.makedirs(tree, exist_ok=True)
    if read_settings(tree) is None:
        write_atomically(os.path.join(tree, SETTINGS_FILE), json.dumps(settings, indent=1, sort_keys=True) + "\n")
    return tree


def count_rows(path: str) -> int:
    with open(path, "rb") as f:
        return max(sum(1 for _ in f) - 1, 0)  # header-less CoLA is off by one: only an estimate


def tasks_with_training_data(env: Dict[str, str]) -> List[Tuple[processors.TaskSpec, int]]:
    """(task, its training rows) for each of TASKS; tasks without training data are reported once and left out."""
    found = []
    for name in env["TASKS"].split():
        task = processors.get_task(name)
        train_file = os.path.join(env["GLUE_DIR"], task.directory, task.splits["train"].file) \
            if "train" in task.splits else None
        if not train_file or not os.path.isfile(train_file):
            log("%s: no training data at %s, skipped" % (task.name, train_file or task.directory))
            continue
        found.append((task, count_rows(train_file)))
    return found


def plan(env: Dict[str, str], tree: str) -> List[PlannedRun]:
    """The runs to do, in order."""
    seeds = env["SEEDS"].split() or [None]
    runs = []
    for task, train_examples in tasks_with_training_data(env):
        predict = os.path.isfile(os.path.join(env["GLUE_DIR"], task.directory, task.splits["test"].file))
        for lr in env["LRS"].split():
            for seed in seeds:
                run_dir = os.path.join(tree, task.name, "lr_%s%s" % (lr, "_seed_%s" % seed if seed else ""))
                runs.append(PlannedRun(task, "%s lr=%s%s" % (task.name, lr, " seed=%s" % seed if seed else ""),
                                       run_dir, lr, train_examples, ["--seed=" + seed] if seed else [],
                                       predict=predict))
    return runs


def is_finished(run: PlannedRun) -> bool:
    return os.path.isfile(os.path.join(run.run_dir, "eval_results.txt"))


def latest_checkpoint(run_dir: str) -> str:
    """The prefix of the run's last checkpoint, from TensorFlow's `checkpoint` state file (which names a
    checkpoint only once it is saved), as tf.train.latest_checkpoint finds it, without loading TensorFlow."""
    state = os.path.join(run_dir, "checkpoint")
    found = None
    if os.path.isfile(state):
        with open(state, encoding="utf-8") as f:
            found = re.search(r'^model_checkpoint_path: "(.*)"$', f.read(), re.M)
    prefix = found and os.path.join(run_dir, found.group(1))
    if not prefix or not os.path.isfile(prefix + ".index"):
        raise UserError("%s holds no saved checkpoint to start from" % run_dir)
    return prefix


def command(run: PlannedRun, env: Dict[str, str]) -> List[str]:
    """The run_classifier command of a run (a UserError when the run it starts from left no checkpoint)."""
    bert_dir = env["BERT_DIR"]
    if run.start_from is not None:
        init_checkpoint: Optional[str] = latest_checkpoint(run.start_from.run_dir)
    else:
        prefix = os.path.join(bert_dir, "bert_model.ckpt")
        init_checkpoint = prefix if os.path.isfile(prefix + ".index") else None  # else: from scratch
    args = [sys.executable, "-m", "bert.run_classifier", "--task_name=" + run.task.name,
            "--do_train=true", "--do_eval=true", "--data_dir=" + os.path.join(env["GLUE_DIR"], run.task.directory),
            "--vocab_file=" + os.path.join(bert_dir, "vocab.txt"),
            "--bert_config_file=" + os.path.join(bert_dir, "bert_config.json"),
            "--max_seq_length=" + env["MAX_SEQ_LENGTH"],
            "--train_batch_size=" + env["BATCH_SIZE"],
            "--learning_rate=" + run.learning_rate, "--num_train_epochs=" + env["EPOCHS"],
            "--eval_batch_size=32", "--predict_batch_size=32",  # Google's 8 only makes evaluation slower
            "--output_dir=" + run.run_dir,
            "--feature_cache_dir=" + os.path.join(env["OUTPUT_DIR"], "feature_cache")]
    if init_checkpoint:
        args.append("--init_checkpoint=" + init_checkpoint)
    if run.predict:
        args.append("--do_predict=true")
    return args + run.flags + shlex.split(env["EXTRA_FLAGS"])


def headline(run: PlannedRun) -> str:
    """`f1 85.5` from the run's eval_results.txt (`f1 85.5 at sparsity 70.0%` for a pruned model)."""
    results = read_eval_results(os.path.join(run.run_dir, "eval_results.txt"))
    metric = run.task.headline_metric
    value = results.get("eval_" + metric)
    text = "%s %.1f" % (metric, 100 * float(value)) if value is not None else "no %s" % metric
    return text + (" at sparsity %.1f%%" % (100 * float(results["sparsity"])) if "sparsity" in results else "")


def last_error(log_path: str) -> str:
    lines = [line.strip() for line in open(log_path, errors="replace").read().splitlines() if line.strip()]
    errors = [line for line in lines if "Error" in line or line.startswith(("error", "FATAL"))]  # FATAL: absl's flags
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
        """On a terminal the message first clears the status line (progress.StatusLine) it would follow."""
        fd = sys.stdout.fileno()
        os.write(fd, ("%s[sweep] %s\n" % (progress.CLEAR_LINE if os.isatty(fd) else "", message)).encode("utf-8"))


def _in_own_process_group() -> None:
    """Runs in the fine-tune's process before it starts: out of the sweep's process group, and (on Linux)
    sent SIGTERM if the sweep dies without forwarding a signal (SIGKILL, a crash)."""
    os.setpgid(0, 0)
    try:
        ctypes.CDLL("libc.so.6").prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def execute(run: PlannedRun, args: List[str], stopping: Stopping,
            show: Callable[[progress.Progress], None] = lambda current: None) -> bool:
    """Runs one fine-tune to its end (or until it stops for a forwarded signal); True when it finished. About
    every POLL_SECONDS while it runs, `show` gets its latest progress from its log (once it has logged any)."""
    os.makedirs(run.run_dir, exist_ok=True)
    log_path = os.path.join(run.run_dir, "log.txt")
    with open(log_path, "a") as log_file:  # appended: a resumed run keeps the history of its attempts
        log_file.write("\n===== %s: %s\n" % (time.strftime("%Y-%m-%d %H:%M:%S"), " ".join(args)))
        log_file.flush()
        follower = progress.LogFollower(log_path, log_file.tell())  # this attempt's lines only
        stopping.child = subprocess.Popen(args, stdout=log_file, stderr=subprocess.STDOUT,
                                          preexec_fn=_in_own_process_group)
        try:
            while True:
                try:
                    return_code = stopping.child.wait(POLL_SECONDS)  # a handled signal does not end it (PEP 475)
                    break
                except subprocess.TimeoutExpired:
                    current = follower.poll()
                    if current is not None:
                        show(current)
        finally:
            stopping.child = None
    return return_code == 0 and is_finished(run)


def _broken_start(run: PlannedRun, broken: Set[str]) -> Optional[PlannedRun]:
    """The run this one (directly or through others) starts from that failed or was skipped, if any."""
    source = run.start_from
    while source is not None and source.run_dir not in broken:
        source = source.start_from
    return source


def run_planned(runs: List[PlannedRun], env: Dict[str, str], tree: str,
                stopping: Stopping) -> Tuple[List[str], List[str]]:
    """Runs every unfinished run in order, reporting each on the terminal; returns the labels of the runs that
    failed and of those skipped because a run they start from failed. Stops early once a signal has come."""
    todo = [run for run in runs if not is_finished(run)]
    log("%d run%s planned, %d done before, %d to do; checkpoint %s, data %s, output %s"
        % (len(runs), "" if len(runs) == 1 else "s", len(runs) - len(todo), len(todo), env["BERT_DIR"], env["GLUE_DIR"],
           tree))
    failed: List[str] = []
    skipped: List[str] = []
    broken: Set[str] = set()  # the run dirs of both
    seconds_per_example: List[float] = []
    status = progress.StatusLine(sys.stdout, every=float(env["PROGRESS_EVERY"]))
    for number, run in enumerate(todo, 1):
        if stopping.signum is not None:
            break
        prefix = "(%d/%d) %s" % (number, len(todo), run.label)
        source = _broken_start(run, broken)
        if source is not None:
            broken.add(run.run_dir)
            skipped.append(run.label)
            log("%s: skipped: it starts from %s, which did not finish" % (prefix, source.label))
            continue
        try:
            args = command(run, env)
        except UserError as error:
            broken.add(run.run_dir)
            failed.append(run.label)
            log("%s: FAILED before it started: %s" % (prefix, error))
            continue
        log_path = os.path.join(run.run_dir, "log.txt")
        log("%s: started %s, log %s" % (prefix, time.strftime("%H:%M:%S"), log_path))
        start = time.time()
        # The runs after this one that will run: `broken` only grows when this one fails, and then no estimate
        # follows it.
        left = [r for r in todo[number:] if _broken_start(r, broken) is None]
        later_examples = sum(r.train_examples for r in left)

        def show(current: progress.Progress) -> None:
            now = time.time()
            status.show("%s: %s" % (prefix, progress.status_text(current, now, now - start, run.train_examples,
                                                                 later_examples, seconds_per_example)))

        try:
            finished = execute(run, args, stopping, show)
        finally:
            status.clear()  # the lines below start on a clean line
        elapsed = time.time() - start
        if stopping.signum is not None and not finished:
            log("interrupted during %s: run the same command again to resume" % run.label)
            break
        if finished:
            seconds_per_example.append(elapsed / max(run.train_examples, 1))
            estimate = later_examples * sum(seconds_per_example) / len(seconds_per_example)
            log("%s: %s in %s; %d run%s left%s" % (
                prefix, headline(run), format_duration(elapsed), len(left), "" if len(left) == 1 else "s",
                ", about %s to go" % format_duration(estimate) if left else ""))
        else:
            broken.add(run.run_dir)
            failed.append(run.label)
            log("%s: FAILED after %s: %s (see %s)" % (prefix, format_duration(elapsed), last_error(log_path), log_path))
    return failed, skipped


def conclude(failed: List[str], skipped: List[str], stopping: Stopping, report: Callable[[], int]) -> int:
    """The sweep's exit status after run_planned: 128 + the signal if one came (and no report), else the
    report's status, 1 if any run failed or was skipped."""
    if stopping.signum is not None:
        for signum in STOP_SIGNALS:  # Python's shutdown puts back the default handlers, which a late signal would die of
            signal.signal(signum, signal.SIG_IGN)
        return 128 + stopping.signum
    status = report()
    if failed:
        log("%d run(s) failed: %s" % (len(failed), ", ".join(failed)))
    if skipped:
        log("%d run(s) skipped, since a run they start from failed: %s" % (len(skipped), ", ".join(skipped)))
    return 1 if failed or skipped or status else 0


def sweep(env: Dict[str, str], stopping: Stopping) -> int:
    env = dict(RUN_ALL, **env)
    env = resolve(env, {"seed": "SEEDS"} if env["SEEDS"].split() else None)
    output_dir = env["OUTPUT_DIR"]
    tree = make_tree(output_dir, sweep_settings(env))
    failed, skipped = run_planned(plan(env, tree), env, tree, stopping)
    return conclude(failed, skipped, stopping, lambda: subprocess.call(
        [sys.executable, "-m", "bert.sweeps.report", "--output_dir", output_dir, "--glue_dir", env["GLUE_DIR"]]))


def main(sweep_function: Callable[[Dict[str, str], Stopping], int] = sweep) -> int:
    """Runs a sweep with the signal handling above; a mistake in its settings ends it with one line."""
    stopping = Stopping()
    for signum in STOP_SIGNALS:
        signal.signal(signum, stopping)
    try:
        return sweep_function(dict(os.environ), stopping)
    except UserError as error:
        print("error: %s" % error, file=sys.stderr, flush=True)
        return 1


if __name__ == "__main__":
    sys.exit(main())
