"""Tests for bert.sweeps.report: the sweep table, CSV, JSON and plot from hand-written eval_results.txt files."""
import csv
import json
import os
import shutil
import subprocess
import sys

import pytest

from conftest import REPO_ROOT

from bert import formatting
from bert.sweeps import report, runs
from bert.data.processors import TASKS

# run dir -> eval_results.txt contents. MRPC has 3 seeds at 5e-5 and 2 at 2e-5; CoLA ties at 5e-5 and
# 2e-5 (the lower rate must win); MNLI reports mismatched accuracy; RTE's only run is damaged.
RUNS = {
    "MRPC/lr_5e-5_seed_1": dict(eval_accuracy=0.75, eval_f1=0.80, train_time=100.0),
    "MRPC/lr_5e-5_seed_2": dict(eval_accuracy=0.85, eval_f1=0.90, train_time=110.0),
    "MRPC/lr_5e-5_seed_3": dict(eval_accuracy=0.80, eval_f1=0.85, train_time=120.0),
    "MRPC/lr_2e-5_seed_1": dict(eval_accuracy=0.82, eval_f1=0.88, train_time=130.0),
    "MRPC/lr_2e-5_seed_2": dict(eval_accuracy=0.81, eval_f1=0.86, train_time=140.0),
    "CoLA/lr_5e-5": dict(eval_mcc=0.5, eval_accuracy=0.8, train_time=600.0),
    "CoLA/lr_2e-5": dict(eval_mcc=0.5, eval_accuracy=0.81, train_time=700.0),
    "MNLI/lr_3e-5": dict(eval_accuracy=0.841, eval_matched_accuracy=0.841, eval_mismatched_accuracy=0.832,
                         eval_mismatched_loss=0.5, train_time=7325.0),
    "STS-B/lr_2e-5": dict(eval_spearman=0.885, eval_pearson=0.889, train_time=45.4),
    "RTE/lr_2e-5": dict(eval_loss=0.7, train_time=50.0),  # no eval_accuracy: not a finished run
}
UNFINISHED = ["MRPC/lr_3e-5_seed_1"]  # a run dir with only a log


def _write_run(root, run_dir, results):
    path = root / run_dir
    path.mkdir(parents=True)
    results = dict(results, eval_loss=results.get("eval_loss", 0.4), loss=0.3, eval_time=12.5, global_step=343)
    (path / "eval_results.txt").write_text("".join("%s = %s\n" % (k, results[k]) for k in sorted(results)))


@pytest.fixture
def sweep(tmp_path):
    root = tmp_path / "outputs"
    for run_dir, results in RUNS.items():
        _write_run(root, run_dir, results)
    for run_dir in UNFINISHED:
        (root / run_dir).mkdir(parents=True)
        (root / run_dir / "log.txt").write_text("training...\n")
    (root / "glue_submission").mkdir()  # not a task: ignored
    (root / "MRPC" / "notes").mkdir()  # not a run dir: ignored
    return root


def _table(markdown):
    """{row label: {column title: cell}} from the markdown table."""
    rows = [line.strip("|").split("|") for line in markdown.splitlines() if line.startswith("| ")]
    header = [c.strip() for c in rows[0]]
    return {cells[0].strip(): dict(zip(header[1:], (c.strip() for c in cells[1:]))) for cells in rows[1:]}


def test_headline_metric_is_the_bert_papers():
    expected = {"CoLA": "mcc", "SST-2": "accuracy", "MRPC": "f1", "STS-B": "spearman", "QQP": "f1",
                "MNLI": "accuracy", "QNLI": "accuracy", "RTE": "accuracy", "WNLI": "accuracy", "AX": "mcc"}
    assert {name: task.headline_metric for name, task in TASKS.items()} == expected
    assert all(task.headline_metric == task.metrics[0] for task in TASKS.values())


def test_collect_runs_and_best(sweep):
    finished, unfinished = runs.collect_runs(str(sweep))
    assert [r.run_dir for r in finished] == [
        "MNLI/lr_3e-5", "CoLA/lr_5e-5", "CoLA/lr_2e-5", "STS-B/lr_2e-5",
        "MRPC/lr_5e-5_seed_1", "MRPC/lr_5e-5_seed_2", "MRPC/lr_5e-5_seed_3", "MRPC/lr_2e-5_seed_1",
        "MRPC/lr_2e-5_seed_2"]
    assert finished[-1].seed == 2 and finished[-1].learning_rate == "2e-5" and finished[0].seed is None
    assert finished[0].results["global_step"] == 343 and isinstance(finished[0].results["global_step"], int)
    assert [(u.run_dir, u.reason) for u in unfinished] == [
        ("MRPC/lr_3e-5_seed_1", "no eval_results.txt"), ("RTE/lr_2e-5", "eval_results.txt has no eval_accuracy")]
    best = runs.best_runs(finished)
    assert list(best) == ["MNLI", "CoLA", "STS-B", "MRPC"]
    assert best["MRPC"].run_dir == "MRPC/lr_5e-5_seed_2"
    assert best["CoLA"].run_dir == "CoLA/lr_2e-5"  # a tie goes to the lower learning rate


def test_markdown_table(sweep):
    report.write_report(str(sweep))
    markdown = (sweep / "summary.md").read_text()
    table = _table(markdown)
    assert list(table) == ["5e-5", "3e-5", "2e-5", "best", "train time"]
    assert list(table["best"]) == ["MNLI-m (Acc)", "MNLI-mm (Acc)", "CoLA (MCC)", "STS-B (Spearman)", "MRPC (F1)"]
    assert table["5e-5"] == {"MNLI-m (Acc)": "-", "MNLI-mm (Acc)": "-", "CoLA (MCC)": "50.0",
                             "STS-B (Spearman)": "-", "MRPC (F1)": "85.0 (80.0-90.0, n=3)"}
    assert table["3e-5"] == {"MNLI-m (Acc)": "84.1", "MNLI-mm (Acc)": "83.2", "CoLA (MCC)": "-",
                             "STS-B (Spearman)": "-", "MRPC (F1)": "-"}
    assert table["2e-5"]["MRPC (F1)"] == "87.0 (86.0-88.0, n=2)"  # even count: the mean of the middle two
    assert table["2e-5"]["STS-B (Spearman)"] == "88.5"
    assert table["best"] == {"MNLI-m (Acc)": "84.1 @ 3e-5", "MNLI-mm (Acc)": "83.2 @ 3e-5",
                             "CoLA (MCC)": "50.0 @ 2e-5", "STS-B (Spearman)": "88.5 @ 2e-5",
                             "MRPC (F1)": "90.0 @ 5e-5, seed 2"}
    assert table["train time"] == {"MNLI-m (Acc)": "2h02m05s", "MNLI-mm (Acc)": "", "CoLA (MCC)": "10m50s",
                                   "STS-B (Spearman)": "45s", "MRPC (F1)": "2m00s"}
    assert ("Unfinished runs (no complete eval_results.txt): MRPC/lr_3e-5_seed_1 (no eval_results.txt), "
            "RTE/lr_2e-5 (eval_results.txt has no eval_accuracy).") in markdown
    assert "Tasks with no finished run: RTE." in markdown


def test_csv_and_json(sweep):
    report.write_report(str(sweep))
    with open(str(sweep / "summary.csv"), newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 9
    assert list(rows[0]) == ["task", "learning_rate", "seed", "eval_accuracy", "eval_f1", "eval_loss",
                             "eval_matched_accuracy", "eval_mcc", "eval_mismatched_accuracy",
                             "eval_mismatched_loss", "eval_pearson", "eval_spearman", "loss",
                             "train_time", "eval_time", "global_step", "run_dir"]
    mrpc = rows[5]
    assert (mrpc["task"], mrpc["learning_rate"], mrpc["seed"], mrpc["eval_f1"], mrpc["eval_mcc"]) == \
        ("MRPC", "5e-5", "2", "0.9", "")
    assert (mrpc["global_step"], mrpc["run_dir"]) == ("343", "MRPC/lr_5e-5_seed_2")
    assert rows[0]["seed"] == "" and rows[0]["eval_mismatched_accuracy"] == "0.832"

    summary = json.loads((sweep / "summary.json").read_text())
    assert [r["run_dir"] for r in summary["runs"]] == [r["run_dir"] for r in rows]
    assert summary["runs"][5]["seed"] == 2 and summary["runs"][5]["eval_f1"] == 0.9
    assert summary["runs"][0]["seed"] is None and summary["runs"][0]["global_step"] == 343
    assert summary["best"] == {
        "MNLI": {"learning_rate": "3e-5", "seed": None, "metric": "accuracy", "value": 0.841,
                 "run_dir": "MNLI/lr_3e-5"},
        "CoLA": {"learning_rate": "2e-5", "seed": None, "metric": "mcc", "value": 0.5, "run_dir": "CoLA/lr_2e-5"},
        "STS-B": {"learning_rate": "2e-5", "seed": None, "metric": "spearman", "value": 0.885,
                  "run_dir": "STS-B/lr_2e-5"},
        "MRPC": {"learning_rate": "5e-5", "seed": 2, "metric": "f1", "value": 0.9,
                 "run_dir": "MRPC/lr_5e-5_seed_2"},
    }


def test_deterministic_and_location_independent(sweep, tmp_path):
    names = ("summary.md", "summary.csv", "summary.json")
    report.write_report(str(sweep))
    first = {n: (sweep / n).read_bytes() for n in names}
    report.write_report(str(sweep))
    assert {n: (sweep / n).read_bytes() for n in names} == first
    moved = tmp_path / "elsewhere" / "outputs"
    shutil.copytree(str(sweep), str(moved))
    report.write_report(str(moved))
    assert {n: (moved / n).read_bytes() for n in names} == first
    assert not [n for n in os.listdir(str(sweep)) if n.endswith(".tmp")]


def test_png_is_a_real_png(sweep):
    report.write_report(str(sweep))
    data = (sweep / "summary.png").read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) > 1000


def test_cli_prints_paths_and_handles_empty_dir(sweep, tmp_path, capsys):
    assert report.main(["--output_dir", str(sweep)]) == 0
    out = capsys.readouterr().out
    for name in report.SUMMARY_FILES:
        assert "wrote %s" % (sweep / name) in out
    empty = tmp_path / "empty"
    (empty / "QNLI" / "lr_2e-5").mkdir(parents=True)
    assert report.main(["--output_dir", str(empty)]) == 0
    markdown = (empty / "summary.md").read_text()
    assert "No finished runs." in markdown and "Tasks with no finished run: QNLI." in markdown
    assert (empty / "summary.png").read_bytes().startswith(b"\x89PNG")
    assert json.loads((empty / "summary.json").read_text()) == {"settings": None, "runs": [], "best": {}}


def _settings(checkpoint_dir, epochs):
    return {"checkpoint": {"dir": checkpoint_dir, "weights_sha1": "ab12", "model": {
        "num_hidden_layers": 6, "hidden_size": 384, "num_attention_heads": 12}},
        "epochs": epochs, "batch_size": 32, "max_seq_length": 128, "extra_flags": []}


def test_settings_trees_get_a_table_each_under_their_settings(tmp_path, capsys):
    """Runs of two sweeps with other settings: each tree is summarised on its own, and the top-level
    summary.md shows both tables, each under the checkpoint and settings that made it."""
    out = tmp_path / "out"
    for tree, epochs, f1 in (("minilm-3ep", 3.0, 0.80), ("minilm-5ep", 5.0, 0.90)):
        _write_run(out / tree, "MRPC/lr_2e-5", dict(eval_accuracy=0.7, eval_f1=f1, train_time=10.0))
        (out / tree / "settings.json").write_text(json.dumps(_settings("/models/minilm", epochs)))
    (out / "feature_cache").mkdir()  # no settings.json: not a tree
    assert report.main(["--output_dir", str(out)]) == 0
    for tree, epochs, cell in (("minilm-3ep", "3.0", "80.0"), ("minilm-5ep", "5.0", "90.0")):
        tree_md = (out / tree / "summary.md").read_text()
        caption = ("Settings: checkpoint /models/minilm (L=6 H=384 A=12), pre-trained weights; %s epochs, batch 32, "
                   "max_seq_length 128; extra flags: none." % epochs)
        assert caption in tree_md and _table(tree_md)["2e-5"]["MRPC (F1)"] == cell
        assert json.loads((out / tree / "summary.json").read_text())["settings"]["epochs"] == float(epochs)
    index = (out / "summary.md").read_text()
    sections = index.split("\n## ")[1:]
    assert [s.splitlines()[0] for s in sections] == ["minilm-3ep", "minilm-5ep"]
    assert "3.0 epochs" in sections[0] and "| 2e-5 | 80.0 |" in sections[0] and "90.0" not in sections[0]
    assert "5.0 epochs" in sections[1] and "| 2e-5 | 90.0 |" in sections[1] and "80.0" not in sections[1]


def test_damaged_results_file_is_unfinished(tmp_path):
    (tmp_path / "SST-2" / "lr_1e-4").mkdir(parents=True)
    (tmp_path / "SST-2" / "lr_1e-4" / "eval_results.txt").write_text("eval_accuracy = 0.9\ngarbage\n")
    _write_run(tmp_path, "SST-2/lr_5e-5", dict(eval_accuracy=0.9))
    finished, unfinished = runs.collect_runs(str(tmp_path))
    assert [r.run_dir for r in finished] == ["SST-2/lr_5e-5"]
    assert unfinished[0].run_dir == "SST-2/lr_1e-4" and "line 2" in unfinished[0].reason


@pytest.mark.parametrize("values, cell", [
    ([], "-"), ([0.8413], "84.1"), ([0.9, 0.8, 0.85], "85.0 (80.0-90.0, n=3)"), ([-0.05], "-5.0"),
])
def test_format_cell(values, cell):
    assert report.format_cell(values) == cell


@pytest.mark.parametrize("seconds, text", [(0, "0s"), (59.6, "1m00s"), (692, "11m32s"), (3600, "1h00m00s")])
def test_format_duration(seconds, text):
    assert formatting.format_duration(seconds) == text


def test_the_report_and_the_sweep_never_load_tensorflow(sweep):
    """The sweep's terminal shows our lines only: TensorFlow (and its deprecation warnings) stays out of the sweep
    process and of its report step, which read and write local files."""
    code = ("import sys; from bert.sweeps import report, sweep; assert report.main(['--output_dir', %r]) == 0; "
            "assert 'tensorflow' not in sys.modules, 'tensorflow imported'" % str(sweep))
    done = subprocess.run([sys.executable, "-c", code], cwd=str(REPO_ROOT), stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, universal_newlines=True, timeout=300)
    assert done.returncode == 0, done.stdout
    assert [line for line in done.stdout.splitlines() if not line.startswith("wrote ")] == []
