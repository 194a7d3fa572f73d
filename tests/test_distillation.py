"""Distillation from a fine-tuned teacher (bert/compression/distillation.py): the soft losses against NumPy, a teacher that is
loaded, frozen, unmasked and never saved, alpha=0 training the plain run's weights bit for bit, distillation with
gradual pruning that resumes exactly, and teachers that cannot teach refused in one line.

The teacher is a real run_classifier run of a tiny model on real MRPC data (a subprocess, as users run it),
which the in-process graph tests load too; the student of the pruning runs is a 1-layer model, the teacher a
2-layer one.
"""
import json
import re
import shutil
import sys

import numpy as np
import pytest

from bert import modeling
from bert.compression import distillation, pruning
from bert.compression.methods import ObjectiveInputs
from bert.data import processors
from bert.compat import tf
from bert.errors import UserError
from bert.training.estimator import model_fn_builder
from conftest import TINY_BERT_CONFIG, run_command, run_setup, without_timing
from test_resume import eval_results, interrupt_after_checkpoint, recorded_losses
from test_tensorboard import scalars

MRPC = processors.get_task("MRPC")
STUDENT = dict(TINY_BERT_CONFIG, num_hidden_layers=1)  # a compact student of the 2-layer teacher
TEACHER_STEPS = int(3668 / 16 * 0.3)  # 68
STEPS = int(3668 / 16 * 0.6)  # 137: the distilled runs'
PRUNING = ("--target_sparsity=0.5", "--pruning_frequency=5")  # the ramp ends at step 96


def numpy_soft_loss(student, teacher, temperature, is_regression):
    if is_regression:
        return np.mean((student - teacher) ** 2)

    def log_softmax(logits):
        shifted = logits / temperature - (logits / temperature).max(axis=-1, keepdims=True)
        return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))

    teacher_log, student_log = log_softmax(teacher), log_softmax(student)
    return temperature ** 2 * np.mean((np.exp(teacher_log) * (teacher_log - student_log)).sum(axis=-1))


@pytest.mark.parametrize("labels, is_regression", [(2, False), (3, False), (1, True)])
def test_soft_loss_equals_the_numpy_reference(labels, is_regression):
    rng = np.random.RandomState(labels)
    student, teacher = (3 * rng.normal(size=(16, labels)).astype(np.float32) for _ in range(2))
    with tf.Graph().as_default(), tf.Session() as session:
        got = session.run(distillation.soft_loss(tf.constant(student), tf.constant(teacher), 2.0, is_regression))
        assert session.run(distillation.soft_loss(tf.constant(teacher), tf.constant(teacher), 2.0,
                                                  is_regression)) == pytest.approx(0.0, abs=1e-6)
    assert got == pytest.approx(numpy_soft_loss(student, teacher, 2.0, is_regression), rel=1e-5)
    assert got > 0.1


# --- run_classifier runs: tiny models, real MRPC data ---

def command(output_dir, setup, *extra, config="student", epochs=0.6, python=sys.executable):
    flags = {"--task_name": "MRPC", "--data_dir": str(setup["glue_dir"] / "MRPC"), "--vocab_file": setup["vocab_file"],
             "--bert_config_file": str(setup["root"] / ("%s.json" % config)), "--output_dir": str(output_dir),
             "--feature_cache_dir": str(setup["cache"]), "--do_train": "true", "--do_eval": "true",
             "--max_seq_length": "48", "--train_batch_size": "16", "--eval_batch_size": "64",
             "--num_train_epochs": str(epochs), "--learning_rate": "1e-3", "--save_checkpoints_steps": "20",
             "--seed": "7"}
    return [str(python), "-m", "bert.run_classifier"] + ["%s=%s" % item for item in flags.items()] + list(extra)


def run(*args, expect=0, **kwargs) -> str:
    code, output = run_command(command(*args, **kwargs))
    assert code == expect, output[-3000:]
    return output


@pytest.fixture(scope="module")
def setup(tmp_path_factory, glue_dir, vocab_file):
    found = run_setup(tmp_path_factory.mktemp("distillation"), glue_dir, vocab_file, TINY_BERT_CONFIG)
    (found["root"] / "teacher.json").write_text(json.dumps(TINY_BERT_CONFIG))
    (found["root"] / "student.json").write_text(json.dumps(STUDENT))
    return found


@pytest.fixture(scope="module")
def teacher(setup):
    """A plain fine-tune of the 2-layer model: the teacher of every test below, and the plain run of alpha=0."""
    output_dir = setup["root"] / "teacher"
    run(output_dir, setup, config="teacher", epochs=0.3)
    return output_dir


def distilling(teacher, *extra):
    return ("--distill_from=%s" % teacher, "--distill_temperature=2", "--distill_alpha=0.9") + extra


def from_teacher(teacher, setup, task_name="MRPC", **kwargs) -> distillation.Distillation:
    return distillation.from_run(str(teacher), task_name, setup["vocab_file"], True, 48, **kwargs)


def random_features(batch=8, length=16):
    rng = np.random.RandomState(0)
    return {"input_ids": tf.constant(rng.randint(0, 1000, size=(batch, length)), tf.int32),
            "input_mask": tf.ones([batch, length], tf.int32), "segment_ids": tf.zeros([batch, length], tf.int32),
            "label_ids": tf.constant(rng.randint(0, 2, size=batch), tf.int32),
            "is_real_example": tf.ones([batch], tf.int32)}


def test_the_objective_mixes_the_task_loss_with_the_soft_loss_of_the_teachers_inference_outputs(teacher, setup):
    """alpha * T^2 KL + (1 - alpha) * hard, the teacher's logits being those of its model in inference (no
    dropout, although its config has dropout) as loaded from its checkpoint in a graph of its own."""
    distill = from_teacher(teacher, setup, temperature=2.0, alpha=0.9)
    student = np.random.RandomState(1).normal(size=(8, 2)).astype(np.float32)
    with tf.Graph().as_default(), tf.Session() as session:
        task_loss = tf.constant(0.7)
        objective = distill.objective(task_loss, ObjectiveInputs(random_features(), tf.constant(student), task_loss,
                                                                 processors.get_task("MRPC")))
        session.run([tf.global_variables_initializer(), tf.local_variables_initializer()])
        got, soft = session.run([objective, tf.get_collection(distillation.SOFT_LOSS)[0]])
    with tf.Graph().as_default(), tf.Session() as session:
        features = random_features()
        pooled = modeling.BertModel(distill.bert_config, False, features["input_ids"]).pooled_output
        logits = modeling.classifier_head(pooled, 2, False, False).logits
        modeling.init_from_checkpoint(distill.checkpoint, log=lambda line: None)
        session.run(tf.global_variables_initializer())
        expected_soft = numpy_soft_loss(student, session.run(logits), 2.0, False)
    assert soft == pytest.approx(expected_soft, rel=1e-5)
    assert got == pytest.approx(0.9 * expected_soft + 0.1 * 0.7, rel=1e-5)


def test_the_teacher_is_frozen_unmasked_and_outside_the_trained_and_saved_variables(teacher, setup):
    """In the training graph of a pruned student: the teacher's variables are local (the Saver takes the global
    ones), not trainable, unmasked, without optimizer slots, set from its checkpoint, and unchanged by training
    steps that change the student and its masks."""
    config = pruning.PruningConfig(0.5, begin=0.0, end=0.5, frequency=2)
    student = modeling.BertConfig.from_dict(STUDENT)
    with tf.Graph().as_default():
        tf.set_random_seed(3)
        spec = model_fn_builder(student, MRPC, None, 1e-3, 10, 1, False,
                                methods=[pruning.Pruning(config), from_teacher(teacher, setup)])(
            random_features(), None, tf.estimator.ModeKeys.TRAIN, {})
        teacher_variables = tf.local_variables()
        names = [v.op.name for v in teacher_variables]
        assert names and all(name.startswith("teacher/") for name in names)
        assert not [v for v in tf.global_variables() + tf.trainable_variables() if "teacher" in v.op.name]
        assert len(pruning.masked_pairs()) == 6 * student.num_hidden_layers
        assert not [w for w, _ in pruning.masked_pairs() if "teacher" in w.op.name]
        checkpoint = tf.train.latest_checkpoint(str(teacher))
        assert sorted(name[len("teacher/"):] for name in names) == sorted(
            name for name, _ in tf.train.list_variables(checkpoint)
            if not re.search(r"(/adam_[mv]|global_step|batches_read)$", name))
        with tf.Session() as session:
            session.run([tf.global_variables_initializer(), tf.local_variables_initializer()])
            before = session.run(teacher_variables)
            student_before = session.run(tf.trainable_variables())
            for _ in range(6):
                session.run(spec.train_op)
            after = session.run(teacher_variables)
            student_after = session.run(tf.trainable_variables())
            sparsity = session.run(pruning.sparsity_variable())
    for name, value, later in zip(names, before, after):
        assert np.array_equal(value, tf.train.load_variable(checkpoint, name[len("teacher/"):])), name
        assert np.array_equal(value, later), name
    assert sparsity > 0 and not any(np.array_equal(a, b) for a, b in zip(student_before, student_after))


def test_alpha_zero_trains_the_weights_of_the_plain_run(teacher, setup):
    """With the teacher's own config and seed, a distilled run at alpha=0 trains what the teacher's plain run
    trained, to the bit: the teacher changes nothing but the objective (no op seed, dropout mask or data order),
    and the checkpoint holds exactly the plain run's variables."""
    output_dir = setup["root"] / "alpha_0"
    run(output_dir, setup, "--distill_from=%s" % teacher, "--distill_alpha=0", config="teacher", epochs=0.3)
    plain, distilled = (tf.train.latest_checkpoint(str(d)) for d in (teacher, output_dir))
    names = dict(tf.train.list_variables(plain))
    assert dict(tf.train.list_variables(distilled)) == names
    for name in names:
        assert np.array_equal(tf.train.load_variable(plain, name), tf.train.load_variable(distilled, name)), name
    assert without_timing(eval_results(output_dir)) == without_timing(eval_results(teacher))


PRUNINGS = {"weight": PRUNING, "block": PRUNING + ("--pruning_granularity=block", "--pruning_block=8x8")}


def uninterrupted(teacher, setup, granularity: str):
    output_dir = setup["root"] / ("reference_" + granularity)
    digests = teacher_digests(teacher)
    log = run(output_dir, setup, *distilling(teacher, *PRUNINGS[granularity]), "--progress_seconds=0")
    assert teacher_digests(teacher) == digests  # the teacher's files are left alone
    return {"output_dir": output_dir, "log": log, "results": eval_results(output_dir),
            "losses": recorded_losses(output_dir), "granularity": granularity}


@pytest.fixture(scope="module")
def reference(teacher, setup):
    """An uninterrupted distilled run of the 1-layer student with gradual pruning to 50%, with a progress line at
    every step (not a recorded setting: the interrupted run resumes without it)."""
    return uninterrupted(teacher, setup, "weight")


@pytest.fixture(scope="module")
def block_reference(teacher, setup):
    """The same with 8x8 blocks."""
    return uninterrupted(teacher, setup, "block")


def teacher_digests(teacher):
    return {path.name: path.read_bytes() for path in teacher.iterdir() if path.is_file()}


def test_a_distilled_pruned_run_saves_the_student_alone_and_records_its_teacher(reference, teacher):
    output_dir, results = reference["output_dir"], reference["results"]
    assert results["global_step"] == STEPS and results["sparsity"] >= 0.495
    assert re.search(r"train step %d/%d \(100%%\)  loss \d\.\d{4}  soft loss \d\.\d{4}  .*  sparsity 0\.500"
                     % (STEPS, STEPS), reference["log"]), reference["log"][-2000:]
    checkpoint = tf.train.latest_checkpoint(str(output_dir))
    names = [name for name, _ in tf.train.list_variables(checkpoint)]
    assert not [name for name in names if "teacher" in name]
    assert len([name for name in names if name.endswith("_mask")]) == 6  # the student's one layer
    assert "bert/encoder/layer_1/output/dense/kernel" not in names  # the teacher's second layer
    settings = json.loads((output_dir / "run_info.json").read_text())["settings"]
    teacher_checkpoint = str(teacher / ("model.ckpt-%d" % TEACHER_STEPS))
    assert re.search(r"Teacher: \d+ variables from %s \(frozen" % re.escape(teacher_checkpoint), reference["log"])
    assert settings["distill_from"]["path"] == teacher_checkpoint and settings["distill_alpha"] == 0.9
    assert settings["distill_temperature"] == 2.0 and len(settings["distill_from"]["sha1"]) == 40


def test_tensorboard_gets_every_updates_soft_loss_as_the_progress_line_shows_it(reference):
    """docs/outputs.md: a distilled run's events hold every update's `soft_loss` beside `loss`, which stays the
    task's loss (train_loss.tsv's), not the trained objective. Every step's progress line (the reference run logs
    one per step) shows both as the events hold them, to its four decimals. At step 1 the untrained student
    answers about 50/50, so the task's loss is about ln 2, far from the objective 0.9 soft + 0.1 task."""
    train = scalars(reference["output_dir"])
    assert sorted(train["soft_loss"]) == sorted(train["loss"]) == list(range(1, STEPS + 1))
    shown = {int(step): (float(loss), float(soft)) for step, loss, soft in re.findall(
        r"train step (\d+)/%d \(\d+%%\)  loss (\d+\.\d{4})  soft loss (\d+\.\d{4})  " % STEPS, reference["log"])}
    assert sorted(shown) == list(range(1, STEPS + 1))
    for step, (loss, soft) in shown.items():
        assert (train["loss"][step], train["soft_loss"][step]) == pytest.approx((loss, soft), abs=5.01e-5), step
    assert [train["loss"][int(batch)] for batch, _ in reference["losses"]] == pytest.approx(
        [float(loss) for _, loss in reference["losses"]], abs=1e-6)
    first, soft = train["loss"][1], train["soft_loss"][1]
    assert first == pytest.approx(np.log(2), abs=0.05) and abs(0.9 * soft + 0.1 * first - first) > 0.2, (first, soft)
    assert len(set(train["soft_loss"].values())) > STEPS // 2  # a value per batch, not one repeated


def test_a_distilled_run_dir_refuses_other_distillation_settings(reference, teacher, setup):
    log = run(reference["output_dir"], setup, *distilling(teacher, *PRUNING), "--distill_alpha=0.5", expect=1)
    assert "--distill_alpha 0.9 (now 0.5)" in log and "Traceback" not in log, log[-2000:]


@pytest.mark.parametrize("uninterrupted_run", ["reference", "block_reference"])
def test_an_interrupted_distilled_run_resumes_exactly(uninterrupted_run, request, teacher, setup):
    """SIGINT after the checkpoint of step 40, in the middle of the pruning ramp: the resumed run restores the
    student (its weights, masks and accumulated scores) from its checkpoint and the teacher from the teacher's, and
    gives the uninterrupted run's loss at every batch after the checkpoint, and its results; with weight and with
    block masks."""
    reference = request.getfixturevalue(uninterrupted_run)
    flags = distilling(teacher, *PRUNINGS[reference["granularity"]])
    output_dir = setup["root"] / ("interrupted_" + reference["granularity"])
    interrupted_at = interrupt_after_checkpoint(command(output_dir, setup, *flags), output_dir,
                                                setup["root"] / ("interrupted_%s.log" % reference["granularity"]), 40)
    assert 40 <= interrupted_at < STEPS, interrupted_at
    log = run(output_dir, setup, *flags)
    assert "Restoring parameters from %s" % (output_dir / ("model.ckpt-%d" % interrupted_at)) in log
    after = reference["losses"][interrupted_at:]
    assert recorded_losses(output_dir)[-len(after):] == after
    assert without_timing(eval_results(output_dir)) == without_timing(reference["results"])
    assert reference["results"]["sparsity"] >= 0.495


def test_a_teacher_of_another_task_is_refused_in_one_line(teacher, setup):
    log = run(setup["root"] / "rte", setup, "--task_name=RTE", "--data_dir=%s" % (setup["glue_dir"] / "RTE"),
              "--distill_from=%s" % teacher, expect=1)
    assert log.strip().splitlines()[-1] == ("error: --distill_from %s is a MRPC model, not RTE: the teacher must be "
                                            "fine-tuned on this task (--verbose shows where)" % teacher), log[-2000:]


def test_teachers_without_a_checkpoint_or_settings_and_impossible_weights_are_refused(teacher, setup, tmp_path):
    with pytest.raises(UserError, match="--distill_from: .* has no run_info.json"):
        from_teacher(tmp_path, setup)
    no_checkpoint = tmp_path / "no_checkpoint"
    no_checkpoint.mkdir()
    shutil.copy(str(teacher / "run_info.json"), str(no_checkpoint))
    with pytest.raises(UserError, match="--distill_from: .* has no checkpoint"):
        from_teacher(no_checkpoint, setup)
    copy = tmp_path / "no_settings"
    shutil.copytree(str(teacher), str(copy))
    (copy / "run_info.json").unlink()
    with pytest.raises(UserError, match="has no run_info.json"):
        from_teacher(copy, setup)
    with pytest.raises(UserError, match="another vocab or casing"):
        distillation.from_run(str(teacher), "MRPC", setup["vocab_file"], False, 48)
    with pytest.raises(UserError, match="exceeds the teacher's max_position_embeddings=64"):
        distillation.from_run(str(teacher), "MRPC", setup["vocab_file"], True, 128)
    for weights, message in [(dict(temperature=0.0), "temperature=0 must be > 0"),
                             (dict(alpha=1.5), "alpha=1.5 must be in"), (dict(alpha=-0.1), "alpha=-0.1 must be in")]:
        with pytest.raises(UserError, match=re.escape(message)):
            from_teacher(teacher, setup, **weights)
