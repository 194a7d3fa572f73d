"""Examples to model inputs: layout, truncation, labels, TFRecords and the training order."""
import numpy as np

from bert.compat import tf
from bert import features, processors, tokenization

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
    input_fn = features.input_fn_builder(path, 12, True, len(feats), order=order)
    with tf.Graph().as_default():
        iterator = tf.data.make_initializable_iterator(input_fn({"batch_size": 2}))
        batch = iterator.get_next()
        with tf.Session() as session:
            session.run(iterator.initializer)
            got = [session.run(batch) for _ in range(2)]
    labels = np.concatenate([b["label_ids"] for b in got])
    np.testing.assert_allclose(labels, [1.5, 0.5, 2.0, 0.0])
    assert got[0]["input_ids"].dtype == np.int32
    np.testing.assert_array_equal(got[0]["input_ids"][0], feats[3].input_ids)


def test_training_order_is_a_fresh_permutation_each_epoch():
    order = features.training_order(num_examples=10, batch_size=4, num_steps=7, seed=1)
    assert len(order) == 28
    assert sorted(order[:10]) == list(range(10)) and sorted(order[10:20]) == list(range(10))
    assert list(order[:10]) != list(order[10:20])
    np.testing.assert_array_equal(order, features.training_order(10, 4, 7, seed=1))
    assert list(order) != list(features.training_order(10, 4, 7, seed=2))


def test_feature_cache_key_follows_the_data_file(tmp_path):
    tok = tokenizer_with(tmp_path, ["a", "b"])
    data = tmp_path / "RTE"
    data.mkdir()
    (data / "dev.tsv").write_text("index\tsentence1\tsentence2\tlabel\n0\ta\tb\tentailment\n")
    task = processors.get_task("RTE")
    cache = features.FeatureCache(str(tmp_path / "cache"), tok, str(tmp_path / "vocab.txt"), True, 16)
    first = cache.tfrecord(task, str(data), "dev", processors.read_examples(task, str(data), "dev"))
    assert cache.tfrecord(task, str(data), "dev", processors.read_examples(task, str(data), "dev")) == first
    (data / "dev.tsv").write_text("index\tsentence1\tsentence2\tlabel\n0\tb\ta\tentailment\n")
    assert cache.tfrecord(task, str(data), "dev", processors.read_examples(task, str(data), "dev")) != first
    uncased = features.FeatureCache(str(tmp_path / "cache"), tok, str(tmp_path / "vocab.txt"), False, 16)
    assert uncased.tfrecord(task, str(data), "dev", processors.read_examples(task, str(data), "dev")) != first
