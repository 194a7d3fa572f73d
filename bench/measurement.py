"""What every benchmark's results file says about its measurement: the command, commit, time, stack and load."""
import datetime
import os
import platform
import subprocess
import sys
from typing import List, Optional, Sequence

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def about(details: str, load_before: float, tf_version: str) -> str:
    """"`python bench/<script> <args>` at commit C, <time>; TensorFlow V on Python P, N cores; <details>; load
    average L before, L' after." for the running script."""
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, stdout=subprocess.PIPE,
                            universal_newlines=True).stdout.strip()
    script = os.path.relpath(os.path.abspath(sys.argv[0]), REPO)
    return "`%s` at commit %s, %s; TensorFlow %s on Python %s, %d cores; %s; load average %.2f before, %.2f after." % (
        " ".join(["python", script] + sys.argv[1:]), commit, datetime.datetime.now().strftime("%Y-%m-%d %H:%M"),
        tf_version, platform.python_version(), os.cpu_count(), details, load_before, os.getloadavg()[0])


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> List[str]:
    return (["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
            + ["| " + " | ".join(row) + " |" for row in rows])


def report(lines: Sequence[str], output: Optional[str]) -> None:
    """Prints a benchmark's result (its `about` line, a blank line, the table, ...) and appends it to `output`."""
    print("\n".join(lines))
    if output:
        with open(output, "a") as f:
            f.write("\n".join([""] + list(lines)) + "\n")
