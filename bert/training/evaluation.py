"""Evaluation and prediction: the model's outputs on the dev and test splits, the official metrics and the
result files (eval_results.txt, test_results*.tsv, data_stats.json)."""
import json
import os
import tempfile
import time
from typing import Dict, List, NamedTuple

import numpy as np

from bert import files, modeling
from bert.compat import tf
from bert.data import processors
from bert.data.features import FeatureCache, inference_order, input_fn_builder
from bert.data.metrics import metrics_of_outputs
from bert.files import write_atomically
from bert.settings import Settings
from bert.training.estimator import build_estimator, dynamic_padding, length_multiple, model_fn_builder, num_towers


def read_split(task: processors.TaskSpec, data_dir: str, split: str,
               settings: Settings) -> List[processors.InputExample]:
    """Reads one split and records what was skipped or kept despite a problem in data_stats.json."""
    examples, stats = processors.read_examples_with_stats(task, data_dir, split, strict=settings.data.strict_data)
    path = os.path.join(settings.run.output_dir, "data_stats.json")
    recorded = {}
    if files.exists(path):
        with files.open(path) as f:
            recorded = json.load(f)
    recorded["%s %s" % (task.name, split)] = stats.as_dict()
    write_atomically(path, json.dumps(recorded, indent=1, sort_keys=True) + "\n")
    return examples


class Predictions(NamedTuple):
    outputs: np.ndarray  # per example, in file order: class probabilities, or the STS-B score
    per_example_loss: np.ndarray
    timed_examples: int  # the examples after the first batch, and the seconds they took: a rate that leaves out
    timed_seconds: float  # graph building, the checkpoint's restore and the first batch's one-off work


def run_predictions(estimator, cache: FeatureCache, task: processors.TaskSpec, data_dir: str, split: str,
                    examples: List[processors.InputExample], batch_size: int, settings: Settings) -> Predictions:
    """The model's outputs and per-example losses for `examples`, in order.

    On TPUs, which run one batch shape, the last batch is filled up with padding examples, which
    `is_real_example` then tells apart and which are dropped.
    """
    full_batches = settings.hardware.use_tpu
    padding = -len(examples) % batch_size if full_batches else 0
    cached = cache.tfrecord(task, data_dir, split, examples, padding)
    order = inference_order(cached.lengths, dynamic_padding(settings))
    input_fn = input_fn_builder(cached.path, settings.data.max_seq_length, task.is_regression, len(order), order,
                                batch_size, drop_remainder=full_batches, dynamic_padding=dynamic_padding(settings),
                                length_multiple=length_multiple(settings.hardware))
    rows, first_batch_done = [], None
    for row in estimator.predict(input_fn):  # a batch is computed, then its rows come one by one
        rows.append(row)
        if len(rows) == batch_size:
            first_batch_done = time.time()
    timed = (len(rows) - batch_size, time.time() - first_batch_done) if len(rows) > batch_size else (0, 0.0)
    in_file_order = [None] * len(rows)
    for position, row in zip(order, rows):
        in_file_order[position] = row
    real = [row for row in in_file_order if row is not None and row["is_real_example"]]
    if len(real) != len(examples):
        raise RuntimeError("got %d predictions for %d %s examples" % (len(real), len(examples), split))
    return Predictions(np.array([row["outputs"] for row in real]), np.array([row["per_example_loss"] for row in real]),
                       *timed)


def evaluate(estimator, cache: FeatureCache, task: processors.TaskSpec, settings: Settings) -> Dict[str, float]:
    """Official metrics on each dev split; MNLI's mismatched split gets an `eval_mismatched_` prefix."""
    results, timed_examples, timed_seconds = {}, 0, 0.0
    data_dir, batch_size = settings.run.data_dir, settings.training.eval_batch_size
    for split in task.eval_splits:
        examples = read_split(task, data_dir, split, settings)
        tf.logging.info("***** Eval on %s: %d examples, batch %d *****", split, len(examples), batch_size)
        out = run_predictions(estimator, cache, task, data_dir, split, examples, batch_size, settings)
        metrics = dict(metrics_of_outputs(task, examples, out.outputs), loss=float(out.per_example_loss.mean()))
        prefix = "eval_" if split == "dev" else "eval_%s_" % split.replace("dev_", "")
        results.update({prefix + name: value for name, value in metrics.items()})
        timed_examples, timed_seconds = timed_examples + out.timed_examples, timed_seconds + out.timed_seconds
    if "dev_mismatched" in task.eval_splits:
        results["eval_matched_accuracy"] = results["eval_accuracy"]
    if timed_seconds > 0:
        results["eval_examples_per_second"] = round(timed_examples / timed_seconds, 2)
    return results


def evaluator_of(cache: FeatureCache, task: processors.TaskSpec, settings: Settings):
    """evaluate() of another model of the run, `evaluate(bert_config_file, checkpoint)`, like the trained one's
    (a method's after_evaluation gets it: structured pruning's compact model)."""
    def evaluate_model(bert_config_file: str, checkpoint: str) -> Dict[str, float]:
        config = modeling.BertConfig.from_json_file(bert_config_file)
        model_fn = model_fn_builder(config, task, checkpoint, 0.0, 0, 0, settings.hardware.use_tpu,
                                    inference_towers=num_towers(settings.hardware, training=False))
        with tempfile.TemporaryDirectory() as empty:  # no checkpoint in its model_dir: the weights are `checkpoint`
            estimator = build_estimator(model_fn, settings, settings.training.eval_batch_size, model_dir=empty)
            return evaluate(estimator, cache, task, settings)
    return evaluate_model


def predict(estimator, cache: FeatureCache, task: processors.TaskSpec, settings: Settings) -> None:
    """test_results.tsv: one line per test example, class probabilities (or the STS-B score).

    MNLI also writes test_results_mismatched.tsv and, when the GLUE folder beside --data_dir has the
    diagnostic set, test_results_ax.tsv: the leaderboard scores AX with the MNLI model.
    """
    data_dir, output_dir = settings.run.data_dir, settings.run.output_dir
    jobs = [(task, data_dir, split, split.replace("test", "test_results") + ".tsv") for split in task.test_splits]
    if task.name == "MNLI":
        ax = processors.get_task("AX")
        ax_dir = os.path.join(os.path.dirname(os.path.normpath(data_dir)), ax.directory)
        if files.exists(os.path.join(ax_dir, ax.splits["test"].file)):
            jobs.append((ax, ax_dir, "test", "test_results_ax.tsv"))
        else:
            tf.logging.warning("No diagnostic set in %s: AX is not predicted", ax_dir)
    for job_task, job_dir, split, name in jobs:
        examples = read_split(job_task, job_dir, split, settings)
        tf.logging.info("***** Predict %s %s: %d examples *****", job_task.name, split, len(examples))
        outputs = run_predictions(estimator, cache, job_task, job_dir, split, examples,
                                  settings.training.predict_batch_size, settings).outputs
        lines = ["\t".join("%.8f" % p for p in np.atleast_1d(row)) + "\n" for row in outputs]
        write_atomically(os.path.join(output_dir, name), "".join(lines))


def write_eval_results(output_dir: str, results: Dict[str, float]) -> str:
    text = "".join("%s = %s\n" % (key, results[key]) for key in sorted(results))
    write_atomically(os.path.join(output_dir, "eval_results.txt"), text)
    return text
