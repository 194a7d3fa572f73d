"""run_pruning.sh's pipeline (bert/sweeps/pruning_sweep.py) and its summary (bert/sweeps/pruning_report.py): the planned runs and
their commands, each step starting from the last checkpoint of the one before; the dense model reused from a
run_all.sh tree of the same settings only, and kept once chosen; a second invocation that trains nothing; a failed
step whose dependants are skipped while the rest goes on; the summary's table, CSV and JSON from real runs; the
group-lasso step between the dense and the one-shot runs, and the structured runs distilled from the dense one with
their compact models.

The planning tests run in-process on hand-made trees; the others run the pipeline (real run_classifier
subprocesses, a tiny model with a tiny pre-trained checkpoint, real MRPC and RTE data, 0.05 epochs).
"""
import csv
import io
import json
import os
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest

from bert.sweeps import pruning_report, pruning_sweep, report, sweep
from bert.errors import UserError
from bert.sweeps.runs import read_eval_results
from conftest import REPO_ROOT, TINY_BERT_CONFIG

# The pipeline's planning and bookkeeping around its runs, tested with TF 1.15 and Python 3.7 (the stack our users
# pinned); the runs' pruning, group lasso and distillation are tested on both stacks in their own modules.
pytestmark = pytest.mark.one_stack("tf1")


def save_pretrained_checkpoint(bert_dir) -> None:
    """A tiny model's freshly initialised encoder as `bert_model.ckpt`, standing in for a pre-trained one."""
    from bert import modeling
    from bert.compat import tf
    with tf.Graph().as_default():
        modeling.BertModel(modeling.BertConfig.from_dict(TINY_BERT_CONFIG), False, tf.zeros([1, 8], tf.int32))
        with tf.Session() as session:
            session.run(tf.global_variables_initializer())
            tf.train.Saver(tf.trainable_variables()).save(session, str(bert_dir / "bert_model.ckpt"),
                                                           write_meta_graph=False)


@pytest.fixture(scope="module")
def tiny_bert(tmp_path_factory, vocab_file):
    bert_dir = tmp_path_factory.mktemp("checkpoint") / "tiny_bert"
    bert_dir.mkdir()
    (bert_dir / "bert_config.json").write_text(json.dumps(TINY_BERT_CONFIG))
    shutil.copy(vocab_file, str(bert_dir / "vocab.txt"))
    save_pretrained_checkpoint(bert_dir)
    return bert_dir


def pipeline_env(root, tiny_bert, glue_dir, **values):
    """The environment of run_pruning.sh's tests: MRPC, block pruning to 0.6, no group lasso (GROUP_LASSO=0 skips
    step 2; group_lasso_pipeline sets it), 0.05 epochs for every run, no distillation (group_lasso_pipeline keeps
    the default); DENSE_DIR is run_all.sh's OUTPUT_DIR under root."""
    env = {name: value for name, value in os.environ.items()
           if name not in pruning_sweep.DEFAULTS and name not in ("TASKS", "LRS", "SEEDS", "EXTRA_FLAGS")}
    env.update(TASKS="MRPC", GRANULARITIES="block", SPARSITIES="0.6", GROUP_LASSO="0", EPOCHS="0.05",
               PRUNE_EPOCHS="0.05", DISTILL="0", BATCH_SIZE="16", MAX_SEQ_LENGTH="32", BERT_DIR=str(tiny_bert),
               GLUE_DIR=str(glue_dir), DENSE_DIR=str(root / "fine_tune_outputs"),
               OUTPUT_DIR=str(root / "fine_tune_outputs" / "pruning"))
    env.update(values)
    return env


def relative(runs, tree):
    return [os.path.relpath(run.run_dir, str(tree)).replace(os.sep, "/") for run in runs]


def fake_checkpoint(run_dir, step: int) -> str:
    """A `checkpoint` state file naming model.ckpt-<step> and its index: what latest_checkpoint looks for."""
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "checkpoint").write_text('model_checkpoint_path: "model.ckpt-%d"\n' % step)
    (run_dir / ("model.ckpt-%d.index" % step)).write_text("")
    return str(run_dir / ("model.ckpt-%d" % step))


def init_checkpoint(args):
    found = [arg.split("=", 1)[1] for arg in args if arg.startswith("--init_checkpoint=")]
    return found[0] if found else None


# --- planning, in-process ---

def test_the_plan_chains_each_step_to_the_last_checkpoint_of_the_one_before(tmp_path, tiny_bert, glue_dir):
    """The dense run at LR for EPOCHS, every later one at PRUNE_LR for PRUNE_EPOCHS; the pruned runs distil from the
    dense model (the default), and without DISTILL they are the same runs without a teacher."""
    env = dict(pruning_sweep.DEFAULTS, **pipeline_env(tmp_path, tiny_bert, glue_dir, GRANULARITIES="weight block",
                                                       SPARSITIES="0.5 0.90", GROUP_LASSO="1e-4", REWEIGHT_STEPS="50",
                                                       PRUNE_LR="3e-5", PRUNE_EPOCHS="0.1", DISTILL="1"))
    tree = tmp_path / "tree"
    runs = pruning_sweep.plan(env, str(tree), {})
    assert [run.label for run in runs] == [
        "MRPC dense", "MRPC weight reweighted", "MRPC weight oneshot 0.5", "MRPC weight distilled 0.5",
        "MRPC weight oneshot 0.9", "MRPC weight distilled 0.9", "MRPC block reweighted", "MRPC block oneshot 0.5",
        "MRPC block distilled 0.5", "MRPC block oneshot 0.9", "MRPC block distilled 0.9"]
    assert relative(runs, tree) == [
        "MRPC/dense", "MRPC/weight/reweighted", "MRPC/weight/oneshot_0.5", "MRPC/weight/distilled_0.5",
        "MRPC/weight/oneshot_0.9", "MRPC/weight/distilled_0.9", "MRPC/block/reweighted", "MRPC/block/oneshot_0.5",
        "MRPC/block/distilled_0.5", "MRPC/block/oneshot_0.9", "MRPC/block/distilled_0.9"]
    by_dir = dict(zip(relative(runs, tree), runs))
    dense = fake_checkpoint(tree / "MRPC" / "dense", 11)
    reweighted = fake_checkpoint(tree / "MRPC" / "weight" / "reweighted", 22)
    pretrained = str(tiny_bert / "bert_model.ckpt")
    expected = {"MRPC/dense": pretrained, "MRPC/weight/reweighted": dense, "MRPC/weight/oneshot_0.5": reweighted,
                "MRPC/weight/distilled_0.5": dense, "MRPC/weight/oneshot_0.9": reweighted}
    assert {name: init_checkpoint(sweep.command(by_dir[name], env)) for name in expected} == expected
    teacher = "--distill_from=" + str(tree / "MRPC" / "dense")
    common = [sys.executable, "-m", "bert.run_classifier", "--task_name=MRPC", "--do_train=true", "--do_eval=true",
              "--data_dir=%s" % (glue_dir / "MRPC"), "--vocab_file=%s" % (tiny_bert / "vocab.txt"),
              "--bert_config_file=%s" % (tiny_bert / "bert_config.json"), "--max_seq_length=32",
              "--train_batch_size=16"]
    assert sweep.command(by_dir["MRPC/dense"], env)[:len(common) + 2] == common + [
        "--learning_rate=2e-5", "--num_train_epochs=0.05"]
    assert sweep.command(by_dir["MRPC/weight/oneshot_0.5"], env) == common + [
        "--learning_rate=3e-5", "--num_train_epochs=0.05", "--eval_batch_size=32", "--predict_batch_size=32",
        "--output_dir=%s" % (tree / "MRPC" / "weight" / "oneshot_0.5"),
        "--feature_cache_dir=%s" % (tmp_path / "fine_tune_outputs" / "pruning" / "feature_cache"),
        "--init_checkpoint=" + reweighted, "--pruning_schedule=oneshot", "--target_sparsity=0.5", teacher,
        "--num_train_epochs=0.1", "--pruning_granularity=weight"]  # the last --num_train_epochs counts
    assert by_dir["MRPC/block/reweighted"].flags == ["--group_lasso=1e-4", "--group_lasso_reweight_steps=50",
                                                     "--num_train_epochs=0.1", "--pruning_granularity=block"]
    assert by_dir["MRPC/block/distilled_0.9"].flags == ["--pruning_schedule=gradual", "--pruning_begin=0",
                                                        "--pruning_end=0.3", "--target_sparsity=0.9", teacher,
                                                        "--num_train_epochs=0.1", "--pruning_granularity=block"]
    assert {run.learning_rate for run in runs} == {"2e-5", "3e-5"} and runs[0].learning_rate == "2e-5"
    assert by_dir["MRPC/weight/oneshot_0.5"].train_examples == 2 * runs[0].train_examples  # 0.1 epochs, not 0.05
    with pytest.raises(UserError, match="reweighted holds no saved checkpoint to start from"):
        sweep.command(by_dir["MRPC/block/oneshot_0.5"], env)  # its reweighted run has not saved one

    without_lasso = pruning_sweep.plan(dict(env, GROUP_LASSO="0", DISTILL="0"), str(tree), {})
    assert relative(without_lasso, tree)[:3] == ["MRPC/dense", "MRPC/weight/oneshot_0.5", "MRPC/weight/gradual_0.5"]
    assert {run.start_from.label for run in without_lasso if "oneshot" in run.label} == {"MRPC dense"}
    assert not any(flag.startswith("--distill") for run in without_lasso for flag in run.flags)


def test_structured_pruning_is_gradual_from_the_dense_model_and_distils_from_it(tmp_path, tiny_bert, glue_dir):
    env = dict(pruning_sweep.DEFAULTS, **pipeline_env(tmp_path, tiny_bert, glue_dir, GRANULARITIES="structured weight",
                                                       SPARSITIES="0.3 0.5", GROUP_LASSO="1e-4", DISTILL="1"))
    tree = tmp_path / "tree"
    runs = pruning_sweep.plan(env, str(tree), {})
    assert relative(runs, tree)[:3] == ["MRPC/dense", "MRPC/structured/distilled_0.3", "MRPC/structured/distilled_0.5"]
    assert relative(runs, tree)[3] == "MRPC/weight/reweighted"  # the other granularities keep their pipeline
    dense, distilled = runs[0], runs[2]
    assert distilled.label == "MRPC structured distilled 0.5" and distilled.start_from is dense
    assert distilled.flags == pruning_sweep.GRADUAL_FLAGS + [
        "--target_sparsity=0.5", "--distill_from=" + dense.run_dir, "--num_train_epochs=0.05",
        "--pruning_granularity=structured"]
    plain = pruning_sweep.plan(dict(env, DISTILL="0", GRANULARITIES="structured"), str(tree), {})
    assert relative(plain, tree) == ["MRPC/dense", "MRPC/structured/gradual_0.3", "MRPC/structured/gradual_0.5"]
    assert not any(flag.startswith("--distill") for run in plain for flag in run.flags)


def test_each_setting_of_the_pipeline_has_its_own_tree(tmp_path, tiny_bert, glue_dir):
    def name(**values):
        env = dict(pruning_sweep.DEFAULTS, **pipeline_env(tmp_path, tiny_bert, glue_dir, **values))
        settings = pruning_sweep.pruning_settings(env)
        return sweep.tree_name(settings, pruning_sweep.tree_tag(settings))
    assert name().startswith("tiny_bert_ep0.05_bs16_len32_lr2e-05_gl0_prune_lr0.0001_ep0.05_")
    assert name(REWEIGHT_STEPS="50") == name(REWEIGHT_STEPS="100")  # without group lasso it changes nothing
    assert name(GROUP_LASSO="1e-4", REWEIGHT_STEPS="50") != name(GROUP_LASSO="1e-4", REWEIGHT_STEPS="100")
    assert len({name(), name(LR="3e-5"), name(EPOCHS="1"), name(EXTRA_FLAGS="--pruning_block=8x8"),
                name(PRUNE_LR="3e-5"), name(PRUNE_EPOCHS="1"), name(DISTILL="1")}) == 7
    assert name(TASKS="RTE", SPARSITIES="0.9", GRANULARITIES="weight") == name()  # what runs, not how


@pytest.mark.parametrize("values, message", [
    (dict(SPARSITIES="0.5 1.5"), "SPARSITIES: 1.5 is not a fraction between 0 and 1"),
    (dict(SPARSITIES="half"), "SPARSITIES=half is not a number"),
    (dict(GROUP_LASSO="-1"), "GROUP_LASSO=-1 is negative"),
    (dict(GROUP_LASSO="1e-4", REWEIGHT_STEPS="0"), "REWEIGHT_STEPS=0"),
    (dict(GROUP_LASSO="1e-4", REWEIGHT_STEPS="ten"), "REWEIGHT_STEPS=ten is not a whole number"),
    (dict(LR="fast"), "LR=fast is not a number"),
    (dict(PRUNE_LR="fast"), "PRUNE_LR=fast is not a number"),
    (dict(PRUNE_EPOCHS="0"), "PRUNE_EPOCHS=0: the pruned runs train for more than 0 epochs"),
    (dict(DISTILL="yes"), "DISTILL=yes: 1 (distil from the dense model, the default) or 0")])
def test_impossible_settings_are_refused_before_anything_is_written(tmp_path, tiny_bert, glue_dir, values, message):
    env = pipeline_env(tmp_path, tiny_bert, glue_dir, **values)
    with pytest.raises(UserError, match=re.escape(message)):
        pruning_sweep.pruning_sweep(env, sweep.Stopping())
    assert not (tmp_path / "fine_tune_outputs").exists()


def write_run(run_dir, data_dir=None, **results):
    """A finished run: its eval_results.txt, and the run_info.json settings' data_dir when given."""
    run_dir.mkdir(parents=True)
    (run_dir / "eval_results.txt").write_text("".join("%s = %s\n" % item for item in sorted(results.items())))
    if data_dir is not None:
        (run_dir / "run_info.json").write_text(json.dumps({"settings": {"data_dir": {"path": str(data_dir)}}}))


def write_dense_tree(dense_dir, name, settings, runs):
    tree = dense_dir / name
    tree.mkdir(parents=True)
    (tree / "settings.json").write_text(json.dumps(settings))
    for run, f1 in runs.items():
        write_run(tree / run, eval_f1=f1, eval_accuracy=f1, train_time=10.0)
    return tree


def test_the_dense_model_is_run_all_s_best_run_of_the_same_settings_only(tmp_path, tiny_bert, glue_dir):
    """Trees of other epochs, max_seq_length, extra flags or checkpoint contents hold better runs, and are passed
    over; the matching tree's checkpoint folder may be another (the same files elsewhere). The choice is recorded
    and kept when run_all.sh adds a better run; a recorded run that is gone is a one-line error."""
    env = dict(pruning_sweep.DEFAULTS, **pipeline_env(tmp_path, tiny_bert, glue_dir, TASKS="MRPC RTE"))
    dense_dir = tmp_path / "fine_tune_outputs"
    same = sweep.sweep_settings(dict(env, EXTRA_FLAGS=""))
    same_elsewhere = dict(same, checkpoint=dict(same["checkpoint"], dir="/somewhere/else/tiny_bert"))
    matching = write_dense_tree(dense_dir, "matching", same_elsewhere, {"MRPC/lr_5e-5": 0.80, "MRPC/lr_2e-5": 0.82})
    others = [dict(same, epochs=3.0), dict(same, max_seq_length=128), dict(same, extra_flags=["--use_fp16=true"]),
              dict(same, checkpoint=dict(same["checkpoint"], config_sha1="0" * 40))]
    for number, settings in enumerate(others):
        write_dense_tree(dense_dir, "other_%d" % number, settings, {"MRPC/lr_3e-5": 0.99, "RTE/lr_3e-5": 0.99})
    candidates = pruning_sweep.dense_candidates(env)
    assert {task: run.path for task, run in candidates.items()} == {"MRPC": str(matching / "MRPC" / "lr_2e-5")}

    tree = tmp_path / "tree"
    runs = pruning_sweep.plan(env, str(tree), candidates)
    mrpc, rte = [run for run in runs if run.label.endswith(" dense")]
    assert (mrpc.run_dir, mrpc.learning_rate) == (str(matching / "MRPC" / "lr_2e-5"), "2e-5")
    assert sweep.is_finished(mrpc) and not sweep.is_finished(rte)
    assert rte.run_dir == str(tree / "RTE" / "dense") and rte.learning_rate == "2e-5"
    assert json.loads((tree / "MRPC" / "dense.json").read_text()) == {
        "run_dir": os.path.relpath(mrpc.run_dir, str(tree)), "learning_rate": "2e-5"}
    oneshot = next(run for run in runs if run.label == "MRPC block oneshot 0.6")
    assert oneshot.start_from is mrpc

    write_run(matching / "MRPC" / "lr_4e-5", eval_f1=0.9, eval_accuracy=0.9)
    again = pruning_sweep.plan(env, str(tree), pruning_sweep.dense_candidates(env))
    assert again[0].run_dir == mrpc.run_dir  # kept: the runs after it started from it

    (matching / "MRPC" / "lr_2e-5" / "eval_results.txt").unlink()
    with pytest.raises(UserError, match="MRPC's dense model .*lr_2e-5 .* has no eval_results.txt any more"):
        pruning_sweep.plan(env, str(tree), {})


def test_the_summary_has_a_row_per_sparsity_and_a_column_per_task_and_method(tmp_path, glue_dir):
    """Hand-written results: the dense, trivial baseline and reweighted rows, a measured sparsity off its target, a
    collapsed run (MRPC F1 70.0, below always answering "paraphrase": 81.2 on the real dev set its run_info.json
    names), a run planned but not started, an unfinished one, a cell of a run never planned, and the models' sizes
    stored sparsely."""
    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / "settings.json").write_text(json.dumps({
        "checkpoint": {"dir": "tiny_bert", "model": {}, "weights_sha1": "x"}, "epochs": 3.0, "batch_size": 32,
        "max_seq_length": 128, "extra_flags": [], "learning_rate": 2e-5, "group_lasso": 1e-4, "reweight_steps": 100}))
    write_run(tree / "MRPC" / "dense", glue_dir / "MRPC", eval_f1=0.85, train_time=100.0)
    write_run(tree / "MRPC" / "weight" / "reweighted", eval_f1=0.84, train_time=100.0)
    write_run(tree / "MRPC" / "weight" / "oneshot_0.5", eval_f1=0.83, sparsity=0.5, train_time=100.0,
              model_bytes=4e6, sparse_model_bytes=2.5e6)
    write_run(tree / "MRPC" / "weight" / "oneshot_0.9", eval_f1=0.70, sparsity=0.8821, train_time=100.0,
              model_bytes=4e6, sparse_model_bytes=0.9e6)
    write_run(tree / "MRPC" / "weight" / "gradual_0.5", eval_f1=0.845, sparsity=0.4998, train_time=100.0)
    (tree / "MRPC" / "weight" / "gradual_0.9").mkdir()  # started, not finished
    write_run(tree / "STS-B" / "dense", glue_dir / "STS-B", eval_spearman=0.86, eval_pearson=0.87, train_time=50.0)
    write_run(tree / "STS-B" / "block" / "gradual_0.5", eval_spearman=0.8, sparsity=0.5, train_time=50.0)
    pruning_report.record_plan(str(tree), ["MRPC/weight/gradual_0.9", "STS-B/block/oneshot_0.5", "../x/MRPC/lr_2e-5"])
    assert json.loads((tree / "planned.json").read_text()) == ["MRPC/weight/gradual_0.9", "STS-B/block/oneshot_0.5"]
    paths = pruning_report.write_summary(str(tree))
    assert [os.path.basename(path) for path in paths] == list(pruning_report.SUMMARY_FILES)
    markdown = (tree / "pruning_summary.md").read_text()
    header = ["sparsity", "STS-B (Spearman) block three-step", "STS-B (Spearman) block gradual",
              "MRPC (F1) weight three-step", "MRPC (F1) weight gradual"]
    assert table(markdown) == [  # tasks in the BERT paper's order, as in run_all.sh's summary
        header,
        ["dense", "86.0", "86.0", "85.0", "85.0"],
        ["trivial baseline", "0.0", "0.0", "81.2", "81.2"],
        ["reweighted", "-", "", "84.0", ""],
        ["50%", "not started", "80.0", "83.0", "84.5"],
        ["90%", "-", "-", "70.0 (88.2% sparse) collapsed", "unfinished"],
        header,  # the sizes, in MB
        ["dense", "-", "-", "4.0", "4.0"],
        ["reweighted", "-", "", "-", ""],
        ["50%", "-", "-", "2.5", "-"],
        ["90%", "-", "-", "0.9", "-"]]
    assert "group lasso lambda 0.0001, reweighted every 100 steps" in markdown
    assert "STS-B: `STS-B/dense` (fine-tuned in this tree, lr 2e-05); MRPC: `MRPC/dense`" in markdown
    assert "Train time: 10m00s over the 7 finished runs" in markdown
    assert ("Not finished: STS-B/block/oneshot_0.5 (not started), MRPC/weight/gradual_0.9 (unfinished: no "
            "eval_results.txt).") in markdown
    rows = list(csv.DictReader(io.StringIO((tree / "pruning_summary.csv").read_text())))
    assert [(row["task"], row["method"], row["granularity"], row["target_sparsity"], row["status"]) for row in rows] \
        == [("STS-B", "dense", "", "", "finished"), ("STS-B", "oneshot", "block", "0.5", "not started"),
            ("STS-B", "gradual", "block", "0.5", "finished"),
            ("MRPC", "dense", "", "", "finished"), ("MRPC", "reweighted", "weight", "", "finished"),
            ("MRPC", "oneshot", "weight", "0.5", "finished"), ("MRPC", "oneshot", "weight", "0.9", "finished"),
            ("MRPC", "gradual", "weight", "0.5", "finished"),
            ("MRPC", "gradual", "weight", "0.9", "unfinished: no eval_results.txt")]
    assert rows[6]["sparsity"] == "0.8821" and rows[0]["eval_pearson"] == "0.87"
    assert [row["collapsed"] for row in rows] == ["False"] * 6 + ["True", "False", "False"]
    summary = json.loads((tree / "pruning_summary.json").read_text())
    assert summary["trivial_baselines"] == {"STS-B": 0.0, "MRPC": pytest.approx(2 * 0.684 / 1.684, abs=1e-3)}


def test_a_reused_dense_model_is_shown_beside_its_tree_s_runs_at_the_pruning_learning_rate(tmp_path):
    """run_all.sh's best MRPC run (lr 5e-5, picked on the dev set that scores the pruned runs too) is the dense
    baseline; its tree's runs at the pruning runs' own learning rate (2e-5, two seeds) go beside it."""
    dense_dir = tmp_path / "fine_tune_outputs" / "all"
    for name, f1 in (("lr_5e-5", 0.84), ("lr_2e-5_seed_1", 0.79), ("lr_2e-5_seed_2", 0.81), ("lr_3e-5", 0.83)):
        write_run(dense_dir / "MRPC" / name, eval_f1=f1)
    tree = tmp_path / "fine_tune_outputs" / "pruning" / "tree"
    tree.mkdir(parents=True)
    (tree / "settings.json").write_text(json.dumps({
        "checkpoint": {"dir": "tiny_bert", "model": {}, "weights_sha1": "x"}, "epochs": 3.0, "batch_size": 32,
        "max_seq_length": 128, "extra_flags": [], "learning_rate": 2e-5, "group_lasso": 0, "reweight_steps": None}))
    pruning_report.write_dense_record(str(tree), "MRPC", str(dense_dir / "MRPC" / "lr_5e-5"), "5e-5")
    write_run(tree / "MRPC" / "weight" / "gradual_0.5", eval_f1=0.80, sparsity=0.5)
    pruning_report.write_summary(str(tree))
    markdown = (tree / "pruning_summary.md").read_text()
    assert table(markdown)[1:3] == [["dense", "84.0"], ["dense at lr 2e-05", "80.0 (79.0-81.0, n=2)"]]
    assert "picked over its learning rates (and seeds) on the same dev set that scores each single pruned run" \
        in markdown
    assert json.loads((tree / "pruning_summary.json").read_text())["dense_at_pruning_learning_rate"] == {
        "MRPC": [0.79, 0.81]}


def test_the_summary_shows_the_compact_models_size_speed_and_accuracy(tmp_path):
    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / "settings.json").write_text(json.dumps({
        "checkpoint": {"dir": "tiny_bert", "model": {"num_hidden_layers": 2, "num_attention_heads": 4,
                                                      "intermediate_size": 64}, "weights_sha1": "x"},
        "epochs": 3.0, "batch_size": 32, "max_seq_length": 128, "extra_flags": [], "learning_rate": 2e-5,
        "group_lasso": 0, "reweight_steps": None}))
    write_run(tree / "MRPC" / "dense", eval_f1=0.85, eval_examples_per_second=100.0, train_time=100.0)
    write_run(tree / "MRPC" / "structured" / "distilled_0.5", eval_f1=0.84, sparsity=0.5, heads_kept=4,
              neurons_kept=64, parameters=4000000, compact_parameters=3000000, compact_eval_f1=0.84,
              eval_examples_per_second=100.0, compact_eval_examples_per_second=180.0, train_time=100.0)
    pruning_report.write_summary(str(tree))
    markdown = (tree / "pruning_summary.md").read_text()
    rows = table(markdown)
    assert rows[:4] == [["sparsity", "MRPC (F1) structured gradual + distillation"], ["dense", "85.0"],
                        ["trivial baseline", "-"], ["50%", "84.0"]]  # "-": no run_info.json names its dev set
    assert rows[7:] == [["run", "dev %", "parameters", "heads", "neurons", "eval examples/s", "full size", "speed-up"],
                        ["MRPC/structured/distilled_0.5", "84.0", "3.00M (75%)", "4/8", "64/128", "180.0", "100.0",
                         "1.80x"]]


def table(markdown):
    """The markdown table's rows, header first, as lists of cells."""
    return [[cell.strip() for cell in line.strip().strip("|").split("|")]
            for line in markdown.splitlines() if line.startswith("| ")]


# --- the pipeline, on real runs ---

def run_module(module, env):
    done = subprocess.run([sys.executable, "-m", module], cwd=str(REPO_ROOT), env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, universal_newlines=True, timeout=600)
    return done.returncode, done.stdout


def only_tree(output_dir):
    trees = [path for path in output_dir.iterdir() if (path / "settings.json").exists()]
    assert len(trees) == 1, trees
    return trees[0]


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory, tiny_bert, glue_dir):
    """run_all.sh's sweep of MRPC at one learning rate, then the pipeline on MRPC (block, 0.6) twice, then on RTE
    and MRPC (weight, 0.6) with RTE's dense run bound to fail: its output dir holds a WNLI model."""
    root = tmp_path_factory.mktemp("pipeline")
    env = pipeline_env(root, tiny_bert, glue_dir)
    status, sweep_log = run_module("bert.sweeps.sweep", dict(env, LRS="5e-5", OUTPUT_DIR=env["DENSE_DIR"]))
    assert status == 0, sweep_log
    dense_tree = only_tree(root / "fine_tune_outputs")
    first = run_module("bert.sweeps.pruning_sweep", env)
    assert first[0] == 0, first[1]
    tree = only_tree(root / "fine_tune_outputs" / "pruning")
    summaries = [{name: (tree / name).read_bytes() for name in pruning_report.SUMMARY_FILES}]
    second = run_module("bert.sweeps.pruning_sweep", env)
    summaries.append({name: (tree / name).read_bytes() for name in pruning_report.SUMMARY_FILES})
    planted = tree / "RTE" / "dense"
    fake_checkpoint(planted, 3)
    (planted / "run_info.json").write_text(json.dumps({"task": "WNLI"}))
    failing = run_module("bert.sweeps.pruning_sweep", dict(env, TASKS="RTE MRPC", GRANULARITIES="weight"))
    return {"root": root, "dense_run": dense_tree / "MRPC" / "lr_5e-5", "tree": tree, "first": first[1],
            "summaries": summaries, "second": second, "failing": failing}


def test_the_pipeline_starts_from_run_all_s_dense_run_and_chains_the_checkpoints(pipeline, tiny_bert):
    log, tree, dense_run = pipeline["first"], pipeline["tree"], pipeline["dense_run"]
    assert "MRPC: dense model reused from %s (lr=5e-5)" % dense_run in log
    assert "3 runs planned, 1 done before, 2 to do" in log
    assert tree.name.startswith("tiny_bert_ep0.05_bs16_len32_lr2e-05_gl0_")
    for number, kind in ((1, "oneshot"), (2, "gradual")):
        assert "(%d/2) MRPC block %s 0.6: started " % (number, kind) in log
        assert re.search(r"\(%d/2\) MRPC block %s 0\.6: f1 \d+\.\d at sparsity \d+\.\d%% in (\d+m)?\d+s; %d runs? left"
                         % (number, kind, 2 - number), log), log
    commands = {kind: (tree / "MRPC" / "block" / ("%s_0.6" % kind) / "log.txt").read_text().split("\n")[1]
                for kind in ("oneshot", "gradual")}
    checkpoint = re.search(r'"(.*)"', (dense_run / "checkpoint").read_text()).group(1)
    assert init_checkpoint(commands["oneshot"].split()) == str(dense_run / checkpoint)
    assert init_checkpoint(commands["gradual"].split()) == str(dense_run / checkpoint)
    assert (dense_run / "log.txt").read_text().count("=====") == 1  # run_all.sh's run is only read
    oneshot = read_eval_results(str(tree / "MRPC" / "block" / "oneshot_0.6" / "eval_results.txt"))
    assert oneshot["global_step"] == int(3668 * 0.05 / 16) and 0.5 < oneshot["sparsity"] < 0.65


def test_a_second_invocation_trains_nothing_and_rewrites_the_same_summary(pipeline):
    status, log = pipeline["second"]
    assert status == 0, log
    assert "3 runs planned, 3 done before, 0 to do" in log and "started" not in log
    assert "MRPC: dense model reused from %s (lr=5e-5)" % pipeline["dense_run"] in log
    first, second = pipeline["summaries"]
    assert first == second


def test_a_failed_step_skips_the_steps_that_start_from_it_and_the_rest_goes_on(pipeline):
    status, log = pipeline["failing"]
    tree = pipeline["tree"]
    assert status == 1, log
    assert "RTE: dense model fine-tuned in this tree at lr=2e-5 (started here before)" in log
    assert re.search(r"\(1/5\) RTE dense: FAILED after (\d+m)?\d+s: error: --output_dir \S+ holds a WNLI model, "
                     r"not RTE", log), log
    for number, kind in ((2, "oneshot"), (3, "gradual")):
        assert "(%d/5) RTE weight %s 0.6: skipped: it starts from RTE dense, which did not finish" % (number, kind) \
            in log
        assert not (tree / "RTE" / "weight" / ("%s_0.6" % kind)).exists()
    for number, kind in ((4, "oneshot"), (5, "gradual")):
        assert re.search(r"\(%d/5\) MRPC weight %s 0\.6: f1 \d+\.\d at sparsity 60\.0%% in" % (number, kind), log), log
    assert "1 run(s) failed: RTE dense" in log
    assert "2 run(s) skipped, since a run they start from failed: RTE weight oneshot 0.6, RTE weight gradual 0.6" \
        in log


def test_the_summary_of_real_runs(pipeline, tiny_bert):
    """After the three invocations: MRPC's block columns from the first, its weight columns from the last, and
    RTE's weight columns with its dense model unfinished and the runs that start from it not started."""
    tree, dense_run = pipeline["tree"], pipeline["dense_run"]
    markdown = (tree / "pruning_summary.md").read_text()
    results = {name: read_eval_results(str(tree / name / "eval_results.txt"))
               for name in ("MRPC/weight/oneshot_0.6", "MRPC/weight/gradual_0.6", "MRPC/block/oneshot_0.6",
                            "MRPC/block/gradual_0.6")}
    dense = read_eval_results(str(dense_run / "eval_results.txt"))
    baselines = json.loads((tree / "pruning_summary.json").read_text())["trivial_baselines"]
    assert baselines["MRPC"] == pytest.approx(2 * 0.684 / 1.684, abs=1e-3)  # from the dev set run_info.json names

    def cell(name, metric):
        value = "%.1f" % (100 * results[name][metric])
        sparsity = results[name]["sparsity"]
        return (value + (" (%.1f%% sparse)" % (100 * sparsity) if abs(sparsity - 0.6) > 0.005 else "")
                + (" collapsed" if results[name][metric] <= baselines["MRPC"] else ""))

    def baseline(task):
        return "-" if baselines[task] is None else "%.1f" % (100 * baselines[task])

    names = ["MRPC/%s/%s_0.6" % (granularity, kind) for granularity in ("weight", "block")
             for kind in ("oneshot", "gradual")]
    header = ["sparsity", "MRPC (F1) weight three-step", "MRPC (F1) weight gradual", "MRPC (F1) block three-step",
              "MRPC (F1) block gradual", "RTE (Acc) weight three-step", "RTE (Acc) weight gradual"]
    assert table(markdown) == [
        header,
        ["dense"] + ["%.1f" % (100 * dense["eval_f1"])] * 4 + ["unfinished"] * 2,
        ["trivial baseline"] + [baseline("MRPC")] * 4 + [baseline("RTE")] * 2,
        ["60%"] + [cell(name, "eval_f1") for name in names] + ["not started"] * 2,
        header,  # the sizes in MB: dense float32, then stored sparsely
        ["dense"] + ["%.1f" % (results[names[0]]["model_bytes"] / 1e6)] * 4 + ["-"] * 2,
        ["60%"] + ["%.1f" % (results[name]["sparse_model_bytes"] / 1e6) for name in names] + ["-"] * 2]
    assert "(56.2% sparse)" in markdown  # 16x16 blocks of 32x32 and 32x64 matrices cannot make 60%
    reused = os.path.relpath(str(dense_run), str(tree))
    assert "MRPC: `%s` (run_all.sh's best run, lr 5e-5); RTE: `RTE/dense` (fine-tuned in this tree, lr 2e-05)" \
        % reused in markdown
    assert ("Not finished: RTE/dense (unfinished: no eval_results.txt), RTE/weight/oneshot_0.6 (not started), "
            "RTE/weight/gradual_0.6 (not started)." in markdown)
    assert ("Settings: checkpoint %s (L=2 H=32 A=4), pre-trained weights; 0.05 epochs, batch 16, max_seq_length 32; "
            "extra flags: none; learning rate 2e-05 (dense models), then learning rate 0.0001 for 0.05 epochs (every "
            "later run); group lasso off: step 2 is skipped and step 3 prunes the dense model." % tiny_bert) in markdown

    rows = {row["run_dir"]: row for row in csv.DictReader(io.StringIO((tree / "pruning_summary.csv").read_text()))}
    assert set(rows) == set(results) | {reused, "RTE/dense", "RTE/weight/oneshot_0.6", "RTE/weight/gradual_0.6"}
    for name, values in dict(results, **{reused: dense}).items():
        assert {key: float(rows[name][key]) for key in values} == pytest.approx(values, rel=1e-12)
    summary = json.loads((tree / "pruning_summary.json").read_text())
    assert summary["dense"] == {"MRPC": {"run_dir": reused, "learning_rate": "5e-5", "reused": True},
                                "RTE": {"run_dir": "RTE/dense", "learning_rate": "2e-05", "reused": False}}
    assert summary["settings"]["group_lasso"] == 0 and summary["settings"]["reweight_steps"] is None
    assert (tree / "pruning_summary.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_run_all_s_report_is_not_confused_by_the_pruning_trees_inside_its_output_dir(pipeline, capsys):
    output_dir = pipeline["root"] / "fine_tune_outputs"
    assert report.main(["--output_dir", str(output_dir)]) == 0
    index = (output_dir / "summary.md").read_text()
    assert [line for line in index.splitlines() if line.startswith("## ")] == ["## " + pipeline["dense_run"].parent
                                                                                .parent.name]
    assert "pruning" not in index and not (output_dir / "pruning" / "summary.md").exists()


def test_the_summary_command_rewrites_the_summary_without_loading_tensorflow(pipeline):
    """The same summary as the pipeline's (the runs it planned are in planned.json); and like run_all.sh's report,
    the pipeline's process and its summary stay free of TensorFlow."""
    tree = pipeline["tree"]
    before = {name: (tree / name).read_bytes() for name in pruning_report.SUMMARY_FILES}
    code = ("import sys; from bert.sweeps import pruning_report, pruning_sweep; "
            "assert pruning_report.main(['--tree', %r]) == 0; assert 'tensorflow' not in sys.modules" % str(tree))
    done = subprocess.run([sys.executable, "-c", code], cwd=str(REPO_ROOT), stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, universal_newlines=True, timeout=300)
    assert done.returncode == 0, done.stdout
    assert done.stdout.splitlines() == ["wrote %s" % (tree / name) for name in pruning_report.SUMMARY_FILES]
    assert {name: (tree / name).read_bytes() for name in pruning_report.SUMMARY_FILES} == before


def test_epochs_set_in_extra_flags_are_the_pipeline_s_epochs(pipeline, tiny_bert, glue_dir):
    """EXTRA_FLAGS=--num_train_epochs=0.05 over EPOCHS=3 trains 0.05 epochs: the pipeline's own tree and its reused
    dense run (a run_all.sh tree of 0.05 epochs) are found, with every run done."""
    env = pipeline_env(pipeline["root"], tiny_bert, glue_dir, EPOCHS="3", EXTRA_FLAGS="--num_train_epochs 0.05")
    status, log = run_module("bert.sweeps.pruning_sweep", env)
    assert status == 0, log
    assert "3 runs planned, 3 done before, 0 to do" in log and "started" not in log
    assert "MRPC: dense model reused from %s (lr=5e-5)" % pipeline["dense_run"] in log
    assert only_tree(pipeline["root"] / "fine_tune_outputs" / "pruning") == pipeline["tree"]



STEPS = int(3668 * 0.05 / 16)  # 11: every run of the pipelines above


@pytest.fixture(scope="module")
def group_lasso_pipeline(tmp_path_factory, tiny_bert, glue_dir):
    """The pipeline with its group-lasso step (lambda 1e-3, reweights refreshed every 5 of the 11 steps) and the
    structured granularity, distilled (the default), at 50% on MRPC: the dense run (fine-tuned in this tree, there
    being no run_all.sh tree), weight reweighted, weight one-shot and gradual, and structured gradual, the pruned
    runs distilling from the dense one."""
    root = tmp_path_factory.mktemp("group_lasso_pipeline")
    env = pipeline_env(root, tiny_bert, glue_dir, GRANULARITIES="weight structured", SPARSITIES="0.5",
                       GROUP_LASSO="1e-3", REWEIGHT_STEPS="5", DISTILL="1")
    status, log = run_module("bert.sweeps.pruning_sweep", env)
    assert status == 0, log
    tree = only_tree(root / "fine_tune_outputs" / "pruning")
    return {"log": log, "tree": tree, "mrpc": tree / "MRPC"}


def logged_command(run_dir) -> list:
    """The run_classifier command the pipeline ran in run_dir, as its log.txt's header line has it."""
    return (run_dir / "log.txt").read_text().split("\n")[1].split(": ", 1)[1].split()


def recorded_settings(run_dir) -> dict:
    return json.loads((run_dir / "run_info.json").read_text())["settings"]


def test_the_group_lasso_step_trains_from_the_dense_model_and_one_shot_pruning_from_it(group_lasso_pipeline):
    """docs/pruning.md's steps 2 and 3: the reweighted run starts from the dense run's last checkpoint, every weight
    loaded, trains under the penalty (its checkpoint holds a reweight per encoder matrix, and no mask) with the
    lambda and interval recorded as its settings; one-shot pruning starts from the reweighted run's last checkpoint."""
    log, tree, mrpc = (group_lasso_pipeline[key] for key in ("log", "tree", "mrpc"))
    assert tree.name.startswith("tiny_bert_ep0.05_bs16_len32_lr2e-05_gl0.001_")
    assert "5 runs planned, 0 done before, 5 to do" in log
    labels = ["MRPC dense", "MRPC weight reweighted", "MRPC weight oneshot 0.5", "MRPC weight distilled 0.5",
              "MRPC structured distilled 0.5"]
    assert re.findall(r"\((\d)/5\) (.*): started ", log) == [(str(n), label) for n, label in enumerate(labels, 1)]
    assert len(re.findall(r"\(\d/5\) MRPC .*: f1 \d+\.\d", log)) == 5
    dense, reweighted, oneshot = mrpc / "dense", mrpc / "weight" / "reweighted", mrpc / "weight" / "oneshot_0.5"
    for run_dir, start in ((reweighted, dense), (oneshot, reweighted)):
        checkpoint = str(start / ("model.ckpt-%d" % STEPS))
        assert (start / "checkpoint").read_text().startswith('model_checkpoint_path: "model.ckpt-%d"' % STEPS)
        assert init_checkpoint(logged_command(run_dir)) == checkpoint
        assert recorded_settings(run_dir)["init_checkpoint"]["path"] == checkpoint
        assert "Initialised 41 of 41 variables from %s; freshly initialised: none" % checkpoint \
            in (run_dir / "log.txt").read_text()
    command = logged_command(reweighted)
    assert "--group_lasso=1e-3" in command and "--group_lasso_reweight_steps=5" in command
    settings = recorded_settings(reweighted)
    assert (settings["group_lasso"], settings["group_lasso_reweight_steps"]) == (0.001, 5)
    assert settings["pruning_granularity"] == "weight" and settings["target_sparsity"] == 0
    from bert.compat import tf
    names = [name for name, _ in tf.train.list_variables(str(reweighted / ("model.ckpt-%d" % STEPS)))]
    assert len([name for name in names if name.endswith("kernel_group_lasso_reweight")]) == 12  # 2 layers x 6
    assert not [name for name in names if name.endswith("_mask")]
    assert "group_lasso" not in recorded_settings(oneshot)
    teacher = str(dense / ("model.ckpt-%d" % STEPS))
    assert recorded_settings(oneshot)["distill_from"]["path"] == teacher
    assert recorded_settings(mrpc / "weight" / "distilled_0.5")["distill_from"]["path"] == teacher
    assert recorded_settings(oneshot)["pruning_score"] == "magnitude"
    assert recorded_settings(mrpc / "weight" / "distilled_0.5")["pruning_score"] == "taylor"
    results = read_eval_results(str(oneshot / "eval_results.txt"))
    assert results["global_step"] == STEPS and results["sparsity"] == pytest.approx(0.5, abs=1e-3)


def test_the_structured_run_distils_from_the_dense_run_and_writes_its_compact_model(group_lasso_pipeline):
    """The structured step: gradual Taylor pruning of the dense run's last checkpoint while distilling from that run
    (--distill_from=<the dense run>, its checkpoint recorded as the teacher), then the compact model: half the heads
    and neurons cut out (the parameters removed are exactly theirs), in compact_model/ as a checkpoint loadable on
    its own that evaluates as the masked model does."""
    mrpc = group_lasso_pipeline["mrpc"]
    dense, distilled = mrpc / "dense", mrpc / "structured" / "distilled_0.5"
    command = logged_command(distilled)
    checkpoint = str(dense / ("model.ckpt-%d" % STEPS))
    assert "--distill_from=%s" % dense in command and init_checkpoint(command) == checkpoint
    settings = recorded_settings(distilled)
    assert "--pruning_granularity=structured" in command and settings["pruning_score"] == "taylor"  # the default
    assert settings["distill_from"]["path"] == settings["init_checkpoint"]["path"] == checkpoint
    assert "Teacher: 41 variables from %s (frozen" % checkpoint in (distilled / "log.txt").read_text()
    results = read_eval_results(str(distilled / "eval_results.txt"))
    assert results["sparsity"] == pytest.approx(0.5) and (results["heads_kept"], results["neurons_kept"]) == (4, 64)
    # a head of 8 dimensions: its query, key and value columns and biases and its attention output rows (H=32);
    # a neuron: its intermediate column and bias and its output row
    removed = (8 - 4) * (3 * (32 * 8 + 8) + 8 * 32) + (128 - 64) * (32 + 1 + 32)
    assert results["compact_parameters"] == results["parameters"] - removed
    from bert.compat import tf
    compact = str(distilled / "compact_model" / "bert_model.ckpt")
    assert sum(int(np.prod(shape)) for _, shape in tf.train.list_variables(compact)) == results["compact_parameters"]
    assert (distilled / "compact_model" / "bert_config.json").exists()
    assert results["compact_eval_f1"] == results["eval_f1"]
    assert results["compact_eval_loss"] == pytest.approx(results["eval_loss"], rel=1e-5)


def test_the_summary_has_the_reweighted_row_and_the_compact_models_row(group_lasso_pipeline):
    """docs/pruning.md's summary with lambda > 0 and a structured run: the reweighted row under the three-step
    column, the structured distilled column, the compact models' table with the run's compact dev F1, parameters
    (and their share of the full-size model's), heads and neurons kept, and every run in the CSV."""
    tree, mrpc = group_lasso_pipeline["tree"], group_lasso_pipeline["mrpc"]
    markdown = (tree / "pruning_summary.md").read_text()

    baseline = json.loads((tree / "pruning_summary.json").read_text())["trivial_baselines"]["MRPC"]

    def f1(name):
        value = read_eval_results(str(mrpc / name / "eval_results.txt"))["eval_f1"]
        return "%.1f" % (100 * value) + (" collapsed" if name != "dense" and value <= baseline else "")

    rows = table(markdown)
    assert rows[:5] == [
        ["sparsity", "MRPC (F1) weight three-step", "MRPC (F1) weight gradual + distillation",
         "MRPC (F1) structured gradual + distillation"],
        ["dense"] + [f1("dense")] * 3,
        ["trivial baseline"] + ["%.1f" % (100 * baseline)] * 3,
        ["reweighted", f1("weight/reweighted"), "", ""],
        ["50%", f1("weight/oneshot_0.5"), f1("weight/distilled_0.5"), f1("structured/distilled_0.5")]]
    assert [row[0] for row in rows[5:9]] == ["sparsity", "dense", "reweighted", "50%"]  # the sizes
    compact = read_eval_results(str(mrpc / "structured" / "distilled_0.5" / "eval_results.txt"))
    assert rows[9][:5] == ["run", "dev %", "parameters", "heads", "neurons"]
    assert rows[10][:5] == ["MRPC/structured/distilled_0.5", "%.1f" % (100 * compact["compact_eval_f1"]),
                            "%.2fM (%.0f%%)" % (compact["compact_parameters"] / 1e6,
                                                100 * compact["compact_parameters"] / compact["parameters"]),
                            "4/8", "64/128"]
    assert len(rows) == 11
    assert ("learning rate 2e-05 (dense models), then learning rate 0.0001 for 0.05 epochs (every later run), the "
            "one-shot and gradual runs distilling from the dense model; group lasso lambda 0.001, reweighted every 5 "
            "steps (step 2)") in markdown
    csv_rows = {row["run_dir"]: row for row in csv.DictReader(io.StringIO((tree / "pruning_summary.csv").read_text()))}
    assert [(row["method"], row["granularity"], row["target_sparsity"], row["status"]) for row in csv_rows.values()] \
        == [("dense", "", "", "finished"), ("reweighted", "weight", "", "finished"),
            ("oneshot", "weight", "0.5", "finished"), ("distilled", "weight", "0.5", "finished"),
            ("distilled", "structured", "0.5", "finished")]
    assert float(csv_rows["MRPC/structured/distilled_0.5"]["compact_parameters"]) == compact["compact_parameters"]
