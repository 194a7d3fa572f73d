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
from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple

from bert.compat import tf
from bert.compression.methods import MethodContext, TrainingMethod
from bert.compression.pruning import (HEAD_ROWS, NEURON_ROWS, REWEIGHT_SUFFIX, PruningConfig, Pruning, block_sums,
                                      encoder_layers, group_sums, is_prunable, masked_pairs, with_heads)
from bert.errors import UserError

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


def structured_norms(matrices: Dict[str, object], head_size: int) -> List[Tuple[str, object]]:
    """(matrix whose rows the groups are, ||W_g||_2 of its groups) for every layer's heads and its neurons."""
    names = list(matrices)
    found = []
    for prefix, layer in encoder_layers(names).items():
        squares = group_sums({scope: tf.square(matrices[names[index]]) for scope, index in layer.items()}, head_size)
        found += [("%s/%s/kernel" % (prefix, rows), norms_of(sums)) for rows, sums in zip((HEAD_ROWS, NEURON_ROWS),
                                                                                            squares)]
    return found


def penalty(strength: float, group: Optional[Tuple[int, int]], reweight_steps: int, prune_embeddings: bool = False,
            head_size: int = 0):
    """The penalty over the trainable prunable matrices of the default graph, to add to the training loss. Where
    they are masked (pruning), over the masked weights: a pruned weight's stored value must change nothing.
    `group` None: structured groups, heads of `head_size` and neurons, each layer's own number of each."""
    step = tf.train.get_or_create_global_step()
    refresh = tf.equal(tf.cast(step, tf.int64) % reweight_steps, 0)
    masks = {weight.op.name: mask for weight, mask in masked_pairs()}
    matrices = {weight.op.name: weight * masks[weight.op.name] if weight.op.name in masks else weight
                for weight in tf.trainable_variables() if is_prunable(weight.op.name, prune_embeddings)}
    groups = structured_norms(matrices, head_size) if group is None else [
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


@dataclass(frozen=True)
class GroupLassoSettings:
    """--group_lasso and --group_lasso_reweight_steps, with the pruning settings that make its groups."""
    strength: float = 0.0  # lambda (0: no penalty)
    reweight_steps: int = 100
    pruning: PruningConfig = PruningConfig(0.0)  # granularity, block, tile and prune_embeddings: the groups


class GroupLasso(TrainingMethod):
    """The penalty as a training method: a term of the objective, trained under but not reported as `loss`."""

    name = "group_lasso"
    flags = ("--group_lasso",)

    def __init__(self, settings: GroupLassoSettings):
        self.settings = settings

    @staticmethod
    def define_flags(flags) -> None:
        flags.DEFINE_float("group_lasso", 0.0, "Add the reweighted group lasso penalty lambda * sum_g ||W_g|| / "
                           "(||W_g|| + 1e-3) over the prunable matrices' groups (--pruning_granularity's units) to the "
                           "training loss, with this lambda (e.g. 1e-4); 0: none. See bert/compression/group_lasso.py.")
        flags.DEFINE_integer("group_lasso_reweight_steps", 100, "Steps between refreshes of the group lasso's "
                             "reweights.")

    @classmethod
    def read_settings(cls, values) -> GroupLassoSettings:
        return GroupLassoSettings(values["group_lasso"], values["group_lasso_reweight_steps"],
                                  Pruning.read_settings(values))

    @classmethod
    def build(cls, settings: GroupLassoSettings, context: MethodContext) -> Optional["GroupLasso"]:
        if settings.strength < 0:
            raise UserError("--group_lasso=%g must be >= 0 (0: no penalty)" % settings.strength)
        if settings.reweight_steps < 1:
            raise UserError("--group_lasso_reweight_steps=%d must be at least 1" % settings.reweight_steps)
        pruning = with_heads(settings.pruning, context.bert_config)
        return cls(GroupLassoSettings(settings.strength, settings.reweight_steps, pruning)) \
            if settings.strength > 0 else None

    def recorded_settings(self) -> Dict:
        """The penalty's settings and the pruning settings, which decide its groups."""
        return dict(self.settings.pruning.settings(), group_lasso=self.settings.strength,
                    group_lasso_reweight_steps=self.settings.reweight_steps)

    def objective(self, objective, inputs):
        config = self.settings.pruning
        return objective + penalty(self.settings.strength, group_shape(config.granularity, config.block, config.tile),
                                   self.settings.reweight_steps, config.prune_embeddings, config.head_size)
