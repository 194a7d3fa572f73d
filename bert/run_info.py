"""A run's record and reading it back: the settings its model was trained with, the time each invocation spent
training it, and the trained run (its model and latest checkpoint) for what builds on it.

`run_info.json` in the output dir records them. A checkpoint there belongs to its settings: the same
command resumes it, a command with other training settings is refused (`differences` names what differs),
and `--overwrite_output_dir` clears the dir for a fresh start (`clear_output_dir`). Settings are compared
by value; those that name files (the pre-trained checkpoint, the config, the vocab, the training data) by
the digest of the file's contents, so a moved folder is still the same model and a replaced file is not.

Every invocation that trains adds an entry to `invocations` ({"train_time": wall seconds from the start of
training, "to_batch": the batches read at its last checkpoint, "timed_examples" and "timed_seconds": the
examples after the invocation's first batch and their seconds, which leave out graph building, the restore
and the first batch's one-off work}), rewritten at each of its checkpoints, so that a run resumed any
number of times reports the time of all of them, each up to the checkpoint the next one resumed from.

A trained run is read back from there too (`read_run`: a TrainedRun with what it was trained with, its latest
checkpoint and its model), for inference and for what builds on a fine-tuned run.
bert/serving/export.py (a SavedModel for TensorFlow Serving), bert/serving/predict.py (raw text in, predictions
out) and bert/serving/hf_export.py, and bert/compression/distillation.py (the teacher) and compaction.py all
start from a run's --output_dir. What they need is recorded there: run_info.json's settings name the task,
the bert_config.json (so a model of other shapes than the pre-trained one, a compact model, builds at its
own shapes), the vocab, the casing and max_seq_length. Inference builds one graph: modeling.BertModel and the
task's classifier_head in inference mode (no dropout, no batches_read counter, a gather for the embeddings
rather than TPU's one-hot matmul), restored from the checkpoint's model weights alone. A pruning run's
checkpoint holds more (each pruned kernel's `_mask`, `_pruning_score`, `_pruning_tiles`, `_group_lasso_reweight`, Adam's
slots): those variables are not in the graph and are never read, and its saved weights are already zero
where the masks were.
"""
import fnmatch
import json
import os
import re
from dataclasses import dataclass
from typing import Dict, List, Optional

from bert import files, modeling
from bert.compat import tf
from bert.data import processors
from bert.errors import UserError

RUN_INFO = "run_info.json"
COMPACT_MODEL = "compact_model"  # bert/compression/compaction.py's model of the run's checkpoint
# What a run leaves in its output dir (TensorFlow's and ours); --overwrite_output_dir removes exactly these.
RUN_OUTPUTS = ("checkpoint", "model.ckpt-*", "events.out.tfevents.*", "graph.pbtxt", "eval", "tmp_worker_*",
               "eval_results.txt", "test_results*.tsv", "train_loss.tsv", "data_stats.json", "sparsity.json",
               COMPACT_MODEL, RUN_INFO)
INPUTS = ("input_ids", "input_mask", "segment_ids")  # int32 [batch, seq], as features.convert_example makes them


def file_setting(path: Optional[str], digest_path: Optional[str] = None) -> Optional[Dict[str, str]]:
    """A setting that names a file: its path (as given) and the digest of `digest_path` (default: the file)."""
    if not path:
        return None
    return {"path": path, "sha1": files.sha1(digest_path or path)}


def read(output_dir: str) -> Dict:
    path = os.path.join(output_dir, RUN_INFO)
    if not files.exists(path):
        return {}
    with files.open(path) as f:
        return json.load(f)


def write(output_dir: str, info: Dict) -> None:
    files.write_atomically(os.path.join(output_dir, RUN_INFO), json.dumps(info, indent=1, sort_keys=True) + "\n")


def _shown(value) -> str:
    if isinstance(value, dict):  # a file setting
        return value["path"]
    return "none" if value is None else str(value)


def _same(old, new) -> bool:
    if isinstance(old, dict) and isinstance(new, dict):
        return old.get("sha1") == new.get("sha1")
    return old == new


def differences(recorded: Dict, current: Dict, defaults: Optional[Dict] = None) -> List[str]:
    """`--learning_rate 5e-05 (now 2e-05)` for each setting whose recorded value differs from the current one. A
    setting one side lacks has its flag's value in `defaults`: a run recorded before the flag existed, or one
    whose training method was off (its settings are recorded only when it is on), had the default."""
    found, defaults = [], defaults or {}
    for name in sorted(set(recorded) | set(current)):
        old, new = (side[name] if name in side else defaults.get(name) for side in (recorded, current))
        if _same(old, new):
            continue
        if isinstance(old, dict) and isinstance(new, dict) and old["path"] == new["path"]:
            found.append("--%s %s (its contents changed since)" % (name, old["path"]))
        else:
            found.append("--%s %s (now %s)" % (name, _shown(old), _shown(new)))
    return found


def clear_output_dir(output_dir: str) -> List[str]:
    """Removes what a run left in output_dir (RUN_OUTPUTS) and returns the names removed; other files stay
    (a sweep's log.txt, cached features, anything of the user's)."""
    if not files.isdir(output_dir):
        return []
    removed = [name for name in files.listdir(output_dir) if any(fnmatch.fnmatch(name, p) for p in RUN_OUTPUTS)]
    for name in removed:
        path = os.path.join(output_dir, name)
        if files.isdir(path):
            files.rmtree(path)
        else:
            files.remove(path)
    return removed


def record_invocation(output_dir: str, number: int, times: Dict) -> None:
    """Sets entry `number` of `invocations` (this invocation's: it is rewritten at each of its checkpoints)."""
    info = read(output_dir)
    info["invocations"] = info.get("invocations", [])[:number] + [times]
    write(output_dir, info)


def totals(invocations: List[Dict]) -> Dict[str, float]:
    """train_time summed over every invocation; the rate of the timed batches of all of them."""
    timed_seconds = sum(entry.get("timed_seconds", 0.0) for entry in invocations)
    timed_examples = sum(entry.get("timed_examples", 0) for entry in invocations)
    result = {"train_time": round(sum(entry["train_time"] for entry in invocations), 2)}
    if timed_seconds > 0:
        result["train_examples_per_second"] = round(timed_examples / timed_seconds, 2)
    return result


# ---------------------------------------------------------------- a trained run read back

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

    def checked_length(self, max_seq_length: Optional[int]) -> int:
        """`max_seq_length` (default: the run's), refused beyond the model's position embeddings."""
        length = max_seq_length or self.max_seq_length
        if not 3 <= length <= self.bert_config.max_position_embeddings:
            raise UserError("--max_seq_length=%d: the model takes 3 to %d tokens (its max_position_embeddings)"
                            % (length, self.bert_config.max_position_embeddings))
        return length


def takes_pairs(task: processors.TaskSpec) -> bool:
    """Whether the task's examples are sentence pairs (MRPC, MNLI, ...) rather than single sentences."""
    return task.splits[task.test_splits[0]].text_b_col is not None


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
    info = read(output_dir)
    if not info:
        raise UserError("%s has no %s: it is not the --output_dir of a run_classifier.py run"
                        % (output_dir, RUN_INFO))
    settings = info.get("settings")
    if not settings:
        raise UserError("%s: %s records no training settings (the run was not trained there, or before they were "
                        "recorded)" % (output_dir, RUN_INFO))
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

