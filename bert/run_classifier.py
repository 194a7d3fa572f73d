"""Fine-tunes BERT on one GLUE task: train, evaluate on dev, predict on test.

Flags, defaults and output files follow google-research/bert's run_classifier.py, so existing
commands work unchanged:

  python bert/run_classifier.py --task_name=MRPC --do_train=true --do_eval=true \
    --data_dir=$GLUE_DIR/MRPC --vocab_file=$BERT_DIR/vocab.txt \
    --bert_config_file=$BERT_DIR/bert_config.json --init_checkpoint=$BERT_DIR/bert_model.ckpt \
    --max_seq_length=128 --train_batch_size=32 --learning_rate=2e-5 --num_train_epochs=3.0 \
    --output_dir=/tmp/mrpc_output/

Evaluation runs the model over the dev set once and computes the official metrics with
scikit-learn/scipy; `eval_results.txt` gets sorted `key = value` lines.
"""
import os
import sys

if __package__ in (None, ""):  # run as `python bert/run_classifier.py`: import the package, not its folder
    sys.path[0] = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

import errno  # noqa: E402
import functools  # noqa: E402
import json  # noqa: E402
import re  # noqa: E402
import signal  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from typing import Dict, List, NamedTuple, Optional, Tuple  # noqa: E402

import numpy as np  # noqa: E402
from absl import app, flags  # noqa: E402

from bert import files, kernels, modeling, optimization, run_info, tokenization  # noqa: E402
from bert.compression import compaction, distillation, group_lasso, pruning  # noqa: E402
from bert.data import processors  # noqa: E402
from bert.training import tensorboard  # noqa: E402
from bert.compat import TF_VERSION, cluster_resolver, enable_xla_on_cpu, tf, tpu_estimator  # noqa: E402
from bert.errors import UserError  # noqa: E402
from bert.data.features import (FeatureCache, inference_order, input_fn_builder, label_id,  # noqa: E402
                           training_order)
from bert.files import write_atomically  # noqa: E402
from bert.data.metrics import compute_metrics  # noqa: E402
from bert.training.hooks import CheckpointSaver, Interrupted, ProgressHook, StopSignals, final_training_loss  # noqa: E402

FLAGS = flags.FLAGS

# google-research/bert's flags, same names and defaults.
flags.DEFINE_string("data_dir", None, "The task's GLUE folder (e.g. glue_data/MRPC) with its .tsv files.")
flags.DEFINE_string("bert_config_file", None, "bert_config.json of the pre-trained model.")
flags.DEFINE_string("task_name", None, "GLUE task: " + ", ".join(processors.TASKS) + " (any case).")
flags.DEFINE_string("vocab_file", None, "The WordPiece vocab.txt the model was trained with.")
flags.DEFINE_string("output_dir", None, "Where checkpoints, eval_results.txt and test_results.tsv go.")
flags.DEFINE_string("init_checkpoint", None, "Pre-trained checkpoint, e.g. $BERT_DIR/bert_model.ckpt, or a fine-tuned "
                    "run's (a prefix, or its --output_dir for the latest): then the classifier head loads too.")
flags.DEFINE_bool("do_lower_case", True, "Lower-case the input: true for uncased models.")
flags.DEFINE_integer("max_seq_length", 128, "Tokens per example after WordPiece, [CLS] and [SEP].")
flags.DEFINE_bool("do_train", False, "Fine-tune on train.tsv.")
flags.DEFINE_bool("do_eval", False, "Evaluate on the dev set(s).")
flags.DEFINE_bool("do_predict", False, "Predict the test set(s) into test_results.tsv.")
flags.DEFINE_integer("train_batch_size", 32, "Training batch size.")
flags.DEFINE_integer("eval_batch_size", 8, "Eval batch size.")
flags.DEFINE_integer("predict_batch_size", 8, "Predict batch size.")
flags.DEFINE_float("learning_rate", 5e-5, "Peak learning rate for Adam.")
flags.DEFINE_float("num_train_epochs", 3.0, "Epochs over the training set.")
flags.DEFINE_float("warmup_proportion", 0.1, "Fraction of training steps spent warming the learning rate up.")
flags.DEFINE_integer("save_checkpoints_steps", 1000, "Steps between checkpoints.")
flags.DEFINE_float("progress_seconds", 30.0, "Seconds between the training progress lines in the log (the last "
                   "step always has one).")
flags.DEFINE_integer("iterations_per_loop", 1000, "Steps per TPU host loop.")
flags.DEFINE_bool("use_tpu", False, "Run on a TPU through TPUEstimator.")
flags.DEFINE_string("tpu_name", None, "Cloud TPU name or grpc://ip.address.of.tpu:8470 url.")
flags.DEFINE_string("tpu_zone", None, "GCE zone of the Cloud TPU (detected when unset).")
flags.DEFINE_string("gcp_project", None, "GCP project of the Cloud TPU (detected when unset).")
flags.DEFINE_string("master", None, "TensorFlow master URL.")
flags.DEFINE_integer("num_tpu_cores", 8, "TPU cores to use (with --use_tpu).")
# Ours.
flags.DEFINE_string("feature_cache_dir", None, "Where tokenized examples are kept and reused across runs "
                    "(default: --output_dir); run_all.sh shares one for the whole sweep.")
flags.DEFINE_bool("dynamic_padding", True, "Batch examples of similar length and pad each batch only to its "
                  "longest example (rounded up to 8 on GPU and with XLA); false pads every example to "
                  "max_seq_length like google-research/bert. Always false on TPU.")
flags.DEFINE_integer("gradient_accumulation_steps", 1, "Split each training batch into this many micro-batches "
                     "whose gradients are summed before one update: the same training with less memory.")
flags.DEFINE_enum("distribution_strategy", "none", ["none", "mirrored", "multi_worker_mirrored"],
                  "Train with a tf.distribute strategy: `mirrored` on all GPUs of this machine, `multi_worker_mirrored` "
                  "across the machines that the TF_CONFIG environment variable lists (run the same command on each; "
                  "the chief, or worker 0, evaluates and writes the results). --train_batch_size stays the global batch.")
flags.DEFINE_integer("towers", 0, "Split each batch into this many parts that run side by side on the CPU's cores, "
                     "with shared weights (0: on CPU 1 for training and 2 for evaluation and prediction, as measured "
                     "fastest in bench/results.md; 1 on GPU and TPU). Only dropout masks depend on it.")
flags.DEFINE_bool("use_xla", False, "Compile the graph with XLA (JIT): fuses element-wise ops. It compiles once per "
                  "batch shape, and dynamic padding makes up to max_seq_length / 8 of them per phase.")
flags.DEFINE_bool("fused_kernels", True, "On CPU, compute the GELU, attention's softmax and LayerNorm with this "
                  "repository's fused kernels (bert/kernels.cc, built with g++ on first use); false: TensorFlow's "
                  "own ops. Not with --use_xla (XLA fuses them itself) nor on GPU or TPU.")
flags.DEFINE_bool("use_fp16", False, "Automatic mixed precision with dynamic loss scaling: float16 on GPUs (on CPU "
                  "the graph stays float32). An update whose gradients overflow is skipped, and further batches make "
                  "up for it.")
flags.DEFINE_float("fp16_initial_loss_scale", 2.0 ** 15, "With --use_fp16: the dynamic loss scale to start from "
                   "(TensorFlow's default); it halves at each overflow and doubles after 2000 updates without one.")
flags.register_validator("fp16_initial_loss_scale", lambda scale: scale > 0,
                         "--fp16_initial_loss_scale must be a positive number")
flags.DEFINE_bool("verbose", False, "Show the Python traceback of an error, not just its one-line message.")
flags.DEFINE_integer("seed", 42, "Seeds initialisation, dropout and shuffling: runs repeat exactly on CPU, "
                     "resumed ones too.")
flags.DEFINE_bool("overwrite_output_dir", False, "Start afresh in an --output_dir that holds a model trained with "
                  "other settings (its checkpoints and results are deleted); without it such a dir is refused, and "
                  "one trained with the same settings is resumed.")
flags.DEFINE_float("target_sparsity", 0.0, "Prune this fraction of the prunable weights (the encoder's matrices, see "
                   "bert/compression/pruning.py) while fine-tuning; 0 trains the dense model.")
flags.DEFINE_enum("pruning_granularity", "weight", list(pruning.GRANULARITIES), "What is pruned at once: single "
                  "weights; blocks of --pruning_block; tiles (Guo et al.: whole columns, then rows of tiles of "
                  "--pruning_tile kept columns); or structured: whole attention heads and FFN neurons.")
flags.DEFINE_bool("structured_uniform", False, "With --pruning_granularity=structured: every layer keeps the same "
                  "number of heads and of neurons (a Google-format config for the compact model), whatever "
                  "--pruning_scope.")
flags.DEFINE_string("pruning_block", "16x16", "Rows x columns of a block with --pruning_granularity=block (matrices "
                    "are padded to whole blocks at their edges).")
flags.DEFINE_integer("pruning_tile", 128, "Columns of a tile with --pruning_granularity=tile.")
flags.DEFINE_enum("pruning_schedule", "gradual", ["gradual", "oneshot"], "gradual: Zhu & Gupta's cubic ramp from "
                  "--pruning_begin to --pruning_end; oneshot: masks from the initial weights at step 0, then fixed.")
flags.DEFINE_float("pruning_begin", 0.0, "Fraction of the training steps where the gradual ramp begins.")
flags.DEFINE_float("pruning_end", 0.7, "Fraction of the training steps where the gradual ramp reaches "
                   "--target_sparsity; the rest of the training recovers at that sparsity.")
flags.DEFINE_integer("pruning_frequency", 10, "Steps between mask updates of the gradual schedule.")
flags.DEFINE_enum("pruning_scope", "per_matrix", ["per_matrix", "global"], "per_matrix: every matrix to the target; "
                  "global: one ranking of all prunable weights (or blocks, or tiles).")
flags.DEFINE_enum("pruning_score", "magnitude", list(pruning.SCORES), "How units are ranked: magnitude (w^2), taylor "
                  "(accumulated (gradient * w)^2) or movement (accumulated -gradient * w); a unit's score is the mean "
                  "of its weights' (a structured head's or neuron's, the sum).")
flags.DEFINE_bool("prune_embeddings", False, "Prune the embedding tables, the pooler and the classifier too.")
flags.DEFINE_float("group_lasso", 0.0, "Add the reweighted group lasso penalty lambda * sum_g ||W_g|| / (||W_g|| + "
                   "1e-3) over the prunable matrices' groups (--pruning_granularity's units) to the training loss, "
                   "with this lambda (e.g. 1e-4); 0: none. See bert/compression/group_lasso.py.")
flags.DEFINE_integer("group_lasso_reweight_steps", 100, "Steps between refreshes of the group lasso's reweights.")
flags.DEFINE_string("distill_from", None, "Distil from a fine-tuned teacher of the same task: a finished run's "
                    "--output_dir (its latest checkpoint and recorded bert_config_file; another model than the "
                    "student's may be). See bert/compression/distillation.py.")
flags.DEFINE_float("distill_temperature", 2.0, "With --distill_from: the softmax temperature T of the soft loss "
                   "T^2 * KL(teacher || student) (STS-B's squared error to the teacher's score has none).")
flags.DEFINE_float("distill_alpha", 0.9, "With --distill_from: the soft loss's weight in the trained loss; the task's "
                   "loss against the labels gets 1 - alpha.")
flags.DEFINE_bool("strict_data", False, "Stop at the first bad data row (too few columns, a stray or missing header "
                  "line, an empty sentence) instead of skipping or keeping it and counting it in data_stats.json.")


def read_split(task: processors.TaskSpec, data_dir: str, split: str) -> List[processors.InputExample]:
    """Reads one split and records what was skipped or kept despite a problem in data_stats.json."""
    examples, stats = processors.read_examples_with_stats(task, data_dir, split, strict=FLAGS.strict_data)
    path = os.path.join(FLAGS.output_dir, "data_stats.json")
    recorded = {}
    if files.exists(path):
        with files.open(path) as f:
            recorded = json.load(f)
    recorded["%s %s" % (task.name, split)] = stats.as_dict()
    write_atomically(path, json.dumps(recorded, indent=1, sort_keys=True) + "\n")
    return examples


def pooled_output_in_towers(bert_config: modeling.BertConfig, is_training: bool, features: Dict, towers: int,
                            replica, use_tpu: bool):
    """BERT's pooled output for the batch, computed by `towers` copies of the model on consecutive parts of it.

    The copies share every variable and depend on each other nowhere, so TensorFlow runs them side by
    side: on CPU it spreads each op over the cores, and many ops of one model are too small for that
    (LayerNorm, softmax, the attention's per-head products, element-wise ops), which leaves cores idle
    that the other copy's ops then use (README, Speed, compares one and two towers). The outputs are the
    same as one model's up to float rounding; each tower draws its own dropout masks (stream
    `replica * towers + tower`).
    """
    parts = [features]
    if towers > 1:
        batch = tf.shape(features["input_ids"])[0]
        sizes = tf.stack([(batch + towers - 1 - tower) // towers for tower in range(towers)])  # sums to batch
        split = {name: tf.split(features[name], sizes, num=towers)
                 for name in ("input_ids", "input_mask", "segment_ids")}
        parts = [{name: tensors[tower] for name, tensors in split.items()} for tower in range(towers)]
    outputs = []
    for tower, part in enumerate(parts):
        with tf.variable_scope(tf.get_variable_scope(), reuse=True if tower else None):
            outputs.append(modeling.BertModel(
                bert_config, is_training, part["input_ids"], part["input_mask"], part["segment_ids"],
                use_one_hot_embeddings=use_tpu, stream=replica * towers + tower).pooled_output)
    return outputs[0] if towers == 1 else tf.concat(outputs, axis=0)


def model_fn_builder(bert_config: modeling.BertConfig, task: processors.TaskSpec, init_checkpoint: Optional[str],
                     learning_rate: float, num_train_steps: int, num_warmup_steps: int, use_tpu: bool,
                     accumulation_steps: int = 1, use_fp16: bool = False, towers: int = 1,
                     inference_towers: Optional[int] = None, initial_loss_scale: float = 2.0 ** 15,
                     resumed_without_counter: bool = False,
                     pruning_config: Optional[pruning.PruningConfig] = None,
                     distill: Optional[distillation.Distillation] = None):
    """The model_fn: BERT plus the task's head; trains in TRAIN mode, returns outputs in PREDICT mode.

    Training runs in `towers` towers, evaluation and prediction in `inference_towers` (default: as many).
    `resumed_without_counter`: training resumes from a checkpoint written before `batches_read` existed
    (see optimization.count_batches_from_global_step). `pruning_config`: train with masks (bert/compression/pruning.py);
    evaluation and prediction run the dense model on the checkpoint's weights, zero where the masks were.
    `distill`: train towards a frozen teacher's outputs too (bert/compression/distillation.py; the training graph only).
    """

    def model_fn(features, labels, mode, params):
        del labels, params  # the labels travel inside features, so predict mode has them too
        is_training = mode == tf.estimator.ModeKeys.TRAIN
        if is_training and resumed_without_counter:
            optimization.count_batches_from_global_step(accumulation_steps)
        # The replicas that each compute a part of the batch, for dropout masks of their own: TPU cores learn
        # theirs from the input (features.tpu_share), tf.distribute replicas (one without a strategy) from
        # their replica context.
        replica = (features["replica"][0] if "replica" in features
                   else tf.distribute.get_replica_context().replica_id_in_sync_group)
        parts = towers if is_training else inference_towers or towers
        pruned = is_training and pruning_config is not None and pruning_config.enabled
        with pruning.masking_scope(pruning_config if pruned else None):
            pooled_output = pooled_output_in_towers(bert_config, is_training, features, parts, replica, use_tpu)
            head = modeling.classifier_head(pooled_output, task.num_labels, task.is_regression, is_training,
                                            labels=features["label_ids"],
                                            dropout_rate=bert_config.hidden_dropout_prob,
                                            initializer_range=bert_config.initializer_range, stream=replica)

        def init_weights():
            modeling.init_from_checkpoint(init_checkpoint)
            return tf.train.Scaffold()

        scaffold_fn = None
        if use_tpu:
            scaffold_fn = init_weights  # on TPU the initialisation has to happen inside the scaffold
        else:
            init_weights()
        if is_training:
            # Named for ProgressHook: the task's loss is what is reported (train_loss.tsv, `loss`) while the
            # distillation's mix and the group lasso are trained, so the curves of distilled, penalised and plain
            # runs, and eval_loss, measure the same thing; the soft loss has a progress-line field of its own.
            loss = tf.identity(head.loss, name="total_loss")
            objective = loss
            if distill is not None:  # the teacher is built here, outside the masking scope: it is never pruned
                objective = distill.objective(features, head.logits, loss, task.num_labels, task.is_regression)
            if pruning_config is not None and pruning_config.group_lasso > 0:  # trained under, not reported
                objective += group_lasso.penalty(pruning_config.group_lasso, group_lasso.group_shape(
                    pruning_config.granularity, pruning_config.block, pruning_config.tile),
                    pruning_config.group_lasso_reweight_steps, pruning_config.prune_embeddings,
                    pruning_config.attention_heads)
            train_op, lr = optimization.create_train_op(
                objective, learning_rate, num_train_steps, num_warmup_steps, use_tpu,
                accumulation_steps=accumulation_steps, use_fp16=use_fp16, initial_loss_scale=initial_loss_scale,
                before_update=pruning.score_accumulation(pruning_config) if pruned else None)
            tf.identity(lr, name="learning_rate")
            if pruned:
                train_op = pruning.with_mask_updates(train_op, pruning_config, num_train_steps, accumulation_steps)
                init_fn = pruning.oneshot_init_fn(pruning_config)
                if init_fn:  # pruning is refused on TPU, so scaffold_fn is free here
                    scaffold_fn = functools.partial(tf.train.Scaffold, init_fn=init_fn)
            return tpu_estimator.TPUEstimatorSpec(mode=mode, loss=loss, train_op=train_op, scaffold_fn=scaffold_fn)
        if mode == tf.estimator.ModeKeys.PREDICT:
            predictions = {"outputs": head.probabilities, "per_example_loss": head.per_example_loss,
                           "is_real_example": features["is_real_example"]}
            return tpu_estimator.TPUEstimatorSpec(mode=mode, predictions=predictions, scaffold_fn=scaffold_fn)
        raise ValueError("mode %s is not supported: evaluation runs through predict" % mode)

    return model_fn


def is_chief() -> bool:
    """In a multi-worker run (TF_CONFIG), only the chief, or worker 0 when there is none, evaluates and reports."""
    if FLAGS.distribution_strategy != "multi_worker_mirrored":
        return True
    config = json.loads(os.environ.get("TF_CONFIG") or "{}")
    task = config.get("task", {})
    if "chief" in config.get("cluster", {}):
        return task.get("type") == "chief"
    return task.get("type", "worker") == "worker" and int(task.get("index", 0)) == 0


def micro_batch_size() -> int:
    """What the input pipeline delivers per training step: a micro-batch when accumulating gradients."""
    return FLAGS.train_batch_size // FLAGS.gradient_accumulation_steps


def build_estimator(model_fn, use_tpu: bool, predict_batch_size: int,
                    model_dir: Optional[str] = None) -> tf.estimator.Estimator:
    """A TPUEstimator (on CPU and GPU too), or, with --distribution_strategy, an Estimator that trains with it.

    TPUEstimator hands input_fn the batch size of the mode it runs, `predict_batch_size` in PREDICT mode.
    `model_dir` (default --output_dir) is where it restores from and saves to.
    """
    model_dir = model_dir or FLAGS.output_dir
    session_config = tf.ConfigProto()
    # One pass of Grappler's graph optimisers, as Estimator's default config has: the second finds
    # nothing more here and costs ~0.5 s at start-up.
    session_config.graph_options.rewrite_options.meta_optimizer_iterations = 1  # RewriterConfig.ONE
    if FLAGS.use_xla:
        session_config.graph_options.optimizer_options.global_jit_level = tf.OptimizerOptions.ON_1
    if FLAGS.distribution_strategy != "none":  # TPUEstimator ignores tf.distribute strategies
        strategy = {"mirrored": tf.distribute.MirroredStrategy,
                    "multi_worker_mirrored": tf.distribute.experimental.MultiWorkerMirroredStrategy,
                    }[FLAGS.distribution_strategy]()
        run_config = tf.estimator.RunConfig(model_dir=model_dir, tf_random_seed=FLAGS.seed,
                                            session_config=session_config, train_distribute=strategy,
                                            save_checkpoints_steps=FLAGS.save_checkpoints_steps,
                                            # Estimator's loss summary stays: without it a multi-worker
                                            # run saves no final checkpoint (TF 1.15, tests/test_distributed.py)
                                            save_summary_steps=100)

        def estimator_model_fn(features, labels, mode, params):  # Estimator checks these argument names
            return model_fn(features, labels, mode, params).as_estimator_spec()

        return tf.estimator.Estimator(estimator_model_fn, config=run_config)
    resolver = None
    if use_tpu and FLAGS.tpu_name:
        resolver = cluster_resolver.TPUClusterResolver(FLAGS.tpu_name, zone=FLAGS.tpu_zone, project=FLAGS.gcp_project)
    run_config = tpu_estimator.RunConfig(
        cluster=resolver, master=FLAGS.master, model_dir=model_dir, tf_random_seed=FLAGS.seed,
        session_config=session_config,
        save_checkpoints_steps=FLAGS.save_checkpoints_steps,
        # Estimator's own loss summary every 100 steps on TPU, where ProgressHook cannot run; elsewhere the hook
        # writes every update's loss, learning rate and rate (bert/training/tensorboard.py).
        save_summary_steps=100 if use_tpu else None,
        # TPUEstimator's rate logging: every loop of iterations on TPU; off elsewhere, where ProgressHook
        # reports (with iterations_per_loop > 100 it would log, and read the step in a second session
        # run, after every step).
        log_step_count_steps=100 if use_tpu else None,
        tpu_config=tpu_estimator.TPUConfig(iterations_per_loop=FLAGS.iterations_per_loop,
                                           num_shards=FLAGS.num_tpu_cores,
                                           per_host_input_for_training=tpu_estimator.InputPipelineConfig.PER_HOST_V2))
    return tpu_estimator.TPUEstimator(use_tpu=use_tpu, model_fn=model_fn, config=run_config,
                                      train_batch_size=micro_batch_size(),
                                      eval_batch_size=FLAGS.eval_batch_size,
                                      predict_batch_size=predict_batch_size)


class Predictions(NamedTuple):
    outputs: np.ndarray  # per example, in file order: class probabilities, or the STS-B score
    per_example_loss: np.ndarray
    timed_examples: int  # the examples after the first batch, and the seconds they took: a rate that leaves out
    timed_seconds: float  # graph building, the checkpoint's restore and the first batch's one-off work


def run_predictions(estimator, cache: FeatureCache, task: processors.TaskSpec, data_dir: str, split: str,
                    examples: List[processors.InputExample], batch_size: int, full_batches: bool) -> Predictions:
    """The model's outputs and per-example losses for `examples`, in order.

    With `full_batches` (TPUs, which run one batch shape), the last batch is filled up with padding examples,
    which `is_real_example` then tells apart and which are dropped.
    """
    padding = -len(examples) % batch_size if full_batches else 0
    cached = cache.tfrecord(task, data_dir, split, examples, padding)
    order = inference_order(cached.lengths, dynamic_padding())
    input_fn = input_fn_builder(cached.path, FLAGS.max_seq_length, task.is_regression, len(order), order,
                                batch_size, drop_remainder=full_batches, dynamic_padding=dynamic_padding(),
                                length_multiple=length_multiple())
    rows, first_batch_done = [], None
    for row in estimator.predict(input_fn):  # a batch is computed, then its rows come one by one
        rows.append(row)
        if len(rows) == batch_size:
            first_batch_done = time.time()
    timed = (len(rows) - batch_size, time.time() - first_batch_done) if len(rows) > batch_size else (0, 0.0)
    in_file_order = [None] * len(rows)
    for position, row in zip(order, rows):
        in_file_order[position] = row
    real = [row for row in in_file_order if row is not None and row["is_real_example"]]
    if len(real) != len(examples):
        raise RuntimeError("got %d predictions for %d %s examples" % (len(real), len(examples), split))
    return Predictions(np.array([row["outputs"] for row in real]), np.array([row["per_example_loss"] for row in real]),
                       *timed)


def dynamic_padding() -> bool:
    """Batches padded to their own longest example; TPUs need one fixed shape, so never there."""
    return FLAGS.dynamic_padding and not FLAGS.use_tpu


def has_gpu() -> bool:
    return bool(tf.config.experimental.list_physical_devices("GPU"))


def length_multiple() -> int:
    """Batch lengths are rounded up to 8 for GPU kernels and for XLA (it compiles once per shape), not on CPU."""
    return 8 if FLAGS.use_xla or has_gpu() else 1


def default_towers(use_tpu: bool, training: bool) -> int:
    """On CPU 1 for training and 2 for inference (see pooled_output_in_towers): with the fused kernels, two
    towers evaluate 8% faster than one and train 3% slower (bench/results.md). One model keeps a GPU or
    TPU busy by itself."""
    return 1 if use_tpu or has_gpu() or training else 2


def num_towers(training: bool) -> int:
    return FLAGS.towers or default_towers(FLAGS.use_tpu, training)


def evaluate(estimator, cache: FeatureCache, task: processors.TaskSpec) -> Dict[str, float]:
    """Official metrics on each dev split; MNLI's mismatched split gets an `eval_mismatched_` prefix."""
    results, timed_examples, timed_seconds = {}, 0, 0.0
    for split in task.eval_splits:
        examples = read_split(task, FLAGS.data_dir, split)
        tf.logging.info("***** Eval on %s: %d examples, batch %d *****", split, len(examples), FLAGS.eval_batch_size)
        out = run_predictions(estimator, cache, task, FLAGS.data_dir, split, examples, FLAGS.eval_batch_size,
                              full_batches=FLAGS.use_tpu)
        labels = [label_id(example, task) for example in examples]
        predictions = out.outputs if task.is_regression else out.outputs.argmax(axis=-1)
        metrics = dict(compute_metrics(task, labels, predictions), loss=float(out.per_example_loss.mean()))
        prefix = "eval_" if split == "dev" else "eval_%s_" % split.replace("dev_", "")
        results.update({prefix + name: value for name, value in metrics.items()})
        timed_examples, timed_seconds = timed_examples + out.timed_examples, timed_seconds + out.timed_seconds
    if "dev_mismatched" in task.eval_splits:
        results["eval_matched_accuracy"] = results["eval_accuracy"]
    if timed_seconds > 0:
        results["eval_examples_per_second"] = round(timed_examples / timed_seconds, 2)
    return results


def evaluate_compact(cache: FeatureCache, task: processors.TaskSpec, compact_dir: str) -> Dict[str, float]:
    """evaluate() of a structured run's compact_model/, its keys prefixed `compact_`.

    It runs right after the full-size model's evaluation, in the same process: the masked model evaluates with
    the dense model's shapes, hence at its speed, so eval_examples_per_second against
    compact_eval_examples_per_second is what cutting the pruned heads and neurons out gains, measured like for
    like. Its metrics are the masked model's up to float rounding (bert/compression/compaction.py); a difference is a bug.
    """
    config = modeling.BertConfig.from_json_file(os.path.join(compact_dir, "bert_config.json"))
    model_fn = model_fn_builder(config, task, os.path.join(compact_dir, compaction.CKPT_NAME), 0.0, 0, 0,
                                FLAGS.use_tpu, inference_towers=num_towers(training=False))
    with tempfile.TemporaryDirectory() as empty:  # no checkpoint in its model_dir: the weights are compact_dir's
        estimator = build_estimator(model_fn, FLAGS.use_tpu, FLAGS.eval_batch_size, model_dir=empty)
        return {"compact_" + key: value for key, value in evaluate(estimator, cache, task).items()}


def predict(estimator, cache: FeatureCache, task: processors.TaskSpec) -> None:
    """test_results.tsv: one line per test example, class probabilities (or the STS-B score).

    MNLI also writes test_results_mismatched.tsv and, when the GLUE folder beside --data_dir has the
    diagnostic set, test_results_ax.tsv: the leaderboard scores AX with the MNLI model.
    """
    jobs = [(task, FLAGS.data_dir, split, split.replace("test", "test_results") + ".tsv") for split in task.test_splits]
    if task.name == "MNLI":
        ax = processors.get_task("AX")
        ax_dir = os.path.join(os.path.dirname(os.path.normpath(FLAGS.data_dir)), ax.directory)
        if files.exists(os.path.join(ax_dir, ax.splits["test"].file)):
            jobs.append((ax, ax_dir, "test", "test_results_ax.tsv"))
        else:
            tf.logging.warning("No diagnostic set in %s: AX is not predicted", ax_dir)
    for job_task, data_dir, split, name in jobs:
        examples = read_split(job_task, data_dir, split)
        tf.logging.info("***** Predict %s %s: %d examples *****", job_task.name, split, len(examples))
        outputs = run_predictions(estimator, cache, job_task, data_dir, split, examples, FLAGS.predict_batch_size,
                                  full_batches=FLAGS.use_tpu).outputs
        lines = ["\t".join("%.8f" % p for p in np.atleast_1d(row)) + "\n" for row in outputs]
        write_atomically(os.path.join(FLAGS.output_dir, name), "".join(lines))


def write_eval_results(results: Dict[str, float]) -> str:
    text = "".join("%s = %s\n" % (key, results[key]) for key in sorted(results))
    write_atomically(os.path.join(FLAGS.output_dir, "eval_results.txt"), text)
    return text


def record_sparsity(prune: pruning.PruningConfig) -> Dict[str, float]:
    """The evaluated checkpoint's sparsity and nonzero parameters, for eval_results.txt; sparsity.json gets
    each matrix's."""
    checkpoint = tf.train.latest_checkpoint(FLAGS.output_dir)
    if not checkpoint:
        return {}
    totals, per_matrix = pruning.checkpoint_sparsity(checkpoint, prune.prune_embeddings,
                                                     prune.attention_heads)
    write_atomically(os.path.join(FLAGS.output_dir, "sparsity.json"), json.dumps(per_matrix, indent=1, sort_keys=True)
                     + "\n")
    return totals


def latest_global_step() -> int:
    return training_position()[0]


def checkpoint_reader(prefix: str):
    """A reader of the checkpoint `prefix` (tf.train.load_checkpoint would first ask whether `prefix` is a folder,
    which an in-memory file system answers yes to)."""
    return tf.train.NewCheckpointReader(prefix)


def training_position() -> Tuple[int, int, bool]:
    """(global_step, batches read, whether the checkpoint counts them) of the latest checkpoint; (0, 0, True)
    before the first. A checkpoint written before optimization.batches_read existed does not count them: its
    runs read --gradient_accumulation_steps batches per step (see optimization.count_batches_from_global_step)."""
    checkpoint = tf.train.latest_checkpoint(FLAGS.output_dir)
    if not checkpoint:
        return 0, 0, True
    reader = checkpoint_reader(checkpoint)
    step = int(reader.get_tensor("global_step"))
    if reader.has_tensor(optimization.BATCHES_READ):
        return step, int(reader.get_tensor(optimization.BATCHES_READ)), True
    return step, step * FLAGS.gradient_accumulation_steps, False


def spare_batches(num_train_steps: int) -> int:
    """Batches (of --train_batch_size) that the input holds beyond the planned updates' for updates that --use_fp16
    skips. Dynamic loss scaling skips a few while the scale comes down from its start, then at most one each time
    it doubles (after 2000 updates without overflow): this is many times that."""
    return 32 + num_train_steps // 100 if FLAGS.use_fp16 else 0


def init_checkpoint() -> Optional[str]:
    """--init_checkpoint's prefix: as given, or the latest checkpoint of a run directory."""
    given = FLAGS.init_checkpoint
    if given and files.isdir(given):
        latest = tf.train.latest_checkpoint(given)
        if not latest:
            raise UserError("--init_checkpoint %s is a directory without checkpoints: pass a checkpoint's prefix, or "
                            "the output dir of a run that saved one" % given)
        return latest
    return given


def check_setup(bert_config: modeling.BertConfig, prune: pruning.PruningConfig,
                distill: Optional[distillation.Distillation]) -> None:
    """Refuses flag, model-file and output-dir combinations that would fail late or train the wrong thing."""
    if not (FLAGS.do_train or FLAGS.do_eval or FLAGS.do_predict):
        raise UserError("at least one of --do_train, --do_eval or --do_predict must be true")
    if FLAGS.use_tpu and FLAGS.distribution_strategy != "none":
        raise UserError("--distribution_strategy is for GPUs and CPUs: on TPU, TPUEstimator shards over --num_tpu_cores")
    if FLAGS.use_tpu and FLAGS.gradient_accumulation_steps > 1:
        raise UserError("--gradient_accumulation_steps does not work on TPU: use a smaller --train_batch_size")
    if FLAGS.distribution_strategy != "none" and (FLAGS.gradient_accumulation_steps > 1 or FLAGS.use_fp16):
        raise UserError("--gradient_accumulation_steps and --use_fp16 do not work with --distribution_strategy yet")
    if prune.active and (FLAGS.use_tpu or FLAGS.distribution_strategy != "none"):
        raise UserError("--target_sparsity and --group_lasso do not work on TPU or with --distribution_strategy yet")
    # The teacher's local variables are initialised outside TPUEstimator's scaffold and would need a copy per
    # tf.distribute replica: not done yet.
    if distill and (FLAGS.use_tpu or FLAGS.distribution_strategy != "none"):
        raise UserError("--distill_from does not work on TPU or with --distribution_strategy yet")
    if FLAGS.towers < 0:
        raise UserError("--towers=%d: pass a positive number of towers, or 0 for the default" % FLAGS.towers)
    if FLAGS.gradient_accumulation_steps < 1 or FLAGS.train_batch_size % FLAGS.gradient_accumulation_steps:
        raise UserError("--train_batch_size=%d must be a multiple of --gradient_accumulation_steps=%d"
                        % (FLAGS.train_batch_size, FLAGS.gradient_accumulation_steps))
    if FLAGS.max_seq_length < 3:
        raise UserError("--max_seq_length=%d leaves no room: [CLS] and [SEP] alone take 2 or 3 tokens" % FLAGS.max_seq_length)
    if FLAGS.max_seq_length > bert_config.max_position_embeddings:
        raise UserError("--max_seq_length=%d exceeds the model's max_position_embeddings=%d (%s)"
                        % (FLAGS.max_seq_length, bert_config.max_position_embeddings, FLAGS.bert_config_file))
    with files.open(FLAGS.vocab_file) as f:
        vocab_size = sum(1 for _ in f)
    if vocab_size != bert_config.vocab_size:
        raise UserError("%s has %d tokens but %s says vocab_size=%d: they belong to different models"
                        % (FLAGS.vocab_file, vocab_size, FLAGS.bert_config_file, bert_config.vocab_size))
    checkpoint = init_checkpoint()
    # Google's checkpoints say their casing in their folder name (uncased_L-12_..., cased_L-12_..., multi_cased_...).
    casing = re.search(r"(?:^|/)(?:[a-z]+_)?(uncased|cased)_L-\d+", checkpoint or "")
    if casing and (casing.group(1) == "uncased") != FLAGS.do_lower_case:
        raise UserError("--init_checkpoint %s is %s but --do_lower_case=%s: use --do_lower_case=%s"
                        % (checkpoint, casing.group(1), FLAGS.do_lower_case, casing.group(1) == "uncased"))
    if checkpoint and not files.exists(checkpoint + ".index"):
        raise UserError("--init_checkpoint %s not found (no %s.index): pass the checkpoint's prefix, e.g. "
                        "$BERT_DIR/bert_model.ckpt" % (checkpoint, checkpoint))
    if checkpoint:
        try:  # read every tensor once: a truncated download fails here, not deep inside a training loop
            reader = checkpoint_reader(checkpoint)
            for name in reader.get_variable_to_shape_map():
                reader.get_tensor(name)
        except (tf.errors.OpError, IndexError, ValueError) as error:  # TF 2's reader raises IndexError here
            raise UserError("--init_checkpoint %s cannot be read (%s): is it a complete download?"
                            % (checkpoint, (str(error).strip().splitlines() or ["?"])[0]))


def training_settings(task: processors.TaskSpec, prune: pruning.PruningConfig,
                      distill: Optional[distillation.Distillation]) -> Dict:
    """The flags that shape the trained model, as run_info.json records them (bert/run_info.py)."""
    data_file = os.path.join(FLAGS.data_dir, task.splits["train"].file)
    checkpoint = init_checkpoint()
    return {
        "task_name": task.name, "learning_rate": FLAGS.learning_rate, "train_batch_size": FLAGS.train_batch_size,
        "num_train_epochs": FLAGS.num_train_epochs, "warmup_proportion": FLAGS.warmup_proportion,
        "max_seq_length": FLAGS.max_seq_length, "seed": FLAGS.seed, "do_lower_case": FLAGS.do_lower_case,
        "gradient_accumulation_steps": FLAGS.gradient_accumulation_steps, "dynamic_padding": dynamic_padding(),
        "towers": num_towers(training=True), "use_fp16": FLAGS.use_fp16,
        "init_checkpoint": run_info.file_setting(checkpoint, checkpoint and checkpoint + ".index"),
        "bert_config_file": run_info.file_setting(FLAGS.bert_config_file),
        "vocab_file": run_info.file_setting(FLAGS.vocab_file), "data_dir": run_info.file_setting(FLAGS.data_dir, data_file),
        # only when pruning or distilling, so that the runs recorded before these flags existed still resume
        **(prune.settings() if prune.active else {}),
        **(distill.settings() if distill else {}),
    }


def pruning_config(bert_config: modeling.BertConfig) -> pruning.PruningConfig:
    """The --target_sparsity and --pruning_* flags, checked."""
    config = pruning.PruningConfig(
        target_sparsity=FLAGS.target_sparsity, granularity=FLAGS.pruning_granularity,
        block=pruning.parse_block(FLAGS.pruning_block), schedule=FLAGS.pruning_schedule, begin=FLAGS.pruning_begin,
        end=FLAGS.pruning_end, frequency=FLAGS.pruning_frequency, scope=FLAGS.pruning_scope,
        tile=FLAGS.pruning_tile, score=FLAGS.pruning_score, prune_embeddings=FLAGS.prune_embeddings,
        group_lasso=FLAGS.group_lasso, group_lasso_reweight_steps=FLAGS.group_lasso_reweight_steps,
        structured_uniform=FLAGS.structured_uniform,
        attention_heads=bert_config.num_attention_heads if FLAGS.pruning_granularity == "structured" else 0)
    config.check()
    return config


def distillation_setup(task: processors.TaskSpec) -> Optional[distillation.Distillation]:
    """--distill_from and the --distill_* flags, checked with the teacher's run; None without --distill_from."""
    if not FLAGS.distill_from:
        return None
    return distillation.from_run(FLAGS.distill_from, task.name, FLAGS.vocab_file, FLAGS.do_lower_case,
                                 FLAGS.max_seq_length, FLAGS.distill_temperature, FLAGS.distill_alpha)


def claim_output_dir(task: processors.TaskSpec, prune: pruning.PruningConfig,
                     distill: Optional[distillation.Distillation]) -> None:
    """Makes --output_dir this run's: a model trained there with other settings is refused (or, with
    --overwrite_output_dir, removed); the settings of a training run are recorded in run_info.json."""
    output_dir = FLAGS.output_dir
    if FLAGS.overwrite_output_dir:
        if not FLAGS.do_train:
            raise UserError("--overwrite_output_dir deletes the model in --output_dir: it needs --do_train=true")
        removed = run_info.clear_output_dir(output_dir)
        if removed:
            tf.logging.info("--overwrite_output_dir: removed %s from %s", ", ".join(removed), output_dir)
    info = run_info.read(output_dir)
    has_model = tf.train.latest_checkpoint(output_dir) is not None
    if has_model and info.get("task", task.name) != task.name:
        raise UserError("--output_dir %s holds a %s model, not %s: choose another --output_dir"
                        % (output_dir, info["task"], task.name))
    if FLAGS.do_train:
        settings = training_settings(task, prune, distill)
        if has_model and "settings" not in info:
            tf.logging.warning("%s has a checkpoint but no recorded settings (an older run): resuming it unchecked",
                               output_dir)
        differing = run_info.differences(info["settings"], settings) if has_model and "settings" in info else []
        if differing:
            raise UserError("--output_dir %s holds a model trained with other settings: %s. Run its own command to "
                            "resume it, or choose another --output_dir, or pass --overwrite_output_dir to start "
                            "afresh" % (output_dir, ", ".join(differing)))
        if not has_model:
            info.pop("invocations", None)  # times of a model that is gone (an earlier attempt that saved nothing)
        info["settings"] = settings
    info.update(task=task.name, tensorflow=TF_VERSION)
    files.makedirs(output_dir)
    run_info.write(output_dir, info)


def main(_):
    stop_signals = StopSignals()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, stop_signals)
    tf.logging.info("TensorFlow %s, task %s", TF_VERSION, FLAGS.task_name)
    task = processors.get_task(FLAGS.task_name)
    for flag in ("bert_config_file", "vocab_file"):
        if not files.isfile(FLAGS[flag].value):
            raise UserError("--%s %s not found" % (flag, FLAGS[flag].value))
    bert_config = modeling.BertConfig.from_json_file(FLAGS.bert_config_file)
    prune, distill = pruning_config(bert_config), distillation_setup(task)
    check_setup(bert_config, prune, distill)
    claim_output_dir(task, prune, distill)
    if FLAGS.use_xla:
        enable_xla_on_cpu()
    elif FLAGS.fused_kernels and not FLAGS.use_tpu and not has_gpu():
        tf.logging.info("Fused CPU kernels (GELU, softmax, LayerNorm): %s", "on" if kernels.use() else "off")
    tokenizer = tokenization.FullTokenizer(FLAGS.vocab_file, do_lower_case=FLAGS.do_lower_case)
    cache = FeatureCache(FLAGS.feature_cache_dir or FLAGS.output_dir, tokenizer, FLAGS.vocab_file,
                         FLAGS.do_lower_case, FLAGS.max_seq_length)

    train_examples, num_train_steps, num_warmup_steps = [], 0, 0
    if FLAGS.do_train:
        train_examples = read_split(task, FLAGS.data_dir, "train")
        num_train_steps = int(len(train_examples) / FLAGS.train_batch_size * FLAGS.num_train_epochs)
        num_warmup_steps = int(num_train_steps * FLAGS.warmup_proportion)
        if num_train_steps < 1:
            raise UserError("%d examples x %g epochs make no full batch of %d: nothing to train"
                            % (len(train_examples), FLAGS.num_train_epochs, FLAGS.train_batch_size))
    history_path = os.path.join(FLAGS.output_dir, "train_loss.tsv")
    resumed_step, resumed_batches, counted = training_position()
    model_fn = model_fn_builder(bert_config, task, init_checkpoint(), FLAGS.learning_rate, num_train_steps,
                                num_warmup_steps, FLAGS.use_tpu, accumulation_steps=FLAGS.gradient_accumulation_steps,
                                use_fp16=FLAGS.use_fp16, towers=num_towers(training=True),
                                inference_towers=num_towers(training=False),
                                initial_loss_scale=FLAGS.fp16_initial_loss_scale, resumed_without_counter=not counted,
                                pruning_config=prune, distill=distill)
    estimator = build_estimator(model_fn, FLAGS.use_tpu, FLAGS.predict_batch_size)

    results = {}
    if FLAGS.do_train:
        tf.logging.info("***** Training: %d examples, batch %d, %d steps (%d warmup) *****",
                        len(train_examples), FLAGS.train_batch_size, num_train_steps, num_warmup_steps)
        cached = cache.tfrecord(task, FLAGS.data_dir, "train", train_examples)
        spare = spare_batches(num_train_steps)
        order = training_order(cached.lengths, FLAGS.train_batch_size, num_train_steps, FLAGS.seed,
                               group_by_length=dynamic_padding(), extra_steps=spare)
        # A resumed run continues the same order after the batches it has read (not after global_step's: with
        # gradient accumulation a step takes several, and --use_fp16 skips some).
        invocation = len(run_info.read(FLAGS.output_dir).get("invocations", []))
        trains = is_chief() and resumed_step < num_train_steps  # a finished model is only evaluated again
        progress = ProgressHook(num_train_steps, micro_batch_size(), FLAGS.gradient_accumulation_steps,
                                history_path if is_chief() else None, resumed_from=resumed_batches,
                                peak_learning_rate=FLAGS.learning_rate, every_seconds=FLAGS.progress_seconds,
                                record_time=functools.partial(run_info.record_invocation, FLAGS.output_dir,
                                                              invocation) if trains else None,
                                summary_dir=FLAGS.output_dir if is_chief() else None)
        input_fn = input_fn_builder(cached.path, FLAGS.max_seq_length, task.is_regression, len(train_examples),
                                    order[resumed_batches * micro_batch_size():], micro_batch_size(),
                                    drop_remainder=True, dynamic_padding=dynamic_padding(),
                                    length_multiple=length_multiple())
        start = progress.train_start = time.time()
        # The hook fetches tensors from the host, which a TPU computation does not allow. Passed here, it runs
        # before Estimator's NaN check, so a diverging run is reported with its step.
        hooks = [] if FLAGS.use_tpu else [progress]
        if hooks and FLAGS.distribution_strategy == "none":
            hooks.append(CheckpointSaver(FLAGS.output_dir, save_steps=FLAGS.save_checkpoints_steps))
        stop_signals.training = progress if hooks else None
        if FLAGS.distribution_strategy == "multi_worker_mirrored":
            # Estimator.train refuses TF_CONFIG's workers; train_and_evaluate runs them. Its EvalSpec is
            # never used: TF_CONFIG lists no evaluator, and evaluation happens below, on the chief.
            # (TF 1.15's TrainSpec takes no saving listeners: the losses are written at the end only.)
            tf.estimator.train_and_evaluate(estimator, tf.estimator.TrainSpec(input_fn, num_train_steps, hooks),
                                            tf.estimator.EvalSpec(input_fn))
        else:
            estimator.train(input_fn=input_fn, max_steps=num_train_steps, hooks=hooks,
                            saving_listeners=[progress.listener()] + ([pruning.ZeroPrunedWeights()]
                                                                       if prune.enabled else [])
                            if hooks else None)
        stop_signals.training = None
        if progress.stop_signal is not None:
            raise Interrupted(progress.stop_signal, "at step %d of %d, with a checkpoint: run the same command "
                              "again to resume" % (latest_global_step(), num_train_steps))
        if FLAGS.use_tpu and trains:  # without the hook: this invocation's wall time only
            run_info.record_invocation(FLAGS.output_dir, invocation, {"train_time": round(time.time() - start, 2)})
        invocations = run_info.read(FLAGS.output_dir).get("invocations", [])
        if invocations:  # none in the output dir of a run from before they were recorded
            results.update(run_info.totals(invocations))
        if trains:
            results["train_time_last_invocation"] = invocations[-1]["train_time"]
        if not is_chief():
            tf.logging.info("Training finished on this worker; the chief evaluates and writes the results")
            return
        reached, batches, _ = training_position()
        if reached < num_train_steps:  # the input ran out, every one of its updates tried
            raise UserError("training stopped at step %d of %d: %d updates were skipped because their gradients were "
                            "not finite (--use_fp16's loss scaling), more than the %d spare batches could make up for: "
                            "try a lower --fp16_initial_loss_scale (now %g) or --learning_rate (now %g)"
                            % (reached, num_train_steps, num_train_steps + spare - reached, spare,
                               FLAGS.fp16_initial_loss_scale, FLAGS.learning_rate))
        skipped = batches // FLAGS.gradient_accumulation_steps - reached  # the last batch is in the final checkpoint
        if skipped:
            tf.logging.info("Training done: %d updates were skipped because their gradients were not finite "
                            "(--use_fp16's loss scaling), and made up for with as many more batches", skipped)
        final_loss = final_training_loss(history_path)
        if final_loss is None:
            tf.logging.warning("no training loss was recorded in %s (on TPU it is not): no `loss` to report", history_path)
        else:
            results["loss"] = final_loss
        if prune.granularity == "structured":  # its pruned heads and neurons cut out: compact_model/
            checkpoint = tf.train.latest_checkpoint(FLAGS.output_dir)
            results["parameters"] = compaction.parameter_count(checkpoint)
            results["compact_parameters"] = compaction.compact(
                checkpoint, bert_config,
                os.path.join(FLAGS.output_dir, run_info.COMPACT_MODEL), FLAGS.vocab_file)

    if FLAGS.do_eval:
        stop_signals.phase = "evaluating"
        start = time.time()
        # Evaluation runs in PREDICT mode (per-example outputs feed the official metrics): a TPUEstimator of its
        # own batches it by --eval_batch_size. A plain Estimator (--distribution_strategy) leaves that to input_fn.
        evaluator = (build_estimator(model_fn, FLAGS.use_tpu, FLAGS.eval_batch_size)
                     if FLAGS.distribution_strategy == "none" else estimator)
        results.update(evaluate(evaluator, cache, task))
        results["eval_time"] = round(time.time() - start, 2)
        results["global_step"] = latest_global_step()
        compact_dir = os.path.join(FLAGS.output_dir, run_info.COMPACT_MODEL)
        if prune.granularity == "structured" and files.isdir(compact_dir):
            results.update(evaluate_compact(cache, task, compact_dir))
            headline, rate = "eval_" + task.headline_metric, "eval_examples_per_second"
            tf.logging.info("compact model: %s %.4f (full size %.4f), %s examples/s (full size %s)", headline,
                            results["compact_" + headline], results[headline], results.get("compact_" + rate),
                            results.get(rate))
        if prune.enabled:
            results.update(record_sparsity(prune))
        tf.logging.info("***** Eval results *****\n%s", write_eval_results(results))
        tensorboard.write_eval(FLAGS.output_dir, results["global_step"], results)

    if FLAGS.do_predict:
        stop_signals.phase = "predicting"
        predict(estimator, cache, task)


# What users cause (missing or malformed files, wrong flags, a diverging run): one line, not a traceback.
USER_ERRORS = (UserError, tf.errors.NotFoundError, tf.errors.DataLossError, tf.train.NanLossDuringTrainingError)


def clear_message(error: BaseException) -> Optional[str]:
    """The one line to show for an error the user can fix; None for anything else (a bug keeps its traceback)."""
    lines = [line.strip() for line in str(error).strip().splitlines() if line.strip()] or [type(error).__name__]
    disk_full = [line for line in lines if "No space left on device" in line]
    if disk_full or getattr(error, "errno", None) == errno.ENOSPC:
        return ("the disk is full (%s): free some space and run the same command again, it resumes from the last "
                "checkpoint" % (disk_full or lines)[0])
    if isinstance(error, tf.train.NanLossDuringTrainingError):  # on TPU, where ProgressHook does not run
        return "the training loss became NaN or infinite: try a lower --learning_rate (now %g)" % FLAGS.learning_rate
    return lines[0] if isinstance(error, USER_ERRORS) else None


def main_with_clear_errors(argv):
    try:
        main(argv)
    except Interrupted as stop:
        StopSignals.ignore_from_now_on()
        sys.stderr.write("interrupted: %s\n" % stop)
        sys.exit(128 + stop.signum)
    except Exception as error:  # noqa: B902 - sorted by clear_message: what it cannot explain is re-raised
        message = clear_message(error)
        if FLAGS.verbose or message is None:
            raise
        sys.stderr.write("error: %s (--verbose shows where)\n" % message)
        sys.exit(1)


def run():
    for name in ("data_dir", "task_name", "vocab_file", "bert_config_file", "output_dir"):
        flags.mark_flag_as_required(name)
    app.run(main_with_clear_errors)


if __name__ == "__main__":
    run()
