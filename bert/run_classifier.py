"""Fine-tunes BERT on one GLUE task: train, evaluate on dev, predict on test.

Flags, defaults and output files follow google-research/bert's run_classifier.py, so existing
commands work unchanged:

  python bert/run_classifier.py --task_name=MRPC --do_train=true --do_eval=true \
    --data_dir=$GLUE_DIR/MRPC --vocab_file=$BERT_DIR/vocab.txt \
    --bert_config_file=$BERT_DIR/bert_config.json --init_checkpoint=$BERT_DIR/bert_model.ckpt \
    --max_seq_length=128 --train_batch_size=32 --learning_rate=2e-5 --num_train_epochs=3.0 \
    --output_dir=/tmp/mrpc_output/

This module is the command line's wiring only: the flags and the Settings they make are bert/flags.py's, the
checks bert/training/checks.py's, the model_fn and Estimator bert/training/estimator.py's, evaluation and
prediction bert/training/evaluation.py's, the training methods (pruning, distillation, ...)
bert/compression/'s. Evaluation runs the model over the dev set once and computes the official metrics with
scikit-learn/scipy; `eval_results.txt` gets sorted `key = value` lines.
"""
import errno
import functools
import os
import signal
import sys
import time
from typing import Dict, List, Optional, Sequence

from absl import app

from bert import flags, kernels, modeling, run_info, tokenization
from bert.compat import TF_VERSION, enable_xla_on_cpu, tf
from bert.compression import registry
from bert.compression.methods import MethodContext, TrainingMethod
from bert.data import processors
from bert.data.features import FeatureCache, input_fn_builder, training_order
from bert.errors import UserError
from bert.settings import Settings
from bert.training import checks, evaluation, tensorboard
from bert.training.estimator import (build_estimator, dynamic_padding, has_gpu, is_chief, length_multiple,
                                     model_fn_builder, num_towers)
from bert.training.hooks import CheckpointSaver, Interrupted, ProgressHook, StopSignals, final_training_loss


def train(settings: Settings, task: processors.TaskSpec, estimator, cache: FeatureCache,
          train_examples: List[processors.InputExample], num_train_steps: int, num_warmup_steps: int,
          methods: Sequence[TrainingMethod], stop_signals: StopSignals) -> Optional[Dict]:
    """Trains (or resumes) the model in --output_dir; the training results, or None on a worker that is not the
    chief of a multi-worker run (the chief evaluates)."""
    run, training, hardware = settings.run, settings.training, settings.hardware
    output_dir, chief = run.output_dir, is_chief(hardware)
    history_path = os.path.join(output_dir, "train_loss.tsv")
    resumed_step, resumed_batches, _ = checks.training_position(output_dir, training.gradient_accumulation_steps)
    tf.logging.info("***** Training: %d examples, batch %d, %d steps (%d warmup) *****",
                    len(train_examples), training.train_batch_size, num_train_steps, num_warmup_steps)
    cached = cache.tfrecord(task, run.data_dir, "train", train_examples)
    spare = checks.spare_batches(num_train_steps, hardware.use_fp16)
    order = training_order(cached.lengths, training.train_batch_size, num_train_steps, training.seed,
                           group_by_length=dynamic_padding(settings), extra_steps=spare)
    # A resumed run continues the same order after the batches it has read (not after global_step's: with
    # gradient accumulation a step takes several, and --use_fp16 skips some).
    invocation = len(run_info.read(output_dir).get("invocations", []))
    trains = chief and resumed_step < num_train_steps  # a finished model is only evaluated again
    micro_batch = training.micro_batch_size
    progress = ProgressHook(num_train_steps, micro_batch, training.gradient_accumulation_steps,
                            history_path if chief else None, resumed_from=resumed_batches,
                            peak_learning_rate=training.learning_rate, every_seconds=training.progress_seconds,
                            record_time=functools.partial(run_info.record_invocation, output_dir,
                                                          invocation) if trains else None,
                            summary_dir=output_dir if chief else None,
                            fields=[field for method in methods for field in method.progress_fields])
    input_fn = input_fn_builder(cached.path, settings.data.max_seq_length, task.is_regression, len(train_examples),
                                order[resumed_batches * micro_batch:], micro_batch, drop_remainder=True,
                                dynamic_padding=dynamic_padding(settings), length_multiple=length_multiple(hardware))
    start = progress.train_start = time.time()
    # The hook fetches tensors from the host, which a TPU computation does not allow. Passed here, it runs
    # before Estimator's NaN check, so a diverging run is reported with its step.
    hooks = [] if hardware.use_tpu else [progress]
    if hooks and hardware.distribution_strategy == "none":
        hooks.append(CheckpointSaver(output_dir, save_steps=training.save_checkpoints_steps))
    stop_signals.training = progress if hooks else None
    if hardware.distribution_strategy == "multi_worker_mirrored":
        # Estimator.train refuses TF_CONFIG's workers; train_and_evaluate runs them. Its EvalSpec is
        # never used: TF_CONFIG lists no evaluator, and evaluation happens below, on the chief.
        # (TF 1.15's TrainSpec takes no saving listeners: the losses are written at the end only.)
        tf.estimator.train_and_evaluate(estimator, tf.estimator.TrainSpec(input_fn, num_train_steps, hooks),
                                        tf.estimator.EvalSpec(input_fn))
    else:
        listeners = [progress.listener()] + [listener for method in methods for listener in method.saving_listeners()]
        estimator.train(input_fn=input_fn, max_steps=num_train_steps, hooks=hooks,
                        saving_listeners=listeners if hooks else None)
    stop_signals.training = None
    if progress.stop_signal is not None:
        raise Interrupted(progress.stop_signal, "at step %d of %d, with a checkpoint: run the same command "
                          "again to resume" % (checks.training_position(
                              output_dir, training.gradient_accumulation_steps)[0], num_train_steps))
    if hardware.use_tpu and trains:  # without the hook: this invocation's wall time only
        run_info.record_invocation(output_dir, invocation, {"train_time": round(time.time() - start, 2)})
    results = {}
    invocations = run_info.read(output_dir).get("invocations", [])
    if invocations:  # none in the output dir of a run from before they were recorded
        results.update(run_info.totals(invocations))
    if trains:
        results["train_time_last_invocation"] = invocations[-1]["train_time"]
    if not chief:
        tf.logging.info("Training finished on this worker; the chief evaluates and writes the results")
        return None
    reached, batches, _ = checks.training_position(output_dir, training.gradient_accumulation_steps)
    if reached < num_train_steps:  # the input ran out, every one of its updates tried
        raise UserError("training stopped at step %d of %d: %d updates were skipped because their gradients were "
                        "not finite (--use_fp16's loss scaling), more than the %d spare batches could make up for: "
                        "try a lower --fp16_initial_loss_scale (now %g) or --learning_rate (now %g)"
                        % (reached, num_train_steps, num_train_steps + spare - reached, spare,
                           hardware.fp16_initial_loss_scale, training.learning_rate))
    skipped = batches // training.gradient_accumulation_steps - reached  # the last batch is in the final checkpoint
    if skipped:
        tf.logging.info("Training done: %d updates were skipped because their gradients were not finite "
                        "(--use_fp16's loss scaling), and made up for with as many more batches", skipped)
    final_loss = final_training_loss(history_path)
    if final_loss is None:
        tf.logging.warning("no training loss was recorded in %s (on TPU it is not): no `loss` to report", history_path)
    else:
        results["loss"] = final_loss
    checkpoint = tf.train.latest_checkpoint(output_dir)
    for method in methods:
        results.update(method.after_training(checkpoint, output_dir))
    return results


def main(_):
    stop_signals = StopSignals()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, stop_signals)
    settings = flags.read_settings()
    run, training, hardware = settings.run, settings.training, settings.hardware
    tf.logging.info("TensorFlow %s, task %s", TF_VERSION, run.task_name)
    task = processors.get_task(run.task_name)
    checks.check_files(settings, task)
    bert_config = modeling.BertConfig.from_json_file(run.bert_config_file)
    methods = registry.build(MethodContext(task, bert_config, settings))
    checks.check_setup(settings, bert_config, methods)
    checks.claim_output_dir(settings, task, methods, flags.defaults())
    if hardware.use_xla:
        enable_xla_on_cpu()
    elif hardware.fused_kernels and not hardware.use_tpu and not has_gpu():
        tf.logging.info("Fused CPU kernels (GELU, softmax, LayerNorm): %s", "on" if kernels.use() else "off")
    tokenizer = tokenization.FullTokenizer(run.vocab_file, do_lower_case=run.do_lower_case)
    cache = FeatureCache(settings.data.feature_cache_dir or run.output_dir, tokenizer, run.vocab_file,
                         run.do_lower_case, settings.data.max_seq_length)

    train_examples, num_train_steps, num_warmup_steps = [], 0, 0
    if run.do_train:
        train_examples = evaluation.read_split(task, run.data_dir, "train", settings)
        num_train_steps = int(len(train_examples) / training.train_batch_size * training.num_train_epochs)
        num_warmup_steps = int(num_train_steps * training.warmup_proportion)
        if num_train_steps < 1:
            raise UserError("%d examples x %g epochs make no full batch of %d: nothing to train"
                            % (len(train_examples), training.num_train_epochs, training.train_batch_size))
    counted = checks.training_position(run.output_dir, training.gradient_accumulation_steps)[2]
    model_fn = model_fn_builder(bert_config, task, checks.init_checkpoint(run), training.learning_rate,
                                num_train_steps, num_warmup_steps, hardware.use_tpu,
                                accumulation_steps=training.gradient_accumulation_steps, use_fp16=hardware.use_fp16,
                                towers=num_towers(hardware, training=True),
                                inference_towers=num_towers(hardware, training=False),
                                initial_loss_scale=hardware.fp16_initial_loss_scale,
                                resumed_without_counter=not counted, methods=methods)
    estimator = build_estimator(model_fn, settings, training.predict_batch_size)

    results = {}
    if run.do_train:
        trained = train(settings, task, estimator, cache, train_examples, num_train_steps, num_warmup_steps, methods,
                        stop_signals)
        if trained is None:
            return
        results.update(trained)

    if run.do_eval:
        stop_signals.phase = "evaluating"
        start = time.time()
        # Evaluation runs in PREDICT mode (per-example outputs feed the official metrics): a TPUEstimator of its
        # own batches it by --eval_batch_size. A plain Estimator (--distribution_strategy) leaves that to input_fn.
        evaluator = (build_estimator(model_fn, settings, training.eval_batch_size)
                     if hardware.distribution_strategy == "none" else estimator)
        results.update(evaluation.evaluate(evaluator, cache, task, settings))
        results["eval_time"] = round(time.time() - start, 2)
        results["global_step"] = checks.training_position(run.output_dir, training.gradient_accumulation_steps)[0]
        checkpoint = tf.train.latest_checkpoint(run.output_dir)
        for method in methods:
            results.update(method.after_evaluation(checkpoint, run.output_dir, results,
                                                   evaluation.evaluator_of(cache, task, settings)))
        tf.logging.info("***** Eval results *****\n%s", evaluation.write_eval_results(run.output_dir, results))
        tensorboard.write_eval(run.output_dir, results["global_step"], results)

    if run.do_predict:
        stop_signals.phase = "predicting"
        evaluation.predict(estimator, cache, task, settings)


# What users cause (missing or malformed files, wrong flags, a diverging run): one line, not a traceback.
USER_ERRORS = (UserError, tf.errors.NotFoundError, tf.errors.DataLossError, tf.train.NanLossDuringTrainingError)


def clear_message(error: BaseException, learning_rate: Optional[float] = None) -> Optional[str]:
    """The one line to show for an error the user can fix; None for anything else (a bug keeps its traceback).
    `learning_rate`, the run's, is named in the advice for a diverging run."""
    lines = [line.strip() for line in str(error).strip().splitlines() if line.strip()] or [type(error).__name__]
    disk_full = [line for line in lines if "No space left on device" in line]
    if disk_full or getattr(error, "errno", None) == errno.ENOSPC:
        return ("the disk is full (%s): free some space and run the same command again, it resumes from the last "
                "checkpoint" % (disk_full or lines)[0])
    if isinstance(error, tf.train.NanLossDuringTrainingError):  # on TPU, where ProgressHook does not run
        return "the training loss became NaN or infinite: try a lower --learning_rate (now %g)" % learning_rate
    return lines[0] if isinstance(error, USER_ERRORS) else None


def main_with_clear_errors(argv):
    try:
        main(argv)
    except Interrupted as stop:
        StopSignals.ignore_from_now_on()
        sys.stderr.write("interrupted: %s\n" % stop)
        sys.exit(128 + stop.signum)
    except Exception as error:  # noqa: B902 - sorted by clear_message: what it cannot explain is re-raised
        given = flags.values()
        message = clear_message(error, given["learning_rate"])
        if given["verbose"] or message is None:
            raise
        sys.stderr.write("error: %s (--verbose shows where)\n" % message)
        sys.exit(1)


def run():
    flags.mark_required()
    app.run(main_with_clear_errors)


if __name__ == "__main__":
    run()
