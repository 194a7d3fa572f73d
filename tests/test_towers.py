"""Towers (--towers): copies of the model on parts of each batch compute what one model computes,
except that every part draws its own dropout masks."""
import json

import numpy as np
import pytest

from bert import modeling
from bert.compat import tf
from bert.data import processors
from bert.training.estimator import model_fn_builder, pooled_output_in_towers
from conftest import TINY_BERT_CONFIG
from test_run_classifier import read_results, run_classifier

CONFIG = modeling.BertConfig.from_dict(TINY_BERT_CONFIG)


def pooled_outputs(features, towers, is_training=False, config=CONFIG):
    """(the pooled output of each example, from freshly initialised seeded weights; how many variables exist)."""
    with tf.Graph().as_default(), tf.Session() as session:
        tf.set_random_seed(7)
        tf.train.get_or_create_global_step()
        tensors = {name: tf.constant(value, tf.int32) for name, value in features.items()}
        pooled = pooled_output_in_towers(config, is_training, tensors, towers, replica=0, use_tpu=False)
        session.run(tf.global_variables_initializer())
        return session.run(pooled), len(tf.trainable_variables())


def random_features(batch, length=11, seed=0):
    rng = np.random.RandomState(seed)
    lengths = rng.randint(3, length + 1, size=batch)
    mask = (np.arange(length)[None, :] < lengths[:, None]).astype(np.int32)
    return {"input_ids": rng.randint(1, CONFIG.vocab_size, size=(batch, length)) * mask,
            "input_mask": mask, "segment_ids": (np.arange(length)[None, :] >= lengths[:, None] // 2) * mask}


@pytest.mark.parametrize("batch", [5, 1])
def test_towers_give_the_outputs_of_one_model(batch):
    """Same weights, same outputs, whatever the split: also with more towers than examples (empty parts)."""
    features = random_features(batch)
    one, variables = pooled_outputs(features, towers=1)
    for towers in (2, 3):
        split, split_variables = pooled_outputs(features, towers=towers)
        assert split_variables == variables  # shared, not copied
        np.testing.assert_allclose(split, one, rtol=1e-5, atol=1e-6)


def test_each_tower_draws_its_own_dropout_masks():
    """Two identical examples, one per tower: with dropout their outputs differ, without it they do not.

    Before streams existed, both towers drew the same mask for their (equal-shaped) parts.
    """
    features = {name: np.concatenate([value[:1], value[:1]]) for name, value in random_features(1).items()}
    dropped, _ = pooled_outputs(features, towers=2, is_training=True)
    assert np.abs(dropped[0] - dropped[1]).max() > 1e-3
    no_dropout = modeling.BertConfig.from_dict(dict(TINY_BERT_CONFIG, hidden_dropout_prob=0.0,
                                                    attention_probs_dropout_prob=0.0))
    kept, _ = pooled_outputs(features, towers=2, is_training=True, config=no_dropout)
    np.testing.assert_allclose(kept[0], kept[1], rtol=1e-6)


NO_DROPOUT = dict(TINY_BERT_CONFIG, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)


def trained_in_towers(towers, steps=3):
    """model_fn's train_op in `towers` towers, run `steps` times on one batch of 6 MRPC-shaped examples from the same
    seeded initial weights, dropout off: (the trained variables by name, the name scopes the encoder's ops are in)."""
    features = random_features(6, seed=3)
    with tf.Graph().as_default(), tf.Session() as session:
        tf.set_random_seed(11)
        tensors = {name: tf.constant(value, tf.int32) for name, value in features.items()}
        tensors.update(label_ids=tf.constant([0, 1, 1, 0, 1, 0], tf.int32), is_real_example=tf.ones([6], tf.int32))
        spec = model_fn_builder(modeling.BertConfig.from_dict(NO_DROPOUT), processors.get_task("MRPC"), None, 1e-2,
                                10, 0, False, towers=towers)(tensors, None, tf.estimator.ModeKeys.TRAIN, {})
        # one BertModel per tower: each has its own copy of the encoder's ops (the first in "bert/", the others in
        # "bert_1/", ... under the variables' shared scope)
        scopes = {op.name.split("/")[0] for op in tf.get_default_graph().get_operations()
                  if "/encoder/layer_1/attention/self/MatMul" in op.name and "gradients" not in op.name}
        session.run(tf.global_variables_initializer())
        for _ in range(steps):
            session.run(spec.train_op)
        return {v.op.name: value for v, value in zip(tf.trainable_variables(),
                                                     session.run(tf.trainable_variables()))}, scopes


def test_training_in_two_towers_trains_the_weights_of_one_model():
    """Two towers really train (two copies of the encoder in the training graph, one set of variables), and three
    updates in them give one tower's weights up to float rounding: the gradients of the two halves of the batch
    add up to the whole batch's. The learning rate (1e-2) moves every weight far beyond that rounding."""
    one, one_scopes = trained_in_towers(1)
    two, two_scopes = trained_in_towers(2)
    initial, _ = trained_in_towers(1, steps=0)
    assert one_scopes == {"bert"} and two_scopes == {"bert", "bert_1"}, (one_scopes, two_scopes)
    assert sorted(two) == sorted(one)  # shared, not copied
    for name in one:
        if name.endswith("kernel") or name == "output_weights":  # training moved them (a key bias has no gradient)
            assert np.abs(one[name] - initial[name]).max() > 1e-3, name
        np.testing.assert_allclose(two[name], one[name], rtol=1e-4, atol=1e-5, err_msg=name)


def test_training_in_towers_matches_one_model(tmp_path, glue_dir, vocab_file):
    """MRPC through run_classifier.py, dropout off: --towers=2 (training and evaluation in two towers) trains and
    evaluates the model --towers=1 does."""
    config = tmp_path / "bert_config.json"
    config.write_text(json.dumps(NO_DROPOUT))
    results = []
    for towers in ("2", "1"):
        out = tmp_path / ("towers" + towers)
        run_classifier(out, glue_dir / "MRPC", "MRPC", vocab_file, config, "--do_train=true", "--do_eval=true",
                       "--num_train_epochs=0.1", "--towers=" + towers)
        assert json.loads((out / "run_info.json").read_text())["settings"]["towers"] == int(towers)
        results.append(read_results(out))
    assert results[0]["global_step"] == results[1]["global_step"] > 0
    for key in ("eval_accuracy", "eval_f1", "eval_loss", "loss"):
        assert results[0][key] == pytest.approx(results[1][key], rel=1e-4), key
