"""What one ranking of heads against neurons by mean w^2 (score per weight) would prune from a checkpoint, at a
few target sparsities: the measurement behind structured pruning's split (the same fraction of each kind,
bert/compression/pruning.py's structured_masks). On the embedded MiniLM it takes almost only neurons.

    .venv/bin/python bench/structured_split.py [checkpoint prefix] [bert_config.json]
"""
import os
import sys

import numpy as np

from bert import checkpoints, modeling
from bert.compression import pruning
from bert.compat import tf

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def main(checkpoint: str, config_file: str) -> None:
    config = modeling.BertConfig.from_json_file(config_file)
    reader = checkpoints.reader(checkpoint)
    names = sorted(name for name in reader.get_variable_to_shape_map() if pruning.is_prunable(name, False))
    hidden, heads = config.hidden_size, config.num_attention_heads
    head_means, neuron_means = [], []
    with tf.Graph().as_default(), tf.Session() as session:
        for layer in pruning.encoder_layers(names).values():
            squares = {scope: np.square(reader.get_tensor(names[index])) for scope, index in layer.items()}
            per_head, per_neuron = session.run(pruning.group_sums(squares, heads))
            head_means.append(per_head / (4 * hidden * hidden // heads))
            neuron_means.append(per_neuron / (2 * hidden))
    head_means, neuron_means = np.concatenate(head_means), np.concatenate(neuron_means)
    print("mean w^2: heads median %.3g (%.3g to %.3g), neurons median %.3g (%.3g to %.3g)" % (
        np.median(head_means), head_means.min(), head_means.max(), np.median(neuron_means), neuron_means.min(),
        neuron_means.max()))
    scores = np.concatenate([head_means, neuron_means])
    sizes = np.concatenate([np.full(head_means.size, 4 * hidden * hidden // heads),
                            np.full(neuron_means.size, 2 * hidden)])
    order = np.argsort(scores, kind="stable")
    middles = 2 * np.cumsum(sizes[order]) - sizes[order]
    for sparsity in (0.3, 0.5, 0.7):
        gone = order[:np.searchsorted(middles, 2 * sparsity * sizes.sum(), "right")]
        print("sparsity %.1f, one ranking by mean w^2: %d of %d heads and %d of %d neurons pruned" % (
            sparsity, (gone < head_means.size).sum(), head_means.size, (gone >= head_means.size).sum(),
            neuron_means.size))


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "uncased_L-6_H-384_A-12", "bert_model.ckpt"),
         sys.argv[2] if len(sys.argv) > 2 else os.path.join(ROOT, "uncased_L-6_H-384_A-12", "bert_config.json"))
