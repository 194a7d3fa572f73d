"""The BERT paper's fine-tuning optimizer: Adam with decoupled weight decay and a warmup/decay schedule.

- learning rate: linear warmup from 0 over the first `num_warmup_steps`, then linear decay to 0 at
  `num_train_steps`;
- gradients averaged over the replicas that computed parts of the batch (TPU cores, tf.distribute replicas),
  then clipped to a global norm of 1.0: the update one device would make on the whole batch;
- Adam (beta1 0.9, beta2 0.999, epsilon 1e-6) without bias correction, as in Google's recipe (the
  warmup makes the correction immaterial), and weight decay 0.01 added to the update itself
  ("decoupled", Loshchilov & Hutter), not to the loss, for every weight except LayerNorm and biases.
Slots are named `<variable>/adam_m` and `<variable>/adam_v`, as in Google's fine-tuned checkpoints.
"""
import re
from typing import Callable, List, Optional, Sequence

from tensorflow.python.tpu import tpu_function  # the shard count of the TPU computation being built

from bert.compat import tf
from bert.counters import batches_read, read_before_update

NO_DECAY_PATTERNS = ("LayerNorm", "layer_norm", "bias")


def mean_over_replicas(use_tpu: bool) -> Callable[[List], List]:
    """The all-reduce that averages gradients over the replicas that each computed them on a part of the batch.

    TPUEstimator replicates the model over TPU cores without tf.distribute: a cross-replica sum over the
    shards of the TPU computation being built, divided by their number. Under a tf.distribute strategy:
    its replica context's mean. Otherwise there is one replica and the gradients stay as they are.
    """
    if use_tpu:
        shards = tpu_function.get_tpu_context().number_of_shards
        return lambda grads: [tf.tpu.cross_replica_sum(tf.convert_to_tensor(grad)) / shards for grad in grads]
    if tf.distribute.has_strategy():
        return lambda grads: tf.distribute.get_replica_context().all_reduce(
            tf.distribute.ReduceOp.MEAN, [tf.convert_to_tensor(grad) for grad in grads])
    return lambda grads: grads


def clipped_mean_gradient(grads: List, all_reduce_mean: Callable[[List], List], clip_norm: float) -> List:
    """The replicas' mean gradient, clipped to `clip_norm` as a whole: what one device with the whole batch would
    compute. Clipping each replica's gradient before averaging clips other vectors; TPU's CrossShardOptimizer,
    used before, sums in apply_gradients, so a clip before it clipped each core's gradient divided by the
    number of cores (with 8 cores, gradients of norm up to 8 went through unclipped)."""
    clipped, _ = tf.clip_by_global_norm(all_reduce_mean(grads), clip_norm=clip_norm)
    return clipped


def learning_rate_schedule(init_lr: float, global_step, num_train_steps: int, num_warmup_steps: int):
    """Linear warmup to `init_lr`, then linear decay to 0."""
    step = tf.cast(global_step, tf.float32)
    decay = init_lr * tf.maximum(0.0, 1.0 - step / float(max(num_train_steps, 1)))
    if not num_warmup_steps:
        return decay
    warmup = init_lr * step / float(num_warmup_steps)
    return tf.where(step < num_warmup_steps, warmup, decay)


class AdamWeightDecayOptimizer(tf.train.Optimizer):
    """Adam with decoupled weight decay; see the module docstring for the exact update."""

    def __init__(self, learning_rate, weight_decay_rate: float = 0.01, beta_1: float = 0.9,
                 beta_2: float = 0.999, epsilon: float = 1e-6,
                 exclude_from_weight_decay: Optional[Sequence[str]] = NO_DECAY_PATTERNS,
                 name: str = "AdamWeightDecayOptimizer"):
        super().__init__(use_locking=False, name=name)
        self.learning_rate = learning_rate
        self.weight_decay_rate = weight_decay_rate
        self.beta_1, self.beta_2, self.epsilon = beta_1, beta_2, epsilon
        self.exclude_from_weight_decay = tuple(exclude_from_weight_decay or ())

    def create_slots(self, variables) -> None:
        """Makes the moment variables now: they cannot be created inside a tf.cond (accumulation)."""
        self._moments = {var.op.name: tuple(zeros_like_variable(var, suffix) for suffix in ("adam_m", "adam_v"))
                         for var in variables}

    def apply_gradients(self, grads_and_vars, global_step=None, name=None):
        grads_and_vars = [(grad, var) for grad, var in grads_and_vars if grad is not None]
        if not hasattr(self, "_moments"):
            self.create_slots([var for _, var in grads_and_vars])
        # embedding gradients arrive as IndexedSlices
        grads_and_vars = [(tf.convert_to_tensor(grad), var) for grad, var in grads_and_vars]
        if tf.distribute.has_strategy():  # in one replica: mirrored variables change in the cross-replica context
            return tf.distribute.get_replica_context().merge_call(
                self._apply_on_every_device, args=(grads_and_vars, global_step, name))
        return self._apply_on_every_device(None, grads_and_vars, global_step, name)

    def _apply_on_every_device(self, strategy, grads_and_vars, global_step, name):
        """Updates every copy of every variable with the gradient of the copy's replica.

        Without a tf.distribute strategy a variable has one copy. With one, create_train_op has
        all-reduced the gradients already, so all copies of a variable get the same update.
        """
        local = strategy.experimental_local_results if strategy else lambda value: (value,)
        # No variable changes before every gradient is computed: the backward pass reads them all.
        with tf.control_dependencies([g for grad, _ in grads_and_vars for g in local(grad)]):
            updates = [self._apply_one(*copies) for grad, var in grads_and_vars
                       for copies in zip(local(var), *map(local, self._moments[var.op.name]), local(grad))]
        with tf.control_dependencies(updates):
            if global_step is None:
                return tf.group(*updates, name=name)
            return tf.group(*[step.assign_add(1) for step in local(global_step)], name=name)

    def _apply_one(self, var, m, v, grad):
        # TF's fused kernels each make one pass over the variable, in place (element-wise ops would make
        # a dozen passes and as many temporaries, which costs on the 30522 x H word embeddings).
        is_ref = var.op.type == "VariableV2"  # what tf.get_variable makes in TF 1 graphs; tf.distribute makes resources
        decay = []
        if self._decays(var.op.name):
            # var - lr * (adam + wd * var) == (var - lr * wd * var) - lr * adam: decay first, then Adam
            rate = self.learning_rate * self.weight_decay_rate
            decay = [tf.raw_ops.ApplyGradientDescent(var=var, alpha=rate, delta=var) if is_ref else
                     tf.raw_ops.ResourceApplyGradientDescent(var=var.handle, alpha=rate, delta=var.read_value())]
        with tf.control_dependencies(decay):
            # beta powers of 0 turn Adam's bias correction off
            hyper = dict(beta1_power=0.0, beta2_power=0.0, lr=self.learning_rate, beta1=self.beta_1,
                         beta2=self.beta_2, epsilon=self.epsilon, grad=grad)
            if is_ref:
                return tf.raw_ops.ApplyAdam(var=var, m=m, v=v, **hyper)
            return tf.raw_ops.ResourceApplyAdam(var=var.handle, m=m.handle, v=v.handle, **hyper)

    def _decays(self, variable_name: str) -> bool:
        return self.weight_decay_rate > 0 and not any(
            re.search(pattern, variable_name) for pattern in self.exclude_from_weight_decay)

    # tf.train.Optimizer's abstract per-variable hooks: apply_gradients above does all the work.
    def _apply_dense(self, grad, var):
        raise NotImplementedError

    def _resource_apply_dense(self, grad, handle):
        raise NotImplementedError

    def _apply_sparse(self, grad, var):
        raise NotImplementedError


def zeros_like_variable(var, suffix: str):
    return tf.get_variable(var.op.name + "/" + suffix, var.shape.as_list(), tf.float32, trainable=False,
                           initializer=tf.zeros_initializer())


def create_train_op(loss, init_lr: float, num_train_steps: int, num_warmup_steps: int,
                    use_tpu: bool = False, clip_norm: float = 1.0, accumulation_steps: int = 1,
                    use_fp16: bool = False, initial_loss_scale: float = 2.0 ** 15,
                    before_update: Optional[Callable[[List, List], List]] = None):
    """Builds the training op and returns (train_op, learning_rate tensor).

    Every run of train_op reads one batch and adds 1 to `batches_read` (bert/counters.py). With `accumulation_steps` N > 1
    each run takes one micro-batch: its gradients are summed into `<variable>/grad_accum`, and every N-th
    run applies their mean (averaged over replicas and clipped, as one large batch would be) and advances
    global_step. The schedule counts applied updates.
    With `use_fp16`, TensorFlow's automatic mixed precision rewrites the graph to float16 where that is
    safe (on GPUs; elsewhere it changes nothing) and scales the loss dynamically, starting at
    `initial_loss_scale`: an update whose gradients overflow is skipped (global_step stays, the scale halves).
    `before_update(gradients, variables)` returns ops that must run on each update's gradients (this replica's,
    not clipped; the mean of the micro-batches with accumulation) before the variables change: pruning's score
    accumulation, which runs with one replica only.
    """
    global_step = tf.train.get_or_create_global_step()
    counter = batches_read()
    counts = read_before_update(global_step, counter)
    learning_rate = learning_rate_schedule(init_lr, global_step, num_train_steps, num_warmup_steps)
    adam = optimizer = AdamWeightDecayOptimizer(learning_rate)
    if use_fp16:
        optimizer = tf.train.experimental.enable_mixed_precision_graph_rewrite(
            optimizer, loss_scale=tf.train.experimental.DynamicLossScale(initial_loss_scale))
    variables = tf.trainable_variables()
    adam.create_slots(variables)  # outside any tf.cond that accumulation or loss scaling adds
    if tf.distribute.has_strategy():
        if accumulation_steps > 1 or use_fp16:
            raise ValueError("gradient accumulation and fp16 loss scaling are not implemented under a tf.distribute "
                             "strategy")
        # Not compute_gradients: under a strategy it divides the loss by the number of replicas, and
        # mean_over_replicas averages already.
        grads = tf.gradients(loss, variables)
    else:  # compute_gradients: with use_fp16, it scales the loss up and the gradients back down
        grads = [grad for grad, _ in optimizer.compute_gradients(loss, var_list=variables)]
    all_reduce_mean = mean_over_replicas(use_tpu)

    def apply(gradients):  # after the counts are read: it increments global_step
        with tf.control_dependencies(counts + (before_update(gradients, variables) if before_update else [])):
            clipped = clipped_mean_gradient(gradients, all_reduce_mean, clip_norm)
            return optimizer.apply_gradients(zip(clipped, variables), global_step=global_step)

    if accumulation_steps == 1:
        # After the update, which needed the gradients and with them every read of the counter (dropout's).
        with tf.control_dependencies([apply(grads)]):
            return counter.assign_add(1, read_value=False), learning_rate
    if use_tpu:
        raise ValueError("gradient accumulation is not supported on TPU: use a smaller --train_batch_size")
    sums = [zeros_like_variable(var, "grad_accum") for var in variables]
    added = [total.assign_add(tf.convert_to_tensor(grad)) for total, grad in zip(sums, grads)]
    with tf.control_dependencies(added + counts):
        count = counter.assign_add(1)

    def apply_and_reset():
        with tf.control_dependencies([apply([total / float(accumulation_steps) for total in sums])]):
            return tf.group(*[total.assign(tf.zeros_like(total)) for total in sums])

    train_op = tf.cond(tf.equal(count % accumulation_steps, 0), apply_and_reset, tf.no_op)
    return train_op, learning_rate
