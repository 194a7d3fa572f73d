"""The pruning sweep's runs on disk and its summary: accuracy against sparsity, per task and method.

    python -m bert.sweeps.pruning_report --tree fine_tune_outputs/pruning/<settings>

run_pruning.sh (bert/sweeps/pruning_sweep.py) writes one tree per settings, with settings.json, laid out as
  <TASK>/dense/                      step 1, the dense model, when fine-tuned in this tree
  <TASK>/dense.json                  step 1 when a run_all.sh run is reused: {"run_dir": that run's folder
                                     relative to this tree, "learning_rate": its learning rate}
  <TASK>/<granularity>/reweighted/   step 2: reweighted group-lasso training (when the tree's lambda is not 0)
  <TASK>/<granularity>/oneshot_<s>/  step 3: one-shot pruning to sparsity s, retrained with the mask fixed
  <TASK>/<granularity>/gradual_<s>/  the one-run alternative to steps 2 and 3: gradual pruning of step 1's model
  <TASK>/structured/distilled_<s>/   structured pruning's run: gradual, distilling from step 1's model
  planned.json                       every run folder an invocation planned, so that the summary shows the
                                     runs not started yet, whichever invocation planned them
and this module reads that layout (the sweep writes it through `run_dir`, `write_dense_record` and
`record_plan`). The summary, the same whoever writes it, goes into the tree:
* pruning_summary.md   rows = target sparsity (the dense and the trivial baselines first), columns = task x
                       granularity x method (three-step, gradual), cells = the task's headline dev metric in percent
                       (as bert/sweeps/report.py shows it), with the measured sparsity where it is off the target
                       and `collapsed` at or below the trivial baseline; the same table of the models' sizes
                       stored sparsely; the settings, which dense run is the baseline, the total train time and
                       what is unfinished
* pruning_summary.csv  every run, finished or not, with all its eval_results.txt keys and its folder
* pruning_summary.json the same runs, the settings and the dense baselines
* pruning_summary.png  metric against sparsity, a panel per task, a line per method, dense and the trivial
                       baseline as level lines
Runs that are planned but not started, or started but unfinished, are shown as such.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import sys
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

from bert import files
from bert.files import write_atomically
from bert.formatting import format_duration, percent
from bert.data.metrics import trivial_baseline
from bert.data.processors import TaskSpec, read_examples
from bert.errors import UserError
from bert.sweeps.report import METRIC_TITLES, csv_text, figure_grid, json_safe, png_bytes, write_files
from bert.sweeps.report import format_cell as format_seeds
from bert.sweeps.runs import (RUN_DIR, Number, describe_settings, read_finished, read_settings, task_rank,
                              trained_task)

DENSE = "dense"
DENSE_RECORD = "dense.json"
PLAN_FILE = "planned.json"
REWEIGHTED = "reweighted"
# run folder prefix -> the method it ends
METHODS = {"oneshot": "three-step", "gradual": "gradual", "distilled": "gradual + distillation"}
GRANULARITY_ORDER = ("weight", "block", "tile", "structured")
SUMMARY_FILES = ("pruning_summary.md", "pruning_summary.csv", "pruning_summary.json", "pruning_summary.png")
NOTABLE_SPARSITY_GAP = 0.005  # measured sparsity further than this from the target is shown beside the metric
_PRUNED_RUN = re.compile(r"^(?P<kind>oneshot|gradual|distilled)_(?P<sparsity>[0-9]*\.?[0-9]+(?:e-[0-9]+)?)$")


@dataclass(frozen=True)
class PruningRun:
    """One run of a pruning tree, finished or not."""

    task: TaskSpec
    kind: str  # "dense", "reweighted", "oneshot", "gradual" or "distilled"
    granularity: Optional[str]  # None for the dense model
    sparsity: Optional[str]  # the target as its folder spells it; None for dense and reweighted runs
    run_dir: str  # relative to the tree, "/"-separated (a reused dense run's: "../<tree>/<TASK>/lr_<LR>")
    learning_rate: Optional[str]
    results: Optional[Dict[str, Number]]  # None until finished
    status: str  # "finished", "not started", or "unfinished: <why>"
    reused: bool = False  # a dense run of run_all.sh's, not trained in this tree

    @property
    def headline(self) -> float:
        return float(self.results["eval_" + self.task.headline_metric])

    @property
    def target(self) -> float:
        return float(self.sparsity) if self.sparsity is not None else 0.0


# ---------------------------------------------------------------- layout

def run_dir(task: str, granularity: Optional[str] = None, kind: str = DENSE, sparsity: Optional[str] = None) -> str:
    """A run's folder relative to the tree: `MRPC/dense`, `MRPC/block/reweighted`, `MRPC/block/oneshot_0.7`."""
    if kind == DENSE:
        return task + "/" + DENSE
    return "%s/%s/%s" % (task, granularity, kind if kind == REWEIGHTED else "%s_%s" % (kind, sparsity))


def read_dense_record(tree: str, task: str) -> Optional[Dict[str, str]]:
    """The run_all.sh run a task's pipeline reuses as its dense model, if it reuses one."""
    path = os.path.join(tree, task, DENSE_RECORD)
    if not files.isfile(path):
        return None
    with files.open(path) as f:
        return json.load(f)


def write_dense_record(tree: str, task: str, dense_run_path: str, learning_rate: str) -> None:
    """Records that the task's pipeline reuses the dense run at dense_run_path: the choice holds for every later
    invocation (its dependants were trained from it), whatever better runs run_all.sh adds since."""
    record = {"run_dir": os.path.relpath(dense_run_path, tree).replace(os.sep, "/"), "learning_rate": learning_rate}
    files.makedirs(os.path.join(tree, task))
    write_atomically(os.path.join(tree, task, DENSE_RECORD), json.dumps(record, indent=1, sort_keys=True) + "\n")


def read_plan(tree: str) -> List[str]:
    """The run folders (relative to the tree) that the tree's invocations planned."""
    path = os.path.join(tree, PLAN_FILE)
    if not files.isfile(path):
        return []
    with files.open(path) as f:
        return json.load(f)


def record_plan(tree: str, planned: Sequence[str]) -> None:
    """Adds run folders (relative to the tree, see run_dir; others are left out) to the tree's plan."""
    runs = sorted(set(read_plan(tree)) | {relative for relative in planned if _parse(relative) is not None})
    write_atomically(os.path.join(tree, PLAN_FILE), json.dumps(runs, indent=1) + "\n")


def _parse(relative: str) -> Optional[Tuple[TaskSpec, str, Optional[str], Optional[str]]]:
    """(task, kind, granularity, sparsity) of a run folder relative to the tree; None for anything else."""
    parts = relative.split("/")
    task = trained_task(parts[0])
    if task is None:
        return None
    if parts[1:] == [DENSE]:
        return task, DENSE, None, None
    if len(parts) != 3:
        return None
    if parts[2] == REWEIGHTED:
        return task, REWEIGHTED, parts[1], None
    match = _PRUNED_RUN.match(parts[2])
    if not match:
        return None
    return task, match.group("kind"), parts[1], match.group("sparsity")


def _run_folders(tree: str) -> List[str]:
    """Every folder of the tree that may be a run's, relative to the tree."""
    found = []
    for task_name in files.listdir(tree):
        task_path = os.path.join(tree, task_name)
        if trained_task(task_name) is None or not files.isdir(task_path):
            continue
        for name in files.listdir(task_path):
            if name == DENSE:
                found.append(task_name + "/" + DENSE)
            elif files.isdir(os.path.join(task_path, name)):
                found += ["%s/%s/%s" % (task_name, name, run) for run in files.listdir(os.path.join(task_path, name))
                          if files.isdir(os.path.join(task_path, name, run))]
    return found


def _read_run(tree: str, relative: str, learning_rate: Optional[str]) -> Optional[PruningRun]:
    parsed = _parse(relative)
    if parsed is None:
        return None
    task, kind, granularity, sparsity = parsed
    reused = False
    record = read_dense_record(tree, task.name) if kind == DENSE else None
    if record is not None and not files.isdir(os.path.join(tree, relative)):
        relative, learning_rate, reused = record["run_dir"], record["learning_rate"], True
    path = os.path.join(tree, *relative.split("/"))
    if not files.isdir(path):
        return PruningRun(task, kind, granularity, sparsity, relative, learning_rate, None, "not started", reused)
    results, reason = read_finished(path, task)
    return PruningRun(task, kind, granularity, sparsity, relative, learning_rate, results,
                      "finished" if results is not None else "unfinished: %s" % reason, reused)


def _granularity_rank(granularity: Optional[str]) -> Tuple:
    if granularity is None:
        return (-1, "")
    return (GRANULARITY_ORDER.index(granularity) if granularity in GRANULARITY_ORDER else len(GRANULARITY_ORDER),
            granularity)


def _run_key(run: PruningRun) -> Tuple:
    kinds = (DENSE, REWEIGHTED) + tuple(METHODS)
    return (task_rank(run.task), _granularity_rank(run.granularity), kinds.index(run.kind), run.target, run.run_dir)


def collect(tree: str) -> List[PruningRun]:
    """The tree's runs (dense: its own or the recorded run_all.sh run) and those planned but not there yet,
    sorted: task, granularity, step, sparsity."""
    if not files.isdir(tree):
        return []
    settings = read_settings(tree) or {}
    learning_rate = None if settings.get("learning_rate") is None else "%g" % settings["learning_rate"]
    candidates = set(_run_folders(tree)) | set(read_plan(tree))
    candidates |= {run_dir(name) for name in files.listdir(tree)
                   if trained_task(name) is not None and read_dense_record(tree, name) is not None}
    runs = [_read_run(tree, relative, learning_rate) for relative in sorted(candidates)]
    return sorted((run for run in runs if run is not None), key=_run_key)


def trivial_baselines(tree: str, runs: Sequence[PruningRun]) -> Dict[str, Optional[float]]:
    """Each task's trivial baseline (bert.data.metrics.trivial_baseline: the constant answer's headline metric) on
    the dev set its runs evaluated on, the data_dir their run_info.json records (the dense run's first); None for a
    task whose dev set is not there to read."""
    found: Dict[str, Optional[float]] = {}
    for run in sorted(runs, key=lambda run: run.kind != DENSE):
        info_path = os.path.join(tree, *run.run_dir.split("/"), "run_info.json")
        if found.get(run.task.name) is not None or not files.isfile(info_path):
            found.setdefault(run.task.name, None)
            continue
        with files.open(info_path) as f:
            data_dir = (json.load(f).get("settings", {}).get("data_dir") or {}).get("path")
        try:
            examples = read_examples(run.task, data_dir, run.task.eval_splits[0]) if data_dir else []
        except (UserError, OSError):
            examples = []
        labels = [example.label if run.task.is_regression else run.task.label_to_id[example.label]
                  for example in examples]
        found[run.task.name] = trivial_baseline(run.task, labels) if labels else None
    return found


def dense_at_pruning_rate(tree: str, runs: Sequence[PruningRun], learning_rate: Optional[float]) -> Dict[str, List[float]]:
    """A reused dense model is run_all.sh's best run over its learning rates (and seeds), picked on the dev set that
    the single pruned runs are scored on too, which flatters it. Beside it: the headline metrics of the same tree's
    finished runs at LR, the learning rate this tree fine-tunes its own dense models at (every seed's), per task."""
    found: Dict[str, List[float]] = {}
    for run in runs:
        if run.kind != DENSE or not run.reused or learning_rate is None:
            continue
        task_dir = os.path.join(tree, *run.run_dir.split("/")[:-1])
        for name in sorted(files.listdir(task_dir)) if files.isdir(task_dir) else []:
            match = RUN_DIR.match(name)
            if match and float(match.group("lr")) == learning_rate:
                results, _ = read_finished(os.path.join(task_dir, name), run.task)
                if results is not None:
                    found.setdefault(run.task.name, []).append(float(results["eval_" + run.task.headline_metric]))
    return found


def collapsed(run: PruningRun, baselines: Dict[str, Optional[float]]) -> bool:
    """A pruned run whose headline metric is at or below its task's trivial baseline: it has learned nothing the
    metric can see (MRPC's F1 of always answering "paraphrase" is 81.2)."""
    baseline = baselines.get(run.task.name)
    return run.kind != DENSE and run.results is not None and baseline is not None and run.headline <= baseline


# ---------------------------------------------------------------- pruning_summary.md

@dataclass(frozen=True)
class Column:
    task: TaskSpec
    granularity: str
    kind: str  # "oneshot" (the three-step pipeline), "gradual" or "distilled"

    @property
    def title(self) -> str:
        return "%s (%s) %s %s" % (self.task.name, METRIC_TITLES[self.task.headline_metric], self.granularity,
                                  METHODS[self.kind])


def table_columns(runs: Sequence[PruningRun]) -> List[Column]:
    """Task x granularity x method, for each that has a run (finished or not); a reweighted run makes its
    granularity's three-step column."""
    columns = []
    for run in runs:
        if run.kind == DENSE:
            continue
        column = Column(run.task, run.granularity, "oneshot" if run.kind == REWEIGHTED else run.kind)
        if column not in columns:
            columns.append(column)
    return sorted(columns, key=lambda c: (task_rank(c.task), _granularity_rank(c.granularity),
                                          list(METHODS).index(c.kind)))


def sparsities(runs: Sequence[PruningRun]) -> List[str]:
    """The targets, low to high, as their folders spell them."""
    return sorted({run.sparsity for run in runs if run.sparsity is not None}, key=float)


def _find(runs: Sequence[PruningRun], task: TaskSpec, kind: str, granularity: Optional[str] = None,
          sparsity: Optional[str] = None) -> Optional[PruningRun]:
    for run in runs:
        if (run.task is task and run.kind == kind and run.granularity == granularity
                and (sparsity is None or float(run.sparsity) == float(sparsity))):
            return run
    return None


def format_cell(run: Optional[PruningRun], baselines: Dict[str, Optional[float]]) -> str:
    """`84.4`, `84.4 (75.0% sparse)` when the measured sparsity is off the target, `81.2 collapsed` at or below the
    task's trivial baseline, `not started`, `unfinished`, `-` for a run not planned."""
    if run is None:
        return "-"
    if run.results is None:
        return run.status.split(":")[0]
    cell = percent(run.headline)
    measured = run.results.get("sparsity")
    if measured is not None and run.kind != DENSE and abs(float(measured) - run.target) > NOTABLE_SPARSITY_GAP:
        cell += " (%.1f%% sparse)" % (100 * float(measured))
    return cell + (" collapsed" if collapsed(run, baselines) else "")


def format_size(run: Optional[PruningRun]) -> str:
    """A pruned run's model stored sparsely (eval_results' sparse_model_bytes), in MB; `-` where not measured."""
    if run is None or run.results is None or "sparse_model_bytes" not in run.results:
        return "-"
    return "%.1f" % (float(run.results["sparse_model_bytes"]) / 1e6)


def table_rows(runs: Sequence[PruningRun], baselines: Dict[str, Optional[float]], size: bool = False,
               dense_at_rate: Optional[Dict[str, List[float]]] = None,
               learning_rate: Optional[float] = None) -> Tuple[List[Column], List[List[str]]]:
    """The columns and the rows (label first): dense, the dense runs at the pruning learning rate (when run_all.sh's
    best is reused), the trivial baseline, reweighted (if any), then each target sparsity; with `size`, the models'
    sizes stored sparsely instead of their metrics (dense: stored dense)."""
    columns = table_columns(runs)
    if size:
        dense_sizes = {c: [run.results["model_bytes"] for run in runs if run.results and "model_bytes" in run.results
                           and run.task is c.task] for c in columns}
        rows = [["dense"] + ["%.1f" % (float(found[0]) / 1e6) if found else "-" for found in dense_sizes.values()]]
    else:
        rows = [["dense"] + [format_cell(_find(runs, c.task, DENSE), baselines) for c in columns]]
        if dense_at_rate:
            rows.append(["dense at lr %g" % learning_rate] + [format_seeds(dense_at_rate.get(c.task.name, []))
                                                              for c in columns])
        rows.append(["trivial baseline"] + [percent(baselines[c.task.name]) if baselines.get(c.task.name) is not None
                                            else "-" for c in columns])
    cell = format_size if size else (lambda run: format_cell(run, baselines))
    if any(run.kind == REWEIGHTED for run in runs):
        rows.append(["reweighted"] + [cell(_find(runs, c.task, REWEIGHTED, c.granularity))
                                      if c.kind == "oneshot" else "" for c in columns])
    for sparsity in sparsities(runs):
        rows.append(["%g%%" % (100 * float(sparsity))]
                    + [cell(_find(runs, c.task, c.kind, c.granularity, sparsity)) for c in columns])
    return columns, rows


def settings_text(settings: Optional[Dict]) -> str:
    if settings is None:
        return "Settings not recorded (no settings.json)."
    if settings.get("group_lasso"):
        lasso = ("group lasso lambda %g, reweighted every %s steps (step 2)"
                 % (settings["group_lasso"], settings.get("reweight_steps")))
    else:
        lasso = "group lasso off: step 2 is skipped and step 3 prunes the dense model"
    text = "Settings: %s; learning rate %g" % (describe_settings(settings), settings["learning_rate"])
    if "prune_learning_rate" in settings:  # trees made before PRUNE_LR and PRUNE_EPOCHS trained every run alike
        text += " (dense models), then learning rate %g for %g epochs (every later run)%s" % (
            settings["prune_learning_rate"], settings["prune_epochs"],
            ", the one-shot and gradual runs distilling from the dense model" if settings.get("distill") else "")
    return text + "; %s." % lasso


def dense_text(runs: Sequence[PruningRun]) -> str:
    dense = ["%s: `%s` (%s, lr %s)" % (run.task.name, run.run_dir, "run_all.sh's best run" if run.reused
                                       else "fine-tuned in this tree", run.learning_rate)
             for run in runs if run.kind == DENSE]
    text = "Dense baselines (folders relative to this file): %s." % ("; ".join(dense) or "none yet")
    if any(run.reused for run in runs if run.kind == DENSE):
        text += (" run_all.sh's best run is picked over its learning rates (and seeds) on the same dev set that scores "
                 "each single pruned run, which favours it: the row `dense at lr <LR>` gives that tree's runs at "
                 "the learning rate this tree fine-tunes a dense model at (median, min-max and n over seeds).")
    return text


def compact_lines(runs: Sequence[PruningRun], settings: Optional[Dict]) -> List[str]:
    """The table of the structured runs' compact models: size, speed and accuracy, to pick a model by."""
    compact = [run for run in runs if run.results is not None and "compact_parameters" in run.results]
    if not compact:
        return []
    model = ((settings or {}).get("checkpoint") or {}).get("model") or {}
    layers = model.get("num_hidden_layers")
    heads = layers * model["num_attention_heads"] if layers and "num_attention_heads" in model else None
    neurons = layers * model["intermediate_size"] if layers and "intermediate_size" in model else None

    def of(kept: Optional[Number], total: Optional[int]) -> str:
        return "-" if kept is None else "%d" % kept + ("/%d" % total if total else "")

    lines = ["", "Compact models (each structured run's `compact_model/`): its dev metric, parameters (and their share "
             "of the full-size model's), the attention heads and feed-forward neurons it kept, and its dev-set "
             "evaluation rate against the full-size model's, both measured right after training in the run's own "
             "process (the full-size model runs at the dense model's speed).", "",
             "| run | dev % | parameters | heads | neurons | eval examples/s | full size | speed-up |",
             "|---|---|---|---|---|---|---|---|"]
    for run in compact:
        results = run.results
        metric = results.get("compact_eval_" + run.task.headline_metric)
        size, full_size = float(results["compact_parameters"]), results.get("parameters")
        rate, full_rate = results.get("compact_eval_examples_per_second"), results.get("eval_examples_per_second")
        lines.append("| %s | %s | %.2fM%s | %s | %s | %s | %s | %s |" % (
            run.run_dir, "-" if metric is None else percent(float(metric)), size / 1e6,
            " (%.0f%%)" % (100 * size / float(full_size)) if full_size else "",
            of(results.get("heads_kept"), heads), of(results.get("neurons_kept"), neurons),
            "-" if rate is None else "%.1f" % float(rate), "-" if full_rate is None else "%.1f" % float(full_rate),
            "%.2fx" % (float(rate) / float(full_rate)) if rate and full_rate else "-"))
    return lines


def render_markdown(tree_name: str, runs: Sequence[PruningRun], settings: Optional[Dict],
                    baselines: Dict[str, Optional[float]], dense_at_rate: Dict[str, List[float]]) -> str:
    learning_rate = (settings or {}).get("learning_rate")
    columns, rows = table_rows(runs, baselines, dense_at_rate=dense_at_rate, learning_rate=learning_rate)
    lines = ["# Pruning: %s" % tree_name, "", settings_text(settings), "", dense_text(runs), "",
             "Each task's headline dev metric in percent (CoLA MCC, STS-B Spearman, MRPC and QQP F1, accuracy "
             "elsewhere). Rows: the target sparsity of the encoder's prunable matrices; where the sparsity measured "
             "on the saved weights is more than %.1f points off, it follows in brackets. three-step: the dense "
             "model, reweighted training (its model in the reweighted row), one-shot pruning and retraining with the "
             "mask fixed; gradual: one run from the dense model along Zhu & Gupta's cubic ramp (over its first "
             "30%% of steps); gradual + distillation: the same, learning from the dense model's outputs too. "
             "trivial baseline: one constant answer for every dev example (the majority class; 0 for STS-B's and "
             "CoLA's correlations); a run at or below it is marked collapsed."
             % (100 * NOTABLE_SPARSITY_GAP), ""]
    if columns:
        header = ["| sparsity | " + " | ".join(c.title for c in columns) + " |", "|---|" + "---|" * len(columns)]
        lines += header + ["| " + " | ".join(row) + " |" for row in rows]
        sizes = table_rows(runs, baselines, size=True)[1]
        lines += ["", "Model size in MB: the dense row stores every weight as float32; a pruned run's prunable "
                  "matrices are stored as a bitmask (a bit per weight) plus their nonzero float32 values, its other "
                  "weights dense (eval_results' sparse_model_bytes).", ""]
        lines += header + ["| " + " | ".join(row) + " |" for row in sizes]
    else:
        lines.append("No pruning runs yet.")
    lines += compact_lines(runs, settings)
    trained = [run for run in runs if run.results is not None and not run.reused and "train_time" in run.results]
    lines += ["", "Train time: %s over the %d finished runs trained in this tree (a reused dense run's not counted)."
              % (format_duration(sum(float(run.results["train_time"]) for run in trained)), len(trained))]
    unfinished = [run for run in runs if run.results is None]
    if unfinished:
        lines += ["", "Not finished: " + ", ".join("%s (%s)" % (run.run_dir, run.status) for run in unfinished) + "."]
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------- csv / json / png

def run_rows(runs: Sequence[PruningRun], baselines: Dict[str, Optional[float]]) -> Tuple[List[str],
                                                                                       List[Dict[str, object]]]:
    """(columns, a dict per run): its coordinates, status, whether it collapsed, every eval_results key any run has,
    its folder."""
    keys = sorted({key for run in runs if run.results for key in run.results})
    columns = (["task", "method", "granularity", "target_sparsity", "learning_rate", "status", "collapsed"] + keys
               + ["run_dir"])
    rows = []
    for run in runs:
        row: Dict[str, object] = {"task": run.task.name, "method": run.kind, "granularity": run.granularity,
                                  "target_sparsity": run.sparsity, "learning_rate": run.learning_rate,
                                  "status": run.status, "collapsed": collapsed(run, baselines)}
        row.update((key, (run.results or {}).get(key)) for key in keys)
        row["run_dir"] = run.run_dir
        rows.append(row)
    return columns, rows


def render_json(runs: Sequence[PruningRun], settings: Optional[Dict], baselines: Dict[str, Optional[float]],
                dense_at_rate: Dict[str, List[float]]) -> str:
    _, rows = run_rows(runs, baselines)
    summary = {
        "settings": settings,
        "trivial_baselines": baselines,
        "dense_at_pruning_learning_rate": dense_at_rate,
        "dense": {run.task.name: {"run_dir": run.run_dir, "learning_rate": run.learning_rate, "reused": run.reused}
                  for run in runs if run.kind == DENSE},
        "runs": [{key: json_safe(value) for key, value in row.items()} for row in rows],
    }
    return json.dumps(summary, indent=2) + "\n"


def render_png(runs: Sequence[PruningRun], baselines: Dict[str, Optional[float]]) -> bytes:
    """A panel per task: the headline metric against the target sparsity, a line per method, dense dotted, the
    trivial baseline dashed (at or below it, a run has collapsed)."""
    finished = [run for run in runs if run.results is not None]
    panels: Dict[str, List[Column]] = {}
    for column in table_columns(finished):
        panels.setdefault(column.task.name, []).append(column)
    figure, axes = figure_grid(len(panels))
    for ax, columns in zip(axes, panels.values()):
        task = columns[0].task
        dense = _find(finished, task, DENSE)
        if dense is not None:
            ax.axhline(100 * dense.headline, color="gray", linestyle=":", label="dense")
        if baselines.get(task.name) is not None:
            ax.axhline(100 * baselines[task.name], color="red", linestyle="--", label="trivial baseline")
        for column in columns:
            points = sorted((run.target, run.headline) for run in finished
                            if run.task is task and run.kind == column.kind and run.granularity == column.granularity)
            if points:
                ax.plot([100 * s for s, _ in points], [100 * v for _, v in points], marker="o",
                        label="%s %s" % (column.granularity, METHODS[column.kind]))
        ax.set_title("%s (%s)" % (task.name, METRIC_TITLES[task.headline_metric]))
        ax.set_xlabel("target sparsity %")
        ax.set_ylabel("dev %")
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small")
    return png_bytes(figure, axes, len(panels))


# ---------------------------------------------------------------- entry points

def write_summary(tree: str) -> List[str]:
    """Writes the four summary files into the tree; returns their paths."""
    runs = collect(tree)
    settings = read_settings(tree)
    baselines = trivial_baselines(tree, runs)
    at_rate = dense_at_pruning_rate(tree, runs, (settings or {}).get("learning_rate"))
    return write_files(tree, SUMMARY_FILES, [
        render_markdown(os.path.basename(os.path.normpath(tree)), runs, settings, baselines, at_rate).encode("utf-8"),
        csv_text(*run_rows(runs, baselines)).encode("utf-8"), render_json(runs, settings, baselines, at_rate).encode("utf-8"),
        render_png(runs, baselines)])


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bert.sweeps.pruning_report", description=__doc__.split("\n\n")[0])
    parser.add_argument("--tree", required=True, help="a pruning tree: OUTPUT_DIR/<settings> of run_pruning.sh")
    args = parser.parse_args(argv)
    if not files.isdir(args.tree):
        parser.error("--tree %s is not a directory" % args.tree)
    for path in write_summary(args.tree):
        print("wrote %s" % path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
