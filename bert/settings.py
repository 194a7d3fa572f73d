"""What a run_classifier invocation asks for, read from the flags once (bert/flags.py) into frozen objects.

Every helper of the command line takes these as arguments instead of reading flags, so a test builds them
in-process (`Settings.from_values`) and a refusal is a function call, not a TensorFlow subprocess. Each field
has the name of its flag: `--learning_rate` is `settings.training.learning_rate`. The training methods
(pruning, group lasso, distillation, ...) keep their settings in their own modules; `methods` holds them by
method name (bert/compression/methods.py).
"""
import dataclasses
from dataclasses import dataclass
from typing import Any, Dict, Mapping, Optional, Type, TypeVar


@dataclass(frozen=True)
class RunSettings:
    """Which task, files and phases: the flags google-research/bert's run_classifier.py has for them."""
    task_name: str
    data_dir: str
    output_dir: str
    bert_config_file: str
    vocab_file: str
    init_checkpoint: Optional[str] = None
    do_lower_case: bool = True
    do_train: bool = False
    do_eval: bool = False
    do_predict: bool = False
    overwrite_output_dir: bool = False
    verbose: bool = False


@dataclass(frozen=True)
class DataSettings:
    """How examples become model inputs."""
    max_seq_length: int = 128
    dynamic_padding: bool = True
    feature_cache_dir: Optional[str] = None
    strict_data: bool = False


@dataclass(frozen=True)
class TrainingSettings:
    """The optimisation and what a training run writes as it goes."""
    train_batch_size: int = 32
    eval_batch_size: int = 8
    predict_batch_size: int = 8
    learning_rate: float = 5e-5
    num_train_epochs: float = 3.0
    warmup_proportion: float = 0.1
    gradient_accumulation_steps: int = 1
    seed: int = 42
    save_checkpoints_steps: int = 1000
    progress_seconds: float = 30.0

    @property
    def micro_batch_size(self) -> int:
        """What the input pipeline delivers per training step: a micro-batch when accumulating gradients."""
        return self.train_batch_size // self.gradient_accumulation_steps


@dataclass(frozen=True)
class HardwareSettings:
    """Where and how the graph runs: TPU, tf.distribute, towers, XLA, fused kernels, mixed precision."""
    use_tpu: bool = False
    tpu_name: Optional[str] = None
    tpu_zone: Optional[str] = None
    gcp_project: Optional[str] = None
    master: Optional[str] = None
    num_tpu_cores: int = 8
    iterations_per_loop: int = 1000
    distribution_strategy: str = "none"
    towers: int = 0
    use_xla: bool = False
    fused_kernels: bool = True
    use_fp16: bool = False
    fp16_initial_loss_scale: float = 2.0 ** 15


Group = TypeVar("Group")


def group_from_values(group: Type[Group], values: Mapping[str, Any]) -> Group:
    """A settings group from flag values by name (a missing name keeps the field's default)."""
    return group(**{field.name: values[field.name] for field in dataclasses.fields(group) if field.name in values})


@dataclass(frozen=True)
class Settings:
    run: RunSettings
    data: DataSettings = DataSettings()
    training: TrainingSettings = TrainingSettings()
    hardware: HardwareSettings = HardwareSettings()
    methods: Mapping[str, Any] = dataclasses.field(default_factory=dict)  # method name -> its settings

    @classmethod
    def from_values(cls, values: Mapping[str, Any], methods: Optional[Dict[str, Any]] = None) -> "Settings":
        """The settings for flag values by flag name (absl's or a test's dict); `methods`, each training method's
        settings by name (bert/compression/methods.read_settings)."""
        return cls(group_from_values(RunSettings, values), group_from_values(DataSettings, values),
                   group_from_values(TrainingSettings, values), group_from_values(HardwareSettings, values),
                   methods or {})

    def replace(self, **groups) -> "Settings":
        return dataclasses.replace(self, **groups)
