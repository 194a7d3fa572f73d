"""Fused CPU kernels: the exact GELU, attention's softmax and LayerNorm, each one pass over memory.

TensorFlow runs every element-wise op as a pass over memory of its own (no fusion without XLA, which
compiles anew for every batch shape); TF 1.15's kernels are built for AVX without FMA, too. The exact GELU
is sixteen such ops on TF 1.15 (modeling.normal_cdf), attention's scaled and masked softmax three, LayerNorm
nine forward and ten backward; kernels.cc computes each in one vectorised loop, compiled for this machine,
from the same formulas (tests/test_kernels.py compares them). README, Speed, gives what they save on both
stacks (TF 2's oneDNN fuses the GELU into the matmul before it, but not its gradient, LayerNorm or the
softmax's scaling and mask).

The library is built on first use with the C++ compiler (`$CXX`, default g++) against the running
TensorFlow's headers, into .cache/kernels/ under a name keyed by the source, TensorFlow's version and the
CPU's features, so an edited kernels.cc, another stack or another machine gets its own build. Without a
compiler the model keeps TensorFlow's ops and a warning says why.

The kernels are CPU-only: run_classifier.py turns them on (`use()`) when it runs on the CPU, and model
code asks `active()` while building the graph.
"""
import contextlib
import hashlib
import os
import platform
import subprocess
import time
from typing import Sequence

from bert.compat import tf

SOURCE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "kernels.cc")
BUILD_DIR = os.path.join(os.path.dirname(os.path.dirname(SOURCE)), ".cache", "kernels")

_library = None
_active = False


def cpu_features() -> str:
    """The CPU's instruction-set flags: the library is compiled for them (-march=native)."""
    try:
        with open("/proc/cpuinfo") as f:
            return next((line for line in f if line.startswith("flags")), "")
    except OSError:
        return platform.processor()


def compile_command(output: str):
    flags = tf.sysconfig.get_compile_flags()  # TF 2's flags name the C++ standard its headers need
    standard = [] if any("std=" in flag for flag in flags) else ["-std=c++14"]
    return ([os.environ.get("CXX", "g++")] + standard + ["-shared", "-fPIC", "-O3", "-march=native",
            "-fopenmp-simd", SOURCE, "-o", output] + flags + tf.sysconfig.get_link_flags())


def library_path(build_dir: str = BUILD_DIR) -> str:
    with open(SOURCE, "rb") as source:
        key = hashlib.sha256(source.read())
    for part in (tf.__version__, cpu_features(), os.environ.get("CXX", "g++")):
        key.update(part.encode())
    return os.path.join(build_dir, "kernels-%s.so" % key.hexdigest()[:16])


def build(build_dir: str = BUILD_DIR) -> str:
    """Compiles kernels.cc unless this source's build for this machine exists; returns the library's path.

    Concurrent builders (the workers of a distributed run) each write their own file and rename it into
    place, so none loads a half-written library. Raises RuntimeError with the compiler's message.
    """
    path = library_path(build_dir)
    if os.path.exists(path):
        return path
    os.makedirs(build_dir, exist_ok=True)
    temporary = "%s.tmp-%d" % (path, os.getpid())
    started = time.time()
    try:
        result = subprocess.run(compile_command(temporary), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                universal_newlines=True)
    except OSError as error:  # no compiler
        raise RuntimeError("cannot run the C++ compiler: %s" % error) from None
    if result.returncode:
        errors = [line for line in result.stdout.splitlines() if "error" in line]
        raise RuntimeError("compiling %s failed: %s" % (SOURCE, "\n".join(errors[:5]) or result.stdout[-2000:]))
    os.replace(temporary, path)
    tf.logging.info("Built the fused CPU kernels in %.1f s: %s", time.time() - started, path)
    return path


def use(on: bool = True, build_dir: str = BUILD_DIR) -> bool:
    """Turns the fused kernels on (building them first if needed) or off; returns whether they are on.

    Only graphs built afterwards change. When the build fails (logged), they stay off.
    """
    global _library, _active
    if on and _library is None:
        try:
            _library = tf.load_op_library(build(build_dir))
        except (RuntimeError, tf.errors.OpError) as error:
            tf.logging.warning("Fused CPU kernels unavailable, using TensorFlow's ops for the GELU, softmax "
                               "and LayerNorm (slower): %s", error)
    _active = on and _library is not None
    return _active


def active() -> bool:
    return _active


@contextlib.contextmanager
def enabled(on: bool):
    """Graphs built inside the block use the kernels (`on`, if they build; yields whether they are on) or
    TensorFlow's ops alone; the setting from before comes back after. A SavedModel for other processes
    (bert/serving/export.py) must use stock ops only: those processes never load this library."""
    global _active
    before = _active
    try:
        yield use(on)
    finally:
        _active = before


def gelu_exact(x, q: Sequence[float]):
    """x * Phi(x), Phi(x) = sigmoid(x * Q(x^2)) with Q's coefficients `q` (modeling.NORMAL_CDF_Q)."""
    @tf.custom_gradient
    def forward(x):
        return _library.bert_gelu_exact(x, q=q), lambda dy: _library.bert_gelu_exact_grad(dy, x, q=q)

    return forward(x)


def masked_softmax(scores, mask_bias, scale: float):
    """softmax(scores * scale + mask_bias) over the last axis; scores [batch, heads, queries, keys], mask_bias
    [batch, 1, 1, keys]. No gradient flows to mask_bias (it comes from the input mask)."""
    @tf.custom_gradient
    def forward(scores):
        probabilities = _library.bert_masked_softmax(scores, mask_bias, scale=scale)
        return probabilities, lambda dp: _library.bert_masked_softmax_grad(dp, probabilities, scale=scale)

    return forward(scores)


def layer_norm(x, gamma, beta, epsilon: float):
    """LayerNorm over the last axis, (x - mean) / sqrt(variance + epsilon) * gamma + beta."""
    @tf.custom_gradient
    def normalize(x, gamma, beta):
        y, mean, inverse_sigma = _library.bert_layer_norm(x, gamma, beta, epsilon=epsilon)
        return y, lambda dy: _library.bert_layer_norm_grad(dy, x, gamma, mean, inverse_sigma)

    return normalize(x, gamma, beta)
