"""A fine-tuned run read back for inference: what it was trained with, its latest checkpoint and its model.

bert/serving/export.py (a SavedModel for TensorFlow Serving) and bert/serving/predict.py (raw text in, predictions out) both
start from a run's --output_dir. What they need is recorded there: run_info.json's settings name the task,
the bert_config.json (so a model of other shapes than the pre-trained one, a compact model, builds at its
own shapes), the vocab, the casing and max_seq_length. Both build the same graph: modeling.BertModel and the
task's classifier_head in inference mode (no dropout, no batches_read counter, a gather for the embeddings
rather than TPU's one-hot matmul), restored from the checkpoint's model weights alone. A pruning run's
checkpoint holds more (each pruned kernel's `_mask`, `_pruning_score`, `_group_lasso_reweight`, Adam's
slots): those variables are not in the graph and are never read, and its saved weights are already zero
where the masks were.
"""
import re
from dataclasses import dataclass
from typing import Dict, Optional

from bert import files, modeling, run_info
from bert.data import processors
from bert.compat import tf
from bert.errors import UserError

INPUTS = ("input_ids", "input_mask", "segment_ids")  # int32 [batch, seq], as features.convert_example makes them


@dataclass(frozen=True)
class TrainedRun:
    output_dir: str
    checkpoint: str  # the latest checkpoint's prefix
    task: processors.TaskSpec
    bert_config: modeling.BertConfig
    vocab_file: str
    do_lower_case: bool
    max_seq_length: int  # the run's: what the model was trained and evaluated at

    @property
    def output_name(self) -> str:
        """The model's output: class probabilities in the order of task.labels, or STS-B's predicted score."""
        return "predictions" if self.task.is_regression else "probabilities"

    @property
    def takes_pairs(self) -> bool:
        """Whether the task's examples are sentence pairs (MRPC, MNLI, ...) rather than single sentences."""
        return self.task.splits[self.task.test_splits[0]].text_b_col is not None

    def checked_length(self, max_seq_length: Optional[int]) -> int:
        """`max_seq_length` (default: the run's), refused beyond the model's position embeddings."""
        length = max_seq_length or self.max_seq_length
        if not 3 <= length <= self.bert_config.max_position_embeddings:
            raise UserError("--max_seq_length=%d: the model takes 3 to %d tokens (its max_position_embeddings)"
                            % (length, self.bert_config.max_position_embeddings))
        return length


def recorded_file(settings: Dict, name: str, run_dir: str) -> str:
    """The path of a file the run was trained with, checked against the digest recorded with it.

    Paths are recorded as given to run_classifier.py, so a relative one is relative to where the run started.
    """
    setting = settings.get(name)
    if not setting:
        raise UserError("%s: run_info.json records no %s" % (run_dir, name))
    path = setting["path"]
    if not files.isfile(path):
        raise UserError("%s: the run's --%s %s is not found (run_info.json records it as given: run this from the "
                        "directory the run was started in)" % (run_dir, name, path))
    if files.sha1(path) != setting["sha1"]:
        raise UserError("%s: the run's --%s %s has changed since the run was trained" % (run_dir, name, path))
    return path


def read_run(output_dir: str) -> TrainedRun:
    """The run in `output_dir` (run_classifier.py's --output_dir after training), or a UserError saying what is
    missing."""
    if not files.isdir(output_dir):
        raise UserError("%s is not a directory: pass the --output_dir of a fine-tuning run" % output_dir)
    info = run_info.read(output_dir)
    if not info:
        raise UserError("%s has no %s: it is not the --output_dir of a run_classifier.py run"
                        % (output_dir, run_info.RUN_INFO))
    settings = info.get("settings")
    if not settings:
        raise UserError("%s: %s records no training settings (the run was not trained there, or before they were "
                        "recorded)" % (output_dir, run_info.RUN_INFO))
    checkpoint = tf.train.latest_checkpoint(output_dir)
    if not checkpoint:
        raise UserError("%s has no checkpoint: train the run first (run_classifier.py --do_train=true)" % output_dir)
    return TrainedRun(
        output_dir=output_dir, checkpoint=checkpoint, task=processors.get_task(settings["task_name"]),
        bert_config=modeling.BertConfig.from_json_file(recorded_file(settings, "bert_config_file", output_dir)),
        vocab_file=recorded_file(settings, "vocab_file", output_dir), do_lower_case=settings["do_lower_case"],
        max_seq_length=settings["max_seq_length"])


def model_outputs(run: TrainedRun, input_ids, input_mask, segment_ids):
    """The task's outputs for int32 [batch, seq] inputs in the current graph: [batch, num_labels]
    probabilities, or [batch] scores for a regression. Which GELU, softmax and LayerNorm ops it uses
    follows kernels.enabled()."""
    pooled_output = modeling.BertModel(run.bert_config, False, input_ids, input_mask, segment_ids).pooled_output
    return modeling.classifier_head(pooled_output, run.task.num_labels, run.task.is_regression, False).probabilities


def checkpoint_saver(run: TrainedRun) -> tf.train.Saver:
    """A Saver of the current graph's variables (the model built by `model_outputs`), checked against the run's
    checkpoint: each must be there at the shape the config gives it; what else the checkpoint holds is ignored."""
    variables = tf.global_variables()
    _, missing = modeling.assignment_map_from_checkpoint(variables, run.checkpoint)
    if missing:
        raise UserError("checkpoint %s lacks %s: is it a model of the run's bert_config.json?"
                        % (run.checkpoint, ", ".join(missing[:5])))
    return tf.train.Saver({re.sub(r":\d+$", "", var.name): var for var in variables})

