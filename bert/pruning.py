"""Magnitude pruning of BERT's weight matrices during fine-tuning: masks, their schedule, and what they leave.

Each prunable matrix `<name>` (by default the encoder's query, key, value, attention output, intermediate and
output kernels) gets a non-trainable float variable `<name>_mask` of its shape. A custom variable getter on the
model's variable scope hands the model `kernel * mask` instead of the kernel, so modeling.py is unchanged,
Google's variable names stay as they are (a pruned checkpoint loads anywhere: its masks are extra variables
that init-from-checkpoint code ignores), and every copy of the model (towers, the [CLS]-only last layer, which
reuse the variables) reads the same mask. The gradient reaching a pruned weight is zero.

Masks are recomputed inside train_op, in a tf.cond that runs only every `frequency` steps of the schedule
(graph-side: no extra session run), from the score |w| * mask: a pruned weight scores 0, so a weight once
pruned stays pruned, and its stored value (which the checkpoint writes as 0, see `ZeroPrunedWeights`) never
matters again. So an interrupted run resumes exactly: the masks are in the checkpoint and the schedule is a
function of global_step.

Evaluation and prediction build the dense model: the saved weights are zero where the masks are, so the
masks would change nothing there.
"""
import contextlib
import re
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from bert.compat import tf
from bert.errors import UserError

ENCODER_MATRICES = r"^bert/encoder/layer_\d+/(attention/self/(query|key|value)|attention/output/dense|" \
                   r"intermediate/dense|output/dense)/kernel$"
# --prune_embeddings adds these: the embedding tables, the pooler and the classifier.
EXTRA_MATRICES = r"^(bert/embeddings/(word|position|token_type)_embeddings|bert/pooler/dense/kernel|output_weights)$"
MASKED = "pruning_masked"  # graph collection of (weight variable, mask variable) pairs
ZERO_PRUNED = "pruning_zero_pruned_weights"  # graph collection holding the op that zeroes pruned weights
SPARSITY = "pruning_sparsity"  # the scalar variable: the masks' sparsity over all prunable weights
MASK_SUFFIX = "_mask"
OPTIMIZER_SUFFIXES = ("/adam_m", "/adam_v", "/grad_accum")


@dataclass(frozen=True)
class PruningConfig:
    """What --target_sparsity and the other --pruning_* flags ask for (see run_classifier.py's flags)."""

    target_sparsity: float
    granularity: str = "weight"  # weight | block
    block: Tuple[int, int] = (16, 16)
    schedule: str = "gradual"  # gradual | oneshot
    begin: float = 0.0  # fractions of the training steps
    end: float = 0.7
    frequency: int = 10  # steps between mask updates
    scope: str = "per_matrix"  # per_matrix | global
    prune_embeddings: bool = False

    @property
    def enabled(self) -> bool:
        return self.target_sparsity > 0

    def check(self) -> None:
        """Refuses settings no schedule can follow, before any graph is built."""
        if not 0 <= self.target_sparsity < 1:
            raise UserError("--target_sparsity=%g must be in [0, 1)" % self.target_sparsity)
        if self.granularity not in ("weight", "block"):
            raise UserError("--pruning_granularity=%s: use weight or block" % self.granularity)
        if self.schedule not in ("gradual", "oneshot"):
            raise UserError("--pruning_schedule=%s: use gradual or oneshot" % self.schedule)
        if self.scope not in ("per_matrix", "global"):
            raise UserError("--pruning_scope=%s: use per_matrix or global" % self.scope)
        if not 0 <= self.begin < self.end <= 1:
            raise UserError("--pruning_begin=%g and --pruning_end=%g must satisfy 0 <= begin < end <= 1 (to prune at "
                            "once, use --pruning_schedule=oneshot)" % (self.begin, self.end))
        if self.frequency < 1:
            raise UserError("--pruning_frequency=%d must be at least 1 step" % self.frequency)

    def settings(self) -> Dict:
        """The flags as run_info.json records them (a run dir trained with others is refused)."""
        return {"target_sparsity": self.target_sparsity, "pruning_granularity": self.granularity,
                "pruning_block": "%dx%d" % self.block, "pruning_schedule": self.schedule,
                "pruning_begin": self.begin, "pruning_end": self.end, "pruning_frequency": self.frequency,
                "pruning_scope": self.scope, "prune_embeddings": self.prune_embeddings}


def parse_block(text: str) -> Tuple[int, int]:
    """`16x16` -> (16, 16): rows x columns of a block."""
    found = re.match(r"^\s*(\d+)\s*x\s*(\d+)\s*$", text or "")
    if not found or not int(found.group(1)) or not int(found.group(2)):
        raise UserError("--pruning_block=%s: give positive rows x columns, e.g. 16x16" % text)
    return int(found.group(1)), int(found.group(2))


def is_prunable(name: str, prune_embeddings: bool) -> bool:
    """Whether the variable `name` (no `:0`) is pruned."""
    return bool(re.match(ENCODER_MATRICES, name) or (prune_embeddings and re.match(EXTRA_MATRICES, name)))


def masking_scope(config: Optional[PruningConfig]):
    """The variable scope to build the model in: one whose getter masks the prunable matrices (or, with
    pruning off, no scope at all, so a dense graph has not one op more)."""
    if config is None or not config.enabled:
        return contextlib.nullcontext()

    def masked_getter(getter, name, *args, **kwargs):
        weight = getter(name, *args, **kwargs)
        if not is_prunable(name, config.prune_embeddings):
            return weight
        mask = getter(name + MASK_SUFFIX, *args, **dict(
            kwargs, shape=weight.shape, dtype=weight.dtype.base_dtype, initializer=tf.ones_initializer(),
            trainable=False, collections=[tf.GraphKeys.GLOBAL_VARIABLES],
            aggregation=tf.VariableAggregation.ONLY_FIRST_REPLICA))
        if all(known is not weight for known, _ in tf.get_collection(MASKED)):  # not a reuse
            tf.add_to_collection(MASKED, (weight, mask))
        return weight * mask

    return tf.variable_scope(tf.get_variable_scope(), custom_getter=masked_getter)


def masked_pairs() -> List[Tuple]:
    """(weight, mask) of every masked matrix of the default graph, in the order they were built."""
    return tf.get_collection(MASKED)


def schedule_sparsity(config: PruningConfig, step, num_train_steps: int):
    """The sparsity (float64 tensor) the gradual schedule gives the masks at `step`: Zhu & Gupta's cubic ramp
    s_f * (1 - (1 - (t - t0) / (t1 - t0))^3) from 0 at t0 (`begin`) to the target s_f at t1 (`end`)."""
    begin, end = ramp_steps(config, num_train_steps)
    progress = tf.clip_by_value((tf.cast(step, tf.float64) - begin) / float(end - begin), 0.0, 1.0)
    remaining = 1.0 - progress
    return config.target_sparsity * (1.0 - remaining * remaining * remaining)


def ramp_steps(config: PruningConfig, num_train_steps: int) -> Tuple[int, int]:
    """The steps where the gradual ramp begins and ends (a step after it begins at least: masks are updated after
    a step, so a ramp ending at its first step would end before any update)."""
    begin = int(round(config.begin * num_train_steps))
    return begin, max(int(round(config.end * num_train_steps)), begin + 1)


def is_update_step(config: PruningConfig, step, num_train_steps: int):
    """Whether the masks are recomputed once global_step reaches `step`: every `frequency` steps after the
    ramp's begin up to its end, and at the end itself (so the target is reached exactly)."""
    begin, end = ramp_steps(config, num_train_steps)
    step = tf.cast(step, tf.int64)
    periodic = tf.logical_and(tf.logical_and(step > begin, step < end), tf.equal((step - begin) % config.frequency, 0))
    return tf.logical_or(periodic, tf.equal(step, end))


def unit_scores(weight, mask, config: PruningConfig):
    """The score of each unit (a weight, or a block of the matrix padded with zeros to whole blocks): |w| of the
    unmasked weight, for a block its L2 norm. Pruned units score 0, so they stay pruned."""
    magnitude = tf.abs(weight * mask)
    if config.granularity == "weight":
        return magnitude
    rows, columns = config.block
    padded = pad_to_blocks(magnitude, config.block)
    shape = padded.shape.as_list()
    blocks = tf.reshape(padded, [shape[0] // rows, rows, shape[1] // columns, columns])
    return tf.sqrt(tf.reduce_sum(tf.square(blocks), axis=[1, 3]))


def pad_to_blocks(matrix, block: Tuple[int, int]):
    rows, columns = matrix.shape.as_list()
    return tf.pad(matrix, [[0, -rows % block[0]], [0, -columns % block[1]]])


def unit_mask_to_matrix(kept, shape: Sequence[int], config: PruningConfig):
    """A mask over units (blocks) back at the matrix's shape: each block's value over its rows and columns,
    cropped at the padded edges."""
    if config.granularity == "weight":
        return kept
    rows, columns = config.block
    full = tf.reshape(tf.tile(kept[:, tf.newaxis, :, tf.newaxis], [1, rows, 1, columns]),
                      [kept.shape[0].value * rows, kept.shape[1].value * columns])
    return full[:shape[0], :shape[1]]


def keep_all_but_lowest(scores, pruned):
    """1.0 for each score but the `pruned` lowest (exactly that many: ties go to the lower index), else 0.0."""
    flat = tf.reshape(scores, [-1])
    ranks = tf.invert_permutation(tf.argsort(flat, stable=True))
    return tf.reshape(tf.cast(ranks >= pruned, scores.dtype), tf.shape(scores))


def units_to_prune(sparsity, units: int):
    """round(sparsity * units), in float64 like the schedule."""
    return tf.cast(tf.floor(sparsity * units + 0.5), tf.int32)


def new_unit_masks(pairs: List[Tuple], sparsity, config: PruningConfig) -> List:
    """The unit masks of every matrix at `sparsity`: each matrix to it (per_matrix), or one ranking of all
    the units of all matrices (global)."""
    scores = [unit_scores(weight, mask, config) for weight, mask in pairs]
    if config.scope == "per_matrix":
        return [keep_all_but_lowest(score, units_to_prune(sparsity, score.shape.num_elements())) for score in scores]
    sizes = [score.shape.num_elements() for score in scores]
    flat = tf.concat([tf.reshape(score, [-1]) for score in scores], axis=0)
    kept = tf.split(keep_all_but_lowest(flat, units_to_prune(sparsity, sum(sizes))), sizes)
    return [tf.reshape(part, score.shape) for part, score in zip(kept, scores)]


def sparsity_variable():
    """The scalar variable recording the masks' sparsity (for the progress line); created on first use."""
    found = tf.get_collection(SPARSITY)
    if found:
        return found[0]
    with tf.get_default_graph().name_scope(None):
        return tf.Variable(0.0, trainable=False, name=SPARSITY, use_resource=True,
                           collections=[tf.GraphKeys.GLOBAL_VARIABLES, SPARSITY],
                           aggregation=tf.VariableAggregation.ONLY_FIRST_REPLICA)


def update_masks(config: PruningConfig, sparsity):
    """Assigns every mask its value at `sparsity` and records the sparsity reached over all prunable weights."""
    pairs = masked_pairs()
    units = new_unit_masks(pairs, sparsity, config)
    masks = [unit_mask_to_matrix(kept, weight.shape.as_list(), config) for kept, (weight, _) in zip(units, pairs)]
    assigned = [mask.assign(value) for value, (_, mask) in zip(masks, pairs)]
    with tf.control_dependencies(assigned):
        zeros = tf.add_n([tf.reduce_sum(1.0 - value) for value in masks])
        total = sum(weight.shape.num_elements() for weight, _ in pairs)
        return sparsity_variable().assign(zeros / total).op


def with_mask_updates(train_op, config: PruningConfig, num_train_steps: int):
    """train_op followed, for the gradual schedule at its update steps (global_step after the update), by the
    masks' recomputation from the updated weights, for the steps that follow. Also registers the op that zeroes the
    pruned weights (run before each checkpoint by `ZeroPrunedWeights`)."""
    with tf.name_scope("pruning"):
        tf.add_to_collection(ZERO_PRUNED, zero_pruned_weights())
        sparsity_variable()
        if config.schedule == "oneshot":  # its masks come from oneshot_init_fn, once
            return train_op
        with tf.control_dependencies([train_op]):
            step = tf.train.get_global_step().read_value()
            sparsity = schedule_sparsity(config, step, num_train_steps)
            return tf.cond(is_update_step(config, step, num_train_steps), lambda: update_masks(config, sparsity),
                           tf.no_op)


def zero_pruned_weights():
    """One op that sets every pruned weight to 0, so that a checkpoint's weights are sparse themselves."""
    return tf.group(*[weight.assign(weight * mask) for weight, mask in masked_pairs()])


def oneshot_init_fn(config: PruningConfig):
    """A Scaffold init_fn (it runs when training starts from step 0, not on resume) that computes one-shot
    masks from the initial (pre-trained) weights; None for other schedules."""
    if config.schedule != "oneshot":
        return None
    update = update_masks(config, tf.constant(config.target_sparsity, tf.float64))

    def init_fn(scaffold, session):
        del scaffold
        session.run(update)

    return init_fn


class ZeroPrunedWeights(tf.train.CheckpointSaverListener):
    """Zeroes the pruned weights before each checkpoint (one op, once per save): the checkpoint's weights are
    sparse, and a model loaded without masks computes what the masked one does."""

    def before_save(self, session, global_step_value):
        session.run(session.graph.get_collection(ZERO_PRUNED))


def checkpoint_sparsity(checkpoint: str, prune_embeddings: bool) -> Tuple[Dict[str, float], Dict[str, Dict]]:
    """From a checkpoint's saved weights: ({"sparsity": zeros over all prunable weights, "nonzero_parameters":
    nonzero model weights}, {matrix: {"sparsity", "zeros", "size"}}).

    Model weights are the checkpoint's float tensors of rank >= 1 except optimizer slots and masks (global_step,
    batches_read, loss scales and the recorded sparsity are integers or scalars)."""
    reader = tf.train.NewCheckpointReader(checkpoint)
    dtypes = reader.get_variable_to_dtype_map()
    weights = sorted(name for name, shape in reader.get_variable_to_shape_map().items()
                     if shape and dtypes[name] == tf.float32 and not name.endswith(MASK_SUFFIX)
                     and not name.endswith(OPTIMIZER_SUFFIXES))
    nonzero, per_matrix = 0, {}
    for name in weights:
        value = reader.get_tensor(name)
        nonzero += int(np.count_nonzero(value))
        if is_prunable(name, prune_embeddings):
            zeros = int(value.size - np.count_nonzero(value))
            per_matrix[name] = {"sparsity": zeros / value.size, "zeros": zeros, "size": int(value.size)}
    zeros, size = (sum(entry[key] for entry in per_matrix.values()) for key in ("zeros", "size"))
    return {"sparsity": zeros / max(size, 1), "nonzero_parameters": nonzero}, per_matrix
