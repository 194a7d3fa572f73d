"""What made a run: the settings its model was trained with and the time each invocation spent training it.

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
"""
import fnmatch
import json
import os
from typing import Dict, List, Optional

from bert import files

RUN_INFO = "run_info.json"
COMPACT_MODEL = "compact_model"  # bert/compression/compaction.py's model of the run's checkpoint
# What a run leaves in its output dir (TensorFlow's and ours); --overwrite_output_dir removes exactly these.
RUN_OUTPUTS = ("checkpoint", "model.ckpt-*", "events.out.tfevents.*", "graph.pbtxt", "eval", "tmp_worker_*",
               "eval_results.txt", "test_results*.tsv", "train_loss.tsv", "data_stats.json", "sparsity.json",
               COMPACT_MODEL, RUN_INFO)


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
