"""Runs google-research/bert's own run_classifier.py, timing its training and evaluation phases.

    PYTHONPATH=UNPACKED_WHEEL_DIR .venv/bin/python bench/google_reference.py [its run_classifier flags ...]

The reference is the bert-tensorflow 1.0.4 release on PyPI (google-research/bert's code, TF 1.15 only:
it uses tf.contrib). bench/benchmark.py downloads and unpacks it; nothing of it is part of this project.
Its package is also named `bert`, so the unpacked wheel goes on PYTHONPATH, which Python searches before
the environment's packages (ours among them, installed editable): `from bert import run_classifier` here is
Google's. The seconds of TPUEstimator.train and
TPUEstimator.evaluate (graph building, checkpoint restore, every batch, metrics) go to stderr as
`google_train_seconds N` and `google_eval_seconds N`, and the evaluation's steady rate (batches after
the first two, which warm up) as `google_eval_examples_per_second N`.
"""
import os
import sys
import time


def instrument(tf, estimator_class, eval_batch_size) -> None:
    """Wraps train and evaluate to time them, and evaluate to time each of its batches too."""
    train, evaluate = estimator_class.train, estimator_class.evaluate

    class BatchEnds(tf.train.SessionRunHook):
        def __init__(self):
            self.times = []

        def after_run(self, run_context, run_values):
            self.times.append(time.time())

    def timed_train(self, *args, **kwargs):
        start = time.time()
        try:
            return train(self, *args, **kwargs)
        finally:
            sys.stderr.write("google_train_seconds %.2f\n" % (time.time() - start))

    def timed_evaluate(self, *args, **kwargs):
        start, ends = time.time(), BatchEnds()
        kwargs["hooks"] = list(kwargs.get("hooks") or []) + [ends]
        try:
            return evaluate(self, *args, **kwargs)
        finally:
            sys.stderr.write("google_eval_seconds %.2f\n" % (time.time() - start))
            if len(ends.times) > 2:
                sys.stderr.write("google_eval_examples_per_second %.2f\n" % (
                    (len(ends.times) - 2) * eval_batch_size() / (ends.times[-1] - ends.times[1])))

    estimator_class.train, estimator_class.evaluate = timed_train, timed_evaluate


def main() -> None:
    import tensorflow.compat.v1 as tf
    from bert import run_classifier  # google-research/bert's, from the unpacked wheel on PYTHONPATH

    if os.path.isfile(os.path.join(os.path.dirname(run_classifier.__file__), "compat.py")):  # this project's
        sys.exit("error: this project's bert was imported, not Google's: put the unpacked wheel on PYTHONPATH")

    instrument(tf, tf.estimator.tpu.TPUEstimator, lambda: run_classifier.FLAGS.eval_batch_size)
    for name in ("data_dir", "task_name", "vocab_file", "bert_config_file", "output_dir"):
        tf.flags.mark_flag_as_required(name)
    tf.app.run(run_classifier.main)


if __name__ == "__main__":
    main()
