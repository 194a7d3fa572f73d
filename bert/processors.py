"""GLUE task definitions and one generic TSV reader.

Every GLUE task differs only in data: which files exist, whether they have a header, which
columns hold the texts and the label, and which labels/metrics apply. So each task is one row
of the `TASKS` table (a frozen `TaskSpec`), and a single function, `read_examples`, reads any
split of any task. Adding a task means adding a table entry, not a class.

The files are read exactly as the standard GLUE download lays them out (see GLUE_FORMATS.md):

* TAB-separated UTF-8 with NO quote handling - quotes are literal text (an RTE train field
  starts with ` "`, which a quote-aware csv reader would merge with the following lines).
* Files are opened as ``utf-8-sig`` so the byte-order mark in front of MRPC's header vanishes,
  and lines are split on ``\\n`` only, with a trailing ``\\r`` dropped, so CRLF copies read the
  same as the originals and a stray ``\\r`` inside a field never splits a row.
* Rows with fewer columns than the split needs (real ones exist in QQP train, where a question
  contained a newline) are skipped, counted, and reported - never silently dropped.
"""
from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple, Union

logger = logging.getLogger(__name__)

Label = Union[str, float]


@dataclass(frozen=True)
class InputExample:
    """One sentence (pair) to classify; `label` is None for test splits, a float for STS-B."""

    guid: str
    text_a: str
    text_b: Optional[str]
    label: Optional[Label]


@dataclass(frozen=True)
class SplitSpec:
    """Where one split lives and which (0-based) columns to read from it."""

    file: str
    header: bool
    index_col: Optional[int]  # the file's own id column, used in guids; None -> row number
    text_a_col: int
    text_b_col: Optional[int] = None
    label_col: Optional[int] = None  # None for unlabelled (test) splits

    @property
    def min_columns(self) -> int:
        """A row must reach the right-most column we read; shorter rows are skipped."""
        cols = [self.index_col, self.text_a_col, self.text_b_col, self.label_col]
        return max(c for c in cols if c is not None) + 1


@dataclass(frozen=True)
class TaskSpec:
    """Everything task-specific: files, columns, label set and metrics."""

    name: str
    directory: str
    labels: Tuple[str, ...]  # as spelled in the files; () means regression (STS-B)
    splits: Dict[str, SplitSpec] = field(hash=False)  # dicts are unhashable; name identifies a task
    metrics: Tuple[str, ...]  # metrics[0] is the headline metric, the one the BERT paper reports

    @property
    def is_regression(self) -> bool:
        return not self.labels

    @property
    def headline_metric(self) -> str:
        """The BERT paper's metric for this task: what a sweep picks the best run by."""
        return self.metrics[0]

    @property
    def num_labels(self) -> int:
        return 1 if self.is_regression else len(self.labels)

    @property
    def label_to_id(self) -> Dict[str, int]:
        return {label: i for i, label in enumerate(self.labels)}

    @property
    def eval_splits(self) -> Tuple[str, ...]:
        return tuple(s for s in self.splits if s.startswith("dev"))

    @property
    def test_splits(self) -> Tuple[str, ...]:
        return tuple(s for s in self.splits if s.startswith("test"))


def _pair_task(name: str, labels: Tuple[str, ...], metrics: Tuple[str, ...]) -> TaskSpec:
    """RTE, WNLI and QNLI share one layout: `index, text_a, text_b[, label]`, all with headers."""
    return TaskSpec(name, name, labels, {
        "train": SplitSpec("train.tsv", True, 0, 1, 2, 3),
        "dev": SplitSpec("dev.tsv", True, 0, 1, 2, 3),
        "test": SplitSpec("test.tsv", True, 0, 1, 2),
    }, metrics)


_BINARY = ("0", "1")
_NLI = ("contradiction", "entailment", "neutral")
_ENTAIL = ("entailment", "not_entailment")
_ALL_TASKS = [
    TaskSpec("CoLA", "CoLA", _BINARY, {
        # train/dev: no header; source, label, original-label mark, sentence.
        "train": SplitSpec("train.tsv", False, None, 3, None, 1),
        "dev": SplitSpec("dev.tsv", False, None, 3, None, 1),
        "test": SplitSpec("test.tsv", True, 0, 1),
    }, ("mcc", "accuracy")),
    TaskSpec("SST-2", "SST-2", _BINARY, {
        "train": SplitSpec("train.tsv", True, None, 0, None, 1),
        "dev": SplitSpec("dev.tsv", True, None, 0, None, 1),
        "test": SplitSpec("test.tsv", True, 0, 1),
    }, ("accuracy",)),
    TaskSpec("MRPC", "MRPC", _BINARY, {
        # Quality, #1 ID, #2 ID, #1 String, #2 String; only test has an index column.
        "train": SplitSpec("train.tsv", True, None, 3, 4, 0),
        "dev": SplitSpec("dev.tsv", True, None, 3, 4, 0),
        "test": SplitSpec("test.tsv", True, 0, 3, 4),
    }, ("f1", "accuracy")),
    TaskSpec("STS-B", "STS-B", (), {
        "train": SplitSpec("train.tsv", True, 0, 7, 8, 9),
        "dev": SplitSpec("dev.tsv", True, 0, 7, 8, 9),
        "test": SplitSpec("test.tsv", True, 0, 7, 8),
    }, ("spearman", "pearson")),
    TaskSpec("QQP", "QQP", _BINARY, {
        # id, qid1, qid2, question1, question2, is_duplicate; test: id, question1, question2.
        "train": SplitSpec("train.tsv", True, 0, 3, 4, 5),
        "dev": SplitSpec("dev.tsv", True, 0, 3, 4, 5),
        "test": SplitSpec("test.tsv", True, 0, 1, 2),
    }, ("f1", "accuracy")),
    TaskSpec("MNLI", "MNLI", _NLI, {
        # sentence1/2 are columns 8/9; gold_label is the last column (train 12, dev 16 columns);
        # test files have only the first 10. "dev"/"test" are the matched files.
        "train": SplitSpec("train.tsv", True, 0, 8, 9, 11),
        "dev": SplitSpec("dev_matched.tsv", True, 0, 8, 9, 15),
        "test": SplitSpec("test_matched.tsv", True, 0, 8, 9),
        "dev_mismatched": SplitSpec("dev_mismatched.tsv", True, 0, 8, 9, 15),
        "test_mismatched": SplitSpec("test_mismatched.tsv", True, 0, 8, 9),
    }, ("accuracy",)),
    _pair_task("QNLI", _ENTAIL, ("accuracy",)),
    _pair_task("RTE", _ENTAIL, ("accuracy",)),
    _pair_task("WNLI", _BINARY, ("accuracy",)),
    # The diagnostic set is unlabelled here and predicted with the MNLI model, hence MNLI's
    # labels; its leaderboard score (R3) is a 3-class Matthews correlation.
    TaskSpec("AX", "diagnostic", _NLI, {
        "test": SplitSpec("diagnostic.tsv", True, 0, 1, 2),
    }, ("mcc",)),
]

TASKS: Dict[str, TaskSpec] = {t.name: t for t in _ALL_TASKS}


def _normalize(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


_LOOKUP: Dict[str, TaskSpec] = {_normalize(t.name): t for t in _ALL_TASKS}
_LOOKUP["diagnostic"] = TASKS["AX"]


def get_task(name: Union[str, TaskSpec]) -> TaskSpec:
    """Look a task up ignoring case and punctuation ("sts-b", "STSB", "sst2", "diagnostic")."""
    if isinstance(name, TaskSpec):
        return name
    try:
        return _LOOKUP[_normalize(name)]
    except KeyError:
        raise ValueError(
            f"Unknown GLUE task {name!r}; known tasks: {', '.join(TASKS)} "
            "(case and punctuation are ignored; 'diagnostic' is an alias of AX)") from None


def _read_rows(path: str):
    """Yield (1-based line number, fields) for each line, splitting on TABs only.

    Lines are split on LF only (a trailing CR is dropped) and decoded one by one, so that bytes that
    are not UTF-8 are reported with their file and line.
    """
    with open(path, "rb") as f:
        for line_no, raw in enumerate(f, start=1):
            try:
                line = raw.decode("utf-8-sig" if line_no == 1 else "utf-8")
            except UnicodeDecodeError as error:
                raise ValueError(f"{path} line {line_no}: not UTF-8 text ({error.reason} at byte {error.start})") from None
            yield line_no, line.rstrip("\n").rstrip("\r").split("\t")


def _parse_label(task: TaskSpec, raw: str, where: str) -> Label:
    if task.is_regression:
        try:
            score = float(raw)
        except ValueError:
            raise ValueError(f"{where}: score {raw!r} is not a number") from None
        if not 0.0 <= score <= 5.0:
            raise ValueError(f"{where}: score {score} is outside [0, 5]")
        return score
    if raw not in task.labels:
        raise ValueError(f"{where}: unknown label {raw!r} for {task.name}; expected one of {task.labels}")
    return raw


def read_examples_with_stats(task: Union[str, TaskSpec], data_dir: str,
                             split: str) -> Tuple[List[InputExample], int]:
    """Read one split; return (examples, number of rows skipped for having too few columns).

    `data_dir` is the task's own folder (e.g. <glue>/MRPC). Guids are "<split>-<i>" where i is
    the file's index/id column if it has one, else the 0-based data-row number (skipped rows
    keep their number, so guids do not shift when a row is dropped).
    """
    task = get_task(task)
    if split not in task.splits:
        raise ValueError(f"{task.name} has no split {split!r}; it has {', '.join(task.splits)}")
    spec = task.splits[split]
    path = os.path.join(data_dir, spec.file)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{task.name} {split} file not found: {path}")

    examples: List[InputExample] = []
    skipped_lines: List[int] = []
    rows = _read_rows(path)
    if spec.header:
        next(rows, None)
    for row_no, (line_no, cols) in enumerate(rows):
        if len(cols) < spec.min_columns:
            skipped_lines.append(line_no)
            continue
        label = None
        if spec.label_col is not None:
            label = _parse_label(task, cols[spec.label_col], f"{path} line {line_no}")
        examples.append(InputExample(
            guid=f"{split}-{cols[spec.index_col] if spec.index_col is not None else row_no}",
            text_a=cols[spec.text_a_col],
            text_b=cols[spec.text_b_col] if spec.text_b_col is not None else None,
            label=label,
        ))
    if skipped_lines:
        shown = ", ".join(map(str, skipped_lines[:10])) + (", ..." if len(skipped_lines) > 10 else "")
        logger.warning("%s %s: skipped %d row(s) with fewer than %d columns in %s (lines %s)",
                       task.name, split, len(skipped_lines), spec.min_columns, path, shown)
    return examples, len(skipped_lines)


def read_examples(task: Union[str, TaskSpec], data_dir: str, split: str) -> List[InputExample]:
    """Read one split as InputExamples; short rows are skipped and logged (see *_with_stats)."""
    return read_examples_with_stats(task, data_dir, split)[0]
