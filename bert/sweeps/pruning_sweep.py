"""The pruning pipeline behind run_pruning.sh: for every task, granularity and target sparsity, the three-step
pipeline (dense model, reweighted group-lasso training, one-shot pruning and retraining) and its one-run
alternative to steps 2 and 3 (gradual pruning of the dense model), each step a run_classifier run.

Settings come from the environment (run_pruning.sh documents them; defaults in bert/sweeps/defaults.py): TASKS,
GRANULARITIES, SPARSITIES, LR, PRUNE_LR, PRUNE_EPOCHS, DISTILL, GROUP_LASSO, REWEIGHT_STEPS, DENSE_DIR, and
run_all.sh's EPOCHS, BATCH_SIZE, MAX_SEQ_LENGTH, BERT_DIR, GLUE_DIR, OUTPUT_DIR, EXTRA_FLAGS. The runs go into one
tree per settings, OUTPUT_DIR/<settings>/, named and recorded (settings.json) like run_all.sh's trees
(bert/sweeps/sweep.py), with the pipeline's own settings among them; bert/sweeps/pruning_report.py describes the
layout. For each task:
1. the dense model is run_all.sh's best run of the task in DENSE_DIR among the trees of the same checkpoint
   (by content), epochs, batch size and max_seq_length (EXTRA_FLAGS' --num_train_epochs, --train_batch_size and
   --max_seq_length counting as these, bert/sweeps/extra_flags.py) and no other EXTRA_FLAGS; without one it is
   fine-tuned here at LR for EPOCHS. The choice is recorded (<TASK>/dense.json, or the <TASK>/dense/ folder) and
   kept by every later invocation, since the runs below are trained from it;
then every run trains at PRUNE_LR for PRUNE_EPOCHS, and with DISTILL=1 the pruned ones distil from step 1's model:
2. per granularity, the reweighted training starts from step 1's last checkpoint (GROUP_LASSO=0 skips it);
3. per granularity and sparsity, one-shot pruning and retraining starts from step 2's last checkpoint (step 1's
   without step 2), and gradual pruning (GRADUAL_FLAGS) from step 1's.
The `structured` granularity has only the gradual runs.
The runs are run, resumed and reported by bert/sweeps/sweep.py's loop (finished runs kept, interrupted ones resumed,
signals as in run_all.sh); a run whose predecessor failed is skipped with a message. The tree's planned.json
keeps every run any invocation planned, and at the end the tree gets pruning_summary.md/csv/json/png.
"""
import functools
import os
import sys
from typing import Dict, List, Optional

from bert.sweeps import pruning_report
from bert.sweeps.defaults import RUN_PRUNING
from bert.sweeps.extra_flags import effective, resolve
from bert.errors import UserError
from bert.data.processors import TaskSpec
from bert.sweeps.runs import FinishedRun, best_runs, collect_runs, read_settings, settings_trees
from bert.sweeps.sweep import (PlannedRun, Stopping, conclude, is_finished, log, main, make_tree, run_planned,
                        settings_identity, sweep_settings, tasks_with_training_data)

DEFAULTS = RUN_PRUNING  # every setting's default
# Gradual pruning of an already fine-tuned model: the cubic ramp ends at 30% of training, so the pruned model
# has 70% of it to recover (at the default 0.7, meant for pruning while fine-tuning from the pre-trained
# checkpoint, MRPC's F1 at 50% ended 0.4 points lower: bench/pruning_gradual_mrpc.md). EXTRA_FLAGS come after
# these, so `EXTRA_FLAGS=--pruning_end=0.5` overrides it.
GRADUAL_FLAGS = ["--pruning_schedule=gradual", "--pruning_begin=0", "--pruning_end=0.3"]
# The runs rank by --pruning_score's default, the measured recipe: taylor for gradual runs, magnitude for one-shot
# ones (bert/compression/pruning.py's GRADUAL_SCORE; bench/pruning_recipe.md).


def _number(env: Dict[str, str], name: str, kind: type = float):
    try:
        return kind(env[name])
    except ValueError:
        raise UserError("%s=%s is not %s" % (name, env[name], "a number" if kind is float else "a whole number")) \
            from None


def target_sparsities(env: Dict[str, str]) -> List[str]:
    """SPARSITIES as fractions in (0, 1), each once, spelled the short way (`0.70` is `0.7`)."""
    found: List[str] = []
    for text in env["SPARSITIES"].split():
        value = _number(dict(SPARSITIES=text), "SPARSITIES")
        if not 0 < value < 1:
            raise UserError("SPARSITIES: %s is not a fraction between 0 and 1 (0.7 prunes 70%% of the weights)" % text)
        if "%g" % value not in found:
            found.append("%g" % value)
    return found


def pruning_settings(env: Dict[str, str]) -> Dict:
    """run_all.sh's settings (bert/sweeps/sweep.py) plus the pipeline's: the dense runs' learning rate, the pruned
    runs' own learning rate and epochs, whether they distil, and group lasso (the reweighting interval only where
    lambda is not 0, since it changes nothing there)."""
    group_lasso = _number(env, "GROUP_LASSO")
    if group_lasso < 0:
        raise UserError("GROUP_LASSO=%s is negative: lambda is 0 (no reweighted training) or more" % env["GROUP_LASSO"])
    reweight_steps = _number(env, "REWEIGHT_STEPS", int) if group_lasso else None
    if reweight_steps is not None and reweight_steps < 1:
        raise UserError("REWEIGHT_STEPS=%s: the reweights are refreshed every 1 step or more" % env["REWEIGHT_STEPS"])
    if env["DISTILL"] not in ("0", "1"):
        raise UserError("DISTILL=%s: 1 (distil from the dense model, the default) or 0" % env["DISTILL"])
    if _number(env, "PRUNE_EPOCHS") <= 0:
        raise UserError("PRUNE_EPOCHS=%s: the pruned runs train for more than 0 epochs" % env["PRUNE_EPOCHS"])
    return dict(sweep_settings(env), learning_rate=_number(env, "LR"), prune_learning_rate=_number(env, "PRUNE_LR"),
                prune_epochs=_number(env, "PRUNE_EPOCHS"), distill=env["DISTILL"] == "1", group_lasso=group_lasso,
                reweight_steps=reweight_steps)


def dense_candidates(env: Dict[str, str]) -> Dict[str, FinishedRun]:
    """{task: run_all.sh's best run} over DENSE_DIR's trees whose settings are this pipeline's checkpoint,
    epochs, batch size and max_seq_length with no extra flags (compared by content, as run_all.sh tells its
    trees apart, and as the runs trained: a tree whose extra flags set the epochs is a tree of those epochs)."""
    dense_dir = env["DENSE_DIR"]
    if not os.path.isdir(dense_dir):
        return {}
    wanted = settings_identity(sweep_settings(dict(env, EXTRA_FLAGS="")))
    runs: List[FinishedRun] = []
    for tree in settings_trees(dense_dir):
        if settings_identity(effective(read_settings(tree))) == wanted:
            runs += collect_runs(tree)[0]
    return best_runs(runs)


def dense_step(env: Dict[str, str], tree: str, task: TaskSpec, train_examples: int,
               candidates: Dict[str, FinishedRun]) -> PlannedRun:
    """Step 1 of a task: its own dense run if it has one (started here), else the run_all.sh run recorded for it,
    else the best of `candidates`, recorded now, else a dense run to fine-tune here."""
    own = os.path.join(tree, pruning_report.run_dir(task.name))
    record = pruning_report.read_dense_record(tree, task.name)
    best = candidates.get(task.name)
    if record is None and best is not None and not os.path.isdir(own):
        pruning_report.write_dense_record(tree, task.name, best.path, best.learning_rate)
        record = pruning_report.read_dense_record(tree, task.name)
    if record is None or os.path.isdir(own):
        why = "started here before" if os.path.isdir(own) else "no run of %s has these settings" % env["DENSE_DIR"]
        log("%s: dense model fine-tuned in this tree at lr=%s (%s)" % (task.name, env["LR"], why))
        return PlannedRun(task, "%s dense" % task.name, own, env["LR"], train_examples)
    dense = PlannedRun(task, "%s dense" % task.name, os.path.normpath(os.path.join(tree, record["run_dir"])),
                       record["learning_rate"], train_examples)
    if not is_finished(dense):
        raise UserError("%s's dense model %s (recorded in %s) has no eval_results.txt any more: put it back, or delete "
                        "the record to choose again" % (task.name, dense.run_dir,
                                                        os.path.join(tree, task.name, pruning_report.DENSE_RECORD)))
    log("%s: dense model reused from %s (lr=%s)" % (task.name, dense.run_dir, dense.learning_rate))
    return dense


def _step(tree: str, task: TaskSpec, planned_examples: int, env: Dict[str, str], granularity: str, kind: str,
          flags: List[str], sparsity: Optional[str] = None, start_from: Optional[PlannedRun] = None) -> PlannedRun:
    """A run after the dense model, at PRUNE_LR for PRUNE_EPOCHS: `MRPC block oneshot 0.7` in
    <tree>/MRPC/block/oneshot_0.7."""
    return PlannedRun(task, " ".join([task.name, granularity, kind] + ([sparsity] if sparsity else [])),
                      os.path.join(tree, pruning_report.run_dir(task.name, granularity, kind, sparsity)),
                      env["PRUNE_LR"], planned_examples,
                      flags + ["--num_train_epochs=" + env["PRUNE_EPOCHS"], "--pruning_granularity=" + granularity],
                      start_from)


def plan(env: Dict[str, str], tree: str, candidates: Dict[str, FinishedRun]) -> List[PlannedRun]:
    """Every run of the pipeline, in order: per task its dense model, then per granularity the reweighted run and,
    per sparsity, the one-shot and the gradual run (structured: the gradual run only). With DISTILL=1 the one-shot
    and gradual runs distil from the dense model (the gradual ones are then named distilled_<s>)."""
    sparsities = target_sparsities(env)
    runs = []
    for task, train_examples in tasks_with_training_data(env):
        dense = dense_step(env, tree, task, train_examples, candidates)
        runs.append(dense)
        teacher = ["--distill_from=" + dense.run_dir] if env["DISTILL"] == "1" else []
        gradual = "distilled" if teacher else "gradual"
        # the time estimate weighs runs by the examples they train
        planned_examples = int(train_examples * _number(env, "PRUNE_EPOCHS") / _number(env, "EPOCHS"))
        for granularity in env["GRANULARITIES"].split():
            step = functools.partial(_step, tree, task, planned_examples, env, granularity)
            pruned_from = dense
            if granularity != "structured" and _number(env, "GROUP_LASSO"):
                pruned_from = step(pruning_report.REWEIGHTED, ["--group_lasso=" + env["GROUP_LASSO"],
                                                               "--group_lasso_reweight_steps=" + env["REWEIGHT_STEPS"]],
                                   start_from=dense)
                runs.append(pruned_from)
            for sparsity in sparsities:
                target = ["--target_sparsity=" + sparsity]
                if granularity != "structured":  # no three-step pipeline for heads and neurons: docs/pruning.md
                    runs.append(step("oneshot", ["--pruning_schedule=oneshot"] + target + teacher, sparsity,
                                     pruned_from))
                runs.append(step(gradual, GRADUAL_FLAGS + target + teacher, sparsity, dense))
    return runs


def tree_tag(settings: Dict) -> str:
    """What the tree's name shows of the pipeline's own settings (the digest after it covers all of them)."""
    return "lr%g_gl%g_prune_lr%g_ep%g" % (settings["learning_rate"], settings["group_lasso"],
                                         settings["prune_learning_rate"], settings["prune_epochs"])


def pruning_sweep(env: Dict[str, str], stopping: Stopping) -> int:
    env = resolve(dict(DEFAULTS, **env), {"learning_rate": "LR"})
    settings = pruning_settings(env)
    target_sparsities(env)  # checked before the tree is made
    tree = make_tree(env["OUTPUT_DIR"], settings, tree_tag(settings))
    runs = plan(env, tree, dense_candidates(env))
    pruning_report.record_plan(tree, [os.path.relpath(run.run_dir, tree).replace(os.sep, "/") for run in runs])
    failed, skipped = run_planned(runs, env, tree, stopping)

    def report() -> int:
        for path in pruning_report.write_summary(tree):
            print("wrote %s" % path, flush=True)
        return 0

    return conclude(failed, skipped, stopping, report)


if __name__ == "__main__":
    sys.exit(main(pruning_sweep))
