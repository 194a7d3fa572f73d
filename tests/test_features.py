"""Examples to model inputs: layout, truncation, labels, TFRecords and the training order."""
import logging
import os
import threading

import numpy as np
import pytest

from bert.compat import tf
from bert import tokenization
from bert.data import features, processors
from conftest import tfrecord_examples

MRPC, STSB = processors.get_task("MRPC"), processors.get_task("STS-B")


def tokenizer_with(tmp_path, words):
    vocab = tmp_path / "vocab.txt"
    vocab.write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]"] + words) + "\n")
    return tokenization.FullTokenizer(str(vocab))


def test_pair_layout_and_padding(tmp_path):
    tok = tokenizer_with(tmp_path, ["a", "b", "c"])
    example = processors.InputExample("dev-0", "a b", "c", "1")
    f = features.convert_example(example, MRPC, 10, tok)
    assert f.input_ids == [2, 4, 5, 3, 6, 3, 0, 0, 0, 0]  # [CLS] a b [SEP] c [SEP] pad...
    assert f.segment_ids == [0, 0, 0, 0, 1, 1, 0, 0, 0, 0]
    assert f.input_mask == [1] * 6 + [0] * 4
    assert f.label_id == 1 and f.is_real_example


def test_truncation_trims_the_longer_text_first(tmp_path):
    tok = tokenizer_with(tmp_path, ["a", "b"])
    a, b = ["a"] * 4, ["b"] * 8
    features.truncate_pair(a, b, 7)
    assert (len(a), len(b)) == (4, 3)  # ties trim the second text
    f = features.convert_example(processors.InputExample("x", "a " * 20, None, "0"), MRPC, 8, tok)
    assert f.input_ids == [2] + [4] * 6 + [3] and f.input_mask == [1] * 8


def test_regression_labels_and_unlabelled_examples(tmp_path):
    tok = tokenizer_with(tmp_path, ["a"])
    assert features.convert_example(processors.InputExample("x", "a", "a", 3.8), STSB, 8, tok).label_id == 3.8
    assert features.convert_example(processors.InputExample("x", "a", "a", None), MRPC, 8, tok).label_id == 0


def test_tfrecord_round_trip_in_the_given_order(tmp_path):
    tok = tokenizer_with(tmp_path, ["a", "b"])
    examples = [processors.InputExample(str(i), "a " * (i + 1), "b", 0.5 * i) for i in range(5)]
    feats = features.convert_examples(examples, STSB, 12, tok)
    path = str(tmp_path / "train.tf_record")
    features.write_tfrecord(feats, path, is_regression=True)
    order = np.array([3, 1, 4, 0], dtype=np.int32)
    input_fn = features.input_fn_builder(path, 12, True, len(feats), order, batch_size=2, drop_remainder=True,
                                         dynamic_padding=False)
    with tf.Graph().as_default():
        iterator = tf.data.make_initializable_iterator(input_fn({}))
        batch = iterator.get_next()
        with tf.Session() as session:
            session.run(iterator.initializer)
            got = [session.run(batch) for _ in range(2)]
    labels = np.concatenate([b["label_ids"] for b in got])
    np.testing.assert_allclose(labels, [1.5, 0.5, 2.0, 0.0])
    assert got[0]["input_ids"].dtype == np.int32
    np.testing.assert_array_equal(got[0]["input_ids"][0], feats[3].input_ids)


def test_training_order_is_a_fresh_permutation_each_epoch():
    lengths = np.arange(10)
    order = features.training_order(lengths, batch_size=4, num_steps=7, seed=1, group_by_length=False)
    assert len(order) == 28
    assert sorted(order[:10]) == list(range(10)) and sorted(order[10:20]) == list(range(10))
    assert list(order[:10]) != list(order[10:20])
    np.testing.assert_array_equal(order, features.training_order(lengths, 4, 7, seed=1, group_by_length=False))
    assert list(order) != list(features.training_order(lengths, 4, 7, seed=2, group_by_length=False))


def test_grouping_by_length_keeps_the_epochs_and_cuts_padding():
    rng = np.random.RandomState(0)
    lengths = rng.randint(5, 128, size=1000)
    plain = features.training_order(lengths, 32, 62, seed=3, group_by_length=False)
    grouped = features.training_order(lengths, 32, 62, seed=3, group_by_length=True)
    assert sorted(grouped) == sorted(plain)  # the same examples (one window here), re-batched

    def padded_tokens(order):
        return sum(lengths[batch].max() * len(batch) for batch in order.reshape(-1, 32))

    assert padded_tokens(grouped) < 0.7 * padded_tokens(plain)
    first_batches = [tuple(b) for b in grouped.reshape(-1, 32)[:8]]
    assert [lengths[list(b)].max() for b in first_batches] != sorted(lengths[list(b)].max() for b in first_batches)


def test_inference_order_sorts_by_length_only_when_asked():
    lengths = np.array([5, 2, 9, 2])
    assert list(features.inference_order(lengths, True)) == [1, 3, 0, 2]
    assert list(features.inference_order(lengths, False)) == [0, 1, 2, 3]


def test_dynamic_padding_cuts_each_batch_to_its_longest_example_rounded_to_8(tmp_path):
    tok = tokenizer_with(tmp_path, ["a"])
    examples = [processors.InputExample(str(i), "a " * n, None, "0") for i, n in enumerate([3, 20, 9, 1])]
    feats = features.convert_examples(examples, MRPC, 64, tok)
    path = str(tmp_path / "dev.tf_record")
    features.write_tfrecord(feats, path, is_regression=False)
    lengths = np.array([sum(f.input_mask) for f in feats])
    order = features.inference_order(lengths, True)

    def shapes(**multiple):
        input_fn = features.input_fn_builder(path, 64, False, 4, order, batch_size=2, drop_remainder=False,
                                             dynamic_padding=True, **multiple)
        with tf.Graph().as_default():
            iterator = tf.data.make_initializable_iterator(input_fn({}))
            batch = iterator.get_next()
            with tf.Session() as session:
                session.run(iterator.initializer)
                return [session.run(batch)["input_ids"].shape for _ in range(2)]

    assert shapes() == [(2, 8), (2, 24)]  # lengths 3, 5 -> 8; 11, 22 -> 24
    assert shapes(length_multiple=1) == [(2, 5), (2, 22)]  # what run_classifier.py uses on CPU without XLA


def test_feature_cache_key_follows_the_data_file(tmp_path):
    tok = tokenizer_with(tmp_path, ["a", "b"])
    data = tmp_path / "RTE"
    data.mkdir()
    (data / "dev.tsv").write_text("index\tsentence1\tsentence2\tlabel\n0\ta\tb\tentailment\n")
    task = processors.get_task("RTE")
    cache = features.FeatureCache(str(tmp_path / "cache"), tok, str(tmp_path / "vocab.txt"), True, 16)
    first = cache.tfrecord(task, str(data), "dev", processors.read_examples(task, str(data), "dev"))
    assert list(first.lengths) == [5]  # [CLS] a [SEP] b [SEP]
    assert cache.tfrecord(task, str(data), "dev", processors.read_examples(task, str(data), "dev")) == first
    (data / "dev.tsv").write_text("index\tsentence1\tsentence2\tlabel\n0\tb\ta\tentailment\n")
    assert cache.tfrecord(task, str(data), "dev", processors.read_examples(task, str(data), "dev")) != first
    uncased = features.FeatureCache(str(tmp_path / "cache"), tok, str(tmp_path / "vocab.txt"), False, 16)
    assert uncased.tfrecord(task, str(data), "dev", processors.read_examples(task, str(data), "dev")) != first


@pytest.fixture
def tf_warnings(caplog):
    """The warnings TensorFlow's logger gets (it does not propagate to the root logger that caplog watches)."""
    logger = logging.getLogger("tensorflow")
    logger.addHandler(caplog.handler)
    yield lambda: [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    logger.removeHandler(caplog.handler)


@pytest.mark.parametrize("damage", ["fewer records", "cut inside a record", "fewer lengths"])
def test_feature_cache_rebuilds_an_entry_with_the_wrong_record_count(tmp_path, glue_dir, vocab_file, monkeypatch,
                                                                      tf_warnings, damage):
    """A cached file overwritten or cut short (an interrupted copy, another writer) is found out on reuse by its
    record count, warned about and rebuilt; an intact entry, TPU padding included, is reused as it is."""
    task, data_dir = processors.get_task("RTE"), str(glue_dir / "RTE")
    examples = processors.read_examples(task, data_dir, "dev")
    cache = features.FeatureCache(str(tmp_path), tokenization.FullTokenizer(vocab_file), vocab_file, True, 64)
    built = cache.tfrecord(task, data_dir, "dev", examples, padding=3)
    intact = tfrecord_examples(built.path)
    monkeypatch.setattr(features, "convert_examples", lambda *args: pytest.fail("an intact entry was rebuilt"))
    reused = cache.tfrecord(task, data_dir, "dev", examples, padding=3)
    assert reused.path == built.path and list(reused.lengths) == list(built.lengths) and not tf_warnings()
    monkeypatch.undo()

    if damage == "fewer records":
        records = list(tf.python_io.tf_record_iterator(built.path))
        with tf.python_io.TFRecordWriter(built.path) as writer:
            for record in records[:100]:
                writer.write(record)
    elif damage == "cut inside a record":
        with open(built.path, "r+b") as f:
            f.truncate(os.path.getsize(built.path) // 2)
    else:
        np.save(built.path + ".lengths.npy", built.lengths[:100])
    again = cache.tfrecord(task, data_dir, "dev", examples, padding=3)
    assert again.path == built.path and list(again.lengths) == list(built.lengths)
    assert tfrecord_examples(built.path) == intact
    expected = {"fewer records": "100 records and 280 lengths", "cut inside a record": "then a damaged one",
                "fewer lengths": "280 records and 100 lengths"}[damage]
    assert [w for w in tf_warnings() if built.path in w and expected in w and "280 (277 RTE dev examples" in w], \
        tf_warnings()


def test_parallel_conversion_gives_the_same_features_in_order(glue_dir, vocab_file):
    task = processors.get_task("SST-2")
    examples = processors.read_examples(task, str(glue_dir / "SST-2"), "dev")
    tok = tokenization.FullTokenizer(vocab_file)
    serial = features.convert_examples(examples, task, 64, tok, processes=1)
    parallel = features.convert_examples(examples, task, 64, tok, processes=2, min_parallel=100)
    assert parallel == serial and len(parallel) == 872


def test_a_worker_raises_what_the_conversion_raised(tmp_path):
    """An example that cannot be converted (a label the task does not have) fails the same way in a worker
    process as in the run itself."""
    tok = tokenizer_with(tmp_path, ["a"])
    examples = [processors.InputExample("train-%d" % i, "a", "a", "1") for i in range(300)]
    examples[250] = processors.InputExample("train-250", "a", "a", "maybe")
    with pytest.raises(ValueError) as serial:
        features.convert_examples(examples, MRPC, 8, tok, processes=1)
    with pytest.raises(ValueError) as parallel:
        features.convert_examples(examples, MRPC, 8, tok, processes=2, min_parallel=100)
    assert str(parallel.value) == str(serial.value)


def test_a_worker_that_dies_is_a_clear_error(tmp_path, monkeypatch):
    """A worker killed before it sends its part (the kernel's out-of-memory killer) ends the run with an error
    that says so, not a hang or an EOFError."""
    tok = tokenizer_with(tmp_path, ["a"])
    examples = [processors.InputExample("train-%d" % i, "a", "a", "1") for i in range(300)]
    monkeypatch.setattr(features, "convert_example", lambda *args: os._exit(9))  # inherited by the forked workers
    with pytest.raises(RuntimeError, match="a tokenizing worker process ended with exit code 9 before sending"):
        features.convert_examples(examples, MRPC, 8, tok, processes=2, min_parallel=100)


def test_a_signal_while_the_workers_are_forked_stops_the_run(glue_dir, vocab_file):
    """SIGINT arriving as the run forks its tokenizing workers: the run's handler (hooks.StopSignals) raises
    Interrupted. Without the signals held during the fork, it ran inside logging's after-fork callback, whose
    exceptions Python prints and drops ("Exception ignored in: _releaseLock"), and the run went on tokenizing and
    trained to the end."""
    import signal
    from bert.training.hooks import Interrupted, StopSignals
    task = processors.get_task("SST-2")
    examples = processors.read_examples(task, str(glue_dir / "SST-2"), "dev")
    tok = tokenization.FullTokenizer(vocab_file)
    armed = [True]

    def signal_once():  # in the parent, right after each fork: the first one only
        if armed:
            armed.clear()
            os.kill(os.getpid(), signal.SIGINT)

    previous = signal.signal(signal.SIGINT, StopSignals())
    os.register_at_fork(after_in_parent=signal_once)  # registered for good: disarmed after its one signal
    done = threading.Event()
    other = threading.Thread(target=done.wait, args=(60,))  # a thread that can take the signal, as TF's can
    other.start()
    try:
        with pytest.raises(Interrupted, match="^stopped by SIGINT while preparing the run"):
            features.convert_examples(examples, task, 64, tok, processes=2, min_parallel=100)
    finally:
        armed.clear()
        done.set()
        signal.signal(signal.SIGINT, previous)
