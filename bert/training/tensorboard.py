"""TensorBoard scalars of a run: its training curve and its dev metrics, so that
`tensorboard --logdir fine_tune_outputs` compares every run of a sweep.

The values are written from the host (tf.Summary protos through TensorFlow's cached FileWriter), not by summary
ops in the graph: the model's graph stays what it is (on TPU, in the export), and ProgressHook fetches the loss,
learning rate and sparsity every step anyway. Training scalars go to the run's --output_dir (its events file is
Estimator's, which holds the graph too), the dev metrics to `<output_dir>/eval`, the layout Estimator's own
evaluation uses: TensorBoard shows them as two runs, `<run>` and `<run>/eval`, and draws tags they share (`loss`)
in one chart.
"""
import numbers
import os
from typing import Dict

from bert.compat import tf

EVAL_DIR = "eval"


def write_scalars(logdir: str, step: int, values: Dict[str, float]) -> None:
    """Appends `values` (tag -> number; None is left out) at `step` to logdir's events file."""
    summary = tf.Summary(value=[tf.Summary.Value(tag=tag, simple_value=float(value))
                                for tag, value in sorted(values.items()) if value is not None])
    tf.summary.FileWriterCache.get(logdir).add_summary(summary, step)


def flush(logdir: str) -> None:
    tf.summary.FileWriterCache.get(logdir).flush()


def eval_scalars(results: Dict[str, object]) -> Dict[str, float]:
    """eval_results.txt's numbers under TensorBoard tags: `eval_f1` as `f1`, `eval_loss` as `loss` (beside the
    training loss), `eval_mismatched_accuracy` as `mismatched_accuracy`; the rest (sparsity, compact_eval_f1,
    train_time, ...) as they are named there."""
    return {key[len("eval_"):] if key.startswith("eval_") else key: float(value) for key, value in results.items()
            if isinstance(value, numbers.Number) and not isinstance(value, bool)}


def write_eval(output_dir: str, step: int, results: Dict[str, object]) -> None:
    """Every number of a run's eval_results.txt at the evaluated checkpoint's step, in <output_dir>/eval."""
    logdir = os.path.join(output_dir, EVAL_DIR)
    write_scalars(logdir, step, eval_scalars(results))
    flush(logdir)
