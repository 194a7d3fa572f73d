"""Does pruning slow dense-shaped training down? (issue 15, part 6: by no more than 10%; a measurement, not a test)

    .venv/bin/python bench/pruning_speed.py [--rounds 2] [--steps 150] [--variants weight global block taylor ...]

Trains MRPC (embedded checkpoint, batch 32, max_seq_length 128, lr 2e-5, seed 42: the same batches in every run)
with bert/run_classifier.py, one subprocess per run: dense, and each variant at the same shapes (the masks
multiply the weights; no matrix gets smaller). The pruning variants use the gradual schedule with mask updates
every 10 steps from 0 to 70% of the steps, so updates fall inside the measured steps.

A run's rate is taken between its first progress line (~30 s in: graph building, the checkpoint's restore, the
first batch's one-off work and the first steps are behind it) and its last one (the last step, before the final
checkpoint save): each line gives the examples/s since the session started, so two lines give the time between
them. A run too short for two lines falls back to run_info.json's rate (after the first batch, final save included).
The windows start at different steps (slower runs reach 30 s earlier), so with dynamic padding they hold slightly
different batches; the ratio over all steps (the last line's rate: the same batches in every run, the first
batch's one-off work included) is reported beside it as a check.

The runs alternate, dense / variant / dense / variant ..., the variants' order reversed every other round, and
each variant is compared with the mean of the two dense runs beside it: this VM's speed drifts by ~10% within an
hour, as much as the bar, so rates measured far apart would compare the drift, not the settings.
"""
import argparse
import datetime
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile

from bert.compression import pruning  # the schedule's rule, without TensorFlow's graph

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GRADUAL = ["--pruning_schedule=gradual", "--pruning_begin=0", "--pruning_end=0.7", "--pruning_frequency=10"]
VARIANTS = {  # name -> flags beside the dense run's
    "weight": ["--target_sparsity=0.5", "--pruning_granularity=weight", "--pruning_scope=per_matrix"] + GRADUAL,
    "global": ["--target_sparsity=0.5", "--pruning_granularity=weight", "--pruning_scope=global"] + GRADUAL,
    "block": ["--target_sparsity=0.5", "--pruning_granularity=block"] + GRADUAL,
    "taylor": ["--target_sparsity=0.5", "--pruning_score=taylor"] + GRADUAL,
    "group_lasso": ["--group_lasso=1e-4"],
}
PROGRESS = re.compile(r"train step (\d+)/(\d+) .*?([\d.]+) examples/s")
BATCH = 32


def mask_updates(steps: int, first: int, last: int) -> int:
    """Mask updates after steps first+1..last of a run with the variants' schedule (begin 0, end 0.7, every 10)."""
    return sum(1 for s in pruning.update_steps(pruning.PruningConfig(0.5, begin=0.0, end=0.7, frequency=10), steps)
               if first < s <= last)


def train(args, flags: list, run_dir: str) -> dict:
    """One run_classifier.py training run: its rate (examples/s), the steps it is measured over and how, and the
    rate of all its steps, the first batch included ("whole", the last progress line's)."""
    command = [args.python, "-m", "bert.run_classifier", "--task_name=MRPC", "--do_train=true",
               "--data_dir=" + os.path.join(args.glue_dir, "MRPC"),
               "--vocab_file=" + os.path.join(args.bert_dir, "vocab.txt"),
               "--bert_config_file=" + args.bert_config_file, "--init_checkpoint=" + args.init_checkpoint,
               "--max_seq_length=128", "--train_batch_size=%d" % BATCH, "--learning_rate=2e-5", "--seed=42",
               "--num_train_epochs=%.6f" % args.epochs, "--save_checkpoints_steps=1000000",
               "--feature_cache_dir=" + os.path.join(args.work_dir, "feature_cache"), "--output_dir=" + run_dir] + flags
    done = subprocess.run(command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True)
    if done.returncode != 0:
        sys.exit("run failed (%s):\n%s" % (" ".join(command), "\n".join(done.stdout.splitlines()[-20:])))
    lines = [(int(step), int(total), float(rate)) for step, total, rate in PROGRESS.findall(done.stdout)]
    steps = lines[-1][1]
    if len(lines) >= 2 and lines[-1][0] > lines[0][0]:
        (first, _, r1), (last, _, r2) = lines[0], lines[-1]  # rate = step * BATCH / seconds since the session began
        return {"rate": (last - first) * BATCH / (last * BATCH / r2 - first * BATCH / r1), "first": first,
                "last": last, "steps": steps, "how": "log", "whole": r2}
    with open(os.path.join(run_dir, "run_info.json")) as f:
        invocation = json.load(f)["invocations"][-1]
    return {"rate": invocation["timed_examples"] / invocation["timed_seconds"], "first": 1, "last": steps,
            "steps": steps, "how": "run_info", "whole": lines[-1][2]}


def shown(path: str) -> str:
    return os.path.relpath(path, REPO) if path and os.path.abspath(path).startswith(REPO + os.sep) else path or "none"


def output(command: list) -> str:
    return subprocess.run(command, cwd=REPO, stdout=subprocess.PIPE, universal_newlines=True).stdout.strip()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--python", default=os.path.join(REPO, ".venv", "bin", "python"))
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--steps", type=int, default=150, help="training steps per run (MRPC: 115 per epoch)")
    parser.add_argument("--variants", nargs="+", choices=list(VARIANTS), default=list(VARIANTS))
    parser.add_argument("--output", default=os.path.join(REPO, "bench", "pruning_speed.md"))
    parser.add_argument("--work_dir", default=tempfile.gettempdir(), help="a temporary dir is made in it for the runs")
    parser.add_argument("--glue_dir",
                        default=os.environ.get("GLUE_DIR", os.path.join(REPO, "..", "shared", "glue_data")))
    parser.add_argument("--bert_dir", default=os.path.join(REPO, "uncased_L-6_H-384_A-12"))
    parser.add_argument("--bert_config_file", help="default: BERT_DIR/bert_config.json")
    parser.add_argument("--init_checkpoint", help="default: BERT_DIR/bert_model.ckpt; '' for random weights")
    args = parser.parse_args()
    args.bert_config_file = args.bert_config_file or os.path.join(args.bert_dir, "bert_config.json")
    if args.init_checkpoint is None:
        args.init_checkpoint = os.path.join(args.bert_dir, "bert_model.ckpt")
    with open(os.path.join(args.glue_dir, "MRPC", "train.tsv"), encoding="utf-8") as f:
        examples = sum(1 for line in f if line.strip()) - 1  # a header line
    args.epochs = (args.steps + 0.5) * BATCH / examples  # run_classifier.py: int(examples / batch * epochs) steps

    # dense, v1, dense, v2, ..., dense: every variant between two dense runs; the order reversed every other round
    order = [v for r in range(args.rounds) for v in (args.variants[::-1] if r % 2 else args.variants)]
    plan = ["dense"] + [name for v in order for name in (v, "dense")]
    load_before = os.getloadavg()
    args.work_dir = tempfile.mkdtemp(prefix="pruning_speed_", dir=args.work_dir)
    runs = []
    try:
        for i, name in enumerate(plan):
            run = train(args, VARIANTS.get(name, []), os.path.join(args.work_dir, "run"))
            shutil.rmtree(os.path.join(args.work_dir, "run"))  # a checkpoint with Adam's slots: ~300 MB
            runs.append(dict(run, name=name))
            print("(%d/%d) %s: %.2f examples/s over steps %d-%d (%s)" % (
                i + 1, len(plan), name, run["rate"], run["first"], run["last"], run["how"]), flush=True)
    finally:
        shutil.rmtree(args.work_dir, ignore_errors=True)

    rows, failed = [], []
    for v in args.variants:
        at = [i for i, run in enumerate(runs) if run["name"] == v]
        ratios, wholes = ([2 * runs[i][key] / (runs[i - 1][key] + runs[i + 1][key]) for i in at]
                          for key in ("rate", "whole"))
        ratio = sum(ratios) / len(ratios)
        updates = [mask_updates(runs[i]["steps"], runs[i]["first"], runs[i]["last"]) for i in at]
        passed = ratio >= 0.9
        failed += [] if passed else [v]
        rows.append("| %s | `%s` | %s | %s | %s | %.3f | %.1f%% | %.3f | %s | %s |" % (
            v, " ".join(VARIANTS[v]), " / ".join("%.1f" % runs[i]["rate"] for i in at),
            " / ".join("%.1f" % ((runs[i - 1]["rate"] + runs[i + 1]["rate"]) / 2) for i in at),
            " / ".join("%.3f" % r for r in ratios), ratio, 100 * (1 - ratio), sum(wholes) / len(wholes),
            " / ".join(map(str, updates)) if v != "group_lasso" else "-", "pass" if passed else "FAIL"))
    commit = output(["git", "rev-parse", "--short", "HEAD"])
    commit += " dirty" if output(["git", "status", "--porcelain"]) else ""
    cpu = re.search(r"^model name\s*:\s*(.*)$", open("/proc/cpuinfo").read(), re.M)
    tf_version = output([args.python, "-c", "import tensorflow as tf, platform; print(tf.__version__, 'on Python',"
                                            " platform.python_version())"])
    lines = [
        "# Pruning speed: training throughput of pruning runs against dense runs of the same shapes", "",
        "Command: `%s`" % " ".join(["python bench/pruning_speed.py"] + sys.argv[1:]), "",
        "Commit `%s`, %s. Machine: %s, %s cores (nproc), %s; TensorFlow %s. Load average (1 min) %.2f before, "
        "%.2f after." % (commit, datetime.datetime.now().strftime("%Y-%m-%d %H:%M"), cpu.group(1) if cpu else "?",
                         output(["nproc"]), platform.machine(), tf_version, load_before[0], os.getloadavg()[0]), "",
        "MRPC, batch %d, max_seq_length 128, lr 2e-5, seed 42, %d steps per run, config `%s`, init checkpoint `%s`. "
        "Runs in this order: %s. Rates are examples/s between each run's first progress line and its last step "
        "(run_info's rate after the first batch where a run printed one line only); ratio = the variant's rate over "
        "the mean of the two dense runs beside it, one per round, then their mean; \"ratio, all steps\" = the same "
        "from the rates over all steps, the first batch included (the same batches in every run: the measured "
        "windows start ~30 s in, so at different steps); mask updates = those within the measured steps." % (
            BATCH, runs[0]["steps"], shown(args.bert_config_file), shown(args.init_checkpoint), ", ".join(plan)), "",
        "| variant | flags | examples/s | dense beside it | ratio per round | ratio | slowdown | ratio, all steps | "
        "mask updates | bar (at most 10% slower) |", "|---|---|---|---|---|---|---|---|---|---|"] + rows + [
        "", "Every run (steps measured, how): " + "; ".join(
            "%s %.1f (%d-%d, %s)" % (run["name"], run["rate"], run["first"], run["last"], run["how"]) for run in runs),
        "", "Every variant passes the bar." if not failed else "Not within the bar: %s." % ", ".join(failed)]
    with open(args.output, "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(rows) + "\nwrote %s" % args.output)


if __name__ == "__main__":
    main()
