"""Turn the best runs' test predictions into the GLUE leaderboard's files and zip.

    python -m bert.sweeps.submission --output_dir fine_tune_outputs --glue_dir DIR

(also run by `python -m bert.sweeps.report --glue_dir DIR`). For each task, the best run (bert.sweeps.runs's choice:
highest headline dev metric) is looked at; if it has test predictions they become
`<output_dir>/glue_submission/<NAME>.tsv` with the header `index<TAB>prediction`, one row per test
example in test-file order: the test file's own index, then the label name (STS-B: the score clipped
to [0, 5], which is the range the leaderboard accepts). The files are then zipped flat into
`<output_dir>/glue_submission.zip`. AX (the diagnostic set) comes from the best MNLI run.

The index column is read from the GLUE test file itself (processors.read_examples), and a prediction
file with a different row count is an error: lining up predictions against the wrong rows would give
a silently wrong leaderboard score. A task without predictions is only reported.
"""
from __future__ import annotations

import argparse
import io
import math
import os
import sys
import zipfile
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence

from bert import files
from bert.errors import UserError
from bert.files import write_atomically
from bert.data.processors import TaskSpec, get_task, read_examples
from bert.sweeps.runs import FinishedRun, best_runs, collect_runs
from bert.sweeps.defaults import RUN_ALL

SUBMISSION_DIR = "glue_submission"


class SubmissionError(UserError):
    """Predictions that cannot be turned into a leaderboard file (wrong row or column count, NaN)."""


@dataclass(frozen=True)
class Entry:
    """One leaderboard file: the test split it answers and which run file holds its predictions."""

    name: str  # the leaderboard's file name without .tsv
    task: str  # whose test file gives the rows and labels
    split: str
    source: str  # whose best run made the predictions (MNLI for AX)
    predictions: str  # file in that run's directory (run_classifier's naming)


def _plain(name: str) -> Entry:
    return Entry(name, name, "test", name, "test_results.tsv")


ENTRIES = (
    _plain("CoLA"), _plain("SST-2"), _plain("MRPC"), _plain("STS-B"), _plain("QQP"),
    Entry("MNLI-m", "MNLI", "test", "MNLI", "test_results.tsv"),
    Entry("MNLI-mm", "MNLI", "test_mismatched", "MNLI", "test_results_mismatched.tsv"),
    _plain("QNLI"), _plain("RTE"), _plain("WNLI"),
    Entry("AX", "AX", "test", "MNLI", "test_results_ax.tsv"),
)


@dataclass
class Submission:
    """What write_submission did: the files written, the zip (None if nothing to zip), what is missing."""

    files: List[str]
    zip_path: Optional[str]
    missing: List[str]

    def describe(self) -> List[str]:
        lines = []
        if self.zip_path:
            lines.append("wrote %d leaderboard files (%s) to %s and %s" % (
                len(self.files), ", ".join(os.path.basename(f) for f in self.files),
                os.path.dirname(self.files[0]), self.zip_path))
        if self.missing:
            lines.append("no predictions for: " + ", ".join(self.missing))
        return lines


def read_predictions(path: str, task: TaskSpec) -> List[List[float]]:
    """Rows of floats from a test_results file; each row must have one value per label (STS-B: one)."""
    rows = []
    with files.open(path) as f:
        for line_no, line in enumerate(f, start=1):
            try:
                row = [float(value) for value in line.rstrip("\n").split("\t")]
            except ValueError:
                row = []
            if len(row) != task.num_labels or not all(math.isfinite(v) for v in row):
                raise SubmissionError("%s line %d: expected %d finite number(s) for %s, got %r"
                                      % (path, line_no, task.num_labels, task.name, line.rstrip("\n")))
            rows.append(row)
    return rows


def format_prediction(task: TaskSpec, row: Sequence[float]) -> str:
    """The label with the highest probability (first on a tie), or the STS-B score clipped to [0, 5]."""
    if task.is_regression:
        return "%.3f" % min(max(row[0], 0.0), 5.0)
    return task.labels[max(range(len(row)), key=lambda i: (row[i], -i))]


def leaderboard_file(entry: Entry, run: FinishedRun, glue_dir: str) -> str:
    """The text of one leaderboard file; raises SubmissionError when the row counts disagree."""
    task = get_task(entry.task)
    test_dir = os.path.join(glue_dir, task.directory)
    examples = read_examples(task, test_dir, entry.split)
    path = os.path.join(run.path, entry.predictions)
    rows = read_predictions(path, task)
    if len(rows) != len(examples):
        raise SubmissionError("%s: %s has %d prediction rows but %s has %d test examples" % (
            entry.name, path, len(rows), os.path.join(test_dir, task.splits[entry.split].file), len(examples)))
    prefix = entry.split + "-"  # guids are "<split>-<index column>"
    lines = ["index\tprediction"]
    lines += ["%s\t%s" % (example.guid[len(prefix):], format_prediction(task, row))
              for example, row in zip(examples, rows)]
    return "\n".join(lines) + "\n"


def _zip(members: Dict[str, bytes]) -> bytes:
    """A flat zip with fixed timestamps, so the same predictions give the same archive."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            archive.writestr(info, data)
    return buffer.getvalue()


def _missing_names(missing: Sequence[Entry]) -> List[str]:
    """Entry names, with a task's entries folded into the task name when all of them are missing."""
    names: List[str] = []
    for entry in missing:
        siblings = [e for e in ENTRIES if e.task == entry.task]
        if all(e in missing for e in siblings):
            if entry.task not in names:
                names.append(entry.task)
        else:
            names.append(entry.name)
    return names


def write_submission(output_dir: str, glue_dir: str, runs: Optional[Sequence[FinishedRun]] = None) -> Submission:
    """Convert every available prediction, then write the files and the zip.

    All files are built before any is written, so an error leaves the previous submission intact.
    Leaderboard files that the current best runs no longer produce are removed, so the directory
    and the zip always describe one consistent set of runs.
    """
    best = best_runs(collect_runs(output_dir)[0] if runs is None else runs)
    contents: Dict[str, bytes] = {}
    missing: List[Entry] = []
    for entry in ENTRIES:
        run = best.get(entry.source)
        if run is None or not files.isfile(os.path.join(run.path, entry.predictions)):
            missing.append(entry)
            continue
        contents[entry.name + ".tsv"] = leaderboard_file(entry, run, glue_dir).encode("utf-8")

    folder = os.path.join(output_dir, SUBMISSION_DIR)
    zip_path = os.path.join(output_dir, SUBMISSION_DIR + ".zip")
    for entry in missing:
        stale = os.path.join(folder, entry.name + ".tsv")
        if files.isfile(stale):
            files.remove(stale)
    if not contents:
        if files.isfile(zip_path):
            files.remove(zip_path)
        return Submission([], None, _missing_names(missing))
    files.makedirs(folder)
    written = []
    for name, data in contents.items():
        written.append(os.path.join(folder, name))
        write_atomically(written[-1], data)
    write_atomically(zip_path, _zip(contents))
    return Submission(written, zip_path, _missing_names(missing))


def run_cli(output_dir: str, glue_dir: str, runs: Optional[Sequence[FinishedRun]] = None) -> int:
    """Write the submission and print what happened; 1 with a one-line error for unusable predictions."""
    try:
        submission = write_submission(output_dir, glue_dir, runs)
    except UserError as error:  # a SubmissionError, or a test file missing or malformed
        print("error: %s" % error, file=sys.stderr)
        return 1
    for line in submission.describe():
        print(line)
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bert.sweeps.submission", description=__doc__.split("\n\n")[0])
    parser.add_argument("--output_dir", default=RUN_ALL["OUTPUT_DIR"], help="the sweep's OUTPUT_DIR")
    parser.add_argument("--glue_dir", required=True, help="GLUE data root (for the test files' index columns)")
    args = parser.parse_args(argv)
    if not files.isdir(args.output_dir):
        parser.error("--output_dir %s is not a directory" % args.output_dir)
    return run_cli(args.output_dir, args.glue_dir)


if __name__ == "__main__":
    sys.exit(main())
