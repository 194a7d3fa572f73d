"""Exports a fine-tuned run as a SavedModel that TensorFlow Serving, or any TensorFlow, runs without this code.

  python -m bert.serving.export --output_dir=RUN_DIR --export_dir=DIR [--max_seq_length=N]

(with --format=onnx [--quantize=dynamic|static], an ONNX model for ONNX Runtime instead: bert/serving/onnx_export.py)

writes DIR/<timestamp>/ in TF Serving's layout (saved_model.pb, variables/; a new version number each time,
which TF Serving picks up) from the run's latest checkpoint. Its `serving_default` signature takes int32
[batch, seq] `input_ids`, `input_mask` and `segment_ids` (any batch, seq up to the export's
max_seq_length, default the run's: longer inputs fail with a message saying so) and returns `probabilities`
([batch, labels], in the order of the task's labels) or, for STS-B, `predictions` ([batch], the score).
`assets.extra/` holds what a client needs to make those inputs: `vocab.txt` and `model_info.json` (task,
labels, do_lower_case, max_seq_length, inputs and output names, the checkpoint).

The graph is built here in a tf.Graph and written with the TF 1 SavedModelBuilder, which both stacks have,
rather than through the Estimator's export, whose model_fn carries the training machinery (towers,
TPUEstimatorSpec, the replica context): this one holds the inference model and nothing else. It uses
TensorFlow's own ops only (kernels.enabled(False): the fused kernels are a library that a serving process
never loads), no dropout and no TPU ops, and the version appears whole: it is written under `<version>.tmp-<pid>`
and renamed when complete, so TF Serving never loads half of one.
"""
import argparse
import os
import time
from typing import List, Optional

from bert import files, kernels, run_info
from bert.compat import tf
from bert.errors import UserError, exit_on_user_error
from bert.serving import onnx_export, signature


def write_saved_model(run: run_info.TrainedRun, max_seq_length: int, path: str) -> None:
    with tf.Graph().as_default(), kernels.enabled(False):
        inputs, outputs = signature.build_signature(run, max_seq_length)
        saver = run_info.checkpoint_saver(run)
        with tf.Session() as session:
            saver.restore(session, run.checkpoint)
            builder = tf.saved_model.Builder(path)
            builder.add_meta_graph_and_variables(
                session, [tf.saved_model.SERVING], saver=saver, clear_devices=True, strip_default_attrs=True,
                signature_def_map={tf.saved_model.DEFAULT_SERVING_SIGNATURE_DEF_KEY:
                                   tf.saved_model.predict_signature_def(inputs, outputs)})
            builder.save()
    signature.write_assets(run, signature.model_info(run, max_seq_length), path)


def export(output_dir: str, export_dir: str, max_seq_length: Optional[int] = None) -> str:
    """Writes the run's SavedModel to a new version folder of `export_dir`; returns that folder."""
    run = run_info.read_run(output_dir)
    max_seq_length = run.checked_length(max_seq_length)
    files.makedirs(export_dir)
    version = int(time.time())
    while files.exists(os.path.join(export_dir, str(version))):  # two exports within a second
        version += 1
    final = os.path.join(export_dir, str(version))
    with files.replaced_atomically(final) as temporary:  # `<version>.tmp-<pid>`: not a version to TF Serving
        write_saved_model(run, max_seq_length, temporary)
    tf.logging.info("Exported %s (%s, inputs of up to %d tokens) to %s", run.checkpoint, run.output_name,
                    max_seq_length, final)
    return final


def main(argv: Optional[List[str]] = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bert.serving.export", description=__doc__.split("\n\n")[0])
    parser.add_argument("--output_dir", required=True, help="the fine-tuning run's --output_dir")
    parser.add_argument("--export_dir", required=True, help="where the SavedModel's version folders go")
    parser.add_argument("--max_seq_length", type=int, help="the longest input the export takes (default: the run's)")
    parser.add_argument("--format", choices=("saved_model", "onnx"), default="saved_model",
                        help="saved_model: a version folder for TF Serving; onnx: DIR/model.onnx for ONNX Runtime "
                             "(bert/serving/onnx_export.py)")
    parser.add_argument("--quantize", choices=onnx_export.QUANTIZATIONS, default="none",
                        help="with --format=onnx, dynamic: int8 weights, activations quantized at run time; static: "
                             "int8 weights and activations, ranges calibrated on the run's training examples")
    parser.add_argument("--calibration_examples", type=int, default=onnx_export.CALIBRATION_EXAMPLES,
                        help="--quantize=static: how many training examples calibrate the activation ranges")
    args = parser.parse_args(argv)
    if args.format == "onnx":
        print(onnx_export.export_onnx(args.output_dir, args.export_dir, args.max_seq_length, args.quantize,
                                      args.calibration_examples))
    elif args.quantize != "none":
        raise UserError("--quantize=%s needs --format=onnx (a SavedModel is exported in float)" % args.quantize)
    else:
        print(export(args.output_dir, args.export_dir, args.max_seq_length))


if __name__ == "__main__":
    exit_on_user_error(main)
