"""The hooks of a training run: progress lines and the loss history (ProgressHook), checkpoints without
Estimator's start-up writes (CheckpointSaver), and a clean stop on SIGINT or SIGTERM (StopSignals).

They read no flags: run_classifier.py hands them its settings, so tests build them in-process.
"""
import os
import signal
import sys
import time
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from bert import counters, files
from bert.compression.methods import ProgressField, progress_tensor
from bert.training import tensorboard
from bert.compat import tf
from bert.errors import UserError
from bert.files import write_atomically
from bert.formatting import format_duration


class ProgressHook(tf.train.SessionRunHook):
    """Logs training progress (step, loss, learning rate, speed, time left, updates skipped), records the
    losses, stops a diverging run with its step and learning rate (Estimator's own NaN check names
    neither), and ends the training cleanly, with a checkpoint, when `stop_soon` is called (by SIGINT or
    SIGTERM): after the run that completes an update, since a checkpoint between the micro-batches of an
    accumulated update would hold part of its gradient sum, which the resumed run would add again.

    Every batch's loss goes to `history_path` (`batch<TAB>loss` lines, train_loss.tsv, where batch counts
    the batches read, counters.batches_read: the step, unless gradient accumulation or skipped
    updates make more batches than steps) with each checkpoint (see `listener`) and when training ends;
    a resumed run keeps the lines up to the batch it resumes from (the file may go further if a save was
    cut short), so its loss curve is complete. With `summary_dir`, each update's loss, learning rate (and
    the training methods' `fields`: sparsity, soft loss, ...) and, with each progress line, the examples/s go to
    TensorBoard (bert/training/tensorboard.py). The model_fn puts the tensors it fetches into graph collections
    (bert/compression/methods.register_progress).
    """

    def __init__(self, num_train_steps: int, micro_batch_size: int, accumulation_steps: int,
                 history_path: Optional[str], resumed_from: int, peak_learning_rate: float, every_seconds: float = 30.0,
                 record_time: Optional[Callable[[Dict], None]] = None, summary_dir: Optional[str] = None,
                 fields: Sequence[ProgressField] = ()):
        self.num_train_steps, self.every_seconds = num_train_steps, every_seconds
        self.peak_learning_rate = peak_learning_rate  # the --learning_rate a diverging run's error names
        self.summary_dir, self.fields = summary_dir, tuple(fields)
        self.micro_batch_size, self.accumulation_steps = micro_batch_size, accumulation_steps
        self.history_path = history_path
        self.history = [(batch, loss) for batch, loss in read_loss_history(history_path) if batch <= resumed_from]
        self.saved_batches: Optional[int] = None
        self.stop_signal: Optional[int] = None
        self.record_time = record_time
        self.train_start = time.time()  # main() sets it when estimator.train is called
        self.timed_from: Optional[Tuple[int, float]] = None  # (batches read, time) after the session's first run

    def begin(self):
        step, batches = counters.counts_before_update()
        self.fetches = {"step": step, "batches": batches, "loss": progress_tensor("loss"),
                        "lr": progress_tensor("learning_rate"),
                        "fields": {field.name: progress_tensor(field.name) for field in self.fields}}

    def after_create_session(self, session, coord):
        self.start_time = self.last_log = time.time()
        self.first_batch = None

    def before_run(self, run_context):
        return tf.train.SessionRunArgs(self.fetches)

    def after_run(self, run_context, run_values):
        # the updates applied and the batches read before this run
        step, batches, loss, lr = (run_values.results[k] for k in ("step", "batches", "loss", "lr"))
        if not np.isfinite(loss):
            raise UserError("the training loss became %s at step %d of %d (learning rate %.3g): try a lower "
                            "--learning_rate (now %g)" % (loss, step + 1, self.num_train_steps, lr, self.peak_learning_rate))
        self.history.append((batches + 1, loss))
        self.write_checkpointed_history()
        update_done = (batches + 1) % self.accumulation_steps == 0
        fields = run_values.results["fields"]
        if self.summary_dir and update_done:
            tensorboard.write_scalars(self.summary_dir, step + 1, dict(fields, loss=loss, learning_rate=lr))
        if self.stop_signal is not None and update_done:
            tf.logging.info("Stopping at step %d (%s): saving a checkpoint to resume from",
                            step + 1, signal.Signals(self.stop_signal).name)
            run_context.request_stop()
        now = time.time()
        if self.first_batch is None:
            self.first_batch, self.timed_from = batches, (int(batches) + 1, now)
        if now - self.last_log < self.every_seconds and not (update_done and step + 1 == self.num_train_steps):
            return
        self.last_log = now
        rate = (batches + 1 - self.first_batch) / max(now - self.start_time, 1e-9)  # batches per second
        batches_left = (self.num_train_steps - step) * self.accumulation_steps - batches % self.accumulation_steps - 1
        skipped = batches // self.accumulation_steps - step
        if self.summary_dir:
            tensorboard.write_scalars(self.summary_dir, step + 1, {"examples_per_second": rate * self.micro_batch_size})
        shown = {after_loss: "".join("  %s %s" % (field.label, field.format % fields[field.name])
                                     for field in self.fields if field.after_loss == after_loss)
                 for after_loss in (True, False)}
        tf.logging.info("train step %d/%d (%.0f%%)  loss %.4f%s  lr %.2e  %.1f examples/s  time left %s%s%s",
                        step + 1, self.num_train_steps, 100.0 * (step + 1) / self.num_train_steps, loss,
                        shown[True], lr, rate * self.micro_batch_size, format_duration(batches_left / max(rate, 1e-9)),
                        shown[False], "  %d updates skipped (gradients not finite)" % skipped if skipped else "")

    def end(self, session):  # the session ended normally: its last batch is in the final checkpoint
        self.write_history()
        if self.summary_dir:
            tensorboard.flush(self.summary_dir)
        self.record_time_up_to(int(session.run(self.fetches["batches"])))

    def record_time_up_to(self, batches: int) -> None:
        """Hands `record_time` this invocation's training time up to a checkpoint at `batches` batches read: the
        wall seconds since estimator.train was called, and the batches after the session's first run with
        their seconds (the first run pays for the graph's one-off work)."""
        if self.record_time is None:
            return
        now, (timed_from, timed_start) = time.time(), self.timed_from or (batches, time.time())
        timed = max(batches - timed_from, 0)
        self.record_time({"train_time": round(now - self.train_start, 2), "to_batch": batches,
                          "timed_examples": timed * self.micro_batch_size,
                          "timed_seconds": round(now - timed_start, 3) if timed else 0.0})

    def write_checkpointed_history(self) -> None:
        """Writes the losses up to the last saved checkpoint as soon as its last batch's loss is recorded too."""
        if self.saved_batches is not None and (self.history[-1][0] if self.history else 0) >= self.saved_batches:
            self.write_history(up_to=self.saved_batches)
            self.saved_batches = None

    def write_history(self, up_to: Optional[int] = None) -> None:
        if self.history_path:  # None on a worker other than the chief of a multi-worker run
            write_atomically(self.history_path, "".join("%d\t%.6f\n" % (batch, loss) for batch, loss in self.history
                                                        if up_to is None or batch <= up_to))

    def stop_soon(self, signum: int) -> None:
        """Finish the current update, save a checkpoint and stop (StopSignals calls it for the first signal)."""
        self.stop_signal = signum

    def listener(self) -> tf.train.CheckpointSaverListener:
        """Writes the losses with each checkpoint: those recorded before the save, and the loss of the checkpoint's
        last batch as soon as it is recorded (when the saver's hook runs before this one, it is not yet)."""
        hook = self

        class SavedBatches(tf.train.CheckpointSaverListener):
            def before_save(self, session, global_step_value):
                self.batches = int(session.run(hook.fetches["batches"]))  # once per checkpoint, not per step
                hook.write_history(up_to=self.batches)

            def after_save(self, session, global_step_value):
                hook.saved_batches = self.batches
                hook.write_checkpointed_history()
                hook.record_time_up_to(self.batches)

        return SavedBatches()


class CheckpointSaver(tf.train.CheckpointSaverHook):
    """Estimator's checkpoint hook without its start-up writes: graph.pbtxt and a checkpoint of the state the
    session was just given (the pre-trained weights, or the checkpoint a resumed run restored). They cost
    ~5 s and ~280 MB per run, and neither a fresh start nor a resume needs them. TensorBoard still gets the
    graph; periodic and final checkpoints and their listeners are unchanged."""

    def after_create_session(self, session, coord):
        self._summary_writer.add_graph(session.graph)
        self._timer.update_last_triggered_step(session.run(self._global_step_tensor))


class Interrupted(BaseException):
    """The run stopped for SIGINT or SIGTERM (`what`: where, and what to do); exits with 128 + the signal.

    A BaseException, as KeyboardInterrupt is: raised by the signal handler wherever the main thread is, it must
    pass the `except Exception` of the code it lands in (logging's emit, which would print it and carry on)."""

    def __init__(self, signum: int, what: str):
        super().__init__("stopped by %s %s" % (signal.Signals(signum).name, what))
        self.signum = signum


class StopSignals:
    """The handler of SIGINT and SIGTERM for the whole run.

    While training (`training` is the ProgressHook) the first signal asks it to stop after the current step,
    which saves a checkpoint; later signals only say that the run is stopping. So no number of signals, from
    a terminal, a sweep or a job system, cuts a checkpoint save short (`kill -9` still ends the run at once,
    and it resumes from the last periodic checkpoint). Outside training a signal ends the run where it is
    (Interrupted): every file is written atomically, so nothing is left half-written.
    """

    def __init__(self):
        self.phase = "preparing the run"
        self.training: Optional[ProgressHook] = None
        self.stopping = False

    def __call__(self, signum, frame) -> None:
        name = signal.Signals(signum).name
        if self.stopping:  # straight to the descriptor: the logging stream may be in the middle of a write
            os.write(sys.stderr.fileno(), ("%s again: the run stops once the current step's checkpoint is saved\n"
                                           % name).encode("utf-8"))
            return
        self.stopping = True
        if self.training is None:
            raise Interrupted(signum, "while %s: run the same command again to continue" % self.phase)
        self.training.stop_soon(signum)

    @staticmethod
    def ignore_from_now_on() -> None:
        """For the exit: Python's shutdown puts back the default handlers, which a late signal would die of."""
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, signal.SIG_IGN)


def read_loss_history(history_path: Optional[str]) -> List[Tuple[int, float]]:
    """(batch, loss) pairs of train_loss.tsv; none when there is no file (yet)."""
    if not history_path or not files.exists(history_path):
        return []
    with files.open(history_path) as f:
        return [(int(step), float(loss)) for step, loss in (line.split("\t") for line in f if line.strip())]


def final_training_loss(history_path: str) -> Optional[float]:
    """The mean training loss over the last 10% of the recorded batches (one batch is too noisy)."""
    losses = [loss for _, loss in read_loss_history(history_path)]
    return float(np.mean(losses[-max(1, len(losses) // 10):])) if losses else None
