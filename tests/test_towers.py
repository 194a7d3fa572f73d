"""Towers (--towers): copies of the model on parts of each batch compute what one model computes,
except that every part draws its own dropout masks."""
import json

import numpy as np
import pytest

from bert import modeling
from bert.compat import tf
from bert.training.estimator import pooled_output_in_towers
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


def test_training_in_towers_matches_one_model(tmp_path, glue_dir, vocab_file):
    """MRPC through run_classifier.py, dropout off: the default towers (2 on CPU) train the model --towers=1 does."""
    config = tmp_path / "bert_config.json"
    config.write_text(json.dumps(dict(TINY_BERT_CONFIG, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)))
    results = []
    for towers in ("0", "1"):
        out = tmp_path / ("towers" + towers)
        run_classifier(out, glue_dir / "MRPC", "MRPC", vocab_file, config, "--do_train=true", "--do_eval=true",
                       "--num_train_epochs=0.1", "--towers=" + towers)
        results.append(read_results(out))
    assert results[0]["global_step"] == results[1]["global_step"] > 0
    for key in ("eval_accuracy", "eval_f1", "eval_loss", "loss"):
        assert results[0][key] == pytest.approx(results[1][key], rel=1e-4), key
