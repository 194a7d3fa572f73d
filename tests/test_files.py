"""bert.files: one file layer for local paths (Python's) and URLs (TensorFlow's), used by every module
that reads or writes data, vocab, config, cache or results files."""
import ast
import subprocess
import sys
from pathlib import Path

import pytest

from bert import files, modeling, tokenization
from bert.data import features, processors
from bert.compat import IS_TF2
from conftest import REPO_ROOT, tfrecord_examples

# Modules that must reach files only through bert.files (add a module here once it is converted).
THROUGH_BERT_FILES = ["bert/data/processors.py", "bert/tokenization.py", "bert/data/features.py", "bert/modeling.py",
                      "bert/run_classifier.py", "bert/run_info.py", "bert/sweeps/runs.py", "bert/sweeps/report.py",
                      "bert/sweeps/submission.py"]

# Calls that touch files directly; tf.gfile / tf.io.gfile (any name with a `gfile` part) count too.
DIRECT_CALLS = {"open", "io.open", "os.path.exists", "os.path.isfile", "os.path.isdir", "os.path.getsize",
                "os.listdir", "os.scandir", "os.makedirs", "os.mkdir", "os.remove", "os.unlink", "os.rmdir",
                "os.rename", "os.replace", "glob.glob"}
DIRECT_MODULES = {"shutil", "glob", "pathlib"}
PATHLIB_METHODS = {"read_text", "write_text", "read_bytes", "write_bytes"}

ON_TF2_ONLY = pytest.mark.skipif(not IS_TF2, reason="TF 1.15 has no in-memory file system (ram:// paths raise "
                                                    "UnimplementedError there)")


def _dotted(node: ast.AST) -> str:
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
    return ".".join(reversed(parts))


def direct_file_access(source: str):
    """(line, what) for every file access in `source` that bypasses bert.files."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call):
            names = [_dotted(node.func)]
            names = [n for n in names if n in DIRECT_CALLS or n.split(".")[-1] in PATHLIB_METHODS]
        elif isinstance(node, ast.Attribute):
            names = [_dotted(node)] if node.attr == "gfile" else []
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names if alias.name.split(".")[0] in DIRECT_MODULES]
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            names = [module + "." + alias.name for alias in node.names
                     if module.split(".")[0] in DIRECT_MODULES or module + "." + alias.name in DIRECT_CALLS]
        else:
            names = []
        found += [(node.lineno, name) for name in names]
    return found


def test_the_static_check_finds_each_kind_of_direct_access():
    source = "\n".join(["open(p)", "io.open(p)", "os.path.isfile(p)", "os.makedirs(p)", "tf.gfile.Exists(p)",
                        "x = tf.io.gfile", "Path(p).read_text()", "import shutil", "from glob import glob",
                        "from os.path import exists", "from os import path",
                        "files.open(p)", "files.isfile(p)", "np.load(io.BytesIO(b))", "os.path.join(a, b)"])
    assert sorted(direct_file_access(source)) == [
        (1, "open"), (2, "io.open"), (3, "os.path.isfile"), (4, "os.makedirs"), (5, "tf.gfile"), (6, "tf.io.gfile"),
        (7, "read_text"), (8, "shutil"), (9, "glob.glob"), (10, "os.path.exists")]


@pytest.mark.parametrize("module", THROUGH_BERT_FILES)
def test_modules_access_files_only_through_bert_files(module):
    assert direct_file_access((REPO_ROOT / module).read_text(encoding="utf-8")) == []


# ---------------------------------------------------------------- the same behaviour for local paths and URLs

def url_root(scheme, folder) -> str:
    """An empty folder at a URL, reached through TensorFlow's file layer (tf.io.gfile) like gs://: in TF 2's in-memory
    file system (ram://, one per process: named after the test's own temporary folder), or `folder` on the local disk
    as a file:// URL, which TF 1.15 has too and which Python's own open() cannot read (so a file reached there went
    through TensorFlow's layer)."""
    if scheme == "ram":
        return "ram://%s/%s" % (folder.parent.name, folder.name)
    folder.mkdir()
    return "file://%s" % folder


@pytest.fixture(params=["local", "file", pytest.param("ram", marks=ON_TF2_ONLY)])
def root(request, tmp_path) -> str:
    """An empty folder on the local disk, or at a URL (url_root)."""
    return str(tmp_path) if request.param == "local" else url_root(request.param, tmp_path / "url")


def test_file_operations(root):
    folder = root + "/a/b"
    files.makedirs(folder)
    files.makedirs(folder)  # exists already: nothing happens
    assert files.isdir(folder) and not files.isfile(folder) and not files.exists(folder + "/x.txt")
    text = u"héllo\r\nstray\rcr\n"  # read back as Python reads it: universal newlines
    with files.open(folder + "/x.txt", "w") as f:
        f.write(text)
    files.write_atomically(folder + "/y.bin", text.encode("utf-8"))
    with files.open(folder + "/x.txt") as f:
        assert list(f) == [u"héllo\n", u"stray\n", u"cr\n"]
    with files.open(folder + "/y.bin", "rb") as f:
        assert list(f) == [u"héllo\r\n".encode("utf-8"), b"stray\rcr\n"]  # bytes: lines end at \n only
    with files.open(folder + "/x.txt", "a") as f:
        f.write(u"more")
    with files.open(folder + "/x.txt", "rb") as f:
        assert f.read() == (text + u"more").encode("utf-8")
    assert files.isfile(folder + "/x.txt") and not files.isdir(folder + "/x.txt")
    assert files.listdir(folder) == ["x.txt", "y.bin"] and files.listdir(root + "/a") == ["b"]
    assert files.glob(folder + "/*.txt") == [folder + "/x.txt"]
    files.replace(folder + "/y.bin", folder + "/x.txt")
    with files.open(folder + "/x.txt", "rb") as f:
        assert f.read() == text.encode("utf-8")
    files.remove(folder + "/x.txt")
    assert files.listdir(folder) == []
    with pytest.raises(FileNotFoundError):
        files.open(folder + "/x.txt")


def test_atomic_write_leaves_the_old_file_when_the_writer_fails(root):
    path = root + "/results.txt"
    files.write_atomically(path, u"old\n")
    with pytest.raises(RuntimeError):
        with files.replaced_atomically(path) as temporary:
            with files.open(temporary, "w") as f:
                f.write(u"half")
            raise RuntimeError("killed")
    with files.open(path) as f:
        assert f.read() == u"old\n"
    assert files.listdir(root) == ["results.txt"]  # the temporary file is gone


@pytest.mark.parametrize("scheme", ["file", pytest.param("ram", marks=ON_TF2_ONLY)])
def test_task_vocab_config_and_feature_cache_at_a_url(tmp_path, glue_dir, vocab_file, bert_dir, monkeypatch, scheme):
    """RTE, the vocab and the config copied to a URL read exactly like the local copies, and the feature
    cache builds and reuses its entries there. One dev row gets a stray CR inside a sentence: GFile's own
    readline would drop it."""
    local, url = tmp_path / "RTE", url_root(scheme, tmp_path / "url")
    local.mkdir()
    dev = (glue_dir / "RTE" / "dev.tsv").read_bytes().split(b"\n")
    dev[5] = dev[5].replace(b" ", b" \r", 1)
    contents = {"RTE/dev.tsv": b"\n".join(dev), "RTE/train.tsv": (glue_dir / "RTE" / "train.tsv").read_bytes(),
                "vocab.txt": Path(vocab_file).read_bytes(),
                "bert_config.json": (bert_dir / "bert_config.json").read_bytes()}
    files.makedirs(url + "/RTE")
    for name, data in contents.items():
        (tmp_path / name).write_bytes(data)
        files.write_atomically(url + "/" + name, data)

    task = processors.get_task("RTE")
    for split in ("dev", "train"):
        assert processors.read_examples(task, url + "/RTE", split) == processors.read_examples(task, str(local), split)
    examples = processors.read_examples(task, url + "/RTE", "dev")
    assert len(examples) == 277 and "\r" in examples[4].text_a
    assert (modeling.BertConfig.from_json_file(url + "/bert_config.json")
            == modeling.BertConfig.from_json_file(str(tmp_path / "bert_config.json")))
    tokenizer = tokenization.FullTokenizer(url + "/vocab.txt")
    assert tokenizer.vocab == tokenization.FullTokenizer(str(tmp_path / "vocab.txt")).vocab

    def cached(cache_dir, data_dir, vocab):
        cache = features.FeatureCache(cache_dir, tokenizer, vocab, True, 64)
        return cache.tfrecord(task, data_dir, "dev", examples, padding=3)

    on_disk = cached(str(tmp_path / "cache"), str(local), str(tmp_path / "vocab.txt"))
    at_url = cached(url + "/cache", url + "/RTE", url + "/vocab.txt")
    assert at_url.path.startswith(url + "/cache/") and list(at_url.lengths) == list(on_disk.lengths)
    assert tfrecord_examples(at_url.path) == tfrecord_examples(on_disk.path)
    monkeypatch.setattr(features, "convert_examples", lambda *args: pytest.fail("tokenized again"))
    reused = cached(url + "/cache", url + "/RTE", url + "/vocab.txt")
    assert reused.path == at_url.path and list(reused.lengths) == list(at_url.lengths)


def test_local_files_need_no_tensorflow(glue_dir, vocab_file):
    """The GLUE reader and the tokenizer (and the sweep and report processes) run without loading TensorFlow."""
    script = "\n".join([
        "import sys",
        "from bert import tokenization; from bert.data import processors",
        "examples = processors.read_examples('RTE', sys.argv[1], 'dev')",
        "tokens = tokenization.FullTokenizer(sys.argv[2]).tokenize(examples[0].text_a)",
        "assert len(examples) == 277 and tokens[:2] == ['dana', 'reeve'], tokens",
        "assert 'tensorflow' not in sys.modules, 'TensorFlow was imported'",
    ])
    done = subprocess.run([sys.executable, "-c", script, str(glue_dir / "RTE"), vocab_file], cwd=str(REPO_ROOT),
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True, timeout=600)
    assert done.returncode == 0, done.stderr


WHOLE_RUN_AT_A_URL = r'''
import json, sys
from bert import files, flags, run_classifier
glue, vocab, config, out, url = sys.argv[1:6]
for name in ("train.tsv", "dev.tsv", "test.tsv"):
    files.makedirs(url + "/glue/WNLI")
    with open("%s/WNLI/%s" % (glue, name), "rb") as source, files.open(url + "/glue/WNLI/" + name, "wb") as target:
        target.write(source.read())
files.makedirs(url + "/model")
for path, name in ((vocab, "/model/vocab.txt"), (config, "/model/bert_config.json")):
    with open(path, "rb") as source, files.open(url + name, "wb") as target:
        target.write(source.read())
flags.FLAGS(["run_classifier", "--task_name=WNLI", "--data_dir=%s/glue/WNLI" % url,
             "--vocab_file=%s/model/vocab.txt" % url, "--bert_config_file=%s/model/bert_config.json" % url,
             "--output_dir=%s/out" % url, "--do_train=true", "--do_eval=true", "--do_predict=true",
             "--max_seq_length=32", "--train_batch_size=16", "--num_train_epochs=0.5",
             "--eval_batch_size=64", "--predict_batch_size=64"])
run_classifier.main(None)
with open(out, "w") as f:  # what the run left at the URL, for the test to read
    json.dump({name: files.open(url + "/out/" + name).read() for name in files.listdir(url + "/out")
               if name.endswith((".txt", ".tsv", ".json"))}, f)
'''


def test_a_whole_run_reads_and_writes_at_a_url(tmp_path, glue_dir, vocab_file):
    """A TPU user's layout: data, vocab, config and output dir all at URLs standing in for gs://: ram:// on TF 2,
    file:// on TF 1.15 (which has no ram://), each reached through the stack's tf.io.gfile only."""
    import json
    from conftest import TINY_BERT_CONFIG
    url = url_root("ram" if IS_TF2 else "file", tmp_path / "url")
    (tmp_path / "bert_config.json").write_text(json.dumps(TINY_BERT_CONFIG))
    done = subprocess.run([sys.executable, "-c", WHOLE_RUN_AT_A_URL, str(glue_dir), vocab_file,
                           str(tmp_path / "bert_config.json"), str(tmp_path / "out.json"), url], cwd=str(REPO_ROOT),
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:]
    written = json.loads((tmp_path / "out.json").read_text())
    assert {"eval_results.txt", "test_results.tsv", "run_info.json", "data_stats.json", "train_loss.tsv"} <= set(written)
    assert "global_step = 19" in written["eval_results.txt"]
    assert len(written["test_results.tsv"].splitlines()) == 146
    assert json.loads(written["run_info.json"])["settings"]["data_dir"]["path"] == url + "/glue/WNLI"
    if not IS_TF2:  # the files are on the local disk, where the URL points
        assert (tmp_path / "url" / "out" / "eval_results.txt").read_text() == written["eval_results.txt"]
