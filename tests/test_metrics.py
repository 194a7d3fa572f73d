"""Tests for bert.data.metrics against values computed by hand."""
import math

import numpy as np
import pytest

from bert.data.metrics import compute_metrics
from bert.data.processors import get_task

# 6 binary examples: TP = 3 (rows 0, 3, 5), TN = 1 (row 1), FN = 1 (row 2), FP = 1 (row 4).
LABELS = [1, 0, 1, 1, 0, 1]
PREDS = [1, 0, 0, 1, 1, 1]


def _assert_plain_floats(result):
    assert all(type(v) is float for v in result.values()), result


def test_mrpc_accuracy_and_f1():
    result = compute_metrics(get_task("MRPC"), LABELS, PREDS)
    assert list(result) == ["f1", "accuracy"]
    assert result["accuracy"] == pytest.approx(4 / 6)
    assert result["f1"] == pytest.approx(0.75)  # precision 3/4, recall 3/4
    _assert_plain_floats(result)


def test_qqp_f1_uses_class_1_and_accepts_numpy():
    # Everything predicted 1: precision 4/6, recall 1 -> F1 = 2 * (2/3) / (5/3) = 0.8.
    result = compute_metrics("QQP", np.array(LABELS), np.ones(6, dtype=np.int32))
    assert result == pytest.approx({"accuracy": 4 / 6, "f1": 0.8})
    # No positive predictions: F1 is 0, not an error.
    assert compute_metrics("QQP", LABELS, [0] * 6)["f1"] == 0.0


def test_cola_mcc():
    result = compute_metrics(get_task("CoLA"), LABELS, PREDS)
    assert list(result) == ["mcc", "accuracy"]
    # (TP*TN - FP*FN) / sqrt((TP+FP)(TP+FN)(TN+FP)(TN+FN)) = (3 - 1) / sqrt(4*4*2*2) = 0.25
    assert result["mcc"] == pytest.approx(0.25)
    assert result["accuracy"] == pytest.approx(4 / 6)
    _assert_plain_floats(result)


def test_accuracy_only_tasks():
    # 3-class MNLI: 3 of 4 right.
    assert compute_metrics("MNLI", [0, 1, 2, 2], [0, 1, 1, 2]) == {"accuracy": 0.75}
    for name in ("SST-2", "QNLI", "RTE", "WNLI"):
        assert compute_metrics(name, LABELS, PREDS) == pytest.approx({"accuracy": 4 / 6})


def test_stsb_pearson_and_spearman():
    result = compute_metrics("STS-B", [1.0, 2.0, 3.0], [1.0, 3.0, 2.0])
    assert list(result) == ["spearman", "pearson"]  # no accuracy for regression
    # deviations (-1, 0, 1) and (-1, 1, 0): r = 1 / sqrt(2 * 2) = 0.5; the ranks are the values.
    assert result["pearson"] == pytest.approx(0.5)
    assert result["spearman"] == pytest.approx(0.5)
    _assert_plain_floats(result)
    # Monotone but not linear: spearman 1, pearson = 25 / sqrt(5 * 129).
    result = compute_metrics("sts-b", [1, 2, 3, 4], [1.0, 4.0, 9.0, 16.0])
    assert result["spearman"] == pytest.approx(1.0)
    assert result["pearson"] == pytest.approx(25 / math.sqrt(645))


def test_input_validation():
    with pytest.raises(ValueError, match="3 labels but 2 predictions"):
        compute_metrics("MRPC", [0, 1, 1], [0, 1])
    with pytest.raises(ValueError):
        compute_metrics("MRPC", [], [])
    with pytest.raises(TypeError):
        compute_metrics("MRPC", [0, 1], [0.2, 0.9])  # probabilities are not label ids
