"""Dense against compact: a fine-tuned model and the compact model of a structured run, on the same dev set
(issue 16: the compact model holds at most half the encoder's matrix parameters and evaluates >= 1.6x faster).

    .venv/bin/python bench/compact_speed.py --dense RUN_DIR --structured RUN_DIR --data_dir $GLUE_DIR/MRPC
        [--rounds 3] [--train_steps 30] [--output FILE]

RUN_DIR are run_classifier output dirs of one task: the dense run, and a structured pruning run with its
`compact_model/`; both are evaluated at the dense run's max_seq_length and fine-tuned at its batch size. Each round runs, alternating dense and compact so that both see the same drift:
- an eval-only run_classifier (this Python's TensorFlow) from each model's checkpoint, in a fresh output dir:
  `eval_examples_per_second` (the dev set after its first batch) and the dev metric;
- a short fine-tune from each (`--train_steps` steps at the run's batch size and length):
  `train_examples_per_second`.
Then prints (and appends to --output) a markdown table with the medians and the ratios, and the encoder's
matrix parameters of both checkpoints (the query, key, value, attention output, intermediate and output
kernels), counted by reading them.
"""
import argparse
import os
import statistics
import subprocess
import sys
import tempfile

import numpy as np

import measurement  # bench/, the script's own folder
from bert import run_info
from bert.compat import tf
from bert.checkpoints import CKPT_NAME
from bert.sweeps.runs import read_eval_results

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

ENCODER_KERNELS = ("attention/self/query/kernel", "attention/self/key/kernel", "attention/self/value/kernel",
                   "attention/output/dense/kernel", "intermediate/dense/kernel", "output/dense/kernel")


def encoder_matrix_parameters(checkpoint: str) -> int:
    """The encoder kernels' parameters of a checkpoint; a pruned run's masks, slots and scores are left out."""
    return sum(int(np.prod(shape)) for name, shape in tf.train.list_variables(checkpoint)
               if name.startswith("bert/encoder/layer_") and name.endswith(ENCODER_KERNELS))


def run_classifier(model: dict, task: str, data_dir: str, output_dir: str, extra) -> dict:
    """eval_results.txt of the run, or for a training run without evaluation its recorded timing."""
    command = [sys.executable, "-m", "bert.run_classifier", "--task_name=" + task, "--data_dir=" + data_dir,
               "--vocab_file=" + model["vocab"], "--bert_config_file=" + model["config"],
               "--init_checkpoint=" + model["checkpoint"], "--output_dir=" + output_dir,
               "--eval_batch_size=32"] + list(extra)
    done = subprocess.run(command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          universal_newlines=True)
    if done.returncode != 0:
        sys.exit("failed: %s\n%s" % (" ".join(command), done.stdout[-3000:]))
    if "--do_eval=true" in extra:
        return read_eval_results(os.path.join(output_dir, "eval_results.txt"))
    return run_info.totals(run_info.read(output_dir)["invocations"])


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dense", required=True, help="the dense run's output dir")
    parser.add_argument("--structured", required=True, help="the structured run's output dir (with compact_model/)")
    parser.add_argument("--data_dir", required=True, help="the task's GLUE folder")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--train_steps", type=int, default=30)
    parser.add_argument("--output", help="also append the table as markdown here")
    args = parser.parse_args()
    dense_run = run_info.read_run(args.dense)
    settings = run_info.read(args.dense)["settings"]
    task = dense_run.task.name
    compact_dir = os.path.join(args.structured, run_info.COMPACT_MODEL)
    models = {
        "dense": {"vocab": dense_run.vocab_file, "checkpoint": dense_run.checkpoint,
                  "config": run_info.recorded_file(settings, "bert_config_file", args.dense)},
        "compact": {"vocab": os.path.join(compact_dir, "vocab.txt"),
                    "config": os.path.join(compact_dir, "bert_config.json"),
                    "checkpoint": os.path.join(compact_dir, CKPT_NAME)}}
    batch, length = settings["train_batch_size"], dense_run.max_seq_length
    train_examples = sum(1 for _ in open(os.path.join(args.data_dir, "train.tsv"), "rb")) - 1
    epochs = args.train_steps * batch / train_examples
    cache = tempfile.mkdtemp(prefix="compact_speed_cache")  # tokenized once for all runs
    common = ["--max_seq_length=%d" % length, "--feature_cache_dir=" + cache]
    headline = "eval_" + dense_run.task.headline_metric
    measured = {name: {"eval": [], "train": [], "metric": None} for name in models}
    load_before = os.getloadavg()[0]
    for round_number in range(args.rounds):
        order = list(models) if round_number % 2 == 0 else list(models)[::-1]
        for name in order:
            with tempfile.TemporaryDirectory() as scratch:
                results = run_classifier(models[name], task, args.data_dir, os.path.join(scratch, "eval"),
                                         common + ["--do_eval=true"])
                measured[name]["eval"].append(float(results["eval_examples_per_second"]))
                measured[name]["metric"] = float(results.get(headline, float("nan")))
                results = run_classifier(models[name], task, args.data_dir, os.path.join(scratch, "train"),
                                         common + ["--do_train=true", "--train_batch_size=%d" % batch,
                                                   "--num_train_epochs=%r" % epochs, "--save_checkpoints_steps=100000"])
                measured[name]["train"].append(float(results["train_examples_per_second"]))
            print("round %d/%d %s: eval %.1f, train %.1f examples/s" % (
                round_number + 1, args.rounds, name, measured[name]["eval"][-1], measured[name]["train"][-1]),
                flush=True)

    parameters = {name: encoder_matrix_parameters(model["checkpoint"]) for name, model in models.items()}
    rows = []
    for name in models:
        m = measured[name]
        rows.append([name, "%.1f" % (100 * m["metric"]), "{:,}".format(parameters[name]),
                     "%.1f" % statistics.median(m["eval"]), "%.1f" % statistics.median(m["train"]),
                     ", ".join("%.1f" % v for v in m["eval"]), ", ".join("%.1f" % v for v in m["train"])])
    ratio = {kind: statistics.median(measured["compact"][kind]) / statistics.median(measured["dense"][kind])
             for kind in ("eval", "train")}
    about = measurement.about("%s dev set, eval batch 32, training %d steps of batch %d, %d tokens" % (
        task, args.train_steps, batch, length), load_before, tf.__version__)
    header = ["model", headline.replace("eval_", "dev ") + " %", "encoder matrix parameters",
              "eval examples/s (median)", "train examples/s (median)", "eval, each round", "train, each round"]
    table = measurement.markdown_table(header, rows)
    summary = ("compact / dense: %.1f%% of the encoder matrix parameters, eval %.2fx, train %.2fx"
               % (100.0 * parameters["compact"] / parameters["dense"], ratio["eval"], ratio["train"]))
    measurement.report([about, ""] + table + ["", summary], args.output)


if __name__ == "__main__":
    main()
