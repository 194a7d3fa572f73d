"""Summarise a fine-tuning sweep: one table, CSV, JSON and plot from every run's eval_results.txt.

    python -m bert.sweeps.report [--output_dir fine_tune_outputs] [--glue_dir DIR]

`run_all.sh` leaves one tree per settings (checkpoint, epochs, batch size, ...; bert/sweeps/runs.py), each with one
directory per run. The files written into each tree:

* summary.md   the BERT paper's GLUE table: a row per learning rate, a column per task (headline dev
               metric in percent; median (min-max, n=seeds) over seeds), a "best" and a "train time" row
* summary.csv  one row per finished run with every metric found
* summary.json {"runs": [the csv rows], "best": {task: the best run}}
* summary.png  the headline metric against the learning rate, one panel per task

The best run of a task has the highest headline metric; ties go to the lower learning rate (then the
lower seed), so the choice never depends on directory listing order. md, csv and json are byte-identical
for the same inputs (sorted, relative paths, no timestamps). With --glue_dir the best runs' test
predictions also become the leaderboard files (bert/sweeps/submission.py). The table and the JSON say which
checkpoint and settings made the runs; `<output_dir>/summary.md` has every tree's table, each under its
settings. An --output_dir that holds task folders itself (no settings trees) is summarised as one tree.
"""
from __future__ import annotations

import argparse
import csv
import io
import json
import math
import os
import statistics
import sys
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

from bert import files
from bert.files import write_atomically
from bert.formatting import format_duration, percent
from bert.data.processors import TaskSpec
from bert.sweeps.runs import (TASK_ORDER, FinishedRun, Unfinished, best_runs, collect_runs, describe_settings,
                              read_settings, settings_trees)
from bert.sweeps.defaults import RUN_ALL

METRIC_TITLES = {"accuracy": "Acc", "f1": "F1", "mcc": "MCC", "spearman": "Spearman", "pearson": "Pearson"}
_RUN_COLUMNS = ("train_time", "eval_time", "global_step")  # last in the CSV, after the metrics
SUMMARY_FILES = ("summary.md", "summary.csv", "summary.json", "summary.png")


@dataclass(frozen=True)
class Column:
    """One column of the table: a task and the eval_results key it shows."""

    title: str
    task: TaskSpec
    key: str
    is_headline: bool


# ---------------------------------------------------------------- summary.csv / summary.json

def run_rows(runs: Sequence[FinishedRun]) -> Tuple[List[str], List[Dict[str, object]]]:
    """(columns, one dict per run): the metric columns are every key any run has, sorted."""
    metric_keys = sorted({key for run in runs for key in run.results} - set(_RUN_COLUMNS))
    columns = ["task", "learning_rate", "seed"] + metric_keys + list(_RUN_COLUMNS) + ["run_dir"]
    rows = []
    for run in runs:
        row: Dict[str, object] = {"task": run.task.name, "learning_rate": run.learning_rate, "seed": run.seed}
        row.update((key, run.results.get(key)) for key in metric_keys + list(_RUN_COLUMNS))
        row["run_dir"] = run.run_dir
        rows.append(row)
    return columns, rows


def render_csv(runs: Sequence[FinishedRun]) -> str:
    return csv_text(*run_rows(runs))


def csv_text(columns: Sequence[str], rows: Sequence[Dict[str, object]]) -> str:
    """The rows under a header of `columns`; None is an empty cell."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow("" if row[c] is None else row[c] for c in columns)
    return out.getvalue()


def json_safe(value: object) -> object:
    """NaN/inf are not JSON; a metric that came out NaN (e.g. a constant STS-B prediction) becomes null."""
    return None if isinstance(value, float) and not math.isfinite(value) else value


def render_json(runs: Sequence[FinishedRun], best: Dict[str, FinishedRun], settings: Optional[Dict] = None) -> str:
    _, rows = run_rows(runs)
    summary = {
        "settings": settings,
        "runs": [{key: json_safe(value) for key, value in row.items()} for row in rows],
        "best": {name: {"learning_rate": run.learning_rate, "seed": run.seed, "metric": run.task.headline_metric,
                        "value": json_safe(run.headline), "run_dir": run.run_dir}
                 for name, run in best.items()},
    }
    return json.dumps(summary, indent=2) + "\n"


# ---------------------------------------------------------------- summary.md

def table_columns(runs: Sequence[FinishedRun]) -> List[Column]:
    """A column per task that has a finished run, plus MNLI-mm when the MNLI runs report it."""
    columns = []
    for name in TASK_ORDER:
        task_runs = [run for run in runs if run.task.name == name]
        if not task_runs:
            continue
        task = task_runs[0].task
        metric = METRIC_TITLES[task.headline_metric]
        title = "MNLI-m" if name == "MNLI" else name
        columns.append(Column("%s (%s)" % (title, metric), task, "eval_" + task.headline_metric, True))
        if any("eval_mismatched_accuracy" in run.results for run in task_runs):
            columns.append(Column("MNLI-mm (%s)" % metric, task, "eval_mismatched_accuracy", False))
    return columns


def learning_rates(runs: Sequence[FinishedRun]) -> List[str]:
    """The swept learning rates, high to low as run_all.sh runs them."""
    return sorted({run.learning_rate for run in runs}, key=lambda lr: (-float(lr), lr))


def column_values(runs: Sequence[FinishedRun], column: Column, learning_rate: str) -> List[float]:
    return [float(run.results[column.key]) for run in runs
            if run.task is column.task and run.learning_rate == learning_rate and column.key in run.results]


def format_cell(values: Sequence[float]) -> str:
    """"84.1" for one run; "84.1 (83.0-85.2, n=3)" (median, min-max, seeds) for several; "-" for none."""
    numbers = sorted(v for v in values if not math.isnan(v))
    if not numbers:
        return "nan" if values else "-"
    if len(values) == 1:
        return percent(numbers[0])
    return "%s (%s-%s, n=%d)" % (percent(statistics.median(numbers)), percent(numbers[0]),
                                 percent(numbers[-1]), len(values))


def _best_cell(run: Optional[FinishedRun], column: Column) -> str:
    if run is None or column.key not in run.results:
        return "-"
    where = run.learning_rate if run.seed is None else "%s, seed %d" % (run.learning_rate, run.seed)
    return "%s @ %s" % (percent(float(run.results[column.key])), where)


def _time_cell(runs: Sequence[FinishedRun], column: Column) -> str:
    if not column.is_headline:
        return ""  # MNLI-mm comes from the same runs as MNLI-m
    times = [float(run.results["train_time"]) for run in runs
             if run.task is column.task and "train_time" in run.results]
    return format_duration(statistics.median(times)) if times else "-"


def markdown_table(runs: Sequence[FinishedRun], unfinished: Sequence[Unfinished],
                   best: Dict[str, FinishedRun]) -> List[str]:
    """The table's lines, then notes on unfinished runs."""
    lines = []
    columns = table_columns(runs)
    if columns:
        lines += [
            "Each task's headline dev metric (the BERT paper's) in percent; with several seeds the median "
            "(min-max, n=seeds). best: the single best run (ties: the lower learning rate). "
            "train time: median over the task's runs.",
            "",
            "| learning rate | " + " | ".join(c.title for c in columns) + " |",
            "|---|" + "---|" * len(columns),
        ]
        rows = [[lr] + [format_cell(column_values(runs, c, lr)) for c in columns] for lr in learning_rates(runs)]
        rows.append(["best"] + [_best_cell(best.get(c.task.name), c) for c in columns])
        rows.append(["train time"] + [_time_cell(runs, c) for c in columns])
        lines += ["| " + " | ".join(row) + " |" for row in rows]
    else:
        lines.append("No finished runs.")
    notes = []
    if unfinished:
        notes.append("Unfinished runs (no complete eval_results.txt): "
                     + ", ".join("%s (%s)" % (u.run_dir, u.reason) for u in unfinished) + ".")
    done = {run.task.name for run in runs}
    waiting = [name for name in TASK_ORDER if name not in done and any(u.task.name == name for u in unfinished)]
    if waiting:
        notes.append("Tasks with no finished run: " + ", ".join(waiting) + ".")
    for note in notes:
        lines += ["", note]
    return lines


def settings_line(settings: Optional[Dict]) -> List[str]:
    return [] if settings is None else ["Settings: %s." % describe_settings(settings), ""]


def render_markdown(runs: Sequence[FinishedRun], unfinished: Sequence[Unfinished], best: Dict[str, FinishedRun],
                    settings: Optional[Dict] = None) -> str:
    lines = ["# GLUE dev results", ""] + settings_line(settings) + markdown_table(runs, unfinished, best)
    return "\n".join(lines) + "\n"


def render_index(trees: Sequence[Tuple[str, Optional[Dict], List[FinishedRun], List[Unfinished]]]) -> str:
    """<output_dir>/summary.md: every settings tree's table under its name and settings."""
    lines = ["# GLUE dev results", "", "One table per settings tree (its folder in this directory, with its own "
             "summary files); runs made with other settings are never mixed into a table."]
    for name, settings, finished, unfinished in trees:
        lines += ["", "## " + name, ""] + settings_line(settings) + markdown_table(finished, unfinished,
                                                                                 best_runs(finished))
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------- summary.png

def render_png(runs: Sequence[FinishedRun], best: Dict[str, FinishedRun]) -> bytes:
    """One panel per task: median headline metric vs learning rate (log x), min-max band, best run starred."""
    panels: Dict[str, List[Column]] = {}
    for column in table_columns(runs):
        panels.setdefault(column.task.name, []).append(column)
    figure, axes = figure_grid(len(panels))
    for ax, (name, columns) in zip(axes, panels.items()):
        for column in columns:
            points = [(float(lr), sorted(v for v in column_values(runs, column, lr) if not math.isnan(v)))
                      for lr in learning_rates(runs)]
            points = sorted((lr, v) for lr, v in points if v)
            if not points:
                continue
            x = [lr for lr, _ in points]
            title = "median" if column.is_headline else column.title.split(" ")[0]
            ax.plot(x, [100 * statistics.median(v) for _, v in points], marker="o", label=title,
                    linestyle="-" if column.is_headline else "--")
            ax.fill_between(x, [100 * v[0] for _, v in points], [100 * v[-1] for _, v in points], alpha=0.2)
            run = best.get(name)
            if column.is_headline and run is not None and not math.isnan(run.headline):
                ax.plot([run.lr], [100 * run.headline], marker="*", markersize=14, color="crimson",
                        linestyle="none", label="best")
        ticks = {run.lr: run.learning_rate for run in runs if run.task.name == name}  # label as the user spelled it
        ax.set_xscale("log")
        ax.minorticks_off()
        ax.set_xticks(sorted(ticks))
        ax.set_xticklabels([ticks[lr] for lr in sorted(ticks)])
        ax.set_title("%s (%s)" % (name, METRIC_TITLES[columns[0].task.headline_metric]))
        ax.set_xlabel("learning rate")
        ax.set_ylabel("dev %")
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small")
    return png_bytes(figure, axes, len(panels))


def figure_grid(panels: int):
    """A matplotlib figure (no display needed) with room for `panels` panels, three to a row, and its axes."""
    import matplotlib
    matplotlib.use("Agg")  # no display on training machines; harmless when already set
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    ncols = max(1, min(3, panels))
    nrows = max(1, math.ceil(panels / ncols))
    figure = Figure(figsize=(4.2 * ncols, 3.2 * nrows))
    FigureCanvasAgg(figure)
    return figure, figure.subplots(nrows, ncols, squeeze=False).ravel()


def png_bytes(figure, axes, panels: int) -> bytes:
    """The figure as PNG bytes without a timestamp (the same plot gives the same file); axes beyond the
    `panels` used are hidden, and a figure without any says so."""
    for ax in axes[panels:]:
        ax.set_axis_off()
    if not panels:
        axes[0].text(0.5, 0.5, "no finished runs", ha="center", va="center")
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100, metadata={"Software": None})
    return buffer.getvalue()


# ---------------------------------------------------------------- entry points

def write_report(output_dir: str, runs: Optional[Tuple[List[FinishedRun], List[Unfinished]]] = None) -> List[str]:
    """Write the four summary files into a tree (output_dir); return their paths."""
    finished, unfinished = runs if runs is not None else collect_runs(output_dir)
    best = best_runs(finished)
    settings = read_settings(output_dir)
    return write_files(output_dir, SUMMARY_FILES, [
        render_markdown(finished, unfinished, best, settings).encode("utf-8"), render_csv(finished).encode("utf-8"),
        render_json(finished, best, settings).encode("utf-8"), render_png(finished, best)])


def write_files(directory: str, names: Sequence[str], contents: Sequence[bytes]) -> List[str]:
    """Writes each file atomically (a reader never sees half a summary); returns their paths."""
    paths = [os.path.join(directory, name) for name in names]
    for path, data in zip(paths, contents):
        write_atomically(path, data)
    return paths


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bert.sweeps.report", description=__doc__.split("\n\n")[0])
    parser.add_argument("--output_dir", default=RUN_ALL["OUTPUT_DIR"], help="the sweep's OUTPUT_DIR")
    parser.add_argument("--glue_dir", help="GLUE data: also write the leaderboard files (glue_submission.zip)")
    args = parser.parse_args(argv)
    if not files.isdir(args.output_dir):
        parser.error("--output_dir %s is not a directory" % args.output_dir)
    trees = settings_trees(args.output_dir)
    status, index = 0, []
    for tree in trees or [args.output_dir]:
        runs = collect_runs(tree)
        for path in write_report(tree, runs):
            print("wrote %s" % path)
        if args.glue_dir:
            from bert.sweeps import submission  # here, not at the top: the sweep's report without --glue_dir needs none
            status |= submission.run_cli(tree, args.glue_dir, runs[0])
        index.append((os.path.basename(tree), read_settings(tree)) + runs)
    if trees:
        path = os.path.join(args.output_dir, "summary.md")
        write_atomically(path, render_index(index))
        print("wrote %s" % path)
    return status


if __name__ == "__main__":
    sys.exit(main())
