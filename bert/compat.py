"""The one TF1/TF2 compatibility shim: every module does `from bert.compat import tf`.

TensorFlow 1.15 and 2.x (up to 2.15, the last release with Estimators) both expose the TF1 API as
`tf.compat.v1`. We run both stacks with TF1 semantics (graph mode, TF1 control flow and variables) so
that the same code builds the same graph and gives the same numbers on either stack.
"""
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # hide C++ INFO/WARNING banners; errors still show
# Pool CPU memory (TensorFlow's BFC allocator, as on GPUs) instead of malloc per tensor: the 30522 x H
# embedding gradient and its temporaries are past glibc's mmap threshold, so malloc would map and
# page-fault ~50 MB of fresh memory for each of them on every step (kernel time was ~15% of a training
# step's CPU time, by os.times() around MRPC steps on TF 1.15).
os.environ.setdefault("TF_CPU_ALLOCATOR_USE_BFC", "true")

import tensorflow as _tf  # noqa: E402

TF_VERSION = _tf.__version__
IS_TF2 = TF_VERSION.startswith("2.")
# TF 1.15's Erf kernel computes one element at a time (glibc's erff, slowest for 1.25 < |z| < 6, where most of
# a trained BERT's pre-activations lie); TF 2's is vectorised, and oneDNN fuses the erf GELU into its matmul.
VECTORIZED_ERF = IS_TF2

tf = _tf.compat.v1
tf.disable_v2_behavior()
try:  # TF 1.15 warns on every tf.compat.v1 name it plans to move; we use those names on purpose
    from tensorflow.python.util import deprecation as _deprecation
    _deprecation._PRINT_DEPRECATION_WARNINGS = False
except ImportError:
    pass
tf.logging.set_verbosity(tf.logging.INFO)
tf.get_logger().propagate = False  # absl's root handler would print every line a second time


def enable_xla_on_cpu() -> None:
    """Lets XLA's auto-clustering (global_jit_level, --use_xla) take CPU ops too, and compile eagerly.

    Process-wide, and only if called before the process's first session (called after one, it changed nothing
    on either stack, by hand); sessions that do not ask for XLA stay unclustered. CPU ops are clustered only when asked for
    (GPU ops either way). TF 2 reads TF_XLA_FLAGS when it is imported, so setting the variable later does nothing
    there (--use_xla compiled nothing on CPU under TF 2.15 until this setter); TF 1.15 has no setter and reads
    the variable once, when its XLA flags are first used. Eager: a cluster compiles the first time it runs
    with a shape; by default XLA compiles lazily, after a shape has run uncompiled several times (up to six
    here), so compilations would land at unforeseeable points of a run and of a benchmark.
    """
    try:
        from tensorflow.python import pywrap_tfe as xla_setters
    except ImportError:
        os.environ["TF_XLA_FLAGS"] = (os.environ.get("TF_XLA_FLAGS", "") + " --tf_xla_cpu_global_jit").strip()
        from tensorflow.python import pywrap_tensorflow as xla_setters  # its first setter call reads the variable
    else:
        xla_setters.TF_SetTfXlaCpuGlobalJit(True)
    xla_setters.TF_SetXlaEnableLazyCompilation(False)


# The TPU-aware Estimator; with use_tpu=False it runs on CPU/GPU like a plain Estimator.
tpu_estimator = tf.estimator.tpu
cluster_resolver = _tf.distribute.cluster_resolver
