"""What is checked before a run starts, and what it records: every file a flag names, the refusals of flag
combinations that would fail late or train the wrong thing, the output dir's claim (resume, refuse or start
afresh) and the settings that run_info.json records.

Everything takes the Settings object (bert/settings.py), so each refusal is a plain function call in a test.
"""
import os
import re
from typing import Dict, Optional, Sequence, Tuple

from bert import counters, files, modeling, run_info
from bert.compat import TF_VERSION, tf
from bert.compression.methods import TrainingMethod
from bert.data import processors
from bert.errors import UserError
from bert.settings import RunSettings, Settings
from bert.training.estimator import dynamic_padding, num_towers


def init_checkpoint(run: RunSettings) -> Optional[str]:
    """--init_checkpoint's prefix: as given, or the latest checkpoint of a run directory."""
    given = run.init_checkpoint
    if given and files.isdir(given):
        latest = tf.train.latest_checkpoint(given)
        if not latest:
            raise UserError("--init_checkpoint %s is a directory without checkpoints: pass a checkpoint's prefix, or "
                            "the output dir of a run that saved one" % given)
        return latest
    return given


def checkpoint_reader(prefix: str):
    """A reader of the checkpoint `prefix` (tf.train.load_checkpoint would first ask whether `prefix` is a folder,
    which an in-memory file system answers yes to)."""
    return tf.train.NewCheckpointReader(prefix)


def check_files(settings: Settings, task: processors.TaskSpec) -> None:
    """Every file a flag names exists, checked before anything reads or hashes one, each with its one-line error:
    the model's config and vocab, the data splits the phases read, the initial checkpoint and the records in
    --output_dir (the teacher of --distill_from is checked where its run is read, bert/compression/distillation.py)."""
    run = settings.run
    for flag in ("bert_config_file", "vocab_file"):
        if not files.isfile(getattr(run, flag)):
            raise UserError("--%s %s not found" % (flag, getattr(run, flag)))
    splits = ((["train"] if run.do_train else []) + (list(task.eval_splits) if run.do_eval else [])
              + (list(task.test_splits) if run.do_predict else []))
    for split in splits:
        path = os.path.join(run.data_dir, task.splits[split].file)
        if not files.isfile(path):
            raise UserError("%s %s file not found: %s" % (task.name, split, path))
    checkpoint = init_checkpoint(run)
    # Google's checkpoints say their casing in their folder name (uncased_L-12_..., cased_L-12_..., multi_cased_...).
    casing = re.search(r"(?:^|/)(?:[a-z]+_)?(uncased|cased)_L-\d+", checkpoint or "")
    if casing and (casing.group(1) == "uncased") != run.do_lower_case:
        raise UserError("--init_checkpoint %s is %s but --do_lower_case=%s: use --do_lower_case=%s"
                        % (checkpoint, casing.group(1), run.do_lower_case, casing.group(1) == "uncased"))
    if checkpoint and not files.exists(checkpoint + ".index"):
        raise UserError("--init_checkpoint %s not found (no %s.index): pass the checkpoint's prefix, e.g. "
                        "$BERT_DIR/bert_model.ckpt" % (checkpoint, checkpoint))
    try:
        if not run.overwrite_output_dir:  # which removes it
            run_info.read(run.output_dir)
    except ValueError as error:  # json's decode errors
        raise UserError("--output_dir %s has a %s that is not JSON (%s): move it away, or pass "
                        "--overwrite_output_dir" % (run.output_dir, run_info.RUN_INFO, error)) from None


def check_setup(settings: Settings, bert_config: modeling.BertConfig, methods: Sequence[TrainingMethod]) -> None:
    """Refuses flag, model-file and output-dir combinations that would fail late or train the wrong thing."""
    run, hardware, training = settings.run, settings.hardware, settings.training
    if not (run.do_train or run.do_eval or run.do_predict):
        raise UserError("at least one of --do_train, --do_eval or --do_predict must be true")
    if hardware.use_tpu and hardware.distribution_strategy != "none":
        raise UserError("--distribution_strategy is for GPUs and CPUs: on TPU, TPUEstimator shards over --num_tpu_cores")
    if hardware.use_tpu and training.gradient_accumulation_steps > 1:
        raise UserError("--gradient_accumulation_steps does not work on TPU: use a smaller --train_batch_size")
    if hardware.distribution_strategy != "none" and (training.gradient_accumulation_steps > 1 or hardware.use_fp16):
        raise UserError("--gradient_accumulation_steps and --use_fp16 do not work with --distribution_strategy yet")
    for method in methods:
        if not method.runs_on_tpu and (hardware.use_tpu or hardware.distribution_strategy != "none"):
            raise UserError("%s does not work on TPU or with --distribution_strategy yet" % " and ".join(method.flags))
    if hardware.towers < 0:
        raise UserError("--towers=%d: pass a positive number of towers, or 0 for the default" % hardware.towers)
    if training.gradient_accumulation_steps < 1 or training.train_batch_size % training.gradient_accumulation_steps:
        raise UserError("--train_batch_size=%d must be a multiple of --gradient_accumulation_steps=%d"
                        % (training.train_batch_size, training.gradient_accumulation_steps))
    if settings.data.max_seq_length < 3:
        raise UserError("--max_seq_length=%d leaves no room: [CLS] and [SEP] alone take 2 or 3 tokens" % settings.data.max_seq_length)
    if settings.data.max_seq_length > bert_config.max_position_embeddings:
        raise UserError("--max_seq_length=%d exceeds the model's max_position_embeddings=%d (%s)"
                        % (settings.data.max_seq_length, bert_config.max_position_embeddings, run.bert_config_file))
    with files.open(run.vocab_file) as f:
        vocab_size = sum(1 for _ in f)
    if vocab_size != bert_config.vocab_size:
        raise UserError("%s has %d tokens but %s says vocab_size=%d: they belong to different models"
                        % (run.vocab_file, vocab_size, run.bert_config_file, bert_config.vocab_size))
    checkpoint = init_checkpoint(run)
    if checkpoint:
        try:  # read every tensor once: a truncated download fails here, not deep inside a training loop
            reader = checkpoint_reader(checkpoint)
            shapes = reader.get_variable_to_shape_map()
            for name in shapes:
                reader.get_tensor(name)
        except (tf.errors.OpError, IndexError, ValueError) as error:  # TF 2's reader raises IndexError here
            raise UserError("--init_checkpoint %s cannot be read (%s): is it a complete download?"
                            % (checkpoint, (str(error).strip().splitlines() or ["?"])[0]))
        head = shapes.get("output_bias")  # a fine-tuned run's: refused before tokenizing
        num_labels = processors.get_task(run.task_name).num_labels
        if head is not None and head != [num_labels]:
            raise modeling.head_mismatch(checkpoint, head[0], num_labels)


def training_settings(settings: Settings, task: processors.TaskSpec, methods: Sequence[TrainingMethod]) -> Dict:
    """The flags that shape the trained model, as run_info.json records them (bert/run_info.py)."""
    run, data, training, hardware = settings.run, settings.data, settings.training, settings.hardware
    data_file = os.path.join(run.data_dir, task.splits["train"].file)
    checkpoint = init_checkpoint(run)
    recorded = {
        "task_name": task.name, "learning_rate": training.learning_rate, "train_batch_size": training.train_batch_size,
        "num_train_epochs": training.num_train_epochs, "warmup_proportion": training.warmup_proportion,
        "max_seq_length": data.max_seq_length, "seed": training.seed, "do_lower_case": run.do_lower_case,
        "gradient_accumulation_steps": training.gradient_accumulation_steps, "dynamic_padding": dynamic_padding(settings),
        "towers": num_towers(hardware, training=True), "use_fp16": hardware.use_fp16,
        "init_checkpoint": run_info.file_setting(checkpoint, checkpoint and checkpoint + ".index"),
        "bert_config_file": run_info.file_setting(run.bert_config_file),
        "vocab_file": run_info.file_setting(run.vocab_file), "data_dir": run_info.file_setting(run.data_dir, data_file),
    }
    for method in methods:  # only the active ones: a setting recorded without them has its flag's default
        recorded.update(method.recorded_settings())
    return recorded


def claim_output_dir(settings: Settings, task: processors.TaskSpec, methods: Sequence[TrainingMethod],
                     flag_defaults: Dict) -> None:
    """Makes --output_dir this run's: a model trained there with other settings is refused (or, with
    --overwrite_output_dir, removed); the settings of a training run are recorded in run_info.json. A setting that one side lacks (recorded before its flag existed, or left out because
    its method is off) counts as its flag's default, from `flag_defaults`."""
    run = settings.run
    output_dir = run.output_dir
    if run.overwrite_output_dir:
        if not run.do_train:
            raise UserError("--overwrite_output_dir deletes the model in --output_dir: it needs --do_train=true")
        removed = run_info.clear_output_dir(output_dir)
        if removed:
            tf.logging.info("--overwrite_output_dir: removed %s from %s", ", ".join(removed), output_dir)
    info = run_info.read(output_dir)
    has_model = tf.train.latest_checkpoint(output_dir) is not None
    if has_model and info.get("task", task.name) != task.name:
        raise UserError("--output_dir %s holds a %s model, not %s: choose another --output_dir"
                        % (output_dir, info["task"], task.name))
    if run.do_train:
        current = training_settings(settings, task, methods)
        if has_model and "settings" not in info:
            tf.logging.warning("%s has a checkpoint but no recorded settings (an older run): resuming it unchecked",
                               output_dir)
        differing = (run_info.differences(info["settings"], current, flag_defaults)
                     if has_model and "settings" in info else [])
        if differing:
            raise UserError("--output_dir %s holds a model trained with other settings: %s. Run its own command to "
                            "resume it, or choose another --output_dir, or pass --overwrite_output_dir to start "
                            "afresh" % (output_dir, ", ".join(differing)))
        if not has_model:
            info.pop("invocations", None)  # times of a model that is gone (an earlier attempt that saved nothing)
        info["settings"] = current
    info.update(task=task.name, tensorflow=TF_VERSION)
    files.makedirs(output_dir)
    run_info.write(output_dir, info)


def training_position(output_dir: str, accumulation_steps: int) -> Tuple[int, int, bool]:
    """(global_step, batches read, whether the checkpoint counts them) of the latest checkpoint; (0, 0, True)
    before the first. A checkpoint written before counters.batches_read existed does not count them: its
    runs read `accumulation_steps` batches per step (see counters.count_batches_from_global_step)."""
    checkpoint = tf.train.latest_checkpoint(output_dir)
    if not checkpoint:
        return 0, 0, True
    reader = checkpoint_reader(checkpoint)
    step = int(reader.get_tensor("global_step"))
    if reader.has_tensor(counters.BATCHES_READ):
        return step, int(reader.get_tensor(counters.BATCHES_READ)), True
    return step, step * accumulation_steps, False


def spare_batches(num_train_steps: int, use_fp16: bool) -> int:
    """Batches (of --train_batch_size) that the input holds beyond the planned updates' for updates that --use_fp16
    skips. Dynamic loss scaling skips a few while the scale comes down from its start, then at most one each time
    it doubles (after 2000 updates without overflow): this is many times that."""
    return 32 + num_train_steps // 100 if use_fp16 else 0
