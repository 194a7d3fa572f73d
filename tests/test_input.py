"""The training input: spare batches for skipped updates, and each TPU host's share of every batch.

TPUEstimator calls input_fn once per TPU host with a TPUContext in params["context"]. No TPU exists
here: a stand-in offers the one method of TPUContext that input_fn uses, current_input_fn_deployment(),
with the tuple TensorFlow 1.15 documents (the host device, this call's index, the number of calls, the
number of replicas this call feeds).
"""
import numpy as np

from bert import modeling
from bert.data import features
from bert.compat import tf
from conftest import TINY_BERT_CONFIG


def test_spare_batches_follow_the_planned_ones_unchanged():
    """The order with spare batches begins with the order without them, and its first spare batch finishes the
    epoch in progress: the 37 planned batches of 8 end 96 examples into the third epoch of 100."""
    lengths = np.random.RandomState(0).randint(3, 60, size=100)
    for group_by_length in (True, False):
        planned = features.training_order(lengths, 8, 37, seed=5, group_by_length=group_by_length)
        with_spare = features.training_order(lengths, 8, 37, seed=5, group_by_length=group_by_length, extra_steps=20)
        assert len(with_spare) == (37 + 20) * 8
        np.testing.assert_array_equal(with_spare[:len(planned)], planned)
        one_more = features.training_order(lengths, 8, 37, seed=5, group_by_length=group_by_length, extra_steps=1)
        assert sorted(np.bincount(one_more, minlength=100)) == [3] * 96 + [4] * 4  # 3 epochs, 4 of the next


class TPUContextStandIn:
    """TPUContext as input_fn sees it under PER_HOST_V2 input: one call per host, feeding that host's cores."""

    def __init__(self, host: int, hosts: int, cores_per_host: int):
        self.host, self.hosts, self.cores_per_host = host, hosts, cores_per_host

    def current_input_fn_deployment(self):
        return "/job:worker/task:%d/device:CPU:0" % self.host, self.host, self.hosts, self.cores_per_host


def host_batches(path, order, global_batch, per_core, context):
    """Every batch the host's dataset yields, as (example indices, replica ids)."""
    input_fn = features.input_fn_builder(path, 4, False, len(order), order, global_batch, drop_remainder=True,
                                         dynamic_padding=False)
    with tf.Graph().as_default(), tf.Session() as session:
        iterator = tf.data.make_initializable_iterator(input_fn({"batch_size": per_core, "context": context}))
        session.run(iterator.initializer)
        batch = iterator.get_next()
        out = []
        while True:
            try:
                values = session.run(batch)
            except tf.errors.OutOfRangeError:
                return out
            out.append((values["label_ids"].tolist(), values["replica"].tolist()))


def test_each_tpu_host_reads_its_cores_share_of_every_batch(tmp_path):
    """2 hosts x 2 cores, 2 examples per core: a global batch of 8. Host h's dataset gives, step after step, the
    batches of its cores 2h and 2h + 1 in turn (the order in which TPUEstimator's infeed hands them out), and
    together the hosts read every batch of the order once."""
    count, hosts, cores, per_core, steps = 40, 2, 2, 2, 5
    path = str(tmp_path / "records.tf_record")
    features.write_tfrecord([features.InputFeatures([1] * 4, [1] * 4, [0] * 4, label_id=i) for i in range(count)],
                            path, is_regression=False)  # each record's label is its index
    order = np.random.RandomState(1).permutation(count).astype(np.int32)
    global_batch = hosts * cores * per_core
    read = {host: host_batches(path, order, global_batch, per_core, TPUContextStandIn(host, hosts, cores))
            for host in range(hosts)}
    for host, batches in read.items():
        assert len(batches) == steps * cores
        for position, (examples, replicas) in enumerate(batches):
            step, core = divmod(position, cores)
            replica = host * cores + core
            assert replicas == [replica] * per_core
            start = step * global_batch + replica * per_core
            assert examples == order[start:start + per_core].tolist()
    everything = sorted(example for batches in read.values() for examples, _ in batches for example in examples)
    assert everything == sorted(order.tolist())


def test_the_replica_feature_gives_each_core_its_own_dropout_masks(tmp_path):
    """model_fn reads a TPU core's id from the input: the same batch on two cores draws two sets of masks."""
    from bert.data import processors
    from bert.training.estimator import model_fn_builder

    config = modeling.BertConfig.from_dict(TINY_BERT_CONFIG)
    model_fn = model_fn_builder(config, processors.get_task("RTE"), None, 1e-3, num_train_steps=2, num_warmup_steps=0,
                                use_tpu=False)
    rng = np.random.RandomState(0)
    batch = {"input_ids": rng.randint(1, 1000, size=(4, 9)), "input_mask": np.ones((4, 9)),
             "segment_ids": np.zeros((4, 9)), "label_ids": np.array([0, 1, 1, 0]), "is_real_example": np.ones(4)}
    losses = []
    for replica in (0, 0, 1):
        with tf.Graph().as_default(), tf.Session() as session:
            tf.set_random_seed(3)
            tf.train.get_or_create_global_step()
            inputs = {name: tf.constant(value, tf.int32) for name, value in batch.items()}
            inputs["replica"] = tf.fill([4], replica)
            spec = model_fn(inputs, None, tf.estimator.ModeKeys.TRAIN, {})
            session.run(tf.global_variables_initializer())
            losses.append(session.run(spec.loss))
    assert losses[0] == losses[1] and abs(losses[0] - losses[2]) > 1e-4, losses
