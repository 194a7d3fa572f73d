"""The documents say what the code does: docs/flags.md is what the flag definitions give, and every command in
README.md and docs/ names a module that exists and only flags that module accepts."""
import re
import subprocess
import sys
from functools import lru_cache

import pytest

from conftest import REPO_ROOT

pytestmark = pytest.mark.one_stack("tf2")  # the pages and the flag definitions are the same on both stacks

PAGES = [REPO_ROOT / "README.md"] + sorted((REPO_ROOT / "docs").glob("*.md"))


def commands():
    """(page, module, flags) of every `python -m bert.<module> ...` line in the pages' code blocks, continuation
    lines joined."""
    found = []
    for page in PAGES:
        for block in re.findall(r"```(?:bash|sh)?\n(.*?)```", page.read_text(), re.S):
            for line in block.replace("\\\n", " ").splitlines():
                line = line.split(" #")[0]
                match = re.search(r"python[\d.]* (?:-m (bert(?:\.\w+)+)|(bert/run_classifier)\.py)(.*)", line)
                if match:
                    module = match.group(1) or "bert.run_classifier"
                    found.append((page.name, module, re.findall(r"(?<![\w-])--([a-z_]+)", match.group(3))))
    return found


def test_the_pages_have_commands():
    modules = {module for _, module, _ in commands()}
    assert {"bert.run_classifier", "bert.serving.predict", "bert.serving.export", "bert.data.download"} <= modules


def test_the_flags_page_is_what_the_flag_definitions_give():
    done = subprocess.run([sys.executable, "scripts/flags_doc.py", "--check"], cwd=str(REPO_ROOT),
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True, timeout=300)
    assert done.returncode == 0, done.stdout[-2000:]


@lru_cache(maxsize=None)
def accepted_flags(module: str) -> frozenset:
    """The flags `python -m <module>` accepts: run_classifier's definitions, or what a tool's --help lists."""
    if module == "bert.run_classifier":
        from bert import flags
        return frozenset(flags.FLAGS) | {"helpfull", "help"}
    done = subprocess.run([sys.executable, "-m", module, "--help"], cwd=str(REPO_ROOT), stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, universal_newlines=True, timeout=300)
    assert done.returncode == 0, "%s --help: %s" % (module, done.stdout[-2000:])
    return frozenset(re.findall(r"--([a-z_]+)", done.stdout))


@pytest.mark.parametrize("page,module,flags", commands(), ids=lambda value: str(value)[:40])
def test_every_documented_command_names_a_module_and_flags_it_accepts(page, module, flags):
    unknown = sorted(set(flags) - accepted_flags(module))
    assert not unknown, "%s: python -m %s does not accept %s" % (page, module, unknown)
