"""The one plug-in point of training methods: pruning, group lasso, distillation and any method added later.

A training method changes how the model is fine-tuned: what the objective adds, what happens around each
update, what a checkpoint holds, what the progress line shows, which settings a resumed run must repeat and
what the results report. `TrainingMethod` names each of these moments with a no-op default; a method
overrides the ones it needs. The model_fn (bert/training/estimator.py), the hooks (bert/training/hooks.py),
the run's record (bert/run_info.py) and run_classifier.py loop over the active methods and never name one.

Adding a method is its own module plus one line in bert/compression/registry.py's `REGISTERED` (docs/adding_a_method.md walks through
an example that tests/test_methods.py trains):

    class MyMethod(TrainingMethod):
        name = "my_method"

        @staticmethod
        def define_flags(flags): flags.DEFINE_float("my_strength", 0.0, "...")

        @classmethod
        def read_settings(cls, values): return values["my_strength"]

        @classmethod
        def build(cls, strength, context): return cls(strength) if strength > 0 else None
        ...

The order of the registry is the order in which the methods' terms enter the objective and their ops the
graph: it is part of what a run computes, so a new method goes at the end.
"""
import contextlib
from typing import Any, Callable, Dict, List, Mapping, NamedTuple, Optional, Sequence

from bert.compat import tf


class MethodContext(NamedTuple):
    """What a method may need to know when it is built: the task, the student's config and every setting."""
    task: Any  # bert.data.processors.TaskSpec
    bert_config: Any  # bert.modeling.BertConfig
    settings: Any  # bert.settings.Settings


class ObjectiveInputs(NamedTuple):
    """The training graph's pieces a method's objective term may use."""
    features: Dict  # the batch: input_ids, input_mask, segment_ids, label_ids, ...
    logits: Any  # the student's
    loss: Any  # the task's loss against the labels (what is reported as `loss`)
    task: Any  # bert.data.processors.TaskSpec


class ProgressField(NamedTuple):
    """A scalar a method shows on the training progress line and in TensorBoard."""
    name: str  # TensorBoard's tag, and the graph collection `progress/<name>` that holds the tensor
    label: str  # on the progress line: `<label> <value>`
    format: str = "%.3f"
    after_loss: bool = False  # shown right after the loss, else at the end of the line


class TrainingMethod:
    """A way of training beyond plain fine-tuning. Every moment is a no-op here."""

    name = ""  # its key in Settings.methods
    flags: Sequence[str] = ()  # its flags, named in refusals
    progress_fields: Sequence[ProgressField] = ()
    runs_on_tpu = False  # its graph runs inside TPUEstimator and under tf.distribute strategies

    # Setting up: flags, settings, the method itself.
    @staticmethod
    def define_flags(flags) -> None:
        """Defines the method's flags on absl's `flags` module (bert/flags.py calls it once)."""

    @classmethod
    def read_settings(cls, values: Mapping[str, Any]) -> Any:
        """The method's settings from flag values by name (any flag may be read, the method's own or others')."""

    @classmethod
    def build(cls, settings: Any, context: MethodContext) -> Optional["TrainingMethod"]:
        """The method for these settings, checked (a UserError for settings it refuses); None when it is off."""

    def recorded_settings(self) -> Dict[str, Any]:
        """Its settings as run_info.json records them, by flag name: a run trained with others is not resumed."""
        return {}

    # The training graph, in the order the model_fn builds it.
    def model_scope(self):
        """A context around building the student's model for training (pruning's masks)."""
        return contextlib.ExitStack()

    def objective(self, objective, inputs: ObjectiveInputs):
        """The objective to train, given the one so far (the task's loss plus earlier methods' terms)."""
        return objective

    def before_update(self) -> Optional[Callable[[List, List], List]]:
        """optimization.create_train_op's `before_update`: ops that see each applied update's gradients."""
        return None

    def after_update(self, train_op, num_train_steps: int, accumulation_steps: int):
        """The train_op, with what must happen after each update (pruning's mask updates)."""
        return train_op

    def init_fn(self) -> Optional[Callable]:
        """A Scaffold init_fn: what must happen when a fresh run's session starts (one-shot masks)."""
        return None

    def progress(self) -> Dict[str, Any]:
        """The tensors of `progress_fields`, by name, read in the training run that applies each update."""
        return {}

    # Around the training loop and after it.
    def saving_listeners(self) -> List[tf.train.CheckpointSaverListener]:
        """Listeners of each checkpoint save (pruning writes pruned weights as zeros)."""
        return []

    def after_training(self, checkpoint: str, output_dir: str) -> Dict[str, Any]:
        """Results of the trained checkpoint for eval_results.txt (structured pruning's compact model)."""
        return {}

    def after_evaluation(self, checkpoint: Optional[str], output_dir: str, results: Dict[str, Any],
                         evaluate: Callable[[str, str], Dict[str, float]]) -> Dict[str, Any]:
        """More results once the trained model's `results` are in; `evaluate(bert_config_file, checkpoint)`
        evaluates another model of the run (the compact one) like the trained one."""
        return {}


def progress_collection(name: str) -> str:
    return "progress/" + name


def register_progress(methods: Sequence[TrainingMethod], **tensors) -> None:
    """Puts `tensors` (the loss and learning rate) and each method's progress tensors into their graph
    collections, for the hooks that show them."""
    for method in methods:
        tensors.update(method.progress())
    for name, tensor in tensors.items():
        tf.add_to_collection(progress_collection(name), tensor)


def progress_tensor(name: str):
    """The tensor that register_progress put under `name` in the default graph."""
    return tf.get_collection(progress_collection(name))[0]


def combined_before_update(methods: Sequence[TrainingMethod]) -> Optional[Callable[[List, List], List]]:
    """One `before_update` running every method's (None if none has one)."""
    hooks = [hook for hook in (method.before_update() for method in methods) if hook is not None]
    if not hooks:
        return None
    return lambda grads, variables: [op for hook in hooks for op in hook(grads, variables)]


def combined_init_fn(methods: Sequence[TrainingMethod]) -> Optional[Callable]:
    init_fns = [init for init in (method.init_fn() for method in methods) if init is not None]
    if not init_fns:
        return None

    def init_fn(scaffold, session):
        for init in init_fns:
            init(scaffold, session)
    return init_fn


def model_scope(methods: Sequence[TrainingMethod]):
    """Every method's model_scope at once."""
    stack = contextlib.ExitStack()
    for method in methods:
        stack.enter_context(method.model_scope())
    return stack
