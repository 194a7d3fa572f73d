"""Every flag of run_classifier.py, and the one place that reads them: `read_settings()` -> bert.settings.Settings.

google-research/bert's flags keep their names and defaults; ours follow. Each training method defines its own
flags (bert/compression/registry.py calls each method's define_flags), so a new method's flags live with it.
No other module reads FLAGS: everything downstream takes the Settings object.
"""
from typing import Any, Dict

from absl import flags

from bert.compression import registry
from bert.data import processors
from bert.settings import Settings

FLAGS = flags.FLAGS
REQUIRED = ("data_dir", "task_name", "vocab_file", "bert_config_file", "output_dir")

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
flags.DEFINE_bool("strict_data", False, "Stop at the first bad data row (too few columns, a stray or missing header "
                  "line, an empty sentence) instead of skipping or keeping it and counting it in data_stats.json.")
registry.define_flags(flags)


def values() -> Dict[str, Any]:
    """Every flag's value by name (the parsed command line)."""
    return {name: FLAGS[name].value for name in FLAGS}


def defaults() -> Dict[str, Any]:
    """Every flag's default by name: a setting a run recorded before its flag existed had this value."""
    return {name: FLAGS[name].default for name in FLAGS}


def read_settings() -> Settings:
    """The parsed command line as one frozen Settings object (a UserError for a malformed method setting)."""
    current = values()
    return Settings.from_values(current, registry.read_settings(current))


def mark_required() -> None:
    for name in REQUIRED:
        flags.mark_flag_as_required(name)
