"""The sweep behind run_all.sh, on real GLUE data with a tiny model: runs, interruption, resumption."""
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time

import pytest

from conftest import REPO_ROOT, TINY_BERT_CONFIG



@pytest.fixture
def sweep_env(tmp_path, glue_dir, vocab_file):
    bert_dir = tmp_path / "tiny_bert"  # no checkpoint: the sweep then trains from scratch
    bert_dir.mkdir()
    (bert_dir / "bert_config.json").write_text(json.dumps(TINY_BERT_CONFIG))
    shutil.copy(vocab_file, str(bert_dir / "vocab.txt"))
    env = dict(os.environ, TASKS="RTE QQP WNLI", LRS="5e-5 2e-5", EPOCHS="2", BATCH_SIZE="16",
               MAX_SEQ_LENGTH="32", BERT_DIR=str(bert_dir), GLUE_DIR=str(glue_dir),
               OUTPUT_DIR=str(tmp_path / "out"),
               EXTRA_FLAGS="--save_checkpoints_steps=20 --eval_batch_size=64 --predict_batch_size=256")
    env.pop("SEEDS", None)
    return env


def start_sweep(env):
    return subprocess.Popen([sys.executable, "-m", "bert.sweep"], cwd=str(REPO_ROOT), env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True)


def latest_checkpoint_step(run_dir) -> int:
    """The step a restart resumes from: the `checkpoint` state file names a checkpoint only once its
    variables are saved, so an .index file alone may belong to a save that was cut short."""
    state = run_dir / "checkpoint"
    found = re.search(r'^model_checkpoint_path: "model\.ckpt-(\d+)"', state.read_text(), re.M) if state.exists() else None
    return int(found.group(1)) if found else -1


def test_interrupted_sweep_resumes_without_losing_or_redoing_work(sweep_env, tmp_path):
    out = tmp_path / "out"
    first, second = out / "RTE" / "lr_5e-5", out / "RTE" / "lr_2e-5"
    sweep = start_sweep(sweep_env)
    deadline = time.time() + 300
    while not ((first / "eval_results.txt").exists() and latest_checkpoint_step(second) > 0):
        assert sweep.poll() is None, sweep.stdout.read()
        assert time.time() < deadline, "the sweep did not reach the second run's first checkpoint"
        time.sleep(0.2)
    sweep.send_signal(signal.SIGTERM)  # as a shutdown or `kill` would
    log = sweep.communicate(timeout=120)[0]
    assert sweep.returncode == 130, log
    assert "QQP: no training data" in log and "run the same command again to resume" in log
    assert not (second / "eval_results.txt").exists()
    interrupted_at = latest_checkpoint_step(second)
    assert 0 < interrupted_at < int(2490 / 16 * 2)
    finished_before = (first / "eval_results.txt").read_text()

    resumed = start_sweep(sweep_env)
    log = resumed.communicate(timeout=600)[0]
    assert resumed.returncode == 0, log
    assert "4 runs planned, 1 done before, 3 to do" in log
    assert (first / "eval_results.txt").read_text() == finished_before
    assert "Restoring parameters from %s" % (second / ("model.ckpt-%d" % interrupted_at)) in (second / "log.txt").read_text()
    assert "global_step = %d" % int(2490 / 16 * 2) in (second / "eval_results.txt").read_text()
    for task, rows in (("RTE", 3000), ("WNLI", 146)):
        for run_dir in (out / task).iterdir():
            assert (run_dir / "eval_results.txt").exists()
            assert len((run_dir / "test_results.tsv").read_text().splitlines()) == rows
    assert not [p for p in out.rglob("*") if ".tmp" in p.name]
    summary = (out / "summary.md").read_text()

    again = start_sweep(sweep_env)
    log = again.communicate(timeout=300)[0]
    assert again.returncode == 0, log
    assert "4 runs planned, 4 done before, 0 to do" in log and "started" not in log
    assert (out / "summary.md").read_text() == summary
    for name in ("summary.csv", "summary.json", "summary.png", "glue_submission.zip"):
        assert (out / name).exists(), name


def test_failed_run_is_reported_and_the_sweep_goes_on(sweep_env, tmp_path):
    env = dict(sweep_env, TASKS="WNLI", LRS="5e-5 not-a-number", EPOCHS="0.2")
    sweep = start_sweep(env)
    log = sweep.communicate(timeout=300)[0]
    assert sweep.returncode == 1, log
    assert "WNLI lr=not-a-number: FAILED" in log and "1 run(s) failed: WNLI lr=not-a-number" in log
    assert (tmp_path / "out" / "WNLI" / "lr_5e-5" / "eval_results.txt").exists()
