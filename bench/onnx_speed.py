"""A fine-tuned run in TensorFlow against its ONNX exports in ONNX Runtime, float and int8, on one dev set
(issue 27: int8 within 1 F1 of float, at least 2x TensorFlow's eval rate, at most 30% of the float file).

    .venv/bin/python bench/onnx_speed.py --run RUN_DIR --data_dir $GLUE_DIR/MRPC [--rounds 5] [--output FILE]

Exports the run (`--format=onnx`, `--quantize=none` and `dynamic`) into a temporary folder, opens the three
predictors of bert.serving.evaluate once (TensorFlow with the fused CPU kernels, as run_classifier evaluates;
ONNX Runtime on every usable core), tokenizes the dev set once, then each round times every model's pass
over it (batches of 32 of similar length, each cut to its longest), in an order that alternates from round to
round. Prints (and appends to --output) a markdown table: the dev metric, median examples/s, each round's, the
size on disk (TensorFlow: its float variables), and the ratios to TensorFlow.
"""
import argparse
import os
import statistics
import tempfile
import time

import measurement  # bench/, the script's own folder
from bert.compat import tf
from bert.data.metrics import metrics_of_outputs
from bert.data import processors
from bert.serving import evaluate, onnx_export, predict


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run", required=True, help="the fine-tuned run's output dir")
    parser.add_argument("--data_dir", required=True, help="the task's GLUE folder")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--output", help="also append the table as markdown here")
    args = parser.parse_args()
    scratch = tempfile.mkdtemp(prefix="onnx_speed")
    predictors = {"TensorFlow, float": predict.open_predictor(args.run)}
    for name, quantize in (("ONNX Runtime, float", "none"), ("ONNX Runtime, int8 (dynamic)", "dynamic")):
        predictors[name] = predict.open_predictor(
            onnx_export.export_onnx(args.run, os.path.join(scratch, quantize), quantize=quantize))
    task = predictors["TensorFlow, float"].task
    examples = processors.read_examples(task, args.data_dir, "dev")
    inputs = predictors["TensorFlow, float"].inputs(examples)
    load_before = os.getloadavg()[0]
    rates = {name: [] for name in predictors}
    metric = {}
    for name, predictor in predictors.items():  # warm-up, and the metric (the same every round)
        outputs = predictor.outputs(inputs)
        metric[name] = metrics_of_outputs(task, examples, outputs)
    for round_number in range(args.rounds):
        order = list(predictors) if round_number % 2 == 0 else list(predictors)[::-1]
        for name in order:
            start = time.perf_counter()
            predictors[name].outputs(inputs)
            rates[name].append(len(examples) / (time.perf_counter() - start))
        print("round %d/%d: %s" % (round_number + 1, args.rounds,
                                   ", ".join("%s %.1f" % (name, rates[name][-1]) for name in predictors)), flush=True)
    sizes = {name: evaluate.model_bytes(predictor) for name, predictor in predictors.items()}
    base = "TensorFlow, float"
    headline = task.headline_metric
    rows = [[name, "%.2f" % (100 * metric[name][headline]), "%.1f" % statistics.median(rates[name]),
             "%.2fx" % (statistics.median(rates[name]) / statistics.median(rates[base])),
             "%.1f MB" % (sizes[name] / 1e6), "%.0f%%" % (100.0 * sizes[name] / sizes[base]),
             ", ".join("%.1f" % rate for rate in rates[name])] for name in predictors]
    about = measurement.about("%s dev set (%d examples), batches of 32 by length, %d tokens at most" % (
        task.name, len(examples), predictors[base].max_seq_length), load_before, tf.__version__)
    table = measurement.markdown_table(
        ["model", "dev %s %%" % headline, "examples/s (median)", "vs TensorFlow", "size", "size vs TensorFlow",
         "each round"], rows)
    measurement.report([about, ""] + table, args.output)


if __name__ == "__main__":
    main()
