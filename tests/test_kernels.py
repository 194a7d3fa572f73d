"""The fused CPU kernels (bert/kernels.cc) against the TensorFlow ops they replace, and the model built
with them against the reference implementation."""
import numpy as np
import pytest
import scipy.special

from bert import kernels, modeling
from bert.compat import tf
from test_modeling import TINY, assert_matches_reference, build, run_on_golden_inputs


@pytest.fixture
def fused():
    """Graphs built inside the test use the kernels."""
    assert kernels.use(), "the fused kernels did not build: see the warning in the log"
    yield
    kernels.use(False)


AFTER_INIT = "run_after_init"


def run_both(make_outputs):
    """make_outputs() builds a graph and returns tensors; returns their values with TensorFlow's ops, then
    with the fused kernels, from graphs seeded alike (same initial weights and dropout masks). Ops in the
    AFTER_INIT collection run after the variables' initialisation."""
    values = []
    for on in (False, True):
        assert kernels.use(on) == on, "the fused kernels did not build: see the warning in the log"
        try:
            with tf.Graph().as_default():
                tf.set_random_seed(3)
                outputs = make_outputs()
                with tf.Session() as session:
                    session.run(tf.global_variables_initializer())
                    session.run(tf.get_collection(AFTER_INIT))
                    values.append(session.run(outputs))
        finally:
            kernels.use(False)
    return values


def test_gelu_kernel_is_as_exact_as_erf_in_float32(fused):
    x = np.concatenate([np.linspace(-30, 30, 300001), [-1e30, -1e-30, 0.0, 1e-30, 1e30]]).astype(np.float32)
    reference = x.astype(np.float64) * scipy.special.ndtr(x.astype(np.float64))
    with tf.Graph().as_default(), tf.Session() as session:
        ours = session.run(modeling.gelu_exact(tf.constant(x)))
        assert "BertGeluExact" in {op.type for op in tf.get_default_graph().get_operations()}
    error = np.abs(ours - reference) / np.maximum(1.0, np.abs(x))
    assert error.max() < 2.5e-7, "worst at x=%g" % x[error.argmax()]
    np.testing.assert_array_equal(ours[-5:], x[-5:] * np.float32([0.0, 0.5, 0.5, 0.5, 1.0]))  # no NaN or inf


@pytest.mark.parametrize("shape", [(2, 5, 48), (0, 48)])
def test_kernels_compute_what_tensorflows_ops_compute(shape):
    """GELU and LayerNorm, forward and every gradient, on random data (and on no rows, as an empty tower)."""
    rng = np.random.RandomState(0)
    x = (rng.randn(*shape) * 3 + 1).astype(np.float32)
    dy = rng.randn(*shape).astype(np.float32)
    gamma_beta = rng.randn(2, shape[-1]).astype(np.float32)  # not ones and zeros: every term of the gradient counts

    def outputs():
        inputs = tf.constant(x)
        gelu = modeling.gelu_exact(inputs)
        normalized = modeling.layer_norm(inputs)
        gamma, beta = (v for name in ("gamma", "beta") for v in tf.global_variables() if name in v.name)
        for variable, value in zip((gamma, beta), gamma_beta):
            tf.add_to_collection(AFTER_INIT, variable.assign(value))
        return ([gelu, normalized] + tf.gradients(gelu, [inputs], dy)
                + tf.gradients(normalized, [inputs, gamma, beta], dy))

    plain, fused_values = run_both(outputs)
    for name, a, b in zip(["gelu", "layer_norm", "d gelu / dx", "d layer_norm / dx", "/ dgamma", "/ dbeta"],
                          plain, fused_values):
        np.testing.assert_allclose(b, a, rtol=2e-5, atol=2e-5, err_msg=name)


@pytest.mark.parametrize("shape", [(2, 3, 5, 7), (2, 3, 1, 7), (0, 3, 5, 7)])
def test_masked_softmax_kernel_computes_what_tensorflows_ops_compute(shape):
    """Attention's softmax of scaled, masked scores and its gradient, for all queries, [CLS] alone, no examples."""
    rng = np.random.RandomState(0)
    scores = (rng.randn(*shape) * 4).astype(np.float32)
    mask = (np.arange(shape[-1]) < np.array([[5], [7]])[:shape[0]]).astype(np.float32)  # padding after 5 / 7 keys
    mask_bias = ((1.0 - mask) * -10000.0).reshape(shape[0], 1, 1, shape[-1])
    dp = rng.randn(*shape).astype(np.float32)

    def outputs():
        inputs = tf.constant(scores)
        probabilities = modeling.attention_probabilities(inputs, tf.constant(mask_bias), 0.125)
        return [probabilities] + tf.gradients(probabilities, [inputs], dp)

    plain, fused_values = run_both(outputs)
    for name, a, b in zip(["softmax", "d softmax / d scores"], plain, fused_values):
        np.testing.assert_allclose(b, a, rtol=2e-5, atol=1e-6, err_msg=name)
    if shape[0]:
        assert fused_values[0][0, :, :, 5:].max() < 1e-30  # padded keys get no attention


def test_training_step_with_kernels_matches_tensorflows_ops():
    """A tiny model's loss and gradients, dropout on, gelu_exact: the same with and without the kernels."""
    config = modeling.BertConfig(**dict(vars(TINY), hidden_act="gelu_exact"))
    ids = np.random.RandomState(1).randint(0, config.vocab_size, [3, 9])

    def outputs():
        model = modeling.BertModel(config, True, tf.constant(ids), tf.ones_like(ids), tf.zeros_like(ids))
        loss = tf.reduce_sum(tf.square(model.pooled_output)) + tf.reduce_sum(model.sequence_output)
        return [loss] + [tf.convert_to_tensor(g) for g in tf.gradients(loss, tf.trainable_variables())]

    plain, fused_values = run_both(outputs)
    for variable_index, (a, b) in enumerate(zip(plain, fused_values)):
        np.testing.assert_allclose(b, a, rtol=1e-4, atol=1e-5, err_msg="output %d" % variable_index)


def test_embedded_checkpoint_with_kernels_matches_reference_implementation(bert_dir, golden, fused):
    config = modeling.BertConfig.from_json_file(str(bert_dir / "bert_config.json"))
    sequence, pooled, _, op_types = run_on_golden_inputs(config, bert_dir, golden)
    assert {"BertGeluExact", "BertMaskedSoftmax", "BertLayerNorm"} <= op_types and "Erf" not in op_types
    assert_matches_reference(sequence, pooled, golden)


def test_without_a_compiler_the_model_keeps_tensorflows_ops(tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("CXX", str(tmp_path / "no-such-compiler"))
    monkeypatch.setattr(kernels, "_library", None)
    with pytest.raises(RuntimeError, match="cannot run the C\\+\\+ compiler"):
        kernels.build(str(tmp_path))
    try:
        assert not kernels.use(build_dir=str(tmp_path))
    finally:
        kernels.use(False)
    assert not kernels.active()
    with tf.Graph().as_default():
        build(modeling.BertConfig(**dict(vars(TINY), hidden_act="gelu_exact")))
        assert not {"BertGeluExact", "BertMaskedSoftmax", "BertLayerNorm"} & {op.type for op in tf.get_default_graph().get_operations()}


def test_a_build_is_reused_and_keyed_by_the_source(tmp_path, monkeypatch):
    path = kernels.build(str(tmp_path))
    built_at = tmp_path.stat().st_mtime_ns, (tmp_path / path.split("/")[-1]).stat().st_mtime_ns
    assert kernels.build(str(tmp_path)) == path  # no second compile
    assert (tmp_path.stat().st_mtime_ns, (tmp_path / path.split("/")[-1]).stat().st_mtime_ns) == built_at
    edited = tmp_path / "kernels.cc"
    edited.write_text(open(kernels.SOURCE).read() + "\n// edited\n")
    monkeypatch.setattr(kernels, "SOURCE", str(edited))
    assert kernels.library_path(str(tmp_path)) != path
