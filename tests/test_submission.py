"""Tests for bert.sweeps.submission: leaderboard files from random predictions against the real GLUE test files.

The GLUE root is assembled from symlinks: the shared data for RTE, CoLA, STS-B, WNLI and the diagnostic
set, tests/fixtures/glue/MNLI for MNLI (the shared copy has no MNLI).
"""
import os
import zipfile

import numpy as np
import pytest

from bert.sweeps import report, submission
from bert.sweeps.submission import SubmissionError

TEST_ROWS = {"RTE": 3000, "CoLA": 1063, "STS-B": 1379, "WNLI": 146, "MNLI": 2, "MNLI-mm": 3, "AX": 1104}
LABELS = {"RTE": {"entailment", "not_entailment"}, "CoLA": {"0", "1"}, "WNLI": {"0", "1"},
          "MNLI-m": {"contradiction", "entailment", "neutral"}}
LABELS["MNLI-mm"] = LABELS["AX"] = LABELS["MNLI-m"]


@pytest.fixture
def glue(tmp_path, glue_dir, fixtures_dir):
    root = tmp_path / "glue"
    root.mkdir()
    for name in ("RTE", "CoLA", "STS-B", "WNLI", "diagnostic"):
        os.symlink(str(glue_dir / name), str(root / name))
    os.symlink(str(fixtures_dir / "MNLI"), str(root / "MNLI"))
    return root


def _write_predictions(path, rows):
    path.write_text("".join("\t".join("%.8f" % v for v in np.atleast_1d(row)) + "\n" for row in rows))


def _run(root, run_dir, metric, value, predictions):
    """A finished run with eval_results.txt and {file name: array of predictions}."""
    path = root / run_dir
    path.mkdir(parents=True)
    (path / "eval_results.txt").write_text("eval_%s = %s\nglobal_step = 10\n" % (metric, value))
    for name, rows in predictions.items():
        _write_predictions(path / name, rows)


@pytest.fixture
def outputs(tmp_path):
    """Best runs with predictions for RTE, CoLA, STS-B, WNLI and MNLI (+ mismatched and AX)."""
    rng = np.random.RandomState(0)
    probs = {name: rng.dirichlet(np.ones(3 if name in ("MNLI", "MNLI-mm", "AX") else 2), size=n)
             for name, n in TEST_ROWS.items() if name != "STS-B"}
    scores = rng.uniform(-1.0, 6.0, size=TEST_ROWS["STS-B"])
    scores[:2] = [-0.25, 5.75]  # outside [0, 5]: must be clipped
    root = tmp_path / "outputs"
    _run(root, "RTE/lr_2e-5", "accuracy", 0.66, {"test_results.tsv": probs["RTE"]})
    # A worse RTE run whose predictions would fail the row count: the best run must be the one used.
    _run(root, "RTE/lr_5e-5", "accuracy", 0.60, {"test_results.tsv": probs["RTE"][:10]})
    _run(root, "CoLA/lr_3e-5", "mcc", 0.4, {"test_results.tsv": probs["CoLA"]})
    _run(root, "STS-B/lr_2e-5", "spearman", 0.85, {"test_results.tsv": scores})
    _run(root, "WNLI/lr_2e-5", "accuracy", 0.56, {"test_results.tsv": probs["WNLI"]})
    _run(root, "MNLI/lr_3e-5", "accuracy", 0.8, {"test_results.tsv": probs["MNLI"],
                                                 "test_results_mismatched.tsv": probs["MNLI-mm"],
                                                 "test_results_ax.tsv": probs["AX"]})
    _run(root, "MRPC/lr_2e-5", "f1", 0.85, {})  # evaluated without --do_predict
    return root, probs, scores


def _test_indices(path):
    """The index column of a GLUE test file, read independently of bert.data.processors."""
    with open(str(path), encoding="utf-8-sig") as f:
        return [line.split("\t")[0] for line in f.read().split("\n")[1:] if line.strip()]


def _rows(path):
    lines = path.read_text().split("\n")
    assert lines[0] == "index\tprediction" and lines[-1] == ""
    return [line.split("\t") for line in lines[1:-1]]


def test_leaderboard_files(glue, outputs, capsys):
    root, probs, scores = outputs
    assert submission.main(["--output_dir", str(root), "--glue_dir", str(glue)]) == 0
    out = capsys.readouterr().out
    assert "no predictions for: SST-2, MRPC, QQP, QNLI\n" in out
    folder = root / "glue_submission"
    test_files = {"RTE": glue / "RTE" / "test.tsv", "CoLA": glue / "CoLA" / "test.tsv",
                  "STS-B": glue / "STS-B" / "test.tsv", "WNLI": glue / "WNLI" / "test.tsv",
                  "MNLI-m": glue / "MNLI" / "test_matched.tsv", "MNLI-mm": glue / "MNLI" / "test_mismatched.tsv",
                  "AX": glue / "diagnostic" / "diagnostic.tsv"}
    assert sorted(os.listdir(str(folder))) == sorted(name + ".tsv" for name in test_files)
    for name, test_file in test_files.items():
        rows = _rows(folder / (name + ".tsv"))
        assert [index for index, _ in rows] == _test_indices(test_file), name
        if name in LABELS:  # every label shows up in a large enough random sample
            labels = {label for _, label in rows}
            assert labels == LABELS[name] if len(rows) > 100 else labels <= LABELS[name], name
    assert len(_rows(folder / "AX.tsv")) == 1104 and len(_rows(folder / "RTE.tsv")) == 3000

    rte = [label for _, label in _rows(folder / "RTE.tsv")]
    assert rte == [("entailment", "not_entailment")[i] for i in probs["RTE"].argmax(axis=1)]
    ax = [label for _, label in _rows(folder / "AX.tsv")]
    assert ax == [("contradiction", "entailment", "neutral")[i] for i in probs["AX"].argmax(axis=1)]
    stsb = [float(score) for _, score in _rows(folder / "STS-B.tsv")]
    assert stsb[:2] == [0.0, 5.0]
    assert all(0.0 <= s <= 5.0 for s in stsb)
    assert stsb == pytest.approx(np.clip(scores, 0, 5), abs=5e-4)

    with zipfile.ZipFile(str(root / "glue_submission.zip")) as archive:
        assert sorted(archive.namelist()) == sorted(name + ".tsv" for name in test_files)  # flat, no folder
        for name in archive.namelist():
            assert archive.read(name) == (folder / name).read_bytes()


def test_row_count_mismatch_is_an_error(glue, outputs, capsys):
    root, probs, _ = outputs
    _write_predictions(root / "RTE" / "lr_2e-5" / "test_results.tsv", probs["RTE"][:2999])
    with pytest.raises(SubmissionError) as error:
        submission.write_submission(str(root), str(glue))
    message = str(error.value)
    assert "2999" in message and "3000" in message
    assert os.path.join(str(root), "RTE", "lr_2e-5", "test_results.tsv") in message
    assert os.path.join(str(glue), "RTE", "test.tsv") in message
    assert not (root / "glue_submission.zip").exists()  # nothing half-written
    assert submission.main(["--output_dir", str(root), "--glue_dir", str(glue)]) == 1
    assert "2999" in capsys.readouterr().err


def test_wrong_column_count_is_an_error(glue, outputs):
    root, probs, _ = outputs
    _write_predictions(root / "MNLI" / "lr_3e-5" / "test_results_ax.tsv", probs["RTE"][:1104])
    with pytest.raises(SubmissionError, match="test_results_ax.tsv line 1: expected 3"):
        submission.write_submission(str(root), str(glue))


def test_report_writes_submission_and_drops_stale_files(glue, outputs, capsys):
    root, _, _ = outputs
    assert report.main(["--output_dir", str(root), "--glue_dir", str(glue)]) == 0
    assert "glue_submission.zip" in capsys.readouterr().out
    assert (root / "glue_submission" / "CoLA.tsv").exists()
    first_zip = (root / "glue_submission.zip").read_bytes()
    assert submission.write_submission(str(root), str(glue)).missing == ["SST-2", "MRPC", "QQP", "QNLI"]
    assert (root / "glue_submission.zip").read_bytes() == first_zip  # same predictions, same archive

    (root / "CoLA" / "lr_3e-5" / "test_results.tsv").unlink()
    os.remove(str(root / "MNLI" / "lr_3e-5" / "test_results_mismatched.tsv"))
    result = submission.write_submission(str(root), str(glue))
    assert result.missing == ["CoLA", "SST-2", "MRPC", "QQP", "MNLI-mm", "QNLI"]
    assert not (root / "glue_submission" / "CoLA.tsv").exists()
    with zipfile.ZipFile(str(root / "glue_submission.zip")) as archive:
        assert "CoLA.tsv" not in archive.namelist() and "MNLI-m.tsv" in archive.namelist()
