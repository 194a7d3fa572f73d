"""The sweeps' settings: their defaults (bert/sweeps/defaults.py) as the scripts and docs/sweeps.md document them, and
what EXTRA_FLAGS do to them (bert/sweeps/extra_flags.py): the flags that set the epochs, batch size and
max_seq_length name the tree the runs train in, the flags the sweep sets per run are refused."""
import json
import os
import re
import shlex
import subprocess
import sys

import pytest

from bert.errors import UserError
from bert.sweeps import defaults, extra_flags, pruning_sweep, runs, sweep
from conftest import REPO_ROOT

pytestmark = pytest.mark.one_stack("tf2")  # the sweeps' settings: Python around the runs
from test_pruning_sweep import pipeline_env, tiny_bert, write_dense_tree  # noqa: F401 (tiny_bert: a fixture)
from test_sweep import only_tree, run_sweep, sweep_env  # noqa: F401 (sweep_env: a fixture)


def documented(script):
    """{NAME: value} of the `NAME=value` and `NAME="value"` in the script's header comment."""
    header = [line for line in (REPO_ROOT / script).read_text().splitlines() if line.startswith("#")]
    found = (match for line in header for match in re.finditer(r'\b([A-Z_]+)=(?:"([^"]*)"|(\S*))', line))
    return {match.group(1): match.group(2) if match.group(2) is not None else match.group(3) for match in found}


def test_the_scripts_document_the_defaults_the_sweeps_use():
    run_all = documented("run_all.sh")
    assert {name: run_all[name] for name, value in defaults.RUN_ALL.items() if value} == \
        {name: value for name, value in defaults.RUN_ALL.items() if value}
    run_pruning = documented("run_pruning.sh")
    own = {name: value for name, value in defaults.RUN_PRUNING.items()
           if value and defaults.RUN_ALL.get(name) != value}  # the rest: "as for run_all.sh"
    assert {name: run_pruning[name] for name in own} == own
    assert all(run_pruning[name] == value for name, value in defaults.RUN_PRUNING.items()
               if value and name in run_pruning)


def test_the_sweeps_page_documents_run_all_s_defaults():
    readme = (REPO_ROOT / "docs" / "sweeps.md").read_text()
    rows = {}
    for line in readme.splitlines():
        found = re.match(r"^\| (`[A-Z_]+`(?:, `[A-Z_]+`)*) \| ([^|]*) \|", line)
        if found:
            names = re.findall(r"`([A-Z_]+)`", found.group(1))
            values = re.findall(r"`([^`]*)`", found.group(2))
            if len(values) == len(names):
                rows.update(zip(names, values))
    assert {name: rows[name] for name, value in defaults.RUN_ALL.items() if value} == \
        {name: value for name, value in defaults.RUN_ALL.items() if value}



# --- EXTRA_FLAGS ---

def overrides(text):
    return extra_flags.overrides(shlex.split(text))


def test_extra_flags_are_read_as_absl_reads_them():
    assert overrides("--num_train_epochs=0.3 --max_seq_length=64") == (
        {"EPOCHS": "0.3", "MAX_SEQ_LENGTH": "64"}, [])
    # the value as the next word; a boolean flag (--use_xla, --nouse_fp16) takes none, other flags do
    assert overrides("--use_xla --num_train_epochs 0.3 --nouse_fp16 --train_batch_size 16 --pruning_block 8x8 "
                     "-max_seq_length=64") == (
        {"EPOCHS": "0.3", "BATCH_SIZE": "16", "MAX_SEQ_LENGTH": "64"},
        ["--use_xla", "--nouse_fp16", "--pruning_block", "8x8"])
    assert overrides("--num_train_epochs=1 --save_checkpoints_steps=5 --num_train_epochs=2") == (
        {"EPOCHS": "2"}, ["--save_checkpoints_steps=5"])  # the last one wins, and none is left behind
    assert overrides("--train_batch_size=0x10") == ({"BATCH_SIZE": "16"}, [])  # absl's integers
    assert overrides("--eval_batch_size=64 stray -- --num_train_epochs=1") == (
        {}, ["--eval_batch_size=64", "stray", "--", "--num_train_epochs=1"])  # `--` ends absl's flags
    # a value that is a flag's spelling belongs to the flag before it
    assert overrides("--pruning_block --max_seq_length=64") == ({}, ["--pruning_block", "--max_seq_length=64"])
    for text, message in (("--num_train_epochs=few", "--num_train_epochs=few is not a number"),
                          ("--max_seq_length 6.4", "--max_seq_length 6.4 is not a whole number"),
                          ("--use_xla --max_seq_length", "--max_seq_length has no value")):
        with pytest.raises(UserError, match="^EXTRA_FLAGS: " + re.escape(message)):
            overrides(text)


def test_a_flagfile_s_flags_count_and_the_flagfile_stays(tmp_path):
    flagfile = tmp_path / "flags.txt"
    flagfile.write_text("--num_train_epochs=0.5\n--use_xla\n")
    assert overrides("--num_train_epochs=1 --flagfile=%s" % flagfile) == ({"EPOCHS": "0.5"}, ["--flagfile=%s" % flagfile])
    flagfile.write_text("--learning_rate=1e-3\n")
    with pytest.raises(UserError, match=r"^EXTRA_FLAGS: --learning_rate=1e-3: the sweep sets --learning_rate"):
        extra_flags.resolve(dict(EXTRA_FLAGS="--flagfile %s" % flagfile))
    with pytest.raises(UserError, match="^EXTRA_FLAGS: --flagfile=%s: " % re.escape(str(tmp_path / "none"))):
        overrides("--flagfile=%s" % (tmp_path / "none"))


def test_the_flags_known_without_tensorflow_are_run_classifier_s():
    """The flags and boolean flags found in the sources are exactly those of run_classifier's command line."""
    code = ("from bert import run_classifier; from absl import flags; from bert.sweeps import extra_flags; "
            "names = set(flags.FLAGS); booleans = {n for n in names if flags.FLAGS[n].boolean}; "
            "assert extra_flags.known_flags() == (names, booleans), (names ^ extra_flags.known_flags()[0], "
            "booleans ^ extra_flags.known_flags()[1]); assert 'max_seq_length' in names and 'use_xla' in booleans")
    done = subprocess.run([sys.executable, "-c", code], cwd=str(REPO_ROOT), stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, universal_newlines=True)
    assert done.returncode == 0, done.stdout[-3000:]


def test_resolving_makes_the_flags_the_settings_and_leaves_the_rest():
    env = dict(defaults.RUN_ALL, EXTRA_FLAGS="--num_train_epochs 0.3 --pruning_block='8 x8' --max_seq_length=64")
    assert extra_flags.resolve(env) == dict(env, EPOCHS="0.3", MAX_SEQ_LENGTH="64", EXTRA_FLAGS="'--pruning_block=8 x8'")
    plain = dict(defaults.RUN_ALL, EXTRA_FLAGS="--use_xla=true  --seed=7")  # no SEEDS: --seed is the runs' seed
    assert extra_flags.resolve(plain) is plain


@pytest.mark.parametrize("values, message", [
    (dict(EXTRA_FLAGS="--learning_rate=1e-5"), "--learning_rate=1e-5: the sweep sets --learning_rate for each run; "
                                               "use LRS= instead"),
    (dict(EXTRA_FLAGS="--use_xla --output_dir /tmp/x"), "--output_dir /tmp/x: the sweep sets --output_dir for each run; "
                                                        "use OUTPUT_DIR= instead"),
    (dict(EXTRA_FLAGS="-task_name=RTE"), "-task_name=RTE: the sweep sets --task_name for each run; use TASKS= instead"),
    (dict(EXTRA_FLAGS="--data_dir=x"), "--data_dir=x: the sweep sets --data_dir for each run; use GLUE_DIR= instead"),
    (dict(EXTRA_FLAGS="--init_checkpoint=x/ckpt"), "--init_checkpoint=x/ckpt: the sweep sets --init_checkpoint for "
                                                   "each run; use BERT_DIR= instead"),
    (dict(EXTRA_FLAGS="--vocab_file=x"), "--vocab_file=x: the sweep sets --vocab_file for each run; use BERT_DIR= "
                                         "instead"),
    (dict(SEEDS="1 2", EXTRA_FLAGS="--seed=3"), "--seed=3: the sweep sets --seed for each run; use SEEDS= instead")])
def test_a_flag_the_sweep_sets_per_run_is_refused_before_anything_is_written(sweep_env, tmp_path, values, message):
    with pytest.raises(UserError, match="^EXTRA_FLAGS: " + re.escape(message)):
        sweep.sweep(dict(sweep_env, **values), sweep.Stopping())
    assert not (tmp_path / "out").exists()


def test_the_pruning_sweep_refuses_them_too_with_its_own_learning_rate(tmp_path, tiny_bert, glue_dir):
    env = pipeline_env(tmp_path, tiny_bert, glue_dir, EXTRA_FLAGS="--learning_rate=1e-5")
    with pytest.raises(UserError, match=r"^EXTRA_FLAGS: --learning_rate=1e-5: .* use LR= instead"):
        pruning_sweep.pruning_sweep(env, sweep.Stopping())
    assert not (tmp_path / "fine_tune_outputs").exists()


def test_run_all_says_so_in_one_line(sweep_env, tmp_path):
    done = subprocess.run([sys.executable, "-m", "bert.sweeps.sweep"], cwd=str(REPO_ROOT),
                          env=dict(sweep_env, EXTRA_FLAGS="--learning_rate 1e-5"), stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, universal_newlines=True)
    assert done.returncode == 1
    assert done.stdout == ("error: EXTRA_FLAGS: --learning_rate 1e-5: the sweep sets --learning_rate for each run; "
                           "use LRS= instead\n")


def test_the_flags_name_the_tree_and_caption_and_the_same_settings_share_a_tree(sweep_env, tmp_path):
    """A real sweep with EXTRA_FLAGS setting the epochs (two words) and max_seq_length over EPOCHS=1 and
    MAX_SEQ_LENGTH=32: the runs train 0.2 epochs at 24 tokens, and the tree, settings.json and summary say so; a
    sweep with EPOCHS=0.2 MAX_SEQ_LENGTH=24 finds its runs done."""
    out = tmp_path / "out"
    env = dict(sweep_env, TASKS="WNLI", LRS="5e-5",
               EXTRA_FLAGS="--num_train_epochs 0.2 --max_seq_length=24 " + sweep_env["EXTRA_FLAGS"])
    assert "1 run planned, 0 done before, 1 to do" in run_sweep(env)
    tree = only_tree(out)
    assert tree.name.startswith("tiny_bert_ep0.2_bs16_len24_")
    settings = json.loads((tree / "settings.json").read_text())
    assert (settings["epochs"], settings["batch_size"], settings["max_seq_length"]) == (0.2, 16, 24)
    assert settings["extra_flags"] == shlex.split(sweep_env["EXTRA_FLAGS"])
    run_dir = tree / "WNLI" / "lr_5e-5"
    assert "global_step = %d\n" % int(635 / 16 * 0.2) in (run_dir / "eval_results.txt").read_text()
    trained = json.loads((run_dir / "run_info.json").read_text())["settings"]
    assert (trained["num_train_epochs"], trained["max_seq_length"], trained["train_batch_size"]) == (0.2, 24, 16)
    caption = ("Settings: checkpoint %s (L=2 H=32 A=4), no weights: trained from scratch; 0.2 epochs, batch 16, "
               "max_seq_length 24; extra flags: %s." % (tmp_path / "tiny_bert", sweep_env["EXTRA_FLAGS"]))
    assert caption in (tree / "summary.md").read_text() and caption in (out / "summary.md").read_text()

    log = run_sweep(dict(sweep_env, TASKS="WNLI", LRS="5e-5", EPOCHS="0.2", MAX_SEQ_LENGTH="24"))
    assert "1 run planned, 1 done before, 0 to do" in log and only_tree(out) == tree


def test_a_tree_recorded_with_the_flags_among_its_extra_flags_is_read_as_trained(tmp_path, tiny_bert, glue_dir):
    """Trees made before the flags were resolved record them among the extra flags: the pruning sweep's dense model
    is found in such a tree of the same effective settings (and in a new one), and its caption states them."""
    env = dict(defaults.RUN_PRUNING, **pipeline_env(tmp_path, tiny_bert, glue_dir, EPOCHS="0.05"))
    dense_dir = tmp_path / "fine_tune_outputs"
    same = sweep.sweep_settings(dict(env, EXTRA_FLAGS=""))
    old = dict(same, epochs=3.0, extra_flags=["--num_train_epochs", "0.05"])
    write_dense_tree(dense_dir, "old", old, {"MRPC/lr_2e-5": 0.8})
    write_dense_tree(dense_dir, "other", dict(old, extra_flags=["--num_train_epochs=1"]), {"MRPC/lr_3e-5": 0.99})
    # (the pruning sweep's other extra flags are its own: the dense run is one of no extra flags, as before)
    for epochs, extra, expected in (("3", "", {}), ("0.05", "", {"MRPC": "old/MRPC/lr_2e-5"}),
                                    ("3", "--num_train_epochs=0.05", {"MRPC": "old/MRPC/lr_2e-5"}),
                                    ("3", "--use_xla=false --num_train_epochs 0.05", {"MRPC": "old/MRPC/lr_2e-5"})):
        resolved = extra_flags.resolve(dict(env, EPOCHS=epochs, EXTRA_FLAGS=extra))
        found = {task: os.path.relpath(run.path, str(dense_dir)) for task, run in
                 pruning_sweep.dense_candidates(resolved).items()}
        assert found == expected, (epochs, extra)
    assert runs.describe_settings(old).endswith("; 0.05 epochs, batch 16, max_seq_length 32; extra flags: none")
    assert runs.describe_settings(same) == runs.describe_settings(old)

    def name(**values):
        settings = pruning_sweep.pruning_settings(extra_flags.resolve(dict(env, **values), {"learning_rate": "LR"}))
        return sweep.tree_name(settings, "lr%g_gl%g" % (settings["learning_rate"], settings["group_lasso"]))
    assert name(EPOCHS="3", EXTRA_FLAGS="--num_train_epochs=1 --train_batch_size 8") == \
        name(EPOCHS="1", BATCH_SIZE="8")
    assert name().startswith("tiny_bert_ep0.05_bs16_len32_lr2e-05_gl0_")
    assert len({name(), name(EXTRA_FLAGS="--num_train_epochs=1"), name(EXTRA_FLAGS="--max_seq_length=24"),
                name(EXTRA_FLAGS="--use_xla=true")}) == 4
