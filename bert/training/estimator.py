"""The model_fn and the Estimator: BERT plus the task's head, in towers, trained with the active methods.

Everything here takes its settings as arguments (bert/settings.py): nothing reads flags, so tests and
benchmarks build the same graph in-process.
"""
import functools
import json
import os
from typing import Dict, Optional, Sequence

from bert import counters, modeling, optimization
from bert.compat import cluster_resolver, tf, tpu_estimator
from bert.compression.methods import (ObjectiveInputs, TrainingMethod, combined_before_update, combined_init_fn,
                                      register_progress)
from bert.compression.methods import model_scope as method_scopes
from bert.data import processors
from bert.settings import HardwareSettings, Settings


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
                     resumed_without_counter: bool = False, methods: Sequence[TrainingMethod] = ()):
    """The model_fn: BERT plus the task's head; trains in TRAIN mode, returns outputs in PREDICT mode.

    Training runs in `towers` towers, evaluation and prediction in `inference_towers` (default: as many).
    `resumed_without_counter`: training resumes from a checkpoint written before `batches_read` existed
    (see counters.count_batches_from_global_step). `methods`: the training methods (bert/compression/methods.py)
    that shape the training graph, in registration order; evaluation and prediction build the plain model (a
    pruned run's checkpoint holds zeros where its masks were).
    """

    def model_fn(features, labels, mode, params):
        del labels, params  # the labels travel inside features, so predict mode has them too
        is_training = mode == tf.estimator.ModeKeys.TRAIN
        if is_training and resumed_without_counter:
            counters.count_batches_from_global_step(accumulation_steps)
        # The replicas that each compute a part of the batch, for dropout masks of their own: TPU cores learn
        # theirs from the input (features.tpu_share), tf.distribute replicas (one without a strategy) from
        # their replica context.
        replica = (features["replica"][0] if "replica" in features
                   else tf.distribute.get_replica_context().replica_id_in_sync_group)
        parts = towers if is_training else inference_towers or towers
        with method_scopes(methods if is_training else ()):
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
            # The task's loss is what is reported (train_loss.tsv, `loss`) while the methods' terms are trained,
            # so the curves of distilled, penalised and plain runs, and eval_loss, measure the same thing. Named
            # as google-research/bert's graph names it.
            loss = tf.identity(head.loss, name="total_loss")
            objective = loss
            for method in methods:
                objective = method.objective(objective, ObjectiveInputs(features, head.logits, loss, task))
            train_op, lr = optimization.create_train_op(
                objective, learning_rate, num_train_steps, num_warmup_steps, use_tpu,
                accumulation_steps=accumulation_steps, use_fp16=use_fp16, initial_loss_scale=initial_loss_scale,
                before_update=combined_before_update(methods))
            lr = tf.identity(lr, name="learning_rate")
            for method in methods:
                train_op = method.after_update(train_op, num_train_steps, accumulation_steps)
            register_progress(methods, loss=loss, learning_rate=lr)
            init_fn = combined_init_fn(methods)
            if init_fn:  # the methods that have one are refused on TPU, so scaffold_fn is free here
                scaffold_fn = functools.partial(tf.train.Scaffold, init_fn=init_fn)
            return tpu_estimator.TPUEstimatorSpec(mode=mode, loss=loss, train_op=train_op, scaffold_fn=scaffold_fn)
        if mode == tf.estimator.ModeKeys.PREDICT:
            predictions = {"outputs": head.probabilities, "per_example_loss": head.per_example_loss,
                           "is_real_example": features["is_real_example"]}
            return tpu_estimator.TPUEstimatorSpec(mode=mode, predictions=predictions, scaffold_fn=scaffold_fn)
        raise ValueError("mode %s is not supported: evaluation runs through predict" % mode)

    return model_fn


def is_chief(hardware: HardwareSettings) -> bool:
    """In a multi-worker run (TF_CONFIG), only the chief, or worker 0 when there is none, evaluates and reports."""
    if hardware.distribution_strategy != "multi_worker_mirrored":
        return True
    config = json.loads(os.environ.get("TF_CONFIG") or "{}")
    task = config.get("task", {})
    if "chief" in config.get("cluster", {}):
        return task.get("type") == "chief"
    return task.get("type", "worker") == "worker" and int(task.get("index", 0)) == 0


def build_estimator(model_fn, settings: Settings, predict_batch_size: int,
                    model_dir: Optional[str] = None) -> tf.estimator.Estimator:
    """A TPUEstimator (on CPU and GPU too), or, with --distribution_strategy, an Estimator that trains with it.

    TPUEstimator hands input_fn the batch size of the mode it runs, `predict_batch_size` in PREDICT mode.
    `model_dir` (default --output_dir) is where it restores from and saves to.
    """
    hardware, training = settings.hardware, settings.training
    use_tpu = hardware.use_tpu
    model_dir = model_dir or settings.run.output_dir
    session_config = tf.ConfigProto()
    # One pass of Grappler's graph optimisers, as Estimator's default config has: the second finds
    # nothing more here and costs ~0.5 s at start-up.
    session_config.graph_options.rewrite_options.meta_optimizer_iterations = 1  # RewriterConfig.ONE
    if hardware.use_xla:
        session_config.graph_options.optimizer_options.global_jit_level = tf.OptimizerOptions.ON_1
    if hardware.distribution_strategy != "none":  # TPUEstimator ignores tf.distribute strategies
        strategy = {"mirrored": tf.distribute.MirroredStrategy,
                    "multi_worker_mirrored": tf.distribute.experimental.MultiWorkerMirroredStrategy,
                    }[hardware.distribution_strategy]()
        run_config = tf.estimator.RunConfig(model_dir=model_dir, tf_random_seed=training.seed,
                                            session_config=session_config, train_distribute=strategy,
                                            save_checkpoints_steps=training.save_checkpoints_steps,
                                            # Estimator's loss summary stays: without it a multi-worker
                                            # run saves no final checkpoint (TF 1.15, tests/test_distributed.py)
                                            save_summary_steps=100)

        def estimator_model_fn(features, labels, mode, params):  # Estimator checks these argument names
            return model_fn(features, labels, mode, params).as_estimator_spec()

        return tf.estimator.Estimator(estimator_model_fn, config=run_config)
    resolver = None
    if use_tpu and hardware.tpu_name:
        resolver = cluster_resolver.TPUClusterResolver(hardware.tpu_name, zone=hardware.tpu_zone, project=hardware.gcp_project)
    run_config = tpu_estimator.RunConfig(
        cluster=resolver, master=hardware.master, model_dir=model_dir, tf_random_seed=training.seed,
        session_config=session_config,
        save_checkpoints_steps=training.save_checkpoints_steps,
        # Estimator's own loss summary every 100 steps on TPU, where ProgressHook cannot run; elsewhere the hook
        # writes every update's loss, learning rate and rate (bert/training/tensorboard.py).
        save_summary_steps=100 if use_tpu else None,
        # TPUEstimator's rate logging: every loop of iterations on TPU; off elsewhere, where ProgressHook
        # reports (with iterations_per_loop > 100 it would log, and read the step in a second session
        # run, after every step).
        log_step_count_steps=100 if use_tpu else None,
        tpu_config=tpu_estimator.TPUConfig(iterations_per_loop=hardware.iterations_per_loop,
                                           num_shards=hardware.num_tpu_cores,
                                           per_host_input_for_training=tpu_estimator.InputPipelineConfig.PER_HOST_V2))
    return tpu_estimator.TPUEstimator(use_tpu=use_tpu, model_fn=model_fn, config=run_config,
                                      train_batch_size=training.micro_batch_size,
                                      eval_batch_size=training.eval_batch_size,
                                      predict_batch_size=predict_batch_size)


def dynamic_padding(settings: Settings) -> bool:
    """Batches padded to their own longest example; TPUs need one fixed shape, so never there."""
    return settings.data.dynamic_padding and not settings.hardware.use_tpu


def has_gpu() -> bool:
    return bool(tf.config.experimental.list_physical_devices("GPU"))


def length_multiple(hardware: HardwareSettings) -> int:
    """Batch lengths are rounded up to 8 for GPU kernels and for XLA (it compiles once per shape), not on CPU."""
    return 8 if hardware.use_xla or has_gpu() else 1


def default_towers(use_tpu: bool, training: bool) -> int:
    """On CPU 1 for training and 2 for inference (see pooled_output_in_towers): with the fused kernels, two
    towers evaluate 8% faster than one and train 3% slower (bench/results.md). One model keeps a GPU or
    TPU busy by itself."""
    return 1 if use_tpu or has_gpu() or training else 2


def num_towers(hardware: HardwareSettings, training: bool) -> int:
    return hardware.towers or default_towers(hardware.use_tpu, training)


