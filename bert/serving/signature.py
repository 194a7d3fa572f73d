"""What every export of a run shares: the inference graph's signature, the assets a client needs beside it, and
the inputs as the model is fed them.

bert/serving/export.py writes them into a SavedModel, bert/serving/onnx_export.py into an ONNX export's folder;
bert/serving/predict.py and the static quantization's calibration feed the model through `length_batches`.
"""
import json
import os
from typing import Dict, Iterator, Sequence, Tuple

import numpy as np

from bert import files, run_info, tokenization
from bert.compat import tf
from bert.data import processors
from bert.data.features import convert_examples, inference_order

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


def model_inputs(examples: Sequence[processors.InputExample], task: processors.TaskSpec, max_seq_length: int,
                 tokenizer: tokenization.FullTokenizer) -> Dict[str, np.ndarray]:
    """{input name: int32 [n, max_seq_length]} of the examples, as run_classifier makes them."""
    features = convert_examples(examples, task, max_seq_length, tokenizer)
    return {name: np.array([getattr(f, name) for f in features], np.int32) for name in run_info.INPUTS}


def length_batches(inputs: Dict[str, np.ndarray],
                   batch_size: int) -> Iterator[Tuple[np.ndarray, Dict[str, np.ndarray]]]:
    """(rows, {input name: array}) batches of examples of similar length, each cut to its longest example."""
    lengths = inputs["input_mask"].sum(axis=1)
    order = inference_order(lengths, group_by_length=True)
    for start in range(0, len(order), batch_size):
        rows = order[start:start + batch_size]
        yield rows, {name: array[rows, :lengths[rows].max()] for name, array in inputs.items()}
