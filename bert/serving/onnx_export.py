"""Exports a fine-tuned run as an ONNX model, in float or 8-bit integers, for ONNX Runtime on CPU.

  python -m bert.serving.export --output_dir=RUN_DIR --export_dir=DIR --format=onnx [--quantize=none|dynamic|static]

writes DIR/model.onnx and DIR/assets.extra/ (vocab.txt, model_info.json), the SavedModel's interface: int32
[batch, sequence] `input_ids`, `input_mask` and `segment_ids` (any batch, sequence up to model_info.json's
max_seq_length) in, `probabilities` ([batch, labels]) or, for STS-B, `predictions` ([batch]) out.

The steps: the SavedModel's inference graph (signature.build_signature: TensorFlow's own ops, no dropout) with the
checkpoint's weights frozen in, LayerNorm written in the form ONNX Runtime fuses (modeling.onnx_patterns);
tf2onnx converts it; ONNX Runtime's transformer optimizer fuses LayerNorm and the bias-GELU (the fusions it made
are in model_info.json; attention is left unfused); `--quantize=dynamic` then stores every MatMul's weights
as int8, per output channel, and ONNX Runtime quantizes the activations at run time (on a CPU with VNNI its int8
matrix multiplies use it); `--quantize=static` stores the MatMuls' inputs as uint8 too, with ranges measured on
`--calibration_examples` of the run's training examples (ONNX Runtime's min-max calibration; the embedding
tables stay float, so the file is about 65% of the float one for the embedded model). ONNX has no assert: a
longer input than max_seq_length is refused by our predictor (bert.serving.predict) and fails in ONNX Runtime for
any other client (the position embeddings end there).

The converter and the runtime are pinned per stack in requirements/ (Python 3.7 has older wheels: tf2onnx
1.14, onnx 1.14, ONNX Runtime 1.10 there; 1.17, 1.17 and 1.32 with TF 2.15).
"""
import inspect
import json
import os
import tempfile
from typing import Dict, List, Optional

import numpy as np

from bert import files, kernels, modeling, run_info, tokenization
from bert.data import processors
from bert.compat import tf
from bert.errors import UserError
from bert.serving import signature

MODEL_FILE = "model.onnx"
QUANTIZATIONS = ("none", "dynamic", "static")
CALIBRATION_EXAMPLES = 300  # static: training examples whose activation ranges set the int8 scales
CALIBRATION_BATCH = 16
OPSET = 13  # ONNX Runtime 1.10 (the newest for Python 3.7) runs it, and it has every op the model needs
PACKAGES = "tf2onnx, onnx and onnxruntime"


def onnx_packages():
    """(tf2onnx, onnx, onnxruntime), or a UserError naming what to install."""
    try:
        import onnx
        import onnxruntime
        import tf2onnx
    except ImportError as error:
        raise UserError("the ONNX export and runtime need the packages %s (%s): pip install the versions pinned in "
                        "requirements/tf1.txt or requirements/tf2.txt" % (PACKAGES, error)) from None
    return tf2onnx, onnx, onnxruntime


def frozen_graph(run: run_info.TrainedRun, max_seq_length: int):
    """The SavedModel's inference graph with the checkpoint's values as constants."""
    with tf.Graph().as_default() as graph, kernels.enabled(False), modeling.onnx_patterns():
        signature.build_signature(run, max_seq_length)
        saver = run_info.checkpoint_saver(run)
        with tf.Session() as session:
            saver.restore(session, run.checkpoint)
            return tf.graph_util.convert_variables_to_constants(session, graph.as_graph_def(), [run.output_name])


def converted(run: run_info.TrainedRun, max_seq_length: int):
    """The float ONNX model, its inputs and output named as the SavedModel's, dimensions named batch and
    sequence."""
    tf2onnx, _, _ = onnx_packages()
    model, _ = tf2onnx.convert.from_graph_def(
        frozen_graph(run, max_seq_length), input_names=[name + ":0" for name in run_info.INPUTS],
        output_names=[run.output_name + ":0"], opset=OPSET)
    renamed = {name + ":0": name for name in run_info.INPUTS + (run.output_name,)}
    for node in model.graph.node:
        node.input[:] = [renamed.get(name, name) for name in node.input]
        node.output[:] = [renamed.get(name, name) for name in node.output]
    for value in list(model.graph.input) + list(model.graph.output):
        value.name = renamed[value.name]
        for dim, name in zip(value.type.tensor_type.shape.dim, ("batch", "sequence")):
            dim.dim_param = name
    return model


def optimized(path: str, run: run_info.TrainedRun) -> Dict[str, int]:
    """Runs ONNX Runtime's transformer optimizer on the model at `path`, in place; returns the fusions made."""
    from onnxruntime.transformers import optimizer
    from onnxruntime.transformers.fusion_options import FusionOptions
    options = FusionOptions("bert_tf")
    options.enable_attention = False  # its patterns do not match our attention's mask (it fails or breaks the graph)
    options.enable_skip_layer_norm = False  # ONNX Runtime 1.10's takes [batch, seq, hidden]; the encoder's are 2-D
    config = run.bert_config
    model = optimizer.optimize_model(path, model_type="bert_tf", num_heads=config.num_attention_heads,
                                     hidden_size=config.hidden_size, opt_level=0, optimization_options=options)
    # The fused ops' outputs are float; saying so lets tools that go by types (static quantization's calibration)
    # see them: ONNX's shape inference at opset 13 does not know LayerNormalization.
    import onnx
    typed = {value.name for value in model.model.graph.value_info}
    model.model.graph.value_info.extend(
        onnx.helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, None) for node in model.model.graph.node
        if node.op_type == "LayerNormalization" or node.domain == "com.microsoft"  # the fused GELUs
        for name in node.output[:1] if name not in typed)
    if not any(opset.domain == "com.microsoft" for opset in model.model.opset_import):  # 1.10's optimizer omits it
        model.model.opset_import.append(onnx.helper.make_opsetid("com.microsoft", 1))
    model.save_model_to_file(path)
    return {name: count for name, count in sorted(model.get_fused_operator_statistics().items()) if count}


def quantized_dynamic(source: str, target: str) -> None:
    """int8 weights per output channel; activations quantized by ONNX Runtime as it runs."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic
    quantize_dynamic(source, target, weight_type=QuantType.QInt8, per_channel=True,
                     extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT})  # for tf2onnx's unnamed types


def calibration_batches(run: run_info.TrainedRun, max_seq_length: int, count: int) -> List[Dict[str, np.ndarray]]:
    """`count` of the run's training examples, evenly spread over its train split, as model inputs in batches of
    similar length, each cut to its longest (as the predictor feeds the model)."""
    data_dir = run_info.read(run.output_dir)["settings"].get("data_dir", {}).get("path")
    if not data_dir or not files.isdir(data_dir):
        raise UserError("%s: --quantize=static calibrates on the run's training data, and its --data_dir %s is not "
                        "found (run_info.json records it as given: run this from where the run was started)"
                        % (run.output_dir, data_dir))
    examples = processors.read_examples(run.task, data_dir, "train")
    chosen = [examples[i] for i in np.linspace(0, len(examples) - 1, min(count, len(examples))).astype(int)]
    tokenizer = tokenization.FullTokenizer(run.vocab_file, do_lower_case=run.do_lower_case)
    inputs = signature.model_inputs(chosen, run.task, max_seq_length, tokenizer)
    return [batch for _, batch in signature.length_batches(inputs, CALIBRATION_BATCH)]


def quantized_static(source: str, target: str, batches: List[Dict[str, np.ndarray]]) -> None:
    """int8 weights per output channel and uint8 activations whose ranges come from running `batches` (min and
    max of each MatMul input): ONNX Runtime's QLinearMatMul, no range computed while serving."""
    import onnx
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    class Batches(CalibrationDataReader):
        def __init__(self):
            self.remaining = iter(batches)

        def get_next(self):
            return next(self.remaining, None)

    model = onnx.load(source)
    weights = {initializer.name for initializer in model.graph.initializer}
    # The dense layers' MatMuls (a weight as their second input), not attention's activation-by-activation ones.
    # The embedding tables stay float: quantizing their lookups' outputs too cost MRPC 0.8 F1 more (84.5).
    dense = [node.name for node in model.graph.node if node.op_type == "MatMul" and node.input[1] in weights]
    # ONNX Runtime 1.10 optimizes the graph first by default, merging MatMul and Add into Gemm, which it then
    # leaves in float; later versions have no such step (nor the argument)
    unoptimized = {"optimize_model": False} if "optimize_model" in inspect.signature(quantize_static).parameters else {}
    quantize_static(source, target, Batches(), quant_format=QuantFormat.QOperator, op_types_to_quantize=["MatMul"],
                    nodes_to_quantize=dense, per_channel=True, activation_type=QuantType.QUInt8,
                    weight_type=QuantType.QInt8, extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
                    **unoptimized)


def write_onnx(run: run_info.TrainedRun, max_seq_length: int, quantize: str, path: str,
               calibration_examples: int = CALIBRATION_EXAMPLES) -> None:
    """Writes model.onnx and assets.extra/ into the new folder `path`."""
    _, onnx, onnxruntime = onnx_packages()
    files.makedirs(path)
    with tempfile.TemporaryDirectory() as scratch:
        float_model = os.path.join(scratch, "float.onnx")
        onnx.save(converted(run, max_seq_length), float_model)
        fusions = optimized(float_model, run)
        final = float_model
        if quantize == "dynamic":
            final = os.path.join(scratch, "int8.onnx")
            quantized_dynamic(float_model, final)
        elif quantize == "static":
            final = os.path.join(scratch, "int8.onnx")
            quantized_static(float_model, final, calibration_batches(run, max_seq_length, calibration_examples))
        files.copy(final, os.path.join(path, MODEL_FILE))  # export_dir may be a URL
    info = dict(signature.model_info(run, max_seq_length), format="onnx", quantization=quantize,
                onnxruntime_fusions=fusions, onnxruntime_version=onnxruntime.__version__)
    if quantize == "static":
        info["calibration_examples"] = calibration_examples
    signature.write_assets(run, info, path)


def export_onnx(output_dir: str, export_dir: str, max_seq_length: Optional[int] = None,
                quantize: str = "none", calibration_examples: int = CALIBRATION_EXAMPLES) -> str:
    """Writes the run's ONNX model into `export_dir` (replacing an earlier ONNX export there); returns it."""
    if quantize not in QUANTIZATIONS:
        raise UserError("--quantize=%s: one of %s" % (quantize, ", ".join(QUANTIZATIONS)))
    if calibration_examples < 1:
        raise UserError("--calibration_examples=%d: it takes at least 1" % calibration_examples)
    onnx_packages()
    run = run_info.read_run(output_dir)
    max_seq_length = run.checked_length(max_seq_length)
    if files.exists(export_dir) and not set(files.listdir(export_dir)) <= {MODEL_FILE, "assets.extra"}:
        raise UserError("--export_dir=%s holds other files than an ONNX export's (%s and assets.extra/): choose a "
                        "new or empty folder" % (export_dir, MODEL_FILE))
    with files.replaced_atomically(export_dir) as temporary:
        write_onnx(run, max_seq_length, quantize, temporary, calibration_examples)
    tf.logging.info("Exported %s (%s, %s, inputs of up to %d tokens) to %s", run.checkpoint, run.output_name,
                    {"none": "float", "dynamic": "int8 weights", "static": "int8 weights and activations"}[quantize],
                    max_seq_length,
                    os.path.join(export_dir, MODEL_FILE))
    return export_dir


def read_model_info(export_dir: str) -> dict:
    """model_info.json of an export (SavedModel version folder or ONNX folder)."""
    path = os.path.join(export_dir, "assets.extra", signature.MODEL_INFO)
    if not files.isfile(path):
        raise UserError("%s has no assets.extra/%s: it is not an export of bert.serving.export"
                        % (export_dir, signature.MODEL_INFO))
    with files.open(path) as f:
        return json.load(f)
