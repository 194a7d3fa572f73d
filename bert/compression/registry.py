"""The training methods there are, in one list: adding a method is its module plus one line here.

The order is the order in which the methods' terms enter the objective and their ops the training graph: it is
part of what a run computes, so a new method goes at the end.
"""
from typing import Any, Dict, List, Mapping

from bert.compression import compaction, distillation, group_lasso, pruning
from bert.compression.methods import MethodContext, TrainingMethod

REGISTERED = [
    pruning.Pruning,
    distillation.Distillation,
    group_lasso.GroupLasso,
    compaction.CompactModel,
]


def define_flags(flags) -> None:
    """Every registered method's flags (bert/flags.py calls it once)."""
    for method in REGISTERED:
        method.define_flags(flags)


def read_settings(values: Mapping[str, Any]) -> Dict[str, Any]:
    """Every registered method's settings, by method name."""
    return {method.name: method.read_settings(values) for method in REGISTERED}


def build(context: MethodContext) -> List[TrainingMethod]:
    """The active methods for these settings, checked, in registration order."""
    built = (method.build(context.settings.methods.get(method.name), context) for method in REGISTERED)
    return [method for method in built if method is not None]
