"""GLUE evaluation metrics, picked per task from `TaskSpec.metrics`.

Classification tasks take integer label ids (positions in `TaskSpec.labels`); F1 is the binary
F1 of id 1, which is the "1" (paraphrase / duplicate) class for MRPC and QQP. STS-B takes float
scores. Values are plain Python floats so they serialise to JSON/logs without numpy types.
"""
from __future__ import annotations

from typing import Callable, Dict, Sequence, Union

import numpy as np
from scipy import stats
from sklearn.metrics import accuracy_score, f1_score, matthews_corrcoef

from bert.data.processors import TaskSpec, get_task

_METRICS: Dict[str, Callable[[np.ndarray, np.ndarray], float]] = {
    "accuracy": lambda y, p: accuracy_score(y, p),
    "f1": lambda y, p: f1_score(y, p, pos_label=1, average="binary", zero_division=0),
    "mcc": lambda y, p: matthews_corrcoef(y, p),
    "pearson": lambda y, p: stats.pearsonr(y, p)[0],
    "spearman": lambda y, p: stats.spearmanr(y, p)[0],
}


def compute_metrics(task: Union[str, TaskSpec], labels: Sequence, predictions: Sequence) -> Dict[str, float]:
    """Return {metric name: value} for the task's metrics, in `task.metrics` order."""
    task = get_task(task)
    y, p = (np.asarray(a).reshape(-1) for a in (labels, predictions))
    if y.shape != p.shape:
        raise ValueError(f"{task.name}: {y.size} labels but {p.size} predictions")
    if y.size == 0:
        raise ValueError(f"{task.name}: no examples to score")
    if task.is_regression:
        y, p = y.astype(np.float64), p.astype(np.float64)
    elif y.dtype.kind not in "iu" or p.dtype.kind not in "iu":
        # Casting e.g. probabilities to int would silently truncate them to 0.
        raise TypeError(f"{task.name}: labels and predictions must be integer label ids, "
                        f"got {y.dtype} and {p.dtype}")
    return {name: float(_METRICS[name](y, p)) for name in task.metrics}


def metrics_of_outputs(task: Union[str, TaskSpec], examples: Sequence, outputs: np.ndarray) -> Dict[str, float]:
    """The task's metrics of a model's outputs for labelled examples: [n, labels] probabilities (scored by their
    argmax) or, for a regression, [n] scores."""
    from bert.data.features import label_id  # here: features imports TensorFlow, which the sweeps' reports skip
    task = get_task(task)
    labels = [label_id(example, task) for example in examples]
    return compute_metrics(task, labels, outputs if task.is_regression else np.asarray(outputs).argmax(axis=-1))


def trivial_baseline(task: Union[str, TaskSpec], labels: Sequence) -> float:
    """The headline metric of one constant answer for every example: the most frequent label (the lowest id on a
    tie) for classification, e.g. MRPC dev's F1 0.812 and RTE dev's accuracy 0.527; 0 for STS-B, where a constant has
    no correlation (and for CoLA's MCC). A model at or below it has learned nothing the metric can see."""
    task = get_task(task)
    if task.is_regression:
        return 0.0
    ids = np.asarray(labels, np.int64).reshape(-1)
    majority = np.full_like(ids, np.bincount(ids, minlength=task.num_labels).argmax())
    return compute_metrics(task, ids, majority)[task.headline_metric]
