"""The package's layers: a module imports its own layer and those below it, never one above, and no modules import
each other, directly or through others. Read from the source (ast over bert/**/*.py, imports inside functions
included), so it needs no TensorFlow and catches an import that only runs on one path.

From the bottom up (LAYERS): the foundation (helpers every layer may use: compat, errors, files, formatting,
checkpoints, counters, kernels, and the settings object), the model (Google's modeling, tokenization and
optimizer), the data (bert.data: GLUE tasks, features, metrics, downloads and the Hugging Face import), a run's
record and reading it back (run_info), compression (bert.compression), training (bert.training), the command line
(run_classifier and its flags), then serving (bert.serving) and the sweeps (bert.sweeps) at the top, which may not
import each other: the sweeps run run_classifier as a subprocess and serve nothing. A new module fails
`test_every_module_has_a_layer` until it is given one here.
"""
import ast
from pathlib import Path
from typing import Dict, List, Optional, Set

import pytest

from conftest import REPO_ROOT

# (layer, the modules and packages in it), bottom to top. A package (bert.data) holds every module under it.
LAYERS = [
    ("foundation", ["bert", "bert.compat", "bert.errors", "bert.files", "bert.formatting", "bert.checkpoints",
                    "bert.counters", "bert.kernels", "bert.settings"]),
    ("model", ["bert.modeling", "bert.tokenization", "bert.optimization"]),
    ("data", ["bert.data"]),
    ("run record", ["bert.run_info"]),
    ("compression", ["bert.compression"]),
    ("training", ["bert.training"]),
    ("command line", ["bert.run_classifier", "bert.flags"]),
    ("serving", ["bert.serving"]),
    ("sweeps", ["bert.sweeps"]),
]
TOP = {"serving", "sweeps"}  # one level: neither imports the other


def module_names(root: Path) -> Dict[str, Path]:
    """{dotted name: file} of every module of the package in `root` (root/bert/**/*.py)."""
    found = {}
    for path in sorted((root / "bert").rglob("*.py")):
        parts = list(path.relative_to(root).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def imported_modules(name: str, path: Path, modules: Set[str]) -> Set[str]:
    """The package's modules that module `name` imports anywhere in its source: `import bert.x`, `from bert import x`
    (x a module, else the package), `from bert.x import y`, relative imports."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[:len(package.split(".")) - (node.level - 1)]
                base = ".".join(anchor + ([base] if base else []))
            targets = [base + "." + alias.name if base + "." + alias.name in modules else base for alias in node.names]
        else:
            continue
        for target in targets:
            while target and target not in modules:  # `import bert.x.y as z` of a module; an attribute's module
                target = target.rpartition(".")[0]
            if target and target != name and (target == "bert" or target.startswith("bert.")):
                found.add(target)
    return found


def import_graph(root: Path) -> Dict[str, Set[str]]:
    modules = module_names(root)
    return {name: imported_modules(name, path, set(modules)) for name, path in modules.items()}


def layer_of(name: str, layers=LAYERS) -> Optional[int]:
    """The index in `layers` of the layer holding module `name` (the longest entry that is it or its package)."""
    best = None
    for index, (_, members) in enumerate(layers):
        for member in members:
            if (name == member or name.startswith(member + ".")) and (best is None or len(member) > len(best[1])):
                best = (index, member)
    return None if best is None else best[0]


def upward_imports(graph: Dict[str, Set[str]], layers=LAYERS, top=TOP) -> List[str]:
    """`a (layer) imports b (layer)` for each import of a higher layer, or of the other top layer."""
    found = []
    for name, imported in sorted(graph.items()):
        own = layer_of(name, layers)
        for target in sorted(imported):
            other = layer_of(target, layers)
            if own is None or other is None or other == own:
                continue
            if other > own or (layers[own][0] in top and layers[other][0] in top):
                found.append("%s (%s) imports %s (%s)" % (name, layers[own][0], target, layers[other][0]))
    return found


def cycles(graph: Dict[str, Set[str]]) -> List[List[str]]:
    """The import cycles: each strongly connected group of modules (Tarjan's algorithm), as a path a -> ... -> a."""
    index, low, stack, on_stack, groups = {}, {}, [], set(), []

    def visit(node):
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph.get(node, ())):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return [cycle_path(graph, group) for group in groups]


def cycle_path(graph: Dict[str, Set[str]], group: List[str]) -> List[str]:
    """One cycle through the group's first module, by breadth-first search inside the group."""
    start, members = group[0], set(group)
    came_from = {start: None}
    queue = [start]
    while queue:
        node = queue.pop(0)
        for target in sorted(graph[node] & members):
            if target == start:
                path = [node]
                while came_from[path[-1]] is not None:
                    path.append(came_from[path[-1]])
                return path[::-1] + [start]
            if target not in came_from:
                came_from[target] = node
                queue.append(target)
    return group


def test_every_module_compiles_on_this_python():
    """The layout is checked once (one_stack), by Python 3.11's parser, which also reads syntax Python 3.7 lacks:
    each stack's own interpreter compiles every module (TF 1.15's users run Python 3.7)."""
    for name, path in module_names(REPO_ROOT).items():
        compile(path.read_text(encoding="utf-8"), str(path), "exec")


@pytest.fixture(scope="module")
def graph():
    return import_graph(REPO_ROOT)


@pytest.mark.one_stack("tf2")
def test_every_module_has_a_layer(graph):
    assert [name for name in sorted(graph) if layer_of(name) is None] == []


@pytest.mark.one_stack("tf2")
def test_no_module_imports_a_higher_layer(graph):
    assert upward_imports(graph) == []


@pytest.mark.one_stack("tf2")
def test_no_import_cycles(graph):
    assert [" -> ".join(cycle) for cycle in cycles(graph)] == []


@pytest.mark.one_stack("tf2")
def test_the_checks_see_every_kind_of_import(tmp_path):
    """The checks themselves, on a made-up package: a cycle closed by an import inside a function, an upward import,
    relative imports, the two top layers importing each other; a module's own layer and lower ones are allowed."""
    sources = {
        "bert/__init__.py": "",
        "bert/files.py": "import os\n",
        "bert/modeling.py": "from bert import files\nfrom bert.data.features import convert\n",
        "bert/data/__init__.py": "",
        "bert/data/features.py": "from . import processors\n\n\ndef f():\n    from bert.modeling import BertModel\n",
        "bert/data/processors.py": "import bert.files as files\n",
        "bert/serving/__init__.py": "",
        "bert/serving/export.py": "from bert.sweeps import report\nfrom bert import files, modeling\n",
        "bert/sweeps/__init__.py": "",
        "bert/sweeps/report.py": "from ..data import processors\n",
    }
    for name, text in sources.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    made_up = import_graph(tmp_path)
    assert made_up["bert.data.features"] == {"bert.data.processors", "bert.modeling"}
    assert made_up["bert.data.processors"] == {"bert.files"}
    assert made_up["bert.serving.export"] == {"bert.sweeps.report", "bert.files", "bert.modeling"}
    assert made_up["bert.sweeps.report"] == {"bert.data.processors"}
    assert upward_imports(made_up) == ["bert.modeling (model) imports bert.data.features (data)",
                                       "bert.serving.export (serving) imports bert.sweeps.report (sweeps)"]
    assert cycles(made_up) == [["bert.data.features", "bert.modeling", "bert.data.features"]]
