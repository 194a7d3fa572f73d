"""Broken inputs end in one clear `error:` line and exit status 1, never a traceback (unless --verbose).

Most cases run run_classifier's main in this process, as `python -m bert.run_classifier` runs it after parsing
its flags (a refusal needs no TensorFlow process of its own); the traceback and log cases start one.
"""
import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO_ROOT, TINY_BERT_CONFIG, signal_when_ready, tiny_run_flags
from conftest import run_in_process as run



@pytest.fixture
def setup(tmp_path, glue_dir, vocab_file):
    return tiny_run_flags(tmp_path, glue_dir, vocab_file, "RTE", do_eval="true", max_seq_length="32",
                          eval_batch_size="64")


def run_process(flags, *extra):
    """The exit code and stderr, log included, of `python -m bert.run_classifier` with these flags."""
    command = [sys.executable, "-m", "bert.run_classifier"] + ["%s=%s" % item for item in flags.items()] + list(extra)
    done = subprocess.run(command, cwd=str(REPO_ROOT), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          universal_newlines=True, timeout=600)
    return done.returncode, done.stderr


def assert_clear_error(flags, expected, *extra, runner=run):
    code, stderr = runner(flags, *extra)
    last = stderr.strip().splitlines()[-1]
    assert code == 1 and "Traceback" not in stderr, stderr[-2000:]
    assert last.startswith("error: ") and expected in last, last
    return last


def test_unknown_task_lists_the_known_ones(setup):
    assert_clear_error(dict(setup, **{"--task_name": "MRCP"}), "known tasks: CoLA, SST-2, MRPC")


def test_missing_split_file_names_the_path(setup, tmp_path):
    assert_clear_error(dict(setup, **{"--data_dir": str(tmp_path / "nowhere")}), "RTE dev file not found: %s"
                       % (tmp_path / "nowhere" / "dev.tsv"))


def test_bytes_that_are_not_utf8_name_file_and_line(setup, tmp_path, glue_dir):
    data = tmp_path / "RTE"
    data.mkdir()
    lines = (glue_dir / "RTE" / "dev.tsv").read_bytes().split(b"\n")
    lines[3] = lines[3].replace(b" ", b" \xff ", 1)
    (data / "dev.tsv").write_bytes(b"\n".join(lines))
    assert_clear_error(dict(setup, **{"--data_dir": str(data)}), "%s line 4: not UTF-8" % (data / "dev.tsv"))


@pytest.mark.parametrize("change,expected", [({"vocab_size": None}, "lacks vocab_size"),
                                             ({"hidden_size": "32"}, "hidden_size must be a positive integer"),
                                             ({"hidden_act": "swish"}, "unknown hidden_act 'swish'")])
def test_bad_bert_config(setup, tmp_path, change, expected):
    config = {k: v for k, v in dict(TINY_BERT_CONFIG, **change).items() if v is not None}
    (tmp_path / "bad.json").write_text(json.dumps(config))
    assert_clear_error(dict(setup, **{"--bert_config_file": str(tmp_path / "bad.json")}), expected)


def test_vocab_of_another_model(setup, tmp_path):
    (tmp_path / "small.json").write_text(json.dumps(dict(TINY_BERT_CONFIG, vocab_size=30000)))
    assert_clear_error(dict(setup, **{"--bert_config_file": str(tmp_path / "small.json")}),
                       "has 30522 tokens but %s says vocab_size=30000" % (tmp_path / "small.json"))


def test_sequence_longer_than_the_position_table(setup):
    assert_clear_error(dict(setup, **{"--max_seq_length": "128"}), "exceeds the model's max_position_embeddings=64")


def test_sequence_too_short_for_the_markers(setup):
    assert_clear_error(dict(setup, **{"--max_seq_length": "2"}), "--max_seq_length=2 leaves no room")


def test_distribution_strategy_on_tpu_is_refused(setup):
    assert_clear_error(dict(setup, **{"--use_tpu": "true", "--distribution_strategy": "mirrored"}),
                       "--distribution_strategy is for GPUs and CPUs")


def test_distribution_strategy_with_accumulation_is_refused(setup):
    assert_clear_error(dict(setup, **{"--do_train": "true", "--distribution_strategy": "mirrored",
                                      "--gradient_accumulation_steps": "2"}),
                       "--gradient_accumulation_steps and --use_fp16 do not work with --distribution_strategy")


@pytest.mark.parametrize("name,lower", [("cased_L-12_H-768_A-12", "true"), ("uncased_L-12_H-768_A-12", "false"),
                                        ("multi_cased_L-12_H-768_A-12", "true")])
def test_casing_must_match_googles_checkpoint_name(setup, tmp_path, name, lower):
    checkpoint = str(tmp_path / name / "bert_model.ckpt")
    assert_clear_error(dict(setup, **{"--init_checkpoint": checkpoint, "--do_lower_case": lower}),
                       "use --do_lower_case=%s" % ("false" if lower == "true" else "true").capitalize())


def test_missing_checkpoint(setup, tmp_path):
    assert_clear_error(dict(setup, **{"--init_checkpoint": str(tmp_path / "none" / "bert_model.ckpt")}),
                       "--init_checkpoint %s not found" % (tmp_path / "none" / "bert_model.ckpt"))


def test_truncated_checkpoint(setup, tmp_path, bert_dir):
    broken = tmp_path / "broken"
    broken.mkdir()
    for name in ("bert_model.ckpt.index", "bert_model.ckpt.data-00000-of-00001"):
        data = (bert_dir / name).read_bytes()
        (broken / name).write_bytes(data[:len(data) // 2] if name.endswith("00001") else data)
    flags = dict(setup, **{"--init_checkpoint": str(broken / "bert_model.ckpt"),
                           "--bert_config_file": str(bert_dir / "bert_config.json")})
    assert_clear_error(flags, "--init_checkpoint %s cannot be read" % (broken / "bert_model.ckpt"))


def test_too_few_examples_for_one_batch(setup, glue_dir):
    assert_clear_error(dict(setup, **{"--task_name": "WNLI", "--data_dir": str(glue_dir / "WNLI"),
                                      "--do_train": "true", "--num_train_epochs": "0.01"}), "nothing to train")


def test_nothing_to_do(setup):
    assert_clear_error(dict(setup, **{"--do_eval": "false"}), "at least one of --do_train, --do_eval or --do_predict")


def test_output_dir_of_another_task_is_refused(setup, glue_dir):
    wnli = dict(setup, **{"--task_name": "WNLI", "--data_dir": str(glue_dir / "WNLI"), "--do_train": "true",
                          "--num_train_epochs": "0.2"})
    code, stderr = run(wnli)
    assert code == 0, stderr[-2000:]
    assert_clear_error(setup, "holds a WNLI model, not RTE")


def test_only_user_errors_lose_their_traceback():
    """A ValueError from a bug of ours is not the user's to fix: it keeps its traceback (clear_message None)."""
    from bert.errors import UserError
    from bert.run_classifier import clear_message
    assert clear_message(UserError("RTE dev file not found: x\nmore")) == "RTE dev file not found: x"
    assert clear_message(ValueError("operands could not be broadcast together")) is None
    assert clear_message(KeyError("input_ids")) is None


def test_verbose_shows_the_traceback(setup):
    """The same UserError as without --verbose, raised with its traceback instead of the one-line `error:`."""
    code, stderr = run_process(dict(setup, **{"--task_name": "MRCP"}), "--verbose")
    lines = stderr.strip().splitlines()
    assert code == 1 and "Traceback (most recent call last):" in stderr, stderr[-2000:]
    assert lines[-1].startswith("bert.errors.UserError: Unknown GLUE task 'MRCP'; known tasks: CoLA, SST-2, MRPC"), lines[-1]
    assert not [line for line in lines if line.startswith("error: ")]


def test_batch_size_not_divisible_by_the_accumulation_steps(setup):
    assert_clear_error(dict(setup, **{"--do_train": "true", "--train_batch_size": "16",
                                      "--gradient_accumulation_steps": "3"}),
                       "--train_batch_size=16 must be a multiple of --gradient_accumulation_steps=3")


def test_diverging_loss_names_step_and_learning_rate(setup):
    code, stderr = run(dict(setup, **{"--do_train": "true", "--num_train_epochs": "0.5", "--learning_rate": "1e30"}))
    assert code == 1 and "Traceback" not in stderr, stderr[-2000:]
    assert re.match(r"error: the training loss became (nan|inf) at step \d+ of 38 \(learning rate \d.*e\+\d+\): "
                    r"try a lower --learning_rate \(now 1e\+30\)", stderr.strip().splitlines()[-1]), stderr[-500:]


@pytest.fixture
def qqp_setup(setup, fixtures_dir):
    """QQP's fixture: train.tsv has two rows with too few columns (lines 4, 5) and an empty sentence (line 7)."""
    return dict(setup, **{"--task_name": "QQP", "--data_dir": str(fixtures_dir / "QQP"), "--do_train": "true",
                          "--train_batch_size": "2", "--num_train_epochs": "1"})


def test_bad_rows_are_counted_in_data_stats(qqp_setup, tmp_path):
    code, stderr = run_process(qqp_setup)
    assert code == 0, stderr[-2000:]
    assert "QQP train: skipped 2 row(s) with fewer than 6 columns" in stderr
    stats = json.loads((tmp_path / "out" / "data_stats.json").read_text())
    assert stats["QQP train"]["skipped_rows"] == {"fewer than 6 columns": 2}
    assert stats["QQP train"]["kept_with_warning"] == {"an empty sentence": 1}
    assert stats["QQP train"]["examples"] == 5 and stats["QQP dev"]["examples"] == 3
    assert (tmp_path / "out" / "eval_results.txt").exists()


def test_strict_data_stops_at_the_first_bad_row(qqp_setup, fixtures_dir):
    assert_clear_error(qqp_setup, "%s line 4: fewer than 6 columns" % (fixtures_dir / "QQP" / "train.tsv"),
                       "--strict_data")


@pytest.fixture
def small_disk(tmp_path):
    """A 6 MB tmpfs: too small for a tiny model's checkpoint with its Adam slots (needs root to mount)."""
    mount_point = tmp_path / "disk"
    mount_point.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=6m", "tmpfs", str(mount_point)],
                      stderr=subprocess.DEVNULL, timeout=60).returncode != 0:
        pytest.skip("cannot mount a small tmpfs here (needs root)")
    yield mount_point
    subprocess.run(["umount", str(mount_point)], check=True, timeout=60)


def test_full_disk_fails_cleanly_and_the_run_resumes_once_there_is_space(setup, small_disk, glue_dir):
    flags = dict(setup, **{"--task_name": "WNLI", "--data_dir": str(glue_dir / "WNLI"), "--do_train": "true",
                           "--num_train_epochs": "1", "--output_dir": str(small_disk / "out")})
    # In processes of their own: this one would keep files on the small disk open (TensorBoard's writers).
    assert "No space left on device" in assert_clear_error(flags, "error: the disk is full (", runner=run_process)
    assert not (small_disk / "out" / "eval_results.txt").exists()
    subprocess.run(["mount", "-o", "remount,size=64m", str(small_disk)], check=True, timeout=60)
    code, stderr = run_process(flags)
    assert code == 0, stderr[-2000:]
    assert "global_step = 19" in (small_disk / "out" / "eval_results.txt").read_text()


def workers_are_busy(process) -> bool:
    """Whether a child of `process` (a tokenizing worker) has worked 0.2 s of CPU time: well inside its work."""
    try:
        children = Path("/proc/%d/task/%d/children" % (process.pid, process.pid)).read_text().split()
        ticks = [int(Path("/proc/%s/stat" % child).read_text().rsplit(")", 1)[1].split()[11]) for child in children]
    except OSError:  # one has ended
        return False
    return any(tick / os.sysconf("SC_CLK_TCK") >= 0.2 for tick in ticks)


@pytest.mark.parametrize("phase, task, flag, marker, in_workers, unwritten", [
    # tokenizing SST-2's 67k training sentences (2 s on this machine, in worker processes) follows this line. The
    # signal goes while the workers work: a multiprocessing.Pool ended then could hang the run (Pool.terminate
    # waited for its task thread, blocked on a lock or a full pipe)
    ("preparing the run", "SST-2", "--do_train", "***** Training: 67349 examples", True, "train_loss.tsv"),
    # then QNLI's 5463 dev pairs are tokenized (in this process), the graph built and the pairs evaluated
    ("evaluating", "QNLI", "--do_eval", "***** Eval on dev: 5463 examples", False, "eval_results.txt"),
    ("predicting", "QNLI", "--do_predict", "***** Predict QNLI test: 5463 examples", False, "test_results.tsv")],
    ids=["tokenizing", "evaluating", "predicting"])
def test_a_signal_outside_training_ends_the_run_where_it_is(setup, tmp_path, glue_dir, phase, task, flag, marker,
                                                            in_workers, unwritten):
    """SIGINT while tokenizing, evaluating or predicting: `interrupted: stopped by SIGINT while <phase>: run the same
    command again to continue` (README), exit status 130, no traceback, and no result or half-written file. The
    signal goes once the log shows the phase's first line (and the workers work, if `in_workers`), with seconds of work
    still ahead of the run."""
    flags = dict(setup, **{"--task_name": task, "--data_dir": str(glue_dir / task), "--do_eval": "false",
                           flag: "true", "--feature_cache_dir": str(tmp_path / "cache"), "--max_seq_length": "64"})
    log_path = tmp_path / "log.txt"
    command = [sys.executable, "-m", "bert.run_classifier"] + ["%s=%s" % item for item in flags.items()]
    code, text = signal_when_ready(command, log_path, lambda process: marker in log_path.read_text() and (
        not in_workers or workers_are_busy(process)))
    assert code == 128 + signal.SIGINT and "Traceback" not in text, (code, text[-3000:])
    assert text.strip().splitlines()[-1] == ("interrupted: stopped by SIGINT while %s: run the same command again to "
                                             "continue" % phase), text[-3000:]
    out = tmp_path / "out"
    assert not (out / unwritten).exists()
    assert not [p.name for p in tmp_path.rglob("*") if ".tmp" in p.name], text[-3000:]
