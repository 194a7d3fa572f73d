"""The BERT paper's fine-tuning optimizer: Adam with decoupled weight decay and a warmup/decay schedule.

- learning rate: linear warmup from 0 over the first `num_warmup_steps`, then linear decay to 0 at
  `num_train_steps`;
- gradients clipped to a global norm of 1.0;
- Adam (beta1 0.9, beta2 0.999, epsilon 1e-6) without bias correction, as in Google's recipe (the
  warmup makes the correction immaterial), and weight decay 0.01 added to the update itself
  ("decoupled", Loshchilov & Hutter), not to the loss, for every weight except LayerNorm and biases.
Slots are named `<variable>/adam_m` and `<variable>/adam_v`, as in Google's fine-tuned checkpoints.
"""
import re
from typing import Optional, Sequence

from bert.compat import tf

NO_DECAY_PATTERNS = ("LayerNorm", "layer_norm", "bias")


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

    def apply_gradients(self, grads_and_vars, global_step=None, name=None):
        updates = []
        for grad, var in grads_and_vars:
            if grad is None:
                continue
            grad = tf.convert_to_tensor(grad)  # embedding gradients arrive as IndexedSlices
            name_ = var.op.name
            m = tf.get_variable(name_ + "/adam_m", var.shape.as_list(), tf.float32,
                                trainable=False, initializer=tf.zeros_initializer())
            v = tf.get_variable(name_ + "/adam_v", var.shape.as_list(), tf.float32,
                                trainable=False, initializer=tf.zeros_initializer())
            next_m = self.beta_1 * m + (1.0 - self.beta_1) * grad
            next_v = self.beta_2 * v + (1.0 - self.beta_2) * tf.square(grad)
            update = next_m / (tf.sqrt(next_v) + self.epsilon)
            if self._decays(name_):
                update += self.weight_decay_rate * var
            updates += [var.assign_sub(self.learning_rate * update), m.assign(next_m), v.assign(next_v)]
        with tf.control_dependencies(updates):
            if global_step is None:
                return tf.group(*updates, name=name)
            return tf.assign_add(global_step, 1, name=name)

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


def create_train_op(loss, init_lr: float, num_train_steps: int, num_warmup_steps: int,
                    use_tpu: bool = False, clip_norm: float = 1.0):
    """Builds the training op and returns (train_op, learning_rate tensor)."""
    global_step = tf.train.get_or_create_global_step()
    learning_rate = learning_rate_schedule(init_lr, global_step, num_train_steps, num_warmup_steps)
    optimizer = AdamWeightDecayOptimizer(learning_rate)
    if use_tpu:
        optimizer = tf.tpu.CrossShardOptimizer(optimizer)
    variables = tf.trainable_variables()
    # compute_gradients, not tf.gradients: on TPU the CrossShardOptimizer sums across cores here.
    grads = [grad for grad, _ in optimizer.compute_gradients(loss, var_list=variables)]
    grads, _ = tf.clip_by_global_norm(grads, clip_norm=clip_norm)
    train_op = optimizer.apply_gradients(zip(grads, variables), global_step=global_step)
    return train_op, learning_rate
