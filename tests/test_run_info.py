"""A result belongs to the settings that made it: an --output_dir holding a model trained with other settings is
refused in one line (or cleared with --overwrite_output_dir), the same command resumes, and a resumed run reports
the training time of all its invocations. Real GLUE data (WNLI), a tiny model, run_classifier as a user runs it."""
import json
import re
import sys

import pytest

from conftest import run_command, signal_when_ready, tiny_run_flags
from bert import run_info


@pytest.fixture
def flags(tmp_path, glue_dir, vocab_file):
    return tiny_run_flags(tmp_path, glue_dir, vocab_file, "WNLI", do_train="true", do_eval="true",
                          max_seq_length="32", train_batch_size="16", eval_batch_size="64", num_train_epochs="0.5",
                          learning_rate="5e-5", save_checkpoints_steps="5")


def command(flags, *extra):
    return [sys.executable, "-m", "bert.run_classifier"] + ["%s=%s" % item for item in flags.items()] + list(extra)


def run(flags, *extra):
    return run_command(command(flags, *extra))  # (exit code, log and stderr)


def results(output_dir):
    return {key: float(value) for key, value in
            (line.split(" = ") for line in (output_dir / "eval_results.txt").read_text().splitlines())}


def test_other_settings_are_refused_the_same_resume_and_overwrite_starts_afresh(flags, tmp_path):
    out = tmp_path / "out"
    code, stderr = run(flags)
    assert code == 0, stderr[-2000:]
    first = results(out)
    assert first["global_step"] == 19
    assert first["eval_examples_per_second"] > 0  # WNLI dev: 71 examples, the 7 after the first batch of 64 timed
    recorded = json.loads((out / "run_info.json").read_text())["settings"]
    assert recorded["learning_rate"] == 5e-5 and recorded["task_name"] == "WNLI"

    code, stderr = run(dict(flags, **{"--learning_rate": "2e-5", "--seed": "3"}))
    last = stderr.strip().splitlines()[-1]
    assert code == 1 and "Traceback" not in stderr, stderr[-2000:]
    assert last == ("error: --output_dir %s holds a model trained with other settings: --learning_rate 5e-05 "
                    "(now 2e-05), --seed 42 (now 3). Run its own command to resume it, or choose another "
                    "--output_dir, or pass --overwrite_output_dir to start afresh (--verbose shows where)" % out), last
    assert results(out) == first  # nothing touched

    config = json.loads((tmp_path / "bert_config.json").read_text())
    (tmp_path / "bert_config.json").write_text(json.dumps(dict(config, hidden_dropout_prob=0.2)))
    code, stderr = run(flags)  # the same flags, but the file they name has changed
    assert code == 1 and "--bert_config_file %s (its contents changed since)" % (tmp_path / "bert_config.json") \
        in stderr, stderr[-2000:]
    (tmp_path / "bert_config.json").write_text(json.dumps(config))

    code, stderr = run(flags)  # the same command: the finished model is kept, evaluated again
    assert code == 0, stderr[-2000:]
    assert results(out)["global_step"] == 19 and results(out)["eval_accuracy"] == first["eval_accuracy"]

    (out / "notes.txt").write_text("mine")
    code, stderr = run(dict(flags, **{"--learning_rate": "2e-5"}), "--overwrite_output_dir")
    assert code == 0, stderr[-2000:]
    assert "--overwrite_output_dir: removed checkpoint, data_stats.json, eval, eval_results.txt" in stderr
    assert "Restoring parameters" not in stderr.split("***** Eval on")[0]  # trained afresh, from step 0
    assert json.loads((out / "run_info.json").read_text())["settings"]["learning_rate"] == 2e-5
    assert results(out)["global_step"] == 19 and (out / "notes.txt").read_text() == "mine"


def test_overwrite_without_training_is_refused(flags):
    code, stderr = run(dict(flags, **{"--do_train": "false"}), "--overwrite_output_dir")
    assert code == 1 and "--overwrite_output_dir deletes the model in --output_dir: it needs --do_train=true" in stderr


def test_differences_compare_files_by_contents():
    old = {"learning_rate": 5e-5, "init_checkpoint": {"path": "/a/bert_model.ckpt", "sha1": "1"}, "towers": 1}
    moved = dict(old, init_checkpoint={"path": "/b/bert_model.ckpt", "sha1": "1"})
    assert run_info.differences(old, moved) == []
    other = dict(old, init_checkpoint={"path": "/b/bert_model.ckpt", "sha1": "2"}, towers=2)
    assert run_info.differences(old, other) == ["--init_checkpoint /a/bert_model.ckpt (now /b/bert_model.ckpt)",
                                                "--towers 1 (now 2)"]
    assert run_info.differences(old, dict(old, init_checkpoint=None)) == [
        "--init_checkpoint /a/bert_model.ckpt (now none)"]


def checkpoint_step(output_dir) -> int:
    state = output_dir / "checkpoint"
    found = re.search(r'^model_checkpoint_path: "model\.ckpt-(\d+)"', state.read_text(), re.M) if state.exists() else None
    return int(found.group(1)) if found else -1


def test_signals_during_the_checkpoint_save_never_kill_the_run(flags, tmp_path):
    """SIGINT, then more of them at once (an impatient Ctrl-C, or a sweep and a terminal both forwarding one):
    the run finishes its step, saves its checkpoint and exits 130 with one line; the same command resumes it."""
    out = tmp_path / "out"
    flags = dict(flags, **{"--task_name": "RTE", "--data_dir": flags["--data_dir"].replace("WNLI", "RTE"),
                           "--num_train_epochs": "1", "--save_checkpoints_steps": "20"})
    code, log = signal_when_ready(command(flags), tmp_path / "log.txt", lambda process: checkpoint_step(out) >= 20, count=6)
    stopped = re.search(r"^interrupted: stopped by SIGINT at step (\d+) of 155, with a checkpoint: run the same "
                        r"command again to resume$", log, re.M)
    assert code == 130 and stopped and "Traceback" not in log, log[-3000:]
    assert int(stopped.group(1)) == checkpoint_step(out), log[-3000:]
    assert "SIGINT again: the run stops once the current step's checkpoint is saved" in log
    code, stderr = run(flags)
    assert code == 0, stderr[-2000:]
    assert "Restoring parameters from %s" % (out / ("model.ckpt-%s" % stopped.group(1))) in stderr
    final = results(out)
    assert final["global_step"] == 155
    # train_time covers both invocations, each up to its last checkpoint; the rate leaves out each one's first batch
    first, last = json.loads((out / "run_info.json").read_text())["invocations"]
    assert first["to_batch"] == int(stopped.group(1)) and last["to_batch"] == 155
    assert first["timed_examples"] == (int(stopped.group(1)) - 1) * 16 and last["timed_examples"] == (
        154 - int(stopped.group(1))) * 16
    assert final["train_time"] == round(first["train_time"] + last["train_time"], 2)
    assert final["train_time_last_invocation"] == last["train_time"] < final["train_time"]
    assert final["train_examples_per_second"] == round(
        (first["timed_examples"] + last["timed_examples"]) / (first["timed_seconds"] + last["timed_seconds"]), 2)
