"""Predicts raw text with a fine-tuned run: sentences (or sentence pairs) in, labels and probabilities out.

  python -m bert.serving.predict --model_dir=RUN_DIR [--input_file=F] [--output_file=F]

(--model_dir may also be an ONNX export's folder, bert/serving/onnx_export.py: ONNX Runtime then runs it.)

Input (a file, or stdin without --input_file), UTF-8, one example a line, in either format:
- TSV: the text, or for a pair task (MRPC, MNLI, ...) its two texts separated by a TAB; no header line;
- JSON lines: an object with "sentence", or "sentence1" and "sentence2" (other keys are ignored).
The format is told by the first line (JSON lines start with `{`), or by --input_format.

Output (a file, written atomically, or stdout): a header line, then one line per input line, in input order:
`label<TAB>p_<label 0><TAB>p_<label 1>...`, the most probable label and each label's probability (in the
order of the task's labels, as test_results.tsv has them), or for STS-B `score`, the predicted similarity.

The run's own pieces make the model inputs and outputs: its vocab and casing (tokenization.py), features.py's
`[CLS] a [SEP] b [SEP]` conversion and truncation at the run's max_seq_length, and the model that
run_classifier.py evaluated (bert/run_info.py's read_run, with the fused CPU kernels unless --fused_kernels=false), so
the probabilities are run_classifier's --do_predict ones. Examples run in batches of similar length, each
padded only to its longest, then go back to input order. A bad line (wrong column count, empty text, bad
JSON) is an `error: <file> line N: ...` line on stderr, every bad line one, and nothing is predicted.
"""
import argparse
import json
import os
import sys
from typing import Dict, Iterable, List, Optional, Sequence

import numpy as np

from bert import files, kernels, run_info, tokenization
from bert.data import processors
from bert.compat import tf
from bert.errors import UserError, exit_on_user_error
from bert.serving import signature

FORMATS = ("auto", "tsv", "jsonl")
MAX_REPORTED = 20  # bad lines listed one by one; the rest are counted


def example_from_tsv(line: str, pairs: bool, task: processors.TaskSpec) -> processors.InputExample:
    texts = line.split("\t")
    wanted = 2 if pairs else 1
    if len(texts) != wanted:
        raise ValueError("%d TAB-separated column%s, but %s takes %s" % (
            len(texts), "" if len(texts) == 1 else "s", task.name, "two texts" if pairs else "one text"))
    empty = [str(column + 1) for column, text in enumerate(texts) if not text.strip()]
    if empty:
        raise ValueError("empty text in column %s" % " and ".join(empty))
    return processors.InputExample("", texts[0], texts[1] if pairs else None, None)


def example_from_json(line: str, pairs: bool, task: processors.TaskSpec) -> processors.InputExample:
    try:
        value = json.loads(line)
    except ValueError as error:
        raise ValueError("not JSON (%s)" % error) from None
    keys = ("sentence1", "sentence2") if pairs else ("sentence",)
    if not isinstance(value, dict) or not all(key in value for key in keys):
        raise ValueError("%s takes a JSON object with %s" % (task.name, " and ".join('"%s"' % key for key in keys)))
    for key in keys:
        if not isinstance(value[key], str) or not value[key].strip():
            raise ValueError('"%s" is not a non-empty string' % key)
    return processors.InputExample("", value[keys[0]], value[keys[1]] if pairs else None, None)


def read_examples(raw_lines: Iterable[bytes], path: str, task: processors.TaskSpec, pairs: bool,
                  input_format: str = "auto") -> List[processors.InputExample]:
    """One example per line; raises a UserError with a line for each bad line (up to MAX_REPORTED)."""
    examples, problems = [], []
    parse = None
    for line_no, line in processors.decode_lines(raw_lines, path):
        if parse is None:
            json_lines = input_format == "jsonl" or (input_format == "auto" and line.lstrip().startswith("{"))
            parse = example_from_json if json_lines else example_from_tsv
        try:
            examples.append(parse(line, pairs, task))
        except ValueError as error:
            problems.append("%s line %d: %s" % (path, line_no, error))
    if problems:
        more = len(problems) - MAX_REPORTED
        raise UserError("\n".join(problems[:MAX_REPORTED] + (["%s: %d more bad lines" % (path, more)] if more > 0
                                                               else [])))
    if not examples:
        raise UserError("%s: no input lines" % path)
    return examples


def header(task: processors.TaskSpec) -> str:
    return "score\n" if task.is_regression else "\t".join(["label"] + ["p_" + label for label in task.labels]) + "\n"


def output_lines(task: processors.TaskSpec, outputs: np.ndarray) -> List[str]:
    if task.is_regression:
        return ["%.8f\n" % score for score in outputs]
    return ["\t".join([task.labels[int(np.argmax(row))]] + ["%.8f" % p for p in row]) + "\n" for row in outputs]


def batched_outputs(inputs: Dict[str, np.ndarray], task: processors.TaskSpec, batch_size: int,
                    run_batch) -> np.ndarray:
    """Outputs in the order of the examples ([n, labels] probabilities, or [n] scores): `run_batch({input:
    array})` runs signature.length_batches."""
    count = len(inputs["input_mask"])
    outputs = np.zeros((count,) + (() if task.is_regression else (task.num_labels,)), np.float32)
    for rows, batch in signature.length_batches(inputs, batch_size):
        outputs[rows] = run_batch(batch)
    return outputs


class _Predicting:
    """What both predictors share: examples to inputs (`inputs`), inputs to outputs (`outputs`, timed alone by
    bert.serving.evaluate), and `predict`, both in one."""
    task: processors.TaskSpec
    max_seq_length: int
    tokenizer: tokenization.FullTokenizer

    def inputs(self, examples: Sequence[processors.InputExample]) -> Dict[str, np.ndarray]:
        return signature.model_inputs(examples, self.task, self.max_seq_length, self.tokenizer)

    def outputs(self, inputs: Dict[str, np.ndarray]) -> np.ndarray:
        raise NotImplementedError

    def predict(self, examples: Sequence[processors.InputExample]) -> np.ndarray:
        """Outputs in the order of `examples`: [n, labels] probabilities, or [n] scores."""
        return self.outputs(self.inputs(examples))


def checked_batch_size(batch_size: int) -> int:
    if batch_size < 1:
        raise UserError("--batch_size=%d: it takes at least 1" % batch_size)
    return batch_size


class Predictor(_Predicting):
    """A run's model in a session of its own, restored once, for any number of `predict` calls."""

    def __init__(self, run: run_info.TrainedRun, max_seq_length: Optional[int] = None, batch_size: int = 32,
                 fused_kernels: bool = True):
        self.run, self.task, self.batch_size = run, run.task, checked_batch_size(batch_size)
        self.max_seq_length = run.checked_length(max_seq_length)
        self.tokenizer = tokenization.FullTokenizer(run.vocab_file, do_lower_case=run.do_lower_case)
        on_cpu = not tf.config.experimental.list_physical_devices("GPU")
        graph = tf.Graph()
        with graph.as_default(), kernels.enabled(fused_kernels and on_cpu):
            self.placeholders = {name: tf.placeholder(tf.int32, [None, None], name=name) for name in run_info.INPUTS}
            self.output_tensor = run_info.model_outputs(run, *[self.placeholders[name] for name in run_info.INPUTS])
            saver = run_info.checkpoint_saver(run)
        graph.finalize()
        self.session = tf.Session(graph=graph)
        saver.restore(self.session, run.checkpoint)

    def outputs(self, inputs: Dict[str, np.ndarray]) -> np.ndarray:
        return batched_outputs(inputs, self.task, self.batch_size, lambda batch: self.session.run(
            self.output_tensor, {self.placeholders[name]: array for name, array in batch.items()}))

    def close(self) -> None:
        self.session.close()


class OnnxPredictor(_Predicting):
    """An ONNX export (bert/serving/onnx_export.py) in ONNX Runtime, from its folder alone: model.onnx, and the
    vocab, casing, task and longest input of its assets.extra/."""

    def __init__(self, export_dir: str, max_seq_length: Optional[int] = None, batch_size: int = 32):
        from bert.serving import onnx_export
        _, _, onnxruntime = onnx_export.onnx_packages()
        self.info = onnx_export.read_model_info(export_dir)
        self.task, self.batch_size = processors.get_task(self.info["task"]), checked_batch_size(batch_size)
        self.max_seq_length = max_seq_length or self.info["max_seq_length"]
        if not 3 <= self.max_seq_length <= self.info["max_seq_length"]:
            raise UserError("--max_seq_length=%d: the export %s takes 3 to %d tokens (export it again with a larger "
                            "--max_seq_length)" % (self.max_seq_length, export_dir, self.info["max_seq_length"]))
        vocab = os.path.join(export_dir, "assets.extra", self.info["vocab"])
        self.tokenizer = tokenization.FullTokenizer(vocab, do_lower_case=self.info["do_lower_case"])
        self.model_path = os.path.join(export_dir, onnx_export.MODEL_FILE)
        options = onnxruntime.SessionOptions()
        # Every core this process may use: ONNX Runtime 1.10 (Python 3.7's) counts physical cores, one on this
        # machine's VM, and ran at half speed.
        options.intra_op_num_threads = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 0
        with files.open(self.model_path, "rb") as f:  # the folder may be a URL
            self.session = onnxruntime.InferenceSession(f.read(), options, providers=["CPUExecutionProvider"])

    def outputs(self, inputs: Dict[str, np.ndarray]) -> np.ndarray:
        return batched_outputs(inputs, self.task, self.batch_size, lambda batch: self.session.run(None, batch)[0])

    def close(self) -> None:
        self.session = None


def open_predictor(model_dir: str, max_seq_length: Optional[int] = None, batch_size: int = 32,
                   fused_kernels: bool = True):
    """A predictor of a fine-tuning run's --output_dir (TensorFlow) or of an ONNX export's folder (ONNX Runtime)."""
    from bert.serving.onnx_export import MODEL_FILE
    if files.isfile(os.path.join(model_dir, MODEL_FILE)):
        return OnnxPredictor(model_dir, max_seq_length, batch_size)
    return Predictor(run_info.read_run(model_dir), max_seq_length, batch_size, fused_kernels)


def predict(model_dir: str, input_file: Optional[str] = None, output_file: Optional[str] = None,
            batch_size: int = 32, max_seq_length: Optional[int] = None, input_format: str = "auto",
            fused_kernels: bool = True) -> None:
    """Reads `input_file` (None: stdin), predicts and writes `output_file` (None: stdout); see the module's doc."""
    if input_file is not None and not files.isfile(input_file):
        raise UserError("--input_file %s not found" % input_file)
    predictor = open_predictor(model_dir, max_seq_length, batch_size, fused_kernels)
    try:
        pairs = run_info.takes_pairs(predictor.task)
        if input_file is None:
            examples = read_examples(sys.stdin.buffer, "<stdin>", predictor.task, pairs, input_format)
        else:
            with files.open(input_file, "rb") as f:
                examples = read_examples(f, input_file, predictor.task, pairs, input_format)
        text = header(predictor.task) + "".join(output_lines(predictor.task, predictor.predict(examples)))
    finally:
        predictor.close()
    if output_file is None:
        sys.stdout.write(text)
        sys.stdout.flush()
    else:
        files.write_atomically(output_file, text)


def parse_bool(text: str) -> bool:
    if text.lower() not in ("true", "false", "1", "0"):
        raise argparse.ArgumentTypeError("true or false, not %r" % text)
    return text.lower() in ("true", "1")


def main(argv: Optional[List[str]] = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bert.serving.predict", description=__doc__.split("\n\n")[0])
    parser.add_argument("--model_dir", required=True,
                        help="the fine-tuning run's --output_dir, or a folder with an ONNX export's model.onnx")
    parser.add_argument("--input_file", help="TSV or JSON lines (default: stdin)")
    parser.add_argument("--output_file", help="default: stdout")
    parser.add_argument("--input_format", choices=FORMATS, default="auto",
                        help="auto: JSON lines if the first line starts with {, else TSV")
    parser.add_argument("--batch_size", type=int, default=32)
    parser.add_argument("--max_seq_length", type=int, help="tokens per example (default: the run's)")
    parser.add_argument("--fused_kernels", type=parse_bool, default=True,
                        help="on CPU, the fused GELU, softmax and LayerNorm kernels (bert/kernels.py)")
    args = parser.parse_args(argv)
    predict(args.model_dir, args.input_file, args.output_file, args.batch_size, args.max_seq_length,
            args.input_format, args.fused_kernels)


if __name__ == "__main__":
    exit_on_user_error(main)
