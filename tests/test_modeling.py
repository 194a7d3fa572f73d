"""The encoder: Google's variable layout, the maths (GELU, masking) and agreement with an independent
reference implementation (Hugging Face transformers' BertModel, via tests/golden/make_golden.py)."""
import numpy as np
import pytest
import scipy.special

from bert.compat import tf
from bert import modeling

TINY = modeling.BertConfig(vocab_size=99, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                           intermediate_size=48, max_position_embeddings=40, type_vocab_size=2)


def google_variable_shapes(config):
    """The names and shapes of Google's released checkpoints, written out from their documented layout."""
    h, i = config.hidden_size, config.intermediate_size
    shapes = {"bert/embeddings/word_embeddings": [config.vocab_size, h],
              "bert/embeddings/token_type_embeddings": [config.type_vocab_size, h],
              "bert/embeddings/position_embeddings": [config.max_position_embeddings, h],
              "bert/embeddings/LayerNorm/beta": [h], "bert/embeddings/LayerNorm/gamma": [h],
              "bert/pooler/dense/kernel": [h, h], "bert/pooler/dense/bias": [h]}
    for n in range(config.num_hidden_layers):
        layer = "bert/encoder/layer_%d/" % n
        for part in ("query", "key", "value"):
            shapes[layer + "attention/self/%s/kernel" % part] = [h, h]
            shapes[layer + "attention/self/%s/bias" % part] = [h]
        shapes.update({layer + "attention/output/dense/kernel": [h, h], layer + "attention/output/dense/bias": [h],
                       layer + "attention/output/LayerNorm/beta": [h], layer + "attention/output/LayerNorm/gamma": [h],
                       layer + "intermediate/dense/kernel": [h, i], layer + "intermediate/dense/bias": [i],
                       layer + "output/dense/kernel": [i, h], layer + "output/dense/bias": [h],
                       layer + "output/LayerNorm/beta": [h], layer + "output/LayerNorm/gamma": [h]})
    return shapes


def build(config, batch=2, seq=7, is_training=False):
    ids = tf.placeholder(tf.int32, [None, None])
    mask = tf.placeholder(tf.int32, [None, None])
    types = tf.placeholder(tf.int32, [None, None])
    return (ids, mask, types), modeling.BertModel(config, is_training, ids, mask, types)


def test_variables_have_googles_names_and_shapes():
    with tf.Graph().as_default():
        _, model = build(TINY)
        modeling.classifier_head(model.pooled_output, 3, False, True, tf.constant([0]))
        got = {v.op.name: v.shape.as_list() for v in tf.trainable_variables()}
    expected = google_variable_shapes(TINY)
    expected.update({"output_weights": [3, TINY.hidden_size], "output_bias": [3]})
    assert got == expected


def test_gelu_variants():
    with tf.Graph().as_default(), tf.Session() as session:
        x = tf.constant([-1.0, 0.0, 1.0, 3.0])
        tanh_form, erf_form = session.run([modeling.gelu(x), modeling.gelu_exact(x)])
    np.testing.assert_allclose(erf_form, [-0.15865525, 0.0, 0.84134475, 2.99595031], rtol=1e-6)
    np.testing.assert_allclose(tanh_form, [-0.15880801, 0.0, 0.84119199, 2.99636261], rtol=1e-6)
    assert modeling.get_activation("GELU_exact") is modeling.gelu_exact
    with pytest.raises(ValueError, match="unknown hidden_act"):
        modeling.get_activation("swish")


@pytest.mark.parametrize("change,message", [
    ({"hidden_act": "swish"}, "cfg.json: unknown hidden_act 'swish'; known: gelu, gelu_exact, relu, tanh"),
    ({"hidden_act": 1}, "cfg.json: hidden_act must be a string, not 1"),
    ({"hidden_size": 30}, "cfg.json: hidden_size 30 is not a multiple of num_attention_heads 4"),
])
def test_config_no_model_can_be_built_from_is_refused_when_read(change, message):
    """Refused by from_dict, with the file's name, not later when the graph is built."""
    with pytest.raises(ValueError) as error:
        modeling.BertConfig.from_dict(dict(vars(TINY), **change), source="cfg.json")
    assert str(error.value) == message
    assert modeling.BertConfig.from_dict(dict(vars(TINY), hidden_act="GELU_exact")).hidden_act == "GELU_exact"


def test_normal_cdf_is_as_exact_as_erf_in_float32():
    """TF 1.15's gelu_exact computes Phi with a polynomial in a sigmoid (modeling.normal_cdf): it must be
    exact to float32 rounding, over the whole range and at the extremes."""
    x = np.concatenate([np.linspace(-30, 30, 300001), [-1e30, -1e-30, 0.0, 1e-30, 1e30]]).astype(np.float32)
    reference = x.astype(np.float64) * scipy.special.ndtr(x.astype(np.float64))
    with tf.Graph().as_default(), tf.Session() as session:
        ours = session.run(tf.constant(x) * modeling.normal_cdf(tf.constant(x)))
    error = np.abs(ours - reference) / np.maximum(1.0, np.abs(x))
    assert error.max() < 2.5e-7, "worst at x=%g" % x[error.argmax()]
    np.testing.assert_array_equal(ours[-5:], x[-5:] * np.float32([0.0, 0.5, 0.5, 0.5, 1.0]))  # no NaN or inf


def test_hand_written_gradients_match_tensorflows_derivation():
    """gelu_exact and layer_norm carry their own gradients (fewer passes); they must equal autodiff's."""
    rng = np.random.RandomState(2)
    x_value, dy_value = rng.normal(0, 2, size=[2, 5, 16]), rng.normal(size=[2, 5, 16])
    with tf.Graph().as_default(), tf.Session() as session:
        x, dy = tf.constant(x_value, tf.float32), tf.constant(dy_value, tf.float32)
        gelu_reference = 0.5 * x * (1.0 + tf.math.erf(x / np.sqrt(2.0)))
        normalized = modeling.layer_norm(x)
        beta, gamma = tf.global_variables()  # in the order layer_norm makes them
        session.run([gamma.assign(rng.normal(size=16)), beta.assign(rng.normal(size=16))])
        mean, variance = tf.nn.moments(x, [-1], keep_dims=True)
        norm_reference = (x - mean) * tf.rsqrt(variance + 1e-12) * gamma + beta
        ours = session.run([modeling.gelu_exact(x), tf.gradients(modeling.gelu_exact(x), x, dy)[0], normalized]
                           + tf.gradients(normalized, [x, gamma, beta], dy))
        theirs = session.run([gelu_reference, tf.gradients(gelu_reference, x, dy)[0], norm_reference]
                             + tf.gradients(norm_reference, [x, gamma, beta], dy))
    for got, expected in zip(ours, theirs):
        np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5)


def test_dropout_gradient_uses_the_forward_mask():
    """Kept units are scaled by 1 / (1 - rate); the hand-written gradient passes dy through that same mask."""
    rng = np.random.RandomState(3)
    x_value, dy_value = rng.uniform(0.5, 2.0, size=[64, 64]), rng.normal(size=[64, 64])
    with tf.Graph().as_default(), tf.Session() as session:
        x, dy = tf.constant(x_value, tf.float32), tf.constant(dy_value, tf.float32)
        tf.train.get_or_create_global_step()
        dropped = modeling.dropout(x, 0.25, is_training=True)
        session.run(tf.global_variables_initializer())
        out, grad = session.run([dropped, tf.gradients(dropped, x, dy)[0]])
        assert modeling.dropout(x, 0.25, is_training=False) is x
    kept = out != 0
    assert 0.22 < 1 - kept.mean() < 0.28
    np.testing.assert_allclose(out[kept], x_value[kept] / 0.75, rtol=1e-6)
    np.testing.assert_allclose(grad, np.where(kept, dy_value / 0.75, 0.0), rtol=1e-6)


def test_dropout_streams_draw_their_own_masks():
    """Same op name, seed and step: the same mask on the same stream, another on another stream."""
    with tf.Graph().as_default(), tf.Session() as session:
        tf.train.get_or_create_global_step()
        x = tf.ones([256])
        masks = [modeling.dropout(x, 0.5, True, stream=s) for s in (0, 0, 1)]
        session.run(tf.global_variables_initializer())
        first, again, other = session.run(masks)
    np.testing.assert_array_equal(first, again)
    assert (first != other).mean() > 0.3


def test_pooled_output_skips_the_last_layer_for_all_but_cls():
    """pooled_output is the pooler on sequence_output's [CLS] row, computed without sequence_output."""
    rng = np.random.RandomState(1)
    with tf.Graph().as_default():
        (ids, mask, types), model = build(TINY)
        with tf.variable_scope("bert/pooler", reuse=True):
            from_sequence = modeling.dense(model.sequence_output[:, 0], TINY.hidden_size, "dense", TINY, tf.tanh)
        ancestors, frontier = set(), [model.pooled_output.op]
        while frontier:
            op = frontier.pop()
            if op not in ancestors:
                ancestors.add(op)
                frontier.extend(tensor.op for tensor in op.inputs)
        assert model.sequence_output.op not in ancestors
        assert any(op.name.startswith("bert/encoder/layer_0/output/") for op in ancestors)
        with tf.Session() as session:
            session.run(tf.global_variables_initializer())
            feed = {ids: rng.randint(1, TINY.vocab_size, size=[3, 6]), types: rng.randint(0, 2, size=[3, 6]),
                    mask: [[1] * 6, [1] * 4 + [0] * 2, [1] * 2 + [0] * 4]}
            pooled, expected = session.run([model.pooled_output, from_sequence], feed)
    np.testing.assert_allclose(pooled, expected, atol=1e-6)


def test_one_hot_embeddings_match_the_gather_lookup():
    """TPUs look embeddings up as a one-hot matmul: the same outputs and embedding gradients as tf.gather."""
    rng = np.random.RandomState(4)
    feed_values = [rng.randint(0, TINY.vocab_size, size=[3, 6]), [[1] * 6, [1] * 4 + [0] * 2, [1] * 2 + [0] * 4],
                   rng.randint(0, TINY.type_vocab_size, size=[3, 6])]
    sequence_weights, pooled_weights = rng.normal(size=[3, 6, TINY.hidden_size]), rng.normal(size=[3, TINY.hidden_size])
    with tf.Graph().as_default(), tf.Session() as session:
        inputs = [tf.placeholder(tf.int32, [None, None]) for _ in range(3)]
        results = []
        for one_hot in (False, True):
            with tf.variable_scope(tf.get_variable_scope(), reuse=tf.AUTO_REUSE):
                model = modeling.BertModel(TINY, False, *inputs, use_one_hot_embeddings=one_hot)
            assert ("OneHot" in {op.type for op in tf.get_default_graph().get_operations()}) == one_hot
            tables = [v for v in tf.trainable_variables() if v.op.name.startswith("bert/embeddings/")
                      and v.op.name.endswith("_embeddings")]
            loss = (tf.reduce_sum(model.sequence_output * sequence_weights)
                    + tf.reduce_sum(model.pooled_output * pooled_weights))
            results.append([model.sequence_output, model.pooled_output]
                           + [tf.convert_to_tensor(g) for g in tf.gradients(loss, tables)])
        assert len(tables) == 3
        session.run(tf.global_variables_initializer())
        gathered, one_hot = session.run(results, dict(zip(inputs, feed_values)))
    for got, expected in zip(one_hot, gathered):
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)


def test_padding_does_not_change_real_tokens():
    """Masked positions must be invisible: the same sentence padded to 5 or 12 gives the same vectors."""
    rng = np.random.RandomState(0)
    ids = rng.randint(1, TINY.vocab_size, size=[1, 5])
    with tf.Graph().as_default():
        (p_ids, p_mask, p_types), model = build(TINY)
        with tf.Session() as session:
            session.run(tf.global_variables_initializer())

            def run(length):
                pad = length - ids.shape[1]
                feed = {p_ids: np.pad(ids, [[0, 0], [0, pad]]), p_types: np.zeros([1, length]),
                        p_mask: np.pad(np.ones_like(ids), [[0, 0], [0, pad]])}
                return session.run([model.sequence_output, model.pooled_output], feed)

            short, padded = run(5), run(12)
    np.testing.assert_allclose(short[0], padded[0][:, :5], atol=1e-5)
    np.testing.assert_allclose(short[1], padded[1], atol=1e-5)


def run_on_golden_inputs(config, bert_dir, golden):
    """The embedded checkpoint's sequence output (real tokens) and pooled output on the reference's inputs, the
    names of the variables the checkpoint set, and the graph's op types."""
    with tf.Graph().as_default() as graph:
        (ids, mask, types), model = build(config)
        assignment_map = modeling.init_from_checkpoint(str(bert_dir / "bert_model.ckpt"), log=lambda *a: None)
        with tf.Session() as session:
            session.run(tf.global_variables_initializer())
            sequence, pooled = session.run([model.sequence_output, model.pooled_output], {
                ids: golden["input_ids"], mask: golden["input_mask"], types: golden["segment_ids"]})
    real = golden["input_mask"].astype(bool)
    return sequence[real], pooled, set(assignment_map), {op.type for op in graph.get_operations()}


def assert_matches_reference(sequence, pooled, golden):
    np.testing.assert_allclose(sequence, golden["sequence_output"][golden["input_mask"].astype(bool)], atol=1e-4)
    np.testing.assert_allclose(pooled, golden["pooled_output"], atol=1e-4)


def test_matches_reference_implementation_on_embedded_checkpoint(bert_dir, golden):
    config = modeling.BertConfig.from_json_file(str(bert_dir / "bert_config.json"))
    assert config.hidden_act == "gelu_exact"  # all-MiniLM-L6-v2 was trained with the erf form
    sequence, pooled, initialised, _ = run_on_golden_inputs(config, bert_dir, golden)
    assert initialised == set(google_variable_shapes(config))
    assert_matches_reference(sequence, pooled, golden)


def test_gelu_choice_matters_on_embedded_checkpoint(bert_dir, golden):
    """The same weights with the tanh GELU drift from the reference: the recorded hidden_act is needed."""
    config = modeling.BertConfig.from_json_file(str(bert_dir / "bert_config.json"))
    config.hidden_act = "gelu"
    sequence = run_on_golden_inputs(config, bert_dir, golden)[0]
    assert np.abs(sequence - golden["sequence_output"][golden["input_mask"].astype(bool)]).max() > 1e-4


def test_checkpoint_with_other_shapes_is_refused(bert_dir):
    config = modeling.BertConfig.from_json_file(str(bert_dir / "bert_config.json"))
    config.intermediate_size = 2 * config.intermediate_size
    with tf.Graph().as_default():
        build(config)
        with pytest.raises(ValueError, match="intermediate/dense/kernel with shape"):
            modeling.init_from_checkpoint(str(bert_dir / "bert_model.ckpt"), log=lambda *a: None)
