"""Where the time of a training step and of an eval batch goes, by op type (a measurement, not a test).

    .venv/bin/python bench/profile.py [--task MRPC] [--steps 12] [--output bench/profile.md]

Runs run_classifier.py's model as bench/benchmark.py measures it (the embedded checkpoint's weights,
dynamic padding, batch 32, the default towers and fused kernels, no XLA): `--steps` training steps and a
pass of the dev set to warm up, then as many again with TensorFlow's per-op step stats. Op time is summed
per op type. The towers' ops overlap and each op spreads over the cores, so the sums exceed the wall time;
their shares are what compares. Matrix multiplies (MatMul, BatchMatMul and their fused and oneDNN
forms: every op type named *MatMul*) run near the machine's peak (see the benchmark), so their share
bounds what any rewrite of the rest can gain: were every other op free, a step would take that share
of its time at best.
"""
import argparse
import collections
import os
import sys

import benchmark  # bench/benchmark.py, beside this script

from bert import modeling
from bert.data import processors
from bert.compat import tf
from bert.training.estimator import default_towers


def op_times(measurement: benchmark.Measurement, runs: int) -> collections.Counter:
    """Microseconds per op type over `runs` traced runs of the measurement's work (its fetches, as warmed up)."""
    totals = collections.Counter()
    for _ in range(runs):
        for op_type, micros in benchmark.traced_ops(measurement.session, measurement.fetches):
            totals[op_type] += micros
    return totals


def profile(measurement: benchmark.Measurement, warm_up_chunks: int, traced_runs: int):
    """({op type: ms per run}, the matrix multiplies' share of op time), after `warm_up_chunks` chunks."""
    for _ in range(warm_up_chunks):  # the first run also pays for Grappler
        measurement.run_chunk()
    times = op_times(measurement, traced_runs)
    measurement.session.close()
    return ({op: micros / traced_runs / 1000 for op, micros in times.items()},
            sum(micros for op, micros in times.items() if "MatMul" in op) / sum(times.values()))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--task", default="MRPC")
    parser.add_argument("--glue_dir", default=benchmark.GLUE_DIR)
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--output", help="also write the table to this markdown file")
    args = parser.parse_args()
    tf.logging.set_verbosity(tf.logging.WARN)

    task = processors.get_task(args.task)
    config = modeling.BertConfig.from_json_file(os.path.join(benchmark.BERT_DIR, "bert_config.json"))
    train_towers, eval_towers = (default_towers(use_tpu=False, training=training) for training in (True, False))
    cache = benchmark.feature_cache()
    cached = {split: benchmark.cached_split(cache, task, args.glue_dir, split) for split in ("train", "dev")}
    # training: `steps` steps to warm up (one chunk), then `steps` traced; eval: a pass to warm up, then one traced
    train = benchmark.Measurement(task, cached["train"], config, 128, 32, 2 * args.steps, 2, True, False, train_towers,
                                  True, training=True)
    train_ms, train_share = profile(train, 1, args.steps)
    dev = benchmark.Measurement(task, cached["dev"], config, 128, 32, 0, 1, True, False, eval_towers, True,
                                training=False)
    eval_ms, eval_share = profile(dev, 1, dev.chunk)

    ranked = sorted(set(train_ms) | set(eval_ms), key=lambda op: -(train_ms.get(op, 0) + eval_ms.get(op, 0)))
    train_total, eval_total = sum(train_ms.values()), sum(eval_ms.values())
    lines = ["# Op time by type: %s, embedded checkpoint (L=%d, H=%d), dynamic padding, batch 32, %d tower(s) "
             "training, %d evaluating" % (task.name, config.num_hidden_layers, config.hidden_size, train_towers, eval_towers), "",
             "Machine: %s." % benchmark.machine(), "", "| op type | training: ms per step | share | eval: ms per batch | share |", "|---|---|---|---|---|"]
    for op in ranked:
        if max(train_ms.get(op, 0) / train_total, eval_ms.get(op, 0) / eval_total) >= 0.005:
            lines.append("| %s | %.1f | %.1f%% | %.1f | %.1f%% |" % (
                op, train_ms.get(op, 0), 100 * train_ms.get(op, 0) / train_total,
                eval_ms.get(op, 0), 100 * eval_ms.get(op, 0) / eval_total))
    lines += ["| all (summed over overlapping ops) | %.1f | 100%% | %.1f | 100%% |" % (train_total, eval_total), "",
              "Matrix multiplies (op types named *MatMul*): %.0f%% of the op time of a training step, %.0f%% of an "
              "eval batch's (a whole pass of the %d dev examples traced). Were every other op free, training would "
              "be at most %.2fx and evaluation %.2fx as fast." % (100 * train_share, 100 * eval_share,
                                                       len(cached["dev"].lengths), 1 / train_share, 1 / eval_share),
              "",
              "Command: `%s`" % " ".join(["python bench/profile.py"] + sys.argv[1:])]
    print("\n".join(lines))
    if args.output:
        with open(args.output, "w") as f:
            f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
