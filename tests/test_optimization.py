"""The fine-tuning optimizer against a NumPy re-statement of the BERT recipe."""
import numpy as np
import pytest

from bert.compat import tf
from bert import counters, optimization


def run_schedule(steps, init_lr=1e-3, total=100, warmup=10):
    with tf.Graph().as_default():
        step = tf.placeholder(tf.int64, [])
        lr = optimization.learning_rate_schedule(init_lr, step, total, warmup)
        with tf.Session() as session:
            return [session.run(lr, {step: s}) for s in steps]


def test_schedule_warms_up_linearly_then_decays_to_zero():
    lrs = run_schedule([0, 5, 10, 55, 100, 120])
    np.testing.assert_allclose(lrs, [0.0, 5e-4, 1e-3 * 0.9, 1e-3 * 0.45, 0.0, 0.0], rtol=1e-6, atol=1e-12)


def test_schedule_without_warmup_starts_at_peak():
    np.testing.assert_allclose(run_schedule([0, 50], warmup=0), [1e-3, 5e-4], rtol=1e-6)


def numpy_adamw_step(value, m, v, grad, lr, decay, beta_1=0.9, beta_2=0.999, eps=1e-6):
    m = beta_1 * m + (1 - beta_1) * grad
    v = beta_2 * v + (1 - beta_2) * grad ** 2
    return value - lr * (m / (np.sqrt(v) + eps) + decay * value), m, v


def test_two_steps_match_numpy_with_clipping_and_no_decay_on_bias_and_layernorm():
    rng = np.random.RandomState(0)
    init = {name: rng.randn(*shape).astype(np.float32)
            for name, shape in [("dense/kernel", (3, 2)), ("dense/bias", (2,)), ("LayerNorm/gamma", (2,))]}
    x = rng.randn(4, 3).astype(np.float32) * 10  # large inputs: the gradient norm is far above 1
    with tf.Graph().as_default():
        variables = {name: tf.get_variable(name, initializer=value) for name, value in init.items()}
        y = (tf.matmul(tf.constant(x), variables["dense/kernel"]) + variables["dense/bias"]) * variables["LayerNorm/gamma"]
        loss = tf.reduce_sum(tf.square(y))
        train_op, _ = optimization.create_train_op(loss, init_lr=0.1, num_train_steps=10, num_warmup_steps=0)
        grads = tf.gradients(loss, [variables[n] for n in init])
        with tf.Session() as session:
            session.run(tf.global_variables_initializer())
            expected = {name: (value, 0.0, 0.0) for name, value in init.items()}
            for step in range(2):
                raw = session.run(grads)
                norm = np.sqrt(sum((g ** 2).sum() for g in raw))
                assert norm > 1.0
                lr = 0.1 * (1 - step / 10.0)
                for name, grad in zip(init, raw):
                    value, m, v = expected[name]
                    decay = 0.0 if ("bias" in name or "LayerNorm" in name) else 0.01
                    expected[name] = numpy_adamw_step(value, m, v, grad / norm, lr, decay)
                session.run(train_op)
            for name in init:
                # TF's fused Adam kernel uses a fast float32 sqrt: agreement is to a few 1e-6, not 1e-7
                np.testing.assert_allclose(session.run(variables[name]), expected[name][0], rtol=1e-4, atol=1e-6)
                slot = tf.get_default_graph().get_tensor_by_name(name + "/adam_m:0")
                np.testing.assert_allclose(session.run(slot), expected[name][1], rtol=1e-4, atol=1e-7)
            assert session.run(tf.train.get_global_step()) == 2


@pytest.mark.parametrize("name,decays", [("bert/encoder/layer_0/output/dense/kernel", True),
                                         ("bert/encoder/layer_0/output/dense/bias", False),
                                         ("bert/embeddings/LayerNorm/gamma", False),
                                         ("output_weights", True), ("output_bias", False)])
def test_weight_decay_excludes_layernorm_and_biases(name, decays):
    assert optimization.AdamWeightDecayOptimizer(0.1)._decays(name) is decays


def train_two_updates(accumulation_steps):
    """Two optimizer updates over the same 8 examples, fed as full batches or as micro-batches."""
    rng = np.random.RandomState(1)
    x_all, kernel_init = rng.randn(2, 8, 3).astype(np.float32) * 5, rng.randn(3, 2).astype(np.float32)
    with tf.Graph().as_default():
        x = tf.placeholder(tf.float32, [None, 3])
        kernel = tf.get_variable("dense/kernel", initializer=kernel_init)
        bias = tf.get_variable("dense/bias", initializer=np.ones(2, np.float32))
        loss = tf.reduce_mean(tf.square(tf.matmul(x, kernel) + bias))
        train_op, _ = optimization.create_train_op(loss, 0.1, num_train_steps=4, num_warmup_steps=1,
                                                   accumulation_steps=accumulation_steps)
        with tf.Session() as session:
            session.run(tf.global_variables_initializer())
            steps = []
            for batch in x_all:
                for micro_batch in np.split(batch, accumulation_steps):
                    session.run(train_op, {x: micro_batch})
                    steps.append(session.run(tf.train.get_global_step()))
            return session.run([kernel, bias]), steps


def test_gradient_accumulation_equals_one_large_batch():
    (kernel, bias), steps = train_two_updates(1)
    (kernel_acc, bias_acc), steps_acc = train_two_updates(2)
    assert steps == [1, 2] and steps_acc == [0, 1, 1, 2]
    np.testing.assert_allclose(kernel_acc, kernel, rtol=1e-5, atol=2e-5)
    np.testing.assert_allclose(bias_acc, bias, rtol=1e-5, atol=2e-5)


def test_clipped_mean_gradient_is_the_replicas_mean_clipped_as_a_whole():
    """Two tf.distribute replicas (two CPU devices) with different gradients: each gets the NumPy clip of their mean,
    which is not the mean of their clipped gradients (per-replica clipping, as before on TPU)."""
    per_replica = [[np.array([3.0, 4.0], np.float32), np.zeros(2, np.float32)],  # norm 5
                   [np.array([0.3, 0.0], np.float32), np.array([0.4, 0.0], np.float32)]]  # norm 0.5

    def clip(grads):
        norm = np.sqrt(sum((g ** 2).sum() for g in grads))
        return [g * min(1.0, 1.0 / norm) for g in grads]

    expected = clip([np.mean(parts, axis=0) for parts in zip(*per_replica)])
    per_replica_clipping = [np.mean(parts, axis=0) for parts in zip(*map(clip, per_replica))]
    assert np.abs(expected[0] - per_replica_clipping[0]).max() > 0.1  # the test tells the two apart
    with tf.Graph().as_default():
        strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])

        def replica_fn():
            replica = tf.distribute.get_replica_context().replica_id_in_sync_group
            grads = [tf.gather(tf.constant(np.stack(parts)), replica) for parts in zip(*per_replica)]
            return optimization.clipped_mean_gradient(grads, optimization.mean_over_replicas(use_tpu=False), 1.0)

        with strategy.scope():
            clipped = strategy.extended.call_for_each_replica(replica_fn)
        with tf.Session(config=tf.ConfigProto(device_count={"CPU": 2})) as session:
            got = session.run([strategy.experimental_local_results(grad) for grad in clipped])
    for grad, want in zip(got, expected):
        assert len(grad) == 2  # one copy per replica, both the same
        for copy in grad:
            np.testing.assert_allclose(copy, want, rtol=1e-6)


def ancestors(ops):
    seen, frontier = set(), list(ops)
    while frontier:
        op = frontier.pop()
        if op not in seen:
            seen.add(op)
            frontier.extend([tensor.op for tensor in op.inputs] + list(op.control_inputs))
    return seen


def test_tpu_train_op_clips_the_cross_replica_mean():
    """The train op of two TPU cores, built (not run) on CPU inside TensorFlow's TPU shard context: gradient
    clipping consumes the cross-replica sum, and no sum follows it. CrossShardOptimizer, used before, sums in
    apply_gradients, after the clip, which thus clipped each core's share of the gradient."""
    from tensorflow.python.tpu import tpu_function

    with tf.Graph().as_default() as graph, tpu_function.tpu_shard_context(2):
        kernel = tf.get_variable("dense/kernel", initializer=np.ones((3, 2), np.float32))
        loss = tf.reduce_sum(tf.square(tf.matmul(tf.ones([4, 3]), kernel)))
        optimization.create_train_op(loss, 0.1, num_train_steps=10, num_warmup_steps=1, use_tpu=True)
        ops = graph.get_operations()
    sums = [op for op in ops if op.type == "CrossReplicaSum"]
    clip = [op for op in ops if op.name.startswith("clip_by_global_norm/")]
    assert sums and clip
    assert set(sums) <= ancestors(clip)
    assert not any(ancestors([op]) & set(clip) for op in sums)


def tiny_bert_loss(config, features, accumulation_steps):
    """A tiny BERT's training loss on fixed features, and its train op."""
    from bert import modeling
    model = modeling.BertModel(config, True, tf.constant(features["input_ids"]), tf.constant(features["input_mask"]))
    head = modeling.classifier_head(model.pooled_output, 2, False, True, labels=tf.constant(features["labels"]),
                                    dropout_rate=config.hidden_dropout_prob)
    train_op, _ = optimization.create_train_op(head.loss, 1e-3, num_train_steps=4, num_warmup_steps=0,
                                               accumulation_steps=accumulation_steps)
    return head.loss, train_op


@pytest.mark.parametrize("dropout", [0.1, 0.0])
def test_micro_batches_of_one_update_draw_their_own_dropout_masks(dropout):
    """The same micro-batch twice in one accumulated update: the weights do not change between the two runs,
    so their losses differ only by their dropout masks, which (with global_step in the seed, as before)
    were the same. Without dropout the two losses are equal."""
    from bert import modeling
    from conftest import TINY_BERT_CONFIG

    config = modeling.BertConfig.from_dict(dict(TINY_BERT_CONFIG, hidden_dropout_prob=dropout,
                                                attention_probs_dropout_prob=dropout))
    rng = np.random.RandomState(0)
    features = {"input_ids": rng.randint(1, 1000, size=(4, 9)).astype(np.int32),
                "input_mask": np.ones((4, 9), np.int32), "labels": np.array([0, 1, 1, 0], np.int32)}
    with tf.Graph().as_default():
        tf.set_random_seed(3)
        loss, train_op = tiny_bert_loss(config, features, accumulation_steps=2)
        with tf.Session() as session:
            session.run(tf.global_variables_initializer())
            first, second = [session.run([loss, train_op])[0] for _ in range(2)]
            step, batches = session.run([tf.train.get_global_step(), counters.batches_read()])
    assert (step, batches) == (1, 2)
    if dropout:
        assert abs(first - second) > 1e-4, (first, second)
    else:
        assert first == second


@pytest.mark.parametrize("scale,applied", [(2.0 ** 15, 3), (float("inf"), 0)])
def test_batches_read_counts_every_run_and_global_step_the_applied_updates(scale, applied):
    """fp16 loss scaling skips updates whose gradients overflow (an infinite scale overflows every one): global_step
    stays where it was, the batches read go on."""
    with tf.Graph().as_default():
        kernel = tf.get_variable("dense/kernel", initializer=np.ones((3, 2), np.float32))
        loss = tf.reduce_mean(tf.square(tf.matmul(tf.ones([4, 3]), kernel)))
        train_op, _ = optimization.create_train_op(loss, 0.1, num_train_steps=10, num_warmup_steps=0, use_fp16=True,
                                                   initial_loss_scale=scale)
        with tf.Session() as session:
            session.run(tf.global_variables_initializer())
            for _ in range(3):
                session.run(train_op)
            assert session.run([tf.train.get_global_step(), counters.batches_read()]) == [applied, 3]


@pytest.mark.parametrize("accumulation_steps,use_fp16", [(1, False), (2, False), (1, True)])
def test_the_counts_fetched_with_train_op_are_those_before_its_update(accumulation_steps, use_fp16):
    """ProgressHook fetches counts_before_update() with train_op. A fetch of the variables themselves races with
    the increments of the same run: global_step (a ref variable, incremented in place) showed the new count in
    every run of this test, batches_read's read came after its increment in about 1% of them."""
    with tf.Graph().as_default():
        kernel = tf.get_variable("dense/kernel", initializer=np.eye(64, dtype=np.float32))
        x = tf.random.normal([64, 64])
        for _ in range(3):  # some work before the update, which the reads could otherwise wait for
            x = tf.matmul(x, kernel)
        train_op, _ = optimization.create_train_op(tf.reduce_mean(tf.square(x)), 1e-3, num_train_steps=10 ** 4,
                                                   num_warmup_steps=0, accumulation_steps=accumulation_steps,
                                                   use_fp16=use_fp16)  # its update is in a tf.cond
        counts = counters.counts_before_update()
        with tf.Session() as session:
            session.run(tf.global_variables_initializer())
            fetched = [tuple(session.run([train_op, counts])[1]) for _ in range(2000)]
    assert fetched == [(run // accumulation_steps, run) for run in range(2000)]
