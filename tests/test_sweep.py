"""The sweep behind run_all.sh, on real GLUE data with a tiny model: runs, interruption, resumption, and one
tree of runs per settings."""
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time

import pytest

from bert.sweeps.sweep import last_error
from conftest import REPO_ROOT, TINY_BERT_CONFIG



@pytest.fixture
def sweep_env(tmp_path, glue_dir, vocab_file):
    bert_dir = tmp_path / "tiny_bert"  # no checkpoint: the sweep then trains from scratch
    bert_dir.mkdir()
    (bert_dir / "bert_config.json").write_text(json.dumps(TINY_BERT_CONFIG))
    shutil.copy(vocab_file, str(bert_dir / "vocab.txt"))
    env = dict(os.environ, TASKS="RTE QQP WNLI", LRS="5e-5 2e-5", EPOCHS="1", BATCH_SIZE="16",
               MAX_SEQ_LENGTH="32", BERT_DIR=str(bert_dir), GLUE_DIR=str(glue_dir),
               OUTPUT_DIR=str(tmp_path / "out"),
               EXTRA_FLAGS="--save_checkpoints_steps=20 --eval_batch_size=64 --predict_batch_size=256")
    env.pop("SEEDS", None)
    return env


def start_sweep(env):
    return subprocess.Popen([sys.executable, "-m", "bert.sweeps.sweep"], cwd=str(REPO_ROOT), env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True)


def only_tree(out):
    """The one settings tree a sweep made in OUTPUT_DIR (beside feature_cache/)."""
    trees = [path for path in out.iterdir() if (path / "settings.json").exists()]
    assert len(trees) == 1, trees
    return trees[0]


def latest_checkpoint_step(run_dir) -> int:
    """The step a restart resumes from: the `checkpoint` state file names a checkpoint only once its
    variables are saved, so an .index file alone may belong to a save that was cut short."""
    state = run_dir / "checkpoint"
    found = re.search(r'^model_checkpoint_path: "model\.ckpt-(\d+)"', state.read_text(), re.M) if state.exists() else None
    return int(found.group(1)) if found else -1


def test_interrupted_sweep_resumes_without_losing_or_redoing_work(sweep_env, tmp_path):
    out = tmp_path / "out"
    sweep = start_sweep(sweep_env)
    deadline = time.time() + 300
    while not list(out.glob("*/RTE/lr_5e-5/eval_results.txt")):
        assert sweep.poll() is None, sweep.stdout.read()
        assert time.time() < deadline, "the sweep did not finish its first run"
        time.sleep(0.2)
    tree = only_tree(out)
    first, second = tree / "RTE" / "lr_5e-5", tree / "RTE" / "lr_2e-5"
    while latest_checkpoint_step(second) <= 0:
        assert sweep.poll() is None, sweep.stdout.read()
        assert time.time() < deadline, "the sweep did not reach the second run's first checkpoint"
        time.sleep(0.2)
    sweep.send_signal(signal.SIGTERM)  # as a shutdown or `kill` would
    log = sweep.communicate(timeout=120)[0]
    assert sweep.returncode == 143, log
    assert "QQP: no training data" in log and "run the same command again to resume" in log
    assert not (second / "eval_results.txt").exists()
    interrupted_at = latest_checkpoint_step(second)
    assert 0 < interrupted_at < int(2490 / 16)
    finished_before = (first / "eval_results.txt").read_text()

    resumed = start_sweep(sweep_env)
    log = resumed.communicate(timeout=600)[0]
    assert resumed.returncode == 0, log
    assert "4 runs planned, 1 done before, 3 to do" in log
    assert (first / "eval_results.txt").read_text() == finished_before
    assert "Restoring parameters from %s" % (second / ("model.ckpt-%d" % interrupted_at)) in (second / "log.txt").read_text()
    assert "global_step = %d" % int(2490 / 16) in (second / "eval_results.txt").read_text()
    for task, rows in (("RTE", 3000), ("WNLI", 146)):
        for run_dir in (tree / task).iterdir():
            assert (run_dir / "eval_results.txt").exists()
            assert len((run_dir / "test_results.tsv").read_text().splitlines()) == rows
    assert not [p for p in out.rglob("*") if ".tmp" in p.name]
    summary = (tree / "summary.md").read_text()

    again = start_sweep(sweep_env)
    log = again.communicate(timeout=300)[0]
    assert again.returncode == 0, log
    assert "4 runs planned, 4 done before, 0 to do" in log and "started" not in log
    assert (tree / "summary.md").read_text() == summary
    for name in ("summary.csv", "summary.json", "summary.png", "glue_submission.zip"):
        assert (tree / name).exists(), name
    assert summary.split("\n\n", 2)[1] in (out / "summary.md").read_text()  # the settings line, in the index


@pytest.mark.one_stack("tf2")  # the sweep's bookkeeping around its runs
def test_failed_run_is_reported_and_the_sweep_goes_on(sweep_env, tmp_path):
    env = dict(sweep_env, TASKS="WNLI", LRS="5e-5 not-a-number", EPOCHS="0.2")
    sweep = start_sweep(env)
    log = sweep.communicate(timeout=300)[0]
    assert sweep.returncode == 1, log
    assert "WNLI lr=not-a-number: FAILED" in log and "1 run(s) failed: WNLI lr=not-a-number" in log
    assert (only_tree(tmp_path / "out") / "WNLI" / "lr_5e-5" / "eval_results.txt").exists()


@pytest.mark.one_stack("tf2")  # the sweep's bookkeeping around its runs
def test_the_last_error_line_of_a_log_is_reported(tmp_path):
    """run_classifier's one-line error, or absl's for an unknown flag (a flag the checkout does not have yet)."""
    log = tmp_path / "log.txt"
    log.write_text("INFO:tensorflow:TensorFlow 2.15.1\nerror: RTE dev file not found: x (--verbose shows where)\n")
    assert last_error(str(log)) == "error: RTE dev file not found: x (--verbose shows where)"
    log.write_text("FATAL Flags parsing error: Unknown command line flag 'group_lasso'\n"
                   "Pass --helpshort or --helpfull to see help on flags.\n")
    assert last_error(str(log)) == "FATAL Flags parsing error: Unknown command line flag 'group_lasso'"


def run_sweep(env):
    done = subprocess.run([sys.executable, "-m", "bert.sweeps.sweep"], cwd=str(REPO_ROOT), env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, universal_newlines=True, timeout=600)
    assert done.returncode == 0, done.stdout
    return done.stdout


@pytest.mark.one_stack("tf2")  # the sweep's bookkeeping around its runs
def test_other_settings_train_their_own_runs_and_each_table_says_which(sweep_env, tmp_path):
    """EPOCHS, then the checkpoint's config, changed between sweeps: each setting trains its own runs in its own
    tree; no run of one is reported as the other's, and the summary titles each table with its settings."""
    out = tmp_path / "out"
    env = dict(sweep_env, TASKS="WNLI", LRS="5e-5", EPOCHS="0.5")
    assert "1 run planned, 0 done before, 1 to do" in run_sweep(env)
    assert "1 run planned, 1 done before, 0 to do" in run_sweep(env)
    log = run_sweep(dict(env, EPOCHS="1"))
    assert "1 run planned, 0 done before, 1 to do" in log
    config = json.loads((tmp_path / "tiny_bert" / "bert_config.json").read_text())
    (tmp_path / "tiny_bert" / "bert_config.json").write_text(json.dumps(dict(config, intermediate_size=48)))
    assert "1 run planned, 0 done before, 1 to do" in run_sweep(dict(env, EPOCHS="1"))
    trees = sorted(path for path in out.iterdir() if (path / "settings.json").exists())
    assert len(trees) == 3
    steps = {}
    for tree in trees:
        settings = json.loads((tree / "settings.json").read_text())
        results = (tree / "WNLI" / "lr_5e-5" / "eval_results.txt").read_text()
        steps[(settings["epochs"], settings["checkpoint"]["model"]["intermediate_size"])] = int(
            re.search(r"global_step = (\d+)", results).group(1))
        assert tree.name.startswith("tiny_bert_ep%g_bs16_len32_" % settings["epochs"])
    assert steps == {(0.5, 64): 19, (1.0, 64): 39, (1.0, 48): 39}
    index = (out / "summary.md").read_text()
    assert [section.splitlines()[0] for section in index.split("\n## ")[1:]] == [tree.name for tree in trees]
    for tree in trees:
        section = index.split("\n## " + tree.name + "\n")[1].split("\n## ")[0]
        settings = json.loads((tree / "settings.json").read_text())
        assert ("Settings: checkpoint %s (L=2 H=32 A=4), no weights: trained from scratch; %s epochs, batch 16, "
                "max_seq_length 32; extra flags: %s." % (tmp_path / "tiny_bert", settings["epochs"],
                                                         sweep_env["EXTRA_FLAGS"])) in section


@pytest.mark.one_stack("tf2")  # the sweep's bookkeeping around its runs
def test_a_sweep_whose_output_is_not_a_terminal_prints_the_runs_progress(sweep_env):
    """Plain progress lines in a pipe: at every poll with PROGRESS_EVERY=0, of a fine-tune that logs its progress
    at every step (a run this short otherwise logs only its last, a moment before it evaluates)."""
    env = dict(sweep_env, TASKS="MRPC", LRS="5e-5", EPOCHS="0.3", PROGRESS_EVERY="0",
               EXTRA_FLAGS=sweep_env["EXTRA_FLAGS"] + " --progress_seconds=0")
    log = run_sweep(env)
    assert re.search(r"^\[sweep\] \(1/1\) MRPC lr=5e-5: step \d+/68 \(\d+%\), [\d.]+ examples/s, \w+ left in this run; "
                     r"sweep about \w+ left$", log, re.M), log
    assert "\r" not in log and "\x1b" not in log


def start_run_all(env, *prefix):
    """`bash run_all.sh` as a user starts it, in a session (process group) of its own, as a terminal would."""
    return subprocess.Popen(list(prefix) + ["bash", "run_all.sh"], cwd=str(REPO_ROOT), env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, universal_newlines=True, start_new_session=True)


@pytest.mark.parametrize("how, seeds", [("timeout -s INT", None), ("Ctrl-C to the process group", "7 8")])
def test_interrupting_run_all_keeps_the_running_fine_tune(sweep_env, tmp_path, how, seeds):
    """`timeout -s INT N bash run_all.sh` sends SIGINT to the sweep and then to its whole process group, as a
    terminal's Ctrl-C does: the fine-tune must stop once, with a checkpoint at the step it stopped at (a second
    SIGINT used to kill it inside the save), and the next `bash run_all.sh` resumes from that checkpoint.

    The Ctrl-C case runs with SEEDS="7 8" (README: several runs per point, in lr_<LR>_seed_<S>/): the first seed's
    run is the interrupted one, the resumed sweep finishes it and trains the second, each with its --seed, and
    the summary gives the median with the min-max over the two."""
    env = dict(sweep_env, TASKS="RTE", LRS="5e-5", EPOCHS="1", PYTHON=sys.executable)
    if seeds:
        env["SEEDS"] = seeds
    name = "lr_5e-5" + ("_seed_7" if seeds else "")
    out = tmp_path / "out"
    if how.startswith("timeout"):
        sweep = start_run_all(env, "timeout", "-s", "INT", "600")
    else:
        sweep = start_run_all(env)
    deadline = time.time() + 300
    while not list(out.glob("*/RTE/%s/checkpoint" % name)) or latest_checkpoint_step(
            only_tree(out) / "RTE" / name) < 20:
        assert sweep.poll() is None, sweep.stdout.read()
        assert time.time() < deadline, "no checkpoint of step 20 after 300 s"
        time.sleep(0.05)
    if how.startswith("timeout"):
        sweep.send_signal(signal.SIGALRM)  # timeout's own timer going off: it signals the sweep, then the group
    else:
        os.killpg(sweep.pid, signal.SIGINT)
    log = sweep.communicate(timeout=120)[0]
    assert sweep.returncode == (124 if how.startswith("timeout") else 130), log
    run_dir = only_tree(out) / "RTE" / name
    run_log = (run_dir / "log.txt").read_text()
    stopped = re.search(r"^interrupted: stopped by SIGINT at step (\d+) of 155, with a checkpoint", run_log, re.M)
    assert stopped and "Traceback" not in run_log, run_log[-3000:]
    assert latest_checkpoint_step(run_dir) == int(stopped.group(1)) >= 20
    assert "interrupted during RTE lr=5e-5%s: run the same command again to resume" % (
        " seed=7" if seeds else "") in log
    assert not (run_dir / "eval_results.txt").exists()

    resumed = start_run_all(env)
    log = resumed.communicate(timeout=600)[0]
    assert resumed.returncode == 0, log
    assert "Restoring parameters from %s" % (run_dir / ("model.ckpt-%s" % stopped.group(1))) in (
        run_dir / "log.txt").read_text().split("=====")[-1]
    assert "global_step = 155" in (run_dir / "eval_results.txt").read_text()
    if seeds:
        tree = only_tree(out)
        assert sorted(p.name for p in (tree / "RTE").iterdir()) == ["lr_5e-5_seed_7", "lr_5e-5_seed_8"]
        accuracies, losses = [], []
        for seed in (7, 8):
            seed_dir = tree / "RTE" / ("lr_5e-5_seed_%d" % seed)
            assert json.loads((seed_dir / "run_info.json").read_text())["settings"]["seed"] == seed
            results = dict(line.split(" = ") for line in (seed_dir / "eval_results.txt").read_text().splitlines())
            assert results["global_step"] == "155"
            accuracies.append(float(results["eval_accuracy"]))
            losses.append(results["eval_loss"])
        assert losses[0] != losses[1]  # another seed, another model
        low, high = sorted(accuracies)
        row = [line for line in (tree / "summary.md").read_text().splitlines() if line.startswith("| 5e-5 |")]
        assert row == ["| 5e-5 | %.1f (%.1f-%.1f, n=2) |" % (50 * (low + high), 100 * low, 100 * high)], row
