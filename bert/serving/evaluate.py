"""Scores a model on a task's labelled split: the official metrics, examples per second and its size on disk.

  python -m bert.serving.evaluate --model_dir=DIR --data_dir=GLUE/MRPC [--split=dev] [--batch_size=32]

DIR is a fine-tuning run's --output_dir (evaluated by TensorFlow, as bert.serving.predict runs it) or an ONNX
export's folder (ONNX Runtime; bert/serving/onnx_export.py), so a float run, its float ONNX export and its int8
one are compared on the same examples with the same batches (similar lengths together, each cut to its longest).
Prints one JSON object: the task's metrics (as eval_results.txt names them, without `eval_`), `examples`,
`examples_per_second` (prediction alone, after one warm-up batch: tokenizing is not counted), `model_bytes` (the
model's float variables, or model.onnx) and `runtime`.
"""
import argparse
import json
import time
from typing import List, Optional

from bert import files
from bert.data import processors
from bert.data.metrics import metrics_of_outputs
from bert.errors import exit_on_user_error
from bert.serving import predict


def model_bytes(predictor) -> int:
    """model.onnx's size, or the model's float variables' (a checkpoint also holds the optimizer's slots)."""
    if isinstance(predictor, predict.OnnxPredictor):
        return files.size(predictor.model_path)
    return sum(v.shape.num_elements() * v.dtype.size for v in predictor.session.graph.get_collection("variables"))


def evaluate(model_dir: str, data_dir: str, split: str = "dev", batch_size: int = 32,
             max_seq_length: Optional[int] = None) -> dict:
    predictor = predict.open_predictor(model_dir, max_seq_length, batch_size)
    try:
        examples = processors.read_examples(predictor.task, data_dir, split)
        inputs = predictor.inputs(examples)
        predictor.outputs({name: array[:batch_size] for name, array in inputs.items()})  # warm-up
        start = time.perf_counter()
        outputs = predictor.outputs(inputs)
        seconds = time.perf_counter() - start
    finally:
        predictor.close()
    return dict(metrics_of_outputs(predictor.task, examples, outputs), examples=len(examples),
                examples_per_second=len(examples) / seconds, model_bytes=model_bytes(predictor),
                runtime="onnxruntime" if isinstance(predictor, predict.OnnxPredictor) else "tensorflow")


def main(argv: Optional[List[str]] = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bert.serving.evaluate", description=__doc__.split("\n\n")[0])
    parser.add_argument("--model_dir", required=True,
                        help="a fine-tuning run's --output_dir, or a folder with an ONNX export's model.onnx")
    parser.add_argument("--data_dir", required=True, help="the task's data folder, e.g. glue_data/MRPC")
    parser.add_argument("--split", default="dev", help="a labelled split of the task (default: dev)")
    parser.add_argument("--batch_size", type=int, default=32)
    parser.add_argument("--max_seq_length", type=int, help="tokens per example (default: the model's)")
    args = parser.parse_args(argv)
    results = evaluate(args.model_dir, args.data_dir, args.split, args.batch_size, args.max_seq_length)
    print(json.dumps({key: round(value, 6) if isinstance(value, float) else value for key, value in results.items()}))


if __name__ == "__main__":
    exit_on_user_error(main)
