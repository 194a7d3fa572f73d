"""End to end: run_classifier.py as users run it (a subprocess), on real GLUE data.

Tiny-config runs (random initialisation, seconds each) cover every output path; one short fine-tune
of the embedded checkpoint proves the pre-trained weights load and the loss goes down.
"""
import json
import subprocess
import sys

import numpy as np
import pytest
from scipy import stats

from conftest import REPO_ROOT, TIMING_KEYS, TINY_BERT_CONFIG, run_command, run_in_process, tf1_python, without_timing

ALWAYS = {"eval_loss", "global_step", "loss"} | TIMING_KEYS


def run_classifier(output_dir, data_dir, task, vocab_file, config_file, *extra, as_module=True, python=sys.executable,
                   env=None):
    command = [str(python)] + (["-m", "bert.run_classifier"] if as_module else ["bert/run_classifier.py"])
    command += ["--task_name=" + task, "--data_dir=%s" % data_dir, "--vocab_file=%s" % vocab_file,
                "--bert_config_file=%s" % config_file, "--output_dir=%s" % output_dir,
                "--max_seq_length=48", "--train_batch_size=16", "--eval_batch_size=64",
                "--predict_batch_size=64"] + list(extra)
    code, output = run_command(command, env)
    assert code == 0, output[-3000:]
    return output


def read_results(output_dir):
    results = {}
    lines = (output_dir / "eval_results.txt").read_text().splitlines()
    assert lines == sorted(lines)
    for line in lines:
        key, value = line.split(" = ")
        results[key] = float(value)
    return results


@pytest.fixture(scope="module")
def tiny_config(tmp_path_factory):
    path = tmp_path_factory.mktemp("tiny") / "bert_config.json"
    path.write_text(json.dumps(TINY_BERT_CONFIG))
    return path


def test_mrpc_train_eval_predict_as_script(tmp_path, glue_dir, vocab_file, tiny_config):
    log = run_classifier(tmp_path, glue_dir / "MRPC", "MRPC", vocab_file, tiny_config, "--do_train=true",
                         "--do_eval=true", "--do_predict=true", "--num_train_epochs=0.1",
                         "--learning_rate=1e-3", "--eval_batch_size=32", "--predict_batch_size=128", as_module=False)
    results = read_results(tmp_path)
    # Each phase batches with its own flag (evaluation runs in PREDICT mode, yet in batches of --eval_batch_size).
    for examples, batch in ((int(3668 / 16 * 0.1) * 16, 16), (408, 32), (1725, 128)):
        assert "Input: %d examples in batches of %d" % (examples, batch) in log
    assert set(results) == ALWAYS | {"eval_accuracy", "eval_f1"}
    assert results["global_step"] == int(3668 / 16 * 0.1)
    assert 0.0 <= results["eval_accuracy"] <= 1.0 and 0.0 <= results["eval_f1"] <= 1.0
    probabilities = np.loadtxt(str(tmp_path / "test_results.tsv"))
    assert probabilities.shape == (1725, 2)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)
    assert "train step %d/%d (100%%)" % (results["global_step"], results["global_step"]) in log
    history = np.loadtxt(str(tmp_path / "train_loss.tsv"))
    assert list(history[:, 0]) == list(range(1, int(results["global_step"]) + 1))
    tail = history[-max(1, len(history) // 10):, 1]
    assert results["loss"] == pytest.approx(tail.mean(), rel=1e-5)


# Where each task's dev.tsv keeps its label, and how its test.tsv is laid out: (header, columns of a dev row).
DEV_AS_TEST = {
    "STS-B": (lambda row: row[-1], lambda index, row: row[:-1]),  # test.tsv: dev's columns without the score
    "CoLA": (lambda row: row[1], lambda index, row: [str(index), row[3]]),  # dev: source, label, star, sentence
    "MRPC": (lambda row: row[0], lambda index, row: [str(index)] + row[1:]),  # dev: Quality, #1 ID, #2 ID, ...
}


def dev_as_test(glue_dir, task, target):
    """A data dir whose test.tsv holds the real dev examples (without their labels) in the test file's layout,
    beside the real train.tsv and dev.tsv; and the dev labels as parsed here, from the TSV. A run with --do_eval
    and --do_predict then writes the evaluated model's outputs for every dev example to test_results.tsv, from
    which the tests recompute eval_results.txt's metrics."""
    target.mkdir()
    source = glue_dir / task
    for name in ("train.tsv", "dev.tsv"):
        (target / name).symlink_to(source / name)
    label, test_row = DEV_AS_TEST[task]
    lines = [line.rstrip("\r") for line in (source / "dev.tsv").read_text(encoding="utf-8-sig").split("\n")
             if line.strip()]
    test_lines = (source / "test.tsv").read_text(encoding="utf-8-sig").split("\n")
    rows = [line.split("\t") for line in (lines[1:] if task != "CoLA" else lines)]  # CoLA's dev has no header
    (target / "test.tsv").write_text("\n".join([test_lines[0]] + ["\t".join(test_row(i, row))
                                                                   for i, row in enumerate(rows)]) + "\n",
                                     encoding="utf-8")
    return target, [label(row) for row in rows]


def recomputed_metrics(output_dir, labels, regression=False):
    """eval_results.txt's metrics recomputed with NumPy from test_results.tsv (the dev set's outputs) and the labels."""
    outputs = np.loadtxt(str(output_dir / "test_results.tsv"), ndmin=1 if regression else 2)
    assert len(outputs) == len(labels)
    if regression:
        y = np.array(labels, np.float64)
        rank = lambda values: stats.rankdata(values)  # noqa: E731 (average ranks of ties, as Spearman's rho)
        return {"eval_pearson": np.corrcoef(outputs, y)[0, 1],
                "eval_spearman": np.corrcoef(rank(outputs), rank(y))[0, 1],
                "eval_loss": np.mean((outputs - y) ** 2)}, outputs
    y = np.array([int(label) for label in labels])
    predicted = outputs.argmax(axis=1)
    tp, tn = np.sum((predicted == 1) & (y == 1)), np.sum((predicted == 0) & (y == 0))
    fp, fn = np.sum((predicted == 1) & (y == 0)), np.sum((predicted == 0) & (y == 1))
    mcc_denominator = np.sqrt(float((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn)))
    return {"eval_accuracy": np.mean(predicted == y), "eval_f1": tp / (tp + 0.5 * (fp + fn)),
            "eval_mcc": (tp * tn - fp * fn) / mcc_denominator if mcc_denominator else 0.0,
            "eval_loss": -np.mean(np.log(outputs[np.arange(len(y)), y]))}, predicted


def test_stsb_is_a_regression_in_any_spelling(tmp_path, glue_dir, vocab_file):
    """Pearson, Spearman and the squared-error loss in eval_results.txt are those of the dev scores the model
    predicts (recomputed here from its predictions). Weights initialised at 0.5 (see the CoLA test) make the
    scores vary with the pair far beyond the 8 decimals of test_results.tsv."""
    config = tmp_path / "bert_config.json"
    config.write_text(json.dumps(dict(TINY_BERT_CONFIG, initializer_range=0.5)))
    data, labels = dev_as_test(glue_dir, "STS-B", tmp_path / "data")
    out = tmp_path / "out"
    run_classifier(out, data, "sts-b", vocab_file, config, "--do_train=true", "--do_eval=true",
                   "--do_predict=true", "--num_train_epochs=0.05", "--learning_rate=1e-3")
    results = read_results(out)
    assert set(results) == ALWAYS | {"eval_pearson", "eval_spearman"}
    expected, scores = recomputed_metrics(out, labels, regression=True)
    assert scores.shape == (1500,) and scores.std() > 0.01
    for key, value in expected.items():
        assert results[key] == pytest.approx(value, rel=1e-4, abs=1e-5), key


def test_cola_reports_matthews_correlation(tmp_path, glue_dir, vocab_file):
    """Accuracy, MCC and the loss in eval_results.txt are those of the dev labels the model predicts (recomputed
    here from its probabilities). The weights are initialised at 0.5, not 0.02, so that the model's outputs differ
    from sentence to sentence by more than its bias: both classes are predicted and the MCC is not the 0 of a
    constant answer (which a model answering the majority class gets with any MCC code that returns 0)."""
    config = tmp_path / "bert_config.json"
    config.write_text(json.dumps(dict(TINY_BERT_CONFIG, initializer_range=0.5)))
    data, labels = dev_as_test(glue_dir, "CoLA", tmp_path / "data")
    out = tmp_path / "out"
    run_classifier(out, data, "cola", vocab_file, config, "--do_train=true", "--do_eval=true", "--do_predict=true",
                   "--num_train_epochs=0.02")
    results = read_results(out)
    assert set(results) == ALWAYS | {"eval_accuracy", "eval_mcc"}
    expected, predicted = recomputed_metrics(out, labels)
    assert min(np.bincount(predicted, minlength=2)) > 50
    assert abs(expected["eval_mcc"]) > 1e-3
    for key in ("eval_accuracy", "eval_mcc", "eval_loss"):
        assert results[key] == pytest.approx(expected[key], rel=1e-4, abs=1e-6), key


def test_mnli_reports_matched_and_mismatched_and_predicts_the_diagnostic_set(tmp_path, fixtures_dir, glue_dir,
                                                                            vocab_file, tiny_config):
    glue = tmp_path / "glue"  # MNLI from the fixtures beside the real diagnostic set, as in a GLUE download
    glue.mkdir()
    (glue / "MNLI").symlink_to(fixtures_dir / "MNLI")
    (glue / "diagnostic").symlink_to(glue_dir / "diagnostic")
    out = tmp_path / "out"
    run_classifier(out, glue / "MNLI", "MNLI", vocab_file, tiny_config, "--do_train=true",
                   "--do_eval=true", "--do_predict=true", "--num_train_epochs=3", "--train_batch_size=2")
    results = read_results(out)
    assert {"eval_accuracy", "eval_matched_accuracy", "eval_mismatched_accuracy", "eval_mismatched_loss"} <= set(results)
    assert results["eval_accuracy"] == results["eval_matched_accuracy"]
    for name, rows in (("test_results.tsv", 2), ("test_results_mismatched.tsv", 3), ("test_results_ax.tsv", 1104)):
        assert np.loadtxt(str(out / name), ndmin=2).shape == (rows, 3)


def test_features_are_tokenized_once_per_cache(tmp_path, glue_dir, vocab_file, tiny_config):
    cache = "--feature_cache_dir=%s" % (tmp_path / "cache")
    first = run_classifier(tmp_path / "a", glue_dir / "WNLI", "WNLI", vocab_file, tiny_config, cache,
                           "--do_train=true", "--do_eval=true", "--num_train_epochs=0.1")
    second = run_classifier(tmp_path / "b", glue_dir / "WNLI", "WNLI", vocab_file, tiny_config, cache,
                            "--do_train=true", "--do_eval=true", "--num_train_epochs=0.1", "--learning_rate=1e-4")
    assert first.count("Tokenized 635 WNLI train") == 1 and first.count("Tokenized 71 WNLI dev") == 1
    assert "Tokenized" not in second and second.count("Reusing the features") == 2
    third = run_classifier(tmp_path / "c", glue_dir / "WNLI", "WNLI", vocab_file, tiny_config, cache,
                           "--do_eval=true", "--max_seq_length=32")
    assert "Tokenized 71 WNLI dev" in third  # another length is another file
    assert len(list((tmp_path / "cache").glob("*.tf_record"))) == 3
    assert not list((tmp_path / "cache").glob("*.tmp*"))


def test_same_seed_same_results(tmp_path, glue_dir, vocab_file, tiny_config):
    runs = []
    for name in ("a", "b"):
        run_classifier(tmp_path / name, glue_dir / "RTE", "RTE", vocab_file, tiny_config, "--do_train=true",
                       "--do_eval=true", "--num_train_epochs=0.2", "--seed=7")
        runs.append(without_timing(read_results(tmp_path / name)))
    assert runs[0] == runs[1]


def test_both_tensorflow_stacks_give_the_same_results(tmp_path, glue_dir, vocab_file, tiny_config):
    """Initial weights, dropout masks and the training order are seeded the same way on TF 1 and TF 2."""
    other = tf1_python()
    runs = []
    for name, python in (("tf2", sys.executable), ("tf1", other)):
        run_classifier(tmp_path / name, glue_dir / "RTE", "RTE", vocab_file, tiny_config, "--do_train=true",
                       "--do_eval=true", "--num_train_epochs=0.2", "--learning_rate=1e-3", python=python)
        runs.append(without_timing(read_results(tmp_path / name)))
    assert runs[0] == pytest.approx(runs[1], rel=1e-5)


def test_gradient_accumulation_trains_like_one_large_batch(tmp_path, glue_dir, vocab_file):
    config = tmp_path / "no_dropout.json"  # dropout masks depend on the batch shape: leave them out
    config.write_text(json.dumps(dict(TINY_BERT_CONFIG, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)))
    runs = []
    for steps in (1, 4):
        run_classifier(tmp_path / str(steps), glue_dir / "RTE", "RTE", vocab_file, config, "--do_train=true",
                       "--do_eval=true", "--num_train_epochs=0.2", "--learning_rate=1e-3",
                       "--gradient_accumulation_steps=%d" % steps)
        runs.append(read_results(tmp_path / str(steps)))
    assert runs[0]["global_step"] == runs[1]["global_step"] == int(2490 / 16 * 0.2)
    assert runs[1]["eval_loss"] == pytest.approx(runs[0]["eval_loss"], rel=1e-4)


@pytest.mark.parametrize("flag", ["--use_xla=true", "--use_fp16=true"])
def test_xla_and_mixed_precision_flags_train(tmp_path, glue_dir, vocab_file, tiny_config, flag):
    log = run_classifier(tmp_path, glue_dir / "WNLI", "WNLI", vocab_file, tiny_config, "--do_train=true",
                         "--do_eval=true", "--num_train_epochs=0.2", flag, env={"TF_CPP_MIN_LOG_LEVEL": "0"})
    assert read_results(tmp_path)["global_step"] == int(635 / 16 * 0.2)
    # XLA's one INFO line when it compiles (on CPU it compiles only when asked to, process-wide)
    assert ("Compiled cluster using XLA" in log) == (flag == "--use_xla=true")


def test_embedded_checkpoint_loads_and_fine_tuning_lowers_the_loss(tmp_path, glue_dir, bert_dir):
    """The pre-trained encoder loads, and 40 steps lower the dev loss; the model then tells pairs apart (it answers
    "not a paraphrase" for some, measured 37 of 408, where a collapsed model answers the majority class for all)
    and beats that answer's accuracy (0.684; measured 0.691). The reported metrics are those of the model's dev
    outputs, recomputed here from them (predicted as test.tsv)."""
    data, labels = dev_as_test(glue_dir, "MRPC", tmp_path / "data")

    def run(output_dir, *extra):
        return run_classifier(output_dir, data, "MRPC", bert_dir / "vocab.txt",
                              bert_dir / "bert_config.json", "--init_checkpoint=%s" % (bert_dir / "bert_model.ckpt"),
                              "--do_eval=true", "--learning_rate=5e-5", *extra)

    log = run(tmp_path / "before")  # the pre-trained encoder with an untrained head
    assert "bert/encoder/layer_5/output/dense/kernel" in log and "*INIT_FROM_CKPT*" in log
    run(tmp_path / "after", "--do_train=true", "--do_predict=true", "--num_train_epochs=%f" % (40.5 * 16 / 3668.0))
    before, after = read_results(tmp_path / "before"), read_results(tmp_path / "after")
    assert after["global_step"] == 40
    assert after["eval_loss"] < before["eval_loss"] - 0.02
    expected, predicted = recomputed_metrics(tmp_path / "after", labels)
    for key in ("eval_accuracy", "eval_f1", "eval_loss"):
        assert after[key] == pytest.approx(expected[key], rel=1e-4, abs=1e-6), key
    majority = np.mean(np.array(labels) == "1")
    assert majority == pytest.approx(0.684, abs=1e-3)
    assert min(np.bincount(predicted, minlength=2)) >= 20 and after["eval_accuracy"] > majority, after


def model_variables(checkpoint) -> dict:
    """A checkpoint's model weights by name: all its variables but Adam's slots and the step counters."""
    from bert.compat import tf
    return {name: tf.train.load_variable(str(checkpoint), name) for name, _ in tf.train.list_variables(str(checkpoint))
            if not name.endswith(("/adam_m", "/adam_v")) and name not in ("global_step", "batches_read")}


def test_another_tasks_fine_tuned_run_as_init_checkpoint_loads_its_encoder_and_head(tmp_path, glue_dir, vocab_file,
                                                                                     tiny_config):
    """docs/flags.md and docs/pruning.md: --init_checkpoint takes a fine-tuned run's checkpoint prefix, or its
    --output_dir for the latest, and then the classifier head loads too. A WNLI run (2 labels) starts MRPC runs (2
    labels) at learning rate 0, so their checkpoints hold what was loaded: every weight of the WNLI checkpoint
    named, encoder and head. A head initialised afresh would have a zero bias (WNLI's trained one has none), and
    the prefix of WNLI's first checkpoint must give its weights, not the latest's."""
    wnli = tmp_path / "wnli"
    run_classifier(wnli, glue_dir / "WNLI", "WNLI", vocab_file, tiny_config, "--do_train=true",
                   "--num_train_epochs=0.1", "--learning_rate=1e-3", "--save_checkpoints_steps=1")
    steps = int(635 / 16 * 0.1)  # 3
    first, latest = (model_variables(wnli / ("model.ckpt-%d" % step)) for step in (1, steps))
    assert set(first) == set(latest) and {"output_weights", "output_bias"} <= set(latest)
    assert np.all(first["output_bias"] != 0) and not np.array_equal(first["output_bias"], latest["output_bias"])
    cache = "--feature_cache_dir=%s" % (tmp_path / "cache")
    for name, init, prefix, expected in (("from_dir", wnli, wnli / ("model.ckpt-%d" % steps), latest),
                                         ("from_prefix", wnli / "model.ckpt-1", wnli / "model.ckpt-1", first)):
        out = tmp_path / name
        log = run_classifier(out, glue_dir / "MRPC", "MRPC", vocab_file, tiny_config, "--init_checkpoint=%s" % init,
                             "--do_train=true", "--learning_rate=0", "--num_train_epochs=0.01", cache)
        assert "Initialised %d of %d variables from %s; freshly initialised: none" % (len(expected), len(expected),
                                                                                      prefix) in log
        assert "output_weights" in log and "*INIT_FROM_CKPT*" in log
        loaded = model_variables(out / ("model.ckpt-%d" % int(3668 / 16 * 0.01)))
        assert set(loaded) == set(expected)
        for variable, value in expected.items():
            assert np.array_equal(loaded[variable], value), (name, variable)
        recorded = json.loads((out / "run_info.json").read_text())["settings"]["init_checkpoint"]
        assert recorded["path"] == str(prefix)


def test_a_fine_tuned_run_with_another_label_count_is_refused_in_one_line(tmp_path, fixtures_dir, glue_dir,
                                                                          vocab_file, tiny_config):
    """An MNLI run (3 labels) as MRPC's (2 labels) --init_checkpoint: its head cannot load, and loading the encoder
    alone would silently train another model than the one asked for. The run stops with docs/troubleshooting.md's
    one line, before anything is tokenized or written (checks.check_setup reads the checkpoint's head), and the same
    --output_dir then trains from another start."""
    mnli = tmp_path / "mnli"
    run_classifier(mnli, fixtures_dir / "MNLI", "MNLI", vocab_file, tiny_config, "--do_train=true",
                   "--num_train_epochs=1", "--train_batch_size=2")
    out = tmp_path / "mrpc"
    flags = {"--task_name": "MRPC", "--data_dir": str(glue_dir / "MRPC"), "--vocab_file": vocab_file,
             "--bert_config_file": str(tiny_config), "--output_dir": str(out), "--do_train": "true",
             "--max_seq_length": "48", "--num_train_epochs": "0.01", "--init_checkpoint": str(mnli)}
    code, stderr = run_in_process(flags)
    assert code == 1 and "Traceback" not in stderr, stderr[-2000:]
    assert stderr.strip().splitlines()[-1] == (
        "error: checkpoint %s has a classifier head for 3 labels but this task has 2: start from the pre-trained "
        "checkpoint, or from a run of this task (--verbose shows where)" % (mnli / "model.ckpt-2")), stderr[-2000:]
    assert not list(out.glob("*")), list(out.glob("*"))
    run_classifier(out, glue_dir / "MRPC", "MRPC", vocab_file, tiny_config, "--do_train=true",
                   "--num_train_epochs=0.01")
    assert (out / ("model.ckpt-%d.index" % int(3668 / 16 * 0.01))).exists()


def test_accepts_every_flag_of_googles_run_classifier_with_its_defaults():
    from bert import flags
    googles_defaults = {
        "data_dir": None, "bert_config_file": None, "task_name": None, "vocab_file": None, "output_dir": None,
        "init_checkpoint": None, "do_lower_case": True, "max_seq_length": 128, "do_train": False,
        "do_eval": False, "do_predict": False, "train_batch_size": 32, "eval_batch_size": 8,
        "predict_batch_size": 8, "learning_rate": 5e-5, "num_train_epochs": 3.0, "warmup_proportion": 0.1,
        "save_checkpoints_steps": 1000, "iterations_per_loop": 1000, "use_tpu": False, "tpu_name": None,
        "tpu_zone": None, "gcp_project": None, "master": None, "num_tpu_cores": 8}
    defined = flags.FLAGS._flags()
    assert {name: defined[name].default for name in googles_defaults} == googles_defaults


def test_missing_required_flag_is_a_usage_error(tmp_path):
    done = subprocess.run([sys.executable, "-m", "bert.run_classifier", "--do_train=true"], cwd=str(REPO_ROOT),
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True, timeout=300)
    assert done.returncode != 0 and "--data_dir" in done.stdout
