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
  contained a newline) are skipped, counted, and reported - never silently dropped; a strict mode
  makes them fatal instead.
"""
from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass, field
from typing import Dict, Iterable, Iterator, List, Optional, Tuple, Union

from bert import files
from bert.errors import UserError

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
        raise UserError(
            f"Unknown GLUE task {name!r}; known tasks: {', '.join(TASKS)} "
            "(case and punctuation are ignored; 'diagnostic' is an alias of AX)") from None


def decode_lines(raw_lines: Iterable[bytes], path: str) -> Iterator[Tuple[int, str]]:
    """Yield (1-based line number, text without its line end) for each line of UTF-8 bytes read from `path`.

    Lines are split on LF only (a trailing CR is dropped) and decoded one by one, so that bytes that
    are not UTF-8 are reported with their file and line; a byte-order mark before the first line vanishes.
    """
    for line_no, raw in enumerate(raw_lines, start=1):
        try:
            line = raw.decode("utf-8-sig" if line_no == 1 else "utf-8")
        except UnicodeDecodeError as error:
            raise UserError(f"{path} line {line_no}: not UTF-8 text ({error.reason} at byte {error.start})") from None
        yield line_no, line.rstrip("\n").rstrip("\r")


def _read_rows(path: str):
    """Yield (1-based line number, fields) for each line of a GLUE file, splitting on TABs only."""
    with files.open(path, "rb") as f:
        for line_no, line in decode_lines(f, path):
            yield line_no, line.split("\t")


def _parse_label(task: TaskSpec, raw: str, where: str) -> Label:
    if task.is_regression:
        try:
            score = float(raw)
        except ValueError:
            raise UserError(f"{where}: score {raw!r} is not a number") from None
        if not 0.0 <= score <= 5.0:
            raise UserError(f"{where}: score {score} is outside [0, 5]")
        return score
    if raw not in task.labels:
        raise UserError(f"{where}: unknown label {raw!r} for {task.name}; expected one of {task.labels}")
    return raw


def _is_data_row(task: TaskSpec, spec: SplitSpec, cols: List[str]) -> bool:
    """Whether a row reads as data rather than column names: a valid label, or else a numeric index.

    GLUE headers name their columns ("label", "score", "index", "id"), which never pass for data.
    """
    if len(cols) < spec.min_columns:
        return False
    if spec.label_col is not None:
        try:
            _parse_label(task, cols[spec.label_col], "")
            return True
        except ValueError:
            return False
    return spec.index_col is not None and cols[spec.index_col].strip().isdigit()


def _looks_like_header(task: TaskSpec, spec: SplitSpec, cols: List[str]) -> bool:
    """A full row whose label is a word but no label of the task: column names, not a damaged row."""
    return (len(cols) >= spec.min_columns and spec.label_col is not None and not _is_data_row(task, spec, cols)
            and any(c.isalpha() for c in cols[spec.label_col]))


@dataclass
class SplitStats:
    """What reading one split found besides its examples: rows skipped or kept despite a problem.

    `skipped` and `kept` map a problem ("fewer than 4 columns") to the 1-based line numbers it was
    found on; run_classifier.py writes their counts to data_stats.json beside eval_results.txt.
    """

    path: str
    lines: int = 0
    examples: int = 0
    skipped: Dict[str, List[int]] = field(default_factory=dict)
    kept: Dict[str, List[int]] = field(default_factory=dict)

    @property
    def num_skipped(self) -> int:
        return sum(len(lines) for lines in self.skipped.values())

    def as_dict(self) -> dict:
        return {"file": self.path, "lines": self.lines, "examples": self.examples,
                "skipped_rows": {problem: len(lines) for problem, lines in self.skipped.items()},
                "kept_with_warning": {problem: len(lines) for problem, lines in self.kept.items()}}


class BadRowError(UserError):
    """A row that --strict_data refuses (without it, the row is skipped or kept, and counted)."""


def read_examples_with_stats(task: Union[str, TaskSpec], data_dir: str, split: str,
                             strict: bool = False) -> Tuple[List[InputExample], SplitStats]:
    """Read one split; return the examples and the problems found on the way (see SplitStats).

    `data_dir` is the task's own folder (e.g. <glue>/MRPC, or gs://bucket/glue/MRPC). Guids are
    "<split>-<i>" where i is the file's index/id column if it has one, else the 0-based data-row
    number (skipped rows keep their number, so guids do not shift when a row is dropped).

    Rows that cannot be examples (too few columns; a header line in a file that has none) are
    skipped; an empty sentence is kept (the model still sees [CLS] [SEP]; QQP has real ones), and a
    missing header line is read as the data it is. All are counted and logged; with `strict` the
    first one raises BadRowError. An unknown label or a bad STS-B score always raises: it means a
    wrong file or task, not one damaged row.
    """
    task = get_task(task)
    if split not in task.splits:
        raise ValueError(f"{task.name} has no split {split!r}; it has {', '.join(task.splits)}")
    spec = task.splits[split]
    path = os.path.join(data_dir, spec.file)
    if not files.isfile(path):
        raise UserError(f"{task.name} {split} file not found: {path}")
    stats = SplitStats(path)

    def problem(kind: Dict[str, List[int]], description: str, line_no: int) -> None:
        if strict:
            raise BadRowError(f"{path} line {line_no}: {description} (--strict_data=false skips or keeps such rows "
                              "and counts them)")
        kind.setdefault(description, []).append(line_no)

    examples: List[InputExample] = []
    row_no = 0
    for line_no, cols in _read_rows(path):
        stats.lines += 1
        if line_no == 1 and spec.header:
            if not _is_data_row(task, spec, cols):
                continue
            problem(stats.kept, f"no header line ({task.name} {spec.file} files start with one)", line_no)
        elif line_no == 1 and _looks_like_header(task, spec, cols):
            problem(stats.skipped, f"a header line ({task.name} {spec.file} files have none)", line_no)
            continue
        if len(cols) < spec.min_columns:
            problem(stats.skipped, f"fewer than {spec.min_columns} columns", line_no)
            row_no += 1
            continue
        label = None
        if spec.label_col is not None:
            label = _parse_label(task, cols[spec.label_col], f"{path} line {line_no}")
        text_a, text_b = cols[spec.text_a_col], cols[spec.text_b_col] if spec.text_b_col is not None else None
        if not text_a.strip() or (text_b is not None and not text_b.strip()):
            problem(stats.kept, "an empty sentence", line_no)
        examples.append(InputExample(guid=f"{split}-{cols[spec.index_col] if spec.index_col is not None else row_no}",
                                     text_a=text_a, text_b=text_b, label=label))
        row_no += 1
    stats.examples = len(examples)
    for verb, found in (("skipped", stats.skipped), ("kept", stats.kept)):
        for description, lines in found.items():
            shown = ", ".join(map(str, lines[:10])) + (", ..." if len(lines) > 10 else "")
            logger.warning("%s %s: %s %d row(s) with %s in %s (line%s %s)", task.name, split, verb, len(lines),
                           description, path, "s" if len(lines) > 1 else "", shown)
    return examples, stats


def read_examples(task: Union[str, TaskSpec], data_dir: str, split: str, strict: bool = False) -> List[InputExample]:
    """Read one split as InputExamples; problem rows are skipped or kept and logged (see *_with_stats)."""
    return read_examples_with_stats(task, data_dir, split, strict)[0]
