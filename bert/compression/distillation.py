"""Knowledge distillation while fine-tuning: the student also learns a fine-tuned teacher's outputs.

The teacher is a finished run of the same task (`--distill_from`, its --output_dir): its latest checkpoint and
the bert_config.json its run_info.json records, which may describe another model than the student's (a bigger
or a compact one; the vocab and the task must be the same, since it reads the student's token ids and answers
with the task's labels). It runs in the student's training graph, on the same batch:

- under its own variable scope, `teacher/`, with dropout off (is_training=False), its outputs behind
  tf.stop_gradient;
- its variables are local and not trainable (a custom getter creates them so): the optimizer, pruning's masks
  and the group lasso, which take tf.trainable_variables(), never see them, and the Estimator's Saver, which
  saves the global ones, never writes them into the student's checkpoint. Their initializers read the
  teacher's checkpoint (tf.train.init_from_checkpoint), and the Scaffold's local init op runs them whenever a
  session starts: a fresh run and a resumed one (whose Saver restores only the student) get the same teacher.

The trained objective is `alpha * soft + (1 - alpha) * hard`, hard being the task's loss against the labels and
soft (Hinton et al.'s, as in Sanh et al.'s movement pruning):
- classification: T^2 * KL(softmax(teacher / T) || softmax(student / T)), averaged over the batch; the T^2
  keeps the soft gradients' scale independent of T (they shrink as 1 / T^2 otherwise);
- regression (STS-B): the squared error to the teacher's score, without a temperature (a score has no
  distribution to soften).

Evaluation and prediction build the student alone.
"""
import re
from dataclasses import dataclass
from typing import Dict, Optional

from bert import files, modeling, run_info
from bert.compat import tf
from bert.compression.methods import MethodContext, ObjectiveInputs, ProgressField, TrainingMethod
from bert.errors import UserError

TEACHER_SCOPE = "teacher"
SOFT_LOSS = "distillation_soft_loss"  # graph collection holding the soft loss


@dataclass(frozen=True)
class DistillationSettings:
    """What --distill_from, --distill_temperature and --distill_alpha ask for."""
    teacher_dir: Optional[str] = None  # a finished run's --output_dir; None: no distillation
    temperature: float = 2.0
    alpha: float = 0.9


@dataclass(frozen=True)
class Distillation(TrainingMethod):
    """Distillation as a training method, with the teacher its settings name: the objective mixes in the soft loss,
    which the progress line shows. The teacher's local variables are initialised outside TPUEstimator's scaffold
    and would need a copy per tf.distribute replica: not done yet (runs_on_tpu is False)."""

    checkpoint: str  # the teacher's checkpoint prefix
    bert_config: modeling.BertConfig  # the teacher's
    temperature: float = 2.0
    alpha: float = 0.9  # the soft loss's weight; the task's loss gets 1 - alpha

    name = "distillation"
    flags = ("--distill_from",)
    progress_fields = (ProgressField("soft_loss", "soft loss", "%.4f", after_loss=True),)

    @staticmethod
    def define_flags(flags) -> None:
        flags.DEFINE_string("distill_from", None, "Distil from a fine-tuned teacher of the same task: a finished run's "
                            "--output_dir (its latest checkpoint and recorded bert_config_file; another model than "
                            "the student's may be). See bert/compression/distillation.py.")
        flags.DEFINE_float("distill_temperature", 2.0, "With --distill_from: the softmax temperature T of the soft "
                           "loss T^2 * KL(teacher || student) (STS-B's squared error to the teacher's score has none).")
        flags.DEFINE_float("distill_alpha", 0.9, "With --distill_from: the soft loss's weight in the trained loss; the "
                           "task's loss against the labels gets 1 - alpha.")

    @classmethod
    def read_settings(cls, values) -> DistillationSettings:
        return DistillationSettings(values["distill_from"], values["distill_temperature"], values["distill_alpha"])

    @classmethod
    def build(cls, settings: DistillationSettings, context: MethodContext) -> Optional["Distillation"]:
        if not settings.teacher_dir:
            return None
        run = context.settings.run
        return from_run(settings.teacher_dir, context.task.name, run.vocab_file, run.do_lower_case,
                        context.settings.data.max_seq_length, settings.temperature, settings.alpha)

    def recorded_settings(self) -> Dict:
        """The flags as run_info.json records them: the teacher by its checkpoint's contents, like
        --init_checkpoint (a teacher trained further since is another teacher)."""
        return {"distill_from": run_info.file_setting(self.checkpoint, self.checkpoint + ".index"),
                "distill_temperature": self.temperature, "distill_alpha": self.alpha}

    def objective(self, objective, inputs: ObjectiveInputs):
        """The teacher built on the batch, its soft loss weighted with the objective so far (the task's loss)."""
        teacher = teacher_logits(self.bert_config, self.checkpoint, inputs.features, inputs.task.num_labels,
                                 inputs.task.is_regression)
        soft = soft_loss(inputs.logits, teacher, self.temperature, inputs.task.is_regression)
        tf.add_to_collection(SOFT_LOSS, soft)
        return self.alpha * soft + (1.0 - self.alpha) * objective

    def progress(self) -> Dict:
        return {"soft_loss": tf.get_collection(SOFT_LOSS)[0]}


def from_run(teacher_dir: str, task_name: str, vocab_file: str, do_lower_case: bool, max_seq_length: int,
             temperature: float = 2.0, alpha: float = 0.9) -> Distillation:
    """The distillation from the run in `teacher_dir`, refused (UserError) if that run cannot teach this one: no
    checkpoint, no recorded settings, another task, vocab or casing, a config file that is gone or changed since,
    or too few positions for `max_seq_length`; so are a temperature <= 0 and an alpha outside [0, 1]."""
    if not temperature > 0:
        raise UserError("--distill_temperature=%g must be > 0" % temperature)
    if not 0 <= alpha <= 1:
        raise UserError("--distill_alpha=%g must be in [0, 1] (the soft loss's weight)" % alpha)
    try:
        teacher = run_info.read_run(teacher_dir)
    except UserError as error:
        raise UserError("--distill_from: %s" % error) from None
    if teacher.task.name != task_name:
        raise UserError("--distill_from %s is a %s model, not %s: the teacher must be fine-tuned on this task"
                        % (teacher_dir, teacher.task.name, task_name))
    if files.sha1(teacher.vocab_file) != files.sha1(vocab_file) or teacher.do_lower_case != do_lower_case:
        raise UserError("--distill_from %s was trained with another vocab or casing (%s, --do_lower_case=%s): the "
                        "teacher must read the student's token ids" % (teacher_dir, teacher.vocab_file,
                                                                       teacher.do_lower_case))
    if max_seq_length > teacher.bert_config.max_position_embeddings:
        raise UserError("--max_seq_length=%d exceeds the teacher's max_position_embeddings=%d"
                        % (max_seq_length, teacher.bert_config.max_position_embeddings))
    return Distillation(teacher.checkpoint, teacher.bert_config, temperature, alpha)


def frozen_getter(getter, name, *args, **kwargs):
    """Makes every variable local and not trainable: outside the Saver, the optimizer and pruning."""
    kwargs.update(trainable=False, collections=[tf.GraphKeys.LOCAL_VARIABLES])
    return getter(name, *args, **kwargs)


def teacher_logits(bert_config: modeling.BertConfig, checkpoint: str, features: Dict, num_labels: int,
                   is_regression: bool):
    """The frozen teacher's logits for the batch (no dropout, no gradient), its variables set from `checkpoint`."""
    with tf.variable_scope(TEACHER_SCOPE, custom_getter=frozen_getter):
        model = modeling.BertModel(bert_config, False, features["input_ids"], features["input_mask"],
                                   features["segment_ids"])
        head = modeling.classifier_head(model.pooled_output, num_labels, is_regression, False)
    init_from_teacher(checkpoint)
    return tf.stop_gradient(head.logits)


def init_from_teacher(checkpoint: str) -> None:
    """Sets every `teacher/<name>` variable's initializer to read `<name>` from the checkpoint; a variable the
    checkpoint lacks, or has with another shape, means the recorded config does not describe it."""
    shapes = dict(tf.train.list_variables(checkpoint))
    assignment_map = {}
    for variable in tf.get_collection(tf.GraphKeys.LOCAL_VARIABLES, scope=TEACHER_SCOPE + "/"):
        name = re.sub("^%s/" % TEACHER_SCOPE, "", variable.op.name)
        if name not in shapes:
            raise UserError("the teacher's checkpoint %s has no %s: does its bert_config_file describe it?"
                            % (checkpoint, name))
        if list(shapes[name]) != variable.shape.as_list():
            raise UserError("the teacher's checkpoint %s has %s with shape %s but its bert_config_file wants %s"
                            % (checkpoint, name, shapes[name], variable.shape.as_list()))
        assignment_map[name] = variable
    tf.train.init_from_checkpoint(checkpoint, assignment_map)
    tf.logging.info("Teacher: %d variables from %s (frozen, not saved with the student)", len(assignment_map),
                    checkpoint)


def soft_loss(student_logits, teacher_logits, temperature: float, is_regression: bool):
    """The soft loss averaged over the batch: T^2 * KL(teacher || student) of the softened distributions, or for
    a regression the squared error to the teacher's score."""
    if is_regression:
        return tf.reduce_mean(tf.square(student_logits - teacher_logits))
    teacher_log_probs = tf.nn.log_softmax(teacher_logits / temperature, axis=-1)
    student_log_probs = tf.nn.log_softmax(student_logits / temperature, axis=-1)
    divergence = tf.reduce_sum(tf.exp(teacher_log_probs) * (teacher_log_probs - student_log_probs), axis=-1)
    return temperature * temperature * tf.reduce_mean(divergence)
