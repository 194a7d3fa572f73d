"""A fine-tuned run in Hugging Face's BertForSequenceClassification layout: `python -m bert.serving.hf_export
--output_dir=RUN_DIR --hf_dir=DIR`, the way back of bert/data/convert_checkpoint.py's import.

DIR gets what `BertForSequenceClassification.from_pretrained(DIR)` and `AutoTokenizer.from_pretrained(DIR)` read:

    config.json             HF's BertConfig (the same field names as bert_config.json), the GELU form in HF's
                            name for it, the task's labels (id2label, label2id, num_labels) and problem_type
    vocab.txt               the run's vocab, copied unchanged
    tokenizer_config.json   BertTokenizer with the run's casing, truncating at the run's max_seq_length
    model.safetensors       the run's latest checkpoint, float32, in HF's names (convert_checkpoint.NAME_TABLE)

The run is read as bert.serving.predict and bert.serving.export read it (run_info.read_run): its task, the bert_config.json and
vocab it was trained with, its casing and latest checkpoint. Only the checkpoint's model weights are written:
Adam's slots, global_step and a pruning run's `_mask`, `_pruning_score`, `_pruning_tiles` and `_group_lasso_reweight`
variables are left aside (NAME_TABLE names none of them), and a pruned model's weights are saved already zero where
its masks are, so it exports with its zeros. The weights' shapes are read from the checkpoint and must be those
its bert_config.json gives, since HF's BertConfig has one size per kind of matrix for all layers.
"""
import argparse
import json
import os
import shutil
import sys
from collections import OrderedDict
from dataclasses import asdict
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from bert import checkpoints, run_info
from bert.data import convert_checkpoint as cc
from bert.data import processors
from bert.compat import tf
from bert.errors import UserError

HF_FILES = ("model.safetensors", "vocab.txt", "tokenizer_config.json", "config.json")  # what an export holds
# HF's BertConfig fields that bert_config.json holds under the same names (the import reads the same ones).
CONFIG_FIELDS = cc.REQUIRED_CONFIG_KEYS + tuple(cc.DEFAULT_CONFIG) + ("layer_norm_eps",)
REGRESSION_LABEL = "LABEL_0"  # what HF names a single output (its default id2label for num_labels=1)


def hf_config(bert_config, task: processors.TaskSpec) -> Dict:
    """config.json for a BertForSequenceClassification of this shape and task. HF's BertConfig has one head count
    and one feed-forward width for all layers and derives the head size from hidden / heads, so a compact model
    with per-layer sizes or narrower heads has no config there: refused (ConversionError)."""
    values = asdict(bert_config)
    ours = [name for name in ("attention_head_size", "layer_num_attention_heads", "layer_intermediate_sizes")
            if bert_config.to_dict().get(name) is not None
            and not (name == "attention_head_size"
                     and values[name] * bert_config.num_attention_heads == bert_config.hidden_size)]
    if ours:
        raise cc.ConversionError("%s in bert_config.json: Hugging Face's BertConfig has one head count and width "
                                 "for all layers and a head size of hidden_size / num_attention_heads, so this "
                                 "compact model has no Hugging Face layout (a compact model with neurons pruned "
                                 "uniformly and whole heads kept has)" % ", ".join(ours))
    config = OrderedDict([("architectures", ["BertForSequenceClassification"]), ("model_type", "bert")])
    config.update((key, values[key]) for key in CONFIG_FIELDS)
    config["hidden_act"] = cc.hf_hidden_act(bert_config.hidden_act)
    config["position_embedding_type"] = "absolute"
    labels = task.labels or (REGRESSION_LABEL,)
    config["num_labels"] = task.num_labels
    config["id2label"] = OrderedDict((str(i), label) for i, label in enumerate(labels))
    config["label2id"] = OrderedDict((label, i) for i, label in enumerate(labels))
    config["problem_type"] = "regression" if task.is_regression else "single_label_classification"
    config["torch_dtype"] = "float32"
    return config


def tokenizer_config(run: run_info.TrainedRun) -> Dict:
    """BertTokenizer as the run tokenized: its casing (accents are stripped with lower-casing, as HF's default
    strip_accents=None does) and its max_seq_length, where HF's truncation=True cuts (longest first, like
    run_classifier.py's pair truncation)."""
    return OrderedDict([("tokenizer_class", "BertTokenizer"), ("do_lower_case", run.do_lower_case),
                        ("model_max_length", run.max_seq_length)])


def hf_tensors(checkpoint: str, bert_config, num_labels: int) -> Tuple[OrderedDict, List[str]]:
    """The checkpoint's model weights as {HF name: float32 array in HF's layout}, and the names of the variables
    left aside (optimizer slots, pruning state, counters). Raises ConversionError when a weight is missing,
    unexpected or of another shape than bert_config gives it."""
    shapes = OrderedDict(tf.train.list_variables(checkpoint))
    expected = cc.google_variable_shapes(asdict(bert_config), num_labels)
    names = {name: cc.hf_tensor_name(name) for name in shapes}
    left_aside = sorted(name for name, hf in names.items() if hf is None)
    problems = ["%s is missing" % name for name in expected if name not in shapes]
    problems += ["%s is not part of the model bert_config.json describes" % name
                 for name, hf in names.items() if hf and name not in expected]
    problems += ["%s is %s, not %s" % (name, list(shapes[name]), shape)
                 for name, shape in expected.items() if name in shapes and list(shapes[name]) != shape]
    if problems:
        raise cc.ConversionError(
            "checkpoint %s does not fit its bert_config.json (Hugging Face's BertConfig has one size for all layers): "
            "%s" % (checkpoint, "; ".join(problems[:5] + (["..."] if len(problems) > 5 else []))))
    reader = checkpoints.reader(checkpoint)
    tensors = OrderedDict()
    for name in expected:
        hf_name, transposed, _ = names[name]
        value = reader.get_tensor(name).astype(np.float32, copy=False)
        tensors[hf_name] = np.ascontiguousarray(value.T if transposed else value)
    return tensors, left_aside


def export_run(run: run_info.TrainedRun, hf_dir: str) -> Dict:
    """Writes `run` into hf_dir (see the module's docstring); returns a summary dict.

    The files are written into a temporary directory inside hf_dir and moved in with config.json last, so an
    hf_dir with config.json holds a whole export (and an older export's config.json goes first)."""
    config = hf_config(run.bert_config, run.task)
    tensors, left_aside = hf_tensors(run.checkpoint, run.bert_config, run.task.num_labels)
    hf_dir = os.path.abspath(hf_dir)
    with checkpoints.written_config_last(hf_dir, "config.json") as tmp_dir:
        cc.write_safetensors(os.path.join(tmp_dir, "model.safetensors"), tensors, {"format": "pt"})
        shutil.copyfile(run.vocab_file, os.path.join(tmp_dir, "vocab.txt"))
        for name, values in (("tokenizer_config.json", tokenizer_config(run)), ("config.json", config)):
            with open(os.path.join(tmp_dir, name), "w") as f:
                json.dump(values, f, indent=2)
                f.write("\n")
    return {"output_dir": run.output_dir, "checkpoint": run.checkpoint, "hf_dir": hf_dir, "task": run.task.name,
            "hidden_act": (run.bert_config.hidden_act, config["hidden_act"]), "num_tensors": len(tensors),
            "num_parameters": int(sum(t.size for t in tensors.values())),
            "num_zeros": int(sum(t.size - np.count_nonzero(t) for t in tensors.values())), "left_aside": left_aside}


def export(output_dir: str, hf_dir: str) -> Dict:
    """The fine-tuning run in output_dir (run_classifier.py's --output_dir) into hf_dir; a UserError or
    ConversionError says what is wrong."""
    return export_run(run_info.read_run(output_dir), hf_dir)


def summary_line(summary: Dict) -> str:
    return ("exported %s (%s, %s) -> %s: %d tensors, %.1fM parameters (%.2f%% zeros), hidden_act %s -> %s; left "
            "aside %d other checkpoint variables" % (
                summary["output_dir"], summary["task"], os.path.basename(summary["checkpoint"]), summary["hf_dir"],
                summary["num_tensors"], summary["num_parameters"] / 1e6,
                100.0 * summary["num_zeros"] / summary["num_parameters"], summary["hidden_act"][0],
                summary["hidden_act"][1], len(summary["left_aside"])))


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bert.serving.hf_export",
        description="Export a fine-tuned run to Hugging Face's BertForSequenceClassification layout (config.json, "
                    "vocab.txt, tokenizer_config.json, model.safetensors); the way back of "
                    "`python -m bert.data.convert_checkpoint`.")
    parser.add_argument("--output_dir", required=True,
                        help="the fine-tuning run to export (run_classifier.py's --output_dir)")
    parser.add_argument("--hf_dir", required=True, help="the Hugging Face model directory to write")
    args = parser.parse_args(argv)
    # read_run's errors are UserErrors
    return cc.print_outcome(lambda: summary_line(export(args.output_dir, args.hf_dir)), (cc.ConversionError, UserError))


if __name__ == "__main__":
    sys.exit(main())
