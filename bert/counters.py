"""The training counters: `batches_read` (the batches train_op has read) and the counts a hook reads before an
update.

optimization.create_train_op increments them; dropout (modeling.dropout) and pruning read them, and the
progress hook fetches them. They live here, below all of those, so that the model and pruning need not import
the optimizer to read a count. The variable's and the tensors' names are what checkpoints and graphs hold:
they never change.
"""
from typing import List, Tuple

from bert.compat import tf

BATCHES_READ = "batches_read"  # the variable's name and its graph collection
STEP_BEFORE_UPDATE, BATCHES_BEFORE_UPDATE = "global_step_before_update", "batches_read_before_update"


def batches_read():
    """The int64 variable `batches_read`: how many batches train_op has read, one per run (micro-batches with
    gradient accumulation; batches whose update fp16 loss scaling skipped count too). Created on first use.

    global_step counts applied updates, so it cannot say where in the data order a run stands once an
    update takes several batches or is skipped; this counter can, and it is saved in the checkpoint: a
    resumed run continues at this batch, and dropout draws its masks from it (see modeling.dropout). In a
    run without accumulation or skips it equals global_step at every step. A resource variable, like
    TPUEstimator's global_step: a read is a snapshot, so what a run reads before its increment (dropout's masks,
    pruning's) is the count before it; a hook fetches counts_before_update(), whose reads are ordered so too.
    """
    found = tf.get_collection(BATCHES_READ)
    if found:
        return found[0]
    return _create_batches_read(initial_value=0, collections=[tf.GraphKeys.GLOBAL_VARIABLES])


def count_batches_from_global_step(accumulation_steps: int):
    """`batches_read` for a run resumed from a checkpoint written before the counter existed, which a saver that
    expects it could not restore: a local variable, not saved, that starts at global_step * accumulation_steps
    (where those runs resumed). Call it before anything uses batches_read()."""
    step = tf.cast(tf.train.get_or_create_global_step(), tf.int64)
    return _create_batches_read(initial_value=step * accumulation_steps, collections=[tf.GraphKeys.LOCAL_VARIABLES])


def read_before_update(global_step, counter) -> List:
    """The tensors counts_before_update() finds: (global_step, batches_read) read by a run of train_op, which must
    make its increments after them (control dependencies on these). Snapshot copies: a read of a ref variable
    shares its buffer."""
    with tf.get_default_graph().name_scope(None):  # top level, where counts_before_update() looks
        return [tf.raw_ops.Snapshot(input=global_step, name=STEP_BEFORE_UPDATE),
                tf.identity(counter.read_value(), name=BATCHES_BEFORE_UPDATE)]


def counts_before_update() -> Tuple:
    """(global_step, batches_read) as the current run of train_op read them before its increments: what a hook
    fetches along with train_op. A fetch of the variables themselves is not ordered with those increments:
    global_step, a ref variable that the update increments in place, then shows the new count, and the
    counter's read came after its increment in ~1% of the runs of a small graph (once in a resume test run
    under load, which recorded a batch's loss as the next one's)."""
    graph = tf.get_default_graph()
    return tuple(graph.get_tensor_by_name(name + ":0") for name in (STEP_BEFORE_UPDATE, BATCHES_BEFORE_UPDATE))


def _create_batches_read(initial_value, collections: List[str]):
    with tf.get_default_graph().name_scope(None):  # top level, wherever the first use is
        counter = tf.Variable(initial_value, dtype=tf.int64, trainable=False, name=BATCHES_READ, use_resource=True,
                              collections=collections + [BATCHES_READ],
                              # one count for all tf.distribute replicas, as for global_step
                              aggregation=tf.VariableAggregation.ONLY_FIRST_REPLICA)
    return counter
