"""TensorBoard (bert/training/tensorboard.py): a real pruning fine-tune writes every update's loss, learning rate and
sparsity, and its examples/s, to its output dir's events, and every number of eval_results.txt, at the
evaluated step, to <output_dir>/eval; the values are those of train_loss.tsv and eval_results.txt."""
import glob
import json
import os

import pytest

from bert.training import tensorboard
from bert.compat import tf
from bert.sweeps.runs import read_eval_results
from conftest import TINY_BERT_CONFIG, fine_tune, glue_subset


def scalars(logdir) -> dict:
    """{tag: {step: value}} from every events file of logdir."""
    found: dict = {}
    for path in sorted(glob.glob(os.path.join(str(logdir), "events.out.tfevents.*"))):
        for event in tf.train.summary_iterator(path):
            for value in event.summary.value:
                found.setdefault(value.tag, {})[event.step] = value.simple_value
    return found


def test_a_run_writes_its_training_curve_and_dev_metrics(tmp_path, glue_dir, vocab_file):
    (tmp_path / "bert_config.json").write_text(json.dumps(TINY_BERT_CONFIG))
    data = glue_subset(glue_dir, "MRPC", tmp_path / "MRPC", {"train": 96, "dev": 40, "test": 8})
    run = fine_tune(tmp_path / "run", data, "MRPC", tmp_path / "bert_config.json", vocab_file, "--do_eval=true",
                    "--train_batch_size=16", "--num_train_epochs=1", "--learning_rate=1e-3",
                    "--target_sparsity=0.5", "--pruning_frequency=1")
    train = scalars(run)
    losses = [line.split("\t") for line in (run / "train_loss.tsv").read_text().splitlines()]
    assert sorted(train["loss"]) == list(range(1, 7))  # 96 / 16 updates, each once
    assert [train["loss"][int(batch)] for batch, _ in losses] == pytest.approx([float(loss) for _, loss in losses],
                                                                              abs=1e-6)
    assert sorted(train["learning_rate"]) == sorted(train["sparsity"]) == list(range(1, 7))
    assert train["learning_rate"][1] > train["learning_rate"][6]  # linear decay
    assert train["sparsity"][6] == pytest.approx(0.5, abs=0.01) and train["sparsity"][1] < 0.5
    assert train["examples_per_second"] and all(value > 0 for value in train["examples_per_second"].values())
    assert "soft_loss" not in train  # no distillation, no soft loss

    evaluated = scalars(run / tensorboard.EVAL_DIR)
    results = read_eval_results(str(run / "eval_results.txt"))
    step = int(results["global_step"])
    assert step == 6
    for key, tag in (("eval_f1", "f1"), ("eval_accuracy", "accuracy"), ("eval_loss", "loss"),
                     ("sparsity", "sparsity"), ("nonzero_parameters", "nonzero_parameters")):
        assert evaluated[tag] == {step: pytest.approx(float(results[key]), rel=1e-6)}


def test_eval_tags_drop_the_eval_prefix_and_keep_only_numbers():
    assert tensorboard.eval_scalars({"eval_f1": 0.8, "eval_mismatched_accuracy": 0.7, "compact_eval_f1": 0.8,
                                     "train_time": 12, "sparsity": 0.5, "task": "MRPC", "flag": True}) == {
        "f1": 0.8, "mismatched_accuracy": 0.7, "compact_eval_f1": 0.8, "train_time": 12.0, "sparsity": 0.5}
