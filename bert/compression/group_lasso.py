"""Reweighted group lasso: the penalty that drives whole groups of weights towards zero before they are pruned.

    penalty = lambda * sum_g rew_g * ||W_g||_2,    rew_g = 1 / (||W_g||_2 + 1e-3)

over the groups of every prunable matrix (bert/compression/pruning.py's choice of matrices): the pruning granularity's
units, i.e. single weights (then it is a reweighted L1 penalty), blocks (`--pruning_block`, padded at the
edges), for the tile granularity rows of tiles: 1 x `--pruning_tile` segments of the matrix's fixed column
tiles (the tile pattern's column regrouping depends on a sparsity, which this step has none of), or, structured,
each attention head and FFN neuron, the concatenation of its weights across the layer's matrices (its columns
of the query, key, value and intermediate kernels and its rows of the output ones: pruning.HEAD_COLUMNS). This
is step 2 of the three-step pipeline (Chen et al.'s E.T.): fine-tuned weights are trained under the penalty,
then step 3 prunes the groups it shrank (`--pruning_schedule=oneshot`).

The reweights are constants of the penalty (no gradient flows into them), kept in `<matrix>_group_lasso_reweight`
variables (a layer's heads' in its attention output matrix's, its neurons' in its output matrix's: the matrices
whose rows they are) and refreshed from the current weights when global_step is a multiple of `reweight_steps` (step 0
included, so the first ones come from the initial weights). They are in the checkpoint, so a resumed run
continues with the same ones. The penalty's gradient is lambda * rew_g * W_g / ||W_g||_2 (0 for a zero group).
"""
from typing import Dict, List, Optional, Tuple

from bert.compat import tf
from bert.compression.pruning import (HEAD_ROWS, NEURON_ROWS, REWEIGHT_SUFFIX, block_sums, encoder_layers, group_sums,
                          is_prunable, masked_pairs)

EPSILON = 1e-3


def group_shape(granularity: str, block: Tuple[int, int], tile: int) -> Optional[Tuple[int, int]]:
    """The rows x columns of one group; None for structured, whose groups span several matrices."""
    return {"weight": (1, 1), "block": block, "tile": (1, tile), "structured": None}[granularity]


def norms_of(squares):
    """The square roots of sums of squares, with gradient 0 (not NaN) where a sum is 0 (an all-zero group)."""
    positive = squares > 0
    return tf.where(positive, tf.sqrt(tf.where(positive, squares, tf.ones_like(squares))), tf.zeros_like(squares))


def group_norms(weight, group: Tuple[int, int]):
    """||W_g||_2 of every group of one matrix."""
    return norms_of(tf.square(weight) if group == (1, 1) else block_sums(tf.square(weight), group))


def structured_norms(matrices: Dict[str, object], heads: int) -> List[Tuple[str, object]]:
    """(matrix whose rows the groups are, ||W_g||_2 of its groups) for every layer's heads and its neurons."""
    names = list(matrices)
    found = []
    for prefix, layer in encoder_layers(names).items():
        squares = group_sums({scope: tf.square(matrices[names[index]]) for scope, index in layer.items()}, heads)
        found += [("%s/%s/kernel" % (prefix, rows), norms_of(sums)) for rows, sums in zip((HEAD_ROWS, NEURON_ROWS),
                                                                                            squares)]
    return found


def penalty(strength: float, group: Optional[Tuple[int, int]], reweight_steps: int, prune_embeddings: bool = False,
            heads: int = 0):
    """The penalty over the trainable prunable matrices of the default graph, to add to the training loss. Where
    they are masked (pruning), over the masked weights: a pruned weight's stored value must change nothing.
    `group` None: structured groups, of `heads` heads per layer."""
    step = tf.train.get_or_create_global_step()
    refresh = tf.equal(tf.cast(step, tf.int64) % reweight_steps, 0)
    masks = {weight.op.name: mask for weight, mask in masked_pairs()}
    matrices = {weight.op.name: weight * masks[weight.op.name] if weight.op.name in masks else weight
                for weight in tf.trainable_variables() if is_prunable(weight.op.name, prune_embeddings)}
    groups = structured_norms(matrices, heads) if group is None else [
        (name, group_norms(value, group)) for name, value in matrices.items()]
    terms = []
    for name, norms in groups:
        with tf.get_default_graph().name_scope(None):
            stored = tf.Variable(tf.ones(norms.shape), trainable=False, use_resource=True, name=name + REWEIGHT_SUFFIX)

        def refreshed(norms=norms, stored=stored):
            fresh = 1.0 / (tf.stop_gradient(norms) + EPSILON)
            with tf.control_dependencies([stored.assign(fresh)]):
                return tf.identity(fresh)

        reweights = tf.stop_gradient(tf.cond(refresh, refreshed, stored.read_value))
        terms.append(tf.reduce_sum(reweights * norms))
    if not terms:
        raise ValueError("no prunable matrices for the group lasso penalty")
    return strength * tf.add_n(terms)
