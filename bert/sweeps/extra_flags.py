"""What EXTRA_FLAGS do to a sweep's runs, read the way absl reads run_classifier's command line.

A sweep passes EXTRA_FLAGS after the flags it sets itself (bert/sweeps/sweep.py's `command`), and the last value of
a flag wins. So:
- --num_train_epochs, --train_batch_size and --max_seq_length in EXTRA_FLAGS are what the runs train with: `resolve`
  makes them EPOCHS, BATCH_SIZE and MAX_SEQ_LENGTH and leaves them out of EXTRA_FLAGS, so that the tree's name, its
  settings.json and the summary's caption state them, and `EXTRA_FLAGS=--num_train_epochs=1` trains in the same
  tree as `EPOCHS=1`;
- a flag the sweep sets for each run itself (REFUSED) is refused with a one-line error naming the setting to use.

Flags are read as absl parses them: `--name=value` and `-name=value`; `--name value` (the next word is the value of a
flag that is not boolean); `--name` and `--noname` for a boolean flag; words that are not flags are passed over, `--`
ends the flags, and `--flagfile=<file>` reads flags from a file (which stays in EXTRA_FLAGS: its flags are read, for
the checks and the settings, but not taken out). Which flags there are, and which of them are boolean, is read from
the DEFINE_* calls of the bert package's sources (run_classifier's flags) and absl's own flags, without importing
TensorFlow; as absl does, a flag it does not know takes no value from the next word (the run then fails on it).
"""
import ast
import functools
import os
import shlex
from dataclasses import dataclass
from typing import Dict, FrozenSet, List, Optional, Tuple

from bert.errors import UserError

# run_classifier flag: (the setting that holds it, what absl makes of its value)
OVERRIDDEN = {"num_train_epochs": ("EPOCHS", "float"), "train_batch_size": ("BATCH_SIZE", "integer"),
              "max_seq_length": ("MAX_SEQ_LENGTH", "integer")}
# run_classifier flag the sweep sets for every run: the setting to use instead
REFUSED = {"task_name": "TASKS", "data_dir": "GLUE_DIR", "output_dir": "OUTPUT_DIR", "learning_rate": "LRS",
           "bert_config_file": "BERT_DIR", "vocab_file": "BERT_DIR", "init_checkpoint": "BERT_DIR"}


def _defined_flags(source: str) -> List[Tuple[str, str]]:
    """(kind, name) of each `<anything>.DEFINE_<kind>("name", ...)` call in a module's source: calls only, so an
    example in a docstring defines nothing."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.args:
            name = getattr(node.args[0], "s", getattr(node.args[0], "value", None))  # ast.Str before Python 3.8
            if node.func.attr.startswith("DEFINE_") and isinstance(name, str):
                found.append((node.func.attr[len("DEFINE_"):], name))
    return found


@dataclass(frozen=True)
class Flag:
    name: str
    value: str
    spelled: str  # as written: "--name=value", "--name value", "--noname"
    words: Tuple[int, ...]  # its words' positions in EXTRA_FLAGS; () for a flag read from a --flagfile


@functools.lru_cache(maxsize=None)
def known_flags() -> Tuple[FrozenSet[str], FrozenSet[str]]:
    """(every flag's name, the boolean flags' names): run_classifier's (found in the bert package's sources) and
    absl's own."""
    from absl import app, flags  # noqa: F401 (app defines absl's flags: --pdb, --only_check_args, ...)
    from absl import logging  # noqa: F401 (--logtostderr, --verbosity, ...)
    names = set(flags.FLAGS)
    booleans = {name for name in names if flags.FLAGS[name].boolean}
    package = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    for directory, _, file_names in os.walk(package):
        for file_name in file_names:
            if file_name.endswith(".py"):
                with open(os.path.join(directory, file_name), encoding="utf-8") as f:
                    for kind, name in _defined_flags(f.read()):
                        names.add(name)
                        if kind in ("bool", "boolean"):
                            booleans.add(name)
    return frozenset(names), frozenset(booleans)


def _read_flagfile(path: str) -> List[str]:
    from absl import flags
    try:
        return flags.FlagValues().read_flags_from_files(["--flagfile=" + path], force_gnu=True)
    except flags.Error as error:
        raise UserError("EXTRA_FLAGS: --flagfile=%s: %s" % (path, error)) from None


def parse(words: List[str], from_file: bool = False) -> List[Flag]:
    """The flags of a command line's words, in order, as absl reads them (see the module's doc)."""
    found: List[Flag] = []
    position = 0
    while position < len(words):
        word, start = words[position], position
        position += 1
        if word == "--":
            break
        if not word.startswith("-") or not word.lstrip("-"):
            continue  # a positional argument: absl passes over it
        name, equals, value = word[2 if word.startswith("--") else 1:].partition("=")
        names, booleans = known_flags()
        if not equals:
            if name in booleans:
                value = "true"
            elif name.startswith("no") and name[2:] in booleans:
                name, value = name[2:], "false"
            elif name not in names and name != "flagfile":
                continue  # absl takes no value for a flag it does not know, and the run fails on it
            elif position < len(words):
                value = words[position]
                position += 1
            else:
                raise UserError("EXTRA_FLAGS: %s has no value" % word)
        spelled = " ".join(words[start:position])
        if name == "flagfile":
            found += parse(_read_flagfile(value), from_file=True)
        else:
            found.append(Flag(name, value, spelled, () if from_file else tuple(range(start, position))))
    return found


def _converted(flag: Flag, kind: str) -> str:
    """The flag's value as absl converts it, spelled so that float() or int() reads it."""
    from absl import flags
    parser = flags.FloatParser() if kind == "float" else flags.IntegerParser()
    try:
        value = parser.parse(flag.value)
    except ValueError:
        raise UserError("EXTRA_FLAGS: %s is not %s" % (flag.spelled, "a number" if kind == "float" else
                                                       "a whole number")) from None
    return flag.value if kind == "float" else str(value)


def overrides(words: List[str]) -> Tuple[Dict[str, str], List[str]]:
    """({setting: the value the runs train with} for the OVERRIDDEN flags among `words`, the other words)."""
    values: Dict[str, str] = {}
    taken = set()
    for flag in parse(words):
        if flag.name in OVERRIDDEN:
            setting, kind = OVERRIDDEN[flag.name]
            values[setting] = _converted(flag, kind)
            taken.update(flag.words)
    return values, [word for position, word in enumerate(words) if position not in taken]


def resolve(env: Dict[str, str], per_run: Optional[Dict[str, str]] = None) -> Dict[str, str]:
    """The sweep's settings as its runs train with them: env with EPOCHS, BATCH_SIZE and MAX_SEQ_LENGTH taken
    from EXTRA_FLAGS where it sets them (and those flags left out of EXTRA_FLAGS). A UserError for a flag of
    REFUSED or `per_run` ({flag: the setting to use instead}) in EXTRA_FLAGS."""
    words = shlex.split(env["EXTRA_FLAGS"])
    refused = dict(REFUSED, **(per_run or {}))
    for flag in parse(words):
        if flag.name in refused:
            raise UserError("EXTRA_FLAGS: %s: the sweep sets --%s for each run; use %s= instead"
                            % (flag.spelled, flag.name, refused[flag.name]))
    values, kept = overrides(words)
    if not values:
        return env
    return dict(env, EXTRA_FLAGS=" ".join(shlex.quote(word) for word in kept), **values)


def effective(settings: Optional[Dict]) -> Optional[Dict]:
    """A tree's recorded settings as `resolve` would record them: a tree made before EXTRA_FLAGS were resolved may
    record --num_train_epochs, --train_batch_size or --max_seq_length among its extra flags, and the runs trained
    with those. Settings whose extra flags cannot be read (or set none of these) are returned as they are."""
    if not settings or not settings.get("extra_flags"):
        return settings
    try:
        values, kept = overrides(list(settings["extra_flags"]))
    except UserError:
        return settings
    if not values:
        return settings
    resolved = dict(settings, extra_flags=kept)
    for setting, key, kind in (("EPOCHS", "epochs", float), ("BATCH_SIZE", "batch_size", int),
                               ("MAX_SEQ_LENGTH", "max_seq_length", int)):
        if setting in values:
            resolved[key] = kind(values[setting])
    return resolved
