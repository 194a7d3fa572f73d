"""The runs of a sweep on disk: which are finished, with what results and settings, and which is best.

`run_all.sh` (bert/sweeps/sweep.py) writes one tree per settings, `<output_dir>/<settings>/`, with `settings.json`
(the checkpoint and hyperparameters every run of the tree shares) and one directory per run,
`<TASK>/lr_<LR>/` or, with several seeds, `<TASK>/lr_<LR>_seed_<S>/`. A run counts as finished once its
eval_results.txt holds the task's headline metric (`TaskSpec.headline_metric`, the BERT paper's), so a
sweep can be summarised while it is still running. The report (bert/sweeps/report.py) and the leaderboard files
(bert/sweeps/submission.py) both read runs through this module.
"""
from __future__ import annotations

import json
import math
import os
import re
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple, Union

from bert import files
from bert.data.processors import TaskSpec, get_task
from bert.sweeps.extra_flags import effective

Number = Union[int, float]

# The BERT paper's column order (its Table 1); WNLI, which the paper left out, goes last.
TASK_ORDER = ("MNLI", "QQP", "QNLI", "SST-2", "CoLA", "STS-B", "MRPC", "RTE", "WNLI")
RUN_DIR = re.compile(r"^lr_(?P<lr>[^_]+)(?:_seed_(?P<seed>\d+))?$")
SETTINGS_FILE = "settings.json"


@dataclass(frozen=True)
class FinishedRun:
    """One finished run: the task, its sweep coordinates and the numbers in its eval_results.txt. (Not to be confused
    with sweep.PlannedRun, a run the sweep will start, or pruning_report.PruningRun, a pruning tree's run, finished
    or not.)"""

    task: TaskSpec
    learning_rate: str  # as spelled in the directory name ("2e-5"), which is how users name it
    seed: Optional[int]
    run_dir: str  # relative to output_dir with "/", so summaries do not depend on where output_dir is
    path: str  # where it is on disk, for readers of its other files (test predictions)
    results: Dict[str, Number] = field(hash=False)

    @property
    def lr(self) -> float:
        return float(self.learning_rate)

    @property
    def headline(self) -> float:
        return float(self.results["eval_" + self.task.headline_metric])


@dataclass(frozen=True)
class Unfinished:
    """A run directory without a complete eval_results.txt (still training, crashed, or damaged)."""

    task: TaskSpec
    run_dir: str
    reason: str



def read_eval_results(path: str) -> Dict[str, Number]:
    """Parse `key = value` lines (ints stay ints: global_step); a malformed line raises ValueError."""
    results: Dict[str, Number] = {}
    with files.open(path) as f:
        for line_no, line in enumerate(f, start=1):
            if not line.strip():
                continue
            key, sep, value = (part.strip() for part in line.partition("="))
            try:
                if not (sep and key):
                    raise ValueError
                results[key] = int(value) if re.fullmatch(r"-?\d+", value) else float(value)
            except ValueError:
                raise ValueError("%s line %d: expected `key = number`, got %r" % (path, line_no, line.rstrip("\n"))) \
                    from None
    return results


def task_rank(task: TaskSpec) -> int:
    return TASK_ORDER.index(task.name)


def trained_task(directory_name: str) -> Optional[TaskSpec]:
    """The task a top-level folder belongs to; None for anything else (glue_submission/, AX, ...)."""
    try:
        task = get_task(directory_name)
    except ValueError:
        return None
    return task if task.name in TASK_ORDER else None


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _run_key(run: FinishedRun) -> Tuple:
    """Table order: task (paper order), learning rate high to low (as the sweep runs), seed."""
    return (task_rank(run.task), -run.lr, run.learning_rate, -1 if run.seed is None else run.seed, run.run_dir)


def read_finished(path: str, task: TaskSpec) -> Tuple[Optional[Dict[str, Number]], str]:
    """(results, "") of a finished run directory, else (None, why it does not count as finished)."""
    results_path = os.path.join(path, "eval_results.txt")
    headline_key = "eval_" + task.headline_metric
    if not files.isfile(results_path):
        return None, "no eval_results.txt"
    try:
        results = read_eval_results(results_path)
    except ValueError as error:
        return None, "damaged eval_results.txt: %s" % error
    if headline_key not in results:
        return None, "eval_results.txt has no %s" % headline_key
    return results, ""


def collect_runs(output_dir: str) -> Tuple[List[FinishedRun], List[Unfinished]]:
    """Every run directory under output_dir, split into finished runs and unfinished ones (sorted)."""
    finished: List[FinishedRun] = []
    unfinished: List[Unfinished] = []
    for task_dir in files.listdir(output_dir):
        task = trained_task(task_dir)
        if task is None or not files.isdir(os.path.join(output_dir, task_dir)):
            continue
        for name in files.listdir(os.path.join(output_dir, task_dir)):
            match = RUN_DIR.match(name)
            path = os.path.join(output_dir, task_dir, name)
            if not (match and _is_number(match.group("lr")) and files.isdir(path)):
                continue
            run_dir = task_dir + "/" + name
            results, reason = read_finished(path, task)
            if results is None:
                unfinished.append(Unfinished(task, run_dir, reason))
                continue
            seed = match.group("seed")
            finished.append(FinishedRun(task, match.group("lr"), None if seed is None else int(seed), run_dir, path,
                                        results))
    finished.sort(key=_run_key)
    unfinished.sort(key=lambda u: (task_rank(u.task), u.run_dir))
    return finished, unfinished


def _nan_last(value: float) -> float:
    return -math.inf if math.isnan(value) else value


def best_runs(runs: Sequence[FinishedRun]) -> Dict[str, FinishedRun]:
    """{task name: its best run}: highest headline metric; ties to the lower learning rate, then seed."""
    best: Dict[str, FinishedRun] = {}
    for run in sorted(runs, key=lambda r: (-_nan_last(r.headline), r.lr, -1 if r.seed is None else r.seed,
                                           r.run_dir)):
        best.setdefault(run.task.name, run)
    return {name: best[name] for name in TASK_ORDER if name in best}


# ---------------------------------------------------------------- settings trees

def read_settings(tree: str) -> Optional[Dict]:
    """The settings.json of a sweep tree; None where there is none (a tree laid out by hand, or before them)."""
    path = os.path.join(tree, SETTINGS_FILE)
    if not files.isfile(path):
        return None
    with files.open(path) as f:
        return json.load(f)


def settings_trees(output_dir: str) -> List[str]:
    """The sweep trees under output_dir (folders with a settings.json), by name."""
    return [os.path.join(output_dir, name) for name in files.listdir(output_dir)
            if files.isfile(os.path.join(output_dir, name, SETTINGS_FILE))]


def describe_settings(settings: Optional[Dict]) -> str:
    """One line naming the checkpoint and the hyperparameters the runs of a tree share (as they trained with them:
    a tree made before EXTRA_FLAGS were resolved may record --num_train_epochs among its extra flags)."""
    settings = effective(settings)
    if settings is None:
        return "settings not recorded (no %s)" % SETTINGS_FILE
    checkpoint = settings["checkpoint"]
    model = checkpoint.get("model") or {}
    weights = "pre-trained weights" if checkpoint.get("weights_sha1") else "no weights: trained from scratch"
    shape = " (L=%s H=%s A=%s)" % (model.get("num_hidden_layers"), model.get("hidden_size"),
                                   model.get("num_attention_heads")) if model else ""
    extra = " ".join(settings.get("extra_flags") or []) or "none"
    return ("checkpoint %s%s, %s; %s epochs, batch %s, max_seq_length %s; extra flags: %s"
            % (checkpoint["dir"], shape, weights, settings["epochs"], settings["batch_size"],
               settings["max_seq_length"], extra))
