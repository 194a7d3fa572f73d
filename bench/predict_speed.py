"""How fast does bert.serving.predict label raw text? Examples/s on MRPC dev's 408 raw pairs (a measurement, not a test).

    .venv/bin/python bench/predict_speed.py --model_dir RUN_DIR [--glue_dir ../shared/glue_data] [--rounds 5]
        [--batch_size 32] [--output bench/predict_speed.md]

RUN_DIR is a fine-tuned MRPC run (run_classifier.py's --output_dir). Two rates:
- the command, as users run it: `python -m bert.serving.predict --input_file=<the pairs> --output_file=...`, one
  subprocess per round, wall time from start to exit (TensorFlow's import, graph building and the
  checkpoint's restore included: what one call on a file this size costs);
- the model in a running process: one bert.serving.predict.Predictor, a warm-up pass over the pairs, then `--rounds`
  timed passes of Predictor.predict (tokenization, batching by length and the model), with the tokenization's
  share timed on its own (features.convert_examples on the same pairs).
Each figure is the median over the rounds. Run it on an idle machine: another job on the cores changes every figure.
"""
import argparse
import datetime
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time


from bert.data import features, processors
from bert import run_info
from bert.serving import predict
from bert.compat import TF_VERSION

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def output(command) -> str:
    return subprocess.run(command, cwd=REPO, stdout=subprocess.PIPE, universal_newlines=True).stdout.strip()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model_dir", required=True, help="a fine-tuned MRPC run")
    parser.add_argument("--glue_dir", default=os.path.join(os.path.dirname(REPO), "shared", "glue_data"))
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--batch_size", type=int, default=32)
    parser.add_argument("--output", help="also write the results to this markdown file")
    args = parser.parse_args()

    run = run_info.read_run(args.model_dir)
    if run.task.name != "MRPC":
        sys.exit("%s is a %s run: this bench predicts MRPC dev" % (args.model_dir, run.task.name))
    examples = processors.read_examples("MRPC", os.path.join(args.glue_dir, "MRPC"), "dev")
    with tempfile.TemporaryDirectory() as scratch:
        pairs = os.path.join(scratch, "pairs.tsv")
        with open(pairs, "w", encoding="utf-8") as f:
            f.write("".join("%s\t%s\n" % (e.text_a, e.text_b) for e in examples))
        command = [sys.executable, "-m", "bert.serving.predict", "--model_dir=" + args.model_dir, "--input_file=" + pairs,
                   "--output_file=" + os.path.join(scratch, "out.tsv"), "--batch_size=%d" % args.batch_size]
        wall = []
        for _ in range(args.rounds):
            start = time.time()
            subprocess.run(command, cwd=REPO, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            wall.append(time.time() - start)

    predictor = predict.Predictor(run, batch_size=args.batch_size)
    predictor.predict(examples)  # warm-up: the session's first runs of each shape
    passes, tokenizing = [], []
    for _ in range(args.rounds):
        start = time.time()
        features.convert_examples(examples, run.task, predictor.max_seq_length, predictor.tokenizer)
        tokenizing.append(time.time() - start)
        start = time.time()
        predictor.predict(examples)
        passes.append(time.time() - start)
    predictor.close()

    n = len(examples)
    commit = output(["git", "rev-parse", "--short", "HEAD"]) + (" dirty" if output(["git", "status", "--porcelain"])
                                                                 else "")
    lines = [
        "# bert.serving.predict speed: MRPC dev raw pairs",
        "",
        "`%s` at commit `%s`, %s, TensorFlow %s on Python %s, %s cores, %s." % (
            " ".join(["python", "bench/predict_speed.py"] + sys.argv[1:]), commit, platform.machine(), TF_VERSION,
            platform.python_version(), os.cpu_count(), datetime.datetime.now().strftime("%Y-%m-%d %H:%M")),
        "%d pairs, batch %d, max_seq_length %d, model %s; medians of %d rounds." % (
            n, args.batch_size, predictor.max_seq_length, run.checkpoint, args.rounds),
        "",
        "| what | seconds | examples/s |",
        "|---|---|---|",
        "| `python -m bert.serving.predict` on the file, start to exit | %.2f | %.1f |" % (
            statistics.median(wall), n / statistics.median(wall)),
        "| Predictor.predict in a running process (tokenization and model) | %.2f | %.1f |" % (
            statistics.median(passes), n / statistics.median(passes)),
        "| of which tokenization (features.convert_examples) | %.2f | %.1f |" % (
            statistics.median(tokenizing), n / statistics.median(tokenizing)),
    ]
    text = "\n".join(lines) + "\n"
    print(text)
    if args.output:
        with open(args.output, "w") as f:
            f.write(text)


if __name__ == "__main__":
    main()
