"""The sweeps' settings: their defaults (bert/sweeps/defaults.py) as the scripts and README.md document them."""
import re

from bert.sweeps import defaults
from conftest import REPO_ROOT


def documented(script):
    """{NAME: value} of the `NAME=value` and `NAME="value"` in the script's header comment."""
    header = [line for line in (REPO_ROOT / script).read_text().splitlines() if line.startswith("#")]
    found = (match for line in header for match in re.finditer(r'\b([A-Z_]+)=(?:"([^"]*)"|(\S*))', line))
    return {match.group(1): match.group(2) if match.group(2) is not None else match.group(3) for match in found}


def test_the_scripts_document_the_defaults_the_sweeps_use():
    run_all = documented("run_all.sh")
    assert {name: run_all[name] for name, value in defaults.RUN_ALL.items() if value} == \
        {name: value for name, value in defaults.RUN_ALL.items() if value}
    run_pruning = documented("run_pruning.sh")
    own = {name: value for name, value in defaults.RUN_PRUNING.items()
           if value and defaults.RUN_ALL.get(name) != value}  # the rest: "as for run_all.sh"
    assert {name: run_pruning[name] for name in own} == own
    assert all(run_pruning[name] == value for name, value in defaults.RUN_PRUNING.items()
               if value and name in run_pruning)


def test_the_readme_documents_run_all_s_defaults():
    readme = (REPO_ROOT / "README.md").read_text()
    rows = {}
    for line in readme.splitlines():
        found = re.match(r"^\| (`[A-Z_]+`(?:, `[A-Z_]+`)*) \| ([^|]*) \|", line)
        if found:
            names = re.findall(r"`([A-Z_]+)`", found.group(1))
            values = re.findall(r"`([^`]*)`", found.group(2))
            if len(values) == len(names):
                rows.update(zip(names, values))
    assert {name: rows[name] for name, value in defaults.RUN_ALL.items() if value} == \
        {name: value for name, value in defaults.RUN_ALL.items() if value}
