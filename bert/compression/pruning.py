"""Pruning BERT's weight matrices during fine-tuning: masks, the units they prune, their scores and schedule.

Each prunable matrix `<name>` (by default the encoder's query, key, value, attention output, intermediate and
output kernels) gets a non-trainable float variable `<name>_mask` of its shape. A custom variable getter on the
model's variable scope hands the model `kernel * mask` instead of the kernel, so modeling.py is unchanged,
Google's variable names stay as they are (a pruned checkpoint loads anywhere: its masks are extra variables
that init-from-checkpoint code ignores), and every copy of the model (towers, the [CLS]-only last layer, which
reuse the variables) reads the same mask. The gradient reaching a pruned weight is zero.

What is pruned at once (the granularity's units): single weights; blocks of the matrix (padded at the edges);
Guo et al.'s tile-wise pattern (`tile_units`); or, structured, whole attention heads and FFN neurons, each a
group of rows and columns across the matrices of a layer (`structured_masks`). A unit's score is the mean over
its weights of their importance (a structured group's is the sum): w^2 (magnitude), the accumulated (g * w)^2
(taylor, the gradual schedule's default: GRADUAL_SCORE) or the accumulated -g * w (movement, Sanh et al.), g being
the gradient of each applied update. The lowest-scoring units go, up to the target count of zero weights, per
matrix or over all matrices at once (`lowest_units`).

Masks are recomputed inside train_op, in a tf.cond that runs only every `frequency` steps of the schedule
(graph-side: no extra session run), and never grow back: a pruned unit scores lowest at every later update.
So an interrupted run resumes exactly: masks and scores are in the checkpoint, the schedule is a function of
global_step, and a pruned weight's stored value (which the checkpoint writes as 0, see `ZeroPrunedWeights`)
never matters again.

Evaluation and prediction build the dense model: the saved weights are zero where the masks are, so the
masks would change nothing there.
"""
import contextlib
import dataclasses
import json
import math
import os
import re
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from bert.compat import tf
from bert.compression.methods import MethodContext, ProgressField, TrainingMethod
from bert.errors import UserError
from bert.files import write_atomically

ENCODER_MATRICES = r"^bert/encoder/layer_\d+/(attention/self/(query|key|value)|attention/output/dense|" \
                   r"intermediate/dense|output/dense)/kernel$"
# --prune_embeddings adds these: the embedding tables, the pooler and the classifier.
EXTRA_MATRICES = r"^(bert/embeddings/(word|position|token_type)_embeddings|bert/pooler/dense/kernel|output_weights)$"
MASKED = "pruning_masked"  # graph collection of (weight variable, mask variable) pairs
SCORED = "pruning_scored"  # graph collection of (weight variable, accumulated score variable) pairs
TILED = "pruning_tiled"  # graph collection of (weight variable, tiling variable) pairs: granularity tile
ZERO_PRUNED = "pruning_zero_pruned_weights"  # graph collection holding the op that zeroes pruned weights
SPARSITY = "pruning_sparsity"  # the scalar variable: the masks' sparsity over all prunable weights
MASK_SUFFIX = "_mask"
SCORE_SUFFIX = "_pruning_score"
TILING_SUFFIX = "_pruning_tiles"
REWEIGHT_SUFFIX = "_group_lasso_reweight"  # bert/compression/group_lasso.py's reweights
# Variables beside the model's weights that a checkpoint may hold (not parameters of the model).
AUXILIARY_SUFFIXES = ("/adam_m", "/adam_v", "/grad_accum", MASK_SUFFIX, SCORE_SUFFIX, TILING_SUFFIX, REWEIGHT_SUFFIX)
GRANULARITIES = ("weight", "block", "tile", "structured")
SCORES = ("magnitude", "taylor", "movement")
# The score of a gradual run without --pruning_score: the measured recipe, for weights, 16x16 blocks and heads and
# neurons alike (bench/pruning_recipe.md, bench/structured_mrpc.md). One-shot pruning ranks by magnitude: nothing
# has accumulated before its only update.
GRADUAL_SCORE = "taylor"


@dataclass(frozen=True)
class PruningConfig:
    """What --target_sparsity and the other --pruning_* flags ask for (`Pruning.define_flags`)."""

    target_sparsity: float
    granularity: str = "weight"  # weight | block | tile | structured
    block: Tuple[int, int] = (16, 16)
    tile: int = 128  # columns of a tile (granularity tile)
    schedule: str = "gradual"  # gradual | oneshot
    begin: float = 0.0  # fractions of the training steps
    end: float = 0.7
    frequency: int = 10  # steps between mask updates
    scope: str = "per_matrix"  # per_matrix | global
    score: str = "magnitude"  # magnitude | taylor | movement (the flag's default: Pruning.read_settings)
    prune_embeddings: bool = False
    structured_uniform: bool = False  # structured: the same number of heads and neurons in every layer
    head_size: int = 0  # the model's attention head size, which structured groups need (not a flag)

    @property
    def enabled(self) -> bool:
        """Whether the model is masked (group lasso alone trains the dense model)."""
        return self.target_sparsity > 0

    def check(self) -> None:
        """Refuses settings no schedule can follow, before any graph is built."""
        if not 0 <= self.target_sparsity < 1:
            raise UserError("--target_sparsity=%g must be in [0, 1)" % self.target_sparsity)
        if self.granularity not in GRANULARITIES:
            raise UserError("--pruning_granularity=%s: use %s" % (self.granularity, " or ".join(GRANULARITIES)))
        if self.score not in SCORES:
            raise UserError("--pruning_score=%s: use %s" % (self.score, " or ".join(SCORES)))
        if self.schedule not in ("gradual", "oneshot"):
            raise UserError("--pruning_schedule=%s: use gradual or oneshot" % self.schedule)
        if self.schedule == "oneshot" and self.score != "magnitude" and self.enabled:
            raise UserError("--pruning_schedule=oneshot prunes the initial weights before any gradient: it ranks by "
                            "--pruning_score=magnitude only (%s accumulates over training: use gradual)" % self.score)
        if self.scope not in ("per_matrix", "global"):
            raise UserError("--pruning_scope=%s: use per_matrix or global" % self.scope)
        if not 0 <= self.begin < self.end <= 1:
            raise UserError("--pruning_begin=%g and --pruning_end=%g must satisfy 0 <= begin < end <= 1 (to prune at "
                            "once, use --pruning_schedule=oneshot)" % (self.begin, self.end))
        if self.frequency < 1:
            raise UserError("--pruning_frequency=%d must be at least 1 step" % self.frequency)
        if self.tile < 1:
            raise UserError("--pruning_tile=%d must be at least 1 column" % self.tile)
        if self.granularity == "structured" and self.prune_embeddings:
            raise UserError("--pruning_granularity=structured prunes the encoder's heads and neurons: the embeddings, "
                            "pooler and classifier have neither (leave --prune_embeddings off)")
        if self.granularity == "structured" and self.head_size < 1:
            raise UserError("--pruning_granularity=structured needs the model's attention head size (got %d)"
                            % self.head_size)
        if self.structured_uniform and self.granularity != "structured":
            raise UserError("--structured_uniform is for --pruning_granularity=structured (not %s)" % self.granularity)

    def settings(self) -> Dict:
        """The flags as run_info.json records them (a run dir trained with others is refused)."""
        return {"target_sparsity": self.target_sparsity, "pruning_granularity": self.granularity,
                "pruning_block": "%dx%d" % self.block, "pruning_tile": self.tile, "pruning_schedule": self.schedule,
                "pruning_begin": self.begin, "pruning_end": self.end, "pruning_frequency": self.frequency,
                "pruning_scope": self.scope, "pruning_score": self.score, "prune_embeddings": self.prune_embeddings,
                # only when structured, so that the runs recorded before this flag existed still resume
                **({"structured_uniform": self.structured_uniform} if self.granularity == "structured" else {})}


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


# --- the schedule ---

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


def update_steps(config: PruningConfig, num_train_steps: int) -> List[int]:
    """The steps is_update_step is true at, in Python (for what a schedule costs: bench/)."""
    begin, end = ramp_steps(config, num_train_steps)
    return [step for step in range(begin + 1, end + 1) if step == end or (step - begin) % config.frequency == 0]


def is_update_step(config: PruningConfig, step, num_train_steps: int):
    """Whether the masks are recomputed once global_step reaches `step`: every `frequency` steps after the
    ramp's begin up to its end, and at the end itself (so the target is reached exactly)."""
    begin, end = ramp_steps(config, num_train_steps)
    step = tf.cast(step, tf.int64)
    periodic = tf.logical_and(tf.logical_and(step > begin, step < end), tf.equal((step - begin) % config.frequency, 0))
    return tf.logical_or(periodic, tf.equal(step, end))


# --- scores ---

def scored_pairs() -> List[Tuple]:
    """(weight, accumulated score) of every masked matrix, for the taylor and movement scores."""
    return tf.get_collection(SCORED)


def score_accumulation(config: PruningConfig) -> Optional[Callable[[List, List], List]]:
    """For optimization.create_train_op's `before_update`: adds each applied update's (g * w)^2 (taylor) or
    -g * w (movement) to the matrix's `<weight>_pruning_score` variable, before the update changes w; None for
    magnitude. An update with any gradient not finite, of any variable, adds nothing to any score: fp16's loss
    scaling skips the whole update then, and the matrices whose own gradients are finite did not move either."""
    if config.score == "magnitude":
        return None
    # Created here, not in `accumulate`: with gradient accumulation that runs inside a tf.cond, where a
    # variable's initializer may not be.
    scores = {}
    for weight, _ in masked_pairs():
        with tf.get_default_graph().name_scope(None):
            scores[weight.op.name] = tf.Variable(tf.zeros(weight.shape, weight.dtype.base_dtype), trainable=False,
                                                 use_resource=True, name=weight.op.name + SCORE_SUFFIX)
        tf.add_to_collection(SCORED, (weight, scores[weight.op.name]))

    def accumulate(gradients: List, variables: List) -> List:
        by_name = {var.op.name: (grad, var) for grad, var in zip(gradients, variables)}
        applied = tf.reduce_all([tf.reduce_all(tf.is_finite(grad.values if isinstance(grad, tf.IndexedSlices) else grad))
                                 for grad in gradients if grad is not None])
        updates = []
        for name, score in scores.items():
            grad, weight = by_name[name]
            product = tf.convert_to_tensor(grad) * weight
            increment = tf.square(product) if config.score == "taylor" else -product
            finite = tf.logical_and(applied, tf.reduce_all(tf.is_finite(increment)))  # (g w)^2 may overflow alone
            updates.append(score.assign_add(tf.where(finite, increment, tf.zeros_like(increment)), read_value=False))
        return updates

    return accumulate


def importance(weight, mask, config: PruningConfig):
    """Each weight's importance, of which a unit's score is the mean (a structured group's, the sum); 0 where the
    mask is 0."""
    if config.score == "magnitude":
        value = tf.square(weight)
    else:
        value = dict((w.op.name, s) for w, s in scored_pairs())[weight.op.name].read_value()
    return value * mask


# --- units: weights, blocks, tiles ---

@dataclass
class Units:
    """A matrix's units, flat: their scores (the lowest go first; -inf for units pruned already), their sizes in
    weights (None: one weight each), and `to_mask`, which turns the units' keep values (1.0 kept) back into a
    mask of the matrix."""

    scores: object
    sizes: object
    to_mask: Callable


def block_sums(matrix, block: Tuple[int, int]):
    """[blocks down, blocks across]: the sums of `matrix`'s blocks, zero-padded at the edges."""
    rows, columns = block
    height, width = matrix.shape.as_list()
    padded = tf.pad(matrix, [[0, -height % rows], [0, -width % columns]])
    return tf.reduce_sum(tf.reshape(padded, [-(-height // rows), rows, -(-width // columns), columns]), axis=[1, 3])


def expand_blocks(per_block, block: Tuple[int, int], shape: Sequence[int]):
    """Each block's value over its rows and columns, cropped at the padded edges."""
    rows, columns = block
    blocks_down, blocks_across = per_block.shape.as_list()
    full = tf.reshape(tf.tile(per_block[:, tf.newaxis, :, tf.newaxis], [1, rows, 1, columns]),
                      [blocks_down * rows, blocks_across * columns])
    return full[:shape[0], :shape[1]]


def block_units(values, mask, block: Tuple[int, int]) -> Units:
    """Blocks of `block` (a weight is a 1x1 block). A block is pruned as a whole, so its mask is uniform."""
    shape = mask.shape.as_list()
    if block == (1, 1):
        flat = tf.reshape(values, [-1])
        scores = tf.where(tf.reshape(mask, [-1]) > 0, flat, -np.inf * tf.ones_like(flat))
        return Units(scores, None, lambda keep: tf.reshape(keep, shape))
    sizes = block_sums(tf.ones_like(mask), block)
    alive = block_sums(mask, block) > 0
    scores = tf.where(alive, block_sums(values, block) / sizes, -np.inf * tf.ones_like(sizes))
    return Units(tf.reshape(scores, [-1]), tf.cast(tf.reshape(sizes, [-1]), tf.int64),
                 lambda keep: expand_blocks(tf.reshape(keep, sizes.shape), block, shape))


def column_units(values, mask) -> Units:
    """Whole columns (the first step of the tile pattern); their keep values are the kept columns."""
    rows = mask.shape.as_list()[0]
    alive = tf.reduce_max(mask, axis=0) > 0
    scores = tf.where(alive, tf.reduce_mean(values, axis=0), -np.inf * tf.ones_like(alive, tf.float32))
    return Units(scores, rows * tf.ones_like(scores, tf.int64), lambda keep: keep)


def tilings(pairs: List[Tuple]) -> List:
    """Each matrix's tiling for the tile granularity: an int32 variable `<weight>_pruning_tiles` holding the tile of
    every column, -1 until the first mask update sets it (Guo et al.: the columns kept then, `tile` at a time in
    order). Later updates keep it, a column pruned then just leaving its tile: re-forming the tiles from the columns
    kept at each update would shift every tile boundary after a newly pruned column, and the rows pruned in the old
    tiles, straddling the new ones, would take live weights with them whatever their scores. In the checkpoint, so a
    resumed run keeps its tiles; created on first use, before the training's tf.cond."""
    known = {weight.op.name: tiling for weight, tiling in tf.get_collection(TILED)}
    for weight, mask in pairs:
        if weight.op.name not in known:
            with tf.get_default_graph().name_scope(None):
                known[weight.op.name] = tf.Variable(
                    -tf.ones([mask.shape.as_list()[1]], tf.int32), trainable=False, use_resource=True,
                    name=weight.op.name + TILING_SUFFIX, collections=[tf.GraphKeys.GLOBAL_VARIABLES],
                    aggregation=tf.VariableAggregation.ONLY_FIRST_REPLICA)
            tf.add_to_collection(TILED, (weight, known[weight.op.name]))
    return [known[weight.op.name] for weight, _ in pairs]


def column_tiles(kept_columns, tiling, tile: int):
    """The tile of each column kept (`kept_columns` 1.0) at this update: the stored `tiling`'s once set, else the
    kept columns `tile` at a time in order; columns pruned go to one extra tile past the last, which is dropped."""
    tiles = -(-kept_columns.shape.as_list()[0] // tile)
    kept = kept_columns > 0
    fresh = (tf.cumsum(tf.cast(kept, tf.int32)) - 1) // tile
    stored = tf.cond(tf.reduce_any(tiling >= 0), lambda: tiling, lambda: fresh)
    return tf.where(kept, stored, tiles * tf.ones_like(stored))


def tile_units(values, mask, tile_of, tile: int) -> Units:
    """Guo et al.'s tiles (`column_tiles`: the columns that column pruning kept, a tile's width less than `tile`
    once some of its columns are pruned), each split into its rows (a unit is one row of one tile). Pruning whole
    columns and then rows of tiles leaves each tile a smaller dense matrix, the pattern their GEMM kernels skip. A
    row of a tile with any weight pruned already scores lowest (the pattern stays whole)."""
    rows, columns = mask.shape.as_list()
    tiles = -(-columns // tile)
    kept = tf.cast(tile_of < tiles, tf.int32)

    def per_tile(matrix):  # [tiles, rows]: sums over each tile's kept columns
        return tf.math.unsorted_segment_sum(tf.transpose(matrix), tile_of, tiles + 1)[:tiles]

    width = tf.math.unsorted_segment_sum(kept, tile_of, tiles + 1)[:tiles]
    widths = tf.tile(tf.cast(width, tf.float32)[:, tf.newaxis], [1, rows])
    whole = tf.logical_and(tf.equal(per_tile(mask), widths), widths > 0)
    scores = tf.where(whole, per_tile(values) / tf.maximum(widths, 1.0), -np.inf * tf.ones_like(widths))

    def to_mask(keep):
        per_column = tf.gather(tf.reshape(keep, [tiles, rows]), tf.minimum(tile_of, tiles - 1))  # [columns, rows]
        return tf.transpose(per_column) * tf.cast(kept, tf.float32)[tf.newaxis, :]

    return Units(tf.reshape(scores, [-1]), tf.cast(tf.reshape(widths, [-1]), tf.int64), to_mask)


# --- which units go ---

FLOOR_KEY = -(2 ** 31 - 2 ** 23) - 1  # order_preserving_int(-inf): the key of units pruned already


def order_preserving_int(scores):
    """int64 keys that sort as the float32 scores do (-inf lowest): exact comparisons, ties and a floor key."""
    bits = tf.bitcast(scores + 0.0, tf.int32)  # + 0.0: -0.0 becomes 0.0, one key for one value
    flipped = tf.bitwise.bitwise_xor(bits, tf.bitwise.bitwise_and(tf.bitwise.right_shift(bits, 31), 0x7FFFFFFF))
    return tf.cast(flipped, tf.int64)


def lowest_units(all_units: List[Units], targets, scope: str) -> List:
    """keep (1.0) / prune (0.0) for every unit of every matrix: the lowest-scoring units are pruned (ties: the
    lower index, then the earlier matrix) up to the target count of weights, per matrix (`targets`: an int64
    count for each) or over the units of all matrices at once (one count)."""
    keys = [order_preserving_int(units.scores) for units in all_units]
    if scope == "per_matrix":
        return [1.0 - tf.cast(pruned(key_list, units.sizes, target), tf.float32)
                for key_list, units, target in zip(keys, all_units, targets)]
    sizes = None if all_units[0].sizes is None else tf.concat([units.sizes for units in all_units], axis=0)
    prune = pruned(tf.concat(keys, axis=0), sizes, targets)
    return [1.0 - tf.cast(part, tf.float32) for part in tf.split(prune, [k.shape.num_elements() for k in keys])]


def pruned(keys, sizes, target):
    """Which units of one ranking go: the lowest keys (ties: the lower index) up to `target` weights; a unit of
    several weights goes if at least half of it fits (the nearest count). Units of one weight (`sizes` None)
    are exactly `target`."""
    if sizes is None:
        return lowest_count(keys, target)
    order = tf.argsort(keys, stable=True)
    size = tf.gather(sizes, order)
    middles = 2 * tf.cumsum(size) - size  # twice the weights up to each unit's middle, nondecreasing
    count = searchsorted(middles, 2 * target, "right")
    return tf.invert_permutation(order) < count


def searchsorted(sorted_values, value, side: str):
    """How many of the 1-D `sorted_values` are < `value` (side left) or <= it (right): an int32 scalar."""
    return tf.searchsorted(sorted_values, tf.reshape(tf.cast(value, sorted_values.dtype), [1]), side=side,
                           out_type=tf.int32)[0]


def lowest_count(keys, count):
    """The `count` lowest of the int64 `keys` (ties: the lower index), without sorting them all (sorting the
    10M weights of a 6-layer BERT was most of an update's time): a sorted sample of every 64th key brackets
    the count-th lowest within 3 standard deviations of the sample's rank error on either side, and only the
    keys in the bracket are sorted (all of them if it misses anyway). Units pruned already (FLOOR_KEY, from -inf
    scores) are counted, never sorted: they go first."""
    count = tf.cast(count, tf.int64)
    dead = tf.reduce_sum(tf.cast(tf.equal(keys, FLOOR_KEY), tf.int64))
    sample = tf.sort(keys[::64])
    samples = sample.shape.num_elements()
    rank = tf.cast(count, tf.float64) * samples / keys.shape.num_elements()
    margin = 3.0 * math.sqrt(samples) + 1.0

    def sample_at(position, beyond):  # the sample's key at a rank, or `beyond` every key if it is out of range
        inside = tf.logical_and(position >= 0, position < samples)
        return tf.where(inside, tf.gather(sample, tf.cast(tf.clip_by_value(position, 0, samples - 1), tf.int32)),
                        tf.constant(beyond, tf.int64))

    low = tf.maximum(sample_at(tf.floor(rank - margin), FLOOR_KEY), FLOOR_KEY + 1)
    high = sample_at(tf.ceil(rank + margin), 2 ** 32)
    below = tf.reduce_sum(tf.cast(keys < low, tf.int64))  # the pruned ones among them
    candidates = tf.sort(tf.boolean_mask(keys, tf.logical_and(keys >= low, keys <= high)))
    found = tf.logical_and(below < count, count <= below + tf.size(candidates, out_type=tf.int64))

    def boundary(sorted_keys, lower):  # the count-th lowest key and how many keys are lower
        key = tf.gather(sorted_keys, count - lower - 1)
        return key, lower + tf.cast(searchsorted(sorted_keys, key, "left"), tf.int64)

    key, lower = tf.cond(count <= dead, lambda: (tf.constant(FLOOR_KEY, tf.int64), tf.constant(0, tf.int64)),
                         lambda: tf.cond(found, lambda: boundary(candidates, below),
                                         lambda: boundary(tf.sort(keys), tf.constant(0, tf.int64))))
    ties = tf.equal(keys, key)
    # the first (count - lower) ties; a cumulative count over all keys costs, and is rarely needed
    take_all = tf.equal(tf.reduce_sum(tf.cast(ties, tf.int64)), count - lower)
    first = tf.cond(take_all, lambda: ties, lambda: tf.logical_and(
        ties, tf.cumsum(tf.cast(ties, tf.int64), exclusive=True) < count - lower))
    return tf.logical_or(keys < key, first)


def prune_to(all_units: List[Units], sizes: Sequence[int], sparsity, scope: str, already=None) -> List:
    """lowest_units at `sparsity` of the weights (round(s * size) per matrix, or of their total), less the
    weights each matrix has pruned `already` (an int64 count per matrix, from an earlier step)."""
    def count(size):
        return tf.cast(tf.floor(sparsity * size + 0.5), tf.int64)

    already = already or [tf.constant(0, tf.int64)] * len(sizes)
    if scope == "per_matrix":
        targets = [tf.maximum(count(size) - done, 0) for size, done in zip(sizes, already)]
    else:
        targets = tf.maximum(count(sum(sizes)) - tf.add_n(already), 0)
    return lowest_units(all_units, targets, scope)


# --- structured: attention heads and FFN neurons ---

# The matrices of a layer (scopes under `bert/encoder/layer_<l>/`, each with a `kernel` [inputs, outputs]) whose
# columns (outputs) and rows (inputs) make its groups: head h is columns h*size:(h+1)*size of the query, key and
# value kernels and the same rows of the attention output's; FFN neuron j is column j of the intermediate kernel
# and row j of the output one. Biases stay unmasked: with a group's rows of the output kernel zero, what the
# group computes (its q/k/v or intermediate biases included) is multiplied by zero before it reaches the layer's
# output, so it contributes exactly nothing; the output kernels' own biases belong to no group (they are added
# whatever is pruned, as in the compact model).
HEAD_COLUMNS = ("attention/self/query", "attention/self/key", "attention/self/value")
HEAD_ROWS = "attention/output/dense"
NEURON_COLUMNS = "intermediate/dense"
NEURON_ROWS = "output/dense"
LAYER_MATRIX = r"^(bert/encoder/layer_\d+)/(.+)/kernel$"


def encoder_layers(names: Sequence[str]) -> Dict[str, Dict[str, int]]:
    """{`bert/encoder/layer_<l>`: {matrix scope: index in `names`}} for the encoder matrices among the variable
    `names`, layers in their order in `names`."""
    layers = {}
    for index, name in enumerate(names):
        found = re.match(LAYER_MATRIX, name)
        if found and re.match(ENCODER_MATRICES, name):
            layers.setdefault(found.group(1), {})[found.group(2)] = index
    return layers


def group_sums(by_matrix: Dict[str, object], head_size: int) -> Tuple:
    """([heads], [neurons]): the sums of a layer's per-weight `by_matrix` values (one tensor per matrix scope, of
    the kernel's shape) over each head's and each neuron's weights. A layer's heads and neurons are counted from its
    matrices, so a compact model's layers may have any number each; a layer without heads (neurons) has none of
    their matrices (modeling.dense): its sums are empty."""
    def sums(columns: Sequence[str], rows: str, size: int):  # a group's columns are the same indices as its rows
        if rows not in by_matrix:
            return tf.zeros([0])
        per_index = tf.add_n([tf.reduce_sum(by_matrix[rows], axis=1)] + [
            tf.reduce_sum(by_matrix[name], axis=0) for name in columns])
        return tf.reduce_sum(tf.reshape(per_index, [-1, size]), axis=1)

    return sums(HEAD_COLUMNS, HEAD_ROWS, head_size), sums((NEURON_COLUMNS,), NEURON_ROWS, 1)


def group_masks(head_keep, neuron_keep, shapes: Dict[str, Sequence[int]], head_size: int) -> Dict[str, object]:
    """The masks of a layer's matrices (scope -> [inputs, outputs]) that keep the heads and neurons of keep value
    1.0: whole columns of the query, key, value and intermediate kernels, whole rows of the output ones (a kind of
    group the layer has none of, keep None, leaves its matrices' masks out)."""
    masks = {}
    for keep, columns, rows, size in ((head_keep, HEAD_COLUMNS, HEAD_ROWS, head_size),
                                      (neuron_keep, (NEURON_COLUMNS,), NEURON_ROWS, 1)):
        if keep is None:
            continue
        per_index = tf.reshape(tf.tile(keep[:, tf.newaxis], [1, size]), [-1])
        masks.update({name: tf.ones(shapes[name][:1])[:, tf.newaxis] * per_index[tf.newaxis, :] for name in columns})
        masks[rows] = per_index[:, tf.newaxis] * tf.ones(shapes[rows][1:])[tf.newaxis, :]
    return masks


def group_units(scores, alive, size: int) -> Units:
    """One layer's heads (or neurons) as units of `size` weights: the dead ones score lowest (-inf), the live one of
    highest score +inf, so that it is never pruned (a layer keeps a head and a neuron: see `structured_masks`)."""
    protected = tf.one_hot(tf.argmax(tf.where(alive, scores, -np.inf * tf.ones_like(scores))),
                           scores.shape.as_list()[0], on_value=True, off_value=False)
    scores = tf.where(protected, np.inf * tf.ones_like(scores), scores)
    return Units(tf.where(alive, scores, -np.inf * tf.ones_like(scores)), size * tf.ones_like(scores, tf.int64),
                 lambda keep: keep)


def structured_masks(pairs: List[Tuple], values: List, masks: List, sparsity, config: PruningConfig) -> List:
    """Every matrix's mask at `sparsity` with whole heads and neurons pruned (see HEAD_COLUMNS).

    A group's score is the sum of its weights' importance: heads are ranked among heads and neurons among
    neurons, where all groups are of one size, so the sum ranks them as the mean would. Heads and neurons are not
    ranked against each other: the same fraction `sparsity` of each goes (of each layer's with scope per_matrix
    or --structured_uniform, which makes every layer lose the same numbers; of all layers' with scope global),
    to the nearest count of weights as for other units. No score compares a head with a neuron: their weights
    differ in scale by matrix (a head's query and key kernels can be scaled by c and 1/c without changing what
    it computes), and on the embedded MiniLM one ranking by mean w^2 would prune 74% of the neurons and 1 of the
    72 heads at sparsity 0.5. A layer keeps its best head and best neuron (the fraction is capped at
    (n - 1) / n for n per layer): so the compact model has no layer without attention or FFN, and
    --structured_uniform gives a valid Google config."""
    layers = list(encoder_layers([weight.op.name for weight, _ in pairs]).values())
    name, index = next(iter(layers[0].items()))  # the model's width: a row matrix's columns, a column one's rows
    hidden = masks[index].shape.as_list()[1 if name in (HEAD_ROWS, NEURON_ROWS) else 0]
    unit_size = {"heads": 4 * hidden * config.head_size, "neurons": 2 * hidden}  # weights of one group
    kinds = {"heads": {}, "neurons": {}}  # {layer number: its units}, for the layers with groups of the kind
    for number, layer in enumerate(layers):
        scores = group_sums({name: values[index] for name, index in layer.items()}, config.head_size)
        alive = group_sums({name: masks[index] for name, index in layer.items()}, config.head_size)
        for kind, score, live in zip(kinds, scores, alive):
            if score.shape.as_list()[0]:
                kinds[kind][number] = group_units(score, live > 0, unit_size[kind])
    keeps = {"heads": [None] * len(layers), "neurons": [None] * len(layers)}
    for kind, units in kinds.items():
        counts = {number: unit.scores.shape.as_list()[0] for number, unit in units.items()}
        if config.structured_uniform or config.scope == "per_matrix":  # each layer keeps one of its own
            for number, unit in units.items():
                capped = tf.minimum(tf.cast(sparsity, tf.float64), (counts[number] - 1) / counts[number])
                keeps[kind][number], = prune_to([unit], [counts[number] * unit_size[kind]], capped, "per_matrix")
        elif units:  # one ranking; each layer's best group is never pruned (group_units)
            total = sum(counts.values())
            capped = tf.minimum(tf.cast(sparsity, tf.float64), (total - len(units)) / total)
            found = prune_to(list(units.values()), [count * unit_size[kind] for count in counts.values()], capped,
                             "global")
            by_layer = dict(zip(units, found))
            keeps[kind] = [by_layer.get(number) for number in range(len(layers))]
    new = list(masks)
    for layer, head_keep, neuron_keep in zip(layers, keeps["heads"], keeps["neurons"]):
        shapes = {name: masks[index].shape.as_list() for name, index in layer.items()}
        for name, mask in group_masks(head_keep, neuron_keep, shapes, config.head_size).items():
            new[layer[name]] = mask * masks[layer[name]]
    return new


def new_masks(pairs: List[Tuple], sparsity, config: PruningConfig) -> List:
    """Every matrix's mask at `sparsity`, never keeping a weight its current mask prunes."""
    values = [importance(weight, mask, config) for weight, mask in pairs]
    masks = [mask.read_value() for _, mask in pairs]
    if config.granularity == "structured":
        return structured_masks(pairs, values, masks, sparsity, config)
    sizes = [mask.shape.num_elements() for mask in masks]
    if config.granularity != "tile":
        block = (1, 1) if config.granularity == "weight" else config.block
        units = [block_units(value, mask, block) for value, mask in zip(values, masks)]
        return [u.to_mask(keep) * mask for u, keep, mask in zip(units, prune_to(units, sizes, sparsity, config.scope),
                                                                masks)]
    # Guo et al. split the sparsity s evenly: columns to 1 - sqrt(1 - s), then rows of tiles to s in all.
    columns = [column_units(value, mask) for value, mask in zip(values, masks)]
    column_share = 1.0 - tf.sqrt(1.0 - sparsity)
    kept = [u.to_mask(keep) for u, keep in zip(columns, prune_to(columns, sizes, column_share, config.scope))]
    pruned = [mask.shape.as_list()[0] * tf.cast(tf.reduce_sum(1.0 - k), tf.int64) for k, mask in zip(kept, masks)]
    stored = tilings(pairs)
    tilings_now = [column_tiles(k, tiling.read_value(), config.tile) for k, tiling in zip(kept, stored)]
    tiles = [tile_units(value, mask, tile_of, config.tile) for value, mask, tile_of in zip(values, masks, tilings_now)]
    keeps = prune_to(tiles, sizes, sparsity, config.scope, already=pruned)
    with tf.control_dependencies([tiling.assign(tile_of) for tiling, tile_of in zip(stored, tilings_now)]):
        return [u.to_mask(keep) * mask for u, keep, mask in zip(tiles, keeps, masks)]


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
    masks = new_masks(pairs, sparsity, config)
    assigned = [mask.assign(value) for value, (_, mask) in zip(masks, pairs)]
    with tf.control_dependencies(assigned):
        zeros = tf.add_n([tf.reduce_sum(1.0 - value) for value in masks])
        total = sum(weight.shape.num_elements() for weight, _ in pairs)
        return sparsity_variable().assign(zeros / total).op


def with_mask_updates(train_op, config: PruningConfig, num_train_steps: int, accumulation_steps: int = 1):
    """train_op followed, for the gradual schedule at its update steps (global_step after the update), by the
    masks' recomputation from the updated weights, for the steps that follow: once, after the micro-batch
    that completed the update (with gradient accumulation, global_step stays for the next micro-batches). Also
    registers the op that zeroes the pruned weights (run before each checkpoint by `ZeroPrunedWeights`)."""
    from bert.counters import batches_read  # optimization's train_op increments it; pruning only follows it

    with tf.name_scope("pruning"):
        tf.add_to_collection(ZERO_PRUNED, zero_pruned_weights())
        sparsity_variable()
        if config.schedule == "oneshot":  # its masks come from oneshot_init_fn, once
            return train_op
        if config.granularity == "tile":
            tilings(masked_pairs())
        with tf.control_dependencies([train_op]):
            step = tf.train.get_global_step().read_value()
            updated = tf.equal(batches_read().read_value() % accumulation_steps, 0)
            sparsity = schedule_sparsity(config, step, num_train_steps)
            return tf.cond(tf.logical_and(updated, is_update_step(config, step, num_train_steps)),
                           lambda: update_masks(config, sparsity), tf.no_op)


def zero_pruned_weights():
    """One op that sets every pruned weight to 0, so that a checkpoint's weights are sparse themselves."""
    return tf.group(*[weight.assign(weight * mask) for weight, mask in masked_pairs()])


def oneshot_init_fn(config: PruningConfig):
    """A Scaffold init_fn (it runs when training starts from step 0, not on resume) that computes one-shot
    masks from the initial (pre-trained or fine-tuned) weights; None for other schedules."""
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


def checkpoint_sparsity(checkpoint: str, prune_embeddings: bool,
                        head_size: int = 0) -> Tuple[Dict[str, float], Dict[str, Dict]]:
    """From a checkpoint's saved weights: ({"sparsity": zeros over all prunable weights, "nonzero_parameters":
    nonzero model weights, "model_bytes": the model weights as float32, "sparse_model_bytes": the same with each
    prunable matrix stored as a bitmask and its nonzero values}, {matrix: {"sparsity", "zeros", "size"}}); with
    `head_size` (a structured run's attention head size) the totals also count the encoder's `heads_kept` and
    `neurons_kept`, from the masks.

    Model weights are the checkpoint's float tensors of rank >= 1 except optimizer slots, masks, scores and
    reweights (global_step, batches_read, loss scales and the recorded sparsity are integers or scalars)."""
    reader = tf.train.NewCheckpointReader(checkpoint)
    dtypes = reader.get_variable_to_dtype_map()
    weights = sorted(name for name, shape in reader.get_variable_to_shape_map().items()
                     if shape and dtypes[name] == tf.float32 and not name.endswith(AUXILIARY_SUFFIXES))
    nonzero, per_matrix, dense_bytes, sparse_bytes = 0, {}, 0, 0
    untrained = {"rows": 0, "zeros": 0, "size": 0}  # see untrained_rows
    for name in weights:
        value = reader.get_tensor(name)
        nonzero += int(np.count_nonzero(value))
        dense_bytes += 4 * value.size
        if is_prunable(name, prune_embeddings):
            zeros = int(value.size - np.count_nonzero(value))
            per_matrix[name] = {"sparsity": zeros / value.size, "zeros": zeros, "size": int(value.size)}
            sparse_bytes += -(-value.size // 8) + 4 * (value.size - zeros)  # a bit per weight, the nonzero values
            rows = untrained_rows(reader, name)
            if rows is not None:
                per_matrix[name]["untrained_rows"] = int(rows.sum())
                in_rows = value[rows]  # a copy: taken once
                untrained["rows"] += per_matrix[name]["untrained_rows"]
                untrained["size"] += in_rows.size
                untrained["zeros"] += int(in_rows.size - np.count_nonzero(in_rows))
        else:
            sparse_bytes += 4 * value.size
    zeros, size = (sum(entry[key] for entry in per_matrix.values()) for key in ("zeros", "size"))
    totals = {"sparsity": zeros / max(size, 1), "nonzero_parameters": nonzero, "model_bytes": dense_bytes,
              "sparse_model_bytes": sparse_bytes}
    if untrained["size"]:  # what pruning took from what the training could rank
        totals["untrained_embedding_rows"] = untrained["rows"]
        totals["trained_sparsity"] = (zeros - untrained["zeros"]) / max(size - untrained["size"], 1)
    if head_size:  # a group is kept where its rows of the output kernel's mask are not all zero
        def kept(prefix: str, rows: str, size: int) -> int:  # a compact layer without such groups has no kernel
            name = "%s/%s/kernel%s" % (prefix, rows, MASK_SUFFIX)
            if not reader.has_tensor(name):
                return 0
            mask = reader.get_tensor(name)
            return int(np.any(mask.reshape(-1, size * mask.shape[1]), axis=1).sum())

        layers = encoder_layers(weights)
        totals["heads_kept"] = sum(kept(prefix, HEAD_ROWS, head_size) for prefix in layers)
        totals["neurons_kept"] = sum(kept(prefix, NEURON_ROWS, 1) for prefix in layers)
    return totals, per_matrix


def untrained_rows(reader, name: str):
    """With --prune_embeddings and Taylor or movement scores, an embedding table's rows no gradient reached (tokens
    absent from the training data, positions past max_seq_length), as a boolean per row: they score 0 and go first,
    counting toward the target. checkpoint_sparsity reports their count (`untrained_rows`,
    `untrained_embedding_rows`) and `trained_sparsity`, the sparsity of the prunable weights outside them. None for
    a matrix without such rows or scores."""
    if not name.startswith("bert/embeddings/") or not reader.has_tensor(name + SCORE_SUFFIX):
        return None
    return ~np.any(reader.get_tensor(name + SCORE_SUFFIX) != 0, axis=1)


class Pruning(TrainingMethod):
    """Pruning as a training method: masks in the model, scores before each update, mask updates after it,
    pruned weights saved as zeros, the sparsity on the progress line and in eval_results.txt."""

    name = "pruning"
    flags = ("--target_sparsity",)
    progress_fields = (ProgressField("sparsity", "sparsity"),)

    def __init__(self, config: PruningConfig):
        self.config = config

    @staticmethod
    def define_flags(flags) -> None:
        flags.DEFINE_float("target_sparsity", 0.0, "Prune this fraction of the prunable weights (the encoder's "
                           "matrices, see bert/compression/pruning.py) while fine-tuning; 0 trains the dense model.")
        flags.DEFINE_enum("pruning_granularity", "weight", list(GRANULARITIES), "What is pruned at once: single "
                          "weights; blocks of --pruning_block; tiles (Guo et al.: whole columns, then rows of tiles of "
                          "--pruning_tile kept columns); or structured: whole attention heads and FFN neurons.")
        flags.DEFINE_bool("structured_uniform", False, "With --pruning_granularity=structured: every layer keeps the "
                          "same number of heads and of neurons (a Google-format config for the compact model), "
                          "whatever --pruning_scope.")
        flags.DEFINE_string("pruning_block", "16x16", "Rows x columns of a block with --pruning_granularity=block "
                            "(matrices are padded to whole blocks at their edges).")
        flags.DEFINE_integer("pruning_tile", 128, "Columns of a tile with --pruning_granularity=tile.")
        flags.DEFINE_enum("pruning_schedule", "gradual", ["gradual", "oneshot"], "gradual: Zhu & Gupta's cubic ramp "
                          "from --pruning_begin to --pruning_end; oneshot: masks from the initial weights at step 0, "
                          "then fixed.")
        flags.DEFINE_float("pruning_begin", 0.0, "Fraction of the training steps where the gradual ramp begins.")
        flags.DEFINE_float("pruning_end", 0.7, "Fraction of the training steps where the gradual ramp reaches "
                           "--target_sparsity; the rest of the training recovers at that sparsity.")
        flags.DEFINE_integer("pruning_frequency", 10, "Steps between mask updates of the gradual schedule.")
        flags.DEFINE_enum("pruning_scope", "per_matrix", ["per_matrix", "global"], "per_matrix: every matrix to the "
                          "target; global: one ranking of all prunable weights (or blocks, or tiles).")
        flags.DEFINE_enum("pruning_score", None, list(SCORES), "How units are ranked: magnitude (w^2), taylor "
                          "(accumulated (gradient * w)^2) or movement (accumulated -gradient * w); a unit's score is "
                          "the mean of its weights' (a structured head's or neuron's, the sum). Default: %s with "
                          "the gradual schedule, magnitude with oneshot." % GRADUAL_SCORE)
        flags.DEFINE_bool("prune_embeddings", False, "Prune the embedding tables, the pooler and the classifier too.")

    @classmethod
    def read_settings(cls, values) -> PruningConfig:
        gradual = values["pruning_schedule"] == "gradual"
        return PruningConfig(
            target_sparsity=values["target_sparsity"], granularity=values["pruning_granularity"],
            block=parse_block(values["pruning_block"]), schedule=values["pruning_schedule"],
            begin=values["pruning_begin"], end=values["pruning_end"], frequency=values["pruning_frequency"],
            scope=values["pruning_scope"], tile=values["pruning_tile"],
            score=values["pruning_score"] or (GRADUAL_SCORE if gradual else "magnitude"),
            prune_embeddings=values["prune_embeddings"], structured_uniform=values["structured_uniform"])

    @classmethod
    def build(cls, config: PruningConfig, context: MethodContext) -> Optional["Pruning"]:
        config = with_heads(config, context.bert_config)
        config.check()  # also when off: a schedule no run could follow is refused either way
        return cls(config) if config.enabled else None

    def recorded_settings(self) -> Dict:
        return self.config.settings()

    def model_scope(self):
        return masking_scope(self.config)

    def before_update(self):
        return score_accumulation(self.config)

    def after_update(self, train_op, num_train_steps: int, accumulation_steps: int):
        return with_mask_updates(train_op, self.config, num_train_steps, accumulation_steps)

    def init_fn(self):
        return oneshot_init_fn(self.config)

    def progress(self) -> Dict:
        return {"sparsity": sparsity_variable()}

    def saving_listeners(self) -> List:
        return [ZeroPrunedWeights()]

    def after_evaluation(self, checkpoint, output_dir, results, evaluate) -> Dict:
        """The evaluated checkpoint's sparsity and nonzero parameters; sparsity.json gets each matrix's."""
        if not checkpoint:
            return {}
        totals, per_matrix = checkpoint_sparsity(checkpoint, self.config.prune_embeddings, self.config.head_size)
        write_atomically(os.path.join(output_dir, "sparsity.json"),
                         json.dumps(per_matrix, indent=1, sort_keys=True) + "\n")
        return totals


def with_heads(config: PruningConfig, bert_config) -> PruningConfig:
    """The config with the model's attention head size, which structured groups need (not a flag): each layer's
    number of heads follows from its matrices (a compact model's differ by layer; its num_attention_heads does not
    say)."""
    return dataclasses.replace(config, head_size=bert_config.head_size if config.granularity == "structured" else 0)
