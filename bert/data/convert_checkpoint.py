"""Convert a Hugging Face BERT checkpoint (config.json, vocab.txt, model.safetensors) to Google's layout.

Google's layout is what the rest of this project reads:

    bert_config.json                    the model's shape and activation (see ``convert_config``)
    vocab.txt                           WordPiece vocabulary, copied unchanged
    bert_model.ckpt.index / .data-00000-of-00001
                                        a TF checkpoint with variables named bert/embeddings/...,
                                        bert/encoder/layer_N/..., bert/pooler/dense/...

Usage:
    python -m bert.data.convert_checkpoint --hf_dir DIR --output_dir DIR

The way back, a fine-tuned run to Hugging Face's layout, is bert/serving/hf_export.py
(`python -m bert.serving.hf_export --output_dir RUN_DIR --hf_dir DIR`).

The safetensors file is read by a small numpy-only reader (``read_safetensors``), and written by a small
writer (``write_safetensors``), so neither torch nor the safetensors package is needed. A
BertForSequenceClassification's head (``classifier.*``) becomes run_classifier.py's ``output_weights`` and
``output_bias``; other tensors outside the BERT encoder (``cls.*`` pre-training heads,
``embeddings.position_ids``) are ignored and listed in the summary. Which HF tensor is which Google variable
is one table, ``NAME_TABLE``, read in both directions.

Activations: in bert_config.json "gelu" means the tanh approximation (Google's meaning, so Google's
configs load unchanged) and "gelu_exact" the erf form. Hugging Face's "gelu" is the erf form, so it is
written as "gelu_exact" (see ``map_hidden_act``).
"""
from __future__ import absolute_import, division, print_function

import argparse
import json
import logging
import os
import re
import shutil
import struct
import sys
from collections import OrderedDict
from typing import Callable, Dict, List, Optional, Tuple

import numpy as np

from bert.checkpoints import CKPT_NAME, write_tf_checkpoint, written_config_last

logger = logging.getLogger(__name__)

GOOGLE_LAYER_NORM_EPS = 1e-12
CHECKPOINT_FILES = ("bert_config.json", "vocab.txt", CKPT_NAME + ".index", CKPT_NAME + ".data-00000-of-00001")


class ConversionError(ValueError):
    """The source checkpoint cannot be converted (missing/misshapen tensors, unsupported config)."""


# --------------------------------------------------------------------------------------------------
# safetensors reader (numpy only)
# --------------------------------------------------------------------------------------------------
# dtype name -> numpy little-endian dtype of the stored bytes. BF16 is stored as raw uint16 and widened.
_SAFETENSORS_DTYPES = {
    "F64": "<f8",
    "F32": "<f4",
    "F16": "<f2",
    "BF16": "<u2",
    "I64": "<i8",
    "I32": "<i4",
    "I16": "<i2",
    "I8": "i1",
    "U8": "u1",
    "BOOL": "?",
}


def read_safetensors_header(path):
    # type: (str) -> Tuple[Dict[str, dict], Dict[str, str], int]
    """Returns (tensor entries {name: {dtype, shape, data_offsets}}, __metadata__, byte offset of data)."""
    with open(path, "rb") as f:
        raw_len = f.read(8)
        if len(raw_len) != 8:
            raise ConversionError("%s: too short to be a safetensors file" % path)
        (header_len,) = struct.unpack("<Q", raw_len)
        file_size = os.fstat(f.fileno()).st_size
        if header_len > file_size - 8:
            raise ConversionError("%s: header length %d exceeds the file size %d" % (path, header_len, file_size))
        try:
            header = json.loads(f.read(header_len).decode("utf-8"))
        except ValueError as e:
            raise ConversionError("%s: unreadable safetensors header (%s)" % (path, e))
    if not isinstance(header, dict):
        raise ConversionError("%s: safetensors header is not a JSON object" % path)
    metadata = header.pop("__metadata__", None) or {}
    return header, metadata, 8 + header_len


def _decode_tensor(name, entry, buf, path):
    dtype = entry.get("dtype")
    shape = [int(d) for d in entry.get("shape", [])]
    start, end = [int(x) for x in entry["data_offsets"]]
    if dtype not in _SAFETENSORS_DTYPES:
        raise ConversionError("%s: tensor %s has unsupported dtype %r (supported: %s)"
                              % (path, name, dtype, ", ".join(sorted(_SAFETENSORS_DTYPES))))
    np_dtype = np.dtype(_SAFETENSORS_DTYPES[dtype])
    count = int(np.prod(shape)) if shape else 1
    if not 0 <= start <= end <= len(buf) or end - start != count * np_dtype.itemsize:
        raise ConversionError("%s: tensor %s (%s %s) has inconsistent data_offsets [%d, %d]"
                              % (path, name, dtype, shape, start, end))
    arr = np.frombuffer(buf, dtype=np_dtype, count=count, offset=start).reshape(shape)
    if dtype == "BF16":  # bfloat16 is the top half of a float32
        arr = (arr.astype(np.uint32) << 16).view(np.float32)
    elif dtype == "F16":
        arr = arr.astype(np.float32)
    else:
        arr = arr.astype(np_dtype.newbyteorder("="), copy=True)  # native order, owns its memory
    return arr


def read_safetensors(path, names=None):
    # type: (str, Optional[List[str]]) -> OrderedDict
    """Reads tensors from a .safetensors file into numpy arrays (F16/BF16 widened to float32).

    names: only these tensors (others are not decoded, so unsupported dtypes there do no harm).
    """
    header, _, data_start = read_safetensors_header(path)
    wanted = sorted(header) if names is None else list(names)
    missing = [n for n in wanted if n not in header]
    if missing:
        raise ConversionError("%s: no tensor named %s" % (path, ", ".join(missing)))
    if os.path.getsize(path) > data_start:  # memory-mapped: only the tensors asked for are paged in
        buf = np.memmap(path, dtype=np.uint8, mode="r", offset=data_start)
    else:
        buf = np.zeros(0, dtype=np.uint8)
    out = OrderedDict()
    for name in wanted:
        out[name] = _decode_tensor(name, header[name], buf, path)
    return out


# numpy dtype (little-endian) -> safetensors dtype name, for the writer. BF16 is left out: its numpy stand-in
# (uint16) would be written as a bfloat16 it is not.
_SAFETENSORS_NAMES = {np.dtype(v).str: k for k, v in _SAFETENSORS_DTYPES.items() if k != "BF16"}


def write_safetensors(path, tensors, metadata):
    # type: (str, OrderedDict, Dict[str, str]) -> None
    """Writes {name: numpy array} as a .safetensors file, the tensors' bytes in the given order.

    The format: an 8-byte little-endian header length, a JSON header naming each tensor's dtype, shape and
    [begin, end) byte offsets in the data (and string-valued __metadata__; Hugging Face's loader wants
    {"format": "pt"}), then the data, each tensor little-endian in C order. The header is padded with spaces
    to a multiple of 8 bytes, as the safetensors package pads it, so the data starts 8-byte aligned for
    readers that map the file.
    """
    header, offset = OrderedDict([("__metadata__", metadata)]), 0
    arrays = []
    for name, value in tensors.items():
        value = np.ascontiguousarray(value, dtype=value.dtype.newbyteorder("<"))
        if value.dtype.str not in _SAFETENSORS_NAMES:
            raise ConversionError("tensor %s: no safetensors dtype for %s" % (name, value.dtype))
        header[name] = {"dtype": _SAFETENSORS_NAMES[value.dtype.str], "shape": list(value.shape),
                        "data_offsets": [offset, offset + value.nbytes]}
        offset += value.nbytes
        arrays.append(value)
    raw = json.dumps(header, separators=(",", ":")).encode("utf-8")
    raw += b" " * (-len(raw) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(raw)))
        f.write(raw)
        for value in arrays:
            f.write(value.tobytes())


def _safetensors_files(hf_dir):
    # type: (str) -> List[str]
    """The model's safetensors file(s): model.safetensors, or the shards named by its index."""
    single = os.path.join(hf_dir, "model.safetensors")
    index = os.path.join(hf_dir, "model.safetensors.index.json")
    if os.path.exists(single):
        return [single]
    if os.path.exists(index):
        with open(index) as f:
            weight_map = json.load(f)["weight_map"]
        return [os.path.join(hf_dir, shard) for shard in sorted(set(weight_map.values()))]
    others = [n for n in ("pytorch_model.bin", "tf_model.h5") if os.path.exists(os.path.join(hf_dir, n))]
    raise ConversionError("%s: no model.safetensors%s; only safetensors weights are supported"
                          % (hf_dir, " (found %s)" % ", ".join(others) if others else ""))


# --------------------------------------------------------------------------------------------------
# config
# --------------------------------------------------------------------------------------------------
# Our bert_config.json activation -> Hugging Face's name for the same function, then other HF names of it.
# One table for both directions: an import maps every HF name of a row to ours, an export writes the first.
# Google's "gelu" is the tanh approximation, HF's "gelu" the erf form (ours "gelu_exact"); of HF's three
# spellings of the tanh form, "gelu_new" is computed by the very formula Google's code uses (and exists in
# every transformers version); "gelu_pytorch_tanh" and "gelu_fast" are the same function computed otherwise.
_HIDDEN_ACT = (
    ("gelu", ("gelu_new", "gelu_pytorch_tanh", "gelu_fast")),
    ("gelu_exact", ("gelu",)),
    ("relu", ("relu",)),
    ("tanh", ("tanh",)),
)


def map_hidden_act(hf_act):
    # type: (str) -> str
    """Hugging Face activation name -> our bert_config.json name ("gelu" = tanh approx, "gelu_exact" = erf)."""
    for ours, hf_names in _HIDDEN_ACT:
        if hf_act in hf_names:
            return ours
    raise ConversionError("unsupported hidden_act %r: supported Hugging Face activations are %s"
                          % (hf_act, ", ".join(sorted(n for _, names in _HIDDEN_ACT for n in names))))


def hf_hidden_act(ours):
    # type: (str) -> str
    """Our bert_config.json activation -> Hugging Face's name for it (map_hidden_act's inverse)."""
    for name, hf_names in _HIDDEN_ACT:
        if ours.lower() == name:  # bert_config.json's names are read case-insensitively (modeling.get_activation)
            return hf_names[0]
    raise ConversionError("hidden_act %r has no Hugging Face equivalent (known: %s)"
                          % (ours, ", ".join(name for name, _ in _HIDDEN_ACT)))


REQUIRED_CONFIG_KEYS = ("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads",
                         "intermediate_size", "max_position_embeddings", "type_vocab_size")
DEFAULT_CONFIG = {"hidden_act": "gelu", "hidden_dropout_prob": 0.1, "attention_probs_dropout_prob": 0.1,
                   "initializer_range": 0.02}


def convert_config(hf_config):
    # type: (dict) -> dict
    """Hugging Face config.json (a dict) -> Google's bert_config.json dict.

    layer_norm_eps is written only when it differs from Google's 1e-12 (models must then honour it).
    """
    model_type = hf_config.get("model_type", "bert")
    if model_type != "bert":
        raise ConversionError("model_type %r is not supported (only \"bert\")" % model_type)
    pos_type = hf_config.get("position_embedding_type", "absolute")
    if pos_type != "absolute":
        raise ConversionError("position_embedding_type %r is not supported (only \"absolute\")" % pos_type)
    missing = [k for k in REQUIRED_CONFIG_KEYS if k not in hf_config]
    if missing:
        raise ConversionError("config.json lacks %s" % ", ".join(missing))
    cfg = {k: int(hf_config[k]) for k in REQUIRED_CONFIG_KEYS}
    for key, default in DEFAULT_CONFIG.items():
        cfg[key] = hf_config.get(key, default)
    cfg["hidden_act"] = map_hidden_act(cfg["hidden_act"])
    for key in ("hidden_dropout_prob", "attention_probs_dropout_prob", "initializer_range"):
        cfg[key] = float(cfg[key])
    if cfg["hidden_size"] % cfg["num_attention_heads"]:
        raise ConversionError("hidden_size %d is not a multiple of num_attention_heads %d"
                              % (cfg["hidden_size"], cfg["num_attention_heads"]))
    eps = float(hf_config.get("layer_norm_eps", GOOGLE_LAYER_NORM_EPS))
    if eps != GOOGLE_LAYER_NORM_EPS:
        logger.warning("layer_norm_eps is %g, not Google's 1e-12: recorded in bert_config.json", eps)
        cfg["layer_norm_eps"] = eps
    return cfg


# --------------------------------------------------------------------------------------------------
# variable names
# --------------------------------------------------------------------------------------------------
def google_variable_shapes(config, num_labels=None):
    # type: (dict, Optional[int]) -> OrderedDict
    """Google variable name -> shape, for a bert_config.json dict and, with num_labels, run_classifier.py's
    classifier head (output_weights, output_bias). The exact set a converted checkpoint has."""
    h, i = config["hidden_size"], config["intermediate_size"]
    shapes = OrderedDict()
    shapes["bert/embeddings/word_embeddings"] = [config["vocab_size"], h]
    shapes["bert/embeddings/token_type_embeddings"] = [config["type_vocab_size"], h]
    shapes["bert/embeddings/position_embeddings"] = [config["max_position_embeddings"], h]
    shapes["bert/embeddings/LayerNorm/beta"] = [h]
    shapes["bert/embeddings/LayerNorm/gamma"] = [h]
    for n in range(config["num_hidden_layers"]):
        p = "bert/encoder/layer_%d/" % n
        for proj in ("query", "key", "value"):
            shapes[p + "attention/self/%s/kernel" % proj] = [h, h]
            shapes[p + "attention/self/%s/bias" % proj] = [h]
        shapes[p + "attention/output/dense/kernel"] = [h, h]
        shapes[p + "attention/output/dense/bias"] = [h]
        shapes[p + "attention/output/LayerNorm/beta"] = [h]
        shapes[p + "attention/output/LayerNorm/gamma"] = [h]
        shapes[p + "intermediate/dense/kernel"] = [h, i]
        shapes[p + "intermediate/dense/bias"] = [i]
        shapes[p + "output/dense/kernel"] = [i, h]
        shapes[p + "output/dense/bias"] = [h]
        shapes[p + "output/LayerNorm/beta"] = [h]
        shapes[p + "output/LayerNorm/gamma"] = [h]
    shapes["bert/pooler/dense/kernel"] = [h, h]
    shapes["bert/pooler/dense/bias"] = [h]
    if num_labels:
        shapes["output_weights"] = [num_labels, h]
        shapes["output_bias"] = [num_labels]
    return shapes


# Google variable -> Hugging Face tensor of BertForSequenceClassification: the one name table, read by the
# import (which HF tensor feeds each Google variable) and by the export (which HF name each checkpoint
# variable is written as). The first row whose pattern matches wins. {path} is a scope path, Google's
# "encoder/layer_3/attention/self/query" being HF's "encoder.layer.3.attention.self.query"; dense kernels are
# [in, out] in TF (x @ W) and [out, in] in torch (nn.Linear), hence transposed. The last column is the name
# older HF files gave the tensor (LayerNorm gamma/beta), accepted by the import only.
NAME_TABLE = (
    # Google,                            Hugging Face,                            transposed, older HF name
    ("bert/embeddings/{x}_embeddings", "bert.embeddings.{x}_embeddings.weight", False, None),
    ("bert/{path}/LayerNorm/gamma", "bert.{path}.LayerNorm.weight", False, "bert.{path}.LayerNorm.gamma"),
    ("bert/{path}/LayerNorm/beta", "bert.{path}.LayerNorm.bias", False, "bert.{path}.LayerNorm.beta"),
    ("bert/{path}/kernel", "bert.{path}.weight", True, None),
    ("bert/{path}/bias", "bert.{path}.bias", False, None),
    ("output_weights", "classifier.weight", False, None),  # [num_labels, hidden] in both: TF multiplies by W^T
    ("output_bias", "classifier.bias", False, None),
)
_PATTERNS = [(re.compile(google.replace("{x}", r"(?P<x>\w+)").replace("{path}", r"(?P<path>[\w/]+)") + "$"),
              hf, transposed, old) for google, hf, transposed, old in NAME_TABLE]


def hf_tensor_name(google_name):
    # type: (str) -> Optional[Tuple[str, bool, Optional[str]]]
    """Google variable name -> (HF tensor name, transposed?, older HF name or None), by NAME_TABLE.

    None for what no row matches: a checkpoint's other variables (global_step, Adam's slots, a pruning run's
    `_mask`, `_pruning_score`, `_pruning_tiles` and `_group_lasso_reweight`) are not model weights.
    """
    for pattern, hf, transposed, old in _PATTERNS:
        match = pattern.match(google_name)
        if match:
            groups = match.groupdict()
            if "path" in groups:  # layer_3 -> layer.3, "/" -> "."
                groups["path"] = re.sub(r"\blayer_(\d+)\b", r"layer.\1", groups["path"]).replace("/", ".")
            fill = lambda template: template.replace("{x}", groups.get("x", "")).replace(  # noqa: E731
                "{path}", groups.get("path", ""))
            return fill(hf), transposed, old and fill(old)
    return None


def _detect_prefix(names):
    # type: (List[str]) -> str
    """"bert." when the encoder tensors carry it (BertFor* checkpoints), else "" (bare BertModel)."""
    if any(n.startswith("bert.embeddings.") for n in names):
        return "bert."
    return ""


def map_hf_tensors(tensor_names, config, num_labels=None):
    # type: (List[str], dict, Optional[int]) -> Tuple[OrderedDict, List[str]]
    """Decides which HF tensor feeds which Google variable (NAME_TABLE), the classifier head's too when
    num_labels is given.

    Returns ({google_name: (hf_name, transpose)}, ignored HF names). Raises ConversionError naming every
    Google variable that has no source tensor.
    """
    prefix = _detect_prefix(tensor_names)
    local = lambda name: prefix + name[len("bert."):] if name.startswith("bert.") else name  # noqa: E731
    available = set(tensor_names)
    mapping = OrderedDict()
    missing = []
    for google_name in google_variable_shapes(config, num_labels):
        hf_name, transpose, old_name = hf_tensor_name(google_name)
        candidates = [local(n) for n in (hf_name, old_name) if n]
        found = [c for c in candidates if c in available]
        if found:
            mapping[google_name] = (found[0], transpose)
        else:
            missing.append("%s (from %s)" % (google_name, candidates[0]))
    if missing:
        raise ConversionError("missing %d tensor(s): %s" % (len(missing), "; ".join(missing)))
    used = set(src for src, _ in mapping.values())
    ignored = sorted(n for n in tensor_names if n not in used)
    return mapping, ignored


# --------------------------------------------------------------------------------------------------
# writing
# --------------------------------------------------------------------------------------------------
def _vocab_size(path):
    with open(path, "rb") as f:
        return sum(1 for _ in f)


def convert(hf_dir, output_dir):
    # type: (str, str) -> dict
    """Converts hf_dir (config.json, vocab.txt, model.safetensors) into output_dir in Google's layout.

    Files are written to a temporary directory first and moved in with bert_config.json last, so an
    output_dir that has bert_config.json holds a complete checkpoint. Returns a summary dict.
    """
    config_path = os.path.join(hf_dir, "config.json")
    vocab_path = os.path.join(hf_dir, "vocab.txt")
    for path in (config_path, vocab_path):
        if not os.path.exists(path):
            raise ConversionError("%s does not exist" % path)
    with open(config_path) as f:
        hf_config = json.load(f)
    config = convert_config(hf_config)

    headers = OrderedDict()  # tensor name -> (file, header entry)
    for path in _safetensors_files(hf_dir):
        header, _, _ = read_safetensors_header(path)
        for name, entry in header.items():
            headers[name] = (path, entry)
    head = headers.get("classifier.weight") or headers.get("classifier.bias")  # a BertForSequenceClassification
    num_labels = int(head[1]["shape"][0]) if head and head[1]["shape"] else None
    mapping, ignored = map_hf_tensors(list(headers), config, num_labels)

    expected = google_variable_shapes(config, num_labels)
    bad = []
    for google_name, (src, transpose) in mapping.items():
        src_shape = [int(d) for d in headers[src][1]["shape"]]
        shape = src_shape[::-1] if transpose else src_shape
        if shape != expected[google_name]:
            bad.append("%s: %s has shape %s, expected %s%s" % (
                google_name, src, src_shape, expected[google_name][::-1] if transpose else expected[google_name],
                " (before transposing)" if transpose else ""))
    if bad:
        raise ConversionError("wrong shape for %d tensor(s): %s" % (len(bad), "; ".join(bad)))

    by_file = OrderedDict()
    for google_name, (src, _) in mapping.items():
        by_file.setdefault(headers[src][0], []).append(src)
    tensors = {}
    for path, names in by_file.items():
        tensors.update(read_safetensors(path, names))
    arrays = OrderedDict()
    for google_name, (src, transpose) in mapping.items():
        value = tensors.pop(src)
        if value.dtype != np.float32:
            value = value.astype(np.float32)
        arrays[google_name] = np.ascontiguousarray(value.T if transpose else value)

    vocab_lines = _vocab_size(vocab_path)
    if vocab_lines != config["vocab_size"]:
        logger.warning("vocab.txt has %d lines but vocab_size is %d", vocab_lines, config["vocab_size"])
    if ignored:
        logger.info("ignored %d tensor(s) not used by the encoder: %s", len(ignored), ", ".join(ignored))

    output_dir = os.path.abspath(output_dir)
    with written_config_last(output_dir, "bert_config.json") as tmp_dir:
        write_tf_checkpoint(arrays, os.path.join(tmp_dir, CKPT_NAME))
        shutil.copyfile(vocab_path, os.path.join(tmp_dir, "vocab.txt"))
        with open(os.path.join(tmp_dir, "bert_config.json"), "w") as f:
            json.dump(config, f, sort_keys=True, indent=2)
            f.write("\n")

    return {
        "hf_dir": hf_dir,
        "output_dir": output_dir,
        "config": config,
        "source_hidden_act": hf_config.get("hidden_act", "gelu"),
        "num_variables": len(arrays),
        "num_labels": num_labels,
        "num_parameters": int(sum(a.size for a in arrays.values())),
        "ignored": ignored,
        "vocab_lines": vocab_lines,
    }


def summary_line(summary):
    # type: (dict) -> str
    c = summary["config"]
    line = ("converted %s -> %s: %d variables, %.1fM parameters (L=%d H=%d A=%d I=%d vocab=%d, hidden_act=%s)"
            % (summary["hf_dir"], summary["output_dir"], summary["num_variables"],
               summary["num_parameters"] / 1e6, c["num_hidden_layers"], c["hidden_size"],
               c["num_attention_heads"], c["intermediate_size"], c["vocab_size"], c["hidden_act"]))
    if summary["num_labels"]:
        line += "; with the classifier head for %d labels" % summary["num_labels"]
    if summary["ignored"]:
        line += "; ignored %s" % ", ".join(summary["ignored"])
    return line


def is_complete(output_dir):
    # type: (str) -> bool
    """True if output_dir holds a whole Google-layout checkpoint."""
    return all(os.path.isfile(os.path.join(output_dir, n)) for n in CHECKPOINT_FILES)


HF_EXPORT_COMMAND = "python -m bert.serving.hf_export --output_dir RUN_DIR --hf_dir DIR"


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    if any(arg == "--to_hf" or arg.startswith("--to_hf=") for arg in argv):
        print("error: --to_hf is gone from this command: export a fine-tuned run with `%s`" % HF_EXPORT_COMMAND,
              file=sys.stderr)
        return 2
    parser = argparse.ArgumentParser(
        prog="python -m bert.data.convert_checkpoint",
        description="Convert a Hugging Face BERT (config.json, vocab.txt, model.safetensors) to Google's "
                    "TF checkpoint layout (bert_config.json, vocab.txt, bert_model.ckpt.*). The way back, a "
                    "fine-tuned run to Hugging Face's layout: `%s`." % HF_EXPORT_COMMAND)
    parser.add_argument("--hf_dir", required=True,
                        help="the Hugging Face model directory to read (config.json, vocab.txt, model.safetensors)")
    parser.add_argument("--output_dir", required=True, help="where to write the Google-layout checkpoint")
    args = parser.parse_args(argv)
    return print_outcome(lambda: summary_line(convert(args.hf_dir, args.output_dir)), ConversionError)


def print_outcome(conversion: Callable[[], str], errors) -> int:
    """A conversion command's ending, here and in bert.serving.hf_export: its summary line, or its one-line
    `error:` (for `errors`, the mistakes a user can fix) with exit status 1."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s: %(message)s")
    try:
        line = conversion()
    except errors as e:
        print("error: %s" % e, file=sys.stderr)
        return 1
    print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
