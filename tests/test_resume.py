"""A training run stopped by SIGINT, SIGTERM or SIGKILL at a random step resumes from its last checkpoint
when the same command is run again, and finishes like a run that was never interrupted: the same
global_step in eval_results.txt, the same dev metrics, the same loss at every step.

Real GLUE data and a tiny model. SST-2, not RTE: the tiny model learns SST-2 within a few hundred steps
(dev accuracy about 0.74 against 0.51 for always saying one class) but stays at chance on RTE, where the
dev metrics say nothing about the training.

SIGINT and SIGTERM end the training after the update in progress with a checkpoint (exit status 130 or
143); SIGKILL leaves the last periodic checkpoint. Dropout is on: its masks are stateless functions of the
seed, the op and the batches read (bert.modeling.dropout), so a resumed run draws the masks of the
uninterrupted one, and everything a resume restores (weights, Adam moments, global_step and with it the
learning rate, the batches read and with them the dropout masks and the position in the data order) is
checked exactly: on CPU the same graph on the same data gives the same bits. (With tf.nn.dropout, whose
random state is not in the checkpoint, resumed runs of this model ended up to 0.12 dev accuracy away from
the uninterrupted one.) With gradient accumulation, a signal between the micro-batches of an update waits
for its last one: a checkpoint holding part of an update's gradient sum would have the resumed run add
those micro-batches a second time.
"""
import io
import logging
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import time

import pytest

from bert.compat import tf
from bert.training.hooks import Interrupted, ProgressHook, StopSignals
from conftest import REPO_ROOT, TINY_BERT_CONFIG, run_command, run_setup

TINY = dict(TINY_BERT_CONFIG, num_hidden_layers=1)
BATCH_SIZE, EPOCHS = 16, 0.09
STEPS = int(67349 / BATCH_SIZE * EPOCHS)  # 378
# (signal, micro-batches per update)
CASES = [(signal.SIGKILL, 1), (signal.SIGTERM, 1), (signal.SIGINT, 1), (signal.SIGINT, 2)]


def case_name(case) -> str:
    sig, accumulation_steps = case
    return sig.name + ("" if accumulation_steps == 1 else "_accumulating_%d" % accumulation_steps)


def command(output_dir, setup, accumulation_steps=1):
    flags = {"--task_name": "SST-2", "--data_dir": str(setup["glue_dir"] / "SST-2"),
             "--vocab_file": setup["vocab_file"], "--bert_config_file": str(setup["config"]),
             "--output_dir": str(output_dir),
             "--feature_cache_dir": str(setup["cache"]),  # tokenize the 67k training sentences once, not per run
             "--do_train": "true", "--do_eval": "true", "--max_seq_length": "32",
             "--train_batch_size": str(BATCH_SIZE), "--eval_batch_size": "128", "--num_train_epochs": str(EPOCHS),
             "--learning_rate": "5e-4", "--save_checkpoints_steps": "10", "--seed": "7",
             "--gradient_accumulation_steps": str(accumulation_steps)}
    return [sys.executable, "-m", "bert.run_classifier"] + ["%s=%s" % item for item in flags.items()]


def start(output_dir, setup, log_path, accumulation_steps):
    with open(str(log_path), "w") as log:  # a file, not a pipe that nobody reads while the run goes on
        return subprocess.Popen(command(output_dir, setup, accumulation_steps), cwd=str(REPO_ROOT), stdout=log,
                                stderr=subprocess.STDOUT)


def run_to_the_end(output_dir, setup, log_path, accumulation_steps) -> str:
    """A run that no signal interrupts (in this process: conftest.run_command); its log is kept in log_path too."""
    code, log = run_command(command(output_dir, setup, accumulation_steps))
    log_path.write_text(log)
    assert code == 0, log[-3000:]
    return log


def checkpoint_step(output_dir) -> int:
    """The step a restart resumes from: the `checkpoint` state file is written after the .index and .data
    files (before the .meta, which a restart does not need), so an .index file alone may belong to a save
    that was cut short."""
    state = output_dir / "checkpoint"
    if not state.exists():
        return -1
    found = re.search(r'^model_checkpoint_path: "model\.ckpt-(\d+)"', state.read_text(), re.M)
    return int(found.group(1)) if found else -1


def too_late(process, log_path) -> bool:
    """Whether a run that was to be signalled during its training got the signal only after it (or never): it
    ended, or it stopped while evaluating. Under load the training can outrun the test's polling; the caller then
    starts the run again rather than fail (or, worse, check a run that was not interrupted in its training)."""
    return process.poll() == 0 or bool(re.search(r"^interrupted: stopped by SIG\w+ while ", log_path.read_text(), re.M))


def interrupt_after_checkpoint(command, output_dir, log_path, step: int, attempts: int = 3) -> int:
    """Starts `command` (a run_classifier run into output_dir), sends SIGINT once it has a checkpoint of `step` or
    later, checks it stops as a SIGINT-ed run does and returns the step of the checkpoint it left. A signal that
    came too late (see too_late) starts the run afresh, up to `attempts` times."""
    for attempt in range(attempts):
        if attempt:
            print("the training ended before SIGINT arrived: attempt %d" % (attempt + 1))
            shutil.rmtree(str(output_dir), ignore_errors=True)
        with open(str(log_path), "w") as log:
            process = subprocess.Popen(command, cwd=str(REPO_ROOT), stdout=log, stderr=subprocess.STDOUT)
        try:
            deadline = time.time() + 300
            while checkpoint_step(output_dir) < step and process.poll() is None:
                assert time.time() < deadline, log_path.read_text()[-3000:]
                time.sleep(0.02)
            if process.poll() is None:
                process.send_signal(signal.SIGINT)
            code = process.wait(timeout=120)
        finally:
            if process.poll() is None:
                process.kill()
        if too_late(process, log_path):
            continue
        assert code == 128 + signal.SIGINT, (code, log_path.read_text()[-3000:])
        assert re.search(r"^interrupted: stopped by SIGINT at step %d of \d+, with a checkpoint"
                         % checkpoint_step(output_dir), log_path.read_text(), re.M), log_path.read_text()[-3000:]
        return checkpoint_step(output_dir)
    raise AssertionError("the training ended before SIGINT could interrupt it, %d times" % attempts)


def checkpointed_batches(output_dir, step) -> int:
    return int(tf.train.load_variable(str(output_dir / ("model.ckpt-%d" % step)), "batches_read"))


def eval_results(output_dir):
    return {key: float(value) for key, value in
            (line.split(" = ") for line in (output_dir / "eval_results.txt").read_text().splitlines())}


def recorded_losses(output_dir):
    """train_loss.tsv as [(batch, loss as written)]."""
    return [tuple(line.split("\t")) for line in (output_dir / "train_loss.tsv").read_text().splitlines()]


def leftover_temporary_files(directory):
    """Ours: `<name>.tmp-<pid>` (`<name>.tmp` before). Not TensorFlow's `<name>.tmp<uuid hex>` of a checkpoint
    save that the signal cut short (e.g. a 512 KiB `model.ckpt-140.meta.tmp4444cd35...` after a SIGTERM):
    no reader looks at them, and they come from TensorFlow's Saver, not from a write of this project."""
    return [p.name for p in directory.rglob("*") if ".tmp" in p.name and not re.search(r"\.tmp[0-9a-f]{32}$", p.name)]


@pytest.fixture(scope="module")
def setup(tmp_path_factory, glue_dir, vocab_file):
    return run_setup(tmp_path_factory.mktemp("resume"), glue_dir, vocab_file, TINY)


@pytest.fixture(scope="module")
def references(setup):
    """The uninterrupted runs, one per number of micro-batches per update, shared by every test of this file."""
    done = {}

    def reference(accumulation_steps):
        if accumulation_steps not in done:
            output_dir = setup["root"] / ("reference_%d" % accumulation_steps)
            log = run_to_the_end(output_dir, setup, setup["root"] / ("reference_%d.log" % accumulation_steps),
                                 accumulation_steps)
            assert "***** Training: 67349 examples, batch %d, %d steps" % (BATCH_SIZE, STEPS) in log
            results = eval_results(output_dir)
            assert results["global_step"] == STEPS
            losses = recorded_losses(output_dir)  # one line per batch read
            assert [int(batch) for batch, _ in losses] == list(range(1, STEPS * accumulation_steps + 1))
            # It learned (measured 0.73): the metrics compared below depend on the training.
            assert results["eval_accuracy"] > 0.65 and results["eval_loss"] < 0.6, results
            done[accumulation_steps] = {"results": results, "losses": losses}
        return done[accumulation_steps]

    return reference


@pytest.fixture(scope="module", params=CASES, ids=case_name)
def resumed(request, setup, references, tmp_path_factory):
    """A run stopped by the signal at a random step during the training, then run again to the end."""
    (sig, accumulation_steps), name = request.param, case_name(request.param)
    directory = tmp_path_factory.mktemp(name)
    output_dir = directory / "out"
    # A random step of the first two thirds of the training, from a number of steps rather than seconds,
    # which depend on the load of the machine: a few steps after a random checkpoint, between two saves
    # or during one. When accumulating, a few updates after it: a stop saves a checkpoint only if global_step
    # moved since the last one, and only such a save could catch an update half done.
    rng = random.Random("resume " + name)  # the same on every Python: a failure can be repeated
    after_checkpoint = rng.randrange(10, STEPS * 2 // 3, 10)
    delay = rng.uniform(0.0 if accumulation_steps == 1 else 0.2, 0.6)
    for attempt in range(3):
        # Under load the training can outrun the polling and the delay (the last 128 steps take about a second
        # when the machine is idle): a run that the signal reached only after its training (or never) is started
        # again, earlier and without the delay, rather than failed or checked as if it had been interrupted.
        if attempt:
            after_checkpoint, delay = max(10, after_checkpoint // 20 * 10), 0.0
            print("%s came after the training: again, after checkpoint %d" % (sig.name, after_checkpoint))
            shutil.rmtree(str(output_dir), ignore_errors=True)
        run = start(output_dir, setup, directory / "interrupted.log", accumulation_steps)
        try:
            deadline = time.time() + 300
            while checkpoint_step(output_dir) < after_checkpoint and run.poll() is None:
                assert time.time() < deadline, "no checkpoint of step %d after 300 s" % after_checkpoint
                time.sleep(0.02)
            time.sleep(delay)
            if run.poll() is None:
                run.send_signal(sig)
            code = run.wait(timeout=120)
        finally:
            if run.poll() is None:
                run.kill()
        if sig == signal.SIGKILL:
            late = code == 0 or checkpoint_step(output_dir) >= STEPS  # ended, or killed once it had trained
        else:
            late = too_late(run, directory / "interrupted.log")
        if not late:
            break
    else:
        raise AssertionError("%s came after the training in 3 attempts" % sig.name)
    log = (directory / "interrupted.log").read_text()
    if sig == signal.SIGKILL:
        assert code == -sig, (code, log[-3000:])
    else:  # the update running when the signal came is finished and checkpointed
        assert code == 128 + sig, (code, log[-3000:])
        stopped = re.search(r"^interrupted: stopped by %s at step (\d+) of %d, with a checkpoint: run the same "
                            r"command again to resume$" % (sig.name, STEPS), log, re.M)
        assert stopped and int(stopped.group(1)) == checkpoint_step(output_dir), log[-3000:]
        assert "Traceback" not in log
    assert not (output_dir / "eval_results.txt").exists()
    interrupted_at = checkpoint_step(output_dir)
    assert 0 < interrupted_at < STEPS, "interrupted at step %d: not during the training" % interrupted_at
    # The checkpoint lies between two updates: no micro-batch of a partial update in it.
    batches = checkpointed_batches(output_dir, interrupted_at)
    assert batches == interrupted_at * accumulation_steps, (batches, interrupted_at)
    print("%s %.2f s after checkpoint %d: resumes from step %d of %d (batch %d)"
          % (sig.name, delay, after_checkpoint, interrupted_at, STEPS, batches))
    log = run_to_the_end(output_dir, setup, directory / "resumed.log", accumulation_steps)
    return {"output_dir": output_dir, "interrupted_at": interrupted_at, "batches": batches, "log": log,
            "signal": sig, "reference": references(accumulation_steps), "results": eval_results(output_dir),
            "losses": recorded_losses(output_dir)}


def test_resumed_run_matches_the_uninterrupted_one(resumed, setup):
    output_dir, interrupted_at, reference = resumed["output_dir"], resumed["interrupted_at"], resumed["reference"]
    restored = re.findall(r"Restoring parameters from (\S+)$", resumed["log"], re.M)
    assert restored and restored[0] == str(output_dir / ("model.ckpt-%d" % interrupted_at)), restored
    results, expected = resumed["results"], reference["results"]
    assert results["global_step"] == expected["global_step"] == STEPS
    # Every batch after the checkpoint ran once, with the weights, Adam moments, gradient sums and learning rate
    # of the uninterrupted run's same batch: the same loss to the last printed digit.
    after, losses = reference["losses"][resumed["batches"]:], resumed["losses"]
    assert losses[-len(after):] == after
    batches = [int(batch) for batch, _ in losses]
    assert batches == sorted(set(batches)), batches  # and none twice
    # Hence the same model. Measured: bit-identical eval_accuracy and eval_loss in 12 runs (both stacks, all
    # three signals, resumed from steps 110-180); 1e-6 leaves room for float round-off only.
    assert results["eval_accuracy"] == expected["eval_accuracy"], (results, expected)
    assert abs(results["eval_loss"] - expected["eval_loss"]) <= 1e-6, (results, expected)
    assert not leftover_temporary_files(output_dir) and not leftover_temporary_files(setup["cache"])


def test_resumed_run_reports_the_uninterrupted_training_loss(resumed):
    """train_loss.tsv covers every batch, so `loss` (the mean over the last 10%) is the uninterrupted run's.
    One gap is possible after SIGKILL: a kill during the save of batch N (after the checkpoint names it, while
    its .meta file is written), when the saver's hook ran before the one that records losses, loses the loss
    of batch N."""
    reference = resumed["reference"]
    missing = sorted(set(range(1, len(reference["losses"]) + 1)) - {int(batch) for batch, _ in resumed["losses"]})
    assert missing == [] or (resumed["signal"] == signal.SIGKILL and missing == [resumed["batches"]]), missing
    assert abs(resumed["results"]["loss"] - reference["results"]["loss"]) <= 1e-6


class RunContext:
    """What ProgressHook.after_run uses of a session's run context: request_stop."""

    def __init__(self):
        self.stop_requested = False

    def request_stop(self):
        self.stop_requested = True


def test_a_signal_stops_training_only_after_a_whole_update():
    """Two micro-batches per update and a stop asked for (by SIGINT) before the first: the hook lets the
    update's second micro-batch run before it stops the training, as it does after every later first one."""
    hook = ProgressHook(num_train_steps=3, micro_batch_size=8, accumulation_steps=2, history_path=None, resumed_from=0,
                        peak_learning_rate=1e-4)
    hook.after_create_session(None, None)
    hook.stop_signal = signal.SIGINT  # what stop_soon sets
    stops = []
    for batches in range(6):
        context = RunContext()
        results = {"step": batches // 2, "batches": batches, "loss": 0.5, "lr": 1e-4, "fields": {}}
        hook.after_run(context, tf.train.SessionRunValues(results=results, options=None, run_metadata=None))
        stops.append(context.stop_requested)
    assert stops == [False, True] * 3


class SignallingStream(io.StringIO):
    """A log stream that receives SIGINT in the middle of writing a line."""

    def write(self, text):
        os.kill(os.getpid(), signal.SIGINT)
        return super().write(text)


def test_a_signal_while_a_log_line_is_written_still_stops_the_run():
    """Outside training a signal ends the run at once, wherever it lands: also inside a logging handler's emit,
    which catches any Exception (and prints it as a logging error) and carries on. Seen: a run signalled while
    it logged went on to train to the end."""
    logger = logging.getLogger("test_resume.signalled")
    logger.propagate = False
    logger.addHandler(logging.StreamHandler(SignallingStream()))
    previous = signal.signal(signal.SIGINT, StopSignals())
    try:
        with pytest.raises(Interrupted, match="^stopped by SIGINT while preparing the run: run the same command"):
            logger.warning("a line")
    finally:
        signal.signal(signal.SIGINT, previous)
