"""The batches-read counter (bert.counters.batches_read) through run_classifier.py, on real GLUE data.

--use_fp16's dynamic loss scaling skips an update whose gradients overflow: global_step stays, and the
run reads further batches of its data order to make its planned updates. No GPU is needed for that: the
loss scaling runs on CPU too, in float32, and an initial loss scale near float32's largest number (3.4e38)
overflows the first updates of STS-B (a regression: its squared errors are several units, and so are its
gradients) until the halving scale lets them through (3 skips here, on both stacks). A checkpoint keeps the
count of batches read, and a resumed run continues after them, not after global_step's.
"""
import re
import shutil
import sys

import pytest

from conftest import run_command, without_timing
from test_resume import setup  # noqa: F401 - its fixture: a tiny config, a feature cache, a folder for the runs
from test_run_classifier import read_results

STSB_STEPS = int(5749 / 16 * 0.05)  # 17
OVERFLOWING = ["--use_fp16=true", "--fp16_initial_loss_scale=3.4e38"]


def run(output_dir, task, setup, *extra):
    command = [sys.executable, "-m", "bert.run_classifier", "--task_name=" + task,
               "--data_dir=%s" % (setup["glue_dir"] / task), "--vocab_file=%s" % setup["vocab_file"],
               "--bert_config_file=%s" % setup["config"], "--output_dir=%s" % output_dir,
               "--feature_cache_dir=%s" % setup["cache"], "--do_train=true", "--do_eval=true", "--max_seq_length=32",
               "--train_batch_size=16", "--eval_batch_size=128", "--save_checkpoints_steps=5"] + list(extra)
    return run_command(command)  # (exit code, log and stderr)


def run_to_the_end(output_dir, task, setup, *extra) -> str:
    code, output = run(output_dir, task, setup, *extra)
    assert code == 0, output[-3000:]
    return output


def checkpointed(output_dir, step, name):
    from bert.compat import tf
    reader = tf.train.load_checkpoint(str(output_dir / ("model.ckpt-%d" % step)))
    return int(reader.get_tensor(name)) if reader.has_tensor(name) else None


def resume_from(finished, output_dir, step):
    """A copy of a finished run's output dir as a run killed right after its checkpoint of `step` leaves it (but
    with the later losses still in train_loss.tsv, as a save cut short can leave them): the next run resumes there."""
    shutil.copytree(str(finished), str(output_dir))
    for path in output_dir.glob("model.ckpt-*"):
        if int(re.match(r"model\.ckpt-(\d+)", path.name).group(1)) > step:
            path.unlink()
    (output_dir / "checkpoint").write_text('model_checkpoint_path: "model.ckpt-%d"\n' % step)
    (output_dir / "eval_results.txt").unlink()


@pytest.fixture(scope="module")
def skipping(setup):
    """An STS-B run whose first updates overflow."""
    output_dir = setup["root"] / "skipping"
    log = run_to_the_end(output_dir, "STS-B", setup, "--num_train_epochs=0.05", *OVERFLOWING)
    return {"output_dir": output_dir, "log": log}


def test_skipped_updates_are_made_up_for_with_further_batches(skipping):
    output_dir, log = skipping["output_dir"], skipping["log"]
    assert read_results(output_dir)["global_step"] == STSB_STEPS
    done = re.search(r"Training done: (\d+) updates were skipped because their gradients were not finite "
                     r"\(--use_fp16's loss scaling\), and made up for with as many more batches$", log, re.M)
    assert done, log[-3000:]
    skipped = int(done.group(1))
    assert skipped > 0
    # The progress line counts the skips of the batches before its own (all of them: its update was applied).
    assert re.search(r"train step %d/%d \(100%%\) .* %d updates skipped \(gradients not finite\)$"
                     % (STSB_STEPS, STSB_STEPS, skipped), log, re.M), log[-3000:]
    assert checkpointed(output_dir, STSB_STEPS, "batches_read") == STSB_STEPS + skipped
    batches = [int(line.split("\t")[0]) for line in (output_dir / "train_loss.tsv").read_text().splitlines()]
    assert batches == list(range(1, STSB_STEPS + skipped + 1))


def test_a_resumed_run_with_skipped_updates_continues_after_the_batches_read(skipping, setup, tmp_path):
    """Resumed at step 5, after the skips, the run reads on from batch 5 + skips (not 5): the same losses,
    batch for batch, and the same model as the uninterrupted run."""
    finished, output_dir = skipping["output_dir"], tmp_path / "out"
    assert checkpointed(finished, 5, "batches_read") > 5
    resume_from(finished, output_dir, 5)
    log = run_to_the_end(output_dir, "STS-B", setup, "--num_train_epochs=0.05", *OVERFLOWING)
    assert "Restoring parameters from %s" % (output_dir / "model.ckpt-5") in log
    assert (output_dir / "train_loss.tsv").read_text() == (finished / "train_loss.tsv").read_text()
    assert without_timing(read_results(output_dir)) == without_timing(read_results(finished))


def test_more_skipped_updates_than_spare_batches_is_a_one_line_error(setup, tmp_path):
    """An infinite loss scale overflows every update: once the 32 spare batches are read too, the run says so."""
    code, output = run(tmp_path, "WNLI", setup, "--num_train_epochs=0.2", "--use_fp16=true", "--fp16_initial_loss_scale=inf")
    steps = int(635 / 16 * 0.2)  # 7
    assert code == 1 and "Traceback" not in output, output[-3000:]
    assert output.strip().splitlines()[-1] == (
        "error: training stopped at step 0 of %d: %d updates were skipped because their gradients were not finite "
        "(--use_fp16's loss scaling), more than the 32 spare batches could make up for: try a lower "
        "--fp16_initial_loss_scale (now inf) or --learning_rate (now 5e-05) (--verbose shows where)" % (steps, steps + 32))
    assert not (tmp_path / "eval_results.txt").exists()


def drop_counter(prefix):
    """Rewrites a checkpoint without batches_read, as the code before the counter wrote them."""
    from bert.compat import tf
    reader = tf.train.load_checkpoint(str(prefix))
    values = {name: reader.get_tensor(name) for name in reader.get_variable_to_shape_map() if name != "batches_read"}
    with tf.Graph().as_default(), tf.Session() as session:
        variables = {name: tf.Variable(value, name=name) for name, value in values.items()}
        session.run(tf.global_variables_initializer())
        tf.train.Saver(variables).save(session, str(prefix), write_meta_graph=False, write_state=False)


def test_a_checkpoint_without_the_counter_resumes_from_global_step(setup, tmp_path):
    """A checkpoint written before batches_read existed resumes at global_step x the micro-batches per update,
    where runs then resumed (and stopped, on update boundaries): the uninterrupted run's losses and model."""
    flags = ["--num_train_epochs=0.2", "--gradient_accumulation_steps=2"]  # 7 updates of 2 micro-batches
    finished, output_dir = tmp_path / "finished", tmp_path / "out"
    run_to_the_end(finished, "WNLI", setup, *flags)
    resume_from(finished, output_dir, 5)
    drop_counter(output_dir / "model.ckpt-5")
    assert checkpointed(output_dir, 5, "batches_read") is None and checkpointed(finished, 5, "batches_read") == 10
    log = run_to_the_end(output_dir, "WNLI", setup, *flags)
    assert "Restoring parameters from %s" % (output_dir / "model.ckpt-5") in log
    assert (output_dir / "train_loss.tsv").read_text() == (finished / "train_loss.tsv").read_text()
    assert without_timing(read_results(output_dir)) == without_timing(read_results(finished))
    assert checkpointed(output_dir, 7, "batches_read") is None  # the run goes on counting from global_step
