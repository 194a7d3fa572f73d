"""What pruning adds to a training step, measured without the VM's drift (issue 15, part 6: a pruning run may be
at most 10% slower than the dense one; a measurement, not a test).

    .venv/bin/python bench/pruning_step_cost.py [--steps 30] [--seq 64] [--variants weight global ...]

One process builds the embedded model's training graph (batch 32, `--seq` tokens of random ids, lr 2e-5) once
dense and once per variant, each in its own graph and session, and runs one step of each in turn, `--steps`
times (the order rotating), so that every graph sees the same drift. The variants mask every step; those that
prune update their masks after every second step (--pruning_frequency=2), so that their plain steps and their
update steps are timed alike. From the mean times (the first step of each graph, its one-off work, left out):
- a plain step's cost over the dense step's (masks in the forward pass, score accumulation, the group lasso);
- an update's cost (update step minus plain step);
- the projected slowdown of a whole MRPC run (3 epochs at batch 32: 343 steps) with run_classifier's default
  schedule (ramp from 0 to 70% of the steps, an update every 10) and with run_pruning.sh's gradual one (ramp to
  30%): (plain steps + updates) / dense steps - 1, the updates counted by bert/compression/pruning.py's own rule.
bench/pruning_speed.py compares whole runs instead (subprocesses, one after another), where the drift is as
large as the bar.
"""
import argparse
import json
import os
import time

import numpy as np

import measurement  # bench/, the script's own folder
from bert import modeling
from bert.compression import pruning
from bert.data import processors
from bert.compat import tf
from bert.training.estimator import model_fn_builder

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

BATCH = 32
MRPC_STEPS = 343  # int(3668 / 32 * 3)
VARIANTS = {  # name -> PruningConfig arguments (target 50%, updates every second step)
    "weight": dict(granularity="weight"),
    "global": dict(granularity="weight", scope="global"),
    "block": dict(granularity="block", block=(16, 16)),
    "tile": dict(granularity="tile"),
    "taylor": dict(granularity="weight", score="taylor"),
    "group_lasso": dict(target_sparsity=0.0, group_lasso=1e-4),
    "structured": dict(granularity="structured"),  # heads and neurons: attention_heads from the config
}
SCHEDULES = {"run_classifier's default (ramp to 0.7)": pruning.PruningConfig(0.5),
             "run_pruning.sh's gradual (ramp to 0.3)": pruning.PruningConfig(0.5, end=0.3)}


class Trainer:
    """One training graph in its own session; `step()` runs and times one train_op, noting whether the masks
    were updated in it."""

    def __init__(self, bert_config, config, seq: int, steps: int):
        self.graph = tf.Graph()
        with self.graph.as_default():
            rng = np.random.RandomState(0)
            features = {"input_ids": tf.constant(rng.randint(0, bert_config.vocab_size, size=(BATCH, seq)), tf.int32),
                        "input_mask": tf.ones([BATCH, seq], tf.int32), "segment_ids": tf.zeros([BATCH, seq], tf.int32),
                        "label_ids": tf.constant(rng.randint(0, 2, size=BATCH), tf.int32),
                        "is_real_example": tf.ones([BATCH], tf.int32)}
            model_fn = model_fn_builder(bert_config, processors.get_task("MRPC"), None, 2e-5, 4 * steps, 0, False,
                                        methods=[pruning.Pruning(config)])
            self.train_op = model_fn(features, None, tf.estimator.ModeKeys.TRAIN, {}).train_op
            self.global_step = tf.train.get_global_step()
            self.session = tf.Session()
            self.session.run(tf.global_variables_initializer())
        self.prunes = config is not None and config.enabled
        self.times = {"plain": [], "update": []}
        self.session.run(self.train_op)  # the first step's one-off work, not timed

    def step(self) -> None:
        start = time.perf_counter()
        self.session.run(self.train_op)
        elapsed = time.perf_counter() - start
        updated = self.prunes and self.session.run(self.global_step) % 2 == 0
        self.times["update" if updated else "plain"].append(elapsed)


def mean(values):
    return float(np.mean(values)) if values else float("nan")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=30, help="timed steps per graph")
    parser.add_argument("--seq", type=int, default=64, help="tokens per example")
    parser.add_argument("--variants", nargs="+", choices=list(VARIANTS), default=list(VARIANTS))
    parser.add_argument("--bert_config_file", default=os.path.join(REPO, "uncased_L-6_H-384_A-12", "bert_config.json"))
    parser.add_argument("--output", help="also write the table as markdown here")
    args = parser.parse_args()
    with open(args.bert_config_file) as f:
        bert_config = modeling.BertConfig.from_dict(json.load(f))
    load_before = os.getloadavg()
    trainers = {"dense": Trainer(bert_config, None, args.seq, args.steps)}
    for name in args.variants:
        values = dict(dict(target_sparsity=0.5, frequency=2, begin=0.0, end=1.0), **VARIANTS[name])
        if values.get("granularity") == "structured":
            values["attention_heads"] = bert_config.num_attention_heads
        trainers[name] = Trainer(bert_config, pruning.PruningConfig(**values), args.seq, args.steps)
    names = list(trainers)
    for rep in range(args.steps):
        for name in names[rep % len(names):] + names[:rep % len(names)]:
            trainers[name].step()
        print("round %d/%d: %s" % (rep + 1, args.steps, ", ".join(
            "%s %.3f s" % (name, trainers[name].times["plain"][-1] if trainers[name].times["plain"] else float("nan"))
            for name in names)), flush=True)

    dense = mean(trainers["dense"].times["plain"])
    header = ["variant", "plain step (s)", "over dense", "update (s)"] + ["slowdown, %s" % s for s in SCHEDULES]
    rows = [["dense", "%.3f" % dense, "", ""] + [""] * len(SCHEDULES)]
    for name in args.variants:
        times = trainers[name].times
        plain, update = mean(times["plain"]), mean(times["update"])
        row = [name, "%.3f" % plain, "%+.1f%%" % (100 * (plain / dense - 1)),
               "%.3f" % (update - plain) if times["update"] else "-"]
        for schedule in SCHEDULES.values():
            updates = len(pruning.update_steps(schedule, MRPC_STEPS)) if times["update"] else 0
            total = MRPC_STEPS * plain + updates * (update - plain if times["update"] else 0.0)
            row.append("%.1f%% (%d updates)" % (100 * (total / (MRPC_STEPS * dense) - 1), updates))
        rows.append(row)
    table = measurement.markdown_table(header, rows)
    about = measurement.about("batch %d, %d tokens, %d timed steps per graph" % (BATCH, args.seq, args.steps),
                              load_before[0], tf.__version__)
    measurement.report([about, ""] + table, args.output)


if __name__ == "__main__":
    main()
