"""The compact model: a pruned checkpoint with its pruned attention heads and feed-forward neurons cut out.

Structured pruning (--pruning_granularity=structured) masks whole heads and neurons, which leaves the matrices
their full size: TensorFlow multiplies the zeros as it does any number. Cut out, they make the matrices smaller
dense ones, which every kernel runs faster. What is removed is exact: head h of a layer reaches the layer's output
only through rows h*size:(h+1)*size of `attention/output/dense/kernel`, feed-forward neuron j only through row j of
`output/dense/kernel`. Where those rows are zero in the weights the masked model computes with (kernel *
`<kernel>_mask`, and the saved kernels are zero there anyway), the head or neuron adds exactly nothing, whatever
its query, key and value columns, its intermediate column and its biases: they all go with it. Those output rows
decide, not the other masks: a head whose queries are masked but whose output rows are not still adds the mean
of its values.

So any checkpoint can be compacted (`python -m bert.compression.compaction --output_dir=RUN_DIR`): a structured run's shrinks
by the heads and neurons it pruned, another masked run's by the rare whole rows its masks zeroed, a dense one
not at all. The compact model (modeling.BertConfig's attention_head_size and per-layer counts describe it) keeps
the checkpoint's classifier head, so run_classifier.py evaluates, predicts with and fine-tunes it directly.
"""
import argparse
import os
import shutil
from collections import OrderedDict
from dataclasses import replace
from typing import Dict, List, Optional, Sequence

import numpy as np

from bert import checkpoints, files, modeling, run_info
from bert.compat import tf
from bert.checkpoints import CKPT_NAME, write_tf_checkpoint
from bert.errors import UserError, exit_on_user_error
from bert.compression.methods import MethodContext, TrainingMethod
from bert.compression.pruning import AUXILIARY_SUFFIXES, MASK_SUFFIX, Pruning, PruningConfig

CLASSIFIER = ("output_weights", "output_bias")


def model_weight_shapes(reader) -> Dict[str, List[int]]:
    """The model weights' shapes (the encoder's, the pooler's, the classifier head's): not Adam's slots, masks,
    scores, reweights or counters."""
    return {name: shape for name, shape in reader.get_variable_to_shape_map().items()
            if (name.startswith("bert/") or name in CLASSIFIER) and not name.endswith(AUXILIARY_SUFFIXES)}


def model_weights(checkpoint: str) -> Dict[str, np.ndarray]:
    """The checkpoint's model weights as the masked model uses them: kernel * mask where there is a mask."""
    reader = checkpoints.reader(checkpoint)
    weights = OrderedDict()
    for name in sorted(model_weight_shapes(reader)):
        value = reader.get_tensor(name)
        if reader.has_tensor(name + MASK_SUFFIX):
            value = value * reader.get_tensor(name + MASK_SUFFIX)
        weights[name] = value.astype(np.float32)
    return weights


def parameter_count(checkpoint: str) -> int:
    """The model weights' parameters in a checkpoint (see model_weight_shapes)."""
    return sum(int(np.prod(shape)) for shape in model_weight_shapes(checkpoints.reader(checkpoint)).values())


def live_units(output_kernel: np.ndarray, rows_per_unit: int) -> List[int]:
    """The units (heads: `rows_per_unit` = head size; neurons: 1) whose output rows are not all zero."""
    rows = output_kernel.reshape(-1, rows_per_unit, output_kernel.shape[-1])
    return [unit for unit in range(rows.shape[0]) if rows[unit].any()]


def take(weights: Dict[str, np.ndarray], name: str, shape: Sequence[int]) -> np.ndarray:
    """weights[name], removed from `weights`, checked to have the shape the config gives it."""
    if name not in weights:
        raise UserError("the checkpoint has no %s: does the bert_config describe it?" % name)
    value = weights.pop(name)
    if list(value.shape) != list(shape):
        raise UserError("the checkpoint's %s has shape %s but the bert_config gives %s: does it describe the "
                        "checkpoint?" % (name, list(value.shape), list(shape)))
    return value


def compact_layer(weights: Dict[str, np.ndarray], config: modeling.BertConfig, layer: int) -> Dict:
    """Replaces layer `layer`'s attention and feed-forward weights in `weights` by their live heads' and neurons'
    (none at all for a part left with none: its output bias alone stays); returns {"heads", "neurons"} kept."""
    prefix = "bert/encoder/layer_%d/" % layer
    hidden, size, heads = config.hidden_size, config.head_size, config.layer_heads(layer)
    kept = {"heads": 0, "neurons": 0}
    if heads:
        self_weights = {(part, kind): take(weights, "%sattention/self/%s/%s" % (prefix, part, kind),
                                           [hidden, heads * size] if kind == "kernel" else [heads * size])
                        for part in ("query", "key", "value") for kind in ("kernel", "bias")}
        output = take(weights, prefix + "attention/output/dense/kernel", [heads * size, hidden])
        live = live_units(output, size)
        columns = np.array([head * size + offset for head in live for offset in range(size)], dtype=np.int64)
        if live:
            for (part, kind), value in self_weights.items():
                weights["%sattention/self/%s/%s" % (prefix, part, kind)] = value[..., columns]
            weights[prefix + "attention/output/dense/kernel"] = output[columns]
        kept["heads"] = len(live)
    width = config.layer_intermediate_size(layer)
    if width:
        intermediate = {kind: take(weights, prefix + "intermediate/dense/" + kind,
                                   [hidden, width] if kind == "kernel" else [width]) for kind in ("kernel", "bias")}
        output = take(weights, prefix + "output/dense/kernel", [width, hidden])
        live = live_units(output, 1)
        if live:
            for kind, value in intermediate.items():
                weights[prefix + "intermediate/dense/" + kind] = value[..., live]
            weights[prefix + "output/dense/kernel"] = output[live]
        kept["neurons"] = len(live)
    return kept


def compact_config(config: modeling.BertConfig, heads: List[int], widths: List[int]) -> modeling.BertConfig:
    """The compact model's config: Google's scalars when every layer kept as many heads (and neurons), at least
    one, else per-layer lists beside the original scalars; attention_head_size when hidden / heads is not it."""
    uniform_heads, uniform_widths = len(set(heads)) == 1 and heads[0] > 0, len(set(widths)) == 1 and widths[0] > 0
    num_heads = heads[0] if uniform_heads else config.num_attention_heads
    compact = replace(config, num_attention_heads=num_heads,
                      attention_head_size=None if num_heads * config.head_size == config.hidden_size
                      else config.head_size,
                      layer_num_attention_heads=None if uniform_heads else heads,
                      intermediate_size=widths[0] if uniform_widths else config.intermediate_size,
                      layer_intermediate_sizes=None if uniform_widths else widths)
    compact.check()
    return compact


def compact(checkpoint_prefix: str, bert_config: modeling.BertConfig, output_dir: str, vocab_file: str) -> int:
    """Writes the compact model of `checkpoint_prefix` (a model of `bert_config`) to `output_dir`:
    bert_config.json, vocab.txt and bert_model.ckpt.*, the model's weights only. Returns its parameter count.

    The folder is written beside `output_dir` and renamed to it at the end (an earlier one is replaced then), so
    it is either the old or the new model, never part of one."""
    weights = model_weights(checkpoint_prefix)
    kept = [compact_layer(weights, bert_config, layer) for layer in range(bert_config.num_hidden_layers)]
    config = compact_config(bert_config, [k["heads"] for k in kept], [k["neurons"] for k in kept])
    with files.replaced_atomically(output_dir) as temporary:
        files.makedirs(temporary)
        write_tf_checkpoint(weights, os.path.join(temporary, CKPT_NAME))
        with files.open(vocab_file, "rb") as source, files.open(os.path.join(temporary, "vocab.txt"), "wb") as target:
            shutil.copyfileobj(source, target)
        with files.open(os.path.join(temporary, "bert_config.json"), "w") as f:
            f.write(config.to_json_string())
    parameters = int(sum(value.size for value in weights.values()))
    tf.logging.info("Compact model in %s: %d parameters; heads per layer %s, feed-forward neurons per layer %s",
                    output_dir, parameters, [k["heads"] for k in kept], [k["neurons"] for k in kept])
    return parameters


class CompactModel(TrainingMethod):
    """Structured pruning's compact model as a training method: after training, the checkpoint with its pruned heads
    and neurons cut out goes to <output_dir>/compact_model/; after evaluation, that model is evaluated too.

    It runs right after the full-size model's evaluation, in the same process: the masked model evaluates with
    the dense model's shapes, hence at its speed, so eval_examples_per_second against
    compact_eval_examples_per_second is what cutting the pruned heads and neurons out gains, measured like for
    like. Its metrics are the masked model's up to float rounding; a difference is a bug."""

    name = "compact_model"
    runs_on_tpu = True  # nothing in the graph; structured pruning itself is refused there

    def __init__(self, bert_config: modeling.BertConfig, vocab_file: str, headline_metric: str):
        self.bert_config, self.vocab_file, self.headline_metric = bert_config, vocab_file, headline_metric

    @classmethod
    def read_settings(cls, values) -> PruningConfig:
        return Pruning.read_settings(values)

    @classmethod
    def build(cls, config: PruningConfig, context: MethodContext) -> Optional["CompactModel"]:
        if config.granularity != "structured" or not config.enabled:
            return None
        return cls(context.bert_config, context.settings.run.vocab_file, context.task.headline_metric)

    def after_training(self, checkpoint: str, output_dir: str) -> Dict:
        return {"parameters": parameter_count(checkpoint),
                "compact_parameters": compact(checkpoint, self.bert_config,
                                              os.path.join(output_dir, run_info.COMPACT_MODEL), self.vocab_file)}

    def after_evaluation(self, checkpoint, output_dir, results, evaluate) -> Dict:
        compact_dir = os.path.join(output_dir, run_info.COMPACT_MODEL)
        if not files.isdir(compact_dir):
            return {}
        compacts = {"compact_" + key: value for key, value in evaluate(
            os.path.join(compact_dir, "bert_config.json"), os.path.join(compact_dir, CKPT_NAME)).items()}
        headline, rate = "eval_" + self.headline_metric, "eval_examples_per_second"
        tf.logging.info("compact model: %s %.4f (full size %.4f), %s examples/s (full size %s)", headline,
                        compacts["compact_" + headline], results[headline], compacts.get("compact_" + rate),
                        results.get(rate))
        return compacts


def main(argv: Optional[List[str]] = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bert.compression.compaction", description=__doc__.split("\n\n")[0])
    parser.add_argument("--output_dir", required=True, help="a fine-tuning run's --output_dir: its latest checkpoint "
                        "is compacted with the bert_config_file and vocab_file its run_info.json records, into "
                        "OUTPUT_DIR/%s/" % run_info.COMPACT_MODEL)
    args = parser.parse_args(argv)
    run = run_info.read_run(args.output_dir)
    target = os.path.join(args.output_dir, run_info.COMPACT_MODEL)
    before = parameter_count(run.checkpoint)
    after = compact(run.checkpoint, run.bert_config, target, run.vocab_file)
    print("%s: %d parameters (%d before, %.1f%%)" % (target, after, before, 100.0 * after / before))


if __name__ == "__main__":
    exit_on_user_error(main)
