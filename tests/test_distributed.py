"""Training through tf.distribute: MirroredStrategy, and two MultiWorkerMirroredStrategy workers on 127.0.0.1.

With dropout off, a step of two workers (each on half of the batch, gradients all-reduced before
clipping) is the step one process makes on the whole batch, so both must end with the same weights
up to float rounding, and the same dev results.
"""
import json
import os
import socket
import subprocess
import sys

import numpy as np
import pytest

from conftest import REPO_ROOT, TINY_BERT_CONFIG, without_timing

STEPS = int(2490 * 0.5 / 16)  # RTE train, half an epoch of batches of 16


@pytest.fixture(scope="module")
def flags(tmp_path_factory, glue_dir, vocab_file):
    config = tmp_path_factory.mktemp("config") / "bert_config.json"
    config.write_text(json.dumps(dict(TINY_BERT_CONFIG, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)))
    return ["--task_name=RTE", "--data_dir=%s" % (glue_dir / "RTE"), "--vocab_file=%s" % vocab_file,
            "--bert_config_file=%s" % config, "--do_train=true", "--do_eval=true", "--max_seq_length=32",
            "--train_batch_size=16", "--eval_batch_size=64", "--num_train_epochs=0.5", "--save_checkpoints_steps=1000",
            "--learning_rate=1e-3"]  # high, so that training moves the weights far


def start(flags, output_dir, *extra, env=None):
    return subprocess.Popen([sys.executable, "-m", "bert.run_classifier", "--output_dir=%s" % output_dir] + flags
                            + list(extra), cwd=str(REPO_ROOT), env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, universal_newlines=True)


def finish(process):
    log = process.communicate(timeout=900)[0]
    assert process.returncode == 0, log[-3000:]
    return log


def results(output_dir):
    return dict(line.split(" = ") for line in (output_dir / "eval_results.txt").read_text().splitlines())


def weights(output_dir, step):
    from bert.compat import tf
    reader = tf.train.load_checkpoint(str(output_dir / ("model.ckpt-%d" % step)))
    return {name: reader.get_tensor(name) for name in reader.get_variable_to_shape_map()
            if not name.endswith(("adam_m", "adam_v")) and name not in ("global_step", "batches_read")}


@pytest.fixture(scope="module")
def one_process(flags, tmp_path_factory):
    output_dir = tmp_path_factory.mktemp("one_process")
    finish(start(flags, output_dir))
    return output_dir


def free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def test_mirrored_strategy_on_one_device_repeats_the_plain_run(flags, one_process, tmp_path):
    finish(start(flags, tmp_path, "--distribution_strategy=mirrored"))
    assert without_timing(results(tmp_path)) == without_timing(results(one_process))


def test_two_workers_train_the_model_one_process_trains(flags, one_process, tmp_path):
    cluster = {"worker": ["127.0.0.1:%d" % port for port in free_ports(2)]}
    workers = [start(flags, tmp_path, "--distribution_strategy=multi_worker_mirrored",
                     env=dict(os.environ, TF_CONFIG=json.dumps({"cluster": cluster,
                                                                "task": {"type": "worker", "index": i}})))
               for i in range(2)]
    chief_log, other_log = [finish(worker) for worker in workers]
    assert "the chief evaluates" in other_log and "Eval results" in chief_log

    ours, reference = results(tmp_path), results(one_process)
    assert ours["global_step"] == reference["global_step"] == str(STEPS)
    assert abs(float(ours["eval_accuracy"]) - float(reference["eval_accuracy"])) <= 0.01
    assert abs(float(ours["eval_loss"]) - float(reference["eval_loss"])) <= 1e-3
    # Every step was recorded once, by the chief, and counted once in the batches read (where a resumed run goes on).
    assert len((tmp_path / "train_loss.tsv").read_text().splitlines()) == STEPS
    from bert.compat import tf
    assert tf.train.load_variable(str(tmp_path / ("model.ckpt-%d" % STEPS)), "batches_read") == STEPS
    # The starting point: the chief, through Estimator's own checkpoint hook, saves it at step 0 (a run without a
    # strategy does not), and the same --seed makes it the one-process run's starting point too.
    trained, expected, initial = weights(tmp_path, STEPS), weights(one_process, STEPS), weights(tmp_path, 0)
    assert trained.keys() == expected.keys() == initial.keys()
    apart = max(np.abs(trained[name] - expected[name]).max() for name in expected)
    moved = max(np.abs(expected[name] - initial[name]).max() for name in expected)
    print("largest weight difference %.3g, largest change by training %.3g" % (apart, moved))
    assert apart < 1e-3 * moved
