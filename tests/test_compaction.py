"""The compact model (bert/compression/compaction.py): pruned heads and neurons cut out of a masked checkpoint, the smaller
model computing what the masked one does, and run_classifier.py evaluating, predicting with and fine-tuning it.

The masked checkpoints are made by hand, as structured pruning leaves them: a pruned head's rows of the attention
output kernel's mask and its query/key/value columns zero, a pruned neuron's output row and intermediate column
zero, the kernels zero there, and every bias and LayerNorm random (nonzero), so that dropping them is tested too.
"""
import json
import subprocess
import sys

import numpy as np
import pytest

from bert import modeling, run_info
from bert.compression import compaction, pruning
from bert.compat import tf
from bert.errors import UserError
from conftest import REPO_ROOT, TINY_BERT_CONFIG, fine_tune, glue_subset
from test_run_classifier import read_results, run_classifier

# 3 layers of 4 heads of 8, 48 neurons: room for a different count per layer.
CONFIG = modeling.BertConfig(vocab_size=99, hidden_size=32, num_hidden_layers=3, num_attention_heads=4,
                             intermediate_size=48, max_position_embeddings=40, type_vocab_size=2)
LABELS = 3
GOOGLE_FIELDS = {"vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size",
                 "hidden_act", "hidden_dropout_prob", "attention_probs_dropout_prob", "max_position_embeddings",
                 "type_vocab_size", "initializer_range"}


def inputs(seed=0):
    """Two sequences of 7 tokens, the second padded after 4."""
    rng = np.random.RandomState(seed)
    ids = rng.randint(0, CONFIG.vocab_size, size=(2, 7)).astype(np.int32)
    mask = np.array([[1] * 7, [1] * 4 + [0] * 3], np.int32)
    types = np.array([[0] * 3 + [1] * 4, [0] * 2 + [1] * 5], np.int32)
    return ids, mask, types


def outputs(config, restore):
    """sequence_output, pooled_output and the classifier's logits of the model of `config` on `inputs()`, its
    weights set by `restore(session)`."""
    ids, mask, types = (tf.constant(value) for value in inputs())
    model = modeling.BertModel(config, False, ids, mask, types)
    logits = modeling.classifier_head(model.pooled_output, LABELS, False, False).logits
    with tf.Session() as session:
        restore(session)
        return session.run([model.sequence_output, model.pooled_output, logits])


def pruned_mask(name, shape, size, heads, neurons):
    """The structured mask of kernel `name`: zero at the pruned heads' columns or rows, the neurons' likewise."""
    mask = np.ones(shape, np.float32)
    layer = int(name.split("/")[2][len("layer_"):])
    for head in heads.get(layer, []):
        span = slice(head * size, (head + 1) * size)
        if "/attention/self/" in name:
            mask[:, span] = 0
        elif "/attention/output/" in name:
            mask[span] = 0
    for neuron in neurons.get(layer, []):
        if "/intermediate/" in name:
            mask[:, neuron] = 0
        elif name.endswith("layer_%d/output/dense/kernel" % layer):
            mask[neuron] = 0
    return mask


def masked_checkpoint(prefix, heads, neurons, seed=1):
    """Writes a masked checkpoint of CONFIG at `prefix` with the pruned `heads` and `neurons` ({layer: [index]}),
    random weights, an Adam slot and a global_step beside the masks; returns the masked model's outputs."""
    rng = np.random.RandomState(seed)
    with tf.Graph().as_default():
        with pruning.masking_scope(pruning.PruningConfig(target_sparsity=0.5)):
            def restore(session):
                session.run(tf.global_variables_initializer())
                for var in tf.trainable_variables():
                    var.load(rng.normal(0, 0.5, var.shape.as_list()).astype(np.float32), session)
                for weight, mask in pruning.masked_pairs():
                    value = pruned_mask(weight.op.name, weight.shape.as_list(), CONFIG.head_size, heads, neurons)
                    mask.load(value, session)
                    weight.load(session.run(weight) * value, session)
                tf.train.Saver().save(session, str(prefix), write_meta_graph=False, write_state=False)

            tf.train.get_or_create_global_step()
            tf.get_variable("bert/pooler/dense/kernel/adam_m", [CONFIG.hidden_size] * 2)
            return outputs(CONFIG, restore)


def compact_outputs(model_dir):
    """The outputs of the compact model in `model_dir`, restored from its checkpoint by name: every variable of
    its graph must be there, at its shape."""
    config = modeling.BertConfig.from_json_file(str(model_dir / "bert_config.json"))
    with tf.Graph().as_default():
        return outputs(config, lambda session: tf.train.Saver().restore(session, str(model_dir / "bert_model.ckpt")))


@pytest.fixture
def vocab(tmp_path):
    path = tmp_path / "vocab.txt"
    path.write_text("".join("token%d\n" % i for i in range(CONFIG.vocab_size)))
    return path


def compacted(tmp_path, vocab, heads, neurons):
    """(masked outputs, compact outputs, the compact checkpoint's {name: shape}, its config dict, parameters)."""
    masked = masked_checkpoint(tmp_path / "masked.ckpt", heads, neurons)
    parameters = compaction.compact(str(tmp_path / "masked.ckpt"), CONFIG, str(tmp_path / "compact"), str(vocab))
    shapes = dict(tf.train.list_variables(str(tmp_path / "compact" / "bert_model.ckpt")))
    config = json.loads((tmp_path / "compact" / "bert_config.json").read_text())
    assert parameters == sum(int(np.prod(shape)) for shape in shapes.values())
    assert (tmp_path / "compact" / "vocab.txt").read_text() == vocab.read_text()
    for got, expected in zip(compact_outputs(tmp_path / "compact"), masked):
        np.testing.assert_allclose(got, expected, atol=1e-5)
    return shapes, config


def test_heads_and_neurons_per_layer(tmp_path, vocab):
    heads, neurons = {0: [1, 3], 1: [0]}, {0: list(range(16)), 2: [7]}
    shapes, config = compacted(tmp_path, vocab, heads, neurons)
    assert config["layer_num_attention_heads"] == [2, 3, 4] and config["layer_intermediate_sizes"] == [32, 48, 47]
    assert config["num_attention_heads"] == 4 and config["intermediate_size"] == 48  # the model's before pruning
    assert "attention_head_size" not in config  # 32 / 4 is still the heads' size
    for layer, (kept_heads, width) in enumerate([(2, 32), (3, 48), (4, 47)]):
        prefix = "bert/encoder/layer_%d/" % layer
        for part in ("query", "key", "value"):
            assert shapes[prefix + "attention/self/%s/kernel" % part] == [32, kept_heads * 8]
            assert shapes[prefix + "attention/self/%s/bias" % part] == [kept_heads * 8]
        assert shapes[prefix + "attention/output/dense/kernel"] == [kept_heads * 8, 32]
        assert shapes[prefix + "attention/output/dense/bias"] == [32]
        assert shapes[prefix + "intermediate/dense/kernel"] == [32, width]
        assert shapes[prefix + "intermediate/dense/bias"] == [width]
        assert shapes[prefix + "output/dense/kernel"] == [width, 32]
    assert not [name for name in shapes if name.endswith(pruning.AUXILIARY_SUFFIXES) or "global_step" in name]
    reader = tf.train.NewCheckpointReader(str(tmp_path / "masked.ckpt"))
    compact_reader = tf.train.NewCheckpointReader(str(tmp_path / "compact" / "bert_model.ckpt"))
    for name in ("output_weights", "output_bias", "bert/pooler/dense/kernel", "bert/embeddings/word_embeddings"):
        np.testing.assert_array_equal(compact_reader.get_tensor(name), reader.get_tensor(name))
    value_bias = "bert/encoder/layer_0/attention/self/value/bias"  # layer 0 keeps heads 0 and 2, in order
    np.testing.assert_array_equal(compact_reader.get_tensor(value_bias),
                                  reader.get_tensor(value_bias)[list(range(0, 8)) + list(range(16, 24))])


@pytest.mark.parametrize("heads,config_heads,head_size", [
    ({0: [2], 1: [0], 2: [3]}, 3, 8),  # a head of each layer: 3 heads of 8, no longer 32 / 3
    ({}, 4, None),  # neurons only: Google's config exactly
])
def test_the_same_counts_in_every_layer_keep_googles_fields(tmp_path, vocab, heads, config_heads, head_size):
    neurons = {layer: list(range(layer, 48, 5)) for layer in range(3)}  # 10 of each layer
    shapes, config = compacted(tmp_path, vocab, heads, neurons)
    assert set(config) == GOOGLE_FIELDS | ({"attention_head_size"} if head_size else set())
    assert config["num_attention_heads"] == config_heads and config["intermediate_size"] == 38
    assert config.get("attention_head_size") == head_size
    assert shapes["bert/encoder/layer_1/attention/self/query/kernel"] == [32, config_heads * 8]
    assert shapes["bert/encoder/layer_2/output/dense/kernel"] == [38, 32]


def test_a_layer_without_heads_and_one_without_neurons(tmp_path, vocab):
    """Layer 1's attention and layer 2's feed-forward block are left with their output biases alone."""
    shapes, config = compacted(tmp_path, vocab, {1: [0, 1, 2, 3]}, {2: list(range(48))})
    assert config["layer_num_attention_heads"] == [4, 0, 4] and config["layer_intermediate_sizes"] == [48, 48, 0]
    layer_1 = sorted(name[len("bert/encoder/layer_1/"):] for name in shapes if "layer_1/attention/" in name)
    assert layer_1 == ["attention/output/LayerNorm/beta", "attention/output/LayerNorm/gamma",
                       "attention/output/dense/bias"]
    layer_2 = sorted(name[len("bert/encoder/layer_2/"):] for name in shapes
                     if "layer_2/intermediate/" in name or "layer_2/output/" in name)
    assert layer_2 == ["output/LayerNorm/beta", "output/LayerNorm/gamma", "output/dense/bias"]


def test_every_head_and_neuron_pruned_is_still_a_model(tmp_path, vocab):
    every = {layer: list(range(4)) for layer in range(3)}
    _, config = compacted(tmp_path, vocab, every, {layer: list(range(48)) for layer in range(3)})
    assert config["layer_num_attention_heads"] == [0, 0, 0] and config["layer_intermediate_sizes"] == [0, 0, 0]


@pytest.mark.parametrize("change,message", [
    ({"layer_num_attention_heads": [4, 4]}, "cfg.json: layer_num_attention_heads has 2 entries but num_hidden_layers "
                                            "is 3: give one per layer"),
    ({"layer_intermediate_sizes": [48, -1, 48]}, "cfg.json: layer_intermediate_sizes must be a list of non-negative "
                                                 "integers, one per layer, not [48, -1, 48]"),
    ({"layer_num_attention_heads": 4}, "cfg.json: layer_num_attention_heads must be a list of non-negative integers, "
                                       "one per layer, not 4"),
    ({"attention_head_size": 0}, "cfg.json: attention_head_size must be a positive integer, not 0"),
])
def test_bad_compact_fields_are_one_clear_error(change, message):
    with pytest.raises(UserError) as error:
        modeling.BertConfig.from_dict(dict(CONFIG.to_dict(), **change), source="cfg.json")
    assert str(error.value) == message


def test_compact_fields_are_read_and_written_only_when_set():
    values = dict(CONFIG.to_dict(), num_attention_heads=3, attention_head_size=8, layer_intermediate_sizes=[1, 0, 2])
    config = modeling.BertConfig.from_dict(values)  # 3 heads of 8 in hidden 32: fine with attention_head_size
    assert (config.head_size, config.layer_heads(2), config.layer_intermediate_size(1)) == (8, 3, 0)
    assert json.loads(config.to_json_string()) == values
    assert set(json.loads(CONFIG.to_json_string())) == GOOGLE_FIELDS


def rewrite_checkpoint(prefix, change):
    """Rewrites the checkpoint at `prefix` with `change({name: value})` applied to its values."""
    reader = tf.train.NewCheckpointReader(str(prefix))
    values = {name: reader.get_tensor(name) for name in reader.get_variable_to_shape_map()}
    change(values)
    with tf.Graph().as_default(), tf.Session() as session:
        variables = {name: tf.Variable(value, name=name) for name, value in values.items()}
        session.run(tf.global_variables_initializer())
        tf.train.Saver(variables).save(session, str(prefix), write_meta_graph=False, write_state=False)


def prune_by_hand(values, heads, neurons, size):
    """Structured masks for `heads` and `neurons` on top of a masked run's own, its kernels zeroed under them."""
    for name in [name for name in values if name.endswith(pruning.MASK_SUFFIX)]:
        kernel = name[:-len(pruning.MASK_SUFFIX)]
        values[name] = values[name] * pruned_mask(kernel, values[name].shape, size, heads, neurons)
        values[kernel] = values[kernel] * values[name]


def test_run_classifier_evaluates_predicts_and_fine_tunes_the_compact_model(tmp_path, glue_dir, vocab_file):
    """A tiny MRPC run pruned by hand (weights and whole heads and neurons), compacted by the CLI: evaluated and
    predicted from compact_model/, it gives the masked model's results; it also trains on."""
    (tmp_path / "bert_config.json").write_text(json.dumps(TINY_BERT_CONFIG))
    data = glue_subset(glue_dir, "MRPC", tmp_path / "MRPC", {"train": 64, "dev": 100, "test": 40})
    run = fine_tune(tmp_path / "run", data, "MRPC", tmp_path / "bert_config.json", vocab_file,
                    "--train_batch_size=16", "--num_train_epochs=1", "--learning_rate=1e-3", "--target_sparsity=0.2",
                    "--pruning_frequency=1")
    size = TINY_BERT_CONFIG["hidden_size"] // TINY_BERT_CONFIG["num_attention_heads"]
    heads, neurons = {0: [1], 1: [0, 2, 3]}, {0: [3, 9], 1: list(range(40))}
    rewrite_checkpoint(tf.train.latest_checkpoint(str(run)), lambda values: prune_by_hand(values, heads, neurons, size))
    run_classifier(run, data, "MRPC", vocab_file, tmp_path / "bert_config.json", "--do_eval=true", "--do_predict=true")

    done = subprocess.run([sys.executable, "-m", "bert.compression.compaction", "--output_dir=%s" % run], cwd=str(REPO_ROOT),
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:]
    compact = run / run_info.COMPACT_MODEL
    assert done.stdout.splitlines()[-1].startswith("%s: " % compact)
    config = json.loads((compact / "bert_config.json").read_text())
    assert config["layer_num_attention_heads"] == [3, 1] and config["layer_intermediate_sizes"] == [62, 24]

    model = ["--init_checkpoint=%s" % (compact / "bert_model.ckpt")]
    evaluated = tmp_path / "compact_eval"
    run_classifier(evaluated, data, "MRPC", compact / "vocab.txt", compact / "bert_config.json", *model,
                   "--do_eval=true", "--do_predict=true")
    masked, small = read_results(run), read_results(evaluated)
    assert (small["eval_accuracy"], small["eval_f1"]) == (masked["eval_accuracy"], masked["eval_f1"])
    assert small["eval_loss"] == pytest.approx(masked["eval_loss"], abs=1e-5)
    np.testing.assert_allclose(np.loadtxt(str(evaluated / "test_results.tsv")),
                               np.loadtxt(str(run / "test_results.tsv")), atol=1e-5)

    trained = tmp_path / "compact_train"
    run_classifier(trained, data, "MRPC", compact / "vocab.txt", compact / "bert_config.json", *model,
                   "--do_train=true", "--do_eval=true", "--do_predict=true", "--num_train_epochs=0.5")
    assert read_results(trained)["global_step"] == 2
    shapes = dict(tf.train.list_variables(tf.train.latest_checkpoint(str(trained))))
    assert shapes["bert/encoder/layer_1/attention/self/query/kernel"] == [32, 8]
    assert shapes["bert/encoder/layer_1/intermediate/dense/kernel"] == [32, 24]
    assert_export_and_predict_give_the_runs_test_results(trained, data, tmp_path / "export")


def assert_export_and_predict_give_the_runs_test_results(run_dir, data, export_dir):
    """README (The compact model): bert.serving.export and bert.serving.predict take a run that fine-tuned the
    compact model like any other. In-process: the SavedModel (loaded as TF Serving would, by its signature) and the Predictor
    give the run's test_results.tsv, from the raw test pairs, at the compact model's per-layer shapes."""
    from bert.data import features, processors
    from bert import run_info
    from bert.serving import export, predict
    from bert import tokenization
    expected = np.loadtxt(str(run_dir / "test_results.tsv"))
    run = run_info.read_run(str(run_dir))
    assert run.bert_config.layer_num_attention_heads == [3, 1]
    examples = processors.read_examples(run.task, str(data), "test")
    tokenizer = tokenization.FullTokenizer(run.vocab_file, run.do_lower_case)
    converted = [features.convert_example(e, run.task, run.max_seq_length, tokenizer) for e in examples]
    inputs = {name: np.array([getattr(f, name) for f in converted], np.int32) for name in run_info.INPUTS}
    saved_model = export.export(str(run_dir), str(export_dir))
    with tf.Graph().as_default(), tf.Session() as session:
        signature = tf.saved_model.loader.load(session, [tf.saved_model.SERVING], saved_model).signature_def[
            tf.saved_model.DEFAULT_SERVING_SIGNATURE_DEF_KEY]
        served = session.run(signature.outputs["probabilities"].name,
                             {signature.inputs[name].name: inputs[name] for name in run_info.INPUTS})
    np.testing.assert_allclose(served, expected, atol=1e-5)
    predictor = predict.Predictor(run)
    try:
        np.testing.assert_allclose(predictor.predict(examples), expected, atol=1e-5)
    finally:
        predictor.close()


def test_a_structured_run_writes_its_compact_model_and_evaluates_it_too(tmp_path, glue_dir, vocab_file):
    """The compact model's parameters, those of the full-size model, and its evaluation beside the full-size
    model's: the same metrics, and a rate of its own."""
    (tmp_path / "bert_config.json").write_text(json.dumps(TINY_BERT_CONFIG))
    data = glue_subset(glue_dir, "MRPC", tmp_path / "MRPC", {"train": 64, "dev": 50})
    run_classifier(tmp_path / "run", data, "MRPC", vocab_file, tmp_path / "bert_config.json", "--do_train=true",
                   "--do_eval=true", "--num_train_epochs=1", "--target_sparsity=0.5",
                   "--pruning_granularity=structured", "--pruning_frequency=1",
                   "--eval_batch_size=16")  # more than one batch: the first is not timed
    compact = tmp_path / "run" / run_info.COMPACT_MODEL
    shapes = dict(tf.train.list_variables(str(compact / "bert_model.ckpt")))
    results = read_results(tmp_path / "run")
    assert results["compact_parameters"] == sum(int(np.prod(s)) for s in shapes.values())
    full_size = dict(tf.train.list_variables(tf.train.latest_checkpoint(str(tmp_path / "run"))))
    assert results["parameters"] == sum(int(np.prod(full_size[name])) for name in shapes) > results["compact_parameters"]
    assert (compact / "vocab.txt").exists() and (compact / "bert_config.json").exists()
    assert (results["compact_eval_accuracy"], results["compact_eval_f1"]) == (results["eval_accuracy"],
                                                                              results["eval_f1"])
    assert results["compact_eval_loss"] == pytest.approx(results["eval_loss"], abs=1e-5)
    assert results["compact_eval_examples_per_second"] > 0 and results["eval_examples_per_second"] > 0
