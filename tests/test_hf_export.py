"""bert/serving/hf_export.py (python -m bert.serving.hf_export): a fine-tuned run in Hugging Face's
BertForSequenceClassification layout.

The exports of conftest's pruned embedded-model MRPC run and dense tiny STS-B run are checked tensor by tensor
against their checkpoints; the embedded model's own Hugging Face files, given a classifier head, go to Google's
layout and back bit for bit; transformers (its TensorFlow model, in the TF 2 environment) computes the runs'
logits from the export.
"""
import dataclasses
import importlib.util
import json
import os
import struct
import subprocess
import sys
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pytest

from bert.data import convert_checkpoint as cc
from bert import checkpoints, modeling, run_info, tokenization
from bert.data import features, processors
from bert.serving import hf_export
from bert.compat import IS_TF2, tf
from conftest import REPO_ROOT
from test_convert_checkpoint import make_tiny_hf_dir

PRUNING_SUFFIXES = ("_mask", "_pruning_score", "_group_lasso_reweight")


def raw_tensors(path):
    """{name: (dtype, shape, bytes)} straight from a .safetensors file's header offsets (no decoding)."""
    data = Path(path).read_bytes()
    (length,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + length])
    metadata = header.pop("__metadata__", None)
    start = 8 + length
    return metadata, {name: (e["dtype"], e["shape"], data[start + e["data_offsets"][0]:start + e["data_offsets"][1]])
                      for name, e in header.items()}


@pytest.fixture(scope="module")
def exported_mrpc(fine_tuned_mrpc, tmp_path_factory):
    out = tmp_path_factory.mktemp("hf_mrpc")
    return hf_export.export(str(fine_tuned_mrpc), str(out)), out


@pytest.fixture(scope="module")
def exported_stsb(fine_tuned_stsb, tmp_path_factory):
    out = tmp_path_factory.mktemp("hf_stsb")
    return hf_export.export(str(fine_tuned_stsb), str(out)), out


# Hugging Face's BertForSequenceClassification names for Google's variables, written out here by hand (not from
# convert_checkpoint's NAME_TABLE, which the export uses): a wrong row there fails these tests. True: transposed,
# a Dense kernel being [in, out] in TF and nn.Linear's weight [out, in]; the head's output_weights are [labels,
# hidden] in both.
EMBEDDINGS = [("bert/embeddings/word_embeddings", "bert.embeddings.word_embeddings.weight", False),
              ("bert/embeddings/position_embeddings", "bert.embeddings.position_embeddings.weight", False),
              ("bert/embeddings/token_type_embeddings", "bert.embeddings.token_type_embeddings.weight", False),
              ("bert/embeddings/LayerNorm/gamma", "bert.embeddings.LayerNorm.weight", False),
              ("bert/embeddings/LayerNorm/beta", "bert.embeddings.LayerNorm.bias", False)]
LAYER = [("attention/self/query/kernel", "attention.self.query.weight", True),
         ("attention/self/query/bias", "attention.self.query.bias", False),
         ("attention/self/key/kernel", "attention.self.key.weight", True),
         ("attention/self/key/bias", "attention.self.key.bias", False),
         ("attention/self/value/kernel", "attention.self.value.weight", True),
         ("attention/self/value/bias", "attention.self.value.bias", False),
         ("attention/output/dense/kernel", "attention.output.dense.weight", True),
         ("attention/output/dense/bias", "attention.output.dense.bias", False),
         ("attention/output/LayerNorm/gamma", "attention.output.LayerNorm.weight", False),
         ("attention/output/LayerNorm/beta", "attention.output.LayerNorm.bias", False),
         ("intermediate/dense/kernel", "intermediate.dense.weight", True),
         ("intermediate/dense/bias", "intermediate.dense.bias", False),
         ("output/dense/kernel", "output.dense.weight", True),
         ("output/dense/bias", "output.dense.bias", False),
         ("output/LayerNorm/gamma", "output.LayerNorm.weight", False),
         ("output/LayerNorm/beta", "output.LayerNorm.bias", False)]
HEAD = [("bert/pooler/dense/kernel", "bert.pooler.dense.weight", True),
        ("bert/pooler/dense/bias", "bert.pooler.dense.bias", False),
        ("output_weights", "classifier.weight", False),
        ("output_bias", "classifier.bias", False)]


def expected_hf_names(num_layers):
    """[(Google variable, Hugging Face tensor, transposed?)] of a BertForSequenceClassification of num_layers."""
    layers = [("bert/encoder/layer_%d/%s" % (i, google), "bert.encoder.layer.%d.%s" % (i, hf), transposed)
              for i in range(num_layers) for google, hf, transposed in LAYER]
    return EMBEDDINGS + layers + HEAD


def test_the_hand_written_names_are_those_of_transformers_bert_for_sequence_classification():
    """The table above against transformers' own model, where it is installed (the TF 2 environment): the PyTorch
    names and transposes it loads its TensorFlow BertForSequenceClassification's weights from. Their TF kernels are
    [in, out] like Google's; only the classifier differs: theirs is a Dense kernel, Google's output_weights are
    stored [labels, hidden], PyTorch's layout, already."""
    transformers = pytest.importorskip("transformers")
    from transformers.modeling_tf_pytorch_utils import TransposeType, convert_tf_weight_name_to_pt_weight_name
    config = transformers.BertConfig(vocab_size=100, hidden_size=8, num_hidden_layers=2, num_attention_heads=2,
                                     intermediate_size=16, num_labels=3)
    with tf.Graph().as_default():  # bert.compat runs TF 2 without eager execution
        model = transformers.TFBertForSequenceClassification(config)
        model.build_in_name_scope()
        weights = model.weights
    theirs = {}
    for weight in weights:
        name, transpose = convert_tf_weight_name_to_pt_weight_name(
            weight.name, start_prefix_to_remove=model.name + "/", tf_weight_shape=weight.shape)
        theirs[name] = transpose != TransposeType.NO and name != "classifier.weight"
    assert theirs == {hf: transposed for _, hf, transposed in expected_hf_names(2)}


def assert_tensors_are_the_checkpoints(run_dir, hf_dir, num_labels):
    run = run_info.read_run(str(run_dir))
    reader = tf.train.load_checkpoint(run.checkpoint)
    metadata, stored = raw_tensors(hf_dir / "model.safetensors")
    assert metadata == {"format": "pt"}
    exported = cc.read_safetensors(str(hf_dir / "model.safetensors"))
    expected = expected_hf_names(run.bert_config.num_hidden_layers)
    assert sorted(exported) == sorted(hf_name for _, hf_name, _ in expected)  # these names, no other tensor
    for google_name, hf_name, transposed in expected:
        ours = reader.get_tensor(google_name)
        assert stored[hf_name][0] == "F32"
        assert ours.ndim == 2 or not transposed
        np.testing.assert_array_equal(exported[hf_name], ours.T if transposed else ours, err_msg=google_name)
    assert exported["classifier.weight"].shape == (num_labels, run.bert_config.hidden_size)
    return run, reader, exported


def test_the_pruned_runs_tensors_are_its_checkpoints_with_kernels_transposed_and_its_zeros(exported_mrpc,
                                                                                         fine_tuned_mrpc):
    summary, hf_dir = exported_mrpc
    run, reader, exported = assert_tensors_are_the_checkpoints(fine_tuned_mrpc, hf_dir, 2)
    assert len(exported) == 105  # 103 encoder tensors and the classifier's two
    kernel = reader.get_tensor("bert/encoder/layer_3/intermediate/dense/kernel")
    weight = exported["bert.encoder.layer.3.intermediate.dense.weight"]
    assert kernel.shape == (384, 1536) and weight.shape == (1536, 384) and weight[1000, 7] == kernel[7, 1000]
    np.testing.assert_array_equal(exported["classifier.weight"], reader.get_tensor("output_weights"))  # as is
    assert exported["classifier.weight"].shape == (2, 384)
    np.testing.assert_array_equal(exported["bert.pooler.dense.weight"], reader.get_tensor("bert/pooler/dense/kernel").T)
    np.testing.assert_array_equal(exported["bert.embeddings.LayerNorm.weight"],
                                  reader.get_tensor("bert/embeddings/LayerNorm/gamma"))
    np.testing.assert_array_equal(exported["bert.encoder.layer.5.output.LayerNorm.bias"],
                                  reader.get_tensor("bert/encoder/layer_5/output/LayerNorm/beta"))
    # the pruned matrices keep their zeros: wherever the mask is 0, so is the exported weight
    mask = reader.get_tensor("bert/encoder/layer_0/attention/self/query/kernel_mask")
    query = exported["bert.encoder.layer.0.attention.self.query.weight"]
    assert 0.45 < (mask == 0).mean() < 0.55
    assert not query.T[mask == 0].any()
    # what is left aside: the pruning state, Adam's slots, the counters; none of it is written
    left_aside = set(summary["left_aside"])
    assert {"global_step", "bert/encoder/layer_0/attention/self/query/kernel_mask",
            "bert/encoder/layer_0/attention/self/query/kernel_pruning_score",
            "bert/encoder/layer_0/attention/self/query/kernel/adam_m"} <= left_aside
    assert any(name.endswith("_group_lasso_reweight") for name in left_aside)
    assert not any(name.endswith(PRUNING_SUFFIXES) or "adam" in name for name in exported)
    assert summary["num_zeros"] >= 0.45 * 6 * (4 * 384 * 384 + 2 * 384 * 1536)


def test_the_mrpc_config_tokenizer_and_vocab(exported_mrpc, fine_tuned_mrpc):
    summary, hf_dir = exported_mrpc
    run = run_info.read_run(str(fine_tuned_mrpc))
    config = json.loads((hf_dir / "config.json").read_text())
    assert config["model_type"] == "bert" and config["architectures"] == ["BertForSequenceClassification"]
    assert config["id2label"] == {"0": "0", "1": "1"} and config["label2id"] == {"0": 0, "1": 1}
    assert config["num_labels"] == 2 and config["problem_type"] == "single_label_classification"
    assert config["hidden_act"] == "gelu"  # the embedded model's gelu_exact is HF's gelu
    ours = dataclasses.asdict(run.bert_config)
    for key in hf_export.CONFIG_FIELDS:
        if key != "hidden_act":
            assert config[key] == ours[key], key
    assert config["initializer_range"] == 0.5  # the run's config, not the pre-trained one's
    assert json.loads((hf_dir / "tokenizer_config.json").read_text()) == {
        "tokenizer_class": "BertTokenizer", "do_lower_case": True, "model_max_length": 64}
    assert (hf_dir / "vocab.txt").read_bytes() == Path(run.vocab_file).read_bytes()
    assert sorted(p.name for p in hf_dir.iterdir()) == sorted(hf_export.HF_FILES)
    assert summary["hidden_act"] == ("gelu_exact", "gelu")


def test_the_stsb_regression_export(exported_stsb, fine_tuned_stsb):
    summary, hf_dir = exported_stsb
    _, _, exported = assert_tensors_are_the_checkpoints(fine_tuned_stsb, hf_dir, 1)
    assert exported["classifier.weight"].shape == (1, 32) and exported["classifier.bias"].shape == (1,)
    config = json.loads((hf_dir / "config.json").read_text())
    assert config["problem_type"] == "regression" and config["num_labels"] == 1
    assert config["id2label"] == {"0": "LABEL_0"} and config["label2id"] == {"LABEL_0": 0}
    assert config["hidden_act"] == "gelu_new"  # the tiny config's Google gelu: the tanh approximation
    assert {"global_step", "output_weights/adam_m", "output_weights/adam_v"} <= set(summary["left_aside"])


def test_mnli_config_has_its_three_labels_in_order(bert_dir):
    config = hf_export.hf_config(modeling.BertConfig.from_json_file(str(bert_dir / "bert_config.json")),
                                 processors.get_task("mnli"))
    assert config["num_labels"] == 3 and config["problem_type"] == "single_label_classification"
    assert config["id2label"] == {"0": "contradiction", "1": "entailment", "2": "neutral"}
    assert config["label2id"] == {"contradiction": 0, "entailment": 1, "neutral": 2}


@pytest.mark.parametrize("ours, theirs", [("gelu", "gelu_new"), ("gelu_exact", "gelu"), ("relu", "relu"),
                                          ("tanh", "tanh"), ("GELU", "gelu_new")])
def test_the_gelu_form_maps_back_exactly(ours, theirs):
    assert cc.hf_hidden_act(ours) == theirs
    assert cc.map_hidden_act(theirs) == ours.lower()
    assert cc.hf_hidden_act(cc.map_hidden_act(theirs)) == theirs


def test_hf_spellings_of_the_tanh_form_come_back_as_gelu_new():
    for name in ("gelu_new", "gelu_pytorch_tanh", "gelu_fast"):
        assert cc.hf_hidden_act(cc.map_hidden_act(name)) == "gelu_new"
    with pytest.raises(cc.ConversionError, match="hidden_act 'swish' has no Hugging Face equivalent"):
        cc.hf_hidden_act("swish")


def google_run(google_dir, task, do_lower_case=True, **config_overrides):
    """A TrainedRun over a converted checkpoint (what read_run finds in a run dir), for export_run."""
    config = json.loads((google_dir / "bert_config.json").read_text())
    config.update(config_overrides)
    return run_info.TrainedRun(
        output_dir=str(google_dir), checkpoint=str(google_dir / "bert_model.ckpt"), task=processors.get_task(task),
        bert_config=modeling.BertConfig.from_dict(config), vocab_file=str(google_dir / "vocab.txt"),
        do_lower_case=do_lower_case, max_seq_length=128)


def test_hf_to_google_to_hf_is_bit_identical(hf_model_dir, tmp_path):
    """The embedded model's HF files with an MRPC head, imported and exported again: every tensor's dtype, shape
    and bytes, and every config field, come back (embeddings.position_ids, a buffer, is not a weight)."""
    _, wheel = raw_tensors(hf_model_dir / "model.safetensors")
    source = tmp_path / "hf"
    source.mkdir()
    tensors = OrderedDict(("bert." + name, cc.read_safetensors(str(hf_model_dir / "model.safetensors"), [name])[name])
                          for name in wheel if name != "embeddings.position_ids")
    rng = np.random.RandomState(0)
    tensors["classifier.weight"] = rng.randn(2, 384).astype(np.float32)
    tensors["classifier.bias"] = rng.randn(2).astype(np.float32)
    cc.write_safetensors(str(source / "model.safetensors"), tensors, {"format": "pt"})
    config = json.loads((hf_model_dir / "config.json").read_text())
    config.update(architectures=["BertForSequenceClassification"], id2label={"0": "0", "1": "1"},
                  label2id={"0": 0, "1": 1}, num_labels=2, problem_type="single_label_classification")
    (source / "config.json").write_text(json.dumps(config))
    (source / "vocab.txt").write_bytes((hf_model_dir / "vocab.txt").read_bytes())

    summary = cc.convert(str(source), str(tmp_path / "google"))
    assert summary["num_labels"] == 2 and summary["ignored"] == []
    hf_export.export_run(google_run(tmp_path / "google", "MRPC"), str(tmp_path / "back"))

    _, before = raw_tensors(source / "model.safetensors")
    _, after = raw_tensors(tmp_path / "back" / "model.safetensors")
    assert sorted(after) == sorted(before) and len(after) == 105
    for name in before:
        assert after[name] == before[name], name  # (dtype, shape, bytes)
    for name, (dtype, shape, data) in before.items():  # and the wheel's own bytes
        if name.startswith("bert."):
            assert wheel[name[len("bert."):]] == (dtype, shape, data), name
    back = json.loads((tmp_path / "back" / "config.json").read_text())
    for key in hf_export.CONFIG_FIELDS + ("model_type", "position_embedding_type", "architectures", "id2label",
                                          "label2id", "num_labels", "problem_type"):
        assert back[key] == config[key], key
    assert (tmp_path / "back" / "vocab.txt").read_bytes() == (hf_model_dir / "vocab.txt").read_bytes()


@pytest.mark.parametrize("hidden_act", ["gelu", "gelu_new", "relu", "tanh"])
def test_the_gelu_form_round_trips_through_the_files(tmp_path, hidden_act):
    hf_dir = make_tiny_hf_dir(tmp_path / "hf", config_overrides={"hidden_act": hidden_act})
    cc.convert(str(hf_dir), str(tmp_path / "google"))
    run = google_run(tmp_path / "google", "MRPC")
    reader = tf.train.load_checkpoint(run.checkpoint)
    arrays = OrderedDict((name, reader.get_tensor(name)) for name, _ in tf.train.list_variables(run.checkpoint))
    arrays["output_weights"] = np.ones((2, 8), np.float32)  # the head fine-tuning adds to the encoder
    arrays["output_bias"] = np.zeros(2, np.float32)
    checkpoints.write_tf_checkpoint(arrays, run.checkpoint)
    hf_export.export_run(run, str(tmp_path / "back"))
    assert json.loads((tmp_path / "back" / "config.json").read_text())["hidden_act"] == hidden_act


def test_compact_models_hugging_face_cannot_describe_are_refused():
    """Per-layer sizes or narrower heads have no HF config; a compact model of Google's format has one."""
    mrpc = processors.get_task("MRPC")
    base = dict(vocab_size=100, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64)
    for extra, named in [(dict(layer_intermediate_sizes=[64, 32]), "layer_intermediate_sizes"),
                         (dict(layer_num_attention_heads=[4, 2]), "layer_num_attention_heads"),
                         (dict(num_attention_heads=2, attention_head_size=8), "attention_head_size")]:
        with pytest.raises(cc.ConversionError, match="^%s in bert_config.json: Hugging Face" % named):
            hf_export.hf_config(modeling.BertConfig.from_dict(dict(base, **extra)), mrpc)
    narrow_ffn = hf_export.hf_config(modeling.BertConfig.from_dict(dict(base, intermediate_size=16,
                                                                        attention_head_size=8)), mrpc)
    assert narrow_ffn["intermediate_size"] == 16 and narrow_ffn["num_attention_heads"] == 4


def test_a_checkpoint_of_other_shapes_than_its_config_is_refused(tmp_path):
    cc.convert(str(make_tiny_hf_dir(tmp_path / "hf")), str(tmp_path / "google"))
    run = google_run(tmp_path / "google", "MRPC", intermediate_size=32)
    with pytest.raises(cc.ConversionError) as error:
        hf_export.export_run(run, str(tmp_path / "back"))
    message = str(error.value)
    assert "does not fit its bert_config.json" in message and "output_weights is missing" in message
    assert "bert/encoder/layer_0/intermediate/dense/kernel is [8, 16], not [8, 32]" in message
    assert not (tmp_path / "back" / "config.json").exists()


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "bert.serving.hf_export"] + list(args), cwd=str(REPO_ROOT),
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True, timeout=300)


def test_cli_exports_in_one_line_and_errs_in_one_line(fine_tuned_stsb, tmp_path):
    done = run_cli("--output_dir=%s" % fine_tuned_stsb, "--hf_dir=%s" % (tmp_path / "hf"))
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert len(lines) == 1 and lines[0].startswith("exported %s (STS-B, model.ckpt-" % fine_tuned_stsb), done.stdout
    assert "-> %s: 41 tensors" % (tmp_path / "hf") in lines[0] and "hidden_act gelu -> gelu_new" in lines[0]
    assert sorted(p.name for p in (tmp_path / "hf").iterdir()) == sorted(hf_export.HF_FILES)
    done = run_cli("--output_dir=%s" % (tmp_path / "missing"), "--hf_dir=%s" % (tmp_path / "hf2"))
    assert done.returncode == 1
    # the last line: TF 1.15 prints a deprecation notice of its own when bert.compat imports it
    assert done.stderr.strip().splitlines()[-1] == ("error: %s is not a directory: pass the --output_dir of a "
                                                    "fine-tuning run" % (tmp_path / "missing"))
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "hf2").exists()


def our_logits(run, inputs):
    with tf.Graph().as_default():
        tensors = [tf.constant(inputs[name]) for name in run_info.INPUTS]
        pooled = modeling.BertModel(run.bert_config, False, *tensors).pooled_output
        logits = modeling.classifier_head(pooled, run.task.num_labels, run.task.is_regression, False).logits
        saver = run_info.checkpoint_saver(run)
        with tf.Session() as session:
            saver.restore(session, run.checkpoint)
            return session.run(logits)


# Runs in the TF 2 environment's Python, eagerly, without this code: transformers' tokenizer, and its TensorFlow
# BertForSequenceClassification (which reads model.safetensors without torch) on our ids, from the export alone.
# Installed editable, this project's package is importable there: the script makes any import of it fail.
TRANSFORMERS_SCRIPT = r'''
import json, sys
sys.modules["bert"] = None  # `import bert` and `import bert.x` now raise ImportError
import numpy as np
import transformers
job = json.load(open(sys.argv[1]))
tokenizer = transformers.AutoTokenizer.from_pretrained(job["hf_dir"])
encoded = tokenizer(job["text_a"], job["text_b"], padding="max_length", truncation=True,
                    max_length=job["max_seq_length"], return_tensors="np")
inputs = np.load(job["inputs"])
model = transformers.TFBertForSequenceClassification.from_pretrained(job["hf_dir"])
logits = model(input_ids=inputs["input_ids"], attention_mask=inputs["input_mask"],
               token_type_ids=inputs["segment_ids"], training=False).logits.numpy()
np.savez(job["output"], input_ids=encoded["input_ids"], logits=logits)
'''


def transformers_python():
    """The TF 2 environment's interpreter if transformers is installed there (requirements/tf2.txt), else None."""
    python = sys.executable if IS_TF2 else str(REPO_ROOT / ".venv-tf2" / "bin" / "python")
    if IS_TF2:
        return python if importlib.util.find_spec("transformers") else None
    found = Path(python).exists() and subprocess.run([python, "-c", "import importlib.util, sys; sys.exit("
                                                      "importlib.util.find_spec('transformers') is None)"],
                                                     timeout=60).returncode == 0
    return python if found else None


@pytest.mark.skipif(transformers_python() is None, reason="needs transformers in the TF 2 environment")
@pytest.mark.parametrize("run_fixture, task_dir", [("fine_tuned_mrpc", "MRPC"), ("fine_tuned_stsb", "STS-B")])
def test_transformers_computes_our_logits_from_the_export(request, tmp_path, run_fixture, task_dir):
    run_dir = request.getfixturevalue(run_fixture)
    hf_export.export(str(run_dir), str(tmp_path / "hf"))
    run = run_info.read_run(str(run_dir))
    ours_tokenizer = tokenization.FullTokenizer(run.vocab_file, run.do_lower_case)
    examples = processors.read_examples(run.task, str(run_dir.parent / task_dir), "test")[:32]
    converted = [features.convert_example(e, run.task, run.max_seq_length, ours_tokenizer) for e in examples]
    inputs = {name: np.array([getattr(f, name) for f in converted], np.int32) for name in run_info.INPUTS}

    np.savez(str(tmp_path / "inputs.npz"), **inputs)
    job = {"hf_dir": str(tmp_path / "hf"), "text_a": [e.text_a for e in examples],
           "text_b": [e.text_b for e in examples], "max_seq_length": run.max_seq_length,
           "inputs": str(tmp_path / "inputs.npz"), "output": str(tmp_path / "theirs.npz")}
    (tmp_path / "job.json").write_text(json.dumps(job))
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    done = subprocess.run([transformers_python(), "-I", "-c", TRANSFORMERS_SCRIPT, str(tmp_path / "job.json")],
                          cwd=str(tmp_path), env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          universal_newlines=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:]
    theirs = np.load(str(tmp_path / "theirs.npz"))
    # The same ids for every pair that fits; a longer pair is cut to the same lengths only where Google's rule
    # (pop from the longer, from the second on ties) and tokenizers' (>= 0.14: the shorter keeps at most half)
    # agree, so those are left out (README, Use the model).
    fits = [len(ours_tokenizer.tokenize(e.text_a)) + len(ours_tokenizer.tokenize(e.text_b or "")) + 3
            <= run.max_seq_length for e in examples]
    assert sum(fits) >= len(examples) // 2
    np.testing.assert_array_equal(theirs["input_ids"][fits], inputs["input_ids"][fits])
    np.testing.assert_allclose(theirs["logits"], our_logits(run, inputs), atol=1e-4, rtol=0)
