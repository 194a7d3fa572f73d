"""Throughput benchmark on the embedded checkpoint and real GLUE data (a measurement, not a test).

    .venv/bin/python bench/benchmark.py [--task MRPC] [--steps 30] [--full_mrpc] [--output bench/results.md]

Measures, for fixed padding (google-research/bert's way) and dynamic padding with length-grouped
batches, each with XLA off and on, in run_classifier.py's default number of towers here (and dynamic
padding without XLA in one tower too, to show what towers bring), with the fused CPU kernels where
run_classifier.py uses them (not with XLA; and without them once, to show what they bring), with the
checkpoint's weights (the time of some ops depends on the values: TF 1.15's erf is slower on a trained
model's activations than on those of random weights):
- training: examples/s, real tokens/s and padded tokens/s over `--steps` steps after two warm-up steps,
  with the real model_fn, optimizer and input pipeline of run_classifier.py;
- evaluation: dev examples/s over three whole passes of the dev set after one warm-up pass (fixed padding
  at Google's eval batch of 8, dynamic at 32; batches sorted by length differ in cost, so only whole
  passes give the rate of an evaluation);
- achieved training FLOP/s against this machine's fp32 matrix-multiply peak (a 4096^3 matmul), counting
  all computed (padded) tokens, and counting only the real ones: the work that was worth doing;
- with XLA, the rates once every batch shape has compiled, and the seconds the compilations took (XLA
  compiles once per batch shape; a run pays that once per shape and process).
The settings are measured in turns (a chunk of steps or one dev pass each, then the next setting): this
VM's speed drifts by ~10% within an hour, which would otherwise decide comparisons between rows.
FLOP count of a training step = 3 x forward (backward costs twice the forward), counting the matmuls
this code runs: per example of padded length S, (L - 1) full layers of S * (2 (4 H A + 2 H I) + 4 S A)
(dense layers; attention scores and context), and a last layer that computes keys and values for all
S tokens but the rest for [CLS] only: S * 4 H A + 2 (2 H A + 2 H I) + 4 S A, where A = the layer's heads x
head size (H in Google's shape) and I its feed-forward width (a compact model's differ by layer).
Embeddings, LayerNorm, softmax, pooler and head are left out (< 2%).
`--full_mrpc` also times a complete MRPC fine-tune (3 epochs, batch 32, lr 2e-5) end to end; `--google`
runs the same fine-tune with google-research/bert's own run_classifier.py (bert-tensorflow 1.0.4 from
PyPI, TF 1.15 only, about 12 minutes here) and compares wall time, training time and the time of the
evaluation phase on the dev set, and the two evaluations' rates on MRPC dev and on CoLA dev (short
sentences). Google's script runs in the environment this script was started with, as
its users run it: not with the settings bert.compat adds to this process (TF_CPU_ALLOCATOR_USE_BFC, which
speeds google-research/bert's script up too).
"""
import argparse
import json
import os
import platform
import re
import subprocess
import sys
import time
import zipfile

LAUNCH_ENV = dict(os.environ)  # before bert.compat sets its defaults in os.environ

from bert import kernels, modeling, tokenization  # noqa: E402
from bert.data import features, processors  # noqa: E402
from bert.compat import TF_VERSION, enable_xla_on_cpu, tf  # noqa: E402
from bert.sweeps.runs import read_eval_results  # noqa: E402
from bert.training.estimator import default_towers, model_fn_builder  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BERT_DIR = os.path.join(REPO, "uncased_L-6_H-384_A-12")
GLUE_DIR = os.environ.get("GLUE_DIR", os.path.join(REPO, "..", "shared", "glue_data"))


def feature_cache() -> features.FeatureCache:
    """The bench scripts' tokenized features: the embedded vocab, lower-cased, 128 tokens."""
    vocab = os.path.join(BERT_DIR, "vocab.txt")
    return features.FeatureCache(os.path.join(REPO, ".cache", "bench_features"), tokenization.FullTokenizer(vocab),
                                 vocab, True, 128)


def cached_split(cache: features.FeatureCache, task, glue_dir: str, split: str):
    data_dir = os.path.join(glue_dir, task.directory)
    return cache.tfrecord(task, data_dir, split, processors.read_examples(task, data_dir, split))


def machine() -> str:
    return "%s, %d cores, TensorFlow %s, Python %s" % (platform.processor() or platform.machine(), os.cpu_count(),
                                                      TF_VERSION, platform.python_version())


def matmul_peak(n: int = 4096, repeats: int = 5) -> float:
    with tf.Graph().as_default():
        a = tf.Variable(tf.random_normal([n, n]))
        product = tf.reduce_sum(tf.matmul(a, a))
        with tf.Session() as session:
            session.run(tf.global_variables_initializer())
            session.run(product)
            start = time.time()
            for _ in range(repeats):
                session.run(product)
            return 2.0 * n ** 3 * repeats / (time.time() - start)


def train_flops_per_example(config: modeling.BertConfig, padded_length: float) -> float:
    """Each layer at its own width: A = its heads x head size (H in Google's shape), I = its feed-forward width."""
    h, s, last = config.hidden_size, padded_length, config.num_hidden_layers - 1
    forward = 0.0
    for layer in range(config.num_hidden_layers):
        a, i = config.layer_heads(layer) * config.head_size, config.layer_intermediate_size(layer)
        if layer < last:
            forward += s * (2 * (4 * h * a + 2 * h * i) + 4 * s * a)
        else:
            forward += s * 4 * h * a + 2 * (2 * h * a + 2 * h * i) + 4 * s * a
    return 3.0 * forward


def session_config(use_xla: bool):
    config = tf.ConfigProto()
    if use_xla:
        config.graph_options.optimizer_options.global_jit_level = tf.OptimizerOptions.ON_1
    return config


def traced_ops(session, fetches) -> list:
    """Runs `fetches` once with TensorFlow's step stats: (op type, microseconds) of every op that ran."""
    metadata = tf.RunMetadata()
    session.run(fetches, options=tf.RunOptions(trace_level=tf.RunOptions.FULL_TRACE), run_metadata=metadata)
    # timeline_label: "name = OpType(inputs)"; empty for a few bookkeeping nodes
    return [(node.timeline_label.split(" = ")[-1].split("(")[0] if node.timeline_label else "(other)",
             node.op_end_rel_micros - node.op_start_rel_micros)
            for device in metadata.step_stats.dev_stats for node in device.node_stats]


def check_xla(session, fetches, use_xla: bool):
    """Runs `fetches` once, traced, and fails unless XLA ran exactly when asked to.

    On CPU, global_jit_level alone compiles nothing (see bert.compat.enable_xla_on_cpu): this bench's XLA rows
    measured plain TensorFlow until this check.
    """
    compiled = any(op_type == "_XlaRun" for op_type, _ in traced_ops(session, fetches))
    if compiled != use_xla:
        raise RuntimeError("XLA %s, but this session %s" % ("asked for" if use_xla else "not asked for",
                                                           "ran XLA clusters" if compiled else "compiled nothing"))


class Measurement:
    """One setting's training or evaluation loop, in a graph and session of its own, timed in chunks.

    Training: `steps` steps after two warm-up steps (graph optimisation), in chunks of `steps / rounds`.
    Evaluation: `rounds` whole passes of the set after one warm-up pass, which also meets every batch shape
    once; a chunk is one pass. `interleave` runs the chunks of all settings in turns. XLA compiles each batch
    shape when it first runs (see bert.compat.enable_xla_on_cpu), so with XLA, training first goes once
    through every batch it will time; `compile_seconds` is what the warm-up took beyond the measured rate.
    """

    def __init__(self, task, cached, config, max_seq_length, batch_size, steps, rounds, dynamic, use_xla, towers,
                 fused_kernels, training):
        lengths = cached.lengths
        repeats = 2 if training and use_xla else 1  # training's input ends; evaluation's repeats for ever
        if training:
            order = features.training_order(lengths, batch_size, steps + 2, seed=1, group_by_length=dynamic)
            warm_up, self.chunk = (repeats - 1) * (steps + 2) + 2, max(1, steps // rounds)
        else:
            order = features.inference_order(lengths, dynamic)
            warm_up = self.chunk = -(-len(order) // batch_size)
        input_fn = features.input_fn_builder(cached.path, max_seq_length, task.is_regression, len(lengths), order,
                                             batch_size, drop_remainder=training, dynamic_padding=dynamic,
                                             length_multiple=8 if use_xla else 1)  # as run_classifier.py on CPU
        mode = tf.estimator.ModeKeys.TRAIN if training else tf.estimator.ModeKeys.PREDICT
        self.fused_kernels = kernels.use(fused_kernels)  # read while the graph is built
        with tf.Graph().as_default() as graph:
            tf.set_random_seed(1)
            iterator = tf.data.make_initializable_iterator(input_fn({}).repeat(repeats if training else None))
            batch = iterator.get_next()
            spec = model_fn_builder(config, task, os.path.join(BERT_DIR, "bert_model.ckpt"), 2e-5,
                                    (steps + 2) * repeats, 0, use_tpu=False, towers=towers)(
                batch, None, mode, {})
            self.fetches = [spec.train_op if training else spec.predictions["outputs"], batch["input_ids"],
                            batch["input_mask"]]
            self.session = tf.Session(graph=graph, config=session_config(use_xla))
            self.session.run([tf.global_variables_initializer(), iterator.initializer])
        # the same fetches as the timed runs: the session prepares (and XLA compiles) per set of fetches
        start = time.time()
        for _ in range(warm_up - 1):
            self.session.run(self.fetches)
        check_xla(self.session, self.fetches, use_xla)  # the last warm-up run
        self.warm_up_runs, self.warm_up_seconds = warm_up, time.time() - start
        self.runs = self.examples = self.real = self.padded = 0
        self.seconds = 0.0

    def run_chunk(self):
        start = time.time()
        for _ in range(self.chunk):
            _, ids, mask = self.session.run(self.fetches)
            self.examples += ids.shape[0]
            self.real += int(mask.sum())
            self.padded += ids.size
        self.runs += self.chunk
        self.seconds += time.time() - start

    @property
    def compile_seconds(self) -> float:
        return self.warm_up_seconds - self.warm_up_runs * self.seconds / self.runs

    def rates(self):
        """(examples/s, real tokens/s, padded tokens/s, mean padded length)."""
        self.session.close()
        return (self.examples / self.seconds, self.real / self.seconds, self.padded / self.seconds,
                self.padded / max(self.examples, 1))


def interleave(measurements, rounds):
    """Chunks of every measurement in turns (reversed every other round): this VM's speed drifts by ~10%
    within an hour, and measured one after the other, settings would be compared at different speeds."""
    for round_ in range(rounds):
        for measurement in measurements[::-1] if round_ % 2 else measurements:
            measurement.run_chunk()
    return measurements


def task_flags(glue_dir: str, task_name: str, output_dir: str, bert_config_file: str) -> list:
    """What every run of either implementation gets: the task's data, the embedded checkpoint, 128 tokens."""
    return ["--task_name=" + task_name, "--data_dir=" + os.path.join(glue_dir, task_name),
            "--vocab_file=" + os.path.join(BERT_DIR, "vocab.txt"), "--bert_config_file=" + bert_config_file,
            "--init_checkpoint=" + os.path.join(BERT_DIR, "bert_model.ckpt"), "--max_seq_length=128",
            "--output_dir=" + output_dir]


def mrpc_flags(glue_dir: str, output_dir: str, bert_config_file: str) -> list:
    """The fine-tune both implementations run: MRPC, 3 epochs, batch 32, 128 tokens, lr 2e-5."""
    return task_flags(glue_dir, "MRPC", output_dir, bert_config_file) + [
        "--do_train=true", "--do_eval=true", "--train_batch_size=32", "--learning_rate=2e-5", "--num_train_epochs=3"]


def full_mrpc(glue_dir: str, output_dir: str) -> dict:
    """Our fine-tune (eval at batch 32): wall seconds and eval_results.txt."""
    start = time.time()
    subprocess.check_call([sys.executable, "-m", "bert.run_classifier", "--eval_batch_size=32"] +
                          mrpc_flags(glue_dir, output_dir, os.path.join(BERT_DIR, "bert_config.json")),
                          cwd=REPO, env=LAUNCH_ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    results = read_eval_results(os.path.join(output_dir, "eval_results.txt"))
    return dict(results, wall=time.time() - start)


def run_google(work_dir: str, flags_for_config) -> str:
    """Runs google-research/bert's run_classifier.py through bench/google_reference.py; returns its timing lines.

    `flags_for_config(bert_config_file)` gives its flags. Its modeling.py knows only the tanh GELU ("gelu"), and
    the embedded checkpoint asks for the erf one, so it gets a copy of the config saying "gelu".
    """
    wheel_dir = os.path.join(REPO, ".cache", "bench_google")
    unpacked = os.path.join(wheel_dir, "bert_tensorflow-1.0.4")
    if not os.path.isdir(unpacked):
        subprocess.check_call([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "-d", wheel_dir,
                               "bert-tensorflow==1.0.4"])
        with zipfile.ZipFile(os.path.join(wheel_dir, "bert_tensorflow-1.0.4-py2.py3-none-any.whl")) as wheel:
            wheel.extractall(unpacked)
    with open(os.path.join(BERT_DIR, "bert_config.json")) as f:
        config = json.load(f)
    config["hidden_act"] = "gelu"
    os.makedirs(work_dir, exist_ok=True)
    config_file = os.path.join(work_dir, "bert_config_tanh_gelu.json")
    with open(config_file, "w") as f:
        json.dump(config, f)
    # Google's package is also named `bert`: PYTHONPATH puts it before ours (installed editable, bert/ in REPO).
    return subprocess.run([sys.executable, os.path.join(REPO, "bench", "google_reference.py")] +
                          flags_for_config(config_file), cwd=work_dir, env=dict(LAUNCH_ENV, PYTHONPATH=unpacked),
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, universal_newlines=True, check=True).stderr


def google_eval_rate(log: str) -> float:
    return float(re.search(r"^google_eval_examples_per_second ([\d.]+)$", log, re.M).group(1))


def google_mrpc(glue_dir: str, work_dir: str) -> dict:
    """google-research/bert's fine-tune (its eval batch of 8): wall, train and eval seconds, accuracy."""
    start = time.time()
    log = run_google(work_dir, lambda config_file: mrpc_flags(glue_dir, os.path.join(work_dir, "output"), config_file))
    seconds = dict(re.findall(r"^google_(train|eval)_seconds ([\d.]+)$", log, re.M))
    results = read_eval_results(os.path.join(work_dir, "output", "eval_results.txt"))
    return dict(results, wall=time.time() - start, train_time=float(seconds["train"]),
                eval_time=float(seconds["eval"]), eval_steady=google_eval_rate(log))


def google_eval_only(glue_dir: str, work_dir: str, task_name: str) -> float:
    """The steady eval rate of google-research/bert's script on a dev set (batch 8, the pre-trained weights)."""
    return google_eval_rate(run_google(work_dir, lambda config_file: task_flags(
        glue_dir, task_name, os.path.join(work_dir, "output"), config_file) + ["--do_eval=true"]))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--task", default="MRPC")
    parser.add_argument("--glue_dir", default=GLUE_DIR)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--full_mrpc", action="store_true", help="time a complete MRPC fine-tune")
    parser.add_argument("--google", action="store_true", help="and google-research/bert's (implies --full_mrpc)")
    parser.add_argument("--output", default=os.path.join(REPO, "bench", "results.md"))
    args = parser.parse_args()
    if args.steps < 6:
        parser.error("--steps must be at least 6: training is timed in 6 chunks of steps")
    tf.logging.set_verbosity(tf.logging.WARN)  # not the per-variable listing of every graph built here
    enable_xla_on_cpu()  # as run_classifier.py does for --use_xla; only the XLA rows' sessions ask for XLA

    task = processors.get_task(args.task)
    config = modeling.BertConfig.from_json_file(os.path.join(BERT_DIR, "bert_config.json"))
    cache = feature_cache()
    train, dev = (cached_split(cache, task, args.glue_dir, split) for split in ("train", "dev"))

    peak = matmul_peak()
    rows, eval_rates = [], {}
    # run_classifier.py's default for evaluation here; its training default (1 tower) has a row of its own
    towers = default_towers(use_tpu=False, training=False)
    # every padding x XLA setting with the default towers and fused kernels where run_classifier.py uses them
    # (without XLA), dynamic padding without XLA in one tower, and without the kernels (if they build here)
    settings = [(dynamic, use_xla, towers, not use_xla) for dynamic in (False, True) for use_xla in (False, True)]
    settings += [(True, False, 1, True)] if towers != 1 else []
    settings += [(True, False, towers, False)] if kernels.use() else []
    as_run = (True, False, towers, True)  # run_classifier.py's evaluation settings here
    training = interleave([Measurement(task, train, config, 128, 32, args.steps, 6, *setting, training=True)
                           for setting in settings], 6)
    evaluation = interleave([Measurement(task, dev, config, 128, 32 if setting[0] else 8, args.steps, 3, *setting,
                                         training=False) for setting in settings], 3)
    for setting, train_run, eval_run in zip(settings, training, evaluation):
        dynamic, use_xla, setting_towers, _ = setting
        ex, real, padded, length = train_run.rates()
        eval_rates[setting] = eval_run.rates()[0]
        flops = ex * train_flops_per_example(config, length)
        useful = flops * real / padded
        rows.append("| %s | %s | %d | %s | %.1f | %.0f | %.0f | %.1f (%.0f%%) | %.1f (%.0f%%) | %.1f | %s |" % (
            "dynamic, by length" if dynamic else "fixed 128", "on" if use_xla else "off", setting_towers,
            "on" if train_run.fused_kernels else "off", ex, real,
            padded, flops / 1e9, 100 * flops / peak, useful / 1e9, 100 * useful / peak, eval_rates[setting],
            "%.0f / %.0f" % (train_run.compile_seconds, eval_run.compile_seconds) if use_xla else "-"))
        print(rows[-1], flush=True)

    lines = ["# Benchmark: %s, embedded checkpoint (L=%d, H=%d)" % (task.name, config.num_hidden_layers,
                                                                     config.hidden_size), "",
             "Machine: %s. fp32 matmul peak: %.0f GFLOP/s." % (machine(), peak / 1e9), "",
             "| padding | XLA | towers | fused kernels | train examples/s | real tokens/s | padded tokens/s "
             "| train GFLOP/s (of peak) | on real tokens (of peak) | eval examples/s "
             "| XLA compile s (training / eval) |",
             "|---|---|---|---|---|---|---|---|---|---|---|"] + rows
    runs = []
    if args.full_mrpc or args.google:
        runs.append(("this code (eval batch 32)", full_mrpc(args.glue_dir, os.path.join(
            REPO, ".cache", "bench_mrpc_%d" % os.getpid()))))
    if args.google:
        runs.append(("google-research/bert (eval batch 8)", google_mrpc(args.glue_dir, os.path.join(
            REPO, ".cache", "bench_google_mrpc_%d" % os.getpid()))))
    if runs:
        num_dev = len(processors.read_examples(task, os.path.join(args.glue_dir, "MRPC"), "dev"))
        lines += ["", "Full MRPC fine-tune (3 epochs, batch 32, 128 tokens, lr 2e-5), each implementation as its "
                  "users run it (eval batch: run_all.sh's 32 here, the default 8 there); the eval phase is the "
                  "whole evaluation of the %d dev examples (graph, checkpoint restore, every batch, metrics):"
                  % num_dev, "",
                  "| implementation | wall s | training s | eval phase s | eval examples/s | dev accuracy | dev F1 |",
                  "|---|---|---|---|---|---|---|"]
        for name, run in runs:
            lines.append("| %s | %.0f | %.1f | %.2f | %.1f | %.1f | %s |" % (
                name, run["wall"], run["train_time"], run["eval_time"], num_dev / run["eval_time"],
                100 * run["eval_accuracy"], "%.1f" % (100 * run["eval_f1"]) if "eval_f1" in run else "-"))
        if len(runs) == 2:
            ours, google = runs[0][1], runs[1][1]
            lines += ["", "Ratios, google-research/bert over this code: wall %.2fx, training %.2fx, eval phase %.2fx."
                      % (google["wall"] / ours["wall"], google["train_time"] / ours["train_time"],
                         google["eval_time"] / ours["eval_time"]),
                      "Eval rate: this code %.1f examples/s (dynamic padding, batch 32, default towers and kernels, "
                      "whole passes of the dev set, from the table), google-research/bert's script %.1f (batch 8, "
                      "every batch of the same shape: its batches after the first two): %.2fx." % (
                          eval_rates[as_run], google["eval_steady"],
                          eval_rates[as_run] / google["eval_steady"])]
    if args.google:  # the eval comparison on a dev set of short texts too: CoLA's real tokens are 9% of 128
        cola = processors.get_task("CoLA")
        cola_dev = cached_split(cache, cola, args.glue_dir, "dev")
        ours = interleave([Measurement(cola, cola_dev, config, 128, 32, args.steps, 3, *as_run,
                                       training=False)], 3)[0].rates()[0]
        google = google_eval_only(args.glue_dir, os.path.join(REPO, ".cache", "bench_google_cola_%d" % os.getpid()),
                                  "CoLA")
        lines += ["", "Eval rate on CoLA dev (%d sentences): this code %.1f examples/s (measured as in the table), "
                  "google-research/bert's script %.1f (batch 8, `--do_eval` alone with the pre-trained weights, its "
                  "batches after the first two): %.2fx." % (len(cola_dev.lengths), ours, google, ours / google)]
    lines += ["", "Command: `%s`" % " ".join(["python bench/benchmark.py"] + sys.argv[1:])]
    with open(args.output, "w") as f:
        f.write("\n".join(lines) + "\n")
    print("wrote %s" % args.output)


if __name__ == "__main__":
    main()
