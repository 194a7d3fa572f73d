"""What every export of a run shares: the inference graph's signature and the assets a client needs beside it.

bert/serving/export.py writes them into a SavedModel, bert/serving/onnx_export.py into an ONNX export's folder.
"""
import json
import os

from bert import files, run_info
from bert.compat import tf

MODEL_INFO = "model_info.json"


def build_signature(run: run_info.TrainedRun, max_seq_length: int):
    """The serving graph in the current graph: ({input name: placeholder}, {output name: tensor})."""
    inputs = {name: tf.placeholder(tf.int32, [None, None], name=name) for name in run_info.INPUTS}
    check = tf.assert_less_equal(tf.shape(inputs["input_ids"])[1], max_seq_length, message=(
        "inputs longer than the export takes: max_seq_length=%d tokens" % max_seq_length))
    # Reference variables (TF 1's, this code's everywhere): TF 2.15 writes resource variables with a VarHandleOp
    # attribute that TF 1.15 does not know, so an export made on TF 2 would not load there. TF 2's loader warns
    # that it makes no Python objects of them, which serving never needs.
    with tf.control_dependencies([check]):
        outputs = run_info.model_outputs(run, *[tf.identity(inputs[name]) for name in run_info.INPUTS])
    return inputs, {run.output_name: tf.identity(outputs, name=run.output_name)}


def model_info(run: run_info.TrainedRun, max_seq_length: int) -> dict:
    return {"task": run.task.name, "labels": list(run.task.labels), "do_lower_case": run.do_lower_case,
            "max_seq_length": max_seq_length, "inputs": list(run_info.INPUTS), "output": run.output_name,
            "vocab": "vocab.txt", "checkpoint": os.path.basename(run.checkpoint)}


def write_assets(run: run_info.TrainedRun, info: dict, path: str) -> None:
    """assets.extra/ of an export (SavedModel or ONNX): what a client needs to make the inputs."""
    extra = os.path.join(path, "assets.extra")
    files.makedirs(extra)
    files.copy(run.vocab_file, os.path.join(extra, "vocab.txt"))
    with files.open(os.path.join(extra, MODEL_INFO), "w") as f:
        f.write(json.dumps(info, indent=1) + "\n")
